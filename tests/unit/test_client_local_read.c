/* test_client_local_read.c - a read in place of a chunk file (client-fuse/local_read.c,
 * lr_read_file) on real files laid out as chunk servers write them (chunkfile.h): whole and
 * partial blocks, bytes past the chunk's length as zeros, whole pages read around the page cache
 * (O_DIRECT) and the rest through it, and every refusal that sends a read
 * to a chunk server: another version (also one that changed under an open file, as a server's
 * version move does), a bad mark, a deleted file, a flipped data byte, a damaged header. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunkfile.h"
#include "cksum.h"
#include "client.h"
#include "codec.h"
#include "proto.h"
#include "unit_main.h"

#define B CKSUM_BLOCK
#define ID 0x5a5a0001ull
#define LEN (3 * B + 1000) /* three whole blocks and a partial one */

static char dir[64], path[128];
static uint8_t data[LEN], out[CAIRN_IO_MAX];

/* A chunk file of ID at version ver with LEN bytes of data, as the store writes it. */
static int make_chunk(uint32_t ver, uint32_t flags)
{
    for (uint32_t i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 131 + (i >> 9));
    snprintf(path, sizeof(path), "%s/chunk.chk", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    uint8_t h[CHUNKFILE_HDR_SIZE + 8 * 4];
    struct chunkfile_hdr hd = {.id = ID, .version = ver, .length = LEN, .flags = flags, .block = B};
    chunkfile_hdr_put(h, &hd);
    for (uint32_t b = 0; b < 4; b++) {
        uint32_t valid = LEN - b * B < B ? LEN - b * B : B;
        le_put64(h + CHUNKFILE_HDR_SIZE + 8 * b, cksum_xxh3(data + b * B, valid));
    }
    ck_assert_int_eq(pwrite(fd, data, LEN, CHUNKFILE_DATA_OFF), LEN);
    ck_assert_int_eq(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
    return fd;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-lr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

START_TEST(whole_and_partial_blocks)
{
    int fd = make_chunk(3, 0);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, LEN, out), 0);
    ck_assert_mem_eq(out, data, LEN);
    /* from the middle of a block into the next */
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, B - 100, 300, out), 0);
    ck_assert_mem_eq(out, data + B - 100, 300);
    /* across the end: the rest reads as zeros */
    memset(out, 0xaa, 5000);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, LEN - 1000, 5000, out), 0);
    ck_assert_mem_eq(out, data + LEN - 1000, 1000);
    for (int i = 1000; i < 5000; i++)
        ck_assert_int_eq(out[i], 0);
    /* wholly past the end */
    memset(out, 0xaa, 100);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, LEN + B, 100, out), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(out[i], 0);
    close(fd);
}
END_TEST

/* Pages of path's data area [from, from+len) in the page cache. */
static int cached_pages(int fd, off_t from, size_t len)
{
    void *m = mmap(NULL, CHUNKFILE_DATA_OFF + LEN, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    unsigned char vec[(CHUNKFILE_DATA_OFF + LEN) / 4096 + 1];
    ck_assert_int_eq(mincore(m, CHUNKFILE_DATA_OFF + LEN, vec), 0);
    munmap(m, CHUNKFILE_DATA_OFF + LEN);
    int n = 0;
    for (off_t p = (CHUNKFILE_DATA_OFF + from) / 4096;
         p < (off_t)(CHUNKFILE_DATA_OFF + from + len + 4095) / 4096; p++)
        n += vec[p] & 1;
    return n;
}

START_TEST(whole_pages_go_around_the_page_cache)
{
    int fd = make_chunk(3, 0);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    int dfd = open(path, O_RDONLY | O_DIRECT);
    ck_assert_int_ge(dfd, 0);
    uint8_t *al = NULL;
    ck_assert_int_eq(posix_memalign((void **)&al, 4096, 4 * B), 0);
    /* a cold header: header and data read together through the page cache, the data
     * dropped from it afterwards */
    ck_assert_int_eq(lr_read_file(fd, dfd, ID, 3, 0, LEN, al), 0);
    ck_assert_mem_eq(al, data, LEN);
    ck_assert_int_eq(cached_pages(fd, 0, LEN), 0);
    /* the header cached: whole blocks into a page-aligned buffer, the three whole blocks'
     * pages around the cache, the partial last block (1000 bytes, not a whole page) through it */
    memset(al, 0, LEN);
    ck_assert_int_eq(lr_read_file(fd, dfd, ID, 3, 0, LEN, al), 0);
    ck_assert_mem_eq(al, data, LEN);
    ck_assert_int_eq(cached_pages(fd, 0, 3 * B), 0);
    /* the same into a buffer that is not page aligned: through the page cache, then dropped */
    ck_assert_int_eq(lr_read_file(fd, dfd, ID, 3, 0, 2 * B, al + 16), 0);
    ck_assert_mem_eq(al + 16, data, 2 * B);
    ck_assert_int_eq(cached_pages(fd, 0, 2 * B), 0);
    /* a read that starts inside a block stays in the page cache (its neighbours may follow) */
    ck_assert_int_eq(lr_read_file(fd, dfd, ID, 3, B + 8, 100, al), 0);
    ck_assert_mem_eq(al, data + B + 8, 100);
    ck_assert_int_gt(cached_pages(fd, B, B), 0);
    free(al);
    close(dfd);
    close(fd);
}
END_TEST

START_TEST(another_version_is_refused)
{
    int fd = make_chunk(3, 0);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 4, 0, B, out), -ESTALE);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 2, 0, B, out), -ESTALE);
    ck_assert_int_eq(lr_read_file(fd, -1, ID + 1, 3, 0, B, out), -EUCLEAN);
    /* the server moves the chunk on (rename, then the header's version) under the open file */
    uint8_t v[4];
    le_put32(v, 4);
    ck_assert_int_eq(pwrite(fd, v, 4, CHUNKFILE_VERSION_OFF), 4);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, B, out), -ESTALE);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 4, 0, B, out), 0);
    close(fd);
}
END_TEST

START_TEST(bad_mark_and_deleted_file_are_refused)
{
    int fd = make_chunk(3, CHUNKFILE_FLAG_BAD);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, B, out), -ESTALE);
    close(fd);
    fd = make_chunk(3, 0);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, B, out), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, B, out), -ESTALE);
    close(fd);
}
END_TEST

START_TEST(damage_is_caught)
{
    int fd = make_chunk(3, 0);
    uint8_t x = 0;
    ck_assert_int_eq(pread(fd, &x, 1, CHUNKFILE_DATA_OFF + 2 * B + 5), 1);
    x ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &x, 1, CHUNKFILE_DATA_OFF + 2 * B + 5), 1);
    /* the damaged block fails; the blocks around it still read */
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 2 * B, 10, out), -CAIRN_ECORRUPT);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, LEN, out), -CAIRN_ECORRUPT);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, 2 * B, out), 0);
    ck_assert_mem_eq(out, data, 2 * B);
    /* a checksum in the header that does not match its block */
    ck_assert_int_eq(pwrite(fd, &x, 1, CHUNKFILE_HDR_SIZE + 3), 1);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, B, out), -CAIRN_ECORRUPT);
    /* a header that is not one */
    ck_assert_int_eq(pwrite(fd, "XXXX", 4, 0), 4);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, B, B, out), -EUCLEAN);
    /* a file cut short: the header is gone */
    ck_assert_int_eq(ftruncate(fd, 10), 0);
    ck_assert_int_eq(lr_read_file(fd, -1, ID, 3, 0, B, out), -EUCLEAN);
    close(fd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client_local_read");
    TCase *t = tcase_create("read_in_place");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, whole_and_partial_blocks);
    tcase_add_test(t, whole_pages_go_around_the_page_cache);
    tcase_add_test(t, another_version_is_refused);
    tcase_add_test(t, bad_mark_and_deleted_file_are_refused);
    tcase_add_test(t, damage_is_caught);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
