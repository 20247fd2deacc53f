/* test_meta_dirs.c - unit tests of readdir positions and open directories in the meta store
 * (meta/mstore_dir.c, mstore_rename.c, mstore_session.c): a listing paged by cookies meets
 * every entry that exists throughout it exactly once while entries are renamed in place,
 * renamed over others, exchanged, moved away or removed; a cookie resumes at the same place
 * later; a second store fed the same encoded records lists the same; and an open directory
 * removed or replaced by rename stays (nlink 0, empty) until its last release. */
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

#define CS (1ull << 20)
#define N_BIG 3000
#define LIST_MAX 8192

static char dir[64], dir2[64];
static struct mstore *st, *st2; /* st2: a replica fed the encoded records, when open */

static struct mstore *open_at(char *path)
{
    struct mstore_opts o = {.map_size = 1ull << 30, .chunk_size = CS, .no_sync = 1};
    struct mstore *s;
    ck_assert_ptr_nonnull(mkdtemp(path));
    ck_assert_int_eq(mstore_open(path, &o, &s), 0);
    return s;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mst-dirs-XXXXXX");
    snprintf(dir2, sizeof(dir2), "/tmp/mst-dirs2-XXXXXX");
    st = open_at(dir);
    st2 = open_at(dir2);
}

static void rm_rf(const char *path)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
    mstore_close(st);
    mstore_close(st2);
    st = st2 = NULL;
    rm_rf(dir);
    rm_rf(dir2);
}

/* Prepare and apply op on st, then apply its encoded bytes on st2 (as a follower does):
 * both must give the same outcome. */
static int apply(struct mop *op, struct cairn_attr *attr)
{
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    int rc = mop_prepare(st, op);
    if (rc) return rc;
    rc = mstore_apply(st, op, &res);
    if (!rc && attr) *attr = res.attr;
    struct wbuf b;
    wbuf_init(&b);
    mop_encode(op, &b);
    struct rcur c;
    rcur_init(&c, b.data, b.len);
    struct mop f;
    ck_assert_int_eq(mop_decode(&c, &f), 0);
    struct mop_result r2;
    memset(&r2, 0, sizeof(r2));
    ck_assert_int_eq(mstore_apply(st2, &f, &r2), rc);
    wbuf_free(&b);
    return rc;
}

static uint64_t mk(uint64_t parent, const char *name, int is_dir)
{
    struct mop op = {.type = is_dir ? MOP_MKDIR : MOP_MKNOD,
                     .parent = parent,
                     .mode = is_dir ? 0755 : (S_IFREG | 0644)};
    snprintf(op.name, sizeof(op.name), "%s", name);
    struct cairn_attr a;
    ck_assert_int_eq(apply(&op, &a), 0);
    return a.ino;
}

static int ren(uint64_t p, const char *n, uint64_t p2, const char *n2, uint32_t flags)
{
    struct mop op = {.type = MOP_RENAME, .parent = p, .parent2 = p2, .flags = flags};
    snprintf(op.name, sizeof(op.name), "%s", n);
    snprintf(op.name2, sizeof(op.name2), "%s", n2);
    return apply(&op, NULL);
}

static int op_name(uint16_t type, uint64_t parent, const char *name)
{
    struct mop op = {.type = type, .parent = parent};
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, NULL);
}

static int op_open(uint16_t type, uint64_t ino, uint64_t session)
{
    struct mop op = {.type = type, .ino = ino, .session = session, .flags = O_RDONLY};
    return apply(&op, NULL);
}

/* ---- a listing in pages -------------------------------------------------------------- */

struct ent {
    uint64_t ino, cookie;
    char name[CAIRN_NAME_MAX + 1];
};

struct page {
    struct ent e[LIST_MAX];
    int n, max;
};

static int page_fn(void *arg, uint64_t ino, uint32_t mode, const char *name,
                   const struct cairn_attr *attr, uint64_t cookie_next)
{
    (void)mode;
    (void)attr;
    struct page *p = arg;
    if (p->n >= p->max) return 1;
    p->e[p->n].ino = ino;
    p->e[p->n].cookie = cookie_next;
    snprintf(p->e[p->n].name, sizeof(p->e[p->n].name), "%s", name);
    p->n++;
    return 0;
}

/* Up to max entries of d from cookie on, in p; returns eof. */
static int list_page(struct mstore *s, uint64_t d, uint64_t cookie, int max, struct page *p)
{
    p->n = 0;
    p->max = max;
    int eof = 0;
    ck_assert_int_eq(mstore_readdir(s, d, cookie, 0, page_fn, p, &eof), 0);
    return eof;
}

static struct page pg, pg2;

/* The whole listing of d in both stores: the same names, inodes and cookies. */
static void same_on_replica(uint64_t d)
{
    list_page(st, d, 0, LIST_MAX, &pg);
    list_page(st2, d, 0, LIST_MAX, &pg2);
    ck_assert_int_eq(pg.n, pg2.n);
    for (int i = 0; i < pg.n; i++) {
        ck_assert_uint_eq(pg.e[i].ino, pg2.e[i].ino);
        ck_assert_uint_eq(pg.e[i].cookie, pg2.e[i].cookie);
        ck_assert_str_eq(pg.e[i].name, pg2.e[i].name);
    }
}

static int seen_count(const uint64_t *seen, int n, uint64_t ino)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += seen[i] == ino;
    return c;
}

/* A name that sorts anywhere: a scrambled number first. */
static void any_name(char *buf, size_t len, unsigned i, unsigned round)
{
    unsigned h = (i * 2654435761u) ^ (round * 40503u);
    snprintf(buf, len, "%08x-%u-%u", h, i, round);
}

START_TEST(test_rename_every_entry_read_seen_once)
{
    uint64_t d = mk(1, "big", 1);
    static uint64_t inos[N_BIG], seen[N_BIG * 2];
    char n[64];
    for (unsigned i = 0; i < N_BIG; i++) {
        any_name(n, sizeof(n), i, 0);
        inos[i] = mk(d, n, 0);
    }
    int nseen = 0, eof = 0, pages = 0;
    uint64_t cookie = 0;
    unsigned round = 1;
    while (!eof && pages < N_BIG) {
        eof = list_page(st, d, cookie, 7, &pg);
        pages++;
        for (int i = 0; i < pg.n && nseen < N_BIG * 2; i++) {
            seen[nseen++] = pg.e[i].ino;
            cookie = pg.e[i].cookie;
            /* rename the entry just read, and one not read yet, to names sorting anywhere */
            any_name(n, sizeof(n), (unsigned)nseen, round++);
            ck_assert_int_eq(ren(d, pg.e[i].name, d, n, 0), 0);
        }
    }
    ck_assert_int_eq(eof, 1);
    ck_assert_int_eq(nseen, N_BIG);
    for (unsigned i = 0; i < N_BIG; i++)
        ck_assert_int_eq(seen_count(seen, nseen, inos[i]), 1);
    same_on_replica(d);
    ck_assert_int_eq(pg.n, N_BIG);
}
END_TEST

/* Renames of entries not read yet, over read and unread ones, and removals and creations:
 * each entry that existed throughout is seen exactly once. */
START_TEST(test_rename_over_and_remove_while_listing)
{
    uint64_t d = mk(1, "d", 1), ino[10];
    char n[16];
    for (int i = 0; i < 10; i++) {
        snprintf(n, sizeof(n), "e%d", i);
        ino[i] = mk(d, n, 0);
    }
    ck_assert_int_eq(list_page(st, d, 0, 5, &pg), 0); /* e0..e4 */
    uint64_t cookie = pg.e[4].cookie;
    ck_assert_str_eq(pg.e[4].name, "e4");
    ck_assert_int_eq(ren(d, "e7", d, "e2", 0), 0);      /* unread over read: e7 still to come */
    ck_assert_int_eq(ren(d, "e1", d, "e8", 0), 0);      /* read over unread: e1 not again */
    ck_assert_int_eq(ren(d, "e6", d, "a-first", 0), 0); /* unread, to a name sorting first */
    ck_assert_int_eq(op_name(MOP_UNLINK, d, "e9"), 0);
    mk(d, "new", 0);
    /* the rest, from the cookie, as another open of the directory would resume it */
    ck_assert_int_eq(list_page(st, d, cookie, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 4); /* e5, a-first (e6), e2 (e7), new */
    ck_assert_uint_eq(pg.e[0].ino, ino[5]);
    ck_assert_uint_eq(pg.e[1].ino, ino[6]);
    ck_assert_str_eq(pg.e[1].name, "a-first");
    ck_assert_uint_eq(pg.e[2].ino, ino[7]);
    ck_assert_str_eq(pg.e[2].name, "e2");
    ck_assert_str_eq(pg.e[3].name, "new");
    /* the same cookie resumes the same way later, after more renames of read entries */
    ck_assert_int_eq(ren(d, "e0", d, "zz", 0), 0);
    ck_assert_int_eq(ren(d, "e8", d, "e0", 0), 0);
    ck_assert_int_eq(list_page(st, d, cookie, LIST_MAX, &pg2), 1);
    ck_assert_int_eq(pg2.n, 4);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(pg2.e[i].ino, pg.e[i].ino);
    /* the whole listing: every inode once */
    ck_assert_int_eq(list_page(st, d, 0, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 8); /* zz e0 e3 e4 e5 a-first e2 new */
    same_on_replica(d);
}
END_TEST

START_TEST(test_exchange_keeps_names_in_place)
{
    uint64_t d = mk(1, "d", 1), d2 = mk(1, "d2", 1);
    uint64_t a = mk(d, "a", 0), b = mk(d, "b", 0), c = mk(d, "c", 1), x = mk(d, "x", 0);
    uint64_t y = mk(d2, "y", 0), z = mk(d2, "z", 0);
    ck_assert_int_eq(list_page(st, d, 0, 2, &pg), 0); /* a, b */
    uint64_t cookie = pg.e[1].cookie;
    ck_assert_int_eq(ren(d, "a", d, "x", PROTO_RENAME_EXCHANGE), 0);
    ck_assert_int_eq(ren(d, "c", d2, "y", PROTO_RENAME_EXCHANGE), 0);
    ck_assert_int_eq(list_page(st, d, cookie, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 2); /* c (now y's file), x (now a) */
    ck_assert_str_eq(pg.e[0].name, "c");
    ck_assert_uint_eq(pg.e[0].ino, y);
    ck_assert_str_eq(pg.e[1].name, "x");
    ck_assert_uint_eq(pg.e[1].ino, a);
    ck_assert_int_eq(list_page(st, d2, 0, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 2);
    ck_assert_str_eq(pg.e[0].name, "y");
    ck_assert_uint_eq(pg.e[0].ino, c);
    ck_assert_uint_eq(pg.e[1].ino, z);
    /* the moved directory's parent link follows: ".." of c is d2 now */
    struct cairn_attr at;
    ck_assert_int_eq(mstore_lookup(st, c, "..", &at), 0);
    ck_assert_uint_eq(at.ino, d2);
    ck_assert_int_eq(mstore_lookup(st, d, "a", &at), 0);
    ck_assert_uint_eq(at.ino, x);
    ck_assert_int_eq(mstore_lookup(st, d, "b", &at), 0);
    ck_assert_uint_eq(at.ino, b);
    same_on_replica(d);
    same_on_replica(d2);
}
END_TEST

START_TEST(test_move_to_other_directory_is_new_there)
{
    uint64_t d = mk(1, "d", 1), d2 = mk(1, "d2", 1);
    uint64_t a = mk(d, "a", 0);
    mk(d, "b", 0);
    mk(d2, "p", 0);
    mk(d2, "q", 0);
    ck_assert_int_eq(list_page(st, d2, 0, 1, &pg), 0); /* p */
    uint64_t cookie = pg.e[0].cookie;
    ck_assert_int_eq(ren(d, "a", d2, "a", 0), 0);
    ck_assert_int_eq(list_page(st, d2, cookie, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 2); /* q, then a at a new position */
    ck_assert_str_eq(pg.e[0].name, "q");
    ck_assert_uint_eq(pg.e[1].ino, a);
    ck_assert_int_eq(list_page(st, d, 0, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 1);
    ck_assert_str_eq(pg.e[0].name, "b");
    /* and renamed back in its new directory, it keeps that position */
    ck_assert_int_eq(ren(d2, "a", d2, "0", 0), 0);
    ck_assert_int_eq(list_page(st, d2, cookie, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 2);
    ck_assert_str_eq(pg.e[1].name, "0");
    same_on_replica(d);
    same_on_replica(d2);
}
END_TEST

/* ---- open directories ---------------------------------------------------------------- */

static uint64_t inode_count(struct mstore *s)
{
    struct mstore_stats ss;
    ck_assert_int_eq(mstore_stats(s, &ss), 0);
    return ss.inodes;
}

START_TEST(test_open_directory_survives_rmdir)
{
    uint64_t d = mk(1, "d", 1);
    uint64_t before = inode_count(st);
    ck_assert_int_eq(op_open(MOP_OPEN, d, 7), 0);
    ck_assert_int_eq(op_name(MOP_RMDIR, 1, "d"), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, d, &a), 0);
    ck_assert_uint_eq(a.nlink, 0);
    ck_assert(S_ISDIR(a.mode));
    ck_assert_int_eq(list_page(st, d, 0, LIST_MAX, &pg), 1);
    ck_assert_int_eq(pg.n, 0);
    /* a removed directory takes no new names, neither made nor moved there */
    ck_assert_int_eq(op_name(MOP_MKDIR, d, "x"), -ENOENT);
    mk(1, "f", 0);
    ck_assert_int_eq(ren(1, "f", d, "f", 0), -ENOENT);
    ck_assert_int_eq(mstore_getattr(st, 1, &a), 0);
    ck_assert_uint_eq(a.nlink, 2); /* the root lost the subdirectory's ".." */
    ck_assert_int_eq(op_open(MOP_RELEASE, d, 7), 0);
    ck_assert_int_eq(mstore_getattr(st, d, &a), -ENOENT);
    ck_assert_int_eq(mstore_getattr(st2, d, &a), -ENOENT);
    ck_assert_uint_eq(inode_count(st), before); /* d gone, f added */
}
END_TEST

START_TEST(test_open_directory_survives_rename_over)
{
    uint64_t old = mk(1, "old", 1), neu = mk(1, "new", 1);
    uint64_t before = inode_count(st);
    ck_assert_int_eq(op_open(MOP_OPEN, old, 3), 0);
    ck_assert_int_eq(op_open(MOP_OPEN, old, 4), 0);
    ck_assert_int_eq(ren(1, "new", 1, "old", 0), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, old, &a), 0);
    ck_assert_uint_eq(a.nlink, 0);
    ck_assert_int_eq(mstore_getattr(st2, old, &a), 0);
    ck_assert_uint_eq(a.nlink, 0);
    ck_assert_int_eq(mstore_lookup(st, 1, "old", &a), 0);
    ck_assert_uint_eq(a.ino, neu);
    ck_assert_uint_eq(inode_count(st), before);
    ck_assert_int_eq(op_open(MOP_RELEASE, old, 3), 0);
    ck_assert_int_eq(mstore_getattr(st, old, &a), 0); /* session 4 still has it open */
    /* the close of the last session holding it purges it */
    struct mop sc = {.type = MOP_SESSION_CLOSE, .session = 4};
    ck_assert_int_eq(apply(&sc, NULL), 0);
    ck_assert_int_eq(mstore_getattr(st, old, &a), -ENOENT);
    ck_assert_int_eq(mstore_getattr(st2, old, &a), -ENOENT);
    ck_assert_uint_eq(inode_count(st), before - 1);
    ck_assert_uint_eq(inode_count(st2), before - 1);
}
END_TEST

START_TEST(test_closed_directory_goes_at_once)
{
    uint64_t d = mk(1, "d", 1);
    mk(1, "e", 1);
    ck_assert_int_eq(ren(1, "e", 1, "d", 0), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, d, &a), -ENOENT);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_dirs");
    TCase *t = tcase_create("dirs");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_rename_every_entry_read_seen_once);
    tcase_add_test(t, test_rename_over_and_remove_while_listing);
    tcase_add_test(t, test_exchange_keeps_names_in_place);
    tcase_add_test(t, test_move_to_other_directory_is_new_there);
    tcase_add_test(t, test_open_directory_survives_rmdir);
    tcase_add_test(t, test_open_directory_survives_rename_over);
    tcase_add_test(t, test_closed_directory_goes_at_once);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
