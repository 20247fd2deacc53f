/* meta_client.c - the client's session with the meta service: mc_call (one request, followed
 * across a failover of the meta Raft group until io_timeout runs out), session open, a
 * keepalive thread that renews (or re-opens) the session, and one typed wrapper per meta
 * request. The replica a request goes to is meta_route.c's business, the numbering of
 * mutations meta_seq.c's; see client.h for the behaviour callers get. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cksum.h"
#include "client.h"
#include "cstats.h"
#include "log.h"
#include "net.h"

#define MC_CONNECT_MS 1000     /* one connect attempt to a replica */
#define MC_ATTEMPT_MIN_MS 2000 /* an attempt waits for its reply max(this, io_timeout / 4) */
#define MC_NOLEADER_MS 100     /* pause before the next replica while no leader is known */
#define MC_PAUSE_MIN_MS 50     /* pause after an unreachable replica, doubling per failure */
#define MC_PAUSE_MAX_MS 200
#define MC_FAST_REDIRECTS 3 /* redirects a call follows at once; later ones after a pause */
#define MC_CLOSE_MS 3000    /* SESSION_CLOSE at unmount waits at most this long */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sleep ms, not past deadline. 0, or -ETIMEDOUT when the deadline has come. */
static int pause_until(uint64_t deadline, int ms)
{
    uint64_t now = net_now_ms();
    if (now >= deadline) return -ETIMEDOUT;
    if ((uint64_t)ms > deadline - now) ms = (int)(deadline - now);
    sleep_ms(ms);
    return net_now_ms() >= deadline ? -ETIMEDOUT : 0;
}

/* The leader a -CAIRN_ENOTLEADER reply names into out ("" when none or malformed). */
static void named_leader(const struct rpc_reply *rep, char *out)
{
    struct rcur c;
    rcur_init(&c, rep->payload.data, rep->payload.len);
    if (rcur_str(&c, out, CAIRN_ADDR_MAX) < 0 || c.err) out[0] = '\0';
}

/* mc_call with its own time bound. Every attempt sends the same bytes: the request and, for a
 * mutation once there is a session, the MSG_F_SEQ trailer numbered once here. */
static int call_within(struct mc *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep,
                       int timeout_ms)
{
    memset(rep, 0, sizeof(*rep));
    if (req->err) return req->err;
    uint64_t deadline = net_now_ms() + (uint64_t)timeout_ms;
    int attempt_ms =
        m->io_timeout_ms / 4 > MC_ATTEMPT_MIN_MS ? m->io_timeout_ms / 4 : MC_ATTEMPT_MIN_MS;
    struct mc_seq_tag tag;
    struct wbuf tr;
    wbuf_init(&tr);
    int numbered = 0;
    uint16_t wtype = type;
    int rc = 0;
    if (mc_seq_wanted(type)) {
        rc = mc_seq_begin(&m->seq, &tag);
        if (rc == 0) {
            numbered = 1;
            wtype |= MSG_F_SEQ;
            mc_seq_put(&tr, &tag);
            rc = tr.err;
        } else if (rc == -ENOTCONN) {
            rc = 0; /* no session yet: nothing to number */
        }
    }
    char named[CAIRN_ADDR_MAX + 1], last[CAIRN_ADDR_MAX + 1] = "";
    int redirects = 0, pause = MC_PAUSE_MIN_MS;
    while (rc == 0) {
        struct mc_pick p;
        rc = mc_pick(m, &p);
        if (rc) break;
        snprintf(last, sizeof(last), "%s", rpc_conn_addr(p.conn));
        uint64_t adl = net_now_ms() + (uint64_t)attempt_ms;
        if (adl > deadline) adl = deadline;
        struct rpc_call *k;
        rc = rpc_submit(p.conn, wtype, req->data, req->len, tr.data, tr.len, adl, &k);
        if (rc == 0) rc = rpc_wait(k, adl, rep);
        if (rc == 0 && rep->status != -CAIRN_ENOTLEADER) {
            mc_drop(m, &p, MC_V_ANSWERED, NULL, 0);
            break;
        }
        if (rc == -ENOMEM || rc == -EMSGSIZE) {
            mc_drop(m, &p, MC_V_LOCAL, NULL, rc);
            break;
        }
        int wait;
        if (rc == 0) {
            named_leader(rep, named);
            rpc_reply_free(rep);
            memset(rep, 0, sizeof(*rep));
            rc = -CAIRN_ENOTLEADER;
            enum mc_verdict v = mc_drop(m, &p, named[0] ? MC_V_REDIRECT : MC_V_NOLEADER, named, 0);
            wait = v == MC_V_REDIRECT && ++redirects <= MC_FAST_REDIRECTS ? 0 : MC_NOLEADER_MS;
        } else {
            mc_drop(m, &p, MC_V_UNREACHABLE, NULL, rc);
            wait = pause;
            pause = pause * 2 < MC_PAUSE_MAX_MS ? pause * 2 : MC_PAUSE_MAX_MS;
        }
        if (pause_until(deadline, wait)) break;
        rc = 0;
    }
    if (numbered) mc_seq_end(&m->seq, &tag);
    wbuf_free(&tr);
    if (rc == 0) {
        if (rep->status < 0) {
            rc = rep->status;
            rpc_reply_free(rep);
            rep->status = rc;
        }
        return rc;
    }
    if (rc != -ENOMEM && rc != -EMSGSIZE) {
        if (rc == -CAIRN_ENOTLEADER)
            LOG_WARN("meta", "%s: no meta leader within %d ms (last asked %s)",
                     proto_type_name(type), timeout_ms, last);
        else
            LOG_WARN("meta", "%s to %s failed: %s", proto_type_name(type), last, strerror(-rc));
        rc = -EIO;
    }
    rep->status = rc;
    return rc;
}

int mc_call(struct mc *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep)
{
    uint64_t t0 = st_now_us();
    int rc = call_within(m, type, req, rep, m->io_timeout_ms);
    st_meta_call(type, st_now_us() - t0);
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
    mc_seq_reset(&m->seq, sid); /* a new session numbers its mutations from 1 */
    return 0;
}

uint64_t mc_session(struct mc *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t s = m->session;
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* Tell the leader this mount's counters (MSG_CLIENT_STATS); failures only wait for the next. */
static void send_stats(struct mc *m, uint64_t sid, const char *label)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, sid);
    put_name(&b, label);
    wbuf_put_u64(&b, st_meta_calls_total());
    wbuf_put_u64(&b, st_get(ST_FUSE_READS));
    wbuf_put_u64(&b, st_get(ST_FUSE_READ_BYTES));
    wbuf_put_u64(&b, st_get(ST_FUSE_WRITES));
    wbuf_put_u64(&b, st_get(ST_FUSE_WRITE_BYTES));
    call_empty(m, MSG_CLIENT_STATS, &b);
}

/* Keep the session alive (every session_timeout/3 s) and send the counters every
 * CLIENT_STATS_S s. */
static void *keepalive_main(void *arg)
{
    struct mc *m = arg;
    uint64_t next_ka =
        net_now_ms() + 1000u * (m->session_timeout_s / 3 ? m->session_timeout_s / 3 : 1);
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        struct timespec ts;
        net_abstime_in(CLIENT_STATS_S * 1000u, &ts);
        pthread_cond_timedwait(&m->stop_cv, &m->mu, &ts);
        if (m->stopping) break;
        uint64_t sid = m->session;
        char label[sizeof(m->label)];
        memcpy(label, m->label, sizeof(label));
        uint32_t period = m->session_timeout_s / 3;
        pthread_mutex_unlock(&m->mu);
        if (period < 1) period = 1;
        send_stats(m, sid, label);
        if (net_now_ms() < next_ka) {
            pthread_mutex_lock(&m->mu);
            continue;
        }
        next_ka = net_now_ms() + 1000u * period;
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

void mc_set_label(struct mc *m, const char *label)
{
    pthread_mutex_lock(&m->mu);
    snprintf(m->label, sizeof(m->label), "%s", label);
    pthread_mutex_unlock(&m->mu);
}

int mc_init(struct mc *m, const char *list, int io_timeout_ms)
{
    memset(m, 0, sizeof(*m));
    int rc = mc_peers_init(m, list);
    if (rc) return rc;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->stop_cv, NULL);
    mc_seq_init(&m->seq);
    m->io_timeout_ms = io_timeout_ms;
    /* One connect attempt per try: a dead replica costs a moment, then the next is asked. */
    m->ropts = (struct rpc_opts){.connect_timeout_ms = MC_CONNECT_MS,
                                 .call_timeout_ms = io_timeout_ms,
                                 .backoff_min_ms = MC_PAUSE_MIN_MS,
                                 .backoff_max_ms = MC_PAUSE_MAX_MS,
                                 .connect_attempts = 1};
    return 0;
}

int mc_open(struct mc *m, const char *list, int io_timeout_ms)
{
    int rc = mc_init(m, list, io_timeout_ms);
    if (rc) return rc;
    rc = session_open(m, 0);
    if (rc) {
        LOG_ERR("meta", "cannot open a session with the meta service at %s: %s", list,
                strerror(-rc));
        mc_close(m);
        return rc;
    }
    if (pthread_create(&m->keepalive, NULL, keepalive_main, m) == 0) m->ka_running = 1;
    char cur[CAIRN_ADDR_MAX + 1];
    mc_current(m, cur);
    LOG_INFO("meta", "session %" PRIu64 " with %s, chunk size %" PRIu64, m->session, cur,
             m->chunk_size);
    return 0;
}

void mc_close(struct mc *m)
{
    if (m->npeer == 0) return; /* never set up, or closed already */
    pthread_mutex_lock(&m->mu);
    m->stopping = 1;
    pthread_cond_broadcast(&m->stop_cv);
    pthread_mutex_unlock(&m->mu);
    if (m->ka_running) pthread_join(m->keepalive, NULL);
    m->ka_running = 0;
    if (m->session) {
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, m->session);
        struct rpc_reply rep;
        int to = m->io_timeout_ms < MC_CLOSE_MS ? m->io_timeout_ms : MC_CLOSE_MS;
        if (call_within(m, MSG_SESSION_CLOSE, &b, &rep, to) == 0) rpc_reply_free(&rep);
        wbuf_free(&b);
        m->session = 0;
    }
    mc_peers_free(m);
    mc_seq_destroy(&m->seq);
    pthread_cond_destroy(&m->stop_cv);
    pthread_mutex_destroy(&m->mu);
}

int mc_lookup(struct mc *m, uint64_t parent, const char *name, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    return call_attr(m, MSG_LOOKUP, &b, a);
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

/* Call (b freed here) for a reply of attr followed, optionally, by chunk infos (a hint: a
 * list that does not decode counts as none). */
static int call_attr_chunks(struct mc *m, uint16_t type, struct wbuf *b, struct cairn_attr *a,
                            struct chunk_info *ci, uint32_t max, uint32_t *n)
{
    struct rpc_reply rep;
    struct rcur c;
    *n = 0;
    int rc = call_cur(m, type, b, &rep, &c);
    if (rc) return rc;
    proto_get_attr(&c, a);
    rc = c.err ? -EIO : 0;
    if (!rc && c.left > 0 && get_chunk_infos(&c, ci, max, n)) *n = 0;
    rpc_reply_free(&rep);
    return rc;
}

int mc_lookup_chunks(struct mc *m, uint64_t parent, const char *name, struct cairn_attr *a,
                     struct chunk_info *ci, uint32_t max, uint32_t *n)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u8(&b, LOOKUP_CHUNKS);
    return call_attr_chunks(m, MSG_LOOKUP, &b, a, ci, max, n);
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

/* The optional trailing umask of MKNOD, MKDIR and CREATE (proto.h). */
static void put_umask(struct wbuf *b, int umask)
{
    if (umask != MC_NO_UMASK) wbuf_put_u32(b, (uint32_t)umask & 0777u);
}

int mc_mknod(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint64_t rdev,
             uint32_t uid, uint32_t gid, int umask, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u64(&b, rdev);
    wbuf_put_u32(&b, uid);
    wbuf_put_u32(&b, gid);
    put_umask(&b, umask);
    return call_attr(m, MSG_MKNOD, &b, a);
}

int mc_mkdir(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, int umask, struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    put_name(&b, name);
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, uid);
    wbuf_put_u32(&b, gid);
    put_umask(&b, umask);
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
              uint32_t gid, uint32_t flags, int umask, struct cairn_attr *a)
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
    put_umask(&b, umask);
    return call_attr(m, MSG_CREATE, &b, a);
}

int mc_open_file(struct mc *m, uint64_t ino, uint32_t flags, struct cairn_attr *a,
                 struct chunk_info *ci, uint32_t max, uint32_t *n)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u32(&b, flags);
    wbuf_put_u64(&b, mc_session(m));
    return call_attr_chunks(m, MSG_OPEN, &b, a, ci, max, n);
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
