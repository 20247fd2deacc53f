/* cs_metaconn.h - the chunk server's way to the metadata service's leader.
 *
 * cairn-meta runs as a Raft group of up to CS_META_MAX replicas. Only the leader serves chunk
 * servers; every other replica answers any request with -CAIRN_ENOTLEADER and { str
 * leader_addr } (proto.h), "" while an election runs. A struct cs_metaconn owns the list of
 * known replica addresses (the configured ones first, then leader addresses learnt from such
 * answers, which may be outside the list) and one rpc_conn per address, and sends every
 * request to the replica it takes for the leader (the "current" address):
 *   - -CAIRN_ENOTLEADER naming an address: that address becomes current (added when new) and
 *     is asked at once (further redirections within one call wait CS_META_HOP_MS each);
 *   - -CAIRN_ENOTLEADER with "" (or a malformed or self-naming answer): wait
 *     CS_META_ELECTION_MS, then ask the next known address;
 *   - a transport error (refused, reset, unreachable, or no answer within
 *     CS_META_ATTEMPT_MS: a hung replica): the next known address, after a pause that
 *     doubles from CS_META_RETRY_MIN_MS up to CS_META_RETRY_MAX_MS while failures follow one
 *     another (an answer of any replica starts it again from the minimum). A replica that
 *     refused is connected to again at most every CS_META_RECONNECT_MS; a connection attempt
 *     waits at most 1 s.
 * Any other answer (success or another error status) comes from the leader. The leader is the
 * address that gave the last such answer; when an answer comes from a different address than
 * the one before, the leader epoch goes up by one and "meta leader is now ADDR" is logged
 * (LOG_INFO). The first answer ever is epoch 1. The membership thread registers again and
 * reports every chunk whenever the epoch is not the one it registered under, because a new
 * leader's registry of chunk servers (soft state) starts empty.
 *
 * Thread safety: every function may be called from any thread at any time between
 * cs_metaconn_new and cs_metaconn_free. Each address is an endpoint (address + rpc_conn) with
 * a reference count under the object's mutex: a request holds its endpoint from submit to the
 * end of its wait, so an endpoint that is replaced (a learnt address evicted when the table is
 * full) is freed only when the last request on it is over, never under another thread. */
#ifndef CAIRN_CS_METACONN_H
#define CAIRN_CS_METACONN_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rpc.h"

#define CS_META_MAX 7           /* addresses in the `meta` option */
#define CS_META_ADDRS 16        /* addresses known at once (configured + learnt) */
#define CS_META_HOP_MS 50       /* pause before a second redirection within one call */
#define CS_META_ELECTION_MS 100 /* pause after "no leader known" */
#define CS_META_RETRY_MIN_MS 50
#define CS_META_RETRY_MAX_MS 1000
#define CS_META_RECONNECT_MS 200 /* most time between two connection attempts to one replica */
#define CS_META_ATTEMPT_MS 2000  /* longest wait for one replica's answer within a call */

struct cs_metaconn;
struct cs_metaconn_ep;

/* Parse the `meta` option: "host:port[,host:port...]", 1 to CS_META_MAX addresses, spaces
 * around the commas allowed, each a valid host:port (net_parse_addr) of at most CAIRN_ADDR_MAX
 * bytes, none listed twice. Returns the number of addresses (copied into out[0..n)) or
 * -EINVAL / -E2BIG / -ENAMETOOLONG with a message for the administrator in err. */
int cs_metaconn_parse(const char *list, char (*out)[CAIRN_ADDR_MAX + 1], char *err, size_t errlen);

/* Create the object for a `meta` list (cs_metaconn_parse; err as there). Nothing connects
 * yet; the first address is current. 0 with *out owned by the caller, or a negative errno
 * (-ENOMEM, or the parse error). */
int cs_metaconn_new(const char *list, struct cs_metaconn **out, char *err, size_t errlen);
/* Free the object and close every connection. Only once no thread uses it any more. */
void cs_metaconn_free(struct cs_metaconn *m);

/* One request to the leader, redirected and retried as described above until an answer from
 * the leader or timeout_ms is spent. Returns 0 with *rep filled (rep->status is the leader's
 * status, never -CAIRN_ENOTLEADER; the caller frees rep->payload with rpc_reply_free) or, when
 * no leader answered in time, a negative errno with nothing to free: the last transport error,
 * or -ETIMEDOUT when only replicas that do not lead answered (cs_metaconn_unreached is true
 * for both), or -ENOMEM / -EMSGSIZE. The request must be safe to send more than once. */
int cs_metaconn_call(struct cs_metaconn *m, uint16_t type, const void *p1, size_t n1,
                     const void *p2, size_t n2, int timeout_ms, struct rpc_reply *rep);

/* Pipelined requests: each is sent once, to the current address, without redirection; an
 * outcome that is not the leader's answer only moves the object on for the next request (as
 * cs_metaconn_call would). The caller retries later what failed. */
struct cs_metaconn_req {
    struct cs_metaconn_ep *ep;
    struct rpc_call *call;
};
/* 0 with *req pending (pass it to cs_metaconn_wait exactly once), or a negative errno (a
 * transport error when the current address cannot be reached before deadline_ms). */
int cs_metaconn_submit(struct cs_metaconn *m, uint16_t type, const void *p1, size_t n1,
                       const void *p2, size_t n2, uint64_t deadline_ms,
                       struct cs_metaconn_req *req);
/* 0 with *rep filled as cs_metaconn_call, -CAIRN_ENOTLEADER (the replica does not lead;
 * nothing to free) or a transport error. Consumes req. */
int cs_metaconn_wait(struct cs_metaconn *m, struct cs_metaconn_req *req, uint64_t deadline_ms,
                     struct rpc_reply *rep);

/* True for a failure that means "the leader was not reached, the request may be sent again
 * later": transport errors, -ETIMEDOUT and -CAIRN_ENOTLEADER. */
int cs_metaconn_unreached(int rc);

/* The leader epoch: 0 before any answer from a leader, then one more every time the leader's
 * address changes. */
uint64_t cs_metaconn_epoch(struct cs_metaconn *m);
/* Copy the leader's address ("" before any answer) into buf (size len >= 1). */
void cs_metaconn_leader(struct cs_metaconn *m, char *buf, size_t len);

#endif
