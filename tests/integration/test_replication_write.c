/* test_replication_write.c - writes with two copies survive a chunk server that dies under
 * them, and a copy that missed a write is never served:
 *
 * - dd_kill_chain_hop: `dd conv=fsync` of 256 MiB into a 2-copy file while the second server
 *   of chunk 0's chain is killed with SIGKILL: dd exits 0, the file is byte-exact, and every
 *   chunk is back at 2 valid copies (none on the dead server) within a deadline.
 * - stale_copy_never_served: a server holding chunk 0 is killed, chunk 0 is overwritten, the
 *   server comes back with its old copy; then every other server is killed, so that only the
 *   stale copy is left: reading chunk 0 fails with EIO or returns the new bytes, never the old
 *   ones. Once the others are back, the stale copy is refreshed or dropped (no stale copy
 *   listed, every file of that chunk on the servers' disks holds the new bytes).
 *
 * Each test starts its own cluster (cairn-meta with chunk_size 4M, cs_timeout 2 s, 2 copies;
 * three cairn-chunk servers on their own tmpfs, heartbeat 200 ms; one mount) in a forked
 * process; the runner keeps the cluster record in shared memory and reaps whatever a failed
 * test left (harness.h). What the system says about copies comes from `cairn fileinfo --json`
 * and `cairn health --json` (harness_fs.h). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define CHUNK (4 * MiB)
#define CS_TIMEOUT_S 2
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0"
#define CS_OPTS "heartbeat_ms=200"
#define MOUNT_OPTS "io_timeout=10"
#define HEAL_DEADLINE_S 120

static struct h_cluster *C; /* shared with the runner (h_cluster_shared) */
static char ROOT[256];      /* every test's cluster folder is made under here */

/* ---- helpers ------------------------------------------------------------------------------ */

static void start(const char *tag, int ncs, const char *tmpfs)
{
    int rc = h_cluster_start_opts(C, ROOT, tag, ncs, META_OPTS, CS_OPTS, NULL, tmpfs);
    ck_assert_msg(rc == 0, "cluster of %d chunk servers: %s (logs in %s)", ncs, strerror(-rc),
                  C->dir);
    rc = h_mount_opts(C, MOUNT_OPTS);
    ck_assert_msg(rc == 0, "mount: %s (logs in %s)", strerror(-rc), C->dir);
}

static double secs_since(uint64_t t0)
{
    return (double)(hfs_now_ms() - t0) / 1000.0;
}

static struct hfs_fileinfo *fileinfo(const char *path)
{
    static struct hfs_fileinfo *fi;
    if (!fi) fi = malloc(sizeof(*fi));
    ck_assert_ptr_nonnull(fi);
    char why[2048];
    ck_assert_msg(hfs_fileinfo(C, path, fi, why, sizeof(why)) == 0, "%s", why);
    return fi;
}

static int index_of(uint64_t server)
{
    int i = h_cs_index(C, server);
    ck_assert_msg(i >= 0, "server %016llx is none of this cluster's chunk servers",
                  (unsigned long long)server);
    return i;
}

static void wait_chunks(const char *path, unsigned goal, uint64_t avoid, unsigned forbid,
                        int timeout_s, const char *what)
{
    char why[4096];
    const char *paths[] = {path};
    uint64_t t0 = hfs_now_ms();
    int rc = hfs_wait_chunks(C, paths, 1, goal, avoid, forbid, timeout_s * 1000, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: not within %d s: %s", what, timeout_s, why);
    fprintf(stderr, "  %s: %.1f s\n", what, secs_since(t0));
}

/* Read through a fresh client and an empty page cache. */
static void fresh_mount(void)
{
    ck_assert_int_eq(h_drop_caches(), 0);
    int rc = h_remount(C, 0);
    ck_assert_msg(rc == 0, "remount: %s", strerror(-rc));
}

static void verify_file(const char *path, uint64_t seed, off_t size, const char *when)
{
    char why[1024];
    int rc = hfs_verify_pattern_file(path, seed, size, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: %s", when, why);
}

/* Position of descriptor fd of process pid (what dd has written so far), or -1. */
static long long fd_pos(pid_t pid, int fd)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long pos = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "pos: %lld", &pos) == 1) break;
    fclose(f);
    return pos;
}

/* ---- kill -9 of a chain hop during dd ------------------------------------------------------ */

#define DD_SIZE (256 * MiB)
#define DD_SEED 0xdd01ull
#define KILL_AT (64 * MiB)

START_TEST(dd_kill_chain_hop)
{
    start("ddkill", 3, "1g");
    char pat[400], f[400], cmd[1000], log[400];
    snprintf(pat, sizeof(pat), "%s/pattern", C->dir);
    snprintf(f, sizeof(f), "%s/f", C->mnt[0]);
    snprintf(log, sizeof(log), "%s/dd.log", C->dir);
    ck_assert_int_eq(hfs_write_pattern_file(pat, DD_SEED, DD_SIZE, 0), 0);

    snprintf(cmd, sizeof(cmd), "exec dd if='%s' of='%s' bs=1M conv=fsync", pat, f);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    uint64_t t0 = hfs_now_ms();
    pid_t dd = h_spawn(argv, log);
    ck_assert_int_gt(dd, 0);

    /* dd opens of= as its standard output: its position there is how far it got */
    int st = 0, done = 0;
    long long pos = 0;
    uint64_t end = hfs_now_ms() + 60000;
    while ((pos = fd_pos(dd, 1)) < KILL_AT) {
        if (waitpid(dd, &st, WNOHANG) == dd) {
            done = 1;
            break;
        }
        ck_assert_msg(hfs_now_ms() < end, "dd wrote only %lld bytes in 60 s", pos);
        hfs_sleep_ms(10);
    }
    ck_assert_msg(!done, "dd ended (status 0x%x) before it reached %ld MiB", st, KILL_AT / MiB);

    /* the victim: the second server of chunk 0's chain (its second copy) */
    struct hfs_fileinfo *fi = fileinfo(f);
    ck_assert_msg(fi->n >= 1 && fi->chunk[0].ncopies >= 2,
                  "chunk 0 has no second copy while dd writes (%d chunks listed)", fi->n);
    int victim = index_of(fi->chunk[0].copy[1].server);
    uint64_t victim_id = h_cs_id(C, victim);
    ck_assert_int_eq(h_cs_kill(C, victim, SIGKILL), 0);
    fprintf(stderr, "dd_kill_chain_hop: killed chunk server %d (%016llx) at %lld MiB, %.1f s\n",
            victim, (unsigned long long)victim_id, pos / MiB, secs_since(t0));

    end = hfs_now_ms() + 180000;
    while (waitpid(dd, &st, WNOHANG) != dd) {
        if (hfs_now_ms() > end) {
            h_kill_wait(dd, SIGKILL, 5000);
            ck_abort_msg("dd did not finish within 180 s of the kill");
        }
        hfs_sleep_ms(20);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char out[1200] = "";
        h_run(5, out, sizeof(out), "tail -n 5 '%s'", log);
        ck_abort_msg("dd failed (status 0x%x) after the kill: %s", st, out);
    }
    fprintf(stderr, "  dd done: %.1f s, %.0f MiB/s\n", secs_since(t0),
            (double)DD_SIZE / MiB / secs_since(t0));

    struct stat sb;
    ck_assert_int_eq(stat(f, &sb), 0);
    ck_assert_int_eq(sb.st_size, DD_SIZE);
    fresh_mount();
    verify_file(f, DD_SEED, DD_SIZE, "read back after the kill");

    wait_chunks(f, 2, victim_id, 0, HEAL_DEADLINE_S, "every chunk back at 2 valid copies");
    fresh_mount();
    verify_file(f, DD_SEED, DD_SIZE, "read back after healing");
    h_cluster_stop(C);
}
END_TEST

/* ---- a stale copy is never served ---------------------------------------------------------- */

#define ST_SIZE (12 * MiB)
#define ST_SEED 0x57a1e01ull
#define ST_NEW_SEED 0x57a1e02ull
#define ST_NEW_OFF (1 * MiB)
#define ST_NEW_LEN (1 * MiB)

/* Byte i of the file after the overwrite, and before it. */
static void st_fill(uint8_t *buf, size_t len, uint64_t off, int new_data)
{
    hfs_fill(buf, len, ST_SEED, off);
    if (!new_data) return;
    uint64_t a = off > ST_NEW_OFF ? off : ST_NEW_OFF;
    uint64_t b = off + len < ST_NEW_OFF + ST_NEW_LEN ? off + len : ST_NEW_OFF + ST_NEW_LEN;
    if (a < b) hfs_fill(buf + (a - off), b - a, ST_NEW_SEED, a);
}

/* Read [0, len) of path: 0 and the new bytes, or -EIO; anything else fails the test. */
static int st_read_chunk0(const char *path, const char *when)
{
    static uint8_t got[CHUNK], want[CHUNK], old[CHUNK];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        ck_assert_msg(errno == EIO, "%s: open: %s", when, strerror(errno));
        return -EIO;
    }
    size_t n = 0;
    alarm(90); /* a hang ends the test */
    int rc = hfs_pread_all(fd, got, CHUNK, 0, &n);
    alarm(0);
    close(fd);
    if (rc) {
        ck_assert_msg(rc == -EIO, "%s: read failed with %s (after %zu bytes), expected EIO", when,
                      strerror(-rc), n);
        return -EIO;
    }
    ck_assert_msg(n == CHUNK, "%s: read %zu bytes of chunk 0", when, n);
    st_fill(want, CHUNK, 0, 1);
    st_fill(old, CHUNK, 0, 0);
    if (memcmp(got, want, CHUNK) == 0) return 0;
    ck_assert_msg(memcmp(got + ST_NEW_OFF, old + ST_NEW_OFF, ST_NEW_LEN) != 0,
                  "%s: the stale copy was served: the overwritten range reads the OLD bytes", when);
    size_t i = 0;
    while (got[i] == want[i])
        i++;
    ck_abort_msg("%s: chunk 0 reads wrong data at byte %zu (0x%02x, expected 0x%02x)%s", when, i,
                 got[i], want[i], hfs_first_nonzero(got, CHUNK) < 0 ? " (all zeros)" : "");
    return -EINVAL;
}

static void st_verify_file(const char *path)
{
    static uint8_t got[ST_SIZE], want[ST_SIZE];
    size_t n = 0;
    ck_assert_int_eq(hfs_read_file(path, got, ST_SIZE, &n), 0);
    ck_assert_int_eq(n, ST_SIZE);
    st_fill(want, ST_SIZE, 0, 1);
    if (memcmp(got, want, ST_SIZE) != 0) {
        size_t i = 0;
        while (got[i] == want[i])
            i++;
        ck_abort_msg("%s: byte %zu is 0x%02x, expected 0x%02x", path, i, got[i], want[i]);
    }
}

/* Chunk files of chunk 0 (id) on every server: how many, and how many hold other bytes than
 * the new ones. */
static void st_disk_copies(uint64_t id, int *files, int *old)
{
    static uint8_t got[CHUNK], want[CHUNK];
    st_fill(want, CHUNK, 0, 1);
    *files = *old = 0;
    for (int i = 0; i < C->ncs; i++) {
        char path[600];
        if (h_chunk_file(C, i, id, path, sizeof(path), NULL) != 0) continue;
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue; /* deleted meanwhile */
        size_t n = 0;
        int rc = hfs_pread_all(fd, got, CHUNK, 64 * 1024, &n);
        close(fd);
        (*files)++;
        if (rc || n != CHUNK || memcmp(got, want, CHUNK) != 0) {
            (*old)++;
            fprintf(stderr, "  %s (server %d): not the new bytes of chunk 0\n", path, i);
        }
    }
}

START_TEST(stale_copy_never_served)
{
    start("stale", 3, "512m");
    char f[400];
    snprintf(f, sizeof(f), "%s/f", C->mnt[0]);
    ck_assert_int_eq(hfs_write_pattern_file(f, ST_SEED, ST_SIZE, 1), 0);
    wait_chunks(f, 2, 0, 0, 30, "2 copies after the first write");

    struct hfs_fileinfo *fi = fileinfo(f);
    int a = index_of(fi->chunk[0].copy[0].server);
    uint64_t a_id = h_cs_id(C, a);
    ck_assert_int_eq(h_cs_kill(C, a, SIGKILL), 0);

    /* overwrite part of chunk 0 while server a is down */
    int fd = open(f, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    static uint8_t buf[ST_NEW_LEN];
    hfs_fill(buf, ST_NEW_LEN, ST_NEW_SEED, ST_NEW_OFF);
    int rc = hfs_pwrite_all(fd, buf, ST_NEW_LEN, ST_NEW_OFF);
    ck_assert_msg(rc == 0, "overwrite with a server down: %s", strerror(-rc));
    ck_assert_msg(fsync(fd) == 0, "fsync with a server down: %s", strerror(errno));
    ck_assert_int_eq(close(fd), 0);

    /* server a comes back with the copy that missed the overwrite */
    int before = h_cs_registrations(C, a);
    ck_assert_int_eq(h_cs_restart(C, a), 0);
    ck_assert_int_eq(h_cs_wait_registered(C, a, before, 10000), 0);
    hfs_sleep_ms(600); /* a few heartbeats: its chunk report reaches the meta service */
    fi = fileinfo(f);
    char list[2048];
    hfs_fileinfo_str(fi, list, sizeof(list));
    fprintf(stderr, "stale_copy_never_served: server %d (%016llx) is back: %s\n", a,
            (unsigned long long)a_id, list);
    for (int k = 0; k < fi->chunk[0].ncopies; k++)
        ck_assert_msg(fi->chunk[0].copy[k].server != a_id ||
                          fi->chunk[0].copy[k].state != HFS_VALID ||
                          fi->chunk[0].copy[k].version == fi->chunk[0].version,
                      "chunk 0: the copy on the restarted server is listed valid at v%u, the "
                      "chunk is at v%u",
                      fi->chunk[0].copy[k].version, fi->chunk[0].version);

    /* only server a is left: its copy of chunk 0 must not be served unless it was refreshed */
    for (int i = 0; i < C->ncs; i++)
        if (i != a) ck_assert_int_eq(h_cs_kill(C, i, SIGKILL), 0);
    fresh_mount();
    int r1 = st_read_chunk0(f, "only the restarted server alive");
    hfs_sleep_ms((CS_TIMEOUT_S + 2) * 1000); /* now the meta service knows the others died */
    fresh_mount();
    int r2 = st_read_chunk0(f, "only the restarted server alive, the others known dead");
    fprintf(stderr, "  reads with only the restarted server: %s, then %s\n",
            r1 ? "EIO" : "new data", r2 ? "EIO" : "new data");

    /* the others come back: the stale copy is refreshed or dropped */
    for (int i = 0; i < C->ncs; i++) {
        if (i == a) continue;
        int b = h_cs_registrations(C, i);
        ck_assert_int_eq(h_cs_restart(C, i), 0);
        ck_assert_int_eq(h_cs_wait_registered(C, i, b, 10000), 0);
    }
    wait_chunks(f, 2, 0, 1u << HFS_STALE | 1u << HFS_BAD, 60,
                "no stale copy and 2 valid copies once every server is back");
    /* and on disk: every file of chunk 0 holds the new bytes (the stale one is gone or
     * rewritten) */
    uint64_t id = fileinfo(f)->chunk[0].id, end = hfs_now_ms() + 30000;
    for (;;) {
        int files, old;
        st_disk_copies(id, &files, &old);
        if (old == 0 && files >= 2) break;
        ck_assert_msg(hfs_now_ms() < end,
                      "30 s later %d files of chunk 0 on the servers' disks, %d with old bytes",
                      files, old);
        hfs_sleep_ms(500);
    }
    fresh_mount();
    st_verify_file(f);
    h_cluster_stop(C);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

static void leftovers(void)
{
    h_cluster_leftovers(C);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    C = h_cluster_shared();
    if (!C || h_mkdtemp("repl-write", ROOT, sizeof(ROOT)) != 0) {
        perror("test_replication_write: setup");
        return 1;
    }
    h_cluster_stop_on_signal(C);
    Suite *s = suite_create("replication_write");
    struct {
        const char *name;
        const TTest *t;
    } tests[] = {{"dd_kill", dd_kill_chain_hop}, {"stale", stale_copy_never_served}};
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, 240);
        tcase_add_unchecked_fixture(tc, NULL, leftovers);
        tcase_add_test(tc, tests[i].t);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    h_cluster_leftovers(C);
    if (rmdir(ROOT) != 0)
        fprintf(stderr, "%s: %s\n", getenv("KEEP") ? "kept" : "logs of failed tests", ROOT);
    return nf ? 1 : 0;
}
