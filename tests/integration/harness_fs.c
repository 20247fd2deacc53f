/* harness_fs.c - shared helpers of the mount-level integration tests (see harness_fs.h): the
 * per-binary cluster and mounts, data patterns, whole-buffer I/O and the tree comparison. */
#include "harness_fs.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "net.h"

/* ---- the per-binary environment ------------------------------------------------------------ */

void hfs_env_start(struct hfs_env *env, const char *tag, int ncs, int nmounts, const char *mopts)
{
    memset(env, 0, sizeof(*env));
    const char *ldir = getenv("CAIRN_ITEST_DIR");
    if (ldir && *ldir) {
        env->local = 1;
        char tmpl[200];
        snprintf(tmpl, sizeof(tmpl), "%.150s/cairn-local-%.20s-XXXXXX", ldir, tag);
        if (!mkdtemp(tmpl)) {
            snprintf(env->why, sizeof(env->why), "mkdtemp %s: %s", tmpl, strerror(errno));
            return;
        }
        chmod(tmpl, 0755);
        memcpy(env->c.dir, tmpl, sizeof(tmpl));
        for (int k = 0; k < nmounts && k < 4; k++) {
            snprintf(env->root[k], sizeof(env->root[k]), "%s/mnt%d", tmpl, k);
            mkdir(env->root[k], 0755);
        }
        /* every "mount" of a local stand-in shows the same files */
        for (int k = 1; k < nmounts && k < 4; k++) {
            rmdir(env->root[k]);
            if (symlink("mnt0", env->root[k]) != 0) {
                snprintf(env->why, sizeof(env->why), "symlink: %s", strerror(errno));
                return;
            }
        }
        env->nmnt = nmounts;
        env->ready = 1;
        return;
    }
    int rc = h_cluster_start(&env->c, tag, ncs);
    if (rc) {
        snprintf(env->why, sizeof(env->why), "h_cluster_start(%d chunk servers): %s (logs in %s)",
                 ncs, strerror(-rc), env->c.dir);
        return;
    }
    for (int k = 0; k < nmounts; k++) {
        rc = h_mount_opts(&env->c, mopts);
        if (rc < 0) {
            snprintf(env->why, sizeof(env->why), "mount %d: %s (logs in %s)", k, strerror(-rc),
                     env->c.dir);
            return;
        }
        size_t ml = strnlen(env->c.mnt[rc], sizeof(env->root[k]) - 1);
        memcpy(env->root[k], env->c.mnt[rc], ml);
        env->root[k][ml] = '\0';
        env->nmnt = k + 1;
    }
    env->ready = 1;
}

static struct hfs_env *sig_env;
static pid_t sig_main_pid;

static void on_stop_signal(int sig)
{
    if (getpid() == sig_main_pid && sig_env) hfs_env_stop(sig_env);
    _exit(128 + sig);
}

void hfs_stop_on_signal(struct hfs_env *env)
{
    sig_env = env;
    sig_main_pid = getpid();
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
}

void hfs_env_stop(struct hfs_env *env)
{
    if (env->local) {
        if (!getenv("KEEP") && env->c.dir[0]) h_sh(120, "rm -rf '%s'", env->c.dir);
        return;
    }
    h_cluster_stop(&env->c);
}

int hfs_subdir(struct hfs_env *env, int k, const char *name, char *out, size_t len)
{
    if (k < 0 || k >= env->nmnt) return -EINVAL;
    snprintf(out, len, "%s/%s", env->root[k], name);
    struct stat st;
    if (lstat(out, &st) == 0 && h_sh(120, "rm -rf '%s'", out) != 0) return -EIO;
    return mkdir(out, 0755) == 0 ? 0 : -errno;
}

/* ---- data ------------------------------------------------------------------------------------ */

uint64_t hfs_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void hfs_rng_seed(struct hfs_rng *r, uint64_t seed)
{
    r->s = hfs_mix64(seed) | 1;
}

uint64_t hfs_rng_next(struct hfs_rng *r)
{
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    return hfs_mix64(x);
}

uint64_t hfs_rng_below(struct hfs_rng *r, uint64_t n)
{
    return n ? hfs_rng_next(r) % n : 0;
}

static inline uint64_t pat_word(uint64_t seed, uint64_t widx)
{
    return hfs_mix64(seed * 0x100000001b3ull ^ widx);
}

void hfs_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
    uint8_t *p = buf;
    size_t i = 0;
    while (i < len && ((off + i) & 7)) {
        uint64_t o = off + i;
        p[i++] = (uint8_t)(pat_word(seed, o >> 3) >> (8 * (o & 7)));
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w = pat_word(seed, (off + i) >> 3);
        memcpy(p + i, &w, 8); /* little-endian: byte k of the word is at offset 8*widx + k */
    }
    while (i < len) {
        uint64_t o = off + i;
        p[i++] = (uint8_t)(pat_word(seed, o >> 3) >> (8 * (o & 7)));
    }
}

ssize_t hfs_check(const void *buf, size_t len, uint64_t seed, uint64_t off)
{
    uint8_t tmp[4096];
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i += sizeof(tmp)) {
        size_t n = len - i < sizeof(tmp) ? len - i : sizeof(tmp);
        hfs_fill(tmp, n, seed, off + i);
        if (memcmp(tmp, p + i, n) != 0)
            for (size_t j = 0; j < n; j++)
                if (tmp[j] != p[i + j]) return (ssize_t)(i + j);
    }
    return -1;
}

ssize_t hfs_first_nonzero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i]) return (ssize_t)i;
    return -1;
}

int hfs_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        done += (size_t)n;
    }
    return 0;
}

int hfs_pread_all(int fd, void *buf, size_t len, off_t off, size_t *got)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (got) *got = done;
            return -errno;
        }
        if (n == 0) break;
        done += (size_t)n;
    }
    if (got) *got = done;
    return 0;
}

int hfs_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return -errno;
    int rc = hfs_pwrite_all(fd, data, len, 0);
    if (close(fd) != 0 && !rc) rc = -errno;
    return rc;
}

int hfs_read_file(const char *path, void *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -errno;
    int rc = hfs_pread_all(fd, buf, cap, 0, len);
    close(fd);
    return rc;
}

/* ---- trees ----------------------------------------------------------------------------------- */

struct cmp {
    unsigned flags;
    char *why;
    size_t wlen;
};

static int differ(struct cmp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int differ(struct cmp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->wlen, fmt, ap);
    va_end(ap);
    return 1;
}

static int cmp_content(struct cmp *c, const char *a, const char *b, off_t size)
{
    const size_t bs = 1u << 20;
    int rc = 0;
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    uint8_t *ba = malloc(bs), *bb = malloc(bs);
    if (fa < 0 || fb < 0 || !ba || !bb) {
        rc = differ(c, "%s: cannot open or allocate: %s", fa < 0 ? a : b, strerror(errno));
        goto out;
    }
    for (off_t off = 0;; off += (off_t)bs) {
        size_t ga = 0, gb = 0;
        int ra = hfs_pread_all(fa, ba, bs, off, &ga), rb = hfs_pread_all(fb, bb, bs, off, &gb);
        if (ra || rb) {
            rc = differ(c, "%s: read at %lld: %s", ra ? a : b, (long long)off,
                        strerror(ra ? -ra : -rb));
            goto out;
        }
        if (ga != gb) {
            rc = differ(c, "%s: %zu bytes at %lld, %s: %zu (size %lld)", a, ga, (long long)off, b,
                        gb, (long long)size);
            goto out;
        }
        if (memcmp(ba, bb, ga) != 0) {
            size_t i = 0;
            while (ba[i] == bb[i])
                i++;
            rc = differ(c, "%s and %s differ at byte %lld (0x%02x vs 0x%02x)", a, b,
                        (long long)(off + (off_t)i), ba[i], bb[i]);
            goto out;
        }
        if (ga < bs) break;
    }
out:
    if (fa >= 0) close(fa);
    if (fb >= 0) close(fb);
    free(ba);
    free(bb);
    return rc;
}

/* The user.* names of path, sorted, as one NUL-separated list of *len bytes (caller frees). */
static char *user_xattrs(const char *path, size_t *len)
{
    ssize_t sz = llistxattr(path, NULL, 0);
    if (sz < 0) sz = 0;
    char *raw = malloc((size_t)sz + 1), *out = malloc((size_t)sz + 1);
    if (!raw || !out) goto fail;
    if (sz > 0) sz = llistxattr(path, raw, (size_t)sz);
    if (sz < 0) sz = 0;
    /* selection sort of the user.* names: lists are short */
    size_t olen = 0;
    const char *last = NULL;
    for (;;) {
        const char *best = NULL;
        for (ssize_t i = 0; i < sz; i += (ssize_t)strlen(raw + i) + 1) {
            const char *nm = raw + i;
            if (strncmp(nm, "user.", 5) != 0) continue;
            if (last && strcmp(nm, last) <= 0) continue;
            if (!best || strcmp(nm, best) < 0) best = nm;
        }
        if (!best) break;
        size_t l = strlen(best) + 1;
        memcpy(out + olen, best, l);
        olen += l;
        last = best;
    }
    free(raw);
    *len = olen;
    return out;
fail:
    free(raw);
    free(out);
    *len = 0;
    return NULL;
}

static int cmp_xattrs(struct cmp *c, const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *na = user_xattrs(a, &la), *nb = user_xattrs(b, &lb);
    int rc = 0;
    if (!na || !nb) {
        rc = differ(c, "out of memory");
        goto out;
    }
    if (la != lb || memcmp(na, nb, la) != 0) {
        rc = differ(c, "%s and %s have different user xattr names (%zu vs %zu bytes of names)", a,
                    b, la, lb);
        goto out;
    }
    static char va[65536], vb[65536];
    for (size_t i = 0; i < la; i += strlen(na + i) + 1) {
        ssize_t sa = lgetxattr(a, na + i, va, sizeof(va));
        ssize_t sb = lgetxattr(b, na + i, vb, sizeof(vb));
        if (sa != sb || (sa > 0 && memcmp(va, vb, (size_t)sa) != 0)) {
            rc = differ(c, "xattr %s differs: %s (%zd bytes) vs %s (%zd bytes)", na + i, a, sa, b,
                        sb);
            goto out;
        }
    }
out:
    free(na);
    free(nb);
    return rc;
}

static int no_dots(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int cmp_dir(struct cmp *c, const char *a, const char *b, int depth);

static int cmp_node(struct cmp *c, const char *a, const char *b, int depth)
{
    struct stat sa, sb;
    if (lstat(a, &sa) != 0) return -errno;
    if (lstat(b, &sb) != 0) return -errno;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
        return differ(c, "%s is type 0%o, %s is type 0%o", a, sa.st_mode & S_IFMT, b,
                      sb.st_mode & S_IFMT);
    if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
        return differ(c, "%s has mode 0%o, %s has 0%o", a, sa.st_mode & 07777, b,
                      sb.st_mode & 07777);
    if ((c->flags & HFS_CMP_OWNER) && (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid))
        return differ(c, "%s is owned by %u:%u, %s by %u:%u", a, sa.st_uid, sa.st_gid, b, sb.st_uid,
                      sb.st_gid);
    if ((c->flags & HFS_CMP_NLINK) && !S_ISDIR(sa.st_mode) && sa.st_nlink != sb.st_nlink)
        return differ(c, "%s has %lu links, %s has %lu", a, (unsigned long)sa.st_nlink, b,
                      (unsigned long)sb.st_nlink);
    if ((c->flags & HFS_CMP_MTIME) && !S_ISDIR(sa.st_mode) &&
        sa.st_mtim.tv_sec != sb.st_mtim.tv_sec)
        return differ(c, "%s has mtime %lld, %s has %lld", a, (long long)sa.st_mtim.tv_sec, b,
                      (long long)sb.st_mtim.tv_sec);
    if ((S_ISREG(sa.st_mode) || S_ISLNK(sa.st_mode)) && sa.st_size != sb.st_size)
        return differ(c, "%s has size %lld, %s has %lld", a, (long long)sa.st_size, b,
                      (long long)sb.st_size);
    if (c->flags & HFS_CMP_XATTR) {
        int rc = cmp_xattrs(c, a, b);
        if (rc) return rc;
    }
    if (S_ISREG(sa.st_mode)) return cmp_content(c, a, b, sa.st_size);
    if (S_ISLNK(sa.st_mode)) {
        char ta[4097], tb[4097];
        ssize_t la = readlink(a, ta, sizeof(ta) - 1), lb = readlink(b, tb, sizeof(tb) - 1);
        if (la < 0 || lb < 0) return -errno;
        if (la != lb || memcmp(ta, tb, (size_t)la) != 0)
            return differ(c, "symlink %s -> %.*s, %s -> %.*s", a, (int)la, ta, b, (int)lb, tb);
        return 0;
    }
    if (S_ISDIR(sa.st_mode)) return cmp_dir(c, a, b, depth + 1);
    if ((S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) && sa.st_rdev != sb.st_rdev)
        return differ(c, "%s and %s: different device numbers", a, b);
    return 0;
}

static int cmp_dir(struct cmp *c, const char *a, const char *b, int depth)
{
    if (depth > 64) return differ(c, "%s: tree deeper than 64", a);
    struct dirent **la = NULL, **lb = NULL;
    int na = scandir(a, &la, no_dots, alphasort);
    if (na < 0) return -errno;
    int nb = scandir(b, &lb, no_dots, alphasort);
    if (nb < 0) {
        int e = -errno;
        for (int i = 0; i < na; i++)
            free(la[i]);
        free(la);
        return e;
    }
    int rc = 0;
    for (int i = 0; i < na || i < nb; i++) {
        if (i >= na || i >= nb || strcmp(la[i]->d_name, lb[i]->d_name) != 0) {
            rc = differ(c, "%s and %s list different names (%d vs %d entries; first: %s vs %s)", a,
                        b, na, nb, i < na ? la[i]->d_name : "(none)",
                        i < nb ? lb[i]->d_name : "(none)");
            break;
        }
        char pa[4096], pb[4096];
        snprintf(pa, sizeof(pa), "%s/%s", a, la[i]->d_name);
        snprintf(pb, sizeof(pb), "%s/%s", b, lb[i]->d_name);
        rc = cmp_node(c, pa, pb, depth);
        if (rc) break;
    }
    for (int i = 0; i < na; i++)
        free(la[i]);
    for (int i = 0; i < nb; i++)
        free(lb[i]);
    free(la);
    free(lb);
    return rc;
}

int hfs_tree_compare(const char *a, const char *b, unsigned flags, char *why, size_t wlen)
{
    struct cmp c = {.flags = flags, .why = why, .wlen = wlen};
    if (wlen) why[0] = '\0';
    int rc = cmp_dir(&c, a, b, 0);
    if (rc < 0 && wlen && !why[0]) snprintf(why, wlen, "walking %s / %s: %s", a, b, strerror(-rc));
    return rc;
}
