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

/* chunk record: id u64, version u32, allocated bytes u64 (12-byte records have no alloc) */
#define CK_VAL_LEN 20

static int ck_val_get(const MDB_val *v, uint64_t *id, uint32_t *ver, uint64_t *alloc)
{
    if (v->mv_size != 12 && v->mv_size != CK_VAL_LEN) return -EIO;
    const uint8_t *p = v->mv_data;
    *id = le_get64(p);
    *ver = le_get32(p + 8);
    if (alloc) *alloc = v->mv_size == CK_VAL_LEN ? le_get64(p + 12) : 0;
    return 0;
}

static void ck_val_put(uint8_t v[CK_VAL_LEN], uint64_t id, uint32_t ver, uint64_t alloc)
{
    le_put64(v, id);
    le_put32(v + 8, ver);
    le_put64(v + 12, alloc);
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

int mst_chunks_free_from(struct mtx *x, uint64_t ino, uint64_t first, uint64_t *freed_alloc)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(x->txn, x->s->chunk, &c));
    if (rc) return rc;
    uint8_t k[16];
    ck_key(k, ino, first);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == ino) {
        uint64_t id, alloc;
        uint32_t ver;
        rc = ck_val_get(&val, &id, &ver, &alloc);
        if (rc) break;
        if (freed_alloc) *freed_alloc += alloc;
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
    uint8_t k[16], v[CK_VAL_LEN];
    ck_key(k, op->ino, op->index);
    MDB_val cur;
    uint64_t id, alloc = 0;
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
        rc = ck_val_get(&cur, &id, &prev, &alloc);
        if (rc) return rc;
        ver = prev + 1;
    }
    ck_val_put(v, id, ver, alloc);
    rc = mst_put(x->txn, x->s->chunk, k, 16, v, CK_VAL_LEN);
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

/* Record the bytes chunk servers report for chunks of the file (op->data: n x {u64 index,
 * u64 allocated bytes}, little-endian) and keep the inode's total in step. */
static int commit_allocs(struct mtx *x, uint64_t ino, struct mst_inode *r)
{
    const struct mop *op = x->op;
    if (op->data_len % 16) return -EINVAL;
    for (uint32_t off = 0; off < op->data_len; off += 16) {
        uint64_t index = le_get64(op->data + off), alloc = le_get64(op->data + off + 8);
        uint8_t k[16], v[CK_VAL_LEN];
        ck_key(k, ino, index);
        MDB_val cur;
        int rc = mst_get(x->txn, x->s->chunk, k, 16, &cur);
        if (rc == -ENOENT) continue; /* freed meanwhile (truncated by someone) */
        if (rc) return rc;
        uint64_t id, old;
        uint32_t ver;
        rc = ck_val_get(&cur, &id, &ver, &old);
        if (rc) return rc;
        if (alloc > x->s->chunk_size) alloc = x->s->chunk_size;
        if (alloc == old) continue;
        ck_val_put(v, id, ver, alloc);
        rc = mst_put(x->txn, x->s->chunk, k, 16, v, CK_VAL_LEN);
        if (rc) return rc;
        r->alloc = r->alloc - (old < r->alloc ? old : r->alloc) + alloc;
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
    rc = commit_allocs(x, op->ino, &r);
    if (rc) return rc;
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
    if (!rc) rc = ck_val_get(&v, chunk_id, version, NULL);
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
        uint64_t id;
        uint32_t ver;
        rc = ck_val_get(&val, &id, &ver, NULL);
        if (rc) break;
        if (fn(arg, index, id, ver)) break;
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
