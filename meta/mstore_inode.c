/* mstore_inode.c - inode records: encoding, reading and writing them, creating and dropping
 * inodes (with everything they own), link counting, size changes and SETATTR. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

#define MST_INODE_VER 1
#define MST_INODE_LEN 97 /* without alloc (records written before it existed) */
#define MST_INODE_LEN2 105
#define MST_INODE_LEN3 106 /* with copies */

/* What copies 0 (inherit the default) means; set from the meta configuration. */
static uint32_t default_copies = 2;

void mstore_set_default_copies(uint32_t copies)
{
    if (copies >= 1 && copies <= CAIRN_COPIES_MAX) default_copies = copies;
}

uint32_t mstore_default_copies(void)
{
    return default_copies;
}

static void inode_key(uint8_t k[8], uint64_t ino)
{
    be_put64(k, ino);
}

int mst_inode_get(MDB_txn *t, struct mstore *s, uint64_t ino, struct mst_inode *r)
{
    uint8_t k[8];
    MDB_val v;
    inode_key(k, ino);
    int rc = mst_get(t, s->inode, k, 8, &v);
    if (rc) return rc;
    if (v.mv_size < MST_INODE_LEN) return -EIO;
    const uint8_t *p = v.mv_data;
    if (p[0] != MST_INODE_VER) return -EIO;
    p++;
    r->gen = le_get64(p), p += 8;
    r->mode = le_get32(p), p += 4;
    r->uid = le_get32(p), p += 4;
    r->gid = le_get32(p), p += 4;
    r->nlink = le_get32(p), p += 4;
    r->rdev = le_get64(p), p += 8;
    r->size = le_get64(p), p += 8;
    r->atime_s = (int64_t)le_get64(p), p += 8;
    r->atime_ns = le_get32(p), p += 4;
    r->mtime_s = (int64_t)le_get64(p), p += 8;
    r->mtime_ns = le_get32(p), p += 4;
    r->ctime_s = (int64_t)le_get64(p), p += 8;
    r->ctime_ns = le_get32(p), p += 4;
    r->parent = le_get64(p), p += 8;
    r->next_seq = le_get64(p), p += 8;
    r->flags = le_get32(p), p += 4;
    r->alloc = v.mv_size >= MST_INODE_LEN2 ? le_get64(p) : 0;
    r->copies = v.mv_size >= MST_INODE_LEN3 ? p[8] : 0;
    if (r->copies > CAIRN_COPIES_MAX) r->copies = 0;
    return 0;
}

int mst_inode_put(MDB_txn *t, struct mstore *s, uint64_t ino, const struct mst_inode *r)
{
    uint8_t k[8], b[MST_INODE_LEN3], *p = b;
    inode_key(k, ino);
    *p++ = MST_INODE_VER;
    le_put64(p, r->gen), p += 8;
    le_put32(p, r->mode), p += 4;
    le_put32(p, r->uid), p += 4;
    le_put32(p, r->gid), p += 4;
    le_put32(p, r->nlink), p += 4;
    le_put64(p, r->rdev), p += 8;
    le_put64(p, r->size), p += 8;
    le_put64(p, (uint64_t)r->atime_s), p += 8;
    le_put32(p, r->atime_ns), p += 4;
    le_put64(p, (uint64_t)r->mtime_s), p += 8;
    le_put32(p, r->mtime_ns), p += 4;
    le_put64(p, (uint64_t)r->ctime_s), p += 8;
    le_put32(p, r->ctime_ns), p += 4;
    le_put64(p, r->parent), p += 8;
    le_put64(p, r->next_seq), p += 8;
    le_put32(p, r->flags), p += 4;
    le_put64(p, r->alloc), p += 8;
    *p = r->copies;
    return mst_put(t, s->inode, k, 8, b, MST_INODE_LEN3);
}

void mst_inode_attr(uint64_t ino, const struct mst_inode *r, struct cairn_attr *a)
{
    memset(a, 0, sizeof(*a));
    a->ino = ino;
    a->gen = r->gen;
    a->mode = r->mode;
    a->uid = r->uid;
    a->gid = r->gid;
    a->nlink = r->nlink;
    a->rdev = r->rdev;
    a->size = r->size;
    a->atime_s = r->atime_s;
    a->atime_ns = r->atime_ns;
    a->mtime_s = r->mtime_s;
    a->mtime_ns = r->mtime_ns;
    a->ctime_s = r->ctime_s;
    a->ctime_ns = r->ctime_ns;
    a->blocks = (r->alloc + 511) / 512;
    a->copies = r->copies ? r->copies : default_copies;
    if ((r->flags & MST_INO_XATTRS) || !(r->flags & MST_INO_XATTRS_KNOWN))
        a->flags |= ATTR_F_XATTRS;
}

void mst_set_ctime(struct mtx *x, struct mst_inode *r)
{
    r->ctime_s = x->op->now_s;
    r->ctime_ns = x->op->now_ns;
}

void mst_set_mctime(struct mtx *x, struct mst_inode *r)
{
    r->mtime_s = r->ctime_s = x->op->now_s;
    r->mtime_ns = r->ctime_ns = x->op->now_ns;
}

int mst_inode_new(struct mtx *x, uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
                  uint64_t parent, struct mst_inode *r)
{
    const struct mop *op = x->op;
    if (op->new_ino < 2) return -EINVAL;
    memset(r, 0, sizeof(*r));
    r->gen = op->new_gen;
    r->mode = mode;
    r->uid = uid;
    r->gid = gid;
    r->rdev = rdev;
    r->nlink = S_ISDIR(mode) ? 2 : 1;
    r->flags = MST_INO_XATTRS_KNOWN; /* born without xattrs */
    r->atime_s = r->mtime_s = r->ctime_s = op->now_s;
    r->atime_ns = r->mtime_ns = r->ctime_ns = op->now_ns;
    if (S_ISDIR(mode)) {
        r->parent = parent;
        r->next_seq = MST_FIRST_SEQ;
    }
    /* copies are inherited from the directory as stored (0 stays "the default") */
    struct mst_inode dir;
    int rc = mst_inode_get(x->txn, x->s, parent, &dir);
    if (rc == 0)
        r->copies = dir.copies;
    else if (rc != -ENOENT)
        return rc;
    struct mst_inode old;
    rc = mst_inode_get(x->txn, x->s, op->new_ino, &old);
    if (rc == 0) return -EEXIST; /* a record replayed twice, or a bad prepare */
    if (rc != -ENOENT) return rc;
    rc = mst_inode_put(x->txn, x->s, op->new_ino, r);
    if (!rc) rc = mst_counter_raise(x->txn, x->s, "next_ino", op->new_ino + 1);
    if (!rc) rc = mst_counter_add(x->txn, x->s, "inodes", 1);
    return rc;
}

int mst_inode_drop(struct mtx *x, uint64_t ino)
{
    struct mst_inode r;
    uint8_t k[8];
    int rc = mst_inode_get(x->txn, x->s, ino, &r);
    if (rc) return rc;
    inode_key(k, ino);
    if (S_ISREG(r.mode)) {
        rc = mst_chunks_free_from(x, ino, 0, NULL);
        if (!rc && r.size) rc = mst_counter_add(x->txn, x->s, "bytes", -(int64_t)r.size);
        if (rc) return rc;
    }
    if (S_ISLNK(r.mode)) {
        rc = mst_del(x->txn, x->s->symlink, k, 8);
        if (rc && rc != -ENOENT) return rc;
    }
    if (S_ISDIR(r.mode)) {
        rc = mst_rstat_drop(x->txn, x->s, ino);
        if (rc) return rc;
    }
    rc = mst_xattr_drop_all(x, ino);
    if (rc) return rc;
    rc = mst_del(x->txn, x->s->orphan, k, 8);
    if (rc && rc != -ENOENT) return rc;
    rc = mst_del(x->txn, x->s->inode, k, 8);
    if (rc) return rc;
    return mst_counter_add(x->txn, x->s, "inodes", -1);
}

int mst_inode_unlink(struct mtx *x, uint64_t ino)
{
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, ino, &r);
    if (rc) return rc;
    /* a directory loses both its entry and its "." */
    uint32_t drop = S_ISDIR(r.mode) ? 2 : 1;
    r.nlink = r.nlink > drop ? r.nlink - drop : 0;
    mst_set_ctime(x, &r);
    if (r.nlink > 0) return mst_inode_put(x->txn, x->s, ino, &r);
    rc = mst_is_open(x->txn, x->s, ino);
    if (rc < 0) return rc;
    if (rc == 0) return mst_inode_drop(x, ino);
    uint8_t k[8], one = 1;
    inode_key(k, ino);
    rc = mst_inode_put(x->txn, x->s, ino, &r);
    if (!rc) rc = mst_put(x->txn, x->s->orphan, k, 8, &one, 1);
    return rc;
}

int mst_inode_set_size(struct mtx *x, uint64_t ino, struct mst_inode *r, uint64_t size)
{
    if (S_ISDIR(r->mode)) return -EISDIR;
    if (!S_ISREG(r->mode)) return -EINVAL;
    uint64_t cs = x->s->chunk_size;
    if (size < r->size) {
        uint64_t first = size / cs + (size % cs ? 1 : 0);
        uint64_t freed = 0;
        int rc = mst_chunks_free_from(x, ino, first, &freed);
        if (rc) return rc;
        r->alloc = r->alloc > freed ? r->alloc - freed : 0;
    }
    uint64_t old = r->size;
    int64_t delta = (int64_t)(size - r->size);
    r->size = size;
    int rc = delta ? mst_counter_add(x->txn, x->s, "bytes", delta) : 0;
    return rc ? rc : mst_rstat_size(x, r, old);
}

int mst_result_attr(struct mtx *x, uint64_t ino)
{
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, ino, &r);
    if (!rc && x->res) mst_inode_attr(ino, &r, &x->res->attr);
    return rc;
}

static void kill_suidgid(struct mst_inode *r)
{
    r->mode &= ~(uint32_t)S_ISUID;
    if (r->mode & S_IXGRP) r->mode &= ~(uint32_t)S_ISGID;
}

int mst_apply_setattr(struct mtx *x)
{
    const struct mop *op = x->op;
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, op->ino, &r);
    if (rc) return rc;
    uint32_t v = op->valid;
    if (v & SETATTR_ATIME_LAZY) {
        /* a read's atime (MSG_ATIME): forward only, nothing else, and not a change of the
         * inode (no ctime) */
        if (op->atime_s > r.atime_s || (op->atime_s == r.atime_s && op->atime_ns > r.atime_ns)) {
            r.atime_s = op->atime_s;
            r.atime_ns = op->atime_ns;
        }
        rc = mst_inode_put(x->txn, x->s, op->ino, &r);
        if (!rc && x->res) mst_inode_attr(op->ino, &r, &x->res->attr);
        return rc;
    }
    if (v & SETATTR_MODE) {
        r.mode = (r.mode & S_IFMT) | (op->mode & 07777);
        rc = mst_acl_chmod_inode(x, op->ino, r.mode); /* the access ACL follows the mode */
        if (rc) return rc;
    }
    if (v & (SETATTR_UID | SETATTR_GID)) {
        if (v & SETATTR_UID) r.uid = op->uid;
        if (v & SETATTR_GID) r.gid = op->gid;
        if (S_ISREG(r.mode) && !(v & SETATTR_MODE)) kill_suidgid(&r);
    }
    if ((v & SETATTR_KILL_SUIDGID) && !(v & SETATTR_MODE)) kill_suidgid(&r);
    if (v & SETATTR_SIZE) {
        rc = mst_inode_set_size(x, op->ino, &r, op->size);
        if (rc) return rc;
        if (!(v & (SETATTR_MTIME | SETATTR_MTIME_NOW))) mst_set_mctime(x, &r);
    }
    if (v & SETATTR_ATIME_NOW) {
        r.atime_s = op->now_s;
        r.atime_ns = op->now_ns;
    } else if (v & SETATTR_ATIME) {
        r.atime_s = op->atime_s;
        r.atime_ns = op->atime_ns;
    }
    if (v & SETATTR_MTIME_NOW) {
        r.mtime_s = op->now_s;
        r.mtime_ns = op->now_ns;
    } else if (v & SETATTR_MTIME) {
        r.mtime_s = op->mtime_s;
        r.mtime_ns = op->mtime_ns;
    }
    mst_set_ctime(x, &r);
    rc = mst_inode_put(x->txn, x->s, op->ino, &r);
    if (!rc && x->res) mst_inode_attr(op->ino, &r, &x->res->attr);
    return rc;
}

int mst_apply_set_copies(struct mtx *x)
{
    const struct mop *op = x->op;
    if (op->flags > CAIRN_COPIES_MAX) return -EINVAL;
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, op->ino, &r);
    if (rc) return rc;
    r.copies = (uint8_t)op->flags;
    mst_set_ctime(x, &r);
    rc = mst_inode_put(x->txn, x->s, op->ino, &r);
    if (!rc && x->res) mst_inode_attr(op->ino, &r, &x->res->attr);
    return rc;
}

int mstore_getattr(struct mstore *s, uint64_t ino, struct cairn_attr *out)
{
    MDB_txn *t;
    struct mst_inode r;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = mst_inode_get(t, s, ino, &r);
    if (!rc) mst_inode_attr(ino, &r, out);
    mdb_txn_abort(t);
    return rc;
}
