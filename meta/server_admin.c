/* server_admin.c - the requests of the `cairn` admin command: SET_COPIES (a record, so every
 * replica agrees), FILEINFO (each chunk of a file with every copy's server, zone, version and
 * state), HEALTH (servers and the repair scanner's counts) and CS_DRAIN (in memory: a meta
 * restart forgets it). Layouts in proto.h. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "meta.h"

#define FILEINFO_MAX 256u

static void reply_out(struct evsrv_conn *conn, const struct wire_hdr *h, struct wbuf *out, int rc)
{
    if (!rc && out->err) rc = out->err;
    evsrv_reply(conn, h, rc, rc ? NULL : out->data, rc ? 0 : out->len);
}

static int set_copies(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r, struct wbuf *out)
{
    struct mop op = {.type = MOP_SET_COPIES};
    op.ino = rcur_u64(r);
    op.flags = rcur_u32(r);
    if (rcur_done(r)) return -EBADMSG;
    int rc = op.flags > CAIRN_COPIES_MAX ? -EINVAL : 0;
    struct mop_result res = {0};
    if (!rc) rc = meta_apply(m, &op, &res);
    if (!rc) {
        LOG_INFO("admin", "inode %" PRIu64 ": copies set to %u (from %s)", op.ino, op.flags,
                 evsrv_conn_peer(conn));
        m->rep.cache_ino = 0;
        repair_rescan(m); /* look at every chunk again soon */
        proto_put_attr(out, &res.attr);
    }
    reply_out(conn, h, out, rc);
    return 0;
}

struct fi_ctx {
    struct meta *m;
    struct wbuf *out;
    uint64_t size, chunk_size;
    uint32_t count, max;
    int more;
};

static int fi_chunk(void *arg, const struct mstore_chunk *ck)
{
    struct fi_ctx *x = arg;
    if (x->count == x->max) {
        x->more = 1;
        return 1;
    }
    struct meta *m = x->m;
    uint64_t start = ck->index * x->chunk_size, len = 0;
    if (x->size > start) len = x->size - start < x->chunk_size ? x->size - start : x->chunk_size;
    wbuf_put_u64(x->out, ck->index);
    wbuf_put_u64(x->out, ck->id);
    wbuf_put_u32(x->out, ck->version);
    wbuf_put_u64(x->out, len);
    struct csr_view v;
    csr_classify(&m->reg, ck, &v);
    wbuf_put_u8(x->out, (uint8_t)v.n);
    for (int k = 0; k < v.n; k++) {
        const struct csr_server *s = &m->reg.srv[v.c[k].slot];
        wbuf_put_u64(x->out, s->id);
        wbuf_put_str(x->out, s->addr, strlen(s->addr));
        wbuf_put_str(x->out, s->zone, strlen(s->zone));
        wbuf_put_u32(x->out, v.c[k].version);
        wbuf_put_u8(x->out, (v.c[k].flags & CSR_H_PENDING) ? COPY_PENDING : v.c[k].state);
    }
    x->count++;
    return 0;
}

static int fileinfo(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                    struct rcur *r, struct wbuf *out)
{
    uint64_t ino = rcur_u64(r), first = rcur_u64(r);
    uint32_t max = rcur_u32(r);
    if (rcur_done(r)) return -EBADMSG;
    if (max == 0 || max > FILEINFO_MAX) max = FILEINFO_MAX;
    struct cairn_attr a;
    int rc = mstore_getattr(m->store, ino, &a);
    if (rc) {
        reply_out(conn, h, out, rc);
        return 0;
    }
    proto_put_attr(out, &a);
    wbuf_put_u32(out, a.copies);
    wbuf_put_u64(out, mstore_chunk_size(m->store));
    size_t at = out->len;
    wbuf_put_u32(out, 0);
    struct fi_ctx x = {
        .m = m, .out = out, .size = a.size, .chunk_size = mstore_chunk_size(m->store), .max = max};
    if (S_ISREG(a.mode)) rc = mstore_chunk_list(m->store, ino, first, UINT32_MAX, fi_chunk, &x);
    if (!rc && !out->err) {
        le_put32(out->data + at, x.count);
        wbuf_put_u8(out, (uint8_t)x.more);
    }
    reply_out(conn, h, out, rc);
    return 0;
}

static int count_session(void *arg, uint64_t session, int64_t last_seen_s)
{
    (void)session, (void)last_seen_s;
    (*(uint32_t *)arg)++;
    return 0;
}

static int health(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h, struct rcur *r,
                  struct wbuf *out)
{
    if (rcur_done(r)) return -EBADMSG;
    wbuf_put_u32(out, csr_count(&m->reg));
    for (int s = 0; s < CSR_MAX; s++) {
        const struct csr_server *sv = &m->reg.srv[s];
        if (!sv->id) continue;
        wbuf_put_u64(out, sv->id);
        wbuf_put_str(out, sv->addr, strlen(sv->addr));
        wbuf_put_str(out, sv->zone, strlen(sv->zone));
        wbuf_put_u8(out, csr_state(sv));
        wbuf_put_u64(out, sv->capacity);
        wbuf_put_u64(out, sv->free);
        wbuf_put_u32(out, sv->load);
        wbuf_put_u64(out, sv->nchunks);
        wbuf_put_u32(out, (uint32_t)sv->inflight);
    }
    const struct repair *rp = &m->rep;
    const struct rep_counts *c = rp->have_last ? &rp->last : &rp->pass;
    wbuf_put_u64(out, c->chunks);
    wbuf_put_u64(out, c->full);
    wbuf_put_u64(out, c->under);
    wbuf_put_u64(out, c->missing);
    wbuf_put_u64(out, c->over);
    wbuf_put_u64(out, c->stale);
    wbuf_put_u64(out, c->bad);
    wbuf_put_u64(out, repair_backlog(m));
    wbuf_put_u64(out, rp->done);
    wbuf_put_u64(out, rp->bytes);
    wbuf_put_u64(out, repair_rate_now(m));
    wbuf_put_u64(out, rp->bad_repaired);
    wbuf_put_u64(out, rp->moves_done);
    wbuf_put_u8(out, (uint8_t)rp->have_last);
    wbuf_put_u32(out, mstore_default_copies());
    wbuf_put_u32(out, (uint32_t)m->cfg.balance_pct);
    struct mstore_stats st = {0};
    mstore_stats(m->store, &st);
    uint32_t sessions = 0;
    mstore_session_list(m->store, count_session, &sessions);
    wbuf_put_u64(out, st.inodes);
    wbuf_put_u64(out, st.bytes);
    wbuf_put_u32(out, sessions);
    reply_out(conn, h, out, 0);
    return 0;
}

static int cs_drain(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                    struct rcur *r, struct wbuf *out)
{
    uint64_t id = rcur_u64(r);
    uint8_t on = rcur_u8(r);
    if (rcur_done(r)) return -EBADMSG;
    int slot = csr_slot(&m->reg, id);
    int rc = slot < 0 ? -ENOENT : 0;
    if (!rc) { /* a record: a new leader keeps draining it */
        struct mop op = {.type = MOP_CS_DRAIN, .index = id, .flags = on != 0};
        struct mop_result res = {0};
        rc = meta_apply(m, &op, &res);
    }
    if (!rc) {
        m->reg.srv[slot].draining = on != 0;
        repair_rescan(m);
        LOG_INFO("admin", "chunk server %016" PRIx64 " at %s: %s (from %s)", id,
                 m->reg.srv[slot].addr, on ? "draining" : "drain stopped", evsrv_conn_peer(conn));
    }
    reply_out(conn, h, out, rc);
    return 0;
}

int meta_handle_admin(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r, struct wbuf *out)
{
    switch (h->type) {
    case MSG_SET_COPIES:
        return set_copies(m, conn, h, r, out);
    case MSG_FILEINFO:
        return fileinfo(m, conn, h, r, out);
    case MSG_HEALTH:
        return health(m, conn, h, r, out);
    case MSG_CS_DRAIN:
        return cs_drain(m, conn, h, r, out);
    case MSG_FSCK:
        return meta_fsck(m, conn, h, r, out);
    default:
        return -EBADMSG;
    }
}
