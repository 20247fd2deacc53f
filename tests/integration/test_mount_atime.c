/* test_mount_atime.c - access times on real mounts of one real cluster (issue #12, atime):
 *
 * - relatime (the default): the first read after a write moves the file's atime (and not its
 *   ctime); a second read soon after does not; a read after a chmod (ctime later than atime)
 *   moves it again; listing a folder changed since it was last read moves the folder's.
 * - strictatime: every read moves it.
 * - noatime: no read moves it.
 * Reads pay no round trip for this: the mount sends the reads it saw once a second, so each
 * check waits for that and for the kernel's attribute cache (1 s) first. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"

static struct h_cluster C;
static int M_REL = -1, M_STRICT = -1, M_NO = -1;

#define SETTLE_MS 2600 /* one flush (1 s) + the attribute cache (1 s) + slack */

static struct timespec atime_of(const char *p)
{
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "stat %s: %s", p, strerror(errno));
    return st.st_atim;
}

static int ts_cmp(struct timespec a, struct timespec b)
{
    if (a.tv_sec != b.tv_sec) return a.tv_sec < b.tv_sec ? -1 : 1;
    return a.tv_nsec < b.tv_nsec ? -1 : a.tv_nsec > b.tv_nsec;
}

static void put_file(const char *p)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hello\n", 6), 6);
    ck_assert_int_eq(close(fd), 0);
}

static void read_file(const char *p)
{
    char buf[64];
    int fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 6);
    close(fd);
}

/* path of name on mount k */
static const char *at(int k, const char *name)
{
    static char buf[4][600];
    static int n;
    char *b = buf[n++ % 4];
    snprintf(b, sizeof(buf[0]), "%s/%s", C.mnt[k], name);
    return b;
}

START_TEST(relatime_moves_once_after_a_change)
{
    ck_assert_int_ge(M_REL, 0);
    const char *f = at(M_REL, "rel");
    put_file(f);
    hfs_sleep_ms(1100); /* a read later than the write, at the clock's resolution */
    hfs_sleep_ms(SETTLE_MS);
    struct stat before;
    ck_assert_int_eq(stat(f, &before), 0);
    read_file(f);
    hfs_sleep_ms(SETTLE_MS);
    struct stat after;
    ck_assert_int_eq(stat(f, &after), 0);
    ck_assert_msg(ts_cmp(after.st_atim, before.st_atim) > 0,
                  "the first read after the write "
                  "left atime at %ld",
                  (long)after.st_atim.tv_sec);
    ck_assert_msg(ts_cmp(after.st_ctim, before.st_ctim) == 0, "a read changed ctime");

    read_file(f); /* atime is now later than mtime and ctime, and fresh: stays */
    hfs_sleep_ms(SETTLE_MS);
    ck_assert_msg(ts_cmp(atime_of(f), after.st_atim) == 0, "relatime moved atime twice");

    ck_assert_int_eq(chmod(f, 0640), 0); /* ctime later than atime */
    hfs_sleep_ms(SETTLE_MS);
    struct timespec t0 = atime_of(f);
    read_file(f);
    hfs_sleep_ms(SETTLE_MS);
    ck_assert_msg(ts_cmp(atime_of(f), t0) > 0, "a read after a chmod left atime");

    /* a folder changed since it was last read: listing it moves its atime */
    const char *d = at(M_REL, "reldir");
    ck_assert_int_eq(mkdir(d, 0755), 0);
    hfs_sleep_ms(1100);
    char inner[700];
    snprintf(inner, sizeof(inner), "%s/x", d);
    put_file(inner);
    hfs_sleep_ms(SETTLE_MS);
    struct timespec d0 = atime_of(d);
    DIR *dir = opendir(d);
    ck_assert_ptr_nonnull(dir);
    int n = 0;
    while (readdir(dir))
        n++;
    closedir(dir);
    ck_assert_int_ge(n, 1);
    hfs_sleep_ms(SETTLE_MS);
    ck_assert_msg(ts_cmp(atime_of(d), d0) > 0, "listing a changed folder left its atime");
}
END_TEST

START_TEST(strictatime_moves_on_every_read)
{
    ck_assert_int_ge(M_STRICT, 0);
    const char *f = at(M_STRICT, "strict");
    put_file(f);
    hfs_sleep_ms(1100);
    read_file(f);
    hfs_sleep_ms(SETTLE_MS);
    struct timespec t1 = atime_of(f);
    hfs_sleep_ms(1100);
    read_file(f);
    hfs_sleep_ms(SETTLE_MS);
    ck_assert_msg(ts_cmp(atime_of(f), t1) > 0, "strictatime: a second read left atime");
}
END_TEST

START_TEST(noatime_never_moves)
{
    ck_assert_int_ge(M_NO, 0);
    const char *f = at(M_NO, "none");
    put_file(f);
    hfs_sleep_ms(1100);
    hfs_sleep_ms(SETTLE_MS);
    struct timespec t0 = atime_of(f);
    read_file(f);
    hfs_sleep_ms(SETTLE_MS);
    ck_assert_msg(ts_cmp(atime_of(f), t0) == 0, "noatime: a read moved atime");
}
END_TEST

int main(void)
{
    int rc = h_cluster_start(&C, "atime", 2);
    if (rc == 0) {
        M_REL = h_mount_opts(&C, NULL);
        M_STRICT = h_mount_opts(&C, "strictatime");
        M_NO = h_mount_opts(&C, "noatime");
    } else {
        fprintf(stderr, "cluster: %s\n", strerror(-rc));
    }
    Suite *s = suite_create("mount_atime");
    TCase *tc = tcase_create("atime");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, relatime_moves_once_after_a_change);
    tcase_add_test(tc, strictatime_moves_on_every_read);
    tcase_add_test(tc, noatime_never_moves);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    h_cluster_stop(&C);
    return failed ? 1 : 0;
}
