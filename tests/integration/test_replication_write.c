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
 * test left (harness_repl.h). What the system says about copies comes from `cairn fileinfo --json`
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
#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define CHUNK (4 * MiB)
#define CS_TIMEOUT_S 2
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0"
#define CS_OPTS "heartbeat_ms=200"
#define HEAL_DEADLINE_S 120

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
    hr_start("ddkill", 3, META_OPTS, CS_OPTS, NULL, "1g");
    char pat[400], f[400], cmd[1000], log[400];
    snprintf(pat, sizeof(pat), "%s/pattern", hr_c->dir);
    snprintf(f, sizeof(f), "%s/f", hr_c->mnt[0]);
    snprintf(log, sizeof(log), "%s/dd.log", hr_c->dir);
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
    struct hfs_fileinfo *fi = hr_fileinfo(f);
    ck_assert_msg(fi->n >= 1 && fi->chunk[0].ncopies >= 2,
                  "chunk 0 has no second copy while dd writes (%d chunks listed)", fi->n);
    int victim = hr_index_of(fi->chunk[0].copy[1].server);
    uint64_t victim_id = h_cs_id(hr_c, victim);
    ck_assert_int_eq(h_cs_kill(hr_c, victim, SIGKILL), 0);
    fprintf(stderr, "dd_kill_chain_hop: killed chunk server %d (%016llx) at %lld MiB, %.1f s\n",
            victim, (unsigned long long)victim_id, pos / MiB, hr_secs_since(t0));

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
    fprintf(stderr, "  dd done: %.1f s, %.0f MiB/s\n", hr_secs_since(t0),
            (double)DD_SIZE / MiB / hr_secs_since(t0));

    struct stat sb;
    ck_assert_int_eq(stat(f, &sb), 0);
    ck_assert_int_eq(sb.st_size, DD_SIZE);
    hr_fresh_mount();
    hr_verify_file(f, DD_SEED, DD_SIZE, "read back after the kill");

    hr_wait_file(f, 2, victim_id, 0, HEAL_DEADLINE_S, "every chunk back at 2 valid copies");
    hr_fresh_mount();
    hr_verify_file(f, DD_SEED, DD_SIZE, "read back after healing");
    h_cluster_stop(hr_c);
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
    for (int i = 0; i < hr_c->ncs; i++) {
        char path[600];
        if (h_chunk_file(hr_c, i, id, path, sizeof(path), NULL) != 0) continue;
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
    hr_start("stale", 3, META_OPTS, CS_OPTS, NULL, "512m");
    char f[400];
    snprintf(f, sizeof(f), "%s/f", hr_c->mnt[0]);
    ck_assert_int_eq(hfs_write_pattern_file(f, ST_SEED, ST_SIZE, 1), 0);
    hr_wait_file(f, 2, 0, 0, 30, "2 copies after the first write");

    struct hfs_fileinfo *fi = hr_fileinfo(f);
    int a = hr_index_of(fi->chunk[0].copy[0].server);
    uint64_t a_id = h_cs_id(hr_c, a);
    ck_assert_int_eq(h_cs_kill(hr_c, a, SIGKILL), 0);

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
    int before = h_cs_registrations(hr_c, a);
    ck_assert_int_eq(h_cs_restart(hr_c, a), 0);
    ck_assert_int_eq(h_cs_wait_registered(hr_c, a, before, 10000), 0);
    hfs_sleep_ms(600); /* a few heartbeats: its chunk report reaches the meta service */
    fi = hr_fileinfo(f);
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
    for (int i = 0; i < hr_c->ncs; i++)
        if (i != a) ck_assert_int_eq(h_cs_kill(hr_c, i, SIGKILL), 0);
    hr_fresh_mount();
    int r1 = st_read_chunk0(f, "only the restarted server alive");
    hfs_sleep_ms((CS_TIMEOUT_S + 2) * 1000); /* now the meta service knows the others died */
    hr_fresh_mount();
    int r2 = st_read_chunk0(f, "only the restarted server alive, the others known dead");
    fprintf(stderr, "  reads with only the restarted server: %s, then %s\n",
            r1 ? "EIO" : "new data", r2 ? "EIO" : "new data");

    /* the others come back: the stale copy is refreshed or dropped */
    for (int i = 0; i < hr_c->ncs; i++) {
        if (i == a) continue;
        int b = h_cs_registrations(hr_c, i);
        ck_assert_int_eq(h_cs_restart(hr_c, i), 0);
        ck_assert_int_eq(h_cs_wait_registered(hr_c, i, b, 10000), 0);
    }
    hr_wait_file(f, 2, 0, 1u << HFS_STALE | 1u << HFS_BAD, 60,
                 "no stale copy and 2 valid copies once every server is back");
    /* and on disk: every file of chunk 0 holds the new bytes (the stale one is gone or
     * rewritten) */
    uint64_t id = hr_fileinfo(f)->chunk[0].id, end = hfs_now_ms() + 30000;
    for (;;) {
        int files, old;
        st_disk_copies(id, &files, &old);
        if (old == 0 && files >= 2) break;
        ck_assert_msg(hfs_now_ms() < end,
                      "30 s later %d files of chunk 0 on the servers' disks, %d with old bytes",
                      files, old);
        hfs_sleep_ms(500);
    }
    hr_fresh_mount();
    st_verify_file(f);
    h_cluster_stop(hr_c);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    const struct h_test tests[] = {{"dd_kill", dd_kill_chain_hop},
                                   {"stale", stale_copy_never_served}};
    return hr_main("repl-write", "replication_write", tests, sizeof(tests) / sizeof(tests[0]), 240);
}
