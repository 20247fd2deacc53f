/* test_meta_daemon.c - cairn-meta as a real process, driven through the wire protocol exactly as
 * a client and chunk servers would (rpc.h, payloads of proto.h): every namespace operation and
 * its error cases, a resumable readdir cookie over 2000 entries, xattrs, statfs, write leases,
 * chunk locations and commits with a real cairn-chunk, durability of every acknowledged change
 * across kill -9, malformed frames that close only their own connection, unknown request types
 * answered with -EOPNOTSUPP, new chunks spread over three registered chunk servers, and the
 * snapshot messages (MSG_SNAP_OPEN / MSG_SNAP_READ): a copy of the store read back in pieces
 * that decompresses to a store at the index asked for, and every bad request answered with
 * its error while the daemon goes on serving.
 *
 * Each test runs in its own Check test case. The cluster record lives in shared memory and the
 * runner is a child subreaper, so when a test fails (Check _exits the test process) the
 * parent-side teardown still kills and reaps, by PID, the daemons that test started. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cksum.h"
#include "codec.h"
#include "harness.h"
#include "harness_meta.h"
#include "net.h"
#include "proto.h"
#include "rpc.h"
#include "wire.h"

#define XATTR_CREATE_F 1u
#define XATTR_REPLACE_F 2u
#define TEST_TIMEOUT_S 90

static struct h_cluster *C; /* shared with the parent (see main) */
static struct rpc_conn *M;  /* the test's client connection to cairn-meta */

/* --- process plumbing -------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start_meta(const char *tag)
{
    ck_assert_int_eq(h_meta_start(C, tag), 0);
    M = hm_connect(C->meta_addr);
}

static int count_registered(void)
{
    char path[320], line[512];
    snprintf(path, sizeof(path), "%s/meta.log", C->dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "chunk server") && strstr(line, "registered")) n++;
    fclose(f);
    return n;
}

/* Wait (at most 10 s) until meta.log shows at least n registrations in total. */
static void wait_registered(int n)
{
    uint64_t end = net_now_ms() + 10000;
    while (count_registered() < n) {
        if (net_now_ms() > end)
            ck_abort_msg("only %d of %d chunk server registrations", count_registered(), n);
        sleep_ms(50);
    }
}

static void kill9_meta(void)
{
    pid_t pid = C->meta_pid;
    C->meta_pid = 0; /* never kill a reaped pid again */
    int st = h_kill_wait(pid, SIGKILL, 5000);
    ck_assert_int_ge(st, 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void stop_all(void)
{
    if (M) rpc_conn_free(M);
    M = NULL;
    h_cluster_stop(C);
}

/* Runs in the runner after each test case: whatever a failed test left behind is killed and
 * reaped by PID (the runner is a subreaper, so orphaned daemons are its children). */
static void reap_leftovers(void)
{
    int left = C->meta_pid > 0;
    for (int i = 0; i < H_MAX_CS; i++)
        left |= C->cs_pid[i] > 0;
    if (left && C->dir[0]) {
        fprintf(stderr, "--- test left daemons running; tail of %s/meta.log:\n", C->dir);
        h_sh(10, "tail -n 30 '%s/meta.log' 1>&2", C->dir);
    }
    for (int i = 0; i < H_MAX_CS; i++)
        if (C->cs_pid[i] > 0) h_kill_wait(C->cs_pid[i], SIGKILL, 5000);
    if (C->meta_pid > 0) h_kill_wait(C->meta_pid, SIGKILL, 5000);
    if (C->dir[0] && !getenv("KEEP")) h_sh(60, "rm -rf '%s'", C->dir);
    memset(C, 0, sizeof(*C));
}

/* --- requests ------------------------------------------------------------------------------ */

/* A request on M (hm_call): the status, the reply payload left in *rep (or dropped if NULL). */
static int call(uint16_t type, struct wbuf *b, struct rpc_reply *rep)
{
    return hm_call(M, type, b, rep);
}

static void put_name(struct wbuf *b, const char *name)
{
    wbuf_put_str(b, name, strlen(name));
}

static uint64_t session_open(const char *who)
{
    struct wbuf b;
    wbuf_init(&b);
    put_name(&b, who);
    wbuf_put_u64(&b, 0);
    struct rpc_reply rep;
    ck_assert_int_eq(call(MSG_SESSION_OPEN, &b, &rep), 0);
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    uint64_t sid = rcur_u64(&r), csz = rcur_u64(&r);
    uint32_t tmo = rcur_u32(&r);
    ck_assert_int_eq(rcur_done(&r), 0);
    ck_assert(sid != 0);
    ck_assert(csz == CAIRN_DEFAULT_CHUNK_SIZE);
    ck_assert_uint_eq(tmo, 10); /* the harness runs meta with --session_timeout=10 */
    rpc_reply_free(&rep);
    return sid;
}

static int m_session_keepalive(uint64_t sid)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, sid);
    return call(MSG_SESSION_KEEPALIVE, &b, NULL);
}

static int m_lookup(uint64_t parent, const char *name, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    return hm_call_attr(M, MSG_LOOKUP, &b, a);
}

static int m_getattr(uint64_t ino, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    return hm_call_attr(M, MSG_GETATTR, &b, a);
}

static int m_setattr(uint64_t ino, uint32_t valid, uint32_t mode, uint64_t size,
                     struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u32(&b, valid);
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, 0);
    wbuf_put_u32(&b, 0);
    wbuf_put_u64(&b, size);
    wbuf_put_i64(&b, 0);
    wbuf_put_u32(&b, 0);
    wbuf_put_i64(&b, 0);
    wbuf_put_u32(&b, 0);
    return hm_call_attr(M, MSG_SETATTR, &b, a);
}

static void enc_mknod(struct wbuf *b, uint64_t parent, const char *name, uint32_t mode)
{
    wbuf_put_u64(b, parent);
    put_name(b, name);
    wbuf_put_u32(b, mode);
    wbuf_put_u64(b, 0);
    wbuf_put_u32(b, 0);
    wbuf_put_u32(b, 0);
}

static int m_mknod(uint64_t parent, const char *name, uint32_t mode, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    enc_mknod(&b, parent, name, mode);
    return hm_call_attr(M, MSG_MKNOD, &b, a);
}

static int m_mkdir(uint64_t parent, const char *name, uint32_t mode, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, 1000);
    wbuf_put_u32(&b, 1000);
    return hm_call_attr(M, MSG_MKDIR, &b, a);
}

static int m_create(uint64_t parent, const char *name, uint32_t mode, uint32_t flags,
                    uint64_t session, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, 1000);
    wbuf_put_u32(&b, 1000);
    wbuf_put_u32(&b, flags);
    wbuf_put_u64(&b, session);
    return hm_call_attr(M, MSG_CREATE, &b, a);
}

static int m_symlink(uint64_t parent, const char *name, const char *target, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    put_name(&b, target);
    wbuf_put_u32(&b, 0);
    wbuf_put_u32(&b, 0);
    return hm_call_attr(M, MSG_SYMLINK, &b, a);
}

static int m_readlink(uint64_t ino, char *out, size_t outlen)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    struct rpc_reply rep;
    int rc = call(MSG_READLINK, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    char t[CAIRN_PATH_MAX + 1];
    int n = rcur_str(&r, t, CAIRN_PATH_MAX);
    ck_assert_int_eq(rcur_done(&r), 0);
    ck_assert_int_ge(n, 0);
    snprintf(out, outlen, "%s", t);
    rpc_reply_free(&rep);
    return 0;
}

static int m_link(uint64_t ino, uint64_t newparent, const char *newname, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, newparent);
    put_name(&b, newname);
    return hm_call_attr(M, MSG_LINK, &b, a);
}

static int m_rename(uint64_t p, const char *n, uint64_t np, const char *nn, uint32_t flags)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, p);
    put_name(&b, n);
    wbuf_put_u64(&b, np);
    put_name(&b, nn);
    wbuf_put_u32(&b, flags);
    return call(MSG_RENAME, &b, NULL);
}

static int m_remove(uint16_t type, uint64_t parent, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    return call(type, &b, NULL);
}

static int m_setxattr(uint64_t ino, const char *name, const void *v, size_t vl, uint32_t flags)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    put_name(&b, name);
    wbuf_put_bytes(&b, v, vl);
    wbuf_put_u32(&b, flags);
    return call(MSG_SETXATTR, &b, NULL);
}

/* GETXATTR (name != NULL) or LISTXATTR (name == NULL): the value/list into out. */
static int m_getxattr(uint64_t ino, const char *name, char *out, size_t outlen, size_t *len)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    if (name) put_name(&b, name);
    struct rpc_reply rep;
    int rc = call(name ? MSG_GETXATTR : MSG_LISTXATTR, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    const uint8_t *p = rcur_bytes(&r, outlen, len);
    ck_assert_int_eq(rcur_done(&r), 0);
    if (*len) memcpy(out, p, *len);
    rpc_reply_free(&rep);
    return 0;
}

static int m_removexattr(uint64_t ino, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    put_name(&b, name);
    return call(MSG_REMOVEXATTR, &b, NULL);
}

static int m_lease(uint64_t ino, uint64_t index, uint64_t session, struct chunk_info *ci)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, index);
    wbuf_put_u64(&b, session);
    return hm_call_chunk_info(M, MSG_CHUNK_LEASE, &b, ci);
}

static int m_locate(uint64_t ino, uint64_t first, uint32_t count, struct chunk_info *ci,
                    uint32_t maxn, uint32_t *n)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, first);
    wbuf_put_u32(&b, count);
    struct rpc_reply rep;
    int rc = call(MSG_CHUNK_LOCATE, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    *n = rcur_u32(&r);
    ck_assert_uint_le(*n, maxn);
    for (uint32_t i = 0; i < *n; i++)
        proto_get_chunk_info(&r, &ci[i]);
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
    return 0;
}

static int m_commit(uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t flags,
                    struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, size);
    wbuf_put_i64(&b, mtime_s);
    wbuf_put_u32(&b, 0);
    wbuf_put_u32(&b, flags);
    return hm_call_attr(M, MSG_COMMIT, &b, a);
}

struct statfs_reply {
    uint64_t total, free_bytes, total_inodes, free_inodes;
    uint32_t bsize, name_max;
};

static int m_statfs(struct statfs_reply *s)
{
    struct wbuf b;
    wbuf_init(&b);
    struct rpc_reply rep;
    int rc = call(MSG_STATFS, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    s->total = rcur_u64(&r);
    s->free_bytes = rcur_u64(&r);
    s->total_inodes = rcur_u64(&r);
    s->free_inodes = rcur_u64(&r);
    s->bsize = rcur_u32(&r);
    s->name_max = rcur_u32(&r);
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
    return 0;
}

/* One READDIR page. Calls fn for each entry; returns the status, *count, *eof, *last_cookie. */
typedef void (*rd_fn)(void *arg, uint64_t ino, uint32_t mode, const char *name,
                      const struct cairn_attr *a);

static int m_readdir(uint64_t ino, uint64_t cookie, uint32_t max, int plus, rd_fn fn, void *arg,
                     uint32_t *count, int *eof, uint64_t *last_cookie)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, cookie);
    wbuf_put_u32(&b, max);
    wbuf_put_u8(&b, (uint8_t)plus);
    struct rpc_reply rep;
    int rc = call(MSG_READDIR, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    *count = rcur_u32(&r);
    *last_cookie = cookie;
    for (uint32_t i = 0; i < *count && !r.err; i++) {
        uint64_t eino = rcur_u64(&r);
        uint32_t mode = rcur_u32(&r);
        char name[CAIRN_NAME_MAX + 1];
        rcur_str(&r, name, CAIRN_NAME_MAX);
        uint64_t next = rcur_u64(&r);
        struct cairn_attr a;
        memset(&a, 0, sizeof(a));
        if (plus) proto_get_attr(&r, &a);
        if (r.err) break;
        ck_assert_msg(next != 0, "entry %s has cookie_next 0", name);
        *last_cookie = next;
        if (fn) fn(arg, eino, mode, name, plus ? &a : NULL);
    }
    *eof = rcur_u8(&r);
    ck_assert_msg(rcur_done(&r) == 0, "READDIR reply does not decode");
    rpc_reply_free(&rep);
    return 0;
}

/* Collect every name of a directory (pages of page entries) into a flat list. */
struct name_list {
    char (*names)[CAIRN_NAME_MAX + 1];
    uint64_t *inos;
    uint32_t n, cap;
};

static void nl_add(void *arg, uint64_t ino, uint32_t mode, const char *name,
                   const struct cairn_attr *a)
{
    (void)mode;
    (void)a;
    struct name_list *l = arg;
    ck_assert_uint_lt(l->n, l->cap);
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
    l->inos[l->n] = ino;
    l->n++;
}

static void nl_init(struct name_list *l, uint32_t cap)
{
    l->names = calloc(cap, sizeof(*l->names));
    l->inos = calloc(cap, sizeof(*l->inos));
    ck_assert(l->names && l->inos);
    l->n = 0;
    l->cap = cap;
}

static void nl_free(struct name_list *l)
{
    free(l->names);
    free(l->inos);
    memset(l, 0, sizeof(*l));
}

static void list_dir(uint64_t ino, uint32_t page, struct name_list *l)
{
    uint64_t cookie = 0;
    for (int pages = 0; pages < 10000; pages++) {
        uint32_t count;
        int eof;
        uint64_t next;
        ck_assert_int_eq(m_readdir(ino, cookie, page, 0, nl_add, l, &count, &eof, &next), 0);
        ck_assert_uint_le(count, page);
        if (eof) return;
        ck_assert_msg(count > 0, "readdir page empty but not eof");
        cookie = next;
    }
    ck_abort_msg("readdir never reached eof");
}

static int nl_find(const struct name_list *l, const char *name)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name)) return (int)i;
    return -1;
}

/* --- raw sockets for malformed frames ---------------------------------------------------- */

static int raw_connect(void)
{
    int fd = net_connect(C->meta_addr, 2000);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    struct iovec iov = {(void *)p, n};
    ck_assert_int_eq(wire_write_full(fd, &iov, 1), 0);
}

static void raw_frame(int fd, uint16_t type, uint64_t reqid, const void *p, size_t n)
{
    struct wire_hdr h = {.type = type, .reqid = reqid};
    ck_assert_int_eq(wire_send(fd, &h, p, n, NULL, 0), 0);
}

/* The server closes fd within 5 s (EOF or reset); anything it sent first is ignored. */
static int closed_by_server(int fd)
{
    uint64_t end = net_now_ms() + 5000;
    char buf[512];
    while (net_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 200);
        if (n <= 0) continue;
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno == ECONNRESET)) return 1;
    }
    return 0;
}

/* Read one reply frame from a raw socket (bounded by a 5 s receive timeout). */
static int raw_reply(int fd, struct wire_hdr *h, struct wbuf *payload)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return wire_recv(fd, h, payload, WIRE_MAX_PAYLOAD);
}

/* The other client connection still gets answers and the daemon is alive. */
static void meta_still_serves(const char *after)
{
    struct cairn_attr a;
    int grc = m_getattr(CAIRN_ROOT_INO, &a);
    ck_assert_msg(grc == 0, "no answer after %s: %d", after, grc);
    ck_assert(S_ISDIR(a.mode));
    ck_assert_msg(h_alive(C->meta_pid), "cairn-meta died after %s", after);
}

/* ===================================================================================== */

START_TEST(test_namespace_operations)
{
    start_meta("metad-ns");
    uint64_t sid = session_open("test-ns");
    ck_assert_int_eq(m_session_keepalive(sid), 0);
    ck_assert_int_eq(m_session_keepalive(sid + 1000), -ENOENT);

    struct cairn_attr root, d, f, a;
    ck_assert_int_eq(m_getattr(CAIRN_ROOT_INO, &root), 0);
    ck_assert(S_ISDIR(root.mode));
    ck_assert(root.ino == CAIRN_ROOT_INO);

    /* MKDIR, CREATE, LOOKUP, GETATTR */
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, "dir", 0755, &d), 0);
    ck_assert(S_ISDIR(d.mode));
    ck_assert_uint_eq(d.mode & 07777, 0755);
    ck_assert_uint_eq(d.uid, 1000);
    ck_assert_uint_eq(d.nlink, 2);
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, "dir", 0755, NULL), -EEXIST);
    ck_assert_int_eq(m_create(d.ino, "file", 0640, O_EXCL, sid, &f), 0);
    ck_assert(S_ISREG(f.mode));
    ck_assert_uint_eq(f.mode & 07777, 0640);
    ck_assert(f.size == 0 && f.nlink == 1);
    ck_assert(f.ino != d.ino && f.ino > CAIRN_ROOT_INO);
    ck_assert_int_eq(m_create(d.ino, "file", 0640, O_EXCL, sid, NULL), -EEXIST);
    ck_assert_int_eq(m_create(d.ino, "file", 0640, 0, sid, &a), 0); /* opens the existing one */
    ck_assert(a.ino == f.ino);
    ck_assert_int_eq(m_create(CAIRN_ROOT_INO, "dir", 0640, 0, sid, NULL), -EISDIR);
    ck_assert_int_eq(m_create(f.ino, "x", 0640, 0, sid, NULL), -ENOTDIR);
    ck_assert_int_eq(m_lookup(d.ino, "file", &a), 0);
    ck_assert(a.ino == f.ino && a.gen == f.gen);
    ck_assert_int_eq(m_lookup(d.ino, "nofile", NULL), -ENOENT);
    ck_assert_int_eq(m_lookup(f.ino, "x", NULL), -ENOTDIR);
    ck_assert_int_eq(m_getattr(f.ino, &a), 0);
    ck_assert(a.ino == f.ino && a.mode == f.mode);
    ck_assert_int_eq(m_getattr(999999, NULL), -ENOENT);
    ck_assert_int_eq(m_getattr(d.ino, &a), 0);
    ck_assert_uint_eq(a.nlink, 2);
    ck_assert_int_eq(m_getattr(CAIRN_ROOT_INO, &a), 0);
    ck_assert_uint_eq(a.nlink, root.nlink + 1); /* the new subdirectory's ".." */

    /* SETATTR: chmod, then truncate up and down */
    ck_assert_int_eq(m_setattr(f.ino, SETATTR_MODE, 0600, 0, &a), 0);
    ck_assert_uint_eq(a.mode, S_IFREG | 0600);
    ck_assert_int_eq(m_setattr(f.ino, SETATTR_SIZE, 0, 123456, &a), 0);
    ck_assert(a.size == 123456);
    ck_assert_uint_eq(a.mode, S_IFREG | 0600);
    ck_assert_int_eq(m_getattr(f.ino, &a), 0);
    ck_assert(a.size == 123456);
    ck_assert_int_eq(m_setattr(f.ino, SETATTR_SIZE, 0, 10, &a), 0);
    ck_assert(a.size == 10);
    ck_assert_int_eq(m_setattr(d.ino, SETATTR_SIZE, 0, 10, NULL), -EISDIR);
    ck_assert_int_eq(m_setattr(999999, SETATTR_MODE, 0600, 0, NULL), -ENOENT);

    /* SYMLINK / READLINK */
    struct cairn_attr s;
    ck_assert_int_eq(m_symlink(d.ino, "sym", "../some/where", &s), 0);
    ck_assert(S_ISLNK(s.mode));
    ck_assert(s.size == strlen("../some/where"));
    char tgt[CAIRN_PATH_MAX + 1];
    ck_assert_int_eq(m_readlink(s.ino, tgt, sizeof(tgt)), 0);
    ck_assert_str_eq(tgt, "../some/where");
    ck_assert_int_eq(m_readlink(f.ino, tgt, sizeof(tgt)), -EINVAL);
    ck_assert_int_eq(m_symlink(d.ino, "sym", "x", NULL), -EEXIST);
    char longpath[CAIRN_PATH_MAX + 2];
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    ck_assert_int_eq(m_symlink(d.ino, "longsym", longpath, NULL), -ENAMETOOLONG);
    longpath[CAIRN_PATH_MAX] = '\0';
    ck_assert_int_eq(m_symlink(d.ino, "maxsym", longpath, &a), 0);
    ck_assert_int_eq(m_readlink(a.ino, tgt, sizeof(tgt)), 0);
    ck_assert_uint_eq(strlen(tgt), CAIRN_PATH_MAX);

    /* LINK */
    ck_assert_int_eq(m_link(f.ino, CAIRN_ROOT_INO, "hard", &a), 0);
    ck_assert(a.ino == f.ino);
    ck_assert_uint_eq(a.nlink, 2);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "hard", &a), 0);
    ck_assert(a.ino == f.ino && a.nlink == 2);
    ck_assert_int_eq(m_link(f.ino, CAIRN_ROOT_INO, "hard", NULL), -EEXIST);
    ck_assert_int_eq(m_link(d.ino, CAIRN_ROOT_INO, "dirlink", NULL), -EPERM);
    ck_assert_int_eq(m_link(f.ino, f.ino, "x", NULL), -ENOTDIR);

    /* RENAME: plain, NOREPLACE, EXCHANGE, replace, into own subtree */
    struct cairn_attr g, sub, subsub;
    ck_assert_int_eq(m_create(d.ino, "g", 0644, O_EXCL, sid, &g), 0);
    ck_assert_int_eq(m_rename(d.ino, "g", CAIRN_ROOT_INO, "g2", 0), 0);
    ck_assert_int_eq(m_lookup(d.ino, "g", NULL), -ENOENT);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "g2", &a), 0);
    ck_assert(a.ino == g.ino);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "g2", CAIRN_ROOT_INO, "hard", PROTO_RENAME_NOREPLACE),
                     -EEXIST);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "g2", &a), 0); /* nothing moved */
    ck_assert(a.ino == g.ino);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "hard", &a), 0);
    ck_assert(a.ino == f.ino);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "g2", d.ino, "file", PROTO_RENAME_EXCHANGE), 0);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "g2", &a), 0);
    ck_assert(a.ino == f.ino);
    ck_assert_int_eq(m_lookup(d.ino, "file", &a), 0);
    ck_assert(a.ino == g.ino);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "g2", d.ino, "absent", PROTO_RENAME_EXCHANGE),
                     -ENOENT);
    ck_assert_int_eq(m_rename(d.ino, "absent", d.ino, "x", 0), -ENOENT);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "g2", d.ino, "x", 3), -EINVAL);
    ck_assert_int_eq(m_mkdir(d.ino, "sub", 0755, &sub), 0);
    ck_assert_int_eq(m_mkdir(sub.ino, "subsub", 0755, &subsub), 0);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "dir", sub.ino, "loop", 0), -EINVAL);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "dir", subsub.ino, "loop", 0), -EINVAL);
    ck_assert_int_eq(m_rename(d.ino, "sub", sub.ino, "self", 0), -EINVAL);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "dir", &a), 0);
    ck_assert(a.ino == d.ino);
    /* replacing an existing file drops the old target */
    ck_assert_int_eq(m_rename(d.ino, "file", CAIRN_ROOT_INO, "g2", 0), 0);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "g2", &a), 0);
    ck_assert(a.ino == g.ino);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "hard", &a), 0);
    ck_assert(a.ino == f.ino && a.nlink == 1);
    /* a directory over a file / a file over a non-empty directory */
    ck_assert_int_eq(m_rename(d.ino, "sub", CAIRN_ROOT_INO, "g2", 0), -ENOTDIR);
    ck_assert_int_eq(m_rename(CAIRN_ROOT_INO, "g2", d.ino, "sub", 0), -EISDIR);

    /* UNLINK, RMDIR */
    ck_assert_int_eq(m_remove(MSG_RMDIR, d.ino, "sub"), -ENOTEMPTY);
    ck_assert_int_eq(m_remove(MSG_UNLINK, d.ino, "sub"), -EISDIR);
    ck_assert_int_eq(m_remove(MSG_RMDIR, CAIRN_ROOT_INO, "g2"), -ENOTDIR);
    ck_assert_int_eq(m_remove(MSG_RMDIR, sub.ino, "subsub"), 0);
    ck_assert_int_eq(m_remove(MSG_RMDIR, d.ino, "sub"), 0);
    ck_assert_int_eq(m_lookup(d.ino, "sub", NULL), -ENOENT);
    ck_assert_int_eq(m_getattr(sub.ino, NULL), -ENOENT);
    ck_assert_int_eq(m_remove(MSG_UNLINK, CAIRN_ROOT_INO, "g2"), 0);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "g2", NULL), -ENOENT);
    ck_assert_int_eq(m_remove(MSG_UNLINK, CAIRN_ROOT_INO, "g2"), -ENOENT);
    ck_assert_int_eq(m_remove(MSG_UNLINK, d.ino, "sym"), 0);
    ck_assert_int_eq(m_getattr(s.ino, NULL), -ENOENT);

    /* XATTRS */
    ck_assert_int_eq(m_setxattr(d.ino, "user.one", "v1", 2, 0), 0);
    ck_assert_int_eq(m_setxattr(d.ino, "user.one", "v1b", 3, XATTR_CREATE_F), -EEXIST);
    ck_assert_int_eq(m_setxattr(d.ino, "user.two", "v2", 2, XATTR_REPLACE_F), -ENODATA);
    ck_assert_int_eq(m_setxattr(d.ino, "user.two", "", 0, XATTR_CREATE_F), 0);
    ck_assert_int_eq(m_setxattr(d.ino, "user.one", "value-1", 7, XATTR_REPLACE_F), 0);
    char bin[300];
    for (int i = 0; i < 300; i++)
        bin[i] = (char)i;
    ck_assert_int_eq(m_setxattr(f.ino, "user.bin", bin, sizeof(bin), 0), 0);
    char v[CAIRN_XATTR_SIZE_MAX];
    size_t vl;
    ck_assert_int_eq(m_getxattr(d.ino, "user.one", v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, 7);
    ck_assert_mem_eq(v, "value-1", 7);
    ck_assert_int_eq(m_getxattr(d.ino, "user.two", v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, 0);
    ck_assert_int_eq(m_getxattr(f.ino, "user.bin", v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, sizeof(bin));
    ck_assert_mem_eq(v, bin, sizeof(bin));
    ck_assert_int_eq(m_getxattr(d.ino, "user.none", v, sizeof(v), &vl), -ENODATA);
    ck_assert_int_eq(m_getxattr(d.ino, NULL, v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, sizeof("user.one") + sizeof("user.two"));
    ck_assert(memmem(v, vl, "user.one", sizeof("user.one")) != NULL);
    ck_assert(memmem(v, vl, "user.two", sizeof("user.two")) != NULL);
    ck_assert_int_eq(m_removexattr(d.ino, "user.one"), 0);
    ck_assert_int_eq(m_removexattr(d.ino, "user.one"), -ENODATA);
    ck_assert_int_eq(m_getxattr(d.ino, "user.one", v, sizeof(v), &vl), -ENODATA);
    ck_assert_int_eq(m_getxattr(d.ino, NULL, v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, sizeof("user.two"));
    ck_assert_mem_eq(v, "user.two", sizeof("user.two"));
    char bigv[CAIRN_XATTR_SIZE_MAX + 1];
    memset(bigv, 'v', sizeof(bigv));
    ck_assert_int_eq(m_setxattr(d.ino, "user.big", bigv, sizeof(bigv), 0), -E2BIG);
    ck_assert_int_eq(m_setxattr(d.ino, "user.big", bigv, CAIRN_XATTR_SIZE_MAX, 0), 0);
    ck_assert_int_eq(m_getxattr(d.ino, "user.big", v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, CAIRN_XATTR_SIZE_MAX);
    ck_assert_int_eq(m_setxattr(999999, "user.x", "v", 1, 0), -ENOENT);

    /* STATFS */
    struct statfs_reply st = {0};
    ck_assert_int_eq(m_statfs(&st), 0);
    ck_assert_uint_eq(st.name_max, CAIRN_NAME_MAX);
    ck_assert_uint_gt(st.bsize, 0);
    ck_assert(st.total_inodes > 0 && st.free_inodes < st.total_inodes);
    ck_assert(st.free_bytes <= st.total);

    /* names: 255 bytes is fine, 256 is ENAMETOOLONG (answered, connection kept) */
    char n255[CAIRN_NAME_MAX + 2];
    memset(n255, 'n', sizeof(n255));
    n255[CAIRN_NAME_MAX] = '\0';
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, n255, 0755, &a), 0);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, n255, NULL), 0);
    n255[CAIRN_NAME_MAX] = 'n';
    n255[CAIRN_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, n255, 0755, NULL), -ENAMETOOLONG);
    ck_assert_int_eq(m_create(CAIRN_ROOT_INO, n255, 0644, 0, sid, NULL), -ENAMETOOLONG);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, n255, NULL), -ENAMETOOLONG);
    ck_assert_int_eq(m_rename(d.ino, "file", CAIRN_ROOT_INO, n255, 0), -ENAMETOOLONG);
    ck_assert_int_eq(m_link(f.ino, CAIRN_ROOT_INO, n255, NULL), -ENAMETOOLONG);
    ck_assert_int_eq(m_symlink(CAIRN_ROOT_INO, n255, "t", NULL), -ENAMETOOLONG);
    ck_assert_int_eq(m_remove(MSG_UNLINK, CAIRN_ROOT_INO, n255), -ENAMETOOLONG);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "", NULL), -EINVAL);

    /* no chunk server: a write lease cannot be placed, and nothing changes */
    struct chunk_info ci;
    int rc = m_lease(f.ino, 0, sid, &ci);
    ck_assert_msg(rc == -EIO || rc == -ENOSPC, "lease without chunk servers: %d", rc);
    uint32_t n = 99;
    ck_assert_int_eq(m_locate(f.ino, 0, 16, &ci, 1, &n), 0);
    ck_assert_uint_eq(n, 0);

    meta_still_serves("namespace operations");
    stop_all();
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

#define RD_N 2000
#define RD_PAGE 100

struct seen {
    int count[RD_N];
    uint64_t ino[RD_N];
    int other;
};

static void seen_add(void *arg, uint64_t ino, uint32_t mode, const char *name,
                     const struct cairn_attr *a)
{
    struct seen *s = arg;
    int i;
    char tail;
    if (sscanf(name, "entry-%d%c", &i, &tail) != 1 || i < 0 || i >= RD_N) {
        s->other++;
        return;
    }
    s->count[i]++;
    ck_assert_msg(ino == s->ino[i], "entry-%d: ino %" PRIu64 " != %" PRIu64, i, ino, s->ino[i]);
    ck_assert(S_ISREG(mode));
    if (a) {
        ck_assert(a->ino == ino);
        ck_assert(S_ISREG(a->mode));
    }
}

START_TEST(test_readdir_resumable_cookie)
{
    start_meta("metad-rd");
    struct cairn_attr d;
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, "big", 0755, &d), 0);
    static struct seen s;
    memset(&s, 0, sizeof(s));

    /* 2000 MKNODs, pipelined 100 at a time on the one connection */
    for (int base = 0; base < RD_N; base += 100) {
        struct rpc_call *k[100];
        for (int j = 0; j < 100; j++) {
            char name[48];
            snprintf(name, sizeof(name), "entry-%04d", base + j);
            struct wbuf b;
            wbuf_init(&b);
            enc_mknod(&b, d.ino, name, S_IFREG | 0644);
            ck_assert_int_eq(rpc_submit(M, MSG_MKNOD, b.data, b.len, NULL, 0, 0, &k[j]), 0);
            wbuf_free(&b);
        }
        for (int j = 0; j < 100; j++) {
            struct rpc_reply rep;
            ck_assert_int_eq(rpc_wait(k[j], 0, &rep), 0);
            ck_assert_int_eq(rep.status, 0);
            struct rcur r;
            rcur_init(&r, rep.payload.data, rep.payload.len);
            struct cairn_attr a;
            proto_get_attr(&r, &a);
            ck_assert_int_eq(rcur_done(&r), 0);
            s.ino[base + j] = a.ino;
            rpc_reply_free(&rep);
        }
    }

    /* pages of 100 from cookie 0: every name exactly once, then eof */
    uint64_t cookie = 0;
    int pages = 0, eof = 0;
    uint64_t cookie_after[64];
    while (!eof) {
        ck_assert_int_lt(pages, 60);
        uint32_t count;
        uint64_t next;
        ck_assert_int_eq(m_readdir(d.ino, cookie, RD_PAGE, 0, seen_add, &s, &count, &eof, &next),
                         0);
        ck_assert_uint_le(count, RD_PAGE);
        if (!eof) ck_assert_uint_eq(count, RD_PAGE);
        cookie_after[pages++] = next;
        cookie = next;
    }
    ck_assert_int_eq(s.other, 0);
    for (int i = 0; i < RD_N; i++)
        ck_assert_msg(s.count[i] == 1, "entry-%04d listed %d times", i, s.count[i]);
    ck_assert_int_ge(pages, RD_N / RD_PAGE);
    ck_assert_int_le(pages, RD_N / RD_PAGE + 1);

    /* the same listing with readdirplus: attrs match the entries */
    memset(s.count, 0, sizeof(s.count));
    cookie = 0;
    eof = 0;
    for (int p = 0; !eof; p++) {
        ck_assert_int_lt(p, 60);
        uint32_t count;
        uint64_t next;
        ck_assert_int_eq(m_readdir(d.ino, cookie, RD_PAGE, 1, seen_add, &s, &count, &eof, &next),
                         0);
        cookie = next;
    }
    for (int i = 0; i < RD_N; i++)
        ck_assert_int_eq(s.count[i], 1);

    /* telldir safety: remove the last entry returned in page 5, then resume from its cookie;
     * the rest of the listing is exactly the entries not yet seen, none skipped or repeated */
    memset(s.count, 0, sizeof(s.count));
    cookie = 0;
    for (int p = 0; p < 5; p++) {
        uint32_t count;
        uint64_t next;
        ck_assert_int_eq(m_readdir(d.ino, cookie, RD_PAGE, 0, seen_add, &s, &count, &eof, &next),
                         0);
        ck_assert_int_eq(eof, 0);
        ck_assert(next == cookie_after[p]); /* cookies are stable across listings */
        cookie = next;
    }
    int last = -1;
    for (int i = 0; i < RD_N; i++)
        if (s.count[i]) last = i > last ? i : last;
    ck_assert_int_ge(last, 0);
    char name[48];
    snprintf(name, sizeof(name), "entry-%04d", last);
    ck_assert_int_eq(m_remove(MSG_UNLINK, d.ino, name), 0);
    /* and one not yet listed disappears too */
    int gone = -1;
    for (int i = RD_N - 1; i >= 0 && gone < 0; i--)
        if (!s.count[i]) gone = i;
    snprintf(name, sizeof(name), "entry-%04d", gone);
    ck_assert_int_eq(m_remove(MSG_UNLINK, d.ino, name), 0);
    eof = 0;
    for (int p = 0; !eof; p++) {
        ck_assert_int_lt(p, 60);
        uint32_t count;
        uint64_t next;
        ck_assert_int_eq(m_readdir(d.ino, cookie, RD_PAGE, 0, seen_add, &s, &count, &eof, &next),
                         0);
        cookie = next;
    }
    for (int i = 0; i < RD_N; i++) {
        int want = i == gone ? 0 : 1;
        ck_assert_msg(s.count[i] == want, "after removals entry-%04d listed %d times", i,
                      s.count[i]);
    }

    /* a cookie past the end gives an empty page with eof; a file is not a directory */
    uint32_t count;
    uint64_t next;
    ck_assert_int_eq(m_readdir(d.ino, cookie, RD_PAGE, 0, NULL, NULL, &count, &eof, &next), 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(eof, 1);
    ck_assert_int_eq(m_readdir(s.ino[0], 0, RD_PAGE, 0, NULL, NULL, &count, &eof, &next), -ENOTDIR);
    ck_assert_int_eq(m_readdir(999999, 0, RD_PAGE, 0, NULL, NULL, &count, &eof, &next), -ENOENT);
    meta_still_serves("readdir");
    stop_all();
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

static int chk_write(const char *addr, const struct chunk_info *ci, const void *data, uint32_t len)
{
    struct rpc_opts o = {.call_timeout_ms = 10000};
    struct rpc_conn *cs = rpc_conn_new(addr, &o);
    ck_assert_ptr_nonnull(cs);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ci->chunk_id);
    wbuf_put_u32(&b, ci->version);
    wbuf_put_u32(&b, ci->prev_version);
    wbuf_put_u32(&b, 0);
    wbuf_put_u64(&b, cksum_xxh3(data, len));
    wbuf_put_u8(&b, CHK_WRITE_SYNC);
    wbuf_put_u8(&b, 0);
    wbuf_put_u32(&b, len);
    struct rpc_reply rep;
    int rc = rpc_call(cs, MSG_CHK_WRITE, b.data, b.len, data, len, &rep);
    wbuf_free(&b);
    if (!rc) rpc_reply_free(&rep);
    rpc_conn_free(cs);
    return rc;
}

#define RS_FILES 50

START_TEST(test_acknowledged_state_survives_kill9)
{
    start_meta("metad-kill");
    ck_assert_int_eq(h_cs_start(C, 0), 0);
    wait_registered(1);
    char cs_addr[64];
    snprintf(cs_addr, sizeof(cs_addr), "127.0.0.1:%u", C->cs_port[0]);
    uint64_t sid = session_open("test-kill");

    /* a tree with every kind of entry */
    struct cairn_attr d, sub, f, g, sym, a;
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, "data", 0750, &d), 0);
    ck_assert_int_eq(m_mkdir(d.ino, "sub", 0700, &sub), 0);
    ck_assert_int_eq(m_create(d.ino, "f", 0644, O_EXCL, sid, &f), 0);
    ck_assert_int_eq(m_create(d.ino, "g", 0644, O_EXCL, sid, &g), 0);
    ck_assert_int_eq(m_symlink(d.ino, "sym", "f", &sym), 0);
    ck_assert_int_eq(m_link(f.ino, sub.ino, "f.hard", NULL), 0);
    ck_assert_int_eq(m_rename(d.ino, "g", sub.ino, "g.moved", 0), 0);
    ck_assert_int_eq(m_setattr(f.ino, SETATTR_MODE, 0604, 0, NULL), 0);
    ck_assert_int_eq(m_setxattr(f.ino, "user.k", "persist", 7, XATTR_CREATE_F), 0);
    ck_assert_int_eq(m_setxattr(d.ino, "user.gone", "x", 1, 0), 0);
    ck_assert_int_eq(m_removexattr(d.ino, "user.gone"), 0);
    uint64_t fino[RS_FILES];
    for (int i = 0; i < RS_FILES; i++) {
        char n[48];
        snprintf(n, sizeof(n), "n%03d", i);
        ck_assert_int_eq(m_mknod(sub.ino, n, S_IFREG | 0600, &a), 0);
        fino[i] = a.ino;
    }
    ck_assert_int_eq(m_remove(MSG_UNLINK, sub.ino, "n007"), 0);

    /* a write lease: allocated, version 1, placed on the one chunk server */
    struct chunk_info c0, c0b, c1, loc[4];
    ck_assert_int_eq(m_lease(f.ino, 0, sid, &c0), 0);
    ck_assert(c0.index == 0 && c0.chunk_id != 0);
    ck_assert_uint_eq(c0.version, 1);
    ck_assert_uint_eq(c0.prev_version, 0);
    ck_assert_uint_eq(c0.nloc, 1);
    ck_assert_str_eq(c0.loc[0].addr, cs_addr);
    ck_assert(c0.loc[0].server_id != 0);
    static uint8_t data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    ck_assert_int_eq(chk_write(cs_addr, &c0, data, sizeof(data)), 0);
    /* a second lease bumps the version, same chunk, chain = the holder */
    ck_assert_int_eq(m_lease(f.ino, 0, sid, &c0b), 0);
    ck_assert(c0b.chunk_id == c0.chunk_id);
    ck_assert_uint_eq(c0b.version, 2);
    ck_assert_uint_eq(c0b.prev_version, 1);
    ck_assert_uint_eq(c0b.nloc, 1);
    ck_assert_str_eq(c0b.loc[0].addr, cs_addr);
    ck_assert(c0b.loc[0].server_id == c0.loc[0].server_id);
    ck_assert_int_eq(chk_write(cs_addr, &c0b, data, sizeof(data)), 0);
    /* chunk 1: leased (a new id) but never written */
    ck_assert_int_eq(m_lease(f.ino, 1, sid, &c1), 0);
    ck_assert(c1.index == 1 && c1.chunk_id != 0 && c1.chunk_id != c0.chunk_id);
    ck_assert_uint_eq(c1.version, 1);
    /* leases only on regular files */
    ck_assert_int_eq(m_lease(d.ino, 0, sid, &loc[0]), -EISDIR);

    /* LOCATE */
    uint32_t n;
    ck_assert_int_eq(m_locate(f.ino, 0, 16, loc, 4, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(loc[0].index == 0 && loc[0].chunk_id == c0.chunk_id);
    ck_assert_uint_eq(loc[0].version, 2);
    ck_assert_uint_eq(loc[0].nloc, 1);
    ck_assert_str_eq(loc[0].loc[0].addr, cs_addr);
    ck_assert(loc[1].index == 1 && loc[1].chunk_id == c1.chunk_id);
    ck_assert_uint_eq(loc[1].version, 1);
    ck_assert_int_eq(m_locate(f.ino, 1, 1, loc, 4, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(loc[0].index == 1);
    ck_assert_int_eq(m_locate(f.ino, 5, 10, loc, 4, &n), 0);
    ck_assert_uint_eq(n, 0);

    /* COMMIT: size grows only, unless COMMIT_SET_SIZE */
    uint64_t size = CAIRN_DEFAULT_CHUNK_SIZE + 4096;
    ck_assert_int_eq(m_commit(f.ino, size, 1700000000, 0, &a), 0);
    ck_assert(a.size == size);
    ck_assert(a.mtime_s == 1700000000);
    ck_assert_int_eq(m_commit(f.ino, 10, 1700000001, 0, &a), 0);
    ck_assert(a.size == size);
    ck_assert(a.mtime_s == 1700000001);
    ck_assert_int_eq(m_commit(d.ino, 10, 1, 0, NULL), -EISDIR);
    ck_assert_int_eq(m_getattr(f.ino, &a), 0);
    ck_assert(a.size == size);
    /* the last acknowledged change before the crash */
    ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, "last", 0755, NULL), 0);

    /* ---- kill -9, restart on the same data ---- */
    int reg_before = count_registered();
    kill9_meta();
    ck_assert_int_eq(h_meta_restart(C), 0);

    /* the same connection object reconnects (a call racing the old connection's teardown
     * may fail once with -ECONNRESET, as rpc.h allows) */
    int rc = -ECONNRESET;
    for (int tries = 0; tries < 3 && rc == -ECONNRESET; tries++) {
        uint8_t root[8];
        struct rpc_reply rep;
        le_put64(root, CAIRN_ROOT_INO);
        rc = rpc_call(M, MSG_GETATTR, root, sizeof(root), NULL, 0, &rep);
        if (!rc) rpc_reply_free(&rep);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "last", NULL), 0);
    ck_assert_int_eq(m_lookup(CAIRN_ROOT_INO, "data", &a), 0);
    ck_assert(a.ino == d.ino && a.gen == d.gen);
    ck_assert_uint_eq(a.mode, S_IFDIR | 0750);
    ck_assert_int_eq(m_lookup(d.ino, "f", &a), 0);
    ck_assert(a.ino == f.ino);
    ck_assert_uint_eq(a.mode, S_IFREG | 0604);
    ck_assert_uint_eq(a.nlink, 2);
    ck_assert(a.size == size);
    ck_assert(a.mtime_s == 1700000001);
    ck_assert_int_eq(m_lookup(sub.ino, "f.hard", &a), 0);
    ck_assert(a.ino == f.ino);
    ck_assert_int_eq(m_lookup(d.ino, "g", NULL), -ENOENT);
    ck_assert_int_eq(m_lookup(sub.ino, "g.moved", &a), 0);
    ck_assert(a.ino == g.ino);
    ck_assert_int_eq(m_lookup(d.ino, "sym", &a), 0);
    ck_assert(a.ino == sym.ino);
    char t[64];
    ck_assert_int_eq(m_readlink(sym.ino, t, sizeof(t)), 0);
    ck_assert_str_eq(t, "f");
    char v[64];
    size_t vl;
    ck_assert_int_eq(m_getxattr(f.ino, "user.k", v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, 7);
    ck_assert_mem_eq(v, "persist", 7);
    ck_assert_int_eq(m_getxattr(d.ino, "user.gone", v, sizeof(v), &vl), -ENODATA);
    ck_assert_int_eq(m_getxattr(d.ino, NULL, v, sizeof(v), &vl), 0);
    ck_assert_uint_eq(vl, 0);

    /* readdir of both folders */
    struct name_list l;
    nl_init(&l, 256);
    list_dir(d.ino, 2, &l);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_int_ge(nl_find(&l, "f"), 0);
    ck_assert_int_ge(nl_find(&l, "sub"), 0);
    ck_assert_int_ge(nl_find(&l, "sym"), 0);
    l.n = 0;
    list_dir(sub.ino, 16, &l);
    ck_assert_uint_eq(l.n, RS_FILES - 1 + 2);
    for (int i = 0; i < RS_FILES; i++) {
        char nm[48];
        snprintf(nm, sizeof(nm), "n%03d", i);
        int at = nl_find(&l, nm);
        if (i == 7) {
            ck_assert_int_lt(at, 0);
        } else {
            ck_assert_msg(at >= 0, "%s lost in the crash", nm);
            ck_assert(l.inos[at] == fino[i]);
        }
    }
    nl_free(&l);

    /* the chunk map: ids and versions are persistent */
    ck_assert_int_eq(m_locate(f.ino, 0, 16, loc, 4, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(loc[0].chunk_id == c0.chunk_id);
    ck_assert_uint_eq(loc[0].version, 2);
    ck_assert(loc[1].chunk_id == c1.chunk_id);
    ck_assert_uint_eq(loc[1].version, 1);
    /* locations are soft state: relearnt when the chunk server registers again and reports
     * what it holds (only the written chunk) */
    wait_registered(reg_before + 1);
    uint64_t end = net_now_ms() + 10000;
    for (;;) {
        ck_assert_int_eq(m_locate(f.ino, 0, 16, loc, 4, &n), 0);
        ck_assert_uint_eq(n, 2);
        if (loc[0].nloc == 1) break;
        ck_assert_msg(net_now_ms() < end, "chunk location not relearnt after restart");
        sleep_ms(100);
    }
    ck_assert_str_eq(loc[0].loc[0].addr, cs_addr);
    ck_assert_uint_eq(loc[1].nloc, 0);

    /* the session survived and new ids never collide with old ones */
    ck_assert_int_eq(m_session_keepalive(sid), 0);
    struct chunk_info c2;
    ck_assert_int_eq(m_lease(f.ino, 0, sid, &c2), 0);
    ck_assert(c2.chunk_id == c0.chunk_id);
    ck_assert_uint_eq(c2.version, 3);
    ck_assert_uint_eq(c2.prev_version, 2);
    ck_assert_int_eq(m_lease(g.ino, 0, sid, &c2), 0);
    ck_assert(c2.chunk_id != c0.chunk_id && c2.chunk_id != c1.chunk_id);
    ck_assert_int_eq(m_mknod(CAIRN_ROOT_INO, "after", S_IFREG | 0644, &a), 0);
    for (int i = 0; i < RS_FILES; i++)
        ck_assert(a.ino != fino[i]);
    ck_assert(a.ino != f.ino && a.ino != g.ino && a.ino != d.ino && a.ino != sub.ino);
    stop_all();
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

START_TEST(test_malformed_frames_close_only_their_connection)
{
    start_meta("metad-bad");
    meta_still_serves("start");
    uint8_t hb[WIRE_HDR_SIZE];

    /* garbage bytes */
    int fd = raw_connect();
    uint8_t junk[64];
    memset(junk, 'G', sizeof(junk));
    raw_send(fd, junk, sizeof(junk));
    ck_assert_msg(closed_by_server(fd), "garbage did not close the connection");
    close(fd);
    meta_still_serves("garbage");

    /* a header with a bad magic and a correct checksum */
    fd = raw_connect();
    struct wire_hdr h = {.type = MSG_GETATTR, .reqid = 1, .length = 8};
    wire_hdr_encode(hb, &h);
    le_put32(hb, 0x4e524144u);
    le_put32(hb + 28, (uint32_t)cksum_xxh3(hb, 28));
    raw_send(fd, hb, sizeof(hb));
    ck_assert(closed_by_server(fd));
    close(fd);
    meta_still_serves("bad magic");

    /* a bad header checksum */
    fd = raw_connect();
    wire_hdr_encode(hb, &h);
    hb[28] ^= 0xff;
    raw_send(fd, hb, sizeof(hb));
    ck_assert(closed_by_server(fd));
    close(fd);
    meta_still_serves("bad checksum");

    /* an oversized frame: the header is refused before any payload is awaited */
    fd = raw_connect();
    h.length = WIRE_MAX_PAYLOAD + 1;
    wire_hdr_encode(hb, &h);
    raw_send(fd, hb, sizeof(hb));
    ck_assert(closed_by_server(fd));
    close(fd);
    meta_still_serves("oversized frame");

    /* a request that claims to be a reply */
    fd = raw_connect();
    uint8_t ino[8];
    le_put64(ino, CAIRN_ROOT_INO);
    raw_frame(fd, MSG_GETATTR | WIRE_REPLY_BIT, 2, ino, sizeof(ino));
    ck_assert(closed_by_server(fd));
    close(fd);
    meta_still_serves("reply bit on a request");

    /* valid headers whose LOOKUP payloads do not decode */
    struct {
        const char *what;
        uint8_t p[32];
        size_t n;
    } bad[] = {
        {"truncated parent", {1, 0, 0}, 3},
        {"name longer than the payload", {1, 0, 0, 0, 0, 0, 0, 0, 200, 0, 'a', 'b'}, 12},
        {"trailing bytes", {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 'a', 'x', 'y'}, 13},
        {"empty payload", {0}, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = raw_connect();
        raw_frame(fd, MSG_LOOKUP, 10 + i, bad[i].p, bad[i].n);
        ck_assert_msg(closed_by_server(fd), "LOOKUP with %s kept the connection", bad[i].what);
        close(fd);
        meta_still_serves(bad[i].what);
    }
    /* and the same for a chunk-server message */
    fd = raw_connect();
    raw_frame(fd, MSG_CS_REGISTER, 20, "\x01\x02", 2);
    ck_assert(closed_by_server(fd));
    close(fd);
    meta_still_serves("short CS_REGISTER");

    /* a half-sent frame on one connection does not hold up the others */
    fd = raw_connect();
    h.length = 8;
    h.type = MSG_GETATTR;
    wire_hdr_encode(hb, &h);
    raw_send(fd, hb, 20);
    meta_still_serves("a partial header elsewhere");
    raw_send(fd, hb + 20, sizeof(hb) - 20);
    raw_send(fd, ino, 4);
    meta_still_serves("a partial payload elsewhere");
    raw_send(fd, ino + 4, 4);
    struct wire_hdr rh;
    struct wbuf p;
    wbuf_init(&p);
    ck_assert_int_eq(raw_reply(fd, &rh, &p), 0);
    ck_assert_uint_eq(rh.type, MSG_GETATTR | WIRE_REPLY_BIT);
    ck_assert(rh.reqid == h.reqid);
    ck_assert_int_eq(rh.status, 0);

    /* an unknown type is answered with -EOPNOTSUPP and the connection stays usable */
    raw_frame(fd, 999, 77, "abc", 3);
    ck_assert_int_eq(raw_reply(fd, &rh, &p), 0);
    ck_assert_uint_eq(rh.type, 999 | WIRE_REPLY_BIT);
    ck_assert(rh.reqid == 77);
    ck_assert_int_eq(rh.status, -EOPNOTSUPP);
    ck_assert_uint_eq(rh.length, 0);
    raw_frame(fd, MSG_GETATTR, 78, ino, sizeof(ino));
    ck_assert_int_eq(raw_reply(fd, &rh, &p), 0);
    ck_assert(rh.reqid == 78);
    ck_assert_int_eq(rh.status, 0);
    struct rcur r;
    rcur_init(&r, p.data, p.len);
    struct cairn_attr a;
    proto_get_attr(&r, &a);
    ck_assert_int_eq(rcur_done(&r), 0);
    ck_assert(a.ino == CAIRN_ROOT_INO);
    wbuf_free(&p);
    close(fd);

    /* the same through the rpc client, including chunk-server-to-chunk-server types */
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, 1);
    ck_assert_int_eq(call(999, &b, NULL), -EOPNOTSUPP);
    wbuf_init(&b);
    wbuf_put_u64(&b, 1);
    ck_assert_int_eq(call(MSG_CHK_INFO, &b, NULL), -EOPNOTSUPP);
    wbuf_init(&b);
    ck_assert_int_eq(call(0, &b, NULL), -EOPNOTSUPP);
    meta_still_serves("unknown types");
    stop_all();
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

START_TEST(test_new_chunks_spread_over_servers)
{
    ck_assert_int_eq(h_cluster_start(C, "metad-spread", 3), 0);
    M = hm_connect(C->meta_addr);
    uint64_t sid = session_open("test-spread");
    char addrs[3][64];
    for (int i = 0; i < 3; i++)
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%u", C->cs_port[i]);
    struct statfs_reply st = {0};
    ck_assert_int_eq(m_statfs(&st), 0);
    ck_assert(st.total > 0 && st.free_bytes > 0); /* three servers' space */

    int used[3] = {0, 0, 0};
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        char n[48];
        snprintf(n, sizeof(n), "spread%d", i);
        struct cairn_attr a;
        ck_assert_int_eq(m_create(CAIRN_ROOT_INO, n, 0644, O_EXCL, sid, &a), 0);
        struct chunk_info ci;
        ck_assert_int_eq(m_lease(a.ino, 0, sid, &ci), 0);
        ck_assert_uint_eq(ci.nloc, 2); /* default_copies 2: two distinct servers */
        ck_assert_str_ne(ci.loc[0].addr, ci.loc[1].addr);
        ck_assert_uint_eq(ci.version, 1);
        ids[i] = ci.chunk_id;
        for (int j = 0; j < i; j++)
            ck_assert(ids[j] != ids[i]);
        int which = -1;
        for (int k = 0; k < 3; k++)
            if (!strcmp(ci.loc[0].addr, addrs[k])) which = k;
        ck_assert_msg(which >= 0, "lease placed on unknown address %s", ci.loc[0].addr);
        used[which]++;
    }
    int distinct = (used[0] > 0) + (used[1] > 0) + (used[2] > 0);
    ck_assert_msg(distinct > 1, "3 new chunks all on one server (%d/%d/%d)", used[0], used[1],
                  used[2]);
    stop_all();
}
END_TEST

/* MSG_SNAP_READ of the copy id, at off, up to len bytes: the status; the bytes in *rep. */
static int snap_read(uint64_t id, uint64_t off, uint32_t len, struct rpc_reply *rep)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, id);
    wbuf_put_u64(&b, off);
    wbuf_put_u32(&b, len);
    return hm_call(M, MSG_SNAP_READ, &b, rep);
}

START_TEST(test_snapshot_copy_lent)
{
    start_meta("metad-snap");
    for (int i = 0; i < 20; i++) { /* something in the store */
        char name[16];
        snprintf(name, sizeof(name), "s%02d", i);
        ck_assert_int_eq(m_mkdir(CAIRN_ROOT_INO, name, 0755, NULL), 0);
    }
    /* an index this store has not reached: ask another replica */
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, UINT64_MAX);
    ck_assert_int_eq(hm_call(M, MSG_SNAP_OPEN, &b, NULL), -ESTALE);
    /* no copy by that id (none was made yet) */
    ck_assert_int_eq(snap_read(12345, 0, 4096, NULL), -ENOENT);
    /* a copy at least at index 1: made in the background (-EAGAIN meanwhile) */
    struct rpc_reply rep;
    int rc = -EAGAIN;
    for (int i = 0; i < 200 && rc == -EAGAIN; i++) {
        wbuf_init(&b);
        wbuf_put_u64(&b, 1);
        rc = hm_call(M, MSG_SNAP_OPEN, &b, &rep);
        if (rc == -EAGAIN) usleep(50 * 1000);
    }
    ck_assert_int_eq(rc, 0);
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    uint64_t id = rcur_u64(&c), size = rcur_u64(&c), applied = rcur_u64(&c);
    ck_assert_int_eq(rcur_done(&c), 0);
    rpc_reply_free(&rep);
    ck_assert_uint_ge(applied, 1);
    ck_assert_uint_gt(size, 16);
    /* read it in pieces of 1000 bytes into a file: "SNAP", a 16-byte header, then a zstd
     * frame that decompresses to an LMDB store recording its applied index */
    char dir[300];
    snprintf(dir, sizeof(dir), "%s", C->dir);
    char zpath[400];
    snprintf(zpath, sizeof(zpath), "%s/copy.snap", dir);
    FILE *z = fopen(zpath, "w");
    ck_assert_ptr_nonnull(z);
    for (uint64_t off = 0; off < size;) {
        ck_assert_int_eq(snap_read(id, off, 1000, &rep), 0);
        ck_assert_uint_gt(rep.payload.len, 0);
        ck_assert_uint_le(rep.payload.len, 1000);
        ck_assert_uint_eq(fwrite(rep.payload.data, 1, rep.payload.len, z), rep.payload.len);
        off += rep.payload.len;
        rpc_reply_free(&rep);
    }
    fclose(z);
    ck_assert_int_eq(h_sh(30, "head -c 4 '%s' | grep -q SNAP", zpath), 0);
    ck_assert_int_eq(h_sh(60, "tail -c +17 '%s' | zstd -dq > '%s/copy.mdb'", zpath, dir), 0);
    ck_assert_msg(h_sh(60, "mdb_dump -n -s meta '%s/copy.mdb' | grep -q 6170706c696564", dir) == 0,
                  "the copy is not a store with an applied index");
    /* at the end: nothing; past it: an error; more than 1 MiB asked: 1 MiB at most */
    ck_assert_int_eq(snap_read(id, size, 4096, &rep), 0);
    ck_assert_uint_eq(rep.payload.len, 0);
    rpc_reply_free(&rep);
    ck_assert_int_eq(snap_read(id, size + 1, 4096, NULL), -EINVAL);
    ck_assert_int_eq(snap_read(id, 0, UINT32_MAX, &rep), 0);
    ck_assert_uint_le(rep.payload.len, 1u << 20); /* SNAP_READ_MAX */
    rpc_reply_free(&rep);
    /* truncated requests are malformed: the connection goes, the daemon stays */
    wbuf_init(&b);
    wbuf_put_u32(&b, 7);
    struct rpc_reply r2;
    int trc = rpc_call(M, MSG_SNAP_OPEN, b.data, b.len, NULL, 0, &r2);
    wbuf_free(&b);
    ck_assert_int_ne(trc, 0);
    meta_still_serves("a truncated MSG_SNAP_OPEN");
    stop_all();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_daemon");
    struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        {"namespace", test_namespace_operations},
        {"readdir", test_readdir_resumable_cookie},
        {"kill9", test_acknowledged_state_survives_kill9},
        {"malformed", test_malformed_frames_close_only_their_connection},
        {"spread", test_new_chunks_spread_over_servers},
        {"snapshot", test_snapshot_copy_lent},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        /* one test per case, so the parent-side cleanup runs after each test */
        TCase *t = tcase_create(tests[i].name);
        tcase_set_timeout(t, TEST_TIMEOUT_S);
        tcase_add_unchecked_fixture(t, NULL, reap_leftovers);
        tcase_add_test(t, tests[i].test);
        suite_add_tcase(s, t);
    }
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* the cluster record is shared between the runner and each forked test */
    C = mmap(NULL, sizeof(*C), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (C == MAP_FAILED) {
        perror("mmap");
        return EXIT_FAILURE;
    }
    memset(C, 0, sizeof(*C));
    /* daemons orphaned by a failed test become our children, to be reaped by PID */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    reap_leftovers();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
