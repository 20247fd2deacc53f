/* test_replication_heal.c - lost and damaged copies are rebuilt, and reads never see them:
 *
 * - lost_server_rebuilt: 128 MiB written and fsynced with 2 copies, the server holding chunk
 *   0 killed with SIGKILL; through an empty page cache and a fresh mount the file reads
 *   byte-exact at once, and within a deadline every chunk has 2 valid copies again, none on
 *   the dead server.
 * - lost_data_folder_rebuilt: 64 MiB written and fsynced with 2 copies, then the data folder
 *   of the server holding chunk 0 vanishes (its tmpfs detached, the mount point removed) while
 *   the server keeps running: the server registers again, the file reads byte-exact through a
 *   fresh mount, within a deadline every chunk has 2 valid copies and none is listed on that
 *   server, and `cairn health --json` lists it up with 0 chunks.
 * - bad_copy_repaired: one byte of one copy flipped on disk: reads through fresh mounts stay
 *   byte-exact (they may hit the bad copy; the chunk servers also scrub every 20 s), the bad
 *   copy is replaced (2 valid copies, no bad one, every chunk file of that chunk on disk
 *   byte-exact) and `cairn health` counts it in bad_repaired.
 *
 * Each test starts its own cluster (cairn-meta with chunk_size 4M, cs_timeout 2 s, 2 copies,
 * unlimited repair rate; three cairn-chunk servers on their own tmpfs, heartbeat 200 ms; one
 * mount) in a forked process; the runner keeps the cluster record in shared memory and reaps
 * whatever a failed test left (harness_repl.h). */
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
#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define CHUNK (4 * MiB)
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0"
#define CS_OPTS "heartbeat_ms=200"
#define HEAL_DEADLINE_S 90

/* ---- a server is lost ---------------------------------------------------------------------- */

#define LOST_SIZE (128 * MiB)
#define LOST_SEED 0x1057ull

START_TEST(lost_server_rebuilt)
{
    hr_start("lost", 3, META_OPTS, CS_OPTS, NULL, "1g");
    char f[400];
    snprintf(f, sizeof(f), "%s/f", hr_c->mnt[0]);
    uint64_t t0 = hfs_now_ms();
    int rc = hfs_write_pattern_file(f, LOST_SEED, LOST_SIZE, 1);
    ck_assert_msg(rc == 0, "write and fsync 128 MiB: %s", strerror(-rc));
    fprintf(stderr, "lost_server_rebuilt: 128 MiB written in %.1f s\n", hr_secs_since(t0));
    hr_wait_file(f, 2, 0, 0, 30, "2 valid copies after the write");

    struct hfs_fileinfo *fi = hr_fileinfo(f);
    int victim = hr_index_of(fi->chunk[0].copy[0].server);
    uint64_t victim_id = h_cs_id(hr_c, victim);
    ck_assert_int_eq(h_cs_kill(hr_c, victim, SIGKILL), 0);
    fprintf(stderr, "  killed chunk server %d (%016llx), which held chunk 0\n", victim,
            (unsigned long long)victim_id);

    /* at once: the meta service may still list the dead server; reads go elsewhere */
    hr_fresh_mount();
    t0 = hfs_now_ms();
    hr_verify_file(f, LOST_SEED, LOST_SIZE, "read right after the kill");
    fprintf(stderr, "  read back byte-exact in %.1f s\n", hr_secs_since(t0));

    hr_wait_file(f, 2, victim_id, 0, HEAL_DEADLINE_S,
                 "every chunk at 2 valid copies, none on the dead server");
    hr_fresh_mount();
    hr_verify_file(f, LOST_SEED, LOST_SIZE, "read after healing");
    h_cluster_stop(hr_c);
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
    if (h_chunk_file(hr_c, i, id, path, sizeof(path), &ver) != 0) return 0;
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
    hr_start("bad", 3, META_OPTS, CS_OPTS " scrub_rate=200 scrub_interval=20", NULL, "512m");
    char f[400];
    snprintf(f, sizeof(f), "%s/f", hr_c->mnt[0]);
    ck_assert_int_eq(hfs_write_pattern_file(f, BAD_SEED, BAD_SIZE, 1), 0);
    hr_wait_file(f, 2, 0, 0, 30, "2 valid copies after the write");

    struct hfs_fileinfo *fi = hr_fileinfo(f);
    ck_assert_int_gt(fi->n, BAD_CHUNK);
    struct hfs_chunk ch = fi->chunk[BAD_CHUNK];
    int victim = hr_index_of(ch.copy[0].server);
    char path[600];
    uint32_t ver = 0;
    int rc = h_chunk_file(hr_c, victim, ch.id, path, sizeof(path), &ver);
    ck_assert_msg(rc == 0, "chunk %016llx is not on server %d's disk", (unsigned long long)ch.id,
                  victim);
    ck_assert_int_eq(h_chunk_flip_byte(path, BAD_OFF), 0);
    fprintf(stderr, "bad_copy_repaired: flipped byte %d of %s (server %d)\n", BAD_OFF, path,
            victim);

    /* reads are right whichever copy they use, through fresh clients and page caches */
    for (int round = 0; round < 3; round++) {
        hr_fresh_mount();
        hr_verify_file(f, BAD_SEED, BAD_SIZE, "read with one copy damaged");
    }

    /* the damaged copy is replaced: 2 valid copies of every chunk, none bad */
    hr_wait_file(f, 2, 0, 1u << HFS_BAD, 60, "the bad copy replaced");
    char out[200] = "";
    int scrubbed =
        h_run(5, out, sizeof(out), "grep -q 'scrub.*bad checksum' '%s'/cs*.log", hr_c->dir);
    fprintf(stderr, "  (found by %s)\n", scrubbed == 0 ? "the scrubber" : "a read");
    fi = hr_fileinfo(f);
    ch = fi->chunk[BAD_CHUNK];

    /* every file of that chunk on every server holds the right bytes (the damaged one is gone
     * or rewritten), and both valid copies have a file */
    uint64_t end = hfs_now_ms() + 30000;
    for (;;) {
        int files = 0, bad_files = 0, valid_files = 0;
        for (int i = 0; i < hr_c->ncs; i++) {
            int bad = 0, n = chunk_files_exact(i, ch.id, BAD_CHUNK, ch.length, &bad);
            files += n;
            bad_files += bad;
            const struct hfs_copy *cp = hfs_copy_on(&ch, h_cs_id(hr_c, i));
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
        fi = hr_fileinfo(f);
        ch = fi->chunk[BAD_CHUNK];
    }

    /* health counted the repair */
    struct hfs_health *h;
    end = hfs_now_ms() + 15000;
    for (;;) {
        h = hr_health();
        if (h->bad_repaired >= 1) break;
        ck_assert_msg(hfs_now_ms() < end, "cairn health: bad_repaired %llu after the repair",
                      (unsigned long long)h->bad_repaired);
        hfs_sleep_ms(300);
    }
    fprintf(stderr, "  health: bad_repaired %llu, repairs done %llu\n",
            (unsigned long long)h->bad_repaired, (unsigned long long)h->done);
    hr_fresh_mount();
    hr_verify_file(f, BAD_SEED, BAD_SIZE, "read after the repair");
    h_cluster_stop(hr_c);
}
END_TEST

/* ---- a data folder is lost ----------------------------------------------------------------- */

#define GONE_SIZE (64 * MiB)
#define GONE_SEED 0x90e5ull

START_TEST(lost_data_folder_rebuilt)
{
    hr_start("gone", 3, META_OPTS, CS_OPTS, NULL, "512m");
    char f[400], s[1000];
    snprintf(f, sizeof(f), "%s/f", hr_c->mnt[0]);
    hr_write_file(f, GONE_SEED, GONE_SIZE);
    hr_wait_file(f, 2, 0, 0, 30, "2 valid copies after the write");

    struct hfs_fileinfo *fi = hr_fileinfo(f);
    int victim = hr_index_of(fi->chunk[0].copy[0].server);
    uint64_t victim_id = h_cs_id(hr_c, victim);
    pid_t pid = hr_c->cs_pid[victim];
    int held = h_cs_chunk_files(hr_c, victim), before = h_cs_registrations(hr_c, victim);
    int rc = h_cs_lose_data(hr_c, victim);
    ck_assert_msg(rc == 0, "make server %d's data folder vanish: %s", victim, strerror(-rc));
    fprintf(stderr,
            "lost_data_folder_rebuilt: the data folder of chunk server %d (%016llx, %d chunk "
            "files) vanished\n",
            victim, (unsigned long long)victim_id, held);

    /* the server notices at its next heartbeat and registers again, still running */
    uint64_t t0 = hfs_now_ms();
    rc = h_cs_wait_registered(hr_c, victim, before, 10000);
    ck_assert_msg(rc == 0, "server %d did not register again within 10 s of losing its folder",
                  victim);
    fprintf(stderr, "  registered again after %.1f s\n", hr_secs_since(t0));
    ck_assert_msg(h_alive(pid), "server %d exited when its data folder vanished", victim);

    hr_fresh_mount();
    hr_verify_file(f, GONE_SEED, GONE_SIZE, "read after the data folder vanished");

    hr_wait_file(f, 2, victim_id, 0, HEAL_DEADLINE_S,
                 "every chunk at 2 valid copies, none on the server that lost its folder");
    /* the meta service forgot every copy there, not only the valid ones */
    uint64_t end = hfs_now_ms() + 15000;
    for (;;) {
        fi = hr_fileinfo(f);
        int listed = -1;
        for (int c = 0; c < fi->n && listed < 0; c++)
            if (hfs_copy_on(&fi->chunk[c], victim_id)) listed = c;
        if (listed < 0) break;
        char list[4000];
        hfs_fileinfo_str(fi, list, sizeof(list));
        ck_assert_msg(hfs_now_ms() < end,
                      "chunk %d still lists a copy on server %016llx, whose folder is gone: %s",
                      listed, (unsigned long long)victim_id, list);
        hfs_sleep_ms(300);
    }

    /* health: the server is up and holds nothing */
    end = hfs_now_ms() + 15000;
    for (;;) {
        struct hfs_health *h = hr_health();
        const struct hfs_server *v = hfs_server(h, victim_id);
        ck_assert_msg(v, "server %016llx is not in cairn health", (unsigned long long)victim_id);
        if (strcmp(v->state, "up") == 0 && v->chunks == 0) break;
        hr_servers_str(h, s, sizeof(s));
        ck_assert_msg(hfs_now_ms() < end,
                      "cairn health lists server %d as %s with %llu chunks, expected up with 0: %s",
                      victim, v->state, (unsigned long long)v->chunks, s);
        hfs_sleep_ms(300);
    }
    hr_servers_str(hr_health(), s, sizeof(s));
    fprintf(stderr, "  health: %s\n", s);
    ck_assert_msg(h_alive(pid), "server %d exited after it lost its data folder", victim);

    hr_fresh_mount();
    hr_verify_file(f, GONE_SEED, GONE_SIZE, "read after healing");
    h_cluster_stop(hr_c);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    const struct h_test tests[] = {{"lost", lost_server_rebuilt},
                                   {"gone", lost_data_folder_rebuilt},
                                   {"bad", bad_copy_repaired}};
    return hr_main("repl-heal", "replication_heal", tests, sizeof(tests) / sizeof(tests[0]), 240);
}
