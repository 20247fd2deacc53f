/* cs_events.c - version events for the meta service and the membership thread's wake-up.
 *
 * The chunk store calls cs_ev_gained (with the chunk's lock held) whenever a chunk is created
 * or changes version (write, truncate, SETVER, installed replica). The event is queued in
 * memory, coalesced per chunk id (the newest version wins), and the membership thread is
 * woken through a condition variable so that it sends MSG_CS_CHUNK_EVENT {server_id, chunk_id,
 * version, flags = 1} to the meta leader within moments, not at the next heartbeat. An event
 * the leader did not answer (unreachable, no leader, a replica that does not lead) stays
 * queued for the next round. The I/O path never waits on the network: when the bounded queue
 * overflows, events are dropped and the membership thread reports every chunk again instead. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "cs.h"
#include "cs_metaconn.h"
#include "log.h"
#include "net.h"

#define EV_BATCH 64

/* Queue (id, ver) under s->lock; 0, or -ENOSPC when full. */
static int ev_put(struct cs_state *s, uint64_t id, uint32_t ver, int keep_newer)
{
    for (int i = 0; i < s->nev; i++)
        if (s->evq[i].id == id) {
            if (!keep_newer || ver > s->evq[i].ver) s->evq[i].ver = ver;
            return 0;
        }
    if (s->nev == CS_EVQ) return -ENOSPC;
    s->evq[s->nev].id = id;
    s->evq[s->nev++].ver = ver;
    return 0;
}

static void cs_ev_gained(void *arg, uint64_t id, uint32_t ver)
{
    struct cs_state *s = arg;
    pthread_mutex_lock(&s->lock);
    if (ev_put(s, id, ver, 0)) s->rereport = 1;
    s->kick = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int cs_events_init(struct cs_state *s)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&s->wake, &a);
    pthread_condattr_destroy(&a);
    if (rc) return -rc;
    s->store.on_gain = cs_ev_gained;
    s->store.on_gain_arg = s;
    return 0;
}

void cs_kick(struct cs_state *s, int heartbeat)
{
    pthread_mutex_lock(&s->lock);
    s->kick = 1;
    if (heartbeat) s->hb_early = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int cs_wait(struct cs_state *s, uint64_t deadline_ms)
{
    pthread_mutex_lock(&s->lock);
    /* wake at least every 100 ms to notice stop (set from a signal handler) */
    for (int i = 0; i < 100000 && !s->kick && !s->hb_early && !s->stop; i++) {
        uint64_t now = net_now_ms();
        if (now >= deadline_ms) break;
        uint64_t until = deadline_ms - now > 100 ? now + 100 : deadline_ms;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (until - now) * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
    }
    s->kick = 0;
    int hb = s->hb_early;
    s->hb_early = 0;
    pthread_mutex_unlock(&s->lock);
    return hb;
}

void cs_events_clear(struct cs_state *s)
{
    pthread_mutex_lock(&s->lock);
    s->nev = 0;
    s->rereport = 0;
    pthread_mutex_unlock(&s->lock);
}

/* Send one batch of at most EV_BATCH events to the meta leader; returns the number the
 * leader answered (>= 0), or the first failure that did not reach the leader (then the events
 * not answered are queued again, unless a newer event of that chunk came). A leader that does
 * not know this server (-ENOENT) counts as answered: it gets every chunk in the full report
 * that follows the registration. */
static int ev_send_batch(struct cs_state *s)
{
    struct cs_ev b[EV_BATCH];
    struct cs_metaconn_req req[EV_BATCH];
    int sub[EV_BATCH];
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->nev < EV_BATCH ? s->nev : EV_BATCH;
    memcpy(b, s->evq, sizeof(b[0]) * n);
    memmove(s->evq, s->evq + n, sizeof(s->evq[0]) * (s->nev - n));
    s->nev -= n;
    pthread_mutex_unlock(&s->lock);
    int terr = 0, sent = 0;
    uint64_t deadline = net_now_ms() + CS_META_ATTEMPT_MS; /* one attempt */
    for (int i = 0; i < n; i++) {
        sub[i] = terr;
        if (terr) continue;
        uint8_t p[24];
        le_put64(p, s->server_id);
        le_put64(p + 8, b[i].id);
        le_put32(p + 16, b[i].ver);
        le_put32(p + 20, 1u); /* gained */
        terr = sub[i] = cs_metaconn_submit(s->meta, MSG_CS_CHUNK_EVENT, p, sizeof(p), NULL, 0,
                                           deadline, &req[i]);
    }
    for (int i = 0; i < n; i++) {
        int rc = sub[i];
        if (!rc) {
            struct rpc_reply rep;
            rc = cs_metaconn_wait(s->meta, &req[i], deadline, &rep);
            if (!rc) {
                if (rep.status)
                    LOG_DEBUG("meta", "chunk event %016" PRIx64 " v%u: %s", b[i].id, b[i].ver,
                              strerror(-rep.status));
                rpc_reply_free(&rep);
            }
        }
        if (rc) { /* not answered by the leader: keep it for the next round */
            if (!terr) terr = rc;
            pthread_mutex_lock(&s->lock);
            if (ev_put(s, b[i].id, b[i].ver, 1)) s->rereport = 1;
            pthread_mutex_unlock(&s->lock);
        } else {
            sent++;
        }
    }
    return terr ? terr : sent;
}

int cs_events_send(struct cs_state *s)
{
    for (int k = 0; k < CS_EVQ / EV_BATCH + 1 && !s->stop; k++) {
        int rc = ev_send_batch(s);
        if (rc < 0) return rc;
        if (rc == 0) return 0;
    }
    return 0;
}
