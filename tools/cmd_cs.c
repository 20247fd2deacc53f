/* cmd_cs.c - `cairn cs list` (the chunk servers, from MSG_HEALTH), `cairn cs drain ID` and
 * `cairn cs undrain ID`: MSG_CS_DRAIN for one chunk server,
 * named by its id in hex as `cairn health` prints it (with or without 0x), through the meta
 * service (drain --wait then follows the server's copies in MSG_HEALTH down to none, with a
 * progress bar); `cairn cs stats ADDR`: MSG_CHK_STATS straight to the chunk server at ADDR, its
 * counters and timings ("name value" lines, checked and printed as they come). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_meta.h"
#include "cmd_health.h"
#include "json_out.h"
#include "progress.h"
#include "rpc.h"

#define CS_STATS_MAX 65535 /* the reply is one str */
#define DRAIN_POLL_MS 1000
#define DRAIN_STALL_MS (10 * 60 * 1000) /* --wait gives up after this long without progress */

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

/* The copies server id holds, from MSG_HEALTH: 0 or -errno (-ENOENT: not listed). */
static int drain_left(struct cli_meta *m, uint64_t id, uint64_t *chunks, uint8_t *state)
{
    struct rpc_reply rep;
    int rc = cli_meta_call(m, MSG_HEALTH, NULL, &rep);
    if (rc) return rc;
    struct hl_report h;
    rc = hl_decode(&h, rep.payload.data, rep.payload.len);
    rpc_reply_free(&rep);
    if (rc) return rc;
    rc = -ENOENT;
    for (uint32_t i = 0; i < h.nservers; i++)
        if (h.servers[i].id == id) {
            *chunks = h.servers[i].chunks;
            *state = h.servers[i].state;
            rc = 0;
        }
    hl_free(&h);
    return rc;
}

/* cs drain --wait: poll until the server holds no copy, with progress on stderr. */
static int drain_wait(struct cli_meta *m, uint64_t id)
{
    struct progress p;
    progress_init(&p, stderr, "drain", "copies moved");
    uint64_t first = 0, last = UINT64_MAX, still_ms = 0;
    for (;;) {
        uint64_t left = 0;
        uint8_t state = 0;
        int rc = drain_left(m, id, &left, &state);
        if (rc) {
            progress_end(&p);
            cli_err("cs drain: %016" PRIx64 ": %s", id,
                    rc == -ENOENT ? "the server is no longer known" : cli_meta_why(m));
            return CLI_FAIL;
        }
        if (left > first) first = left;
        progress_update(&p, first - left, first);
        if (left == 0) break;
        if (state != CS_STATE_DRAINING && state != CS_STATE_DOWN) {
            progress_end(&p);
            cli_err("cs drain: %016" PRIx64 ": no longer draining (undrained?)", id);
            return CLI_FAIL;
        }
        still_ms = left < last ? 0 : still_ms + DRAIN_POLL_MS;
        last = left < last ? left : last;
        if (still_ms >= DRAIN_STALL_MS) {
            progress_end(&p);
            cli_err("cs drain: %016" PRIx64 ": %" PRIu64 " copies left, none moved in %d minutes",
                    id, left, DRAIN_STALL_MS / 60000);
            return CLI_FAIL;
        }
        struct timespec ts = {DRAIN_POLL_MS / 1000, (long)(DRAIN_POLL_MS % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    progress_end(&p);
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
        cli_err("usage: cairn cs list [PATH], cairn cs drain|undrain ID [--wait], or cairn cs "
                "stats ADDR");
        return CLI_USAGE;
    }
    on = strcmp(c->argv[0], "drain") == 0;
    if (c->wait && !on) {
        cli_err("cs undrain: --wait is for drain only");
        return CLI_USAGE;
    }
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
    if (on && c->wait && drain_wait(m, id) != CLI_OK) return CLI_FAIL;
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_hex64(&j, "server", id);
        json_bool(&j, "draining", on);
        if (c->wait) json_bool(&j, "drained", 1);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        printf("chunk server %016" PRIx64 ": %s\n", id,
               !on ? "no longer draining"
               : c->wait
                   ? "drained (it holds no copy any more)"
                   : "draining (its copies are made elsewhere, then dropped; see cairn health)");
    }
    return CLI_OK;
}
