/* mstore_chunk.c - the chunk map: (ino, index) -> (chunk id, version) and its reverse index
 * chunk id -> (ino, index, version); write leases (allocate or bump the version), commits of
 * size and mtime, and freeing chunks past a new end of file. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

static void ck_key(uint8_t k[16], uint64_t ino, uint64_t index)
{
    be_put64(k, ino);
    be_put64(k + 8, index);
}

static int chunkid_put(struct mtx *x, uint64_t id, uint64_t ino, uint64_t index, uint32_t ver)
{
    uint8_t k[8], v[20];
    be_put64(k, id);
    le_put64(v, ino);
    le_put64(v + 8, index);
    le_put32(v + 16, ver);
    return mst_put(x->txn, x->s->chunkid, k, 8, v, 20);
}

int mst_chunks_free_from(struct mtx *x, uint64_t ino, uint64_t first)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(x->txn, x->s->chunk, &c));
    if (rc) return rc;
    uint8_t k[16];
    ck_key(k, ino, first);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == ino) {
        if (val.mv_size != 12) {
            rc = -EIO;
            break;
        }
        uint64_t id = le_get64(val.mv_data);
        uint32_t ver = le_get32((uint8_t *)val.mv_data + 8);
        wbuf_put_u64(&x->freed, id);
        wbuf_put_u32(&x->freed, ver);
        uint8_t ik[8];
        be_put64(ik, id);
        rc = mst_del(x->txn, x->s->chunkid, ik, 8);
        if (rc && rc != -ENOENT) break;
        rc = mst_err(mdb_cursor_del(c, 0));
        if (rc) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mst_err(mrc);
    if (!rc) rc = x->freed.err;
    mdb_cursor_close(c);
    return rc;
}

static int regular_file(struct mtx *x, struct mst_inode *r)
{
    int rc = mst_inode_get(x->txn, x->s, x->op->ino, r);
    if (rc) return rc;
    if (S_ISDIR(r->mode)) return -EISDIR;
    return S_ISREG(r->mode) ? 0 : -EINVAL;
}

int mst_apply_chunk_lease(struct mtx *x)
{
    const struct mop *op = x->op;
    struct mst_inode r;
    int rc = regular_file(x, &r);
    if (rc) return rc;
    if (op->index > UINT64_MAX / x->s->chunk_size) return -EFBIG;
    uint8_t k[16], v[12];
    ck_key(k, op->ino, op->index);
    MDB_val cur;
    uint64_t id;
    uint32_t ver, prev;
    rc = mst_get(x->txn, x->s->chunk, k, 16, &cur);
    if (rc == -ENOENT) {
        if (op->new_chunk == 0) return -EINVAL;
        id = op->new_chunk;
        prev = 0;
        ver = 1;
        rc = mst_counter_raise(x->txn, x->s, "next_chunk", id + 1);
        if (rc) return rc;
    } else if (rc) {
        return rc;
    } else {
        if (cur.mv_size != 12) return -EIO;
        id = le_get64(cur.mv_data);
        prev = le_get32((uint8_t *)cur.mv_data + 8);
        ver = prev + 1;
    }
    le_put64(v, id);
    le_put32(v + 8, ver);
    rc = mst_put(x->txn, x->s->chunk, k, 16, v, 12);
    if (!rc) rc = chunkid_put(x, id, op->ino, op->index, ver);
    if (rc) return rc;
    if (x->res) {
        memset(&x->res->chunk, 0, sizeof(x->res->chunk));
        x->res->chunk.index = op->index;
        x->res->chunk.chunk_id = id;
        x->res->chunk.version = ver;
        x->res->chunk.prev_version = prev;
        mst_inode_attr(op->ino, &r, &x->res->attr);
    }
    return 0;
}

int mst_apply_commit(struct mtx *x)
{
    const struct mop *op = x->op;
    struct mst_inode r;
    int rc = regular_file(x, &r);
    if (rc) return rc;
    if (op->flags & ~COMMIT_SET_SIZE) return -EINVAL;
    if ((op->flags & COMMIT_SET_SIZE) || op->size > r.size)
        rc = mst_inode_set_size(x, op->ino, &r, op->size);
    if (rc) return rc;
    r.mtime_s = op->mtime_s;
    r.mtime_ns = op->mtime_ns;
    mst_set_ctime(x, &r);
    rc = mst_inode_put(x->txn, x->s, op->ino, &r);
    if (!rc && x->res) mst_inode_attr(op->ino, &r, &x->res->attr);
    return rc;
}

int mstore_chunk_get(struct mstore *s, uint64_t ino, uint64_t index, uint64_t *chunk_id,
                     uint32_t *version)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    uint8_t k[16];
    ck_key(k, ino, index);
    MDB_val v;
    rc = mst_get(t, s->chunk, k, 16, &v);
    if (!rc && v.mv_size != 12) rc = -EIO;
    if (!rc) {
        *chunk_id = le_get64(v.mv_data);
        *version = le_get32((uint8_t *)v.mv_data + 8);
    }
    mdb_txn_abort(t);
    return rc;
}

int mstore_chunk_list(struct mstore *s, uint64_t ino, uint64_t first, uint32_t count,
                      mstore_chunk_fn fn, void *arg)
{
    MDB_txn *t;
    MDB_cursor *c;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = mst_err(mdb_cursor_open(t, s->chunk, &c));
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    uint8_t k[16];
    ck_key(k, ino, first);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == ino) {
        uint64_t index = be_get64((uint8_t *)key.mv_data + 8);
        if (index - first >= count) break;
        if (val.mv_size != 12) {
            rc = -EIO;
            break;
        }
        if (fn(arg, index, le_get64(val.mv_data), le_get32((uint8_t *)val.mv_data + 8))) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mst_err(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

int mstore_chunk_version(struct mstore *s, uint64_t chunk_id, uint32_t *version)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, chunk_id);
    MDB_val v;
    rc = mst_get(t, s->chunkid, k, 8, &v);
    if (!rc && v.mv_size != 20) rc = -EIO;
    if (!rc) *version = le_get32((uint8_t *)v.mv_data + 16);
    mdb_txn_abort(t);
    return rc;
}
