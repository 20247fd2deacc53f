/* cksum.c - xxh3 through libxxhash (see cksum.h). */
#include "cksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t cksum_xxh3(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

uint32_t cksum_blocks(const void *buf, size_t len, uint64_t *out)
{
    const uint8_t *p = buf;
    uint32_t n = 0;
    for (size_t off = 0; off < len; off += CKSUM_BLOCK) {
        size_t piece = len - off < CKSUM_BLOCK ? len - off : CKSUM_BLOCK;
        out[n++] = XXH3_64bits(p + off, piece);
    }
    return n;
}
