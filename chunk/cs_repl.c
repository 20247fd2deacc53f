/* cs_repl.c - replication orders of the meta service: a bounded queue of orders (duplicates
 * of an order queued, running or not yet answered are dropped), a small pool of worker
 * threads (replication_workers) that run each order with cs_replicate, and the delivery of
 * the results to the meta leader (MSG_CS_REPLICATED) by the membership thread, which is
 * woken for an early heartbeat when an order finishes so that the next orders come soon. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs.h"
#include "cs_metaconn.h"
#include "log.h"
#include "net.h"
#include "rpc.h"

#define REPL_QMAX 64
#define REPL_WORKERS_MAX 16
#define REPL_TIMEOUT_MS 10000
#define REPL_CALL_MS 5000

enum { RO_FREE = 0, RO_QUEUED, RO_RUNNING, RO_DONE };

struct repl_order {
    int state;
    uint64_t seq; /* FIFO among queued orders */
    uint64_t id;
    uint32_t ver;
    int nsrc;
    char src[CAIRN_MAX_LOCS][CAIRN_ADDR_MAX + 1];
    int status;
    uint64_t bytes;
};

struct cs_repl {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t seq;
    struct repl_order o[REPL_QMAX];
};

/* The oldest queued order, marked running; NULL if none. Under mu. */
static struct repl_order *take_queued(struct cs_repl *q)
{
    struct repl_order *best = NULL;
    for (int i = 0; i < REPL_QMAX; i++)
        if (q->o[i].state == RO_QUEUED && (!best || q->o[i].seq < best->seq)) best = &q->o[i];
    if (best) best->state = RO_RUNNING;
    return best;
}

static void *repl_main(void *arg)
{
    struct cs_state *s = arg;
    struct cs_repl *q = s->repl;
    while (!s->stop) {
        pthread_mutex_lock(&q->mu);
        struct repl_order *o = take_queued(q);
        if (!o) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
            pthread_mutex_unlock(&q->mu);
            continue;
        }
        /* the order's fields do not change while it runs: read them unlocked */
        pthread_mutex_unlock(&q->mu);
        uint64_t bytes = 0, t0 = net_now_ms();
        int rc = cs_replicate(&s->store, o->id, o->ver, o->nsrc, o->src, REPL_TIMEOUT_MS, &bytes);
        if (rc)
            LOG_WARN("repl", "chunk %016" PRIx64 " v%u: replication failed: %s", o->id, o->ver,
                     strerror(-rc));
        else
            LOG_INFO("repl", "chunk %016" PRIx64 " v%u: copied %" PRIu64 " bytes in %" PRIu64 " ms",
                     o->id, o->ver, bytes, net_now_ms() - t0);
        pthread_mutex_lock(&q->mu);
        o->status = rc;
        o->bytes = bytes;
        o->state = RO_DONE;
        pthread_mutex_unlock(&q->mu);
        cs_kick(s, 1);
    }
    return NULL;
}

int cs_repl_start(struct cs_state *s)
{
    struct cs_repl *q = calloc(1, sizeof(*q));
    if (!q) return -ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    s->repl = q;
    int n = s->cfg.replication_workers;
    if (n < 1) n = 1;
    if (n > REPL_WORKERS_MAX) n = REPL_WORKERS_MAX;
    for (int i = 0; i < n; i++) {
        pthread_t th;
        int rc = pthread_create(&th, NULL, repl_main, s);
        if (rc) return -rc;
        pthread_detach(th); /* may sit in a bounded network wait at shutdown */
    }
    return 0;
}

void cs_repl_order(struct cs_state *s, uint64_t id, uint32_t ver, int nsrc,
                   char (*src)[CAIRN_ADDR_MAX + 1])
{
    struct cs_repl *q = s->repl;
    if (!q) return;
    if (nsrc > CAIRN_MAX_LOCS) nsrc = CAIRN_MAX_LOCS;
    pthread_mutex_lock(&q->mu);
    struct repl_order *fr = NULL;
    int dup = 0;
    for (int i = 0; i < REPL_QMAX; i++) {
        if (q->o[i].state == RO_FREE) {
            if (!fr) fr = &q->o[i];
        } else if (q->o[i].id == id && q->o[i].ver == ver) {
            dup = 1;
        }
    }
    if (!dup && fr) {
        memset(fr, 0, sizeof(*fr));
        fr->state = RO_QUEUED;
        fr->seq = ++q->seq;
        fr->id = id;
        fr->ver = ver;
        fr->nsrc = nsrc;
        for (int i = 0; i < nsrc; i++)
            memcpy(fr->src[i], src[i], sizeof(fr->src[i]));
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (dup)
        LOG_DEBUG("repl", "chunk %016" PRIx64 " v%u: order already taken", id, ver);
    else if (!fr)
        LOG_WARN("repl", "chunk %016" PRIx64 " v%u: order dropped, %d orders pending", id, ver,
                 REPL_QMAX);
    else
        LOG_DEBUG("repl", "chunk %016" PRIx64 " v%u: order queued (%d sources)", id, ver, nsrc);
}

int cs_repl_send_done(struct cs_state *s)
{
    struct cs_repl *q = s->repl;
    if (!q) return 0;
    for (int i = 0; i < REPL_QMAX && !s->stop; i++) {
        pthread_mutex_lock(&q->mu);
        struct repl_order o = q->o[i];
        pthread_mutex_unlock(&q->mu);
        if (o.state != RO_DONE) continue;
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, s->server_id);
        wbuf_put_u64(&b, o.id);
        wbuf_put_u32(&b, o.ver);
        wbuf_put_i32(&b, o.status);
        wbuf_put_u64(&b, o.bytes);
        struct rpc_reply rep;
        int rc = b.err ? b.err
                       : cs_metaconn_call(s->meta, MSG_CS_REPLICATED, b.data, b.len, NULL, 0,
                                          REPL_CALL_MS, &rep);
        wbuf_free(&b);
        if (rc) return rc; /* no leader answered: keep it for the next round */
        if (rep.status)
            LOG_WARN("repl", "chunk %016" PRIx64 " v%u: meta refused the result: %s", o.id, o.ver,
                     strerror(-rep.status));
        rpc_reply_free(&rep);
        pthread_mutex_lock(&q->mu);
        q->o[i].state = RO_FREE;
        pthread_mutex_unlock(&q->mu);
    }
    return 0;
}
