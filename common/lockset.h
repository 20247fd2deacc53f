/* lockset.h - a set of byte-range and whole-file locks, the one arbiter of lock conflicts.
 *
 * The meta leader keeps every lock of the file system in one lockset (meta/locks.c); each
 * mount keeps the locks it holds in another (client-fuse/locks.c), to release them at close
 * and to reclaim them after a failover. Both apply the same rules, here:
 *
 * - A lock is owned by (session, owner): the mount's session and the kernel's lock owner
 *   (a process's files for fcntl locks, the open file description for OFD and flock locks).
 * - POSIX locks (LS_POSIX) cover [start, end] (inclusive; end LS_EOF = to the end of the file
 *   and beyond). Setting a range replaces what the same owner held in it (splitting its
 *   records); LS_UN removes it. Two locks conflict when their owners differ, their ranges
 *   overlap and one of them is a write lock.
 * - flock locks (LS_FLOCK) cover the whole file and conflict with the flock locks of other
 *   owners in the same way. POSIX and flock locks never conflict with each other (as on
 *   Linux local file systems).
 *
 * Invariant: the records of one (ino, session, owner, kind) never overlap. Not thread safe:
 * the caller serialises. */
#ifndef CAIRN_LOCKSET_H
#define CAIRN_LOCKSET_H

#include <stdint.h>

#define LS_EOF UINT64_MAX

enum ls_kind { LS_POSIX = 0, LS_FLOCK = 1 };
enum ls_type { LS_UN = 0, LS_RD = 1, LS_WR = 2 };

struct ls_lock {
    uint64_t ino;
    uint64_t session;
    uint64_t owner;
    uint64_t start, end; /* inclusive */
    uint64_t tag;        /* the caller's (a mount: the open file it came through) */
    uint32_t pid;        /* the process that set it (as the kernel gave it) */
    uint8_t kind;        /* LS_POSIX, LS_FLOCK */
    uint8_t type;        /* LS_RD, LS_WR (LS_UN only as a request) */
};

struct lockset;

struct lockset *ls_new(void);
void ls_free(struct lockset *s);

/* The first lock of another owner that conflicts with want (its type LS_RD or LS_WR; a
 * flock's range is ignored) copied to *out (may be NULL): 1, else 0. */
int ls_conflict(const struct lockset *s, const struct ls_lock *want, struct ls_lock *out);
/* Set want's range for its owner (no conflict check: call ls_conflict first); LS_UN removes
 * it. flock locks take the whole file. 0 or -ENOMEM (then the set is unchanged). */
int ls_set(struct lockset *s, const struct ls_lock *want);
/* Remove every lock of (session, owner) on ino whose kind is in kinds (bit 1 << LS_*).
 * Returns how many records went. */
int ls_drop_owner(struct lockset *s, uint64_t ino, uint64_t session, uint64_t owner,
                  unsigned kinds);
/* Remove every lock of a session; returns how many. */
int ls_drop_session(struct lockset *s, uint64_t session);
/* Remove everything. */
void ls_clear(struct lockset *s);
/* Call fn for every lock (of ino only, when ino != 0); fn must not change the set. A nonzero
 * return of fn stops the walk and is returned. */
typedef int (*ls_fn)(void *arg, const struct ls_lock *l);
int ls_each(const struct lockset *s, uint64_t ino, ls_fn fn, void *arg);
/* Set the tag of every lock of (ino, session, owner). */
void ls_retag(struct lockset *s, uint64_t ino, uint64_t session, uint64_t owner, uint64_t tag);
uint64_t ls_count(const struct lockset *s);

#endif
