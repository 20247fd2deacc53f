/* server.c - the meta service's request dispatcher for clients: decodes each request
 * (proto.h), answers reads from LMDB read transactions, turns mutations into operation records
 * (mop_prepare + mstore_apply, committed durably before the reply), adds chunk locations from
 * the registry, and encodes the reply. Chunk-server messages go to server_cs.c. A payload that
 * does not decode closes the connection (evsrv), nothing else. */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "meta.h"
#include "mraft_int.h"
#include "net.h"
#include "snap_xfer.h"

#define READDIR_MAX_ENTRIES 4096u
#define READDIR_MAX_BYTES (1u << 20)
#define LOCATE_MAX 64u
#define OPEN_CHUNKS_MAX 16u
#define COMMIT_ALLOCS_MAX 4096u /* 64 KiB of pairs: what a record's data holds */

struct req {
    struct meta *m;
    int soft; /* an OPEN or RELEASE of a read-only open kept in memory (soft_opens.c) */
    struct evsrv_conn *conn;
    const struct wire_hdr *h;
    struct rcur r;
    struct wbuf out;
};

static void freed_chunk(void *arg, uint64_t chunk_id, uint32_t version)
{
    struct meta *m = arg;
    csr_chunk_freed(&m->reg, chunk_id, version);
}

int meta_ready(struct meta *m)
{
    return mraft_ready(m) && mstore_formatted(m->store);
}

int meta_warm(struct meta *m)
{
    uint64_t now = net_now_ms(), since = now - m->lead_since_ms;
    if (since >= 5000) return 1;
    return since >= 300 && now - m->cs_seen_ms >= 300 && csr_live_count(&m->reg) > 0;
}

int meta_learning(struct meta *m)
{
    return net_now_ms() - m->lead_since_ms < META_LEARN_MS;
}

int meta_can_apply(struct meta *m)
{
    return mraft_ready(m) && !m->inflight;
}

int meta_apply(struct meta *m, struct mop *op, struct mop_result *res)
{
    if (!meta_can_apply(m)) return -EAGAIN;
    op->cs_session = m->cur_session;
    op->cs_seq = m->cur_seq;
    op->cs_acked = m->cur_acked;
    m->cur_seq = 0; /* one record per numbered request */
    int rc = mop_prepare(m->store, op);
    if (rc) return rc;
    if (!mstore_batch_active(m->store)) {
        rc = mstore_batch_begin(m->store);
        if (rc) return rc;
        m->batch_no++;
        m->batch_nrec = 0;
        m->batch_log.len = 0;
        m->batch_log.err = 0;
        evsrv_hold(m->srv);
        if (m->flush_ev) event_active(m->flush_ev, EV_TIMEOUT, 0);
    }
    res->freed = freed_chunk;
    res->freed_arg = m;
    rc = mstore_apply(m->store, op, res);
    if (rc && rc != -ENOENT && rc != -EEXIST && rc != -ENOTEMPTY && rc != -ENODATA)
        LOG_DEBUG("meta", "%u failed: %s", op->type, strerror(-rc));
    /* every record goes to the log, a failed one too: the other replicas reach the same
     * outcome (and remember it for a retry of a numbered request) */
    mop_encode(op, &m->batch_log);
    m->batch_nrec++;
    return rc;
}

void meta_flush(struct meta *m)
{
    if (!mstore_batch_active(m->store) || m->inflight) return;
    if (m->batch_log.err) {
        LOG_ERR("meta", "cannot encode a batch: %s", strerror(-m->batch_log.err));
        meta_batch_lost(m);
        return;
    }
    m->submit_ms = net_now_ms();
    int rc = mraft_submit(m);
    if (rc) {
        meta_batch_lost(m);
        return;
    }
    m->inflight = 1;
}

void meta_batch_committed(struct meta *m, uint64_t index)
{
    int rc = mstore_batch_commit_at(m->store, index);
    if (rc) {
        LOG_ERR("meta",
                "cannot commit the store at index %" PRIu64 ": %s; stopping (the log "
                "has it: a restart applies it again)",
                index, strerror(-rc));
        exit(70);
    }
    m->inflight = 0;
    m->durable_batch = m->batch_no;
    if (m->submit_ms > m->proof_ms) m->proof_ms = m->submit_ms;
    evsrv_release(m->srv);
    if (m->tick_pending) repair_tick(m);
    mraft_resume_soon(m); /* from the event loop, not inside libraft's apply */
}

void meta_batch_lost(struct meta *m)
{
    mstore_batch_abort(m->store);
    m->inflight = 0;
    m->batch_nrec = 0;
    m->batch_log.len = 0;
    m->durable_batch = m->batch_no; /* its orders were never given a committed version... */
    /* ...so drop them: the repair scanner orders again */
    for (int i = 0; i < CSR_MAX; i++)
        m->reg.srv[i].norders = 0;
    evsrv_drop_held(m->srv);
}

void meta_leader_changed(struct meta *m, int leading)
{
    soft_open_clear(); /* a new leader knows none; a former one must forget its own */
    locks_leader_changed(m, leading); /* the same for locks, which mounts then reclaim */
    if (!leading) {
        if (mstore_batch_active(m->store)) meta_batch_lost(m);
    } else {
        m->lead_since_s = (int64_t)time(NULL);
        m->lead_since_ms = net_now_ms();
        m->proof_ms = 0; /* its barrier's commit proves it from now on */
        /* chunk locations are soft state: learnt again from the servers' reports */
        csr_free(&m->reg);
        csr_init(&m->reg, m->cfg.cs_timeout * 1000);
        repair_rescan(m);
        if (!mstore_formatted(m->store)) {
            struct mop op = {
                .type = MOP_FORMAT, .size = m->cfg.chunk_size, .index = mraft_max_member_id(m)};
            struct mop_result res = {0};
            int rc = meta_apply(m, &op, &res);
            LOG_INFO("meta", "formatting a new file system (chunk size %" PRIu64 ")%s",
                     m->cfg.chunk_size, rc ? ": failed" : "");
        }
    }
    evsrv_resume(m->srv);
}

void meta_reply_not_leader(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h)
{
    const char *l = mraft_leader_addr(m);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_str(&b, l, strlen(l));
    evsrv_reply(conn, h, -CAIRN_ENOTLEADER, b.err ? NULL : b.data, b.err ? 0 : b.len);
    wbuf_free(&b);
}

/* Read a name (1..255 bytes). A longer one is the caller's ENAMETOOLONG, not a bad frame. */
static int get_name(struct rcur *r, char *out)
{
    uint16_t len = rcur_u16(r);
    if (r->err) return -EBADMSG;
    const uint8_t *p = rcur_view(r, len);
    if (!p) return -EBADMSG;
    if (len > CAIRN_NAME_MAX) return -ENAMETOOLONG;
    if (len == 0 || memchr(p, 0, len)) return -EINVAL;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

static void reply(struct req *q, int status)
{
    if (q->out.err && status == 0) status = q->out.err;
    evsrv_reply(q->conn, q->h, status, status ? NULL : q->out.data, status ? 0 : q->out.len);
}

static void reply_attr(struct req *q, int rc, const struct cairn_attr *a)
{
    if (!rc) proto_put_attr(&q->out, a);
    reply(q, rc);
}

/* --- sessions ------------------------------------------------------------------------- */

static int do_session_open(struct req *q)
{
    struct mop op = {.type = MOP_SESSION_OPEN};
    rcur_str(&q->r, op.name, CAIRN_NAME_MAX);
    op.session = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mop_result res = {0};
    int rc = meta_apply(q->m, &op, &res);
    if (!rc) {
        wbuf_put_u64(&q->out, op.session);
        wbuf_put_u64(&q->out, mstore_chunk_size(q->m->store));
        wbuf_put_u32(&q->out, (uint32_t)q->m->cfg.session_timeout);
        LOG_INFO("session", "session %" PRIu64 " opened by %s (%s)", op.session, op.name,
                 evsrv_conn_peer(q->conn));
    }
    reply(q, rc);
    return 0;
}

static int do_session_simple(struct req *q, uint16_t type)
{
    struct mop op = {.type = type};
    op.session = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mop_result res = {0};
    int rc = meta_apply(q->m, &op, &res);
    if (!rc && type == MOP_SESSION_CLOSE) {
        soft_open_drop_session(op.session);
        client_stats_drop(op.session);
        locks_drop_session(op.session);
    }
    reply(q, rc);
    return 0;
}

/* --- reads ---------------------------------------------------------------------------- */

static int put_chunks(struct req *q, uint64_t ino, uint64_t first, uint32_t count);

static int do_lookup(struct req *q)
{
    uint64_t parent = rcur_u64(&q->r);
    char name[CAIRN_NAME_MAX + 1];
    int rc = get_name(&q->r, name);
    uint8_t flags = q->r.left > 0 ? rcur_u8(&q->r) : 0; /* optional; absent = 0 */
    if (rc == -EBADMSG || rcur_done(&q->r)) return -EBADMSG;
    struct cairn_attr a;
    if (!rc) rc = mstore_lookup(q->m->store, parent, name, &a);
    if (!rc) {
        proto_put_attr(&q->out, &a);
        /* the locations an OPEN would give, for a read-only open without a round trip */
        if ((flags & LOOKUP_CHUNKS) && S_ISREG(a.mode) && a.size > 0 && a.nlink > 0 &&
            q->m->cfg.open_chunks > 0 && meta_warm(q->m) && !meta_learning(q->m)) {
            uint32_t n = (uint32_t)q->m->cfg.open_chunks;
            size_t attr_end = q->out.len;
            if (put_chunks(q, a.ino, 0, n < OPEN_CHUNKS_MAX ? n : OPEN_CHUNKS_MAX) || q->out.err) {
                q->out.len = attr_end; /* the locations are a hint: the attr alone */
                q->out.err = 0;
            }
        }
    }
    reply(q, rc);
    return 0;
}

static int do_getattr(struct req *q)
{
    uint64_t ino = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct cairn_attr a;
    reply_attr(q, mstore_getattr(q->m->store, ino, &a), &a);
    return 0;
}

static int do_readlink(struct req *q)
{
    uint64_t ino = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    char buf[CAIRN_PATH_MAX + 1];
    int rc = mstore_readlink(q->m->store, ino, buf, sizeof(buf));
    if (!rc) wbuf_put_str(&q->out, buf, strlen(buf));
    reply(q, rc);
    return 0;
}

struct rd_ctx {
    struct wbuf *out;
    uint32_t count, max;
    int plus;
};

static int rd_entry(void *arg, uint64_t ino, uint32_t mode, const char *name,
                    const struct cairn_attr *attr, uint64_t cookie_next)
{
    struct rd_ctx *x = arg;
    if (x->count >= x->max || x->out->len >= READDIR_MAX_BYTES) return 1;
    wbuf_put_u64(x->out, ino);
    wbuf_put_u32(x->out, mode);
    wbuf_put_str(x->out, name, strlen(name));
    wbuf_put_u64(x->out, cookie_next);
    if (x->plus) proto_put_attr(x->out, attr);
    x->count++;
    return 0;
}

static int do_readdir(struct req *q)
{
    uint64_t ino = rcur_u64(&q->r), cookie = rcur_u64(&q->r);
    uint32_t max = rcur_u32(&q->r);
    uint8_t plus = rcur_u8(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct rd_ctx x = {.out = &q->out,
                       .max = max && max < READDIR_MAX_ENTRIES ? max : READDIR_MAX_ENTRIES,
                       .plus = plus != 0};
    wbuf_put_u32(&q->out, 0); /* count, patched below */
    int eof = 0;
    int rc = mstore_readdir(q->m->store, ino, cookie, x.plus, rd_entry, &x, &eof);
    if (!rc && !q->out.err) {
        le_put32(q->out.data, x.count);
        wbuf_put_u8(&q->out, (uint8_t)(eof ? 1 : 0));
    }
    reply(q, rc);
    return 0;
}

static int do_statfs(struct req *q)
{
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mstore_stats st;
    int rc = mstore_stats(q->m->store, &st);
    uint64_t total, free_bytes;
    csr_space(&q->m->reg, &total, &free_bytes);
    if (!rc) {
        const uint64_t inode_cap = 1ull << 40;
        wbuf_put_u64(&q->out, total);
        wbuf_put_u64(&q->out, free_bytes);
        wbuf_put_u64(&q->out, inode_cap);
        wbuf_put_u64(&q->out, inode_cap - (st.inodes < inode_cap ? st.inodes : inode_cap));
        wbuf_put_u32(&q->out, 4096);
        wbuf_put_u32(&q->out, CAIRN_NAME_MAX);
    }
    reply(q, rc);
    return 0;
}

static int do_getxattr(struct req *q)
{
    uint64_t ino = rcur_u64(&q->r);
    char name[CAIRN_NAME_MAX + 1];
    int rc = get_name(&q->r, name);
    if (rc == -EBADMSG || rcur_done(&q->r)) return -EBADMSG;
    if (rc == -ENAMETOOLONG) rc = -ERANGE;
    struct wbuf v;
    wbuf_init(&v);
    if (!rc) rc = mstore_getxattr(q->m->store, ino, name, &v);
    if (!rc) wbuf_put_bytes(&q->out, v.data, v.len);
    wbuf_free(&v);
    reply(q, rc);
    return 0;
}

static int do_listxattr(struct req *q)
{
    uint64_t ino = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct wbuf v;
    wbuf_init(&v);
    int rc = mstore_listxattr(q->m->store, ino, &v);
    if (!rc) wbuf_put_bytes(&q->out, v.data, v.len);
    wbuf_free(&v);
    reply(q, rc);
    return 0;
}

/* --- chunk map -------------------------------------------------------------------------- */

struct loc_ctx {
    struct meta *m;
    struct wbuf *out;
    uint32_t count;
};

static int put_chunk(void *arg, const struct mstore_chunk *ck)
{
    struct loc_ctx *x = arg;
    struct chunk_info ci = {
        .index = ck->index, .chunk_id = ck->id, .version = ck->version, .prev_version = ck->prev};
    csr_fill_locs(&x->m->reg, ck, &ci);
    proto_put_chunk_info(x->out, &ci);
    x->count++;
    return 0;
}

/* Append u32 n, n x chunkinfo for the chunks of ino in [first, first+count). */
static int put_chunks(struct req *q, uint64_t ino, uint64_t first, uint32_t count)
{
    size_t at = q->out.len;
    wbuf_put_u32(&q->out, 0);
    struct loc_ctx x = {.m = q->m, .out = &q->out};
    int rc = mstore_chunk_list(q->m->store, ino, first, count, put_chunk, &x);
    if (!rc && !q->out.err) le_put32(q->out.data + at, x.count);
    return rc;
}

static int do_chunk_locate(struct req *q)
{
    uint64_t ino = rcur_u64(&q->r), first = rcur_u64(&q->r);
    uint32_t count = rcur_u32(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    if (count > LOCATE_MAX) count = LOCATE_MAX;
    int rc = put_chunks(q, ino, first, count);
    if (!rc && meta_learning(q->m) && q->out.len >= 4) {
        /* a chunk nobody is known to hold, so soon after an election, is more likely on a
         * server that has not reported to this leader yet than lost: ask again shortly */
        struct rcur c;
        rcur_init(&c, q->out.data, q->out.len);
        uint32_t n = rcur_u32(&c);
        struct cairn_attr a;
        uint64_t size = mstore_getattr(q->m->store, ino, &a) == 0 ? a.size : UINT64_MAX;
        uint64_t csz = mstore_chunk_size(q->m->store);
        for (uint32_t i = 0; i < n && !c.err; i++) {
            struct chunk_info ci;
            proto_get_chunk_info(&c, &ci);
            /* only chunks that hold committed data (a lease that wrote nothing has none) */
            if (!c.err && ci.nloc == 0 && size > ci.index * csz) {
                mraft_park_retry(q->m);
                return EVSRV_DEFER;
            }
        }
    }
    reply(q, rc);
    return 0;
}

/* The write chain of a lease on an existing chunk: its copies that may be served, less the
 * servers the writer saw fail. Sets MOP_LEASE_CUR_KNOWN when a copy at the current version
 * is known. Returns the chain length. */
static int lease_chain_existing(struct meta *m, const struct mstore_chunk *ck, const uint64_t *excl,
                                int nexcl, struct mop *op)
{
    struct csr_view v;
    csr_classify(&m->reg, ck, &v);
    op->nchain = 0;
    for (int k = 0; k < v.n; k++) {
        const struct csr_copy *c = &v.c[k];
        if (!(c->flags & (CSR_H_NOCOPY | CSR_H_UNCONFIRMED)) && c->version == ck->version)
            op->flags |= MOP_LEASE_CUR_KNOWN;
        /* a place listed at an earlier lease that has not confirmed anything yet stays in the
         * chain (the writer may simply not have reached it): with prev kept where it was it
         * can still create the chunk, and with a confirmed copy about it refuses (ENOENT) and
         * the writer leaves it out */
        int unconfirmed =
            (c->flags & CSR_H_UNCONFIRMED) && m->reg.srv[c->slot].alive && c->state != COPY_BAD;
        if (c->state != COPY_VALID && c->state != COPY_DRAINING && !unconfirmed) continue;
        uint64_t id = m->reg.srv[c->slot].id;
        int skip = 0;
        for (int i = 0; i < nexcl && !skip; i++)
            skip = excl[i] == id;
        if (!skip && op->nchain < CAIRN_MAX_CHAIN) op->chain[op->nchain++] = id;
    }
    return op->nchain;
}

/* The chain of a new chunk: goal servers chosen by placement, none of them excluded. */
static int lease_chain_new(struct meta *m, uint32_t goal, const uint64_t *excl, int nexcl,
                           struct mop *op, int *slots)
{
    if (goal > CAIRN_MAX_CHAIN) goal = CAIRN_MAX_CHAIN;
    uint64_t cs = mstore_chunk_size(m->store);
    int n = csr_place(&m->reg, (int)goal, cs / 16, excl, nexcl, NULL, 0, slots);
    if (n < (int)goal) /* short of room: any live server will do for the rest */
        n += csr_place(&m->reg, (int)goal - n, 0, excl, nexcl, slots, n, slots + n);
    op->nchain = (uint8_t)n;
    for (int i = 0; i < n; i++)
        op->chain[i] = m->reg.srv[slots[i]].id;
    return n;
}

/* Whether the file's committed size reaches into the chunk (acknowledged data may live in it). */
static int holds_committed_data(struct meta *m, const struct mstore_chunk *ck)
{
    struct cairn_attr a;
    if (mstore_getattr(m->store, ck->ino, &a)) return 1; /* unsure: as if it did */
    return a.size > ck->index * mstore_chunk_size(m->store) || ck->alloc > 0;
}

static int do_chunk_lease(struct req *q)
{
    struct mop op = {.type = MOP_CHUNK_LEASE};
    op.ino = rcur_u64(&q->r);
    op.index = rcur_u64(&q->r);
    op.session = rcur_u64(&q->r);
    uint64_t excl[CSR_MAX];
    int nexcl = 0;
    if (!q->r.err && q->r.left > 0) {
        nexcl = rcur_u8(&q->r);
        if (nexcl > CSR_MAX) return -EBADMSG;
        for (int i = 0; i < nexcl; i++)
            excl[i] = rcur_u64(&q->r);
    }
    if (rcur_done(&q->r)) return -EBADMSG;
    struct meta *m = q->m;
    /* the record includes leases of the open group commit (two writers of one new chunk in
     * one batch must not both create it), without forcing the batch out */
    struct mstore_chunk ck;
    int rc = mstore_chunk_rec(m->store, op.ino, op.index, &ck);
    int exists = rc == 0;
    if (rc && rc != -ENOENT) {
        reply(q, rc);
        return 0;
    }
    int slots[CAIRN_MAX_CHAIN];
    uint32_t goal = repair_goal(m, op.ino);
    int n = exists ? lease_chain_existing(m, &ck, excl, nexcl, &op)
                   : lease_chain_new(m, goal, excl, nexcl, &op, slots);
    int placed = !exists;
    if (exists && n == 0 && !holds_committed_data(m, &ck)) {
        /* nobody holds a chunk into which no committed size reaches: a lease whose writer
         * never got its data anywhere (or whose reply was lost in a failover); place it
         * anew rather than fail the writer */
        op.flags = 0;
        n = lease_chain_new(m, goal, excl, nexcl, &op, slots);
        placed = 1;
    }
    /* a new leader that has not heard from every chunk server yet waits for them rather
     * than leave copies out (a new chunk needs only enough live servers) */
    if ((!meta_warm(m) && (!placed || n < (int)goal)) || (n == 0 && meta_learning(m))) {
        mraft_park_retry(m);
        return EVSRV_DEFER;
    }
    /* refuse before changing anything when no server could take the data */
    if (n == 0) {
        LOG_ERR("lease", "inode %" PRIu64 " chunk %" PRIu64 ": no live chunk server %s", op.ino,
                op.index, exists ? "holds a valid copy" : "to place it on");
        reply(q, exists ? -EIO : -ENOSPC);
        return 0;
    }
    m->rep.cache_ino = 0;
    struct mop_result res = {0};
    rc = meta_apply(m, &op, &res);
    if (!rc) {
        res.chunk.index = op.index;
        res.chunk.nloc = 0;
        for (int i = 0; i < op.nchain; i++) {
            int slot = csr_slot(&m->reg, op.chain[i]);
            if (slot < 0) continue;
            /* new copies are listed at once (at the version they will have after the first
             * write), so a reader in the same moment finds them */
            if (placed)
                csr_holder_set(&m->reg, res.chunk.chunk_id, slot, res.chunk.version,
                               CSR_H_UNCONFIRMED, 0);
            struct chunk_loc *l = &res.chunk.loc[res.chunk.nloc++];
            l->server_id = op.chain[i];
            snprintf(l->addr, sizeof(l->addr), "%s", m->reg.srv[slot].addr);
        }
        struct csr_entry *e = csr_entry(&m->reg, res.chunk.chunk_id);
        if (e) e->leased_s = (uint32_t)(net_now_ms() / 1000);
        proto_put_chunk_info(&q->out, &res.chunk);
    }
    reply(q, rc);
    return 0;
}

/* --- mutations -------------------------------------------------------------------------- */

/* Read parent + name into op; ENAMETOOLONG/EINVAL names are answered, not a bad frame. */
static int get_parent_name(struct req *q, uint64_t *parent, char *name, int *name_rc)
{
    *parent = rcur_u64(&q->r);
    *name_rc = get_name(&q->r, name);
    return *name_rc == -EBADMSG ? -EBADMSG : 0;
}

static int finish_attr_op(struct req *q, struct mop *op, int name_rc)
{
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mop_result res = {0};
    int rc = name_rc ? name_rc : meta_apply(q->m, op, &res);
    reply_attr(q, rc, &res.attr);
    return 0;
}

static int do_setattr(struct req *q)
{
    struct mop op = {.type = MOP_SETATTR};
    op.ino = rcur_u64(&q->r);
    op.valid = rcur_u32(&q->r);
    op.mode = rcur_u32(&q->r);
    op.uid = rcur_u32(&q->r);
    op.gid = rcur_u32(&q->r);
    op.size = rcur_u64(&q->r);
    op.atime_s = rcur_i64(&q->r);
    op.atime_ns = rcur_u32(&q->r);
    op.mtime_s = rcur_i64(&q->r);
    op.mtime_ns = rcur_u32(&q->r);
    return finish_attr_op(q, &op, 0);
}

/* The optional trailing umask of MKNOD, MKDIR and CREATE (proto.h): the meta store applies
 * it unless the parent has a default ACL (MOP_UMASK_SET). */
static void get_umask(struct req *q, struct mop *op)
{
    if (!q->r.err && q->r.left >= 4) op->valid = MOP_UMASK_SET | (rcur_u32(&q->r) & 0777u);
}

static int do_mknod(struct req *q)
{
    struct mop op = {.type = MOP_MKNOD};
    int nrc;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    op.mode = rcur_u32(&q->r);
    op.rdev = rcur_u64(&q->r);
    op.uid = rcur_u32(&q->r);
    op.gid = rcur_u32(&q->r);
    get_umask(q, &op);
    return finish_attr_op(q, &op, nrc);
}

static int do_mkdir(struct req *q)
{
    struct mop op = {.type = MOP_MKDIR};
    int nrc;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    op.mode = rcur_u32(&q->r);
    op.uid = rcur_u32(&q->r);
    op.gid = rcur_u32(&q->r);
    get_umask(q, &op);
    return finish_attr_op(q, &op, nrc);
}

static int do_symlink(struct req *q)
{
    struct mop op = {.type = MOP_SYMLINK};
    int nrc;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    uint16_t tl = rcur_u16(&q->r);
    const uint8_t *t = rcur_view(&q->r, tl);
    op.uid = rcur_u32(&q->r);
    op.gid = rcur_u32(&q->r);
    if (!t && tl) return -EBADMSG;
    if (!nrc && (tl == 0 || memchr(t, 0, tl))) nrc = -EINVAL;
    if (!nrc && tl > CAIRN_PATH_MAX) nrc = -ENAMETOOLONG;
    op.data = t;
    op.data_len = tl;
    return finish_attr_op(q, &op, nrc);
}

static int do_link(struct req *q)
{
    struct mop op = {.type = MOP_LINK};
    op.ino = rcur_u64(&q->r);
    int nrc;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    return finish_attr_op(q, &op, nrc);
}

static int do_create(struct req *q)
{
    struct mop op = {.type = MOP_CREATE};
    int nrc;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    op.mode = rcur_u32(&q->r);
    op.uid = rcur_u32(&q->r);
    op.gid = rcur_u32(&q->r);
    op.flags = rcur_u32(&q->r);
    op.session = rcur_u64(&q->r);
    get_umask(q, &op);
    return finish_attr_op(q, &op, nrc);
}

static int do_commit(struct req *q)
{
    struct mop op = {.type = MOP_COMMIT};
    op.ino = rcur_u64(&q->r);
    op.size = rcur_u64(&q->r);
    op.mtime_s = rcur_i64(&q->r);
    op.mtime_ns = rcur_u32(&q->r);
    op.flags = rcur_u32(&q->r);
    if (!q->r.err && q->r.left > 0) {
        /* allocated bytes per chunk: kept as raw {u64 index, u64 bytes} pairs in the record */
        uint32_t n = rcur_u32(&q->r);
        if (n > COMMIT_ALLOCS_MAX) return -EBADMSG;
        op.data = rcur_view(&q->r, (size_t)n * 16);
        op.data_len = n * 16;
        if (!op.data && n) return -EBADMSG;
    }
    return finish_attr_op(q, &op, 0);
}

static int record_soft_open(void *arg, uint64_t session, uint64_t ino)
{
    struct meta *m = arg;
    struct mop op = {.type = MOP_OPEN, .ino = ino, .session = session, .flags = O_RDONLY};
    struct mop_result res = {0};
    return meta_apply(m, &op, &res);
}

/* Before a record that may remove the last name of (parent, name)'s inode: its read-only
 * opens, counted in memory so far, become open records, so its data stays until the last
 * close as POSIX wants. The request's own (session, seq) stays for its own record. */
static void keep_open_inode(struct meta *m, uint64_t parent, const char *name)
{
    uint64_t ino;
    if (mstore_child_now(m->store, parent, name, &ino)) return;
    uint64_t seq = m->cur_seq;
    m->cur_seq = 0;
    int rc = soft_open_take(ino, record_soft_open, m);
    m->cur_seq = seq;
    if (rc) LOG_WARN("meta", "inode %" PRIu64 ": cannot record its opens: %s", ino, strerror(-rc));
}

static int do_unlink_rmdir(struct req *q, uint16_t type)
{
    struct mop op = {.type = type};
    int nrc;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    if (rcur_done(&q->r)) return -EBADMSG;
    if (!nrc) keep_open_inode(q->m, op.parent, op.name); /* a file, or an open directory */
    struct mop_result res = {0};
    reply(q, nrc ? nrc : meta_apply(q->m, &op, &res));
    return 0;
}

static int do_rename(struct req *q)
{
    struct mop op = {.type = MOP_RENAME};
    int nrc, nrc2;
    if (get_parent_name(q, &op.parent, op.name, &nrc)) return -EBADMSG;
    if (get_parent_name(q, &op.parent2, op.name2, &nrc2)) return -EBADMSG;
    op.flags = rcur_u32(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mop_result res = {0};
    int rc = nrc ? nrc : nrc2;
    if (!rc) keep_open_inode(q->m, op.parent2, op.name2); /* it may be replaced */
    reply(q, rc ? rc : meta_apply(q->m, &op, &res));
    return 0;
}

static int do_setxattr(struct req *q)
{
    struct mop op = {.type = MOP_SETXATTR};
    op.ino = rcur_u64(&q->r);
    int nrc = get_name(&q->r, op.name);
    if (nrc == -EBADMSG) return -EBADMSG;
    if (nrc == -ENAMETOOLONG) nrc = -ERANGE;
    size_t vl = 0;
    const uint8_t *v = rcur_bytes(&q->r, WIRE_MAX_PAYLOAD, &vl);
    op.flags = rcur_u32(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    if (!nrc && vl > CAIRN_XATTR_SIZE_MAX) nrc = -E2BIG;
    if (!nrc && q->soft) { /* an access ACL that changes nothing (noop_setxattr_req) */
        reply(q, 0);
        return 0;
    }
    op.data = v;
    op.data_len = (uint32_t)vl;
    struct mop_result res = {0};
    reply(q, nrc ? nrc : meta_apply(q->m, &op, &res));
    return 0;
}

static int do_removexattr(struct req *q)
{
    struct mop op = {.type = MOP_REMOVEXATTR};
    op.ino = rcur_u64(&q->r);
    int nrc = get_name(&q->r, op.name);
    if (nrc == -EBADMSG || rcur_done(&q->r)) return -EBADMSG;
    if (nrc == -ENAMETOOLONG) nrc = -ERANGE;
    struct mop_result res = {0};
    reply(q, nrc ? nrc : meta_apply(q->m, &op, &res));
    return 0;
}

static int do_open(struct req *q)
{
    struct mop op = {.type = MOP_OPEN};
    op.ino = rcur_u64(&q->r);
    op.flags = rcur_u32(&q->r);
    op.session = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mop_result res = {0};
    int rc;
    if (q->soft) { /* counted in memory: no record (soft_opens.c) */
        rc = mstore_getattr(q->m->store, op.ino, &res.attr);
        if (!rc) rc = soft_open_add(op.session, op.ino);
    } else {
        rc = meta_apply(q->m, &op, &res);
    }
    if (!rc) {
        proto_put_attr(&q->out, &res.attr);
        if (S_ISREG(res.attr.mode) && q->m->cfg.open_chunks > 0) {
            uint32_t n = (uint32_t)q->m->cfg.open_chunks;
            rc = put_chunks(q, op.ino, 0, n < OPEN_CHUNKS_MAX ? n : OPEN_CHUNKS_MAX);
        }
    }
    reply(q, rc);
    return 0;
}

static int do_release(struct req *q)
{
    struct mop op = {.type = MOP_RELEASE};
    op.ino = rcur_u64(&q->r);
    op.session = rcur_u64(&q->r);
    if (rcur_done(&q->r)) return -EBADMSG;
    struct mop_result res = {0};
    if (q->soft && soft_open_release(op.session, op.ino)) {
        reply(q, 0);
        return 0;
    }
    reply(q, meta_apply(q->m, &op, &res));
    return 0;
}

static int dispatch(struct req *q)
{
    switch (q->h->type) {
    case MSG_SESSION_OPEN:
        return do_session_open(q);
    case MSG_SESSION_KEEPALIVE:
        return do_session_simple(q, MOP_SESSION_TOUCH);
    case MSG_SESSION_CLOSE:
        return do_session_simple(q, MOP_SESSION_CLOSE);
    case MSG_LOOKUP:
        return do_lookup(q);
    case MSG_GETATTR:
        return do_getattr(q);
    case MSG_SETATTR:
        return do_setattr(q);
    case MSG_MKNOD:
        return do_mknod(q);
    case MSG_MKDIR:
        return do_mkdir(q);
    case MSG_UNLINK:
        return do_unlink_rmdir(q, MOP_UNLINK);
    case MSG_RMDIR:
        return do_unlink_rmdir(q, MOP_RMDIR);
    case MSG_RENAME:
        return do_rename(q);
    case MSG_LINK:
        return do_link(q);
    case MSG_SYMLINK:
        return do_symlink(q);
    case MSG_READLINK:
        return do_readlink(q);
    case MSG_READDIR:
        return do_readdir(q);
    case MSG_STATFS:
        return do_statfs(q);
    case MSG_SETXATTR:
        return do_setxattr(q);
    case MSG_GETXATTR:
        return do_getxattr(q);
    case MSG_LISTXATTR:
        return do_listxattr(q);
    case MSG_REMOVEXATTR:
        return do_removexattr(q);
    case MSG_CREATE:
        return do_create(q);
    case MSG_OPEN:
        return do_open(q);
    case MSG_RELEASE:
        return do_release(q);
    case MSG_CHUNK_LOCATE:
        return do_chunk_locate(q);
    case MSG_CHUNK_LEASE:
        return do_chunk_lease(q);
    case MSG_COMMIT:
        return do_commit(q);
    case MSG_SET_COPIES:
    case MSG_FILEINFO:
    case MSG_HEALTH:
    case MSG_CS_DRAIN:
    case MSG_FSCK:
        return meta_handle_admin(q->m, q->conn, q->h, &q->r, &q->out);
    case MSG_ATIME:
        return meta_handle_atime(q->m, q->conn, q->h, &q->r);
    case MSG_CLIENT_STATS:
    case MSG_TOP:
        return meta_handle_top(q->m, q->conn, q->h, &q->r, &q->out);
    case MSG_LOCK: /* soft state: not mutations (no record, no batch to wait for) */
    case MSG_LOCK_TEST:
    case MSG_LOCK_DROP:
    case MSG_LOCK_EPOCH:
        return meta_handle_locks(q->m, q->conn, q->h, &q->r, &q->out);
    default:
        return -2; /* not a client message */
    }
}

/* Whether an OPEN is read-only on a linked regular file or directory (a client's opendir),
 * or a RELEASE of such an open: then it is counted in memory and writes no record. */
static int soft_open_req(struct meta *m, uint16_t type, const uint8_t *p, uint32_t len)
{
    if (type == MSG_OPEN && len >= 20) {
        uint32_t flags = le_get32(p + 8);
        if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return 0;
        struct cairn_attr a;
        return mstore_getattr(m->store, le_get64(p), &a) == 0 &&
               (S_ISREG(a.mode) || S_ISDIR(a.mode)) && a.nlink > 0;
    }
    if (type == MSG_RELEASE && len >= 16) return soft_open_has(le_get64(p + 8), le_get64(p));
    return 0;
}

/* Whether a SETXATTR sets an access ACL that changes nothing (mstore_acl_access_unchanged):
 * then it is answered from committed state, like a read, with no record. */
static int noop_setxattr_req(struct meta *m, uint16_t type, const uint8_t *p, uint32_t len)
{
    if (type != MSG_SETXATTR) return 0;
    struct rcur c;
    rcur_init(&c, p, len);
    uint64_t ino = rcur_u64(&c);
    char name[CAIRN_NAME_MAX + 1];
    int nl = rcur_str(&c, name, CAIRN_NAME_MAX);
    size_t vl = 0;
    const uint8_t *v = rcur_bytes(&c, WIRE_MAX_PAYLOAD, &vl);
    uint32_t flags = rcur_u32(&c);
    if (rcur_done(&c) || nl < 0 || flags) return 0;
    return mstore_acl_access_unchanged(m->store, ino, name, v, vl);
}

static int mutates(uint16_t type)
{
    return proto_numbered(type) || type == MSG_SESSION_OPEN || type == MSG_SESSION_KEEPALIVE ||
           type == MSG_SESSION_CLOSE || type == MSG_CS_DRAIN || type == MSG_ATIME;
}

/* Whether an OPEN request names a file with data (whose chunk locations it returns). */
static int opens_data(struct meta *m, const uint8_t *payload, uint32_t len)
{
    struct cairn_attr a;
    if (len < 8) return 0;
    return mstore_getattr(m->store, le_get64(payload), &a) == 0 && S_ISREG(a.mode) && a.size > 0;
}

static int handle_req(struct evsrv_conn *conn, const struct wire_hdr *h, const uint8_t *payload,
                      void *arg)
{
    struct meta *m = arg;
    uint16_t type = (uint16_t)(h->type & ~MSG_F_SEQ);
    if (type == MSG_SNAP_OPEN || type == MSG_SNAP_READ) /* any replica lends its store */
        return snap_serve_handle(m, conn, h, payload);
    if (type >= MSG_META_STATUS && type <= MSG_META_WHOAMI) {
        struct rcur r;
        rcur_init(&r, payload, h->length);
        return mraft_handle_admin(m, conn, h, &r);
    }
    /* everything else is the leader's, once it applied what earlier terms left */
    if (!mraft_ready(m)) {
        if (mraft_should_wait(m)) return EVSRV_DEFER;
        meta_reply_not_leader(m, conn, h);
        return 0;
    }
    if (!mstore_formatted(m->store)) return EVSRV_DEFER; /* the format record is on its way */
    struct wire_hdr hh = *h;
    hh.type = type;
    uint64_t sess = 0, seq = 0, acked = 0;
    if (h->type & MSG_F_SEQ) {
        if (h->length < MSG_SEQ_TRAILER) return -EBADMSG;
        const uint8_t *t = payload + h->length - MSG_SEQ_TRAILER;
        sess = le_get64(t);
        seq = le_get64(t + 8);
        acked = le_get64(t + 16);
        hh.length -= MSG_SEQ_TRAILER;
    }
    int soft = soft_open_req(m, type, payload, hh.length) ||
               noop_setxattr_req(m, type, payload, hh.length);
    if (mutates(type) && !soft && !meta_can_apply(m)) return EVSRV_DEFER;
    /* a new leader hands out no locations (and refuses no lease for want of servers) before
     * the chunk servers have found it */
    if ((type == MSG_OPEN || type == MSG_CHUNK_LOCATE) && !meta_warm(m) &&
        (type != MSG_OPEN || opens_data(m, payload, hh.length))) {
        mraft_park_retry(m);
        return EVSRV_DEFER;
    }
    if (type >= MSG_CS_REGISTER && type <= MSG_CS_REPLICATED) {
        /* soft state only (deletions and orders wait for their commit by themselves) */
        evsrv_bypass(m->srv, 1);
        int crc = meta_handle_cs(m, conn, &hh, payload);
        evsrv_bypass(m->srv, 0);
        return crc;
    }
    m->cur_session = sess;
    m->cur_seq = seq;
    m->cur_acked = acked;
    struct req q = {.m = m, .conn = conn, .h = &hh, .soft = soft};
    rcur_init(&q.r, payload, hh.length);
    wbuf_init(&q.out);
    /* a read answers from committed state: it does not wait for the batch in the log */
    int reads_only = !mutates(type) || soft;
    /* a leader cut off from the others must not answer from a store the majority has moved
     * past: a read needs a recent commit as proof of leadership */
    if (reads_only && !mraft_read_proof(m)) return EVSRV_DEFER;
    if (reads_only) evsrv_bypass(m->srv, 1);
    int rc = dispatch(&q);
    if (reads_only) evsrv_bypass(m->srv, 0);
    /* a full batch goes to the log between requests (never inside one) */
    if (m->batch_nrec >= META_BATCH_MAX) meta_flush(m);
    m->cur_seq = 0;
    wbuf_free(&q.out);
    if (rc == EVSRV_DEFER) return rc;
    if (rc == -2) {
        /* an unknown type from a newer client: answer, do not drop the connection */
        LOG_WARN("meta", "unknown request type %u from %s", h->type, evsrv_conn_peer(conn));
        evsrv_reply(conn, h, -EOPNOTSUPP, NULL, 0);
        return 0;
    }
    if (rc)
        LOG_WARN("meta", "malformed %s from %s: closing the connection", proto_type_name(h->type),
                 evsrv_conn_peer(conn));
    return rc;
}

int meta_handle(struct evsrv_conn *conn, const struct wire_hdr *h, const uint8_t *payload,
                void *arg)
{
    uint64_t t0 = meta_metrics_now_us();
    int rc = handle_req(conn, h, payload, arg);
    if (rc != EVSRV_DEFER) meta_metrics_request(h->type, rc, meta_metrics_now_us() - t0);
    return rc;
}
