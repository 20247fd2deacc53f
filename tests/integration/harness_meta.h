/* harness_meta.h - requests to cairn-meta over its wire protocol from a test case (the
 * daemon-level tests test_meta_*.c speak for clients and chunk servers themselves).
 *
 * Unlike harness.h and harness_fs.h, these helpers call Check (ck_assert...) and fail the
 * running test on what must not happen (no connection, a transport error, a request that could
 * not be encoded): every integration test links libcheck, but only test cases may call them. */
#ifndef CAIRN_HARNESS_META_H
#define CAIRN_HARNESS_META_H

#include <stdint.h>

#include "codec.h"
#include "proto.h"
#include "rpc.h"

/* A connection to addr ("127.0.0.1:PORT": 2 s to connect, 10 s per call); the caller frees it
 * with rpc_conn_free. Fails the test if it cannot be made. */
struct rpc_conn *hm_connect(const char *addr);
/* Send b (encoded without error; freed here) as a request of type on m. The reply payload is
 * left in *rep on success (the caller frees it with rpc_reply_free) or dropped when rep is NULL.
 * Returns the reply's status (0 or a negative errno); fails the test on a transport error
 * (-ECONNRESET, -ETIMEDOUT). */
int hm_call(struct rpc_conn *m, uint16_t type, struct wbuf *b, struct rpc_reply *rep);

/* hm_call for a request whose reply is exactly one attr (proto_get_attr), decoded into *a (may be
 * NULL); fails the test if the reply is anything else. Returns the status. */
int hm_call_attr(struct rpc_conn *m, uint16_t type, struct wbuf *b, struct cairn_attr *a);
/* The same for a reply that is exactly one chunk_info (proto_get_chunk_info), into *ci. */
int hm_call_chunk_info(struct rpc_conn *m, uint16_t type, struct wbuf *b, struct chunk_info *ci);

#endif
