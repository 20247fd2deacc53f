/* harness_fs.h - shared helpers of the mount-level integration tests (test_mount_*.c,
 * test_replication_*.c): one cluster and its mounts per test binary, deterministic data
 * patterns that can be checked without a reference copy, whole-buffer I/O, a tree comparison
 * (names, types, sizes, modes, content, symlink targets, xattrs), pattern files, and what the
 * cairn CLI reports about copies (fileinfo, health) as C structures.
 *
 * Every function returns 0 or a negative errno unless it says otherwise; none of them calls
 * Check (only the HFS_OK/HFS_ERR macros at the end do), so they can be used from main(). */
#ifndef CAIRN_HARNESS_FS_H
#define CAIRN_HARNESS_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

/* ---- the per-binary environment ------------------------------------------------------------ */

/* What a test binary runs against: the mounts of a real cluster, or, when $CAIRN_ITEST_DIR is
 * set, plain local folders under that directory (to check the tests themselves against a local
 * file system; cluster-only tests skip themselves then). */
struct hfs_env {
    struct h_cluster c;
    int local;      /* 1: $CAIRN_ITEST_DIR mode, no cluster */
    int ready;      /* setup succeeded */
    char why[1024]; /* why setup failed */
    int nmnt;
    char root[4][512]; /* root folder of each mount (or its local stand-in) */
};

/* Start a cluster of ncs chunk servers and nmounts mounts (extra FUSE options in mopts, e.g.
 * "allow_other", or NULL). On failure env->ready stays 0 and env->why says why; the caller
 * still runs its suite so the failure shows up in every test. */
void hfs_env_start(struct hfs_env *env, const char *tag, int ncs, int nmounts, const char *mopts);
/* Unmount, stop every process, clean up (kept when $KEEP is set). */
void hfs_env_stop(struct hfs_env *env);
/* SIGINT/SIGTERM in this (main) process stop env's cluster before exiting 128+sig; a forked
 * test child that gets them just exits. */
void hfs_stop_on_signal(struct hfs_env *env);
/* A fresh empty folder NAME under mount k's root (removing an old one); path into out. */
int hfs_subdir(struct hfs_env *env, int k, const char *name, char *out, size_t len);

/* ---- data ------------------------------------------------------------------------------------ */

uint64_t hfs_mix64(uint64_t x);
/* Deterministic xorshift PRNG. */
struct hfs_rng {
    uint64_t s;
};
void hfs_rng_seed(struct hfs_rng *r, uint64_t seed);
uint64_t hfs_rng_next(struct hfs_rng *r);
/* Uniform in [0, n), n > 0. */
uint64_t hfs_rng_below(struct hfs_rng *r, uint64_t n);

/* The pattern byte at file offset off for seed is a function of (seed, off) only, so any
 * range of a file written with it can be checked without keeping a copy. */
void hfs_fill(void *buf, size_t len, uint64_t seed, uint64_t off);
/* Index of the first byte of buf that differs from the pattern, or -1 if all match. */
ssize_t hfs_check(const void *buf, size_t len, uint64_t seed, uint64_t off);
/* Index of the first non-zero byte, or -1. */
ssize_t hfs_first_nonzero(const void *buf, size_t len);

/* pwrite/pread the whole length (looping over short counts). pread stops at EOF; *got (may be
 * NULL) gets the bytes read. */
int hfs_pwrite_all(int fd, const void *buf, size_t len, off_t off);
int hfs_pread_all(int fd, void *buf, size_t len, off_t off, size_t *got);
/* Write/compare whole small files. */
int hfs_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* Reads at most cap bytes; *len gets the size read. */
int hfs_read_file(const char *path, void *buf, size_t cap, size_t *len);

/* ---- trees ----------------------------------------------------------------------------------- */

#define HFS_CMP_MTIME 1u /* also compare mtimes of files and symlinks (seconds) */
#define HFS_CMP_OWNER 2u /* also compare uid and gid */
#define HFS_CMP_NLINK 4u /* also compare link counts of non-directories */
#define HFS_CMP_XATTR 8u /* also compare user.* xattrs */

/* Compare the trees under a and b recursively: the same names, types, sizes, permission bits,
 * regular file content and symlink targets, plus what flags asks for. Returns 0 if equal, 1 on
 * the first difference (described in why), or -errno on an error walking a tree. */
int hfs_tree_compare(const char *a, const char *b, unsigned flags, char *why, size_t wlen);

/* ---- the mount's counters ------------------------------------------------------------------ */

/* One counter of the mount's user.cairn.stats read at path (any file or folder of the mount),
 * or -1 when absent. */
long long hfs_mount_stat(const char *path, const char *name);
/* Wait (at most 10 s) until that counter reaches at least want; returns the last value. */
long long hfs_wait_stat(const char *path, const char *name, long long want);

/* ---- pattern files ----------------------------------------------------------------------------
 */

/* Write size bytes of the pattern of seed to path (created/truncated), in 1 MiB writes; fsync
 * before close when do_fsync. */
int hfs_write_pattern_file(const char *path, uint64_t seed, off_t size, int do_fsync);
/* Read path sequentially in 1 MiB reads and compare with the pattern of seed and size: 0 when
 * equal, 1 when they differ (why says where), -errno when a read failed (why says where). */
int hfs_verify_pattern_file(const char *path, uint64_t seed, off_t size, char *why, size_t wlen);

/* ---- what the cairn CLI says about replication ------------------------------------------------
 * `cairn fileinfo --json` and `cairn health --json` are parsed by a small python3 program into
 * the structures below (the only place that knows the JSON keys). Server ids are the chunk
 * servers' ids (h_cs_id). Both return 0, or -1 with the reason in why. */

#define HFS_MAX_COPIES 16
#define HFS_MAX_CHUNKS 1024

/* enum copy_state of proto.h, as the CLI spells them */
enum hfs_copy_state {
    HFS_VALID,
    HFS_STALE,
    HFS_BAD,
    HFS_DOWN,
    HFS_PENDING,
    HFS_DRAINING,
    HFS_UNKNOWN
};

struct hfs_copy {
    uint64_t server;
    int state; /* enum hfs_copy_state */
    uint32_t version;
    char zone[32];
    char addr[64];
};

struct hfs_chunk {
    uint64_t index, id, length;
    uint32_t version;
    int ncopies;
    int nvalid; /* copies in state valid */
    struct hfs_copy copy[HFS_MAX_COPIES];
};

struct hfs_fileinfo {
    unsigned copies; /* the file's goal */
    uint64_t chunk_size, size;
    int n;
    struct hfs_chunk chunk[HFS_MAX_CHUNKS];
};

/* The chunks of one file (fi is big: allocate it). */
int hfs_fileinfo(struct h_cluster *c, const char *path, struct hfs_fileinfo *fi, char *why,
                 size_t wlen);
/* Copies of chunk ch on server (any state), or NULL. */
const struct hfs_copy *hfs_copy_on(const struct hfs_chunk *ch, uint64_t server);
/* Number of copies of ch in state st. */
int hfs_count_state(const struct hfs_chunk *ch, int st);
/* One line per chunk ("0:v3[a7c1..:valid,1b2e..:stale] ...") for failure messages. */
void hfs_fileinfo_str(const struct hfs_fileinfo *fi, char *out, size_t len);

struct hfs_server {
    uint64_t id;
    char addr[64], zone[32], state[16]; /* state: "up", "down", "draining" */
    uint64_t capacity, free, chunks;
};

struct hfs_health {
    int nservers;
    struct hfs_server s[H_MAX_CS * 2];
    uint64_t total, full, under, missing, over, stale, bad; /* chunk and copy counts */
    uint64_t queue, done, bytes, bad_repaired, moves;       /* repairs */
    int scan_complete;
};

int hfs_health(struct h_cluster *c, struct hfs_health *h, char *why, size_t wlen);
/* The entry of server id in h, or NULL. */
const struct hfs_server *hfs_server(const struct hfs_health *h, uint64_t id);
/* Used space of a server in percent of its capacity. */
double hfs_used_pct(const struct hfs_server *s);

/* Whether every chunk of every file in paths is where it should be: as many chunks as the
 * file's size needs, exactly goal valid copies of each (goal 0: the file's own copies), none of
 * them on server avoid (0: no such server), and no copy in a state of the forbid bit mask
 * (1u << HFS_STALE | ...). 1 yes, 0 no (why names the first chunk that is not), -1 the CLI
 * failed (why says how). */
int hfs_chunks_ok(struct h_cluster *c, const char *const *paths, int npaths, unsigned goal,
                  uint64_t avoid, unsigned forbid, char *why, size_t wlen);
/* Poll hfs_chunks_ok (every 500 ms) until it holds: 0, or -ETIMEDOUT after timeout_ms with the
 * last reason in why. */
int hfs_wait_chunks(struct h_cluster *c, const char *const *paths, int npaths, unsigned goal,
                    uint64_t avoid, unsigned forbid, int timeout_ms, char *why, size_t wlen);

/* Milliseconds of a monotonic clock. */
uint64_t hfs_now_ms(void);
void hfs_sleep_ms(int ms);

/* ---- assertions (for the Check tests only; need <check.h>, <errno.h>, <string.h>) --------- */

/* expr (a syscall returning -1 and errno on failure) must succeed. */
#define HFS_OK(expr)                                                                               \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long hfs_r_ = (long)(expr);                                                                \
        int hfs_e_ = errno;                                                                        \
        ck_assert_msg(hfs_r_ != -1, "%s failed: %s", #expr, strerror(hfs_e_));                     \
    } while (0)

/* expr must fail with errno e. */
#define HFS_ERR(expr, e)                                                                           \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long hfs_r_ = (long)(expr);                                                                \
        int hfs_e_ = errno;                                                                        \
        ck_assert_msg(hfs_r_ == -1 && hfs_e_ == (e), "%s: expected -1/%s, got %ld/%s", #expr,      \
                      strerrorname_np(e), hfs_r_,                                                  \
                      hfs_r_ == -1 ? strerrorname_np(hfs_e_) : "success");                         \
    } while (0)

#endif
