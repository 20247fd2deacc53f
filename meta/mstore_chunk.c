/* mstore_chunk.c - the chunk map: (ino, index) -> chunk record (id, version, allocated bytes,
 * the oldest version the last lease chain may validly hold and that chain's server ids) and
 * its reverse index chunk id -> (ino, index, version); write leases (allocate or bump the
 * version), commits of size and mtime, freeing chunks past a new end of file, and the scan
 * over every chunk that the repair scanner makes. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

static void ck_key(uint8_t k[16], uint64_t ino, uint64_t index)
{
    be_put64(k, ino);
    be_put64(k + 8, index);
}

/* chunk record: id u64, version u32, allocated bytes u64, prev u32, nchain u8, nchain x u64
 * server id. Older records: 12 bytes (no alloc) or 20 (no prev/chain: prev = version). */
#define CK_VAL_LEN 20
#define CK_VAL_MAX (25 + 8 * CAIRN_MAX_CHAIN)

static int ck_rec_get(const MDB_val *v, struct mstore_chunk *c)
{
    const uint8_t *p = v->mv_data;
    size_t n = v->mv_size;
    if (n != 12 && n != CK_VAL_LEN && (n < 25 || n > CK_VAL_MAX || (n - 25) % 8)) return -EIO;
    c->id = le_get64(p);
    c->version = le_get32(p + 8);
    c->alloc = n >= CK_VAL_LEN ? le_get64(p + 12) : 0;
    c->prev = c->version;
    c->nchain = 0;
    c->copies = 0;
    if (n >= 25) {
        c->prev = le_get32(p + 20);
        c->nchain = p[24];
        if (c->nchain != (n - 25) / 8 || c->prev > c->version) return -EIO;
        for (uint8_t i = 0; i < c->nchain; i++)
            c->chain[i] = le_get64(p + 25 + 8 * i);
    }
    return 0;
}

static int ck_val_get(const MDB_val *v, uint64_t *id, uint32_t *ver, uint64_t *alloc)
{
    struct mstore_chunk c;
    int rc = ck_rec_get(v, &c);
    if (rc) return rc;
    *id = c.id;
    *ver = c.version;
    if (alloc) *alloc = c.alloc;
    return 0;
}

/* Encode c into v (CK_VAL_MAX bytes); returns the length. */
static size_t ck_rec_put(uint8_t *v, const struct mstore_chunk *c)
{
    uint8_t n = c->nchain <= CAIRN_MAX_CHAIN ? c->nchain : CAIRN_MAX_CHAIN;
    le_put64(v, c->id);
    le_put32(v + 8, c->version);
    le_put64(v + 12, c->alloc);
    le_put32(v + 20, c->prev);
    v[24] = n;
    for (uint8_t i = 0; i < n; i++)
        le_put64(v + 25 + 8 * i, c->chain[i]);
    return 25 + 8 * (size_t)n;
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
    uint8_t k[16], v[CK_VAL_MAX];
    ck_key(k, op->ino, op->index);
    MDB_val cur;
    struct mstore_chunk c = {0};
    rc = mst_get(x->txn, x->s->chunk, k, 16, &cur);
    if (rc == -ENOENT) {
        if (op->new_chunk == 0) return -EINVAL;
        c.id = op->new_chunk;
        c.prev = 0;
        c.version = 1;
        rc = mst_counter_raise(x->txn, x->s, "next_chunk", c.id + 1);
        if (rc) return rc;
    } else if (rc) {
        return rc;
    } else {
        rc = ck_rec_get(&cur, &c);
        if (rc) return rc;
        if (c.version == UINT32_MAX) return -EOVERFLOW;
        /* members of the new chain may hold anything from prev on (see MOP_LEASE_CUR_KNOWN) */
        if (op->flags & MOP_LEASE_CUR_KNOWN) c.prev = c.version;
        c.version++;
    }
    if (op->nchain > CAIRN_MAX_CHAIN) return -EINVAL;
    c.nchain = op->nchain;
    memcpy(c.chain, op->chain, sizeof(c.chain));
    rc = mst_put(x->txn, x->s->chunk, k, 16, v, ck_rec_put(v, &c));
    if (!rc) rc = chunkid_put(x, c.id, op->ino, op->index, c.version);
    if (rc) return rc;
    if (x->res) {
        memset(&x->res->chunk, 0, sizeof(x->res->chunk));
        x->res->chunk.index = op->index;
        x->res->chunk.chunk_id = c.id;
        x->res->chunk.version = c.version;
        x->res->chunk.prev_version = c.prev;
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
        uint8_t k[16], v[CK_VAL_MAX];
        ck_key(k, ino, index);
        MDB_val cur;
        int rc = mst_get(x->txn, x->s->chunk, k, 16, &cur);
        if (rc == -ENOENT) continue; /* freed meanwhile (truncated by someone) */
        if (rc) return rc;
        struct mstore_chunk c;
        rc = ck_rec_get(&cur, &c);
        if (rc) return rc;
        uint64_t old = c.alloc;
        if (alloc > x->s->chunk_size) alloc = x->s->chunk_size;
        if (alloc == old) continue;
        c.alloc = alloc;
        rc = mst_put(x->txn, x->s->chunk, k, 16, v, ck_rec_put(v, &c));
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
    struct mstore_chunk c;
    int rc = mstore_chunk_rec(s, ino, index, &c);
    if (!rc) {
        *chunk_id = c.id;
        *version = c.version;
    }
    return rc;
}

static int chunk_rec_in(MDB_txn *t, struct mstore *s, uint64_t ino, uint64_t index,
                        struct mstore_chunk *out)
{
    uint8_t k[16];
    ck_key(k, ino, index);
    MDB_val v;
    memset(out, 0, sizeof(*out));
    int rc = mst_get(t, s->chunk, k, 16, &v);
    if (!rc) rc = ck_rec_get(&v, out);
    out->ino = ino;
    out->index = index;
    return rc;
}

int mstore_chunk_rec(struct mstore *s, uint64_t ino, uint64_t index, struct mstore_chunk *out)
{
    /* the open group commit's records count too (the caller is the store's only writer) */
    if (s->batch) return chunk_rec_in(s->batch, s, ino, index, out);
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = chunk_rec_in(t, s, ino, index, out);
    mdb_txn_abort(t);
    return rc;
}

/* The chunk record of chunk id (through the reverse index) in read transaction t. */
static int chunk_by_id_in(MDB_txn *t, struct mstore *s, uint64_t id, struct mstore_chunk *out)
{
    uint8_t k[8];
    be_put64(k, id);
    MDB_val v;
    int rc = mst_get(t, s->chunkid, k, 8, &v);
    if (!rc && v.mv_size != 20) rc = -EIO;
    if (rc) return rc;
    const uint8_t *p = v.mv_data;
    rc = chunk_rec_in(t, s, le_get64(p), le_get64(p + 8), out);
    if (!rc && out->id != id) rc = -EIO;
    return rc;
}

int mstore_chunk_by_id(struct mstore *s, uint64_t id, struct mstore_chunk *out)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = chunk_by_id_in(t, s, id, out);
    mdb_txn_abort(t);
    return rc;
}

int mstore_chunk_scan(struct mstore *s, uint64_t after, uint32_t max, mstore_chunk_fn fn, void *arg,
                      uint64_t *next)
{
    MDB_txn *t;
    MDB_cursor *c;
    *next = 0;
    int rc = mst_rcursor(s, s->chunkid, &t, &c);
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, after + 1);
    MDB_val key = {8, k}, val;
    int mrc = after == UINT64_MAX ? MDB_NOTFOUND : mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    uint32_t seen = 0, copies_seen = 0;
    uint64_t ino_seen = 0;
    while (mrc == 0 && seen < max) {
        if (key.mv_size != 8) break;
        uint64_t id = be_get64(key.mv_data);
        struct mstore_chunk ck;
        if (chunk_by_id_in(t, s, id, &ck) == 0) {
            /* the goal in the same transaction: one inode read per file, not per chunk */
            struct mst_inode r;
            if (ck.ino != ino_seen) {
                ino_seen = ck.ino;
                copies_seen = mst_inode_get(t, s, ck.ino, &r) == 0
                                  ? (r.copies ? r.copies : mstore_default_copies())
                                  : 0;
            }
            ck.copies = copies_seen;
            if (fn(arg, &ck)) break;
        }
        seen++;
        *next = id;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (mrc == MDB_NOTFOUND)
        *next = 0; /* the end: start again from the beginning */
    else if (mrc)
        rc = mst_err(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

int mstore_chunk_list(struct mstore *s, uint64_t ino, uint64_t first, uint32_t count,
                      mstore_chunk_fn fn, void *arg)
{
    MDB_txn *t;
    MDB_cursor *c;
    int rc = mst_rcursor(s, s->chunk, &t, &c);
    if (rc) return rc;
    uint8_t k[16];
    ck_key(k, ino, first);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == ino) {
        uint64_t index = be_get64((uint8_t *)key.mv_data + 8);
        if (index - first >= count) break;
        struct mstore_chunk ck;
        rc = ck_rec_get(&val, &ck);
        if (rc) break;
        ck.ino = ino;
        ck.index = index;
        if (fn(arg, &ck)) break;
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
