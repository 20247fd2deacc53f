/* rpc.h - a thread-safe, pipelined request/reply client connection with reconnect and backoff.
 *
 * Any number of threads may submit requests on one connection; each gets a request id and the
 * reply is matched by that id by whichever waiting thread is reading the socket at the time
 * (rpc.c), so requests are pipelined and replies may come back in any order. Replies are read
 * only while somebody waits: every submitted call must be waited for (rpc_wait). A lost connection
 * fails every request in flight with -ECONNRESET; the next submit reconnects, waiting out an
 * exponential backoff (min..max) between failed attempts. Requests that could not be sent at all
 * are retried until the call's deadline, so a restarting server costs a delay, not an error. Used
 * by the FUSE client (to meta and chunk servers), by chunk servers (to meta and down the replica
 * chain), and by tools and tests. */
#ifndef CAIRN_RPC_H
#define CAIRN_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct rpc_opts {
    int connect_timeout_ms; /* per connect attempt; default 2000 */
    int call_timeout_ms;    /* default deadline of rpc_call; default 30000 */
    int backoff_min_ms;     /* default 50 */
    int backoff_max_ms;     /* default 2000 */
    uint32_t max_payload;   /* largest reply accepted; default WIRE_MAX_PAYLOAD */
    /* A submit gives up after this many failed connection attempts (refused, unreachable)
     * instead of retrying until its deadline; 0 = until the deadline. Callers with other
     * replicas to try set it low, so a dead server costs a moment, not a timeout. */
    int connect_attempts;
};

struct rpc_reply {
    int status;          /* 0 or negative errno from the server */
    struct wbuf payload; /* owned by the caller after rpc_wait; rpc_reply_free frees it */
};

struct rpc_conn;
struct rpc_call;

/* Create a connection object for "host:port" (nothing is connected yet). NULL on ENOMEM.
 * opts may be NULL for defaults. */
struct rpc_conn *rpc_conn_new(const char *hostport, const struct rpc_opts *opts);
/* Close the connection, fail what is in flight, free it. */
void rpc_conn_free(struct rpc_conn *c);
const char *rpc_conn_addr(const struct rpc_conn *c);
/* Drop the current TCP connection (the next submit reconnects). */
void rpc_conn_reset(struct rpc_conn *c);

/* Send a request whose payload is p1 followed by p2 (either may be empty). On success *out is
 * a pending call that must be passed to rpc_wait exactly once. Returns 0 or a negative errno
 * (-ECONNREFUSED, -ETIMEDOUT... when the server could not be reached before deadline_ms, an
 * absolute net_now_ms() time; 0 means the connection's default timeout). */
int rpc_submit(struct rpc_conn *c, uint16_t type, const void *p1, size_t n1, const void *p2,
               size_t n2, uint64_t deadline_ms, struct rpc_call **out);
/* Wait for the reply until deadline_ms (absolute; 0 = the default timeout from submit time).
 * Returns 0 with *reply filled (reply->status may be negative), or a transport error
 * (-ECONNRESET, -ETIMEDOUT); the call is freed either way. */
int rpc_wait(struct rpc_call *call, uint64_t deadline_ms, struct rpc_reply *reply);
/* submit + wait. Returns the transport error or, failing that, reply->status. On 0 the
 * caller owns reply->payload; on error the payload is empty (already freed). */
int rpc_call(struct rpc_conn *c, uint16_t type, const void *p1, size_t n1, const void *p2,
             size_t n2, struct rpc_reply *reply);
void rpc_reply_free(struct rpc_reply *r);

#endif
