/* test_meta_rstat.c - unit tests of the recursive directory totals (meta/mstore_rstat.c):
 * after every kind of record that changes the tree or a size, each directory's totals equal
 * what a walk of the tree below it counts (as du -sb does: each inode once); hard links count
 * under their primary link; the virtual xattrs; and a store without totals gets them at open. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mop.h"
#include "mstore.h"
#include "unit_main.h"

#define CS (1ull << 20)
#define SEEN_MAX 4096

static char dir[64];
static struct mstore *st;

static void open_store(void)
{
    struct mstore_opts o = {.map_size = 1ull << 30, .chunk_size = CS, .no_sync = 1};
    ck_assert_int_eq(mstore_open(dir, &o, &st), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mst-rstat-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    open_store();
}

static void teardown(void)
{
    mstore_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int apply(struct mop *op, struct cairn_attr *attr)
{
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    int rc = mop_prepare(st, op);
    if (!rc) rc = mstore_apply(st, op, &res);
    if (!rc && attr) *attr = res.attr;
    return rc;
}

static uint64_t mk(uint16_t type, uint64_t parent, const char *name, uint32_t mode)
{
    struct mop op = {.type = type, .parent = parent, .mode = mode, .uid = 1, .gid = 1};
    snprintf(op.name, sizeof(op.name), "%s", name);
    struct cairn_attr a;
    ck_assert_int_eq(apply(&op, &a), 0);
    return a.ino;
}
#define MKDIR(p, n) mk(MOP_MKDIR, p, n, 0755)
#define MKFILE(p, n) mk(MOP_MKNOD, p, n, S_IFREG | 0644)

static uint64_t mksym(uint64_t parent, const char *name, const char *target)
{
    struct mop op = {.type = MOP_SYMLINK,
                     .parent = parent,
                     .data = (const uint8_t *)target,
                     .data_len = (uint32_t)strlen(target)};
    snprintf(op.name, sizeof(op.name), "%s", name);
    struct cairn_attr a;
    ck_assert_int_eq(apply(&op, &a), 0);
    return a.ino;
}

static void commit(uint64_t ino, uint64_t size, uint32_t flags)
{
    struct mop op = {.type = MOP_COMMIT, .ino = ino, .size = size, .flags = flags, .mtime_s = 9};
    ck_assert_int_eq(apply(&op, NULL), 0);
}

static void truncate_to(uint64_t ino, uint64_t size)
{
    struct mop op = {.type = MOP_SETATTR, .ino = ino, .valid = SETATTR_SIZE, .size = size};
    ck_assert_int_eq(apply(&op, NULL), 0);
}

static int op_name(uint16_t type, uint64_t parent, const char *name)
{
    struct mop op = {.type = type, .parent = parent};
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, NULL);
}

static int ren(uint64_t p, const char *n, uint64_t p2, const char *n2, uint32_t flags)
{
    struct mop op = {.type = MOP_RENAME, .parent = p, .parent2 = p2, .flags = flags};
    snprintf(op.name, sizeof(op.name), "%s", n);
    snprintf(op.name2, sizeof(op.name2), "%s", n2);
    return apply(&op, NULL);
}

static int hardlink(uint64_t ino, uint64_t parent, const char *name)
{
    struct mop op = {.type = MOP_LINK, .ino = ino, .parent = parent};
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, NULL);
}

/* ---- the reference: a walk of the tree, each inode counted once (du -sb) ---------------- */

struct walk {
    struct mstore_rstat tot;
    uint64_t seen[SEEN_MAX];
    int nseen;
    uint64_t dirs[SEEN_MAX]; /* directories met, to check each one's totals */
    int ndirs;
};

static int walk_dir(struct walk *w, uint64_t d, int depth);

static int walk_entry(void *arg, uint64_t ino, uint32_t mode, const char *name,
                      const struct cairn_attr *attr, uint64_t cookie_next)
{
    (void)name;
    (void)cookie_next;
    struct walk *w = arg;
    if (S_ISDIR(mode)) {
        w->tot.rsubdirs++;
        ck_assert_int_lt(w->ndirs, SEEN_MAX);
        w->dirs[w->ndirs++] = ino;
        return 0;
    }
    for (int i = 0; i < w->nseen; i++)
        if (w->seen[i] == ino) return 0; /* another link of an inode counted already */
    ck_assert_int_lt(w->nseen, SEEN_MAX);
    w->seen[w->nseen++] = ino;
    w->tot.rfiles++;
    w->tot.rbytes += attr->size;
    return 0;
}

static int walk_dir(struct walk *w, uint64_t d, int depth)
{
    ck_assert_int_lt(depth, 64);
    int first = w->ndirs, eof = 0;
    ck_assert_int_eq(mstore_readdir(st, d, 0, 1, walk_entry, w, &eof), 0);
    ck_assert(eof);
    int last = w->ndirs;
    for (int i = first; i < last; i++)
        walk_dir(w, w->dirs[i], depth + 1);
    return 0;
}

static struct mstore_rstat ref_of(uint64_t d, struct walk *w)
{
    memset(w, 0, sizeof(*w));
    walk_dir(w, d, 0);
    return w->tot;
}

static struct mstore_rstat rstat_of(uint64_t d)
{
    struct mstore_rstat r;
    ck_assert_int_eq(mstore_dir_rstat(st, d, &r), 0);
    return r;
}

/* Every directory's totals equal the walk below it. */
static void check_all(void)
{
    static struct walk w, sub;
    ref_of(1, &w);
    uint64_t dirs[SEEN_MAX + 1];
    int n = w.ndirs;
    memcpy(dirs, w.dirs, sizeof(uint64_t) * (size_t)n);
    dirs[n++] = 1;
    for (int i = 0; i < n; i++) {
        struct mstore_rstat want = ref_of(dirs[i], &sub), got = rstat_of(dirs[i]);
        ck_assert_msg(got.rbytes == want.rbytes && got.rfiles == want.rfiles &&
                          got.rsubdirs == want.rsubdirs,
                      "dir %llu: rbytes %llu/%llu rfiles %llu/%llu rsubdirs %llu/%llu (got/want)",
                      (unsigned long long)dirs[i], (unsigned long long)got.rbytes,
                      (unsigned long long)want.rbytes, (unsigned long long)got.rfiles,
                      (unsigned long long)want.rfiles, (unsigned long long)got.rsubdirs,
                      (unsigned long long)want.rsubdirs);
    }
}

static void expect(uint64_t d, uint64_t bytes, uint64_t files, uint64_t subdirs)
{
    struct mstore_rstat r = rstat_of(d);
    ck_assert_uint_eq(r.rbytes, bytes);
    ck_assert_uint_eq(r.rfiles, files);
    ck_assert_uint_eq(r.rsubdirs, subdirs);
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_rstat_empty_root)
{
    expect(1, 0, 0, 0);
    uint64_t f = MKFILE(1, "f");
    struct mstore_rstat r;
    ck_assert_int_eq(mstore_dir_rstat(st, f, &r), -ENOTDIR);
    ck_assert_int_eq(mstore_dir_rstat(st, 999, &r), -ENOENT);
}
END_TEST

START_TEST(test_rstat_tree_creates_and_writes)
{
    uint64_t a = MKDIR(1, "a"), b = MKDIR(a, "b"), c = MKDIR(b, "c");
    uint64_t f1 = MKFILE(a, "f1"), f2 = MKFILE(c, "f2");
    commit(f1, 1000, 0);
    commit(f2, 3 * CS + 7, 0); /* several chunks */
    mksym(b, "s", "../some/target");
    mk(MOP_MKNOD, c, "fifo", S_IFIFO | 0644);
    struct mop cr = {.type = MOP_CREATE, .parent = c, .mode = 0600, .session = 3};
    strcpy(cr.name, "created");
    struct cairn_attr ca;
    ck_assert_int_eq(apply(&cr, &ca), 0);
    commit(ca.ino, 5, 0);
    expect(c, 3 * CS + 7 + 5, 3, 0);
    expect(b, 3 * CS + 7 + 5 + 14, 4, 1);
    expect(a, 3 * CS + 7 + 5 + 14 + 1000, 5, 2);
    expect(1, 3 * CS + 7 + 5 + 14 + 1000, 5, 3);
    commit(f1, 10, 0); /* a commit never shrinks without COMMIT_SET_SIZE */
    expect(a, 3 * CS + 7 + 5 + 14 + 1000, 5, 2);
    check_all();
}
END_TEST

START_TEST(test_rstat_size_changes)
{
    uint64_t d = MKDIR(1, "d"), e = MKDIR(d, "e");
    uint64_t f = MKFILE(e, "f");
    truncate_to(f, 5 * CS); /* a sparse grow */
    expect(1, 5 * CS, 1, 2);
    truncate_to(f, 100); /* shrink */
    expect(d, 100, 1, 1);
    commit(f, 50, COMMIT_SET_SIZE);
    expect(1, 50, 1, 2);
    commit(f, 4096, 0);
    expect(e, 4096, 1, 0);
    struct mop op = {.type = MOP_OPEN, .ino = f, .session = 2, .flags = O_TRUNC | O_WRONLY};
    ck_assert_int_eq(apply(&op, NULL), 0);
    expect(1, 0, 1, 2);
    check_all();
}
END_TEST

START_TEST(test_rstat_renames)
{
    uint64_t a = MKDIR(1, "a"), b = MKDIR(1, "b"), sub = MKDIR(a, "sub"), deep = MKDIR(sub, "d");
    uint64_t f = MKFILE(a, "f"), g = MKFILE(deep, "g"), h = MKFILE(b, "h");
    commit(f, 100, 0);
    commit(g, 2000, 0);
    commit(h, 30000, 0);
    check_all();
    ck_assert_int_eq(ren(a, "f", b, "f", 0), 0); /* a file across directories */
    expect(a, 2000, 1, 2);
    expect(b, 30100, 2, 0);
    check_all();
    ck_assert_int_eq(ren(a, "sub", b, "moved", 0), 0); /* a whole directory */
    expect(a, 0, 0, 0);
    expect(b, 32100, 3, 2);
    expect(1, 32100, 3, 4);
    check_all();
    ck_assert_int_eq(ren(b, "moved", b, "again", 0), 0); /* within one directory */
    check_all();
    ck_assert_int_eq(ren(b, "f", b, "h", 0), 0); /* replaces h */
    expect(b, 2100, 2, 2);
    check_all();
    uint64_t x = MKFILE(a, "x");
    commit(x, 7, 0);
    ck_assert_int_eq(ren(a, "x", b, "again", PROTO_RENAME_EXCHANGE), 0);
    expect(a, 2000, 1, 2);
    expect(b, 107, 2, 0);
    check_all();
    ck_assert_int_eq(ren(a, "x", a, "x", 0), 0);
    ck_assert_int_eq(ren(1, "a", a, "inside", 0), -EINVAL); /* refused: nothing changes */
    check_all();
    (void)deep;
}
END_TEST

START_TEST(test_rstat_unlink_rmdir_orphan)
{
    uint64_t d = MKDIR(1, "d"), e = MKDIR(d, "e");
    uint64_t f = MKFILE(e, "f"), g = MKFILE(d, "g");
    commit(f, 1234, 0);
    commit(g, 10, 0);
    ck_assert_int_eq(op_name(MOP_UNLINK, d, "g"), 0);
    expect(1, 1234, 1, 2);
    /* an open file unlinked: gone from the totals, also when it grows afterwards */
    struct mop op = {.type = MOP_OPEN, .ino = f, .session = 4, .flags = O_RDWR};
    ck_assert_int_eq(apply(&op, NULL), 0);
    ck_assert_int_eq(op_name(MOP_UNLINK, e, "f"), 0);
    expect(1, 0, 0, 2);
    commit(f, 99999, 0);
    expect(1, 0, 0, 2);
    struct mop rel = {.type = MOP_RELEASE, .ino = f, .session = 4};
    ck_assert_int_eq(apply(&rel, NULL), 0);
    ck_assert_int_eq(op_name(MOP_RMDIR, d, "e"), 0);
    expect(1, 0, 0, 1);
    ck_assert_int_eq(op_name(MOP_RMDIR, 1, "d"), 0);
    expect(1, 0, 0, 0);
    check_all();
}
END_TEST

START_TEST(test_rstat_hard_links_primary)
{
    uint64_t d1 = MKDIR(1, "d1"), d2 = MKDIR(1, "d2");
    uint64_t f = MKFILE(d1, "f");
    commit(f, 500, 0);
    ck_assert_int_eq(hardlink(f, d2, "l"), 0);
    ck_assert_int_eq(hardlink(f, d1, "f2"), 0);
    expect(d1, 500, 1, 0); /* counted once, under the primary link's directory */
    expect(d2, 0, 0, 0);
    expect(1, 500, 1, 2); /* the root holds every link: like du, one inode once */
    commit(f, 800, 0);
    expect(d1, 800, 1, 0);
    ck_assert_int_eq(op_name(MOP_UNLINK, d1, "f"), 0); /* d1 keeps a name: stays there */
    expect(d1, 800, 1, 0);
    ck_assert_int_eq(op_name(MOP_UNLINK, d1, "f2"), 0); /* the last name in d1 */
    expect(d1, 0, 0, 0);
    expect(d2, 800, 1, 0);
    expect(1, 800, 1, 2);
    ck_assert_int_eq(ren(d2, "l", d1, "back", 0), 0);
    expect(d1, 800, 1, 0);
    expect(d2, 0, 0, 0);
    ck_assert_int_eq(op_name(MOP_UNLINK, d1, "back"), 0);
    expect(1, 0, 0, 2);
    check_all();
}
END_TEST

START_TEST(test_rstat_xattrs)
{
    uint64_t d = MKDIR(1, "d"), f = MKFILE(d, "f");
    MKDIR(d, "sub");
    commit(f, 4242, 0);
    struct wbuf v;
    wbuf_init(&v);
    ck_assert_int_eq(mstore_getxattr(st, d, "user.cairn.dir.rbytes", &v), 0);
    ck_assert_uint_eq(v.len, 4);
    ck_assert(memcmp(v.data, "4242", 4) == 0);
    v.len = 0;
    ck_assert_int_eq(mstore_getxattr(st, 1, "user.cairn.dir.rsubdirs", &v), 0);
    ck_assert(v.len == 1 && v.data[0] == '2');
    v.len = 0;
    ck_assert_int_eq(mstore_getxattr(st, d, "user.cairn.dir.rfiles", &v), 0);
    ck_assert(v.len == 1 && v.data[0] == '1');
    v.len = 0;
    ck_assert_int_eq(mstore_getxattr(st, f, "user.cairn.dir.rbytes", &v), -ENODATA);
    ck_assert_int_eq(mstore_getxattr(st, d, "user.cairn.dir.nope", &v), -ENODATA);
    /* never stored, never listed, not settable */
    struct mop set = {.type = MOP_SETXATTR, .ino = d, .data = (const uint8_t *)"1", .data_len = 1};
    strcpy(set.name, "user.cairn.dir.rbytes");
    ck_assert_int_eq(apply(&set, NULL), -EPERM);
    struct mop rm = {.type = MOP_REMOVEXATTR, .ino = d};
    strcpy(rm.name, "user.cairn.dir.rfiles");
    ck_assert_int_eq(apply(&rm, NULL), -EPERM);
    ck_assert_int_eq(mstore_listxattr(st, d, &v), 0);
    ck_assert_uint_eq(v.len, 0);
    wbuf_free(&v);
}
END_TEST

/* Take the totals out of a closed store, as a store written before they existed. */
static void strip_totals(void)
{
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi meta, rs, il;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 24), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, 1ull << 30), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &t), 0);
    ck_assert_int_eq(mdb_dbi_open(t, "meta", 0, &meta), 0);
    ck_assert_int_eq(mdb_dbi_open(t, "rstat", 0, &rs), 0);
    ck_assert_int_eq(mdb_dbi_open(t, "ilink", 0, &il), 0);
    MDB_val k = {5, "rstat"};
    ck_assert_int_eq(mdb_del(t, meta, &k, NULL), 0);
    ck_assert_int_eq(mdb_drop(t, rs, 1), 0);
    ck_assert_int_eq(mdb_drop(t, il, 1), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

START_TEST(test_rstat_computed_at_open)
{
    uint64_t a = MKDIR(1, "a"), b = MKDIR(a, "b"), c = MKDIR(1, "c");
    uint64_t f = MKFILE(b, "f"), g = MKFILE(c, "g");
    commit(f, 777, 0);
    commit(g, 3 * CS, 0);
    mksym(a, "s", "xyz");
    ck_assert_int_eq(hardlink(f, b, "f2"), 0);
    struct mstore_rstat before = rstat_of(1), ba = rstat_of(a);
    mstore_close(st);
    strip_totals();
    open_store();
    struct mstore_rstat after = rstat_of(1), aa = rstat_of(a);
    ck_assert_uint_eq(after.rbytes, before.rbytes);
    ck_assert_uint_eq(after.rfiles, before.rfiles);
    ck_assert_uint_eq(after.rsubdirs, before.rsubdirs);
    ck_assert_uint_eq(aa.rbytes, ba.rbytes);
    ck_assert_uint_eq(aa.rfiles, 2);
    check_all();
    /* and kept up to date from there on */
    commit(g, 3 * CS + 1, 0);
    ck_assert_int_eq(ren(b, "f", c, "f", 0), 0);
    ck_assert_int_eq(op_name(MOP_UNLINK, b, "f2"), 0);
    check_all();
    expect(c, 3 * CS + 1 + 777, 2, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_rstat");
    TCase *tc = tcase_create("rstat");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rstat_empty_root);
    tcase_add_test(tc, test_rstat_tree_creates_and_writes);
    tcase_add_test(tc, test_rstat_size_changes);
    tcase_add_test(tc, test_rstat_renames);
    tcase_add_test(tc, test_rstat_unlink_rmdir_orphan);
    tcase_add_test(tc, test_rstat_hard_links_primary);
    tcase_add_test(tc, test_rstat_xattrs);
    tcase_add_test(tc, test_rstat_computed_at_open);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
