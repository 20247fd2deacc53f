/* test_mount_local_read.c - reads in place (client-fuse/local_read.c) on real mounts of a real
 * cluster: two chunk servers on this machine, every chunk with a copy on each, the first server
 * telling clients where its chunk files are (local_reads, the default) and the second not
 * (local_reads=0), so a mount's reads in place always use the first server's copy.
 *
 * - reads_in_place: files read through a fresh mount come from the chunk files in place, with
 *   no chunk server read at all (the mount's counters, user.cairn.stats), and match;
 * - a flipped byte in the local copy is caught: the read still returns the right bytes (from
 *   a server), and the failure is counted;
 * - never stale: a file rewritten through another mount (a new chunk version: the server
 *   renames the file and updates its header while the reader keeps it open) reads back new,
 *   and so does one appended to;
 * - a file deleted through another mount: the reader lets go of its chunk files within a
 *   minute, so their disk space is not held;
 * - local_reads=0 on the mount: every read goes to a chunk server.
 * The tests run in one process (CK_NOFORK): a failed one leaves its mount to the cleanup. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness_fs.h"

#define MiB (1024L * 1024L)

static struct h_cluster C;
static int ready;
static char why[512];
static char mnt0[400], mnt1[400]; /* the writer's mount; the reader's (reads in place) */

static void need(void)
{
    ck_assert_msg(ready, "no cluster/mount: %s", why);
}

static void verify(const char *path, uint64_t seed, off_t size)
{
    char w[300];
    int rc = hfs_verify_pattern_file(path, seed, size, w, sizeof(w));
    ck_assert_msg(rc == 0, "%s: %s", path, w);
}

/* path of name in folder dir of mount root */
static void at(char *out, size_t len, const char *root, const char *dir, const char *name)
{
    snprintf(out, len, "%s/%s/%s", root, dir, name);
}

/* Write file name of the pattern of seed through the writer's mount and read it back through
 * the reader's, which then holds its chunk files open; the two paths into p0 and p1. */
static void written_then_read(const char *name, uint64_t seed, off_t size, char *p0, char *p1)
{
    at(p0, 600, mnt0, "", name);
    at(p1, 600, mnt1, "", name);
    ck_assert_int_eq(hfs_write_pattern_file(p0, seed, size, 1), 0);
    verify(p1, seed, size);
}

START_TEST(reads_in_place)
{
    need();
    char p0[600], p1[600];
    char dir[32] = "inplace";
    at(p0, sizeof(p0), mnt0, dir, "");
    ck_assert_int_eq(mkdir(p0, 0755), 0);
    const off_t sizes[3] = {100 * 1024, 3 * MiB + 12345, 64 * 1024};
    for (int i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof(n), "f%d", i);
        at(p0, sizeof(p0), mnt0, dir, n);
        ck_assert_int_eq(hfs_write_pattern_file(p0, 10 + (uint64_t)i, sizes[i], 1), 0);
    }
    ck_assert_int_eq(h_drop_caches(), 0);
    long long reads = hfs_mount_stat(mnt1, "chunk_reads");
    long long local = hfs_mount_stat(mnt1, "local_reads");
    long long bytes = hfs_mount_stat(mnt1, "local_read_bytes");
    ck_assert_int_ge(reads, 0);
    ck_assert_int_ge(local, 0);
    for (int i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof(n), "f%d", i);
        at(p1, sizeof(p1), mnt1, dir, n);
        verify(p1, 10 + (uint64_t)i, sizes[i]);
    }
    ck_assert_int_eq(hfs_mount_stat(mnt1, "chunk_reads"), reads);
    ck_assert_int_ge(hfs_mount_stat(mnt1, "local_reads"), local + 3);
    ck_assert_int_ge(hfs_mount_stat(mnt1, "local_read_bytes"),
                     bytes + sizes[0] + sizes[1] + sizes[2]);
    ck_assert_int_eq(hfs_mount_stat(mnt1, "local_read_fails"), 0);
}
END_TEST

START_TEST(flipped_byte_is_caught)
{
    need();
    char p0[600], p1[600], path[700];
    at(p0, sizeof(p0), mnt0, "", "flip");
    ck_assert_int_eq(hfs_write_pattern_file(p0, 20, 2 * MiB, 1), 0);
    static struct hfs_fileinfo fi;
    char w[300];
    ck_assert_int_eq(hfs_fileinfo(&C, p0, &fi, w, sizeof(w)), 0);
    ck_assert_int_eq(fi.n, 1);
    uint32_t ver = 0;
    ck_assert_int_eq(h_chunk_file(&C, 0, fi.chunk[0].id, path, sizeof(path), &ver), 0);
    /* a byte of the second 64 KiB block of the data */
    ck_assert_int_eq(h_chunk_flip_byte(path, 64 * 1024 + 777), 0);
    ck_assert_int_eq(h_drop_caches(), 0);
    long long fails = hfs_mount_stat(mnt1, "local_read_fails");
    long long reads = hfs_mount_stat(mnt1, "chunk_reads");
    at(p1, sizeof(p1), mnt1, "", "flip");
    verify(p1, 20, 2 * MiB);
    ck_assert_int_ge(hfs_mount_stat(mnt1, "local_read_fails"), fails + 1);
    ck_assert_int_ge(hfs_mount_stat(mnt1, "chunk_reads"), reads + 1);
}
END_TEST

START_TEST(rewritten_never_stale)
{
    need();
    char p0[600], p1[600];
    written_then_read("rewrite", 30, 2 * MiB, p0, p1);
    long long local = hfs_mount_stat(mnt1, "local_reads");
    for (uint64_t seed = 31; seed < 34; seed++) {
        ck_assert_int_eq(hfs_write_pattern_file(p0, seed, 2 * MiB, 1), 0);
        ck_assert_int_eq(h_drop_caches(), 0);
        verify(p1, seed, 2 * MiB);
    }
    /* appended to through the writer's mount */
    ck_assert_int_eq(h_sh(30, "head -c 1000 /dev/zero >> '%s'", p0), 0);
    ck_assert_int_eq(h_drop_caches(), 0);
    struct stat st;
    ck_assert_int_eq(stat(p1, &st), 0);
    ck_assert_int_eq(st.st_size, 2 * MiB + 1000);
    ck_assert_int_eq(h_sh(30, "cmp -s -n %ld '%s' '%s'", (long)(2 * MiB + 1000), p0, p1), 0);
    ck_assert_int_eq(h_sh(30, "tail -c 1000 '%s' | cmp -s -n 1000 - /dev/zero", p1), 0);
    /* the new versions were read in place too, not only the first */
    ck_assert_int_gt(hfs_mount_stat(mnt1, "local_reads"), local);
}
END_TEST

/* Chunk files of pid's that are open but deleted. */
static int deleted_chunk_fds(pid_t pid)
{
    char out[4096];
    int rc =
        h_run(10, out, sizeof(out), "ls -l /proc/%d/fd | grep -c '\\.chk (deleted)'", (int)pid);
    return rc < 0 ? -1 : atoi(out);
}

START_TEST(deleted_chunks_let_go)
{
    need();
    char p0[600], p1[600];
    written_then_read("gone", 50, 3 * MiB, p0, p1);
    ck_assert_int_eq(unlink(p0), 0);
    /* the servers delete the chunk files; the reader closes them once unread for a while
     * (LR_IDLE_MS, 30 s), so their space is not held for long */
    int n = -1;
    for (int i = 0; i < 60 && n != 0; i++) {
        sleep(1);
        n = deleted_chunk_fds(C.mount_pid[1]);
    }
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(off_on_the_mount)
{
    need();
    char p0[600], p2[600];
    at(p0, sizeof(p0), mnt0, "", "off");
    ck_assert_int_eq(hfs_write_pattern_file(p0, 40, MiB + 3, 1), 0);
    int k = h_mount_opts(&C, "local_reads=0");
    ck_assert_int_ge(k, 0);
    at(p2, sizeof(p2), C.mnt[k], "", "off");
    verify(p2, 40, MiB + 3);
    ck_assert_int_ge(hfs_mount_stat(C.mnt[k], "chunk_reads"), 1);
    ck_assert_int_eq(hfs_mount_stat(C.mnt[k], "local_reads"), 0);
    ck_assert_int_eq(h_umount(&C, k), 0);
    C.nmounts = k;
}
END_TEST

int main(void)
{
    h_cluster_stop_on_signal(&C);
    const char *extra[2] = {NULL, "local_reads=0"};
    int rc = h_cluster_start_opts(&C, NULL, "localread", 2, NULL, NULL, extra, NULL);
    if (rc) snprintf(why, sizeof(why), "cluster: %s (logs in %s)", strerror(-rc), C.dir);
    int k0 = rc ? -1 : h_mount(&C);
    int k1 = k0 < 0 ? -1 : h_mount(&C);
    if (!rc && k1 < 0) snprintf(why, sizeof(why), "mount: %s", strerror(k0 < 0 ? -k0 : -k1));
    if (k1 >= 0) {
        snprintf(mnt0, sizeof(mnt0), "%s", C.mnt[k0]);
        snprintf(mnt1, sizeof(mnt1), "%s", C.mnt[k1]);
        ready = 1;
    }
    if (!ready) fprintf(stderr, "test_mount_local_read: setup failed: %s\n", why);
    Suite *s = suite_create("mount_local_read");
    TCase *tc = tcase_create("local_read");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, reads_in_place);
    tcase_add_test(tc, flipped_byte_is_caught);
    tcase_add_test(tc, rewritten_never_stale);
    tcase_add_test(tc, deleted_chunks_let_go);
    tcase_add_test(tc, off_on_the_mount);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    h_cluster_stop(&C);
    return nf ? 1 : 0;
}
