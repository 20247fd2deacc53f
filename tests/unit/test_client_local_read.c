/* test_client_local_read.c - a read in place of a chunk file (client-fuse/local_read.c,
 * lr_read_file) on real files laid out as chunk servers write them (chunkfile.h): whole and
 * partial blocks, bytes past the chunk's length as zeros, whole pages read around the page cache
 * (O_DIRECT) and the rest through it, and every refusal that sends a read to a chunk server:
 * another version (also one that changed under an open file, as a server's version move does),
 * a bad mark, a deleted file, a flipped data byte, a damaged header. Each case runs twice: with
 * no O_DIRECT file (every read through the page cache, header first) and with one (a read that
 * starts a block goes data first, around the page cache, the header read last). */
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
static uint8_t data[LEN];
static _Alignas(4096) uint8_t out[CAIRN_IO_MAX];
static int direct; /* the loop index: 1 = the chunk file is also opened O_DIRECT (dfd) */
static int dfd = -1;

/* lr_read_file of [off, off+len) into out, through dfd in the direct runs */
static int rd(int fd, uint64_t id, uint32_t ver, uint32_t off, uint32_t len)
{
    return lr_read_file(fd, dfd, id, ver, off, len, out);
}

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
    if (dfd >= 0) close(dfd);
    dfd = direct ? open(path, O_RDONLY | O_DIRECT) : -1;
    if (direct) ck_assert_int_ge(dfd, 0);
    return fd;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-lr-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    if (dfd >= 0) close(dfd);
    dfd = -1;
    unlink(path);
    rmdir(dir);
}

START_TEST(whole_and_partial_blocks)
{
    direct = _i;
    int fd = make_chunk(3, 0);
    ck_assert_int_eq(rd(fd, ID, 3, 0, LEN), 0);
    ck_assert_mem_eq(out, data, LEN);
    /* one whole block from the middle */
    ck_assert_int_eq(rd(fd, ID, 3, B, B), 0);
    ck_assert_mem_eq(out, data + B, B);
    /* from a block's start to inside the next, short of the chunk's end: the rest of that
     * block is needed to check it */
    ck_assert_int_eq(rd(fd, ID, 3, B, B + 10), 0);
    ck_assert_mem_eq(out, data + B, B + 10);
    /* from the middle of a block into the next */
    ck_assert_int_eq(rd(fd, ID, 3, B - 100, 300), 0);
    ck_assert_mem_eq(out, data + B - 100, 300);
    /* across the end: the rest reads as zeros, from inside a block and from a block's start */
    memset(out, 0xaa, 5000);
    ck_assert_int_eq(rd(fd, ID, 3, LEN - 1000, 5000), 0);
    ck_assert_mem_eq(out, data + LEN - 1000, 1000);
    for (int i = 1000; i < 5000; i++)
        ck_assert_int_eq(out[i], 0);
    memset(out, 0xaa, 3 * B);
    ck_assert_int_eq(rd(fd, ID, 3, 2 * B, 3 * B), 0);
    ck_assert_mem_eq(out, data + 2 * B, LEN - 2 * B);
    for (uint32_t i = LEN - 2 * B; i < 3 * B; i++)
        ck_assert_int_eq(out[i], 0);
    /* wholly past the end */
    memset(out, 0xaa, 100);
    ck_assert_int_eq(rd(fd, ID, 3, LEN + B, 100), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(out[i], 0);
    memset(out, 0xaa, B);
    ck_assert_int_eq(rd(fd, ID, 3, 5 * B, B), 0);
    for (uint32_t i = 0; i < B; i++)
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
    direct = 1;
    int fd = make_chunk(3, 0);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    uint8_t *al = out;
    /* a cold file: the data around the page cache (the partial last page too), the header
     * and checksums through it */
    ck_assert_int_eq(rd(fd, ID, 3, 0, LEN), 0);
    ck_assert_mem_eq(al, data, LEN);
    ck_assert_int_eq(cached_pages(fd, 0, LEN), 0);
    ck_assert_int_gt(cached_pages(fd, -(off_t)CHUNKFILE_DATA_OFF, 4096), 0);
    /* again with the header cached */
    memset(al, 0, LEN);
    ck_assert_int_eq(rd(fd, ID, 3, 0, LEN), 0);
    ck_assert_mem_eq(al, data, LEN);
    ck_assert_int_eq(cached_pages(fd, 0, LEN), 0);
    /* into a buffer that is not page aligned: through the page cache, then dropped */
    ck_assert_int_eq(lr_read_file(fd, dfd, ID, 3, 0, 2 * B, al + 16), 0);
    ck_assert_mem_eq(al + 16, data, 2 * B);
    ck_assert_int_eq(cached_pages(fd, 0, 2 * B), 0);
    /* a read that starts inside a block stays in the page cache (its neighbours may follow) */
    ck_assert_int_eq(rd(fd, ID, 3, B + 8, 100), 0);
    ck_assert_mem_eq(al, data + B + 8, 100);
    ck_assert_int_gt(cached_pages(fd, B, B), 0);
    close(fd);
}
END_TEST

START_TEST(another_version_is_refused)
{
    direct = _i;
    int fd = make_chunk(3, 0);
    ck_assert_int_eq(rd(fd, ID, 4, 0, B), -ESTALE);
    ck_assert_int_eq(rd(fd, ID, 2, 0, B), -ESTALE);
    ck_assert_int_eq(rd(fd, ID + 1, 3, 0, B), -EUCLEAN);
    /* the server moves the chunk on (rename, then the header's version) under the open file */
    uint8_t v[4];
    le_put32(v, 4);
    ck_assert_int_eq(pwrite(fd, v, 4, CHUNKFILE_VERSION_OFF), 4);
    ck_assert_int_eq(rd(fd, ID, 3, 0, B), -ESTALE);
    ck_assert_int_eq(rd(fd, ID, 4, 0, B), 0);
    close(fd);
}
END_TEST

START_TEST(bad_mark_and_deleted_file_are_refused)
{
    direct = _i;
    int fd = make_chunk(3, CHUNKFILE_FLAG_BAD);
    ck_assert_int_eq(rd(fd, ID, 3, 0, B), -ESTALE);
    close(fd);
    fd = make_chunk(3, 0);
    ck_assert_int_eq(rd(fd, ID, 3, 0, B), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rd(fd, ID, 3, 0, B), -ESTALE);
    close(fd);
}
END_TEST

START_TEST(damage_is_caught)
{
    direct = _i;
    int fd = make_chunk(3, 0);
    uint8_t x = 0;
    ck_assert_int_eq(pread(fd, &x, 1, CHUNKFILE_DATA_OFF + 2 * B + 5), 1);
    x ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &x, 1, CHUNKFILE_DATA_OFF + 2 * B + 5), 1);
    /* the damaged block fails; the blocks around it still read */
    ck_assert_int_eq(rd(fd, ID, 3, 2 * B, 10), -CAIRN_ECORRUPT);
    ck_assert_int_eq(rd(fd, ID, 3, 0, LEN), -CAIRN_ECORRUPT);
    ck_assert_int_eq(rd(fd, ID, 3, 0, 2 * B), 0);
    ck_assert_mem_eq(out, data, 2 * B);
    /* a checksum in the header that does not match its block */
    ck_assert_int_eq(pwrite(fd, &x, 1, CHUNKFILE_HDR_SIZE + 3), 1);
    ck_assert_int_eq(rd(fd, ID, 3, 0, B), -CAIRN_ECORRUPT);
    /* a header that is not one */
    ck_assert_int_eq(pwrite(fd, "XXXX", 4, 0), 4);
    ck_assert_int_eq(rd(fd, ID, 3, B, B), -EUCLEAN);
    /* a file cut short: the header is gone */
    ck_assert_int_eq(ftruncate(fd, 10), 0);
    ck_assert_int_eq(rd(fd, ID, 3, 0, B), -EUCLEAN);
    close(fd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client_local_read");
    TCase *t = tcase_create("read_in_place");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_loop_test(t, whole_and_partial_blocks, 0, 2);
    tcase_add_test(t, whole_pages_go_around_the_page_cache);
    tcase_add_loop_test(t, another_version_is_refused, 0, 2);
    tcase_add_loop_test(t, bad_mark_and_deleted_file_are_refused, 0, 2);
    tcase_add_loop_test(t, damage_is_caught, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
