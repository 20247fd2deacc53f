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
#include <time.h>
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

static void env_stop_on_signal(void *env)
{
    hfs_env_stop(env);
}

void hfs_stop_on_signal(struct hfs_env *env)
{
    h_stop_on_signal(env_stop_on_signal, env);
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

/* ---- pattern files ----------------------------------------------------------------------------
 */

int hfs_write_pattern_file(const char *path, uint64_t seed, off_t size, int do_fsync)
{
    const size_t bs = 1u << 20;
    uint8_t *buf = malloc(bs);
    if (!buf) return -ENOMEM;
    int rc = 0, fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(buf);
        return -errno;
    }
    for (off_t off = 0; off < size && !rc; off += (off_t)bs) {
        size_t n = size - off < (off_t)bs ? (size_t)(size - off) : bs;
        hfs_fill(buf, n, seed, (uint64_t)off);
        rc = hfs_pwrite_all(fd, buf, n, off);
    }
    if (!rc && do_fsync && fsync(fd) != 0) rc = -errno;
    if (close(fd) != 0 && !rc) rc = -errno;
    free(buf);
    return rc;
}

int hfs_verify_pattern_file(const char *path, uint64_t seed, off_t size, char *why, size_t wlen)
{
    const size_t bs = 1u << 20;
    uint8_t *buf = malloc(bs);
    if (!buf) return -ENOMEM;
    int rc = 0, fd = open(path, O_RDONLY);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, wlen, "open %s: %s", path, strerror(errno));
        free(buf);
        return rc;
    }
    off_t off = 0;
    for (;;) {
        size_t got = 0;
        while (got < bs) {
            ssize_t n = read(fd, buf + got, bs - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                rc = -errno;
                snprintf(why, wlen, "%s: read at %lld: %s", path, (long long)(off + (off_t)got),
                         strerror(errno));
                goto out;
            }
            if (n == 0) break;
            got += (size_t)n;
        }
        if (got == 0) break;
        if (off + (off_t)got > size) {
            rc = 1;
            snprintf(why, wlen, "%s: data past the size %lld", path, (long long)size);
            goto out;
        }
        ssize_t bad = hfs_check(buf, got, seed, (uint64_t)off);
        if (bad >= 0) {
            uint8_t want;
            hfs_fill(&want, 1, seed, (uint64_t)(off + bad));
            rc = 1;
            snprintf(why, wlen, "%s: byte %lld is 0x%02x, expected 0x%02x", path,
                     (long long)(off + bad), buf[bad], want);
            goto out;
        }
        off += (off_t)got;
    }
    if (off != size) {
        rc = 1;
        snprintf(why, wlen, "%s: %lld bytes, expected %lld", path, (long long)off, (long long)size);
    }
out:
    close(fd);
    free(buf);
    return rc;
}

/* ---- what the cairn CLI says about replication ------------------------------------------------
 */

/* The JSON keys live here and nowhere else. Each program prints one record per line. */
static const char PY_COMMON[] =
    "def g(o, *ks):\n"
    "    for k in ks:\n"
    "        if isinstance(o, dict) and k in o and o[k] is not None: return o[k]\n"
    "    return 0\n"
    "def hexid(v):\n"
    "    return ('%016x' % v) if isinstance(v, int) else str(v)\n"
    "def word(v):\n"
    "    v = str(v) if v is not None else ''\n"
    "    return v.replace(' ', '_') if v else '-'\n";

static const char PY_FILEINFO[] =
    "fs = d['files'] if isinstance(d, dict) and 'files' in d else (d if isinstance(d, list) "
    "else [d])\n"
    "f = fs[0]\n"
    "if 'error' in f:\n"
    "    print('E', g(f, 'errno'), word(f['error'])); sys.exit(0)\n"
    "chs = f.get('chunks', [])\n"
    "print('F', g(f, 'copies', 'goal'), g(f, 'chunk_size'), g(f, 'size'), len(chs))\n"
    "for ch in chs:\n"
    "    cps = ch.get('copies', [])\n"
    "    print('K', g(ch, 'index'), hexid(g(ch, 'id')), g(ch, 'version'), g(ch, 'length'), "
    "len(cps))\n"
    "    for cp in cps:\n"
    "        print('P', hexid(g(cp, 'server', 'id')), word(g(cp, 'state')), word(g(cp, 'zone')),"
    " g(cp, 'version'), word(g(cp, 'addr')))\n";

static const char PY_HEALTH[] =
    "for s in d.get('servers', []):\n"
    "    print('S', hexid(g(s, 'id')), word(g(s, 'addr')), word(g(s, 'zone')), "
    "word(g(s, 'state')), g(s, 'capacity'), g(s, 'free'), g(s, 'chunks'))\n"
    "c = d.get('chunks', {}); r = d.get('repair', {})\n"
    "print('C', g(c, 'total'), g(c, 'full'), g(c, 'under_replicated', 'under'), "
    "g(c, 'missing'), g(c, 'over_replicated', 'over'), g(d, 'stale_copies') or g(c, 'stale'), "
    "g(d, 'bad_copies') or g(c, 'bad'))\n"
    "print('R', g(r, 'queue'), g(r, 'done'), g(r, 'bytes'), g(r, 'bad_repaired'), "
    "g(r, 'moves_done', 'moves'), int(bool(d.get('scan_complete', True))))\n";

static int state_of(const char *s)
{
    static const char *names[] = {"valid", "stale", "bad", "down", "pending", "draining"};
    for (int i = 0; i < HFS_UNKNOWN; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return HFS_UNKNOWN;
}

static const char *state_name(int st)
{
    static const char *names[] = {"valid", "stale", "bad", "down", "pending", "draining", "?"};
    return st >= 0 && st <= HFS_UNKNOWN ? names[st] : "?";
}

/* Run the CLI and a python program over its JSON; out (malloc'd, caller frees) gets what the
 * program printed. */
static int cli_lines(struct h_cluster *c, const char *py, char **out, char *why, size_t wlen,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int cli_lines(struct h_cluster *c, const char *py, char **out, char *why, size_t wlen,
                     const char *fmt, ...)
{
    char args[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    size_t cap = 1u << 20;
    char *prog = malloc(strlen(PY_COMMON) + strlen(py) + 2), *buf = malloc(cap);
    if (!prog || !buf) {
        free(prog);
        free(buf);
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    strcpy(prog, PY_COMMON);
    strcat(prog, py);
    int rc = h_cairn_py(c, prog, buf, cap, "%s", args);
    free(prog);
    if (rc) {
        snprintf(why, wlen, "%s", buf);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

int hfs_fileinfo(struct h_cluster *c, const char *path, struct hfs_fileinfo *fi, char *why,
                 size_t wlen)
{
    char *text = NULL;
    if (cli_lines(c, PY_FILEINFO, &text, why, wlen, "fileinfo --json --meta %s '%s'", c->meta_addr,
                  path))
        return -1;
    memset(fi, 0, sizeof(*fi));
    int rc = 0;
    struct hfs_chunk *ch = NULL;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
        unsigned long long a = 0, b = 0, x = 0, y = 0, z = 0;
        char s1[64], s2[64], zone[64], addr[80];
        if (l[0] == 'E') {
            snprintf(why, wlen, "cairn fileinfo %s: %s", path, l + 2);
            rc = -1;
        } else if (l[0] == 'F' && sscanf(l + 2, "%llu %llu %llu %llu", &a, &b, &x, &y) == 4) {
            fi->copies = (unsigned)a;
            fi->chunk_size = b;
            fi->size = x;
        } else if (l[0] == 'K' &&
                   sscanf(l + 2, "%llu %63s %llu %llu %llu", &a, s1, &x, &y, &z) == 5) {
            if (fi->n >= HFS_MAX_CHUNKS) {
                snprintf(why, wlen, "%s: more than %d chunks", path, HFS_MAX_CHUNKS);
                rc = -1;
                break;
            }
            ch = &fi->chunk[fi->n++];
            ch->index = a;
            ch->id = strtoull(s1, NULL, 16);
            ch->version = (uint32_t)x;
            ch->length = y;
        } else if (l[0] == 'P' && ch &&
                   sscanf(l + 2, "%63s %63s %63s %llu %79s", s1, s2, zone, &x, addr) == 5) {
            if (ch->ncopies >= HFS_MAX_COPIES) continue;
            struct hfs_copy *cp = &ch->copy[ch->ncopies++];
            cp->server = strtoull(s1, NULL, 16);
            cp->state = state_of(s2);
            cp->version = (uint32_t)x;
            snprintf(cp->zone, sizeof(cp->zone), "%.31s", strcmp(zone, "-") ? zone : "");
            snprintf(cp->addr, sizeof(cp->addr), "%.63s", addr);
            if (cp->state == HFS_VALID) ch->nvalid++;
        } else {
            snprintf(why, wlen, "cairn fileinfo %s: cannot read the line '%.200s'", path, l);
            rc = -1;
        }
    }
    free(text);
    return rc;
}

const struct hfs_copy *hfs_copy_on(const struct hfs_chunk *ch, uint64_t server)
{
    for (int i = 0; i < ch->ncopies; i++)
        if (ch->copy[i].server == server) return &ch->copy[i];
    return NULL;
}

int hfs_count_state(const struct hfs_chunk *ch, int st)
{
    int n = 0;
    for (int i = 0; i < ch->ncopies; i++)
        n += ch->copy[i].state == st;
    return n;
}

/* " 3:v7[a7c1:valid@a,1b2e:stale]" (server ids by their top 16 bits) appended at out+*o. */
static void chunk_str(const struct hfs_chunk *ch, char *out, size_t len, size_t *o)
{
    if (*o < len)
        *o += (size_t)snprintf(out + *o, len - *o, " %llu:v%u[", (unsigned long long)ch->index,
                               ch->version);
    for (int k = 0; k < ch->ncopies && *o < len; k++)
        *o += (size_t)snprintf(out + *o, len - *o, "%s%04llx:%s%s%s", k ? "," : "",
                               (unsigned long long)(ch->copy[k].server >> 48),
                               state_name(ch->copy[k].state), ch->copy[k].zone[0] ? "@" : "",
                               ch->copy[k].zone);
    if (*o < len) *o += (size_t)snprintf(out + *o, len - *o, "]");
}

void hfs_fileinfo_str(const struct hfs_fileinfo *fi, char *out, size_t len)
{
    if (!len) return;
    size_t o = (size_t)snprintf(out, len, "copies %u, %d chunks:", fi->copies, fi->n);
    for (int i = 0; i < fi->n && o < len; i++)
        chunk_str(&fi->chunk[i], out, len, &o);
}

int hfs_health(struct h_cluster *c, struct hfs_health *h, char *why, size_t wlen)
{
    char *text = NULL;
    if (cli_lines(c, PY_HEALTH, &text, why, wlen, "health --json --meta %s", c->meta_addr))
        return -1;
    memset(h, 0, sizeof(*h));
    int rc = 0, have_c = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
        unsigned long long v[7] = {0};
        if (l[0] == 'S') {
            if (h->nservers >= (int)(sizeof(h->s) / sizeof(h->s[0]))) continue;
            struct hfs_server *s = &h->s[h->nservers];
            char id[64];
            if (sscanf(l + 2, "%63s %63s %31s %15s %llu %llu %llu", id, s->addr, s->zone, s->state,
                       &v[0], &v[1], &v[2]) != 7) {
                rc = -1;
                snprintf(why, wlen, "cairn health: cannot read the line '%.200s'", l);
                break;
            }
            if (strcmp(s->zone, "-") == 0) s->zone[0] = '\0';
            s->id = strtoull(id, NULL, 16);
            s->capacity = v[0];
            s->free = v[1];
            s->chunks = v[2];
            h->nservers++;
        } else if (l[0] == 'C' && sscanf(l + 2, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                                         &v[2], &v[3], &v[4], &v[5], &v[6]) == 7) {
            h->total = v[0];
            h->full = v[1];
            h->under = v[2];
            h->missing = v[3];
            h->over = v[4];
            h->stale = v[5];
            h->bad = v[6];
            have_c = 1;
        } else if (l[0] == 'R' && sscanf(l + 2, "%llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                                         &v[2], &v[3], &v[4], &v[5]) == 6) {
            h->queue = v[0];
            h->done = v[1];
            h->bytes = v[2];
            h->bad_repaired = v[3];
            h->moves = v[4];
            h->scan_complete = (int)v[5];
        } else {
            rc = -1;
            snprintf(why, wlen, "cairn health: cannot read the line '%.200s'", l);
        }
    }
    if (!rc && !have_c) {
        rc = -1;
        snprintf(why, wlen, "cairn health: no chunk counts");
    }
    free(text);
    return rc;
}

const struct hfs_server *hfs_server(const struct hfs_health *h, uint64_t id)
{
    for (int i = 0; i < h->nservers; i++)
        if (h->s[i].id == id) return &h->s[i];
    return NULL;
}

double hfs_used_pct(const struct hfs_server *s)
{
    if (!s->capacity) return 0;
    uint64_t used = s->capacity > s->free ? s->capacity - s->free : 0;
    return 100.0 * (double)used / (double)s->capacity;
}

uint64_t hfs_now_ms(void)
{
    return net_now_ms();
}

void hfs_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int hfs_chunks_ok(struct h_cluster *c, const char *const *paths, int npaths, unsigned goal,
                  uint64_t avoid, unsigned forbid, char *why, size_t wlen)
{
    struct hfs_fileinfo *fi = malloc(sizeof(*fi));
    if (!fi) {
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    int ok = 1;
    for (int p = 0; p < npaths && ok == 1; p++) {
        if (hfs_fileinfo(c, paths[p], fi, why, wlen)) {
            ok = -1;
            break;
        }
        unsigned want = goal ? goal : fi->copies;
        uint64_t need = fi->chunk_size ? (fi->size + fi->chunk_size - 1) / fi->chunk_size : 0;
        if ((uint64_t)fi->n < need) {
            snprintf(why, wlen, "%s: %d chunks listed for %llu bytes (chunk size %llu)", paths[p],
                     fi->n, (unsigned long long)fi->size, (unsigned long long)fi->chunk_size);
            ok = 0;
            break;
        }
        for (int i = 0; i < fi->n && ok == 1; i++) {
            const struct hfs_chunk *ch = &fi->chunk[i];
            const char *what = NULL;
            char detail[96] = "";
            if ((unsigned)ch->nvalid != want) {
                what = "valid copies";
                snprintf(detail, sizeof(detail), "%d valid, want %u", ch->nvalid, want);
            }
            for (int k = 0; k < ch->ncopies && !what; k++) {
                const struct hfs_copy *cp = &ch->copy[k];
                if (avoid && cp->server == avoid && cp->state == HFS_VALID) {
                    what = "a valid copy on the avoided server";
                    snprintf(detail, sizeof(detail), "%016llx", (unsigned long long)avoid);
                } else if (forbid & (1u << cp->state)) {
                    what = "a copy in a forbidden state";
                    snprintf(detail, sizeof(detail), "%s on %016llx", state_name(cp->state),
                             (unsigned long long)cp->server);
                }
            }
            if (what) {
                char list[600] = "";
                size_t o = 0;
                chunk_str(ch, list, sizeof(list), &o);
                snprintf(why, wlen, "%s chunk %llu: %s (%s): %s", paths[p],
                         (unsigned long long)ch->index, what, detail, list);
                ok = 0;
            }
        }
    }
    free(fi);
    return ok;
}

int hfs_wait_chunks(struct h_cluster *c, const char *const *paths, int npaths, unsigned goal,
                    uint64_t avoid, unsigned forbid, int timeout_ms, char *why, size_t wlen)
{
    uint64_t end = hfs_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (hfs_chunks_ok(c, paths, npaths, goal, avoid, forbid, why, wlen) == 1) return 0;
        if (hfs_now_ms() >= end) return -ETIMEDOUT;
        hfs_sleep_ms(500);
    }
}

long long hfs_mount_stat(const char *path, const char *name)
{
    char buf[8192];
    ssize_t n = getxattr(path, "user.cairn.stats", buf, sizeof(buf) - 1);
    if (n < 0) return -1;
    buf[n] = '\0';
    size_t nl = strlen(name);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, nl) && l[nl] == ' ') return atoll(l + nl + 1);
    return -1;
}

long long hfs_wait_stat(const char *path, const char *name, long long want)
{
    long long v = -1;
    for (int i = 0; i < 200; i++) {
        v = hfs_mount_stat(path, name);
        if (v >= want) break;
        usleep(50 * 1000);
    }
    return v;
}
