/* test_mount_raft_du.c - the directory totals on a Raft group of three meta replicas: `cairn du`
 * of a tree on a mount equals `du -sb` (and find's counts) before the leader is killed, and
 * after a follower took over and more changes (renames across folders, truncates, unlinks)
 * went through it; then every replica's store, totals included, is the same. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness_fs.h"
#include "harness_raft.h"

#define META_OPTS "election_timeout_ms=1000 heartbeat_ms=100 cs_timeout=3"

static char T[400];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2000], out[1000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = h_run(120, out, sizeof(out), "cd '%s' && %s", T, cmd);
    ck_assert_msg(rc == 0, "exit %d from: %s\n%s", rc, cmd, out);
}

/* cairn du -b of T (the leader found from the mount's address list) equals du -sb and find. */
static void check_tree(struct hraft_group *g, const char *step)
{
    char want[200], got[1000];
    int rc = h_run(120, want, sizeof(want),
                   "sync; cd '%s' && echo $(du -sb . | cut -f1) "
                   "$(find . -mindepth 1 ! -type d -printf '%%i\\n' | sort -u | wc -l) "
                   "$(find . -mindepth 1 -type d | wc -l)",
                   T);
    ck_assert_msg(rc == 0, "%s: du/find: %s", step, want);
    rc = h_cairn_py(&g->c, "p = d['paths'][0]\nprint(p['bytes'], p['files'], p['dirs'])", got,
                    sizeof(got), "du --json '%s'", T);
    ck_assert_msg(rc == 0, "%s: cairn du: %s", step, got);
    ck_assert_msg(strcmp(want, got) == 0, "%s: cairn du says '%s', du -sb/find '%s'", step, got,
                  want);
}

START_TEST(du_after_failover)
{
    struct hraft_group *g = hraft_g;
    char why[4096], st[1500];
    int rc = hraft_init(g, hraft_root, "du", 3, META_OPTS, 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    ck_assert_int_eq(hraft_start_all(g), 0);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_msg(lead >= 0, "no leader within 15 s (logs in %s)", g->c.dir);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(h_cs_start(&g->c, k), 0);
        rc = hraft_cs_wait_registered(g, k, 0, 15000);
        ck_assert_msg(rc == 0, "chunk server %d did not register (logs in %s)", k, g->c.dir);
    }
    rc = h_mount(&g->c);
    ck_assert_msg(rc == 0, "mount: %s (logs in %s)", strerror(-rc), g->c.dir);
    snprintf(T, sizeof(T), "%s/t", g->c.mnt[0]);
    HFS_OK(mkdir(T, 0755));

    sh("mkdir -p a/b c && head -c 123457 /dev/urandom > a/f && head -c 9 /dev/urandom > a/b/g && "
       "truncate -s 5M c/sparse && ln a/f a/f.link && ln -s f a/s");
    check_tree(g, "before the failover");

    ck_assert_int_eq(hraft_kill(g, lead, SIGKILL), 0);
    int killed = lead;
    lead = hraft_wait_leader(g, 1u << killed, 15000);
    hraft_status_str(g, st, sizeof(st));
    ck_assert_msg(lead >= 0, "no new leader: %s", st);
    sh("mv a/b c/b && truncate -s 77 c/sparse && rm a/f && head -c 4000 /dev/urandom > c/b/new");
    check_tree(g, "after the failover");

    ck_assert_int_eq(hraft_start(g, killed), 0);
    rc = hraft_wait_quiet(g, lead, 0, 30000, why, sizeof(why));
    ck_assert_msg(rc == 0, "replicas did not catch up: %s", why);
    check_tree(g, "with the old leader back");
    /* the listings above move folders' access times a second later (records of their own):
     * unmount, which sends the last of them, before the replicas are compared */
    ck_assert_int_eq(h_umount(&g->c, 0), 0);
    rc = hraft_wait_quiet(g, lead, 0, 30000, why, sizeof(why));
    ck_assert_msg(rc == 0, "replicas did not catch up after the unmount: %s", why);
    rc = hraft_stop_and_compare(g, lead, 7u, why, sizeof(why));
    ck_assert_msg(rc == 0, "stores differ: %s", why);
    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"du_after_failover", du_after_failover},
    };
    return hraft_main("rdu", "mount_raft_du", tests, sizeof(tests) / sizeof(tests[0]), 180, NULL);
}
