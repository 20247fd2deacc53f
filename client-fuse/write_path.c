/* write_path.c - writing file data: each inode has one dirty extent in memory (contiguous
 * writes merge into it); it is written out when it reaches CM_DIRTY_MAX, when a write does not
 * touch it, before a read that overlaps it, and at flush/fsync/release. Writing out takes a
 * write lease per chunk (once per chunk while the file is open here; again after a failure,
 * which gives a new version and chain) and streams pieces of at most CAIRN_IO_MAX to the
 * chain's first server. Size and mtime reach the meta service with COMMIT at flush/fsync.
 * Truncation sets the size on the meta service and cuts the last chunk so stale bytes beyond
 * the new end cannot reappear. All functions serialise on the inode's mutex. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"

#define WP_ATTEMPTS 3

static void now_ts(int64_t *s, uint32_t *ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *s = ts.tv_sec;
    *ns = (uint32_t)ts.tv_nsec;
}

/* The lease of chunk index, taken now if not held. s->mu held. */
static int lease(struct cm *cm, struct inode_st *s, uint64_t index, struct ist_lease **out)
{
    struct ist_lease *l = ist_lease_find(s, index);
    if (!l) {
        struct chunk_info ci;
        int rc = mc_chunk_lease(&cm->meta, s->ino, index, &ci);
        if (rc) {
            LOG_WARN("write", "inode %" PRIu64 " chunk %" PRIu64 ": no lease: %s", s->ino, index,
                     strerror(-rc));
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

/* Write one piece inside chunk index, re-leasing after a failure. s->mu held. */
static int write_piece(struct cm *cm, struct inode_st *s, uint64_t index, uint32_t off,
                       const uint8_t *data, size_t len, int sync)
{
    int rc = 0;
    for (int attempt = 0; attempt < WP_ATTEMPTS; attempt++) {
        struct ist_lease *l;
        rc = lease(cm, s, index, &l);
        if (rc) return rc;
        uint64_t alloc = l->alloc;
        rc = cc_write(cm->cc, &l->ci, off, data, len, sync, &alloc);
        if (rc == 0) {
            if (!sync) l->unsynced = 1;
            if (alloc != l->alloc) {
                l->alloc = alloc;
                l->alloc_dirty = 1;
            }
            return 0;
        }
        ist_lease_drop(s, index);
    }
    return rc;
}

int wp_flush_locked(struct cm *cm, struct inode_st *s, int sync)
{
    if (s->dlen == 0) return 0;
    uint64_t csz = cm->meta.chunk_size;
    int max = (int)(s->dlen / csz) + 2;
    struct rp_piece *p = calloc((size_t)max, sizeof(*p));
    int rc = p ? rp_split(s->dstart, s->dlen, csz, UINT32_MAX, p, max) : -ENOMEM;
    if (rc >= 0) {
        int n = rc;
        rc = 0;
        for (int i = 0; i < n && !rc; i++)
            rc = write_piece(cm, s, p[i].index, p[i].off, s->dbuf + p[i].buf_off, p[i].len, sync);
    }
    free(p);
    if (rc) {
        LOG_ERR("write", "inode %" PRIu64 ": %zu bytes at %" PRIu64 " lost: %s", s->ino, s->dlen,
                s->dstart, strerror(-rc));
        rc = -EIO;
        s->werr = rc;
    }
    s->dlen = 0;
    if (s->dcap > 2 * CM_DIRTY_MAX) {
        free(s->dbuf);
        s->dbuf = NULL;
        s->dcap = 0;
    }
    rc_drop_ino(cm->cache, s->ino);
    return rc;
}

int wp_write(struct cm *cm, struct inode_st *s, uint64_t off, const void *data, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->dlen && (off > s->dstart + s->dlen || off + len < s->dstart)) {
        rc = wp_flush_locked(cm, s, 0);
        if (rc) goto out;
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
    if (s->dlen >= CM_DIRTY_MAX) rc = wp_flush_locked(cm, s, 0);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int wp_flush(struct cm *cm, struct inode_st *s, int sync)
{
    pthread_mutex_lock(&s->mu);
    int rc = wp_flush_locked(cm, s, sync);
    if (sync) {
        for (size_t i = 0; i < s->nleases; i++) {
            if (!s->leases[i].unsynced) continue;
            int r = cc_fsync(cm->cc, &s->leases[i].ci);
            if (r) {
                LOG_ERR("write", "inode %" PRIu64 " chunk %" PRIu64 ": fsync: %s", s->ino,
                        s->leases[i].ci.index, strerror(-r));
                if (!rc) rc = -EIO;
            } else {
                s->leases[i].unsynced = 0;
            }
        }
    }
    if (s->need_commit) {
        struct cairn_attr a;
        enum { MAXA = 64 };
        struct mc_alloc al[MAXA];
        uint32_t na = 0;
        for (size_t i = 0; i < s->nleases && na < MAXA; i++)
            if (s->leases[i].alloc_dirty)
                al[na++] = (struct mc_alloc){s->leases[i].ci.index, s->leases[i].alloc};
        int r = mc_commit(&cm->meta, s->ino, s->size_local, s->mtime_s, s->mtime_ns, 0, al, na, &a);
        if (!r)
            for (size_t i = 0; i < s->nleases; i++)
                for (uint32_t k = 0; k < na; k++)
                    if (s->leases[i].ci.index == al[k].index) s->leases[i].alloc_dirty = 0;
        if (r) {
            if (!rc) rc = r;
        } else {
            s->need_commit = 0;
            s->size_meta = a.size;
            s->open_mtime_s = a.mtime_s;
            s->open_mtime_ns = a.mtime_ns;
            s->open_size = a.size;
            /* the kernel keeps the st_blocks of before the writes (it refreshes size and
             * times, not blocks): drop its attributes so tar/cp see the space used */
            if (cm->se) fuse_lowlevel_notify_inval_inode(cm->se, s->ino, -1, 0);
        }
    }
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
        for (int attempt = 0; !rc && present && attempt < WP_ATTEMPTS; attempt++) {
            struct ist_lease *l;
            rc = lease(cm, s, index, &l);
            if (rc) break;
            rc = cc_truncate(cm->cc, &l->ci, (uint32_t)(size % csz));
            if (!rc) {
                l->unsynced = 1;
                break;
            }
            ist_lease_drop(s, index);
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

int wp_extend(struct cm *cm, struct inode_st *s, uint64_t size)
{
    pthread_mutex_lock(&s->mu);
    if (size > ist_size(s)) {
        s->size_local = size;
        now_ts(&s->mtime_s, &s->mtime_ns);
        s->need_commit = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return wp_flush(cm, s, 0);
}
