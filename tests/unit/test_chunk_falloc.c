/* test_chunk_falloc.c - fallocate of chunk ranges (chunk/cstore_falloc.c): a punch or zero
 * range reads as zeros with valid checksums (in the cache and after the store is opened again
 * from disk), the bytes around it intact, partial blocks at both edges; a punch frees the disk
 * blocks and leaves a hole SEEK_HOLE finds; zero range keeps them allocated; reserve allocates
 * without changing the data or the chunk's length, unreserve frees only what lies past the
 * data; a bad edge block refuses the request and changes nothing; version rules as for a
 * write; bad arguments are -EINVAL. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cksum.h"
#include "cstore.h"
#include "cstore_priv.h"
#include "proto.h"
#include "unit_main.h"

#define B CKSUM_BLOCK
#define CHUNK (4u << 20)
static char dir[256];
static struct cstore cs;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-cfalloc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *d[] = {dir};
    ck_assert_int_eq(cstore_open(&cs, d, 1, CHUNK), 0);
}

static void teardown(void)
{
    cstore_close(&cs);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
    }
}

static void reopen(void)
{
    cstore_close(&cs);
    char *d[] = {dir};
    ck_assert_int_eq(cstore_open(&cs, d, 1, CHUNK), 0);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 8) + 1);
}

/* The whole chunk id at ver (verifying every checksum the store returns) into out; its
 * length. */
static uint32_t read_all(uint64_t id, uint32_t ver, uint8_t *out)
{
    uint32_t total = 0, clen = 0;
    static uint8_t buf[(1u << 20) + 2 * B];
    uint64_t cks[(1u << 20) / B + 2];
    for (uint32_t off = 0; off == 0 || off < clen; off += 1u << 20) {
        uint32_t doff, nb, dl, bad;
        ck_assert_int_eq(
            cstore_read(&cs, id, ver, off, 1u << 20, buf, &doff, &clen, &nb, cks, &dl, &bad, 0), 0);
        for (uint32_t i = 0; i < nb; i++) {
            uint32_t s = i * B, n = dl - s < B ? dl - s : B;
            ck_assert_uint_eq(cksum_xxh3(buf + s, n), cks[i]);
        }
        if (off < clen) {
            memcpy(out + off, buf + (off - doff), dl - (off - doff));
            total = off + dl - (off - doff);
        }
        if (clen == 0) break;
    }
    ck_assert_uint_eq(total, clen);
    return clen;
}

static uint64_t disk_bytes(uint64_t id)
{
    uint64_t a = 0;
    ck_assert_int_eq(cstore_alloc(&cs, id, &a), 0);
    return a;
}

START_TEST(test_punch_reads_zeros_and_frees)
{
    const uint32_t len = 20 * B + 1000; /* the last block partial */
    static uint8_t a[20 * B + 1000], want[20 * B + 1000], got[CHUNK];
    fill(a, len, 3);
    uint32_t clen;
    ck_assert_int_eq(cstore_write(&cs, 1, 1, 0, 0, a, len, 0, &clen), 0);
    uint64_t before = disk_bytes(1);
    /* from inside block 2 to inside block 15: two partial edges, 12 whole blocks */
    const uint32_t s = 2 * B + 100, e = 15 * B + 5;
    ck_assert_int_eq(cstore_falloc(&cs, 1, 2, 1, s, e - s, CHK_FALLOC_PUNCH, &clen), 0);
    ck_assert_uint_eq(clen, len);
    memcpy(want, a, len);
    memset(want + s, 0, e - s);
    ck_assert_uint_eq(read_all(1, 2, got), len);
    ck_assert_mem_eq(got, want, len);
    uint64_t after = disk_bytes(1);
    ck_assert_msg(before - after >= 12 * B, "disk bytes %llu -> %llu after punching 12 blocks",
                  (unsigned long long)before, (unsigned long long)after);
    uint32_t h = 0;
    ck_assert_int_eq(cstore_seek(&cs, 1, 2, s, SEEK_HOLE, &h), 0);
    ck_assert_uint_eq(h, 3 * B);
    ck_assert_int_eq(cstore_seek(&cs, 1, 2, 3 * B, SEEK_DATA, &h), 0);
    ck_assert_uint_eq(h, 15 * B);
    /* to the end of the chunk's data: the partial last block becomes zeros too */
    ck_assert_int_eq(cstore_falloc(&cs, 1, 2, 2, 18 * B, 3 * B, CHK_FALLOC_PUNCH, &clen), 0);
    ck_assert_uint_eq(clen, len);
    memset(want + 18 * B, 0, len - 18 * B);
    reopen(); /* the checksums on disk describe the data */
    ck_assert_uint_eq(read_all(1, 2, got), len);
    ck_assert_mem_eq(got, want, len);
    uint32_t bad = 99;
    ck_assert_int_eq(cstore_scrub_chunk(&cs, 1, 2, &bad, NULL, NULL), 0);
}
END_TEST

START_TEST(test_zero_range_keeps_space)
{
    const uint32_t len = 10 * B;
    static uint8_t a[10 * B], want[10 * B], got[CHUNK];
    fill(a, len, 5);
    uint32_t clen;
    ck_assert_int_eq(cstore_write(&cs, 2, 1, 0, 0, a, len, 0, &clen), 0);
    uint64_t before = disk_bytes(2);
    const uint32_t s = B - 1, e = 8 * B + 1;
    ck_assert_int_eq(cstore_falloc(&cs, 2, 1, 1, s, e - s, CHK_FALLOC_ZERO, &clen), 0);
    memcpy(want, a, len);
    memset(want + s, 0, e - s);
    ck_assert_uint_eq(read_all(2, 1, got), len);
    ck_assert_mem_eq(got, want, len);
    ck_assert_uint_ge(disk_bytes(2), before);
    /* inside one block */
    ck_assert_int_eq(cstore_falloc(&cs, 2, 1, 1, 9 * B + 10, 20, CHK_FALLOC_ZERO, &clen), 0);
    memset(want + 9 * B + 10, 0, 20);
    reopen();
    ck_assert_uint_eq(read_all(2, 1, got), len);
    ck_assert_mem_eq(got, want, len);
}
END_TEST

START_TEST(test_reserve_and_unreserve)
{
    static uint8_t a[3 * B], got[CHUNK];
    fill(a, sizeof(a), 7);
    uint32_t clen;
    ck_assert_int_eq(cstore_write(&cs, 3, 1, 0, 0, a, sizeof(a), 0, &clen), 0);
    uint64_t before = disk_bytes(3);
    ck_assert_int_eq(cstore_falloc(&cs, 3, 2, 1, 0, 2u << 20, CHK_FALLOC_RESERVE, &clen), 0);
    ck_assert_uint_eq(clen, sizeof(a)); /* the length does not move */
    ck_assert_uint_ge(disk_bytes(3), before + (2u << 20) - sizeof(a));
    ck_assert_uint_eq(read_all(3, 2, got), sizeof(a));
    ck_assert_mem_eq(got, a, sizeof(a));
    /* unreserve of the whole range frees what lies past the data only */
    ck_assert_int_eq(cstore_falloc(&cs, 3, 2, 2, 0, 2u << 20, CHK_FALLOC_UNRESERVE, &clen), 0);
    ck_assert_uint_le(disk_bytes(3), before + 4096);
    ck_assert_uint_eq(read_all(3, 2, got), sizeof(a));
    ck_assert_mem_eq(got, a, sizeof(a));
    /* a new chunk (prev 0) is created by a reservation */
    ck_assert_int_eq(cstore_falloc(&cs, 4, 1, 0, 0, B, CHK_FALLOC_RESERVE, &clen), 0);
    ck_assert_uint_eq(clen, 0);
    ck_assert_uint_ge(disk_bytes(4), B);
}
END_TEST

START_TEST(test_bad_edge_block_changes_nothing)
{
    static uint8_t a[6 * B], got[CHUNK];
    fill(a, sizeof(a), 9);
    uint32_t clen, ver;
    ck_assert_int_eq(cstore_write(&cs, 5, 1, 0, 0, a, sizeof(a), 0, &clen), 0);
    char path[700];
    ck_assert_int_eq(cstore_path(&cs, 5, path, sizeof(path), &ver), 0);
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    fseek(f, CSTORE_DATA_OFF + 4 * B + 3, SEEK_SET);
    fputc(a[4 * B + 3] ^ 0xff, f);
    fclose(f);
    reopen();
    /* the punch's last block (4) is partial and bad: refused before anything changes */
    ck_assert_int_eq(cstore_falloc(&cs, 5, 1, 1, B / 2, 4 * B, CHK_FALLOC_PUNCH, &clen), -EUCLEAN);
    /* block 1..3 still hold their data with valid checksums */
    uint32_t doff, nb, dl, bad;
    static uint8_t buf[4 * B];
    uint64_t cks[8];
    ck_assert_int_eq(cstore_read(&cs, 5, 1, B, 3 * B, buf, &doff, &clen, &nb, cks, &dl, &bad, 0),
                     0);
    ck_assert_mem_eq(buf, a + B, 3 * B);
    (void)got;
}
END_TEST

START_TEST(test_versions_and_arguments)
{
    static uint8_t a[2 * B];
    fill(a, sizeof(a), 11);
    uint32_t clen;
    ck_assert_int_eq(cstore_write(&cs, 6, 3, 0, 0, a, sizeof(a), 0, &clen), 0);
    ck_assert_int_eq(cstore_falloc(&cs, 6, 2, 1, 0, B, CHK_FALLOC_PUNCH, &clen), -ESTALE);
    ck_assert_int_eq(cstore_falloc(&cs, 7, 2, 1, 0, B, CHK_FALLOC_PUNCH, &clen), -ENOENT);
    ck_assert_int_eq(cstore_falloc(&cs, 6, 4, 3, 0, 0, CHK_FALLOC_PUNCH, &clen), -EINVAL);
    ck_assert_int_eq(cstore_falloc(&cs, 6, 4, 3, CHUNK - 10, 11, CHK_FALLOC_ZERO, &clen), -EINVAL);
    ck_assert_int_eq(cstore_falloc(&cs, 6, 4, 3, 0, B, 9, &clen), -EINVAL);
    uint32_t ver = 0, len = 0;
    ck_assert_int_eq(cstore_info(&cs, 6, &ver, &len), 0);
    ck_assert_uint_eq(ver, 3); /* refusals moved nothing */
    ck_assert_int_eq(cstore_falloc(&cs, 6, 4, 3, 0, B, CHK_FALLOC_PUNCH, &clen), 0);
    ck_assert_int_eq(cstore_info(&cs, 6, &ver, &len), 0);
    ck_assert_uint_eq(ver, 4);
    ck_assert_uint_eq(len, 2 * B);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk_falloc");
    TCase *t = tcase_create("falloc");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_punch_reads_zeros_and_frees);
    tcase_add_test(t, test_zero_range_keeps_space);
    tcase_add_test(t, test_reserve_and_unreserve);
    tcase_add_test(t, test_bad_edge_block_changes_nothing);
    tcase_add_test(t, test_versions_and_arguments);
    suite_add_tcase(s, t);
    return unit_run(s);
}
