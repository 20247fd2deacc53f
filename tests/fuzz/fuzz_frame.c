/* fuzz_frame.c - the libFuzzer target of the wire decoders in common/: frame headers
 * (wire_hdr_decode), the shared structures (proto_get_attr, proto_get_chunk_info) and every
 * payload layout of proto.h walked with rcur gets, plus an input-driven walk of every rcur get.
 * Whatever the input, nothing may crash, read outside its buffer (the payload is copied into a
 * buffer of its exact size so ASan sees an over-read) or break a codec invariant (checked
 * here; a violation traps). mop_decode lives in meta/ and is not linked here.
 *
 *   make fuzz && make fuzz-smoke          # clang -fsanitize=fuzzer, 20 s on tests/fuzz/corpus
 *
 * Built with -DFUZZ_FRAME_SEEDS_MAIN (any C compiler, no libFuzzer) this file is instead the
 * program that writes the seed frames of tests/fuzz/corpus:
 *
 *   cc -std=gnu11 -D_GNU_SOURCE -DFUZZ_FRAME_SEEDS_MAIN -Icommon -o /tmp/seeds \
 *      tests/fuzz/fuzz_frame.c common/cksum.c common/codec.c common/proto.c common/wire.c -lxxhash
 *   /tmp/seeds tests/fuzz/corpus
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cksum.h"
#include "codec.h"
#include "proto.h"
#include "wire.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "fuzz_frame: invariant failed at line %d: %s\n", __LINE__, #x);        \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#define REPEAT_MAX 100000 /* bound on one counted group, whatever the count says */

/* Buffer the cursor walks, to check it never points outside. */
struct span {
    const uint8_t *base;
    size_t len;
};

/* The cursor stays inside its buffer. After an error only err is meaningful: take() zeroes
 * `left`, a length refused by rcur_str/rcur_bytes leaves it as it was; either way every later
 * get returns zeros (check_latched). */
static void check_cursor(const struct rcur *c, const struct span *s)
{
    CHECK(c->p >= s->base);
    CHECK((size_t)(c->p - s->base) <= s->len);
    CHECK(c->left <= s->len - (size_t)(c->p - s->base));
    if (c->err) {
        CHECK(c->err == -EBADMSG);
        return;
    }
    CHECK((size_t)(c->p - s->base) + c->left == s->len);
}

/* Once err is set, every get returns zeros and the cursor stays put. */
static void check_latched(struct rcur *c)
{
    if (!c->err) return;
    CHECK(rcur_u8(c) == 0);
    CHECK(rcur_u64(c) == 0);
    CHECK(rcur_view(c, 0) == NULL);
    char s[4];
    CHECK(rcur_str(c, s, 3) == -EBADMSG && s[0] == '\0');
    size_t len = 1;
    CHECK(rcur_bytes(c, SIZE_MAX, &len) == NULL && len == 0);
    CHECK(c->err == -EBADMSG);
    CHECK(rcur_done(c) == -EBADMSG);
}

static void get_str(struct rcur *c, const struct span *sp, size_t max)
{
    static char out[CAIRN_PATH_MAX + 1];
    if (max > CAIRN_PATH_MAX) max = CAIRN_PATH_MAX;
    int n = rcur_str(c, out, max);
    if (n >= 0) {
        CHECK(!c->err);
        CHECK((size_t)n <= max);
        CHECK(strlen(out) == (size_t)n);
    } else {
        CHECK(n == -EBADMSG && c->err == -EBADMSG);
        CHECK(out[0] == '\0');
    }
    check_cursor(c, sp);
}

static void get_bytes(struct rcur *c, const struct span *sp, size_t max)
{
    size_t len = 12345;
    const uint8_t *p = rcur_bytes(c, max, &len);
    if (p) {
        CHECK(!c->err);
        CHECK(len <= max);
        CHECK(p >= sp->base && (size_t)(p - sp->base) + len <= sp->len);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < len; i++)
            sink ^= p[i]; /* touch every byte: ASan checks */
        (void)sink;
    } else {
        CHECK(len == 0);
        CHECK(c->err == -EBADMSG);
    }
    check_cursor(c, sp);
}

/* attr: decode, and when it decoded, encoding it again gives back the bytes consumed. */
static void get_attr(struct rcur *c, const struct span *sp)
{
    const uint8_t *p0 = c->p;
    struct cairn_attr a;
    proto_get_attr(c, &a);
    check_cursor(c, sp);
    if (c->err) return;
    struct wbuf b;
    wbuf_init(&b);
    proto_put_attr(&b, &a);
    CHECK(b.err == 0);
    CHECK(b.len == (size_t)(c->p - p0));
    CHECK(memcmp(b.data, p0, b.len) == 0);
    wbuf_free(&b);
}

static void get_chunk_info(struct rcur *c, const struct span *sp)
{
    const uint8_t *p0 = c->p;
    struct chunk_info ci;
    memset(&ci, 0xa5, sizeof(ci));
    proto_get_chunk_info(c, &ci);
    check_cursor(c, sp);
    CHECK(ci.nloc <= CAIRN_MAX_LOCS);
    for (int i = 0; i < ci.nloc; i++)
        CHECK(memchr(ci.loc[i].addr, '\0', sizeof(ci.loc[i].addr)) != NULL);
    if (c->err) return;
    struct wbuf b;
    wbuf_init(&b);
    proto_put_chunk_info(&b, &ci);
    CHECK(b.err == 0);
    CHECK(b.len == (size_t)(c->p - p0));
    CHECK(memcmp(b.data, p0, b.len) == 0);
    wbuf_free(&b);
}

/* --- payload layouts (proto.h) ------------------------------------------------------------
 * b u8, h u16, w u32, q u64, s name (str <= 255), p path (str <= 4095), a address (str <= 63),
 * y bytes, A attr, C chunkinfo, *[...] u32 count then the group count times, #[...] the same
 * with a u8 count. */
struct layout {
    uint16_t type;
    const char *req, *rep, *rep2;
};

static const struct layout layouts[] = {
    {MSG_SESSION_OPEN, "sq", "qqw", NULL},
    {MSG_SESSION_KEEPALIVE, "q", "", NULL},
    {MSG_SESSION_CLOSE, "q", "", NULL},
    {MSG_LOOKUP, "qs", "A", NULL},
    {MSG_GETATTR, "q", "A", NULL},
    {MSG_SETATTR, "qwwwwqqwqw", "A", NULL},
    {MSG_MKNOD, "qswqww", "A", NULL},
    {MSG_MKDIR, "qswww", "A", NULL},
    {MSG_UNLINK, "qs", "", NULL},
    {MSG_RMDIR, "qs", "", NULL},
    {MSG_RENAME, "qsqsw", "", NULL},
    {MSG_LINK, "qqs", "A", NULL},
    {MSG_SYMLINK, "qspww", "A", NULL},
    {MSG_READLINK, "q", "p", NULL},
    {MSG_READDIR, "qqwb", "*[qwsq]b", "*[qwsqA]b"},
    {MSG_STATFS, "", "qqqqww", NULL},
    {MSG_SETXATTR, "qsyw", "", NULL},
    {MSG_GETXATTR, "qs", "y", NULL},
    {MSG_LISTXATTR, "q", "y", NULL},
    {MSG_REMOVEXATTR, "qs", "", NULL},
    {MSG_CREATE, "qswwwwq", "A", NULL},
    {MSG_OPEN, "qwq", "A*[C]", NULL},
    {MSG_RELEASE, "qq", "", NULL},
    {MSG_CHUNK_LOCATE, "qqw", "*[C]", NULL},
    {MSG_CHUNK_LEASE, "qqq", "C", NULL},
    {MSG_COMMIT, "qqqww", "A", NULL},
    {MSG_CS_REGISTER, "qaqq", "q", NULL},
    {MSG_CS_REPORT, "q*[qw]", "*[qw]", NULL},
    {MSG_CS_HEARTBEAT, "qqqw", "*[qw]", NULL},
    {MSG_CS_BAD_CHUNK, "qqww", "", NULL},
    {MSG_CS_CHUNK_EVENT, "qqww", "", NULL},
    {MSG_CHK_READ, "qwww", "ww*[q]y", NULL},
    {MSG_CHK_WRITE, "qwwwqbb#[a]y", "w", NULL},
    {MSG_CHK_TRUNCATE, "qwww#[a]", "", NULL},
    {MSG_CHK_DELETE, "qw", "", NULL},
    {MSG_CHK_FSYNC, "qw", "", NULL},
    {MSG_CHK_INFO, "q", "ww", NULL},
};

/* Index just past the ']' closing the group that starts after fmt[open] == '['. */
static size_t group_end(const char *fmt, size_t open, size_t len)
{
    int depth = 0;
    for (size_t i = open; i < len; i++) {
        if (fmt[i] == '[') depth++;
        if (fmt[i] == ']' && --depth == 0) return i + 1;
    }
    CHECK(0 && "unbalanced layout");
    return len;
}

static void walk_layout(struct rcur *c, const struct span *sp, const char *fmt, size_t len)
{
    for (size_t i = 0; i < len && !c->err;) {
        char ch = fmt[i];
        switch (ch) {
        case 'b':
            rcur_u8(c);
            break;
        case 'h':
            rcur_u16(c);
            break;
        case 'w':
            rcur_u32(c);
            break;
        case 'q':
            rcur_u64(c);
            break;
        case 's':
            get_str(c, sp, CAIRN_NAME_MAX);
            break;
        case 'p':
            get_str(c, sp, CAIRN_PATH_MAX);
            break;
        case 'a':
            get_str(c, sp, CAIRN_ADDR_MAX);
            break;
        case 'y':
            get_bytes(c, sp, WIRE_MAX_PAYLOAD);
            break;
        case 'A':
            get_attr(c, sp);
            break;
        case 'C':
            get_chunk_info(c, sp);
            break;
        case '*':
        case '#': {
            uint32_t n = ch == '*' ? rcur_u32(c) : rcur_u8(c);
            size_t end = group_end(fmt, i + 1, len);
            for (uint32_t k = 0; k < n && k < REPEAT_MAX && !c->err; k++) {
                size_t before = c->left;
                walk_layout(c, sp, fmt + i + 2, end - 1 - (i + 2));
                CHECK(c->err || c->left < before); /* each group consumes bytes */
            }
            i = end;
            continue;
        }
        default:
            CHECK(0 && "bad layout character");
        }
        check_cursor(c, sp);
        i++;
    }
    check_cursor(c, sp);
}

static void decode_layout(const uint8_t *p, size_t n, const char *fmt)
{
    if (!fmt) return;
    struct span sp = {p, n};
    struct rcur c;
    rcur_init(&c, p, n);
    walk_layout(&c, &sp, fmt, strlen(fmt));
    int done = rcur_done(&c);
    CHECK(done == 0 || done == -EBADMSG);
    CHECK(done != 0 || (c.left == 0 && !c.err));
    check_latched(&c);
}

/* --- input-driven walk: the bytes choose which get comes next ------------------------------- */

static void walk_ops(const uint8_t *p, size_t n)
{
    static const size_t str_max[] = {0, 1, CAIRN_ADDR_MAX, CAIRN_NAME_MAX, CAIRN_PATH_MAX};
    static const size_t bytes_max[] = {0, 16, CAIRN_XATTR_SIZE_MAX, WIRE_MAX_PAYLOAD, SIZE_MAX};
    struct span sp = {p, n};
    struct rcur c;
    rcur_init(&c, p, n);
    uint8_t raw[256];
    for (int i = 0; i < 4096 && c.left > 0 && !c.err; i++) {
        uint8_t op = rcur_u8(&c);
        size_t before = c.left;
        switch (op % 14) {
        case 0:
            rcur_u8(&c);
            break;
        case 1:
            rcur_u16(&c);
            break;
        case 2:
            rcur_u32(&c);
            break;
        case 3:
            rcur_u64(&c);
            break;
        case 4:
            rcur_i32(&c);
            break;
        case 5:
            rcur_i64(&c);
            break;
        case 6: {
            size_t k = rcur_u8(&c);
            memset(raw, 0x5a, sizeof(raw));
            rcur_raw(&c, raw, k);
            if (c.err)
                for (size_t j = 0; j < k; j++)
                    CHECK(raw[j] == 0);
            break;
        }
        case 7: {
            size_t k = rcur_u16(&c);
            const uint8_t *v = rcur_view(&c, k);
            CHECK(v == NULL || (v >= p && (size_t)(v - p) + k <= n));
            break;
        }
        case 8:
            get_str(&c, &sp, str_max[(op >> 4) % 5]);
            break;
        case 9:
            get_bytes(&c, &sp, bytes_max[(op >> 4) % 5]);
            break;
        case 10:
            get_attr(&c, &sp);
            break;
        case 11:
            get_chunk_info(&c, &sp);
            break;
        case 12: {
            int d = rcur_done(&c);
            CHECK(d == (c.left == 0 && !c.err ? 0 : -EBADMSG));
            break;
        }
        case 13:
            CHECK(rcur_view(&c, SIZE_MAX) == NULL && c.err == -EBADMSG);
            break;
        }
        CHECK(c.left <= before);
        check_cursor(&c, &sp);
    }
    check_latched(&c);
}

/* --- frames --------------------------------------------------------------------------------- */

static void decode_payload(const struct wire_hdr *h, const uint8_t *in, size_t n)
{
    /* an exact-size copy, so that reading one byte past the payload is an ASan report */
    uint8_t *p = calloc(1, n ? n : 1);
    if (!p) return;
    if (n) memcpy(p, in, n);

    struct span sp = {p, n};
    struct rcur c;
    rcur_init(&c, p, n);
    get_attr(&c, &sp);
    rcur_init(&c, p, n);
    get_chunk_info(&c, &sp);

    uint16_t type = (uint16_t)(h->type & ~WIRE_REPLY_BIT);
    int reply = (h->type & WIRE_REPLY_BIT) != 0;
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        const struct layout *l = &layouts[i];
        if (l->type == type) {
            /* the layout the header names first, then every other one for coverage */
            decode_layout(p, n, reply ? l->rep : l->req);
            decode_layout(p, n, reply ? l->rep2 : NULL);
        }
    }
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        decode_layout(p, n, layouts[i].req);
        decode_layout(p, n, layouts[i].rep);
        decode_layout(p, n, layouts[i].rep2);
    }
    walk_ops(p, n);
    free(p);
}

static void check_header(const uint8_t *in, int rc, const struct wire_hdr *h)
{
    CHECK(rc == 0 || rc == -EBADMSG || rc == -EMSGSIZE);
    if (rc == -EMSGSIZE) CHECK(h->length > WIRE_MAX_PAYLOAD);
    if (rc) return;
    CHECK(h->length <= WIRE_MAX_PAYLOAD);
    /* a header that decodes encodes back to the same 32 bytes */
    uint8_t again[WIRE_HDR_SIZE];
    wire_hdr_encode(again, h);
    CHECK(memcmp(again, in, WIRE_HDR_SIZE) == 0);
    /* the receiver's limit is honoured exactly */
    struct wire_hdr h2;
    CHECK(wire_hdr_decode(in, &h2, h->length) == 0);
    if (h->length > 0) CHECK(wire_hdr_decode(in, &h2, h->length - 1) == -EMSGSIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the whole input as a payload of unknown layout */
    uint8_t *copy = calloc(1, size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    walk_ops(copy, size);
    free(copy);

    if (size < WIRE_HDR_SIZE) return 0;
    uint8_t hb[WIRE_HDR_SIZE];
    memcpy(hb, data, WIRE_HDR_SIZE);
    struct wire_hdr h;
    memset(&h, 0, sizeof(h));
    int rc = wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD);
    check_header(hb, rc, &h);

    /* The checksum stops almost every mutated header; reseal it so that the fuzzer also
     * reaches the magic, version and length checks and the payload decoders. */
    le_put32(hb + 28, (uint32_t)cksum_xxh3(hb, 28));
    struct wire_hdr hs;
    memset(&hs, 0, sizeof(hs));
    int rcs = wire_hdr_decode(hb, &hs, WIRE_MAX_PAYLOAD);
    check_header(hb, rcs, &hs);
    if (rc == 0) CHECK(rcs == 0 && hs.type == h.type && hs.reqid == h.reqid);
    if (rcs != 0) return 0;

    /* the payload is what follows the header, at most the length it announces (a shorter
     * one is a frame cut short: the decoders must cope with it as well) */
    size_t avail = size - WIRE_HDR_SIZE;
    size_t n = hs.length < avail ? hs.length : avail;
    decode_payload(&hs, data + WIRE_HDR_SIZE, n);
    return 0;
}

#ifdef FUZZ_FRAME_SEEDS_MAIN
/* --- seed corpus writer ------------------------------------------------------------------- */

static int write_frame(const char *dir, const char *name, uint16_t type, const struct wbuf *p)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct wire_hdr h = {.type = type, .reqid = 1, .length = (uint32_t)p->len};
    uint8_t hb[WIRE_HDR_SIZE];
    wire_hdr_encode(hb, &h);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    fwrite(hb, 1, sizeof(hb), f);
    if (p->len) fwrite(p->data, 1, p->len, f);
    return fclose(f);
}

static struct cairn_attr seed_attr(uint64_t ino, uint32_t mode)
{
    struct cairn_attr a = {.ino = ino,
                           .gen = 1,
                           .mode = mode,
                           .uid = 1000,
                           .gid = 1000,
                           .nlink = 1,
                           .size = 4096,
                           .atime_s = 1700000000,
                           .mtime_s = 1700000000,
                           .ctime_s = 1700000000};
    return a;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    struct wbuf b;
    int rc = 0;

    /* LOOKUP request: parent 1, "hello" */
    wbuf_init(&b);
    wbuf_put_u64(&b, CAIRN_ROOT_INO);
    wbuf_put_str(&b, "hello", 5);
    rc |= write_frame(dir, "lookup-request", MSG_LOOKUP, &b);

    /* GETATTR reply: one attr */
    wbuf_reset(&b);
    struct cairn_attr a = seed_attr(2, 0100644);
    proto_put_attr(&b, &a);
    rc |= write_frame(dir, "getattr-reply", MSG_GETATTR | WIRE_REPLY_BIT, &b);

    /* CHUNK_LEASE reply: a chunkinfo with two locations */
    wbuf_reset(&b);
    struct chunk_info ci = {
        .index = 0, .chunk_id = 0x10, .version = 2, .prev_version = 1, .nloc = 2};
    ci.loc[0].server_id = 0x1111;
    snprintf(ci.loc[0].addr, sizeof(ci.loc[0].addr), "127.0.0.1:9521");
    ci.loc[1].server_id = 0x2222;
    snprintf(ci.loc[1].addr, sizeof(ci.loc[1].addr), "127.0.0.1:9522");
    proto_put_chunk_info(&b, &ci);
    rc |= write_frame(dir, "chunk-lease-reply", MSG_CHUNK_LEASE | WIRE_REPLY_BIT, &b);

    /* READDIR reply (plus): two entries and eof */
    wbuf_reset(&b);
    wbuf_put_u32(&b, 2);
    const char *names[] = {"a.txt", "subdir"};
    for (int i = 0; i < 2; i++) {
        struct cairn_attr e = seed_attr(10 + (uint64_t)i, i ? 040755 : 0100644);
        wbuf_put_u64(&b, e.ino);
        wbuf_put_u32(&b, e.mode);
        wbuf_put_str(&b, names[i], strlen(names[i]));
        wbuf_put_u64(&b, 100 + (uint64_t)i);
        proto_put_attr(&b, &e);
    }
    wbuf_put_u8(&b, 1);
    rc |= write_frame(dir, "readdirplus-reply", MSG_READDIR | WIRE_REPLY_BIT, &b);

    /* CS_REPORT request: server id, three chunks */
    wbuf_reset(&b);
    wbuf_put_u64(&b, 0xabcdef);
    wbuf_put_u32(&b, 3);
    for (uint32_t i = 0; i < 3; i++) {
        wbuf_put_u64(&b, 0x100 + i);
        wbuf_put_u32(&b, i + 1);
    }
    rc |= write_frame(dir, "cs-report-request", MSG_CS_REPORT, &b);
    wbuf_free(&b);
    return rc ? 1 : 0;
}
#endif
