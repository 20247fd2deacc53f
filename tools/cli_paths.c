/* cli_paths.c - the loop of the commands that take PATH... (du, fileinfo): each path is done on
 * its own, a failure is reported and counted and the others still run, and with --json the
 * whole is one document { KEY: [ one element per path ], "errors": N }. */
#include <stdio.h>

#include "cli.h"
#include "json_out.h"

int cli_for_each_path(const struct cli *c, const char *name, const char *key, cli_path_fn fn)
{
    if (c->argc < 1) {
        cli_err("usage: cairn %s [--json] PATH...", name);
        return CLI_USAGE;
    }
    struct json j;
    unsigned long errors = 0;
    if (c->json) {
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_arr_begin(&j, key);
    }
    for (int i = 0; i < c->argc; i++) {
        char why[CLI_WHY_LEN];
        int rc = fn(c, c->argv[i], c->json ? &j : NULL, why, sizeof(why));
        if (!rc) continue;
        errors++;
        cli_err("%s: %s: %s", name, c->argv[i], why);
        if (c->json) {
            json_obj_begin(&j, NULL);
            json_str(&j, "path", c->argv[i]);
            json_str(&j, "error", why);
            json_i64(&j, "errno", -rc);
            json_obj_end(&j);
        }
    }
    if (c->json) {
        json_arr_end(&j);
        json_u64(&j, "errors", errors);
        json_obj_end(&j);
        json_finish(&j);
    }
    return errors ? CLI_FAIL : CLI_OK;
}
