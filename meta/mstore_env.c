/* mstore_env.c - the meta store's LMDB environment: open, format (root inode, counters),
 * close, the counters in the `meta` database, small key/value helpers, and statistics. */
#include <errno.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mstore_int.h"

#define MST_DEFAULT_MAP (8ull << 30)
#define MST_DEFAULT_CHUNK (64ull << 20)

int mst_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_BAD_VALSIZE:
        return -ENAMETOOLONG;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

int mst_get(MDB_txn *t, MDB_dbi db, const void *k, size_t kl, MDB_val *v)
{
    MDB_val key = {kl, (void *)k};
    return mst_err(mdb_get(t, db, &key, v));
}

int mst_put(MDB_txn *t, MDB_dbi db, const void *k, size_t kl, const void *v, size_t vl)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    return mst_err(mdb_put(t, db, &key, &val, 0));
}

int mst_del(MDB_txn *t, MDB_dbi db, const void *k, size_t kl)
{
    MDB_val key = {kl, (void *)k};
    return mst_err(mdb_del(t, db, &key, NULL));
}

int mst_counter_get(MDB_txn *t, struct mstore *s, const char *name, uint64_t *v)
{
    MDB_val val;
    int rc = mst_get(t, s->meta, name, strlen(name), &val);
    if (rc == -ENOENT) {
        *v = 0;
        return 0;
    }
    if (rc) return rc;
    if (val.mv_size != 8) return -EIO;
    *v = le_get64(val.mv_data);
    return 0;
}

int mst_counter_put(MDB_txn *t, struct mstore *s, const char *name, uint64_t v)
{
    uint8_t b[8];
    le_put64(b, v);
    return mst_put(t, s->meta, name, strlen(name), b, 8);
}

int mst_counter_add(MDB_txn *t, struct mstore *s, const char *name, int64_t delta)
{
    uint64_t v;
    int rc = mst_counter_get(t, s, name, &v);
    if (rc) return rc;
    if (delta < 0 && (uint64_t)-delta > v)
        v = 0;
    else
        v += (uint64_t)delta;
    return mst_counter_put(t, s, name, v);
}

int mst_counter_raise(MDB_txn *t, struct mstore *s, const char *name, uint64_t v)
{
    uint64_t cur;
    int rc = mst_counter_get(t, s, name, &cur);
    if (rc) return rc;
    return cur >= v ? 0 : mst_counter_put(t, s, name, v);
}

int mst_rtxn(struct mstore *s, MDB_txn **t)
{
    return mst_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, t));
}

int mst_rcursor(struct mstore *s, MDB_dbi db, MDB_txn **t, MDB_cursor **c)
{
    int rc = mst_rtxn(s, t);
    if (rc) return rc;
    rc = mst_err(mdb_cursor_open(*t, db, c));
    if (rc) mdb_txn_abort(*t);
    return rc;
}

int mst_format(struct mstore *s, MDB_txn *t, uint64_t epoch, uint64_t chunk_size)
{
    struct timespec now = {.tv_sec = (time_t)epoch};
    struct mst_inode root = {
        .gen = epoch,
        .mode = S_IFDIR | 0755,
        .nlink = 2,
        .atime_s = now.tv_sec,
        .mtime_s = now.tv_sec,
        .ctime_s = now.tv_sec,
        .atime_ns = (uint32_t)now.tv_nsec,
        .mtime_ns = (uint32_t)now.tv_nsec,
        .ctime_ns = (uint32_t)now.tv_nsec,
        .parent = 1,
        .next_seq = MST_FIRST_SEQ,
    };
    int rc = mst_inode_put(t, s, 1, &root);
    if (!rc) rc = mst_counter_put(t, s, "next_ino", 2);
    if (!rc) rc = mst_counter_put(t, s, "next_chunk", 1);
    if (!rc) rc = mst_counter_put(t, s, "next_session", 1);
    if (!rc) rc = mst_counter_put(t, s, "epoch", epoch);
    if (!rc) rc = mst_counter_put(t, s, "chunk_size", chunk_size);
    if (!rc) rc = mst_counter_put(t, s, "inodes", 1);
    if (!rc) rc = mst_counter_put(t, s, "bytes", 0);
    if (!rc) rc = mst_counter_put(t, s, "format", 1);
    if (!rc) rc = mst_counter_put(t, s, "rstat", 1); /* totals kept from the start */
    if (!rc) {
        s->chunk_size = chunk_size;
        s->epoch = epoch;
        s->next_ino = 2;
        s->next_chunk = 1;
        s->next_session = 1;
        s->format_pending = 1; /* formatted once committed (mstore_apply, batch commit) */
    }
    return rc;
}

static int mst_open_dbs(struct mstore *s, MDB_txn *t)
{
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {
        {"inode", &s->inode},     {"dirent", &s->dirent},   {"dirseq", &s->dirseq},
        {"symlink", &s->symlink}, {"xattr", &s->xattr},     {"chunk", &s->chunk},
        {"chunkid", &s->chunkid}, {"session", &s->session}, {"open", &s->open},
        {"openref", &s->openref}, {"orphan", &s->orphan},   {"meta", &s->meta},
        {"dedup", &s->dedup},     {"csdrain", &s->csdrain}, {"rstat", &s->rstat},
        {"ilink", &s->ilink},
    };
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        int rc = mdb_dbi_open(t, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (rc) return mst_err(rc);
    }
    return 0;
}

static int mst_load(struct mstore *s, const struct mstore_opts *opts)
{
    MDB_txn *t;
    int rc = mst_err(mdb_txn_begin(s->env, NULL, 0, &t));
    if (rc) return rc;
    rc = mst_open_dbs(s, t);
    uint64_t formatted = 0;
    if (!rc) rc = mst_counter_get(t, s, "format", &formatted);
    if (!rc && !formatted && !(opts && opts->no_format)) {
        uint64_t cs = opts && opts->chunk_size ? opts->chunk_size : MST_DEFAULT_CHUNK;
        rc = mst_format(s, t, (uint64_t)time(NULL), cs);
        formatted = 1;
    }
    s->formatted = formatted != 0;
    s->format_pending = 0;
    /* a store from before the directory totals: computed once, here */
    if (!rc && formatted) rc = mst_rstat_build(t, s);
    if (!rc) rc = mst_counter_get(t, s, "chunk_size", &s->chunk_size);
    if (!rc) rc = mst_counter_get(t, s, "epoch", &s->epoch);
    if (!rc) rc = mst_counter_get(t, s, "next_ino", &s->next_ino);
    if (!rc) rc = mst_counter_get(t, s, "next_chunk", &s->next_chunk);
    if (!rc) rc = mst_counter_get(t, s, "next_session", &s->next_session);
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    return mst_err(mdb_txn_commit(t));
}

int mstore_open(const char *dir, const struct mstore_opts *opts, struct mstore **out)
{
    struct mstore *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        int e = -errno;
        free(s);
        return e;
    }
    int rc = mst_err(mdb_env_create(&s->env));
    if (rc) goto err_free;
    uint64_t map = opts && opts->map_size ? opts->map_size : MST_DEFAULT_MAP;
    rc = mst_err(mdb_env_set_mapsize(s->env, map));
    if (!rc) rc = mst_err(mdb_env_set_maxdbs(s->env, 24));
    if (!rc) rc = mst_err(mdb_env_set_maxreaders(s->env, 256));
    unsigned flags = MDB_NOTLS | (opts && opts->no_sync ? MDB_NOSYNC : 0) |
                     (opts && opts->no_meta_sync ? MDB_NOMETASYNC : 0);
    if (!rc) rc = mst_err(mdb_env_open(s->env, dir, flags, 0600));
    if (!rc) rc = mst_load(s, opts);
    if (rc) goto err_env;
    *out = s;
    return 0;
err_env:
    mdb_env_close(s->env);
err_free:
    pthread_mutex_destroy(&s->lock);
    free(s);
    return rc;
}

void mstore_close(struct mstore *s)
{
    if (s && s->batch) { /* never committed: nothing of it was acknowledged */
        mdb_txn_abort(s->batch);
        s->batch = NULL;
        wbuf_free(&s->batch_freed);
    }
    if (!s) return;
    mdb_env_close(s->env);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int mst_apply_format(struct mtx *x)
{
    uint64_t formatted = 0;
    int rc = mst_counter_get(x->txn, x->s, "format", &formatted);
    if (rc || formatted) return rc; /* formatted already: nothing to do */
    rc = mst_format(x->s, x->txn, (uint64_t)x->op->now_s,
                    x->op->size ? x->op->size : MST_DEFAULT_CHUNK);
    /* index: the highest member id of the first group (ids are never given again) */
    if (!rc && x->op->index) rc = mst_counter_raise(x->txn, x->s, "member_id", x->op->index);
    return rc;
}

int mst_apply_cs_drain(struct mtx *x)
{
    uint8_t k[8], one = 1;
    be_put64(k, x->op->index);
    if (x->op->flags) return mst_put(x->txn, x->s->csdrain, k, 8, &one, 1);
    int rc = mst_del(x->txn, x->s->csdrain, k, 8);
    return rc == -ENOENT ? 0 : rc;
}

int mstore_cs_draining(struct mstore *s, uint64_t id)
{
    MDB_txn *t;
    if (mst_rtxn(s, &t)) return 0;
    uint8_t k[8];
    be_put64(k, id);
    MDB_val v;
    int on = mst_get(t, s->csdrain, k, 8, &v) == 0;
    mdb_txn_abort(t);
    return on;
}

int mst_apply_member_id(struct mtx *x)
{
    return mst_counter_raise(x->txn, x->s, "member_id", x->op->size);
}

/* A counter as the writer sees it: through the open batch when there is one. */
static uint64_t counter_now(struct mstore *s, const char *name)
{
    MDB_txn *t;
    uint64_t v = 0;
    if (s->batch) {
        mst_counter_get(s->batch, s, name, &v);
        return v;
    }
    if (mst_rtxn(s, &t)) return 0;
    mst_counter_get(t, s, name, &v);
    mdb_txn_abort(t);
    return v;
}

uint64_t mstore_member_id_max(struct mstore *s)
{
    return counter_now(s, "member_id");
}

int mstore_formatted(const struct mstore *s)
{
    return s->formatted;
}

uint64_t mstore_applied(struct mstore *s)
{
    return counter_now(s, "applied");
}

int mstore_sync(struct mstore *s)
{
    return mst_err(mdb_env_sync(s->env, 1));
}

int mstore_copy_fd(struct mstore *s, int fd)
{
    return mst_err(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
}

uint64_t mstore_chunk_size(const struct mstore *s)
{
    return s->chunk_size;
}

int mstore_stats(struct mstore *s, struct mstore_stats *out)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    memset(out, 0, sizeof(*out));
    rc = mst_counter_get(t, s, "inodes", &out->inodes);
    if (!rc) rc = mst_counter_get(t, s, "next_ino", &out->next_ino);
    if (!rc) rc = mst_counter_get(t, s, "next_chunk", &out->next_chunk);
    if (!rc) rc = mst_counter_get(t, s, "bytes", &out->bytes);
    mdb_txn_abort(t);
    return rc;
}

int mstore_pin(struct mstore *s, uint64_t *pinned)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mst_err(mdb_env_info(s->env, &info));
    if (!rc) rc = mst_err(mdb_env_stat(s->env, &st));
    if (rc) return rc;
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if (used > info.me_mapsize) used = info.me_mapsize;
    if (used <= *pinned) return 0;
    /* the file may be shorter than the last page number says until the next commit */
    struct stat fst;
    int fd = -1;
    if (mdb_env_get_fd(s->env, &fd) == 0 && fstat(fd, &fst) == 0 && (uint64_t)fst.st_size < used)
        used = (uint64_t)fst.st_size & ~((uint64_t)st.ms_psize - 1);
    if (used <= *pinned) return 0;
    if (mlock((const uint8_t *)info.me_mapaddr + *pinned, used - *pinned) != 0) return -errno;
    *pinned = used;
    return 0;
}
