/* harness.h - the shared harness of the integration tests: real cairn-meta and cairn-chunk
 * processes on loopback, and real FUSE mounts, in a private temporary folder.
 *
 * Programs are taken from $BUILD (default "build") so the same tests run against the
 * sanitizer build. Every process a test starts is recorded and killed by PID (never by name)
 * in h_cluster_stop; every wait is bounded in time. */
#ifndef CAIRN_HARNESS_H
#define CAIRN_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

#define H_MAX_CS 8
#define H_MAX_MOUNTS 4

struct h_cluster {
    char dir[256]; /* everything lives under here */
    pid_t meta_pid;
    uint16_t meta_port;
    char meta_addr[64]; /* "127.0.0.1:PORT" */
    int ncs;
    pid_t cs_pid[H_MAX_CS];
    uint16_t cs_port[H_MAX_CS];
    char cs_dir[H_MAX_CS][300];
    int nmounts;
    pid_t mount_pid[H_MAX_MOUNTS];
    char mnt[H_MAX_MOUNTS][300];
    /* Fields below are zero for the clusters of the older tests (the old behaviour). */
    char meta_opts[512];                /* extra cairn-meta options (see h_meta_set_opts) */
    char cs_opts[H_MAX_CS][256];        /* extra cairn-chunk options per server (h_cs_set_opts) */
    int cs_tmpfs[H_MAX_CS];             /* 1: cs_dir[i] is a tmpfs mounted by h_cs_tmpfs */
    uint64_t cs_id[H_MAX_CS];           /* server id (its server_id file), 0 until read */
    char mount_opts[H_MAX_MOUNTS][256]; /* extra -o options each mount was made with */
    int stopped;                        /* h_cluster_stop ran */
};

/* Path of a built program ("cairn-meta") under $BUILD, in a static buffer per call site. */
const char *h_prog(const char *name, char *buf, size_t len);
/* A new empty folder /tmp/cairn-test-TAG-XXXXXX. Returns 0 or -errno. */
int h_mkdtemp(const char *tag, char *out, size_t len);
/* A TCP port free on 127.0.0.1 right now. */
uint16_t h_free_port(void);
/* fork+exec argv with stdout/stderr appended to logpath; returns the pid or -errno. */
pid_t h_spawn(char *const argv[], const char *logpath);
/* The same inside network namespace ns (NULL or "": ours). */
pid_t h_spawn_ns(const char *ns, char *const argv[], const char *logpath);
/* Wait until 127.0.0.1:port accepts a connection; 0 or -ETIMEDOUT. */
int h_wait_port(uint16_t port, int timeout_ms);
/* Send sig and reap the child, waiting at most timeout_ms (then SIGKILL). Returns the wait
 * status or -errno. */
int h_kill_wait(pid_t pid, int sig, int timeout_ms);
/* Whether pid is still running (not yet reaped and not a zombie). */
int h_alive(pid_t pid);

/* Create c->dir and start one cairn-meta (extra args may be NULL-terminated list or NULL). */
int h_meta_start(struct h_cluster *c, const char *tag);
/* Restart meta on the same port and data (after a kill). */
int h_meta_restart(struct h_cluster *c);
/* Start chunk server i (0-based) with data under c->dir/csI; waits for its port. */
int h_cs_start(struct h_cluster *c, int i);
/* Meta + n chunk servers, waiting until all n registered (cairn-meta logs it) or timeout. */
int h_cluster_start(struct h_cluster *c, const char *tag, int ncs);
/* Mount the cluster at c->dir/mntK (made here); returns K or -errno. Waits until mounted. */
int h_mount(struct h_cluster *c);
/* The same with extra -o options ("allow_other,io_timeout=10"; may be NULL). */
int h_mount_opts(struct h_cluster *c, const char *extra);
int h_umount(struct h_cluster *c, int k);
/* Unmount everything, kill every process by PID, remove c->dir unless $KEEP is set. */
void h_cluster_stop(struct h_cluster *c);
/* Run a shell command (sh -c), bounded by timeout_s; returns its exit status or -1. */
int h_sh(int timeout_s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- clusters with options, server faults, chunk files, the cairn CLI ---------------------
 * (the replication tests; every function returns 0 or a negative errno unless it says
 * otherwise, and none calls Check, so they work in a runner's fixtures too).
 *
 * A test that kills and restarts servers builds its cluster step by step:
 *     h_cluster_init(c, parent, "tag");  h_meta_set_opts(c, "chunk_size=4M cs_timeout=2");
 *     h_meta_launch(c);  h_cs_set_opts(c, i, "zone=a heartbeat_ms=200");  h_cs_tmpfs(c, i, "256m");
 *     h_cs_start(c, i) ...;  h_cs_wait_registered(c, i, 0, 10000) ...
 * Options are kept in c, so h_meta_restart and h_cs_restart start the same daemon again (same
 * port, data folder and server id). h_cluster_stop also unmounts every mount under c->dir
 * (FUSE and tmpfs), so it cleans up after any of these. */

/* Zero c and create c->dir as PARENT/TAG-XXXXXX (PARENT NULL: /tmp/cairn-test-TAG-XXXXXX). */
int h_cluster_init(struct h_cluster *c, const char *parent, const char *tag);
/* Extra options for cairn-meta: "key=value key=value" (space separated), each passed as
 * --key=value after the harness's own, so they win. Kept for restarts. -E2BIG if too long. */
int h_meta_set_opts(struct h_cluster *c, const char *opts);
/* Start cairn-meta in an initialised cluster (a free port is chosen the first time) and wait
 * for its port; also what h_meta_restart does. */
int h_meta_launch(struct h_cluster *c);
/* The same for chunk server i (0-based), e.g. "zone=a heartbeat_ms=200 scrub_rate=100". */
int h_cs_set_opts(struct h_cluster *c, int i, const char *opts);
/* Make chunk server i's data folder (c->dir/csI) a tmpfs of the given size ("256m") before
 * it starts, so that its capacity and usage are its own. Unmounted by h_cluster_stop. */
int h_cs_tmpfs(struct h_cluster *c, int i, const char *size);
/* Make chunk server i's data folder vanish while the server keeps running: its tmpfs (h_cs_tmpfs;
 * -EINVAL without one) is unmounted lazily (MNT_DETACH: the server's open files stay usable)
 * and the mount point removed, so c->dir/csI no longer exists. The server's id is read first
 * and kept in c (h_cs_id still works). The server cannot be restarted on that folder. */
int h_cs_lose_data(struct h_cluster *c, int i);
/* Stop chunk server i with sig (SIGKILL: a crash; SIGTERM: a clean stop) and wait (10 s at
 * most, then SIGKILL) until it is gone; its port, data folder and id stay for h_cs_restart.
 * Works from a forked test too (the process need not be this process's child). */
int h_cs_kill(struct h_cluster *c, int i, int sig);
/* Start chunk server i again after h_cs_kill (same port, data, id, options). */
int h_cs_restart(struct h_cluster *c, int i);
/* Server id of chunk server i (from its server_id file; 0 if unknown). */
uint64_t h_cs_id(struct h_cluster *c, int i);
/* Index of the chunk server with this id, or -ENOENT. */
int h_cs_index(struct h_cluster *c, uint64_t id);
/* Index of the chunk server at this address ("127.0.0.1:PORT"), or -ENOENT. */
int h_cs_index_addr(struct h_cluster *c, const char *addr);
/* How many times meta.log says chunk server i registered (>= 0). */
int h_cs_registrations(struct h_cluster *c, int i);
/* Wait until meta.log shows more than `before` registrations of chunk server i (pass the
 * h_cs_registrations count taken before a restart; 0 for a first start). 0 or -ETIMEDOUT. */
int h_cs_wait_registered(struct h_cluster *c, int i, int before, int timeout_ms);
/* Path of chunk server i's file of a chunk (DIR/XX/<id:016x>_<version>.chk, any version;
 * temporary files are ignored) and its version (*ver may be NULL). -ENOENT if it holds none. */
int h_chunk_file(struct h_cluster *c, int i, uint64_t chunk_id, char *out, size_t len,
                 uint32_t *ver);
/* Number of chunk files chunk server i holds (DIR/XX/ID_VERSION.chk; temporary files not
 * counted). */
int h_cs_chunk_files(struct h_cluster *c, int i);
/* XOR the byte at data offset off of a chunk file (past its 64 KiB header area) with 0xff. */
int h_chunk_flip_byte(const char *path, uint64_t off);
/* sync, then drop the kernel's page cache, dentries and inodes (needs root). */
int h_drop_caches(void);
/* Unmount mount k and mount it again at the same folder with the same options (a fresh
 * client: no cached data, locations or leases). Returns k or -errno. */
int h_remount(struct h_cluster *c, int k);
/* Run a shell command (bounded); its stdout and stderr (the last len-1 bytes) go to out.
 * Returns the exit status, or -1 when it could not run or timed out. */
int h_run(int timeout_s, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Run `$BUILD/cairn ARGS` (ARGS from fmt; name the meta service in them, e.g.
 * "health --json --meta %s", c->meta_addr), bounded by 30 s; its output goes to out as in
 * h_run. Returns cairn's exit status or -1. */
int h_cairn(struct h_cluster *c, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Run `$BUILD/cairn ARGS` (a command that prints JSON), then the python3 program py with the
 * parsed JSON in the variable d; py's stdout (trimmed) goes to out. Returns 0 when both
 * succeeded, else -1 with the failing command's output in out. For example py =
 * "print(d['chunks']['under_replicated'])". Its last files are kept in c->dir/cli-last.*. */
int h_cairn_py(struct h_cluster *c, const char *py, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Meta with meta_opts and ncs chunk servers with cs_opts (the same for each) plus cs_extra[i]
 * (may be NULL, or hold NULLs), each on its own tmpfs of tmpfs_size when that is not NULL,
 * under a new folder PARENT/TAG-XXXXXX; waits (10 s) until every server registered. */
int h_cluster_start_opts(struct h_cluster *c, const char *parent, const char *tag, int ncs,
                         const char *meta_opts, const char *cs_opts, const char *const *cs_extra,
                         const char *tmpfs_size);

/* Forked tests that start their own clusters: the cluster record lives in memory shared with
 * the runner, and the runner is a child subreaper, so whatever a failed or timed-out test
 * left running is still known by PID and reaped by the runner.
 * h_cluster_shared (in main, before the runner starts) returns such a zeroed record, or NULL.
 * h_cluster_leftovers (the runner's teardown after each test case) does nothing when the test
 * stopped its cluster; otherwise it prints the end of the logs, stops everything (processes
 * by PID, FUSE and tmpfs mounts) and keeps only the logs of the test's folder. */
struct h_cluster *h_cluster_shared(void);
void h_cluster_leftovers(struct h_cluster *c);
/* SIGINT/SIGTERM in the runner run h_cluster_leftovers(c) before exiting 128+sig; a forked test
 * that gets them just exits (the runner cleans up after it). */
void h_cluster_stop_on_signal(struct h_cluster *c);
/* The same with any clean-up: SIGINT/SIGTERM in this process run stop(arg), then exit 128+sig;
 * in a process forked from it they just exit. The last call wins. */
void h_stop_on_signal(void (*stop)(void *), void *arg);

#endif
