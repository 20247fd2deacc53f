/* chunkfile.c - a chunk file's name and fixed header (chunkfile.h). */
#include "chunkfile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

void chunkfile_path(const char *dir, uint64_t id, uint32_t version, char *out, size_t len)
{
    snprintf(out, len, "%s/%02x/%016" PRIx64 "_%u.chk", dir, (unsigned)(id & 0xff), id, version);
}

int chunkfile_hdr_get(const uint8_t *h, struct chunkfile_hdr *out)
{
    if (le_get64(h) != CHUNKFILE_MAGIC) return -EUCLEAN;
    out->id = le_get64(h + 8);
    out->version = le_get32(h + CHUNKFILE_VERSION_OFF);
    out->length = le_get32(h + 20);
    out->flags = le_get32(h + 24);
    out->block = le_get32(h + 28);
    return 0;
}

void chunkfile_hdr_put(uint8_t *h, const struct chunkfile_hdr *hdr)
{
    memset(h, 0, CHUNKFILE_HDR_SIZE);
    le_put64(h, CHUNKFILE_MAGIC);
    le_put64(h + 8, hdr->id);
    le_put32(h + CHUNKFILE_VERSION_OFF, hdr->version);
    le_put32(h + 20, hdr->length);
    le_put32(h + 24, hdr->flags);
    le_put32(h + 28, hdr->block);
}
