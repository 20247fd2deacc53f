/* test_metrics.c - every daemon's Prometheus metrics on a real cluster: cairn-meta, three
 * cairn-chunk servers and a mount, each with http= on a port of its own. After writes through
 * one mount and reads through the mount with metrics, each /metrics (fetched with curl) must
 * pass `promtool check metrics` and show the series an operator watches, with values that
 * moved: the meta's per-operation counts and chunk health, the chunk servers' write bytes, the
 * mount's read bytes and latency histograms. `cairn local status` prints every daemon's
 * metrics URL and the status page's. A chunk server's zone holds a double quote and a
 * backslash, so label escaping is checked through promtool on a live daemon. The sample
 * Prometheus configuration and alert rules in deploy/prometheus must pass promtool too. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define META_OPTS_FMT "chunk_size=4M cs_timeout=2 default_copies=2 http=127.0.0.1:%u"
#define CS_OPTS "heartbeat_ms=200"
#define FILE_SIZE (10 * MiB + 123)
#define NCS 3

/* Fetch http://127.0.0.1:port/metrics into DIR/name.prom (fails the test if curl fails). */
static void fetch(uint16_t port, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s.prom", hr_c->dir, name);
    int rc = h_sh(30, "curl -sSf --max-time 20 -o '%s' 'http://127.0.0.1:%u/metrics' 2>'%s.err'",
                  path, port, path);
    ck_assert_msg(rc == 0, "curl of %s's /metrics (port %u) failed: exit %d (see %s.err)", name,
                  port, rc, path);
}

/* `promtool check metrics` must accept the file. */
static void lint(const char *path)
{
    char out[1500];
    int rc = h_run(60, out, sizeof(out), "promtool check metrics <'%s'", path);
    ck_assert_msg(rc == 0, "promtool check metrics rejects %s (exit %d):\n%s", path, rc, out);
}

/* The value of the sample whose name and labels are exactly series (as written:
 * `name{a="x",b="y"}`), or -1 when there is none. */
static double value_of(const char *path, const char *series)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    char line[4096];
    double v = -1;
    size_t n = strlen(series);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, series, n) && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    fclose(f);
    return v;
}

/* The sum and the largest of the values of the samples that start with prefix. */
static double sum_prefix(const char *path, const char *prefix, double *max)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    char line[4096];
    double sum = 0;
    *max = 0;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, prefix, strlen(prefix))) {
            char *sp = strrchr(line, ' ');
            double v = sp ? strtod(sp + 1, NULL) : 0;
            sum += v;
            if (v > *max) *max = v;
        }
    fclose(f);
    return sum;
}

/* How many samples start with prefix (e.g. "cairn_meta_chunkserver_up{"). */
static int count_prefix(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    char line[4096];
    int c = 0;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, prefix, strlen(prefix))) c++;
    fclose(f);
    return c;
}

static void distinct_ports(uint16_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        int again;
        int tries = 0;
        do {
            p[i] = h_free_port();
            again = p[i] == 0;
            for (int j = 0; j < i; j++)
                if (p[j] == p[i] || p[j] + 1 == p[i] || p[i] + 1 == p[j]) again = 1;
        } while (again && ++tries < 100);
        ck_assert_msg(!again, "no free port");
    }
}

START_TEST(daemons_serve_metrics)
{
    /* ports: meta, the chunk servers, the mount */
    uint16_t port[NCS + 2];
    distinct_ports(port, NCS + 2);
    char meta_opts[256], extra[NCS][128];
    const char *cs_extra[NCS];
    snprintf(meta_opts, sizeof(meta_opts), META_OPTS_FMT, port[0]);
    for (int i = 0; i < NCS; i++) {
        /* server 0's zone needs escaping in a label value: r"1\x */
        snprintf(extra[i], sizeof(extra[i]), "http=127.0.0.1:%u zone=%s", port[1 + i],
                 i == 0 ? "r\"1\\x" : "r2");
        cs_extra[i] = extra[i];
    }
    hr_start("metrics", NCS, meta_opts, CS_OPTS, cs_extra, NULL);
    char mopts[128];
    snprintf(mopts, sizeof(mopts), HR_MOUNT_OPTS ",http=127.0.0.1:%u", port[NCS + 1]);
    int k = h_mount_opts(hr_c, mopts);
    ck_assert_msg(k > 0, "mount with http=: %d", k);

    /* write through mount 0, read through mount k (a client with nothing cached) */
    char f0[400], fk[400];
    snprintf(f0, sizeof(f0), "%s/data.bin", hr_c->mnt[0]);
    snprintf(fk, sizeof(fk), "%s/data.bin", hr_c->mnt[k]);
    hr_write_file(f0, 0x11, FILE_SIZE);
    hr_verify_file(fk, 0x11, FILE_SIZE, "read through the mount with metrics");

    char path[600];
    /* the meta service: per-operation counts, Raft, the registry, chunk health (wait for a
     * complete scan pass that saw the file's chunks at their copies), and what the chunk
     * servers' heartbeats and the mounts' counters (every 2 s) told it */
    uint64_t end = hfs_now_ms() + 30000;
    double full = -1, cs_wb = 0, client_rb = 0, max;
    for (;;) {
        fetch(port[0], "meta", path, sizeof(path));
        full = value_of(path, "cairn_meta_chunks{state=\"full\"}");
        cs_wb = sum_prefix(path, "cairn_meta_chunkserver_write_bytes_total{", &max);
        sum_prefix(path, "cairn_meta_client_read_bytes_total{", &client_rb);
        if ((full >= 3 && cs_wb >= 2.0 * FILE_SIZE && client_rb >= FILE_SIZE) || hfs_now_ms() > end)
            break;
        hfs_sleep_ms(300);
    }
    lint(path);
    ck_assert_msg(full >= 3, "meta: chunks full = %g, want the file's 3 chunks", full);
    ck_assert_msg(cs_wb >= 2.0 * FILE_SIZE, "meta: chunk servers wrote %g bytes, want >= %g", cs_wb,
                  2.0 * FILE_SIZE);
    ck_assert_msg(client_rb >= FILE_SIZE, "meta: a client read %g bytes, want >= %ld", client_rb,
                  (long)FILE_SIZE);
    ck_assert_double_eq(value_of(path, "cairn_meta_chunks{state=\"missing\"}"), 0);
    ck_assert_double_eq(value_of(path, "cairn_meta_chunks{state=\"under_replicated\"}"), 0);
    ck_assert_double_eq(value_of(path, "cairn_meta_leader"), 1);
    ck_assert_double_eq(value_of(path, "cairn_meta_raft_state{state=\"leader\"}"), 1);
    ck_assert_msg(value_of(path, "cairn_meta_raft_term") >= 1, "raft term");
    ck_assert_msg(value_of(path, "cairn_meta_raft_commit_index") >= 1, "commit index");
    ck_assert_double_eq(value_of(path, "cairn_meta_chunkservers{state=\"up\"}"), NCS);
    ck_assert_int_eq(count_prefix(path, "cairn_meta_chunkserver_up{"), NCS);
    ck_assert_int_eq(count_prefix(path, "cairn_meta_chunkserver_free_bytes{"), NCS);
    ck_assert_msg(value_of(path, "cairn_meta_requests_total{op=\"create\"}") >= 1, "creates");
    ck_assert_msg(value_of(path, "cairn_meta_requests_total{op=\"chunk_lease\"}") >= 1, "leases");
    ck_assert_msg(value_of(path, "cairn_meta_request_duration_seconds_count{op=\"lookup\"}") >= 1,
                  "lookup latency histogram");
    ck_assert_msg(
        value_of(path, "cairn_meta_request_errors_total{op=\"lookup\",error=\"ENOENT\"}") >= 1,
        "the create's lookup of a new name is an ENOENT");
    ck_assert_msg(value_of(path, "cairn_meta_sessions") >= 2, "two mounts, two sessions");
    ck_assert_msg(value_of(path, "cairn_meta_inodes") >= 2, "inodes");
    ck_assert_msg(count_prefix(path, "cairn_meta_disk_avail_bytes{") == 1, "meta disk");
    /* the zone with a quote and a backslash, escaped in the registry's labels */
    char esc[200];
    snprintf(esc, sizeof(esc), "zone=\"r\\\"1\\\\x\"");
    ck_assert_msg(h_sh(10, "grep -qF '%s' '%s'", esc, path) == 0, "escaped zone %s in %s", esc,
                  path);

    /* chunk servers: each passes promtool; the two holding the copies wrote bytes */
    int wrote = 0;
    double write_bytes = 0;
    for (int i = 0; i < NCS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "cs%d", i);
        fetch(port[1 + i], name, path, sizeof(path));
        lint(path);
        double wb = value_of(path, "cairn_chunk_request_bytes_total{op=\"write\"}");
        ck_assert_msg(wb >= 0, "%s: no write bytes series", name);
        if (wb > 0) wrote++;
        write_bytes += wb;
        ck_assert_msg(value_of(path, "cairn_chunk_request_duration_seconds_count{op=\"read\"}") >=
                          0,
                      "%s: read latency histogram", name);
        ck_assert_msg(value_of(path, "cairn_chunk_chunks") >= 0, "%s: chunk count", name);
        ck_assert_int_eq(count_prefix(path, "cairn_chunk_disk_avail_bytes{"), 1);
    }
    ck_assert_msg(wrote >= 2, "only %d chunk servers wrote (2 copies of each chunk)", wrote);
    ck_assert_msg(write_bytes >= 2.0 * FILE_SIZE, "chunk servers wrote %g bytes, want >= %g",
                  write_bytes, 2.0 * FILE_SIZE);

    /* the mount that read the file */
    fetch(port[NCS + 1], "mount", path, sizeof(path));
    lint(path);
    double rb = value_of(path, "cairn_mount_fuse_read_bytes_total");
    ck_assert_msg(rb >= FILE_SIZE, "mount read %g bytes, want >= %ld", rb, (long)FILE_SIZE);
    /* every chunk server runs here, so the mount read the chunk files in place */
    double local = value_of(path, "cairn_mount_local_read_bytes_total");
    ck_assert_msg(local + value_of(path, "cairn_mount_chunk_read_bytes_total") >= FILE_SIZE,
                  "chunk read bytes");
    ck_assert_msg(local >= 0 && value_of(path, "cairn_mount_local_read_fails_total") == 0,
                  "local read series");
    ck_assert_msg(value_of(path, "cairn_mount_fuse_read_duration_seconds_count") >= 1,
                  "fuse read latency");
    ck_assert_msg(value_of(path, "cairn_mount_chunk_read_duration_seconds_count") >= 0,
                  "chunk read latency");
    ck_assert_msg(value_of(path, "cairn_mount_meta_calls_total{op=\"lookup\"}") >= 1,
                  "meta lookups");

    /* bad HTTP input to every server: an error status, and each keeps serving */
    for (int i = 0; i < NCS + 2; i++) {
        char out[600];
        int rc = h_run(30, out, sizeof(out),
                       "set -e; u=http://127.0.0.1:%u; "
                       "head -c 200000 /dev/urandom | curl -s -o /dev/null -w '%%{http_code} ' "
                       "--max-time 10 -X POST --data-binary @- $u/metrics; "
                       "curl -s -o /dev/null -w '%%{http_code} ' --max-time 10 "
                       "\"$u/metrics?$(head -c 20000 /dev/zero | tr '\\0' a)\"; "
                       "curl -s -o /dev/null -w '%%{http_code} ' --max-time 10 $u/nothing; "
                       "printf 'GARBAGE\\r\\n\\r\\n' | timeout 5 python3 -c "
                       "'import socket,sys; s=socket.create_connection((\"127.0.0.1\",%u)); "
                       "s.sendall(sys.stdin.buffer.read()); s.recv(100)'; "
                       "curl -s -o /dev/null -w '%%{http_code}' --max-time 10 $u/metrics",
                       port[i], port[i]);
        ck_assert_msg(rc == 0, "port %u: exit %d: %s", port[i], rc, out);
        int post, longq, none, after;
        ck_assert_msg(sscanf(out, "%d %d %d %d", &post, &longq, &none, &after) == 4, "%s", out);
        ck_assert_msg(post >= 400 && longq >= 400 && none == 404, "port %u: %s", port[i], out);
        ck_assert_msg(after == 200, "port %u: /metrics after bad requests: %s", port[i], out);
    }
    h_cluster_stop(hr_c);
}
END_TEST

/* `cairn local start` gives every daemon and the mount an HTTP port; `cairn local status`
 * prints each one's metrics URL (every one answers and passes promtool) and the status page's
 * URL on the meta leader. The cluster is stopped with `cairn local stop` before anything is
 * asserted, so a failed check leaves nothing running. */
START_TEST(local_status_urls)
{
    char dir[256], cairn[512], out[4096], status[4096], why[2048] = "", js[512] = "";
    ck_assert_int_eq(h_mkdtemp("metrics-local", dir, sizeof(dir)), 0);
    h_prog("cairn", cairn, sizeof(cairn));
    uint16_t mport = h_free_port();
    int rc = h_run(120, out, sizeof(out),
                   "'%s' local start '%s/c' --metas 1 --chunk-servers 2 --meta-port %u", cairn, dir,
                   mport);
    int st = -1, urls = 0, ok = 0;
    char page[128] = "", meta_http[128] = "";
    if (rc == 0) {
        st = h_run(60, status, sizeof(status), "'%s' local status '%s/c'", cairn, dir);
        /* "       metrics http://HOST:PORT/metrics" after each daemon's line */
        for (char *l = status; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
            char url[128];
            if (sscanf(l, " metrics %127s", url) == 1 && !strncmp(url, "http://", 7)) {
                if (!meta_http[0]) snprintf(meta_http, sizeof(meta_http), "%s", url);
                urls++;
                char lint[1500];
                if (h_run(60, lint, sizeof(lint),
                          "curl -sSf --max-time 20 '%s' | promtool check metrics", url) == 0)
                    ok++;
                else
                    snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s: %s\n", url, lint);
            }
            sscanf(l, "status page: %127s", page);
        }
        /* the same as one JSON document */
        h_run(60, js, sizeof(js),
              "'%s' local status '%s/c' --json | python3 -c 'import json, sys; d = "
              "json.load(sys.stdin); "
              "print(d[\"healthy\"], d[\"status_page\"], len(d[\"daemons\"]), "
              "sum(1 for x in d[\"daemons\"] if x[\"metrics\"]))'",
              cairn, dir);
    }
    char stop[2048];
    int src = h_run(120, stop, sizeof(stop), "'%s' local stop '%s/c'", cairn, dir);
    ck_assert_msg(rc == 0, "cairn local start failed:\n%s", out);
    ck_assert_msg(st == 0, "cairn local status: exit %d:\n%s", st, status);
    ck_assert_msg(urls == 4, "want 4 metrics URLs (meta1, cs1, cs2, mount):\n%s", status);
    ck_assert_msg(ok == urls, "metrics that failed:\n%s", why);
    /* the status page is the leader's (the one replica): its HTTP address, path / */
    char want[160];
    snprintf(want, sizeof(want), "%.*s/", (int)(strlen(meta_http) - strlen("/metrics")), meta_http);
    ck_assert_msg(!strcmp(page, want), "status page URL '%s', want '%s':\n%s", page, want, status);
    char want_js[256];
    snprintf(want_js, sizeof(want_js), "True %s 4 4", want);
    ck_assert_msg(!strcmp(js, want_js), "local status --json says '%s', want '%s'", js, want_js);
    ck_assert_msg(src == 0, "cairn local stop failed:\n%s", stop);
    h_sh(30, "rm -rf '%s'", dir);
}
END_TEST

/* The sample scrape configuration and alert rules are valid for Prometheus, and the rules' own
 * tests pass. */
START_TEST(prometheus_files_check)
{
    char out[2000];
    int rc = h_run(60, out, sizeof(out), "promtool check config deploy/prometheus/prometheus.yml");
    ck_assert_msg(rc == 0, "promtool check config: exit %d:\n%s", rc, out);
    rc = h_run(60, out, sizeof(out), "promtool check rules deploy/prometheus/alerts.yml");
    ck_assert_msg(rc == 0, "promtool check rules: exit %d:\n%s", rc, out);
    /* and fire on what a broken cluster shows, not on a healthy one (alerts_test.yml) */
    rc = h_run(120, out, sizeof(out), "promtool test rules deploy/prometheus/alerts_test.yml");
    ck_assert_msg(rc == 0, "promtool test rules: exit %d:\n%s", rc, out);
    /* the rules name the alerts the issue asks for */
    const char *alerts[] = {"CairnChunkServerDown", "CairnChunksUnderReplicated",
                            "CairnChunksMissing", "CairnDiskNearlyFull", "CairnNoMetaLeader"};
    for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
        ck_assert_msg(h_sh(10, "grep -q 'alert: %s$' deploy/prometheus/alerts.yml", alerts[i]) == 0,
                      "alert %s missing", alerts[i]);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {{"metrics", daemons_serve_metrics},
                                   {"local_status", local_status_urls},
                                   {"prometheus_files", prometheus_files_check}};
    return hr_main("metrics", "metrics", tests, sizeof(tests) / sizeof(tests[0]), 180);
}
