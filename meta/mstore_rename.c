/* mstore_rename.c - MOP_RENAME: moves, replacing a file or an empty directory,
 * RENAME_NOREPLACE, RENAME_EXCHANGE, and the refusal to move a directory into its own
 * subtree (walking up the parent links kept in directory inode records). Readdir positions:
 * a move inside one directory keeps the entry's sequence, an exchange keeps both names in
 * place; only a move to another directory gives a new position there (mstore_dir.c). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

#define MST_DEPTH_MAX 100000

/* 1 if anc is dir or one of its ancestors, 0 if not, or negative errno. */
static int is_ancestor(struct mtx *x, uint64_t anc, uint64_t dir)
{
    for (int i = 0; i < MST_DEPTH_MAX; i++) {
        if (dir == anc) return 1;
        if (dir == 1) return 0;
        struct mst_inode r;
        int rc = mst_inode_get(x->txn, x->s, dir, &r);
        if (rc) return rc;
        if (r.parent == 0 || r.parent == dir) return 0;
        dir = r.parent;
    }
    return -ELOOP;
}

static int set_parent(struct mtx *x, uint64_t ino, uint64_t parent)
{
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, ino, &r);
    if (rc) return rc;
    if (S_ISDIR(r.mode)) r.parent = parent;
    mst_set_ctime(x, &r);
    return mst_inode_put(x->txn, x->s, ino, &r);
}

static int rename_exchange(struct mtx *x, uint64_t a, uint32_t amode, uint64_t b, uint32_t bmode)
{
    const struct mop *op = x->op;
    int rc;
    if (S_ISDIR(amode) && op->parent != op->parent2) {
        rc = is_ancestor(x, a, op->parent2);
        if (rc) return rc < 0 ? rc : -EINVAL;
    }
    if (S_ISDIR(bmode) && op->parent != op->parent2) {
        rc = is_ancestor(x, b, op->parent);
        if (rc) return rc < 0 ? rc : -EINVAL;
    }
    /* both names stay where they are in their directories' listings: only inodes swap */
    rc = mst_rstat_entry_del(x, op->parent, a, amode);
    if (!rc) rc = mst_rstat_entry_del(x, op->parent2, b, bmode);
    if (!rc) rc = mst_dirent_set_child(x, op->parent, op->name, b, bmode);
    if (!rc) rc = mst_dirent_set_child(x, op->parent2, op->name2, a, amode);
    if (!rc) rc = mst_rstat_entry_add(x, op->parent, b, bmode);
    if (!rc) rc = mst_rstat_entry_add(x, op->parent2, a, amode);
    int d = (S_ISDIR(amode) ? 1 : 0) - (S_ISDIR(bmode) ? 1 : 0);
    if (op->parent == op->parent2) d = 0;
    if (!rc) rc = mst_dir_touch(x, op->parent, -d);
    if (!rc) rc = mst_dir_touch(x, op->parent2, d);
    if (!rc) rc = set_parent(x, a, op->parent2);
    if (!rc) rc = set_parent(x, b, op->parent);
    return rc;
}

static int rename_move(struct mtx *x, uint64_t a, uint32_t amode, int have_b, uint64_t b,
                       uint32_t bmode)
{
    const struct mop *op = x->op;
    int rc;
    if (S_ISDIR(amode) && op->parent != op->parent2) {
        rc = is_ancestor(x, a, op->parent2);
        if (rc) return rc < 0 ? rc : -EINVAL;
    }
    if (have_b) {
        if (S_ISDIR(amode) && !S_ISDIR(bmode)) return -ENOTDIR;
        if (!S_ISDIR(amode) && S_ISDIR(bmode)) return -EISDIR;
        if (S_ISDIR(bmode)) {
            rc = mst_dir_is_empty(x->txn, x->s, b);
            if (rc < 0) return rc;
            if (!rc) return -ENOTEMPTY;
        }
        rc = mst_dirent_del(x, op->parent2, op->name2);
        if (!rc) rc = mst_dir_touch(x, op->parent2, S_ISDIR(bmode) ? -1 : 0);
        if (!rc) rc = mst_inode_unlink(x, b);
        if (rc) return rc;
    }
    int d = S_ISDIR(amode) && op->parent != op->parent2 ? 1 : 0;
    if (op->parent == op->parent2) { /* same directory: the entry keeps its position */
        rc = mst_dirent_rename(x, op->parent, op->name, op->name2);
    } else { /* new in the target: a listing of it in progress may or may not show it */
        rc = mst_dirent_del(x, op->parent, op->name);
        if (!rc) rc = mst_dirent_add(x, op->parent2, op->name2, a, amode);
    }
    if (!rc) rc = mst_dir_touch(x, op->parent, -d);
    if (!rc) rc = mst_dir_touch(x, op->parent2, d);
    if (!rc) rc = set_parent(x, a, op->parent2);
    return rc;
}

int mst_apply_rename(struct mtx *x)
{
    const struct mop *op = x->op;
    uint32_t f = op->flags;
    if (f & ~(PROTO_RENAME_NOREPLACE | PROTO_RENAME_EXCHANGE)) return -EINVAL;
    if ((f & PROTO_RENAME_NOREPLACE) && (f & PROTO_RENAME_EXCHANGE)) return -EINVAL;
    int rc = mst_name_check(op->name);
    if (!rc) rc = mst_name_check(op->name2);
    if (rc) return rc;
    struct mst_inode d;
    rc = mst_dir_get(x, op->parent, &d);
    if (!rc) rc = mst_dir_get(x, op->parent2, &d);
    if (rc) return rc;
    if (d.nlink == 0) return -ENOENT; /* a removed directory still open takes no new names */
    uint64_t a, b = 0;
    uint32_t amode, bmode = 0;
    rc = mst_dirent_get(x->txn, x->s, op->parent, op->name, &a, &amode);
    if (rc) return rc;
    rc = mst_dirent_get(x->txn, x->s, op->parent2, op->name2, &b, &bmode);
    if (rc && rc != -ENOENT) return rc;
    int have_b = rc == 0;
    if (have_b && a == b) return 0; /* same inode: nothing to do */
    if ((f & PROTO_RENAME_NOREPLACE) && have_b) return -EEXIST;
    if (f & PROTO_RENAME_EXCHANGE) {
        if (!have_b) return -ENOENT;
        return rename_exchange(x, a, amode, b, bmode);
    }
    return rename_move(x, a, amode, have_b, b, bmode);
}
