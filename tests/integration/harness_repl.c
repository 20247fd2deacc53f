/* harness_repl.c - the replication tests' shared runner, cluster start and assertions (see
 * harness_repl.h). This file calls Check: every integration test links libcheck, and these
 * helpers run only inside test cases (hr_main excepted). */
#include "harness_repl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct h_cluster *hr_c;
static char hr_root[256]; /* every test's cluster folder is made under here */

/* ---- the runner ---------------------------------------------------------------------------- */

static void leftovers(void)
{
    h_cluster_leftovers(hr_c);
}

int hr_main(const char *tag, const char *suite, const struct h_test *tests, size_t n, int timeout_s)
{
    signal(SIGPIPE, SIG_IGN);
    hr_c = h_cluster_shared();
    if (!hr_c || h_mkdtemp(tag, hr_root, sizeof(hr_root)) != 0) {
        fprintf(stderr, "test_%s: setup: %s\n", suite, strerror(errno));
        return 1;
    }
    h_cluster_stop_on_signal(hr_c);
    int nf = h_run_cases(suite, tests, n, timeout_s, leftovers);
    h_cluster_leftovers(hr_c);
    if (rmdir(hr_root) != 0)
        fprintf(stderr, "%s: %s\n", getenv("KEEP") ? "kept" : "logs of failed tests", hr_root);
    return nf ? 1 : 0;
}

/* ---- the cluster ----------------------------------------------------------------------------- */

void hr_start(const char *tag, int ncs, const char *meta_opts, const char *cs_opts,
              const char *const *cs_extra, const char *tmpfs_size)
{
    int rc =
        h_cluster_start_opts(hr_c, hr_root, tag, ncs, meta_opts, cs_opts, cs_extra, tmpfs_size);
    ck_assert_msg(rc == 0, "cluster of %d chunk servers: %s (logs in %s)", ncs, strerror(-rc),
                  hr_c->dir);
    rc = h_mount_opts(hr_c, HR_MOUNT_OPTS);
    ck_assert_msg(rc == 0, "mount: %s (logs in %s)", strerror(-rc), hr_c->dir);
}

void hr_fresh_mount(void)
{
    ck_assert_int_eq(h_drop_caches(), 0);
    int rc = h_remount(hr_c, 0);
    ck_assert_msg(rc == 0, "remount: %s", strerror(-rc));
}

int hr_index_of(uint64_t server)
{
    int i = h_cs_index(hr_c, server);
    ck_assert_msg(i >= 0, "server %016llx is none of this cluster's chunk servers",
                  (unsigned long long)server);
    return i;
}

void hr_cairn_ok(const char *fmt_args, const char *arg)
{
    char out[2000], args[1200];
    snprintf(args, sizeof(args), fmt_args, arg);
    int rc = h_cairn(hr_c, out, sizeof(out), "%s --meta %s", args, hr_c->meta_addr);
    ck_assert_msg(rc == 0, "cairn %s: exit %d: %s", args, rc, out);
}

/* ---- files ----------------------------------------------------------------------------------- */

void hr_write_file(const char *path, uint64_t seed, off_t size)
{
    int rc = hfs_write_pattern_file(path, seed, size, 1);
    ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
}

void hr_verify_file(const char *path, uint64_t seed, off_t size, const char *when)
{
    char why[1024];
    alarm(120); /* a hang ends the test */
    int rc = hfs_verify_pattern_file(path, seed, size, why, sizeof(why));
    alarm(0);
    ck_assert_msg(rc == 0, "%s: %s", when, why);
}

/* ---- what the cluster says ---------------------------------------------------------------------
 */

struct hfs_fileinfo *hr_fileinfo(const char *path)
{
    static struct hfs_fileinfo *fi;
    if (!fi) fi = malloc(sizeof(*fi));
    ck_assert_ptr_nonnull(fi);
    char why[2048];
    ck_assert_msg(hfs_fileinfo(hr_c, path, fi, why, sizeof(why)) == 0, "%s", why);
    return fi;
}

struct hfs_health *hr_health(void)
{
    static struct hfs_health *h;
    if (!h) h = malloc(sizeof(*h));
    ck_assert_ptr_nonnull(h);
    char why[2048];
    ck_assert_msg(hfs_health(hr_c, h, why, sizeof(why)) == 0, "%s", why);
    return h;
}

void hr_servers_str(const struct hfs_health *h, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < h->nservers && o < len; i++) {
        int k = h_cs_index(hr_c, h->s[i].id);
        o += (size_t)snprintf(out + o, len - o, "%s[cs%d %s %.1f%% %llu chunks]", i ? " " : "", k,
                              h->s[i].state, hfs_used_pct(&h->s[i]),
                              (unsigned long long)h->s[i].chunks);
    }
}

void hr_wait_chunks(const char *const *paths, int n, unsigned goal, uint64_t avoid, unsigned forbid,
                    int timeout_s, const char *what)
{
    char why[4096];
    uint64_t t0 = hfs_now_ms();
    int rc =
        hfs_wait_chunks(hr_c, paths, n, goal, avoid, forbid, timeout_s * 1000, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: not within %d s: %s", what, timeout_s, why);
    fprintf(stderr, "  %s: %.1f s\n", what, hr_secs_since(t0));
}

void hr_wait_file(const char *path, unsigned goal, uint64_t avoid, unsigned forbid, int timeout_s,
                  const char *what)
{
    const char *paths[] = {path};
    hr_wait_chunks(paths, 1, goal, avoid, forbid, timeout_s, what);
}

double hr_secs_since(uint64_t t0)
{
    return (double)(hfs_now_ms() - t0) / 1000.0;
}
