/* cmd_copies.c - `cairn copies [-r] [N] PATH...`: show or set how many copies the meta
 * service keeps of each file (and, for directories, what new children inherit).
 *
 * The inode is stat(2)'s st_ino on the mount; GETATTR reads the effective copies, SET_COPIES
 * sets them (0 = inherit the default again) and answers the new attributes. -r walks each
 * directory with nftw on the client (pre-order, so a directory is set before its children;
 * symlinks are neither followed nor set; other mounts below are not entered). Setting with -r
 * (and without -v, which prints every path) shows how many paths are done (progress.h). */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_meta.h"
#include "json_out.h"
#include "progress.h"

struct copies_run {
    const struct cli *c;
    int set; /* 1: set every path to n */
    uint32_t n;
    struct json j;      /* with --json */
    struct cli_meta *m; /* connection of the PATH argument being walked */
    unsigned long errors;
    struct progress prog; /* -r N without -v: paths set so far (nothing else is printed) */
    int show_progress;
    uint64_t walked;
};

/* nftw passes no user pointer: the run being walked (one at a time). */
static struct copies_run *walk_run;

static const char *type_name(mode_t mode)
{
    if (S_ISREG(mode)) return "file";
    if (S_ISDIR(mode)) return "dir";
    if (S_ISLNK(mode)) return "symlink";
    return "other";
}

static void report(struct copies_run *r, const char *path, int rc, const char *why)
{
    r->errors++;
    if (r->show_progress) progress_clear(&r->prog);
    cli_err("copies: %s: %s", path, why);
    if (!r->c->json) return;
    json_obj_begin(&r->j, NULL);
    json_str(&r->j, "path", path);
    json_str(&r->j, "error", why);
    json_i64(&r->j, "errno", rc < 0 ? -rc : rc);
    json_obj_end(&r->j);
}

static void print_one(struct copies_run *r, const char *path, const struct cairn_attr *a)
{
    if (r->c->json) {
        json_obj_begin(&r->j, NULL);
        json_str(&r->j, "path", path);
        json_u64(&r->j, "ino", a->ino);
        json_str(&r->j, "type", type_name(a->mode));
        json_u64(&r->j, "copies", a->copies);
        json_obj_end(&r->j);
    } else if (!r->set || r->c->verbose) {
        printf("%u\t%s\n", a->copies, path);
    }
}

/* GETATTR or SET_COPIES of one inode (st from the mount), then its line. */
static void copies_one(struct copies_run *r, const char *path, const struct stat *st)
{
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_u64(&req, (uint64_t)st->st_ino);
    if (r->set) wbuf_put_u32(&req, r->n);
    struct rpc_reply rep;
    int rc = cli_meta_call(r->m, r->set ? MSG_SET_COPIES : MSG_GETATTR, &req, &rep);
    wbuf_free(&req);
    if (rc) {
        report(r, path, rc,
               rc == -EINVAL && r->set ? "copies out of range for the meta service"
                                       : cli_meta_why(r->m));
        return;
    }
    struct cairn_attr a;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    proto_get_attr(&cur, &a);
    rc = rcur_done(&cur);
    rpc_reply_free(&rep);
    char why[CLI_ADDRS_LEN + 100];
    if (rc)
        report(r, path, rc, cli_strerror(rc));
    else if ((rc = cli_meta_check_type(r->m, a.mode, st->st_mode, why, sizeof(why))) != 0)
        report(r, path, rc, why);
    else
        print_one(r, path, &a);
}

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    struct copies_run *r = walk_run;
    switch (type) {
    case FTW_SL:
    case FTW_SLN:
        return 0; /* symlinks are skipped */
    case FTW_NS:
        report(r, path, -EIO, "cannot stat it");
        return 0;
    case FTW_DNR:
        report(r, path, -EACCES, "cannot read the directory (its entries were skipped)");
        break;
    default:
        break;
    }
    copies_one(r, path, st);
    if (r->show_progress) progress_update(&r->prog, ++r->walked, 0);
    return cli_meta_unreachable(r->m) ? 1 : 0; /* nothing more can work */
}

static void copies_path(struct copies_run *r, const char *path)
{
    struct stat st;
    char why[CLI_ADDRS_LEN + 100];
    int rc = cli_meta_for_path(r->c, path, &st, &r->m, why, sizeof(why));
    if (rc) {
        report(r, path, rc, why);
        return;
    }
    if (!r->c->recursive || !S_ISDIR(st.st_mode)) {
        copies_one(r, path, &st);
        return;
    }
    walk_run = r;
    r->show_progress = r->set && !r->c->verbose;
    r->walked = 0;
    if (r->show_progress) progress_init(&r->prog, stderr, "copies", "paths set");
    if (nftw(path, walk_cb, 32, FTW_PHYS | FTW_MOUNT) < 0) {
        int e = errno;
        report(r, path, -e, strerror(e));
    }
    if (r->show_progress) progress_end(&r->prog);
    walk_run = NULL;
}

/* "0".."8" -> n; -EINVAL otherwise. */
static int parse_copies(const char *s, uint32_t *n)
{
    if (!s[0] || strlen(s) > 2 || strspn(s, "0123456789") != strlen(s)) return -EINVAL;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > CAIRN_COPIES_MAX) return -ERANGE;
    *n = (uint32_t)v;
    return 0;
}

int cmd_copies(const struct cli *c)
{
    struct copies_run r = {.c = c};
    int first = 0;
    /* a first argument of only digits followed by paths is the new number of copies */
    if (c->argc >= 2 && c->argv[0][0] && strspn(c->argv[0], "0123456789") == strlen(c->argv[0])) {
        if (parse_copies(c->argv[0], &r.n)) {
            cli_err("copies: the number of copies must be 0 (inherit) to %d, not %s",
                    CAIRN_COPIES_MAX, c->argv[0]);
            return CLI_USAGE;
        }
        r.set = 1;
        first = 1;
    }
    if (first >= c->argc) {
        cli_err("usage: cairn copies [-r] [-v] [--json] [N] PATH...");
        return CLI_USAGE;
    }
    if (c->json) {
        json_init(&r.j, stdout);
        json_obj_begin(&r.j, NULL);
        if (r.set)
            json_u64(&r.j, "set", r.n);
        else
            json_null(&r.j, "set");
        json_bool(&r.j, "recursive", c->recursive);
        json_arr_begin(&r.j, "paths");
    }
    for (int i = first; i < c->argc; i++)
        copies_path(&r, c->argv[i]);
    if (c->json) {
        json_arr_end(&r.j);
        json_u64(&r.j, "errors", r.errors);
        json_obj_end(&r.j);
        json_finish(&r.j);
    }
    return r.errors ? CLI_FAIL : CLI_OK;
}
