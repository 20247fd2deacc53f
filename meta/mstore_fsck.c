/* mstore_fsck.c - what `cairn fsck` reads from the metadata store (mstore_fsck.h): the inodes
 * and directory entries walked in slices, the entries pointing at a few inodes counted in one
 * read transaction, paths, table sizes; and the record that repairs what fsck may repair
 * (MOP_FSCK_FIX: remove a dangling entry, set a link count), which checks again inside its
 * own transaction that the damage is still there, so every replica applies it the same way. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_fsck.h"
#include "mstore_int.h"

int mstore_fsck_counts(struct mstore *s, uint64_t *inodes, uint64_t *entries, uint64_t *chunks)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    MDB_stat st;
    rc = mst_err(mdb_stat(t, s->inode, &st));
    if (!rc) *inodes = st.ms_entries;
    if (!rc) rc = mst_err(mdb_stat(t, s->dirent, &st));
    if (!rc) *entries = st.ms_entries;
    if (!rc) rc = mst_err(mdb_stat(t, s->chunkid, &st));
    if (!rc) *chunks = st.ms_entries;
    mdb_txn_abort(t);
    return rc;
}

int mstore_fsck_inodes(struct mstore *s, uint64_t after, uint32_t max, mstore_fsck_inode_fn fn,
                       void *arg, uint64_t *next)
{
    MDB_txn *t;
    MDB_cursor *c;
    *next = 0;
    if (after == UINT64_MAX) return 0;
    int rc = mst_rcursor(s, s->inode, &t, &c);
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, after + 1);
    MDB_val key = {8, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    uint32_t seen = 0;
    while (mrc == 0 && seen < max) {
        if (key.mv_size != 8) break;
        uint64_t ino = be_get64(key.mv_data);
        struct mst_inode r;
        seen++;
        *next = ino;
        if (mst_inode_get(t, s, ino, &r) == 0) {
            struct mstore_fsck_inode i = {.ino = ino, .mode = r.mode, .nlink = r.nlink};
            i.open = mst_is_open(t, s, ino) > 0;
            if (fn(arg, &i)) break;
        }
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (mrc == MDB_NOTFOUND)
        *next = 0;
    else if (mrc)
        rc = mst_err(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

int mstore_fsck_entries(struct mstore *s, uint64_t parent, const char *name, uint32_t max,
                        mstore_fsck_entry_fn fn, void *arg, uint64_t *next_parent, char *next_name,
                        int *eof)
{
    MDB_txn *t;
    MDB_cursor *c;
    *eof = 0;
    *next_parent = parent;
    snprintf(next_name, CAIRN_NAME_MAX + 1, "%s", name);
    size_t nl = strnlen(name, CAIRN_NAME_MAX);
    int rc = mst_rcursor(s, s->dirent, &t, &c);
    if (rc) return rc;
    uint8_t k[8 + CAIRN_NAME_MAX];
    be_put64(k, parent);
    memcpy(k + 8, name, nl);
    MDB_val key = {8 + nl, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    /* strictly after the cursor: skip the entry it names */
    if (mrc == 0 && (parent || nl) && key.mv_size == 8 + nl && memcmp(key.mv_data, k, 8 + nl) == 0)
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    uint32_t seen = 0;
    while (mrc == 0 && seen < max) {
        if (key.mv_size < 9 || key.mv_size > 8 + CAIRN_NAME_MAX || val.mv_size != 20) {
            rc = -EIO;
            break;
        }
        char ename[CAIRN_NAME_MAX + 1];
        memcpy(ename, (uint8_t *)key.mv_data + 8, key.mv_size - 8);
        ename[key.mv_size - 8] = '\0';
        struct mstore_fsck_entry e = {.parent = be_get64(key.mv_data),
                                      .child = le_get64(val.mv_data),
                                      .mode = le_get32((uint8_t *)val.mv_data + 8),
                                      .name = ename};
        struct mst_inode r;
        int irc = mst_inode_get(t, s, e.child, &r);
        if (irc && irc != -ENOENT) {
            rc = irc;
            break;
        }
        e.child_exists = irc == 0;
        e.child_is_dir = irc == 0 && S_ISDIR(r.mode);
        seen++;
        *next_parent = e.parent;
        memcpy(next_name, ename, key.mv_size - 8 + 1);
        if (fn(arg, &e)) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (mrc == MDB_NOTFOUND)
        *eof = 1;
    else if (mrc && !rc)
        rc = mst_err(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

static int ino_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Index in v of ino (sorted[] maps the sorted inode numbers to their index), or -1. */
static int links_find(const uint64_t *sorted, uint32_t n, uint64_t ino)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t v = sorted[2 * mid];
        if (v == ino) return (int)sorted[2 * mid + 1];
        if (v < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int mstore_fsck_links(struct mstore *s, struct mstore_fsck_links *v, uint32_t n)
{
    if (n == 0) return 0;
    uint64_t *sorted = malloc(2 * (size_t)n * sizeof(*sorted));
    if (!sorted) return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        sorted[2 * i] = v[i].ino;
        sorted[2 * i + 1] = i;
    }
    qsort(sorted, n, 2 * sizeof(*sorted), ino_cmp);
    MDB_txn *t;
    MDB_cursor *c = NULL;
    int rc = mst_rtxn(s, &t);
    if (rc) goto out_free;
    for (uint32_t i = 0; i < n; i++) {
        struct mst_inode r;
        uint64_t ino = v[i].ino;
        memset(&v[i], 0, sizeof(v[i]));
        v[i].ino = ino;
        int irc = mst_inode_get(t, s, ino, &r);
        if (irc && irc != -ENOENT) {
            rc = irc;
            goto out;
        }
        if (irc) continue;
        v[i].exists = 1;
        v[i].mode = r.mode;
        v[i].nlink = r.nlink;
        v[i].open = mst_is_open(t, s, ino) > 0;
    }
    rc = mst_err(mdb_cursor_open(t, s->dirent, &c));
    if (rc) goto out;
    MDB_val key, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        if (key.mv_size < 9 || key.mv_size > 8 + CAIRN_NAME_MAX || val.mv_size != 20) continue;
        uint64_t parent = be_get64(key.mv_data), child = le_get64(val.mv_data);
        int k = links_find(sorted, n, child);
        if (k >= 0) {
            if (v[k].entries++ == 0) {
                v[k].parent = parent;
                memcpy(v[k].name, (uint8_t *)key.mv_data + 8, key.mv_size - 8);
                v[k].name[key.mv_size - 8] = '\0';
            }
        }
        int p = links_find(sorted, n, parent);
        if (p >= 0) {
            struct mst_inode r;
            if (mst_inode_get(t, s, child, &r) == 0 && S_ISDIR(r.mode)) v[p].subdirs++;
        }
    }
    if (mrc != MDB_NOTFOUND) rc = mst_err(mrc);
out:
    if (c) mdb_cursor_close(c);
    mdb_txn_abort(t);
out_free:
    free(sorted);
    return rc;
}

/* The name of directory dir in its parent (a scan of the parent's entries). */
static int dir_name(MDB_txn *t, struct mstore *s, uint64_t parent, uint64_t dir, char *name)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->dirent, &c));
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, parent);
    MDB_val key = {8, k}, val;
    rc = -ENOENT;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        if (key.mv_size < 9 || be_get64(key.mv_data) != parent) break;
        if (key.mv_size > 8 + CAIRN_NAME_MAX || val.mv_size != 20) continue;
        if (le_get64(val.mv_data) != dir) continue;
        memcpy(name, (uint8_t *)key.mv_data + 8, key.mv_size - 8);
        name[key.mv_size - 8] = '\0';
        rc = 0;
        break;
    }
    mdb_cursor_close(c);
    return rc;
}

/* Put s in front of the text buf[at..len-1] (built from the end). */
static int prepend(char *buf, size_t *at, const char *s)
{
    size_t n = strlen(s);
    if (n + 1 > *at) return -ENAMETOOLONG;
    *at -= n;
    memcpy(buf + *at, s, n);
    buf[--*at] = '/';
    return 0;
}

int mstore_fsck_path(struct mstore *s, uint64_t dir, const char *leaf, char *buf, size_t len)
{
    if (len < 2) return -ENAMETOOLONG;
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    size_t at = len - 1;
    buf[at] = '\0';
    if (leaf) rc = prepend(buf, &at, leaf);
    char name[CAIRN_NAME_MAX + 24];
    /* bounded: a cycle of parents in a damaged store must not loop forever */
    for (int depth = 0; !rc && dir != CAIRN_ROOT_INO && depth < CAIRN_PATH_MAX / 2; depth++) {
        struct mst_inode r;
        if (mst_inode_get(t, s, dir, &r) != 0 || !S_ISDIR(r.mode) ||
            dir_name(t, s, r.parent, dir, name) != 0) {
            snprintf(name, sizeof(name), "?%llu", (unsigned long long)dir);
            rc = prepend(buf, &at, name);
            break;
        }
        rc = prepend(buf, &at, name);
        dir = r.parent;
    }
    mdb_txn_abort(t);
    if (rc) return rc;
    if (buf[at] == '\0') buf[--at] = '/'; /* the root itself */
    memmove(buf, buf + at, len - at);
    return 0;
}

int mstore_fsck_ino_path(struct mstore *s, uint64_t ino, char *buf, size_t len)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    struct mst_inode r;
    char name[CAIRN_NAME_MAX + 1];
    rc = mst_inode_get(t, s, ino, &r);
    int dir = rc == 0 && S_ISDIR(r.mode);
    if (rc == 0 && !dir) rc = r.parent ? dir_name(t, s, r.parent, ino, name) : -ENOENT;
    mdb_txn_abort(t);
    if (rc) return rc;
    return dir ? mstore_fsck_path(s, ino, NULL, buf, len)
               : mstore_fsck_path(s, r.parent, name, buf, len);
}

/* Remove the entry (parent, name) whose inode does not exist, with its readdir record and
 * what the directory totals (mstore_rstat.c) keep of it: a subdirectory's share of its
 * parent's totals, a file's name in ilink. (What a lost file added to its primary directory's
 * totals cannot be known without its inode: those totals stay as they were.) */
static int drop_dangling(struct mtx *x, uint64_t parent, const char *name, uint64_t child,
                         uint32_t mode, uint64_t seq)
{
    uint8_t k[8 + CAIRN_NAME_MAX], sk[16];
    size_t nl = strlen(name);
    be_put64(k, parent);
    memcpy(k + 8, name, nl);
    int rc = mst_del(x->txn, x->s->dirent, k, 8 + nl);
    if (rc) return rc;
    be_put64(sk, parent);
    be_put64(sk + 8, seq);
    rc = mst_del(x->txn, x->s->dirseq, sk, 16);
    if (rc && rc != -ENOENT) return rc;
    if (S_ISDIR(mode)) {
        rc = mst_rstat_entry_del(x, parent, child, mode);
        return rc ? rc : mst_rstat_drop(x->txn, x->s, child);
    }
    be_put64(k, child);
    be_put64(k + 8, parent);
    rc = mst_del(x->txn, x->s->ilink, k, 16);
    return rc == -ENOENT ? 0 : rc;
}

/* MOP_FSCK_FIX: op->flags says which repair (MOP_FSCK_*). -ESTALE when the damage is no
 * longer there (nothing changes). */
int mst_apply_fsck_fix(struct mtx *x)
{
    const struct mop *op = x->op;
    struct mst_inode r;
    if (op->flags == MOP_FSCK_DANGLING) {
        if (mst_name_check(op->name)) return -EINVAL;
        uint8_t k[8 + CAIRN_NAME_MAX];
        size_t nl = strlen(op->name);
        be_put64(k, op->parent);
        memcpy(k + 8, op->name, nl);
        MDB_val v;
        int rc = mst_get(x->txn, x->s->dirent, k, 8 + nl, &v);
        if (rc) return rc;
        if (v.mv_size != 20) return -EIO;
        uint64_t child = le_get64(v.mv_data), seq = le_get64((uint8_t *)v.mv_data + 12);
        uint32_t mode = le_get32((uint8_t *)v.mv_data + 8);
        if (child != op->ino) return -ESTALE;
        rc = mst_inode_get(x->txn, x->s, op->ino, &r);
        if (rc == 0) return -ESTALE;
        if (rc != -ENOENT) return rc;
        rc = drop_dangling(x, op->parent, op->name, child, mode, seq);
        if (rc) return rc;
        struct mst_inode d;
        if (mst_inode_get(x->txn, x->s, op->parent, &d) != 0 || !S_ISDIR(d.mode)) return 0;
        /* a directory entry counted in its parent's link count */
        return mst_dir_touch(x, op->parent, S_ISDIR(mode) && d.nlink > 2 ? -1 : 0);
    }
    if (op->flags == MOP_FSCK_NLINK) {
        if (op->size == 0 || op->size > MST_LINK_MAX) return -EINVAL;
        int rc = mst_inode_get(x->txn, x->s, op->ino, &r);
        if (rc) return rc;
        if (r.nlink == 0) return -ESTALE; /* an open orphan: its count is right */
        r.nlink = (uint32_t)op->size;
        mst_set_ctime(x, &r);
        rc = mst_inode_put(x->txn, x->s, op->ino, &r);
        if (!rc) rc = mst_result_attr(x, op->ino);
        return rc;
    }
    return -EINVAL;
}
