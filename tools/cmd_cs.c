/* cmd_cs.c - `cairn cs drain ID` and `cairn cs undrain ID`: MSG_CS_DRAIN for one chunk server,
 * named by its id in hex as `cairn health` prints it (with or without 0x). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_meta.h"
#include "json_out.h"

/* "0x1f", "001f" -> id; -EINVAL unless 1..16 hex digits. */
static int parse_id(const char *s, uint64_t *id)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = strlen(s);
    if (n == 0 || n > 16 || strspn(s, "0123456789abcdefABCDEF") != n) return -EINVAL;
    *id = strtoull(s, NULL, 16);
    return 0;
}

int cmd_cs(const struct cli *c)
{
    uint64_t id;
    int on;
    if (c->argc != 2 || (strcmp(c->argv[0], "drain") && strcmp(c->argv[0], "undrain"))) {
        cli_err("usage: cairn cs drain|undrain ID");
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
