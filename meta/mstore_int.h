/* mstore_int.h - private to the meta store (meta/mstore_*.c): the store handle, the on-disk
 * record layouts and the helpers the mstore files share. Nothing outside meta/mstore_*.c and
 * meta/mop.c includes it.
 *
 * Layout (all integer keys big-endian so LMDB orders them numerically; values little-endian):
 *   inode   ino                  -> inode record (struct mst_inode, version byte first)
 *   dirent  parent, name         -> child ino u64, mode u32, seq u64
 *   dirseq  parent, seq          -> child ino u64, mode u32, name bytes (seq: the readdir
 *                                   position, fixed while the name stays; mstore_dir.c)
 *   symlink ino                  -> target bytes
 *   xattr   ino, name            -> value bytes
 *   chunk   ino, index           -> chunk id u64, version u32, allocated bytes u64 (older
 *                                   records without the last field count as 0)
 *   chunkid chunk id             -> ino u64, index u64, version u32
 *   session id                   -> last seen i64, name bytes
 *   open    session, ino         -> count u32
 *   openref ino                  -> total open count u32 (over all sessions)
 *   orphan  ino                  -> u8 1 (nlink 0 but still open)
 *   dedup   session, seq         -> rc i32, ino u64 (outcome of a client's numbered request)
 *   csdrain chunk server id      -> u8 1 (a server being drained)
 *   rstat   directory ino        -> rbytes u64, rfiles u64, rsubdirs u64 (recursive totals of
 *                                   what is below it; absent = all 0; see mstore_rstat.c)
 *   ilink   ino, directory ino   -> u32 names of ino (not a directory) in that directory
 *   meta    counter name (text)  -> u64 ("applied": the last Raft index applied) */
#ifndef CAIRN_MSTORE_INT_H
#define CAIRN_MSTORE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "mop.h"
#include "mstore.h"

#define MST_LINK_MAX 65000u
#define MST_FIRST_SEQ 3 /* readdir cookies 1 and 2 are left to the client for "." and ".." */

struct mstore {
    MDB_env *env;
    MDB_dbi inode, dirent, dirseq, symlink, xattr, chunk, chunkid, session, open, openref, orphan,
        dedup, csdrain, meta, rstat, ilink;
    int formatted;      /* committed: reads see the root */
    int format_pending; /* formatted in a transaction not yet committed */
    uint64_t chunk_size;
    uint64_t epoch;
    pthread_mutex_t lock; /* guards the leader's counters below */
    uint64_t next_ino, next_chunk, next_session;
    /* group commit (mstore_batch_*): the open parent transaction, the records in it, and the
     * chunks they freed, reported once the batch is durable */
    MDB_txn *batch;
    uint32_t batch_ops;
    struct wbuf batch_freed;
    mop_freed_fn batch_freed_fn;
    void *batch_freed_arg;
};

struct mst_inode {
    uint64_t gen;
    uint32_t mode, uid, gid, nlink;
    uint64_t rdev, size;
    int64_t atime_s, mtime_s, ctime_s;
    uint32_t atime_ns, mtime_ns, ctime_ns;
    uint64_t parent;   /* directories: the parent directory; other inodes: the directory of
                        * their primary link, 0 while unlinked (mstore_rstat.c) */
    uint64_t next_seq; /* directories: next readdir sequence number */
    uint32_t flags;    /* MST_INO_* */
    uint64_t alloc;    /* regular files: bytes the chunk servers store for it (sum over chunks) */
    uint8_t copies;    /* copies of each chunk; 0 = the meta service's default_copies */
};

/* mst_inode.flags. MST_INO_XATTRS_KNOWN says MST_INO_XATTRS is kept up to date: set on every
 * inode created since the flag exists and by every setxattr/removexattr; without it (records
 * written before, the root of an older store) the inode counts as having xattrs. Both are
 * computed inside the apply of the record, so every replica agrees. */
#define MST_INO_XATTRS 1u       /* the xattr db holds at least one key of this inode */
#define MST_INO_XATTRS_KNOWN 2u /* MST_INO_XATTRS is maintained for this inode */

/* One write transaction applying one record. */
struct mtx {
    struct mstore *s;
    MDB_txn *txn;
    const struct mop *op;
    struct mop_result *res;
    struct wbuf freed; /* u64 chunk id + u32 version per chunk freed, reported after commit */
};

static inline void be_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint64_t be_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* mstore_env.c */
int mst_err(int mdb_rc);
int mst_get(MDB_txn *t, MDB_dbi db, const void *k, size_t kl, MDB_val *v);
int mst_put(MDB_txn *t, MDB_dbi db, const void *k, size_t kl, const void *v, size_t vl);
int mst_del(MDB_txn *t, MDB_dbi db, const void *k, size_t kl);
int mst_counter_get(MDB_txn *t, struct mstore *s, const char *name, uint64_t *v);
int mst_counter_put(MDB_txn *t, struct mstore *s, const char *name, uint64_t v);
int mst_counter_add(MDB_txn *t, struct mstore *s, const char *name, int64_t delta);
/* Raise a counter to at least v. */
int mst_counter_raise(MDB_txn *t, struct mstore *s, const char *name, uint64_t v);
int mst_rtxn(struct mstore *s, MDB_txn **t);
/* A read transaction and a cursor on db in it (nothing is left open on failure). The caller
 * closes the cursor and aborts the transaction. */
int mst_rcursor(struct mstore *s, MDB_dbi db, MDB_txn **t, MDB_cursor **c);

/* mstore_inode.c */
int mst_inode_get(MDB_txn *t, struct mstore *s, uint64_t ino, struct mst_inode *r);
int mst_inode_put(MDB_txn *t, struct mstore *s, uint64_t ino, const struct mst_inode *r);
void mst_inode_attr(uint64_t ino, const struct mst_inode *r, struct cairn_attr *a);
void mst_set_ctime(struct mtx *x, struct mst_inode *r);
void mst_set_mctime(struct mtx *x, struct mst_inode *r);
/* Create inode op->new_ino with times now and generation op->new_gen. */
int mst_inode_new(struct mtx *x, uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
                  uint64_t parent, struct mst_inode *r);
/* Remove ino with everything it owns (symlink target, xattrs, chunks). */
int mst_inode_drop(struct mtx *x, uint64_t ino);
/* One link of ino went away: nlink-1, ctime; dropped or orphaned when it reaches 0. */
int mst_inode_unlink(struct mtx *x, uint64_t ino);
/* Set the size of a regular file, freeing whole chunks past the end. */
int mst_inode_set_size(struct mtx *x, uint64_t ino, struct mst_inode *r, uint64_t size);
int mst_result_attr(struct mtx *x, uint64_t ino);
int mst_apply_setattr(struct mtx *x);
int mst_apply_set_copies(struct mtx *x);

/* mstore_dir.c */
int mst_name_check(const char *name);
int mst_dirent_get(MDB_txn *t, struct mstore *s, uint64_t parent, const char *name, uint64_t *child,
                   uint32_t *mode);
int mst_dirent_add(struct mtx *x, uint64_t parent, const char *name, uint64_t child, uint32_t mode);
int mst_dirent_del(struct mtx *x, uint64_t parent, const char *name);
/* Rename entry from to to (absent) inside parent, keeping its readdir position. */
int mst_dirent_rename(struct mtx *x, uint64_t parent, const char *from, const char *to);
/* Point the existing entry (parent, name) at child, keeping its readdir position. The
 * recursive totals are the caller's (mst_rstat_entry_del/add). */
int mst_dirent_set_child(struct mtx *x, uint64_t parent, const char *name, uint64_t child,
                         uint32_t mode);
int mst_dir_get(struct mtx *x, uint64_t dir, struct mst_inode *r);
int mst_dir_is_empty(MDB_txn *t, struct mstore *s, uint64_t dir);
/* Parent: nlink += dnlink, mtime = ctime = now. */
int mst_dir_touch(struct mtx *x, uint64_t dir, int dnlink);
int mst_apply_mknod(struct mtx *x);
int mst_apply_mkdir(struct mtx *x);
int mst_apply_symlink(struct mtx *x);
int mst_apply_link(struct mtx *x);
int mst_apply_unlink(struct mtx *x);
int mst_apply_rmdir(struct mtx *x);
/* mstore_rename.c */
int mst_apply_rename(struct mtx *x);

/* mstore_xattr.c */
int mst_xattr_drop_all(struct mtx *x, uint64_t ino);
int mst_apply_setxattr(struct mtx *x);
int mst_apply_removexattr(struct mtx *x);
/* The stored value of one xattr (valid until the next write in t): 0 or -ENOENT. */
int mst_xattr_get_raw(MDB_txn *t, struct mstore *s, uint64_t ino, const char *name, MDB_val *v);
/* Store / delete one xattr, nothing else (no ctime, no MST_INO_XATTRS): the caller keeps the
 * inode record right. Delete returns -ENOENT when there was none. */
int mst_xattr_put_raw(struct mtx *x, uint64_t ino, const char *name, const void *v, size_t len);
int mst_xattr_del_raw(struct mtx *x, uint64_t ino, const char *name);

/* mstore_acl.c: POSIX ACLs inside records (the encoding and rules: mstore_acl.h) */
struct mst_acl;
/* setxattr of an ACL (kind 1 access, 2 default; mst_acl_kind) on r, the inode of op->ino:
 * validates op->data (-EINVAL), -EACCES for a default ACL on a non-directory, -EOPNOTSUPP on
 * a symlink; an access ACL sets r's rwx bits and puts r (the caller then sets ctime and the
 * xattr flag). */
int mst_acl_set(struct mtx *x, struct mst_inode *r, int kind);
/* chmod of ino to mode: its access ACL, if any, follows. */
int mst_acl_chmod_inode(struct mtx *x, uint64_t ino, uint32_t mode);
/* The ACLs a new node gets from its parent's default ACL (NULL: none). */
struct mst_acl_new {
    struct mst_acl *access, *dflt;
};
/* Before creating a node of *mode (with type bits) in parent: with a default ACL on parent,
 * *mode is limited by it and n filled; without, the umask of the record (op->valid, see
 * MOP_UMASK_SET) is applied. Symlinks get neither. Free n with mst_acl_new_free. */
int mst_acl_new_prepare(struct mtx *x, uint64_t parent, uint32_t *mode, struct mst_acl_new *n);
/* After the inode ino (record r, already put) exists: store n's ACLs and mark r (put again). */
int mst_acl_new_store(struct mtx *x, uint64_t ino, struct mst_inode *r,
                      const struct mst_acl_new *n);
void mst_acl_new_free(struct mst_acl_new *n);

/* mstore_chunk.c */
/* Free every chunk of ino with index >= first (reported through x->freed). */
int mst_chunks_free_from(struct mtx *x, uint64_t ino, uint64_t first, uint64_t *freed_alloc);
int mst_apply_chunk_lease(struct mtx *x);
int mst_apply_commit(struct mtx *x);

/* mstore_dedup.c: exactly-once outcomes of numbered client requests (MSG_F_SEQ) */
/* Whether op repeats a (session, seq) already applied: then *rc is its first outcome and
 * res->attr the current attr of the inode it named. Returns 1 found, 0 not, or -errno. */
int mst_dedup_find(struct mstore *s, const struct mop *op, struct mop_result *res, int *rc);
/* Remember op's outcome and forget the session's outcomes below op->cs_acked: in t, or (the
 * first form, for a failed record whose own transaction was aborted) in a transaction of its
 * own inside the open batch. */
int mst_dedup_record_txn(MDB_txn *t, struct mstore *s, const struct mop *op, int rc,
                         const struct mop_result *res);
int mst_dedup_record(struct mstore *s, const struct mop *op, int rc, const struct mop_result *res);
/* Forget every outcome of a session (it closed). */
int mst_dedup_drop_session(MDB_txn *t, struct mstore *s, uint64_t session);
/* mstore_env.c: format a new store (root inode, counters) with this epoch and chunk size. */
int mst_format(struct mstore *s, MDB_txn *t, uint64_t epoch, uint64_t chunk_size);
int mst_apply_format(struct mtx *x);
int mst_apply_member_id(struct mtx *x);
int mst_apply_cs_drain(struct mtx *x);
/* mstore_fsck.c */
int mst_apply_fsck_fix(struct mtx *x);

/* mstore_rstat.c: recursive directory totals */
struct mst_rdelta {
    int64_t bytes, files, subdirs;
};
/* Add d to dir's totals and to every ancestor's up to the root. */
int mst_rstat_chain(MDB_txn *t, struct mstore *s, uint64_t dir, const struct mst_rdelta *d);
/* A name of child (of type mode) was added to / removed from directory parent. */
int mst_rstat_entry_add(struct mtx *x, uint64_t parent, uint64_t child, uint32_t mode);
int mst_rstat_entry_del(struct mtx *x, uint64_t parent, uint64_t child, uint32_t mode);
/* r (read and changed by the caller, not yet put) changed its size from old_size. */
int mst_rstat_size(struct mtx *x, const struct mst_inode *r, uint64_t old_size);
/* Forget the totals of a directory being dropped. */
int mst_rstat_drop(MDB_txn *t, struct mstore *s, uint64_t dir);
/* Compute every total once, when the store does not have them yet (at open). */
int mst_rstat_build(MDB_txn *t, struct mstore *s);
/* The value of a virtual xattr CAIRN_DIR_XATTR_PREFIX "rbytes"... of ino, as decimal text;
 * -ENODATA for an unknown name or an inode that is not a directory. */
int mst_rstat_xattr(MDB_txn *t, struct mstore *s, uint64_t ino, const char *name, struct wbuf *out);

/* mstore_session.c */
int mst_is_open(MDB_txn *t, struct mstore *s, uint64_t ino);
int mst_apply_open(struct mtx *x);
int mst_apply_create(struct mtx *x);
int mst_apply_release(struct mtx *x);
int mst_apply_session_open(struct mtx *x);
int mst_apply_session_touch(struct mtx *x);
int mst_apply_session_close(struct mtx *x);

#endif
