/* cmd_cs.c - `cairn cs list` (the chunk servers, from MSG_HEALTH), `cairn cs drain ID` and
 * `cairn cs undrain ID`: MSG_CS_DRAIN for one chunk server,
 * named by its id in hex as `cairn health` prints it (with or without 0x), through the meta
 * service; `cairn cs stats ADDR`: MSG_CHK_STATS straight to the chunk server at ADDR, its
 * counters and timings ("name value" lines, checked and printed as they come). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_meta.h"
#include "cmd_health.h"
#include "json_out.h"
#include "rpc.h"

#define CS_STATS_MAX 65535 /* the reply is one str */

/* "0x1f", "001f" -> id; -EINVAL unless 1..16 hex digits. */
static int parse_id(const char *s, uint64_t *id)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = strlen(s);
    if (n == 0 || n > 16 || strspn(s, "0123456789abcdefABCDEF") != n) return -EINVAL;
    *id = strtoull(s, NULL, 16);
    return 0;
}

/* Whether text is "name value\n" lines: names [a-z0-9_], values decimal. */
static int stats_valid(const char *text)
{
    for (const char *p = text; *p;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (n == 0 || p[n] != ' ') return 0;
        p += n + 1;
        n = strspn(p, "0123456789");
        if (n == 0 || n > 20 || p[n] != '\n') return 0;
        p += n + 1;
    }
    return 1;
}

/* Print the checked lines of text: aligned, or as one JSON object. */
static void stats_print(const struct cli *c, const char *addr, char *text)
{
    struct json j;
    if (c->json) {
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_str(&j, "addr", addr);
        json_obj_begin(&j, "stats");
    }
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *v = strchr(l, ' ');
        *v++ = '\0';
        if (c->json)
            json_u64(&j, l, strtoull(v, NULL, 10));
        else
            printf("%-24s %s\n", l, v);
    }
    if (c->json) {
        json_obj_end(&j);
        json_obj_end(&j);
        json_finish(&j);
    }
}

static int cs_stats(const struct cli *c)
{
    const char *addr = c->argv[1];
    if (!cli_addr_valid(addr)) {
        cli_err("cs stats: '%s' is not a chunk server address (HOST:PORT)", addr);
        return CLI_USAGE;
    }
    struct rpc_opts o = {.connect_timeout_ms = 2000,
                         .call_timeout_ms = CLI_REPLY_MS,
                         .connect_attempts = 2,
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 500};
    struct rpc_conn *r = rpc_conn_new(addr, &o);
    if (!r) {
        cli_err("cs stats: out of memory");
        return CLI_FAIL;
    }
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_STATS, NULL, 0, NULL, 0, &rep);
    rpc_conn_free(r);
    if (rc) {
        cli_err("cs stats: %s: %s", addr,
                rc == -EOPNOTSUPP ? "the chunk server does not answer this request (it is older "
                                    "than this cairn)"
                                  : strerror(-rc));
        return CLI_FAIL;
    }
    static char text[CS_STATS_MAX + 1];
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    rc = rcur_str(&cur, text, CS_STATS_MAX);
    if (rc >= 0) rc = rcur_done(&cur);
    rpc_reply_free(&rep);
    if (rc < 0 || !stats_valid(text)) {
        cli_err("cs stats: %s: malformed reply", addr);
        return CLI_FAIL;
    }
    stats_print(c, addr, text);
    return CLI_OK;
}

/* cairn cs list [PATH]: the server table of MSG_HEALTH. */
static int cs_list(const struct cli *c)
{
    char addrs[CLI_ADDRS_LEN];
    if (cli_meta_addr_cluster(c, c->argc == 2 ? c->argv[1] : NULL, addrs, sizeof(addrs)))
        return CLI_USAGE;
    struct hl_report h;
    if (hl_fetch(addrs, "cs list", &h)) return CLI_FAIL;
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_str(&j, "meta", addrs);
        hl_json_servers(&j, &h);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        hl_print_servers(stdout, &h);
    }
    hl_free(&h);
    return CLI_OK;
}

int cmd_cs(const struct cli *c)
{
    uint64_t id;
    int on;
    if (c->argc == 2 && strcmp(c->argv[0], "stats") == 0) return cs_stats(c);
    if ((c->argc == 1 || c->argc == 2) && strcmp(c->argv[0], "list") == 0) return cs_list(c);
    if (c->argc != 2 || (strcmp(c->argv[0], "drain") && strcmp(c->argv[0], "undrain"))) {
        cli_err("usage: cairn cs list [PATH], cairn cs drain|undrain ID, or cairn cs stats ADDR");
        return CLI_USAGE;
    }
    on = strcmp(c->argv[0], "drain") == 0;
    if (parse_id(c->argv[1], &id)) {
        cli_err("cs %s: '%s' is not a chunk server id (hex, as cairn health prints it)", c->argv[0],
                c->argv[1]);
        return CLI_USAGE;
    }
    char addrs[CLI_ADDRS_LEN];
    cli_meta_addr_default(c, addrs, sizeof(addrs));
    struct cli_meta *m = cli_meta_get(addrs);
    if (!m) {
        cli_err("cs: bad meta service address list '%s'", addrs);
        return CLI_USAGE;
    }
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_u64(&req, id);
    wbuf_put_u8(&req, (uint8_t)on);
    struct rpc_reply rep;
    int rc = cli_meta_call(m, MSG_CS_DRAIN, &req, &rep);
    wbuf_free(&req);
    if (rc == -ENOENT) {
        cli_err("cs %s: no chunk server %016" PRIx64 " is known to the meta service at %s",
                c->argv[0], id, addrs);
        return CLI_FAIL;
    }
    if (rc) {
        cli_err("cs %s: %016" PRIx64 ": %s", c->argv[0], id, cli_meta_why(m));
        return CLI_FAIL;
    }
    rpc_reply_free(&rep);
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_hex64(&j, "server", id);
        json_bool(&j, "draining", on);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        printf("chunk server %016" PRIx64 ": %s\n", id,
               on ? "draining (its copies are made elsewhere, then dropped; see cairn health)"
                  : "no longer draining");
    }
    return CLI_OK;
}
