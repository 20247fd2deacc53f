/* cksum.h - xxh3-64 checksums: of a buffer, and of the 64 KiB blocks of a chunk.
 *
 * A block's checksum covers only its valid bytes: min(CKSUM_BLOCK, length - block start).
 * The same function is used by the chunk server (at write, read and scrub) and by the client
 * (to verify what it receives), so both sides agree by construction. */
#ifndef CAIRN_CKSUM_H
#define CAIRN_CKSUM_H

#include <stddef.h>
#include <stdint.h>

#define CKSUM_BLOCK (64u * 1024u)

uint64_t cksum_xxh3(const void *p, size_t n);
/* Number of blocks needed to hold len bytes. */
static inline uint32_t cksum_nblocks(uint64_t len)
{
    return (uint32_t)((len + CKSUM_BLOCK - 1) / CKSUM_BLOCK);
}
/* Checksum each block of buf (len bytes, starting at a block boundary) into out[]. Returns the
 * number of blocks written. */
uint32_t cksum_blocks(const void *buf, size_t len, uint64_t *out);

#endif
