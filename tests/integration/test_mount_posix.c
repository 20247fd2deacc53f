/* test_mount_posix.c - POSIX semantics of the file-system calls on a real FUSE mount of a real
 * local cluster, in the spirit of pjdfstest: every call's success and error cases, asserted on
 * return values, errno, bytes and stat fields.
 *
 * One cluster (two chunk servers) and one mount (with allow_other, so a forked child running
 * as another user can use it) serve every test; each test works in its own fresh folder at the
 * root of the mount. With $CAIRN_ITEST_DIR set the same tests run on a local folder instead,
 * which checks the tests themselves against the kernel's own file systems. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define CHUNK (64L * MiB) /* the default chunk size the cluster is formatted with */
#define FUSE_SUPER_MAGIC 0x65735546

static struct hfs_env E;
static char D[600]; /* this test's folder, also the working directory */

/* ---- helpers ----------------------------------------------------------------------------- */

/* Start a test: a fresh folder named after it, made the working directory. */
static void td(const char *name)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    int rc = hfs_subdir(&E, 0, name, D, sizeof(D));
    ck_assert_msg(rc == 0, "cannot make %s: %s", D, strerror(-rc));
    ck_assert_int_eq(chdir(D), 0);
    struct statfs sf;
    ck_assert_int_eq(statfs(".", &sf), 0);
    ck_assert_msg(E.local || sf.f_type == FUSE_SUPER_MAGIC, "%s is not on a FUSE mount", D);
    umask(022);
}

static int xopen(const char *p, int fl, mode_t m)
{
    int fd = open(p, fl, m);
    ck_assert_msg(fd >= 0, "open(%s, 0%o): %s", p, fl, strerror(errno));
    return fd;
}

static struct stat xstat(const char *p)
{
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "stat(%s): %s", p, strerror(errno));
    return st;
}

static struct stat xlstat(const char *p)
{
    struct stat st;
    ck_assert_msg(lstat(p, &st) == 0, "lstat(%s): %s", p, strerror(errno));
    return st;
}

static struct stat xfstat(int fd)
{
    struct stat st;
    ck_assert_msg(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
    return st;
}

static void put(const char *p, const char *s)
{
    int rc = hfs_write_file(p, s, strlen(s), 0644);
    ck_assert_msg(rc == 0, "write %s: %s", p, strerror(-rc));
}

static void expect(const char *p, const char *s)
{
    char buf[4096];
    size_t n = 0;
    int rc = hfs_read_file(p, buf, sizeof(buf) - 1, &n);
    ck_assert_msg(rc == 0, "read %s: %s", p, strerror(-rc));
    buf[n] = '\0';
    ck_assert_msg(n == strlen(s) && memcmp(buf, s, n) == 0, "%s holds \"%s\", expected \"%s\"", p,
                  buf, s);
}

static void expect_fd(int fd, off_t off, const char *s)
{
    char buf[4096];
    size_t n = 0;
    int rc = hfs_pread_all(fd, buf, sizeof(buf) - 1, off, &n);
    ck_assert_msg(rc == 0, "pread: %s", strerror(-rc));
    buf[n] = '\0';
    ck_assert_msg(n == strlen(s) && memcmp(buf, s, n) == 0,
                  "fd holds \"%s\" at %lld, expected "
                  "\"%s\"",
                  buf, (long long)off, s);
}

/* The bytes at off are s (whatever follows). */
static void expect_at(int fd, off_t off, const char *s)
{
    char buf[256];
    size_t n = 0, l = strlen(s);
    ck_assert_uint_lt(l, sizeof(buf));
    int rc = hfs_pread_all(fd, buf, l, off, &n);
    ck_assert_msg(rc == 0, "pread: %s", strerror(-rc));
    ck_assert_msg(n == l && memcmp(buf, s, n) == 0, "%zu bytes at %lld differ from \"%s\"", n,
                  (long long)off, s);
}

static void wr(int fd, const char *s)
{
    ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Write len pattern bytes (seed) at off. */
static void pat_write(int fd, uint64_t seed, off_t off, size_t len)
{
    char *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    hfs_fill(b, len, seed, (uint64_t)off);
    int rc = hfs_pwrite_all(fd, b, len, off);
    ck_assert_msg(rc == 0, "pwrite %zu at %lld: %s", len, (long long)off, strerror(-rc));
    free(b);
}

/* [off, off+len) must hold the pattern of seed (seed 0: zeros). */
static void pat_expect(int fd, uint64_t seed, off_t off, size_t len)
{
    char *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    size_t got = 0;
    int rc = hfs_pread_all(fd, b, len, off, &got);
    ck_assert_msg(rc == 0, "pread %zu at %lld: %s", len, (long long)off, strerror(-rc));
    ck_assert_msg(got == len, "pread %zu at %lld gave %zu bytes", len, (long long)off, got);
    ssize_t bad = seed ? hfs_check(b, len, seed, (uint64_t)off) : hfs_first_nonzero(b, len);
    ck_assert_msg(bad < 0, "byte %lld differs (%s expected, got 0x%02x)", (long long)(off + bad),
                  seed ? "pattern" : "zero", bad < 0 ? 0 : (uint8_t)b[bad]);
    free(b);
}

/* Drop this file's pages from the kernel cache so the next read goes to the file system. */
static void drop_cache(int fd)
{
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static int near_now(time_t t)
{
    time_t now = time(NULL);
    return t >= now - 30 && t <= now + 30;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int ts_after(struct timespec a, struct timespec b)
{
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static void set_times(const char *p, time_t at, time_t mt)
{
    struct timespec ts[2] = {{at, 0}, {mt, 0}};
    HFS_OK(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW));
}

static int renameat2_(const char *a, const char *b, unsigned flags)
{
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

/* ---- running a call as another user --------------------------------------------------------- */

struct cred {
    uid_t uid;
    gid_t gid;
    int ng;
    gid_t groups[4];
};

struct uop {
    const char *path;
    int flags;
    unsigned arg;
};

typedef int (*user_fn)(const struct uop *);

/* Run fn in a child with cr's credentials (and no capabilities); returns what fn returned (an
 * errno value, 0 for success). */
static int as_user(const struct cred *cr, user_fn fn, const struct uop *op)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(60);
        if (setgroups((size_t)cr->ng, cr->groups) != 0 ||
            setresgid(cr->gid, cr->gid, cr->gid) != 0 || setresuid(cr->uid, cr->uid, cr->uid) != 0)
            _exit(250);
        _exit(fn(op) & 0xff);
    }
    int st = 0;
    for (int i = 0; i < 6000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        ck_assert_int_eq(r, 0);
        if (i == 5999) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            ck_abort_msg("child as uid %u hung", cr->uid);
        }
        sleep_ms(10);
    }
    ck_assert_msg(WIFEXITED(st), "child as uid %u died (status 0x%x)", cr->uid, st);
    ck_assert_msg(WEXITSTATUS(st) != 250, "cannot switch to uid %u", cr->uid);
    return WEXITSTATUS(st);
}

static int u_open(const struct uop *o)
{
    int fd = open(o->path, o->flags, (mode_t)o->arg);
    if (fd < 0) return errno;
    close(fd);
    return 0;
}

static int u_read_secret(const struct uop *o)
{
    char b[16] = {0};
    int fd = open(o->path, O_RDONLY);
    if (fd < 0) return errno;
    ssize_t n = read(fd, b, sizeof(b) - 1);
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e) return e;
    return strcmp(b, "secret") == 0 ? 0 : 99;
}

static int u_write(const struct uop *o)
{
    int fd = open(o->path, O_WRONLY);
    if (fd < 0) return errno;
    int e = write(fd, "w", 1) == 1 ? 0 : errno;
    if (close(fd) != 0 && !e) e = errno;
    return e;
}

static int u_access(const struct uop *o)
{
    return access(o->path, (int)o->arg) == 0 ? 0 : errno;
}

static int u_unlink(const struct uop *o)
{
    return unlink(o->path) == 0 ? 0 : errno;
}

static int u_mkdir(const struct uop *o)
{
    return mkdir(o->path, (mode_t)o->arg) == 0 ? 0 : errno;
}

static int u_chmod(const struct uop *o)
{
    return chmod(o->path, (mode_t)o->arg) == 0 ? 0 : errno;
}

static int u_chown(const struct uop *o)
{
    return chown(o->path, (uid_t)o->arg, (gid_t)-1) == 0 ? 0 : errno;
}

static int u_stat(const struct uop *o)
{
    struct stat st;
    return stat(o->path, &st) == 0 ? 0 : errno;
}

/* ---- open flags ----------------------------------------------------------------------------- */

START_TEST(open_flags)
{
    td("open_flags");
    int fd = xopen("f", O_CREAT | O_WRONLY, 0666);
    struct stat st = xfstat(fd);
    ck_assert_int_eq(st.st_mode, S_IFREG | 0644); /* umask 022 applied */
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_int_eq(st.st_uid, 0);
    ck_assert_int_eq(st.st_nlink, 1);
    wr(fd, "hello");
    HFS_OK(close(fd));
    ck_assert_int_eq(xstat("f").st_size, 5);

    HFS_ERR(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    HFS_ERR(open("missing", O_RDONLY), ENOENT);
    HFS_ERR(open("nodir/x", O_CREAT | O_WRONLY, 0644), ENOENT);
    HFS_ERR(open("f/x", O_RDONLY), ENOTDIR);
    HFS_ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
    HFS_OK(mkdir("d", 0755));
    HFS_ERR(open("d", O_WRONLY), EISDIR);
    HFS_ERR(open("d", O_RDWR), EISDIR);
    HFS_ERR(open("d", O_CREAT | O_WRONLY, 0644), EISDIR);
    fd = xopen("d", O_RDONLY | O_DIRECTORY, 0);
    HFS_OK(close(fd));

    /* access modes are enforced on the descriptor */
    char b[16];
    fd = xopen("f", O_RDONLY, 0);
    HFS_ERR(write(fd, "x", 1), EBADF);
    ck_assert_int_eq(read(fd, b, sizeof(b)), 5);
    ck_assert_int_eq(memcmp(b, "hello", 5), 0);
    ck_assert_int_eq(read(fd, b, sizeof(b)), 0); /* EOF */
    HFS_OK(close(fd));
    fd = xopen("f", O_WRONLY, 0);
    HFS_ERR(read(fd, b, 1), EBADF);
    HFS_OK(close(fd));

    /* symlinks: O_NOFOLLOW, O_EXCL on a link even when it dangles */
    HFS_OK(symlink("f", "l"));
    HFS_ERR(open("l", O_RDONLY | O_NOFOLLOW), ELOOP);
    HFS_ERR(open("l", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    HFS_OK(symlink("nowhere", "dl"));
    HFS_ERR(open("dl", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
    HFS_ERR(stat("nowhere", &st), ENOENT);

    /* O_CREAT with mode 0 still gives the creator a writable descriptor */
    fd = xopen("m0", O_CREAT | O_RDWR, 0);
    wr(fd, "abc");
    ck_assert_int_eq(xfstat(fd).st_mode, S_IFREG);
    HFS_OK(close(fd));
    ck_assert_int_eq(xstat("m0").st_size, 3);
}
END_TEST

START_TEST(open_trunc)
{
    td("open_trunc");
    put("f", "0123456789");
    set_times("f", 1000000000, 1000000000);
    int fd = xopen("f", O_WRONLY | O_TRUNC, 0);
    struct stat st = xfstat(fd);
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_msg(near_now(st.st_mtime), "O_TRUNC did not update mtime (%lld)",
                  (long long)st.st_mtime);
    ck_assert_msg(near_now(st.st_ctime), "O_TRUNC did not update ctime");
    wr(fd, "ab");
    HFS_OK(close(fd));
    expect("f", "ab");
    ck_assert_int_eq(xstat("f").st_size, 2);

    /* O_TRUNC with O_RDWR */
    fd = xopen("f", O_RDWR | O_TRUNC, 0);
    ck_assert_int_eq(xfstat(fd).st_size, 0);
    HFS_OK(close(fd));
    ck_assert_int_eq(xstat("f").st_size, 0);

    /* O_TRUNC of a multi-chunk file, then rewrite: no old data comes back */
    fd = xopen("g", O_CREAT | O_RDWR, 0644);
    pat_write(fd, 7, CHUNK - 4096, 8192);
    HFS_OK(close(fd));
    fd = xopen("g", O_RDWR | O_TRUNC, 0);
    ck_assert_int_eq(xfstat(fd).st_size, 0);
    HFS_OK(ftruncate(fd, CHUNK + 8192));
    drop_cache(fd);
    pat_expect(fd, 0, CHUNK - 4096, 8192);
    HFS_OK(close(fd));
}
END_TEST

START_TEST(open_append)
{
    td("open_append");
    int fd = xopen("a", O_CREAT | O_WRONLY | O_APPEND, 0644);
    wr(fd, "123");
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    wr(fd, "45"); /* still at the end */
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 5);
    HFS_OK(close(fd));
    expect("a", "12345");

    int f1 = xopen("a", O_WRONLY | O_APPEND, 0), f2 = xopen("a", O_WRONLY | O_APPEND, 0);
    wr(f1, "A");
    wr(f2, "B");
    wr(f1, "C");
    ck_assert_int_eq(lseek(f1, 0, SEEK_CUR), 8);
    int f3 = xopen("a", O_WRONLY, 0);
    ck_assert_int_eq(pwrite(f3, "XY", 2, 8), 2);
    wr(f2, "Z"); /* goes after what f3 wrote */
    HFS_OK(close(f1));
    HFS_OK(close(f2));
    HFS_OK(close(f3));
    expect("a", "12345ABCXYZ");
    ck_assert_int_eq(xstat("a").st_size, 11);

    /* append across a chunk boundary of a sparse file */
    fd = xopen("b", O_CREAT | O_RDWR, 0644);
    HFS_OK(ftruncate(fd, CHUNK - 2));
    HFS_OK(close(fd));
    fd = xopen("b", O_WRONLY | O_APPEND, 0);
    wr(fd, "tail");
    HFS_OK(close(fd));
    fd = xopen("b", O_RDONLY, 0);
    ck_assert_int_eq(xfstat(fd).st_size, CHUNK + 2);
    expect_fd(fd, CHUNK - 2, "tail");
    pat_expect(fd, 0, CHUNK - 65536 - 2, 65536);
    HFS_OK(close(fd));
}
END_TEST

/* ---- sparse files, big files, truncate ---------------------------------------------------- */

START_TEST(sparse_holes)
{
    td("sparse_holes");
    int fd = xopen("s", O_CREAT | O_RDWR, 0644);
    pat_write(fd, 11, MiB + 100, 4096);
    ck_assert_int_eq(xfstat(fd).st_size, MiB + 4196);
    pat_expect(fd, 0, 0, MiB + 100);
    pat_expect(fd, 11, MiB + 100, 4096);
    char b[16];
    ck_assert_int_eq(pread(fd, b, sizeof(b), MiB + 4196), 0);
    ck_assert_int_eq(pread(fd, b, sizeof(b), 10 * MiB), 0);
    ck_assert_int_eq(pread(fd, b, sizeof(b), MiB + 4190), 6); /* short read at EOF */
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), MiB + 4196);

    /* a write in the fourth chunk: everything between reads as zeros */
    off_t far = 3 * CHUNK + 8 * MiB;
    pat_write(fd, 12, far, 10);
    ck_assert_int_eq(xfstat(fd).st_size, far + 10);
    pat_expect(fd, 0, MiB + 4196, MiB);
    pat_expect(fd, 0, CHUNK - 10, 20);
    pat_expect(fd, 0, 2 * CHUNK + 5 * MiB, MiB);
    pat_expect(fd, 0, far - MiB, MiB);
    pat_expect(fd, 12, far, 10);

    /* SEEK_DATA / SEEK_HOLE: a file system may report holes coarsely, never wrongly */
    off_t r = lseek(fd, 0, SEEK_DATA);
    ck_assert_msg(r >= 0 && r <= MiB + 100, "SEEK_DATA from 0 gave %lld", (long long)r);
    r = lseek(fd, 0, SEEK_HOLE);
    ck_assert_msg(r >= 0 && r <= far + 10 && !(r >= MiB + 100 && r < MiB + 4196),
                  "SEEK_HOLE from 0 gave %lld", (long long)r);
    r = lseek(fd, CHUNK + 1, SEEK_DATA);
    ck_assert_msg(r >= CHUNK + 1 && r <= far, "SEEK_DATA from chunk 1 gave %lld", (long long)r);
    r = lseek(fd, far + 5, SEEK_HOLE);
    ck_assert_int_eq(r, far + 10); /* the end of the file is a hole */
    HFS_ERR(lseek(fd, far + 10, SEEK_DATA), ENXIO);
    HFS_ERR(lseek(fd, far + 100, SEEK_HOLE), ENXIO);
    HFS_OK(close(fd));

    /* all of it again through a fresh descriptor and an empty page cache */
    fd = xopen("s", O_RDONLY, 0);
    drop_cache(fd);
    ck_assert_int_eq(xfstat(fd).st_size, far + 10);
    pat_expect(fd, 0, 0, MiB + 100);
    pat_expect(fd, 11, MiB + 100, 4096);
    pat_expect(fd, 0, 2 * CHUNK - MiB / 2, MiB);
    pat_expect(fd, 12, far, 10);
    HFS_OK(close(fd));

    /* ftruncate up makes a hole too */
    fd = xopen("t", O_CREAT | O_RDWR, 0644);
    wr(fd, "abc");
    HFS_OK(ftruncate(fd, 10 * MiB));
    ck_assert_int_eq(xfstat(fd).st_size, 10 * MiB);
    expect_at(fd, 0, "abc");
    pat_expect(fd, 0, 3, 10 * MiB - 3);
    HFS_OK(close(fd));
}
END_TEST

START_TEST(big_file)
{
    td("big_file");
    /* pieces in four chunks, two of them straddling chunk boundaries */
    const struct {
        off_t off;
        size_t len;
        uint64_t seed;
    } p[] = {
        {0, MiB, 21},
        {CHUNK - MiB / 2, MiB, 22},
        {2 * CHUNK - 1, 2 * MiB, 23},
        {2 * CHUNK + 5 * MiB, 3 * MiB + 17, 24},
        {3 * CHUNK + 123, MiB, 25},
    };
    const int n = (int)(sizeof(p) / sizeof(p[0]));
    int fd = xopen("big", O_CREAT | O_RDWR, 0644);
    for (int i = 0; i < n; i++)
        pat_write(fd, p[i].seed, p[i].off, p[i].len);
    off_t size = 3 * CHUNK + 123 + MiB;
    ck_assert_int_eq(xfstat(fd).st_size, size);
    for (int i = 0; i < n; i++)
        pat_expect(fd, p[i].seed, p[i].off, p[i].len);
    HFS_OK(fsync(fd));
    HFS_OK(close(fd));
    ck_assert_int_eq(xstat("big").st_size, size);

    fd = xopen("big", O_RDONLY, 0);
    drop_cache(fd);
    for (int i = n - 1; i >= 0; i--)
        pat_expect(fd, p[i].seed, p[i].off, p[i].len);
    pat_expect(fd, 0, MiB, MiB);
    pat_expect(fd, 0, CHUNK + MiB / 2, MiB);
    pat_expect(fd, 0, 2 * CHUNK + 2 * MiB, 3 * MiB - 1);
    pat_expect(fd, 0, 2 * CHUNK + 8 * MiB + 17, MiB);
    /* one read across the first chunk boundary */
    char *b = malloc(2 * MiB);
    ck_assert_ptr_nonnull(b);
    size_t got = 0;
    ck_assert_int_eq(hfs_pread_all(fd, b, 2 * MiB, CHUNK - MiB, &got), 0);
    ck_assert_int_eq(got, 2 * MiB);
    ck_assert_int_lt(hfs_first_nonzero(b, MiB / 2), 0);
    ck_assert_int_lt(hfs_check(b + MiB / 2, MiB, 22, CHUNK - MiB / 2), 0);
    ck_assert_int_lt(hfs_first_nonzero(b + 3 * MiB / 2, MiB / 2), 0);
    free(b);
    HFS_OK(close(fd));
}
END_TEST

/* SEEK_DATA and SEEK_HOLE answer at block granularity, also inside a chunk that holds data
 * (they used to answer at chunk granularity: the start of a 64 MiB chunk). */
START_TEST(seek_blocks)
{
    td("seek_blocks");
    int fd = xopen("f", O_CREAT | O_RDWR, 0644);
    pat_write(fd, 61, 0, 4096);                     /* chunk 0: 4 KiB of data */
    pat_write(fd, 62, CHUNK + 10 * MiB, 64 * 1024); /* chunk 1: 64 KiB at 10 MiB in */
    pat_write(fd, 63, CHUNK + 20 * MiB, 4096);      /* and 4 KiB at 20 MiB in */
    HFS_OK(fsync(fd));
    ck_assert_int_eq(lseek(fd, 0, SEEK_HOLE), 4096);
    ck_assert_int_eq(lseek(fd, 8192, SEEK_DATA), CHUNK + 10 * MiB);
    ck_assert_int_eq(lseek(fd, CHUNK, SEEK_DATA), CHUNK + 10 * MiB);
    ck_assert_int_eq(lseek(fd, CHUNK + 10 * MiB + 100, SEEK_DATA), CHUNK + 10 * MiB + 100);
    ck_assert_int_eq(lseek(fd, CHUNK + 10 * MiB, SEEK_HOLE), CHUNK + 10 * MiB + 64 * 1024);
    ck_assert_int_eq(lseek(fd, CHUNK + 11 * MiB, SEEK_DATA), CHUNK + 20 * MiB);
    ck_assert_int_eq(lseek(fd, CHUNK + 20 * MiB, SEEK_HOLE), CHUNK + 20 * MiB + 4096);
    HFS_ERR(lseek(fd, CHUNK + 20 * MiB + 4096, SEEK_DATA), ENXIO);
    HFS_OK(close(fd));
}
END_TEST

START_TEST(truncate_chunks)
{
    td("truncate_chunks");
    int fd = xopen("t", O_CREAT | O_RDWR, 0644);
    pat_write(fd, 31, CHUNK - MiB, 2 * MiB);   /* straddles chunks 0/1 */
    pat_write(fd, 32, 2 * CHUNK - 4096, 8192); /* straddles chunks 1/2 */
    ck_assert_int_eq(xfstat(fd).st_size, 2 * CHUNK + 4096);
    int fd2 = xopen("t", O_RDONLY, 0); /* a second descriptor sees every change */

    HFS_OK(ftruncate(fd, CHUNK + 100)); /* down into chunk 1 */
    ck_assert_int_eq(xfstat(fd).st_size, CHUNK + 100);
    ck_assert_int_eq(xfstat(fd2).st_size, CHUNK + 100);
    pat_expect(fd, 31, CHUNK - MiB, MiB + 100);
    char b[16];
    ck_assert_int_eq(pread(fd, b, sizeof(b), CHUNK + 100), 0);
    ck_assert_int_eq(pread(fd2, b, sizeof(b), 2 * CHUNK - 4096), 0);

    HFS_OK(ftruncate(fd, 2 * CHUNK + 8192)); /* up across two boundaries: no stale data */
    ck_assert_int_eq(xfstat(fd2).st_size, 2 * CHUNK + 8192);
    drop_cache(fd);
    pat_expect(fd, 31, CHUNK - MiB, MiB + 100);
    pat_expect(fd, 0, CHUNK + 100, MiB - 100);
    pat_expect(fd, 0, 2 * CHUNK - 4096, 12288);

    HFS_OK(truncate("t", CHUNK)); /* exactly at a boundary */
    ck_assert_int_eq(xstat("t").st_size, CHUNK);
    ck_assert_int_eq(xfstat(fd).st_size, CHUNK);
    pat_expect(fd, 31, CHUNK - MiB, MiB);

    HFS_OK(truncate("t", CHUNK - 5));    /* into chunk 0 */
    pat_write(fd, 33, 3 * CHUNK + 7, 1); /* and a write far beyond */
    ck_assert_int_eq(xfstat(fd).st_size, 3 * CHUNK + 8);
    drop_cache(fd);
    pat_expect(fd, 31, CHUNK - MiB, MiB - 5);
    pat_expect(fd, 0, CHUNK - 5, MiB);
    pat_expect(fd, 0, 2 * CHUNK - 4096, 8192);
    pat_expect(fd, 33, 3 * CHUNK + 7, 1);
    HFS_OK(close(fd));
    HFS_OK(close(fd2));

    fd = xopen("t", O_RDWR, 0);
    drop_cache(fd);
    pat_expect(fd, 31, CHUNK - MiB, MiB - 5);
    pat_expect(fd, 0, CHUNK - 5, 4096);
    HFS_OK(ftruncate(fd, 0));
    ck_assert_int_eq(xfstat(fd).st_size, 0);
    HFS_OK(ftruncate(fd, 10));
    pat_expect(fd, 0, 0, 10);
    HFS_OK(close(fd));
    ck_assert_int_eq(xstat("t").st_size, 10);

    /* errors */
    fd = xopen("t", O_RDONLY, 0);
    HFS_ERR(ftruncate(fd, 0), EINVAL);
    HFS_OK(close(fd));
    fd = xopen("t", O_RDWR, 0);
    HFS_ERR(ftruncate(fd, -1), EINVAL);
    HFS_OK(close(fd));
    HFS_OK(mkdir("d", 0755));
    HFS_ERR(truncate("d", 0), EISDIR);
    HFS_ERR(truncate("missing", 0), ENOENT);
}
END_TEST

/* ---- open files and the namespace ----------------------------------------------------------- */

START_TEST(rename_over_open)
{
    td("rename_over_open");
    put("B", "old-content");
    put("A", "new");
    ino_t ia = xstat("A").st_ino;
    int fd = xopen("B", O_RDWR, 0);
    HFS_OK(rename("A", "B"));
    struct stat st;
    HFS_ERR(stat("A", &st), ENOENT);
    expect("B", "new");
    ck_assert_int_eq(xstat("B").st_ino, ia);
    expect_fd(fd, 0, "old-content");
    ck_assert_int_eq(xfstat(fd).st_nlink, 0);
    ck_assert_int_eq(pwrite(fd, "XYZ", 3, 0), 3);
    drop_cache(fd);
    expect_fd(fd, 0, "XYZ-content");
    HFS_OK(fsync(fd));
    HFS_OK(close(fd));
    expect("B", "new");

    /* a renamed open file keeps being written under its new name */
    fd = xopen("B", O_WRONLY | O_APPEND, 0);
    HFS_OK(rename("B", "C"));
    wr(fd, "+more");
    HFS_OK(close(fd));
    expect("C", "new+more");
    HFS_ERR(stat("B", &st), ENOENT);
}
END_TEST

START_TEST(unlink_open)
{
    td("unlink_open");
    int fd = xopen("u", O_CREAT | O_RDWR, 0644);
    pat_write(fd, 41, 0, 3 * MiB);
    HFS_OK(close(fd));
    fd = xopen("u", O_RDWR, 0);
    HFS_OK(unlink("u"));
    struct stat st;
    HFS_ERR(stat("u", &st), ENOENT);
    HFS_ERR(open("u", O_RDONLY), ENOENT);
    st = xfstat(fd);
    ck_assert_int_eq(st.st_nlink, 0);
    ck_assert_int_eq(st.st_size, 3 * MiB);
    drop_cache(fd);
    pat_expect(fd, 41, 0, 3 * MiB);
    pat_write(fd, 42, 5 * MiB, MiB);
    ck_assert_int_eq(xfstat(fd).st_size, 6 * MiB);
    drop_cache(fd);
    pat_expect(fd, 0, 3 * MiB, 2 * MiB);
    pat_expect(fd, 42, 5 * MiB, MiB);
    HFS_OK(ftruncate(fd, MiB));
    ck_assert_int_eq(xfstat(fd).st_size, MiB);
    pat_expect(fd, 41, 0, MiB);
    HFS_OK(fsync(fd));
    HFS_OK(close(fd));

    DIR *d = opendir(".");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)))
        ck_assert_msg(strcmp(e->d_name, "u") != 0, "unlinked name still listed");
    closedir(d);
    fd = xopen("u", O_CREAT | O_EXCL | O_RDWR, 0644);
    ck_assert_int_eq(xfstat(fd).st_size, 0);
    HFS_OK(close(fd));

    /* a read-only open (counted in the meta leader's memory, not in its log) keeps the data
     * of an unlinked file, and of a file a rename replaced, until its close */
    fd = xopen("r", O_CREAT | O_EXCL | O_RDWR, 0644);
    pat_write(fd, 43, 0, 2 * MiB);
    HFS_OK(close(fd));
    int ro = xopen("r", O_RDONLY, 0);
    HFS_OK(unlink("r"));
    HFS_ERR(stat("r", &st), ENOENT);
    sleep_ms(2500); /* deletions of freed chunks reach the chunk servers with a heartbeat */
    drop_cache(ro);
    pat_expect(ro, 43, 0, 2 * MiB);
    HFS_OK(close(ro));
    fd = xopen("s", O_CREAT | O_EXCL | O_RDWR, 0644);
    pat_write(fd, 44, 0, MiB);
    HFS_OK(close(fd));
    ro = xopen("s", O_RDONLY, 0);
    put("t", "new");
    HFS_OK(rename("t", "s"));
    expect("s", "new");
    sleep_ms(2500);
    drop_cache(ro);
    pat_expect(ro, 44, 0, MiB);
    HFS_OK(close(ro));
}
END_TEST

START_TEST(hard_links)
{
    td("hard_links");
    HFS_OK(mkdir("d1", 0755));
    HFS_OK(mkdir("d2", 0755));
    put("d1/f", "abc");
    struct stat s0 = xstat("d1/f");
    sleep_ms(20);
    HFS_OK(link("d1/f", "d2/g"));
    struct stat s1 = xstat("d1/f"), s2 = xstat("d2/g");
    ck_assert_int_eq(s1.st_ino, s2.st_ino);
    ck_assert_int_eq(s1.st_nlink, 2);
    ck_assert_int_eq(s2.st_nlink, 2);
    ck_assert_msg(ts_after(s1.st_ctim, s0.st_ctim), "link did not change ctime");
    int fd = xopen("d2/g", O_WRONLY | O_APPEND, 0);
    wr(fd, "def");
    HFS_OK(close(fd));
    expect("d1/f", "abcdef");

    HFS_ERR(link("d1/f", "d2/g"), EEXIST);
    HFS_ERR(link("d1", "d2/dd"), EPERM);
    HFS_ERR(link("d1/missing", "d2/x"), ENOENT);
    HFS_ERR(link("d1/f", "d2/nodir/x"), ENOENT);

    /* rename between two links of one file does nothing */
    HFS_OK(link("d2/g", "d2/h"));
    ck_assert_int_eq(xstat("d1/f").st_nlink, 3);
    HFS_OK(rename("d2/g", "d2/h"));
    ck_assert_int_eq(xstat("d2/g").st_nlink, 3);
    ck_assert_int_eq(xstat("d2/h").st_nlink, 3);

    HFS_OK(unlink("d1/f"));
    ck_assert_int_eq(xstat("d2/g").st_nlink, 2);
    HFS_OK(unlink("d2/h"));
    struct stat st = xstat("d2/g");
    ck_assert_int_eq(st.st_nlink, 1);
    ck_assert_int_eq(st.st_size, 6);
    expect("d2/g", "abcdef");
    HFS_ERR(stat("d1/f", &st), ENOENT);
}
END_TEST

START_TEST(symlinks)
{
    td("symlinks");
    HFS_OK(symlink("target", "l"));
    struct stat st = xlstat("l");
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(st.st_size, 6);
    char b[4200];
    ck_assert_int_eq(readlink("l", b, sizeof(b)), 6);
    ck_assert_int_eq(memcmp(b, "target", 6), 0);
    ck_assert_int_eq(readlink("l", b, 3), 3); /* truncated, no error */
    HFS_ERR(symlink("other", "l"), EEXIST);
    put("f", "data");
    HFS_ERR(readlink("f", b, sizeof(b)), EINVAL);

    /* loops */
    HFS_OK(symlink("b", "a"));
    HFS_OK(symlink("a", "b"));
    HFS_ERR(open("a", O_RDONLY), ELOOP);
    HFS_ERR(stat("a", &st), ELOOP);
    HFS_ERR(open("a", O_CREAT | O_WRONLY, 0644), ELOOP);
    HFS_OK(symlink("self", "self"));
    HFS_ERR(stat("self", &st), ELOOP);
    HFS_ERR(stat("self/x", &st), ELOOP);
    /* a chain of 41 links is one too many to follow; 40 are fine */
    char n1[32], n2[32];
    for (int i = 0; i <= 40; i++) {
        snprintf(n1, sizeof(n1), "c%02d", i);
        if (i == 40)
            snprintf(n2, sizeof(n2), "f");
        else
            snprintf(n2, sizeof(n2), "c%02d", i + 1);
        HFS_OK(symlink(n2, n1));
    }
    HFS_OK(stat("c01", &st));
    ck_assert_int_eq(st.st_size, 4);
    HFS_ERR(stat("c00", &st), ELOOP);

    /* dangling link: ENOENT, but O_CREAT creates its target */
    HFS_OK(symlink("nothere", "dang"));
    HFS_ERR(stat("dang", &st), ENOENT);
    HFS_OK(lstat("dang", &st));
    int fd = xopen("dang", O_CREAT | O_WRONLY, 0644);
    wr(fd, "made");
    HFS_OK(close(fd));
    expect("nothere", "made");
    ck_assert(S_ISLNK(xlstat("dang").st_mode));

    /* relative targets resolve from the link's folder */
    HFS_OK(mkdir("d", 0755));
    HFS_OK(symlink("../f", "d/up"));
    expect("d/up", "data");
    HFS_OK(symlink("d", "dl"));
    expect("dl/up", "data");
    ck_assert(S_ISDIR(xstat("dl").st_mode));

    /* the longest target the kernel takes */
    char *t = malloc(4097);
    ck_assert_ptr_nonnull(t);
    memset(t, 'x', 4095);
    t[4095] = '\0';
    HFS_OK(symlink(t, "long"));
    ck_assert_int_eq(xlstat("long").st_size, 4095);
    ck_assert_int_eq(readlink("long", b, sizeof(b)), 4095);
    ck_assert_int_eq(memcmp(b, t, 4095), 0);
    t[4095] = 'x';
    t[4096] = '\0';
    HFS_ERR(symlink(t, "toolong"), ENAMETOOLONG);
    free(t);

    /* unlinking a link leaves the target */
    HFS_OK(unlink("dl"));
    ck_assert(S_ISDIR(xstat("d").st_mode));
}
END_TEST

/* ---- times and permissions ------------------------------------------------------------------ */

START_TEST(file_times)
{
    td("times");
    int fd = xopen("f", O_CREAT | O_RDWR, 0644);
    struct stat st = xfstat(fd);
    ck_assert(near_now(st.st_atime) && near_now(st.st_mtime) && near_now(st.st_ctime));
    HFS_OK(close(fd));

    struct timespec ts[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
    HFS_OK(utimensat(AT_FDCWD, "f", ts, 0));
    st = xstat("f");
    ck_assert_int_eq(st.st_atim.tv_sec, 1000000000);
    ck_assert_int_eq(st.st_atim.tv_nsec, 123456789);
    ck_assert_int_eq(st.st_mtim.tv_sec, 1100000000);
    ck_assert_int_eq(st.st_mtim.tv_nsec, 987654321);
    ck_assert(near_now(st.st_ctime));

    struct timespec ts2[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    HFS_OK(utimensat(AT_FDCWD, "f", ts2, 0));
    st = xstat("f");
    ck_assert_int_eq(st.st_atim.tv_sec, 1000000000);
    ck_assert_int_eq(st.st_atim.tv_nsec, 123456789);
    ck_assert(near_now(st.st_mtime));

    /* a write moves mtime and ctime, also seen after close */
    set_times("f", 1000000000, 1000000000);
    fd = xopen("f", O_WRONLY, 0);
    wr(fd, "x");
    HFS_OK(close(fd));
    st = xstat("f");
    ck_assert_msg(near_now(st.st_mtime), "write left mtime at %lld", (long long)st.st_mtime);
    ck_assert(near_now(st.st_ctime));
    ck_assert_int_eq(st.st_atime, 1000000000);

    /* truncate moves mtime */
    set_times("f", 1000000000, 1000000000);
    HFS_OK(truncate("f", 100));
    ck_assert_msg(near_now(xstat("f").st_mtime), "truncate did not update mtime");

    /* futimens, and an explicit time set after a write on the same descriptor sticks */
    fd = xopen("f", O_WRONLY, 0);
    wr(fd, "yy");
    struct timespec ts3[2] = {{1200000000, 5}, {1300000000, 6}};
    HFS_OK(futimens(fd, ts3));
    HFS_OK(close(fd));
    st = xstat("f");
    ck_assert_int_eq(st.st_mtim.tv_sec, 1300000000);
    ck_assert_int_eq(st.st_mtim.tv_nsec, 6);
    ck_assert_int_eq(st.st_atim.tv_sec, 1200000000);

    /* chmod moves ctime only */
    struct stat b = xstat("f");
    sleep_ms(20);
    HFS_OK(chmod("f", 0600));
    st = xstat("f");
    ck_assert_msg(ts_after(st.st_ctim, b.st_ctim), "chmod did not change ctime");
    ck_assert_int_eq(st.st_mtim.tv_sec, 1300000000);

    /* a folder's mtime follows entries made, removed and renamed in it */
    HFS_OK(mkdir("d", 0755));
    set_times("d", 1000000000, 1000000000);
    put("d/x", "1");
    ck_assert_msg(near_now(xstat("d").st_mtime), "create did not update the folder's mtime");
    set_times("d", 1000000000, 1000000000);
    HFS_OK(rename("d/x", "d/y"));
    ck_assert_msg(near_now(xstat("d").st_mtime), "rename did not update the folder's mtime");
    set_times("d", 1000000000, 1000000000);
    HFS_OK(unlink("d/y"));
    ck_assert_msg(near_now(xstat("d").st_mtime), "unlink did not update the folder's mtime");

    /* a symlink's own times */
    HFS_OK(symlink("f", "l"));
    set_times("l", 1000000000, 1000000001);
    ck_assert_int_eq(xlstat("l").st_mtime, 1000000001);
    ck_assert_int_eq(xstat("l").st_mtime, 1300000000); /* the target is unchanged */
}
END_TEST

START_TEST(chmod_chown)
{
    td("chmod_chown");
    put("f", "x");
    HFS_OK(chmod("f", 04755));
    ck_assert_int_eq(xstat("f").st_mode, S_IFREG | 04755);
    HFS_OK(chmod("f", 0));
    ck_assert_int_eq(xstat("f").st_mode, S_IFREG);
    expect("f", "x"); /* root reads a mode 0 file */
    HFS_OK(chown("f", 1234, 5678));
    struct stat st = xstat("f");
    ck_assert_int_eq(st.st_uid, 1234);
    ck_assert_int_eq(st.st_gid, 5678);
    HFS_OK(chown("f", (uid_t)-1, 42));
    st = xstat("f");
    ck_assert_int_eq(st.st_uid, 1234);
    ck_assert_int_eq(st.st_gid, 42);
    /* chown clears set-user-ID even for root */
    HFS_OK(chmod("f", 04755));
    HFS_OK(chown("f", 1, 1));
    ck_assert_int_eq(xstat("f").st_mode & 07777, 0755);
    HFS_OK(mkdir("d", 0700));
    HFS_OK(chmod("d", 01777));
    ck_assert_int_eq(xstat("d").st_mode, S_IFDIR | 01777);
    HFS_OK(symlink("f", "l"));
    HFS_OK(lchown("l", 77, 88));
    st = xlstat("l");
    ck_assert_int_eq(st.st_uid, 77);
    ck_assert_int_eq(xstat("f").st_uid, 1);
    HFS_ERR(chmod("missing", 0644), ENOENT);
    HFS_ERR(chown("missing", 1, 1), ENOENT);
}
END_TEST

/* A user writes then reads back a file of its own (o->path), in a folder open to all. */
static int u_write_read(const struct uop *o)
{
    int fd = open(o->path, O_CREAT | O_EXCL | O_RDWR, 0644);
    if (fd < 0) return errno;
    char b[8] = {0};
    int e = write(fd, "mine", 4) == 4 ? 0 : errno;
    if (!e) e = pread(fd, b, sizeof(b), 0) == 4 && !memcmp(b, "mine", 4) ? 0 : 98;
    close(fd);
    return e;
}

/* Mounts made by root let other users in by default (allow_other; the kernel still checks
 * modes), -o noallow_other keeps them out. Mounts of its own (the suite's has allow_other). */
START_TEST(root_mount_lets_users_in)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    if (E.local) return;
    /* mounted before td() moves into a mount: the helper's path may be relative */
    int k = h_mount_opts(&E.c, NULL), kp = h_mount_opts(&E.c, "noallow_other");
    ck_assert_int_ge(k, 0);
    ck_assert_int_ge(kp, 0);
    td("root_mount_users");
    HFS_OK(chmod(".", 0777));
    HFS_OK(mkdir("private", 0700));
    struct cred u = {1001, 2001, 1, {2001}};
    /* the user works from this folder as seen through the new mounts (cwd is inherited: the
     * test's temporary folders above are root's own) */
    char here[1500];
    snprintf(here, sizeof(here), "%s/%s", E.c.mnt[k], D + strlen(E.root[0]) + 1);
    ck_assert_int_eq(chdir(here), 0);
    int rc = as_user(&u, u_write_read, &(struct uop){"by-user", 0, 0});
    int denied = as_user(&u, u_open, &(struct uop){"private/x", O_CREAT | O_WRONLY, 0644});
    ck_assert_int_eq(chdir(E.c.mnt[kp]), 0);
    int kept_out = as_user(&u, u_access, &(struct uop){".", 0, R_OK});
    ck_assert_int_eq(chdir(D), 0);
    ck_assert_int_eq(h_umount(&E.c, kp), 0);
    ck_assert_int_eq(h_umount(&E.c, k), 0);
    ck_assert_msg(rc == 0, "a user on root's default mount: %s", strerror(rc));
    ck_assert_int_eq(denied, EACCES); /* modes still hold */
    ck_assert_int_eq(xstat("by-user").st_uid, 1001);
    ck_assert_int_eq(kept_out, EACCES); /* -o noallow_other */
}
END_TEST

START_TEST(perms_nonroot)
{
    td("perms_nonroot");
    HFS_OK(chmod(".", 0777));
    const uid_t U1 = 1001, U2 = 1002;
    const gid_t G1 = 2001, G2 = 2002, G3 = 2003;
    struct cred u1 = {U1, G1, 1, {G1}}, u2 = {U2, G2, 1, {G2}}, u2g3 = {U2, G2, 2, {G2, G3}},
                u2p3 = {U2, G3, 0, {0}};

    put("p600", "secret");
    HFS_OK(chown("p600", U1, G1));
    HFS_OK(chmod("p600", 0600));
    struct uop o = {"p600", O_RDONLY, 0};
    ck_assert_int_eq(as_user(&u2, u_read_secret, &o), EACCES);
    ck_assert_int_eq(as_user(&u1, u_read_secret, &o), 0);
    o.arg = R_OK;
    ck_assert_int_eq(as_user(&u2, u_access, &o), EACCES);
    ck_assert_int_eq(as_user(&u1, u_access, &o), 0);

    /* group class: the primary or a supplementary group grants it */
    put("p640", "secret");
    HFS_OK(chown("p640", U1, G3));
    HFS_OK(chmod("p640", 0640));
    o = (struct uop){"p640", O_RDONLY, 0};
    ck_assert_int_eq(as_user(&u2g3, u_read_secret, &o), 0);
    ck_assert_int_eq(as_user(&u2p3, u_read_secret, &o), 0);
    ck_assert_int_eq(as_user(&u2, u_read_secret, &o), EACCES);
    ck_assert_int_eq(as_user(&u2g3, u_write, &o), EACCES);
    /* a member of the group gets the group bits even when "other" would allow more */
    put("p604", "secret");
    HFS_OK(chown("p604", U1, G3));
    HFS_OK(chmod("p604", 0604));
    o.path = "p604";
    ck_assert_int_eq(as_user(&u2g3, u_read_secret, &o), EACCES);
    ck_assert_int_eq(as_user(&u2, u_read_secret, &o), 0);

    /* creating in a folder needs write permission on it */
    HFS_OK(mkdir("rd", 0755));
    o = (struct uop){"rd/x", O_CREAT | O_WRONLY, 0644};
    ck_assert_int_eq(as_user(&u2, u_open, &o), EACCES);
    o = (struct uop){"rd/y", 0, 0755};
    ck_assert_int_eq(as_user(&u2, u_mkdir, &o), EACCES);
    /* searching a folder needs x */
    HFS_OK(mkdir("nx", 0755));
    HFS_OK(chmod("nx", 0766));
    put("nx/f", "x");
    o = (struct uop){"nx/f", 0, 0};
    ck_assert_int_eq(as_user(&u2, u_stat, &o), EACCES);
    /* exec needs an x bit */
    o = (struct uop){"p640", 0, X_OK};
    ck_assert_int_eq(as_user(&u1, u_access, &o), EACCES);
    HFS_ERR(access("p640", X_OK), EACCES);

    /* unlink: allowed in a writable folder, not in a sticky one unless owner */
    HFS_OK(mkdir("wd", 0777));
    HFS_OK(chmod("wd", 0777));
    put("wd/rootfile", "r");
    o = (struct uop){"wd/rootfile", 0, 0};
    ck_assert_int_eq(as_user(&u2, u_unlink, &o), 0);
    struct stat st;
    HFS_ERR(stat("wd/rootfile", &st), ENOENT);
    HFS_OK(mkdir("sd", 0777));
    HFS_OK(chmod("sd", 01777));
    put("sd/rootfile", "r");
    o = (struct uop){"sd/rootfile", 0, 0};
    ck_assert_int_eq(as_user(&u2, u_unlink, &o), EPERM);
    o = (struct uop){"sd/mine", O_CREAT | O_EXCL | O_WRONLY, 0640};
    ck_assert_int_eq(as_user(&u2, u_open, &o), 0);
    st = xstat("sd/mine");
    ck_assert_int_eq(st.st_uid, U2);
    ck_assert_int_eq(st.st_gid, G2);
    ck_assert_int_eq(st.st_mode, S_IFREG | 0640);
    o.path = "sd/mine";
    ck_assert_int_eq(as_user(&u2, u_unlink, &o), 0);

    /* chmod and chown by a non-owner */
    o = (struct uop){"p600", 0, 0644};
    ck_assert_int_eq(as_user(&u2, u_chmod, &o), EPERM);
    ck_assert_int_eq(as_user(&u1, u_chmod, &o), 0);
    ck_assert_int_eq(xstat("p600").st_mode, S_IFREG | 0644);
    o = (struct uop){"p600", 0, U2};
    ck_assert_int_eq(as_user(&u1, u_chown, &o), EPERM);
    ck_assert_int_eq(xstat("p600").st_uid, U1);

    /* setgid folders pass their group (and, to folders, the bit) on */
    HFS_OK(mkdir("gd", 0777));
    HFS_OK(chown("gd", 0, G3));
    HFS_OK(chmod("gd", 02777));
    o = (struct uop){"gd/f", O_CREAT | O_EXCL | O_WRONLY, 0644};
    ck_assert_int_eq(as_user(&u2, u_open, &o), 0);
    ck_assert_int_eq(xstat("gd/f").st_gid, G3);
    o = (struct uop){"gd/sub", 0, 0755};
    ck_assert_int_eq(as_user(&u2, u_mkdir, &o), 0);
    st = xstat("gd/sub");
    ck_assert_int_eq(st.st_gid, G3);
    ck_assert_msg(st.st_mode & S_ISGID, "setgid not inherited by a new folder (mode 0%o)",
                  st.st_mode);

    /* a write by a non-owner clears set-user-ID */
    put("suid", "abc");
    HFS_OK(chown("suid", U1, G1));
    HFS_OK(chmod("suid", 04777));
    o = (struct uop){"suid", 0, 0};
    ck_assert_int_eq(as_user(&u2, u_write, &o), 0);
    ck_assert_int_eq(xstat("suid").st_mode & 07777, 0777);
}
END_TEST

/* ---- xattrs, special files, folders --------------------------------------------------------- */

START_TEST(xattrs)
{
    td("xattrs");
    put("f", "x");
    char b[65536];
    HFS_ERR(getxattr("f", "user.none", b, sizeof(b)), ENODATA);
    HFS_OK(setxattr("f", "user.a", "1", 1, XATTR_CREATE));
    HFS_ERR(setxattr("f", "user.a", "2", 1, XATTR_CREATE), EEXIST);
    HFS_ERR(setxattr("f", "user.b", "2", 1, XATTR_REPLACE), ENODATA);
    HFS_OK(setxattr("f", "user.a", "22", 2, XATTR_REPLACE));
    ck_assert_int_eq(getxattr("f", "user.a", NULL, 0), 2);
    ck_assert_int_eq(getxattr("f", "user.a", b, sizeof(b)), 2);
    ck_assert_int_eq(memcmp(b, "22", 2), 0);
    HFS_ERR(getxattr("f", "user.a", b, 1), ERANGE);
    HFS_OK(setxattr("f", "user.a", "333", 3, 0)); /* no flag: create or replace */
    ck_assert_int_eq(getxattr("f", "user.a", b, sizeof(b)), 3);

    char bin[2000];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (char)(i * 7 % 251);
    bin[0] = 0;
    HFS_OK(setxattr("f", "user.bin", bin, sizeof(bin), 0));
    ck_assert_int_eq(getxattr("f", "user.bin", b, sizeof(b)), (ssize_t)sizeof(bin));
    ck_assert_int_eq(memcmp(b, bin, sizeof(bin)), 0);
    HFS_OK(setxattr("f", "user.empty", "", 0, 0));
    ck_assert_int_eq(getxattr("f", "user.empty", b, sizeof(b)), 0);

    ssize_t ls = listxattr("f", NULL, 0);
    ck_assert_int_gt(ls, 0);
    char names[4096];
    ssize_t l2 = listxattr("f", names, sizeof(names));
    ck_assert_int_eq(l2, ls);
    int seen = 0;
    for (ssize_t i = 0; i < l2; i += (ssize_t)strlen(names + i) + 1) {
        if (!strncmp(names + i, "user.", 5)) {
            ck_assert_msg(!strcmp(names + i, "user.a") || !strcmp(names + i, "user.bin") ||
                              !strcmp(names + i, "user.empty"),
                          "unexpected xattr %s", names + i);
            seen++;
        }
    }
    ck_assert_int_eq(seen, 3);
    if (ls > 1) HFS_ERR(listxattr("f", names, 1), ERANGE);

    HFS_OK(removexattr("f", "user.a"));
    HFS_ERR(getxattr("f", "user.a", b, sizeof(b)), ENODATA);
    HFS_ERR(removexattr("f", "user.a"), ENODATA);

    /* values survive rename and are per inode (shared by hard links) */
    HFS_OK(rename("f", "g"));
    HFS_OK(link("g", "h"));
    ck_assert_int_eq(getxattr("h", "user.bin", b, sizeof(b)), (ssize_t)sizeof(bin));

    /* on folders; not user.* on symlinks; names too long; missing files */
    HFS_OK(mkdir("d", 0755));
    HFS_OK(setxattr("d", "user.dir", "v", 1, 0));
    ck_assert_int_eq(getxattr("d", "user.dir", b, sizeof(b)), 1);
    HFS_OK(symlink("g", "l"));
    HFS_ERR(lsetxattr("l", "user.x", "1", 1, 0), EPERM);
    ck_assert_int_eq(getxattr("l", "user.bin", b, sizeof(b)), (ssize_t)sizeof(bin)); /* follows */
    char longname[300];
    memset(longname, 'n', sizeof(longname));
    memcpy(longname, "user.", 5);
    longname[256] = '\0';
    HFS_ERR(setxattr("g", longname, "1", 1, 0), ERANGE);
    HFS_ERR(setxattr("missing", "user.a", "1", 1, 0), ENOENT);
    if (!E.local) { /* ext4 holds at most a block; CairnFS takes what the kernel allows */
        memset(b, 'v', sizeof(b));
        HFS_OK(setxattr("g", "user.big", b, sizeof(b), 0));
        char *c = malloc(sizeof(b));
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(getxattr("g", "user.big", c, sizeof(b)), (ssize_t)sizeof(b));
        ck_assert_int_eq(memcmp(b, c, sizeof(b)), 0);
        free(c);
    }
}
END_TEST

/* A POSIX ACL that only restates the mode (what cp -a, cp -p and mv write): a file system
 * either refuses ACLs (EOPNOTSUPP, and tools fall back to chmod) or applies it as a chmod;
 * storing it as an opaque xattr leaves the mode wrong and ls showing "+". */
START_TEST(posix_acl_mode)
{
    td("posix_acl_mode");
    put("f", "x");
    HFS_OK(chmod("f", 0600));
    /* version 2; USER_OBJ rw-, GROUP_OBJ r--, OTHER r-- (ids undefined) */
    const unsigned char acl[28] = {2,    0,    0, 0, 1,    0,    6,    0,    0xff, 0xff,
                                   0xff, 0xff, 4, 0, 4,    0,    0xff, 0xff, 0xff, 0xff,
                                   0x20, 0,    4, 0, 0xff, 0xff, 0xff, 0xff};
    errno = 0;
    int r = setxattr("f", "system.posix_acl_access", acl, sizeof(acl), 0);
    int e = errno;
    if (r != 0) {
        ck_assert_msg(e == EOPNOTSUPP, "setting an ACL failed with %s", strerrorname_np(e));
        ck_assert_int_eq(xstat("f").st_mode, S_IFREG | 0600);
        return;
    }
    ck_assert_msg(xstat("f").st_mode == (S_IFREG | 0644),
                  "an ACL equal to mode 0644 was accepted but the mode is 0%o",
                  xstat("f").st_mode & 07777);
    char b[64];
    HFS_ERR(getxattr("f", "system.posix_acl_access", b, sizeof(b)), ENODATA);
}
END_TEST

START_TEST(mknod_special)
{
    td("mknod_special");
    HFS_OK(mknod("fifo", S_IFIFO | 0644, 0));
    struct stat st = xlstat("fifo");
    ck_assert(S_ISFIFO(st.st_mode));
    ck_assert_int_eq(st.st_mode & 07777, 0644);
    int fd = xopen("fifo", O_RDWR, 0); /* Linux: a read-write open of a fifo does not block */
    ck_assert_int_eq(write(fd, "ping", 4), 4);
    char b[8] = {0};
    ck_assert_int_eq(read(fd, b, sizeof(b)), 4);
    ck_assert_str_eq(b, "ping");
    HFS_OK(close(fd));
    HFS_OK(mkfifo("fifo2", 0600));
    HFS_ERR(mkfifo("fifo2", 0600), EEXIST);

    HFS_OK(mknod("reg", S_IFREG | 0640, 0));
    st = xlstat("reg");
    ck_assert_int_eq(st.st_mode, S_IFREG | 0640);
    ck_assert_int_eq(st.st_size, 0);
    put("reg", "content");
    expect("reg", "content");
    HFS_ERR(mknod("reg", S_IFREG | 0644, 0), EEXIST);

    HFS_OK(mknod("chr", S_IFCHR | 0600, makedev(1, 3)));
    st = xlstat("chr");
    ck_assert(S_ISCHR(st.st_mode));
    ck_assert_int_eq(major(st.st_rdev), 1);
    ck_assert_int_eq(minor(st.st_rdev), 3);
    HFS_OK(mknod("sock", S_IFSOCK | 0600, 0));
    ck_assert(S_ISSOCK(xlstat("sock").st_mode));
    HFS_ERR(mknod("nodir/x", S_IFIFO | 0644, 0), ENOENT);
}
END_TEST

START_TEST(dirs)
{
    td("dirs");
    nlink_t pn = xstat(".").st_nlink;
    HFS_OK(mkdir("d", 0777));
    struct stat st = xstat("d");
    ck_assert_int_eq(st.st_mode, S_IFDIR | 0755);
    ck_assert_int_eq(st.st_nlink, 2);
    ck_assert_int_eq(xstat(".").st_nlink, pn + 1);
    HFS_ERR(mkdir("d", 0755), EEXIST);
    put("d/f", "x");
    HFS_ERR(rmdir("d"), ENOTEMPTY);
    HFS_OK(mkdir("d/sub", 0700));
    ck_assert_int_eq(xstat("d").st_nlink, 3);
    ck_assert_int_eq(xstat("d/sub/..").st_ino, st.st_ino);
    HFS_ERR(rmdir("d/f"), ENOTDIR);
    HFS_ERR(rmdir("d/."), EINVAL);
    HFS_ERR(rmdir("nope"), ENOENT);
    HFS_ERR(unlink("d"), EISDIR);
    HFS_ERR(mkdir("d/f/x", 0755), ENOTDIR);
    HFS_OK(unlink("d/f"));
    HFS_ERR(rmdir("d"), ENOTEMPTY);
    HFS_OK(rmdir("d/sub"));
    ck_assert_int_eq(xstat("d").st_nlink, 2);
    HFS_OK(rmdir("d"));
    HFS_ERR(stat("d", &st), ENOENT);
    ck_assert_int_eq(xstat(".").st_nlink, pn);
    HFS_OK(mkdir("s", 01777));
    ck_assert_int_eq(xstat("s").st_mode, S_IFDIR | 01755);
    HFS_ERR(mkdir("s/", 0755), EEXIST);
}
END_TEST

START_TEST(renames)
{
    td("renames");
    put("a", "A");
    ino_t ia = xstat("a").st_ino;
    HFS_OK(rename("a", "b"));
    struct stat st;
    HFS_ERR(stat("a", &st), ENOENT);
    expect("b", "A");
    ck_assert_int_eq(xstat("b").st_ino, ia);
    put("c", "C");
    HFS_OK(rename("b", "c")); /* replaces */
    expect("c", "A");
    ck_assert_int_eq(xstat("c").st_ino, ia);
    HFS_OK(rename("c", "c"));
    expect("c", "A");
    HFS_ERR(rename("missing", "x"), ENOENT);

    HFS_OK(mkdir("p1", 0755));
    HFS_OK(mkdir("p2", 0755));
    HFS_OK(mkdir("p1/m", 0755));
    put("p1/m/f", "in m");
    HFS_OK(mkdir("empty", 0755));
    HFS_OK(mkdir("full", 0755));
    put("full/x", "x");
    HFS_ERR(rename("c", "empty"), EISDIR);
    HFS_ERR(rename("empty", "c"), ENOTDIR);
    HFS_ERR(rename("p1", "full"), ENOTEMPTY);
    HFS_ERR(rename("p1", "p1/m/x"), EINVAL);
    HFS_ERR(rename("p1", "p1/x"), EINVAL);
    HFS_ERR(rename("p1/m", "p1/m/f/x"), ENOTDIR);

    /* a folder moved to another parent: link counts and ".." follow */
    nlink_t n1 = xstat("p1").st_nlink, n2 = xstat("p2").st_nlink;
    HFS_OK(rename("p1/m", "p2/m"));
    ck_assert_int_eq(xstat("p1").st_nlink, n1 - 1);
    ck_assert_int_eq(xstat("p2").st_nlink, n2 + 1);
    ck_assert_int_eq(xstat("p2/m/..").st_ino, xstat("p2").st_ino);
    expect("p2/m/f", "in m");
    HFS_OK(rename("p2/m", "empty")); /* over an empty folder */
    expect("empty/f", "in m");
    HFS_ERR(stat("p2/m", &st), ENOENT);

    /* renameat2 flags */
    put("n1", "one");
    put("n2", "two");
    HFS_ERR(renameat2_("n1", "n2", RENAME_NOREPLACE), EEXIST);
    expect("n1", "one");
    expect("n2", "two");
    HFS_OK(renameat2_("n1", "n3", RENAME_NOREPLACE));
    expect("n3", "one");
    HFS_OK(renameat2_("n2", "n3", RENAME_EXCHANGE));
    expect("n3", "two");
    expect("n2", "one");
    HFS_ERR(renameat2_("n2", "n9", RENAME_EXCHANGE), ENOENT);
    HFS_ERR(renameat2_("n2", "n3", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    /* exchange a file and a folder in different parents */
    ino_t fi = xstat("n2").st_ino, di = xstat("empty").st_ino;
    HFS_OK(renameat2_("n2", "p2/empty2", 0));
    HFS_OK(renameat2_("p2/empty2", "empty", RENAME_EXCHANGE));
    st = xstat("p2/empty2");
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_ino, di);
    ck_assert_int_eq(xstat("p2/empty2/..").st_ino, xstat("p2").st_ino);
    expect("p2/empty2/f", "in m");
    st = xstat("empty");
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_ino, fi);
    expect("empty", "one");
}
END_TEST

START_TEST(name_too_long)
{
    td("name_too_long");
    char n255[256], n256[257];
    memset(n255, 'a', 255);
    n255[255] = '\0';
    memset(n256, 'b', 256);
    n256[256] = '\0';
    int fd = xopen(n255, O_CREAT | O_WRONLY, 0644);
    HFS_OK(close(fd));
    struct stat st = xstat(n255);
    ck_assert(S_ISREG(st.st_mode));
    HFS_ERR(open(n256, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
    HFS_ERR(mkdir(n256, 0755), ENAMETOOLONG);
    HFS_ERR(stat(n256, &st), ENAMETOOLONG);
    HFS_ERR(rename(n255, n256), ENAMETOOLONG);
    HFS_ERR(link(n255, n256), ENAMETOOLONG);
    HFS_ERR(symlink("t", n256), ENAMETOOLONG);
    HFS_ERR(mknod(n256, S_IFIFO | 0644, 0), ENAMETOOLONG);
    DIR *d = opendir(".");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (!strcmp(e->d_name, n255)) found++;
    closedir(d);
    ck_assert_int_eq(found, 1);
    char *p = malloc(5000);
    ck_assert_ptr_nonnull(p);
    memset(p, 'x', 4999);
    for (int i = 100; i < 4999; i += 100)
        p[i] = '/';
    p[4999] = '\0';
    HFS_ERR(stat(p, &st), ENAMETOOLONG);
    free(p);
    HFS_OK(unlink(n255));
}
END_TEST

/* ---- directory streams ---------------------------------------------------------------------- */

#define NDIRENT 400

START_TEST(readdir_seek)
{
    td("readdir_seek");
    HFS_OK(mkdir("d", 0755));
    char n[64];
    for (int i = 0; i < NDIRENT; i++) {
        snprintf(n, sizeof(n), "d/entry-with-a-longer-name-%04d", i);
        HFS_OK(mknod(n, S_IFREG | 0644, 0));
    }
    DIR *d = opendir("d");
    ck_assert_ptr_nonnull(d);
    static char names[NDIRENT + 2][300];
    static long pos[NDIRENT + 2];
    int cnt = 0;
    for (;;) {
        long p = telldir(d);
        struct dirent *e = readdir(d);
        if (!e) break;
        ck_assert_int_lt(cnt, NDIRENT + 2);
        pos[cnt] = p;
        snprintf(names[cnt], sizeof(names[cnt]), "%s", e->d_name);
        cnt++;
    }
    ck_assert_int_eq(cnt, NDIRENT + 2);
    char seen[NDIRENT] = {0};
    int dots = 0;
    for (int i = 0; i < cnt; i++) {
        int k;
        if (!strcmp(names[i], ".") || !strcmp(names[i], "..")) {
            dots++;
            continue;
        }
        ck_assert_int_eq(sscanf(names[i], "entry-with-a-longer-name-%d", &k), 1);
        ck_assert_msg(k >= 0 && k < NDIRENT && !seen[k], "entry %s twice or unknown", names[i]);
        seen[k] = 1;
    }
    ck_assert_int_eq(dots, 2);
    const int probes[] = {0, 1, 2, 57, 200, NDIRENT - 3, cnt - 1, 123, 3};
    for (size_t j = 0; j < sizeof(probes) / sizeof(probes[0]); j++) {
        int i = probes[j];
        seekdir(d, pos[i]);
        for (int k = i; k < i + 5 && k < cnt; k++) {
            struct dirent *e = readdir(d);
            ck_assert_msg(e != NULL, "readdir after seekdir(%d) ended early", i);
            ck_assert_msg(!strcmp(e->d_name, names[k]), "seekdir to %d: got %s, expected %s", i,
                          e->d_name, names[k]);
        }
    }
    rewinddir(d);
    struct dirent *e = readdir(d);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->d_name, names[0]);
    closedir(d);
}
END_TEST

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* rm -r's pattern: read a small batch, remove what was read, read on. Entries present all along
 * must each come back exactly once. */
START_TEST(readdir_while_removing)
{
    td("readdir_while_removing");
    HFS_OK(mkdir("d", 0755));
    char n[64];
    for (int i = 0; i < NDIRENT; i++) {
        snprintf(n, sizeof(n), "d/e%04d", i);
        HFS_OK(mknod(n, S_IFREG | 0644, 0));
    }
    int dfd = xopen("d", O_RDONLY | O_DIRECTORY, 0);
    static char seen[NDIRENT];
    memset(seen, 0, sizeof(seen));
    char buf[512] __attribute__((aligned(8)));
    int rounds = 0, total = 0;
    for (; rounds < 10000; rounds++) {
        long nb = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
        ck_assert_msg(nb >= 0, "getdents64: %s", strerror(errno));
        if (nb == 0) break;
        for (long p = 0; p < nb;) {
            struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + p);
            p += e->d_reclen;
            int k;
            if (e->d_name[0] == '.') continue;
            ck_assert_int_eq(sscanf(e->d_name, "e%d", &k), 1);
            ck_assert_msg(k >= 0 && k < NDIRENT && !seen[k], "%s listed twice", e->d_name);
            seen[k] = 1;
            total++;
            char path[300];
            snprintf(path, sizeof(path), "d/%s", e->d_name);
            HFS_OK(unlink(path));
        }
    }
    HFS_OK(close(dfd));
    ck_assert_int_gt(rounds, 10); /* the small buffer took many calls */
    ck_assert_int_eq(total, NDIRENT);
    HFS_OK(rmdir("d"));
}
END_TEST

/* ---- statfs, fallocate, fsync, plain I/O ----------------------------------------------------- */

START_TEST(statfs_fields)
{
    td("statfs_fields");
    struct statvfs sv;
    HFS_OK(statvfs(".", &sv));
    ck_assert_uint_gt(sv.f_bsize, 0);
    ck_assert_uint_gt(sv.f_frsize, 0);
    ck_assert_uint_gt(sv.f_blocks, 0);
    ck_assert_uint_le(sv.f_bfree, sv.f_blocks);
    ck_assert_uint_le(sv.f_bavail, sv.f_blocks);
    ck_assert_uint_le(sv.f_ffree, sv.f_files);
    ck_assert_uint_eq(sv.f_namemax, 255);
    if (!E.local) {
        struct statfs sf;
        HFS_OK(statfs(".", &sf));
        ck_assert_int_eq(sf.f_type, FUSE_SUPER_MAGIC);
    }
    int fd = xopen("f", O_CREAT | O_RDWR, 0644);
    struct statvfs sv2;
    HFS_OK(fstatvfs(fd, &sv2));
    ck_assert_uint_eq(sv2.f_namemax, 255);
    HFS_OK(close(fd));
}
END_TEST

/* st_blocks counts what is stored: right after close a written file shows its bytes (tar and
 * cp read nothing of a file with st_blocks 0), and a sparse file shows far less than its size. */
START_TEST(blocks_used)
{
    td("blocks_used");
    put("small", "some bytes that must not be taken for a hole");
    ck_assert_int_gt(xstat("small").st_blocks, 0);
    int fd = xopen("sparse", O_CREAT | O_RDWR, 0644);
    ck_assert_int_eq(pwrite(fd, "x", 1, 40 * MiB), 1);
    ck_assert_int_eq(pwrite(fd, "y", 1, 3 * CHUNK), 1);
    HFS_OK(close(fd));
    struct stat st = xstat("sparse");
    ck_assert_int_eq(st.st_size, 3 * CHUNK + 1);
    ck_assert_int_gt(st.st_blocks, 0);
    ck_assert_msg(st.st_blocks * 512 <= 4 * MiB, "sparse file of %lld bytes uses %lld",
                  (long long)st.st_size, (long long)st.st_blocks * 512);
    fd = xopen("dense", O_CREAT | O_WRONLY, 0644);
    pat_write(fd, 7, 0, 8 * MiB);
    HFS_OK(close(fd));
    st = xstat("dense");
    ck_assert_msg(st.st_blocks * 512 >= 8 * MiB && st.st_blocks * 512 <= 9 * MiB,
                  "8 MiB file uses %lld", (long long)st.st_blocks * 512);
    HFS_OK(truncate("dense", 0));
    ck_assert_int_eq(xstat("dense").st_blocks, 0);
}
END_TEST

START_TEST(fallocate_mode0)
{
    td("fallocate_mode0");
    int fd = xopen("fa", O_CREAT | O_RDWR, 0644);
    HFS_OK(fallocate(fd, 0, 0, 10 * MiB));
    ck_assert_int_eq(xfstat(fd).st_size, 10 * MiB);
    pat_expect(fd, 0, 0, 10 * MiB);
    pat_write(fd, 51, 0, 4096);
    HFS_OK(fallocate(fd, 0, 0, 4096)); /* inside the file: size unchanged, data kept */
    ck_assert_int_eq(xfstat(fd).st_size, 10 * MiB);
    drop_cache(fd);
    pat_expect(fd, 51, 0, 4096);
    HFS_OK(fallocate(fd, 0, CHUNK + 6 * MiB, MiB)); /* beyond the end, in the next chunk */
    ck_assert_int_eq(xfstat(fd).st_size, CHUNK + 7 * MiB);
    pat_expect(fd, 0, 10 * MiB, MiB);
    pat_expect(fd, 0, CHUNK + 6 * MiB, MiB);
    HFS_ERR(fallocate(fd, 0, 0, 0), EINVAL);
    HFS_ERR(fallocate(fd, 0, -1, 10), EINVAL);
    ck_assert_int_eq(posix_fallocate(fd, CHUNK + 7 * MiB, 10), 0);
    ck_assert_int_eq(xfstat(fd).st_size, CHUNK + 7 * MiB + 10);
    /* the other modes (test_mount_fallocate.c covers them in depth) */
    HFS_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, CHUNK + 7 * MiB + 10, MiB));
    ck_assert_int_eq(xfstat(fd).st_size, CHUNK + 7 * MiB + 10);
    HFS_OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    pat_expect(fd, 0, 0, 4096);
    HFS_ERR(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
    HFS_OK(close(fd));
    fd = xopen("fa", O_RDONLY, 0);
    HFS_ERR(fallocate(fd, 0, 0, 100), EBADF);
    HFS_OK(close(fd));
    ck_assert_int_eq(xstat("fa").st_size, CHUNK + 7 * MiB + 10);
}
END_TEST

START_TEST(fsync_calls)
{
    td("fsync_calls");
    int fd = xopen("f", O_CREAT | O_RDWR, 0644);
    pat_write(fd, 61, 0, 2 * MiB + 3);
    HFS_OK(fsync(fd));
    ck_assert_int_eq(xstat("f").st_size, 2 * MiB + 3);
    pat_write(fd, 62, 2 * MiB + 3, 100);
    HFS_OK(fdatasync(fd));
    ck_assert_int_eq(xstat("f").st_size, 2 * MiB + 103);
    HFS_OK(fsync(fd)); /* nothing new: still fine */
    HFS_OK(close(fd));
    fd = xopen("f", O_RDONLY, 0);
    HFS_OK(fsync(fd));
    drop_cache(fd);
    pat_expect(fd, 61, 0, 2 * MiB + 3);
    pat_expect(fd, 62, 2 * MiB + 3, 100);
    HFS_OK(close(fd));
    fd = xopen(".", O_RDONLY | O_DIRECTORY, 0);
    HFS_OK(fsync(fd));
    HFS_OK(close(fd));
    fd = xopen("f", O_RDONLY, 0);
    HFS_OK(syncfs(fd));
    HFS_OK(close(fd));
}
END_TEST

START_TEST(plain_io)
{
    td("plain_io");
    int fd = xopen("f", O_CREAT | O_RDWR, 0644);
    wr(fd, "hello world");
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 11);
    ck_assert_int_eq(lseek(fd, -5, SEEK_END), 6);
    char b[32] = {0};
    ck_assert_int_eq(read(fd, b, sizeof(b)), 5);
    ck_assert_str_eq(b, "world");
    ck_assert_int_eq(lseek(fd, 20, SEEK_SET), 20);
    wr(fd, "!");
    ck_assert_int_eq(xfstat(fd).st_size, 21);
    ck_assert_int_eq(pread(fd, b, 10, 10), 10);
    ck_assert_int_eq(memcmp(b, "d\0\0\0\0\0\0\0\0\0", 10), 0);
    HFS_ERR(lseek(fd, -100, SEEK_SET), EINVAL);
    /* a dup shares the offset */
    int d2 = dup(fd);
    ck_assert_int_ge(d2, 0);
    ck_assert_int_eq(lseek(fd, 3, SEEK_SET), 3);
    ck_assert_int_eq(lseek(d2, 0, SEEK_CUR), 3);
    HFS_OK(close(d2));
    /* read what this descriptor just overwrote, across a page boundary */
    pat_write(fd, 71, 4090, 20);
    pat_expect(fd, 71, 4090, 20);
    HFS_OK(close(fd));
    HFS_ERR(read(fd, b, 1), EBADF);
    HFS_OK(mkdir("d", 0755));
    fd = xopen("d", O_RDONLY, 0);
    HFS_ERR(read(fd, b, 1), EISDIR);
    HFS_OK(close(fd));
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    hfs_stop_on_signal(&E);
    hfs_env_start(&E, "posix", 2, 1, "allow_other");
    if (!E.ready) fprintf(stderr, "test_mount_posix: setup failed: %s\n", E.why);

    Suite *s = suite_create("mount_posix");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"open", open_flags},     {"open", open_trunc},
        {"open", open_append},    {"data", sparse_holes},
        {"data", big_file},       {"data", truncate_chunks},
        {"data", seek_blocks},    {"names", rename_over_open},
        {"names", unlink_open},   {"names", hard_links},
        {"names", symlinks},      {"names", mknod_special},
        {"names", dirs},          {"names", renames},
        {"names", name_too_long}, {"attrs", file_times},
        {"attrs", chmod_chown},   {"attrs", perms_nonroot},
        {"attrs", xattrs},        {"attrs", posix_acl_mode},
        {"dirs", readdir_seek},   {"dirs", readdir_while_removing},
        {"misc", statfs_fields},  {"misc", fallocate_mode0},
        {"misc", blocks_used},    {"misc", fsync_calls},
        {"misc", plain_io},       {"attrs", root_mount_lets_users_in},
    };
    TCase *tc = NULL;
    const char *cur = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!cur || strcmp(cur, cases[i].name) != 0) {
            tc = tcase_create(cases[i].name);
            tcase_set_timeout(tc, 180);
            suite_add_tcase(s, tc);
            cur = cases[i].name;
        }
        tcase_add_test(tc, cases[i].t);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
