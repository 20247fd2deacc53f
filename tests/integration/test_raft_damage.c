/* test_raft_damage.c - a meta replica whose Raft log or store is damaged refuses to start,
 * says what is wrong and how to rebuild it, and the others carry on:
 *
 * - damaged_replicas_refuse_to_start: three replicas, 60 numbered mkdirs. A follower is
 *   stopped and one byte in the middle of a closed segment of its Raft log is flipped; started
 *   again, it exits with a message naming the damaged log and the way back (cairn meta
 *   remove, wipe, join, cairn meta add), while the two others go on serving mkdirs. It is then
 *   rebuilt that way: removed, and a fresh replica added, which catches up. Then another
 *   follower's LMDB store gets its first pages overwritten: it refuses to start too ("the
 *   store looks damaged"), and the group still serves. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_raft.h"

static struct hraft_client cl;

static void mkdirs(const char *prefix, int n)
{
    for (int k = 0; k < n; k++) {
        char name[48];
        snprintf(name, sizeof(name), "%s%03d", prefix, k);
        int rc = hraft_client_mkdir(&cl, CAIRN_ROOT_INO, name, NULL, 15000);
        ck_assert_msg(rc == 0, "mkdir %s: %s", name, strerror(-rc));
    }
}

/* Flip one byte in the middle of the largest closed segment of replica i's Raft log. */
static void flip_segment_byte(struct hraft_group *g, int i)
{
    char dir[400], best[700] = "";
    snprintf(dir, sizeof(dir), "%s/raft", g->r[i].dir);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    off_t best_size = 0;
    while ((e = readdir(d))) {
        unsigned long long a, b;
        if (strlen(e->d_name) != 33 || sscanf(e->d_name, "%llu-%llu", &a, &b) != 2) continue;
        char p[700];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        int fd = open(p, O_RDONLY);
        off_t sz = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
        if (fd >= 0) close(fd);
        if (sz > best_size) {
            best_size = sz;
            snprintf(best, sizeof(best), "%s", p);
        }
    }
    closedir(d);
    ck_assert_msg(best_size > 64, "no closed segment with entries in %s", dir);
    int fd = open(best, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char c;
    off_t at = best_size / 2;
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x5a;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
    fprintf(stderr, "  flipped a byte at %lld of %s\n", (long long)at, best);
}

/* Overwrite the first pages of replica i's LMDB data file (its meta pages). */
static void smash_store(struct hraft_group *g, int i)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/data.mdb", g->r[i].dir);
    int fd = open(p, O_RDWR);
    ck_assert_msg(fd >= 0, "%s: %s", p, strerror(errno));
    char junk[8192];
    memset(junk, 0xa5, sizeof(junk));
    ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    close(fd);
}

/* Start replica i, expecting it to refuse: it must be gone within 10 s and its log must hold
 * every needle. */
static void expect_refusal(struct hraft_group *g, int i, const char *const *needles, int n)
{
    int rc = hraft_start(g, i);
    for (int t = 0; t < 100 && hraft_running(g, i); t++)
        hraft_sleep_ms(100);
    ck_assert_msg(!hraft_running(g, i), "replica %d started on a damaged folder (start: %d)", i + 1,
                  rc);
    for (int k = 0; k < n; k++)
        ck_assert_msg(hraft_log_count(g, i, needles[k]) > 0, "replica %d's log (%s) lacks '%s'",
                      i + 1, g->r[i].log, needles[k]);
}

START_TEST(damaged_replicas_refuse_to_start)
{
    struct hraft_group *g = hraft_g;
    char why[4096], out[4096];
    int rc = hraft_init(g, hraft_root, "dmg", 3, NULL, 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    ck_assert_int_eq(hraft_start_all(g), 0);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(lead, 0);
    ck_assert_int_eq(hraft_client_open(&cl, g, 10000), 0);
    mkdirs("a", 60);
    ck_assert_int_eq(hraft_wait_quiet(g, lead, 0, 20000, why, sizeof(why)), 0);

    /* a flipped byte in a follower's Raft log */
    int f = (lead + 1) % 3;
    ck_assert_int_eq(hraft_kill(g, f, SIGTERM), 0);
    flip_segment_byte(g, f);
    const char *log_needles[] = {"the Raft log is damaged", "cairn meta remove", "join="};
    expect_refusal(g, f, log_needles, 3);
    mkdirs("b", 20); /* the two others carry on */

    /* rebuilt the way the message says: removed, a fresh replica added */
    rc = hraft_remove(g, f, out, sizeof(out));
    ck_assert_msg(rc == 0, "cairn meta remove: %s", out);
    rc = hraft_add(g, out, sizeof(out));
    ck_assert_msg(rc >= 0, "cairn meta add: %s", out);
    lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(lead, 0);
    ck_assert_int_eq(hraft_wait_quiet(g, lead, 1u << f, 30000, why, sizeof(why)), 0);

    /* a follower whose LMDB store is smashed */
    int s = -1;
    for (int i = 0; i < g->n && s < 0; i++)
        if (i != lead && i != f && hraft_running(g, i)) s = i;
    ck_assert_int_ge(s, 0);
    ck_assert_int_eq(hraft_kill(g, s, SIGTERM), 0);
    smash_store(g, s);
    const char *store_needles[] = {"store looks damaged", "cairn meta add"};
    expect_refusal(g, s, store_needles, 2);
    mkdirs("c", 20); /* leader + the added replica are a majority of {1,2,3,4} - {f} */
    hraft_client_close(&cl);
    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"damaged_replicas_refuse_to_start", damaged_replicas_refuse_to_start},
    };
    return hraft_main("rdmg", "raft_damage", tests, sizeof(tests) / sizeof(tests[0]), 120, NULL);
}
