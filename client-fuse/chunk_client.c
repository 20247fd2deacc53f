/* chunk_client.c - the client's requests to chunk servers.
 *
 * Owns a small pool of pipelined rpc connections per chunk server address (a server handles
 * the requests of one connection in order, so several connections let unrelated reads run in
 * parallel), the end-to-end check of every read reply against its block checksums, replica
 * choice and fail-over for reads, and chain writes, truncates and fsyncs with the decoding of
 * their chain results. Every wait is bounded by the pool's io_timeout.
 *
 * Per server the pool counts this client's requests in flight (the load used to choose a
 * replica) and remembers until when the server is avoided after a timeout or a refused
 * connection. Server entries live as long as the pool, so a struct cc_call may point to one. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cksum.h"
#include "client.h"
#include "cstats.h"
#include "log.h"
#include "net.h"

struct cc_server {
    struct cc_server *next;
    char addr[CAIRN_ADDR_MAX + 1];
    uint64_t id; /* the server id, once a chunk_info named it (p->mu) */
    struct rpc_conn *conn[CM_CC_POOL];
    unsigned rr;
    unsigned inflight;    /* requests in flight (atomic) */
    uint64_t avoid_until; /* net_now_ms() before which reads go elsewhere (atomic) */
};

struct cc_pool {
    pthread_mutex_t mu;
    struct cc_server *servers;
    int io_timeout_ms;
};

struct cc_pool *cc_pool_new(int io_timeout_ms)
{
    struct cc_pool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->io_timeout_ms = io_timeout_ms;
    return p;
}

void cc_pool_free(struct cc_pool *p)
{
    if (!p) return;
    struct cc_server *s = p->servers;
    while (s) {
        struct cc_server *n = s->next;
        for (int i = 0; i < CM_CC_POOL; i++)
            rpc_conn_free(s->conn[i]);
        free(s);
        s = n;
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int cc_io_timeout_ms(const struct cc_pool *p)
{
    return p->io_timeout_ms;
}

/* The entry of addr, or NULL; p->mu held. */
static struct cc_server *server_find(struct cc_pool *p, const char *addr)
{
    struct cc_server *s;
    for (s = p->servers; s; s = s->next)
        if (!strcmp(s->addr, addr)) break;
    return s;
}

/* A connection to addr (round robin over the pool) and its server; NULL on ENOMEM. */
static struct rpc_conn *conn_for(struct cc_pool *p, const char *addr, struct cc_server **srv)
{
    pthread_mutex_lock(&p->mu);
    struct cc_server *s = server_find(p, addr);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) goto fail;
        snprintf(s->addr, sizeof(s->addr), "%s", addr);
        struct rpc_opts o = {.connect_timeout_ms = 2000,
                             .call_timeout_ms = p->io_timeout_ms,
                             .backoff_min_ms = 50,
                             .backoff_max_ms = 1000,
                             .max_payload = CAIRN_IO_MAX + 64 * 1024 + 8192,
                             /* a dead server fails fast: the caller tries another replica */
                             .connect_attempts = 3};
        for (int i = 0; i < CM_CC_POOL; i++) {
            s->conn[i] = rpc_conn_new(addr, &o);
            if (!s->conn[i]) {
                for (int j = 0; j < i; j++)
                    rpc_conn_free(s->conn[j]);
                free(s);
                goto fail;
            }
        }
        s->next = p->servers;
        p->servers = s;
    }
    struct rpc_conn *c = s->conn[s->rr++ % CM_CC_POOL];
    pthread_mutex_unlock(&p->mu);
    if (srv) *srv = s;
    return c;
fail:
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cc_verify_read(const uint8_t *payload, size_t plen, uint32_t off, uint32_t len,
                   struct cc_read_view *v)
{
    struct rcur c;
    rcur_init(&c, payload, plen);
    uint32_t doff = rcur_u32(&c), clen = rcur_u32(&c), nb = rcur_u32(&c);
    if (c.err || nb > plen / 8) return -EBADMSG;
    const uint8_t *cks = rcur_view(&c, (size_t)nb * 8);
    size_t dlen = 0;
    const uint8_t *data = rcur_bytes(&c, CAIRN_IO_MAX + 2 * CKSUM_BLOCK, &dlen);
    if (c.err || rcur_done(&c)) return -EBADMSG;
    if (doff % CKSUM_BLOCK) return -EBADMSG;
    if ((uint64_t)doff + dlen > clen) return -EBADMSG;
    if (nb != cksum_nblocks(dlen)) return -EBADMSG;
    if (off < clen) {
        uint64_t want_end = (uint64_t)off + len;
        if (want_end > clen) want_end = clen;
        if (doff > off || (uint64_t)doff + dlen < want_end) return -EBADMSG;
    }
    for (uint32_t i = 0; i < nb; i++) {
        uint64_t bstart = (uint64_t)doff + (uint64_t)i * CKSUM_BLOCK;
        uint64_t valid = clen - bstart;
        if (valid > CKSUM_BLOCK) valid = CKSUM_BLOCK;
        size_t have = dlen - (size_t)i * CKSUM_BLOCK;
        if (valid > have) return -EBADMSG;
        if (cksum_xxh3(data + (size_t)i * CKSUM_BLOCK, (size_t)valid) != le_get64(cks + 8 * i))
            return -CAIRN_ECORRUPT;
    }
    v->data_offset = doff;
    v->chunk_length = clen;
    v->data = data;
    v->data_len = (uint32_t)dlen;
    return 0;
}

void cc_copy_view(const struct cc_read_view *v, uint32_t off, uint32_t len, uint8_t *out)
{
    uint64_t have_start = v->data_offset, have_end = (uint64_t)v->data_offset + v->data_len;
    uint64_t a = off, b = (uint64_t)off + len;
    memset(out, 0, len);
    uint64_t s = a > have_start ? a : have_start;
    uint64_t e = b < have_end ? b : have_end;
    if (s < e) memcpy(out + (s - a), v->data + (s - have_start), (size_t)(e - s));
}

/* ---- load and replica choice -------------------------------------------------------------- */

int cc_transport_err(int rc)
{
    return rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
           rc == -ENETUNREACH || rc == -ECONNABORTED || rc == -EPIPE || rc == -EHOSTDOWN;
}

static void call_begin(struct cc_call *call, struct cc_server *srv)
{
    call->srv = srv;
    call->t0_us = st_now_us();
    __atomic_add_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
}

/* The call is over: the server's load drops; a transport failure makes it avoided. */
static void call_end(struct cc_call *call, int rc)
{
    struct cc_server *srv = call->srv;
    if (!srv) return;
    __atomic_sub_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
    if (cc_transport_err(rc))
        __atomic_store_n(&srv->avoid_until, net_now_ms() + CM_AVOID_MS, __ATOMIC_RELAXED);
    call->srv = NULL;
}

/* A submit that failed before anything was in flight: only the avoidance counts. */
static void submit_failed(struct cc_server *srv, int rc)
{
    if (srv && cc_transport_err(rc))
        __atomic_store_n(&srv->avoid_until, net_now_ms() + CM_AVOID_MS, __ATOMIC_RELAXED);
}

void cc_rank(int n, const unsigned *load, const int *avoid, unsigned rr, int *order)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    /* insertion sort by (avoided, load, distance from rr): n <= CAIRN_MAX_LOCS */
    for (int i = 1; i < n; i++) {
        int x = order[i], j = i;
        for (; j > 0; j--) {
            int y = order[j - 1];
            unsigned dx = ((unsigned)x + (unsigned)n - rr % (unsigned)n) % (unsigned)n;
            unsigned dy = ((unsigned)y + (unsigned)n - rr % (unsigned)n) % (unsigned)n;
            int before = avoid[x] != avoid[y] ? avoid[x] < avoid[y]
                         : load[x] != load[y] ? load[x] < load[y]
                                              : dx < dy;
            if (!before) break;
            order[j] = y;
        }
        order[j] = x;
    }
}

/* Remember the server ids ci names, for cc_avoided_ids. */
static void learn_ids(struct cc_pool *p, const struct chunk_info *ci)
{
    int n = ci->nloc > CAIRN_MAX_LOCS ? CAIRN_MAX_LOCS : ci->nloc;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++) {
        struct cc_server *s = server_find(p, ci->loc[i].addr);
        if (s) s->id = ci->loc[i].server_id;
    }
    pthread_mutex_unlock(&p->mu);
}

int cc_avoided_ids(struct cc_pool *p, uint64_t *out, int max)
{
    int n = 0;
    uint64_t now = net_now_ms();
    pthread_mutex_lock(&p->mu);
    for (struct cc_server *s = p->servers; s && n < max; s = s->next)
        if (s->id && now < __atomic_load_n(&s->avoid_until, __ATOMIC_RELAXED)) out[n++] = s->id;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void cc_avoid(struct cc_pool *p, const char *addr, uint64_t id)
{
    struct cc_server *s = NULL;
    if (!conn_for(p, addr, &s) || !s) return;
    pthread_mutex_lock(&p->mu);
    s->id = id;
    __atomic_store_n(&s->avoid_until, net_now_ms() + CM_AVOID_MS, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->mu);
}

int cc_avoided(struct cc_pool *p, const char *addr)
{
    pthread_mutex_lock(&p->mu);
    struct cc_server *s = server_find(p, addr);
    int a = s && net_now_ms() < __atomic_load_n(&s->avoid_until, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->mu);
    return a;
}

void cc_order(struct cc_pool *p, const struct chunk_info *ci, int *order)
{
    unsigned load[CAIRN_MAX_LOCS];
    int avoid[CAIRN_MAX_LOCS];
    int n = ci->nloc > CAIRN_MAX_LOCS ? CAIRN_MAX_LOCS : ci->nloc;
    uint64_t now = net_now_ms();
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++) {
        struct cc_server *s = server_find(p, ci->loc[i].addr);
        if (s) s->id = ci->loc[i].server_id; /* learn_ids in the same pass */
        load[i] = s ? __atomic_load_n(&s->inflight, __ATOMIC_RELAXED) / CM_LOAD_BAND : 0;
        avoid[i] = s && now < __atomic_load_n(&s->avoid_until, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&p->mu);
    cc_rank(n, load, avoid, (unsigned)(ci->chunk_id % 1000003u), order);
}

/* ---- reads -------------------------------------------------------------------------------- */

int cc_read_submit(struct cc_pool *p, const char *addr, uint64_t chunk_id, uint32_t version,
                   uint32_t off, uint32_t len, uint64_t deadline, struct cc_call *call)
{
    struct cc_server *srv = NULL;
    struct rpc_conn *c = conn_for(p, addr, &srv);
    call->k = NULL;
    call->srv = NULL;
    if (!c) return -ENOMEM;
    uint8_t req[20];
    le_put64(req, chunk_id);
    le_put32(req + 8, version);
    le_put32(req + 12, off);
    le_put32(req + 16, len);
    int rc = rpc_submit(c, MSG_CHK_READ, req, sizeof(req), NULL, 0, deadline, &call->k);
    if (rc)
        submit_failed(srv, rc);
    else
        call_begin(call, srv);
    return rc;
}

int cc_read_finish(struct cc_call *call, uint64_t deadline, uint32_t off, uint32_t len,
                   uint8_t *out)
{
    struct rpc_reply rep;
    int rc = rpc_wait(call->k, deadline, &rep);
    call_end(call, rc);
    if (rc) return rc;
    if (rep.status < 0) {
        rc = rep.status;
        rpc_reply_free(&rep);
        return rc;
    }
    struct cc_read_view v;
    rc = cc_verify_read(rep.payload.data, rep.payload.len, off, len, &v);
    if (!rc) cc_copy_view(&v, off, len, out);
    rpc_reply_free(&rep);
    st_add(ST_CHUNK_READS, 1);
    st_add(ST_CHUNK_READ_BYTES, len);
    uint64_t us = st_now_us() - call->t0_us;
    st_add(ST_CHUNK_READ_US, us);
    st_observe(STH_CHUNK_READ, us);
    return rc;
}

int cc_request(struct cc_pool *p, const char *addr, uint16_t type, const void *req, size_t len,
               struct rpc_reply *rep)
{
    struct cc_server *srv = NULL;
    struct rpc_conn *c = conn_for(p, addr, &srv);
    if (!c) return -ENOMEM;
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    struct rpc_call *k;
    int rc = rpc_submit(c, type, req, len, NULL, 0, deadline, &k);
    if (!rc) rc = rpc_wait(k, deadline, rep);
    submit_failed(srv, rc);
    if (!rc && rep->status < 0) {
        rc = rep->status;
        rpc_reply_free(rep);
    }
    return rc;
}

int cc_seek(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, int whence, uint32_t *out)
{
    if (ci->nloc == 0) return -ENOENT;
    int order[CAIRN_MAX_LOCS];
    cc_order(p, ci, order);
    uint8_t req[17];
    le_put64(req, ci->chunk_id);
    le_put32(req + 8, ci->version);
    le_put32(req + 12, off);
    req[16] = (uint8_t)whence;
    int rc = -EIO;
    for (int r = 0; r < ci->nloc && r < CAIRN_MAX_LOCS; r++) {
        struct rpc_reply rep;
        rc = cc_request(p, ci->loc[order[r]].addr, MSG_CHK_SEEK, req, sizeof(req), &rep);
        if (rc == -ENOMEM) return rc;
        if (rc == 0) {
            struct rcur cur;
            rcur_init(&cur, rep.payload.data, rep.payload.len);
            *out = rcur_u32(&cur);
            if (rcur_done(&cur)) rc = -EBADMSG;
            rpc_reply_free(&rep);
        }
        if (rc == 0 || rc == -ENXIO) return rc;
    }
    return rc;
}

int cc_read(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, uint32_t len,
            uint8_t *out)
{
    if (ci->nloc == 0) return -ENOENT;
    int order[CAIRN_MAX_LOCS];
    cc_order(p, ci, order);
    int rc = -EIO;
    for (int r = 0; r < ci->nloc && r < CAIRN_MAX_LOCS; r++) {
        const char *addr = ci->loc[order[r]].addr;
        uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
        struct cc_call call;
        rc = cc_read_submit(p, addr, ci->chunk_id, ci->version, off, len, deadline, &call);
        if (!rc) rc = cc_read_finish(&call, deadline, off, len, out);
        if (!rc) return 0;
        LOG_WARN("read", "chunk %016" PRIx64 " v%u at %s: %s", ci->chunk_id, ci->version, addr,
                 strerror(-rc));
    }
    return rc;
}

/* ---- chain writes, truncates, fsyncs -------------------------------------------------------- */

int cc_wres_verdict(const struct cc_wres *r, const struct chunk_info *ci, uint64_t *server)
{
    int err = r->status < 0 ? r->status : r->chain_err;
    if (err == 0) return 0;
    if (err == -ESTALE) return -ESTALE;
    int hop = r->status < 0 ? 0 : r->chain_ok;
    /* a hop past the chain (a confused server) or an empty chain: blame the head */
    if (hop >= ci->nloc) hop = 0;
    *server = ci->nloc ? ci->loc[hop].server_id : 0;
    return 1;
}

/* Encode the chain tail (every location after the first). */
static void put_chain_tail(struct wbuf *b, const struct chunk_info *ci)
{
    wbuf_put_u8(b, (uint8_t)(ci->nloc - 1));
    for (int i = 1; i < ci->nloc; i++)
        wbuf_put_str(b, ci->loc[i].addr, strlen(ci->loc[i].addr));
}

/* Decode u8 chain_ok, i32 chain_err at c. A server that predates chain results sends
 * neither: it replies only once its whole chain succeeded, so absent means "every hop". */
static void get_chain_result(struct rcur *c, struct cc_wres *r)
{
    if (c->left == 0) {
        r->chain_ok = 0;
        r->chain_err = 0;
        return;
    }
    r->chain_ok = rcur_u8(c);
    r->chain_err = (int32_t)rcur_u32(c);
    if (c->err || r->chain_err > 0) r->status = -EBADMSG;
}

/* Wait for a CHK_WRITE, CHK_FALLOC (is_write) or CHK_TRUNCATE reply and decode it into r. */
static void wait_chain(struct cc_call *call, uint64_t deadline, int is_write, struct cc_wres *r)
{
    struct rpc_reply rep;
    memset(r, 0, sizeof(*r));
    int w = rpc_wait(call->k, deadline, &rep);
    call_end(call, w);
    if (w) {
        r->status = w;
        return;
    }
    r->status = rep.status;
    if (rep.status == 0) {
        struct rcur c;
        rcur_init(&c, rep.payload.data, rep.payload.len);
        if (is_write) {
            rcur_u32(&c); /* chunk length */
            r->alloc = rcur_u64(&c);
            if (c.err) r->status = -EBADMSG;
        }
        if (!r->status) get_chain_result(&c, r);
    }
    rpc_reply_free(&rep);
}

int cc_write_submit(struct cc_pool *p, const struct chunk_info *ci, uint32_t off,
                    const uint8_t *data, size_t len, int sync, uint64_t deadline,
                    struct cc_call *call)
{
    call->k = NULL;
    call->srv = NULL;
    if (ci->nloc == 0) return -ENOSPC;
    if (len > CAIRN_IO_MAX) return -EINVAL;
    struct cc_server *srv = NULL;
    struct rpc_conn *c = conn_for(p, ci->loc[0].addr, &srv);
    if (!c) return -ENOMEM;
    learn_ids(p, ci);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ci->chunk_id);
    wbuf_put_u32(&b, ci->version);
    wbuf_put_u32(&b, ci->prev_version);
    wbuf_put_u32(&b, off);
    wbuf_put_u64(&b, cksum_xxh3(data, len));
    wbuf_put_u8(&b, sync ? CHK_WRITE_SYNC : 0);
    put_chain_tail(&b, ci);
    wbuf_put_u32(&b, (uint32_t)len);
    int rc =
        b.err ? b.err : rpc_submit(c, MSG_CHK_WRITE, b.data, b.len, data, len, deadline, &call->k);
    wbuf_free(&b);
    if (rc)
        submit_failed(srv, rc);
    else
        call_begin(call, srv);
    return rc;
}

void cc_write_finish(struct cc_call *call, uint64_t deadline, struct cc_wres *r)
{
    wait_chain(call, deadline, 1, r);
}

void cc_write(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, const uint8_t *data,
              size_t len, int sync, struct cc_wres *r)
{
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    struct cc_call call;
    int rc = cc_write_submit(p, ci, off, data, len, sync, deadline, &call);
    if (rc) {
        memset(r, 0, sizeof(*r));
        r->status = rc;
        return;
    }
    cc_write_finish(&call, deadline, r);
}

/* A request that goes down the chain of copies (CHK_TRUNCATE, CHK_FALLOC) to the first copy:
 * chunk id, version, previous version, the fields of more, then the rest of the chain; waited
 * for. write_layout: the reply is laid out as CHK_WRITE's. learn: note the servers' ids. */
static void chain_request(struct cc_pool *p, const struct chunk_info *ci, uint16_t type,
                          const struct wbuf *more, int write_layout, int learn, struct cc_wres *r)
{
    memset(r, 0, sizeof(*r));
    if (ci->nloc == 0) {
        r->status = -ENOSPC;
        return;
    }
    struct cc_server *srv = NULL;
    struct rpc_conn *c = conn_for(p, ci->loc[0].addr, &srv);
    if (!c) {
        r->status = -ENOMEM;
        return;
    }
    if (learn) learn_ids(p, ci);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ci->chunk_id);
    wbuf_put_u32(&b, ci->version);
    wbuf_put_u32(&b, ci->prev_version);
    wbuf_put_raw(&b, more->data, more->len);
    if (more->err) b.err = more->err;
    put_chain_tail(&b, ci);
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    struct cc_call call = {0};
    int rc = b.err ? b.err : rpc_submit(c, type, b.data, b.len, NULL, 0, deadline, &call.k);
    wbuf_free(&b);
    if (rc) {
        submit_failed(srv, rc);
        r->status = rc;
    } else {
        call_begin(&call, srv);
        wait_chain(&call, deadline, write_layout, r);
    }
}

void cc_truncate(struct cc_pool *p, const struct chunk_info *ci, uint32_t length, struct cc_wres *r)
{
    struct wbuf more;
    wbuf_init(&more);
    wbuf_put_u32(&more, length);
    chain_request(p, ci, MSG_CHK_TRUNCATE, &more, 0, 0, r);
    wbuf_free(&more);
    if (r->status || r->chain_err)
        LOG_WARN("write", "truncate chunk %016" PRIx64 " v%u: %s (chain %u ok, %s)", ci->chunk_id,
                 ci->version, strerror(-r->status), r->chain_ok, strerror(-r->chain_err));
}

void cc_falloc(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, uint32_t len,
               uint8_t mode, struct cc_wres *r)
{
    struct wbuf more;
    wbuf_init(&more);
    wbuf_put_u32(&more, off);
    wbuf_put_u32(&more, len);
    wbuf_put_u8(&more, mode);
    chain_request(p, ci, MSG_CHK_FALLOC, &more, 1, 1, r); /* the reply: CHK_WRITE's layout */
    wbuf_free(&more);
    if (r->status || r->chain_err)
        LOG_WARN("write",
                 "fallocate chunk %016" PRIx64 " v%u mode %u [%u, +%u): %s (chain %u ok, %s)",
                 ci->chunk_id, ci->version, mode, off, len, strerror(-r->status), r->chain_ok,
                 strerror(-r->chain_err));
}

/* One request with a fixed 8+4 byte body to addr, waited for; reply payload in *rep. */
static int small_call(struct cc_pool *p, const char *addr, uint16_t type, const uint8_t *req,
                      size_t n, uint64_t deadline, struct rpc_reply *rep)
{
    struct cc_server *srv = NULL;
    struct rpc_conn *c = conn_for(p, addr, &srv);
    if (!c) return -ENOMEM;
    struct cc_call call = {0};
    int rc = rpc_submit(c, type, req, n, NULL, 0, deadline, &call.k);
    if (rc) {
        submit_failed(srv, rc);
        return rc;
    }
    call_begin(&call, srv);
    rc = rpc_wait(call.k, deadline, rep);
    call_end(&call, rc);
    if (!rc && rep->status < 0) {
        rc = rep->status;
        rpc_reply_free(rep);
    }
    return rc;
}

/* A member answered -ESTALE to an fsync: sync the newer version it holds. */
static int fsync_held(struct cc_pool *p, const struct chunk_info *ci, const char *addr,
                      uint64_t deadline)
{
    uint8_t req[12];
    le_put64(req, ci->chunk_id);
    struct rpc_reply rep;
    int rc = small_call(p, addr, MSG_CHK_INFO, req, 8, deadline, &rep);
    if (rc) return rc;
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    uint32_t held = rcur_u32(&c);
    rc = c.err ? -EBADMSG : 0;
    rpc_reply_free(&rep);
    if (rc) return rc;
    if (held < ci->version) return -ESTALE; /* older than ours: it missed our writes */
    le_put32(req + 8, held);
    rc = small_call(p, addr, MSG_CHK_FSYNC, req, sizeof(req), deadline, &rep);
    if (!rc) rpc_reply_free(&rep);
    return rc;
}

int cc_fsync(struct cc_pool *p, const struct chunk_info *ci, int *res)
{
    struct cc_call calls[CAIRN_MAX_LOCS];
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    uint8_t req[12];
    le_put64(req, ci->chunk_id);
    le_put32(req + 8, ci->version);
    int n = ci->nloc > CAIRN_MAX_LOCS ? CAIRN_MAX_LOCS : ci->nloc;
    /* a member that just failed is not waited for again (a dead server costs its connect
     * attempts per chunk otherwise), unless every member did */
    int skip[CAIRN_MAX_LOCS], nskip = 0;
    for (int i = 0; i < n; i++)
        nskip += skip[i] = cc_avoided(p, ci->loc[i].addr);
    if (nskip == n) memset(skip, 0, sizeof(skip));
    for (int i = 0; i < n; i++) {
        struct cc_server *srv = NULL;
        calls[i].srv = NULL;
        if (skip[i]) {
            res[i] = -EHOSTDOWN;
            continue;
        }
        struct rpc_conn *c = conn_for(p, ci->loc[i].addr, &srv);
        res[i] = c ? rpc_submit(c, MSG_CHK_FSYNC, req, sizeof(req), NULL, 0, deadline, &calls[i].k)
                   : -ENOMEM;
        if (res[i])
            submit_failed(srv, res[i]);
        else
            call_begin(&calls[i], srv);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        if (skip[i]) continue;
        if (!res[i]) {
            struct rpc_reply rep;
            int w = rpc_wait(calls[i].k, deadline, &rep);
            call_end(&calls[i], w);
            if (!w) {
                w = rep.status;
                rpc_reply_free(&rep);
            }
            res[i] = w;
        }
        if (res[i] == -ESTALE) res[i] = fsync_held(p, ci, ci->loc[i].addr, deadline);
        if (res[i])
            LOG_WARN("write", "fsync chunk %016" PRIx64 " v%u at %s: %s", ci->chunk_id, ci->version,
                     ci->loc[i].addr, strerror(-res[i]));
        else
            ok++;
    }
    return ok;
}
