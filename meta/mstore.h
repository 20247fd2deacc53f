/* mstore.h - the metadata store: inodes, directory entries, symlinks, xattrs, the chunk map,
 * open files and sessions, in one LMDB environment.
 *
 * Reads run in their own LMDB read transaction and never block. Every mutation is an
 * operation record (struct mop, mop.h) whose non-deterministic values (time, new inode number,
 * new chunk id) were fixed by the leader in mop_prepare(); mstore_apply() applies one record
 * in exactly one write transaction and commits it durably before returning. Replaying the same
 * records in the same order on another replica gives the same database (Raft, later).
 *
 * All functions return 0 or a negative errno (POSIX codes as a file system returns them). */
#ifndef CAIRN_MSTORE_H
#define CAIRN_MSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "proto.h"

struct mstore;
struct mop;
struct mop_result;

struct mstore_opts {
    uint64_t map_size;   /* LMDB map size; default 8 GiB */
    uint64_t chunk_size; /* fixed at format time; ignored for an existing store */
    int no_sync;         /* MDB_NOSYNC: commits reach the disk at mstore_sync (Raft: the log is
                          * the durable point) */
    int no_meta_sync;    /* MDB_NOMETASYNC */
    int no_format;       /* leave a new store empty: a MOP_FORMAT record formats it */
};

/* Open (creating and formatting when empty) the store in directory dir. */
int mstore_open(const char *dir, const struct mstore_opts *opts, struct mstore **out);
void mstore_close(struct mstore *s);
uint64_t mstore_chunk_size(const struct mstore *s);

/* --- reads -------------------------------------------------------------------------- */
int mstore_getattr(struct mstore *s, uint64_t ino, struct cairn_attr *out);
/* Whether setting the xattr name to value on ino would change nothing, in committed state:
 * name is the access ACL, ino holds none and value is a minimal ACL that says what the mode
 * says (what `cp -a`, `rsync -A` and `tar --acls` set on every file). As on ext4 such a set
 * stores nothing and leaves ctime alone, so it needs no record. */
int mstore_acl_access_unchanged(struct mstore *s, uint64_t ino, const char *name, const void *value,
                                size_t len);
/* -ENOENT, -ENOTDIR (parent not a directory), -ENAMETOOLONG. */
int mstore_lookup(struct mstore *s, uint64_t parent, const char *name, struct cairn_attr *out);
int mstore_readlink(struct mstore *s, uint64_t ino, char *buf, size_t buflen);
/* The inode the name (parent, name) points to, including what the open group commit changed
 * (the writer's thread only). -ENOENT. */
int mstore_child_now(struct mstore *s, uint64_t parent, const char *name, uint64_t *child);

/* Called per entry; return nonzero to stop (the entry is then not consumed). attr is NULL
 * unless plus was asked. cookie_next resumes after this entry. */
typedef int (*mstore_dirent_fn)(void *arg, uint64_t ino, uint32_t mode, const char *name,
                                const struct cairn_attr *attr, uint64_t cookie_next);
/* Entries in a stable order from cookie (0 = start); *eof set when the end was reached.
 * "." and ".." are not listed; every entry's cookie_next is >= 4, so a client may use
 * cookies 1 and 2 for them.
 * Holds nothing in memory beyond one entry: a cursor range scan. -ENOTDIR. */
int mstore_readdir(struct mstore *s, uint64_t dir, uint64_t cookie, int plus, mstore_dirent_fn fn,
                   void *arg, int *eof);

/* Value appended to out. -ENODATA if absent. */
int mstore_getxattr(struct mstore *s, uint64_t ino, const char *name, struct wbuf *out);
/* Names appended to out, each NUL-terminated. */
int mstore_listxattr(struct mstore *s, uint64_t ino, struct wbuf *out);

/* Recursive totals of a directory (see meta/mstore_rstat.c for the exact definitions): the
 * directories below it, the other inodes below it (each once, under its primary link), and
 * the sum of those inodes' st_size. Kept up to date by every record. */
struct mstore_rstat {
    uint64_t rbytes, rfiles, rsubdirs;
};
/* -ENOTDIR when ino is not a directory, -ENOENT when there is none. */
int mstore_dir_rstat(struct mstore *s, uint64_t ino, struct mstore_rstat *out);

struct mstore_stats {
    uint64_t inodes;     /* live inodes */
    uint64_t next_ino;   /* next inode number the counter gives */
    uint64_t next_chunk; /* next chunk id */
    uint64_t bytes;      /* sum of file sizes */
};
int mstore_stats(struct mstore *s, struct mstore_stats *out);

/* A chunk record. A copy at version w on server s is valid when w == version, or when
 * prev <= w < version, s is one of chain[] and no copy at version is known (the lease that
 * bumped the version wrote nothing anywhere we know of); older copies missed a write. */
struct mstore_chunk {
    uint64_t ino, index, id;
    uint32_t version, prev;
    uint64_t alloc; /* bytes the chunk servers store for it (last commit) */
    uint8_t nchain;
    uint64_t chain[CAIRN_MAX_CHAIN]; /* server ids of the last lease's chain */
    uint32_t copies; /* mstore_chunk_scan only: the file's effective copies (0: no file) */
};

/* The chunk at (ino, index): -ENOENT if none. */
int mstore_chunk_get(struct mstore *s, uint64_t ino, uint64_t index, uint64_t *chunk_id,
                     uint32_t *version);
/* The record at (ino, index), including what the open group commit changed (for the writer's
 * thread only: it reads through the batch's write transaction when one is open). */
int mstore_chunk_rec(struct mstore *s, uint64_t ino, uint64_t index, struct mstore_chunk *out);
/* The record of chunk id: -ENOENT if no file references it. */
int mstore_chunk_by_id(struct mstore *s, uint64_t id, struct mstore_chunk *out);
typedef int (*mstore_chunk_fn)(void *arg, const struct mstore_chunk *c);
/* Up to max chunks with id > after, in id order, in one read transaction; *next is the last id
 * visited, or 0 when the scan reached the end (start again from 0). fn returns nonzero to
 * stop early. */
int mstore_chunk_scan(struct mstore *s, uint64_t after, uint32_t max, mstore_chunk_fn fn, void *arg,
                      uint64_t *next);
/* Chunks of ino with index in [first, first+count), in order. */
int mstore_chunk_list(struct mstore *s, uint64_t ino, uint64_t first, uint32_t count,
                      mstore_chunk_fn fn, void *arg);
/* The version a chunk id is at, -ENOENT if no file references it (chunk servers are told to
 * delete such chunks). */
int mstore_chunk_version(struct mstore *s, uint64_t chunk_id, uint32_t *version);

typedef int (*mstore_session_fn)(void *arg, uint64_t session, int64_t last_seen_s);
/* Sessions recorded (for expiry after a restart). */
int mstore_session_list(struct mstore *s, mstore_session_fn fn, void *arg);

/* Keep the used part of the store resident in memory (mlock), from *pinned bytes (already
 * pinned) up to the current end of the data; *pinned is updated. Call again as the store
 * grows. Metadata then stays in RAM even when the page cache is dropped, as a metadata server
 * that keeps everything in memory would. 0 or -errno (EPERM/ENOMEM: not allowed or too big). */
int mstore_pin(struct mstore *s, uint64_t *pinned);

/* What copies = 0 on an inode means (the meta configuration's default_copies, 1..8). The
 * stored value is inherited as is, so every replica applies records the same way. */
void mstore_set_default_copies(uint32_t copies);
uint32_t mstore_default_copies(void);

/* --- writes ------------------------------------------------------------------------- */
/* Apply one prepared record in one write transaction, committed (durable) on return. res
 * receives the outcome (attr, chunk info, chunks freed). A failed operation changes nothing. */
int mstore_apply(struct mstore *s, const struct mop *op, struct mop_result *res);

/* --- replication (Raft) ------------------------------------------------------------ */
/* Whether the store holds a file system (formatted at open or by a MOP_FORMAT record). */
int mstore_formatted(const struct mstore *s);
/* The last Raft log index whose records the store holds (0: none). Recorded in the same
 * transaction as the records (mstore_batch_commit_at), so a restarted replica resumes exactly
 * after it. Reads through the open batch when there is one. */
uint64_t mstore_applied(struct mstore *s);
/* Whether chunk server id is being drained (MOP_CS_DRAIN; committed state). */
int mstore_cs_draining(struct mstore *s, uint64_t id);
/* The highest Raft member id ever given out (MOP_MEMBER_ID), 0 if none. */
uint64_t mstore_member_id_max(struct mstore *s);
/* Commit the open batch (as mstore_batch_commit) recording index as applied. */
int mstore_batch_commit_at(struct mstore *s, uint64_t index);
/* Throw the open batch away: nothing of it stays, no freed chunk is reported. */
void mstore_batch_abort(struct mstore *s);
/* Write what no_sync commits left in the page cache to the disk. */
int mstore_sync(struct mstore *s);
/* Write a consistent, compacted copy of the store (its data file) to fd, in a read
 * transaction of the calling thread: writers go on meanwhile. Any thread. */
int mstore_copy_fd(struct mstore *s, int fd);

/* Group commit. Between begin and commit, mstore_apply applies each record in its own nested
 * transaction of one parent transaction (a failed record still changes nothing) and returns
 * before anything is durable; mstore_batch_commit makes the whole batch durable with one
 * commit and only then reports the chunks the batch freed. A caller must not acknowledge a
 * record of the batch before mstore_batch_commit returned 0. Reads (their own read
 * transactions) see the batch only once it is committed. */
int mstore_batch_begin(struct mstore *s);
int mstore_batch_active(const struct mstore *s);
/* Records applied in the open batch. */
uint32_t mstore_batch_size(const struct mstore *s);
int mstore_batch_commit(struct mstore *s);

#endif
