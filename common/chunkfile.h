/* chunkfile.h - the on-disk form of one chunk file, shared by the chunk store that writes it
 * (chunk/cstore.c) and the client's local reads that read it in place (client-fuse/local_read.c):
 * its name under a data folder and its fixed header.
 *
 * A chunk is DIR/XX/<id:016x>_<version>.chk (XX = the id's low byte). The file starts with a
 * 64 KiB header area: the fixed header (CHUNKFILE_HDR_SIZE bytes, little endian: u64 magic, u64
 * id, u32 version, u32 length, u32 flags, u32 block size) followed by one u64 xxh3 per 64 KiB
 * block of data (cksum.h); the data starts at CHUNKFILE_DATA_OFF. The data is always written
 * before the header that describes it, and the header's version follows the file's name when
 * the chunk moves to a new version (a rename, then the version field), before any block of
 * the new version is written: a reader that finds its version in the header after reading the
 * data knows the data was that version's (client-fuse/local_read.c relies on it). */
#ifndef CAIRN_CHUNKFILE_H
#define CAIRN_CHUNKFILE_H
#include <stddef.h>
#include <stdint.h>

#define CHUNKFILE_MAGIC 0x4b4e484343524143ull /* "CARCCHNK" */
#define CHUNKFILE_HDR_SIZE 64
#define CHUNKFILE_DATA_OFF (64u * 1024u)
#define CHUNKFILE_VERSION_OFF 16 /* the u32 version inside the fixed header */
#define CHUNKFILE_FLAG_BAD 1u    /* a block failed its checksum: the copy is never served */

struct chunkfile_hdr {
    uint64_t id;
    uint32_t version;
    uint32_t length; /* valid bytes of data */
    uint32_t flags;
    uint32_t block; /* block size the checksums cover */
};

/* DIR/XX/<id>_<version>.chk into out (truncated to len like snprintf). */
void chunkfile_path(const char *dir, uint64_t id, uint32_t version, char *out, size_t len);

/* Decode the fixed header h (CHUNKFILE_HDR_SIZE bytes): 0, or -EUCLEAN when the magic is wrong. */
int chunkfile_hdr_get(const uint8_t *h, struct chunkfile_hdr *out);

/* Encode hdr into h (CHUNKFILE_HDR_SIZE bytes, the unused tail zeroed). */
void chunkfile_hdr_put(uint8_t *h, const struct chunkfile_hdr *hdr);

#endif
