/* harness_repl.h - what the replication tests (test_replication_*.c) share: the runner that
 * gives every test case its own cluster in a forked process, starting that cluster and its
 * mount, and the assertions they make about files, copies and health.
 *
 * Unlike harness.h and harness_fs.h, these helpers call Check (ck_assert...) and fail the
 * running test when something does not hold: every integration test links libcheck, but only
 * a test case (not main() before the runner starts) may call them. They act on one cluster,
 * hr_c, which hr_main sets up in memory shared with the runner (h_cluster_shared), so the
 * runner reaps whatever a failed test left (h_cluster_leftovers after each test case). */
#ifndef CAIRN_HARNESS_REPL_H
#define CAIRN_HARNESS_REPL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"
#include "harness_run.h"
#include "harness_fs.h"

/* The cluster of the running test case (set by hr_main before any test runs). */
extern struct h_cluster *hr_c;

/* FUSE options of the mount hr_start makes: a dead server costs a client 10 s at most. */
#define HR_MOUNT_OPTS "io_timeout=10"

/* ---- the runner ---------------------------------------------------------------------------- */

/* main() of a replication test binary: sets up hr_c and a folder /tmp/cairn-test-TAG-XXXXXX
 * under which each test case's cluster is made, then runs each of the n tests in a test case
 * of its own (timeout_s each) of the suite SUITE, and removes the folder unless a failed test
 * (or $KEEP) left logs in it (then says where). Returns main's exit status. */
int hr_main(const char *tag, const char *suite, const struct h_test *tests, size_t n,
            int timeout_s);

/* ---- the cluster ----------------------------------------------------------------------------- */

/* Start hr_c: cairn-meta with meta_opts, ncs chunk servers with cs_opts plus cs_extra[i] (may
 * be NULL), each on its own tmpfs of tmpfs_size (NULL: none), as in h_cluster_start_opts, and
 * mount 0 with HR_MOUNT_OPTS. Fails the test (with where the logs are) if any of it fails. */
void hr_start(const char *tag, int ncs, const char *meta_opts, const char *cs_opts,
              const char *const *cs_extra, const char *tmpfs_size);
/* Drop the page cache and remount mount 0: the next reads go through a fresh client. */
void hr_fresh_mount(void);
/* Index in hr_c of the chunk server with this id; fails the test if there is none. */
int hr_index_of(uint64_t server);
/* `cairn ARGS --meta ADDR` must exit 0; ARGS is fmt_args with arg in its one %s. */
void hr_cairn_ok(const char *fmt_args, const char *arg);

/* ---- files ----------------------------------------------------------------------------------- */

/* Write (and fsync) size bytes of the pattern of seed to path, or fail the test. */
void hr_write_file(const char *path, uint64_t seed, off_t size);
/* path must hold exactly size bytes of the pattern of seed (read within 120 s; a hang ends the
 * test with SIGALRM); when says at which point of the test, for the message. */
void hr_verify_file(const char *path, uint64_t seed, off_t size, const char *when);

/* ---- what the cluster says ---------------------------------------------------------------------
 * hr_fileinfo and hr_health return a buffer of their own that the next call overwrites. */

struct hfs_fileinfo *hr_fileinfo(const char *path);
struct hfs_health *hr_health(void);
/* "[csK state used% N chunks] ..." of every server in h, for messages. */
void hr_servers_str(const struct hfs_health *h, char *out, size_t len);
/* Wait until hfs_chunks_ok holds for the n files (goal, avoid, forbid as there) or fail the
 * test after timeout_s with what is still wrong; prints how long it took, named what. */
void hr_wait_chunks(const char *const *paths, int n, unsigned goal, uint64_t avoid, unsigned forbid,
                    int timeout_s, const char *what);
/* The same for one file. */
void hr_wait_file(const char *path, unsigned goal, uint64_t avoid, unsigned forbid, int timeout_s,
                  const char *what);

/* Seconds since t0 (hfs_now_ms). */
double hr_secs_since(uint64_t t0);

#endif
