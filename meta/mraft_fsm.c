/* mraft_fsm.c - the replicated state machine: a log entry is a batch of operation records
 * (u32 count, then mop_encode'd records) applied by mstore_apply() in one LMDB transaction
 * that also records the entry's index, so a restarted replica skips what it holds. On the
 * leader the batch is already applied in the open transaction (server.c): its entry's apply
 * only commits it. Snapshots are compacted LMDB copies compressed with zstd, taken in an LMDB
 * read transaction on the loop thread; a restore replaces the store's
 * data file when the snapshot is ahead of it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "log.h"
#include "mraft_int.h"

#define SNAP_MAGIC 0x50414e53u /* "SNAP" */
#define SNAP_HDR 16u           /* u32 magic, u32 version, u64 reserved */
#define SNAP_IO (1u << 20)

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

/* ---- snapshots ----------------------------------------------------------------------------- */

/* Append compressed bytes to a growing raft_malloc'd buffer. */
static int grow(struct raft_buffer *b, size_t *cap, const void *p, size_t n)
{
    if (b->len + n > *cap) {
        size_t nc = *cap ? *cap * 2 : (1u << 20);
        while (nc < b->len + n)
            nc *= 2;
        void *q = raft_realloc(b->base, nc);
        if (!q) return -ENOMEM;
        b->base = q;
        *cap = nc;
    }
    memcpy((uint8_t *)b->base + b->len, p, n);
    b->len += n;
    return 0;
}

/* Compress fd (from its start) into out after a header. */
static int compress_file(int fd, struct raft_buffer *out)
{
    size_t cap = 0;
    uint8_t hdr[SNAP_HDR] = {0};
    le_put32(hdr, SNAP_MAGIC);
    le_put32(hdr + 4, 1);
    int rc = grow(out, &cap, hdr, sizeof(hdr));
    ZSTD_CCtx *z = ZSTD_createCCtx();
    uint8_t *in = malloc(SNAP_IO), *zout = malloc(ZSTD_CStreamOutSize());
    if (!z || !in || !zout) rc = -ENOMEM;
    if (!rc) ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 3);
    if (!rc && lseek(fd, 0, SEEK_SET) < 0) rc = -errno;
    for (int last = 0; !rc && !last;) {
        ssize_t got = read(fd, in, SNAP_IO);
        if (got < 0) {
            rc = -errno;
            break;
        }
        last = got == 0;
        ZSTD_inBuffer ib = {in, (size_t)got, 0};
        int done = 0;
        while (!rc && !done) {
            ZSTD_outBuffer ob = {zout, ZSTD_CStreamOutSize(), 0};
            size_t left = ZSTD_compressStream2(z, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError(left)) rc = -EIO;
            if (!rc && ob.pos) rc = grow(out, &cap, zout, ob.pos);
            done = last ? left == 0 : ib.pos == ib.size;
        }
    }
    ZSTD_freeCCtx(z);
    free(in);
    free(zout);
    return rc;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct mraft *r = fsm->data;
    char path[CONF_STR_MAX + 32];
    snprintf(path, sizeof(path), "%s/snapshot.copy", r->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return RAFT_IOERR;
    unlink(path); /* only the descriptor is needed */
    /* a consistent copy at least as new as the snapshot's index; it records its own
     * applied index, so entries it already holds are skipped after a restore */
    int rc = mstore_copy_fd(r->m->store, fd);
    struct raft_buffer *b = raft_calloc(1, sizeof(*b));
    if (!rc && !b) rc = -ENOMEM;
    if (!rc) rc = compress_file(fd, b);
    close(fd);
    if (rc) {
        if (b) raft_free(b->base);
        raft_free(b);
        LOG_WARN("raft", "snapshot failed: %s (tried again later)", strerror(-rc));
        return rc == -ENOSPC ? RAFT_NOSPACE : RAFT_IOERR;
    }
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct mraft *r = fsm->data;
    if (*bufs) {
        LOG_INFO("raft", "snapshot at index %llu: %zu bytes compressed",
                 (unsigned long long)r->rp->last_applied, (*bufs)[0].len);
        for (unsigned i = 0; i < *n_bufs; i++)
            raft_free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Decompress a snapshot into path. */
static int decompress_to(const struct raft_buffer *buf, const char *path)
{
    if (buf->len < SNAP_HDR || le_get32(buf->base) != SNAP_MAGIC) return -EBADMSG;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    ZSTD_DCtx *z = ZSTD_createDCtx();
    size_t cap = ZSTD_DStreamOutSize();
    uint8_t *out = malloc(cap);
    int rc = z && out ? 0 : -ENOMEM;
    ZSTD_inBuffer ib = {(const uint8_t *)buf->base + SNAP_HDR, buf->len - SNAP_HDR, 0};
    size_t left = 1;
    while (!rc && ib.pos < ib.size) {
        ZSTD_outBuffer ob = {out, cap, 0};
        left = ZSTD_decompressStream(z, &ob, &ib);
        if (ZSTD_isError(left)) rc = -EBADMSG;
        for (size_t off = 0; !rc && off < ob.pos;) {
            ssize_t w = write(fd, out + off, ob.pos - off);
            if (w < 0) rc = -errno;
            off += w > 0 ? (size_t)w : 0;
        }
    }
    if (!rc && left != 0) rc = -EBADMSG; /* truncated */
    if (!rc && fsync(fd)) rc = -errno;
    close(fd);
    ZSTD_freeDCtx(z);
    free(out);
    return rc;
}

/* The applied index an LMDB data file records (opened read-only on its own). */
static int peek_applied(const char *file, uint64_t *applied)
{
    MDB_env *env;
    if (mdb_env_create(&env)) return -ENOMEM;
    mdb_env_set_maxdbs(env, 16);
    int rc = mdb_env_open(env, file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0600);
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    if (!rc) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
    if (!rc) rc = mdb_dbi_open(t, "meta", 0, &dbi);
    *applied = 0;
    if (!rc) {
        MDB_val k = {7, (void *)"applied"}, v;
        if (mdb_get(t, dbi, &k, &v) == 0 && v.mv_size == 8) *applied = le_get64(v.mv_data);
    }
    if (t) mdb_txn_abort(t);
    mdb_env_close(env);
    return rc ? -EBADMSG : 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct mraft *r = fsm->data;
    struct meta *m = r->m;
    char tmp[CONF_STR_MAX + 32], live[CONF_STR_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s/data.mdb.restore", m->cfg.data_dir);
    snprintf(live, sizeof(live), "%s/data.mdb", m->cfg.data_dir);
    int rc = decompress_to(buf, tmp);
    uint64_t snap_applied = 0;
    if (!rc) rc = peek_applied(tmp, &snap_applied);
    if (rc) {
        unlink(tmp);
        LOG_ERR("raft", "snapshot does not restore: %s", strerror(-rc));
        return RAFT_CORRUPT;
    }
    uint64_t have = mstore_applied(m->store);
    if (have >= snap_applied && mstore_formatted(m->store)) {
        unlink(tmp);
        LOG_INFO("raft",
                 "snapshot (index %" PRIu64 ") is not ahead of the store (%" PRIu64
                 "): kept the store",
                 snap_applied, have);
    } else {
        if (mstore_batch_active(m->store)) meta_batch_lost(m);
        struct mstore_opts so = {.map_size = m->cfg.map_size,
                                 .chunk_size = m->cfg.chunk_size,
                                 .no_sync = 1,
                                 .no_format = 1};
        meta_store_lock(); /* the flush thread must not touch the store meanwhile */
        mstore_close(m->store);
        m->store = NULL;
        if (rename(tmp, live)) fatal_store(m, "cannot install a snapshot", -errno);
        rc = mstore_open(m->cfg.data_dir, &so, &m->store);
        meta_store_unlock();
        if (rc) fatal_store(m, "cannot open the restored store", rc);
        m->pinned = 0;
        LOG_INFO("raft", "store restored from a snapshot (index %" PRIu64 ", was %" PRIu64 ")",
                 snap_applied, have);
    }
    raft_free(buf->base);
    return 0;
}

void mraft_fsm_init(struct mraft *r, struct raft *rp)
{
    r->rp = rp;
    /* version 2: libraft 0.15's libuv backend has no async_work, so the copy runs on the
     * loop (an LMDB read transaction: a pause of the copy's length, no lock) */
    r->fsm.version = 2;
    r->fsm.data = r;
    r->fsm.apply = fsm_apply;
    r->fsm.snapshot = fsm_snapshot;
    r->fsm.restore = fsm_restore;
    r->fsm.snapshot_finalize = fsm_snapshot_finalize;
}
