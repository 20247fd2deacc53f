/* mstore_apply.c - mstore_apply(): one operation record, one LMDB write transaction. Dispatches
 * on the record type, commits on success (durably unless opened with no_sync), aborts on any
 * error so a failed operation changes nothing, and reports freed chunks after the commit. */
#include <errno.h>
#include <string.h>

#include "mstore_int.h"

typedef int (*mst_apply_fn)(struct mtx *x);

static const mst_apply_fn mst_ops[] = {
    [MOP_MKNOD] = mst_apply_mknod,
    [MOP_MKDIR] = mst_apply_mkdir,
    [MOP_SYMLINK] = mst_apply_symlink,
    [MOP_CREATE] = mst_apply_create,
    [MOP_LINK] = mst_apply_link,
    [MOP_UNLINK] = mst_apply_unlink,
    [MOP_RMDIR] = mst_apply_rmdir,
    [MOP_RENAME] = mst_apply_rename,
    [MOP_SETATTR] = mst_apply_setattr,
    [MOP_SETXATTR] = mst_apply_setxattr,
    [MOP_REMOVEXATTR] = mst_apply_removexattr,
    [MOP_OPEN] = mst_apply_open,
    [MOP_RELEASE] = mst_apply_release,
    [MOP_CHUNK_LEASE] = mst_apply_chunk_lease,
    [MOP_COMMIT] = mst_apply_commit,
    [MOP_SESSION_OPEN] = mst_apply_session_open,
    [MOP_SESSION_TOUCH] = mst_apply_session_touch,
    [MOP_SESSION_CLOSE] = mst_apply_session_close,
    [MOP_SET_COPIES] = mst_apply_set_copies,
    [MOP_FORMAT] = mst_apply_format,
    [MOP_MEMBER_ID] = mst_apply_member_id,
    [MOP_CS_DRAIN] = mst_apply_cs_drain,
    [MOP_FSCK_FIX] = mst_apply_fsck_fix,
};

/* Keep the leader's in-memory counters at or above what the store has handed out, so a
 * replica that only applied records allocates fresh numbers once it prepares. */
static void mst_sync_counters(struct mstore *s, const struct mop *op)
{
    pthread_mutex_lock(&s->lock);
    if (op->new_ino && op->new_ino >= s->next_ino) s->next_ino = op->new_ino + 1;
    if (op->new_chunk && op->new_chunk >= s->next_chunk) s->next_chunk = op->new_chunk + 1;
    if (op->type == MOP_SESSION_OPEN && op->session >= s->next_session)
        s->next_session = op->session + 1;
    pthread_mutex_unlock(&s->lock);
}

static void report_freed(const struct wbuf *freed, mop_freed_fn fn, void *arg)
{
    if (!fn) return;
    for (size_t off = 0; off + 12 <= freed->len; off += 12)
        fn(arg, le_get64(freed->data + off), le_get32(freed->data + off + 8));
}

int mstore_apply(struct mstore *s, const struct mop *op, struct mop_result *res)
{
    if (op->type == 0 || op->type >= sizeof(mst_ops) / sizeof(mst_ops[0]) || !mst_ops[op->type])
        return -EINVAL;
    /* a numbered request seen before gets its first outcome (a lease may simply be taken
     * again: the new version is what the writer uses) */
    int numbered = op->cs_seq && op->cs_session && op->type != MOP_CHUNK_LEASE;
    if (numbered) {
        int first_rc = 0;
        int found = mst_dedup_find(s, op, res, &first_rc);
        if (found < 0) return found;
        if (found) return first_rc;
    }
    if (op->type != MOP_FORMAT && !s->formatted && !s->format_pending) return -EAGAIN;
    struct mtx x = {.s = s, .op = op, .res = res};
    wbuf_init(&x.freed);
    int rc = mst_err(mdb_txn_begin(s->env, s->batch, 0, &x.txn));
    if (rc) goto out;
    rc = mst_ops[op->type](&x);
    if (rc) {
        mdb_txn_abort(x.txn);
        if (numbered && rc != -ENOSPC && rc != -EIO) {
            int rrc = mst_dedup_record(s, op, rc, res);
            if (rrc) rc = rrc;
        }
        goto out;
    }
    if (numbered) {
        /* the outcome goes into the same transaction as the change */
        rc = mst_dedup_record_txn(x.txn, s, op, 0, res);
        if (rc) {
            mdb_txn_abort(x.txn);
            goto out;
        }
    }
    rc = mst_err(mdb_txn_commit(x.txn));
    if (rc) goto out;
    if (!s->batch && s->format_pending) {
        s->formatted = 1;
        s->format_pending = 0;
    }
    mst_sync_counters(s, op);
    if (s->batch) {
        /* reported when the batch is durable */
        s->batch_ops++;
        wbuf_put_raw(&s->batch_freed, x.freed.data, x.freed.len);
        if (res && res->freed) {
            s->batch_freed_fn = res->freed;
            s->batch_freed_arg = res->freed_arg;
        }
    } else if (res) {
        report_freed(&x.freed, res->freed, res->freed_arg);
    }
out:
    wbuf_free(&x.freed);
    return rc;
}

int mstore_batch_begin(struct mstore *s)
{
    if (s->batch) return -EBUSY;
    int rc = mst_err(mdb_txn_begin(s->env, NULL, 0, &s->batch));
    if (rc) {
        s->batch = NULL;
        return rc;
    }
    s->batch_ops = 0;
    wbuf_init(&s->batch_freed);
    s->batch_freed_fn = NULL;
    s->batch_freed_arg = NULL;
    return 0;
}

int mstore_batch_active(const struct mstore *s)
{
    return s->batch != NULL;
}

uint32_t mstore_batch_size(const struct mstore *s)
{
    return s->batch ? s->batch_ops : 0;
}

int mstore_batch_commit_at(struct mstore *s, uint64_t index)
{
    if (!s->batch) {
        int rc = mstore_batch_begin(s);
        if (rc) return rc;
    }
    int rc = mst_counter_put(s->batch, s, "applied", index);
    if (rc) {
        mstore_batch_abort(s);
        return rc;
    }
    return mstore_batch_commit(s);
}

void mstore_batch_abort(struct mstore *s)
{
    if (!s->batch) return;
    mdb_txn_abort(s->batch);
    s->batch = NULL;
    s->batch_ops = 0;
    s->format_pending = 0;
    wbuf_free(&s->batch_freed);
}

int mstore_batch_commit(struct mstore *s)
{
    if (!s->batch) return 0;
    int rc = mst_err(mdb_txn_commit(s->batch));
    s->batch = NULL;
    if (!rc && s->format_pending) s->formatted = 1;
    s->format_pending = 0;
    if (!rc) report_freed(&s->batch_freed, s->batch_freed_fn, s->batch_freed_arg);
    wbuf_free(&s->batch_freed);
    return rc;
}
