/* server_cs.c - the meta service's side of chunk-server membership: REGISTER, REPORT of the
 * chunks a server holds, HEARTBEAT (space, load; the reply carries the deletions and the
 * replication orders queued for it), BAD_CHUNK, CHUNK_EVENT (a copy gained a version or was
 * lost) and REPLICATED (an order finished). Locations learnt here are soft state
 * (cs_registry.c); what they mean for each chunk is decided in repair.c. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "meta.h"
#include "net.h"

#define DEL_BATCH_MAX 4096u

/* Append up to DEL_BATCH_MAX queued deletions of slot to b (u32 m, m x {u64 id, u32 ver}). */
static void put_deletes(struct meta *m, int slot, struct wbuf *b)
{
    struct csr_server *s = &m->reg.srv[slot];
    uint32_t n = s->ndel < DEL_BATCH_MAX ? s->ndel : DEL_BATCH_MAX;
    wbuf_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++) {
        wbuf_put_u64(b, s->del_id[i]);
        wbuf_put_u32(b, s->del_ver[i]);
        /* the copy goes now: a report that listed it again since the deletion was queued must
         * not leave it counted (servers send no event for a deletion meta asked for) */
        struct csr_entry *e = csr_entry(&m->reg, s->del_id[i]);
        int k = e ? csr_entry_holder(e, slot) : -1;
        if (k >= 0 && e->h[k].version <= s->del_ver[i] && !(e->h[k].flags & CSR_H_PENDING))
            csr_holder_del(&m->reg, s->del_id[i], slot);
    }
    if (n == 0) return;
    memmove(s->del_id, s->del_id + n, (s->ndel - n) * sizeof(*s->del_id));
    memmove(s->del_ver, s->del_ver + n, (s->ndel - n) * sizeof(*s->del_ver));
    s->ndel -= n;
}

/* Append the replication orders queued for slot (u32 r, r x order) and clear the queue. */
static void put_orders(struct meta *m, int slot, struct wbuf *b)
{
    struct csr_server *s = &m->reg.srv[slot];
    /* an order goes out only once the version bump it rests on is committed */
    int ready = 0;
    for (int i = 0; i < s->norders; i++)
        ready += s->orders[i].batch <= m->durable_batch;
    wbuf_put_u32(b, (uint32_t)ready);
    int keep = 0;
    for (int i = 0; i < s->norders; i++) {
        const struct csr_order *o = &s->orders[i];
        if (o->batch > m->durable_batch) {
            s->orders[keep++] = *o;
            continue;
        }
        wbuf_put_u64(b, o->chunk_id);
        wbuf_put_u32(b, o->version);
        wbuf_put_u8(b, o->nsrc);
        for (int k = 0; k < o->nsrc; k++) {
            const char *a = m->reg.srv[o->src[k]].addr;
            wbuf_put_str(b, a, strlen(a));
        }
    }
    s->norders = keep;
}

/* Reply to a report or heartbeat with the deletions (and, to a heartbeat, the replication
 * orders) queued for the server. */
static void reply_deletes(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                          int slot)
{
    struct wbuf b;
    wbuf_init(&b);
    put_deletes(m, slot, &b);
    if (h->type == MSG_CS_HEARTBEAT) put_orders(m, slot, &b);
    evsrv_reply(conn, h, b.err, b.err ? NULL : b.data, b.err ? 0 : b.len);
    wbuf_free(&b);
}

/* Slot says it holds chunk at ver: a copy to list (valid or stale is decided against the chunk
 * record, repair.c), or, when no file references it or the store never handed that version
 * out, one to delete. Returns 1 when listed. */
static int learn_copy(struct meta *m, int slot, uint64_t chunk, uint32_t ver)
{
    uint32_t cur = 0;
    int rc = mstore_chunk_version(m->store, chunk, &cur);
    if (rc == -ENOENT || (rc == 0 && ver > cur)) {
        if (rc == -ENOENT) fsck_note_unref(m->reg.srv[slot].id, chunk, ver);
        csr_queue_delete(&m->reg, slot, chunk, ver);
        return 0;
    }
    if (rc == 0) csr_holder_set(&m->reg, chunk, slot, ver, 0, CSR_H_NOCOPY | CSR_H_UNCONFIRMED);
    return rc == 0;
}

static int cs_register(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                       struct rcur *r)
{
    char addr[CAIRN_ADDR_MAX + 1], zone[CAIRN_ZONE_MAX + 1] = "";
    uint64_t id = rcur_u64(r);
    rcur_str(r, addr, CAIRN_ADDR_MAX);
    uint64_t cap = rcur_u64(r), free_bytes = rcur_u64(r);
    if (!r->err && r->left > 0) rcur_str(r, zone, CAIRN_ZONE_MAX);
    if (rcur_done(r) || id == 0) return -EBADMSG;
    int slot = csr_register(&m->reg, id, addr, zone, cap, free_bytes, net_now_ms());
    if (slot >= 0) {
        repair_rescan(m); /* a new, returning or re-registering server */
        m->reg.srv[slot].draining = mstore_cs_draining(m->store, id); /* replicated */
    }
    if (slot < 0) {
        LOG_ERR("cs", "chunk server %016" PRIx64 " at %s refused: %s", id, addr, strerror(-slot));
        evsrv_reply(conn, h, slot, NULL, 0);
        return 0;
    }
    LOG_INFO("cs",
             "chunk server %016" PRIx64 " at %s%s%s registered (%" PRIu64 " MiB free of %" PRIu64
             " MiB)",
             id, addr, zone[0] ? " zone " : "", zone, free_bytes >> 20, cap >> 20);
    uint8_t rep[8];
    le_put64(rep, mstore_chunk_size(m->store));
    evsrv_reply(conn, h, 0, rep, sizeof(rep));
    return 0;
}

static int cs_report(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                     struct rcur *r)
{
    uint64_t id = rcur_u64(r);
    uint32_t n = rcur_u32(r);
    if (r->err || (uint64_t)n * 12 != r->left) return -EBADMSG;
    int slot = csr_slot(&m->reg, id);
    if (slot < 0) {
        evsrv_reply(conn, h, -ENOENT, NULL, 0);
        return 0;
    }
    uint32_t kept = 0, dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t chunk = rcur_u64(r);
        uint32_t ver = rcur_u32(r);
        if (learn_copy(m, slot, chunk, ver))
            kept++;
        else
            dropped++;
    }
    if (n)
        LOG_DEBUG("cs", "server %016" PRIx64 " reports %u chunks: %u kept, %u to delete", id, n,
                  kept, dropped);
    reply_deletes(m, conn, h, slot);
    return 0;
}

static int cs_heartbeat(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                        struct rcur *r)
{
    uint64_t id = rcur_u64(r), cap = rcur_u64(r), free_bytes = rcur_u64(r);
    uint32_t load = rcur_u32(r);
    uint64_t st[4] = {0}; /* absent from an older server */
    for (int i = 0; i < 4 && r->left >= 8; i++)
        st[i] = rcur_u64(r);
    if (rcur_done(r)) return -EBADMSG;
    int slot = csr_slot(&m->reg, id);
    if (slot < 0) {
        evsrv_reply(conn, h, -ENOENT, NULL, 0); /* the server registers again */
        return 0;
    }
    csr_heartbeat(&m->reg, slot, cap, free_bytes, load, net_now_ms());
    struct csr_server *s = &m->reg.srv[slot];
    s->st_reads = st[0];
    s->st_read_bytes = st[1];
    s->st_writes = st[2];
    s->st_write_bytes = st[3];
    reply_deletes(m, conn, h, slot);
    return 0;
}

static int cs_bad_chunk(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                        struct rcur *r)
{
    uint64_t id = rcur_u64(r), chunk = rcur_u64(r);
    uint32_t ver = rcur_u32(r), block = rcur_u32(r);
    if (rcur_done(r)) return -EBADMSG;
    int slot = csr_slot(&m->reg, id);
    LOG_ERR("cs", "chunk server %016" PRIx64 " reports chunk %016" PRIx64 " v%u block %u corrupt",
            id, chunk, ver, block);
    /* never hand out a copy known bad; it is replaced from a good one (repair.c) */
    struct csr_entry *e = slot >= 0 ? csr_entry(&m->reg, chunk) : NULL;
    if (e && csr_entry_holder(e, slot) >= 0) {
        csr_holder_set(&m->reg, chunk, slot, e->h[csr_entry_holder(e, slot)].version, CSR_H_BAD, 0);
        repair_check_chunk(m, chunk);
    }
    evsrv_reply(conn, h, slot < 0 ? -ENOENT : 0, NULL, 0);
    return 0;
}

static int cs_chunk_event(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                          struct rcur *r)
{
    uint64_t id = rcur_u64(r), chunk = rcur_u64(r);
    uint32_t ver = rcur_u32(r), flags = rcur_u32(r);
    if (rcur_done(r)) return -EBADMSG;
    int slot = csr_slot(&m->reg, id);
    if (slot >= 0) {
        if (flags & 1u)
            learn_copy(m, slot, chunk, ver);
        else
            csr_holder_del(&m->reg, chunk, slot);
    }
    LOG_DEBUG("cs", "server %016" PRIx64 " %s chunk %016" PRIx64 " v%u", id,
              (flags & 1u) ? "gained" : "lost", chunk, ver);
    evsrv_reply(conn, h, slot < 0 ? -ENOENT : 0, NULL, 0);
    return 0;
}

static int cs_replicated(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                         struct rcur *r)
{
    uint64_t id = rcur_u64(r), chunk = rcur_u64(r);
    uint32_t ver = rcur_u32(r);
    int32_t status = (int32_t)rcur_u32(r);
    uint64_t bytes = rcur_u64(r);
    if (rcur_done(r)) return -EBADMSG;
    int slot = csr_slot(&m->reg, id);
    if (slot >= 0) {
        uint32_t cur = 0;
        if (status == 0 && (mstore_chunk_version(m->store, chunk, &cur) != 0 || ver > cur)) {
            csr_queue_delete(&m->reg, slot, chunk, ver); /* the file went away meanwhile */
            status = -ENOENT;
        }
        repair_done(m, slot, chunk, ver, status > 0 ? -EIO : status, bytes);
    }
    evsrv_reply(conn, h, slot < 0 ? -ENOENT : 0, NULL, 0);
    return 0;
}

int meta_handle_cs(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                   const uint8_t *payload)
{
    struct rcur r;
    rcur_init(&r, payload, h->length);
    switch (h->type) {
    case MSG_CS_REGISTER:
        m->cs_seen_ms = net_now_ms();
        return cs_register(m, conn, h, &r);
    case MSG_CS_REPORT:
        m->cs_seen_ms = net_now_ms();
        return cs_report(m, conn, h, &r);
    case MSG_CS_HEARTBEAT:
        return cs_heartbeat(m, conn, h, &r);
    case MSG_CS_BAD_CHUNK:
        return cs_bad_chunk(m, conn, h, &r);
    case MSG_CS_CHUNK_EVENT:
        return cs_chunk_event(m, conn, h, &r);
    case MSG_CS_REPLICATED:
        return cs_replicated(m, conn, h, &r);
    default:
        return -EBADMSG;
    }
}
