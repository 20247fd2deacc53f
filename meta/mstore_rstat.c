/* mstore_rstat.c - recursive directory totals (as CephFS's rstats): for every directory the
 * bytes, files and subdirectories below it, kept up to date inside the write transaction of
 * every record that changes them, and read at once by `cairn du` and the virtual xattrs
 * user.cairn.dir.rbytes / rfiles / rsubdirs.
 *
 * Definitions (what a directory D's totals count, D itself excluded):
 *   rsubdirs  directories below D
 *   rfiles    inodes below D that are not directories (regular files, symlinks, devices,
 *             fifos, sockets), each once
 *   rbytes    the sum of st_size of those inodes (a regular file's size, a symlink's target
 *             length; 0 for the others). Directories have st_size 0 and add nothing, so
 *             rbytes of D equals `du -sb --apparent-size D` over a tree whose hard links all
 *             lie inside it.
 * Hard links: an inode with several names counts once, under its primary link's directory:
 * the inode record's parent field (for directories the parent already; for other inodes the
 * primary directory, 0 while unlinked). The first name an inode gets is its primary link;
 * when the last name in the primary directory goes while others remain, the inode moves to
 * the directory of a remaining name (the one with the lowest inode number: deterministic).
 *
 * Invariants (for every replica, since everything is derived from the records and the store):
 *   - ilink holds (ino, dir) -> number of names of ino in dir, for every non-directory inode
 *     with names, and nothing else;
 *   - a non-directory inode with names has parent = a directory holding one of them;
 *   - rstat[D] = the sum over D's entries of their contribution: a non-directory inode whose
 *     parent is D adds (size, 1, 0); a subdirectory S adds rstat[S] + (0, 0, 1).
 * A change adds its delta to the directory and every ancestor up to the root (walking the
 * directories' parent links), stopping at a removed directory (nlink 0), and at a link that
 * names no directory (a damaged store: the totals are then off, the operation is not refused).
 * Cost: one inode read and one rstat write per ancestor for every record that changes a
 * count or a size; ilink adds one small record per name of a file.
 *
 * Stores written before the totals existed have no "rstat" counter: mst_rstat_build computes
 * everything once at open (one pass over the entries and one over the inodes). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

#define RSTAT_DEPTH_MAX 100000
#define RSTAT_VAL_LEN 24

static void rstat_decode(const MDB_val *v, struct mstore_rstat *r)
{
    memset(r, 0, sizeof(*r));
    if (v->mv_size < RSTAT_VAL_LEN) return;
    const uint8_t *p = v->mv_data;
    r->rbytes = le_get64(p);
    r->rfiles = le_get64(p + 8);
    r->rsubdirs = le_get64(p + 16);
}

static int rstat_read(MDB_txn *t, struct mstore *s, uint64_t dir, struct mstore_rstat *r)
{
    uint8_t k[8];
    be_put64(k, dir);
    MDB_val v;
    int rc = mst_get(t, s->rstat, k, 8, &v);
    memset(r, 0, sizeof(*r));
    if (rc == -ENOENT) return 0; /* nothing below yet */
    if (rc) return rc;
    if (v.mv_size != RSTAT_VAL_LEN) return -EIO;
    rstat_decode(&v, r);
    return 0;
}

static uint64_t add_clamped(uint64_t v, int64_t d)
{
    if (d < 0 && (uint64_t)-d > v) return 0;
    return v + (uint64_t)d;
}

static int rstat_add(MDB_txn *t, struct mstore *s, uint64_t dir, const struct mst_rdelta *d)
{
    struct mstore_rstat r;
    int rc = rstat_read(t, s, dir, &r);
    if (rc) return rc;
    r.rbytes = add_clamped(r.rbytes, d->bytes);
    r.rfiles = add_clamped(r.rfiles, d->files);
    r.rsubdirs = add_clamped(r.rsubdirs, d->subdirs);
    uint8_t k[8], v[RSTAT_VAL_LEN];
    be_put64(k, dir);
    le_put64(v, r.rbytes);
    le_put64(v + 8, r.rfiles);
    le_put64(v + 16, r.rsubdirs);
    return mst_put(t, s->rstat, k, 8, v, RSTAT_VAL_LEN);
}

int mst_rstat_chain(MDB_txn *t, struct mstore *s, uint64_t dir, const struct mst_rdelta *d)
{
    if (dir == 0 || (!d->bytes && !d->files && !d->subdirs)) return 0;
    for (int i = 0; i < RSTAT_DEPTH_MAX; i++) {
        struct mst_inode r;
        int rc = mst_inode_get(t, s, dir, &r);
        /* a chain broken by a damaged store ends there: the user's operation still goes on */
        if (rc == -ENOENT || (!rc && !S_ISDIR(r.mode))) return 0;
        if (rc) return rc;
        rc = rstat_add(t, s, dir, d);
        if (rc) return rc;
        /* the root is its own parent; a removed directory is in no tree any more */
        if (dir == 1 || r.nlink == 0 || r.parent == 0 || r.parent == dir) return 0;
        dir = r.parent;
    }
    return -ELOOP;
}

int mst_rstat_drop(MDB_txn *t, struct mstore *s, uint64_t dir)
{
    uint8_t k[8];
    be_put64(k, dir);
    int rc = mst_del(t, s->rstat, k, 8);
    return rc == -ENOENT ? 0 : rc;
}

int mst_rstat_size(struct mtx *x, const struct mst_inode *r, uint64_t old_size)
{
    if (S_ISDIR(r->mode) || r->parent == 0 || r->size == old_size) return 0;
    struct mst_rdelta d = {.bytes = (int64_t)(r->size - old_size)};
    return mst_rstat_chain(x->txn, x->s, r->parent, &d);
}

/* ---- names of non-directory inodes (the ilink database) --------------------------------- */

static void ilink_key(uint8_t k[16], uint64_t ino, uint64_t dir)
{
    be_put64(k, ino);
    be_put64(k + 8, dir);
}

/* Add delta to the number of names of ino in dir; *after receives the new number. */
static int ilink_add(MDB_txn *t, struct mstore *s, uint64_t ino, uint64_t dir, int delta,
                     uint32_t *after)
{
    uint8_t k[16];
    ilink_key(k, ino, dir);
    MDB_val v;
    uint32_t n = 0;
    int rc = mst_get(t, s->ilink, k, 16, &v);
    if (rc && rc != -ENOENT) return rc;
    if (!rc && v.mv_size == 4) n = le_get32(v.mv_data);
    n = delta < 0 && (uint32_t)-delta > n ? 0 : (uint32_t)((int64_t)n + delta);
    *after = n;
    if (n == 0) {
        rc = mst_del(t, s->ilink, k, 16);
        return rc == -ENOENT ? 0 : rc;
    }
    uint8_t b[4];
    le_put32(b, n);
    return mst_put(t, s->ilink, k, 16, b, 4);
}

/* The directory of ino's name with the lowest directory inode number, 0 if it has none. */
static int ilink_first(MDB_txn *t, struct mstore *s, uint64_t ino, uint64_t *dir)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->ilink, &c));
    if (rc) return rc;
    uint8_t k[16];
    ilink_key(k, ino, 0);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    *dir = 0;
    if (mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == ino)
        *dir = be_get64((uint8_t *)key.mv_data + 8);
    else if (mrc && mrc != MDB_NOTFOUND)
        rc = mst_err(mrc);
    mdb_cursor_close(c);
    return rc;
}

/* ino (not a directory) gained a name in dir. */
static int link_add(MDB_txn *t, struct mstore *s, uint64_t ino, uint64_t dir)
{
    uint32_t n;
    int rc = ilink_add(t, s, ino, dir, 1, &n);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_get(t, s, ino, &r);
    if (rc || r.parent != 0) return rc;
    r.parent = dir; /* its first name: the primary link */
    rc = mst_inode_put(t, s, ino, &r);
    struct mst_rdelta d = {.bytes = (int64_t)r.size, .files = 1};
    return rc ? rc : mst_rstat_chain(t, s, dir, &d);
}

/* ino (not a directory) lost a name in dir. */
static int link_del(MDB_txn *t, struct mstore *s, uint64_t ino, uint64_t dir)
{
    uint32_t n;
    int rc = ilink_add(t, s, ino, dir, -1, &n);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_get(t, s, ino, &r);
    if (rc || r.parent != dir || n > 0) return rc;
    struct mst_rdelta d = {.bytes = -(int64_t)r.size, .files = -1};
    rc = mst_rstat_chain(t, s, dir, &d);
    if (!rc) rc = ilink_first(t, s, ino, &r.parent);
    if (!rc) rc = mst_inode_put(t, s, ino, &r);
    if (rc || r.parent == 0) return rc;
    d.bytes = (int64_t)r.size;
    d.files = 1;
    return mst_rstat_chain(t, s, r.parent, &d);
}

/* The contribution of directory child to its parent's totals, signed. */
static int dir_contribution(MDB_txn *t, struct mstore *s, uint64_t child, int sign,
                            struct mst_rdelta *d)
{
    struct mstore_rstat r;
    int rc = rstat_read(t, s, child, &r);
    if (rc) return rc;
    d->bytes = sign * (int64_t)r.rbytes;
    d->files = sign * (int64_t)r.rfiles;
    d->subdirs = sign * ((int64_t)r.rsubdirs + 1);
    return 0;
}

int mst_rstat_entry_add(struct mtx *x, uint64_t parent, uint64_t child, uint32_t mode)
{
    if (!S_ISDIR(mode)) return link_add(x->txn, x->s, child, parent);
    struct mst_rdelta d;
    int rc = dir_contribution(x->txn, x->s, child, 1, &d);
    return rc ? rc : mst_rstat_chain(x->txn, x->s, parent, &d);
}

int mst_rstat_entry_del(struct mtx *x, uint64_t parent, uint64_t child, uint32_t mode)
{
    if (!S_ISDIR(mode)) return link_del(x->txn, x->s, child, parent);
    struct mst_rdelta d;
    int rc = dir_contribution(x->txn, x->s, child, -1, &d);
    return rc ? rc : mst_rstat_chain(x->txn, x->s, parent, &d);
}

/* ---- computing everything once (stores from before the totals) ------------------------- */

/* Pass 1: every name of a non-directory inode into ilink. */
static int build_ilink(MDB_txn *t, struct mstore *s)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->dirent, &c));
    if (rc) return rc;
    MDB_val key, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (mrc == 0) {
        if (key.mv_size < 8 || val.mv_size != 20) {
            rc = -EIO;
            break;
        }
        uint64_t parent = be_get64(key.mv_data), child = le_get64(val.mv_data);
        uint32_t mode = le_get32((uint8_t *)val.mv_data + 8), n;
        if (!S_ISDIR(mode)) rc = ilink_add(t, s, child, parent, 1, &n);
        if (rc) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mst_err(mrc);
    mdb_cursor_close(c);
    return rc;
}

/* The first inode number >= from, 0 when none. */
static int next_inode(MDB_txn *t, struct mstore *s, uint64_t from, uint64_t *ino)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->inode, &c));
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, from);
    MDB_val key = {8, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    *ino = 0;
    if (mrc == 0 && key.mv_size == 8)
        *ino = be_get64(key.mv_data);
    else if (mrc && mrc != MDB_NOTFOUND)
        rc = mst_err(mrc);
    mdb_cursor_close(c);
    return rc;
}

/* Pass 2: every inode's primary directory and its contribution, added up its chain. The
 * cursor is placed anew for each inode, since the pass rewrites inode records. */
static int build_totals(MDB_txn *t, struct mstore *s)
{
    uint64_t ino = 0;
    for (;;) {
        int rc = next_inode(t, s, ino + 1, &ino);
        if (rc || ino == 0) return rc;
        struct mst_inode r;
        rc = mst_inode_get(t, s, ino, &r);
        if (rc) return rc;
        struct mst_rdelta d = {0};
        if (S_ISDIR(r.mode)) {
            if (ino == 1 || r.nlink == 0) continue;
            d.subdirs = 1;
        } else {
            uint64_t parent;
            rc = ilink_first(t, s, ino, &parent);
            if (!rc && parent != r.parent) {
                r.parent = parent;
                rc = mst_inode_put(t, s, ino, &r);
            }
            if (rc) return rc;
            d.bytes = (int64_t)r.size;
            d.files = 1;
        }
        rc = mst_rstat_chain(t, s, r.parent, &d);
        if (rc) return rc;
        if (ino == UINT64_MAX) return 0;
    }
}

int mst_rstat_build(MDB_txn *t, struct mstore *s)
{
    uint64_t done = 0;
    int rc = mst_counter_get(t, s, "rstat", &done);
    if (rc || done) return rc;
    rc = mst_err(mdb_drop(t, s->rstat, 0));
    if (!rc) rc = mst_err(mdb_drop(t, s->ilink, 0));
    if (!rc) rc = build_ilink(t, s);
    if (!rc) rc = build_totals(t, s);
    if (!rc) rc = mst_counter_put(t, s, "rstat", 1);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------ */

static int dir_rstat_in(MDB_txn *t, struct mstore *s, uint64_t ino, struct mstore_rstat *out)
{
    struct mst_inode r;
    int rc = mst_inode_get(t, s, ino, &r);
    if (!rc && !S_ISDIR(r.mode)) rc = -ENOTDIR;
    if (!rc) rc = rstat_read(t, s, ino, out);
    return rc;
}

int mstore_dir_rstat(struct mstore *s, uint64_t ino, struct mstore_rstat *out)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = dir_rstat_in(t, s, ino, out);
    mdb_txn_abort(t);
    return rc;
}

int mst_rstat_xattr(MDB_txn *t, struct mstore *s, uint64_t ino, const char *name, struct wbuf *out)
{
    const char *field = name + strlen(CAIRN_DIR_XATTR_PREFIX);
    struct mstore_rstat r;
    int rc = dir_rstat_in(t, s, ino, &r);
    if (rc == -ENOTDIR) return -ENODATA; /* directories only, as CephFS */
    if (rc) return rc;
    uint64_t v;
    if (strcmp(field, "rbytes") == 0)
        v = r.rbytes;
    else if (strcmp(field, "rfiles") == 0)
        v = r.rfiles;
    else if (strcmp(field, "rsubdirs") == 0)
        v = r.rsubdirs;
    else
        return -ENODATA;
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    wbuf_put_raw(out, buf, (size_t)n);
    return out->err;
}
