/* test_chunk_store.c - the on-disk chunk store (chunk/cstore.c): block checksum maths,
 * write/read, partial-block read-modify-write, extend and shrink, version moves and stale
 * refusal, corruption detection on read and by a scrub pass, header consistency on reopen. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cksum.h"
#include "cstore.h"
#include "unit_main.h"

#define B CKSUM_BLOCK
static char dir[256];
static struct cstore cs;
static uint8_t *rbuf;
static uint64_t rcks[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-cstore-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *d[] = {dir};
    ck_assert_int_eq(cstore_open(&cs, d, 1, 4u << 20), 0);
    rbuf = malloc((1u << 20) + 2 * B);
}

static void teardown(void)
{
    cstore_close(&cs);
    free(rbuf);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
    }
}

/* Read [off, off+len) verifying the returned checksums; copies into out. */
static int rd(uint64_t id, uint32_t ver, uint32_t off, uint32_t len, uint8_t *out, uint32_t *got)
{
    uint32_t doff, clen, nb, dl, bad;
    int rc = cstore_read(&cs, id, ver, off, len, rbuf, &doff, &clen, &nb, rcks, &dl, &bad, 0);
    if (rc) return rc;
    ck_assert_uint_eq(doff % B, 0);
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t s = i * B, n = dl - s < B ? dl - s : B;
        ck_assert_uint_eq(cksum_xxh3(rbuf + s, n), rcks[i]);
    }
    uint32_t end = off + len < clen ? off + len : clen;
    *got = end > off ? end - off : 0;
    if (*got) memcpy(out, rbuf + (off - doff), *got);
    return 0;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
}

START_TEST(test_block_checksum_maths)
{
    uint8_t *p = calloc(1, 3 * B);
    fill(p, 3 * B, 1);
    uint64_t c[3];
    ck_assert_uint_eq(cksum_blocks(p, 2 * B + 10, c), 3);
    ck_assert_uint_eq(c[0], cksum_xxh3(p, B));
    ck_assert_uint_eq(c[2], cksum_xxh3(p + 2 * B, 10));
    ck_assert_uint_eq(cksum_nblocks(0), 0);
    ck_assert_uint_eq(cksum_nblocks(B), 1);
    ck_assert_uint_eq(cksum_nblocks(B + 1), 2);
    free(p);
}
END_TEST

START_TEST(test_write_read)
{
    uint8_t a[200000], b[200000];
    fill(a, sizeof(a), 3);
    uint32_t len, got;
    ck_assert_int_eq(cstore_write(&cs, 1, 1, 0, 0, a, sizeof(a), 0, &len), 0);
    ck_assert_uint_eq(len, sizeof(a));
    ck_assert_int_eq(rd(1, 1, 0, sizeof(a), b, &got), 0);
    ck_assert_uint_eq(got, sizeof(a));
    ck_assert_mem_eq(a, b, sizeof(a));
    ck_assert_int_eq(rd(1, 1, 150000, 100000, b, &got), 0);
    ck_assert_uint_eq(got, 50000);
    ck_assert_mem_eq(a + 150000, b, 50000);
    ck_assert_int_eq(rd(2, 1, 0, 10, b, &got), -ENOENT);
    ck_assert_int_eq(cstore_write(&cs, 1, 1, 0, (4u << 20) - 1, a, 2, 0, &len), -EINVAL);
}
END_TEST

START_TEST(test_partial_block_rmw)
{
    uint8_t a[3 * B], b[3 * B];
    fill(a, sizeof(a), 5);
    uint32_t len, got;
    ck_assert_int_eq(cstore_write(&cs, 3, 1, 0, 0, a, sizeof(a), 0, &len), 0);
    ck_assert_int_eq(cstore_write(&cs, 3, 1, 1, B - 3, "abcdef", 6, 0, &len), 0);
    memcpy(a + B - 3, "abcdef", 6);
    ck_assert_int_eq(cstore_write(&cs, 3, 1, 1, 2 * B + 5, "Z", 1, 0, &len), 0);
    a[2 * B + 5] = 'Z';
    ck_assert_uint_eq(len, 3 * B);
    ck_assert_int_eq(rd(3, 1, 0, sizeof(a), b, &got), 0);
    ck_assert_mem_eq(a, b, sizeof(a));
}
END_TEST

START_TEST(test_extend_and_shrink)
{
    uint8_t a[1000], b[4 * B];
    fill(a, sizeof(a), 7);
    uint32_t len, got, ver;
    ck_assert_int_eq(cstore_write(&cs, 4, 1, 0, 0, a, 1000, 0, &len), 0);
    /* write past a gap: the gap reads as zeros, checksums hold */
    ck_assert_int_eq(cstore_write(&cs, 4, 1, 1, 3 * B + 10, a, 100, 0, &len), 0);
    ck_assert_uint_eq(len, 3 * B + 110);
    ck_assert_int_eq(rd(4, 1, 0, 4 * B, b, &got), 0);
    ck_assert_uint_eq(got, 3 * B + 110);
    ck_assert_mem_eq(b, a, 1000);
    for (uint32_t i = 1000; i < 3 * B + 10; i++)
        ck_assert_uint_eq(b[i], 0);
    ck_assert_mem_eq(b + 3 * B + 10, a, 100);
    /* shrink into block 0, then extend with zeros */
    ck_assert_int_eq(cstore_truncate(&cs, 4, 1, 1, 500), 0);
    ck_assert_int_eq(cstore_info(&cs, 4, &ver, &len), 0);
    ck_assert_uint_eq(len, 500);
    ck_assert_int_eq(cstore_truncate(&cs, 4, 1, 1, B + 7), 0);
    ck_assert_int_eq(rd(4, 1, 0, 4 * B, b, &got), 0);
    ck_assert_uint_eq(got, B + 7);
    ck_assert_mem_eq(b, a, 500);
    for (uint32_t i = 500; i < B + 7; i++)
        ck_assert_uint_eq(b[i], 0);
}
END_TEST

START_TEST(test_version_move_and_stale)
{
    uint32_t len, got, ver;
    uint8_t b[16];
    ck_assert_int_eq(cstore_write(&cs, 5, 2, 0, 0, "one", 3, 0, &len), 0);
    ck_assert_int_eq(cstore_write(&cs, 5, 3, 2, 3, "two", 3, 0, &len), 0);
    ck_assert_int_eq(cstore_info(&cs, 5, &ver, &len), 0);
    ck_assert_uint_eq(ver, 3);
    ck_assert_int_eq(rd(5, 2, 0, 6, b, &got), -ESTALE);
    ck_assert_int_eq(rd(5, 3, 0, 6, b, &got), 0);
    ck_assert_mem_eq(b, "onetwo", 6);
    ck_assert_int_eq(cstore_write(&cs, 5, 2, 1, 0, "x", 1, 0, &len), -ESTALE);
    /* a newer version read (a lease that wrote nothing yet) sees the held data */
    ck_assert_int_eq(rd(5, 4, 0, 6, b, &got), 0);
    ck_assert_mem_eq(b, "onetwo", 6);
    /* a holder that missed an empty lease (held 3, prev 4) moves on to the new version */
    ck_assert_int_eq(cstore_write(&cs, 5, 5, 4, 0, "x", 1, 0, &len), 0);
    ck_assert_int_eq(cstore_info(&cs, 5, &ver, &len), 0);
    ck_assert_uint_eq(ver, 5);
    ck_assert_int_eq(cstore_write(&cs, 5, 4, 3, 0, "x", 1, 0, &len), -ESTALE);
    ck_assert_int_eq(cstore_write(&cs, 6, 2, 1, 0, "x", 1, 0, &len), -ENOENT);
    ck_assert_int_eq(cstore_delete(&cs, 5, 2), -ESTALE);
    ck_assert_int_eq(cstore_delete(&cs, 5, 0), 0);
    ck_assert_int_eq(cstore_info(&cs, 5, &ver, &len), -ENOENT);
}
END_TEST

static void flip(uint64_t id, long pos)
{
    char path[700];
    uint32_t ver;
    ck_assert_int_eq(cstore_path(&cs, id, path, sizeof(path), &ver), 0);
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    fseek(f, pos, SEEK_SET);
    int c = fgetc(f);
    fseek(f, pos, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
}

START_TEST(test_flipped_byte_detected)
{
    uint8_t a[3 * B], b[3 * B];
    fill(a, sizeof(a), 9);
    uint32_t len, got, bad = 99;
    ck_assert_int_eq(cstore_write(&cs, 7, 1, 0, 0, a, sizeof(a), 0, &len), 0);
    ck_assert_int_eq(cstore_write(&cs, 8, 1, 0, 0, a, sizeof(a), 0, &len), 0);
    flip(7, CSTORE_DATA_OFF + 2 * B + 17);
    ck_assert_int_eq(rd(7, 1, 0, B, b, &got), 0);
    ck_assert_int_eq(rd(7, 1, 2 * B, 10, b, &got), -EUCLEAN);
    /* a partial write over the bad block refuses to bless it */
    ck_assert_int_eq(cstore_write(&cs, 7, 1, 1, 2 * B + 1, "q", 1, 0, &len), -EUCLEAN);
    ck_assert_int_eq(cstore_scrub_chunk(&cs, 8, 1, &bad, NULL, NULL), 0);
    ck_assert_int_eq(cstore_scrub_chunk(&cs, 7, 1, &bad, NULL, NULL), -EUCLEAN);
    ck_assert_uint_eq(bad, 2);
    /* marked bad: never served again, even the good blocks */
    ck_assert_int_eq(rd(7, 1, 0, B, b, &got), -EUCLEAN);
    ck_assert_int_eq(rd(8, 1, 0, sizeof(a), b, &got), 0);
}
END_TEST

START_TEST(test_header_consistent_after_reopen)
{
    uint8_t a[100000], b[100000];
    fill(a, sizeof(a), 11);
    uint32_t len, got, ver;
    ck_assert_int_eq(cstore_write(&cs, 9, 4, 0, 0, a, sizeof(a), 1, &len), 0);
    ck_assert_int_eq(cstore_fsync(&cs, 9, 4), 0);
    cstore_close(&cs);
    char *d[] = {dir};
    ck_assert_int_eq(cstore_open(&cs, d, 1, 4u << 20), 0);
    ck_assert_int_eq(cstore_info(&cs, 9, &ver, &len), 0);
    ck_assert_uint_eq(ver, 4);
    ck_assert_uint_eq(len, sizeof(a));
    ck_assert_int_eq(rd(9, 4, 0, sizeof(a), b, &got), 0);
    ck_assert_mem_eq(a, b, sizeof(a));
    /* a flipped byte in the checksum array: the open chunk keeps serving its good data with the
     * checksums read before; read from disk again (a reopened store) it fails, and the
     * scrubber, which always reads the header from disk, marks the chunk bad */
    flip(9, CSTORE_HDR_SIZE + 3);
    ck_assert_int_eq(rd(9, 4, 0, 10, b, &got), 0);
    ck_assert_mem_eq(a, b, 10);
    cstore_close(&cs);
    ck_assert_int_eq(cstore_open(&cs, d, 1, 4u << 20), 0);
    ck_assert_int_eq(rd(9, 4, 0, 10, b, &got), -EUCLEAN);
    ck_assert_int_eq(rd(9, 4, 0, 10, b, &got), -EUCLEAN);
    uint32_t bad = 99;
    ck_assert_int_eq(cstore_scrub_chunk(&cs, 9, 4, &bad, NULL, NULL), -EUCLEAN);
    ck_assert_uint_eq(bad, 0);
    ck_assert_int_eq(rd(9, 4, B, 10, b, &got), -EUCLEAN);
}
END_TEST

static int count_cb(void *arg, uint64_t id, uint32_t ver)
{
    (void)id;
    (void)ver;
    (*(int *)arg)++;
    return 0;
}

START_TEST(test_foreach_lists_chunks)
{
    uint32_t len;
    for (uint64_t id = 100; id < 110; id++)
        ck_assert_int_eq(cstore_write(&cs, id, 1, 0, 0, "x", 1, 0, &len), 0);
    int n = 0;
    ck_assert_int_eq(cstore_foreach(&cs, count_cb, &n), 0);
    ck_assert_int_eq(n, 10);
}
END_TEST

START_TEST(test_vanished_folder_out_of_service)
{
    char d2[300], cmd[400];
    snprintf(d2, sizeof(d2), "%s/second", dir);
    char d1[300];
    snprintf(d1, sizeof(d1), "%s/first", dir);
    cstore_close(&cs);
    char *d[] = {d1, d2};
    ck_assert_int_eq(cstore_open(&cs, d, 2, 4u << 20), 0);
    uint32_t len, got;
    uint8_t b[8];
    int ok = 0;
    for (uint64_t id = 1; id <= 20; id++)
        ck_assert_int_eq(cstore_write(&cs, id, 1, 0, 0, "abcd", 4, 0, &len), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", d2);
    ck_assert_int_eq(system(cmd), 0);
    /* what the membership thread does every heartbeat: reads of open chunks do not look */
    cstore_check_dirs(&cs);
    for (uint64_t id = 1; id <= 20; id++) {
        int rc = rd(id, 1, 0, 4, b, &got);
        ck_assert(rc == 0 || rc == -ENOENT);
        ok += rc == 0;
    }
    ck_assert_int_eq(cstore_dirs_ok(&cs), 1);
    ck_assert_int_gt(ok, 0);
    /* new chunks go to the folder still in service */
    ck_assert_int_eq(cstore_write(&cs, 50, 1, 0, 0, "new", 3, 0, &len), 0);
    ck_assert_int_eq(rd(50, 1, 0, 3, b, &got), 0);
    ck_assert_mem_eq(b, "new", 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk_store");
    TCase *t = tcase_create("cstore");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_block_checksum_maths);
    tcase_add_test(t, test_write_read);
    tcase_add_test(t, test_partial_block_rmw);
    tcase_add_test(t, test_extend_and_shrink);
    tcase_add_test(t, test_version_move_and_stale);
    tcase_add_test(t, test_flipped_byte_detected);
    tcase_add_test(t, test_header_consistent_after_reopen);
    tcase_add_test(t, test_foreach_lists_chunks);
    tcase_add_test(t, test_vanished_folder_out_of_service);
    suite_add_tcase(s, t);
    return unit_run(s);
}
