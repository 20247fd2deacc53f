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
 * in shared memory and reaps whatever a failed test left (harness_repl.h). */
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
#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define BALANCE_PCT 10
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0 balance_pct=10"
/* moves at 16 MiB/s: the drain lasts a few seconds, long enough to watch it */
#define META_OPTS_SLOW "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=16 balance_pct=10"
#define CS_OPTS "heartbeat_ms=200"

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
    hr_servers_str(h, s, sizeof(s));
    ck_abort_msg("%s: health shows %llu under-replicated and %llu missing chunks: %s", phase,
                 (unsigned long long)h->under, (unsigned long long)h->missing, s);
}

START_TEST(balance_and_drain)
{
    hr_start("balance", 3, META_OPTS_SLOW, CS_OPTS, NULL, "256m");
    char f[BAL_FILES][400], s[1000];
    const char *paths[BAL_FILES];
    for (int i = 0; i < BAL_FILES; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/f%d", hr_c->mnt[0], i);
        paths[i] = f[i];
        hr_write_file(f[i], 0xba1 + (uint64_t)i, BAL_SIZE);
    }
    hr_wait_chunks(paths, BAL_FILES, 2, 0, 0, 30, "2 valid copies after the writes");

    /* a fourth, empty server */
    ck_assert_int_eq(h_cs_set_opts(hr_c, 3, CS_OPTS), 0);
    ck_assert_int_eq(h_cs_tmpfs(hr_c, 3, "256m"), 0);
    ck_assert_int_eq(h_cs_start(hr_c, 3), 0);
    ck_assert_int_eq(h_cs_wait_registered(hr_c, 3, 0, 10000), 0);
    hr_servers_str(hr_health(), s, sizeof(s));
    fprintf(stderr, "balance_and_drain: server 3 joined: %s\n", s);

    uint64_t t0 = hfs_now_ms(), end = t0 + 90000;
    for (;;) {
        struct hfs_health *h = hr_health();
        no_loss(h, "while balancing");
        if (balanced(h, 4)) break;
        if (hfs_now_ms() > end) {
            hr_servers_str(h, s, sizeof(s));
            ck_abort_msg("not balanced within 90 s (balance_pct %d): %s", BALANCE_PCT, s);
        }
        hfs_sleep_ms(500);
    }
    hr_servers_str(hr_health(), s, sizeof(s));
    fprintf(stderr, "  balanced in %.1f s: %s\n", hr_secs_since(t0), s);
    hr_wait_chunks(paths, BAL_FILES, 2, 0, 0, 30, "2 valid copies after balancing");
    hr_fresh_mount();
    for (int i = 0; i < BAL_FILES; i++)
        hr_verify_file(f[i], 0xba1 + (uint64_t)i, BAL_SIZE, "read after balancing");

    /* drain server 0 */
    uint64_t id0 = h_cs_id(hr_c, 0);
    char hex[24];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id0);
    hr_cairn_ok("cs drain %s", hex);
    t0 = hfs_now_ms();
    end = t0 + 90000;
    int polls = 0;
    for (;;) {
        struct hfs_health *h = hr_health();
        polls++;
        no_loss(h, "while draining");
        const struct hfs_server *d = hfs_server(h, id0);
        ck_assert_msg(d, "server 0 is not in cairn health any more");
        if (d->chunks == 0) break;
        if (hfs_now_ms() > end) {
            hr_servers_str(h, s, sizeof(s));
            ck_abort_msg("drain of server 0 not done within 90 s: %s", s);
        }
        hfs_sleep_ms(200);
    }
    struct hfs_health *h = hr_health();
    hr_servers_str(h, s, sizeof(s));
    fprintf(stderr, "  drained in %.1f s (%d health polls, none under-replicated): %s\n",
            hr_secs_since(t0), polls, s);
    ck_assert_msg(strcmp(hfs_server(h, id0)->state, "draining") == 0,
                  "the drained server is %s in cairn health, expected draining",
                  hfs_server(h, id0)->state);
    hr_wait_chunks(paths, BAL_FILES, 2, id0, 1u << HFS_DRAINING, 30,
                   "2 valid copies, none on the drained server");
    end = hfs_now_ms() + 30000;
    while (h_cs_chunk_files(hr_c, 0) != 0) {
        ck_assert_msg(hfs_now_ms() < end, "the drained server still has %d chunk files on disk",
                      h_cs_chunk_files(hr_c, 0));
        hfs_sleep_ms(300);
    }
    hr_fresh_mount();
    for (int i = 0; i < BAL_FILES; i++)
        hr_verify_file(f[i], 0xba1 + (uint64_t)i, BAL_SIZE, "read after draining");

    hr_cairn_ok("cs undrain %s", hex);
    end = hfs_now_ms() + 10000;
    for (;;) {
        const struct hfs_server *d = hfs_server(hr_health(), id0);
        ck_assert_ptr_nonnull(d);
        if (strcmp(d->state, "up") == 0) break;
        ck_assert_msg(hfs_now_ms() < end, "server 0 is %s 10 s after undrain", d->state);
        hfs_sleep_ms(200);
    }
    h_cluster_stop(hr_c);
}
END_TEST

/* ---- cairn copies -r ----------------------------------------------------------------------- */

#define CP_FILES 5

START_TEST(copies_recursive)
{
    hr_start("copies", 4, META_OPTS, CS_OPTS, NULL, "512m");
    char d[320], sub[400], f[CP_FILES][500];
    const char *paths[CP_FILES];
    const off_t sizes[CP_FILES] = {16 * MiB, 5 * MiB + 3, 9 * MiB, 0, 100};
    const char *names[CP_FILES] = {"a", "b", "sub/c", "empty", "sub/small"};
    snprintf(d, sizeof(d), "%s/d", hr_c->mnt[0]);
    snprintf(sub, sizeof(sub), "%s/sub", d);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    for (int i = 0; i < CP_FILES; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/%s", d, names[i]);
        paths[i] = f[i];
        hr_write_file(f[i], 0xc0 + (uint64_t)i, sizes[i]);
    }
    hr_wait_chunks(paths, CP_FILES, 2, 0, 0, 30, "2 valid copies after the writes");

    hr_cairn_ok("copies -r 3 '%s'", d);
    for (int i = 0; i < CP_FILES; i++)
        ck_assert_msg(hr_fileinfo(f[i])->copies == 3, "%s: copies %u after copies -r 3", f[i],
                      hr_fileinfo(f[i])->copies);
    hr_wait_chunks(paths, CP_FILES, 3, 0, 1u << HFS_STALE | 1u << HFS_BAD, 60,
                   "3 valid copies after copies -r 3");

    hr_cairn_ok("copies -r 1 '%s'", d);
    for (int i = 0; i < CP_FILES; i++)
        ck_assert_msg(hr_fileinfo(f[i])->copies == 1, "%s: copies %u after copies -r 1", f[i],
                      hr_fileinfo(f[i])->copies);
    unsigned others = 1u << HFS_STALE | 1u << HFS_BAD | 1u << HFS_DOWN | 1u << HFS_PENDING |
                      1u << HFS_DRAINING | 1u << HFS_UNKNOWN;
    hr_wait_chunks(paths, CP_FILES, 1, 0, others, 60, "exactly 1 copy after copies -r 1");

    /* the surplus copies are gone from the disks too */
    int nchunks = 0;
    for (int i = 0; i < CP_FILES; i++)
        nchunks += hr_fileinfo(f[i])->n;
    uint64_t end = hfs_now_ms() + 30000;
    for (;;) {
        int files = 0;
        for (int i = 0; i < hr_c->ncs; i++)
            files += h_cs_chunk_files(hr_c, i);
        if (files == nchunks) break;
        ck_assert_msg(hfs_now_ms() < end, "%d chunk files on the servers' disks for %d chunks",
                      files, nchunks);
        hfs_sleep_ms(300);
    }

    /* the folders keep the setting for new files */
    char nf[500];
    snprintf(nf, sizeof(nf), "%s/new", sub);
    hr_write_file(nf, 0xc9, 5 * MiB);
    ck_assert_msg(hr_fileinfo(nf)->copies == 1, "a new file under the folder has copies %u",
                  hr_fileinfo(nf)->copies);
    const char *np[] = {nf};
    hr_wait_chunks(np, 1, 1, 0, others, 30, "a new file in the folder has 1 copy");

    hr_fresh_mount();
    for (int i = 0; i < CP_FILES; i++)
        hr_verify_file(f[i], 0xc0 + (uint64_t)i, sizes[i], "read after copies -r 3 and -r 1");
    hr_verify_file(nf, 0xc9, 5 * MiB, "read of the new file");
    h_cluster_stop(hr_c);
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
        struct hfs_fileinfo *fi = hr_fileinfo(paths[p]);
        for (int c = 0; c < fi->n; c++) {
            const struct hfs_chunk *ch = &fi->chunk[c];
            int in_a = 0, in_b = 0;
            for (int k = 0; k < ch->ncopies; k++) {
                const struct hfs_copy *cp = &ch->copy[k];
                int i = h_cs_index(hr_c, cp->server);
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
    fprintf(stderr, "  %s: %.1f s\n", what, hr_secs_since(t0));
}

START_TEST(zones_spread)
{
    const char *extra[] = {"zone=a", "zone=a", "zone=b", "zone=b"};
    hr_start("zones", 4, META_OPTS, CS_OPTS, extra, "512m");
    char f[Z_FILES][400];
    const char *paths[Z_FILES];
    const off_t sizes[Z_FILES] = {1 * MiB, 4 * MiB, 9 * MiB + 7, 12 * MiB, 20 * MiB};
    for (int i = 0; i < Z_FILES; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/z%d", hr_c->mnt[0], i);
        paths[i] = f[i];
        hr_write_file(f[i], 0x20e + (uint64_t)i, sizes[i]);
    }
    fprintf(stderr, "zones_spread:\n");
    wait_zones(paths, Z_FILES, 0, 30, "one copy in each zone");

    /* a server of zone b dies: the rebuilt copies still keep one copy per zone */
    uint64_t dead = h_cs_id(hr_c, 3);
    ck_assert_int_eq(h_cs_kill(hr_c, 3, SIGKILL), 0);
    wait_zones(paths, Z_FILES, dead, 60, "one copy in each zone after server 3 (zone b) died");
    hr_fresh_mount();
    for (int i = 0; i < Z_FILES; i++)
        hr_verify_file(f[i], 0x20e + (uint64_t)i, sizes[i], "read after the rebuild");
    h_cluster_stop(hr_c);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    const struct h_test tests[] = {
        {"balance", balance_and_drain}, {"copies", copies_recursive}, {"zones", zones_spread}};
    return hr_main("repl-balance", "replication_balance", tests, sizeof(tests) / sizeof(tests[0]),
                   240);
}
