/* test_mount_data.c - file data on a real mount of a real cluster: a byte-exact 300 MiB round
 * trip (sequential and random offsets, reads and overwrites), close-to-open consistency
 * between two mounts of one cluster, coherence of one file open twice in one mount (and
 * mmap), many threads reading and writing one file at once, open files whose name another
 * mount removes or replaces, and EIO rather than a hang when the only chunk server dies under a
 * reader.
 *
 * The cluster has one chunk server and two mounts; the chunk-server kill runs last. Data is a
 * function of (seed, offset) (harness_fs.c), so nothing is kept in memory to compare with. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define CHUNK (64L * MiB)
#define FUSE_SUPER_MAGIC 0x65735546
#define IO_TIMEOUT_S "10"

static struct hfs_env E;

/* ---- helpers ------------------------------------------------------------------------------ */

static void need(void)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    if (E.local) return;
    for (int k = 0; k < E.nmnt; k++) {
        struct statfs sf;
        ck_assert_int_eq(statfs(E.root[k], &sf), 0);
        ck_assert_msg(sf.f_type == FUSE_SUPER_MAGIC, "%s is not a FUSE mount", E.root[k]);
    }
}

/* path of NAME under test folder DIR of mount k */
static void mpath(char *out, size_t len, int k, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s/%s", E.root[k], dir, name);
}

static int xopen(const char *p, int fl, mode_t m)
{
    int fd = open(p, fl, m);
    ck_assert_msg(fd >= 0, "open(%s, 0%o): %s", p, fl, strerror(errno));
    return fd;
}

static off_t fsize(int fd)
{
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    return st.st_size;
}

static void drop_cache(int fd)
{
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A file image: a base pattern, then overwrites applied in order. */
struct ovl {
    off_t off;
    size_t len;
    uint64_t seed;
};

struct image {
    uint64_t seed;
    off_t size;
    int n;
    struct ovl o[128];
};

/* What [off, off+len) of the image holds. */
static void image_fill(const struct image *im, char *buf, off_t off, size_t len)
{
    if (im->seed)
        hfs_fill(buf, len, im->seed, (uint64_t)off);
    else
        memset(buf, 0, len); /* seed 0: a sparse file, zeros under the overwrites */
    for (int i = 0; i < im->n; i++) {
        off_t a = im->o[i].off > off ? im->o[i].off : off;
        off_t e1 = im->o[i].off + (off_t)im->o[i].len, e2 = off + (off_t)len;
        off_t b = e1 < e2 ? e1 : e2;
        if (a < b) hfs_fill(buf + (a - off), (size_t)(b - a), im->o[i].seed, (uint64_t)a);
    }
}

/* Read [off, off+len) with pread and compare with the image. */
static void image_expect(int fd, const struct image *im, off_t off, size_t len, char *buf,
                         char *want)
{
    size_t got = 0;
    int rc = hfs_pread_all(fd, buf, len, off, &got);
    ck_assert_msg(rc == 0, "pread %zu at %lld: %s", len, (long long)off, strerror(-rc));
    size_t exp = off >= im->size                  ? 0
                 : (size_t)(im->size - off) < len ? (size_t)(im->size - off)
                                                  : len;
    ck_assert_msg(got == exp, "pread %zu at %lld gave %zu bytes, expected %zu", len, (long long)off,
                  got, exp);
    image_fill(im, want, off, got);
    if (memcmp(buf, want, got) != 0) {
        size_t i = 0;
        while (buf[i] == want[i])
            i++;
        ck_abort_msg("byte %lld differs: 0x%02x, expected 0x%02x", (long long)(off + (off_t)i),
                     (uint8_t)buf[i], (uint8_t)want[i]);
    }
}

/* Read the whole file sequentially with read(2) in bs pieces and compare with the image. */
static void image_expect_seq(int fd, const struct image *im, size_t bs)
{
    char *buf = malloc(bs), *want = malloc(bs);
    ck_assert(buf && want);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    off_t off = 0;
    for (;;) {
        size_t got = 0;
        while (got < bs) {
            ssize_t n = read(fd, buf + got, bs - got);
            ck_assert_msg(n >= 0, "read at %lld: %s", (long long)(off + (off_t)got),
                          strerror(errno));
            if (n == 0) break;
            got += (size_t)n;
        }
        if (got == 0) break;
        ck_assert_msg(off + (off_t)got <= im->size, "read past the size %lld", (long long)im->size);
        image_fill(im, want, off, got);
        if (memcmp(buf, want, got) != 0) {
            size_t i = 0;
            while (buf[i] == want[i])
                i++;
            ck_abort_msg("sequential read: byte %lld differs", (long long)(off + (off_t)i));
        }
        off += (off_t)got;
    }
    ck_assert_msg(off == im->size, "sequential read ended at %lld of %lld", (long long)off,
                  (long long)im->size);
    free(buf);
    free(want);
}

static void write_pattern(int fd, uint64_t seed, off_t off, size_t len)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    hfs_fill(b, len, seed, (uint64_t)off);
    int rc = hfs_pwrite_all(fd, b, len, off);
    ck_assert_msg(rc == 0, "pwrite %zu at %lld: %s", len, (long long)off, strerror(-rc));
    free(b);
}

/* ---- the 300 MiB round trip ------------------------------------------------------------------ */

#define BIG (300L * MiB)

START_TEST(big_roundtrip)
{
    need();
    char d[600], p0[700], p1[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "big", d, sizeof(d)), 0);
    mpath(p0, sizeof(p0), 0, "big", "f");
    mpath(p1, sizeof(p1), 1, "big", "f");
    static struct image im;
    memset(&im, 0, sizeof(im));
    im.seed = 0xb16f11e;
    im.size = BIG;

    /* sequential write in 1 MiB pieces */
    double t0 = now_s();
    char *buf = malloc(4 * MiB), *want = malloc(4 * MiB);
    ck_assert(buf && want);
    int fd = xopen(p0, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    for (off_t off = 0; off < BIG; off += MiB) {
        hfs_fill(buf, MiB, im.seed, (uint64_t)off);
        int rc = hfs_pwrite_all(fd, buf, MiB, off);
        ck_assert_msg(rc == 0, "write at %lld: %s", (long long)off, strerror(-rc));
    }
    ck_assert_int_eq(close(fd), 0);
    double t1 = now_s();
    struct stat st;
    ck_assert_int_eq(stat(p0, &st), 0);
    ck_assert_int_eq(st.st_size, BIG);

    /* sequential read back, through an empty page cache */
    fd = xopen(p0, O_RDONLY, 0);
    drop_cache(fd);
    image_expect_seq(fd, &im, MiB);
    double t2 = now_s();

    /* random offsets and lengths, some across chunk boundaries and the end */
    struct hfs_rng r;
    hfs_rng_seed(&r, 42);
    drop_cache(fd);
    for (int i = 0; i < 200; i++) {
        off_t off = (off_t)hfs_rng_below(&r, BIG);
        size_t len = 1 + hfs_rng_below(&r, 3 * MiB);
        if (i % 20 == 0) off = CHUNK * (1 + i / 20 % 4) - (off_t)(len / 2);
        image_expect(fd, &im, off, len, buf, want);
    }
    image_expect(fd, &im, BIG - 100, 1000, buf, want);
    image_expect(fd, &im, BIG, 10, buf, want);
    ck_assert_int_eq(close(fd), 0);

    /* random overwrites through one descriptor, read back through it as they go */
    fd = xopen(p0, O_RDWR, 0);
    for (int i = 0; i < 64; i++) {
        struct ovl *o = &im.o[im.n];
        o->len = 1 + hfs_rng_below(&r, 2 * MiB);
        o->off = (off_t)hfs_rng_below(&r, BIG - (off_t)o->len);
        if (i % 8 == 0) o->off = CHUNK * (1 + i / 8 % 4) - 4096 - (off_t)hfs_rng_below(&r, 64);
        o->seed = 5000 + (uint64_t)i;
        write_pattern(fd, o->seed, o->off, o->len);
        im.n++;
        off_t c = o->off > 10000 ? o->off - 10000 : 0;
        image_expect(fd, &im, c, o->len + 20000, buf, want);
    }
    ck_assert_int_eq(fsize(fd), BIG);
    ck_assert_int_eq(close(fd), 0);
    double t3 = now_s();

    /* the other mount (its own kernel cache and client): everything, sequential and random */
    fd = xopen(p1, O_RDONLY, 0);
    ck_assert_int_eq(fsize(fd), BIG);
    image_expect_seq(fd, &im, 4 * MiB);
    drop_cache(fd);
    for (int i = 0; i < 100; i++) {
        off_t off = (off_t)hfs_rng_below(&r, BIG);
        image_expect(fd, &im, off, 1 + hfs_rng_below(&r, 4 * MiB), buf, want);
    }
    ck_assert_int_eq(close(fd), 0);
    double t4 = now_s();
    fprintf(stderr,
            "big_roundtrip: write %.1f MiB/s, read %.1f MiB/s, overwrites %.1fs, "
            "other mount %.1fs\n",
            300 / (t1 - t0), 300 / (t2 - t1), t3 - t2, t4 - t3);
    free(buf);
    free(want);
    ck_assert_int_eq(unlink(p0), 0);
}
END_TEST

/* ---- close-to-open between two mounts -------------------------------------------------------- */

static void c2o_check(const char *path, uint64_t seed, off_t size)
{
    int fd = xopen(path, O_RDONLY, 0);
    ck_assert_msg(fsize(fd) == size, "%s: size %lld after open, the writer closed at %lld", path,
                  (long long)fsize(fd), (long long)size);
    struct image im = {.seed = seed, .size = size};
    size_t bs = size > 4 * MiB ? 4 * MiB : (size_t)size + 16;
    image_expect_seq(fd, &im, bs);
    ck_assert_int_eq(close(fd), 0);
}

START_TEST(close_to_open)
{
    need();
    char d[600], w[700], r[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "c2o", d, sizeof(d)), 0);
    mpath(w, sizeof(w), 0, "c2o", "f");
    mpath(r, sizeof(r), 1, "c2o", "f");
    /* sizes that grow and shrink; the reader has looked at the file just before each rewrite */
    const off_t sizes[] = {1, 100, 65536 + 3, 3 * MiB + 5, 17, 0, 2 * MiB, 1000, CHUNK + 5 * MiB};
    struct stat st;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t seed = 100 + i;
        if (i > 0) {
            ck_assert_int_eq(stat(r, &st), 0); /* the reader's caches hold the old file */
            int fd = xopen(r, O_RDONLY, 0);
            char b[64];
            ck_assert_int_ge(read(fd, b, sizeof(b)), 0);
            close(fd);
        }
        int fd = xopen(w, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        write_pattern(fd, seed, 0, (size_t)sizes[i]);
        ck_assert_int_eq(close(fd), 0);
        c2o_check(r, seed, sizes[i]);
    }

    /* appends by the writer; rewrites in place (same size, so only mtime tells) */
    int fd = xopen(w, O_WRONLY | O_APPEND, 0);
    write_pattern(fd, 900, CHUNK + 5 * MiB, 12345);
    ck_assert_int_eq(close(fd), 0);
    fd = xopen(r, O_RDONLY, 0);
    ck_assert_int_eq(fsize(fd), CHUNK + 5 * MiB + 12345);
    struct image im = {.seed = 108, .size = CHUNK + 5 * MiB + 12345, .n = 1};
    im.o[0] = (struct ovl){CHUNK + 5 * MiB, 12345, 900};
    char *buf = malloc(4 * MiB), *want = malloc(4 * MiB);
    ck_assert(buf && want);
    image_expect(fd, &im, CHUNK + 4 * MiB, 2 * MiB, buf, want);
    ck_assert_int_eq(close(fd), 0);
    for (int round = 0; round < 3; round++) {
        fd = xopen(w, O_WRONLY, 0);
        write_pattern(fd, 1000 + (uint64_t)round, 4096, 8192);
        ck_assert_int_eq(close(fd), 0);
        im.o[im.n++] = (struct ovl){4096, 8192, 1000 + (uint64_t)round};
        fd = xopen(r, O_RDONLY, 0);
        image_expect(fd, &im, 0, 65536, buf, want);
        ck_assert_int_eq(close(fd), 0);
    }

    /* the other direction, and a new name made on one mount opened on the other */
    char w2[700], r2[700];
    mpath(w2, sizeof(w2), 1, "c2o", "back");
    mpath(r2, sizeof(r2), 0, "c2o", "back");
    fd = xopen(w2, O_CREAT | O_WRONLY | O_EXCL, 0640);
    write_pattern(fd, 77, 0, MiB + 1);
    ck_assert_int_eq(close(fd), 0);
    c2o_check(r2, 77, MiB + 1);
    ck_assert_int_eq(stat(r2, &st), 0);
    ck_assert_int_eq(st.st_mode, S_IFREG | 0640);
    free(buf);
    free(want);
}
END_TEST

/* fsync publishes size and data to other clients before the writer closes. */
START_TEST(fsync_visible)
{
    need();
    char d[600], w[700], r[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "fsyncvis", d, sizeof(d)), 0);
    mpath(w, sizeof(w), 0, "fsyncvis", "f");
    mpath(r, sizeof(r), 1, "fsyncvis", "f");
    int fd = xopen(w, O_CREAT | O_RDWR, 0644);
    write_pattern(fd, 31, 0, 2 * MiB + 7);
    ck_assert_int_eq(fsync(fd), 0);
    struct stat st;
    ck_assert_int_eq(stat(r, &st), 0); /* first look from mount 1 */
    ck_assert_int_eq(st.st_size, 2 * MiB + 7);
    int rfd = xopen(r, O_RDONLY, 0);
    struct image im = {.seed = 31, .size = 2 * MiB + 7};
    image_expect_seq(rfd, &im, MiB);
    ck_assert_int_eq(close(rfd), 0);
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* ---- one file open twice in one mount -------------------------------------------------------- */

START_TEST(two_fds_coherent)
{
    need();
    char d[600], p[700], p1[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "twofd", d, sizeof(d)), 0);
    mpath(p, sizeof(p), 0, "twofd", "f");
    mpath(p1, sizeof(p1), 1, "twofd", "f");
    char *buf = malloc(8 * MiB), *want = malloc(8 * MiB);
    ck_assert(buf && want);
    struct image im = {.seed = 0, .size = 0};
    int a = xopen(p, O_CREAT | O_RDWR, 0644), b = xopen(p, O_RDWR, 0);

    write_pattern(a, 1, 0, MiB);
    im.o[im.n++] = (struct ovl){0, MiB, 1};
    im.size = MiB;
    image_expect(b, &im, 0, MiB, buf, want); /* b sees a's write at once */

    write_pattern(b, 2, 512 * 1024, 4096);
    im.o[im.n++] = (struct ovl){512 * 1024, 4096, 2};
    image_expect(a, &im, 0, MiB, buf, want);

    write_pattern(a, 3, 5 * MiB, 1000); /* a extends; b sees the new size */
    im.o[im.n++] = (struct ovl){5 * MiB, 1000, 3};
    im.size = 5 * MiB + 1000;
    ck_assert_int_eq(fsize(b), 5 * MiB + 1000);
    /* the gap is a hole: the image's base for it must be zeros, so check it on its own */
    size_t got = 0;
    ck_assert_int_eq(hfs_pread_all(b, buf, 4 * MiB, MiB, &got), 0);
    ck_assert_int_eq(got, 4 * MiB);
    ck_assert_int_lt(hfs_first_nonzero(buf, 4 * MiB), 0);
    ck_assert_int_eq(hfs_pread_all(b, buf, 1000, 5 * MiB, &got), 0);
    ck_assert_int_eq(got, 1000);
    ck_assert_int_lt(hfs_check(buf, 1000, 3, 5 * MiB), 0);

    /* interleaved small writes from both, then b truncates and a sees it */
    for (int i = 0; i < 50; i++) {
        int fd = i % 2 ? a : b;
        off_t off = (off_t)i * 40000 + 17;
        write_pattern(fd, 10 + (uint64_t)i, off, 30000);
        im.o[im.n++] = (struct ovl){off, 30000, 10 + (uint64_t)i};
    }
    ck_assert_int_eq(ftruncate(b, 3 * MiB), 0);
    ck_assert_int_eq(fsize(a), 3 * MiB);
    char c;
    ck_assert_int_eq(pread(a, &c, 1, 5 * MiB), 0);
    im.size = 3 * MiB;
    /* the image without a base: check overwritten ranges, zeros elsewhere */
    ck_assert_int_eq(hfs_pread_all(a, buf, 3 * MiB, 0, &got), 0);
    ck_assert_int_eq(got, 3 * MiB);
    memset(want, 0, 3 * MiB);
    for (int i = 0; i < im.n; i++) {
        off_t s0 = im.o[i].off, e0 = s0 + (off_t)im.o[i].len;
        if (s0 >= 3 * MiB) continue;
        if (e0 > 3 * MiB) e0 = 3 * MiB;
        hfs_fill(want + s0, (size_t)(e0 - s0), im.o[i].seed, (uint64_t)s0);
    }
    ck_assert_msg(memcmp(buf, want, 3 * MiB) == 0, "interleaved writes lost");
    ck_assert_int_eq(close(a), 0);
    write_pattern(b, 99, 3 * MiB, 10); /* b writes on after a closed */
    ck_assert_int_eq(close(b), 0);
    hfs_fill(want + 3 * MiB, 10, 99, 3 * MiB);

    /* a fresh open on each mount sees the union */
    for (int k = 0; k < 2; k++) {
        int fd = xopen(k ? p1 : p, O_RDONLY, 0);
        drop_cache(fd);
        ck_assert_int_eq(fsize(fd), 3 * MiB + 10);
        ck_assert_int_eq(hfs_pread_all(fd, buf, 8 * MiB, 0, &got), 0);
        ck_assert_int_eq(got, 3 * MiB + 10);
        ck_assert_msg(memcmp(buf, want, got) == 0, "mount %d: content differs", k);
        ck_assert_int_eq(close(fd), 0);
    }
    free(buf);
    free(want);
}
END_TEST

/* A shared writable mapping, written, synced, read through the other mount. */
START_TEST(mmap_shared)
{
    need();
    char d[600], p[700], p1[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "mmap", d, sizeof(d)), 0);
    mpath(p, sizeof(p), 0, "mmap", "f");
    mpath(p1, sizeof(p1), 1, "mmap", "f");
    const size_t len = 4 * MiB + 123;
    int fd = xopen(p, O_CREAT | O_RDWR, 0644);
    ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_msg(m != MAP_FAILED, "mmap: %s", strerror(errno));
    hfs_fill(m, len, 555, 0);
    ck_assert_int_eq(msync(m, len, MS_SYNC), 0);
    ck_assert_int_eq(munmap(m, len), 0);
    ck_assert_int_eq(close(fd), 0);
    fd = xopen(p1, O_RDONLY, 0);
    ck_assert_int_eq(fsize(fd), (off_t)len);
    m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_msg(m != MAP_FAILED, "mmap: %s", strerror(errno));
    ck_assert_int_lt(hfs_check(m, len, 555, 0), 0);
    ck_assert_int_eq(munmap(m, len), 0);
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* ---- many threads on one file ---------------------------------------------------------------- */

#define PAR_SIZE (CHUNK + 32 * MiB)
#define PAR_THREADS 8

struct par_arg {
    const char *path;
    int shared_fd;
    uint64_t seed;
    int bad; /* reads that went wrong */
    char why[160];
};

static void *par_reader(void *p)
{
    struct par_arg *a = p;
    int fd = open(a->path, O_RDONLY);
    char *buf = malloc(2 * MiB);
    if (fd < 0 || !buf) {
        a->bad++;
        snprintf(a->why, sizeof(a->why), "open/malloc: %s", strerror(errno));
        goto out;
    }
    struct hfs_rng r;
    hfs_rng_seed(&r, a->seed);
    for (int i = 0; i < 60; i++) {
        off_t off = (off_t)hfs_rng_below(&r, PAR_SIZE);
        size_t len = 1 + hfs_rng_below(&r, 2 * MiB);
        size_t want = off + (off_t)len > PAR_SIZE ? (size_t)(PAR_SIZE - off) : len, got = 0;
        int rc = hfs_pread_all(i % 2 ? a->shared_fd : fd, buf, len, off, &got);
        if (rc || got != want || hfs_check(buf, got, 777, (uint64_t)off) >= 0) {
            a->bad++;
            snprintf(a->why, sizeof(a->why), "pread %zu at %lld: rc %d, %zu bytes, data %s", len,
                     (long long)off, rc, got,
                     hfs_check(buf, got, 777, (uint64_t)off) >= 0 ? "wrong" : "right");
        }
    }
out:
    if (fd >= 0) close(fd);
    free(buf);
    return NULL;
}

static void *par_writer(void *p)
{
    struct par_arg *a = p;
    char *buf = malloc(65536);
    if (!buf) {
        a->bad++;
        return NULL;
    }
    for (int j = 0; j < 16; j++) {
        off_t off = ((off_t)a->seed * 16 + j) * 65536;
        hfs_fill(buf, 65536, 888, (uint64_t)off);
        if (hfs_pwrite_all(a->shared_fd, buf, 65536, off) != 0) {
            a->bad++;
            snprintf(a->why, sizeof(a->why), "pwrite at %lld: %s", (long long)off, strerror(errno));
        }
    }
    free(buf);
    return NULL;
}

START_TEST(parallel_io)
{
    need();
    char d[600], p0[700], p1[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "par", d, sizeof(d)), 0);
    mpath(p0, sizeof(p0), 0, "par", "f");
    mpath(p1, sizeof(p1), 1, "par", "f");
    int fd = xopen(p0, O_CREAT | O_WRONLY, 0644);
    for (off_t off = 0; off < PAR_SIZE; off += 4 * MiB)
        write_pattern(fd, 777, off, 4 * MiB);
    ck_assert_int_eq(close(fd), 0);

    /* readers on the other mount, each with its own descriptor and one shared by all */
    int shared = xopen(p1, O_RDONLY, 0);
    pthread_t th[PAR_THREADS];
    struct par_arg args[PAR_THREADS];
    for (int i = 0; i < PAR_THREADS; i++) {
        args[i] = (struct par_arg){.path = p1, .shared_fd = shared, .seed = 10 + (uint64_t)i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, par_reader, &args[i]), 0);
    }
    for (int i = 0; i < PAR_THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].bad == 0, "reader %d: %d bad reads, last: %s", i, args[i].bad,
                      args[i].why);
    }
    ck_assert_int_eq(close(shared), 0);

    /* writers of interleaved 64 KiB blocks through one descriptor */
    mpath(p0, sizeof(p0), 0, "par", "w");
    mpath(p1, sizeof(p1), 1, "par", "w");
    shared = xopen(p0, O_CREAT | O_RDWR, 0644);
    for (int i = 0; i < PAR_THREADS; i++) {
        args[i] = (struct par_arg){.path = p0, .shared_fd = shared, .seed = (uint64_t)i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, par_writer, &args[i]), 0);
    }
    for (int i = 0; i < PAR_THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].bad == 0, "writer %d: %s", i, args[i].why);
    }
    ck_assert_int_eq(close(shared), 0);
    fd = xopen(p1, O_RDONLY, 0);
    struct image im = {.seed = 888, .size = PAR_THREADS * 16 * 65536};
    image_expect_seq(fd, &im, MiB);
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* ---- open files and another mount's namespace changes ---------------------------------------- */

START_TEST(remote_unlink_open)
{
    need();
    char d[600], a0[700], a1[700], b0[700], b1[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "runlink", d, sizeof(d)), 0);
    mpath(a0, sizeof(a0), 0, "runlink", "a");
    mpath(a1, sizeof(a1), 1, "runlink", "a");
    mpath(b0, sizeof(b0), 0, "runlink", "b");
    mpath(b1, sizeof(b1), 1, "runlink", "b");
    char *buf = malloc(4 * MiB), *want = malloc(4 * MiB);
    ck_assert(buf && want);

    /* mount 1 unlinks a file mount 0 has open: mount 0 reads and writes on */
    int fd = xopen(a0, O_CREAT | O_RDWR, 0644);
    write_pattern(fd, 61, 0, 3 * MiB);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(unlink(a1), 0);
    drop_cache(fd);
    struct image im = {.seed = 61, .size = 3 * MiB};
    image_expect(fd, &im, 0, 3 * MiB, buf, want);
    write_pattern(fd, 62, 3 * MiB, MiB);
    ck_assert_int_eq(fsync(fd), 0);
    drop_cache(fd);
    im.o[im.n++] = (struct ovl){3 * MiB, MiB, 62};
    im.size = 4 * MiB;
    image_expect(fd, &im, 0, 4 * MiB, buf, want);
    ck_assert_int_eq(close(fd), 0);

    /* mount 1 renames another file over one mount 0 is reading */
    fd = xopen(b0, O_CREAT | O_WRONLY, 0644);
    write_pattern(fd, 63, 0, 2 * MiB);
    ck_assert_int_eq(close(fd), 0);
    fd = xopen(a0, O_CREAT | O_WRONLY | O_EXCL, 0644);
    write_pattern(fd, 64, 0, 100);
    ck_assert_int_eq(close(fd), 0);
    int rfd = xopen(b0, O_RDONLY, 0);
    ck_assert_int_eq(rename(a1, b1), 0);
    drop_cache(rfd);
    struct image old = {.seed = 63, .size = 2 * MiB};
    image_expect(rfd, &old, 0, 2 * MiB, buf, want);
    ck_assert_int_eq(close(rfd), 0);
    struct image repl = {.seed = 64, .size = 100};
    fd = xopen(b1, O_RDONLY, 0);
    image_expect(fd, &repl, 0, 4096, buf, want);
    ck_assert_int_eq(close(fd), 0);
    free(buf);
    free(want);
}
END_TEST

/* ---- a chunk server dies under a reader ------------------------------------------------------ */

START_TEST(cs_kill_eio)
{
    need();
    if (E.local) return; /* nothing to kill */
    char d[600], p0[700], p1[700];
    ck_assert_int_eq(hfs_subdir(&E, 0, "kill", d, sizeof(d)), 0);
    mpath(p0, sizeof(p0), 0, "kill", "f");
    mpath(p1, sizeof(p1), 1, "kill", "f");
    const off_t size = CHUNK + 32 * MiB;
    int fd = xopen(p0, O_CREAT | O_WRONLY, 0644);
    char *buf = malloc(MiB);
    ck_assert_ptr_nonnull(buf);
    for (off_t off = 0; off < size; off += MiB) {
        hfs_fill(buf, MiB, 4242, (uint64_t)off);
        ck_assert_int_eq(hfs_pwrite_all(fd, buf, MiB, off), 0);
    }
    ck_assert_int_eq(close(fd), 0);

    /* mount 1 has never read it: nothing is cached there */
    fd = xopen(p1, O_RDONLY, 0);
    drop_cache(fd);
    ck_assert_int_eq(read(fd, buf, MiB), MiB);
    ck_assert_int_lt(hfs_check(buf, MiB, 4242, 0), 0);

    ck_assert_int_eq(kill(E.c.cs_pid[0], SIGKILL), 0);
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    alarm(150); /* a hang ends this test with SIGALRM */
    double t0 = now_s();
    off_t off = MiB;
    int err = 0;
    while (off < size) {
        ssize_t n = read(fd, buf, MiB);
        if (n < 0) {
            err = errno;
            break;
        }
        ck_assert_msg(n > 0, "EOF at %lld", (long long)off);
        ck_assert_msg(hfs_check(buf, (size_t)n, 4242, (uint64_t)off) < 0,
                      "wrong data at %lld after the kill", (long long)off);
        off += n;
    }
    double dt = now_s() - t0;
    alarm(0);
    ck_assert_msg(err == EIO, "reads after the kill: %s at %lld (after %.1fs)",
                  err ? strerror(err) : "no error up to the end", (long long)off, dt);
    ck_assert_msg(dt < 3 * atoi(IO_TIMEOUT_S) + 10, "EIO took %.1fs with io_timeout=%ss", dt,
                  IO_TIMEOUT_S);
    fprintf(stderr, "cs_kill_eio: EIO at offset %lld after %.1fs\n", (long long)off, dt);
    /* the mount is still alive: the namespace answers */
    struct stat st;
    ck_assert_int_eq(stat(p1, &st), 0);
    ck_assert_int_eq(st.st_size, size);
    close(fd);
    free(buf);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    hfs_stop_on_signal(&E);
    /* io_timeout bounds how long a dead chunk server can hold a read (cs_kill_eio) */
    hfs_env_start(&E, "data", 1, 2, "io_timeout=" IO_TIMEOUT_S);
    if (!E.ready) fprintf(stderr, "test_mount_data: setup failed: %s\n", E.why);

    Suite *s = suite_create("mount_data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, big_roundtrip);
    tcase_add_test(tc, close_to_open);
    tcase_add_test(tc, fsync_visible);
    tcase_add_test(tc, two_fds_coherent);
    tcase_add_test(tc, mmap_shared);
    tcase_add_test(tc, parallel_io);
    tcase_add_test(tc, remote_unlink_open);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("faults"); /* last: it leaves the cluster without data */
    tcase_set_timeout(tk, 300);
    tcase_add_test(tk, cs_kill_eio);
    suite_add_tcase(s, tk);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
