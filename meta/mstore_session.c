/* mstore_session.c - sessions (id -> last seen, name), open files per session and in total,
 * orphans (unlinked while open) and their purge on the last release or session close; also
 * OPEN (with O_TRUNC) and CREATE, which record an open. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

int mst_is_open(MDB_txn *t, struct mstore *s, uint64_t ino)
{
    uint8_t k[8];
    be_put64(k, ino);
    MDB_val v;
    int rc = mst_get(t, s->openref, k, 8, &v);
    if (rc == -ENOENT) return 0;
    if (rc) return rc;
    return v.mv_size == 4 && le_get32(v.mv_data) > 0;
}

static int u32_add(MDB_txn *t, MDB_dbi db, const uint8_t *k, size_t kl, int64_t delta,
                   uint32_t *after)
{
    MDB_val v;
    uint32_t n = 0;
    int rc = mst_get(t, db, k, kl, &v);
    if (rc && rc != -ENOENT) return rc;
    if (!rc && v.mv_size == 4) n = le_get32(v.mv_data);
    int64_t m = (int64_t)n + delta;
    if (m < 0) m = 0;
    *after = (uint32_t)m;
    if (m == 0) {
        rc = mst_del(t, db, k, kl);
        return rc == -ENOENT ? 0 : rc;
    }
    uint8_t b[4];
    le_put32(b, (uint32_t)m);
    return mst_put(t, db, k, kl, b, 4);
}

static int session_put(struct mtx *x, uint64_t id, const char *name)
{
    uint8_t k[8], v[8 + CAIRN_NAME_MAX];
    size_t n = strnlen(name, CAIRN_NAME_MAX);
    be_put64(k, id);
    le_put64(v, (uint64_t)x->op->now_s);
    memcpy(v + 8, name, n);
    return mst_put(x->txn, x->s->session, k, 8, v, 8 + n);
}

/* Record one more open of ino by the op's session (created if unknown). */
static int open_record(struct mtx *x, uint64_t ino)
{
    uint64_t sid = x->op->session;
    if (sid == 0) return 0; /* no session: nothing to track */
    uint8_t sk[8];
    be_put64(sk, sid);
    MDB_val v;
    int rc = mst_get(x->txn, x->s->session, sk, 8, &v);
    if (rc == -ENOENT) rc = session_put(x, sid, "");
    if (rc) return rc;
    uint8_t k[16];
    uint32_t n;
    be_put64(k, sid);
    be_put64(k + 8, ino);
    rc = u32_add(x->txn, x->s->open, k, 16, 1, &n);
    if (!rc) rc = u32_add(x->txn, x->s->openref, k + 8, 8, 1, &n);
    return rc;
}

/* Drop count opens of ino by session; purge ino if it was an orphan's last open. */
static int open_drop(struct mtx *x, uint64_t sid, uint64_t ino, uint32_t count)
{
    uint8_t k[16];
    uint32_t n;
    be_put64(k, sid);
    be_put64(k + 8, ino);
    int rc = u32_add(x->txn, x->s->open, k, 16, -(int64_t)count, &n);
    if (!rc) rc = u32_add(x->txn, x->s->openref, k + 8, 8, -(int64_t)count, &n);
    if (rc || n > 0) return rc;
    MDB_val v;
    rc = mst_get(x->txn, x->s->orphan, k + 8, 8, &v);
    if (rc == -ENOENT) return 0;
    return rc ? rc : mst_inode_drop(x, ino);
}

static int open_existing(struct mtx *x, uint64_t ino)
{
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, ino, &r);
    if (rc) return rc;
    if (x->op->flags & O_TRUNC) {
        if (S_ISDIR(r.mode)) return -EISDIR;
        if (S_ISREG(r.mode)) {
            rc = mst_inode_set_size(x, ino, &r, 0);
            if (rc) return rc;
            mst_set_mctime(x, &r);
            rc = mst_inode_put(x->txn, x->s, ino, &r);
            if (rc) return rc;
        }
    }
    rc = open_record(x, ino);
    if (!rc && x->res) mst_inode_attr(ino, &r, &x->res->attr);
    return rc;
}

int mst_apply_open(struct mtx *x)
{
    return open_existing(x, x->op->ino);
}

int mst_apply_create(struct mtx *x)
{
    const struct mop *op = x->op;
    uint64_t child;
    uint32_t mode;
    int rc = mst_name_check(op->name);
    if (rc) return rc;
    struct mst_inode d;
    rc = mst_dir_get(x, op->parent, &d);
    if (rc) return rc;
    rc = mst_dirent_get(x->txn, x->s, op->parent, op->name, &child, &mode);
    if (rc == 0) {
        if (op->flags & O_EXCL) return -EEXIST;
        if (S_ISDIR(mode)) return -EISDIR;
        return open_existing(x, child);
    }
    if (rc != -ENOENT) return rc;
    if (d.nlink == 0) return -ENOENT;
    struct mst_inode r;
    uint32_t fmode = S_IFREG | (op->mode & 07777);
    struct mst_acl_new acl; /* the parent's default ACL, or the umask, decide the mode */
    rc = mst_acl_new_prepare(x, op->parent, &fmode, &acl);
    if (rc) return rc;
    rc = mst_inode_new(x, fmode, op->uid, op->gid, 0, op->parent, &r);
    if (!rc) rc = mst_acl_new_store(x, op->new_ino, &r, &acl);
    mst_acl_new_free(&acl);
    if (!rc) rc = mst_dirent_add(x, op->parent, op->name, op->new_ino, fmode);
    if (!rc) rc = mst_dir_touch(x, op->parent, 0);
    if (!rc) rc = open_record(x, op->new_ino);
    if (!rc && x->res) mst_inode_attr(op->new_ino, &r, &x->res->attr);
    return rc;
}

int mst_apply_release(struct mtx *x)
{
    uint8_t k[16];
    be_put64(k, x->op->session);
    be_put64(k + 8, x->op->ino);
    MDB_val v;
    int rc = mst_get(x->txn, x->s->open, k, 16, &v);
    if (rc == -ENOENT) return -EBADF;
    if (rc) return rc;
    return open_drop(x, x->op->session, x->op->ino, 1);
}

int mst_apply_session_open(struct mtx *x)
{
    if (x->op->session == 0) return -EINVAL;
    int rc = session_put(x, x->op->session, x->op->name);
    if (!rc) rc = mst_counter_raise(x->txn, x->s, "next_session", x->op->session + 1);
    return rc;
}

int mst_apply_session_touch(struct mtx *x)
{
    uint8_t k[8];
    be_put64(k, x->op->session);
    MDB_val v;
    int rc = mst_get(x->txn, x->s->session, k, 8, &v);
    if (rc) return rc;
    char name[CAIRN_NAME_MAX + 1];
    size_t n = v.mv_size > 8 ? v.mv_size - 8 : 0;
    if (n > CAIRN_NAME_MAX) n = CAIRN_NAME_MAX;
    memcpy(name, (uint8_t *)v.mv_data + 8, n);
    name[n] = '\0';
    return session_put(x, x->op->session, name);
}

int mst_apply_session_close(struct mtx *x)
{
    uint64_t sid = x->op->session;
    uint8_t sk[8];
    be_put64(sk, sid);
    int rc = mst_del(x->txn, x->s->session, sk, 8);
    if (!rc) rc = mst_dedup_drop_session(x->txn, x->s, sid);
    if (rc) return rc;
    /* Release every open of the session, one at a time (each drop may change the tree). */
    for (;;) {
        MDB_cursor *c;
        rc = mst_err(mdb_cursor_open(x->txn, x->s->open, &c));
        if (rc) return rc;
        uint8_t k[16];
        be_put64(k, sid);
        be_put64(k + 8, 0);
        MDB_val key = {16, k}, val;
        int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        uint64_t ino = 0;
        uint32_t count = 0;
        int found = mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == sid;
        if (found) {
            ino = be_get64((uint8_t *)key.mv_data + 8);
            count = val.mv_size == 4 ? le_get32(val.mv_data) : 1;
        }
        mdb_cursor_close(c);
        if (mrc && mrc != MDB_NOTFOUND) return mst_err(mrc);
        if (!found) return 0;
        rc = open_drop(x, sid, ino, count ? count : 1);
        if (rc) return rc;
    }
}

int mstore_session_list(struct mstore *s, mstore_session_fn fn, void *arg)
{
    MDB_txn *t;
    MDB_cursor *c;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = mst_err(mdb_cursor_open(t, s->session, &c));
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    MDB_val key, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (mrc == 0) {
        if (key.mv_size == 8 && val.mv_size >= 8 &&
            fn(arg, be_get64(key.mv_data), (int64_t)le_get64(val.mv_data)))
            break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (mrc && mrc != MDB_NOTFOUND) rc = mst_err(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}
