/* cmd_fileinfo.h - the decoded MSG_FILEINFO reply of one file (all its pages), its decoder
 * and its printers. Decoding is apart from printing so that tests can feed hand-made replies.
 *
 * Ownership: a struct fi_file owns its chunks and their copies; fi_free releases them. */
#ifndef CAIRN_CMD_FILEINFO_H
#define CAIRN_CMD_FILEINFO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_out.h"
#include "proto.h"

/* Chunks asked for in one FILEINFO request. */
#define FI_PAGE 512

struct fi_copy {
    uint64_t server_id;
    char addr[CAIRN_ADDR_MAX + 1];
    char zone[CAIRN_ZONE_MAX + 1];
    uint32_t version;
    uint8_t state; /* COPY_* */
};

struct fi_chunk {
    uint64_t index;
    uint64_t chunk_id;
    uint32_t version;
    uint64_t length; /* the chunk's share of the file size */
    uint8_t ncopies;
    struct fi_copy *copies; /* ncopies of them (NULL when 0) */
};

struct fi_file {
    struct cairn_attr attr; /* from the first page */
    uint32_t copies;        /* effective goal */
    uint64_t chunk_size;
    size_t n, cap;
    struct fi_chunk *chunks; /* n of them, by increasing index */
    int more;                /* the last page said more chunks follow */
    uint64_t next_index;     /* where the next page starts */
    unsigned pages;          /* pages decoded */
};

void fi_init(struct fi_file *f);
void fi_free(struct fi_file *f);
/* Append one FILEINFO reply payload. 0, -EBADMSG (malformed, or indexes that do not
 * increase, or "more" without progress) or -ENOMEM; f keeps the pages decoded before. */
int fi_decode_page(struct fi_file *f, const void *p, size_t len);
/* Valid copies of a chunk (COPY_VALID only: draining copies do not count toward the goal). */
unsigned fi_valid_copies(const struct fi_chunk *ch);
/* Human output of one file. */
void fi_print(FILE *out, const char *path, const struct fi_file *f);
/* One file as a JSON object (member of the "files" array). */
void fi_json(struct json *j, const char *path, const struct fi_file *f);

#endif
