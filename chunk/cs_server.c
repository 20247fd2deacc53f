/* cs_server.c - the chunk server's request handling: an accept loop and one thread per
 * connection (bounded by max_conns), blocking frame I/O. The connection thread reads every
 * frame; it hands CHK_READs to the read workers (cs_reads.c, several in flight per
 * connection) and handles every other request itself, in order, once the reads before it are
 * answered (cs_conn.h). Decodes and validates every MSG_CHK_* request, applies it to the chunk
 * store, forwards writes, truncates and fallocates down the chain, and fsyncs the chunks a
 * connection wrote when it closes cleanly. A malformed frame closes that connection only; a
 * connection closing with reads in flight is freed when the last one is done. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cksum.h"
#include "cs_conn.h"
#include "log.h"
#include "net.h"
#include "rpc.h"
#include "wire.h"

#define CS_MAX_PAYLOAD (CAIRN_IO_MAX + 4096)
#define CS_CHAIN_CONNECT_MS 3000 /* give up on an unreachable downstream after this */
/* A client that takes no reply bytes for this long is dropped: it would hold up the read
 * workers waiting to send to it. */
#define CS_SEND_TIMEOUT_S 60

static void conn_dirty(struct cs_conn *c, uint64_t id, uint32_t ver)
{
    for (int i = 0; i < c->ndirty; i++)
        if (c->dirty[i].id == id) {
            c->dirty[i].ver = ver;
            return;
        }
    if (c->ndirty == CS_DIRTY_MAX) {
        c->dirty_overflow = 1;
        return;
    }
    c->dirty[c->ndirty].id = id;
    c->dirty[c->ndirty++].ver = ver;
}

/* Parse a chain list from the cursor: n addresses. */
static int get_chain(struct rcur *r, uint8_t *n, char (*chain)[CAIRN_ADDR_MAX + 1])
{
    *n = rcur_u8(r);
    if (*n > CAIRN_MAX_CHAIN) return -EINVAL;
    for (int i = 0; i < *n; i++)
        if (rcur_str(r, chain[i], CAIRN_ADDR_MAX) < 0) return -EBADMSG;
    return r->err;
}

static void put_chain(struct wbuf *b, uint8_t n, char (*chain)[CAIRN_ADDR_MAX + 1])
{
    wbuf_put_u8(b, n - 1);
    for (int i = 1; i < n; i++)
        wbuf_put_str(b, chain[i], strlen(chain[i]));
}

/* Forward a request to chain[0]; *call is NULL when nothing was sent (rc says why). */
static int chain_submit(uint16_t type, struct wbuf *fwd, const void *data, size_t dlen,
                        const char *addr, struct rpc_call **call)
{
    *call = NULL;
    struct rpc_conn *rc = cs_chain_conn(addr);
    if (!rc) return -EAGAIN;
    int r = rpc_submit(rc, type, fwd->data, fwd->len, data, dlen,
                       net_now_ms() + CS_CHAIN_CONNECT_MS, call);
    if (r) LOG_WARN("chain", "forward to %s failed: %s", addr, strerror(-r));
    return r;
}

/* How far the data got below this server. */
struct chain_res {
    uint8_t ok; /* chain_ok of the reply: hops holding the data, this server included */
    int32_t err;
};

/* Wait for the next hop's reply (at most chain_timeout_ms per hop below this server) and
 * fold it into *res. type says how the reply's chain_ok/chain_err are found (a CHK_WRITE or
 * CHK_FALLOC reply starts with u32 chunk_length, u64 allocated). A hop that failed, timed out, was
 * unreachable or answered garbage leaves res->ok = 1 with its error. */
static void chain_wait(struct cs_conn *c, uint16_t type, struct rpc_call *call, int sub_rc,
                       const char *addr, int nhops, struct chain_res *res)
{
    res->ok = 1;
    res->err = 0;
    if (!call) {
        res->err = sub_rc ? sub_rc : -EIO;
        return;
    }
    struct rpc_reply rep;
    uint64_t wait = (uint64_t)c->s->cfg.chain_timeout_ms * (uint64_t)nhops;
    int r = rpc_wait(call, net_now_ms() + wait, &rep);
    if (r) {
        LOG_WARN("chain", "downstream %s: %s", addr, strerror(-r));
        res->err = r;
        return;
    }
    if (rep.status) {
        LOG_WARN("chain", "downstream %s refused %s: %s", addr, proto_type_name(type),
                 strerror(-rep.status));
        res->err = rep.status;
        rpc_reply_free(&rep);
        return;
    }
    struct rcur rc;
    rcur_init(&rc, rep.payload.data, rep.payload.len);
    if (type == MSG_CHK_WRITE || type == MSG_CHK_FALLOC) {
        rcur_u32(&rc);
        rcur_u64(&rc);
    }
    uint8_t ok = rcur_u8(&rc);
    int32_t err = rcur_i32(&rc);
    if (rcur_done(&rc) || ok < 1 || ok > nhops || (ok < nhops) != (err < 0)) {
        LOG_WARN("chain", "downstream %s: malformed %s reply", addr, proto_type_name(type));
        res->err = -EBADMSG;
    } else {
        res->ok = (uint8_t)(1 + ok);
        res->err = err;
    }
    rpc_reply_free(&rep);
}

static void put_chain_res(struct wbuf *out, const struct chain_res *res)
{
    wbuf_put_u8(out, res->ok);
    wbuf_put_i32(out, res->err);
}

static int do_write(struct cs_conn *c, struct rcur *r, struct wbuf *out)
{
    char chain[CAIRN_MAX_CHAIN][CAIRN_ADDR_MAX + 1];
    uint64_t id = rcur_u64(r);
    uint32_t ver = rcur_u32(r), prev = rcur_u32(r), off = rcur_u32(r);
    uint64_t xx = rcur_u64(r);
    uint8_t flags = rcur_u8(r), n;
    int rc = get_chain(r, &n, chain);
    if (rc) return rc;
    size_t len;
    const uint8_t *data = rcur_bytes(r, CAIRN_IO_MAX, &len);
    if (!data && len) return -EBADMSG;
    if (rcur_done(r)) return -EBADMSG;
    if (cksum_xxh3(data, len) != xx) {
        LOG_WARN("cs", "chunk %016" PRIx64 " v%u: write payload checksum mismatch", id, ver);
        return -EIO;
    }
    struct rpc_call *call = NULL;
    int sub = 0;
    if (n > 0) {
        struct wbuf fwd;
        wbuf_init(&fwd);
        wbuf_put_u64(&fwd, id);
        wbuf_put_u32(&fwd, ver);
        wbuf_put_u32(&fwd, prev);
        wbuf_put_u32(&fwd, off);
        wbuf_put_u64(&fwd, xx);
        wbuf_put_u8(&fwd, flags);
        put_chain(&fwd, n, chain);
        wbuf_put_u32(&fwd, (uint32_t)len);
        sub = fwd.err ? fwd.err : chain_submit(MSG_CHK_WRITE, &fwd, data, len, chain[0], &call);
        wbuf_free(&fwd);
    }
    uint32_t clen = 0;
    struct cs_stats *st = &c->s->stats;
    struct cstore_times tm = {0};
    rc = cstore_write_timed(&c->s->store, id, ver, prev, off, data, (uint32_t)len,
                            flags & CHK_WRITE_SYNC, &clen, &tm);
    cs_stat_add(&st->write_disk_us, tm.disk_us);
    cs_stat_add(&st->write_fsync_us, tm.sync_us);
    if (rc)
        LOG_DEBUG("cs", "chunk %016" PRIx64 " v%u write: %s", id, ver, strerror(-rc));
    else
        conn_dirty(c, id, ver);
    struct chain_res res = {.ok = 1, .err = 0};
    if (n > 0) {
        uint64_t t0 = cstore_now_us();
        chain_wait(c, MSG_CHK_WRITE, call, sub, chain[0], n, &res);
        cs_stat_add(&st->write_chain_us, cstore_now_us() - t0);
    }
    if (!rc) {
        uint64_t alloc = 0;
        cstore_alloc(&c->s->store, id, &alloc); /* 0 if it cannot tell: st_blocks only */
        wbuf_put_u32(out, clen);
        wbuf_put_u64(out, alloc);
        put_chain_res(out, &res);
    }
    return rc;
}

/* Send a chain request on to chain[0]: its fixed fields as they came (the first nfixed bytes
 * of the payload) and the rest of the chain. Returns chain_submit's status (0 with n == 0:
 * nothing to send). */
static int chain_forward(uint16_t type, const uint8_t *fixed, size_t nfixed, uint8_t n,
                         char chain[][CAIRN_ADDR_MAX + 1], struct rpc_call **call)
{
    if (n == 0) return 0;
    struct wbuf fwd;
    wbuf_init(&fwd);
    wbuf_put_raw(&fwd, fixed, nfixed);
    put_chain(&fwd, n, chain);
    int sub = fwd.err ? fwd.err : chain_submit(type, &fwd, NULL, 0, chain[0], call);
    wbuf_free(&fwd);
    return sub;
}

static int do_truncate(struct cs_conn *c, struct rcur *r, struct wbuf *out)
{
    char chain[CAIRN_MAX_CHAIN][CAIRN_ADDR_MAX + 1];
    const uint8_t *fixed = r->p;
    uint64_t id = rcur_u64(r);
    uint32_t ver = rcur_u32(r), prev = rcur_u32(r), len = rcur_u32(r);
    size_t nfixed = (size_t)(r->p - fixed);
    uint8_t n;
    int rc = get_chain(r, &n, chain);
    if (rc || rcur_done(r)) return rc ? rc : -EBADMSG;
    struct rpc_call *call = NULL;
    int sub = chain_forward(MSG_CHK_TRUNCATE, fixed, nfixed, n, chain, &call);
    rc = cstore_truncate(&c->s->store, id, ver, prev, len);
    if (!rc) conn_dirty(c, id, ver);
    struct chain_res res = {.ok = 1, .err = 0};
    if (n > 0) chain_wait(c, MSG_CHK_TRUNCATE, call, sub, chain[0], n, &res);
    if (!rc) put_chain_res(out, &res);
    return rc;
}

static int do_falloc(struct cs_conn *c, struct rcur *r, struct wbuf *out)
{
    char chain[CAIRN_MAX_CHAIN][CAIRN_ADDR_MAX + 1];
    const uint8_t *fixed = r->p;
    uint64_t id = rcur_u64(r);
    uint32_t ver = rcur_u32(r), prev = rcur_u32(r), off = rcur_u32(r), len = rcur_u32(r);
    uint8_t mode = rcur_u8(r), n;
    size_t nfixed = (size_t)(r->p - fixed);
    int rc = get_chain(r, &n, chain);
    if (rc || rcur_done(r)) return rc ? rc : -EBADMSG;
    struct rpc_call *call = NULL;
    int sub = chain_forward(MSG_CHK_FALLOC, fixed, nfixed, n, chain, &call);
    uint32_t clen = 0;
    rc = cstore_falloc(&c->s->store, id, ver, prev, off, len, mode, &clen);
    if (rc)
        LOG_DEBUG("cs", "chunk %016" PRIx64 " v%u fallocate mode %u [%u, +%u): %s", id, ver, mode,
                  off, len, strerror(-rc));
    else
        conn_dirty(c, id, ver);
    struct chain_res res = {.ok = 1, .err = 0};
    if (n > 0) chain_wait(c, MSG_CHK_FALLOC, call, sub, chain[0], n, &res);
    if (!rc) {
        uint64_t alloc = 0;
        cstore_alloc(&c->s->store, id, &alloc); /* 0 if it cannot tell: st_blocks only */
        wbuf_put_u32(out, clen);
        wbuf_put_u64(out, alloc);
        put_chain_res(out, &res);
    }
    return rc;
}

/* Every request but CHK_READ (cs_reads.c). */
static int handle(struct cs_conn *c, uint16_t type, struct rcur *r, struct wbuf *out)
{
    struct cstore *st = &c->s->store;
    uint64_t id;
    uint32_t ver, len;
    int rc;
    switch (type) {
    case MSG_CHK_WRITE:
        return do_write(c, r, out);
    case MSG_CHK_TRUNCATE:
        return do_truncate(c, r, out);
    case MSG_CHK_FALLOC:
        return do_falloc(c, r, out);
    case MSG_CHK_DELETE:
        id = rcur_u64(r);
        ver = rcur_u32(r);
        if (rcur_done(r)) return -EBADMSG;
        return cstore_delete(st, id, ver);
    case MSG_CHK_FSYNC:
        id = rcur_u64(r);
        ver = rcur_u32(r);
        if (rcur_done(r)) return -EBADMSG;
        return cstore_fsync(st, id, ver);
    case MSG_CHK_INFO:
        id = rcur_u64(r);
        if (rcur_done(r)) return -EBADMSG;
        rc = cstore_info(st, id, &ver, &len);
        if (!rc) {
            wbuf_put_u32(out, ver);
            wbuf_put_u32(out, len);
        }
        return rc;
    case MSG_CHK_STATS:
        if (rcur_done(r)) return -EBADMSG;
        return cs_stats_put(c->s, out);
    case MSG_CHK_LOCAL:
        if (rcur_done(r)) return -EBADMSG;
        return cs_local_put(c->s, out);
    case MSG_CHK_SEEK: {
        id = rcur_u64(r);
        ver = rcur_u32(r);
        uint32_t off = rcur_u32(r), at = 0;
        uint8_t whence = rcur_u8(r);
        if (rcur_done(r)) return -EBADMSG;
        rc = cstore_seek(st, id, ver, off, whence, &at);
        if (!rc) wbuf_put_u32(out, at);
        return rc;
    }
    case MSG_CHK_SETVER:
        id = rcur_u64(r);
        ver = rcur_u32(r);
        if (rcur_done(r) || ver == 0) return rcur_done(r) ? -EBADMSG : -EINVAL;
        rc = cstore_setver(st, id, ver, &len);
        if (!rc) wbuf_put_u32(out, len);
        return rc;
    default:
        return -EOPNOTSUPP;
    }
}

int cs_conn_dead(struct cs_conn *c)
{
    return __atomic_load_n(&c->dead, __ATOMIC_ACQUIRE);
}

void cs_conn_kill(struct cs_conn *c)
{
    if (!__atomic_exchange_n(&c->dead, 1, __ATOMIC_ACQ_REL)) shutdown(c->fd, SHUT_RDWR);
}

int cs_conn_reply(struct cs_conn *c, const struct wire_hdr *req, int rc, const struct wbuf *out,
                  const void *data, uint32_t dlen, uint64_t t_recv)
{
    if (!rc && out->err) rc = out->err;
    struct wire_hdr rh = {.type = req->type | WIRE_REPLY_BIT, .reqid = req->reqid, .status = rc};
    size_t n1 = rc ? 0 : out->len;
    if (rc) dlen = 0;
    rh.length = (uint32_t)(n1 + dlen);
    pthread_mutex_lock(&c->wlock);
    int r = cs_conn_dead(c) ? -EPIPE : wire_send(c->fd, &rh, out->data, n1, data, dlen);
    pthread_mutex_unlock(&c->wlock);
    cs_stats_request(c->s, req->type, rc ? rc : r, req->length + (r ? 0 : rh.length), t_recv);
    if (r && !cs_conn_dead(c)) {
        LOG_WARN("cs", "connection closed: reply to %s: %s", proto_type_name(req->type),
                 strerror(-r));
        cs_conn_kill(c);
    }
    return r;
}

void cs_conn_wait_reads(struct cs_conn *c, int n)
{
    pthread_mutex_lock(&c->lock);
    while (c->reads > n)
        pthread_cond_wait(&c->done, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static struct cs_conn *conn_new(struct cs_state *s, int fd)
{
    struct cs_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->s = s;
    c->fd = fd;
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->done, NULL);
    return c;
}

/* No read of c is in flight any more (cs_conn_wait_reads(c, 0)). */
static void conn_close(struct cs_conn *c, int clean)
{
    if (clean) { /* close of a write session: make what it wrote durable */
        if (c->dirty_overflow) sync();
        for (int i = 0; i < c->ndirty; i++)
            cstore_fsync(&c->s->store, c->dirty[i].id, c->dirty[i].ver);
    }
    close(c->fd);
    cs_reads_conn_free(c);
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->done);
    pthread_mutex_lock(&c->s->lock);
    c->s->nconns--;
    pthread_mutex_unlock(&c->s->lock);
    free(c);
}

static void *conn_main(void *arg)
{
    struct cs_conn *c = arg;
    struct wbuf in, out;
    wbuf_init(&in);
    wbuf_init(&out);
    int clean = 0;
    while (!c->s->stop) {
        struct wire_hdr h;
        int rc = wire_recv(c->fd, &h, &in, CS_MAX_PAYLOAD);
        if (rc) {
            clean = rc == -ECONNRESET && !cs_conn_dead(c); /* orderly EOF */
            if (rc != -ECONNRESET && !cs_conn_dead(c))
                LOG_WARN("cs", "connection closed: %s", strerror(-rc));
            break;
        }
        uint64_t t_recv = cstore_now_us();
        if (h.type & WIRE_REPLY_BIT) {
            LOG_WARN("cs", "connection closed: unexpected reply frame");
            break;
        }
        struct rcur r;
        rcur_init(&r, in.data, in.len);
        if (h.type == MSG_CHK_READ) {
            rc = cs_reads_submit(c, &h, &r, t_recv);
        } else {
            cs_conn_wait_reads(c, 0); /* in order: after the reads sent before it */
            wbuf_reset(&out);
            __atomic_add_fetch(&c->s->load, 1, __ATOMIC_RELAXED);
            rc = handle(c, h.type, &r, &out);
            __atomic_sub_fetch(&c->s->load, 1, __ATOMIC_RELAXED);
            if (rc != -EBADMSG) rc = cs_conn_reply(c, &h, rc, &out, NULL, 0, t_recv) ? -EPIPE : 0;
        }
        if (rc == -EBADMSG)
            LOG_WARN("cs", "malformed %s request: closing connection", proto_type_name(h.type));
        if (rc) break;
    }
    wbuf_free(&in);
    wbuf_free(&out);
    if (!clean) cs_conn_kill(c); /* reads still queued are dropped, sends fail at once */
    cs_conn_wait_reads(c, 0);
    conn_close(c, clean);
    return NULL;
}

int cs_server_run(struct cs_state *s)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (!s->stop) {
        struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
        int n = poll(&p, 1, 300);
        if (n <= 0) continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pthread_mutex_lock(&s->lock);
        int full = s->nconns >= s->cfg.max_conns;
        if (!full) s->nconns++;
        pthread_mutex_unlock(&s->lock);
        if (full) {
            LOG_WARN("cs", "too many connections (%d): refusing one", s->cfg.max_conns);
            close(fd);
            continue;
        }
        struct timeval tv = {.tv_sec = CS_SEND_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        struct cs_conn *c = conn_new(s, fd);
        pthread_t th;
        if (!c) {
            close(fd);
            pthread_mutex_lock(&s->lock);
            s->nconns--;
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        if (pthread_create(&th, &attr, conn_main, c) != 0) conn_close(c, 0);
    }
    pthread_attr_destroy(&attr);
    /* let connection threads notice stop (bounded wait) */
    for (int i = 0; i < 50; i++) {
        pthread_mutex_lock(&s->lock);
        int n = s->nconns;
        pthread_mutex_unlock(&s->lock);
        if (!n) break;
        usleep(20000);
    }
    return 0;
}
