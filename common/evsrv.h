/* evsrv.h - a libevent frame server: accepts TCP connections, cuts frames out of the input,
 * hands each request to one handler, and sends replies.
 *
 * A frame that fails header validation (bad magic, version, checksum, oversized) closes that
 * connection only; the server keeps serving the others. The handler runs on the event loop
 * thread and replies with evsrv_reply before returning. */
#ifndef CAIRN_EVSRV_H
#define CAIRN_EVSRV_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct event_base;
struct evsrv;
struct evsrv_conn;

/* Called for each complete request frame; payload is valid only during the call. The handler
 * replies (evsrv_reply) before it returns. It returns 0, or a negative errno to have the
 * connection closed (a malformed payload), or EVSRV_DEFER: the frame is left unread and the
 * connection parked (nothing after it is read either, so its order is kept) until
 * evsrv_resume, which hands the same frame to the handler again. */
#define EVSRV_DEFER 1
typedef int (*evsrv_handler)(struct evsrv_conn *conn, const struct wire_hdr *h,
                             const uint8_t *payload, void *arg);

/* Listen on "host:port" (port 0 picks one). Returns NULL and sets *err on failure. */
struct evsrv *evsrv_new(struct event_base *base, const char *hostport, uint32_t max_payload,
                        evsrv_handler handler, void *arg, int *err);
uint16_t evsrv_port(const struct evsrv *s);
void evsrv_free(struct evsrv *s);

/* Reply to request h with status and payload (may be NULL/0; an error reply normally has
 * none, but may carry one, as CAIRN_ENOTLEADER does). */
void evsrv_reply(struct evsrv_conn *conn, const struct wire_hdr *req, int status,
                 const void *payload, size_t len);
/* Have fn(arg, request type, status) called for every reply evsrv_reply makes (the daemon's
 * metrics count replies and errors by kind there); fn runs on the loop's thread and must not
 * reply itself. NULL turns it off. */
typedef void (*evsrv_reply_fn)(void *arg, uint16_t type, int status);
void evsrv_on_reply(struct evsrv *s, evsrv_reply_fn fn, void *arg);
/* Hold replies: while on, evsrv_reply keeps each reply in its connection's held buffer instead
 * of sending it; evsrv_release sends everything held (in order) and turns holding off. Used
 * for group commit: no reply leaves before the batch it depends on is durable. */
void evsrv_hold(struct evsrv *s);
/* While on, replies are sent at once even when holding: for answers that do not depend on
 * what the held batch changes (reads of committed state). */
void evsrv_bypass(struct evsrv *s, int on);
void evsrv_release(struct evsrv *s);
/* Close every connection holding replies and turn holding off: what they held promised
 * something that did not happen (a replicated commit lost with leadership); their clients
 * see a lost connection and retry. */
void evsrv_drop_held(struct evsrv *s);
/* Hand the parked connections' first frames to the handler again. */
void evsrv_resume(struct evsrv *s);

/* Per-connection user data (e.g. the chunk server id registered on it). */
void evsrv_conn_set_data(struct evsrv_conn *conn, void *data, void (*free_fn)(void *));
void *evsrv_conn_data(struct evsrv_conn *conn);
/* Peer address as "ip:port". */
const char *evsrv_conn_peer(const struct evsrv_conn *conn);

#endif
