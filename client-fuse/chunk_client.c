/* chunk_client.c - the client's requests to chunk servers.
 *
 * Owns a small pool of pipelined rpc connections per chunk server address (a server handles
 * the requests of one connection in order, so several connections let unrelated reads run in
 * parallel), the end-to-end check of every read reply against its block checksums, replica
 * fail-over for reads, and chain writes, truncates and fsyncs. Every wait is bounded by the
 * pool's io_timeout. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cksum.h"
#include "client.h"
#include "log.h"
#include "net.h"

struct cc_server {
    struct cc_server *next;
    char addr[CAIRN_ADDR_MAX + 1];
    struct rpc_conn *conn[CM_CC_POOL];
    unsigned rr;
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

/* A connection to addr (round robin over the pool); NULL on ENOMEM. */
static struct rpc_conn *conn_for(struct cc_pool *p, const char *addr)
{
    pthread_mutex_lock(&p->mu);
    struct cc_server *s;
    for (s = p->servers; s; s = s->next)
        if (!strcmp(s->addr, addr)) break;
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

int cc_read_submit(struct cc_pool *p, const char *addr, uint64_t chunk_id, uint32_t version,
                   uint32_t off, uint32_t len, uint64_t deadline, struct rpc_call **call)
{
    struct rpc_conn *c = conn_for(p, addr);
    if (!c) return -ENOMEM;
    uint8_t req[20];
    le_put64(req, chunk_id);
    le_put32(req + 8, version);
    le_put32(req + 12, off);
    le_put32(req + 16, len);
    return rpc_submit(c, MSG_CHK_READ, req, sizeof(req), NULL, 0, deadline, call);
}

int cc_read_finish(struct rpc_call *call, uint64_t deadline, uint32_t off, uint32_t len,
                   uint8_t *out)
{
    struct rpc_reply rep;
    int rc = rpc_wait(call, deadline, &rep);
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
    return rc;
}

int cc_read(struct cc_pool *p, const struct chunk_info *ci, int first, uint32_t off, uint32_t len,
            uint8_t *out)
{
    if (ci->nloc == 0) return -ENOENT;
    int rc = -EIO;
    for (int r = 0; r < ci->nloc; r++) {
        const char *addr = ci->loc[(first + r) % ci->nloc].addr;
        uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
        struct rpc_call *call;
        rc = cc_read_submit(p, addr, ci->chunk_id, ci->version, off, len, deadline, &call);
        if (!rc) rc = cc_read_finish(call, deadline, off, len, out);
        if (!rc) return 0;
        LOG_WARN("read", "chunk %016" PRIx64 " v%u at %s: %s", ci->chunk_id, ci->version, addr,
                 strerror(-rc));
    }
    return rc;
}

/* Encode the chain tail (every location after the first). */
static void put_chain_tail(struct wbuf *b, const struct chunk_info *ci)
{
    wbuf_put_u8(b, (uint8_t)(ci->nloc - 1));
    for (int i = 1; i < ci->nloc; i++)
        wbuf_put_str(b, ci->loc[i].addr, strlen(ci->loc[i].addr));
}

/* Wait for one CHK_WRITE reply; *alloc keeps the largest allocation a server reported. */
static int wait_write(struct rpc_call *k, uint64_t deadline, uint64_t *alloc)
{
    struct rpc_reply rep;
    int w = rpc_wait(k, deadline, &rep);
    if (w) return w;
    w = rep.status;
    if (!w && alloc) {
        struct rcur c;
        rcur_init(&c, rep.payload.data, rep.payload.len);
        rcur_u32(&c); /* chunk length */
        uint64_t a = rcur_u64(&c);
        if (!c.err && a > *alloc) *alloc = a;
    }
    rpc_reply_free(&rep);
    return w;
}

int cc_write(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, const uint8_t *data,
             size_t len, int sync, uint64_t *alloc)
{
    if (ci->nloc == 0) return -ENOSPC;
    struct rpc_conn *c = conn_for(p, ci->loc[0].addr);
    if (!c) return -ENOMEM;
    enum { MAXP = 16 };
    struct rpc_call *calls[MAXP];
    int ncalls = 0, rc = 0;
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    size_t done = 0;
    while (done < len) {
        size_t n = len - done;
        if (n > CAIRN_IO_MAX) n = CAIRN_IO_MAX;
        if (ncalls == MAXP) {
            /* wait for the oldest before sending more */
            int w = wait_write(calls[0], deadline, alloc);
            if (w && !rc) rc = w;
            memmove(calls, calls + 1, sizeof(calls[0]) * (MAXP - 1));
            ncalls--;
        }
        if (rc) break;
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, ci->chunk_id);
        wbuf_put_u32(&b, ci->version);
        wbuf_put_u32(&b, ci->prev_version);
        wbuf_put_u32(&b, off + (uint32_t)done);
        wbuf_put_u64(&b, cksum_xxh3(data + done, n));
        wbuf_put_u8(&b, sync ? CHK_WRITE_SYNC : 0);
        put_chain_tail(&b, ci);
        wbuf_put_u32(&b, (uint32_t)n);
        int s = b.err ? b.err
                      : rpc_submit(c, MSG_CHK_WRITE, b.data, b.len, data + done, n, deadline,
                                   &calls[ncalls]);
        wbuf_free(&b);
        if (s) {
            rc = s;
            break;
        }
        ncalls++;
        done += n;
    }
    for (int i = 0; i < ncalls; i++) {
        int w = wait_write(calls[i], deadline, alloc);
        if (w && !rc) rc = w;
    }
    if (rc)
        LOG_WARN("write", "chunk %016" PRIx64 " v%u via %s: %s", ci->chunk_id, ci->version,
                 ci->loc[0].addr, strerror(-rc));
    return rc;
}

int cc_truncate(struct cc_pool *p, const struct chunk_info *ci, uint32_t length)
{
    if (ci->nloc == 0) return -ENOSPC;
    struct rpc_conn *c = conn_for(p, ci->loc[0].addr);
    if (!c) return -ENOMEM;
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ci->chunk_id);
    wbuf_put_u32(&b, ci->version);
    wbuf_put_u32(&b, ci->prev_version);
    wbuf_put_u32(&b, length);
    put_chain_tail(&b, ci);
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    struct rpc_call *call;
    int rc =
        b.err ? b.err : rpc_submit(c, MSG_CHK_TRUNCATE, b.data, b.len, NULL, 0, deadline, &call);
    wbuf_free(&b);
    if (!rc) {
        struct rpc_reply rep;
        rc = rpc_wait(call, deadline, &rep);
        if (!rc) {
            rc = rep.status;
            rpc_reply_free(&rep);
        }
    }
    if (rc)
        LOG_WARN("write", "truncate chunk %016" PRIx64 " v%u: %s", ci->chunk_id, ci->version,
                 strerror(-rc));
    return rc;
}

int cc_fsync(struct cc_pool *p, const struct chunk_info *ci)
{
    struct rpc_call *calls[CAIRN_MAX_LOCS];
    int sub[CAIRN_MAX_LOCS];
    uint64_t deadline = net_now_ms() + (uint64_t)p->io_timeout_ms;
    uint8_t req[12];
    le_put64(req, ci->chunk_id);
    le_put32(req + 8, ci->version);
    for (int i = 0; i < ci->nloc; i++) {
        struct rpc_conn *c = conn_for(p, ci->loc[i].addr);
        sub[i] = c ? rpc_submit(c, MSG_CHK_FSYNC, req, sizeof(req), NULL, 0, deadline, &calls[i])
                   : -ENOMEM;
    }
    int rc = 0;
    for (int i = 0; i < ci->nloc; i++) {
        int w = sub[i];
        if (!w) {
            struct rpc_reply rep;
            w = rpc_wait(calls[i], deadline, &rep);
            if (!w) {
                w = rep.status;
                rpc_reply_free(&rep);
            }
        }
        if (w && !rc) rc = w;
    }
    return rc;
}
