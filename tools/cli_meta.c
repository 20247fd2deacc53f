/* cli_meta.c - the cairn command's side of the meta service: which address to use (option,
 * environment, the mount's user.cairn.meta xattr, default), whether a path is on a CairnFS
 * mount, and bounded request/reply calls over rpc.h (see cli_meta.h). */
#include "cli_meta.h"

#include <ctype.h>
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "net.h"

#define CONNECT_MS 2000    /* one connect attempt */
#define CONNECT_ATTEMPTS 2 /* per address and call */
#define SUBMIT_MS 5000     /* bound of getting a request out to one address */
#define REPLY_MS 10000     /* bound of waiting for a reply */
#define MAX_LISTS 8        /* address lists with a connection */

struct cli_meta {
    char addrs[CLI_ADDRS_LEN];
    int n; /* addresses in the list */
    char addr[CLI_ADDRS_MAX][CAIRN_ADDR_MAX + 1];
    struct rpc_conn *conn[CLI_ADDRS_MAX]; /* created at first use */
    int cur;                              /* the address that answered last */
    int unreachable;                      /* no address answered: fail at once from now on */
    char why[CLI_ADDRS_LEN + 200];
};

static struct cli_meta *lists[MAX_LISTS];

/* ---- finding the address ----------------------------------------------------------------- */

/* Copy a user-supplied address list (trimmed) into out; 0, or -EINVAL when empty. */
static int take_list(const char *s, char *out, size_t len)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= len) return -EINVAL;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* The user.cairn.meta xattr of path into out; 0 or -errno. */
static int xattr_addr(const char *path, char *out, size_t len)
{
    char buf[CLI_ADDRS_LEN];
    ssize_t n = getxattr(path, CLI_META_XATTR, buf, sizeof(buf) - 1);
    if (n < 0) return -errno;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] != '\n' && !isprint((unsigned char)buf[i])) return -EBADMSG;
    return take_list(buf, out, len);
}

/* --meta, then CAIRN_META; 0 when one of them gave the list. */
static int explicit_addr(const struct cli *c, char *out, size_t len)
{
    if (c->meta && take_list(c->meta, out, len) == 0) return 0;
    const char *env = getenv("CAIRN_META");
    if (env && take_list(env, out, len) == 0) return 0;
    return -ENOENT;
}

int cli_meta_addr_for_path(const struct cli *c, const char *path, char *out, size_t len)
{
    if (explicit_addr(c, out, len) == 0) return 0;
    if (xattr_addr(path, out, len) == 0) return 0;
    snprintf(out, len, "%s", CLI_META_DEFAULT);
    return 1;
}

void cli_meta_addr_default(const struct cli *c, char *out, size_t len)
{
    if (explicit_addr(c, out, len) == 0) return;
    FILE *f = setmntent("/proc/self/mounts", "r");
    if (f) {
        struct mntent *m;
        int found = 0;
        for (int i = 0; i < 100000 && !found && (m = getmntent(f)) != NULL; i++)
            if (strcmp(m->mnt_type, "fuse.cairn") == 0)
                found = xattr_addr(m->mnt_dir, out, len) == 0;
        endmntent(f);
        if (found) return;
    }
    snprintf(out, len, "%s", CLI_META_DEFAULT);
}

int cli_on_cairn_mount(const struct stat *st)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return -errno;
    char line[4096];
    int rc = -EXDEV;
    /* id parent major:minor root mountpoint options [optional...] - fstype source super */
    for (int i = 0; i < 100000 && rc == -EXDEV && fgets(line, sizeof(line), f); i++) {
        unsigned ma, mi;
        if (sscanf(line, "%*s %*s %u:%u", &ma, &mi) != 2) continue;
        if (ma != major(st->st_dev) || mi != minor(st->st_dev)) continue;
        const char *sep = strstr(line, " - ");
        char fstype[64];
        if (sep && sscanf(sep + 3, "%63s", fstype) == 1 && strcmp(fstype, "fuse.cairn") == 0)
            rc = 0;
    }
    fclose(f);
    return rc;
}

int cli_meta_for_path(const struct cli *c, const char *path, struct stat *st, struct cli_meta **m,
                      char *why, size_t len)
{
    if (stat(path, st) != 0) {
        int e = errno;
        snprintf(why, len, "%s", strerror(e));
        return -e;
    }
    int rc = cli_on_cairn_mount(st);
    if (rc) {
        snprintf(why, len, "%s", rc == -EXDEV ? "not on a CairnFS mount" : strerror(-rc));
        return rc;
    }
    char addrs[CLI_ADDRS_LEN];
    static int warned;
    if (cli_meta_addr_for_path(c, path, addrs, sizeof(addrs)) && !warned++)
        cli_err("note: the mount of %s does not name its meta service (no %s xattr): using "
                "%s; give --meta ADDR if that is another cluster",
                path, CLI_META_XATTR, addrs);
    *m = cli_meta_get(addrs);
    if (!*m) {
        snprintf(why, len, "bad meta service address list '%s'", addrs);
        return -EINVAL;
    }
    return 0;
}

int cli_meta_check_type(const struct cli_meta *m, uint32_t meta_mode, mode_t st_mode, char *why,
                        size_t len)
{
    if ((meta_mode & S_IFMT) == ((uint32_t)st_mode & S_IFMT)) return 0;
    snprintf(why, len, "the meta service at %s describes another inode (wrong --meta?)", m->addrs);
    return -ESTALE;
}

/* ---- connections ------------------------------------------------------------------------- */

static struct cli_meta *meta_new(const char *addrs)
{
    struct cli_meta *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    snprintf(m->addrs, sizeof(m->addrs), "%s", addrs);
    char tmp[CLI_ADDRS_LEN], *save = NULL;
    snprintf(tmp, sizeof(tmp), "%s", addrs);
    for (char *t = strtok_r(tmp, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (m->n == CLI_ADDRS_MAX || strlen(t) > CAIRN_ADDR_MAX) {
            free(m);
            return NULL;
        }
        snprintf(m->addr[m->n++], CAIRN_ADDR_MAX + 1, "%s", t);
    }
    if (m->n == 0) {
        free(m);
        return NULL;
    }
    return m;
}

struct cli_meta *cli_meta_get(const char *addrs)
{
    int i;
    for (i = 0; i < MAX_LISTS && lists[i]; i++)
        if (strcmp(lists[i]->addrs, addrs) == 0) return lists[i];
    if (i == MAX_LISTS) return NULL; /* more clusters than one command line plausibly names */
    lists[i] = meta_new(addrs);
    return lists[i];
}

/* One attempt on address k: 0 with *rep, or a transport error (negative). */
static int call_one(struct cli_meta *m, int k, uint16_t type, const struct wbuf *req,
                    struct rpc_reply *rep)
{
    if (!m->conn[k]) {
        struct rpc_opts o = {.connect_timeout_ms = CONNECT_MS,
                             .call_timeout_ms = REPLY_MS,
                             .backoff_min_ms = 100,
                             .backoff_max_ms = 500,
                             .connect_attempts = CONNECT_ATTEMPTS};
        m->conn[k] = rpc_conn_new(m->addr[k], &o);
        if (!m->conn[k]) return -ENOMEM;
    }
    struct rpc_call *call;
    int rc = rpc_submit(m->conn[k], type, req ? req->data : NULL, req ? req->len : 0, NULL, 0,
                        net_now_ms() + SUBMIT_MS, &call);
    if (rc) return rc;
    return rpc_wait(call, net_now_ms() + REPLY_MS, rep);
}

int cli_meta_call(struct cli_meta *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep)
{
    memset(rep, 0, sizeof(*rep));
    wbuf_init(&rep->payload);
    if (req && req->err) {
        snprintf(m->why, sizeof(m->why), "%s", strerror(ENOMEM));
        return req->err;
    }
    if (m->unreachable) return -EHOSTUNREACH; /* m->why still says why */
    int rc = 0;
    for (int t = 0; t < m->n; t++) {
        int k = (m->cur + t) % m->n;
        rc = call_one(m, k, type, req, rep);
        if (rc == -ENOMEM) break;
        if (rc == 0) {
            m->cur = k;
            if (rep->status >= 0) return 0;
            rc = rep->status;
            rpc_reply_free(rep);
            snprintf(m->why, sizeof(m->why), "%s", cli_strerror(rc));
            return rc;
        }
    }
    if (rc == -ENOMEM) {
        snprintf(m->why, sizeof(m->why), "%s", strerror(ENOMEM));
        return rc;
    }
    wbuf_init(&rep->payload);
    m->unreachable = 1;
    snprintf(m->why, sizeof(m->why), "cannot reach the meta service at %s: %s", m->addrs,
             strerror(-rc));
    return rc;
}

int cli_meta_unreachable(const struct cli_meta *m)
{
    return m->unreachable;
}

const char *cli_meta_why(const struct cli_meta *m)
{
    return m->why;
}

void cli_meta_close_all(void)
{
    for (int i = 0; i < MAX_LISTS && lists[i]; i++) {
        for (int k = 0; k < lists[i]->n; k++)
            if (lists[i]->conn[k]) rpc_conn_free(lists[i]->conn[k]);
        free(lists[i]);
        lists[i] = NULL;
    }
}
