/* mraft_fsm.c - the replicated state machine: a log entry is a batch of operation records
 * (u32 count, then mop_encode'd records) applied by mstore_apply() in one LMDB transaction
 * that also records the entry's index, so a restarted replica skips what it holds. On the
 * leader the batch is already applied in the open transaction (server.c): its entry's apply
 * only commits it. A snapshot is a reference to the store itself (snap_xfer.h): taking one
 * flushes the store; restoring one on a replica whose store is behind fetches a copy of
 * another replica's store and replaces the data file with it. Snapshots of the older kind
 * (a whole compressed store in the buffer) still restore. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mraft_int.h"
#include "snap_xfer.h"

static void freed_chunk(void *arg, uint64_t chunk_id, uint32_t version)
{
    struct meta *m = arg;
    csr_chunk_freed(&m->reg, chunk_id, version);
}

static void fatal_store(struct meta *m, const char *what, int rc)
{
    LOG_ERR("raft",
            "%s: %s; stopping (the log keeps every committed record: a restart "
            "applies them again)",
            what, strerror(-rc));
    (void)m;
    exit(70);
}

/* Apply the records of one entry at index in one transaction. */
static void apply_entry(struct meta *m, const struct raft_buffer *buf, uint64_t index)
{
    struct rcur c;
    rcur_init(&c, buf->base, buf->len);
    uint32_t n = rcur_u32(&c);
    int rc = mstore_batch_begin(m->store);
    if (rc) fatal_store(m, "cannot begin applying an entry", rc);
    for (uint32_t i = 0; i < n && !c.err; i++) {
        struct mop op;
        if (mop_decode(&c, &op)) {
            /* applying the rest would make this store differ from the others' */
            LOG_ERR("raft", "entry %" PRIu64 ": record %u does not decode", index, i);
            fatal_store(m, "a committed record does not decode", -EBADMSG);
        }
        struct mop_result res = {.freed = freed_chunk, .freed_arg = m};
        mstore_apply(m->store, &op, &res); /* a failed record changes nothing, as it did */
    }
    rc = mstore_batch_commit_at(m->store, index);
    if (rc) fatal_store(m, "cannot commit an applied entry", rc);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct mraft *r = fsm->data;
    struct meta *m = r->m;
    uint64_t index = r->rp->last_applied + 1; /* libraft applies in order, one at a time */
    *result = NULL;
    if (m->inflight && index == m->spec_index) {
        meta_batch_committed(m, index);
        return 0;
    }
    /* something else committed at a place we thought ours: what we applied is not the log */
    if (mstore_batch_active(m->store)) meta_batch_lost(m);
    if (index <= mstore_applied(m->store)) return 0; /* in the store already */
    apply_entry(m, buf, index);
    return 0;
}

/* ---- snapshots (snap_xfer.h) ---------------------------------------------------------------- */

#define SREF_MAGIC 0x46455253u /* "SREF": a reference; the data is a store at least this far */
#define SREF_LEN 16u           /* u32 magic, u32 version, u64 index */

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct mraft *r = fsm->data;
    uint64_t index = r->rp->last_applied;
    /* the store is the snapshot's data: it must hold index on disk before libraft drops the
     * log behind it (its commits are MDB_NOSYNC). One flush, no copy: writes go on. */
    int rc = mstore_sync(r->m->store);
    struct raft_buffer *b = rc ? NULL : raft_calloc(1, sizeof(*b));
    if (b) b->base = raft_malloc(SREF_LEN);
    if (!rc && (!b || !b->base)) rc = -ENOMEM;
    if (rc) {
        if (b) raft_free(b->base);
        raft_free(b);
        LOG_WARN("raft", "snapshot failed: %s (tried again later)", strerror(-rc));
        return rc == -ENOSPC ? RAFT_NOSPACE : RAFT_IOERR;
    }
    le_put32(b->base, SREF_MAGIC);
    le_put32((uint8_t *)b->base + 4, 1);
    le_put64((uint8_t *)b->base + 8, index);
    b->len = SREF_LEN;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct mraft *r = fsm->data;
    if (*bufs) {
        LOG_INFO("raft", "snapshot at index %llu (the store, flushed)",
                 (unsigned long long)r->rp->last_applied);
        for (unsigned i = 0; i < *n_bufs; i++)
            raft_free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* A whole compressed store in one buffer (snapshots taken before references) into path. */
static int decompress_to(const struct raft_buffer *buf, const char *path)
{
    struct snapz_dec *d;
    int rc = snapz_dec_open(path, &d);
    if (rc) return rc;
    rc = snapz_dec_feed(d, buf->base, buf->len);
    int crc = snapz_dec_close(d);
    return rc ? rc : crc;
}

/* Replace the store with the file at tmp (which holds index snap_applied). */
static void install_store(struct meta *m, const char *tmp, uint64_t snap_applied, uint64_t have)
{
    char live[CONF_STR_MAX + 32];
    snprintf(live, sizeof(live), "%s/data.mdb", m->cfg.data_dir);
    if (mstore_batch_active(m->store)) meta_batch_lost(m);
    struct mstore_opts so = {
        .map_size = m->cfg.map_size, .chunk_size = m->cfg.chunk_size, .no_sync = 1, .no_format = 1};
    meta_store_lock(); /* the flush thread must not touch the store meanwhile */
    mstore_close(m->store);
    m->store = NULL;
    if (rename(tmp, live)) fatal_store(m, "cannot install a snapshot", -errno);
    int dfd = open(m->cfg.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself must survive a crash */
        fsync(dfd);
        close(dfd);
    }
    int rc = mstore_open(m->cfg.data_dir, &so, &m->store);
    meta_store_unlock();
    if (rc) fatal_store(m, "cannot open the restored store", rc);
    m->pinned = 0;
    LOG_INFO("raft", "store restored from a snapshot (index %" PRIu64 ", was %" PRIu64 ")",
             snap_applied, have);
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct mraft *r = fsm->data;
    struct meta *m = r->m;
    char tmp[CONF_STR_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s/data.mdb.restore", m->cfg.data_dir);
    uint64_t have = mstore_applied(m->store), need = 0, snap_applied = 0;
    int is_ref = buf->len == SREF_LEN && le_get32(buf->base) == SREF_MAGIC;
    if (is_ref) need = le_get64((const uint8_t *)buf->base + 8);
    if (is_ref && have >= need && mstore_formatted(m->store)) {
        /* our own snapshot at a restart, or a follower that has it already */
        LOG_INFO("raft", "snapshot at index %" PRIu64 ": the store holds %" PRIu64, need, have);
        raft_free(buf->base);
        return 0;
    }
    int rc = is_ref ? (r->fetch ? r->fetch : snap_fetch)(r, need, tmp) : decompress_to(buf, tmp);
    if (!rc) rc = snapz_peek_applied(tmp, &snap_applied);
    if (!rc && snap_applied < need) rc = -ESTALE;
    if (rc) {
        unlink(tmp);
        LOG_ERR("raft", "snapshot (index %" PRIu64 ") does not restore: %s%s", need, strerror(-rc),
                is_ref ? " (no other replica could lend a copy of its store: start one, or "
                         "rebuild this replica: cairn meta remove, wipe, join, cairn meta add)"
                       : "");
        return is_ref ? RAFT_IOERR : RAFT_CORRUPT;
    }
    if (have >= snap_applied && mstore_formatted(m->store)) {
        unlink(tmp);
        LOG_INFO("raft",
                 "snapshot (index %" PRIu64 ") is not ahead of the store (%" PRIu64
                 "): kept the store",
                 snap_applied, have);
    } else {
        install_store(m, tmp, snap_applied, have);
    }
    raft_free(buf->base);
    return 0;
}

void mraft_fsm_init(struct mraft *r, struct raft *rp)
{
    r->rp = rp;
    /* version 2: snapshots are references to the store (snap_xfer.h), taken at once */
    r->fsm.version = 2;
    r->fsm.data = r;
    r->fsm.apply = fsm_apply;
    r->fsm.snapshot = fsm_snapshot;
    r->fsm.restore = fsm_restore;
    r->fsm.snapshot_finalize = fsm_snapshot_finalize;
}
