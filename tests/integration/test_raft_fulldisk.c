/* test_raft_fulldisk.c - the meta leader's disk fills up under load:
 *
 * - leader_disk_full: three replicas, each with its data folder on a tmpfs of its own. Once a
 *   leader serves, its tmpfs is filled to the last byte; a client then makes 150 numbered
 *   changes (60000-byte xattrs, so the log and the store must grow, and mkdirs). Every change
 *   succeeds: the full replica cannot store what it would acknowledge, stops leading (its log
 *   says "No space left on device") and the other two elect a leader that carries on; a
 *   change caught in the middle is answered exactly once (the directory count is exact).
 *   With space again, the full replica starts on its folder, catches up, and the three stores
 *   hold the same records. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "harness_raft.h"

#define CHANGES 150

static struct hraft_client cl;

/* Write zeros to path until the file system is full; returns the bytes written. */
static long long fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    static char buf[1 << 16];
    long long n = 0;
    for (;;) {
        ssize_t w = write(fd, buf, sizeof(buf));
        if (w <= 0) break;
        n += w;
    }
    close(fd);
    return n;
}

static int setxattr_big(uint64_t ino, int round)
{
    struct wbuf b;
    hraft_big_xattr_req(&b, ino, round);
    int rc = hraft_client_call(&cl, MSG_SETXATTR, &b, 1, NULL, 30000);
    wbuf_free(&b);
    return rc;
}

START_TEST(leader_disk_full)
{
    struct hraft_group *g = hraft_g;
    char why[4096], path[400];
    int rc = hraft_init(g, hraft_root, "full", 3, "pin_memory=false", 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(mount("tmpfs", g->r[i].dir, "tmpfs", 0, "size=48m,mode=0755") == 0,
                      "tmpfs on %s: %s", g->r[i].dir, strerror(errno));
    ck_assert_int_eq(hraft_start_all(g), 0);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(lead, 0);
    ck_assert_int_eq(hraft_client_open(&cl, g, 10000), 0);
    uint64_t top = 0;
    ck_assert_int_eq(hraft_client_mkdir(&cl, CAIRN_ROOT_INO, "top", &top, 15000), 0);

    snprintf(path, sizeof(path), "%s/filler", g->r[lead].dir);
    long long filled = fill(path);
    fprintf(stderr, "  leader %d: its disk filled with %lld more bytes\n", lead + 1, filled);
    for (int k = 0; k < CHANGES; k++) {
        rc = setxattr_big(top, k);
        ck_assert_msg(rc == 0, "setxattr %d: %s (%d)", k, strerror(-rc), rc);
        char name[32];
        snprintf(name, sizeof(name), "d%03d", k);
        rc = hraft_client_mkdir(&cl, top, name, NULL, 30000);
        ck_assert_msg(rc == 0, "mkdir %s: %s", name, strerror(-rc));
    }
    int now = hraft_wait_leader(g, 1u << lead, 15000);
    ck_assert_msg(now >= 0 && now != lead, "the full replica %d still leads", lead + 1);
    ck_assert_msg(hraft_log_count(g, lead, "No space left on device") > 0,
                  "replica %d's log (%s) does not say its disk is full", lead + 1, g->r[lead].log);
    int n = 0;
    ck_assert_int_eq(hraft_readdir(g, now, top, why, sizeof(why), &n), 0);
    ck_assert_int_eq(n, CHANGES);

    /* space again: it comes back, catches up, and holds what the others hold */
    ck_assert_int_eq(unlink(path), 0);
    if (g->r[lead].pid > 0) hraft_kill(g, lead, SIGKILL); /* reaps it if it stopped by itself */
    ck_assert_int_eq(hraft_start(g, lead), 0);
    now = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(now, 0);
    rc = hraft_wait_quiet(g, now, 0, 30000, why, sizeof(why));
    ck_assert_msg(rc == 0, "not quiet: %s", why);
    hraft_client_close(&cl);
    rc = hraft_stop_and_compare(g, now, 7u, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s", why);
    for (int i = 0; i < 3; i++)
        umount2(g->r[i].dir, MNT_DETACH);
    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"leader_disk_full", leader_disk_full},
    };
    return hraft_main("rfull", "raft_fulldisk", tests, sizeof(tests) / sizeof(tests[0]), 150, NULL);
}
