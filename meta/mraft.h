/* mraft.h - the Raft group of cairn-meta replicas (libraft with its libuv disk and network
 * backend), run on the daemon's libevent thread: the libuv loop is driven from libevent
 * (mraft_loop.c), so the state machine, the request handlers and the registry share one
 * thread and need no locks.
 *
 * The log carries batches of operation records (mop_encode); the state machine is
 * mstore_apply() (mraft_fsm.c). The leader applies a batch to an open LMDB transaction as the
 * requests come (group commit, replies held), appends its records as one log entry, and
 * commits the transaction with the entry's index when the group has committed the entry;
 * losing leadership first aborts it. Followers apply entries from the log. Snapshots are
 * references to the store; its data travels outside libraft (snap_xfer.h).
 *
 * Addresses: a replica's client address is `listen` (HOST:PORT); its Raft address is
 * HOST:PORT+1. Members' ids are 1, 2, 3... in the order of `peers`; `cairn meta add` gives
 * the next free one. */
#ifndef CAIRN_MRAFT_H
#define CAIRN_MRAFT_H

#include <stdint.h>

#include "codec.h"

struct meta;
struct evsrv_conn;
struct wire_hdr;

/* Start this replica: open (or bootstrap, or wait to be added to) the group. 0 or -errno
 * (a damaged log or store: a message says what to do). */
int mraft_start(struct meta *m);
/* Stop Raft and the libuv loop (the daemon is exiting). */
void mraft_stop(struct meta *m);
/* Leader and every entry of earlier terms applied. */
int mraft_ready(const struct meta *m);
/* Whether a request that needs the leader should wait (be parked) rather than be told that
 * no leader is known: this replica leads but has not applied its barrier yet, or the leader
 * has been unknown for less than about an election (one is probably being elected). */
int mraft_should_wait(struct meta *m);
/* Hand the parked requests to the handler again: at once (from the event loop), or in
 * 100 ms. */
void mraft_resume_soon(struct meta *m);
void mraft_park_retry(struct meta *m);
/* The leader's client address ("" when none is known). */
const char *mraft_leader_addr(struct meta *m);
/* What the metrics show of this replica's Raft state (read on the daemon's thread). */
#define MRAFT_INFO_MEMBERS 16
struct mraft_info {
    int started;     /* raft_start done (0: everything below is 0) */
    uint8_t state;   /* META_ST_* (proto.h) */
    uint64_t id;     /* this replica's member id */
    uint64_t leader; /* the leader's member id, 0 when none is known */
    uint64_t term, commit, applied, last_index;
    int nmembers; /* members of the configuration listed below (at most MRAFT_INFO_MEMBERS) */
    struct mraft_member_info {
        uint64_t id;
        uint64_t match; /* leader only: highest entry known replicated on it */
        int reachable;  /* leader only: heard from it recently (the leader itself: 1) */
    } member[MRAFT_INFO_MEMBERS];
};
/* Fill *out (zeroed first). Members' match and reachable are only known on the leader. */
void mraft_info(struct meta *m, struct mraft_info *out);
/* Append the open batch's records (m->batch_log) as one log entry; sets m->spec_index.
 * -errno when it cannot (no longer leader). */
int mraft_submit(struct meta *m);
/* Whether a read may be answered now: some entry this leader submitted less than half an
 * election timeout ago has been committed by a majority (no other leader can exist before
 * the followers' election timeout runs out from then). Otherwise starts a barrier, whose
 * commit gives that proof and resumes the parked requests, and returns 0. */
int mraft_read_proof(struct meta *m);
/* The highest member id in the current configuration. */
uint64_t mraft_max_member_id(struct meta *m);
/* MSG_META_STATUS reply payload. */
void mraft_status(struct meta *m, struct wbuf *out);
/* MSG_META_ADD / MSG_META_REMOVE (leader only; the reply is sent when the change is done)
 * and MSG_META_WHOAMI. Return 0 or -EBADMSG. */
int mraft_handle_admin(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                       struct rcur *r);
/* Client address <-> Raft address (port + 1). 0 or -EINVAL. */
int mraft_addr_to_raft(const char *client, char *out, size_t len);
int mraft_addr_to_client(const char *raft, char *out, size_t len);

#endif
