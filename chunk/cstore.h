/* cstore.h - the on-disk chunk store of a chunk server.
 *
 * A chunk is one file DIR/XX/<id:016x>_<version>.chk in one of the data folders (XX = low byte
 * of the id). The file starts with a 64 KiB header area: struct cstore_hdr (64 bytes) followed
 * by one u64 xxh3 checksum per 64 KiB block (cksum.h: each covers the block's valid bytes); the
 * data starts at CSTORE_DATA_OFF so a sparse tail stays sparse. Invariants: data is written
 * before the header that describes it, and the whole header area is allocated when the file is
 * created, so a failed (ENOSPC) data write never touches the header of existing data.
 * Every function returns 0 or a negative errno; -ESTALE for a version the store does not hold
 * or an older version than held, -ENOENT for a chunk it does not have, -EUCLEAN for a block
 * that fails its checksum (never served). Thread safe: every chunk id maps to one of
 * CSTORE_LOCKS striped read-write locks; reads, info and fsync share it, changes (write,
 * truncate, delete, version moves, bad marks, installs) hold it alone, so a read never sees a
 * block half written and readers of one chunk never wait for each other.
 *
 * Open-chunk cache: the store keeps up to open_max recently used chunk files open with their
 * header (length, flags, checksums) in memory, so that a read of a cached chunk costs one
 * pread of its data and the xxh3 of its blocks. Only the header is cached: the data is read
 * from disk by every read and verified against the cached checksums, so a damaged data block
 * is always caught. Every change to a chunk made through the store (write, truncate, delete,
 * version move, bad mark, an installed replica, a data folder taken out of service) updates or
 * drops its entry; a change made behind the store's back to the header of a cached chunk is
 * found by the scrubber, which reads the header from disk again at the start of each chunk. A
 * vanished data folder is noticed by cstore_check_dirs (reads of cached chunks do not look at
 * the folder). */
#ifndef CAIRN_CSTORE_H
#define CAIRN_CSTORE_H
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>
#include <time.h>

#include "chunkfile.h"

#define CSTORE_MAGIC CHUNKFILE_MAGIC
#define CSTORE_HDR_SIZE CHUNKFILE_HDR_SIZE
#define CSTORE_DATA_OFF CHUNKFILE_DATA_OFF
#define CSTORE_MAX_DIRS 16
#define CSTORE_MAX_CHUNK_SIZE (512ull << 20) /* header area holds at most 8190 checksums */
#define CSTORE_LOCKS 256
#define CSTORE_FLAG_BAD CHUNKFILE_FLAG_BAD
#define CSTORE_OPEN_DEFAULT 512 /* chunk files kept open (cstore_set_open_max) */

struct cstore_dir {
    char path[512];
    int ok; /* 0 once taken out of service (vanished or EIO) */
};

struct cstore {
    int ndirs;
    struct cstore_dir dirs[CSTORE_MAX_DIRS];
    uint64_t chunk_size;
    pthread_mutex_t dir_lock;
    int dirs_lost;                        /* data folders taken out of service so far (dir_lock) */
    pthread_rwlock_t locks[CSTORE_LOCKS]; /* writers first (no writer waits forever) */
    struct cstore_cache *cache;           /* open chunks (cstore_cache.c) */
    /* Called (with the chunk's lock held exclusively; must not block or call back into the store)
     * whenever a chunk is created or its version changes: by a write or truncate, by
     * cstore_setver and by cstore_tmp_install. Set after cstore_open; may be NULL. */
    void (*on_gain)(void *arg, uint64_t id, uint32_t ver);
    void *on_gain_arg;
    /* 0 (cstore_open): the data a read or the scrubber read is dropped from the page cache
     * right after (POSIX_FADV_DONTNEED): clients cache what they read. Set after cstore_open. */
    int keep_page_cache;
};

/* A replica being copied in: a chunk file under a temporary name in a data folder (see
 * cstore_tmp_open). Owned by the caller between open and install/abort. */
struct cstore_tmp {
    int fd;
    int dir;
    uint64_t id;
    uint32_t ver;
    uint32_t len;
    uint64_t *cks; /* checksums of the blocks written so far (cksum_nblocks(len) entries) */
    uint8_t *have; /* have[b]: block b was written */
    uint32_t nblocks;
    uint32_t ncap;
    char path[640];
};

/* Open the store over ndirs data folders (created if missing). chunk_size may change later
 * with cstore_set_chunk_size (meta tells it). Returns 0, -EINVAL or -errno of mkdir. */
int cstore_open(struct cstore *cs, char *const *dirs, int ndirs, uint64_t chunk_size);
void cstore_close(struct cstore *cs);
int cstore_set_chunk_size(struct cstore *cs, uint64_t chunk_size);
/* Keep at most n chunk files open (0 = none; CSTORE_OPEN_DEFAULT after cstore_open); closes
 * the least recently used ones beyond n. -EINVAL for n < 0. */
int cstore_set_open_max(struct cstore *cs, int n);
/* The open-chunk cache's counters: lookups that found the chunk open, lookups that had to
 * open it, and the chunks open now. */
void cstore_cache_counts(struct cstore *cs, uint64_t *hits, uint64_t *misses, int *open);

/* Where one read or write spent its time, in microseconds of cstore_now_us (the server's
 * counters add them up). */
struct cstore_times {
    uint64_t disk_us;  /* read: the pread of the data; write: everything but the fdatasync */
    uint64_t cksum_us; /* read: the xxh3 of its blocks */
    uint64_t sync_us;  /* write: the fdatasync (sync writes) */
};

/* CLOCK_MONOTONIC in microseconds: the clock of struct cstore_times. */
static inline uint64_t cstore_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Read: verify every block touching [off, off+len) and return whole blocks from *data_off
 * (block aligned) to cover it, clipped to the chunk length, with their checksums. buf must
 * hold len + 2 * CKSUM_BLOCK bytes, cks cksum_nblocks(len) + 2 entries. *bad_block gets the
 * failing block on -EUCLEAN. A held version older than ver is served too unless exact (then
 * -ESTALE); a newer one never is (-ESTALE). */
int cstore_read(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                uint8_t *buf, uint32_t *data_off, uint32_t *chunk_len, uint32_t *nblocks,
                uint64_t *cks, uint32_t *datalen, uint32_t *bad_block, int exact);
/* cstore_read that also says where its time went (t may be NULL). */
int cstore_read_timed(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                      uint8_t *buf, uint32_t *data_off, uint32_t *chunk_len, uint32_t *nblocks,
                      uint64_t *cks, uint32_t *datalen, uint32_t *bad_block, int exact,
                      struct cstore_times *t);
/* Write len bytes at off under the version rules (moves prev_version -> ver). sync: fdatasync
 * before returning. *chunk_len gets the new length. -EINVAL beyond chunk_size. */
int cstore_write(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                 const void *data, uint32_t len, int sync, uint32_t *chunk_len);
/* cstore_write that also says where its time went (t may be NULL). */
int cstore_write_timed(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                       const void *data, uint32_t len, int sync, uint32_t *chunk_len,
                       struct cstore_times *t);
int cstore_truncate(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t len);
/* Delete version ver (0 = whatever version is held). */
int cstore_delete(struct cstore *cs, uint64_t id, uint32_t ver);
int cstore_fsync(struct cstore *cs, uint64_t id, uint32_t ver);
int cstore_info(struct cstore *cs, uint64_t id, uint32_t *ver, uint32_t *len);
/* fallocate [off, off+len) of chunk id under the version rules of a write (moves prev -> ver,
 * creates the chunk when prev is 0): mode is CHK_FALLOC_* (proto.h, MSG_CHK_FALLOC says what
 * each does). The chunk's length never changes; *chunk_len gets it. -EINVAL for a bad mode, an
 * empty range or one past the chunk size; -ENOSPC (RESERVE: nothing past the data stays
 * allocated); -EUCLEAN when an edge block fails its checksum (nothing changed); -ESTALE. */
int cstore_falloc(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                  uint32_t len, int mode, uint32_t *chunk_len);
/* SEEK_DATA or SEEK_HOLE (whence) from off inside chunk id held at ver or older (see
 * MSG_CHK_SEEK): 0 with *out, -ENXIO (no data after off), -ESTALE, -ENOENT. */
int cstore_seek(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t off, int whence,
                uint32_t *out);
/* Call fn for every chunk held (stops early when fn returns non-zero, which is returned). */
int cstore_foreach(struct cstore *cs, int (*fn)(void *arg, uint64_t id, uint32_t ver), void *arg);
/* Re-read and verify every block of one chunk. rate_fn (may be NULL) is called after each
 * block with its byte count (the scrubber throttles there). -EUCLEAN with *bad_block when a
 * block fails; the chunk is then marked bad (never served again). */
int cstore_scrub_chunk(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t *bad_block,
                       void (*rate_fn)(void *arg, uint32_t bytes), void *arg);
/* Move a held older version of chunk id up to ver (a rename, data unchanged). *held gets the
 * version held afterwards (or the newer one on -ESTALE). Held == ver: nothing to do, 0.
 * -ESTALE: a newer version is held. -ENOENT: not held. -EUCLEAN: the copy is marked bad. */
int cstore_setver(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t *held);
/* Replicas copied in (cstore_tmp.c). cstore_tmp_open creates a temporary chunk file for
 * chunk id at version ver and length len (<= chunk_size, else -EINVAL) in the folder with the
 * most free space; its name is one that lookups, cstore_foreach and reports never see, and
 * cstore_open removes any left by a crash. cstore_tmp_write stores whole blocks of data at a
 * block-aligned off with their checksums, which the caller has verified (cks[i] covers the
 * valid bytes of block off/B + i); blocks that are holes of zeros are not written (the chunk
 * stays sparse). cstore_tmp_install checks that every block was written, writes the header,
 * fsyncs, and under the chunk's lock renames the file to its chunk name, removing every other
 * version of the chunk this store holds (stale or bad ones included); -ESTALE (and nothing
 * changed) if a newer version is held, -EPROTO if a block was never written. install and abort
 * always release t. */
int cstore_tmp_open(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t len,
                    struct cstore_tmp *t);
int cstore_tmp_write(struct cstore *cs, struct cstore_tmp *t, uint32_t off, const void *data,
                     uint32_t dlen, const uint64_t *cks);
int cstore_tmp_install(struct cstore *cs, struct cstore_tmp *t);
void cstore_tmp_abort(struct cstore *cs, struct cstore_tmp *t);
/* Mark a chunk bad persistently (reads refuse it with -EUCLEAN). */
int cstore_mark_bad(struct cstore *cs, uint64_t id, uint32_t ver);
/* Total and free bytes over the data folders in service. */
void cstore_space(struct cstore *cs, uint64_t *capacity, uint64_t *avail);
/* Number of data folders in service. */
int cstore_dirs_ok(struct cstore *cs);
/* Take out of service every data folder whose root vanished; returns how many folders were
 * taken out of service since the store opened (a change means copies were lost). */
int cstore_check_dirs(struct cstore *cs);
/* Bytes the file system stores for the chunk's data (its header area not counted): what
 * st_blocks of the file it belongs to adds up. */
int cstore_alloc(struct cstore *cs, uint64_t id, uint64_t *bytes);
/* Path of the chunk file (for tests and logs); 0 or -ENOENT. */
int cstore_path(struct cstore *cs, uint64_t id, char *out, size_t len, uint32_t *ver);
#endif
