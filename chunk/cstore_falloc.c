/* cstore_falloc.c - fallocate of a range of one chunk (MSG_CHK_FALLOC): reserve space on disk,
 * free a reservation again, punch a hole, zero a range.
 *
 * The chunk's length (its valid data) never changes here, so neither does any checksum's
 * coverage. What the modes keep true:
 *   - reserve / unreserve never change a byte of the chunk's data: they only allocate, or free
 *     what lies past the data (bytes past the length are zeros on disk, see cf_grow);
 *   - punch / zero leave every byte of the range reading as zeros with a valid checksum: the
 *     64 KiB blocks the range covers whole (up to the chunk's length) get the checksum of
 *     zeros and are deallocated on disk (a hole, which reads as zeros), the partial blocks at
 *     its edges are read, verified, zeroed in the range and written back with a new checksum.
 *     Zero then allocates the range again. As for a write, the data goes to disk before the
 *     header that describes it (a crash in between leaves a block that fails its checksum:
 *     a bad copy, rebuilt from another).
 * A file system that cannot punch holes gets the zeros written instead. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cksum.h"
#include "cstore.h"
#include "cstore_priv.h"
#include "log.h"
#include "proto.h"

#define B CKSUM_BLOCK

/* Write zeros over the data bytes [from, to) of f (64 KiB at a time). */
static int cf_write_zeros(struct chunkf *f, uint32_t from, uint32_t to)
{
    static const uint8_t zeros[B];
    while (from < to) {
        uint32_t n = to - from < B ? to - from : B;
        if (pwrite(f->fd, zeros, n, (off_t)CSTORE_DATA_OFF + from) != (ssize_t)n)
            return errno ? -errno : -ENOSPC;
        from += n;
    }
    return 0;
}

/* Deallocate the data bytes [from, to) of f on disk (they read as zeros afterwards); a file
 * system without holes gets zeros written. */
static int cf_punch(struct chunkf *f, uint32_t from, uint32_t to)
{
    if (from >= to) return 0;
    if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)CSTORE_DATA_OFF + from,
                  to - from) == 0)
        return 0;
    if (errno != EOPNOTSUPP) return -errno;
    return cf_write_zeros(f, from < f->len ? from : f->len, to < f->len ? to : f->len);
}

/* Free what is allocated in [off, end) past the chunk's data. Some file systems (ext4) ignore a
 * punch past the end of the file; cutting the file at its own size frees what they keep
 * allocated past it, so there every reservation past the data goes (this only undoes a
 * reservation that failed, so the space is wanted back anyway). */
static int cf_unreserve(struct chunkf *f, uint32_t off, uint32_t end)
{
    uint32_t from = off > f->len ? off : f->len;
    if (from >= end) return 0;
    if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)CSTORE_DATA_OFF + from,
                  end - from) != 0 &&
        errno != EOPNOTSUPP)
        return -errno;
    if (ftruncate(f->fd, (off_t)CSTORE_DATA_OFF + f->len) != 0) return -errno;
    return 0;
}

/* Allocate [off, end) of f on disk; the data does not change. On failure what it allocated
 * past the data is freed again. */
static int cf_reserve(struct chunkf *f, uint32_t off, uint32_t end)
{
    if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)CSTORE_DATA_OFF + off, end - off) == 0)
        return 0;
    int rc = -errno;
    cf_unreserve(f, off, end);
    return rc;
}

/* Make [off, end) of f read as zeros (see the top of the file); keep_alloc: allocate the
 * range again afterwards (zero range). tmp: 2 * B bytes. The partial blocks at the edges are
 * read and verified before anything changes, so a bad block refuses the whole request. */
static int cf_zero(struct chunkf *f, uint32_t off, uint32_t end, int keep_alloc, uint8_t *tmp)
{
    uint32_t len = f->len;
    uint32_t dend = end < len ? end : len;
    /* the blocks covered whole: [roundup(off), rounddown(end)), or to end past the data */
    uint32_t ps = off >= len ? off : (off + B - 1) / B * B;
    uint32_t pe = end >= len ? end : end / B * B;
    uint32_t part[2], npart = 0, lo = UINT32_MAX, hi = 0;
    int rc = 0;
    for (uint32_t b = off / B; off < dend && b <= (dend - 1) / B; b++) {
        uint32_t bs = b * B, valid = len - bs < B ? len - bs : B;
        uint32_t s = off > bs ? off : bs, e = dend < bs + valid ? dend : bs + valid;
        if (b < lo) lo = b;
        hi = b + 1;
        if (s == bs && e == bs + valid) continue;
        assert(npart < 2); /* only the first and the last block can be partial */
        rc = cf_read_block(f, b, tmp + (size_t)npart * B);
        if (rc) return rc;
        part[npart++] = b;
    }
    if (ps < pe) rc = cf_punch(f, ps, pe);
    for (uint32_t i = 0; !rc && i < npart; i++) {
        uint32_t bs = part[i] * B, valid = len - bs < B ? len - bs : B;
        uint32_t s = off > bs ? off : bs, e = dend < bs + valid ? dend : bs + valid;
        uint8_t *blk = tmp + (size_t)i * B;
        memset(blk + (s - bs), 0, e - s);
        if (pwrite(f->fd, blk + (s - bs), e - s, (off_t)CSTORE_DATA_OFF + s) != (ssize_t)(e - s))
            rc = errno ? -errno : -ENOSPC;
    }
    if (rc) return rc;
    /* the data is in place: now the checksums that describe it */
    uint32_t ip = 0;
    for (uint32_t b = lo; b < hi; b++) {
        uint32_t bs = b * B, valid = len - bs < B ? len - bs : B;
        if (ip < npart && part[ip] == b)
            f->cks[b] = cksum_xxh3(tmp + (size_t)ip++ * B, valid);
        else
            f->cks[b] = zero_cks(valid);
    }
    rc = cf_store_hdr(f, lo < hi ? lo : 0, lo < hi ? hi : 0);
    if (!rc && keep_alloc &&
        fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)CSTORE_DATA_OFF + off, end - off) != 0)
        /* the zeros are in place; only the reservation is lost (the client reserved the
         * range just before, so this is a race with another user of the disk) */
        LOG_WARN("cstore", "chunk %016" PRIx64 " v%u: zero range [%u, %u) left unallocated: %s",
                 f->id, f->ver, off, end, strerror(errno));
    return rc;
}

int cstore_falloc(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                  uint32_t len, int mode, uint32_t *chunk_len)
{
    if (mode < 0 || mode > (int)CHK_FALLOC_UNRESERVE || len == 0 ||
        (uint64_t)off + len > cs->chunk_size)
        return -EINVAL;
    uint8_t *tmp = NULL;
    if (mode == CHK_FALLOC_PUNCH || mode == CHK_FALLOC_ZERO) {
        tmp = malloc(2 * B);
        if (!tmp) return -ENOMEM;
    }
    struct cs_open *o = NULL;
    int keep = 1; /* refusals change nothing */
    cs_lock_excl(cs, id);
    int rc = cs_take(cs, id, ver, prev, &o);
    if (rc) goto out;
    struct chunkf *f = &o->f;
    uint32_t end = off + len;
    if ((uint64_t)end > (uint64_t)f->ncap * B) { /* the chunk size changed meanwhile */
        rc = -EINVAL;
        goto out;
    }
    if (f->flags & CSTORE_FLAG_BAD) {
        rc = -EUCLEAN;
        goto out;
    }
    switch (mode) {
    case CHK_FALLOC_RESERVE:
        rc = cf_reserve(f, off, end);
        if (!rc) rc = cf_store_hdr(f, 0, 0);
        break;
    case CHK_FALLOC_UNRESERVE:
        rc = cf_unreserve(f, off, end);
        if (!rc) rc = cf_store_hdr(f, 0, 0);
        break;
    default:
        rc = cf_zero(f, off, end, mode == CHK_FALLOC_ZERO, tmp);
        keep = !rc || rc == -EUCLEAN; /* other failures may leave f ahead of the file */
        break;
    }
    *chunk_len = f->len;
    if (rc == -ENOSPC)
        LOG_WARN("cstore", "chunk %016" PRIx64 " v%u: no space to allocate [%u, %u)", id, ver, off,
                 end);
out:
    if (rc == -EIO && o) cs_dir_err(cs, o->f.dir, rc);
    free(tmp);
    cs_put(cs, o, keep);
    cs_unlock(cs, id);
    return rc;
}
