/* cmd_du.c - `cairn du [-b] PATH...`: the bytes, files and directories below each path, answered
 * at once from the totals the meta service keeps for every directory (meta/mstore_rstat.c),
 * read as the virtual xattrs CAIRN_DIR_XATTR_PREFIX "rbytes" / "rfiles" / "rsubdirs" of the
 * directory's inode (MSG_GETXATTR; three requests, so a tree changing meanwhile may give
 * figures from slightly different moments). A path that is not a directory counts as itself:
 * its size, one file, no directory. The byte figure is what `du -sb` prints for the path when
 * every hard link of a file below it is below it too (see cairn(1)). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_meta.h"
#include "json_out.h"

struct du_total {
    uint64_t ino;
    int is_dir;
    uint64_t bytes, files, dirs;
};

/* The attributes of ino from the meta service. */
static int du_getattr(struct cli_meta *m, uint64_t ino, struct cairn_attr *a, char *why, size_t len)
{
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_u64(&req, ino);
    struct rpc_reply rep;
    int rc = cli_meta_call(m, MSG_GETATTR, &req, &rep);
    wbuf_free(&req);
    if (rc) {
        snprintf(why, len, "%s", cli_meta_why(m));
        return rc;
    }
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    proto_get_attr(&c, a);
    rc = rcur_done(&c);
    rpc_reply_free(&rep);
    if (rc) snprintf(why, len, "%s", cli_strerror(-EBADMSG));
    return rc ? -EBADMSG : 0;
}

/* One total (field "rbytes"...) of directory ino. */
static int du_field(struct cli_meta *m, uint64_t ino, const char *field, uint64_t *v, char *why,
                    size_t len)
{
    char name[64];
    snprintf(name, sizeof(name), "%s%s", CAIRN_DIR_XATTR_PREFIX, field);
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_u64(&req, ino);
    wbuf_put_str(&req, name, strlen(name));
    struct rpc_reply rep;
    int rc = cli_meta_call(m, MSG_GETXATTR, &req, &rep);
    wbuf_free(&req);
    if (rc == -ENODATA) {
        snprintf(why, len,
                 "the meta service keeps no directory totals (it is older than this "
                 "cairn)");
        return rc;
    }
    if (rc) {
        snprintf(why, len, "%s", cli_meta_why(m));
        return rc;
    }
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    size_t n = 0;
    const uint8_t *p = rcur_bytes(&c, 32, &n);
    char text[32];
    rc = c.err || rcur_done(&c) || n == 0 || n >= sizeof(text) ? -EBADMSG : 0;
    if (!rc) {
        memcpy(text, p, n);
        text[n] = '\0';
        char *end;
        errno = 0;
        *v = strtoull(text, &end, 10);
        if (*end || errno || text[0] < '0' || text[0] > '9') rc = -EBADMSG;
    }
    rpc_reply_free(&rep);
    if (rc) snprintf(why, len, "%s", cli_strerror(rc));
    return rc;
}

static int du_fetch(const struct cli *c, const char *path, struct du_total *t, char *why,
                    size_t len)
{
    struct stat st;
    struct cli_meta *m;
    memset(t, 0, sizeof(*t));
    int rc = cli_meta_for_path(c, path, &st, &m, why, len);
    if (rc) return rc;
    struct cairn_attr a;
    rc = du_getattr(m, (uint64_t)st.st_ino, &a, why, len);
    if (!rc) rc = cli_meta_check_type(m, a.mode, st.st_mode, why, len);
    if (rc) return rc;
    t->ino = a.ino;
    t->is_dir = S_ISDIR(a.mode);
    if (!t->is_dir) {
        t->bytes = a.size;
        t->files = 1;
        return 0;
    }
    rc = du_field(m, t->ino, "rbytes", &t->bytes, why, len);
    if (!rc) rc = du_field(m, t->ino, "rfiles", &t->files, why, len);
    if (!rc) rc = du_field(m, t->ino, "rsubdirs", &t->dirs, why, len);
    return rc;
}

static void du_print(const struct cli *c, const char *path, const struct du_total *t)
{
    char size[32];
    if (c->bytes)
        snprintf(size, sizeof(size), "%" PRIu64, t->bytes);
    else
        cli_size(t->bytes, size, sizeof(size));
    printf("%-12s %10" PRIu64 " file%s %8" PRIu64 " dir%s  %s\n", size, t->files,
           t->files == 1 ? " " : "s", t->dirs, t->dirs == 1 ? " " : "s", path);
}

static int du_one(const struct cli *c, const char *path, struct json *j, char *why, size_t len)
{
    struct du_total t;
    int rc = du_fetch(c, path, &t, why, len);
    if (rc) return rc;
    if (!j) {
        du_print(c, path, &t);
        return 0;
    }
    json_obj_begin(j, NULL);
    json_str(j, "path", path);
    json_u64(j, "ino", t.ino);
    json_str(j, "type", t.is_dir ? "dir" : "file");
    json_u64(j, "bytes", t.bytes);
    json_u64(j, "files", t.files);
    json_u64(j, "dirs", t.dirs);
    json_obj_end(j);
    return 0;
}

int cmd_du(const struct cli *c)
{
    return cli_for_each_path(c, "du", "paths", du_one);
}
