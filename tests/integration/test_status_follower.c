/* test_status_follower.c - the status page of a meta replica that is not the leader:
 *
 * - follower_page: a Raft group of three cairn-meta replicas on 127.0.0.1, each with its own
 *   http=127.0.0.1:PORT. A follower's /api/status is valid JSON that says "follower", names
 *   the leader's address and the three replicas, and gives no link to a leader page on its
 *   own host (that address would be its own page); the leader's says "leader". In Debian's
 *   chromium (harness_cdp.h) the follower's page shows the role "follower" and a notice that
 *   it is not the leader, naming the leader's address, and no leader link; the leader's page
 *   shows "leader" and no notice.
 *
 * The group's record is shared with the runner (hraft_main), which reaps whatever a failed
 * test left; the browser ends when its pipe closes, and h_cdp_close ends it by its PID. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_cdp.h"
#include "harness_fs.h"
#include "harness_raft.h"

#define EVAL_MS 10000

/* /api/status of the replica at port, checked by the python3 program py (JSON in d); its
 * output into out. */
static void api_check(struct hraft_group *g, uint16_t port, const char *py, char *out, size_t len)
{
    int rc = h_run(30, out, len,
                   "curl -sSf --max-time 10 -o %s/status-%u.json http://127.0.0.1:%u/api/status "
                   "&& python3 -m json.tool %s/status-%u.json > /dev/null && "
                   "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); %s' "
                   "%s/status-%u.json",
                   g->c.dir, port, port, g->c.dir, port, py, g->c.dir, port);
    ck_assert_msg(rc == 0, "/api/status of port %u: %s", port, out);
}

/* Open the page at port in b and wait until it polled once. */
static void page_open(struct hraft_group *g, struct h_cdp *b, uint16_t port)
{
    char url[80];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    int rc = h_cdp_open(b, g->c.dir, url, 30000);
    ck_assert_msg(rc == 0, "chromium: %s (log in %s/chromium.log)", strerror(-rc), g->c.dir);
    uint64_t end = hfs_now_ms() + 30000;
    double polls = 0;
    while (hfs_now_ms() < end) {
        rc = h_cdp_eval_num(b, "Number(document.body && document.body.dataset.polls || 0)", &polls,
                            EVAL_MS);
        ck_assert_msg(rc == 0, "page: %s", strerror(-rc));
        if (polls >= 1) break;
        usleep(200 * 1000);
    }
    ck_assert_msg(polls >= 1, "the page of port %u did not poll /api/status", port);
}

static void page_str(struct h_cdp *b, const char *expr, char *out, size_t len)
{
    int rc = h_cdp_eval(b, expr, out, len, EVAL_MS);
    ck_assert_msg(rc == 0, "page: %s: %s (%s)", expr, strerror(-rc), out);
}

#define ROLE_AND_NOTICE                                                                            \
    "document.getElementById('role').textContent + '|' + "                                         \
    "document.getElementById('notice').hidden + '|' + "                                            \
    "document.getElementById('notice').textContent + '|' + "                                       \
    "(document.getElementById('leader-link') ? 'link' : 'nolink')"

START_TEST(follower_page)
{
    struct hraft_group *g = hraft_g;
    char why[256], out[2048];
    int rc = hraft_init(g, hraft_root, "follow", 3, NULL, 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    /* every replica gets its own HTTP port: the options are read at each start */
    uint16_t port[3];
    for (int i = 0; i < 3; i++) {
        port[i] = h_free_port();
        snprintf(g->opts, sizeof(g->opts), "http=127.0.0.1:%u", port[i]);
        ck_assert_int_eq(hraft_start(g, i), 0);
        ck_assert_int_eq(h_wait_port(port[i], 10000), 0);
    }
    int lead = hraft_wait_leader(g, 0, 20000);
    ck_assert_msg(lead >= 0, "no leader");
    int f = (lead + 1) % 3;
    fprintf(stderr, "follower_page: leader %s, follower %s\n", g->r[lead].addr, g->r[f].addr);

    api_check(g, port[f],
              "print(d[\"role\"], d[\"leader\"], repr(d[\"leader_page\"]), len(d[\"replicas\"]), "
              "d[\"term\"] >= 1)",
              out, sizeof(out));
    char want[200];
    snprintf(want, sizeof(want), "follower %s '' 3 True", g->r[lead].addr);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "follower's /api/status: %s (want %s)",
                  out, want);
    api_check(g, port[lead], "print(d[\"role\"], d[\"ready\"], d[\"leader_page\"] == \"\")", out,
              sizeof(out));
    ck_assert_msg(strncmp(out, "leader True True", 16) == 0, "leader's /api/status: %s", out);

    struct h_cdp b;
    char s[2048];
    page_open(g, &b, port[f]);
    page_str(&b, ROLE_AND_NOTICE, s, sizeof(s));
    fprintf(stderr, "follower_page: follower's page: %s\n", s);
    ck_assert_msg(strncmp(s, "follower|false|This replica is not the leader", 45) == 0,
                  "follower's page: %s", s);
    ck_assert_msg(strstr(s, g->r[lead].addr), "the leader's address is not on the page: %s", s);
    ck_assert_msg(strstr(s, "|nolink"), "a link to the leader on its own host: %s", s);
    h_cdp_close(&b);

    page_open(g, &b, port[lead]);
    page_str(&b, ROLE_AND_NOTICE, s, sizeof(s));
    fprintf(stderr, "follower_page: leader's page: %s\n", s);
    ck_assert_msg(strncmp(s, "leader|true|", 12) == 0, "leader's page: %s", s);
    h_cdp_close(&b);

    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {{"follower_page", follower_page}};
    return hraft_main("status-follow", "status_follower", tests, sizeof(tests) / sizeof(tests[0]),
                      120, NULL);
}
