/* test_replication_balance.c - where copies go: balancing, draining, changing a folder's
 * copies, and zones.
 *
 * - balance_and_drain: a fourth, empty chunk server joins three that hold 128 MiB of 2-copy
 *   files (every server on its own small tmpfs, so usage differs): the used space of the
 *   fullest and the emptiest server comes within balance_pct; then `cairn cs drain` empties
 *   one server (0 chunks in health, no chunk file on its disk, no copy listed on it) while
 *   `cairn health --json`, polled every 200 ms, never shows an under-replicated or missing
 *   chunk (nor while balancing). The files stay byte-exact throughout; `cairn cs undrain`
 *   takes the server back.
 * - copies_recursive: `cairn copies -r 3 DIR` brings every chunk below DIR to 3 valid copies
 *   (four servers), `-r 1` back to exactly one copy each (the surplus copies removed, also on
 *   disk); a file created afterwards in DIR inherits 1.
 * - zones_spread: four servers in zones a, a, b, b and 2 copies: every chunk of several files
 *   has one valid copy in each zone, and still does after a server of zone b died and its
 *   chunks were rebuilt.
 *
 * Each test starts its own cluster (cairn-meta with chunk_size 4M, cs_timeout 2 s, 2 copies,
 * unlimited repair rate but 16 MiB/s for balance_and_drain; cairn-chunk servers on their own
 * tmpfs, heartbeat 200 ms; one mount) in a forked process; the runner keeps the cluster record
 * in shared memory and reaps whatever a failed test left (harness.h). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define BALANCE_PCT 10
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0 balance_pct=10"
/* moves at 16 MiB/s: the drain lasts a few seconds, long enough to watch it */
#define META_OPTS_SLOW "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=16 balance_pct=10"
#define CS_OPTS "heartbeat_ms=200"
#define MOUNT_OPTS "io_timeout=10"

static struct h_cluster *C; /* shared with the runner (h_cluster_shared) */
static char ROOT[256];      /* every test's cluster folder is made under here */

/* ---- helpers ------------------------------------------------------------------------------ */

static void start(const char *tag, const char *meta_opts, int ncs, const char *const *extra,
                  const char *tmpfs)
{
    int rc = h_cluster_start_opts(C, ROOT, tag, ncs, meta_opts, CS_OPTS, extra, tmpfs);
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

static struct hfs_health *health(void)
{
    static struct hfs_health *h;
    if (!h) h = malloc(sizeof(*h));
    ck_assert_ptr_nonnull(h);
    char why[2048];
    ck_assert_msg(hfs_health(C, h, why, sizeof(why)) == 0, "%s", why);
    return h;
}

static void wait_chunks(const char *const *paths, int n, unsigned goal, uint64_t avoid,
                        unsigned forbid, int timeout_s, const char *what)
{
    char why[4096];
    uint64_t t0 = hfs_now_ms();
    int rc = hfs_wait_chunks(C, paths, n, goal, avoid, forbid, timeout_s * 1000, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: not within %d s: %s", what, timeout_s, why);
    fprintf(stderr, "  %s: %.1f s\n", what, secs_since(t0));
}

static void write_file(const char *path, uint64_t seed, off_t size)
{
    int rc = hfs_write_pattern_file(path, seed, size, 1);
    ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
}

static void verify_file(const char *path, uint64_t seed, off_t size, const char *when)
{
    char why[1024];
    alarm(120); /* a hang ends the test */
    int rc = hfs_verify_pattern_file(path, seed, size, why, sizeof(why));
    alarm(0);
    ck_assert_msg(rc == 0, "%s: %s", when, why);
}

static void fresh_mount(void)
{
    ck_assert_int_eq(h_drop_caches(), 0);
    int rc = h_remount(C, 0);
    ck_assert_msg(rc == 0, "remount: %s", strerror(-rc));
}

static void cairn_ok(const char *fmt_args, const char *arg)
{
    char out[2000], args[1200];
    snprintf(args, sizeof(args), fmt_args, arg);
    int rc = h_cairn(C, out, sizeof(out), "%s --meta %s", args, C->meta_addr);
    ck_assert_msg(rc == 0, "cairn %s: exit %d: %s", args, rc, out);
}

/* "id addr zone state used% chunks" of every server, for messages. */
static void servers_str(const struct hfs_health *h, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < h->nservers && o < len; i++) {
        int k = h_cs_index(C, h->s[i].id);
        o += (size_t)snprintf(out + o, len - o, "%s[cs%d %s %.1f%% %llu chunks]", i ? " " : "", k,
                              h->s[i].state, hfs_used_pct(&h->s[i]),
                              (unsigned long long)h->s[i].chunks);
    }
}

/* ---- balance, then drain ------------------------------------------------------------------- */

#define BAL_FILES 2
#define BAL_SIZE (64 * MiB)

/* 1 when the used space (percent of capacity) of the fullest and the emptiest server differ by
 * at most BALANCE_PCT points (what the meta service's balancer aims for). */
static int balanced(const struct hfs_health *h, int nservers)
{
    if (h->nservers != nservers) return 0;
    double lo = 101, hi = -1;
    for (int i = 0; i < h->nservers; i++) {
        if (strcmp(h->s[i].state, "up") != 0) return 0;
        double u = hfs_used_pct(&h->s[i]);
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    return hi - lo <= BALANCE_PCT;
}

/* The health counts that must stay 0 while copies move. */
static void no_loss(const struct hfs_health *h, const char *phase)
{
    if (h->under == 0 && h->missing == 0) return;
    char s[1000];
    servers_str(h, s, sizeof(s));
    ck_abort_msg("%s: health shows %llu under-replicated and %llu missing chunks: %s", phase,
                 (unsigned long long)h->under, (unsigned long long)h->missing, s);
}

START_TEST(balance_and_drain)
{
    start("balance", META_OPTS_SLOW, 3, NULL, "256m");
    char f[BAL_FILES][400], s[1000];
    const char *paths[BAL_FILES];
    for (int i = 0; i < BAL_FILES; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/f%d", C->mnt[0], i);
        paths[i] = f[i];
        write_file(f[i], 0xba1 + (uint64_t)i, BAL_SIZE);
    }
    wait_chunks(paths, BAL_FILES, 2, 0, 0, 30, "2 valid copies after the writes");

    /* a fourth, empty server */
    ck_assert_int_eq(h_cs_set_opts(C, 3, CS_OPTS), 0);
    ck_assert_int_eq(h_cs_tmpfs(C, 3, "256m"), 0);
    ck_assert_int_eq(h_cs_start(C, 3), 0);
    ck_assert_int_eq(h_cs_wait_registered(C, 3, 0, 10000), 0);
    servers_str(health(), s, sizeof(s));
    fprintf(stderr, "balance_and_drain: server 3 joined: %s\n", s);

    uint64_t t0 = hfs_now_ms(), end = t0 + 90000;
    for (;;) {
        struct hfs_health *h = health();
        no_loss(h, "while balancing");
        if (balanced(h, 4)) break;
        if (hfs_now_ms() > end) {
            servers_str(h, s, sizeof(s));
            ck_abort_msg("not balanced within 90 s (balance_pct %d): %s", BALANCE_PCT, s);
        }
        hfs_sleep_ms(500);
    }
    servers_str(health(), s, sizeof(s));
    fprintf(stderr, "  balanced in %.1f s: %s\n", secs_since(t0), s);
    wait_chunks(paths, BAL_FILES, 2, 0, 0, 30, "2 valid copies after balancing");
    fresh_mount();
    for (int i = 0; i < BAL_FILES; i++)
        verify_file(f[i], 0xba1 + (uint64_t)i, BAL_SIZE, "read after balancing");

    /* drain server 0 */
    uint64_t id0 = h_cs_id(C, 0);
    char hex[24];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id0);
    cairn_ok("cs drain %s", hex);
    t0 = hfs_now_ms();
    end = t0 + 90000;
    int polls = 0;
    for (;;) {
        struct hfs_health *h = health();
        polls++;
        no_loss(h, "while draining");
        const struct hfs_server *d = hfs_server(h, id0);
        ck_assert_msg(d, "server 0 is not in cairn health any more");
        if (d->chunks == 0) break;
        if (hfs_now_ms() > end) {
            servers_str(h, s, sizeof(s));
            ck_abort_msg("drain of server 0 not done within 90 s: %s", s);
        }
        hfs_sleep_ms(200);
    }
    struct hfs_health *h = health();
    servers_str(h, s, sizeof(s));
    fprintf(stderr, "  drained in %.1f s (%d health polls, none under-replicated): %s\n",
            secs_since(t0), polls, s);
    ck_assert_msg(strcmp(hfs_server(h, id0)->state, "draining") == 0,
                  "the drained server is %s in cairn health, expected draining",
                  hfs_server(h, id0)->state);
    wait_chunks(paths, BAL_FILES, 2, id0, 1u << HFS_DRAINING, 30,
                "2 valid copies, none on the drained server");
    end = hfs_now_ms() + 30000;
    while (h_cs_chunk_files(C, 0) != 0) {
        ck_assert_msg(hfs_now_ms() < end, "the drained server still has %d chunk files on disk",
                      h_cs_chunk_files(C, 0));
        hfs_sleep_ms(300);
    }
    fresh_mount();
    for (int i = 0; i < BAL_FILES; i++)
        verify_file(f[i], 0xba1 + (uint64_t)i, BAL_SIZE, "read after draining");

    cairn_ok("cs undrain %s", hex);
    end = hfs_now_ms() + 10000;
    for (;;) {
        const struct hfs_server *d = hfs_server(health(), id0);
        ck_assert_ptr_nonnull(d);
        if (strcmp(d->state, "up") == 0) break;
        ck_assert_msg(hfs_now_ms() < end, "server 0 is %s 10 s after undrain", d->state);
        hfs_sleep_ms(200);
    }
    h_cluster_stop(C);
}
END_TEST

/* ---- cairn copies -r ----------------------------------------------------------------------- */

#define CP_FILES 5

START_TEST(copies_recursive)
{
    start("copies", META_OPTS, 4, NULL, "512m");
    char d[320], sub[400], f[CP_FILES][500];
    const char *paths[CP_FILES];
    const off_t sizes[CP_FILES] = {16 * MiB, 5 * MiB + 3, 9 * MiB, 0, 100};
    const char *names[CP_FILES] = {"a", "b", "sub/c", "empty", "sub/small"};
    snprintf(d, sizeof(d), "%s/d", C->mnt[0]);
    snprintf(sub, sizeof(sub), "%s/sub", d);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    for (int i = 0; i < CP_FILES; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/%s", d, names[i]);
        paths[i] = f[i];
        write_file(f[i], 0xc0 + (uint64_t)i, sizes[i]);
    }
    wait_chunks(paths, CP_FILES, 2, 0, 0, 30, "2 valid copies after the writes");

    cairn_ok("copies -r 3 '%s'", d);
    for (int i = 0; i < CP_FILES; i++)
        ck_assert_msg(fileinfo(f[i])->copies == 3, "%s: copies %u after copies -r 3", f[i],
                      fileinfo(f[i])->copies);
    wait_chunks(paths, CP_FILES, 3, 0, 1u << HFS_STALE | 1u << HFS_BAD, 60,
                "3 valid copies after copies -r 3");

    cairn_ok("copies -r 1 '%s'", d);
    for (int i = 0; i < CP_FILES; i++)
        ck_assert_msg(fileinfo(f[i])->copies == 1, "%s: copies %u after copies -r 1", f[i],
                      fileinfo(f[i])->copies);
    unsigned others = 1u << HFS_STALE | 1u << HFS_BAD | 1u << HFS_DOWN | 1u << HFS_PENDING |
                      1u << HFS_DRAINING | 1u << HFS_UNKNOWN;
    wait_chunks(paths, CP_FILES, 1, 0, others, 60, "exactly 1 copy after copies -r 1");

    /* the surplus copies are gone from the disks too */
    int nchunks = 0;
    for (int i = 0; i < CP_FILES; i++)
        nchunks += fileinfo(f[i])->n;
    uint64_t end = hfs_now_ms() + 30000;
    for (;;) {
        int files = 0;
        for (int i = 0; i < C->ncs; i++)
            files += h_cs_chunk_files(C, i);
        if (files == nchunks) break;
        ck_assert_msg(hfs_now_ms() < end, "%d chunk files on the servers' disks for %d chunks",
                      files, nchunks);
        hfs_sleep_ms(300);
    }

    /* the folders keep the setting for new files */
    char nf[500];
    snprintf(nf, sizeof(nf), "%s/new", sub);
    write_file(nf, 0xc9, 5 * MiB);
    ck_assert_msg(fileinfo(nf)->copies == 1, "a new file under the folder has copies %u",
                  fileinfo(nf)->copies);
    const char *np[] = {nf};
    wait_chunks(np, 1, 1, 0, others, 30, "a new file in the folder has 1 copy");

    fresh_mount();
    for (int i = 0; i < CP_FILES; i++)
        verify_file(f[i], 0xc0 + (uint64_t)i, sizes[i], "read after copies -r 3 and -r 1");
    verify_file(nf, 0xc9, 5 * MiB, "read of the new file");
    h_cluster_stop(C);
}
END_TEST

/* ---- zones --------------------------------------------------------------------------------- */

#define Z_FILES 5

static const char *zone_of_index(int i)
{
    return i < 2 ? "a" : "b";
}

/* 1 when every chunk of the files has 2 valid copies, one in zone a and one in zone b (zones
 * from the servers' options; the CLI's zone names must agree), none on server avoid. */
static int zones_ok(const char *const *paths, int n, uint64_t avoid, char *why, size_t wlen)
{
    for (int p = 0; p < n; p++) {
        struct hfs_fileinfo *fi = fileinfo(paths[p]);
        for (int c = 0; c < fi->n; c++) {
            const struct hfs_chunk *ch = &fi->chunk[c];
            int in_a = 0, in_b = 0;
            for (int k = 0; k < ch->ncopies; k++) {
                const struct hfs_copy *cp = &ch->copy[k];
                int i = h_cs_index(C, cp->server);
                ck_assert_msg(i >= 0, "unknown server %016llx", (unsigned long long)cp->server);
                ck_assert_msg(!cp->zone[0] || strcmp(cp->zone, zone_of_index(i)) == 0,
                              "cairn fileinfo puts server %d in zone '%s', it runs in zone %s", i,
                              cp->zone, zone_of_index(i));
                if (cp->state != HFS_VALID || cp->server == avoid) continue;
                in_a += i < 2;
                in_b += i >= 2;
            }
            if (ch->nvalid != 2 || in_a != 1 || in_b != 1) {
                char list[4000];
                hfs_fileinfo_str(fi, list, sizeof(list));
                snprintf(why, wlen,
                         "%s chunk %d: %d valid copies, %d in zone a, %d in zone b "
                         "(servers 0,1: a; 2,3: b): %s",
                         paths[p], c, ch->nvalid, in_a, in_b, list);
                return 0;
            }
        }
    }
    return 1;
}

static void wait_zones(const char *const *paths, int n, uint64_t avoid, int timeout_s,
                       const char *what)
{
    char why[5000] = "";
    uint64_t t0 = hfs_now_ms(), end = t0 + (uint64_t)timeout_s * 1000;
    while (!zones_ok(paths, n, avoid, why, sizeof(why))) {
        ck_assert_msg(hfs_now_ms() < end, "%s: not within %d s: %s", what, timeout_s, why);
        hfs_sleep_ms(500);
    }
    fprintf(stderr, "  %s: %.1f s\n", what, secs_since(t0));
}

START_TEST(zones_spread)
{
    const char *extra[] = {"zone=a", "zone=a", "zone=b", "zone=b"};
    start("zones", META_OPTS, 4, extra, "512m");
    char f[Z_FILES][400];
    const char *paths[Z_FILES];
    const off_t sizes[Z_FILES] = {1 * MiB, 4 * MiB, 9 * MiB + 7, 12 * MiB, 20 * MiB};
    for (int i = 0; i < Z_FILES; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/z%d", C->mnt[0], i);
        paths[i] = f[i];
        write_file(f[i], 0x20e + (uint64_t)i, sizes[i]);
    }
    fprintf(stderr, "zones_spread:\n");
    wait_zones(paths, Z_FILES, 0, 30, "one copy in each zone");

    /* a server of zone b dies: the rebuilt copies still keep one copy per zone */
    uint64_t dead = h_cs_id(C, 3);
    ck_assert_int_eq(h_cs_kill(C, 3, SIGKILL), 0);
    wait_zones(paths, Z_FILES, dead, 60, "one copy in each zone after server 3 (zone b) died");
    fresh_mount();
    for (int i = 0; i < Z_FILES; i++)
        verify_file(f[i], 0x20e + (uint64_t)i, sizes[i], "read after the rebuild");
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
    if (!C || h_mkdtemp("repl-balance", ROOT, sizeof(ROOT)) != 0) {
        perror("test_replication_balance: setup");
        return 1;
    }
    h_cluster_stop_on_signal(C);
    Suite *s = suite_create("replication_balance");
    struct {
        const char *name;
        const TTest *t;
    } tests[] = {
        {"balance", balance_and_drain}, {"copies", copies_recursive}, {"zones", zones_spread}};
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
