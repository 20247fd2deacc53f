/* mop.h - metadata operation records: the unit of change of the metadata store.
 *
 * The leader turns a request into a record with mop_prepare(), which fixes every
 * non-deterministic value (now, new inode number and generation, new chunk id) from the
 * store's counters; mstore_apply() then applies it. Records encode to bytes (mop_encode /
 * mop_decode) so that Raft can replicate them unchanged. */
#ifndef CAIRN_MOP_H
#define CAIRN_MOP_H

#include <stdint.h>

#include "codec.h"
#include "proto.h"

struct mstore;

enum mop_type {
    MOP_MKNOD = 1,     /* parent, name, mode (any type but dir/symlink), rdev, uid, gid,
                        * valid (MOP_UMASK_SET) */
    MOP_MKDIR,         /* parent, name, mode, uid, gid, valid (MOP_UMASK_SET) */
    MOP_SYMLINK,       /* parent, name, target, uid, gid */
    MOP_CREATE,        /* MKNOD of a regular file + OPEN for session; flags & O_EXCL; valid */
    MOP_LINK,          /* ino, parent, name */
    MOP_UNLINK,        /* parent, name */
    MOP_RMDIR,         /* parent, name */
    MOP_RENAME,        /* parent, name, parent2, name2, flags (PROTO_RENAME_*) */
    MOP_SETATTR,       /* ino, valid, mode, uid, gid, size, atime, mtime */
    MOP_SETXATTR,      /* ino, name, value, flags */
    MOP_REMOVEXATTR,   /* ino, name */
    MOP_OPEN,          /* ino, session, flags (O_TRUNC truncates to 0) */
    MOP_RELEASE,       /* ino, session */
    MOP_CHUNK_LEASE,   /* ino, index: allocate (new_chunk) or bump the version; chain,
                        * flags & MOP_LEASE_CUR_KNOWN (see below) */
    MOP_COMMIT,        /* ino, size, mtime, flags (COMMIT_SET_SIZE) */
    MOP_SESSION_OPEN,  /* session, name */
    MOP_SESSION_TOUCH, /* session (last seen = now) */
    MOP_SESSION_CLOSE, /* session: releases its open files, purges orphans */
    MOP_SET_COPIES,    /* ino, flags = copies (0 = the default again) */
    MOP_FORMAT,        /* the first record of a new group: now_s = format epoch (generation
                        * of every inode), size = chunk size, index = the highest member id
                        * of the group; a no-op on a formatted store */
    MOP_MEMBER_ID,     /* size = a Raft member id given out: never given again */
    MOP_CS_DRAIN,      /* index = chunk server id, flags = 1 drain / 0 undrain */
    MOP_FSCK_FIX,      /* cairn fsck --repair: flags = MOP_FSCK_DANGLING (parent, name, ino)
                        * or MOP_FSCK_NLINK (ino, size = link count); mstore_fsck.h */
    MOP_LAST = MOP_FSCK_FIX
};

/* MOP_CHUNK_LEASE of an existing chunk. The record keeps, besides the new version, the oldest
 * version a member of the new chain may validly hold (prev) and the chain's server ids. The
 * leader knows (from chunk-server reports) whether some copy is already at the current
 * version: then prev becomes the current version (members still older missed a write);
 * otherwise the lease before wrote nothing anywhere we know of, and prev stays where it was. */
#define MOP_LEASE_CUR_KNOWN 1u

/* MKNOD, MKDIR, CREATE: valid = MOP_UMASK_SET | the caller's umask (0777 bits) when the
 * client left the umask to the meta service (its kernel does not apply it, for POSIX ACLs):
 * applied unless the parent directory has a default ACL, which decides the mode instead.
 * Without MOP_UMASK_SET (older clients, older records) the mode is taken as given. */
#define MOP_UMASK_SET 0x80000000u

struct mop {
    uint16_t type;
    /* fixed by the leader in mop_prepare */
    int64_t now_s;
    uint32_t now_ns;
    uint64_t new_ino; /* for MKNOD/MKDIR/SYMLINK/CREATE */
    uint64_t new_gen;
    uint64_t new_chunk; /* for CHUNK_LEASE when the chunk does not exist yet */
    /* arguments (which ones matter depends on type) */
    uint64_t ino;
    uint64_t parent;
    uint64_t parent2;
    uint64_t session;
    uint64_t index;
    uint64_t size;
    uint64_t rdev;
    uint32_t mode, uid, gid;
    uint32_t valid; /* SETATTR_*; MKNOD/MKDIR/CREATE: MOP_UMASK_SET | umask */
    uint32_t flags;
    int64_t atime_s, mtime_s;
    uint32_t atime_ns, mtime_ns;
    char name[CAIRN_NAME_MAX + 1];
    char name2[CAIRN_NAME_MAX + 1];
    /* symlink target or xattr value; points into memory the caller keeps alive */
    const uint8_t *data;
    uint32_t data_len;
    /* CHUNK_LEASE: the server ids of the write chain, fixed by the leader */
    uint8_t nchain;
    uint64_t chain[CAIRN_MAX_CHAIN];
    /* exactly-once (MSG_F_SEQ): the client's session and the request's seq (0 = none), and
     * the lowest seq the client still waits for (outcomes below it are forgotten) */
    uint64_t cs_session, cs_seq, cs_acked;
};

typedef void (*mop_freed_fn)(void *arg, uint64_t chunk_id, uint32_t version);

struct mop_result {
    struct cairn_attr attr;  /* the inode created/changed, when there is one */
    struct chunk_info chunk; /* CHUNK_LEASE: id, new version, prev_version (no locations) */
    /* Called by apply, after the commit, for every chunk (id, version) no file references
     * any more, so the caller can tell chunk servers to delete it. May be NULL. */
    mop_freed_fn freed;
    void *freed_arg;
    int duplicate; /* set by apply: a repeated (session, seq); the first outcome is returned */
};

/* Fill the leader's values into op (time now, new inode/gen/chunk id as the type needs; for
 * MOP_SESSION_OPEN with session 0, a new session id). Numbers handed out are never reused,
 * even when the record later fails. -EINVAL for an unknown type. */
int mop_prepare(struct mstore *s, struct mop *op);
void mop_encode(const struct mop *op, struct wbuf *out);
/* Decode; op->data points into the cursor's buffer. Returns 0 or -EBADMSG. */
int mop_decode(struct rcur *c, struct mop *op);

#endif
