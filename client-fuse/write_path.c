/* write_path.c - writing file data: each inode has one dirty extent in memory (contiguous
 * writes merge into it). When it reaches CM_DIRTY_MAX it is sent without waiting: its pieces
 * (at most CAIRN_IO_MAX, inside one chunk) go down their chunks' chains, up to
 * CM_WRITE_INFLIGHT pieces per inode in flight at once over the pool's connections, while the
 * application fills the next extent. Before a read that overlaps it, when a write does not
 * touch it, and at flush/fsync/release/truncate everything is written out and waited for.
 * Size and mtime reach the meta service with COMMIT at flush/fsync.
 *
 * Writing takes a write lease per chunk (once per chunk while the file is open here). No
 * acknowledged byte is lost while one server can take the data:
 *   - a piece counts as written only when every member of its chain holds it (reply status 0
 *     and chain_err 0); its bytes stay in memory until then;
 *   - otherwise every piece in flight is waited for first (so nothing sent under the old lease
 *     can land after a rewrite), then each failed piece is rewritten in order: the server that
 *     failed (loc[chain_ok], or the head) joins the chunk's exclusion set, the lease is dropped,
 *     a new one is taken that leaves out every excluded server, and the piece is written
 *     again; -ESTALE takes a new lease without excluding anybody. At most CM_WRITE_ATTEMPTS
 *     leases per piece; a lease the meta refuses (no server left) ends it with EIO.
 *   - bytes acknowledged earlier in the same chunk are on every member that survives into the
 *     new chain (they acknowledged them), so rewriting the failed piece is enough.
 * Pieces in flight never touch the same 64 KiB checksum block, so the chunk servers may apply
 * them in any order. Truncation sets the size on the meta service and cuts the last chunk
 * (with the same failure handling) so stale bytes beyond the new end cannot reappear. All
 * functions serialise on the inode's mutex. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cksum.h"
#include "client.h"
#include "log.h"
#include "net.h"

/* A detached dirty buffer whose pieces are in flight; freed when the last is settled. */
struct wp_extent {
    uint8_t *buf;
    size_t cap;
    int refs;
};

static void now_ts(int64_t *s, uint32_t *ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *s = ts.tv_sec;
    *ns = (uint32_t)ts.tv_nsec;
}

/* The lease of chunk index, taken now (leaving out the chunk's excluded servers) if not held.
 * s->mu held. The pointer is valid until the next lease is added or dropped. */
static int lease(struct cm *cm, struct inode_st *s, uint64_t index, struct ist_lease **out)
{
    struct ist_lease *l = ist_lease_find(s, index);
    if (!l) {
        struct chunk_info ci;
        const struct ist_excl *ex = ist_excl_get(s, index);
        /* leave out this chunk's excluded servers and any server that just failed this
         * mount (dead, but not yet declared dead by the meta service); if that leaves
         * nobody, ask again with the chunk's own exclusions only */
        uint64_t excl[CM_EXCL_MAX + 16];
        int n = 0;
        for (int i = 0; ex && i < ex->n; i++)
            excl[n++] = ex->id[i];
        int nex = n;
        n += cc_avoided_ids(cm->cc, excl + n, 16);
        int rc = mc_chunk_lease(&cm->meta, s->ino, index, excl, (uint8_t)n, &ci);
        if (rc && n > nex) rc = mc_chunk_lease(&cm->meta, s->ino, index, excl, (uint8_t)nex, &ci);
        if (rc) {
            LOG_WARN("write", "inode %" PRIu64 " chunk %" PRIu64 ": no lease (%u excluded): %s",
                     s->ino, index, ex ? ex->n : 0, strerror(-rc));
            return rc;
        }
        ci.index = index;
        l = ist_lease_add(s, &ci);
        if (!l) return -ENOMEM;
        ist_chunk_set(s, index, 1, &ci);
    }
    *out = l;
    return 0;
}

/* Replace the lease of chunk index (held) by a new one that leaves out the chunk's excluded
 * servers; what the old lease still owed an fsync and COMMIT carries over (the survivors hold
 * that data). s->mu held. */
static int lease_again(struct cm *cm, struct inode_st *s, uint64_t index, struct ist_lease **out)
{
    struct ist_lease *l = ist_lease_find(s, index);
    int unsynced = l->unsynced, alloc_dirty = l->alloc_dirty;
    uint64_t alloc = l->alloc;
    ist_lease_drop(s, index);
    int rc = lease(cm, s, index, &l);
    if (rc) return rc;
    l->unsynced |= unsynced;
    l->alloc = alloc;
    l->alloc_dirty = alloc_dirty;
    *out = l;
    return 0;
}

/* After a write or truncate of chunk index under lease `version` failed with *r: unless a
 * newer lease was taken meanwhile (for an earlier failed piece), exclude the failed server
 * (not for -ESTALE) and replace the lease; then *out is the lease to write with. What the old
 * lease still owed an fsync carries over (its survivors hold that data). s->mu held. */
static int relet(struct cm *cm, struct inode_st *s, uint64_t index, const struct cc_wres *r,
                 uint32_t version, struct ist_lease **out)
{
    struct ist_lease *l = ist_lease_find(s, index);
    if (!l || l->ci.version != version) return lease(cm, s, index, out);
    uint64_t bad = 0;
    if (cc_wres_verdict(r, &l->ci, &bad) == 1) {
        int e = ist_excl_add(s, index, bad);
        if (e == -ENOMEM) return e;
        int err = r->status ? r->status : r->chain_err;
        if (cc_transport_err(err))
            for (int i = 0; i < l->ci.nloc; i++)
                if (l->ci.loc[i].server_id == bad) cc_avoid(cm->cc, l->ci.loc[i].addr, bad);
        LOG_WARN("write",
                 "inode %" PRIu64 " chunk %" PRIu64 " v%u: server %016" PRIx64 " failed (%s); "
                 "leasing again without it",
                 s->ino, index, version, bad, strerror(-(r->status ? r->status : r->chain_err)));
    } else {
        LOG_INFO("write", "inode %" PRIu64 " chunk %" PRIu64 " v%u: stale; leasing again", s->ino,
                 index, version);
    }
    return lease_again(cm, s, index, out);
}

static int wres_ok(const struct cc_wres *r)
{
    return r->status == 0 && r->chain_err == 0;
}

/* A piece of chunk index is on every member of the chain: note what fsync and COMMIT need. */
static void account(struct inode_st *s, uint64_t index, int sync, const struct cc_wres *r)
{
    struct ist_lease *l = ist_lease_find(s, index);
    if (!l) return;
    if (!sync) l->unsynced = 1;
    if (r->alloc > l->alloc) {
        l->alloc = r->alloc;
        l->alloc_dirty = 1;
    }
}

/* Write one piece until every member of a chain holds it, starting from the failed outcome
 * *r of a first attempt under lease `version`. s->mu held, nothing of this chunk in flight. */
static int settle(struct cm *cm, struct inode_st *s, uint64_t index, uint32_t off,
                  const uint8_t *data, uint32_t len, int sync, uint32_t version, struct cc_wres *r)
{
    for (int attempt = 1; attempt < CM_WRITE_ATTEMPTS; attempt++) {
        struct ist_lease *l;
        int rc = relet(cm, s, index, r, version, &l);
        if (rc) return -EIO; /* the meta found no server to leave the failed ones out */
        version = l->ci.version;
        cc_write(cm->cc, &l->ci, off, data, len, sync, r);
        if (wres_ok(r)) {
            account(s, index, sync, r);
            return 0;
        }
    }
    return -EIO;
}

static void ext_put(struct inode_st *s, struct wp_extent *e)
{
    if (--e->refs > 0) return;
    if (!s->dbuf && e->cap <= 2 * CM_DIRTY_MAX) { /* reuse it for the next extent */
        s->dbuf = e->buf;
        s->dcap = e->cap;
    } else {
        free(e->buf);
    }
    free(e);
}

/* Wait for the n oldest pieces in flight (all when n >= wq_n). Once one has failed, every
 * other piece in flight is waited for too, then the failed ones are settled in order. */
static int reap(struct cm *cm, struct inode_st *s, int n)
{
    struct wp_piece failed[CM_WRITE_INFLIGHT];
    struct cc_wres fres[CM_WRITE_INFLIGHT];
    int nf = 0, rc = 0;
    for (int i = 0; s->wq_n > 0 && (i < n || nf > 0); i++) {
        struct wp_piece pc = s->wq[0];
        memmove(s->wq, s->wq + 1, sizeof(s->wq[0]) * (size_t)(s->wq_n - 1));
        s->wq_n--;
        struct cc_wres r;
        if (pc.sub) {
            memset(&r, 0, sizeof(r));
            r.status = pc.sub;
        } else {
            cc_write_finish(&pc.call, pc.deadline, &r);
        }
        if (wres_ok(&r)) {
            account(s, pc.index, pc.sync, &r);
            ext_put(s, pc.ext);
        } else {
            failed[nf] = pc;
            fres[nf++] = r;
        }
    }
    for (int i = 0; i < nf; i++) {
        struct wp_piece *pc = &failed[i];
        int e =
            settle(cm, s, pc->index, pc->off, pc->data, pc->len, pc->sync, pc->version, &fres[i]);
        if (e) {
            LOG_ERR("write", "inode %" PRIu64 " chunk %" PRIu64 ": %u bytes at %u lost: %s", s->ino,
                    pc->index, pc->len, pc->off, strerror(-e));
            if (!rc) rc = e;
        }
        ext_put(s, pc->ext);
    }
    return rc;
}

/* Whether two pieces of one chunk touch the same checksum block. */
static int blocks_meet(uint32_t a_off, uint32_t a_len, uint32_t b_off, uint32_t b_len)
{
    uint64_t a0 = a_off / CKSUM_BLOCK, a1 = ((uint64_t)a_off + a_len - 1) / CKSUM_BLOCK;
    uint64_t b0 = b_off / CKSUM_BLOCK, b1 = ((uint64_t)b_off + b_len - 1) / CKSUM_BLOCK;
    return a0 <= b1 && b0 <= a1;
}

/* Send one piece of extent e (not waited for). s->mu held. */
static int send_piece(struct cm *cm, struct inode_st *s, struct wp_extent *e, uint64_t index,
                      uint32_t off, const uint8_t *data, uint32_t len, int sync)
{
    int rc = 0, last = -1;
    for (int i = 0; i < s->wq_n; i++)
        if (s->wq[i].index == index && blocks_meet(s->wq[i].off, s->wq[i].len, off, len)) last = i;
    if (last >= 0) rc = reap(cm, s, last + 1);
    if (s->wq_n == CM_WRITE_INFLIGHT) {
        int r = reap(cm, s, 1);
        if (!rc) rc = r;
    }
    struct ist_lease *l;
    int r = lease(cm, s, index, &l);
    if (r) return -EIO;
    struct wp_piece *pc = &s->wq[s->wq_n++];
    memset(pc, 0, sizeof(*pc));
    pc->ext = e;
    pc->data = data;
    pc->index = index;
    pc->off = off;
    pc->len = len;
    pc->sync = sync;
    pc->version = l->ci.version;
    pc->deadline = net_now_ms() + (uint64_t)cm->cfg.io_timeout_s * 1000;
    pc->sub = cc_write_submit(cm->cc, &l->ci, off, data, len, sync, pc->deadline, &pc->call);
    e->refs++;
    return rc;
}

/* Detach the dirty extent and send all its pieces (not waited for). s->mu held. */
static int send_extent(struct cm *cm, struct inode_st *s, int sync)
{
    if (s->dlen == 0) return 0;
    if (!s->wq) {
        s->wq = calloc(CM_WRITE_INFLIGHT, sizeof(*s->wq));
        if (!s->wq) return -ENOMEM;
    }
    uint64_t csz = cm->meta.chunk_size;
    int max = (int)(s->dlen / CAIRN_IO_MAX) + 3;
    struct rp_piece *p = calloc((size_t)max, sizeof(*p));
    struct wp_extent *e = calloc(1, sizeof(*e));
    if (!p || !e) {
        free(p);
        free(e);
        return -ENOMEM;
    }
    int rc = rp_split(s->dstart, s->dlen, csz, CAIRN_IO_MAX, p, max);
    if (rc < 0) {
        free(p);
        free(e);
        return rc;
    }
    int n = rc;
    rc = 0;
    e->buf = s->dbuf;
    e->cap = s->dcap;
    e->refs = 1;
    s->dbuf = NULL;
    s->dcap = 0;
    s->dlen = 0;
    for (int i = 0; i < n; i++) {
        int r = send_piece(cm, s, e, p[i].index, p[i].off, e->buf + p[i].buf_off, p[i].len, sync);
        if (r && !rc) rc = r;
    }
    ext_put(s, e);
    free(p);
    return rc;
}

/* Note a failure of writing out (kept for the next flush/fsync). */
static int write_failed(struct inode_st *s, int rc)
{
    LOG_ERR("write", "inode %" PRIu64 ": writing out failed: %s", s->ino, strerror(-rc));
    s->werr = -EIO;
    return -EIO;
}

int wp_flush_locked(struct cm *cm, struct inode_st *s, int sync)
{
    if (s->dlen == 0 && s->wq_n == 0) return 0;
    int rc = send_extent(cm, s, sync);
    int r = reap(cm, s, INT_MAX);
    if (!rc) rc = r;
    if (rc) rc = write_failed(s, rc);
    if (s->dcap > 2 * CM_DIRTY_MAX) {
        free(s->dbuf);
        s->dbuf = NULL;
        s->dcap = 0;
    }
    rc_drop_ino(cm->cache, s->ino);
    return rc;
}

int wp_readable_locked(struct cm *cm, struct inode_st *s, uint64_t off, uint64_t len)
{
    uint64_t csz = cm->meta.chunk_size;
    int busy = s->dlen && off < s->dstart + s->dlen && off + len > s->dstart;
    for (int i = 0; i < s->wq_n && !busy; i++) {
        uint64_t a = s->wq[i].index * csz + s->wq[i].off;
        busy = off < a + s->wq[i].len && off + len > a;
    }
    return busy ? wp_flush_locked(cm, s, 0) : 0;
}

int wp_write(struct cm *cm, struct inode_st *s, uint64_t off, const void *data, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->dlen && (off > s->dstart + s->dlen || off + len < s->dstart)) {
        rc = send_extent(cm, s, 0); /* not waited for */
        if (rc) {
            rc = write_failed(s, rc);
            goto out;
        }
    }
    uint64_t start = s->dlen ? (off < s->dstart ? off : s->dstart) : off;
    uint64_t end = s->dlen ? s->dstart + s->dlen : off + len;
    if (off + len > end) end = off + len;
    size_t need = (size_t)(end - start);
    if (need > s->dcap) {
        size_t cap = s->dcap ? s->dcap : (256u << 10);
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(s->dbuf, cap);
        if (!nb) {
            rc = -ENOMEM;
            goto out;
        }
        s->dbuf = nb;
        s->dcap = cap;
    }
    if (s->dlen && start < s->dstart) memmove(s->dbuf + (s->dstart - start), s->dbuf, s->dlen);
    memcpy(s->dbuf + (off - start), data, len);
    s->dstart = start;
    s->dlen = need;
    if (off + len > s->size_local) s->size_local = off + len;
    now_ts(&s->mtime_s, &s->mtime_ns);
    s->need_commit = 1;
    rc_drop_ino(cm->cache, s->ino);
    if (s->dlen >= CM_DIRTY_MAX) {
        rc = send_extent(cm, s, 0);
        if (rc) rc = write_failed(s, rc);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Make the earlier (non-sync) writes to chunk index durable: CHK_FSYNC to every member of
 * the chunk's current chain.
 *
 * Why syncing the members of the current lease is enough: every byte this mount wrote to the
 * chunk and saw acknowledged is held by every one of them. A piece counts as written only once
 * every member of its chain acknowledged it (chain_err 0), else it was rewritten under a newer
 * lease; and a new lease's chain is made of servers holding a valid copy, i.e. members of the
 * old chain that acknowledged every earlier piece (a server without the chunk cannot join the
 * chain of an existing chunk: it accepts a write only with prev_version 0). So the bytes are
 * in the page cache of every current member and CHK_FSYNC makes them durable there.
 *
 * A member that fails the fsync may lose those bytes in a crash, and they cannot be rewritten:
 * they left the dirty buffer when they were acknowledged. So it is handled like a failed write
 * minus the rewrite: it joins the chunk's exclusion set and a new lease is taken without it,
 * which tells the meta that its copy is stale (not in the last chain: never served, rebuilt
 * from the survivors). The survivors synced, so they hold every byte durably and the fsync
 * succeeds; it fails with EIO when no member synced or the meta grants no lease that leaves
 * the failed ones out. s->mu held. */
static int fsync_chunk(struct cm *cm, struct inode_st *s, uint64_t index)
{
    struct ist_lease *l = ist_lease_find(s, index);
    if (!l) return 0;
    struct chunk_info ci = l->ci;
    int res[CAIRN_MAX_LOCS];
    int ok = cc_fsync(cm->cc, &ci, res);
    if (ok == 0) {
        LOG_ERR("write", "inode %" PRIu64 " chunk %" PRIu64 ": no member of the chain synced",
                s->ino, index);
        return -EIO;
    }
    int failed = 0;
    for (int i = 0; i < ci.nloc && i < CAIRN_MAX_LOCS; i++) {
        if (!res[i]) continue;
        failed++;
        if (ist_excl_add(s, index, ci.loc[i].server_id) == -ENOMEM) return -ENOMEM;
        LOG_WARN("write",
                 "inode %" PRIu64 " chunk %" PRIu64 ": %s failed to sync (%s): "
                 "leasing again without it",
                 s->ino, index, ci.loc[i].addr, strerror(-res[i]));
    }
    if (failed && lease_again(cm, s, index, &l)) return -EIO;
    l->unsynced = 0;
    return 0;
}

int wp_commit_locked(struct cm *cm, struct inode_st *s)
{
    enum { MAXA = 64 };
    int rc = 0;
    /* every lease's bytes get published: at most MAXA a COMMIT, so a file with more leases
     * (a fallocate over many chunks) takes several */
    for (size_t round = 0; s->need_commit && round <= s->nleases / MAXA; round++) {
        struct cairn_attr a;
        struct mc_alloc al[MAXA];
        uint32_t na = 0;
        for (size_t i = 0; i < s->nleases && na < MAXA; i++)
            if (s->leases[i].alloc_dirty)
                al[na++] = (struct mc_alloc){s->leases[i].ci.index, s->leases[i].alloc};
        rc = mc_commit(&cm->meta, s->ino, s->size_local, s->mtime_s, s->mtime_ns, 0, al, na, &a);
        if (rc) break;
        int more = 0;
        for (size_t i = 0; i < s->nleases; i++) {
            for (uint32_t k = 0; k < na; k++)
                if (s->leases[i].ci.index == al[k].index) s->leases[i].alloc_dirty = 0;
            more |= s->leases[i].alloc_dirty;
        }
        s->need_commit = more;
        s->size_meta = a.size;
        s->open_mtime_s = a.mtime_s;
        s->open_mtime_ns = a.mtime_ns;
        s->open_size = a.size;
        /* the kernel keeps the st_blocks of before the writes (it refreshes size and
         * times, not blocks): drop its attributes so tar/cp see the space used */
        if (cm->se && !more) fuse_lowlevel_notify_inval_inode(cm->se, s->ino, -1, 0);
    }
    return rc;
}

int wp_flush(struct cm *cm, struct inode_st *s, int sync)
{
    pthread_mutex_lock(&s->mu);
    int rc = wp_flush_locked(cm, s, sync);
    if (sync) {
        for (size_t i = 0; i < s->nleases; i++) {
            if (!s->leases[i].unsynced) continue;
            int r = fsync_chunk(cm, s, s->leases[i].ci.index);
            if (r && !rc) rc = -EIO;
        }
    }
    int r = wp_commit_locked(cm, s);
    if (r && !rc) rc = r;
    if (!rc && s->werr) rc = s->werr;
    s->werr = 0;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int wp_truncate(struct cm *cm, uint64_t ino, struct inode_st *s, const struct mc_setattr *sa,
                struct cairn_attr *out)
{
    int own = 0;
    if (!s) {
        s = ist_get(cm->inodes, ino);
        if (!s) return -ENOMEM;
        own = 1;
    }
    pthread_mutex_lock(&s->mu);
    int rc = wp_flush_locked(cm, s, 0);
    s->werr = 0;
    uint64_t size = sa->size;
    if (!rc) rc = mc_setattr(&cm->meta, ino, sa, out);
    if (rc) goto out;
    uint64_t csz = cm->meta.chunk_size;
    uint64_t keep = size / csz + (size % csz ? 1 : 0);
    ist_chunks_drop_from(s, keep);
    ist_excl_drop_from(s, keep);
    for (size_t i = 0; i < s->nleases;)
        if (s->leases[i].ci.index >= keep)
            s->leases[i] = s->leases[--s->nleases];
        else
            i++;
    s->size_meta = out->size;
    s->size_local = out->size;
    s->open_size = out->size;
    s->open_mtime_s = out->mtime_s;
    s->open_mtime_ns = out->mtime_ns;
    if (size % csz) {
        uint64_t index = size / csz;
        struct chunk_info ci;
        int present = 0;
        rc = rp_locate(cm, s, index, &ci, &present);
        struct cc_wres r = {0};
        uint32_t version = 0;
        for (int attempt = 0; !rc && present && attempt < CM_WRITE_ATTEMPTS; attempt++) {
            struct ist_lease *l;
            rc = attempt ? relet(cm, s, index, &r, version, &l) : lease(cm, s, index, &l);
            if (rc) break;
            version = l->ci.version;
            cc_truncate(cm->cc, &l->ci, (uint32_t)(size % csz), &r);
            if (wres_ok(&r)) {
                l->unsynced = 1;
                break;
            }
            rc = attempt + 1 < CM_WRITE_ATTEMPTS ? 0 : -EIO;
        }
        if (rc) {
            LOG_ERR("write", "inode %" PRIu64 ": cutting chunk %" PRIu64 " to %" PRIu64 ": %s", ino,
                    index, size % csz, strerror(-rc));
            rc = -EIO;
        }
    }
out:
    rc_drop_ino(cm->cache, ino);
    pthread_mutex_unlock(&s->mu);
    if (own) ist_put(cm->inodes, s);
    return rc;
}

int wp_lease(struct cm *cm, struct inode_st *s, uint64_t index, struct ist_lease **out)
{
    return lease(cm, s, index, out);
}

int wp_relet(struct cm *cm, struct inode_st *s, uint64_t index, const struct cc_wres *r,
             uint32_t version, struct ist_lease **out)
{
    return relet(cm, s, index, r, version, out);
}
