/* replicate.c - one replication order: copy chunk id at version ver from other chunk
 * servers into this store. SETVER ver goes to every source first (best effort, so that a
 * writer still holding the older lease is refused from then on); then one source after
 * another is asked for CHK_INFO and the whole chunk with CHK_READ_EXACT in CAIRN_IO_MAX
 * pieces, RP_INFLIGHT of them in flight on one pipelined connection. Every block is verified
 * against the checksum that came with it before it is written to the temporary file; any
 * error, short or malformed reply, or checksum mismatch abandons that source and the next
 * one is tried. A complete copy is fsynced and installed at ver (cstore_tmp_install). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "cksum.h"
#include "cs.h"
#include "log.h"
#include "net.h"
#include "rpc.h"

#define RP_INFLIGHT 4
#define RP_MAX_NB (CAIRN_IO_MAX / CKSUM_BLOCK + 2)

static struct rpc_conn *rp_conn(const char *addr, int timeout_ms)
{
    struct rpc_opts o = {.connect_timeout_ms = 2000,
                         .call_timeout_ms = timeout_ms,
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 500,
                         .connect_attempts = 2};
    return rpc_conn_new(addr, &o);
}

/* SETVER ver on every source at once; logs what each answered. */
static void rp_setver_all(struct rpc_conn **c, int n, uint64_t id, uint32_t ver, int timeout_ms)
{
    struct rpc_call *call[CAIRN_MAX_LOCS];
    int sub[CAIRN_MAX_LOCS];
    uint8_t p[12];
    le_put64(p, id);
    le_put32(p + 8, ver);
    uint64_t deadline = net_now_ms() + (uint64_t)timeout_ms;
    for (int i = 0; i < n; i++) {
        call[i] = NULL;
        sub[i] = c[i] ? rpc_submit(c[i], MSG_CHK_SETVER, p, sizeof(p), NULL, 0, deadline, &call[i])
                      : -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        int rc = sub[i];
        if (call[i]) {
            struct rpc_reply rep;
            rc = rpc_wait(call[i], deadline, &rep);
            if (!rc) {
                rc = rep.status;
                rpc_reply_free(&rep);
            }
        }
        LOG_DEBUG("repl", "chunk %016" PRIx64 " setver v%u on %s: %s", id, ver,
                  c[i] ? rpc_conn_addr(c[i]) : "?", rc ? strerror(-rc) : "ok");
    }
}

static int rp_info(struct rpc_conn *c, uint64_t id, uint32_t *ver, uint32_t *len)
{
    uint8_t p[8];
    le_put64(p, id);
    struct rpc_reply rep;
    int rc = rpc_call(c, MSG_CHK_INFO, p, sizeof(p), NULL, 0, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    *ver = rcur_u32(&r);
    *len = rcur_u32(&r);
    rc = rcur_done(&r);
    rpc_reply_free(&rep);
    return rc;
}

static int rp_submit_read(struct rpc_conn *c, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                          uint64_t deadline, struct rpc_call **call)
{
    uint8_t p[21];
    le_put64(p, id);
    le_put32(p + 8, ver);
    le_put32(p + 12, off);
    le_put32(p + 16, len);
    p[20] = CHK_READ_EXACT;
    return rpc_submit(c, MSG_CHK_READ, p, sizeof(p), NULL, 0, deadline, call);
}

/* Check and verify the reply to the read of [off, off+CAIRN_IO_MAX) of a chunk of length
 * clen, then store it in t. -EBADMSG for a reply that does not answer the question,
 * -EUCLEAN for a block that fails its checksum. */
static int rp_store_piece(struct cstore *st, struct cstore_tmp *t, const struct wbuf *pl,
                          uint32_t off, uint32_t clen)
{
    struct rcur r;
    rcur_init(&r, pl->data, pl->len);
    uint32_t doff = rcur_u32(&r), rlen = rcur_u32(&r), nb = rcur_u32(&r);
    if (r.err || nb > RP_MAX_NB) return -EBADMSG;
    const uint8_t *ck = rcur_view(&r, (size_t)nb * 8);
    size_t dlen = 0;
    const uint8_t *data = rcur_bytes(&r, CAIRN_IO_MAX + 2 * CKSUM_BLOCK, &dlen);
    if (r.err || rcur_done(&r)) return -EBADMSG;
    uint32_t want = clen - off < CAIRN_IO_MAX ? clen - off : CAIRN_IO_MAX;
    if (rlen != clen || doff != off || dlen != want || nb != cksum_nblocks(dlen)) return -EBADMSG;
    uint64_t cks[RP_MAX_NB];
    for (uint32_t i = 0; i < nb; i++) {
        size_t s = (size_t)i * CKSUM_BLOCK;
        size_t valid = dlen - s < CKSUM_BLOCK ? dlen - s : CKSUM_BLOCK;
        cks[i] = le_get64(ck + 8 * i);
        if (cksum_xxh3(data + s, valid) != cks[i]) return -EUCLEAN;
    }
    return cstore_tmp_write(st, t, off, data, (uint32_t)dlen, cks);
}

/* Copy the whole chunk from one source into a temporary file and install it. */
static int rp_copy_from(struct cstore *st, struct rpc_conn *c, uint64_t id, uint32_t ver,
                        int timeout_ms, uint64_t *bytes)
{
    uint32_t hv = 0, clen = 0;
    int rc = rp_info(c, id, &hv, &clen);
    if (rc) return rc;
    if (hv != ver) return -ESTALE;
    struct cstore_tmp t;
    rc = cstore_tmp_open(st, id, ver, clen, &t);
    if (rc) return rc;
    uint32_t np = (uint32_t)(((uint64_t)clen + CAIRN_IO_MAX - 1) / CAIRN_IO_MAX);
    struct rpc_call *call[RP_INFLIGHT] = {NULL};
    uint32_t next = 0; /* next piece to ask for */
    for (uint32_t k = 0; k < np && !rc; k++) {
        /* keep RP_INFLIGHT pieces asked for ahead of the one being stored */
        while (!rc && next < np && next < k + RP_INFLIGHT) {
            uint64_t deadline = net_now_ms() + (uint64_t)timeout_ms;
            rc = rp_submit_read(c, id, ver, next * CAIRN_IO_MAX, CAIRN_IO_MAX, deadline,
                                &call[next % RP_INFLIGHT]);
            if (!rc) next++;
        }
        if (rc) break;
        struct rpc_reply rep;
        struct rpc_call *cl = call[k % RP_INFLIGHT];
        call[k % RP_INFLIGHT] = NULL;
        rc = rpc_wait(cl, net_now_ms() + (uint64_t)timeout_ms, &rep);
        if (rc) break;
        rc = rep.status ? rep.status : rp_store_piece(st, &t, &rep.payload, k * CAIRN_IO_MAX, clen);
        rpc_reply_free(&rep);
    }
    /* abandon what is still in flight (rpc_wait frees each call) */
    for (int i = 0; i < RP_INFLIGHT; i++)
        if (call[i]) {
            struct rpc_reply rep;
            if (rpc_wait(call[i], net_now_ms() + 1, &rep) == 0) rpc_reply_free(&rep);
        }
    if (rc) {
        cstore_tmp_abort(st, &t);
        return rc;
    }
    *bytes = clen;
    return cstore_tmp_install(st, &t);
}

int cs_replicate(struct cstore *st, uint64_t id, uint32_t ver, int nsrc,
                 char (*src)[CAIRN_ADDR_MAX + 1], int timeout_ms, uint64_t *bytes)
{
    *bytes = 0;
    if (ver == 0 || nsrc < 1 || nsrc > CAIRN_MAX_LOCS || timeout_ms < 1) return -EINVAL;
    struct rpc_conn *c[CAIRN_MAX_LOCS];
    for (int i = 0; i < nsrc; i++)
        c[i] = rp_conn(src[i], timeout_ms);
    rp_setver_all(c, nsrc, id, ver, timeout_ms);
    int rc = -ENOENT;
    for (int i = 0; i < nsrc; i++) {
        rc = c[i] ? rp_copy_from(st, c[i], id, ver, timeout_ms, bytes) : -ENOMEM;
        if (!rc) break;
        LOG_WARN("repl", "chunk %016" PRIx64 " v%u: copy from %s failed: %s", id, ver, src[i],
                 strerror(-rc));
        *bytes = 0;
    }
    for (int i = 0; i < nsrc; i++)
        if (c[i]) rpc_conn_free(c[i]);
    return rc;
}
