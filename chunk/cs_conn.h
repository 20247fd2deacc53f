/* cs_conn.h - one client connection of the chunk server, shared by its connection thread
 * (cs_server.c), which reads every frame and handles every request but CHK_READ itself, in
 * order, and the read workers (cs_reads.c), which serve its CHK_READs, several at once, and
 * answer them in the order they finish (clients match replies by request id).
 *
 * Ordering: before a request that is not a read, the connection thread waits until no read of
 * the connection is in flight, then handles it before reading the next frame; so a read sees
 * every change sent before it on the connection, and a change never overtakes a read sent
 * before it. At most conn_reads reads of one connection are in flight (the connection thread
 * stops reading frames meanwhile). Replies go out whole, one at a time (wlock). The connection
 * is freed only when no read of it is in flight. A read arriving when the connection has none in
 * flight and no further frame waiting is served by the connection thread itself (no hand-over
 * to a worker: two thread wake-ups less for the common lone read). */
#ifndef CAIRN_CS_CONN_H
#define CAIRN_CS_CONN_H
#include <pthread.h>
#include <stdint.h>

#include "codec.h"
#include "cs.h"
#include "wire.h"

#define CS_DIRTY_MAX 64

struct cs_conn {
    struct cs_state *s;
    int fd;
    pthread_mutex_t wlock; /* one reply at a time on fd */
    pthread_mutex_t lock;  /* reads */
    pthread_cond_t done;   /* a read finished */
    int reads;             /* CHK_READs handed to the workers and not answered yet */
    int dead;              /* atomic: closing; queued reads are dropped, nothing is sent */
    /* chunks written (connection thread only): fsynced at a clean close */
    struct {
        uint64_t id;
        uint32_t ver;
    } dirty[CS_DIRTY_MAX];
    int ndirty;
    int dirty_overflow;
    struct cs_rworker *inline_rd; /* the connection thread's own read buffer (cs_reads.c),
                                   * made at its first read served inline; NULL until then */
};

/* Send the reply to request req (received at t_recv, cstore_now_us) and count it
 * (cs_stats_request): status rc, and when rc is 0 the payload out (its error, if any, becomes
 * the status) followed by dlen bytes of data. 0, or the send's error (-EPIPE on a dead
 * connection): the connection is then dead and its socket shut down, so its thread stops. */
int cs_conn_reply(struct cs_conn *c, const struct wire_hdr *req, int rc, const struct wbuf *out,
                  const void *data, uint32_t dlen, uint64_t t_recv);
/* Mark the connection dead and shut its socket down (in-flight sends fail at once). */
void cs_conn_kill(struct cs_conn *c);
int cs_conn_dead(struct cs_conn *c);
/* Wait until at most n reads of c are in flight. */
void cs_conn_wait_reads(struct cs_conn *c, int n);

/* The read workers (cs_reads.c). cs_reads_start starts cfg.read_threads of them (0 or a
 * negative errno). cs_reads_submit decodes the CHK_READ in r (header h, received at t_recv,
 * cstore_now_us time) and queues it, after waiting for a free slot of the connection's bound:
 * 0 when queued or answered at once (a refused request), -EBADMSG for a malformed one (the
 * caller closes the connection), or a send error. */
int cs_reads_start(struct cs_state *s);
int cs_reads_submit(struct cs_conn *c, const struct wire_hdr *h, struct rcur *r, uint64_t t_recv);
/* Free what the connection's inline reads used (at its close). */
void cs_reads_conn_free(struct cs_conn *c);
#endif
