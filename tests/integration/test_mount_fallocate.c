/* test_mount_fallocate.c - fallocate(2) on a real mount reserves and frees space on the chunk
 * servers and keeps every copy identical:
 *
 * - mode0_reserves: mode 0 grows the size and st_blocks before any write, the reserved bytes
 *   leave both chunk servers' free space (statvfs of their tmpfs), the file reads as zeros;
 *   KEEP_SIZE reserves more without changing the size; data written afterwards reads back.
 * - enospc_reserves_nothing: asking for more than a server's free space fails with ENOSPC and
 *   leaves the size, st_blocks and the servers' free space as they were; asking for more than
 *   the whole cluster fails the same way.
 * - punch_hole: a punch across a chunk boundary, not block aligned: the bytes around it are
 *   intact, the range reads zeros (through a fresh mount too), st_blocks drops, SEEK_HOLE
 *   finds the hole, both copies' chunk files are byte-identical, and the chunk version moved
 *   (a lease, as for a write).
 * - zero_range: ZERO_RANGE with and without KEEP_SIZE: zeros in the range, the rest intact,
 *   the space stays allocated, past the end the size grows only without KEEP_SIZE; copies
 *   identical.
 * - dig_holes: `fallocate --dig-holes` on a file with runs of zeros succeeds, the file reads
 *   the same and takes less space.
 * - modes_refused: COLLAPSE_RANGE and INSERT_RANGE are EOPNOTSUPP and change nothing.
 *
 * Each test starts its own cluster (chunk_size 4M, 2 copies, two cairn-chunk servers on 64 MiB
 * tmpfs each, one mount) in a forked process (harness_repl.h). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"
#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define KiB 1024L
#define CHUNK (4 * MiB)
#define META_OPTS "chunk_size=4M cs_timeout=5 default_copies=2 repair_rate=0"
#define CS_OPTS "heartbeat_ms=200"
#define TMPFS "64m"
#define SEED 0xfa11ull

static void start(const char *tag)
{
    hr_start(tag, 2, META_OPTS, CS_OPTS, NULL, TMPFS);
}

/* Free bytes of chunk server i's data folder (its own tmpfs). */
static long long cs_free(int i)
{
    struct statvfs sv;
    ck_assert_int_eq(statvfs(hr_c->cs_dir[i], &sv), 0);
    return (long long)sv.f_bavail * (long long)sv.f_frsize;
}

static struct stat fst(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    return st;
}

static int open_file(const char *name, int flags)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", hr_c->mnt[0], name);
    int fd = open(p, flags, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", p, strerror(errno));
    return fd;
}

/* Write the pattern of SEED over [0, size) of fd and fsync. */
static void write_pattern(int fd, off_t size)
{
    static uint8_t buf[MiB];
    for (off_t o = 0; o < size; o += MiB) {
        size_t n = size - o < MiB ? (size_t)(size - o) : MiB;
        hfs_fill(buf, n, SEED, (uint64_t)o);
        ck_assert_int_eq(hfs_pwrite_all(fd, buf, n, o), 0);
    }
    ck_assert_int_eq(fsync(fd), 0);
}

/* [0, size) of fd must hold the pattern of SEED except zeros in each [z[2k], z[2k+1]). */
static void expect(int fd, off_t size, const off_t *z, int nz, const char *when)
{
    static uint8_t buf[MiB];
    for (off_t o = 0; o < size; o += MiB) {
        size_t n = size - o < MiB ? (size_t)(size - o) : MiB, got = 0;
        ck_assert_int_eq(hfs_pread_all(fd, buf, n, o, &got), 0);
        ck_assert_msg(got == n, "%s: short read at %lld (%zu of %zu)", when, (long long)o, got, n);
        for (size_t i = 0; i < n; i++) {
            off_t at = o + (off_t)i;
            int inz = 0;
            for (int k = 0; k < nz; k++)
                inz |= at >= z[2 * k] && at < z[2 * k + 1];
            uint8_t want;
            hfs_fill(&want, 1, SEED, (uint64_t)at);
            if (inz) want = 0;
            ck_assert_msg(buf[i] == want, "%s: byte %lld is 0x%02x, expected 0x%02x%s", when,
                          (long long)at, buf[i], want, inz ? " (in a zeroed range)" : "");
        }
    }
}

/* Every chunk of name has exactly two valid copies whose chunk files are byte-identical;
 * *ver (may be NULL) gets chunk 0's version. */
static void copies_identical(const char *name, uint32_t *ver)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", hr_c->mnt[0], name);
    struct hfs_fileinfo *fi = hr_fileinfo(p);
    ck_assert_int_gt(fi->n, 0);
    if (ver) *ver = fi->chunk[0].version;
    for (int k = 0; k < fi->n; k++) {
        const struct hfs_chunk *ch = &fi->chunk[k];
        ck_assert_msg(ch->nvalid == 2, "chunk %llu has %d valid copies",
                      (unsigned long long)ch->index, ch->nvalid);
        char f[2][700];
        for (int c = 0; c < 2; c++) {
            int i = hr_index_of(ch->copy[c].server);
            ck_assert_int_eq(h_chunk_file(hr_c, i, ch->id, f[c], sizeof(f[c]), NULL), 0);
        }
        int rc = h_sh(30, "cmp -s '%s' '%s'", f[0], f[1]);
        ck_assert_msg(rc == 0, "chunk %llu: the copies' files differ (%s, %s)",
                      (unsigned long long)ch->index, f[0], f[1]);
    }
}

/* ---- mode 0 and KEEP_SIZE ------------------------------------------------------------------- */

START_TEST(mode0_reserves)
{
    start("fa-mode0");
    long long free0[2] = {cs_free(0), cs_free(1)};
    int fd = open_file("f", O_CREAT | O_RDWR);
    ck_assert_int_eq(fallocate(fd, 0, 0, 12 * MiB), 0);
    struct stat st = fst(fd);
    ck_assert_int_eq(st.st_size, 12 * MiB);
    ck_assert_msg(st.st_blocks * 512 >= 12 * MiB, "st_blocks %lld after reserving 12 MiB",
                  (long long)st.st_blocks);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(free0[i] - cs_free(i) >= 12 * MiB,
                      "server %d: free space fell by %lld bytes, not by the 12 MiB reserved", i,
                      free0[i] - cs_free(i));
    expect(fd, 12 * MiB, (off_t[]){0, 12 * MiB}, 1, "after mode 0");

    /* KEEP_SIZE past the end: more space, same size */
    long long free1 = cs_free(0);
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, 12 * MiB, 6 * MiB), 0);
    st = fst(fd);
    ck_assert_int_eq(st.st_size, 12 * MiB);
    ck_assert_msg(st.st_blocks * 512 >= 18 * MiB, "st_blocks %lld after KEEP_SIZE of 6 MiB more",
                  (long long)st.st_blocks);
    ck_assert_msg(free1 - cs_free(0) >= 6 * MiB, "KEEP_SIZE: free space fell by %lld only",
                  free1 - cs_free(0));

    /* writing into reserved space takes no more of it */
    long long free2 = cs_free(0);
    write_pattern(fd, 12 * MiB);
    ck_assert_msg(free2 - cs_free(0) < MiB, "writing reserved space took %lld more bytes",
                  free2 - cs_free(0));
    /* posix_fallocate grows the size too */
    ck_assert_int_eq(posix_fallocate(fd, 12 * MiB, 2 * MiB), 0);
    ck_assert_int_eq(fst(fd).st_size, 14 * MiB);
    ck_assert_int_eq(close(fd), 0);
    hr_fresh_mount();
    fd = open_file("f", O_RDONLY);
    expect(fd, 14 * MiB, (off_t[]){12 * MiB, 14 * MiB}, 1, "fresh mount");
    ck_assert_int_eq(close(fd), 0);
    copies_identical("f", NULL);
}
END_TEST

START_TEST(enospc_reserves_nothing)
{
    start("fa-enospc");
    int fd = open_file("f", O_CREAT | O_RDWR);
    write_pattern(fd, 2 * MiB);
    struct stat st0 = fst(fd);
    long long free0[2] = {cs_free(0), cs_free(1)};
    /* each server has < 64 MiB: 100 MiB with two copies cannot fit */
    errno = 0;
    ck_assert_int_eq(fallocate(fd, 0, 0, 100 * MiB), -1);
    ck_assert_msg(errno == ENOSPC, "fallocate of 100 MiB: %s, expected ENOSPC", strerror(errno));
    struct stat st = fst(fd);
    ck_assert_int_eq(st.st_size, 2 * MiB);
    ck_assert_msg(st.st_blocks <= st0.st_blocks + 2048,
                  "st_blocks %lld after the failure (%lld before)", (long long)st.st_blocks,
                  (long long)st0.st_blocks);
    /* chunk files made on the way cost a page of header each, nothing more */
    for (int i = 0; i < 2; i++)
        ck_assert_msg(free0[i] - cs_free(i) < MiB,
                      "server %d: %lld bytes stay reserved after the ENOSPC", i,
                      free0[i] - cs_free(i));
    /* KEEP_SIZE fails the same way */
    errno = 0;
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, 2 * MiB, 80 * MiB), -1);
    ck_assert_int_eq(errno, ENOSPC);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(free0[i] - cs_free(i) < MiB, "server %d", i);
    /* more than the whole cluster */
    errno = 0;
    ck_assert_int_eq(fallocate(fd, 0, 0, 1024 * MiB), -1);
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert_int_eq(fst(fd).st_size, 2 * MiB);
    expect(fd, 2 * MiB, NULL, 0, "after the failures");
    /* what fits still works */
    ck_assert_int_eq(fallocate(fd, 0, 2 * MiB, 8 * MiB), 0);
    ck_assert_int_eq(fst(fd).st_size, 10 * MiB);
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* ---- punch hole ----------------------------------------------------------------------------- */

START_TEST(punch_hole)
{
    start("fa-punch");
    int fd = open_file("f", O_CREAT | O_RDWR);
    write_pattern(fd, 12 * MiB);
    ck_assert_int_eq(close(fd), 0);
    uint32_t v0;
    copies_identical("f", &v0);
    fd = open_file("f", O_RDWR); /* the punch takes a new lease, as a write would */
    struct stat st0 = fst(fd);
    long long free0 = cs_free(0);
    /* across the boundary of chunks 0 and 1, starting and ending inside 64 KiB blocks */
    const off_t a = 1 * MiB + 12345, b = CHUNK + 2 * MiB + 777;
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, a, b - a), 0);
    struct stat st = fst(fd);
    ck_assert_int_eq(st.st_size, 12 * MiB);
    ck_assert_msg(st0.st_blocks - st.st_blocks >= (b - a - 2 * 64 * KiB) / 512,
                  "st_blocks %lld -> %lld after punching %lld bytes", (long long)st0.st_blocks,
                  (long long)st.st_blocks, (long long)(b - a));
    ck_assert_msg(cs_free(0) - free0 >= b - a - 2 * 64 * KiB, "server 0 got back only %lld bytes",
                  cs_free(0) - free0);
    const off_t z[] = {a, b};
    expect(fd, 12 * MiB, z, 1, "after the punch");
    /* the hole is where the punch deallocated whole 64 KiB blocks */
    off_t h = lseek(fd, a, SEEK_HOLE);
    off_t first_whole = (a + 64 * KiB - 1) / (64 * KiB) * (64 * KiB);
    ck_assert_msg(h >= a && h <= first_whole, "SEEK_HOLE from %lld: %lld (expected <= %lld)",
                  (long long)a, (long long)h, (long long)first_whole);
    off_t d = lseek(fd, first_whole, SEEK_DATA);
    ck_assert_msg(d >= CHUNK && d <= b, "SEEK_DATA from the hole: %lld", (long long)d);
    /* a punch past the end changes nothing */
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20 * MiB, MiB), 0);
    ck_assert_int_eq(fst(fd).st_size, 12 * MiB);
    ck_assert_int_eq(close(fd), 0);

    hr_fresh_mount();
    fd = open_file("f", O_RDONLY);
    expect(fd, 12 * MiB, z, 1, "fresh mount");
    ck_assert_int_eq(close(fd), 0);
    uint32_t v1;
    copies_identical("f", &v1);
    ck_assert_msg(v1 > v0, "chunk 0's version %u did not move with the punch (was %u)", v1, v0);
}
END_TEST

/* ---- zero range ----------------------------------------------------------------------------- */

START_TEST(zero_range)
{
    start("fa-zero");
    int fd = open_file("f", O_CREAT | O_RDWR);
    write_pattern(fd, 10 * MiB);
    struct stat st0 = fst(fd);
    const off_t a = 3 * MiB + 100, b = 5 * MiB + 65 * KiB + 3;
    int r = fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, a, b - a);
    ck_assert_msg(r == 0, "ZERO_RANGE|KEEP_SIZE: %s", strerror(errno));
    struct stat st = fst(fd);
    ck_assert_int_eq(st.st_size, 10 * MiB);
    ck_assert_msg(st.st_blocks >= st0.st_blocks, "st_blocks %lld -> %lld: zero range freed space",
                  (long long)st0.st_blocks, (long long)st.st_blocks);
    const off_t z1[] = {a, b};
    expect(fd, 10 * MiB, z1, 1, "after ZERO_RANGE|KEEP_SIZE");
    /* without KEEP_SIZE, past the end: the size grows */
    const off_t c = 9 * MiB + 5;
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, c, 3 * MiB), 0);
    ck_assert_int_eq(fst(fd).st_size, c + 3 * MiB);
    ck_assert_int_eq(close(fd), 0);
    hr_fresh_mount();
    fd = open_file("f", O_RDONLY);
    const off_t z2[] = {a, b, c, c + 3 * MiB};
    expect(fd, c + 3 * MiB, z2, 2, "fresh mount");
    ck_assert_int_eq(close(fd), 0);
    copies_identical("f", NULL);
}
END_TEST

/* ---- fallocate --dig-holes ------------------------------------------------------------------ */

START_TEST(dig_holes)
{
    start("fa-dig");
    char p[600], local[600];
    snprintf(p, sizeof(p), "%s/f", hr_c->mnt[0]);
    snprintf(local, sizeof(local), "%s/local", hr_c->dir);
    int fd = open_file("f", O_CREAT | O_RDWR);
    write_pattern(fd, 9 * MiB);
    /* runs of zeros: 2 MiB in chunk 0, 1 MiB across the chunk boundary, a small one */
    static uint8_t zeros[2 * MiB];
    ck_assert_int_eq(hfs_pwrite_all(fd, zeros, 2 * MiB, MiB), 0);
    ck_assert_int_eq(hfs_pwrite_all(fd, zeros, MiB, CHUNK - MiB / 2), 0);
    ck_assert_int_eq(hfs_pwrite_all(fd, zeros, 200 * KiB, 7 * MiB), 0);
    ck_assert_int_eq(fsync(fd), 0);
    struct stat st0 = fst(fd);
    ck_assert_int_eq(h_sh(60, "cp '%s' '%s'", p, local), 0);
    char out[2000] = "";
    int rc = h_run(60, out, sizeof(out), "fallocate --dig-holes '%s'", p);
    ck_assert_msg(rc == 0, "fallocate --dig-holes: %d: %s", rc, out);
    ck_assert_int_eq(h_sh(60, "cmp '%s' '%s'", p, local), 0);
    struct stat st = fst(fd);
    ck_assert_int_eq(st.st_size, 9 * MiB);
    ck_assert_msg(st0.st_blocks - st.st_blocks >= (3 * MiB) / 512,
                  "st_blocks %lld -> %lld after digging ~3 MiB of holes", (long long)st0.st_blocks,
                  (long long)st.st_blocks);
    ck_assert_int_eq(close(fd), 0);
    hr_fresh_mount();
    ck_assert_int_eq(h_sh(60, "cmp '%s' '%s'", p, local), 0);
    copies_identical("f", NULL);
}
END_TEST

START_TEST(modes_refused)
{
    start("fa-refused");
    int fd = open_file("f", O_CREAT | O_RDWR);
    write_pattern(fd, 2 * MiB);
    errno = 0;
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 64 * KiB), -1);
    ck_assert_int_eq(errno, EOPNOTSUPP);
    errno = 0;
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, 64 * KiB), -1);
    ck_assert_int_eq(errno, EOPNOTSUPP);
    errno = 0;
    ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 64 * KiB), -1); /* no KEEP_SIZE */
    ck_assert_int_eq(errno, EOPNOTSUPP);
    ck_assert_int_eq(fst(fd).st_size, 2 * MiB);
    expect(fd, 2 * MiB, NULL, 0, "after the refusals");
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"mode0_reserves", mode0_reserves}, {"enospc_reserves_nothing", enospc_reserves_nothing},
        {"punch_hole", punch_hole},         {"zero_range", zero_range},
        {"dig_holes", dig_holes},           {"modes_refused", modes_refused},
    };
    return hr_main("fallocate", "mount_fallocate", tests, sizeof(tests) / sizeof(tests[0]), 180);
}
