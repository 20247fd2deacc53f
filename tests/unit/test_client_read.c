/* test_client_read.c - pure logic of the client's read path (client-fuse/read_path.c,
 * chunk_client.c): splitting a byte range into chunk pieces, the read-ahead window's growth
 * and reset, and the end-to-end check of a CHK_READ reply (a corrupted block is caught, bytes
 * past the chunk's end read as zeros, malformed replies are refused). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cksum.h"
#include "client.h"
#include "unit_main.h"

#define MiB (1ull << 20)

START_TEST(split_stays_inside_chunks)
{
    struct rp_piece p[16];
    /* 3 MiB starting 1 MiB before the end of chunk 0 (chunk size 4 MiB) */
    int n = rp_split(3 * MiB, 3 * MiB, 4 * MiB, CAIRN_IO_MAX, p, 16);
    ck_assert_int_eq(n, 3);
    ck_assert_uint_eq(p[0].index, 0);
    ck_assert_uint_eq(p[0].off, 3 * MiB);
    ck_assert_uint_eq(p[0].len, MiB);
    ck_assert_uint_eq(p[1].index, 1);
    ck_assert_uint_eq(p[1].off, 0);
    ck_assert_uint_eq(p[1].buf_off, MiB);
    ck_assert_uint_eq(p[2].index, 1);
    ck_assert_uint_eq(p[2].off, MiB);
    ck_assert_uint_eq(p[2].len, MiB);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += p[i].len;
    ck_assert_uint_eq(sum, 3 * MiB);
}
END_TEST

START_TEST(split_unaligned_small_pieces)
{
    struct rp_piece p[8];
    int n = rp_split(100, 2 * MiB, 64 * MiB, CAIRN_IO_MAX, p, 8);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(p[0].off, 100);
    ck_assert_uint_eq(p[0].len, MiB);
    ck_assert_uint_eq(p[1].off, MiB + 100);
    ck_assert_uint_eq(p[1].len, MiB);
    /* a piece never crosses a chunk boundary even when it is shorter than max */
    n = rp_split(MiB - 10, 20, MiB, CAIRN_IO_MAX, p, 8);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(p[0].len, 10);
    ck_assert_uint_eq(p[1].index, 1);
    ck_assert_uint_eq(p[1].len, 10);
}
END_TEST

START_TEST(split_reports_short_array)
{
    struct rp_piece p[2];
    ck_assert_int_eq(rp_split(0, 5 * MiB, 64 * MiB, CAIRN_IO_MAX, p, 2), -E2BIG);
    ck_assert_int_eq(rp_split(0, 0, 64 * MiB, CAIRN_IO_MAX, p, 2), 0);
}
END_TEST

START_TEST(readahead_grows_on_sequential_and_resets_on_random)
{
    struct rp_ra ra = {0};
    uint64_t max = 16 * MiB, off = 0, w;
    /* the first reads in order do not open it yet */
    for (int i = 1; i < RP_RA_STREAK; i++, off += 128 << 10)
        ck_assert_uint_eq(rp_ra_update(&ra, off, 128 << 10, max), 0);
    w = rp_ra_update(&ra, off, 128 << 10, max);
    ck_assert_uint_eq(w, CM_RA_MIN);
    uint64_t expect = CM_RA_MIN;
    for (int i = 0; i < 12; i++) {
        off += 128 << 10;
        w = rp_ra_update(&ra, off, 128 << 10, max);
        expect = expect * 2 > max ? max : expect * 2;
        ck_assert_uint_eq(w, expect);
    }
    ck_assert_uint_eq(w, max);
    /* a jump far away is random access: the window closes */
    w = rp_ra_update(&ra, 900 * MiB, 4096, max);
    ck_assert_uint_eq(w, 0);
    w = rp_ra_update(&ra, 10 * MiB, 4096, max);
    ck_assert_uint_eq(w, 0);
    /* and reopens when reads follow on: the read at 10 MiB began the run */
    w = rp_ra_update(&ra, 10 * MiB + 4096, 4096, max);
    ck_assert_uint_eq(w, RP_RA_STREAK > 2 ? 0 : CM_RA_MIN);
    w = rp_ra_update(&ra, 10 * MiB + 8192, 4096, max);
    ck_assert_uint_eq(w, CM_RA_MIN);
}
END_TEST

START_TEST(readahead_stays_shut_for_shuffled_records)
{
    /* 1 MiB records of 128 MiB files in a shuffled order: a chance neighbour now and then
     * (here every other read lands next to the last one) never opens the window */
    struct rp_ra ra = {0};
    uint64_t max = 16 * MiB;
    uint64_t recs[] = {50, 51, 7, 6, 90, 91, 20, 100, 101, 3, 64, 63};
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        ck_assert_uint_eq(rp_ra_update(&ra, recs[i] * MiB, MiB, max), 0);
}
END_TEST

START_TEST(readahead_tolerates_reordered_async_reads)
{
    struct rp_ra ra = {0};
    uint64_t max = 16 * MiB;
    rp_ra_update(&ra, 0, 128 << 10, max);
    rp_ra_update(&ra, 256 << 10, 128 << 10, max); /* overtook its neighbour */
    rp_ra_update(&ra, 128 << 10, 128 << 10, max);
    uint64_t w = rp_ra_update(&ra, 384 << 10, 128 << 10, max);
    ck_assert_uint_gt(w, 0);
}
END_TEST

/* Build a CHK_READ reply the way a chunk server does: blocks from doff up to clen. */
static struct wbuf make_reply(const uint8_t *chunk, uint32_t clen, uint32_t off, uint32_t len)
{
    struct wbuf b;
    wbuf_init(&b);
    uint32_t doff = off / CKSUM_BLOCK * CKSUM_BLOCK;
    uint32_t end = off + len < clen ? off + len : clen;
    end = (end + CKSUM_BLOCK - 1) / CKSUM_BLOCK * CKSUM_BLOCK;
    if (end > clen) end = clen;
    uint32_t dlen = end > doff ? end - doff : 0;
    uint32_t nb = cksum_nblocks(dlen);
    uint64_t *cks = calloc(nb + 1, 8);
    cksum_blocks(chunk + doff, dlen, cks);
    wbuf_put_u32(&b, doff);
    wbuf_put_u32(&b, clen);
    wbuf_put_u32(&b, nb);
    for (uint32_t i = 0; i < nb; i++)
        wbuf_put_u64(&b, cks[i]);
    wbuf_put_bytes(&b, chunk + doff, dlen);
    free(cks);
    return b;
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + (i >> 9));
    return p;
}

START_TEST(verify_accepts_good_reply_and_zero_fills_past_end)
{
    uint32_t clen = 3 * CKSUM_BLOCK + 1000;
    uint8_t *chunk = pattern(clen);
    uint32_t off = CKSUM_BLOCK + 17, len = 3 * CKSUM_BLOCK;
    struct wbuf r = make_reply(chunk, clen, off, len);
    struct cc_read_view v;
    ck_assert_int_eq(cc_verify_read(r.data, r.len, off, len, &v), 0);
    ck_assert_uint_eq(v.chunk_length, clen);
    uint8_t *out = malloc(len);
    memset(out, 0xAA, len);
    cc_copy_view(&v, off, len, out);
    uint32_t valid = clen - off;
    ck_assert_int_eq(memcmp(out, chunk + off, valid), 0);
    for (uint32_t i = valid; i < len; i++)
        ck_assert_uint_eq(out[i], 0);
    free(out);
    free(chunk);
    wbuf_free(&r);
}
END_TEST

START_TEST(verify_catches_a_corrupted_block)
{
    uint32_t clen = 4 * CKSUM_BLOCK;
    uint8_t *chunk = pattern(clen);
    struct wbuf r = make_reply(chunk, clen, 0, clen);
    /* flip one byte in the third block of the data (the tail of the payload) */
    size_t data_start = r.len - clen;
    r.data[data_start + 2 * CKSUM_BLOCK + 5] ^= 0x40;
    struct cc_read_view v;
    ck_assert_int_eq(cc_verify_read(r.data, r.len, 0, clen, &v), -CAIRN_ECORRUPT);
    free(chunk);
    wbuf_free(&r);
}
END_TEST

START_TEST(verify_refuses_malformed_replies)
{
    uint32_t clen = 2 * CKSUM_BLOCK;
    uint8_t *chunk = pattern(clen);
    struct wbuf r = make_reply(chunk, clen, 0, clen);
    struct cc_read_view v;
    /* truncated */
    ck_assert_int_eq(cc_verify_read(r.data, r.len - 1, 0, clen, &v), -EBADMSG);
    /* data not covering the request */
    ck_assert_int_eq(cc_verify_read(r.data, r.len, 0, clen, &v), 0);
    struct wbuf s = make_reply(chunk, clen, CKSUM_BLOCK, 100);
    ck_assert_int_eq(cc_verify_read(s.data, s.len, 0, 100, &v), -EBADMSG);
    /* chunk length smaller than the data */
    le_put32(r.data + 4, CKSUM_BLOCK);
    ck_assert_int_eq(cc_verify_read(r.data, r.len, 0, clen, &v), -EBADMSG);
    free(chunk);
    wbuf_free(&r);
    wbuf_free(&s);
}
END_TEST

Suite *suite(void)
{
    Suite *s = suite_create("client_read");
    TCase *t = tcase_create("core");
    tcase_add_test(t, split_stays_inside_chunks);
    tcase_add_test(t, split_unaligned_small_pieces);
    tcase_add_test(t, split_reports_short_array);
    tcase_add_test(t, readahead_grows_on_sequential_and_resets_on_random);
    tcase_add_test(t, readahead_tolerates_reordered_async_reads);
    tcase_add_test(t, readahead_stays_shut_for_shuffled_records);
    tcase_add_test(t, verify_accepts_good_reply_and_zero_fills_past_end);
    tcase_add_test(t, verify_catches_a_corrupted_block);
    tcase_add_test(t, verify_refuses_malformed_replies);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
