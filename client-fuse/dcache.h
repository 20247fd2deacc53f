/* dcache.h - the client's local disk cache: segments of chunks (up to CAIRN_IO_MAX bytes of one
 * chunk at a chunk offset that is a multiple of CAIRN_IO_MAX) kept as files in a folder on a
 * local disk, so that data read once is read again at local-disk speed (issue #10).
 *
 * The module owns the folder it is given (cache_dir) and everything in its 256 fan-out
 * subfolders 00..ff; nothing else may write there, and one mount at a time uses it (a lock on
 * DIR/.lock). An entry is keyed by (chunk id, chunk version, segment offset) and carries a tag
 * the caller derives from what it knows of the file (mtime and size at open): a read with
 * another tag is a miss and drops the entry, so data cached while the file was being written is
 * not served once the file changed; a new chunk version is a new key, and dc_drop_old clears out
 * the old ones.
 *
 * On disk, one file per entry: DIR/XX/<id:016x>-<ver:08x>-<seg_off:08x>-<gen:016x>, XX the low
 * byte of a hash of the key, gen a number no other entry file ever had (it starts from the
 * clock at dc_open and counts up), so that replacing an entry writes a new name and a removal
 * can never hit a newer entry of the same key. The file is a DC_DATA_OFF byte header area, then
 * the data (file size = DC_DATA_OFF + len). The header (little endian) is
 *     u64 magic "CAIRNDC1", u32 format version (1), u32 DC_DATA_OFF,
 *     u64 chunk id, u32 version, u32 seg_off, u64 tag, u32 len, u32 block count,
 *     u64 xxh3 of each 64 KiB block of the data (cksum.h, 16 at most),
 *     u64 xxh3 of all the header bytes before it,
 * zero padded to DC_DATA_OFF (so the data is page aligned). An entry is written to
 * XX/tmp-<gen> and renamed to its name once complete, without fsync: a crash can leave a renamed
 * file with lost data, which its checksums catch on every read (the header checksum at the
 * scan). Nothing else is trusted: every read verifies the header and every block it touches.
 *
 * Size: an entry is charged its file size rounded up to 4 KiB (what st_blocks * 512 reports for
 * it on ext4, xfs and tmpfs, header included); the sum of the charges, counting the entry being
 * written, never exceeds the limit: the least recently used entries are removed first to make
 * room. Entries found at dc_open (written by an earlier mount) count as older than any used
 * since. The cache does not watch the file system's free space: when the file system is full
 * before the limit is reached, puts fail (write_errors) and what is cached is still served.
 *
 * Threads: one writer thread writes the entries queued by dc_put (at most DC_QUEUE_MAX bytes
 * waiting; beyond that puts are dropped), one scan thread indexes the folder at dc_open and ends.
 * The index (hash table + LRU list, about 64 bytes an entry) has one mutex, never held across
 * file I/O, so readers never wait for a write. Every function is thread safe. */
#ifndef CAIRN_DCACHE_H
#define CAIRN_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#define DC_DATA_OFF 4096u                 /* header area of an entry file; the data follows */
#define DC_QUEUE_MAX ((uint64_t)64 << 20) /* bytes of data waiting for the writer, at most */
#define DC_FANOUT 256                     /* subfolders 00..ff */
#define DC_FLUSH_MAX_S 60                 /* dc_flush gives up after this many seconds */

struct dcache;

struct dc_stats {
    uint64_t hits;          /* dc_read calls that returned data */
    uint64_t misses;        /* dc_read calls that returned -ENOENT (stale ones included) */
    uint64_t stale;         /* entries dropped because a read came with another tag */
    uint64_t corrupt;       /* entries dropped because they did not verify or read back */
    uint64_t put;           /* dc_put calls queued for the writer */
    uint64_t put_dropped;   /* dc_put calls refused (queue full, bad argument, no memory) and
                             * queued puts discarded (dc_drop_old, dc_close) */
    uint64_t write_errors;  /* queued puts whose file could not be written (ENOSPC, EIO...) */
    uint64_t evicted;       /* entries removed to stay under the limit */
    uint64_t bytes_read;    /* data bytes returned by hits */
    uint64_t bytes_written; /* bytes of entry files written (header area included) */
    uint64_t bytes_used;    /* sum of the charges of the entries (and of the one being written) */
    uint64_t entries;       /* entries in the index */
    uint64_t limit;         /* the limit given to dc_open */
    uint64_t loaded;        /* entries dc_open took from the index file of a clean close */
};

/* Open the cache in dir (created with its missing parents, mode 0700, as are the subfolders)
 * keeping at most limit bytes of entries (charged as said above). The entries of an earlier
 * mount that closed cleanly are indexed at once from the index file it left (dcache_index.h);
 * otherwise (a crash, a damaged index) by a background scan (dc_flush waits for it), and while
 * it runs they are misses. The scan removes what does not parse or verify (a file with a
 * foreign name, a bad header, a size that does not match, a leftover tmp- file) from the
 * subfolders; other files in dir are left alone. Starts the writer thread.
 * Returns the cache (the caller frees it with dc_close) or NULL with the reason in why (at most
 * whylen bytes): limit smaller than one full entry (DC_DATA_OFF + CAIRN_IO_MAX), dir cannot be
 * created or is not a writable folder, another mount uses it, no memory or threads. */
struct dcache *dc_open(const char *dir, uint64_t limit, char *why, size_t whylen);

/* Stop the scan and the writer (a write under way is finished; queued puts are dropped and
 * counted in put_dropped), write the index file when every entry file is indexed (the scan had
 * finished, or the index was loaded), free everything. The files stay for the next mount. NULL
 * is a no-op.
 * No other call on c may run or follow. */
void dc_close(struct dcache *c);

/* Copy bytes [off, off+len) of the segment (id, ver, seg_off) into out (len bytes), after
 * verifying the entry's header and the checksum of every 64 KiB block the range touches.
 * Returns len on a hit (the entry becomes the most recently used);
 * -ENOENT on a miss: no such entry, its tag is not tag (the entry is dropped and counted in
 *         stale), it is shorter than off+len, or its file has gone; c NULL;
 * -EUCLEAN when the entry does not verify or cannot be read back (I/O error, short file): the
 *         entry is removed and counted in corrupt; out may have been written;
 * -EINVAL for len 0 or off+len beyond CAIRN_IO_MAX.
 * Never waits for the writer; many readers at once. An entry replaced or removed while it is
 * being read still gives the bytes it held (the open file stays readable) or an error, never
 * bytes of another entry. */
int dc_read(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag,
            uint32_t off, uint32_t len, uint8_t *out);

/* Offer the segment (id, ver, seg_off): len bytes from its start (1..CAIRN_IO_MAX; shorter
 * than CAIRN_IO_MAX only at a chunk's end; seg_off a multiple of CAIRN_IO_MAX). The bytes are
 * copied (the caller keeps data); the writer thread checksums and writes them later, replacing
 * an entry of the same key. Never fails the caller and never waits for I/O: a put that does not
 * fit in the queue, has bad arguments or finds no memory is dropped (put_dropped); a write that
 * fails is cleaned up and counted (write_errors). NULL c is a no-op. */
void dc_put(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag,
            const uint8_t *data, uint32_t len);

/* 1 when the index holds (id, ver, seg_off) with this tag (nothing is read or verified, an
 * entry with another tag is left alone), else 0. Lets warmup skip what is there. */
int dc_has(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag);

/* Remove every entry of chunk id whose version is not ver, and drop the puts of such versions
 * that are queued or being written (put_dropped): an older version is never needed again.
 * Entries of an earlier mount not scanned yet are not seen (the LRU removes them in time). */
void dc_drop_old(struct dcache *c, uint64_t id, uint32_t ver);

/* A snapshot of the counters (all zero for NULL c). */
void dc_get_stats(struct dcache *c, struct dc_stats *s);

/* Wait until the scan has ended and every put queued so far is written (or failed), at most
 * DC_FLUSH_MAX_S seconds. For tests and warmup. */
void dc_flush(struct dcache *c);

#endif
