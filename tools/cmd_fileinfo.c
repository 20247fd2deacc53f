/* cmd_fileinfo.c - `cairn fileinfo PATH...`: every chunk of each file with its id, version,
 * length and copies (server, address, zone, state), paged through MSG_FILEINFO; the reply's
 * decoder and printers (see cmd_fileinfo.h). */
#include "cmd_fileinfo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_meta.h"

#define FI_PAGES_MAX 1000000 /* bound of the paging loop (each page makes progress) */

void fi_init(struct fi_file *f)
{
    memset(f, 0, sizeof(*f));
}

void fi_free(struct fi_file *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->chunks[i].copies);
    free(f->chunks);
    fi_init(f);
}

static int decode_chunk(struct rcur *c, struct fi_chunk *ch)
{
    memset(ch, 0, sizeof(*ch));
    ch->index = rcur_u64(c);
    ch->chunk_id = rcur_u64(c);
    ch->version = rcur_u32(c);
    ch->length = rcur_u64(c);
    ch->ncopies = rcur_u8(c);
    if (c->err) return c->err;
    /* each copy takes at least 8 + 2 + 2 + 4 + 1 bytes: never allocate past the payload */
    if ((size_t)ch->ncopies * 17 > c->left) return -EBADMSG;
    if (ch->ncopies) {
        ch->copies = calloc(ch->ncopies, sizeof(*ch->copies));
        if (!ch->copies) return -ENOMEM;
    }
    for (unsigned i = 0; i < ch->ncopies && !c->err; i++) {
        struct fi_copy *cp = &ch->copies[i];
        cp->server_id = rcur_u64(c);
        rcur_str(c, cp->addr, CAIRN_ADDR_MAX);
        rcur_str(c, cp->zone, CAIRN_ZONE_MAX);
        cp->version = rcur_u32(c);
        cp->state = rcur_u8(c);
    }
    return c->err;
}

static int grow(struct fi_file *f, size_t want)
{
    if (want <= f->cap) return 0;
    size_t cap = f->cap ? f->cap * 2 : 16;
    while (cap < want)
        cap *= 2;
    struct fi_chunk *n = realloc(f->chunks, cap * sizeof(*n));
    if (!n) return -ENOMEM;
    f->chunks = n;
    f->cap = cap;
    return 0;
}

int fi_decode_page(struct fi_file *f, const void *p, size_t len)
{
    struct rcur c;
    struct cairn_attr a;
    rcur_init(&c, p, len);
    proto_get_attr(&c, &a);
    uint32_t copies = rcur_u32(&c);
    uint64_t chunk_size = rcur_u64(&c);
    uint32_t n = rcur_u32(&c);
    if (c.err) return c.err;
    if ((uint64_t)n * 29 > c.left) return -EBADMSG; /* a chunk is at least 29 bytes */
    size_t first = f->n;
    int rc = grow(f, f->n + n);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        struct fi_chunk *ch = &f->chunks[f->n];
        rc = decode_chunk(&c, ch);
        if (rc == 0 && f->n > 0 && ch->index <= f->chunks[f->n - 1].index) rc = -EBADMSG;
        if (rc) {
            free(ch->copies);
            break;
        }
        f->n++;
    }
    uint8_t more = rcur_u8(&c);
    if (rc == 0) rc = rcur_done(&c);
    if (rc == 0 && more && f->n == first) rc = -EBADMSG; /* "more" must make progress */
    if (rc) {
        while (f->n > first)
            free(f->chunks[--f->n].copies);
        return rc;
    }
    if (f->pages++ == 0) {
        f->attr = a;
        f->copies = copies;
        f->chunk_size = chunk_size;
    }
    f->more = more != 0;
    f->next_index = f->n ? f->chunks[f->n - 1].index + 1 : 0;
    return 0;
}

unsigned fi_valid_copies(const struct fi_chunk *ch)
{
    unsigned v = 0;
    for (unsigned i = 0; i < ch->ncopies; i++)
        v += ch->copies[i].state == COPY_VALID;
    return v;
}

void fi_print(FILE *out, const char *path, const struct fi_file *f)
{
    char s1[32], s2[32];
    fprintf(out,
            "%s: inode %" PRIu64 ", size %s (%" PRIu64 " bytes), copies %u, chunk size %s, "
            "%zu chunk%s\n",
            path, f->attr.ino, cli_size(f->attr.size, s1, sizeof(s1)), f->attr.size, f->copies,
            cli_size(f->chunk_size, s2, sizeof(s2)), f->n, f->n == 1 ? "" : "s");
    for (size_t i = 0; i < f->n; i++) {
        const struct fi_chunk *ch = &f->chunks[i];
        unsigned v = fi_valid_copies(ch);
        fprintf(out, "  chunk %" PRIu64 ": id %016" PRIx64 " v%u, %s, %u of %u valid%s\n",
                ch->index, ch->chunk_id, ch->version, cli_size(ch->length, s1, sizeof(s1)), v,
                f->copies,
                v == 0          ? " (MISSING)"
                : v < f->copies ? " (under-replicated)"
                : v > f->copies ? " (over-replicated)"
                                : "");
        for (unsigned k = 0; k < ch->ncopies; k++) {
            const struct fi_copy *cp = &ch->copies[k];
            char ver[24] = "";
            if (cp->version != ch->version) snprintf(ver, sizeof(ver), " (v%u)", cp->version);
            fprintf(out, "    %016" PRIx64 "  %-21s  zone %-8s  %s%s\n", cp->server_id, cp->addr,
                    cp->zone[0] ? cp->zone : "-", cli_copy_state_name(cp->state), ver);
        }
    }
}

void fi_json(struct json *j, const char *path, const struct fi_file *f)
{
    json_obj_begin(j, NULL);
    json_str(j, "path", path);
    json_u64(j, "ino", f->attr.ino);
    json_u64(j, "size", f->attr.size);
    json_u64(j, "copies", f->copies);
    json_u64(j, "chunk_size", f->chunk_size);
    json_arr_begin(j, "chunks");
    for (size_t i = 0; i < f->n; i++) {
        const struct fi_chunk *ch = &f->chunks[i];
        json_obj_begin(j, NULL);
        json_u64(j, "index", ch->index);
        json_hex64(j, "id", ch->chunk_id);
        json_u64(j, "version", ch->version);
        json_u64(j, "length", ch->length);
        json_u64(j, "valid", fi_valid_copies(ch));
        json_arr_begin(j, "copies");
        for (unsigned k = 0; k < ch->ncopies; k++) {
            const struct fi_copy *cp = &ch->copies[k];
            json_obj_begin(j, NULL);
            json_hex64(j, "server", cp->server_id);
            json_str(j, "addr", cp->addr);
            json_str(j, "zone", cp->zone);
            json_u64(j, "version", cp->version);
            json_str(j, "state", cli_copy_state_name(cp->state));
            json_obj_end(j);
        }
        json_arr_end(j);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

/* Every page of path's chunks into f. 0 or a negative errno with the reason in why. */
static int fileinfo_fetch(const struct cli *c, const char *path, struct fi_file *f, char *why,
                          size_t len)
{
    struct stat st;
    struct cli_meta *m;
    int rc = cli_meta_for_path(c, path, &st, &m, why, len);
    if (rc) return rc;
    for (int page = 0; page < FI_PAGES_MAX; page++) {
        struct wbuf req;
        wbuf_init(&req);
        wbuf_put_u64(&req, (uint64_t)st.st_ino);
        wbuf_put_u64(&req, f->next_index);
        wbuf_put_u32(&req, FI_PAGE);
        struct rpc_reply rep;
        rc = cli_meta_call(m, MSG_FILEINFO, &req, &rep);
        wbuf_free(&req);
        if (rc) {
            snprintf(why, len, "%s", cli_meta_why(m));
            return rc;
        }
        rc = fi_decode_page(f, rep.payload.data, rep.payload.len);
        rpc_reply_free(&rep);
        if (rc) {
            snprintf(why, len, "%s", cli_strerror(rc));
            return rc;
        }
        if (f->pages == 1) {
            rc = cli_meta_check_type(m, f->attr.mode, st.st_mode, why, len);
            if (rc) return rc;
        }
        if (!f->more) return 0;
    }
    snprintf(why, len, "more than %d pages of chunks", FI_PAGES_MAX);
    return -E2BIG;
}

static int fileinfo_one(const struct cli *c, const char *path, struct json *j, char *why,
                        size_t len)
{
    struct fi_file f;
    fi_init(&f);
    int rc = fileinfo_fetch(c, path, &f, why, len);
    if (!rc && j)
        fi_json(j, path, &f);
    else if (!rc)
        fi_print(stdout, path, &f);
    fi_free(&f);
    return rc;
}

int cmd_fileinfo(const struct cli *c)
{
    return cli_for_each_path(c, "fileinfo", "files", fileinfo_one);
}
