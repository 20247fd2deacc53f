/* mstore_fsck.h - the metadata store's reads for `cairn fsck` (meta/mstore_fsck.c): walking
 * the inodes and the directory entries in slices, counting the entries that point at a few
 * inodes in one consistent read, a path of an inode, and the sizes of the tables (progress).
 * The repairs are records (MOP_FSCK_FIX, applied by mstore_apply).
 *
 * Each function runs in one read transaction of its own and returns 0 or a negative errno. */
#ifndef CAIRN_MSTORE_FSCK_H
#define CAIRN_MSTORE_FSCK_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct mstore;

/* MOP_FSCK_FIX flags: what the record repairs. */
#define MOP_FSCK_DANGLING                                                                          \
    1u                    /* remove entry (parent, name) if it still points at ino and ino         \
                           * does not exist */
#define MOP_FSCK_NLINK 2u /* set the link count of ino to size (1..MST_LINK_MAX) */

/* Entries in each table (inodes, directory entries, chunks). */
int mstore_fsck_counts(struct mstore *s, uint64_t *inodes, uint64_t *entries, uint64_t *chunks);

struct mstore_fsck_inode {
    uint64_t ino;
    uint32_t mode, nlink;
    int open; /* some session has it open */
};
typedef int (*mstore_fsck_inode_fn)(void *arg, const struct mstore_fsck_inode *i);
/* Up to max inodes with a number > after, in order; *next is the last one visited, or 0 when
 * the walk reached the end. fn returns nonzero to stop (that inode counts as visited). */
int mstore_fsck_inodes(struct mstore *s, uint64_t after, uint32_t max, mstore_fsck_inode_fn fn,
                       void *arg, uint64_t *next);

struct mstore_fsck_entry {
    uint64_t parent, child;
    uint32_t mode;    /* the type the entry records */
    const char *name; /* valid during the call */
    int child_exists;
    int child_is_dir; /* the inode's own type */
};
typedef int (*mstore_fsck_entry_fn)(void *arg, const struct mstore_fsck_entry *e);
/* Up to max directory entries after (parent, name) in key order ((0, "") = from the start);
 * (*next_parent, next_name) is the last one visited; *eof set when the walk reached the end.
 * next_name must hold CAIRN_NAME_MAX + 1 bytes. */
int mstore_fsck_entries(struct mstore *s, uint64_t parent, const char *name, uint32_t max,
                        mstore_fsck_entry_fn fn, void *arg, uint64_t *next_parent, char *next_name,
                        int *eof);

struct mstore_fsck_links {
    uint64_t ino; /* in: the inode to count */
    int exists;
    uint32_t mode, nlink;
    int open;
    uint32_t entries; /* entries pointing at it */
    uint32_t subdirs; /* entries in it whose inode is a directory */
    uint64_t parent;  /* the first entry pointing at it (entries > 0) */
    char name[CAIRN_NAME_MAX + 1];
};
/* Fill v[0..n) in one read transaction: one pass over every directory entry. */
int mstore_fsck_links(struct mstore *s, struct mstore_fsck_links *v, uint32_t n);

/* "/a/b" of directory dir, with "/leaf" appended when leaf is not NULL, into buf: walks up
 * the directories' parents, finding each one's name in its parent. A directory whose name
 * cannot be found shows as "?<ino>". -ENAMETOOLONG when it does not fit. */
int mstore_fsck_path(struct mstore *s, uint64_t dir, const char *leaf, char *buf, size_t len);

/* One path of ino without a pass over the namespace: a directory's through its parents, any
 * other inode's through its primary link (the directory its parent field names, mstore_rstat.c).
 * -ENOENT when the inode does not exist or has no name. */
int mstore_fsck_ino_path(struct mstore *s, uint64_t ino, char *buf, size_t len);

#endif
