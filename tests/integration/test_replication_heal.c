/* test_replication_heal.c - lost and damaged copies are rebuilt, and reads never see them:
 *
 * - lost_server_rebuilt: 128 MiB written and fsynced with 2 copies, the server holding chunk
 *   0 killed with SIGKILL; through an empty page cache and a fresh mount the file reads
 *   byte-exact at once, and within a deadline every chunk has 2 valid copies again, none on
 *   the dead server.
 * - bad_copy_repaired: one byte of one copy flipped on disk: reads through fresh mounts stay
 *   byte-exact (they may hit the bad copy; the chunk servers also scrub every 20 s), the bad
 *   copy is replaced (2 valid copies, no bad one, every chunk file of that chunk on disk
 *   byte-exact) and `cairn health` counts it in bad_repaired.
 *
 * Each test starts its own cluster (cairn-meta with chunk_size 4M, cs_timeout 2 s, 2 copies,
 * unlimited repair rate; three cairn-chunk servers on their own tmpfs, heartbeat 200 ms; one
 * mount) in a forked process; the runner keeps the cluster record in shared memory and reaps
 * whatever a failed test left (harness.h). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define CHUNK (4 * MiB)
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0"
#define CS_OPTS "heartbeat_ms=200"
#define MOUNT_OPTS "io_timeout=10"
#define HEAL_DEADLINE_S 90

static struct h_cluster *C; /* shared with the runner (h_cluster_shared) */
static char ROOT[256];      /* every test's cluster folder is made under here */

/* ---- helpers ------------------------------------------------------------------------------ */

static void start(const char *tag, int ncs, const char *cs_opts, const char *tmpfs)
{
    int rc = h_cluster_start_opts(C, ROOT, tag, ncs, META_OPTS, cs_opts, NULL, tmpfs);
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

static void fresh_mount(void)
{
    ck_assert_int_eq(h_drop_caches(), 0);
    int rc = h_remount(C, 0);
    ck_assert_msg(rc == 0, "remount: %s", strerror(-rc));
}

static void verify_file(const char *path, uint64_t seed, off_t size, const char *when)
{
    char why[1024];
    alarm(120); /* a hang ends the test */
    int rc = hfs_verify_pattern_file(path, seed, size, why, sizeof(why));
    alarm(0);
    ck_assert_msg(rc == 0, "%s: %s", when, why);
}

/* ---- a server is lost ---------------------------------------------------------------------- */

#define LOST_SIZE (128 * MiB)
#define LOST_SEED 0x1057ull

START_TEST(lost_server_rebuilt)
{
    start("lost", 3, CS_OPTS, "1g");
    char f[400];
    snprintf(f, sizeof(f), "%s/f", C->mnt[0]);
    uint64_t t0 = hfs_now_ms();
    int rc = hfs_write_pattern_file(f, LOST_SEED, LOST_SIZE, 1);
    ck_assert_msg(rc == 0, "write and fsync 128 MiB: %s", strerror(-rc));
    fprintf(stderr, "lost_server_rebuilt: 128 MiB written in %.1f s\n", secs_since(t0));
    wait_chunks(f, 2, 0, 0, 30, "2 valid copies after the write");

    struct hfs_fileinfo *fi = fileinfo(f);
    int victim = index_of(fi->chunk[0].copy[0].server);
    uint64_t victim_id = h_cs_id(C, victim);
    ck_assert_int_eq(h_cs_kill(C, victim, SIGKILL), 0);
    fprintf(stderr, "  killed chunk server %d (%016llx), which held chunk 0\n", victim,
            (unsigned long long)victim_id);

    /* at once: the meta service may still list the dead server; reads go elsewhere */
    fresh_mount();
    t0 = hfs_now_ms();
    verify_file(f, LOST_SEED, LOST_SIZE, "read right after the kill");
    fprintf(stderr, "  read back byte-exact in %.1f s\n", secs_since(t0));

    wait_chunks(f, 2, victim_id, 0, HEAL_DEADLINE_S,
                "every chunk at 2 valid copies, none on the dead server");
    fresh_mount();
    verify_file(f, LOST_SEED, LOST_SIZE, "read after healing");
    h_cluster_stop(C);
}
END_TEST

/* ---- a damaged copy ------------------------------------------------------------------------ */

#define BAD_SIZE (64 * MiB)
#define BAD_SEED 0xbadull
#define BAD_CHUNK 5
#define BAD_OFF 100000 /* in the chunk's second 64 KiB block */

/* Every file chunk server i holds for chunk id must hold exactly the file's bytes of chunk
 * index (length bytes). Returns the number of such files (0..1), or fails the test. */
static int chunk_files_exact(int i, uint64_t id, uint64_t index, uint64_t length, int *bad)
{
    char path[600];
    uint32_t ver = 0;
    if (h_chunk_file(C, i, id, path, sizeof(path), &ver) != 0) return 0;
    static uint8_t got[CHUNK], want[CHUNK];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0; /* deleted meanwhile */
    size_t n = 0;
    int rc = hfs_pread_all(fd, got, length, 64 * 1024, &n);
    close(fd);
    hfs_fill(want, length, BAD_SEED, index * CHUNK);
    *bad = rc != 0 || n != length || memcmp(got, want, length) != 0;
    if (*bad)
        fprintf(stderr, "  %s (server %d, v%u): %s\n", path, i, ver,
                rc            ? strerror(-rc)
                : n != length ? "short"
                              : "differs from the file's bytes");
    return 1;
}

START_TEST(bad_copy_repaired)
{
    /* the scrubber's first pass runs at start (nothing stored yet), the next one 20 s later:
     * until then only reads can find the damage */
    start("bad", 3, CS_OPTS " scrub_rate=200 scrub_interval=20", "512m");
    char f[400], why[2048];
    snprintf(f, sizeof(f), "%s/f", C->mnt[0]);
    ck_assert_int_eq(hfs_write_pattern_file(f, BAD_SEED, BAD_SIZE, 1), 0);
    wait_chunks(f, 2, 0, 0, 30, "2 valid copies after the write");

    struct hfs_fileinfo *fi = fileinfo(f);
    ck_assert_int_gt(fi->n, BAD_CHUNK);
    struct hfs_chunk ch = fi->chunk[BAD_CHUNK];
    int victim = index_of(ch.copy[0].server);
    char path[600];
    uint32_t ver = 0;
    int rc = h_chunk_file(C, victim, ch.id, path, sizeof(path), &ver);
    ck_assert_msg(rc == 0, "chunk %016llx is not on server %d's disk", (unsigned long long)ch.id,
                  victim);
    ck_assert_int_eq(h_chunk_flip_byte(path, BAD_OFF), 0);
    fprintf(stderr, "bad_copy_repaired: flipped byte %d of %s (server %d)\n", BAD_OFF, path,
            victim);

    /* reads are right whichever copy they use, through fresh clients and page caches */
    for (int round = 0; round < 3; round++) {
        fresh_mount();
        verify_file(f, BAD_SEED, BAD_SIZE, "read with one copy damaged");
    }

    /* the damaged copy is replaced: 2 valid copies of every chunk, none bad */
    wait_chunks(f, 2, 0, 1u << HFS_BAD, 60, "the bad copy replaced");
    char out[200] = "";
    int scrubbed = h_run(5, out, sizeof(out), "grep -q 'scrub.*bad checksum' '%s'/cs*.log", C->dir);
    fprintf(stderr, "  (found by %s)\n", scrubbed == 0 ? "the scrubber" : "a read");
    fi = fileinfo(f);
    ch = fi->chunk[BAD_CHUNK];

    /* every file of that chunk on every server holds the right bytes (the damaged one is gone
     * or rewritten), and both valid copies have a file */
    uint64_t end = hfs_now_ms() + 30000;
    for (;;) {
        int files = 0, bad_files = 0, valid_files = 0;
        for (int i = 0; i < C->ncs; i++) {
            int bad = 0, n = chunk_files_exact(i, ch.id, BAD_CHUNK, ch.length, &bad);
            files += n;
            bad_files += bad;
            const struct hfs_copy *cp = hfs_copy_on(&ch, h_cs_id(C, i));
            if (n && cp && cp->state == HFS_VALID) valid_files++;
        }
        if (!bad_files && valid_files == 2) {
            fprintf(stderr, "  chunk %d on disk: %d files, all byte-exact\n", BAD_CHUNK, files);
            break;
        }
        ck_assert_msg(hfs_now_ms() < end,
                      "chunk %d on disk after 30 s: %d files, %d damaged, %d of the 2 valid "
                      "copies found",
                      BAD_CHUNK, files, bad_files, valid_files);
        hfs_sleep_ms(500);
        fi = fileinfo(f);
        ch = fi->chunk[BAD_CHUNK];
    }

    /* health counted the repair */
    struct hfs_health *h = malloc(sizeof(*h));
    ck_assert_ptr_nonnull(h);
    end = hfs_now_ms() + 15000;
    for (;;) {
        ck_assert_msg(hfs_health(C, h, why, sizeof(why)) == 0, "%s", why);
        if (h->bad_repaired >= 1) break;
        ck_assert_msg(hfs_now_ms() < end, "cairn health: bad_repaired %llu after the repair",
                      (unsigned long long)h->bad_repaired);
        hfs_sleep_ms(300);
    }
    fprintf(stderr, "  health: bad_repaired %llu, repairs done %llu\n",
            (unsigned long long)h->bad_repaired, (unsigned long long)h->done);
    free(h);
    fresh_mount();
    verify_file(f, BAD_SEED, BAD_SIZE, "read after the repair");
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
    if (!C || h_mkdtemp("repl-heal", ROOT, sizeof(ROOT)) != 0) {
        perror("test_replication_heal: setup");
        return 1;
    }
    h_cluster_stop_on_signal(C);
    Suite *s = suite_create("replication_heal");
    struct {
        const char *name;
        const TTest *t;
    } tests[] = {{"lost", lost_server_rebuilt}, {"bad", bad_copy_repaired}};
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
