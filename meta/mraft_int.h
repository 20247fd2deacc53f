/* mraft_int.h - private to meta/mraft*.c: the replica's Raft state. */
#ifndef CAIRN_MRAFT_INT_H
#define CAIRN_MRAFT_INT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "meta.h"
#include "mraft.h"
#include "wire.h"

#define MRAFT_MAX_PEERS 16
#define MRAFT_ADD_TIMEOUT_MS 60000

/* A membership change asked for by `cairn meta add/remove`, answered when it is done. */
struct mraft_change {
    struct raft_change req;
    struct mraft *r;
    struct evsrv_conn *conn; /* NULL once the connection closed */
    struct wire_hdr h;
    raft_id id;
    int adding; /* 1: add (then assign voter), 0: remove */
    uint64_t deadline_ms;
};

struct mraft {
    struct meta *m;
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    struct raft *rp; /* the raft the state machine serves: &raft (or a test fixture's) */
    int inited;      /* raft_init done (a joining replica waits for its id first) */
    int started;     /* raft_start done */
    raft_id id;
    char dir[CONF_STR_MAX + 8]; /* data_dir/raft */
    char raft_addr[CAIRN_ADDR_MAX + 1];
    char self[CAIRN_ADDR_MAX + 1]; /* our client address */
    /* libuv driven from libevent */
    struct event *uv_ev, *uv_timer, *kick_ev, *join_ev, *resume_ev;
    int in_pump;
    /* leadership as last seen */
    int leading;         /* raft_state() == RAFT_LEADER at the last look */
    raft_term lead_term; /* the term we lead in */
    int ready;           /* the barrier of lead_term was applied */
    int barrier_out;
    struct raft_barrier barrier;
    char leader_client[CAIRN_ADDR_MAX + 1];
    uint64_t no_leader_since_ms; /* when the leader became unknown (0: one is known) */
    struct event *park_timer;    /* hands parked requests over again while no leader is known */
    struct raft_barrier read_barrier; /* proves leadership for reads (mraft_read_proof) */
    int read_barrier_out;
    uint64_t read_barrier_ms;
    struct mraft_change *change; /* at most one membership change at a time */
    struct raft_apply *format_req;
    /* how a snapshot's data is fetched (snap_fetch; a test's own in the unit tests) */
    int (*fetch)(struct mraft *r, uint64_t need, const char *dest);
    struct leader_watch *lw; /* leader_watch.c */
};

/* mraft.c */
/* Split a comma-separated list into at most max addresses; -EINVAL on a bad one. */
int mraft_split_list(const char *list, char out[][CAIRN_ADDR_MAX + 1], int max);
/* Run libuv's ready work soon (from libevent; never inside a libuv callback directly). */
void mraft_kick(struct mraft *r);
/* mraft_fsm.c: fill r->fsm with the state machine callbacks, serving raft rp */
void mraft_fsm_init(struct mraft *r, struct raft *rp);
/* leader_watch.c: a follower watches the leader's client port (leader: its client address,
 * "" when none is known or we lead) and hastens an election when the port refuses */
void mraft_watch_leader(struct mraft *r, const char *leader);
void mraft_watch_stop(struct mraft *r);
/* The leader is known to be gone: let this follower's election start soon (by rank). */
void mraft_hasten_election(struct mraft *r);
/* mraft_admin.c */
void mraft_change_tick(struct mraft *r);

#endif
