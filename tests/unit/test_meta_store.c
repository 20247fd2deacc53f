/* test_meta_store.c - unit tests of the metadata store (meta/mstore_*.c, meta/mop.c): every
 * operation's success and error cases on a real LMDB environment in a temporary directory. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mop.h"
#include "mstore.h"
#include "unit_main.h"

#define CS (1ull << 20) /* 1 MiB chunks in tests */

static char dir[64];
static struct mstore *st;

static void rm_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void open_store(void)
{
    struct mstore_opts o = {.map_size = 1ull << 30, .chunk_size = CS, .no_sync = 1};
    ck_assert_int_eq(mstore_open(dir, &o, &st), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mst-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    open_store();
}

static void teardown(void)
{
    mstore_close(st);
    st = NULL;
    rm_dir();
}

/* freed chunk collector */
struct freed {
    int n;
    uint64_t id[64];
};
static void on_freed(void *arg, uint64_t id, uint32_t ver)
{
    (void)ver;
    struct freed *f = arg;
    if (f->n < 64) f->id[f->n++] = id;
}

static int apply(struct mop *op, struct cairn_attr *attr, struct freed *f)
{
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    if (f) {
        res.freed = on_freed;
        res.freed_arg = f;
    }
    int rc = mop_prepare(st, op);
    if (rc) return rc;
    rc = mstore_apply(st, op, &res);
    if (!rc && attr) *attr = res.attr;
    return rc;
}

static int mk(uint16_t type, uint64_t parent, const char *name, uint32_t mode, uint64_t *ino)
{
    struct mop op = {.type = type, .parent = parent, .mode = mode, .uid = 10, .gid = 20};
    snprintf(op.name, sizeof(op.name), "%s", name);
    struct cairn_attr a;
    int rc = apply(&op, &a, NULL);
    if (!rc && ino) *ino = a.ino;
    return rc;
}
#define MKFILE(p, n, i) mk(MOP_MKNOD, p, n, S_IFREG | 0644, i)
#define MKDIR(p, n, i) mk(MOP_MKDIR, p, n, 0755, i)

static int op2(uint16_t type, uint64_t parent, const char *name)
{
    struct mop op = {.type = type, .parent = parent};
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, NULL, NULL);
}

static int ren(uint64_t p, const char *n, uint64_t p2, const char *n2, uint32_t flags)
{
    struct mop op = {.type = MOP_RENAME, .parent = p, .parent2 = p2, .flags = flags};
    snprintf(op.name, sizeof(op.name), "%s", n);
    snprintf(op.name2, sizeof(op.name2), "%s", n2);
    return apply(&op, NULL, NULL);
}

static uint64_t lookup_ino(uint64_t p, const char *n)
{
    struct cairn_attr a;
    int rc = mstore_lookup(st, p, n, &a);
    return rc ? 0 : a.ino;
}

static struct cairn_attr attr_of(uint64_t ino)
{
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, ino, &a), 0);
    return a;
}

static int lease(uint64_t ino, uint64_t index, struct chunk_info *ci)
{
    struct mop op = {.type = MOP_CHUNK_LEASE, .ino = ino, .index = index};
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    int rc = mop_prepare(st, &op);
    if (!rc) rc = mstore_apply(st, &op, &res);
    if (!rc && ci) *ci = res.chunk;
    return rc;
}

static int commit(uint64_t ino, uint64_t size, uint32_t flags, struct freed *f)
{
    struct mop op = {.type = MOP_COMMIT, .ino = ino, .size = size, .flags = flags, .mtime_s = 1000};
    return apply(&op, NULL, f);
}

static int open_ino(uint64_t ino, uint64_t session, uint32_t flags, struct freed *f)
{
    struct mop op = {.type = MOP_OPEN, .ino = ino, .session = session, .flags = flags};
    return apply(&op, NULL, f);
}

static int release(uint64_t ino, uint64_t session, struct freed *f)
{
    struct mop op = {.type = MOP_RELEASE, .ino = ino, .session = session};
    return apply(&op, NULL, f);
}

START_TEST(test_root_exists_after_format)
{
    struct cairn_attr a = attr_of(1);
    ck_assert(S_ISDIR(a.mode));
    ck_assert_int_eq(a.mode & 07777, 0755);
    ck_assert_int_eq(a.nlink, 2);
    ck_assert_int_eq(a.uid, 0);
    ck_assert_uint_eq(mstore_chunk_size(st), CS);
}
END_TEST

START_TEST(test_create_lookup_getattr)
{
    uint64_t ino;
    ck_assert_int_eq(MKFILE(1, "f", &ino), 0);
    ck_assert_uint_ge(ino, 2);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(st, 1, "f", &a), 0);
    ck_assert_uint_eq(a.ino, ino);
    ck_assert(S_ISREG(a.mode));
    ck_assert_int_eq(a.uid, 10);
    ck_assert_int_eq(a.gid, 20);
    ck_assert_int_eq(a.nlink, 1);
    ck_assert_int_eq(mstore_lookup(st, 1, "nope", &a), -ENOENT);
    ck_assert_int_eq(mstore_lookup(st, ino, "x", &a), -ENOTDIR);
    ck_assert_int_eq(MKFILE(1, "f", NULL), -EEXIST);
    ck_assert_int_eq(MKFILE(ino, "x", NULL), -ENOTDIR);
    ck_assert_int_eq(MKFILE(999, "x", NULL), -ENOENT);
    struct mstore_stats s;
    ck_assert_int_eq(mstore_stats(st, &s), 0);
    ck_assert_uint_eq(s.inodes, 2);
}
END_TEST

START_TEST(test_create_excl_and_open_existing)
{
    struct mop op = {.type = MOP_CREATE, .parent = 1, .mode = 0600, .session = 5, .flags = O_EXCL};
    strcpy(op.name, "c");
    struct cairn_attr a, b;
    ck_assert_int_eq(apply(&op, &a, NULL), 0);
    struct mop op2 = op;
    ck_assert_int_eq(apply(&op2, NULL, NULL), -EEXIST);
    struct mop op3 = op;
    op3.flags = 0;
    ck_assert_int_eq(apply(&op3, &b, NULL), 0);
    ck_assert_uint_eq(a.ino, b.ino);
    ck_assert_int_eq(MKDIR(1, "d", NULL), 0);
    struct mop op4 = op3;
    strcpy(op4.name, "d");
    ck_assert_int_eq(apply(&op4, NULL, NULL), -EISDIR);
}
END_TEST

START_TEST(test_name_too_long)
{
    char name[300];
    memset(name, 'a', 256);
    name[256] = 0;
    struct mop op = {.type = MOP_MKNOD, .parent = 1, .mode = S_IFREG | 0644};
    memcpy(op.name, name, 256); /* not terminated within CAIRN_NAME_MAX+1: full buffer */
    ck_assert_int_eq(apply(&op, NULL, NULL), -ENAMETOOLONG);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(st, 1, name, &a), -ENAMETOOLONG);
    ck_assert_int_eq(MKFILE(1, ".", NULL), -EINVAL);
    ck_assert_int_eq(MKDIR(1, "..", NULL), -EINVAL);
}
END_TEST

START_TEST(test_mkdir_nlink)
{
    uint64_t d;
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(attr_of(d).nlink, 2);
    ck_assert_int_eq(attr_of(1).nlink, 3);
    ck_assert_int_eq(MKDIR(d, "e", NULL), 0);
    ck_assert_int_eq(attr_of(d).nlink, 3);
    ck_assert_int_eq(MKFILE(d, "f", NULL), 0);
    ck_assert_int_eq(attr_of(d).nlink, 3);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(st, d, "..", &a), 0);
    ck_assert_uint_eq(a.ino, 1);
}
END_TEST

START_TEST(test_rmdir_enotempty_and_success)
{
    uint64_t d;
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(MKFILE(d, "f", NULL), 0);
    ck_assert_int_eq(op2(MOP_RMDIR, 1, "d"), -ENOTEMPTY);
    ck_assert_int_eq(op2(MOP_RMDIR, d, "f"), -ENOTDIR);
    ck_assert_int_eq(op2(MOP_UNLINK, d, "f"), 0);
    ck_assert_int_eq(op2(MOP_RMDIR, 1, "d"), 0);
    ck_assert_int_eq(attr_of(1).nlink, 2);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, d, &a), -ENOENT);
    ck_assert_int_eq(op2(MOP_RMDIR, 1, "d"), -ENOENT);
}
END_TEST

START_TEST(test_unlink)
{
    uint64_t f, d;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "d"), -EISDIR);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "f"), 0);
    ck_assert_uint_eq(lookup_ino(1, "f"), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, f, &a), -ENOENT);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "f"), -ENOENT);
    struct mstore_stats s;
    ck_assert_int_eq(mstore_stats(st, &s), 0);
    ck_assert_uint_eq(s.inodes, 2);
}
END_TEST

START_TEST(test_rename_replaces_file)
{
    uint64_t a, b;
    ck_assert_int_eq(MKFILE(1, "a", &a), 0);
    ck_assert_int_eq(MKFILE(1, "b", &b), 0);
    ck_assert_int_eq(ren(1, "a", 1, "b", 0), 0);
    ck_assert_uint_eq(lookup_ino(1, "b"), a);
    ck_assert_uint_eq(lookup_ino(1, "a"), 0);
    struct cairn_attr x;
    ck_assert_int_eq(mstore_getattr(st, b, &x), -ENOENT);
    ck_assert_int_eq(ren(1, "a", 1, "c", 0), -ENOENT);
}
END_TEST

START_TEST(test_rename_replaces_empty_dir_and_type_checks)
{
    uint64_t d1, d2, f;
    ck_assert_int_eq(MKDIR(1, "d1", &d1), 0);
    ck_assert_int_eq(MKDIR(1, "d2", &d2), 0);
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(ren(1, "f", 1, "d1", 0), -EISDIR);
    ck_assert_int_eq(ren(1, "d1", 1, "f", 0), -ENOTDIR);
    ck_assert_int_eq(attr_of(1).nlink, 4);
    ck_assert_int_eq(ren(1, "d1", 1, "d2", 0), 0);
    ck_assert_uint_eq(lookup_ino(1, "d2"), d1);
    ck_assert_int_eq(attr_of(1).nlink, 3);
}
END_TEST

START_TEST(test_rename_over_nonempty_dir_enotempty)
{
    uint64_t d2;
    ck_assert_int_eq(MKDIR(1, "d1", NULL), 0);
    ck_assert_int_eq(MKDIR(1, "d2", &d2), 0);
    ck_assert_int_eq(MKFILE(d2, "x", NULL), 0);
    ck_assert_int_eq(ren(1, "d1", 1, "d2", 0), -ENOTEMPTY);
    ck_assert_uint_eq(lookup_ino(1, "d2"), d2);
}
END_TEST

START_TEST(test_rename_noreplace)
{
    uint64_t a;
    ck_assert_int_eq(MKFILE(1, "a", &a), 0);
    ck_assert_int_eq(MKFILE(1, "b", NULL), 0);
    ck_assert_int_eq(ren(1, "a", 1, "b", PROTO_RENAME_NOREPLACE), -EEXIST);
    ck_assert_int_eq(ren(1, "a", 1, "c", PROTO_RENAME_NOREPLACE), 0);
    ck_assert_uint_eq(lookup_ino(1, "c"), a);
    ck_assert_int_eq(ren(1, "c", 1, "d", 7), -EINVAL);
}
END_TEST

START_TEST(test_rename_exchange)
{
    uint64_t f, d;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(ren(1, "f", 1, "none", PROTO_RENAME_EXCHANGE), -ENOENT);
    ck_assert_int_eq(ren(1, "f", 1, "d", PROTO_RENAME_EXCHANGE), 0);
    ck_assert_uint_eq(lookup_ino(1, "f"), d);
    ck_assert_uint_eq(lookup_ino(1, "d"), f);
    /* across directories: the dir moves into sub, the file out */
    uint64_t sub, g;
    ck_assert_int_eq(MKDIR(1, "sub", &sub), 0);
    ck_assert_int_eq(MKFILE(sub, "g", &g), 0);
    uint32_t root_nlink = attr_of(1).nlink;
    ck_assert_int_eq(ren(1, "f", sub, "g", PROTO_RENAME_EXCHANGE), 0);
    ck_assert_uint_eq(lookup_ino(sub, "g"), d);
    ck_assert_uint_eq(lookup_ino(1, "f"), g);
    ck_assert_int_eq(attr_of(1).nlink, root_nlink - 1);
    ck_assert_int_eq(attr_of(sub).nlink, 3);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(st, d, "..", &a), 0);
    ck_assert_uint_eq(a.ino, sub);
}
END_TEST

START_TEST(test_rename_into_own_subtree_einval)
{
    uint64_t a, b, c;
    ck_assert_int_eq(MKDIR(1, "a", &a), 0);
    ck_assert_int_eq(MKDIR(a, "b", &b), 0);
    ck_assert_int_eq(MKDIR(b, "c", &c), 0);
    ck_assert_int_eq(ren(1, "a", c, "x", 0), -EINVAL);
    ck_assert_int_eq(ren(1, "a", a, "x", 0), -EINVAL);
    ck_assert_uint_eq(lookup_ino(1, "a"), a);
}
END_TEST

START_TEST(test_rename_across_dirs_nlink)
{
    uint64_t p, q, d;
    ck_assert_int_eq(MKDIR(1, "p", &p), 0);
    ck_assert_int_eq(MKDIR(1, "q", &q), 0);
    ck_assert_int_eq(MKDIR(p, "d", &d), 0);
    ck_assert_int_eq(attr_of(p).nlink, 3);
    ck_assert_int_eq(ren(p, "d", q, "d2", 0), 0);
    ck_assert_int_eq(attr_of(p).nlink, 2);
    ck_assert_int_eq(attr_of(q).nlink, 3);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(st, d, "..", &a), 0);
    ck_assert_uint_eq(a.ino, q);
    /* now moving q into d's subtree is refused, moving p into d is fine */
    ck_assert_int_eq(ren(1, "q", d, "q", 0), -EINVAL);
    ck_assert_int_eq(ren(1, "p", d, "p", 0), 0);
}
END_TEST

START_TEST(test_rename_hard_link_onto_itself_noop)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "a", &f), 0);
    struct mop op = {.type = MOP_LINK, .ino = f, .parent = 1};
    strcpy(op.name, "b");
    ck_assert_int_eq(apply(&op, NULL, NULL), 0);
    ck_assert_int_eq(ren(1, "a", 1, "b", 0), 0);
    ck_assert_uint_eq(lookup_ino(1, "a"), f);
    ck_assert_uint_eq(lookup_ino(1, "b"), f);
    ck_assert_int_eq(attr_of(f).nlink, 2);
}
END_TEST

START_TEST(test_link_and_eperm_on_dir)
{
    uint64_t f, d;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    struct mop op = {.type = MOP_LINK, .ino = f, .parent = d};
    strcpy(op.name, "g");
    ck_assert_int_eq(apply(&op, NULL, NULL), 0);
    ck_assert_int_eq(attr_of(f).nlink, 2);
    ck_assert_uint_eq(lookup_ino(d, "g"), f);
    struct mop opd = {.type = MOP_LINK, .ino = d, .parent = 1};
    strcpy(opd.name, "dl");
    ck_assert_int_eq(apply(&opd, NULL, NULL), -EPERM);
    struct mop op3 = op;
    ck_assert_int_eq(apply(&op3, NULL, NULL), -EEXIST);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "f"), 0);
    ck_assert_int_eq(attr_of(f).nlink, 1);
}
END_TEST

START_TEST(test_symlink_readlink)
{
    const char *target = "../some/where";
    struct mop op = {.type = MOP_SYMLINK,
                     .parent = 1,
                     .data = (const uint8_t *)target,
                     .data_len = (uint32_t)strlen(target)};
    strcpy(op.name, "l");
    struct cairn_attr a;
    ck_assert_int_eq(apply(&op, &a, NULL), 0);
    ck_assert(S_ISLNK(a.mode));
    ck_assert_uint_eq(a.size, strlen(target));
    char buf[64];
    ck_assert_int_eq(mstore_readlink(st, a.ino, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, target);
    ck_assert_int_eq(mstore_readlink(st, 1, buf, sizeof(buf)), -EINVAL);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "l"), 0);
    ck_assert_int_eq(mstore_readlink(st, a.ino, buf, sizeof(buf)), -ENOENT);
}
END_TEST

struct rd {
    int n, stop_after;
    uint64_t last_cookie;
    char names[64][16];
};
static int rd_fn(void *arg, uint64_t ino, uint32_t mode, const char *name,
                 const struct cairn_attr *attr, uint64_t cookie_next)
{
    (void)ino;
    (void)mode;
    (void)attr;
    struct rd *r = arg;
    if (r->n >= r->stop_after) return 1;
    if (r->n < 64) snprintf(r->names[r->n], 16, "%s", name);
    r->n++;
    r->last_cookie = cookie_next;
    return 0;
}

START_TEST(test_readdir_cookie_resumes_after_deletes_and_inserts)
{
    char n[16];
    for (int i = 0; i < 10; i++) {
        snprintf(n, sizeof(n), "e%d", i);
        ck_assert_int_eq(MKFILE(1, n, NULL), 0);
    }
    struct rd r = {.stop_after = 4};
    int eof;
    ck_assert_int_eq(mstore_readdir(st, 1, 0, 0, rd_fn, &r, &eof), 0);
    ck_assert_int_eq(eof, 0);
    ck_assert_int_eq(r.n, 4);
    ck_assert_str_eq(r.names[0], "e0");
    ck_assert_str_eq(r.names[3], "e3");
    ck_assert_uint_ge(r.last_cookie, 4);
    /* delete one already read, one not yet read; insert a new one */
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "e1"), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "e5"), 0);
    ck_assert_int_eq(MKFILE(1, "new", NULL), 0);
    struct rd r2 = {.stop_after = 100};
    ck_assert_int_eq(mstore_readdir(st, 1, r.last_cookie, 0, rd_fn, &r2, &eof), 0);
    ck_assert_int_eq(eof, 1);
    ck_assert_int_eq(r2.n, 6); /* e4 e6 e7 e8 e9 new */
    ck_assert_str_eq(r2.names[0], "e4");
    ck_assert_str_eq(r2.names[1], "e6");
    ck_assert_str_eq(r2.names[5], "new");
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "zz", &f), 0);
    ck_assert_int_eq(mstore_readdir(st, f, 0, 0, rd_fn, &r2, &eof), -ENOTDIR);
}
END_TEST

struct big {
    uint64_t n, cookie;
    int page_left;
    int plus_ok;
};
static int big_fn(void *arg, uint64_t ino, uint32_t mode, const char *name,
                  const struct cairn_attr *attr, uint64_t cookie_next)
{
    (void)mode;
    (void)name;
    struct big *b = arg;
    if (b->page_left == 0) return 1;
    if (attr && attr->ino != ino) b->plus_ok = 0;
    b->page_left--;
    b->n++;
    b->cookie = cookie_next;
    return 0;
}

START_TEST(test_readdir_20000_entries_in_pages)
{
    uint64_t d;
    ck_assert_int_eq(MKDIR(1, "big", &d), 0);
    char n[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(n, sizeof(n), "file-%05d", i);
        ck_assert_int_eq(MKFILE(d, n, NULL), 0);
    }
    struct big b = {.plus_ok = 1};
    int eof = 0, pages = 0;
    while (!eof && pages < 1000) {
        b.page_left = 100;
        ck_assert_int_eq(mstore_readdir(st, d, b.cookie, 1, big_fn, &b, &eof), 0);
        pages++;
    }
    ck_assert_int_eq(eof, 1);
    ck_assert_uint_eq(b.n, 20000);
    ck_assert_int_eq(b.plus_ok, 1);
    ck_assert_int_ge(pages, 200);
}
END_TEST

START_TEST(test_xattr_create_replace_flags)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    struct mop op = {
        .type = MOP_SETXATTR, .ino = f, .data = (const uint8_t *)"v1", .data_len = 2, .flags = 2};
    strcpy(op.name, "user.a");
    struct mop o = op;
    ck_assert_int_eq(apply(&o, NULL, NULL), -ENODATA); /* REPLACE of missing */
    o = op;
    o.flags = 1;
    ck_assert_int_eq(apply(&o, NULL, NULL), 0); /* CREATE */
    o = op;
    o.flags = 1;
    ck_assert_int_eq(apply(&o, NULL, NULL), -EEXIST);
    o = op;
    o.data = (const uint8_t *)"value2";
    o.data_len = 6;
    ck_assert_int_eq(apply(&o, NULL, NULL), 0); /* REPLACE */
    struct wbuf w;
    wbuf_init(&w);
    ck_assert_int_eq(mstore_getxattr(st, f, "user.a", &w), 0);
    ck_assert_uint_eq(w.len, 6);
    ck_assert(memcmp(w.data, "value2", 6) == 0);
    wbuf_reset(&w);
    ck_assert_int_eq(mstore_getxattr(st, f, "user.b", &w), -ENODATA);
    o = op;
    o.flags = 0;
    strcpy(o.name, "user.b");
    ck_assert_int_eq(apply(&o, NULL, NULL), 0);
    wbuf_reset(&w);
    ck_assert_int_eq(mstore_listxattr(st, f, &w), 0);
    ck_assert_uint_eq(w.len, 14);
    ck_assert(memcmp(w.data, "user.a\0user.b\0", 14) == 0);
    o = op;
    o.flags = 3;
    ck_assert_int_eq(apply(&o, NULL, NULL), -EINVAL);
    static uint8_t big[CAIRN_XATTR_SIZE_MAX + 1];
    o = op;
    o.flags = 0;
    o.data = big;
    o.data_len = sizeof(big);
    ck_assert_int_eq(apply(&o, NULL, NULL), -E2BIG);
    struct mop rm = {.type = MOP_REMOVEXATTR, .ino = f};
    strcpy(rm.name, "user.a");
    ck_assert_int_eq(apply(&rm, NULL, NULL), 0);
    rm.type = MOP_REMOVEXATTR;
    ck_assert_int_eq(apply(&rm, NULL, NULL), -ENODATA);
    wbuf_free(&w);
}
END_TEST

static int set_x(uint64_t ino, const char *name, struct cairn_attr *a)
{
    struct mop op = {.type = MOP_SETXATTR, .ino = ino, .data = (const uint8_t *)"v", .data_len = 1};
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, a, NULL);
}

static int rm_x(uint64_t ino, const char *name, struct cairn_attr *a)
{
    struct mop op = {.type = MOP_REMOVEXATTR, .ino = ino};
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, a, NULL);
}

static int has_x(uint64_t ino)
{
    return (attr_of(ino).flags & ATTR_F_XATTRS) != 0;
}

/* readdir plus: the flag of the entry named "f" */
static int flag_fn(void *arg, uint64_t ino, uint32_t mode, const char *name,
                   const struct cairn_attr *attr, uint64_t cookie_next)
{
    (void)ino;
    (void)mode;
    (void)cookie_next;
    int *out = arg;
    if (attr && strcmp(name, "f") == 0) *out = (attr->flags & ATTR_F_XATTRS) != 0;
    return 0;
}

START_TEST(test_xattr_flag_set_and_cleared_with_last_xattr)
{
    /* neighbours on both sides in the xattr db: their keys must not count for f */
    uint64_t before, f, after;
    ck_assert_int_eq(MKFILE(1, "before", &before), 0);
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(MKFILE(1, "after", &after), 0);
    ck_assert_uint_lt(before, f);
    ck_assert_uint_lt(f, after);
    ck_assert_int_eq(set_x(before, "user.zzz", NULL), 0);
    ck_assert_int_eq(set_x(after, "user.aaa", NULL), 0);

    /* a new inode has none, in every reply that carries attributes */
    struct cairn_attr a;
    ck_assert_int_eq(has_x(f), 0);
    ck_assert_int_eq(mstore_lookup(st, 1, "f", &a), 0);
    ck_assert_uint_eq(a.flags & ATTR_F_XATTRS, 0);
    int rdflag = -1, eof = 0;
    ck_assert_int_eq(mstore_readdir(st, 1, 0, 1, flag_fn, &rdflag, &eof), 0);
    ck_assert_int_eq(rdflag, 0);
    uint64_t d;
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(has_x(d), 0);

    /* set: on, in the reply and in the store */
    ck_assert_int_eq(set_x(f, "user.a", &a), 0);
    ck_assert_uint_eq(a.flags & ATTR_F_XATTRS, ATTR_F_XATTRS);
    ck_assert_int_eq(has_x(f), 1);
    ck_assert_int_eq(mstore_readdir(st, 1, 0, 1, flag_fn, &rdflag, &eof), 0);
    ck_assert_int_eq(rdflag, 1);
    ck_assert_int_eq(set_x(f, "user.b", NULL), 0);

    /* removing one of two keeps it; a failed remove changes nothing; the last clears it */
    ck_assert_int_eq(rm_x(f, "user.a", &a), 0);
    ck_assert_uint_eq(a.flags & ATTR_F_XATTRS, ATTR_F_XATTRS);
    ck_assert_int_eq(has_x(f), 1);
    ck_assert_int_eq(rm_x(f, "user.nope", NULL), -ENODATA);
    ck_assert_int_eq(has_x(f), 1);
    ck_assert_int_eq(rm_x(f, "user.b", &a), 0);
    ck_assert_uint_eq(a.flags & ATTR_F_XATTRS, 0);
    ck_assert_int_eq(has_x(f), 0);
    ck_assert_int_eq(rm_x(f, "user.b", NULL), -ENODATA);
    ck_assert_int_eq(has_x(f), 0);
    struct wbuf w;
    wbuf_init(&w);
    ck_assert_int_eq(mstore_listxattr(st, f, &w), 0);
    ck_assert_uint_eq(w.len, 0);
    wbuf_free(&w);

    /* the neighbours keep theirs; a failed set (CREATE of an existing name) changes nothing */
    ck_assert_int_eq(has_x(before), 1);
    ck_assert_int_eq(has_x(after), 1);
    ck_assert_int_eq(set_x(f, "user.c", NULL), 0);
    struct mop op = {
        .type = MOP_SETXATTR, .ino = f, .data = (const uint8_t *)"v", .data_len = 1, .flags = 1};
    strcpy(op.name, "user.c");
    ck_assert_int_eq(apply(&op, NULL, NULL), -EEXIST);
    ck_assert_int_eq(has_x(f), 1);
    ck_assert_int_eq(rm_x(f, "user.c", NULL), 0);
    ck_assert_int_eq(has_x(f), 0);

    /* a hard link shares the inode, so the flag */
    struct mop ln = {.type = MOP_LINK, .ino = f, .parent = 1, .name = "f2"};
    ck_assert_int_eq(apply(&ln, NULL, NULL), 0);
    ck_assert_int_eq(set_x(f, "user.l", NULL), 0);
    ck_assert_int_eq(mstore_lookup(st, 1, "f2", &a), 0);
    ck_assert_uint_eq(a.flags & ATTR_F_XATTRS, ATTR_F_XATTRS);

    /* the root of a store formatted without the flag counts as having xattrs until a set or
     * remove has looked */
    ck_assert_int_eq(has_x(1), 1);
    ck_assert_int_eq(set_x(1, "user.r", NULL), 0);
    ck_assert_int_eq(rm_x(1, "user.r", NULL), 0);
    ck_assert_int_eq(has_x(1), 0);

    /* durable */
    mstore_close(st);
    open_store();
    ck_assert_int_eq(has_x(f), 1);
    ck_assert_int_eq(has_x(d), 0);
    ck_assert_int_eq(has_x(1), 0);
}
END_TEST

START_TEST(test_xattr_flag_same_on_replay)
{
    char dir2[64];
    snprintf(dir2, sizeof(dir2), "/tmp/mst-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir2));
    struct mstore *b;
    struct mstore_opts o = {.chunk_size = CS, .no_sync = 1};
    ck_assert_int_eq(mstore_open(dir2, &o, &b), 0);
    const uint8_t *v = (const uint8_t *)"v";
    struct mop ops[] = {
        {.type = MOP_MKNOD, .parent = 1, .mode = S_IFREG | 0600, .name = "f"},
        {.type = MOP_SETXATTR, .ino = 2, .name = "user.a", .data = v, .data_len = 1},
        {.type = MOP_SETXATTR, .ino = 2, .name = "user.b", .data = v, .data_len = 1},
        {.type = MOP_REMOVEXATTR, .ino = 2, .name = "user.a"},
        {.type = MOP_REMOVEXATTR, .ino = 2, .name = "user.b"},
        {.type = MOP_SETXATTR, .ino = 2, .name = "user.c", .data = v, .data_len = 1},
    };
    const int want[] = {0, 1, 1, 1, 0, 1};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct mop_result r1, r2;
        memset(&r1, 0, sizeof(r1));
        memset(&r2, 0, sizeof(r2));
        ck_assert_int_eq(mop_prepare(st, &ops[i]), 0);
        ck_assert_int_eq(mstore_apply(st, &ops[i], &r1), 0);
        struct wbuf w;
        wbuf_init(&w);
        mop_encode(&ops[i], &w);
        struct rcur c;
        rcur_init(&c, w.data, w.len);
        struct mop dop;
        ck_assert_int_eq(mop_decode(&c, &dop), 0);
        ck_assert_int_eq(mstore_apply(b, &dop, &r2), 0);
        wbuf_free(&w);
        ck_assert(memcmp(&r1.attr, &r2.attr, sizeof(r1.attr)) == 0);
        ck_assert_int_eq((r1.attr.flags & ATTR_F_XATTRS) != 0, want[i]);
        struct cairn_attr y;
        ck_assert_int_eq(mstore_getattr(b, 2, &y), 0);
        ck_assert_int_eq((y.flags & ATTR_F_XATTRS) != 0, want[i]);
    }
    mstore_close(b);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir2);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_chunk_lease_versions)
{
    uint64_t f, d;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    struct chunk_info c1, c2, c3;
    ck_assert_int_eq(lease(f, 0, &c1), 0);
    ck_assert_uint_eq(c1.version, 1);
    ck_assert_uint_eq(c1.prev_version, 0);
    ck_assert_uint_ne(c1.chunk_id, 0);
    ck_assert_int_eq(lease(f, 0, &c2), 0);
    ck_assert_uint_eq(c2.chunk_id, c1.chunk_id);
    ck_assert_uint_eq(c2.version, 2);
    /* no copy at version 1 was known to the leader: members may still hold anything from 0 */
    ck_assert_uint_eq(c2.prev_version, 0);
    struct mop l3 = {.type = MOP_CHUNK_LEASE,
                     .ino = f,
                     .index = 0,
                     .flags = MOP_LEASE_CUR_KNOWN,
                     .nchain = 2,
                     .chain = {7, 9}};
    struct mop_result r3 = {0};
    ck_assert_int_eq(mop_prepare(st, &l3), 0);
    ck_assert_int_eq(mstore_apply(st, &l3, &r3), 0);
    ck_assert_uint_eq(r3.chunk.version, 3);
    ck_assert_uint_eq(r3.chunk.prev_version, 2); /* a copy at 2 was known */
    struct mstore_chunk rec;
    ck_assert_int_eq(mstore_chunk_rec(st, f, 0, &rec), 0);
    ck_assert_uint_eq(rec.nchain, 2);
    ck_assert_uint_eq(rec.chain[0], 7);
    ck_assert_uint_eq(rec.chain[1], 9);
    ck_assert_uint_eq(rec.prev, 2);
    ck_assert_int_eq(mstore_chunk_by_id(st, c1.chunk_id, &rec), 0);
    ck_assert_uint_eq(rec.ino, f);
    ck_assert_uint_eq(rec.version, 3);
    ck_assert_int_eq(lease(f, 3, &c3), 0);
    ck_assert_uint_ne(c3.chunk_id, c1.chunk_id);
    ck_assert_uint_eq(c3.index, 3);
    uint64_t id;
    uint32_t ver;
    ck_assert_int_eq(mstore_chunk_get(st, f, 0, &id, &ver), 0);
    ck_assert_uint_eq(id, c1.chunk_id);
    ck_assert_uint_eq(ver, 3);
    ck_assert_int_eq(mstore_chunk_get(st, f, 1, &id, &ver), -ENOENT);
    ck_assert_int_eq(mstore_chunk_version(st, c3.chunk_id, &ver), 0);
    ck_assert_uint_eq(ver, 1);
    ck_assert_int_eq(lease(d, 0, NULL), -EISDIR);
    ck_assert_int_eq(lease(999, 0, NULL), -ENOENT);
}
END_TEST

START_TEST(test_copies_inherited)
{
    uint64_t d, f, g, sub;
    ck_assert_int_eq(MKDIR(1, "three", &d), 0);
    struct mop sc = {.type = MOP_SET_COPIES, .ino = d, .flags = 3};
    ck_assert_int_eq(apply(&sc, NULL, NULL), 0);
    ck_assert_int_eq(MKFILE(d, "f", &f), 0);
    ck_assert_int_eq(MKDIR(d, "sub", &sub), 0);
    ck_assert_int_eq(MKFILE(sub, "g", &g), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, f, &a), 0);
    ck_assert_uint_eq(a.copies, 3);
    ck_assert_int_eq(mstore_getattr(st, g, &a), 0);
    ck_assert_uint_eq(a.copies, 3);
    /* the root has none set: the default, which follows the configuration */
    uint64_t r;
    ck_assert_int_eq(MKFILE(1, "rootfile", &r), 0);
    mstore_set_default_copies(4);
    ck_assert_int_eq(mstore_getattr(st, r, &a), 0);
    ck_assert_uint_eq(a.copies, 4);
    mstore_set_default_copies(2);
    ck_assert_int_eq(mstore_getattr(st, r, &a), 0);
    ck_assert_uint_eq(a.copies, 2);
    /* out of range changes nothing; 0 goes back to the default */
    struct mop bad = {.type = MOP_SET_COPIES, .ino = f, .flags = CAIRN_COPIES_MAX + 1};
    ck_assert_int_eq(apply(&bad, NULL, NULL), -EINVAL);
    struct mop zero = {.type = MOP_SET_COPIES, .ino = f, .flags = 0};
    ck_assert_int_eq(apply(&zero, &a, NULL), 0);
    ck_assert_uint_eq(a.copies, 2);
    struct mop gone = {.type = MOP_SET_COPIES, .ino = 99999, .flags = 1};
    ck_assert_int_eq(apply(&gone, NULL, NULL), -ENOENT);
    /* the record survives encoding (Raft ships it as bytes), chain included */
    struct mop l = {.type = MOP_CHUNK_LEASE, .ino = f, .nchain = 3, .chain = {1, 2, 3}}, back;
    struct wbuf b;
    wbuf_init(&b);
    mop_encode(&l, &b);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    ck_assert_int_eq(mop_decode(&c, &back), 0);
    ck_assert_uint_eq(back.nchain, 3);
    ck_assert_uint_eq(back.chain[2], 3);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_chunk_rec_sees_the_open_batch)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "batched", &f), 0);
    ck_assert_int_eq(mstore_batch_begin(st), 0);
    struct mop l = {.type = MOP_CHUNK_LEASE, .ino = f, .index = 0, .nchain = 1, .chain = {5}};
    struct mop_result r = {0};
    ck_assert_int_eq(mop_prepare(st, &l), 0);
    ck_assert_int_eq(mstore_apply(st, &l, &r), 0);
    /* not durable yet, but the writer's next lease must find the chunk, not create another */
    struct mstore_chunk ck;
    ck_assert_int_eq(mstore_chunk_rec(st, f, 0, &ck), 0);
    ck_assert_uint_eq(ck.id, r.chunk.chunk_id);
    ck_assert_uint_eq(ck.nchain, 1);
    ck_assert_int_eq(mstore_batch_commit(st), 0);
    ck_assert_int_eq(mstore_chunk_rec(st, f, 0, &ck), 0);
    ck_assert_uint_eq(ck.id, r.chunk.chunk_id);
}
END_TEST

START_TEST(test_commit_grows_size_only)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(commit(f, 5000, 0, NULL), 0);
    ck_assert_uint_eq(attr_of(f).size, 5000);
    ck_assert_int_eq(attr_of(f).mtime_s, 1000);
    ck_assert_int_eq(commit(f, 100, 0, NULL), 0);
    ck_assert_uint_eq(attr_of(f).size, 5000);
    ck_assert_int_eq(commit(f, 100, COMMIT_SET_SIZE, NULL), 0);
    ck_assert_uint_eq(attr_of(f).size, 100);
    struct mstore_stats s;
    ck_assert_int_eq(mstore_stats(st, &s), 0);
    ck_assert_uint_eq(s.bytes, 100);
}
END_TEST

START_TEST(test_truncate_frees_whole_chunks)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    struct chunk_info c[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(lease(f, (uint64_t)i, &c[i]), 0);
    ck_assert_int_eq(commit(f, 4 * CS, 0, NULL), 0);
    /* truncate to 1.5 chunks: chunks 2 and 3 are freed, chunk 1 (partial) stays */
    struct freed fr = {0};
    struct mop op = {.type = MOP_SETATTR, .ino = f, .valid = SETATTR_SIZE, .size = CS + CS / 2};
    ck_assert_int_eq(apply(&op, NULL, &fr), 0);
    ck_assert_int_eq(fr.n, 2);
    ck_assert_uint_eq(fr.id[0], c[2].chunk_id);
    ck_assert_uint_eq(fr.id[1], c[3].chunk_id);
    uint32_t ver;
    ck_assert_int_eq(mstore_chunk_version(st, c[2].chunk_id, &ver), -ENOENT);
    ck_assert_int_eq(mstore_chunk_version(st, c[1].chunk_id, &ver), 0);
    ck_assert_uint_eq(attr_of(f).size, CS + CS / 2);
    /* truncate to exactly one chunk frees chunk 1 */
    struct freed fr2 = {0};
    ck_assert_int_eq(commit(f, CS, COMMIT_SET_SIZE, &fr2), 0);
    ck_assert_int_eq(fr2.n, 1);
    ck_assert_uint_eq(fr2.id[0], c[1].chunk_id);
    /* O_TRUNC frees the rest */
    struct freed fr3 = {0};
    ck_assert_int_eq(open_ino(f, 9, O_TRUNC, &fr3), 0);
    ck_assert_int_eq(fr3.n, 1);
    ck_assert_uint_eq(fr3.id[0], c[0].chunk_id);
    ck_assert_uint_eq(attr_of(f).size, 0);
}
END_TEST

/* COMMIT with {index, bytes} pairs: st_blocks follows what the chunk servers store, and
 * freeing chunks takes their bytes off again. */
static int commit_alloc(uint64_t ino, uint64_t size, const uint64_t *pairs, uint32_t npairs)
{
    uint8_t raw[16 * 8];
    for (uint32_t i = 0; i < npairs * 2; i++)
        le_put64(raw + 8 * i, pairs[i]);
    struct mop op = {.type = MOP_COMMIT,
                     .ino = ino,
                     .size = size,
                     .mtime_s = 1000,
                     .data = raw,
                     .data_len = npairs * 16};
    return apply(&op, NULL, NULL);
}

START_TEST(test_commit_allocations_give_blocks)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "sparse", &f), 0);
    ck_assert_uint_eq(attr_of(f).blocks, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(lease(f, (uint64_t)i, NULL), 0);
    /* a 3-chunk sparse file storing 4 KiB, 64 KiB and 100 bytes (rounded up by the server) */
    uint64_t p1[] = {0, 4096, 1, 65536, 2, 4096};
    ck_assert_int_eq(commit_alloc(f, 3 * CS, p1, 3), 0);
    ck_assert_uint_eq(attr_of(f).blocks, (4096 + 65536 + 4096) / 512);
    /* a later report for a chunk replaces its figure, it does not add to it */
    uint64_t p2[] = {1, 131072};
    ck_assert_int_eq(commit_alloc(f, 3 * CS, p2, 1), 0);
    ck_assert_uint_eq(attr_of(f).blocks, (4096 + 131072 + 4096) / 512);
    /* a chunk the file does not have is ignored; no chunk counts for more than its size */
    uint64_t p3[] = {7, 65536, 0, 4 * CS};
    ck_assert_int_eq(commit_alloc(f, 3 * CS, p3, 2), 0);
    ck_assert_uint_eq(attr_of(f).blocks, (CS + 131072 + 4096) / 512);
    /* truncating frees chunks 1 and 2 with their bytes */
    ck_assert_int_eq(commit(f, 1000, COMMIT_SET_SIZE, NULL), 0);
    ck_assert_uint_eq(attr_of(f).blocks, CS / 512);
    /* a malformed list changes nothing */
    struct mop bad = {
        .type = MOP_COMMIT, .ino = f, .size = 1000, .data = (const uint8_t *)"x", .data_len = 1};
    ck_assert_int_eq(apply(&bad, NULL, NULL), -EINVAL);
    ck_assert_uint_eq(attr_of(f).blocks, CS / 512);
}
END_TEST

START_TEST(test_setattr_chmod_chown_times)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    struct mop op = {.type = MOP_SETATTR, .ino = f, .valid = SETATTR_MODE, .mode = 06755};
    ck_assert_int_eq(apply(&op, NULL, NULL), 0);
    ck_assert_int_eq(attr_of(f).mode, S_IFREG | 06755);
    struct mop ch = {.type = MOP_SETATTR, .ino = f, .valid = SETATTR_UID, .uid = 42};
    ck_assert_int_eq(apply(&ch, NULL, NULL), 0);
    ck_assert_int_eq(attr_of(f).uid, 42);
    ck_assert_int_eq(attr_of(f).mode, S_IFREG | 0755); /* suid and group-exec sgid gone */
    struct mop t = {.type = MOP_SETATTR,
                    .ino = f,
                    .valid = SETATTR_ATIME | SETATTR_MTIME,
                    .atime_s = 111,
                    .atime_ns = 5,
                    .mtime_s = 222,
                    .mtime_ns = 6};
    ck_assert_int_eq(apply(&t, NULL, NULL), 0);
    struct cairn_attr a = attr_of(f);
    ck_assert_int_eq(a.atime_s, 111);
    ck_assert_int_eq(a.mtime_s, 222);
    ck_assert_int_eq(a.mtime_ns, 6);
    ck_assert_int_gt(a.ctime_s, 1000000);
    uint64_t d;
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    struct mop sz = {.type = MOP_SETATTR, .ino = d, .valid = SETATTR_SIZE, .size = 1};
    ck_assert_int_eq(apply(&sz, NULL, NULL), -EISDIR);
}
END_TEST

START_TEST(test_unlink_while_open_keeps_inode_until_release)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    struct chunk_info c;
    ck_assert_int_eq(lease(f, 0, &c), 0);
    ck_assert_int_eq(open_ino(f, 7, 0, NULL), 0);
    ck_assert_int_eq(open_ino(f, 7, 0, NULL), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "f"), 0);
    ck_assert_uint_eq(lookup_ino(1, "f"), 0);
    struct cairn_attr a = attr_of(f);
    ck_assert_int_eq(a.nlink, 0);
    struct freed fr = {0};
    ck_assert_int_eq(release(f, 7, &fr), 0);
    ck_assert_int_eq(mstore_getattr(st, f, &a), 0);
    ck_assert_int_eq(fr.n, 0);
    ck_assert_int_eq(release(f, 7, &fr), 0);
    ck_assert_int_eq(mstore_getattr(st, f, &a), -ENOENT);
    ck_assert_int_eq(fr.n, 1);
    ck_assert_uint_eq(fr.id[0], c.chunk_id);
    ck_assert_int_eq(release(f, 7, NULL), -EBADF);
}
END_TEST

static int sess_fn(void *arg, uint64_t id, int64_t last)
{
    (void)last;
    uint64_t *ids = arg;
    if (ids[0] < 8) ids[1 + ids[0]++] = id;
    return 0;
}

START_TEST(test_session_close_purges_orphans)
{
    struct mop so = {.type = MOP_SESSION_OPEN};
    strcpy(so.name, "client-a");
    ck_assert_int_eq(apply(&so, NULL, NULL), 0);
    uint64_t sid = so.session;
    ck_assert_uint_ne(sid, 0);
    uint64_t ids[9] = {0};
    ck_assert_int_eq(mstore_session_list(st, sess_fn, ids), 0);
    ck_assert_uint_eq(ids[0], 1);
    ck_assert_uint_eq(ids[1], sid);
    struct mop touch = {.type = MOP_SESSION_TOUCH, .session = sid};
    ck_assert_int_eq(apply(&touch, NULL, NULL), 0);
    uint64_t f, g;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    ck_assert_int_eq(MKFILE(1, "g", &g), 0);
    ck_assert_int_eq(open_ino(f, sid, 0, NULL), 0);
    ck_assert_int_eq(open_ino(g, sid, 0, NULL), 0);
    ck_assert_int_eq(open_ino(g, sid + 1, 0, NULL), 0); /* another session keeps g */
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "f"), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "g"), 0);
    struct mop sc = {.type = MOP_SESSION_CLOSE, .session = sid};
    ck_assert_int_eq(apply(&sc, NULL, NULL), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, f, &a), -ENOENT);
    ck_assert_int_eq(mstore_getattr(st, g, &a), 0);
    memset(ids, 0, sizeof(ids));
    ck_assert_int_eq(mstore_session_list(st, sess_fn, ids), 0);
    ck_assert_uint_eq(ids[0], 1); /* only the auto-created sid+1 */
    ck_assert_uint_eq(ids[1], sid + 1);
}
END_TEST

static int chunk_fn(void *arg, const struct mstore_chunk *c)
{
    uint64_t *ids = arg;
    if (ids[0] < 8) ids[1 + ids[0]++] = c->index;
    return 0;
}

START_TEST(test_parent_times_updated_on_entry_change)
{
    struct mop t = {.type = MOP_SETATTR, .ino = 1, .valid = SETATTR_MTIME, .mtime_s = 5};
    ck_assert_int_eq(apply(&t, NULL, NULL), 0);
    ck_assert_int_eq(attr_of(1).mtime_s, 5);
    ck_assert_int_eq(MKFILE(1, "f", NULL), 0);
    ck_assert_int_gt(attr_of(1).mtime_s, 1000000);
    ck_assert_int_eq(apply(&t, NULL, NULL), 0);
    ck_assert_int_eq(ren(1, "f", 1, "g", 0), 0);
    ck_assert_int_gt(attr_of(1).mtime_s, 1000000);
    ck_assert_int_eq(apply(&t, NULL, NULL), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "g"), 0);
    ck_assert_int_gt(attr_of(1).mtime_s, 1000000);
}
END_TEST

START_TEST(test_orphan_survives_reopen_and_session_close_purges_it)
{
    struct mop so = {.type = MOP_SESSION_OPEN};
    strcpy(so.name, "c");
    ck_assert_int_eq(apply(&so, NULL, NULL), 0);
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    struct chunk_info c;
    ck_assert_int_eq(lease(f, 0, &c), 0);
    ck_assert_int_eq(open_ino(f, so.session, 0, NULL), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "f"), 0);
    mstore_close(st);
    struct mstore_opts o = {.chunk_size = CS}; /* durable mode this time */
    ck_assert_int_eq(mstore_open(dir, &o, &st), 0);
    ck_assert_int_eq(attr_of(f).nlink, 0);
    uint64_t ids[9] = {0};
    ck_assert_int_eq(mstore_session_list(st, sess_fn, ids), 0);
    ck_assert_uint_eq(ids[0], 1);
    ck_assert_uint_eq(ids[1], so.session);
    struct freed fr = {0};
    struct mop sc = {.type = MOP_SESSION_CLOSE, .session = so.session};
    ck_assert_int_eq(apply(&sc, NULL, &fr), 0);
    ck_assert_int_eq(fr.n, 1);
    ck_assert_uint_eq(fr.id[0], c.chunk_id);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, f, &a), -ENOENT);
    struct mstore_stats s;
    ck_assert_int_eq(mstore_stats(st, &s), 0);
    ck_assert_uint_eq(s.inodes, 1);
    /* a new session id is above the old one */
    struct mop so2 = {.type = MOP_SESSION_OPEN};
    ck_assert_int_eq(apply(&so2, NULL, NULL), 0);
    ck_assert_uint_gt(so2.session, so.session);
}
END_TEST

START_TEST(test_chunk_list_range)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(lease(f, (uint64_t)i, NULL), 0);
    uint64_t ids[9] = {0};
    ck_assert_int_eq(mstore_chunk_list(st, f, 2, 3, chunk_fn, ids), 0);
    ck_assert_uint_eq(ids[0], 3);
    ck_assert_uint_eq(ids[1], 2);
    ck_assert_uint_eq(ids[3], 4);
}
END_TEST

START_TEST(test_setattr_kill_suidgid)
{
    uint64_t f;
    ck_assert_int_eq(MKFILE(1, "f", &f), 0);
    struct mop m = {.type = MOP_SETATTR, .ino = f, .valid = SETATTR_MODE, .mode = 06745};
    ck_assert_int_eq(apply(&m, NULL, NULL), 0);
    struct mop k = {.type = MOP_SETATTR, .ino = f, .valid = SETATTR_KILL_SUIDGID};
    ck_assert_int_eq(apply(&k, NULL, NULL), 0);
    /* no group exec: S_ISGID is mandatory-locking, kept as Linux does */
    ck_assert_int_eq(attr_of(f).mode, S_IFREG | 02745);
}
END_TEST

START_TEST(test_replica_replay_gives_same_store)
{
    char dir2[64];
    snprintf(dir2, sizeof(dir2), "/tmp/mst-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir2));
    struct mstore *b;
    struct mstore_opts o = {.chunk_size = CS, .no_sync = 1};
    ck_assert_int_eq(mstore_open(dir2, &o, &b), 0);
    struct mop ops[6] = {
        {.type = MOP_MKDIR, .parent = 1, .mode = 0755, .name = "d"},
        {.type = MOP_MKNOD, .parent = 2, .mode = S_IFREG | 0600, .name = "f"},
        {.type = MOP_CHUNK_LEASE, .ino = 3, .index = 1},
        {.type = MOP_COMMIT, .ino = 3, .size = 3 * CS, .mtime_s = 77},
        {.type = MOP_RENAME, .parent = 2, .parent2 = 1, .name = "f", .name2 = "g"},
        {.type = MOP_UNLINK, .parent = 1, .name = "nope"},
    };
    for (int i = 0; i < 6; i++) {
        struct mop_result r1, r2;
        memset(&r1, 0, sizeof(r1));
        memset(&r2, 0, sizeof(r2));
        ck_assert_int_eq(mop_prepare(st, &ops[i]), 0);
        int rc1 = mstore_apply(st, &ops[i], &r1);
        struct wbuf w;
        wbuf_init(&w);
        mop_encode(&ops[i], &w);
        struct rcur c;
        rcur_init(&c, w.data, w.len);
        struct mop d;
        ck_assert_int_eq(mop_decode(&c, &d), 0);
        int rc2 = mstore_apply(b, &d, &r2);
        wbuf_free(&w);
        ck_assert_int_eq(rc1, rc2);
        ck_assert(memcmp(&r1.attr, &r2.attr, sizeof(r1.attr)) == 0);
        ck_assert(memcmp(&r1.chunk, &r2.chunk, sizeof(r1.chunk)) == 0);
    }
    for (uint64_t ino = 1; ino <= 3; ino++) {
        struct cairn_attr x, y;
        ck_assert_int_eq(mstore_getattr(st, ino, &x), 0);
        ck_assert_int_eq(mstore_getattr(b, ino, &y), 0);
        ck_assert_int_eq(x.nlink, y.nlink);
        ck_assert_uint_eq(x.size, y.size);
        ck_assert_int_eq(x.mtime_s, y.mtime_s);
        ck_assert_int_eq(x.ctime_ns, y.ctime_ns);
    }
    mstore_close(b);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir2);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_durable_across_close_and_reopen)
{
    uint64_t d, f;
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(MKFILE(d, "f", &f), 0);
    struct chunk_info c;
    ck_assert_int_eq(lease(f, 0, &c), 0);
    ck_assert_int_eq(commit(f, 1234, 0, NULL), 0);
    struct mop x = {.type = MOP_SETXATTR, .ino = f, .data = (const uint8_t *)"v", .data_len = 1};
    strcpy(x.name, "user.k");
    ck_assert_int_eq(apply(&x, NULL, NULL), 0);
    struct mstore_stats s1;
    ck_assert_int_eq(mstore_stats(st, &s1), 0);
    mstore_close(st);
    open_store();
    ck_assert_uint_eq(lookup_ino(1, "d"), d);
    ck_assert_uint_eq(lookup_ino(d, "f"), f);
    ck_assert_uint_eq(attr_of(f).size, 1234);
    uint64_t id;
    uint32_t ver;
    ck_assert_int_eq(mstore_chunk_get(st, f, 0, &id, &ver), 0);
    ck_assert_uint_eq(id, c.chunk_id);
    struct wbuf w;
    wbuf_init(&w);
    ck_assert_int_eq(mstore_getxattr(st, f, "user.k", &w), 0);
    wbuf_free(&w);
    struct mstore_stats s2;
    ck_assert_int_eq(mstore_stats(st, &s2), 0);
    ck_assert_uint_eq(s2.inodes, s1.inodes);
    ck_assert_uint_eq(s2.bytes, 1234);
    /* numbers are not reused after reopening */
    uint64_t g;
    ck_assert_int_eq(MKFILE(1, "g", &g), 0);
    ck_assert_uint_gt(g, f);
    struct chunk_info c2;
    ck_assert_int_eq(lease(g, 0, &c2), 0);
    ck_assert_uint_gt(c2.chunk_id, c.chunk_id);
}
END_TEST

START_TEST(test_inode_numbers_never_reused)
{
    uint64_t a, b;
    ck_assert_int_eq(MKFILE(1, "a", &a), 0);
    ck_assert_int_eq(op2(MOP_UNLINK, 1, "a"), 0);
    ck_assert_int_eq(MKFILE(1, "a", &b), 0);
    ck_assert_uint_gt(b, a);
    ck_assert_uint_ne(attr_of(b).gen, 0);
}
END_TEST

START_TEST(test_failed_op_changes_nothing)
{
    uint64_t d;
    ck_assert_int_eq(MKDIR(1, "d", &d), 0);
    ck_assert_int_eq(MKFILE(d, "x", NULL), 0);
    struct cairn_attr before = attr_of(1);
    ck_assert_int_eq(ren(1, "d", d, "y", 0), -EINVAL);
    ck_assert_int_eq(op2(MOP_RMDIR, 1, "d"), -ENOTEMPTY);
    struct cairn_attr after = attr_of(1);
    ck_assert_int_eq(before.nlink, after.nlink);
    ck_assert_int_eq(before.mtime_ns, after.mtime_ns);
    struct mop bad = {.type = 99};
    struct mop_result r;
    ck_assert_int_eq(mstore_apply(st, &bad, &r), -EINVAL);
}
END_TEST

START_TEST(test_mop_encode_decode_roundtrip)
{
    static const uint8_t data[] = "payload";
    struct mop a = {.type = MOP_RENAME,
                    .now_s = -5,
                    .now_ns = 7,
                    .new_ino = 8,
                    .new_gen = 9,
                    .new_chunk = 10,
                    .ino = 11,
                    .parent = 12,
                    .parent2 = 13,
                    .session = 14,
                    .index = 15,
                    .size = 16,
                    .rdev = 17,
                    .mode = 18,
                    .uid = 19,
                    .gid = 20,
                    .valid = 21,
                    .flags = 22,
                    .atime_s = 23,
                    .mtime_s = 24,
                    .atime_ns = 25,
                    .mtime_ns = 26,
                    .data = data,
                    .data_len = 7};
    strcpy(a.name, "old");
    strcpy(a.name2, "new");
    struct wbuf w;
    wbuf_init(&w);
    mop_encode(&a, &w);
    ck_assert_int_eq(w.err, 0);
    struct rcur c;
    rcur_init(&c, w.data, w.len);
    struct mop b;
    ck_assert_int_eq(mop_decode(&c, &b), 0);
    ck_assert_int_eq(rcur_done(&c), 0);
    ck_assert_int_eq(b.type, a.type);
    ck_assert_int_eq(b.now_s, -5);
    ck_assert_uint_eq(b.now_ns, 7);
    ck_assert_uint_eq(b.new_ino, 8);
    ck_assert_uint_eq(b.new_gen, 9);
    ck_assert_uint_eq(b.new_chunk, 10);
    ck_assert_uint_eq(b.ino, 11);
    ck_assert_uint_eq(b.parent, 12);
    ck_assert_uint_eq(b.parent2, 13);
    ck_assert_uint_eq(b.session, 14);
    ck_assert_uint_eq(b.index, 15);
    ck_assert_uint_eq(b.size, 16);
    ck_assert_uint_eq(b.rdev, 17);
    ck_assert_uint_eq(b.mode, 18);
    ck_assert_uint_eq(b.uid, 19);
    ck_assert_uint_eq(b.gid, 20);
    ck_assert_uint_eq(b.valid, 21);
    ck_assert_uint_eq(b.flags, 22);
    ck_assert_int_eq(b.atime_s, 23);
    ck_assert_int_eq(b.mtime_s, 24);
    ck_assert_uint_eq(b.atime_ns, 25);
    ck_assert_uint_eq(b.mtime_ns, 26);
    ck_assert_str_eq(b.name, "old");
    ck_assert_str_eq(b.name2, "new");
    ck_assert_uint_eq(b.data_len, 7);
    ck_assert(memcmp(b.data, data, 7) == 0);
    /* every truncation is refused */
    for (size_t n = 0; n < w.len; n++) {
        rcur_init(&c, w.data, n);
        ck_assert_int_eq(mop_decode(&c, &b), -EBADMSG);
    }
    /* an unknown type is refused */
    w.data[1] = 0xee;
    rcur_init(&c, w.data, w.len);
    ck_assert_int_eq(mop_decode(&c, &b), -EBADMSG);
    wbuf_free(&w);
}
END_TEST

START_TEST(test_decoded_record_applies_like_original)
{
    struct mop a = {.type = MOP_MKDIR, .parent = 1, .mode = 0700};
    strcpy(a.name, "viaraft");
    ck_assert_int_eq(mop_prepare(st, &a), 0);
    struct wbuf w;
    wbuf_init(&w);
    mop_encode(&a, &w);
    struct rcur c;
    rcur_init(&c, w.data, w.len);
    struct mop b;
    ck_assert_int_eq(mop_decode(&c, &b), 0);
    struct mop_result r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(mstore_apply(st, &b, &r), 0);
    ck_assert_uint_eq(r.attr.ino, a.new_ino);
    ck_assert_uint_eq(lookup_ino(1, "viaraft"), a.new_ino);
    wbuf_free(&w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_store");
    TCase *t = tcase_create("store");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_root_exists_after_format);
    tcase_add_test(t, test_create_lookup_getattr);
    tcase_add_test(t, test_create_excl_and_open_existing);
    tcase_add_test(t, test_name_too_long);
    tcase_add_test(t, test_mkdir_nlink);
    tcase_add_test(t, test_rmdir_enotempty_and_success);
    tcase_add_test(t, test_unlink);
    tcase_add_test(t, test_rename_replaces_file);
    tcase_add_test(t, test_rename_replaces_empty_dir_and_type_checks);
    tcase_add_test(t, test_rename_over_nonempty_dir_enotempty);
    tcase_add_test(t, test_rename_noreplace);
    tcase_add_test(t, test_rename_exchange);
    tcase_add_test(t, test_rename_into_own_subtree_einval);
    tcase_add_test(t, test_rename_across_dirs_nlink);
    tcase_add_test(t, test_rename_hard_link_onto_itself_noop);
    tcase_add_test(t, test_link_and_eperm_on_dir);
    tcase_add_test(t, test_symlink_readlink);
    tcase_add_test(t, test_readdir_cookie_resumes_after_deletes_and_inserts);
    tcase_add_test(t, test_readdir_20000_entries_in_pages);
    tcase_add_test(t, test_xattr_create_replace_flags);
    tcase_add_test(t, test_xattr_flag_set_and_cleared_with_last_xattr);
    tcase_add_test(t, test_xattr_flag_same_on_replay);
    tcase_add_test(t, test_chunk_lease_versions);
    tcase_add_test(t, test_copies_inherited);
    tcase_add_test(t, test_chunk_rec_sees_the_open_batch);
    tcase_add_test(t, test_commit_grows_size_only);
    tcase_add_test(t, test_truncate_frees_whole_chunks);
    tcase_add_test(t, test_commit_allocations_give_blocks);
    tcase_add_test(t, test_setattr_chmod_chown_times);
    tcase_add_test(t, test_unlink_while_open_keeps_inode_until_release);
    tcase_add_test(t, test_session_close_purges_orphans);
    tcase_add_test(t, test_durable_across_close_and_reopen);
    tcase_add_test(t, test_parent_times_updated_on_entry_change);
    tcase_add_test(t, test_orphan_survives_reopen_and_session_close_purges_it);
    tcase_add_test(t, test_chunk_list_range);
    tcase_add_test(t, test_setattr_kill_suidgid);
    tcase_add_test(t, test_replica_replay_gives_same_store);
    tcase_add_test(t, test_inode_numbers_never_reused);
    tcase_add_test(t, test_failed_op_changes_nothing);
    tcase_add_test(t, test_mop_encode_decode_roundtrip);
    tcase_add_test(t, test_decoded_record_applies_like_original);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
