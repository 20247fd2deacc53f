/* dcache_index.h - the index file of the disk cache (dcache.c): what a clean close knew of its
 * entries, so that the next mount serves them at once instead of scanning every entry file.
 *
 * DIR/index (little endian): u64 magic "CAIRNDX1", u32 format (1), u32 record size (40), u64
 * record count, the records (u64 chunk id, u64 tag, u64 gen, u32 version, u32 seg_off, u32 len,
 * u32 zero), least recently used first, then the xxh3 of every byte before it. It is written
 * under index.tmp and renamed; loading it removes it (and syncs the folder), so it describes the
 * folder only between a clean close and the next open: a mount that crashes leaves none, and
 * the next one scans. Nothing in it is trusted beyond that: every read still checks the entry
 * file's own header and checksums. */
#ifndef CAIRN_DCACHE_INDEX_H
#define CAIRN_DCACHE_INDEX_H
#include <stddef.h>
#include <stdint.h>

#define DCI_MAX_RECORDS (1u << 24)

struct dci_rec {
    uint64_t id, tag, gen;
    uint32_t ver, seg_off, len;
};

/* Write the n records (oldest first) as the index of the folder rootfd. 0 or -errno; on an
 * error no index is left. */
int dci_write(int rootfd, const struct dci_rec *recs, size_t n);

/* Read the folder's index into *recs (malloc'd, the caller frees it; n records) and remove the
 * file. 0; -ENOENT when there is none; -EUCLEAN when it is damaged (removed too); -ENOMEM, or
 * another -errno (the index cannot be read or removed: it is not used). */
int dci_load(int rootfd, struct dci_rec **recs, size_t *n);

#endif
