/* harness_fs.h - shared helpers of the mount-level integration tests (test_mount_*.c): one
 * cluster and its mounts per test binary, deterministic data patterns that can be checked
 * without a reference copy, whole-buffer I/O, and a tree comparison (names, types, sizes,
 * modes, content, symlink targets, xattrs).
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
