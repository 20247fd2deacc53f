/* test_common_codec.c - unit tests of the wire protocol's building blocks in common/: the
 * bounds-checked payload codec (codec.c: wbuf puts, rcur gets and their error latching), the
 * frame header (wire.c: encode/decode, every header check, blocking frame I/O over a socket
 * pair), the shared structure codecs (proto.c: attr, chunkinfo) and the option-table config
 * parser (conf.c). Each test names the behaviour it proves. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cksum.h"
#include "chunkfile.h"
#include "codec.h"
#include "conf.h"
#include "proto.h"
#include "wire.h"
#include "unit_main.h"

/* --- codec: wbuf / rcur ---------------------------------------------------------------- */

START_TEST(test_roundtrip_every_type)
{
    struct wbuf b;
    wbuf_init(&b);
    static const uint8_t raw[5] = {1, 2, 0, 4, 5};
    static const uint8_t blob[3] = {0xff, 0x00, 0x7f};
    wbuf_put_u8(&b, 0xab);
    wbuf_put_u16(&b, 0xbeef);
    wbuf_put_u32(&b, 0xdeadbeefu);
    wbuf_put_u64(&b, 0x0123456789abcdefull);
    wbuf_put_i32(&b, -12345);
    wbuf_put_i64(&b, INT64_MIN + 7);
    wbuf_put_raw(&b, raw, sizeof(raw));
    wbuf_put_bytes(&b, blob, sizeof(blob));
    wbuf_put_bytes(&b, NULL, 0);
    wbuf_put_str(&b, "hello", 5);
    wbuf_put_str(&b, "", 0);
    wbuf_put_u8(&b, 0);
    wbuf_put_u16(&b, UINT16_MAX);
    wbuf_put_u32(&b, UINT32_MAX);
    wbuf_put_u64(&b, UINT64_MAX);
    wbuf_put_i32(&b, INT32_MIN);
    wbuf_put_i64(&b, -1);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.len, 1 + 2 + 4 + 8 + 4 + 8 + 5 + (4 + 3) + 4 + (2 + 5) + 2 + 1 + 2 + 4 + 8 +
                                 4 + 8);

    struct rcur c;
    rcur_init(&c, b.data, b.len);
    ck_assert_uint_eq(rcur_u8(&c), 0xab);
    ck_assert_uint_eq(rcur_u16(&c), 0xbeef);
    ck_assert_uint_eq(rcur_u32(&c), 0xdeadbeefu);
    ck_assert_uint_eq(rcur_u64(&c), 0x0123456789abcdefull);
    ck_assert_int_eq(rcur_i32(&c), -12345);
    ck_assert(rcur_i64(&c) == INT64_MIN + 7);
    uint8_t r5[5];
    rcur_raw(&c, r5, sizeof(r5));
    ck_assert_mem_eq(r5, raw, sizeof(raw));
    size_t len = 99;
    const uint8_t *p = rcur_bytes(&c, 16, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(p, blob, 3);
    len = 99;
    rcur_bytes(&c, 16, &len);
    ck_assert_uint_eq(len, 0);
    char s[16];
    ck_assert_int_eq(rcur_str(&c, s, 15), 5);
    ck_assert_str_eq(s, "hello");
    ck_assert_int_eq(rcur_str(&c, s, 15), 0);
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(rcur_u8(&c), 0);
    ck_assert_uint_eq(rcur_u16(&c), UINT16_MAX);
    ck_assert_uint_eq(rcur_u32(&c), UINT32_MAX);
    ck_assert(rcur_u64(&c) == UINT64_MAX);
    ck_assert_int_eq(rcur_i32(&c), INT32_MIN);
    ck_assert(rcur_i64(&c) == -1);
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(c.left, 0);
    ck_assert_int_eq(rcur_done(&c), 0);
    wbuf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_encoding_is_little_endian)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u16(&b, 0x0102);
    wbuf_put_u32(&b, 0x03040506u);
    wbuf_put_u64(&b, 0x0708090a0b0c0d0eull);
    wbuf_put_str(&b, "ab", 2);
    wbuf_put_bytes(&b, "xyz", 3);
    static const uint8_t want[] = {0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d, 0x0c,
                                   0x0b, 0x0a, 0x09, 0x08, 0x07, 0x02, 0x00, 'a',  'b',
                                   0x03, 0x00, 0x00, 0x00, 'x',  'y',  'z'};
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert_mem_eq(b.data, want, sizeof(want));
    wbuf_free(&b);
}
END_TEST

START_TEST(test_wbuf_grows_and_resets)
{
    struct wbuf b;
    wbuf_init(&b);
    for (uint32_t i = 0; i < 100000; i++)
        wbuf_put_u32(&b, i);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.len, 400000);
    ck_assert_uint_ge(b.cap, b.len);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    for (uint32_t i = 0; i < 100000; i++)
        if (rcur_u32(&c) != i) ck_abort_msg("value %u lost in growth", i);
    ck_assert_int_eq(rcur_done(&c), 0);
    wbuf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    wbuf_put_u8(&b, 9);
    ck_assert_uint_eq(b.len, 1);
    ck_assert_uint_eq(b.data[0], 9);
    uint8_t *x = wbuf_extend(&b, 10);
    ck_assert_ptr_eq(x, b.data + 1);
    ck_assert_uint_eq(b.len, 11);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_put_str_over_u16_sets_err)
{
    struct wbuf b;
    wbuf_init(&b);
    size_t n = (size_t)UINT16_MAX + 1;
    char *big = calloc(1, n);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', n);
    wbuf_put_str(&b, big, n);
    ck_assert_int_eq(b.err, -ENAMETOOLONG);
    wbuf_reset(&b);
    ck_assert_int_eq(b.err, 0);
    wbuf_put_str(&b, big, UINT16_MAX); /* the largest string is fine */
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.len, 2 + (size_t)UINT16_MAX);
    free(big);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_rcur_past_end_sets_err_and_returns_zeros)
{
    uint8_t buf[3] = {0xff, 0xff, 0xff};
    struct rcur c;
    rcur_init(&c, buf, sizeof(buf));
    ck_assert_uint_eq(rcur_u16(&c), 0xffff);
    ck_assert_uint_eq(rcur_u32(&c), 0); /* only one byte left */
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_uint_eq(c.left, 0);
    /* the error latches: every later get returns zeros, even for sizes that would fit */
    ck_assert_uint_eq(rcur_u8(&c), 0);
    ck_assert_uint_eq(rcur_u16(&c), 0);
    ck_assert_uint_eq(rcur_u64(&c), 0);
    ck_assert_int_eq(rcur_i32(&c), 0);
    ck_assert(rcur_i64(&c) == 0);
    uint8_t out[4] = {1, 2, 3, 4};
    rcur_raw(&c, out, sizeof(out));
    static const uint8_t zero[4];
    ck_assert_mem_eq(out, zero, 4);
    ck_assert_ptr_null(rcur_view(&c, 0));
    size_t len = 7;
    ck_assert_ptr_null(rcur_bytes(&c, 100, &len));
    ck_assert_uint_eq(len, 0);
    char s[8] = "junk";
    ck_assert_int_eq(rcur_str(&c, s, 7), -EBADMSG);
    ck_assert_str_eq(s, "");
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_int_eq(rcur_done(&c), -EBADMSG);

    /* each width on an empty cursor */
    rcur_init(&c, buf, 0);
    ck_assert_uint_eq(rcur_u8(&c), 0);
    ck_assert_int_eq(c.err, -EBADMSG);
    rcur_init(&c, buf, 1);
    ck_assert_uint_eq(rcur_u16(&c), 0);
    ck_assert_int_eq(c.err, -EBADMSG);
    rcur_init(&c, buf, 3);
    ck_assert_uint_eq(rcur_u32(&c), 0);
    ck_assert_int_eq(c.err, -EBADMSG);
    uint8_t b7[7] = {1, 1, 1, 1, 1, 1, 1};
    rcur_init(&c, b7, 7);
    ck_assert_uint_eq(rcur_u64(&c), 0);
    ck_assert_int_eq(c.err, -EBADMSG);
    rcur_init(&c, b7, 7);
    rcur_raw(&c, out, 4);
    ck_assert_ptr_null(rcur_view(&c, 4));
    ck_assert_int_eq(c.err, -EBADMSG);
}
END_TEST

START_TEST(test_rcur_view_and_done)
{
    uint8_t buf[6] = {1, 2, 3, 4, 5, 6};
    struct rcur c;
    rcur_init(&c, buf, sizeof(buf));
    const uint8_t *v = rcur_view(&c, 4);
    ck_assert_ptr_eq(v, buf);
    ck_assert_uint_eq(c.left, 2);
    ck_assert_int_eq(rcur_done(&c), -EBADMSG); /* bytes left over */
    ck_assert_int_eq(c.err, 0);                /* rcur_done does not change the cursor */
    ck_assert_ptr_eq(rcur_view(&c, 2), buf + 4);
    ck_assert_int_eq(rcur_done(&c), 0);
    ck_assert_ptr_null(rcur_view(&c, 1));
    ck_assert_int_eq(rcur_done(&c), -EBADMSG);
    /* a view length near SIZE_MAX must not wrap around the bounds check */
    rcur_init(&c, buf, sizeof(buf));
    rcur_u8(&c);
    ck_assert_ptr_null(rcur_view(&c, SIZE_MAX));
    ck_assert_int_eq(c.err, -EBADMSG);
}
END_TEST

START_TEST(test_rcur_str_bounds)
{
    struct wbuf b;
    wbuf_init(&b);
    char out[300];
    struct rcur c;

    /* exactly max fits */
    wbuf_put_str(&b, "abcd", 4);
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(rcur_str(&c, out, 4), 4);
    ck_assert_str_eq(out, "abcd");
    ck_assert_int_eq(rcur_done(&c), 0);

    /* one over max is refused even though the bytes are there */
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(rcur_str(&c, out, 3), -EBADMSG);
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_str_eq(out, "");

    /* a length of 65535 over a max of 255 */
    wbuf_reset(&b);
    wbuf_put_u16(&b, UINT16_MAX);
    wbuf_put_raw(&b, "xx", 2);
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(rcur_str(&c, out, 255), -EBADMSG);

    /* embedded NUL */
    wbuf_reset(&b);
    wbuf_put_str(&b, "ab\0cd", 5);
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(rcur_str(&c, out, 255), -EBADMSG);
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_str_eq(out, "");

    /* a trailing NUL counts as embedded too */
    wbuf_reset(&b);
    wbuf_put_str(&b, "abc\0", 4);
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(rcur_str(&c, out, 255), -EBADMSG);

    /* declared length larger than the bytes present */
    wbuf_reset(&b);
    wbuf_put_u16(&b, 10);
    wbuf_put_raw(&b, "abc", 3);
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(rcur_str(&c, out, 255), -EBADMSG);
    ck_assert_uint_eq(c.left, 0);

    /* truncated length prefix */
    uint8_t one = 5;
    rcur_init(&c, &one, 1);
    ck_assert_int_eq(rcur_str(&c, out, 255), -EBADMSG);

    /* max 0 accepts only the empty string */
    wbuf_reset(&b);
    wbuf_put_str(&b, "", 0);
    wbuf_put_str(&b, "a", 1);
    rcur_init(&c, b.data, b.len);
    char tiny[1];
    ck_assert_int_eq(rcur_str(&c, tiny, 0), 0);
    ck_assert_int_eq(tiny[0], '\0');
    ck_assert_int_eq(rcur_str(&c, tiny, 0), -EBADMSG);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_rcur_bytes_bounds)
{
    struct wbuf b;
    wbuf_init(&b);
    uint8_t data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (uint8_t)i;
    wbuf_put_bytes(&b, data, 64);
    struct rcur c;
    size_t len;

    rcur_init(&c, b.data, b.len);
    const uint8_t *p = rcur_bytes(&c, 64, &len);
    ck_assert_ptr_eq(p, b.data + 4);
    ck_assert_uint_eq(len, 64);
    ck_assert_int_eq(rcur_done(&c), 0);

    rcur_init(&c, b.data, b.len);
    len = 1;
    ck_assert_ptr_null(rcur_bytes(&c, 63, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(c.err, -EBADMSG);

    /* a huge declared length with a generous max is still checked against what is there */
    wbuf_reset(&b);
    wbuf_put_u32(&b, UINT32_MAX);
    wbuf_put_raw(&b, data, 8);
    rcur_init(&c, b.data, b.len);
    ck_assert_ptr_null(rcur_bytes(&c, SIZE_MAX, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(c.err, -EBADMSG);

    /* length prefix cut short */
    rcur_init(&c, b.data, 3);
    ck_assert_ptr_null(rcur_bytes(&c, 100, &len));
    ck_assert_int_eq(c.err, -EBADMSG);
    wbuf_free(&b);
}
END_TEST

/* --- wire header ----------------------------------------------------------------------- */

static void good_header(uint8_t hb[WIRE_HDR_SIZE], uint32_t length)
{
    struct wire_hdr h = {.type = MSG_LOOKUP,
                         .reqid = 0x1122334455667788ull,
                         .length = length,
                         .status = -ENOENT,
                         .flags = 0};
    wire_hdr_encode(hb, &h);
}

/* Rewrite the header checksum after a field was changed on purpose. */
static void reseal(uint8_t hb[WIRE_HDR_SIZE])
{
    le_put32(hb + 28, (uint32_t)cksum_xxh3(hb, 28));
}

START_TEST(test_wire_header_roundtrip_and_layout)
{
    uint8_t hb[WIRE_HDR_SIZE];
    good_header(hb, 1234);
    ck_assert_uint_eq(le_get32(hb), WIRE_MAGIC);
    ck_assert_mem_eq(hb, "CARN", 4);
    ck_assert_uint_eq(le_get16(hb + 4), WIRE_VERSION);
    ck_assert_uint_eq(le_get16(hb + 6), MSG_LOOKUP);
    ck_assert(le_get64(hb + 8) == 0x1122334455667788ull);
    ck_assert_uint_eq(le_get32(hb + 16), 1234);
    ck_assert_int_eq((int32_t)le_get32(hb + 20), -ENOENT);
    ck_assert_uint_eq(le_get32(hb + 24), 0);
    ck_assert_uint_eq(le_get32(hb + 28), (uint32_t)cksum_xxh3(hb, 28));

    struct wire_hdr h;
    memset(&h, 0xa5, sizeof(h));
    ck_assert_int_eq(wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD), 0);
    ck_assert_uint_eq(h.type, MSG_LOOKUP);
    ck_assert(h.reqid == 0x1122334455667788ull);
    ck_assert_uint_eq(h.length, 1234);
    ck_assert_int_eq(h.status, -ENOENT);
    ck_assert_uint_eq(h.flags, 0);

    /* a reply type and flags survive too */
    struct wire_hdr r = {.type = MSG_STATFS | WIRE_REPLY_BIT, .reqid = 1, .flags = 0xabcdu};
    wire_hdr_encode(hb, &r);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, 0), 0);
    ck_assert_uint_eq(h.type, MSG_STATFS | WIRE_REPLY_BIT);
    ck_assert_uint_eq(h.flags, 0xabcdu);
    ck_assert_uint_eq(h.length, 0);
}
END_TEST

START_TEST(test_wire_header_bad_magic)
{
    uint8_t hb[WIRE_HDR_SIZE];
    struct wire_hdr h;
    good_header(hb, 0);
    hb[0] ^= 0x01;
    reseal(hb); /* only the magic is wrong */
    ck_assert_int_eq(wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD), -EBADMSG);
    good_header(hb, 0);
    memcpy(hb, "HTTP", 4); /* somebody speaking another protocol */
    ck_assert_int_eq(wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD), -EBADMSG);
}
END_TEST

START_TEST(test_wire_header_bad_version)
{
    uint8_t hb[WIRE_HDR_SIZE];
    struct wire_hdr h;
    uint16_t bad[] = {0, WIRE_VERSION + 1, 0xffff};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        good_header(hb, 0);
        le_put16(hb + 4, bad[i]);
        reseal(hb);
        ck_assert_int_eq(wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD), -EBADMSG);
    }
}
END_TEST

START_TEST(test_wire_header_bad_checksum)
{
    uint8_t hb[WIRE_HDR_SIZE];
    struct wire_hdr h;
    /* any single bit flipped anywhere in the header is caught */
    for (int bit = 0; bit < WIRE_HDR_SIZE * 8; bit++) {
        good_header(hb, 16);
        hb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD) != -EBADMSG)
            ck_abort_msg("bit %d flipped was accepted", bit);
    }
    /* a length grown on the wire without the checksum is refused as malformed, not oversize */
    good_header(hb, 16);
    le_put32(hb + 16, 17);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD), -EBADMSG);
}
END_TEST

START_TEST(test_wire_header_oversized_frame)
{
    uint8_t hb[WIRE_HDR_SIZE];
    struct wire_hdr h;
    good_header(hb, 4096);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, 4096), 0);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, 4095), -EMSGSIZE);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, 0), -EMSGSIZE);
    good_header(hb, WIRE_MAX_PAYLOAD);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, WIRE_MAX_PAYLOAD), 0);
    /* a receiver limit above the hard ceiling is clamped to it */
    good_header(hb, WIRE_MAX_PAYLOAD + 1);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, UINT32_MAX), -EMSGSIZE);
    good_header(hb, UINT32_MAX);
    ck_assert_int_eq(wire_hdr_decode(hb, &h, UINT32_MAX), -EMSGSIZE);
}
END_TEST

START_TEST(test_wire_send_recv_over_socketpair)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct wire_hdr h = {.type = MSG_GETATTR, .reqid = 42, .length = 999 /* recomputed */};
    ck_assert_int_eq(wire_send(sv[0], &h, "abc", 3, "defg", 4), 0);
    ck_assert_int_eq(wire_send(sv[0], &h, NULL, 0, NULL, 0), 0);
    struct wbuf p;
    wbuf_init(&p);
    struct wire_hdr g;
    ck_assert_int_eq(wire_recv(sv[1], &g, &p, 1024), 0);
    ck_assert_uint_eq(g.type, MSG_GETATTR);
    ck_assert(g.reqid == 42);
    ck_assert_uint_eq(g.length, 7);
    ck_assert_uint_eq(p.len, 7);
    ck_assert_mem_eq(p.data, "abcdefg", 7);
    ck_assert_int_eq(wire_recv(sv[1], &g, &p, 1024), 0);
    ck_assert_uint_eq(g.length, 0);
    ck_assert_uint_eq(p.len, 0);

    /* an oversized frame is refused by the receiver's limit before its payload is read */
    ck_assert_int_eq(wire_send(sv[0], &h, "0123456789", 10, NULL, 0), 0);
    ck_assert_int_eq(wire_recv(sv[1], &g, &p, 9), -EMSGSIZE);
    wbuf_free(&p);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_wire_truncated_header_and_payload)
{
    int sv[2];
    struct wbuf p;
    wbuf_init(&p);
    struct wire_hdr g;
    uint8_t hb[WIRE_HDR_SIZE];

    /* 20 of 32 header bytes, then EOF */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    good_header(hb, 0);
    ck_assert_int_eq(write(sv[0], hb, 20), 20);
    close(sv[0]);
    ck_assert_int_eq(wire_recv(sv[1], &g, &p, 1024), -ECONNRESET);
    close(sv[1]);

    /* a whole header announcing 100 bytes, only 10 sent */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    good_header(hb, 100);
    ck_assert_int_eq(write(sv[0], hb, sizeof(hb)), (ssize_t)sizeof(hb));
    ck_assert_int_eq(write(sv[0], "0123456789", 10), 10);
    close(sv[0]);
    ck_assert_int_eq(wire_recv(sv[1], &g, &p, 1024), -ECONNRESET);
    close(sv[1]);

    /* a garbage header is refused */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(hb, 'G', sizeof(hb));
    ck_assert_int_eq(write(sv[0], hb, sizeof(hb)), (ssize_t)sizeof(hb));
    ck_assert_int_eq(wire_recv(sv[1], &g, &p, 1024), -EBADMSG);
    close(sv[0]);
    close(sv[1]);
    wbuf_free(&p);
}
END_TEST

/* --- proto: attr and chunkinfo ------------------------------------------------------- */

static struct cairn_attr sample_attr(void)
{
    struct cairn_attr a = {.ino = 0x1000000000000001ull,
                           .gen = 7,
                           .mode = 0100644,
                           .uid = 1000,
                           .gid = 100,
                           .nlink = 3,
                           .rdev = 0x0803,
                           .size = (1ull << 40) + 5,
                           .atime_s = -86400,
                           .atime_ns = 999999999,
                           .mtime_s = INT64_MAX,
                           .mtime_ns = 1,
                           .ctime_s = 1700000000,
                           .ctime_ns = 500,
                           .flags = ATTR_F_XATTRS,
                           .blocks = 0x0102030405060708ull,
                           .copies = 3};
    return a;
}

START_TEST(test_attr_roundtrip)
{
    struct cairn_attr a = sample_attr(), g;
    struct wbuf b;
    wbuf_init(&b);
    proto_put_attr(&b, &a);
    ck_assert_int_eq(b.err, 0);
    /* the layout of proto.h: ino, gen, mode, uid, gid, nlink, rdev, size, 3 x (s, ns), flags,
     * blocks, copies */
    ck_assert_uint_eq(b.len, 8 + 8 + 4 * 4 + 8 + 8 + (8 + 4) * 3 + 4 + 8 + 4);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    memset(&g, 0x5a, sizeof(g));
    proto_get_attr(&c, &g);
    ck_assert_int_eq(rcur_done(&c), 0);
    ck_assert(g.ino == a.ino && g.gen == a.gen && g.mode == a.mode && g.uid == a.uid);
    ck_assert(g.gid == a.gid && g.nlink == a.nlink && g.rdev == a.rdev && g.size == a.size);
    ck_assert(g.atime_s == a.atime_s && g.atime_ns == a.atime_ns);
    ck_assert(g.mtime_s == a.mtime_s && g.mtime_ns == a.mtime_ns);
    ck_assert(g.ctime_s == a.ctime_s && g.ctime_ns == a.ctime_ns);
    ck_assert_uint_eq(g.flags, a.flags);
    ck_assert_uint_eq(g.blocks, a.blocks);
    ck_assert_uint_eq(g.copies, a.copies);

    /* every truncation of it is an error */
    for (size_t n = 0; n < b.len; n++) {
        rcur_init(&c, b.data, n);
        proto_get_attr(&c, &g);
        if (c.err != -EBADMSG) ck_abort_msg("attr cut at %zu accepted", n);
    }
    wbuf_free(&b);
}
END_TEST

static struct chunk_info sample_ci(int nloc)
{
    struct chunk_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.index = 12;
    ci.chunk_id = 0xfeedfacecafebeefull;
    ci.version = 9;
    ci.prev_version = 8;
    ci.nloc = (uint8_t)nloc;
    for (int i = 0; i < nloc && i < CAIRN_MAX_LOCS; i++) {
        ci.loc[i].server_id = 100 + (uint64_t)i;
        snprintf(ci.loc[i].addr, sizeof(ci.loc[i].addr), "127.0.0.%d:%d", i + 1, 9600 + i);
    }
    return ci;
}

static void check_ci_eq(const struct chunk_info *a, const struct chunk_info *b)
{
    ck_assert(a->index == b->index && a->chunk_id == b->chunk_id);
    ck_assert_uint_eq(a->version, b->version);
    ck_assert_uint_eq(a->prev_version, b->prev_version);
    ck_assert_uint_eq(a->nloc, b->nloc);
    for (int i = 0; i < a->nloc; i++) {
        ck_assert(a->loc[i].server_id == b->loc[i].server_id);
        ck_assert_str_eq(a->loc[i].addr, b->loc[i].addr);
    }
}

START_TEST(test_chunk_info_roundtrip)
{
    int counts[] = {0, 1, 3, CAIRN_MAX_LOCS};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        struct chunk_info ci = sample_ci(counts[k]), g;
        struct wbuf b;
        wbuf_init(&b);
        proto_put_chunk_info(&b, &ci);
        proto_put_chunk_info(&b, &ci); /* two in a row, as in a LOCATE reply */
        ck_assert_int_eq(b.err, 0);
        struct rcur c;
        rcur_init(&c, b.data, b.len);
        proto_get_chunk_info(&c, &g);
        check_ci_eq(&ci, &g);
        proto_get_chunk_info(&c, &g);
        check_ci_eq(&ci, &g);
        ck_assert_int_eq(rcur_done(&c), 0);
        /* every truncation of one is an error */
        for (size_t n = 0; n < b.len / 2; n++) {
            rcur_init(&c, b.data, n);
            proto_get_chunk_info(&c, &g);
            if (c.err != -EBADMSG) ck_abort_msg("chunkinfo(%d) cut at %zu accepted", counts[k], n);
        }
        wbuf_free(&b);
    }

    /* the longest address fits */
    struct chunk_info ci = sample_ci(1), g;
    memset(ci.loc[0].addr, 'h', CAIRN_ADDR_MAX);
    ci.loc[0].addr[CAIRN_ADDR_MAX] = '\0';
    struct wbuf b;
    wbuf_init(&b);
    proto_put_chunk_info(&b, &ci);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    proto_get_chunk_info(&c, &g);
    ck_assert_int_eq(rcur_done(&c), 0);
    check_ci_eq(&ci, &g);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_chunk_info_too_many_locs_refused)
{
    /* hand-made: nloc = CAIRN_MAX_LOCS + 1 with that many well-formed locations behind it */
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, 1);
    wbuf_put_u64(&b, 2);
    wbuf_put_u32(&b, 3);
    wbuf_put_u32(&b, 2);
    wbuf_put_u8(&b, CAIRN_MAX_LOCS + 1);
    for (int i = 0; i < CAIRN_MAX_LOCS + 1; i++) {
        wbuf_put_u64(&b, (uint64_t)i + 1);
        wbuf_put_str(&b, "127.0.0.1:1", 11);
    }
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    struct chunk_info g;
    proto_get_chunk_info(&c, &g);
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_uint_le(g.nloc, CAIRN_MAX_LOCS);

    /* nloc 255 */
    b.data[24] = 255;
    rcur_init(&c, b.data, b.len);
    proto_get_chunk_info(&c, &g);
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_uint_le(g.nloc, CAIRN_MAX_LOCS);
    wbuf_free(&b);

    /* the encoder never writes more than CAIRN_MAX_LOCS */
    struct chunk_info ci = sample_ci(CAIRN_MAX_LOCS);
    ci.nloc = 200;
    wbuf_init(&b);
    proto_put_chunk_info(&b, &ci);
    ck_assert_uint_eq(b.data[24], CAIRN_MAX_LOCS);
    rcur_init(&c, b.data, b.len);
    proto_get_chunk_info(&c, &g);
    ck_assert_int_eq(rcur_done(&c), 0);
    ck_assert_uint_eq(g.nloc, CAIRN_MAX_LOCS);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_chunk_info_long_address_refused)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, 1);
    wbuf_put_u64(&b, 2);
    wbuf_put_u32(&b, 3);
    wbuf_put_u32(&b, 2);
    wbuf_put_u8(&b, 1);
    wbuf_put_u64(&b, 5);
    char addr[CAIRN_ADDR_MAX + 2];
    memset(addr, 'a', sizeof(addr));
    wbuf_put_str(&b, addr, CAIRN_ADDR_MAX + 1);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    struct chunk_info g;
    proto_get_chunk_info(&c, &g);
    ck_assert_int_eq(c.err, -EBADMSG);
    ck_assert_uint_le(strlen(g.loc[0].addr), CAIRN_ADDR_MAX);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_chunkfile_header_and_name)
{
    /* the layout the chunk store writes and local reads read: magic, id, version at
     * CHUNKFILE_VERSION_OFF, length, flags, block size, little endian */
    struct chunkfile_hdr a = {.id = 0x1122334455667788ull,
                              .version = 7,
                              .length = 123456,
                              .flags = CHUNKFILE_FLAG_BAD,
                              .block = 65536};
    uint8_t h[CHUNKFILE_HDR_SIZE];
    memset(h, 0xee, sizeof(h));
    chunkfile_hdr_put(h, &a);
    ck_assert_mem_eq(h, "CARCCHNK", 8);
    ck_assert_int_eq(h[CHUNKFILE_VERSION_OFF], 7);
    ck_assert_int_eq(h[CHUNKFILE_HDR_SIZE - 1], 0);
    struct chunkfile_hdr b;
    ck_assert_int_eq(chunkfile_hdr_get(h, &b), 0);
    ck_assert_uint_eq(b.id, a.id);
    ck_assert_uint_eq(b.version, 7);
    ck_assert_uint_eq(b.length, 123456);
    ck_assert_uint_eq(b.flags, CHUNKFILE_FLAG_BAD);
    ck_assert_uint_eq(b.block, 65536);
    h[3] ^= 1;
    ck_assert_int_eq(chunkfile_hdr_get(h, &b), -EUCLEAN);
    char path[128];
    chunkfile_path("/d", 0xab01ull, 3, path, sizeof(path));
    ck_assert_str_eq(path, "/d/01/000000000000ab01_3.chk");
}
END_TEST

START_TEST(test_proto_type_names)
{
    ck_assert_str_eq(proto_type_name(MSG_LOOKUP), "LOOKUP");
    ck_assert_str_eq(proto_type_name(MSG_LOOKUP | WIRE_REPLY_BIT), "LOOKUP");
    ck_assert_str_eq(proto_type_name(MSG_CHK_INFO), "CHK_INFO");
    ck_assert_str_eq(proto_type_name(MSG_CS_REGISTER), "CS_REGISTER");
    /* every request type has its name (logs, and the client's per-type counters) */
    for (unsigned t = 1; t < 128; t++) {
        const char *n = proto_type_name((uint16_t)t);
        if (strcmp(n, "?")) ck_assert_uint_gt(strlen(n), 1);
    }
    ck_assert_str_eq(proto_type_name(MSG_ATIME), "ATIME");
    ck_assert_str_eq(proto_type_name(MSG_CLIENT_STATS), "CLIENT_STATS");
    ck_assert_str_eq(proto_type_name(MSG_SNAP_READ), "SNAP_READ");
    ck_assert_str_eq(proto_type_name(0), "?");
    ck_assert_str_eq(proto_type_name(0x7fff), "?");
}
END_TEST

/* --- conf ------------------------------------------------------------------------------ */

struct tcfg {
    char name[CONF_STR_MAX];
    int count;
    uint64_t size;
    int on;
    int flag;
};

#define O(f) offsetof(struct tcfg, f)
static const struct conf_opt topts[] = {
    {"name", CONF_STR, "dflt", O(name), "a string"}, {"count", CONF_INT, "7", O(count), "an int"},
    {"size", CONF_U64, "64M", O(size), "a size"},    {"on", CONF_BOOL, "yes", O(on), "a bool"},
    {"flag", CONF_FLAG, NULL, O(flag), "a flag"},    {NULL, 0, NULL, 0, NULL},
};
#undef O

START_TEST(test_conf_defaults_and_set)
{
    struct tcfg c;
    memset(&c, 0x55, sizeof(c));
    ck_assert_int_eq(conf_defaults(topts, &c), 0);
    ck_assert_str_eq(c.name, "dflt");
    ck_assert_int_eq(c.count, 7);
    ck_assert(c.size == (64ull << 20));
    ck_assert_int_eq(c.on, 1);
    ck_assert_int_eq(c.flag, 0);

    ck_assert_int_eq(conf_set(topts, &c, "nosuch", "1"), -ENOENT);
    ck_assert_int_eq(conf_set(topts, &c, "", "1"), -ENOENT);
    ck_assert_int_eq(conf_set(topts, &c, "Count", "1"), -ENOENT); /* names are exact */

    ck_assert_int_eq(conf_set(topts, &c, "count", "-42"), 0);
    ck_assert_int_eq(c.count, -42);
    const char *bad_ints[] = {"", "abc", "12x", "1.5", "99999999999", "-99999999999", " "};
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++)
        if (conf_set(topts, &c, "count", bad_ints[i]) != -EINVAL)
            ck_abort_msg("int '%s' accepted", bad_ints[i]);
    ck_assert_int_eq(c.count, -42); /* untouched by refused values */

    const char *yes[] = {"1", "true", "YES", "On"}, *no[] = {"0", "false", "no", "OFF"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(conf_set(topts, &c, "on", no[i]), 0);
        ck_assert_int_eq(c.on, 0);
        ck_assert_int_eq(conf_set(topts, &c, "on", yes[i]), 0);
        ck_assert_int_eq(c.on, 1);
    }
    ck_assert_int_eq(conf_set(topts, &c, "on", "maybe"), -EINVAL);
    ck_assert_int_eq(conf_set(topts, &c, "on", ""), -EINVAL);

    ck_assert_int_eq(conf_set(topts, &c, "name", "x y"), 0);
    ck_assert_str_eq(c.name, "x y");
    char longs[CONF_STR_MAX + 1];
    memset(longs, 's', CONF_STR_MAX);
    longs[CONF_STR_MAX] = '\0';
    ck_assert_int_eq(conf_set(topts, &c, "name", longs), -EINVAL);
    longs[CONF_STR_MAX - 1] = '\0';
    ck_assert_int_eq(conf_set(topts, &c, "name", longs), 0);
    ck_assert_uint_eq(strlen(c.name), CONF_STR_MAX - 1);
}
END_TEST

START_TEST(test_conf_size_suffixes)
{
    struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},
        {"4096", 4096},
        {"4k", 4ull << 10},
        {"4K", 4ull << 10},
        {"64M", 64ull << 20},
        {"64m", 64ull << 20},
        {"8G", 8ull << 30},
        {"2T", 2ull << 40},
        {"1KiB", 1ull << 10},
        {"3MB", 3ull << 20},
        {"18446744073709551615", UINT64_MAX},
        {"16777215T", 16777215ull << 40},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t v = 1;
        if (conf_parse_size(good[i].s, &v) != 0 || v != good[i].v)
            ck_abort_msg("size '%s' gave %llu", good[i].s, (unsigned long long)v);
    }
    const char *bad[] = {"",
                         "M",
                         "-1",
                         " 1",
                         "1 M",
                         "1X",
                         "1.5G",
                         "12Q",
                         "1MM",
                         "0x10",
                         "18446744073709551616",
                         "16777216T"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 77;
        if (conf_parse_size(bad[i], &v) != -EINVAL) ck_abort_msg("size '%s' accepted", bad[i]);
        ck_assert(v == 77);
    }
    struct tcfg c;
    conf_defaults(topts, &c);
    ck_assert_int_eq(conf_set(topts, &c, "size", "1G"), 0);
    ck_assert(c.size == (1ull << 30));
    ck_assert_int_eq(conf_set(topts, &c, "size", "lots"), -EINVAL);
    ck_assert(c.size == (1ull << 30));
}
END_TEST

START_TEST(test_conf_file_and_args)
{
    char path[] = "/tmp/cairn-conf-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "# a comment\n"
                       "\n"
                       "  name = hello world   # trailing comment\n"
                       "count=12\n"
                       "size = 2G\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct tcfg c;
    conf_defaults(topts, &c);
    char err[256] = "";
    ck_assert_int_eq(conf_load_file(topts, &c, path, err, sizeof(err)), 0);
    ck_assert_str_eq(c.name, "hello world");
    ck_assert_int_eq(c.count, 12);
    ck_assert(c.size == (2ull << 30));

    /* command line on top of the file; non-options stay in argv */
    char a0[] = "prog", a1[] = "--config", a3[] = "--count=5", a4[] = "pos1", a5[] = "--size",
         a6[] = "1K", a7[] = "--flag", a8[] = "pos2";
    char *argv[] = {a0, a1, path, a3, a4, a5, a6, a7, a8, NULL};
    int argc = 9, help = 0;
    conf_defaults(topts, &c);
    ck_assert_int_eq(conf_parse_args(topts, &c, &argc, argv, &help, err, sizeof(err)), 0);
    ck_assert_int_eq(help, 0);
    ck_assert_str_eq(c.name, "hello world");
    ck_assert_int_eq(c.count, 5);
    ck_assert(c.size == 1024);
    ck_assert_int_eq(c.flag, 1);
    ck_assert_int_eq(argc, 3);
    ck_assert_str_eq(argv[1], "pos1");
    ck_assert_str_eq(argv[2], "pos2");

    char b1[] = "--nosuch=1";
    char *argv2[] = {a0, b1, NULL};
    argc = 2;
    ck_assert_int_eq(conf_parse_args(topts, &c, &argc, argv2, &help, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "nosuch"));
    char b2[] = "--count=zz";
    char *argv3[] = {a0, b2, NULL};
    argc = 2;
    ck_assert_int_eq(conf_parse_args(topts, &c, &argc, argv3, &help, err, sizeof(err)), -EINVAL);

    /* file errors name the line */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("count = 1\nbogus = 2\n", f);
    fclose(f);
    ck_assert_int_eq(conf_load_file(topts, &c, path, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, ":2:"));
    f = fopen(path, "w");
    fputs("count = many\n", f);
    fclose(f);
    ck_assert_int_eq(conf_load_file(topts, &c, path, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, ":1:"));
    f = fopen(path, "w");
    fputs("just words\n", f);
    fclose(f);
    ck_assert_int_eq(conf_load_file(topts, &c, path, err, sizeof(err)), -EINVAL);
    f = fopen(path, "w");
    fputs("flag = 1\n", f); /* command-line only */
    fclose(f);
    ck_assert_int_eq(conf_load_file(topts, &c, path, err, sizeof(err)), -ENOENT);
    unlink(path);
    ck_assert_int_eq(conf_load_file(topts, &c, path, err, sizeof(err)), -ENOENT);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_codec");
    TCase *t = tcase_create("codec");
    tcase_add_test(t, test_roundtrip_every_type);
    tcase_add_test(t, test_encoding_is_little_endian);
    tcase_add_test(t, test_wbuf_grows_and_resets);
    tcase_add_test(t, test_put_str_over_u16_sets_err);
    tcase_add_test(t, test_rcur_past_end_sets_err_and_returns_zeros);
    tcase_add_test(t, test_rcur_view_and_done);
    tcase_add_test(t, test_rcur_str_bounds);
    tcase_add_test(t, test_rcur_bytes_bounds);
    suite_add_tcase(s, t);

    t = tcase_create("wire");
    tcase_add_test(t, test_wire_header_roundtrip_and_layout);
    tcase_add_test(t, test_wire_header_bad_magic);
    tcase_add_test(t, test_wire_header_bad_version);
    tcase_add_test(t, test_wire_header_bad_checksum);
    tcase_add_test(t, test_wire_header_oversized_frame);
    tcase_add_test(t, test_wire_send_recv_over_socketpair);
    tcase_add_test(t, test_wire_truncated_header_and_payload);
    suite_add_tcase(s, t);

    t = tcase_create("proto");
    tcase_add_test(t, test_attr_roundtrip);
    tcase_add_test(t, test_chunk_info_roundtrip);
    tcase_add_test(t, test_chunk_info_too_many_locs_refused);
    tcase_add_test(t, test_chunk_info_long_address_refused);
    tcase_add_test(t, test_proto_type_names);
    tcase_add_test(t, test_chunkfile_header_and_name);
    suite_add_tcase(s, t);

    t = tcase_create("conf");
    tcase_add_test(t, test_conf_defaults_and_set);
    tcase_add_test(t, test_conf_size_suffixes);
    tcase_add_test(t, test_conf_file_and_args);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
