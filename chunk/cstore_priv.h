/* cstore_priv.h - internals of the chunk store shared by its own files (cstore.c: chunk
 * files, versions, reads and writes; cstore_tmp.c: temporary files of replication and their
 * atomic install). Not for use outside the store. */
#ifndef CAIRN_CSTORE_PRIV_H
#define CAIRN_CSTORE_PRIV_H
#include <stddef.h>
#include <stdint.h>

#include "cstore.h"

/* Sub-folder of a data folder holding temporary files (replicas being copied in). It is not a
 * hashed folder name, so neither cstore_foreach nor a chunk lookup ever sees its files;
 * cstore_open empties it. */
#define CSTORE_TMP_SUBDIR "tmp"

/* An open chunk file and its header in memory. */
struct chunkf {
    int fd;
    int dir;
    uint64_t id;
    uint32_t ver;
    uint32_t len;
    uint32_t flags;
    uint64_t *cks; /* ncks entries: the chunk's blocks when loaded for reading, ncap once
                    * it is changed (cf_cks_full) */
    uint32_t ncks;
    uint32_t ncap; /* blocks of a full chunk (cs_ncap) */
    char path[640];
};

/* An entry of the open-chunk cache (cstore_cache.c): one chunk file, open, at the version the
 * store holds, with its header as on disk. refs counts its holders: the cache while the entry
 * is listed, and every user who pinned or took it; the last one closes and frees it, so an
 * entry evicted or dropped while in use stays valid until its user is done.
 * Rules: an entry is pinned (cc_pin, or loaded and cc_insert-ed) only under its chunk's lock,
 * and unpinned before that lock is released; f is read-only while listed or pinned. A change
 * to a chunk takes its entry out of the cache (cc_take) under the chunk's lock held
 * exclusively, changes f and the file together, then puts it back (cc_insert) once file and f
 * agree, or drops it (cc_unpin alone). A change that does not go through an entry (a rename,
 * an unlink, an install) drops the chunk's entry (cc_drop) under the same lock. */
struct cs_open {
    struct chunkf f;
    int refs;                            /* atomic */
    int listed;                          /* in the cache (cache lock) */
    struct cs_open *hnext, *prev, *next; /* hash chain, LRU list (cache lock) */
};

/* A new entry (refs 1, owned by the caller, f.fd -1), or NULL on ENOMEM. */
struct cs_open *cc_new(void);
/* Drop one reference; the last closes the file and frees the entry. */
void cc_unpin(struct cs_open *o);
/* The listed entry of chunk id with a reference for the caller, or NULL (a miss). Counts hits
 * and misses. An entry made for another chunk size is dropped and missed. */
struct cs_open *cc_pin(struct cstore *cs, uint64_t id);
/* List o (the caller keeps its own reference) as the entry of its chunk, replacing any other,
 * evicting the least recently used beyond the bound. Not listed: a cache of size 0, an entry
 * whose folder is out of service or made for another chunk size. */
void cc_insert(struct cstore *cs, struct cs_open *o);
/* Unlist the entry of chunk id and hand the cache's reference to the caller (NULL if none, or
 * made for another chunk size). Chunk's lock held exclusively. */
struct cs_open *cc_take(struct cstore *cs, uint64_t id);
/* Unlist the entry of chunk id, if any. */
void cc_drop(struct cstore *cs, uint64_t id);
/* Unlist every entry in data folder d (d < 0: every entry). */
void cc_drop_dir(struct cstore *cs, int d);
int cc_init(struct cstore *cs);
void cc_fini(struct cstore *cs);
/* Close the file of f and free its checksums. */
void cf_free(struct chunkf *f);

uint32_t cs_ncap(const struct cstore *cs);
/* Make room in f->cks for every block of a full chunk (before a change). 0 or -ENOMEM. */
int cf_cks_full(struct chunkf *f);
/* An error from data folder d: EIO or a vanished root take the folder out of service.
 * Returns rc. */
int cs_dir_err(struct cstore *cs, int d, int rc);
/* The striped lock of chunk id: shared by readers (never taken twice by one thread: a writer
 * waiting in between would deadlock it), exclusive for changes. */
void cs_lock_shared(struct cstore *cs, uint64_t id);
void cs_lock_excl(struct cstore *cs, uint64_t id);
void cs_unlock(struct cstore *cs, uint64_t id);
void cs_chunk_path(struct cstore *cs, int d, uint64_t id, uint32_t ver, char *out, size_t len);
/* Parse "<id:016x>_<ver>.chk"; 0 or -1. */
int cs_parse_name(const char *name, uint64_t *id, uint32_t *ver);
/* Highest version of chunk id held over the folders in service: 0 or -ENOENT. */
int cs_find(struct cstore *cs, uint64_t id, int *dir, uint32_t *ver);
/* The folder in service with the most free space, or -1. */
int cs_pick_dir(struct cstore *cs);
/* fsync the folder holding file. */
void cs_sync_dir(const char *file);
/* Checksum of valid zero bytes (a hole). */
uint64_t zero_cks(uint32_t valid);
/* Write the fixed header and checksums [b0, b1). */
int cf_store_hdr(struct chunkf *f, uint32_t b0, uint32_t b1);
/* Read the valid bytes of block b of f (file holes read as zeros) into buf (B bytes, zero
 * padded) and verify them against the stored checksum: 0 or -EUCLEAN / -errno. */
int cf_read_block(struct chunkf *f, uint32_t b, uint8_t *buf);
/* Apply the version rules of a change (write, truncate, fallocate) to chunk id, its lock held
 * exclusively: moves a held version in [prev, ver) up to ver, creates the chunk when prev is 0
 * and none is held; -ESTALE for a newer one held. On success *out is the chunk's entry at ver
 * with room for every checksum, owned by the caller until cs_put. */
int cs_take(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, struct cs_open **out);
/* End of a change on o (may be NULL): keep (the file and o->f agree) puts it back in the
 * cache, otherwise it is closed and the next user reads the header from disk. */
void cs_put(struct cstore *cs, struct cs_open *o, int keep);
/* Remove every temporary file left in the data folders (called by cstore_open). */
void cs_tmp_clean(struct cstore *cs);

/* Tell the owner that chunk id is now held at version ver (created or moved). */
static inline void cs_gained(struct cstore *cs, uint64_t id, uint32_t ver)
{
    if (cs->on_gain) cs->on_gain(cs->on_gain_arg, id, ver);
}
#endif
