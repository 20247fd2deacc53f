/* cmd_meta.h - `cairn meta status|add|remove`: the decoded MSG_META_STATUS reply, the view of
 * the Raft group assembled from what each replica asked said, and its printers. Decoding and
 * printing are apart from the network so that tests can feed hand-made replies.
 *
 * The view: every address of the list is asked (MSG_META_STATUS, which every replica answers
 * about itself), and the leader too when a replica names one that is not in the list. The
 * member table (roles, match indexes, lag) comes from the leader's answer only: no other
 * replica knows match_index. Without a leader the view is the replicas' own answers.
 *
 * Ownership: a struct mt_status owns its members array (mt_free); a struct mt_view owns its
 * replicas array and every answer in it (mt_view_free); view->meta is the caller's. */
#ifndef CAIRN_CMD_META_H
#define CAIRN_CMD_META_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_out.h"
#include "proto.h"

struct mt_member {
    uint64_t id;
    char addr[CAIRN_ADDR_MAX + 1]; /* its client address */
    uint8_t role;                  /* META_ROLE_* */
    uint8_t reachable;             /* heard from by the leader within the election timeout */
    uint64_t match_index;          /* last log index it is known to hold (the leader's view) */
};

/* One MSG_META_STATUS reply: what a replica says about itself and the group. */
struct mt_status {
    uint64_t self_id;   /* 0: not a member (yet) */
    uint8_t self_state; /* META_ST_* */
    uint64_t leader_id; /* 0: none known */
    char leader_addr[CAIRN_ADDR_MAX + 1];
    uint64_t term, commit_index, applied_index, last_index;
    uint32_t nmembers;
    struct mt_member *members;
};

/* Decode a META_STATUS reply payload into s (zeroed first). 0, -EBADMSG or -ENOMEM; on error
 * s holds nothing to free. */
int mt_decode(struct mt_status *s, const void *p, size_t len);
void mt_free(struct mt_status *s);

/* What one replica said, or why it said nothing. */
struct mt_replica {
    char addr[CAIRN_ADDR_MAX + 1];
    int rc;        /* 0: st holds its answer; else a negative errno */
    int down;      /* rc is a transport error: nothing answered */
    char why[200]; /* rc != 0: the reason in words */
    struct mt_status st;
};

struct mt_view {
    const char *meta; /* the address list asked */
    uint32_t n, cap;
    struct mt_replica *replicas;
    int leader; /* index in replicas of the leader's answer, or -1 */
};

/* An empty view of cap replicas for the list meta. 0 or -ENOMEM. */
int mt_view_init(struct mt_view *v, const char *meta, uint32_t cap);
void mt_view_free(struct mt_view *v);
/* The replica slot for addr (its existing one, else the next free one, zeroed, with its address
 * set), or NULL when the view is full. */
struct mt_replica *mt_view_slot(struct mt_view *v, const char *addr);
/* Set v->leader: the answer of a replica in state leader with the highest term. Returns it. */
int mt_view_find_leader(struct mt_view *v);
/* A leader address some replica named (the one of the highest term) that no replica of the
 * view has, or NULL. */
const char *mt_view_named_leader(const struct mt_view *v);
/* A member's lag in log entries in the leader's view: last_index - match_index (0 for the
 * leader itself, and never negative). */
uint64_t mt_lag(const struct mt_status *leader, const struct mt_member *mb);
/* A replica's state as printed: the META_ST_* name, "down" (nothing answered) or "error" (it
 * answered with an error). */
const char *mt_replica_state(const struct mt_replica *r);

struct cli_meta;
/* A view of every replica of m's list (and of the leader one of them names): each is asked
 * MSG_META_STATUS. 0 or -ENOMEM; free with mt_view_free. */
int mt_view_gather(struct cli_meta *m, struct mt_view *v);
/* Human output: the leader line and member table (or that there is no leader), then one line
 * per replica asked. */
void mt_print(FILE *out, const struct mt_view *v);
/* The view as one JSON object (keys in cairn(1)). */
void mt_json(struct json *j, const struct mt_view *v);

#endif
