/* test_chunk_store.c - the on-disk chunk store (chunk/cstore.c): block checksum maths,
 * write/read, partial-block read-modify-write, extend and shrink, version moves and stale
 * refusal, corruption detection on read and by a scrub pass, header consistency on reopen.
 * Its open-chunk cache (chunk/cstore_cache.c) and shared read locks: a read after a write,
 * truncate, delete, version move, bad mark or installed replica returns the new state and
 * never a stale checksum mismatch; a flipped data byte of a cached chunk is still caught (data
 * is read from disk every time); the bound holds and an entry evicted while pinned stays
 * usable until unpinned; concurrent readers and a writer on the same chunks (with the cache
 * churning) never see a false corruption; the data served leaves the page cache unless
 * keep_page_cache is set. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cksum.h"
#include "cstore.h"
#include "cstore_priv.h"
#include "unit_main.h"

#define B CKSUM_BLOCK
static char dir[256];
static struct cstore cs;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-cstore-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *d[] = {dir};
    ck_assert_int_eq(cstore_open(&cs, d, 1, 4u << 20), 0);
}

static void teardown(void)
{
    cstore_close(&cs);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
    }
}

/* Read [off, off+len) of chunk id (tolerant of an older version unless exact) verifying the
 * returned checksums; copies into out. 0 or the store's error. Thread safe. */
static int rdx(uint64_t id, uint32_t ver, int exact, uint32_t off, uint32_t len, uint8_t *out,
               uint32_t *got)
{
    uint8_t *buf = malloc((size_t)len + 2 * B);
    uint64_t cks[(1u << 20) / B + 2];
    uint32_t doff, clen, nb, dl, bad;
    int rc = cstore_read(&cs, id, ver, off, len, buf, &doff, &clen, &nb, cks, &dl, &bad, exact);
    if (!rc) {
        ck_assert_uint_eq(doff % B, 0);
        for (uint32_t i = 0; i < nb; i++) {
            uint32_t s = i * B, n = dl - s < B ? dl - s : B;
            ck_assert_uint_eq(cksum_xxh3(buf + s, n), cks[i]);
        }
        uint32_t end = off + len < clen ? off + len : clen;
        *got = end > off ? end - off : 0;
        if (*got) memcpy(out, buf + (off - doff), *got);
    }
    free(buf);
    return rc;
}

static int rd(uint64_t id, uint32_t ver, uint32_t off, uint32_t len, uint8_t *out, uint32_t *got)
{
    return rdx(id, ver, 0, off, len, out, got);
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

/* The version the header of id's chunk file holds, and in *name_ver the one in its name: a
 * client reading the file in place (chunkfile.h) trusts the header's. */
static uint32_t hdr_version(uint64_t id, uint32_t *name_ver)
{
    char path[700];
    ck_assert_int_eq(cstore_path(&cs, id, path, sizeof(path), name_ver), 0);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    uint8_t h[CHUNKFILE_HDR_SIZE];
    ck_assert_int_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    struct chunkfile_hdr hd;
    ck_assert_int_eq(chunkfile_hdr_get(h, &hd), 0);
    return hd.version;
}

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
    ck_assert_uint_eq(hdr_version(5, &ver), 5); /* the header follows each move */
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

static void hits(uint64_t *h, uint64_t *m, int *open)
{
    cstore_cache_counts(&cs, h, m, open);
}

START_TEST(test_read_after_change_sees_it)
{
    uint8_t *a = malloc(4 * B), *b = malloc(4 * B);
    uint32_t len, got, held, ver;
    uint64_t h0, h1, m0, m1;
    int open;
    fill(a, 4 * B, 1);
    ck_assert_int_eq(cstore_write(&cs, 1, 1, 0, 0, a, 3 * B, 0, &len), 0);
    ck_assert_int_eq(rdx(1, 1, 1, 0, 3 * B, b, &got), 0);
    hits(&h0, &m0, &open);
    ck_assert_int_eq(rdx(1, 1, 1, 0, 3 * B, b, &got), 0);
    hits(&h1, &m1, &open);
    ck_assert_uint_eq(h1, h0 + 1); /* served from the cache */
    ck_assert_uint_eq(m1, m0);
    ck_assert_int_eq(open, 1);
    /* an overwrite across a block border, and a write that extends */
    memset(a + B - 100, 'x', 300);
    ck_assert_int_eq(cstore_write(&cs, 1, 1, 1, B - 100, a + B - 100, 300, 0, &len), 0);
    ck_assert_int_eq(rdx(1, 1, 1, 0, 3 * B, b, &got), 0);
    ck_assert_uint_eq(got, 3 * B);
    ck_assert_mem_eq(a, b, 3 * B);
    ck_assert_int_eq(cstore_write(&cs, 1, 1, 1, 3 * B, a + 3 * B, B / 2, 0, &len), 0);
    ck_assert_int_eq(rdx(1, 1, 1, 0, 4 * B, b, &got), 0);
    ck_assert_uint_eq(got, 3 * B + B / 2);
    ck_assert_mem_eq(a, b, got);
    /* truncate shorter inside a block, then longer (zeros) */
    ck_assert_int_eq(cstore_truncate(&cs, 1, 1, 1, B + 10), 0);
    ck_assert_int_eq(rdx(1, 1, 1, 0, 4 * B, b, &got), 0);
    ck_assert_uint_eq(got, B + 10);
    ck_assert_mem_eq(a, b, B + 10);
    ck_assert_int_eq(cstore_truncate(&cs, 1, 1, 1, 2 * B + 5), 0);
    ck_assert_int_eq(rdx(1, 1, 1, 0, 4 * B, b, &got), 0);
    ck_assert_uint_eq(got, 2 * B + 5);
    ck_assert_mem_eq(a, b, B + 10);
    for (uint32_t i = B + 10; i < got; i++)
        ck_assert_uint_eq(b[i], 0);
    /* the first write of a new lease moves the version */
    ck_assert_int_eq(cstore_write(&cs, 1, 2, 1, 0, "new", 3, 0, &len), 0);
    ck_assert_int_eq(rdx(1, 1, 0, 0, 3, b, &got), -ESTALE);
    ck_assert_int_eq(rdx(1, 2, 1, 0, 3, b, &got), 0);
    ck_assert_mem_eq(b, "new", 3);
    /* SETVER: the open file is renamed with the chunk */
    ck_assert_int_eq(cstore_setver(&cs, 1, 5, &held), 0);
    ck_assert_int_eq(rdx(1, 2, 1, 0, 3, b, &got), -ESTALE);
    ck_assert_int_eq(rdx(1, 5, 1, 0, 3, b, &got), 0);
    ck_assert_mem_eq(b, "new", 3);
    ck_assert_int_eq(cstore_info(&cs, 1, &ver, &len), 0);
    ck_assert_uint_eq(ver, 5);
    ck_assert_uint_eq(hdr_version(1, &ver), 5); /* written through the open file */
    ck_assert_int_eq(cstore_write(&cs, 1, 5, 5, 1, "EW", 2, 1, &len), 0);
    ck_assert_int_eq(rdx(1, 5, 1, 0, 3, b, &got), 0);
    ck_assert_mem_eq(b, "nEW", 3);
    ck_assert_int_eq(cstore_fsync(&cs, 1, 5), 0);
    /* delete: gone, and a new chunk under the same id is read, not the old file */
    ck_assert_int_eq(cstore_delete(&cs, 1, 5), 0);
    ck_assert_int_eq(rdx(1, 5, 0, 0, 3, b, &got), -ENOENT);
    ck_assert_int_eq(cstore_info(&cs, 1, &ver, &len), -ENOENT);
    ck_assert_int_eq(cstore_write(&cs, 1, 6, 0, 0, "again", 5, 0, &len), 0);
    ck_assert_int_eq(rdx(1, 6, 1, 0, 10, b, &got), 0);
    ck_assert_uint_eq(got, 5);
    ck_assert_mem_eq(b, "again", 5);
    /* a bad mark is seen at once */
    ck_assert_int_eq(cstore_mark_bad(&cs, 1, 6), 0);
    ck_assert_int_eq(rdx(1, 6, 1, 0, 5, b, &got), -EUCLEAN);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_installed_replica_replaces_cached_chunk)
{
    uint8_t *a = malloc(2 * B), *b = malloc(2 * B);
    uint64_t cks[2];
    uint32_t len, got;
    fill(a, 2 * B, 2);
    ck_assert_int_eq(cstore_write(&cs, 7, 1, 0, 0, "old data", 8, 0, &len), 0);
    ck_assert_int_eq(rdx(7, 1, 1, 0, 8, b, &got), 0);
    struct cstore_tmp t;
    ck_assert_int_eq(cstore_tmp_open(&cs, 7, 3, 2 * B, &t), 0);
    cksum_blocks(a, 2 * B, cks);
    ck_assert_int_eq(cstore_tmp_write(&cs, &t, 0, a, 2 * B, cks), 0);
    ck_assert_int_eq(cstore_tmp_install(&cs, &t), 0);
    ck_assert_int_eq(rdx(7, 1, 1, 0, 8, b, &got), -ESTALE);
    ck_assert_int_eq(rdx(7, 3, 1, 0, 2 * B, b, &got), 0);
    ck_assert_uint_eq(got, 2 * B);
    ck_assert_mem_eq(a, b, 2 * B);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_flipped_data_byte_caught_when_cached)
{
    uint8_t *a = malloc(3 * B), *b = malloc(3 * B);
    uint32_t len, got, bad = 99;
    uint64_t h0, h1, m0, m1;
    int open;
    fill(a, 3 * B, 3);
    ck_assert_int_eq(cstore_write(&cs, 9, 1, 0, 0, a, 3 * B, 0, &len), 0);
    ck_assert_int_eq(rdx(9, 1, 1, 0, 3 * B, b, &got), 0);
    flip(9, CSTORE_DATA_OFF + B + 1234);
    hits(&h0, &m0, &open);
    ck_assert_int_eq(rdx(9, 1, 1, 0, B, b, &got), 0);
    ck_assert_mem_eq(a, b, B);
    ck_assert_int_eq(rdx(9, 1, 1, B, 10, b, &got), -EUCLEAN);
    ck_assert_int_eq(rdx(9, 1, 1, 0, 3 * B, b, &got), -EUCLEAN); /* every time */
    ck_assert_int_eq(rdx(9, 1, 1, 2 * B, B, b, &got), 0);
    hits(&h1, &m1, &open);
    ck_assert_uint_eq(h1, h0 + 4); /* all four were served by the open chunk */
    ck_assert_uint_eq(m1, m0);
    /* the scrubber finds it too and marks the chunk bad */
    ck_assert_int_eq(cstore_scrub_chunk(&cs, 9, 1, &bad, NULL, NULL), -EUCLEAN);
    ck_assert_uint_eq(bad, 1);
    ck_assert_int_eq(rdx(9, 1, 1, 0, B, b, &got), -EUCLEAN);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_bound_and_eviction_while_pinned)
{
    uint32_t len, got;
    uint8_t b[16];
    int open;
    uint64_t h, m;
    ck_assert_int_eq(cstore_set_open_max(&cs, 4), 0);
    for (uint64_t id = 100; id < 120; id++) {
        char s[16];
        snprintf(s, sizeof(s), "chunk %03u", (unsigned)id);
        ck_assert_int_eq(cstore_write(&cs, id, 1, 0, 0, s, 9, 0, &len), 0);
    }
    for (int round = 0; round < 2; round++)
        for (uint64_t id = 100; id < 120; id++) {
            char s[16];
            snprintf(s, sizeof(s), "chunk %03u", (unsigned)id);
            ck_assert_int_eq(rdx(id, 1, 1, 0, 9, b, &got), 0);
            ck_assert_mem_eq(b, s, 9);
            hits(&h, &m, &open);
            ck_assert_int_le(open, 4);
        }
    /* an entry in use stays open when it is evicted, and closes when its user is done */
    cs_lock_shared(&cs, 119);
    struct cs_open *o = cc_pin(&cs, 119);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(cstore_set_open_max(&cs, 0), 0);
    hits(&h, &m, &open);
    ck_assert_int_eq(open, 0);
    ck_assert_int_eq(pread(o->f.fd, b, 9, CSTORE_DATA_OFF), 9);
    ck_assert_mem_eq(b, "chunk 119", 9);
    cc_unpin(o);
    cs_unlock(&cs, 119);
    /* no cache at all: still served */
    ck_assert_int_eq(rdx(105, 1, 1, 0, 9, b, &got), 0);
    ck_assert_mem_eq(b, "chunk 105", 9);
    hits(&h, &m, &open);
    ck_assert_int_eq(open, 0);
}
END_TEST

/* Concurrent readers and a writer: NCHUNK chunks, a cache smaller than that (entries are
 * evicted while pinned), the writer rewrites ranges across block borders, truncates and
 * extends; every read must verify. */
#define NCHUNK 3
#define NREADERS 4
#define RUN_MS 1500

static volatile int stop_run;
static int reads_ok, reads_bad;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *reader_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    uint8_t *buf = malloc(4 * B);
    for (int i = 0; i < 1000000 && !stop_run; i++) {
        uint64_t id = 1 + rand_r(&seed) % NCHUNK;
        uint32_t off = rand_r(&seed) % (6 * B), len = 1 + rand_r(&seed) % (2 * B), got;
        int rc = rdx(id, 1, 1, off, len, buf, &got);
        if (rc)
            __atomic_add_fetch(&reads_bad, 1, __ATOMIC_RELAXED);
        else
            __atomic_add_fetch(&reads_ok, 1, __ATOMIC_RELAXED);
    }
    free(buf);
    return NULL;
}

START_TEST(test_concurrent_readers_and_writer)
{
    uint8_t *a = malloc(8 * B);
    uint32_t len;
    fill(a, 8 * B, 5);
    ck_assert_int_eq(cstore_set_open_max(&cs, NCHUNK - 1), 0);
    for (uint64_t id = 1; id <= NCHUNK; id++)
        ck_assert_int_eq(cstore_write(&cs, id, 1, 0, 0, a, 8 * B, 0, &len), 0);
    stop_run = 0;
    reads_ok = reads_bad = 0;
    pthread_t th[NREADERS];
    for (int i = 0; i < NREADERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, (void *)(uintptr_t)(i + 1)), 0);
    unsigned seed = 42;
    uint64_t end = now_ms() + RUN_MS;
    int writes = 0;
    for (int i = 0; i < 100000 && now_ms() < end; i++) {
        uint64_t id = 1 + rand_r(&seed) % NCHUNK;
        int op = rand_r(&seed) % 10;
        if (op == 0) {
            ck_assert_int_eq(cstore_truncate(&cs, id, 1, 1, 5 * B + rand_r(&seed) % (3 * B)), 0);
        } else {
            uint32_t off = rand_r(&seed) % (7 * B), n = 1 + rand_r(&seed) % B;
            ck_assert_int_eq(cstore_write(&cs, id, 1, 1, off, a + rand_r(&seed) % B, n, 0, &len),
                             0);
        }
        writes++;
    }
    stop_run = 1;
    for (int i = 0; i < NREADERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(reads_bad, 0);
    ck_assert_int_gt(reads_ok, 100);
    ck_assert_int_gt(writes, 10);
    free(a);
}
END_TEST

/* Pages of chunk id's data (after its header area) in the page cache. */
static size_t resident_pages(uint64_t id)
{
    char path[700];
    uint32_t ver;
    ck_assert_int_eq(cstore_path(&cs, id, path, sizeof(path), &ver), 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    size_t sz = (size_t)ftell(f), pg = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, sz, PROT_READ, MAP_SHARED, fileno(f), 0);
    ck_assert(p != MAP_FAILED);
    unsigned char *v = calloc(sz / pg + 1, 1);
    ck_assert_int_eq(mincore(p, sz, v), 0);
    size_t n = 0;
    for (size_t i = CSTORE_DATA_OFF / pg; i < (sz + pg - 1) / pg; i++)
        n += v[i] & 1;
    free(v);
    munmap(p, sz);
    fclose(f);
    return n;
}

START_TEST(test_page_cache_dropped_after_read)
{
    struct statfs sf;
    ck_assert_int_eq(statfs(dir, &sf), 0);
    if (sf.f_type == 0x01021994) return; /* tmpfs: its pages cannot be dropped */
    uint32_t n = 1u << 20, len, got;
    uint8_t *a = malloc(n), *b = malloc(n);
    fill(a, n, 6);
    ck_assert_int_eq(cstore_write(&cs, 11, 1, 0, 0, a, n, 1, &len), 0); /* clean pages */
    /* the kernel drops whole folios only: allow one large folio (up to 64 KiB) at each end */
    size_t all = n / (size_t)sysconf(_SC_PAGESIZE), edge = 2 * (65536 / sysconf(_SC_PAGESIZE));
    cs.keep_page_cache = 1;
    ck_assert_int_eq(rdx(11, 1, 1, 0, n, b, &got), 0);
    ck_assert_uint_eq(resident_pages(11), all);
    cs.keep_page_cache = 0;
    ck_assert_int_eq(rdx(11, 1, 1, 0, n / 2, b, &got), 0);
    ck_assert_uint_le(resident_pages(11), all / 2 + edge);
    ck_assert_uint_ge(resident_pages(11), all / 2); /* the half not read stays */
    ck_assert_int_eq(rdx(11, 1, 1, 0, n, b, &got), 0);
    ck_assert_mem_eq(a, b, n);
    ck_assert_uint_le(resident_pages(11), edge);
    free(a);
    free(b);
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
    t = tcase_create("open_cache");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 30);
    tcase_add_test(t, test_read_after_change_sees_it);
    tcase_add_test(t, test_installed_replica_replaces_cached_chunk);
    tcase_add_test(t, test_flipped_data_byte_caught_when_cached);
    tcase_add_test(t, test_bound_and_eviction_while_pinned);
    tcase_add_test(t, test_concurrent_readers_and_writer);
    tcase_add_test(t, test_page_cache_dropped_after_read);
    suite_add_tcase(s, t);
    return unit_run(s);
}
