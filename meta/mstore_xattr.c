/* mstore_xattr.c - extended attributes: the xattr database ((ino, name) -> value), get, list,
 * set with XATTR_CREATE / XATTR_REPLACE, remove, and dropping all of an inode's. The POSIX ACL
 * names (system.posix_acl_*) are stored here too, but set through mstore_acl.c, which
 * validates them and keeps the mode in step. The virtual
 * names CAIRN_DIR_XATTR_PREFIX* (directory totals, mstore_rstat.c) are answered, never
 * stored: setting or removing them is -EPERM. Set and
 * remove keep the inode's MST_INO_XATTRS flag (mstore_int.h) equal to "the db holds a key of
 * this inode", so attribute replies can tell clients an inode has none. */
#include <errno.h>
#include <string.h>

#include "mstore_acl.h"
#include "mstore_int.h"

#define MST_XATTR_CREATE 1u
#define MST_XATTR_REPLACE 2u

static int xattr_key(uint8_t *k, uint64_t ino, const char *name, size_t *kl)
{
    size_t n = strnlen(name, CAIRN_XATTR_NAME_MAX + 1);
    if (n > CAIRN_XATTR_NAME_MAX) return -ERANGE;
    if (n == 0) return -EINVAL;
    be_put64(k, ino);
    memcpy(k + 8, name, n);
    *kl = 8 + n;
    return 0;
}

static int is_dir_xattr(const char *name)
{
    return strncmp(name, CAIRN_DIR_XATTR_PREFIX, CAIRN_DIR_XATTR_PREFIX_LEN) == 0;
}

int mstore_getxattr(struct mstore *s, uint64_t ino, const char *name, struct wbuf *out)
{
    uint8_t k[8 + CAIRN_XATTR_NAME_MAX];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    if (rc) return rc;
    MDB_txn *t;
    rc = mst_rtxn(s, &t);
    if (rc) return rc;
    struct mst_inode r;
    MDB_val v;
    rc = mst_inode_get(t, s, ino, &r);
    if (!rc && is_dir_xattr(name)) {
        rc = mst_rstat_xattr(t, s, ino, name, out);
        mdb_txn_abort(t);
        return rc;
    }
    if (!rc) {
        rc = mst_get(t, s->xattr, k, kl, &v);
        if (rc == -ENOENT) rc = -ENODATA;
    }
    if (!rc) {
        wbuf_put_raw(out, v.mv_data, v.mv_size);
        rc = out->err;
    }
    mdb_txn_abort(t);
    return rc;
}

/* Visit every xattr key of ino; fn gets the cursor positioned on it. */
static int xattr_scan(MDB_txn *t, struct mstore *s, uint64_t ino,
                      int (*fn)(void *arg, MDB_cursor *c, MDB_val *k), void *arg)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->xattr, &c));
    if (rc) return rc;
    uint8_t kb[8];
    be_put64(kb, ino);
    MDB_val key = {8, kb}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && key.mv_size > 8 && memcmp(key.mv_data, kb, 8) == 0) {
        rc = fn(arg, c, &key);
        if (rc) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mst_err(mrc);
    mdb_cursor_close(c);
    return rc;
}

static int list_one(void *arg, MDB_cursor *c, MDB_val *k)
{
    (void)c;
    struct wbuf *out = arg;
    wbuf_put_raw(out, (uint8_t *)k->mv_data + 8, k->mv_size - 8);
    wbuf_put_u8(out, 0);
    return out->err;
}

int mstore_listxattr(struct mstore *s, uint64_t ino, struct wbuf *out)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_get(t, s, ino, &r);
    if (!rc) rc = xattr_scan(t, s, ino, list_one, out);
    mdb_txn_abort(t);
    return rc;
}

static int stop_at_first(void *arg, MDB_cursor *c, MDB_val *k)
{
    (void)arg;
    (void)c;
    (void)k;
    return 1;
}

/* 1 if ino has at least one xattr, 0 if none, or a negative errno. */
static int xattr_any(MDB_txn *t, struct mstore *s, uint64_t ino)
{
    return xattr_scan(t, s, ino, stop_at_first, NULL);
}

static int del_one(void *arg, MDB_cursor *c, MDB_val *k)
{
    (void)arg;
    (void)k;
    return mst_err(mdb_cursor_del(c, 0));
}

int mst_xattr_get_raw(MDB_txn *t, struct mstore *s, uint64_t ino, const char *name, MDB_val *v)
{
    uint8_t k[8 + CAIRN_XATTR_NAME_MAX];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    return rc ? rc : mst_get(t, s->xattr, k, kl, v);
}

int mst_xattr_put_raw(struct mtx *x, uint64_t ino, const char *name, const void *v, size_t len)
{
    uint8_t k[8 + CAIRN_XATTR_NAME_MAX];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    return rc ? rc : mst_put(x->txn, x->s->xattr, k, kl, v, len);
}

int mst_xattr_del_raw(struct mtx *x, uint64_t ino, const char *name)
{
    uint8_t k[8 + CAIRN_XATTR_NAME_MAX];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    return rc ? rc : mst_del(x->txn, x->s->xattr, k, kl);
}

int mst_xattr_drop_all(struct mtx *x, uint64_t ino)
{
    /* Deleting at the cursor moves it to the next record; MDB_NEXT after a delete in LMDB
     * returns the record following the deleted one, so the scan visits each key once. */
    return xattr_scan(x->txn, x->s, ino, del_one, NULL);
}

/* After a change of ino's xattrs: ctime, and the flag saying whether any is left. */
static int touch_ctime(struct mtx *x, int has_xattrs)
{
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, x->op->ino, &r);
    if (rc) return rc;
    mst_set_ctime(x, &r);
    r.flags |= MST_INO_XATTRS_KNOWN;
    if (has_xattrs)
        r.flags |= MST_INO_XATTRS;
    else
        r.flags &= ~MST_INO_XATTRS;
    rc = mst_inode_put(x->txn, x->s, x->op->ino, &r);
    if (!rc && x->res) mst_inode_attr(x->op->ino, &r, &x->res->attr);
    return rc;
}

int mst_apply_setxattr(struct mtx *x)
{
    const struct mop *op = x->op;
    if (op->flags & ~(MST_XATTR_CREATE | MST_XATTR_REPLACE)) return -EINVAL;
    if ((op->flags & MST_XATTR_CREATE) && (op->flags & MST_XATTR_REPLACE)) return -EINVAL;
    if (op->data_len > CAIRN_XATTR_SIZE_MAX) return -E2BIG;
    if (is_dir_xattr(op->name)) return -EPERM;
    uint8_t k[8 + CAIRN_XATTR_NAME_MAX];
    size_t kl;
    int rc = xattr_key(k, op->ino, op->name, &kl);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_get(x->txn, x->s, op->ino, &r);
    if (rc) return rc;
    MDB_val v;
    rc = mst_get(x->txn, x->s->xattr, k, kl, &v);
    if (rc && rc != -ENOENT) return rc;
    if (rc == 0 && (op->flags & MST_XATTR_CREATE)) return -EEXIST;
    if (rc == -ENOENT && (op->flags & MST_XATTR_REPLACE)) return -ENODATA;
    int acl = mst_acl_kind(op->name);
    if (acl) {
        rc = mst_acl_set(x, &r, acl);
        if (rc) return rc;
        rc = xattr_any(x->txn, x->s, op->ino);
        return rc < 0 ? rc : touch_ctime(x, rc);
    }
    static const uint8_t empty;
    rc = mst_put(x->txn, x->s->xattr, k, kl, op->data_len ? op->data : &empty, op->data_len);
    return rc ? rc : touch_ctime(x, 1);
}

int mst_apply_removexattr(struct mtx *x)
{
    if (is_dir_xattr(x->op->name)) return -EPERM;
    uint8_t k[8 + CAIRN_XATTR_NAME_MAX];
    size_t kl;
    int rc = xattr_key(k, x->op->ino, x->op->name, &kl);
    if (rc) return rc;
    rc = mst_del(x->txn, x->s->xattr, k, kl);
    if (rc == -ENOENT) {
        struct mst_inode r;
        rc = mst_inode_get(x->txn, x->s, x->op->ino, &r);
        if (rc) return rc;
        /* as on Linux's own file systems, removing an ACL that is not there succeeds */
        return mst_acl_kind(x->op->name) ? 0 : -ENODATA;
    }
    if (rc) return rc;
    rc = xattr_any(x->txn, x->s, x->op->ino);
    return rc < 0 ? rc : touch_ctime(x, rc);
}
