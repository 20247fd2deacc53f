/* meta_client.c - the client's session with the meta service: session open, a keepalive
 * thread that renews (or re-opens) it, and one typed wrapper per meta request over a single
 * pipelined rpc_conn shared by every FUSE thread. Transport failures (timeout, lost
 * connection) are reported as -EIO once io_timeout has run out; read-only requests are
 * retried on a lost connection within that time. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cksum.h"
#include "client.h"
#include "log.h"
#include "net.h"

static int transport_err(int rc)
{
    return rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -ECONNREFUSED || rc == -EAGAIN ||
           rc == -EPIPE || rc == -EHOSTUNREACH || rc == -ENETUNREACH || rc == -ECONNABORTED;
}

static int idempotent(uint16_t type)
{
    switch (type) {
    case MSG_LOOKUP:
    case MSG_GETATTR:
    case MSG_READLINK:
    case MSG_READDIR:
    case MSG_STATFS:
    case MSG_GETXATTR:
    case MSG_LISTXATTR:
    case MSG_CHUNK_LOCATE:
    case MSG_SESSION_KEEPALIVE:
    case MSG_COMMIT:
    case MSG_SETATTR:
        return 1;
    }
    return 0;
}

int mc_call(struct mc *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep)
{
    memset(rep, 0, sizeof(*rep));
    if (req->err) return req->err;
    uint64_t deadline = net_now_ms() + (uint64_t)m->io_timeout_ms;
    int rc;
    for (int attempt = 0;; attempt++) {
        struct rpc_call *k;
        rc = rpc_submit(m->conn, type, req->data, req->len, NULL, 0, deadline, &k);
        if (rc == 0) rc = rpc_wait(k, deadline, rep);
        if (rc == 0) {
            if (rep->status < 0) {
                rc = rep->status;
                rpc_reply_free(rep);
                rep->status = rc;
            }
            return rc;
        }
        if (rc == -ECONNRESET && idempotent(type) && net_now_ms() < deadline && attempt < 20) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        break;
    }
    if (transport_err(rc)) {
        LOG_WARN("meta", "%s to %s failed: %s", proto_type_name(type), rpc_conn_addr(m->conn),
                 strerror(-rc));
        rc = -EIO;
    }
    rep->status = rc;
    return rc;
}

/* Call with request b (freed here); on success *c reads the reply payload, which the caller
 * frees with rpc_reply_free(rep). */
static int call_cur(struct mc *m, uint16_t type, struct wbuf *b, struct rpc_reply *rep,
                    struct rcur *c)
{
    int rc = mc_call(m, type, b, rep);
    wbuf_free(b);
    if (rc) return rc;
    rcur_init(c, rep->payload.data, rep->payload.len);
    return 0;
}

/* Call and decode an attr reply. */
static int call_attr(struct mc *m, uint16_t type, struct wbuf *b, struct cairn_attr *a)
{
    struct rpc_reply rep;
    struct rcur c;
    int rc = call_cur(m, type, b, &rep, &c);
    if (rc) return rc;
    struct cairn_attr tmp;
    proto_get_attr(&c, a ? a : &tmp);
    rc = c.err ? -EIO : 0;
    rpc_reply_free(&rep);
    return rc;
}

static int call_empty(struct mc *m, uint16_t type, struct wbuf *b)
{
    struct rpc_reply rep;
    int rc = mc_call(m, type, b, &rep);
    wbuf_free(b);
    if (rc) return rc;
    rpc_reply_free(&rep);
    return 0;
}

static void put_name(struct wbuf *b, const char *s)
{
    wbuf_put_str(b, s, strlen(s));
}

static int session_open(struct mc *m, uint64_t resume)
{
    char host[256], name[300];
    if (gethostname(host, sizeof(host)) != 0) strcpy(host, "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(name, sizeof(name), "%s:%d", host, (int)getpid());
    struct wbuf b;
    wbuf_init(&b);
    put_name(&b, name);
    wbuf_put_u64(&b, resume);
    struct rpc_reply rep;
    struct rcur c;
    int rc = call_cur(m, MSG_SESSION_OPEN, &b, &rep, &c);
    if (rc) return rc;
    uint64_t sid = rcur_u64(&c), csz = rcur_u64(&c);
    uint32_t to = rcur_u32(&c);
    rpc_reply_free(&rep);
    if (c.err || sid == 0 || csz == 0 || csz % CKSUM_BLOCK != 0) return -EPROTO;
    pthread_mutex_lock(&m->mu);
    m->session = sid;
    m->chunk_size = csz;
    m->session_timeout_s = to ? to : 60;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

uint64_t mc_session(struct mc *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t s = m->session;
    pthread_mutex_unlock(&m->mu);
    return s;
}

static void *keepalive_main(void *arg)
{
    struct mc *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        uint32_t period = m->session_timeout_s / 3;
        if (period < 1) period = 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += period;
        pthread_cond_timedwait(&m->stop_cv, &m->mu, &ts);
        if (m->stopping) break;
        uint64_t sid = m->session;
        pthread_mutex_unlock(&m->mu);
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, sid);
        int rc = call_empty(m, MSG_SESSION_KEEPALIVE, &b);
        if (rc == -ENOENT) {
            LOG_WARN("meta", "session %" PRIu64 " expired; opening it again", sid);
            rc = session_open(m, sid);
            if (rc) rc = session_open(m, 0);
            if (rc) LOG_ERR("meta", "cannot reopen the session: %s", strerror(-rc));
        }
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int mc_open(struct mc *m, const char *addr, int io_timeout_ms)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->stop_cv, NULL);
    m->io_timeout_ms = io_timeout_ms;
    struct rpc_opts o = {.connect_timeout_ms = 2000,
                         .call_timeout_ms = io_timeout_ms,
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 1000};
    m->conn = rpc_conn_new(addr, &o);
    if (!m->conn) return -ENOMEM;
    int rc = session_open(m, 0);
    if (rc) {
        LOG_ERR("meta", "cannot open a session with %s: %s", addr, strerror(-rc));
        rpc_conn_free(m->conn);
        m->conn = NULL;
        return rc;
    }
    if (pthread_create(&m->keepalive, NULL, keepalive_main, m) == 0) m->ka_running = 1;
    LOG_INFO("meta", "session %" PRIu64 " with %s, chunk size %" PRIu64, m->session, addr,
             m->chunk_size);
    return 0;
}

void mc_close(struct mc *m)
{
    if (!m->conn) return;
    pthread_mutex_lock(&m->mu);
    m->stopping = 1;
    pthread_cond_broadcast(&m->stop_cv);
    pthread_mutex_unlock(&m->mu);
    if (m->ka_running) pthread_join(m->keepalive, NULL);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, m->session);
    int saved = m->io_timeout_ms;
    m->io_timeout_ms = saved < 3000 ? saved : 3000;
    call_empty(m, MSG_SESSION_CLOSE, &b);
    m->io_timeout_ms = saved;
    rpc_conn_free(m->conn);
    m->conn = NULL;
}

int mc_lookup(struct mc *m, uint64_t parent, const char *name, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    return call_attr(m, MSG_LOOKUP, &b, a);
}

int mc_getattr(struct mc *m, uint64_t ino, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    return call_attr(m, MSG_GETATTR, &b, a);
}

int mc_setattr(struct mc *m, uint64_t ino, const struct mc_setattr *s, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u32(&b, s->valid);
    wbuf_put_u32(&b, s->mode);
    wbuf_put_u32(&b, s->uid);
    wbuf_put_u32(&b, s->gid);
    wbuf_put_u64(&b, s->size);
    wbuf_put_i64(&b, s->atime_s);
    wbuf_put_u32(&b, s->atime_ns);
    wbuf_put_i64(&b, s->mtime_s);
    wbuf_put_u32(&b, s->mtime_ns);
    return call_attr(m, MSG_SETATTR, &b, a);
}

int mc_mknod(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint64_t rdev,
             uint32_t uid, uint32_t gid, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u64(&b, rdev);
    wbuf_put_u32(&b, uid);
    wbuf_put_u32(&b, gid);
    return call_attr(m, MSG_MKNOD, &b, a);
}

int mc_mkdir(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, uid);
    wbuf_put_u32(&b, gid);
    return call_attr(m, MSG_MKDIR, &b, a);
}

int mc_unlink(struct mc *m, uint64_t parent, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    return call_empty(m, MSG_UNLINK, &b);
}

int mc_rmdir(struct mc *m, uint64_t parent, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    return call_empty(m, MSG_RMDIR, &b);
}

int mc_rename(struct mc *m, uint64_t parent, const char *name, uint64_t newparent,
              const char *newname, uint32_t flags)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u64(&b, newparent);
    put_name(&b, newname);
    wbuf_put_u32(&b, flags);
    return call_empty(m, MSG_RENAME, &b);
}

int mc_link(struct mc *m, uint64_t ino, uint64_t newparent, const char *newname,
            struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, newparent);
    put_name(&b, newname);
    return call_attr(m, MSG_LINK, &b, a);
}

int mc_symlink(struct mc *m, uint64_t parent, const char *name, const char *target, uint32_t uid,
               uint32_t gid, struct cairn_attr *a)
{
    size_t tl = strlen(target);
    if (tl > CAIRN_PATH_MAX) return -ENAMETOOLONG;
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_str(&b, target, tl);
    wbuf_put_u32(&b, uid);
    wbuf_put_u32(&b, gid);
    return call_attr(m, MSG_SYMLINK, &b, a);
}

int mc_readlink(struct mc *m, uint64_t ino, char *out)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    struct rpc_reply rep;
    struct rcur c;
    int rc = call_cur(m, MSG_READLINK, &b, &rep, &c);
    if (rc) return rc;
    rc = rcur_str(&c, out, CAIRN_PATH_MAX) < 0 ? -EIO : 0;
    rpc_reply_free(&rep);
    return rc;
}

int mc_readdir(struct mc *m, uint64_t ino, uint64_t cookie, uint32_t max, int plus,
               struct rpc_reply *rep)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, cookie);
    wbuf_put_u32(&b, max);
    wbuf_put_u8(&b, plus ? 1 : 0);
    int rc = mc_call(m, MSG_READDIR, &b, rep);
    wbuf_free(&b);
    return rc;
}

int mc_statfs(struct mc *m, struct mc_statfs *out)
{
    struct wbuf b;
    wbuf_init(&b);
    struct rpc_reply rep;
    struct rcur c;
    int rc = call_cur(m, MSG_STATFS, &b, &rep, &c);
    if (rc) return rc;
    out->total_bytes = rcur_u64(&c);
    out->free_bytes = rcur_u64(&c);
    out->total_inodes = rcur_u64(&c);
    out->free_inodes = rcur_u64(&c);
    out->block_size = rcur_u32(&c);
    out->name_max = rcur_u32(&c);
    rc = c.err ? -EIO : 0;
    rpc_reply_free(&rep);
    return rc;
}

int mc_setxattr(struct mc *m, uint64_t ino, const char *name, const void *val, size_t len,
                uint32_t flags)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    put_name(&b, name);
    wbuf_put_bytes(&b, val, len);
    wbuf_put_u32(&b, flags);
    return call_empty(m, MSG_SETXATTR, &b);
}

int mc_getxattr(struct mc *m, uint64_t ino, const char *name, struct rpc_reply *rep)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    put_name(&b, name);
    int rc = mc_call(m, MSG_GETXATTR, &b, rep);
    wbuf_free(&b);
    return rc;
}

int mc_listxattr(struct mc *m, uint64_t ino, struct rpc_reply *rep)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    int rc = mc_call(m, MSG_LISTXATTR, &b, rep);
    wbuf_free(&b);
    return rc;
}

int mc_removexattr(struct mc *m, uint64_t ino, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    put_name(&b, name);
    return call_empty(m, MSG_REMOVEXATTR, &b);
}

int mc_create(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
              uint32_t gid, uint32_t flags, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, uid);
    wbuf_put_u32(&b, gid);
    wbuf_put_u32(&b, flags);
    wbuf_put_u64(&b, mc_session(m));
    return call_attr(m, MSG_CREATE, &b, a);
}

/* Decode u32 n, n x chunkinfo into ci[0..max). */
static int get_chunk_infos(struct rcur *c, struct chunk_info *ci, uint32_t max, uint32_t *n)
{
    uint32_t cnt = rcur_u32(c);
    *n = 0;
    for (uint32_t i = 0; i < cnt && !c->err; i++) {
        struct chunk_info tmp;
        proto_get_chunk_info(c, &tmp);
        if (c->err) break;
        if (*n < max) ci[(*n)++] = tmp;
    }
    return c->err ? -EIO : 0;
}

int mc_open_file(struct mc *m, uint64_t ino, uint32_t flags, struct cairn_attr *a,
                 struct chunk_info *ci, uint32_t max, uint32_t *n)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u32(&b, flags);
    wbuf_put_u64(&b, mc_session(m));
    struct rpc_reply rep;
    *n = 0;
    struct rcur c;
    int rc = call_cur(m, MSG_OPEN, &b, &rep, &c);
    if (rc) return rc;
    proto_get_attr(&c, a);
    rc = c.err ? -EIO : 0;
    if (!rc && c.left > 0) {
        if (get_chunk_infos(&c, ci, max, n)) *n = 0; /* the hint is optional */
    }
    rpc_reply_free(&rep);
    return rc;
}

int mc_release(struct mc *m, uint64_t ino)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, mc_session(m));
    return call_empty(m, MSG_RELEASE, &b);
}

int mc_chunk_locate(struct mc *m, uint64_t ino, uint64_t first, uint32_t count,
                    struct chunk_info *ci, uint32_t max, uint32_t *n)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, first);
    wbuf_put_u32(&b, count);
    struct rpc_reply rep;
    *n = 0;
    struct rcur c;
    int rc = call_cur(m, MSG_CHUNK_LOCATE, &b, &rep, &c);
    if (rc) return rc;
    rc = get_chunk_infos(&c, ci, max, n);
    rpc_reply_free(&rep);
    return rc;
}

int mc_chunk_lease(struct mc *m, uint64_t ino, uint64_t index, const uint64_t *excl, uint8_t nexcl,
                   struct chunk_info *ci)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, index);
    wbuf_put_u64(&b, mc_session(m));
    wbuf_put_u8(&b, nexcl);
    for (uint8_t i = 0; i < nexcl; i++)
        wbuf_put_u64(&b, excl[i]);
    struct rpc_reply rep;
    struct rcur c;
    int rc = call_cur(m, MSG_CHUNK_LEASE, &b, &rep, &c);
    if (rc) return rc;
    proto_get_chunk_info(&c, ci);
    rc = c.err ? -EIO : 0;
    if (!rc && ci->nloc == 0) rc = -ENOSPC; /* no chunk server to write to */
    rpc_reply_free(&rep);
    return rc;
}

int mc_commit(struct mc *m, uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t mtime_ns,
              uint32_t flags, const struct mc_alloc *allocs, uint32_t nallocs, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, size);
    wbuf_put_i64(&b, mtime_s);
    wbuf_put_u32(&b, mtime_ns);
    wbuf_put_u32(&b, flags);
    wbuf_put_u32(&b, nallocs);
    for (uint32_t i = 0; i < nallocs; i++) {
        wbuf_put_u64(&b, allocs[i].index);
        wbuf_put_u64(&b, allocs[i].bytes);
    }
    return call_attr(m, MSG_COMMIT, &b, a);
}
