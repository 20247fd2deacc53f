/* falloc.c - fallocate(2) on a mount: mode 0 and KEEP_SIZE reserve space on the chunk servers,
 * PUNCH_HOLE (with KEEP_SIZE) and ZERO_RANGE make a range read as zeros.
 *
 * Each chunk the range touches gets one MSG_CHK_FALLOC under a write lease, like a write
 * piece: it goes down the chunk's chain, so every copy moves to the new version with the same
 * bytes, and a copy that missed it is stale. The steps:
 *   1. every pending write of the file is written out first (the range must not be rewritten
 *      by data sent earlier);
 *   2. mode 0, KEEP_SIZE and ZERO_RANGE reserve [off, off+len) chunk by chunk (RESERVE, which
 *      changes no data). When a server has no room (-ENOSPC, as the reply's status or from a
 *      hop down the chain) the reservations made by this call are undone (UNRESERVE: what lies
 *      past each chunk's data) and fallocate fails with ENOSPC, the file unchanged;
 *   3. PUNCH_HOLE and ZERO_RANGE then zero the part of the range inside the file in every chunk
 *      that exists (a chunk never written reads as zeros already). These change data, so a
 *      failure is handled as for a write: the failing server leaves the chain (its copy is
 *      stale from then on) and the chunk is done again under a new lease;
 *   4. without KEEP_SIZE the size grows to off+len; mtime is set, and the size and the bytes
 *      each chunk server now stores for the chunks touched (st_blocks) are committed.
 * The chunk servers' own data lengths never change: the file's size is the meta service's,
 * and what lies past a chunk's data reads as zeros. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"

/* The part [*coff, *cend) of [off, end) inside chunk index. */
static void chunk_part(uint64_t index, uint64_t csz, uint64_t off, uint64_t end, uint32_t *coff,
                       uint32_t *cend)
{
    uint64_t cs = index * csz;
    *coff = (uint32_t)(off > cs ? off - cs : 0);
    *cend = (uint32_t)(end < cs + csz ? end - cs : csz);
}

/* A refusal that changed no data on the server that made it (RESERVE only). */
static int refusal(int err)
{
    return err == -ENOSPC || err == -EOPNOTSUPP || err == -EDQUOT;
}

/* One CHK_FALLOC of [coff, cend) of chunk index, until every member of a chain did it (or,
 * for RESERVE, until a member has no room: that error is returned, nobody is excluded).
 * Records the head's allocated bytes for the next COMMIT. s->mu held. */
static int fa_chunk(struct cm *cm, struct inode_st *s, uint64_t index, uint32_t coff, uint32_t cend,
                    uint8_t mode)
{
    struct ist_lease *l;
    struct cc_wres r = {0};
    uint32_t version = 0;
    for (int attempt = 0; attempt < CM_WRITE_ATTEMPTS; attempt++) {
        int rc = attempt ? wp_relet(cm, s, index, &r, version, &l) : wp_lease(cm, s, index, &l);
        if (rc) return rc == -ENOSPC ? rc : -EIO; /* no server (with room) left to take it */
        version = l->ci.version;
        cc_falloc(cm->cc, &l->ci, coff, cend - coff, mode, &r);
        int err = r.status ? r.status : r.chain_err;
        if (r.status == 0) { /* the head did it: its bytes are what st_blocks counts */
            l->alloc = r.alloc;
            l->alloc_dirty = 1;
            l->unsynced = 1;
        }
        if (err == 0) return 0;
        if ((mode == CHK_FALLOC_RESERVE || mode == CHK_FALLOC_UNRESERVE) && refusal(err))
            return err;
    }
    return -EIO;
}

/* Step 2: reserve [off, end); on a refusal undo what this call reserved. s->mu held. */
static int fa_reserve(struct cm *cm, struct inode_st *s, uint64_t off, uint64_t end)
{
    uint64_t csz = cm->meta.chunk_size, first = off / csz, last = (end - 1) / csz, i;
    uint32_t coff, cend;
    int rc = 0;
    for (i = first; i <= last && !rc; i++) {
        chunk_part(i, csz, off, end, &coff, &cend);
        rc = fa_chunk(cm, s, i, coff, cend, CHK_FALLOC_RESERVE);
    }
    if (!rc) return 0;
    LOG_INFO("write",
             "inode %" PRIu64 ": fallocate of [%" PRIu64 ", %" PRIu64 ") failed at chunk %" PRIu64
             ": %s; undoing",
             s->ino, off, end, i - 1, strerror(-rc));
    for (uint64_t k = first; k < i; k++) { /* best effort: a failure leaves space reserved */
        chunk_part(k, csz, off, end, &coff, &cend);
        fa_chunk(cm, s, k, coff, cend, CHK_FALLOC_UNRESERVE);
    }
    return rc;
}

/* Step 3: [off, end) of every chunk that exists reads as zeros. s->mu held. */
static int fa_zero(struct cm *cm, struct inode_st *s, uint64_t off, uint64_t end, uint8_t mode)
{
    uint64_t csz = cm->meta.chunk_size;
    for (uint64_t i = off / csz; i <= (end - 1) / csz; i++) {
        struct chunk_info ci;
        int present = 0;
        int rc = ist_lease_find(s, i) ? (present = 1, 0) : rp_locate(cm, s, i, &ci, &present);
        if (rc) return rc;
        if (!present) continue;
        uint32_t coff, cend;
        chunk_part(i, csz, off, end, &coff, &cend);
        rc = fa_chunk(cm, s, i, coff, cend, mode);
        if (rc) {
            LOG_ERR("write", "inode %" PRIu64 " chunk %" PRIu64 ": zeroing [%u, %u) failed: %s",
                    s->ino, i, coff, cend, strerror(-rc));
            return -EIO;
        }
    }
    return 0;
}

int fa_fallocate(struct cm *cm, struct inode_st *s, int mode, uint64_t off, uint64_t len)
{
    int keep = mode & FALLOC_FL_KEEP_SIZE, punch = mode & FALLOC_FL_PUNCH_HOLE;
    int zero = mode & FALLOC_FL_ZERO_RANGE;
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
        return -EOPNOTSUPP; /* COLLAPSE_RANGE, INSERT_RANGE, UNSHARE_RANGE, ... */
    if ((punch && (zero || !keep)))
        return -EOPNOTSUPP; /* as Linux: a punch keeps the size, and is not a zero range */
    if (len == 0 || off + len < off) return -EINVAL;
    uint64_t end = off + len;
    pthread_mutex_lock(&s->mu);
    uint64_t size0 = ist_size(s);
    pthread_mutex_unlock(&s->mu);
    uint64_t past = end > size0 ? end - (off > size0 ? off : size0) : 0;
    if (!punch && past > 0) {
        /* more past the end than the whole cluster has free cannot fit: refuse before
         * touching anything (this also bounds the chunks a huge request would walk) */
        struct mc_statfs sf;
        if (mc_statfs(&cm->meta, &sf) == 0 && sf.total_bytes > 0 && past > sf.free_bytes)
            return -ENOSPC;
    }
    pthread_mutex_lock(&s->mu);
    int rc = wp_flush_locked(cm, s, 0);
    if (rc) goto out;
    uint64_t size = ist_size(s);
    int owed = s->need_commit; /* writes whose mtime is not published yet */
    if (!punch) rc = fa_reserve(cm, s, off, end);
    uint64_t zend = end < size ? end : size;
    if (!rc && (punch || zero) && off < zend)
        rc = fa_zero(cm, s, off, zend, punch ? CHK_FALLOC_PUNCH : CHK_FALLOC_ZERO);
    if (!rc) {
        if (!keep && end > size) s->size_local = end;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->mtime_s = ts.tv_sec;
        s->mtime_ns = (uint32_t)ts.tv_nsec;
    } else if (!owed) { /* the COMMIT below publishes bytes only: keep the mtime */
        s->mtime_s = s->open_mtime_s;
        s->mtime_ns = s->open_mtime_ns;
    }
    s->need_commit = 1; /* the allocated bytes changed, even after an undone reservation */
    int r = wp_commit_locked(cm, s);
    if (!rc) rc = r;
out:
    rc_drop_ino(cm->cache, s->ino);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
