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
    pid_t mount_pid[4];
    char mnt[4][300];
};

/* Path of a built program ("cairn-meta") under $BUILD, in a static buffer per call site. */
const char *h_prog(const char *name, char *buf, size_t len);
/* A new empty folder /tmp/cairn-test-TAG-XXXXXX. Returns 0 or -errno. */
int h_mkdtemp(const char *tag, char *out, size_t len);
/* A TCP port free on 127.0.0.1 right now. */
uint16_t h_free_port(void);
/* fork+exec argv with stdout/stderr appended to logpath; returns the pid or -errno. */
pid_t h_spawn(char *const argv[], const char *logpath);
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

#endif
