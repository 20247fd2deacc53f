/* test_status_page.c - the status page cairn-meta serves (meta/status_page.c, meta/www/), in a
 * real browser:
 *
 * - page_live: a cluster (cairn-meta with http=127.0.0.1:PORT, three chunk servers, heartbeat
 *   200 ms, the first in zone "<b>x</b>", one mount). /api/status is valid JSON (python3 -m
 *   json.tool) listing the three servers, with the zone's markup escaped in the JSON text;
 *   /, /status.css and /status.js are served with their types. Then Debian's chromium,
 *   headless, driven over the DevTools pipe (harness_cdp.h), loads the page: it polls without
 *   error, lists the three chunk servers by address, shows the zone as the text "<b>x</b>"
 *   (no <b> element anywhere in the servers table), and while the test writes through the
 *   mount the graphs grow by new samples and the throughput graph draws a non-zero rate, and
 *   the mount's session is listed with the bytes it wrote. A second mount at a folder named
 *   "<em>m" (sessions are named HOST:MOUNTPOINT) is listed with that name as text.
 *
 * The test case runs in a forked process with the cluster record shared with the runner
 * (harness_repl.h), which reaps whatever a failed test left; the browser ends when its pipe
 * closes, and h_cdp_close ends it by its PID otherwise. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "harness_cdp.h"
#include "harness_fs.h"
#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define ZONE "<b>x</b>"
#define MNT_NAME "<em>m" /* a path name: no slash */
#define EVAL_MS 10000
#define LOAD_DEADLINE_S 30
#define WRITE_DEADLINE_S 40

static uint16_t http_port;

static double eval_num(struct h_cdp *b, const char *expr)
{
    double v = -1;
    int rc = h_cdp_eval_num(b, expr, &v, EVAL_MS);
    ck_assert_msg(rc == 0, "page: %s: %s", expr, strerror(-rc));
    return v;
}

static void eval_str(struct h_cdp *b, const char *expr, char *out, size_t len)
{
    int rc = h_cdp_eval(b, expr, out, len, EVAL_MS);
    ck_assert_msg(rc == 0, "page: %s: %s (%s)", expr, strerror(-rc), out);
}

/* /api/status with curl: valid JSON, three servers, no raw markup in it. */
static void check_api(void)
{
    char out[4096];
    int rc = h_run(30, out, sizeof(out),
                   "curl -sSf --max-time 10 -o %s/status.json http://127.0.0.1:%u/api/status && "
                   "python3 -m json.tool %s/status.json > /dev/null && "
                   "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                   "print(d[\"role\"], len(d[\"servers\"]), "
                   "sorted(s[\"zone\"] for s in d[\"servers\"])[-1])' %s/status.json",
                   hr_c->dir, http_port, hr_c->dir, hr_c->dir);
    ck_assert_msg(rc == 0, "/api/status is not valid JSON: %s", out);
    ck_assert_msg(strncmp(out, "leader 3 " ZONE, strlen("leader 3 " ZONE)) == 0,
                  "/api/status: role, servers, zone: %s", out);
    rc = h_run(10, out, sizeof(out), "grep -c '<b>' %s/status.json", hr_c->dir);
    ck_assert_msg(rc == 1 && atoi(out) == 0, "raw markup in the JSON text: %s", out);

    const char *files[][2] = {
        {"/", "text/html"}, {"/status.css", "text/css"}, {"/status.js", "text/javascript"}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        rc = h_run(30, out, sizeof(out),
                   "curl -sSf --max-time 10 -o /dev/null -w '%%{content_type}' "
                   "http://127.0.0.1:%u%s",
                   http_port, files[i][0]);
        ck_assert_msg(rc == 0 && strncmp(out, files[i][1], strlen(files[i][1])) == 0, "%s: %s",
                      files[i][0], out);
    }
}

/* Append 1 MiB to path and fsync it (the chunk servers count the bytes), then rest a little:
 * at most about 4 MiB/s, so the test stays small on disk. */
static void write_some(const char *path)
{
    static char buf[MiB];
    memset(buf, 'p', sizeof(buf));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    usleep(250 * 1000);
}

/* A second mount of hr_c at a folder named MNT_NAME under its folder (the mount's session is
 * named after its mount point), recorded in hr_c so that h_cluster_stop unmounts it. */
static void mount_named(void)
{
    int k = hr_c->nmounts;
    ck_assert_int_lt(k, H_MAX_MOUNTS);
    char dir[sizeof(hr_c->dir)];
    memcpy(dir, hr_c->dir, sizeof(dir));
    snprintf(hr_c->mnt[k], sizeof(hr_c->mnt[k]), "%s/" MNT_NAME, dir);
    ck_assert_int_eq(mkdir(hr_c->mnt[k], 0755), 0);
    struct stat parent, st;
    ck_assert_int_eq(stat(hr_c->dir, &parent), 0);
    char prog[512], opts[200], log[320];
    h_prog("cairn-mount", prog, sizeof(prog));
    snprintf(opts, sizeof(opts), "meta=%s," HR_MOUNT_OPTS, hr_c->meta_addr);
    snprintf(log, sizeof(log), "%s/mount%d.log", hr_c->dir, k);
    char *argv[] = {prog, hr_c->mnt[k], "-f", "-o", opts, NULL};
    hr_c->mount_pid[k] = h_spawn(argv, log);
    ck_assert_int_gt(hr_c->mount_pid[k], 0);
    hr_c->nmounts = k + 1;
    uint64_t end = hfs_now_ms() + 10000;
    while (hfs_now_ms() < end && (stat(hr_c->mnt[k], &st) != 0 || st.st_dev == parent.st_dev))
        usleep(20 * 1000);
    ck_assert_msg(st.st_dev != parent.st_dev, "mount at %s: see %s", hr_c->mnt[k], log);
    char f[400];
    snprintf(f, sizeof(f), "%s/named", hr_c->mnt[k]);
    write_some(f);
}

START_TEST(page_live)
{
    http_port = h_free_port();
    char mopts[64];
    snprintf(mopts, sizeof(mopts), "http=127.0.0.1:%u", http_port);
    const char *extra[3] = {"zone=" ZONE, NULL, NULL};
    hr_start("page", 3, mopts, "heartbeat_ms=200", extra, NULL);
    ck_assert_int_eq(h_wait_port(http_port, 10000), 0);
    check_api();

    struct h_cdp b;
    char url[96], s[4096];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/?poll=500", http_port);
    int rc = h_cdp_open(&b, hr_c->dir, url, 30000);
    ck_assert_msg(rc == 0, "chromium: %s (log in %s/chromium.log)", strerror(-rc), hr_c->dir);

    /* the page loaded and polled /api/status twice */
    uint64_t end = hfs_now_ms() + LOAD_DEADLINE_S * 1000;
    double polls = 0;
    while (hfs_now_ms() < end) {
        polls = eval_num(&b, "Number(document.body && document.body.dataset.polls || 0)");
        if (polls >= 2) break;
        usleep(200 * 1000);
    }
    ck_assert_msg(polls >= 2, "the page did not poll /api/status (%.0f polls)", polls);
    eval_str(&b, "document.body.dataset.state + ' ' + document.title", s, sizeof(s));
    ck_assert_str_eq(s, "ok CairnFS status");

    /* the three chunk servers, by address */
    eval_str(&b,
             "Array.from(document.querySelectorAll('#servers tbody tr')).map(function (r) {"
             " return r.cells[0].textContent; }).join(' ')",
             s, sizeof(s));
    fprintf(stderr, "page_live: servers listed: %s\n", s);
    int listed = 0;
    for (int i = 0; i < hr_c->ncs; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", hr_c->cs_port[i]);
        ck_assert_msg(strstr(s, addr), "server %s not on the page: %s", addr, s);
        listed++;
    }
    ck_assert_int_eq(listed, 3);
    ck_assert_int_eq((int)eval_num(&b, "document.querySelectorAll('#servers tbody tr').length"), 3);

    /* the zone is text, not markup */
    ck_assert_int_eq((int)eval_num(&b, "document.querySelectorAll('#servers b').length"), 0);
    ck_assert_int_eq((int)eval_num(&b, "document.querySelectorAll('body b').length"), 0);
    ck_assert_int_eq(
        (int)eval_num(&b, "Array.from(document.querySelectorAll('#servers td')).filter("
                          "function (td) { return td.textContent === '" ZONE "'; }).length"),
        1);
    eval_str(&b,
             "String(document.getElementById('servers').innerHTML.indexOf("
             "'&lt;b&gt;x&lt;/b&gt;') >= 0)",
             s, sizeof(s));
    ck_assert_msg(strcmp(s, "true") == 0, "the zone is not escaped in the table's HTML");

    /* the graphs grow while the test writes, and throughput is drawn */
    const char *samples = "Number(document.getElementById('graph-bytes').dataset.samples)";
    const char *peak_b = "Number(document.getElementById('graph-bytes').dataset.peak)";
    const char *peak_o = "Number(document.getElementById('graph-ops').dataset.peak)";
    double s0 = eval_num(&b, samples), s1 = s0, pb = 0, po = 0;
    char f[400];
    snprintf(f, sizeof(f), "%s/w", hr_c->mnt[0]);
    end = hfs_now_ms() + WRITE_DEADLINE_S * 1000;
    int rounds = 0;
    while (hfs_now_ms() < end && !(s1 >= s0 + 4 && pb > 0 && po > 0)) {
        write_some(f);
        rounds++;
        s1 = eval_num(&b, samples);
        pb = eval_num(&b, peak_b);
        po = eval_num(&b, peak_o);
    }
    fprintf(stderr, "page_live: %d MiB written; samples %.0f -> %.0f, peak %.0f B/s, %.1f ops/s\n",
            rounds, s0, s1, pb, po);
    ck_assert_msg(s1 >= s0 + 4, "the graph did not grow: %.0f -> %.0f samples", s0, s1);
    ck_assert_msg(pb > 0, "no throughput drawn while writing %d MiB", rounds);
    ck_assert_msg(po > 0, "no operations drawn while writing %d MiB", rounds);

    /* the mount's session, with the bytes it wrote (its counters come every 2 s) */
    const char *ses = "Array.from(document.querySelectorAll('#sessions tbody tr')).filter("
                      "function (r) { return r.cells.length === 6 && r.cells[4].textContent "
                      "!== '0 B'; }).map(function (r) { return r.cells[0].textContent + ' ' + "
                      "r.cells[4].textContent; }).join('|')";
    end = hfs_now_ms() + 15000;
    s[0] = '\0';
    while (hfs_now_ms() < end) {
        eval_str(&b, ses, s, sizeof(s));
        if (s[0]) break;
        usleep(250 * 1000);
    }
    fprintf(stderr, "page_live: sessions that wrote: %s\n", s);
    ck_assert_msg(s[0], "no session with written bytes on the page");
    eval_str(&b, "document.getElementById('t-sessions').textContent", s, sizeof(s));
    ck_assert_str_eq(s, "1");

    /* a session whose name holds markup (its mount point) is shown as text */
    mount_named();
    const char *named = "Array.from(document.querySelectorAll('#sessions td')).filter("
                        "function (td) { return td.textContent.endsWith('/" MNT_NAME "'); "
                        "}).length";
    end = hfs_now_ms() + 15000;
    double n = 0;
    while (hfs_now_ms() < end && (n = eval_num(&b, named)) < 1)
        usleep(250 * 1000);
    ck_assert_msg(n == 1, "the session of the mount at .../" MNT_NAME " is not on the page");
    ck_assert_int_eq((int)eval_num(&b, "document.querySelectorAll('#sessions em').length"), 0);
    eval_str(&b, "document.getElementById('t-sessions').textContent", s, sizeof(s));
    ck_assert_str_eq(s, "2");

    h_cdp_close(&b);
    h_cluster_stop(hr_c);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {{"page_live", page_live}};
    return hr_main("page", "status_page", tests, sizeof(tests) / sizeof(tests[0]), 180);
}
