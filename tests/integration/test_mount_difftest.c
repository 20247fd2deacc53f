/* test_mount_difftest.c - differential test: one random sequence of file-system calls is driven
 * against the mount and against a local folder (ext4 under /tmp), every result (return value,
 * errno, bytes read, stat fields, listings) must be the same on both, and so must the final
 * trees (names, types, sizes, modes, content, link counts, xattrs), also as seen through a
 * second, fresh mount.
 *
 * The calls: create (O_EXCL/O_TRUNC), write at random offsets (some across the 64 MiB chunk
 * boundary, some O_APPEND), read, truncate, rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE),
 * link, unlink, mkdir, rmdir, symlink, readlink, setxattr/getxattr/removexattr, chmod, stat,
 * POSIX ACLs (access and default ACLs set, read back and removed as raw xattrs, so new nodes
 * inherit default ACLs and chmod moves masks on both sides),
 * readdir, and calls on descriptors kept open across the others (write, read, ftruncate,
 * fstat, close) so unlinked and renamed open files are covered. Paths are drawn from a small
 * set of names (d1..d3 for folders, f1..f4 for files) up to three levels deep, so most calls hit
 * existing entries and errors (ENOENT, ENOTDIR, EISDIR, EEXIST, ENOTEMPTY, EINVAL, ELOOP, ...) come
 * up often.
 *
 * `make check` runs 2000 operations with seed 1; DIFFTEST_OPS and DIFFTEST_SEED choose others
 * for soak runs. Every operation is logged to difftest.log in the cluster folder (kept with
 * KEEP=1) so a failure can be replayed. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define CHUNK (64L * MiB)
#define FUSE_SUPER_MAGIC 0x65735546
#define NSLOT 4
#define MAXDATA (1024 * 1024 + 64)

static struct hfs_env E;

enum op_kind {
    OP_CREATE,
    OP_WRITE,
    OP_READ,
    OP_TRUNCATE,
    OP_RENAME,
    OP_LINK,
    OP_UNLINK,
    OP_MKDIR,
    OP_RMDIR,
    OP_SYMLINK,
    OP_READLINK,
    OP_SETXATTR,
    OP_GETXATTR,
    OP_REMOVEXATTR,
    OP_LISTXATTR,
    OP_CHMOD,
    OP_STAT,
    OP_READDIR,
    OP_FD_OPEN,
    OP_FD_WRITE,
    OP_FD_READ,
    OP_FD_TRUNCATE,
    OP_FD_STAT,
    OP_FD_CLOSE,
    OP_FD_FSYNC,
    OP_SETACL,
    OP_GETACL,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "create",      "write",   "read",     "truncate", "rename",   "link",     "unlink",
    "mkdir",       "rmdir",   "symlink",  "readlink", "setxattr", "getxattr", "removexattr",
    "listxattr",   "chmod",   "stat",     "readdir",  "fd_open",  "fd_write", "fd_read",
    "fd_truncate", "fd_stat", "fd_close", "fd_fsync", "setacl",   "getacl",
};

/* relative weights of the kinds */
static const int op_weight[OP_COUNT] = {
    10, 14, 6, 5, 8, 4, 6, 5, 4, 2, 1, 4, 2, 2, 1, 3, 4, 2, 8, 6, 3, 2, 2, 2, 1, 3, 2,
};

struct op {
    enum op_kind kind;
    char a[64], b[64];
    off_t off;
    size_t len;
    int flags;
    unsigned mode;
    int slot;
    uint64_t seed;
    char xname[16];
};

struct res {
    long ret;
    int err;
    size_t dlen;
    char *data; /* MAXDATA bytes */
};

struct side {
    char root[600];
    int fd[NSLOT];
    char *wbuf; /* MAXDATA bytes, the data to write */
};

/* ---- generating operations --------------------------------------------------------------- */

/* A path of 1-3 components: folders from "d1".."d3" on the way, the last one from the file
 * names "f1".."f4" when want_dir is 0, else from the folder names (each with 15% of the
 * other kind, so calls meet the wrong type now and then). */
static void rand_path(struct hfs_rng *r, int want_dir, char *out, size_t len)
{
    static const char *const dn[] = {"d1", "d2", "d3"}, *const fn[] = {"f1", "f2", "f3", "f4"};
    uint64_t k = hfs_rng_below(r, 100);
    int depth = k < 45 ? 1 : k < 90 ? 2 : 3;
    size_t pos = 0;
    out[0] = '\0';
    for (int i = 0; i < depth; i++) {
        int last = i == depth - 1;
        int dir =
            last ? (hfs_rng_below(r, 100) < 15 ? !want_dir : want_dir) : hfs_rng_below(r, 100) >= 5;
        const char *c = dir ? dn[hfs_rng_below(r, 3)] : fn[hfs_rng_below(r, 4)];
        pos += (size_t)snprintf(out + pos, len - pos, "%s%s", i ? "/" : "", c);
    }
}

static off_t rand_off(struct hfs_rng *r)
{
    uint64_t k = hfs_rng_below(r, 100);
    if (k < 70) return (off_t)hfs_rng_below(r, 256 * 1024);
    if (k < 97) return (off_t)hfs_rng_below(r, 4 * MiB);
    return CHUNK - 128 * 1024 + (off_t)hfs_rng_below(r, 256 * 1024); /* across a chunk edge */
}

static size_t rand_len(struct hfs_rng *r)
{
    uint64_t k = hfs_rng_below(r, 100);
    if (k < 80) return 1 + hfs_rng_below(r, 64 * 1024);
    return 1 + hfs_rng_below(r, MiB);
}

static void gen_op(struct hfs_rng *r, uint64_t idx, struct op *o)
{
    static int total;
    if (!total)
        for (int i = 0; i < OP_COUNT; i++)
            total += op_weight[i];
    memset(o, 0, sizeof(*o));
    int w = (int)hfs_rng_below(r, (uint64_t)total);
    int k = 0;
    while (w >= op_weight[k])
        w -= op_weight[k++];
    o->kind = (enum op_kind)k;
    int dir = 0;
    if (k == OP_MKDIR || k == OP_RMDIR || k == OP_READDIR)
        dir = 1;
    else if (k == OP_RENAME || k == OP_STAT || k == OP_CHMOD || k == OP_SETXATTR ||
             k == OP_GETXATTR || k == OP_REMOVEXATTR || k == OP_LISTXATTR)
        dir = hfs_rng_below(r, 10) < 3;
    else if (k == OP_SETACL || k == OP_GETACL)
        dir = hfs_rng_below(r, 2) == 0;
    rand_path(r, dir, o->a, sizeof(o->a));
    rand_path(r, dir, o->b, sizeof(o->b));
    o->seed = idx + 1;
    o->slot = (int)hfs_rng_below(r, NSLOT);
    o->off = rand_off(r);
    o->len = rand_len(r);
    static const unsigned fmodes[] = {0644, 0600, 0755, 0640, 0444, 0700, 04755, 0711};
    o->mode = fmodes[hfs_rng_below(r, 8)];
    snprintf(o->xname, sizeof(o->xname), "user.%c", (char)('x' + hfs_rng_below(r, 3)));
    switch (o->kind) {
    case OP_CREATE:
        o->flags =
            (hfs_rng_below(r, 4) == 0 ? O_EXCL : 0) | (hfs_rng_below(r, 4) == 0 ? O_TRUNC : 0);
        break;
    case OP_WRITE:
    case OP_FD_OPEN:
        o->flags = hfs_rng_below(r, 6) == 0 ? O_APPEND : 0;
        if (o->kind == OP_FD_OPEN && hfs_rng_below(r, 3) == 0) o->flags |= O_CREAT;
        if (o->kind == OP_FD_OPEN && hfs_rng_below(r, 8) == 0) o->flags |= O_TRUNC;
        break;
    case OP_TRUNCATE:
    case OP_FD_TRUNCATE:
        o->off = hfs_rng_below(r, 4) == 0 ? 0 : rand_off(r);
        break;
    case OP_RENAME: {
        uint64_t f = hfs_rng_below(r, 10);
        o->flags = f < 7 ? 0 : f < 9 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
        break;
    }
    case OP_MKDIR: {
        static const unsigned dmodes[] = {0755, 0700, 0777, 0750};
        o->mode = dmodes[hfs_rng_below(r, 4)];
        break;
    }
    case OP_SETXATTR: {
        uint64_t f = hfs_rng_below(r, 4);
        o->flags = f < 2 ? 0 : f == 2 ? XATTR_CREATE : XATTR_REPLACE;
        o->len = hfs_rng_below(r, 101);
        break;
    }
    case OP_SETACL: /* ACL_* below */
    case OP_GETACL: /* 0 access, 1 default */
        o->flags = (int)hfs_rng_below(r, o->kind == OP_SETACL ? 6 : 2);
        /* mostly the top level, which exists more often (ACLs set there are inherited below) */
        if (hfs_rng_below(r, 3)) o->a[2] = '\0';
        break;
    case OP_SYMLINK:
        if (hfs_rng_below(r, 3) == 0) {
            memmove(o->b + 3, o->b, strlen(o->b) + 1); /* paths are short: room to spare */
            memcpy(o->b, "../", 3);
        }
        break;
    default:
        break;
    }
}

static int op_describe(const struct op *o, char *out, size_t len)
{
    return snprintf(out, len, "%s a=%s b=%s off=%lld len=%zu flags=0x%x mode=0%o slot=%d x=%s",
                    op_names[o->kind], o->a, o->b, (long long)o->off, o->len, o->flags, o->mode,
                    o->slot, o->xname);
}

/* ---- POSIX ACLs as raw xattrs -------------------------------------------------------------- */

#define ACL_ACCESS "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"
enum {
    ACL_SET_FULL,
    ACL_SET_MINIMAL,
    ACL_SET_DEFAULT,
    ACL_SET_DEFAULT_MINIMAL,
    ACL_RM_ACCESS,
    ACL_RM_DEFAULT
};

/* The xattr encoding of an ACL: named entries (a user and a group, with a mask) when named,
 * else just the owner, group and other; permissions drawn from bits. Returns the length. */
static size_t acl_build(uint8_t *b, int named, uint64_t bits)
{
    static const uint16_t tags_named[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20},
                          tags_min[] = {0x01, 0x04, 0x20};
    static const uint32_t ids_named[] = {~0u, 1001, ~0u, 2001, ~0u, ~0u};
    const uint16_t *tags = named ? tags_named : tags_min;
    size_t n = named ? 6 : 3;
    memset(b, 0, 4 + 8 * n);
    b[0] = 2;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = b + 4 + 8 * i;
        uint32_t id = named ? ids_named[i] : ~0u;
        p[0] = (uint8_t)tags[i];
        p[2] = (uint8_t)((bits >> (3 * i)) & 7);
        for (int k = 0; k < 4; k++)
            p[4 + k] = (uint8_t)(id >> (8 * k));
    }
    return 4 + 8 * n;
}

static long acl_op(const char *path, int what, uint64_t bits)
{
    uint8_t b[64];
    switch (what) {
    case ACL_SET_FULL:
    case ACL_SET_MINIMAL:
        return setxattr(path, ACL_ACCESS, b, acl_build(b, what == ACL_SET_FULL, bits), 0);
    case ACL_SET_DEFAULT:
    case ACL_SET_DEFAULT_MINIMAL:
        return setxattr(path, ACL_DEFAULT, b, acl_build(b, what == ACL_SET_DEFAULT, bits), 0);
    case ACL_RM_ACCESS:
        return removexattr(path, ACL_ACCESS);
    default:
        return removexattr(path, ACL_DEFAULT);
    }
}

/* ---- running an operation on one side ------------------------------------------------------- */

static void set_ret(struct res *r, long ret)
{
    r->ret = ret;
    r->err = ret < 0 ? errno : 0;
    if (ret < 0) r->ret = -1;
}

static void put_text(struct res *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_text(struct res *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->data + r->dlen, MAXDATA - r->dlen, fmt, ap);
    va_end(ap);
    if (n > 0) r->dlen += (size_t)n < MAXDATA - r->dlen ? (size_t)n : MAXDATA - r->dlen - 1;
}

static void put_stat(struct res *r, const struct stat *st)
{
    put_text(r, "mode=0%o nlink=%lu", st->st_mode, (unsigned long)st->st_nlink);
    if (!S_ISDIR(st->st_mode)) put_text(r, " size=%lld", (long long)st->st_size);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void do_readdir(const char *path, struct res *r)
{
    DIR *d = opendir(path);
    if (!d) {
        set_ret(r, -1);
        return;
    }
    char *names[512];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 512) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t l = strlen(e->d_name) + 4;
        names[n] = malloc(l);
        if (!names[n]) break;
        snprintf(names[n], l, "%s:%u", e->d_name, (unsigned)e->d_type);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
    for (int i = 0; i < n; i++) {
        put_text(r, "%s ", names[i]);
        free(names[i]);
    }
    r->ret = n;
}

static void run_op(struct side *s, const struct op *o, struct res *r)
{
    char a[800], b[800];
    snprintf(a, sizeof(a), "%s/%s", s->root, o->a);
    snprintf(b, sizeof(b), "%s/%s", s->root, o->b);
    r->ret = 0;
    r->err = 0;
    r->dlen = 0;
    int fd;
    struct stat st;
    errno = 0;
    switch (o->kind) {
    case OP_CREATE:
        fd = open(a, O_CREAT | O_WRONLY | o->flags, o->mode);
        set_ret(r, fd < 0 ? -1 : 0);
        if (fd >= 0 && close(fd) != 0) set_ret(r, -1);
        break;
    case OP_WRITE:
        fd = open(a, O_WRONLY | o->flags);
        if (fd < 0) {
            set_ret(r, -1);
            break;
        }
        hfs_fill(s->wbuf, o->len, o->seed, (uint64_t)o->off);
        set_ret(r, (o->flags & O_APPEND) ? write(fd, s->wbuf, o->len)
                                         : pwrite(fd, s->wbuf, o->len, o->off));
        if (close(fd) != 0 && r->ret >= 0) set_ret(r, -1);
        break;
    case OP_READ:
        fd = open(a, O_RDONLY);
        if (fd < 0) {
            set_ret(r, -1);
            break;
        }
        set_ret(r, pread(fd, r->data, o->len, o->off));
        if (r->ret > 0) r->dlen = (size_t)r->ret;
        close(fd);
        break;
    case OP_TRUNCATE:
        set_ret(r, truncate(a, o->off));
        break;
    case OP_RENAME:
        set_ret(r, syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, (unsigned)o->flags));
        break;
    case OP_LINK:
        set_ret(r, link(a, b));
        break;
    case OP_UNLINK:
        set_ret(r, unlink(a));
        break;
    case OP_MKDIR:
        set_ret(r, mkdir(a, o->mode));
        break;
    case OP_RMDIR:
        set_ret(r, rmdir(a));
        break;
    case OP_SYMLINK:
        set_ret(r, symlink(o->b, a)); /* relative target, the same text on both sides */
        break;
    case OP_READLINK:
        set_ret(r, readlink(a, r->data, 4096));
        if (r->ret > 0) r->dlen = (size_t)r->ret;
        break;
    case OP_SETXATTR:
        hfs_fill(s->wbuf, o->len, o->seed, 0);
        set_ret(r, setxattr(a, o->xname, s->wbuf, o->len, o->flags));
        break;
    case OP_GETXATTR:
        set_ret(r, getxattr(a, o->xname, r->data, 4096));
        if (r->ret > 0) r->dlen = (size_t)r->ret;
        break;
    case OP_REMOVEXATTR:
        set_ret(r, removexattr(a, o->xname));
        break;
    case OP_LISTXATTR: {
        char names[4096];
        ssize_t n = listxattr(a, names, sizeof(names));
        set_ret(r, n < 0 ? -1 : 0);
        /* user.* names only, sorted */
        for (char c = 'x'; n > 0 && c <= 'z'; c++)
            for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
                if (!strncmp(names + i, "user.", 5) && names[i + 5] == c && !names[i + 6])
                    put_text(r, "%s ", names + i);
        break;
    }
    case OP_CHMOD:
        set_ret(r, chmod(a, o->mode));
        break;
    case OP_STAT:
        set_ret(r, lstat(a, &st));
        if (r->ret == 0) put_stat(r, &st);
        break;
    case OP_READDIR:
        do_readdir(a, r);
        break;
    case OP_FD_OPEN:
        if (s->fd[o->slot] >= 0) close(s->fd[o->slot]);
        s->fd[o->slot] = open(a, O_RDWR | o->flags, 0644);
        set_ret(r, s->fd[o->slot] < 0 ? -1 : 0);
        break;
    case OP_FD_WRITE:
        if (s->fd[o->slot] < 0) {
            r->ret = -2; /* no descriptor in this slot */
            break;
        }
        hfs_fill(s->wbuf, o->len, o->seed, (uint64_t)o->off);
        set_ret(r, pwrite(s->fd[o->slot], s->wbuf, o->len, o->off));
        break;
    case OP_FD_READ:
        if (s->fd[o->slot] < 0) {
            r->ret = -2;
            break;
        }
        set_ret(r, pread(s->fd[o->slot], r->data, o->len, o->off));
        if (r->ret > 0) r->dlen = (size_t)r->ret;
        break;
    case OP_FD_TRUNCATE:
        if (s->fd[o->slot] < 0) {
            r->ret = -2;
            break;
        }
        set_ret(r, ftruncate(s->fd[o->slot], o->off));
        break;
    case OP_FD_STAT:
        if (s->fd[o->slot] < 0) {
            r->ret = -2;
            break;
        }
        set_ret(r, fstat(s->fd[o->slot], &st));
        if (r->ret == 0) put_stat(r, &st);
        break;
    case OP_FD_CLOSE:
        if (s->fd[o->slot] < 0) {
            r->ret = -2;
            break;
        }
        set_ret(r, close(s->fd[o->slot]));
        s->fd[o->slot] = -1;
        break;
    case OP_FD_FSYNC:
        if (s->fd[o->slot] < 0) {
            r->ret = -2;
            break;
        }
        set_ret(r, fsync(s->fd[o->slot]));
        break;
    case OP_SETACL:
        set_ret(r, acl_op(a, o->flags, hfs_mix64(o->seed)));
        break;
    case OP_GETACL:
        set_ret(r, getxattr(a, o->flags ? ACL_DEFAULT : ACL_ACCESS, r->data, 4096));
        if (r->ret > 0) r->dlen = (size_t)r->ret;
        break;
    case OP_COUNT:
        break;
    }
}

/* ---- the test ------------------------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    return strtoull(v, NULL, 0);
}

static void close_all(struct side *s)
{
    for (int i = 0; i < NSLOT; i++)
        if (s->fd[i] >= 0) {
            close(s->fd[i]);
            s->fd[i] = -1;
        }
}

START_TEST(difftest)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    uint64_t nops = env_u64("DIFFTEST_OPS", 2000), seed = env_u64("DIFFTEST_SEED", 1);
    static struct side M, L;
    char md[600];
    ck_assert_int_eq(hfs_subdir(&E, 0, "difftest", md, sizeof(md)), 0);
    struct statfs sf;
    ck_assert_int_eq(statfs(md, &sf), 0);
    ck_assert_msg(E.local || sf.f_type == FUSE_SUPER_MAGIC, "%s is not on a FUSE mount", md);
    snprintf(M.root, sizeof(M.root), "%s", md);
    snprintf(L.root, sizeof(L.root), "%s/difftest-local", E.c.dir);
    ck_assert_int_eq(h_sh(60, "rm -rf '%s' && mkdir -p '%s'", L.root, L.root), 0);
    umask(0);
    for (int i = 0; i < NSLOT; i++)
        M.fd[i] = L.fd[i] = -1;
    M.wbuf = malloc(MAXDATA);
    L.wbuf = malloc(MAXDATA);
    struct res rm = {.data = malloc(MAXDATA)}, rl = {.data = malloc(MAXDATA)};
    ck_assert(M.wbuf && L.wbuf && rm.data && rl.data);

    char logp[700];
    snprintf(logp, sizeof(logp), "%s/difftest.log", E.c.dir);
    FILE *log = fopen(logp, "w");
    ck_assert_ptr_nonnull(log);
    fprintf(log, "DIFFTEST_SEED=%llu DIFFTEST_OPS=%llu mount=%s local=%s\n",
            (unsigned long long)seed, (unsigned long long)nops, M.root, L.root);

    struct hfs_rng r;
    hfs_rng_seed(&r, seed);
    int counts[OP_COUNT] = {0}, fails = 0;
    char desc[300], why[2048];
    for (uint64_t i = 0; i < nops; i++) {
        struct op o;
        gen_op(&r, i, &o);
        op_describe(&o, desc, sizeof(desc));
        run_op(&L, &o, &rl);
        run_op(&M, &o, &rm);
        fprintf(log, "%llu %s -> local %ld/%s mount %ld/%s\n", (unsigned long long)i, desc, rl.ret,
                rl.err ? strerrorname_np(rl.err) : "0", rm.ret,
                rm.err ? strerrorname_np(rm.err) : "0");
        fflush(log);
        counts[o.kind]++;
        if (rl.ret == -1) fails++;
        ck_assert_msg(rl.ret == rm.ret && rl.err == rm.err,
                      "op %llu (DIFFTEST_SEED=%llu) %s: local %ld/%s, mount %ld/%s",
                      (unsigned long long)i, (unsigned long long)seed, desc, rl.ret,
                      rl.err ? strerrorname_np(rl.err) : "0", rm.ret,
                      rm.err ? strerrorname_np(rm.err) : "0");
        if (rl.dlen != rm.dlen || memcmp(rl.data, rm.data, rl.dlen) != 0) {
            size_t k = 0;
            while (k < rl.dlen && k < rm.dlen && rl.data[k] == rm.data[k])
                k++;
            ck_abort_msg("op %llu (DIFFTEST_SEED=%llu) %s: results differ at byte %zu (local %zu "
                         "bytes: %.60s; mount %zu bytes: %.60s)",
                         (unsigned long long)i, (unsigned long long)seed, desc, k, rl.dlen,
                         o.kind == OP_READ || o.kind == OP_FD_READ ? "(data)" : rl.data, rm.dlen,
                         o.kind == OP_READ || o.kind == OP_FD_READ ? "(data)" : rm.data);
        }
        if ((i + 1) % 500 == 0 || i + 1 == nops) {
            int rc =
                hfs_tree_compare(L.root, M.root, HFS_CMP_NLINK | HFS_CMP_XATTR, why, sizeof(why));
            ck_assert_msg(rc == 0, "after op %llu (DIFFTEST_SEED=%llu): %s", (unsigned long long)i,
                          (unsigned long long)seed, why);
        }
    }
    close_all(&L);
    close_all(&M);
    fclose(log);
    int rc = hfs_tree_compare(L.root, M.root, HFS_CMP_NLINK | HFS_CMP_XATTR, why, sizeof(why));
    ck_assert_msg(rc == 0, "final trees (DIFFTEST_SEED=%llu): %s", (unsigned long long)seed, why);

    /* the same tree through a second mount: nothing lived only in the first one's caches */
    char m1[600];
    snprintf(m1, sizeof(m1), "%s/difftest", E.root[1]);
    rc = hfs_tree_compare(L.root, m1, HFS_CMP_NLINK | HFS_CMP_XATTR, why, sizeof(why));
    ck_assert_msg(rc == 0, "final trees via mount 1 (DIFFTEST_SEED=%llu): %s",
                  (unsigned long long)seed, why);

    int fails_pct = (int)(100 * (uint64_t)fails / (nops ? nops : 1));
    fprintf(stderr, "difftest: %llu ops (seed %llu), %d%% failed alike;", (unsigned long long)nops,
            (unsigned long long)seed, fails_pct);
    for (int k = 0; k < OP_COUNT; k++)
        fprintf(stderr, " %s=%d", op_names[k], counts[k]);
    fprintf(stderr, "\n");
    /* the generator should exercise both success and failure paths */
    ck_assert_int_gt(fails_pct, 10);
    ck_assert_int_lt(fails_pct, 90);
    free(M.wbuf);
    free(L.wbuf);
    free(rm.data);
    free(rl.data);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    hfs_stop_on_signal(&E);
    hfs_env_start(&E, "difftest", 2, 2, NULL);
    if (!E.ready) fprintf(stderr, "test_mount_difftest: setup failed: %s\n", E.why);

    uint64_t nops = env_u64("DIFFTEST_OPS", 2000);
    Suite *s = suite_create("mount_difftest");
    TCase *tc = tcase_create("difftest");
    tcase_set_timeout(tc, 300 + (double)nops / 10); /* soak runs get more time */
    tcase_add_test(tc, difftest);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
