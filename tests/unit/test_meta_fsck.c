/* test_meta_fsck.c - unit tests of the store's side of `cairn fsck` (meta/mstore_fsck.c): a
 * real LMDB store damaged directly (an inode record deleted under its entry, a wrong link
 * count, an entry removed from under its inode) is seen as damaged by the walks and the
 * counts, and MOP_FSCK_FIX repairs exactly what it is asked to, only while the damage is
 * still there. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mop.h"
#include "mstore.h"
#include "mstore_fsck.h"
#include "mstore_int.h"
#include "unit_main.h"

static char dir[64];
static struct mstore *st;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mst-fsck-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct mstore_opts o = {.map_size = 1ull << 28, .chunk_size = 1 << 20, .no_sync = 1};
    ck_assert_int_eq(mstore_open(dir, &o, &st), 0);
}

static void teardown(void)
{
    mstore_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int apply(struct mop *op)
{
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    int rc = mop_prepare(st, op);
    return rc ? rc : mstore_apply(st, op, &res);
}

static uint64_t mk(uint16_t type, uint64_t parent, const char *name)
{
    struct mop op = {.type = type, .parent = parent, .mode = 0644};
    if (type == MOP_MKNOD) op.mode |= S_IFREG;
    snprintf(op.name, sizeof(op.name), "%s", name);
    ck_assert_int_eq(apply(&op), 0);
    return op.new_ino;
}

static void hard_link(uint64_t ino, uint64_t parent, const char *name)
{
    struct mop op = {.type = MOP_LINK, .ino = ino, .parent = parent};
    snprintf(op.name, sizeof(op.name), "%s", name);
    ck_assert_int_eq(apply(&op), 0);
}

/* A directory total (rbytes, rfiles, rsubdirs) of dir, as the virtual xattr gives it. */
static long long total(uint64_t dir, const char *name)
{
    char xname[64];
    snprintf(xname, sizeof(xname), CAIRN_DIR_XATTR_PREFIX "%s", name);
    struct wbuf b;
    wbuf_init(&b);
    ck_assert_int_eq(mstore_getxattr(st, dir, xname, &b), 0);
    char txt[32] = "";
    memcpy(txt, b.data, b.len < sizeof(txt) - 1 ? b.len : sizeof(txt) - 1);
    wbuf_free(&b);
    return atoll(txt);
}

static int fix(uint32_t what, uint64_t ino, uint64_t parent, const char *name, uint64_t nlink)
{
    struct mop op = {.type = MOP_FSCK_FIX, .flags = what, .ino = ino, .parent = parent};
    op.size = nlink;
    if (name) snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op);
}

/* ---- damage, straight into LMDB --------------------------------------------------------- */

static MDB_txn *wtxn(void)
{
    MDB_txn *t;
    ck_assert_int_eq(mdb_txn_begin(st->env, NULL, 0, &t), 0);
    return t;
}

static void drop_inode_record(uint64_t ino)
{
    MDB_txn *t = wtxn();
    uint8_t k[8];
    be_put64(k, ino);
    MDB_val key = {8, k};
    ck_assert_int_eq(mdb_del(t, st->inode, &key, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

static void set_nlink(uint64_t ino, uint32_t nlink)
{
    MDB_txn *t = wtxn();
    struct mst_inode r;
    ck_assert_int_eq(mst_inode_get(t, st, ino, &r), 0);
    r.nlink = nlink;
    ck_assert_int_eq(mst_inode_put(t, st, ino, &r), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

static void drop_entry(uint64_t parent, const char *name)
{
    MDB_txn *t = wtxn();
    uint8_t k[8 + CAIRN_NAME_MAX];
    be_put64(k, parent);
    memcpy(k + 8, name, strlen(name));
    MDB_val key = {8 + strlen(name), k};
    ck_assert_int_eq(mdb_del(t, st->dirent, &key, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(t), 0);
}

/* ---- walking ------------------------------------------------------------------------------ */

struct seen {
    int n, dangling;
    uint64_t dangling_parent, dangling_child;
    char dangling_name[CAIRN_NAME_MAX + 1];
};

static int count_inode(void *arg, const struct mstore_fsck_inode *i)
{
    (void)i;
    ((struct seen *)arg)->n++;
    return 0;
}

static int count_entry(void *arg, const struct mstore_fsck_entry *e)
{
    struct seen *s = arg;
    s->n++;
    if (!e->child_exists) {
        s->dangling++;
        s->dangling_parent = e->parent;
        s->dangling_child = e->child;
        snprintf(s->dangling_name, sizeof(s->dangling_name), "%s", e->name);
    }
    return 0;
}

/* Walk every entry max at a time; returns what was seen. */
static struct seen walk_entries(uint32_t max)
{
    struct seen s = {0};
    uint64_t parent = 0;
    char name[CAIRN_NAME_MAX + 1] = "";
    int eof = 0, slices = 0;
    while (!eof) {
        uint64_t np;
        char nn[CAIRN_NAME_MAX + 1];
        ck_assert_int_eq(mstore_fsck_entries(st, parent, name, max, count_entry, &s, &np, nn, &eof),
                         0);
        parent = np;
        memcpy(name, nn, sizeof(name));
        ck_assert_int_lt(++slices, 1000);
    }
    return s;
}

START_TEST(walks_cover_everything_in_slices)
{
    uint64_t d = mk(MOP_MKDIR, CAIRN_ROOT_INO, "d");
    for (int i = 0; i < 10; i++) {
        char n[16];
        snprintf(n, sizeof(n), "f%d", i);
        mk(MOP_MKNOD, i % 2 ? d : CAIRN_ROOT_INO, n);
    }
    uint64_t inodes, entries, chunks;
    ck_assert_int_eq(mstore_fsck_counts(st, &inodes, &entries, &chunks), 0);
    ck_assert_uint_eq(inodes, 12);
    ck_assert_uint_eq(entries, 11);
    ck_assert_uint_eq(chunks, 0);
    /* inodes, 5 at a time */
    struct seen s = {0};
    uint64_t after = 0, next;
    int slices = 0;
    do {
        ck_assert_int_eq(mstore_fsck_inodes(st, after, 5, count_inode, &s, &next), 0);
        after = next;
        slices++;
    } while (next && slices < 100);
    ck_assert_int_eq(s.n, 12);
    ck_assert_int_eq(slices, 3);
    /* entries, 1, 3 and all at a time: the same 11 */
    ck_assert_int_eq(walk_entries(1).n, 11);
    ck_assert_int_eq(walk_entries(3).n, 11);
    ck_assert_int_eq(walk_entries(4096).n, 11);
    ck_assert_int_eq(walk_entries(4096).dangling, 0);
}
END_TEST

START_TEST(dangling_entry_found_and_removed)
{
    uint64_t d = mk(MOP_MKDIR, CAIRN_ROOT_INO, "d");
    uint64_t sub = mk(MOP_MKDIR, d, "sub");
    uint64_t f = mk(MOP_MKNOD, d, "f");
    mk(MOP_MKNOD, d, "g");
    ck_assert_int_eq(total(CAIRN_ROOT_INO, "rsubdirs"), 2);
    drop_inode_record(f);
    drop_inode_record(sub); /* a directory entry too: d's link count counted it */
    struct seen s = walk_entries(2);
    ck_assert_int_eq(s.n, 4);
    ck_assert_int_eq(s.dangling, 2);
    /* a fix that names an inode that exists, or another entry, changes nothing */
    uint64_t g;
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(st, d, "g", &a), 0);
    g = a.ino;
    ck_assert_int_eq(fix(MOP_FSCK_DANGLING, g, d, "g", 0), -ESTALE);
    ck_assert_int_eq(fix(MOP_FSCK_DANGLING, f + 100, d, "f", 0), -ESTALE);
    ck_assert_int_eq(mstore_lookup(st, d, "g", &a), 0);
    /* the real ones go */
    ck_assert_int_eq(mstore_getattr(st, d, &a), 0);
    ck_assert_uint_eq(a.nlink, 3);
    ck_assert_int_eq(fix(MOP_FSCK_DANGLING, f, d, "f", 0), 0);
    ck_assert_int_eq(fix(MOP_FSCK_DANGLING, sub, d, "sub", 0), 0);
    ck_assert_int_eq(fix(MOP_FSCK_DANGLING, f, d, "f", 0), -ENOENT);
    s = walk_entries(2);
    ck_assert_int_eq(s.n, 2);
    ck_assert_int_eq(s.dangling, 0);
    ck_assert_int_eq(mstore_getattr(st, d, &a), 0);
    ck_assert_uint_eq(a.nlink, 2);             /* the lost subdirectory no longer counted */
    ck_assert_int_eq(total(d, "rsubdirs"), 0); /* nor in the directory totals */
    ck_assert_int_eq(total(CAIRN_ROOT_INO, "rsubdirs"), 1);
}
END_TEST

START_TEST(link_counts_counted_and_set)
{
    uint64_t d = mk(MOP_MKDIR, CAIRN_ROOT_INO, "d");
    mk(MOP_MKDIR, d, "s1");
    mk(MOP_MKDIR, d, "s2");
    uint64_t f = mk(MOP_MKNOD, d, "f");
    hard_link(f, CAIRN_ROOT_INO, "f-link");
    uint64_t o = mk(MOP_MKNOD, CAIRN_ROOT_INO, "o");
    set_nlink(f, 5);
    set_nlink(d, 7);
    drop_entry(CAIRN_ROOT_INO, "o"); /* an orphan: no entry, not open */
    struct mstore_fsck_links v[4] = {{.ino = f}, {.ino = d}, {.ino = o}, {.ino = 999}};
    ck_assert_int_eq(mstore_fsck_links(st, v, 4), 0);
    ck_assert(v[0].exists && v[0].nlink == 5 && v[0].entries == 2);
    ck_assert(v[1].exists && v[1].nlink == 7 && v[1].entries == 1 && v[1].subdirs == 2);
    ck_assert(v[2].exists && v[2].nlink == 1 && v[2].entries == 0 && !v[2].open);
    ck_assert(!v[3].exists && v[3].entries == 0);
    /* one path of each */
    char path[CAIRN_PATH_MAX + 1];
    ck_assert_int_eq(mstore_fsck_path(st, v[0].parent, v[0].name, path, sizeof(path)), 0);
    ck_assert_msg(strcmp(path, "/f-link") == 0 || strcmp(path, "/d/f") == 0, "path %s", path);
    ck_assert_int_eq(mstore_fsck_path(st, d, NULL, path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/d");
    ck_assert_int_eq(mstore_fsck_path(st, CAIRN_ROOT_INO, NULL, path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/");
    ck_assert_int_eq(mstore_fsck_path(st, d, "x", path, 4), -ENAMETOOLONG);
    /* without a pass: the primary link (the first name), a directory's own chain */
    ck_assert_int_eq(mstore_fsck_ino_path(st, f, path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/d/f");
    ck_assert_int_eq(mstore_fsck_ino_path(st, d, path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/d");
    ck_assert_int_eq(mstore_fsck_ino_path(st, 999, path, sizeof(path)), -ENOENT);
    /* set right */
    ck_assert_int_eq(fix(MOP_FSCK_NLINK, f, 0, NULL, 2), 0);
    ck_assert_int_eq(fix(MOP_FSCK_NLINK, d, 0, NULL, 4), 0);
    ck_assert_int_eq(fix(MOP_FSCK_NLINK, f, 0, NULL, 0), -EINVAL); /* never 0 */
    ck_assert_int_eq(fix(MOP_FSCK_NLINK, 999, 0, NULL, 1), -ENOENT);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, f, &a), 0);
    ck_assert_uint_eq(a.nlink, 2);
    ck_assert_int_eq(mstore_getattr(st, d, &a), 0);
    ck_assert_uint_eq(a.nlink, 4);
    /* the counts agree now; the orphan is still there (fsck reports it, never drops it) */
    ck_assert_int_eq(mstore_fsck_links(st, v, 3), 0);
    ck_assert(v[0].nlink == v[0].entries && v[1].nlink == 2 + v[1].subdirs);
    ck_assert(v[2].exists && v[2].entries == 0);
    /* an unlink of one name keeps the other (a count of 5 would have kept the inode with none
     * at the last unlink; a count of 1 would have dropped it under the second name) */
    struct mop op = {.type = MOP_UNLINK, .parent = d};
    snprintf(op.name, sizeof(op.name), "f");
    ck_assert_int_eq(apply(&op), 0);
    ck_assert_int_eq(mstore_lookup(st, CAIRN_ROOT_INO, "f-link", &a), 0);
    ck_assert_uint_eq(a.nlink, 1);
}
END_TEST

START_TEST(fix_record_survives_encoding)
{
    struct mop op = {.type = MOP_FSCK_FIX, .flags = MOP_FSCK_DANGLING, .ino = 7, .parent = 3};
    snprintf(op.name, sizeof(op.name), "gone");
    struct wbuf b;
    wbuf_init(&b);
    mop_encode(&op, &b);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    struct mop back;
    ck_assert_int_eq(mop_decode(&c, &back), 0);
    ck_assert_uint_eq(back.type, MOP_FSCK_FIX);
    ck_assert_uint_eq(back.flags, MOP_FSCK_DANGLING);
    ck_assert_uint_eq(back.ino, 7);
    ck_assert_uint_eq(back.parent, 3);
    ck_assert_str_eq(back.name, "gone");
    wbuf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_fsck");
    TCase *tc = tcase_create("fsck");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, walks_cover_everything_in_slices);
    tcase_add_test(tc, dangling_entry_found_and_removed);
    tcase_add_test(tc, link_counts_counted_and_set);
    tcase_add_test(tc, fix_record_survives_encoding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
