/* test_mount_cache.c - the client's local disk cache (cache_dir, client-fuse/dcache.c) on
 * real mounts of a real cluster: mount 0 writes without a cache, other mounts read with one.
 *
 * - never stale: a file rewritten through mount 0 (also with its old mtime put back, and
 *   appended to) reads back new through the caching mount, never the cached bytes;
 * - a flipped byte in a cache file on disk is caught, counted, and the data read from a chunk
 *   server instead;
 * - `cairn warmup`, then a remount (the cache is found again on disk: from the index file the
 *   clean unmount left) and a cold read of every file: every byte comes from the disk cache, no
 *   chunk server read at all (the mount's counters, user.cairn.stats); then the mount is killed
 *   (kill -9: no index file) and a new one finds the entries by its scan and serves them again;
 * - the files on disk stay under cache_size;
 * - a cache folder on a full tmpfs: reads still succeed, write errors are counted.
 * The tests run in one process (CK_NOFORK): a failed one leaves its mount to the cleanup. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness_fs.h"

#define MiB (1024L * 1024L)

static struct hfs_env E;

/* Mount the cluster again, as mount 1, with the disk cache in dir (extra options appended),
 * unmounting the one an earlier test left there; its root into root. Returns 1 or -errno. */
static int cache_mount(const char *dir, const char *extra, char *root, size_t len)
{
    char opts[1400];
    if (E.c.nmounts > 1) {
        if (E.c.mount_pid[1] > 0) h_umount(&E.c, 1);
        E.c.nmounts = 1;
    }
    /* the disk cache keeps what comes from servers on other machines: here every server is on
     * this one, so reads in place (local_read.c) are turned off to stand for that */
    snprintf(opts, sizeof(opts), "cache_dir=%s,local_reads=0%s%s", dir, extra ? "," : "",
             extra ? extra : "");
    int k = h_mount_opts(&E.c, opts);
    if (k >= 0) snprintf(root, len, "%s", E.c.mnt[k]);
    return k;
}

/* Every entry file under a cache folder (DIR/XX/name), at most max, into paths. */
static int cache_files(const char *dir, char (*paths)[700], int max)
{
    int n = 0;
    for (int x = 0; x < 256 && n < max; x++) {
        char sub[620];
        snprintf(sub, sizeof(sub), "%.600s/%02x", dir, x);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) && n < max)
            if (e->d_name[0] != '.' && strncmp(e->d_name, "tmp-", 4))
                snprintf(paths[n++], 700, "%.620s/%.70s", sub, e->d_name);
        closedir(d);
    }
    return n;
}

/* Bytes the entry files under dir take on disk (st_blocks). */
static long long cache_disk_bytes(const char *dir)
{
    static char paths[4096][700];
    int n = cache_files(dir, paths, 4096);
    long long sum = 0;
    struct stat st;
    for (int i = 0; i < n; i++)
        if (stat(paths[i], &st) == 0) sum += (long long)st.st_blocks * 512;
    return sum;
}

static void need(void)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
}

static void verify(const char *path, uint64_t seed, off_t size)
{
    char why[300];
    int rc = hfs_verify_pattern_file(path, seed, size, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: %s", path, why);
}

START_TEST(never_stale)
{
    need();
    if (E.local) return;
    char w[600], cdir[600], root[700], p0[700], p1[800];
    ck_assert_int_eq(hfs_subdir(&E, 0, "stale", w, sizeof(w)), 0);
    snprintf(cdir, sizeof(cdir), "%s/dc-stale", E.c.dir);
    ck_assert_int_ge(cache_mount(cdir, "cache_size=256M", root, sizeof(root)), 0);
    snprintf(p0, sizeof(p0), "%s/f", w);
    snprintf(p1, sizeof(p1), "%s/stale/f", root);
    ck_assert_int_eq(hfs_write_pattern_file(p0, 1, 3 * MiB, 1), 0);
    verify(p1, 1, 3 * MiB);
    ck_assert_int_ge(hfs_wait_stat(root, "disk_cache_entries", 3), 3);
    struct stat before;
    ck_assert_int_eq(stat(p0, &before), 0);

    /* rewritten in place, same size, then its old mtime put back: only the chunk versions
     * tell the cached bytes are old */
    sleep(1);
    ck_assert_int_eq(hfs_write_pattern_file(p0, 2, 3 * MiB, 1), 0);
    struct timespec ts[2] = {before.st_atim, before.st_mtim};
    ck_assert_int_eq(utimensat(AT_FDCWD, p0, ts, 0), 0);
    ck_assert_int_eq(h_drop_caches(), 0);
    verify(p1, 2, 3 * MiB);

    /* appended to: new size, new mtime */
    int fd = open(p0, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    char *buf = malloc(MiB);
    hfs_fill(buf, MiB, 2, 3 * MiB);
    ck_assert_int_eq(hfs_pwrite_all(fd, buf, MiB, 3 * MiB), 0);
    ck_assert_int_eq(close(fd), 0);
    free(buf);
    ck_assert_int_eq(h_drop_caches(), 0);
    verify(p1, 2, 4 * MiB);
    /* and read again: from the cache now, still right */
    ck_assert_int_eq(h_drop_caches(), 0);
    verify(p1, 2, 4 * MiB);
}
END_TEST

START_TEST(corrupt_entry_is_caught)
{
    need();
    if (E.local) return;
    char w[600], cdir[600], root[700], p0[700], p1[800];
    ck_assert_int_eq(hfs_subdir(&E, 0, "corrupt", w, sizeof(w)), 0);
    snprintf(cdir, sizeof(cdir), "%s/dc-corrupt", E.c.dir);
    int k = cache_mount(cdir, "cache_size=256M", root, sizeof(root));
    ck_assert_int_ge(k, 0);
    snprintf(p0, sizeof(p0), "%s/f", w);
    snprintf(p1, sizeof(p1), "%s/corrupt/f", root);
    ck_assert_int_eq(hfs_write_pattern_file(p0, 3, 2 * MiB, 1), 0);
    verify(p1, 3, 2 * MiB);
    ck_assert_int_ge(hfs_wait_stat(root, "disk_cache_entries", 2), 2);
    static char files[16][700];
    int n = cache_files(cdir, files, 16);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++) /* a byte in the second 64 KiB block of the data */
        ck_assert_int_eq(h_chunk_flip_byte(files[i], 4096 + 65536 + 17), 0);
    /* a fresh client (nothing in memory) finds the entries again on disk */
    ck_assert_int_eq(h_remount(&E.c, k), k);
    ck_assert_int_eq(h_drop_caches(), 0);
    ck_assert_int_ge(hfs_wait_stat(root, "disk_cache_entries", 2), 2);
    long long reads0 = hfs_mount_stat(root, "chunk_reads");
    verify(p1, 3, 2 * MiB);
    ck_assert_int_ge(hfs_mount_stat(root, "disk_cache_corrupt"), 1);
    ck_assert_int_gt(hfs_mount_stat(root, "chunk_reads"), reads0); /* read from a server instead */
}
END_TEST

START_TEST(warmup_then_epoch_from_cache)
{
    need();
    if (E.local) return;
    char w[600], cdir[600], root[700], p[900];
    enum { NFILES = 8 };
    const off_t size = 3 * MiB / 2;
    ck_assert_int_eq(hfs_subdir(&E, 0, "warm", w, sizeof(w)), 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof(p), "%s/f%d", w, i);
        ck_assert_int_eq(hfs_write_pattern_file(p, 100 + (uint64_t)i, size, 1), 0);
    }
    snprintf(cdir, sizeof(cdir), "%s/dc-warm", E.c.dir);
    int k = cache_mount(cdir, "cache_size=256M", root, sizeof(root));
    ck_assert_int_ge(k, 0);
    char prog[600], out[2000];
    h_prog("cairn", prog, sizeof(prog));
    snprintf(p, sizeof(p), "%s/warm", root);
    int rc = h_run(120, out, sizeof(out), "'%s' warmup '%s'", prog, p);
    ck_assert_msg(rc == 0, "cairn warmup: %s", out);
    ck_assert_msg(strstr(out, "8 files"), "cairn warmup said: %s", out);
    ck_assert_int_ge(hfs_wait_stat(root, "disk_cache_entries", 2 * NFILES), 2 * NFILES);

    /* a fresh client after a clean unmount: nothing in memory, the cache taken from the index
     * file at once; then one after a crash (no index file): the scan finds it */
    for (int crash = 0; crash < 2; crash++) {
        if (crash) ck_assert_int_ge(h_kill_wait(E.c.mount_pid[k], SIGKILL, 5000), 0);
        ck_assert_int_eq(h_remount(&E.c, k), k);
        ck_assert_int_eq(hfs_mount_stat(root, "disk_cache_loaded"), crash ? 0 : 2 * NFILES);
        ck_assert_int_ge(hfs_wait_stat(root, "disk_cache_entries", 2 * NFILES), 2 * NFILES);
        ck_assert_int_eq(h_drop_caches(), 0);
        long long reads0 = hfs_mount_stat(root, "chunk_reads"),
                  hits0 = hfs_mount_stat(root, "disk_cache_hit_bytes");
        for (int i = 0; i < NFILES; i++) {
            snprintf(p, sizeof(p), "%s/warm/f%d", root, i);
            verify(p, 100 + (uint64_t)i, size);
        }
        ck_assert_int_eq(hfs_mount_stat(root, "chunk_reads"), reads0);
        ck_assert_int_ge(hfs_mount_stat(root, "disk_cache_hit_bytes") - hits0,
                         (long long)NFILES * size);
    }
}
END_TEST

START_TEST(stays_under_cache_size)
{
    need();
    if (E.local) return;
    char w[600], cdir[600], root[700], p[900];
    enum { NFILES = 20 };
    ck_assert_int_eq(hfs_subdir(&E, 0, "bound", w, sizeof(w)), 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof(p), "%s/f%d", w, i);
        ck_assert_int_eq(hfs_write_pattern_file(p, 200 + (uint64_t)i, MiB, 0), 0);
    }
    snprintf(cdir, sizeof(cdir), "%s/dc-bound", E.c.dir);
    ck_assert_int_ge(cache_mount(cdir, "cache_size=6M", root, sizeof(root)), 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof(p), "%s/bound/f%d", root, i);
        verify(p, 200 + (uint64_t)i, MiB);
    }
    long long ev = hfs_wait_stat(root, "disk_cache_evicted", NFILES - 6);
    ck_assert_msg(ev >= NFILES - 6, "evicted %lld, puts %lld, dropped %lld, entries %lld", ev,
                  hfs_mount_stat(root, "disk_cache_puts"),
                  hfs_mount_stat(root, "disk_cache_put_dropped"),
                  hfs_mount_stat(root, "disk_cache_entries"));
    long long used = cache_disk_bytes(cdir);
    ck_assert_msg(used > 0 && used <= 6 * MiB, "%lld bytes on disk, limit %ld", used, 6 * MiB);
    ck_assert_int_le(hfs_mount_stat(root, "disk_cache_bytes_used"), 6 * MiB);
}
END_TEST

START_TEST(full_cache_disk_does_not_fail_reads)
{
    need();
    if (E.local) return;
    char w[600], cdir[600], root[700], p[900];
    enum { NFILES = 12 };
    ck_assert_int_eq(hfs_subdir(&E, 0, "full", w, sizeof(w)), 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof(p), "%s/f%d", w, i);
        ck_assert_int_eq(hfs_write_pattern_file(p, 300 + (uint64_t)i, MiB, 0), 0);
    }
    snprintf(cdir, sizeof(cdir), "%s/dc-full", E.c.dir);
    ck_assert_int_eq(mkdir(cdir, 0700), 0);
    ck_assert_int_eq(mount("tmpfs", cdir, "tmpfs", 0, "size=3m"), 0);
    int k = cache_mount(cdir, "cache_size=64M", root, sizeof(root));
    ck_assert_int_ge(k, 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof(p), "%s/full/f%d", root, i);
        verify(p, 300 + (uint64_t)i, MiB);
    }
    long long errs = hfs_wait_stat(root, "disk_cache_write_errors", 1);
    ck_assert_int_ge(h_drop_caches(), 0);
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof(p), "%s/full/f%d", root, i);
        verify(p, 300 + (uint64_t)i, MiB);
    }
    ck_assert_int_eq(h_umount(&E.c, k), 0);
    E.c.nmounts = 1;
    umount2(cdir, MNT_DETACH);
    ck_assert_int_ge(errs, 1);
}
END_TEST

int main(void)
{
    hfs_stop_on_signal(&E);
    hfs_env_start(&E, "cache", 2, 1, NULL);
    if (!E.ready) fprintf(stderr, "test_mount_cache: setup failed: %s\n", E.why);
    Suite *s = suite_create("mount_cache");
    TCase *tc = tcase_create("disk_cache");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, never_stale);
    tcase_add_test(tc, corrupt_entry_is_caught);
    tcase_add_test(tc, warmup_then_epoch_from_cache);
    tcase_add_test(tc, stays_under_cache_size);
    tcase_add_test(tc, full_cache_disk_does_not_fail_reads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* one process: every test's cache mount gets its own mount point (a forked test would
     * reuse the slot of the one before) */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
