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
    uint64_t *cks; /* ncap entries */
    uint32_t ncap;
    char path[640];
};

uint32_t cs_ncap(const struct cstore *cs);
/* An error from data folder d: EIO or a vanished root take the folder out of service.
 * Returns rc. */
int cs_dir_err(struct cstore *cs, int d, int rc);
/* The striped lock of chunk id. */
pthread_mutex_t *cs_lock(struct cstore *cs, uint64_t id);
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
/* Remove every temporary file left in the data folders (called by cstore_open). */
void cs_tmp_clean(struct cstore *cs);

/* Tell the owner that chunk id is now held at version ver (created or moved). */
static inline void cs_gained(struct cstore *cs, uint64_t id, uint32_t ver)
{
    if (cs->on_gain) cs->on_gain(cs->on_gain_arg, id, ver);
}
#endif
