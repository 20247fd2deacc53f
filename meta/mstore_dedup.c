/* mstore_dedup.c - exactly-once client requests: the outcome (status and the inode it named)
 * of every numbered request (MSG_F_SEQ: session, seq) a client may still retry, in the `dedup`
 * database of the replicated store. A repeated request, after a failover or a lost reply, is
 * answered with its first outcome and never applied twice; a client's acked_below lets the
 * store forget what the client will not ask again. */
#include <errno.h>
#include <string.h>

#include "mstore_int.h"

static void dedup_key(uint8_t k[16], uint64_t session, uint64_t seq)
{
    be_put64(k, session);
    be_put64(k + 8, seq);
}

int mst_dedup_find(struct mstore *s, const struct mop *op, struct mop_result *res, int *rc_out)
{
    MDB_txn *t;
    int rc = mst_err(mdb_txn_begin(s->env, s->batch, s->batch ? 0 : MDB_RDONLY, &t));
    if (rc) return rc;
    uint8_t k[16];
    dedup_key(k, op->cs_session, op->cs_seq);
    MDB_val v;
    rc = mst_get(t, s->dedup, k, 16, &v);
    int found = 0;
    if (!rc && v.mv_size == 12) {
        found = 1;
        *rc_out = (int32_t)le_get32(v.mv_data);
        uint64_t ino = le_get64((const uint8_t *)v.mv_data + 4);
        if (res) res->duplicate = 1;
        if (ino && res) {
            struct mtx x = {.s = s, .txn = t, .op = op, .res = res};
            mst_result_attr(&x, ino); /* the inode as it is now (it may be gone: no attr) */
        }
    } else if (rc && rc != -ENOENT) {
        found = rc;
    }
    mdb_txn_abort(t);
    return found;
}

/* Delete the session's outcomes with seq in [from, below). */
static int drop_range(MDB_txn *t, struct mstore *s, uint64_t session, uint64_t from, uint64_t below)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->dedup, &c));
    if (rc) return rc;
    uint8_t k[16];
    dedup_key(k, session, from);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (mrc == 0 && key.mv_size == 16 && be_get64(key.mv_data) == session &&
           be_get64((const uint8_t *)key.mv_data + 8) < below) {
        mrc = mdb_cursor_del(c, 0);
        if (mrc) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT);
        if (mrc == MDB_NOTFOUND || mrc == EINVAL) mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return mrc == MDB_NOTFOUND ? 0 : mst_err(mrc);
}

int mst_dedup_record_txn(MDB_txn *t, struct mstore *s, const struct mop *op, int rc,
                         const struct mop_result *res)
{
    uint8_t k[16], v[12];
    dedup_key(k, op->cs_session, op->cs_seq);
    le_put32(v, (uint32_t)(int32_t)rc);
    le_put64(v + 4, rc == 0 && res ? res->attr.ino : 0);
    int r = mst_put(t, s->dedup, k, 16, v, 12);
    if (!r && op->cs_acked > 1) r = drop_range(t, s, op->cs_session, 0, op->cs_acked);
    return r;
}

int mst_dedup_record(struct mstore *s, const struct mop *op, int rc, const struct mop_result *res)
{
    MDB_txn *t;
    int r = mst_err(mdb_txn_begin(s->env, s->batch, 0, &t));
    if (r) return r;
    r = mst_dedup_record_txn(t, s, op, rc, res);
    if (r) {
        mdb_txn_abort(t);
        return r;
    }
    return mst_err(mdb_txn_commit(t));
}

int mst_dedup_drop_session(MDB_txn *t, struct mstore *s, uint64_t session)
{
    return drop_range(t, s, session, 0, UINT64_MAX);
}
