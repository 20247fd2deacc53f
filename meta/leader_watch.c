/* leader_watch.c - a follower notices at once that the leader's process is gone, instead of
 * waiting out an election timeout (1 s, randomized up to 2 s) after its last heartbeat.
 *
 * A follower keeps one idle TCP connection to the leader's client port. When that connection
 * ends it connects again: a refused connection, where one was made before, means nothing
 * listens there any more (the process died or stopped; its host is up). The follower then
 * lets libraft start an election soon: the first by id at once, the next 400 ms later
 * (mraft_hasten_election). A connection that ends for any other reason, or cannot be made
 * for want of an answer (a cut network), changes nothing: Raft's own timeout handles that.
 * Timers decide only when an election starts, never who wins, so a wrong guess costs an
 * election, not safety. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "mraft_int.h"
#include "net.h"

#define WATCH_RETRY_MS 250
#define HASTEN_STEP_MS 400  /* between two followers standing (ticks are 100 ms) */
#define HASTEN_AGAIN_MS 300 /* before a replica that stood starts over, no leader known */

struct leader_watch {
    struct mraft *r;
    struct bufferevent *bev;
    struct event *retry, *stand;
    int stands_left;               /* elections started over while no leader is known */
    char addr[CAIRN_ADDR_MAX + 1]; /* the leader watched ("" = none) */
    int connected;                 /* the current connection was made */
    int ever;                      /* a connection to this leader was made once */
};

static void watch_connect(struct leader_watch *w);
static void on_stand(evutil_socket_t fd, short what, void *arg);

static void watch_close(struct leader_watch *w)
{
    if (w->bev) bufferevent_free(w->bev);
    w->bev = NULL;
    w->connected = 0;
}

static void retry_later(struct leader_watch *w)
{
    struct timeval tv = {WATCH_RETRY_MS / 1000, (WATCH_RETRY_MS % 1000) * 1000};
    evtimer_add(w->retry, &tv);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg; /* the leader never writes on this connection; drop whatever comes */
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct leader_watch *w = arg;
    if (what & BEV_EVENT_CONNECTED) {
        w->connected = w->ever = 1;
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    int was_connected = w->connected;
    watch_close(w);
    if (was_connected) {
        watch_connect(w); /* ended: is anybody still listening? */
    } else if ((what & BEV_EVENT_ERROR) && err == ECONNREFUSED && w->ever) {
        /* (a port that never let us in says nothing about the process: a firewall's
         * rejection, say; watching it would flap) */
        LOG_INFO("raft", "the leader at %s is gone (its port refuses): electing now", w->addr);
        mraft_hasten_election(w->r);
        w->addr[0] = '\0'; /* until a leader is known again */
    } else {
        retry_later(w);
    }
}

static void watch_connect(struct leader_watch *w)
{
    char host[CAIRN_ADDR_MAX + 1];
    uint16_t port;
    if (!w->addr[0] || net_parse_addr(w->addr, host, sizeof(host), &port)) return;
    w->bev = bufferevent_socket_new(w->r->m->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!w->bev) {
        retry_later(w);
        return;
    }
    bufferevent_setcb(w->bev, on_read, NULL, on_event, w);
    bufferevent_enable(w->bev, EV_READ);
    w->connected = 0;
    /* a numeric address resolves at once; a name through the system's resolver */
    if (bufferevent_socket_connect_hostname(w->bev, NULL, AF_UNSPEC, host, port)) {
        watch_close(w);
        retry_later(w);
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leader_watch *w = arg;
    if (!w->bev) watch_connect(w);
}

void mraft_watch_leader(struct mraft *r, const char *leader)
{
    struct leader_watch *w = r->lw;
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w) return;
        w->r = r;
        w->retry = evtimer_new(r->m->base, on_retry, w);
        w->stand = evtimer_new(r->m->base, on_stand, w);
        if (!w->retry || !w->stand) {
            if (w->retry) event_free(w->retry);
            if (w->stand) event_free(w->stand);
            free(w);
            return;
        }
        r->lw = w;
    }
    if (!leader || !strcmp(leader, r->self)) leader = ""; /* nobody, or ourselves */
    if (!strcmp(leader, w->addr)) return;
    watch_close(w);
    evtimer_del(w->retry);
    snprintf(w->addr, sizeof(w->addr), "%s", leader);
    w->ever = 0;
    watch_connect(w);
}

void mraft_watch_stop(struct mraft *r)
{
    struct leader_watch *w = r->lw;
    if (!w) return;
    watch_close(w);
    event_free(w->retry);
    event_free(w->stand);
    free(w);
    r->lw = NULL;
}

/* End this replica's election timer now (a follower's, or a candidate's: then it starts the
 * election over), unless a leader is known again. Returns whether it did. */
static int stand_now(struct mraft *r)
{
    struct raft *rp = &r->raft;
    int st = raft_state(rp);
    if (st == RAFT_LEADER || st == RAFT_UNAVAILABLE) return 0;
    if (st == RAFT_FOLLOWER && rp->follower_state.current_leader.id != 0) return 0;
    unsigned t = rp->election_timeout;
    raft_time now = r->io.time(&r->io);
    if (st == RAFT_FOLLOWER)
        rp->follower_state.randomized_election_timeout = t;
    else
        rp->candidate_state.randomized_election_timeout = t;
    if (now > (raft_time)t) rp->election_timer_start = now - t;
    mraft_kick(r);
    return 1;
}

static void on_stand(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leader_watch *w = arg;
    /* Once more a little later while no leader is known: libraft's connection to a peer that
     * was restarted loses the first messages written on it (it only finds the old socket
     * dead by writing), a vote request or its answer among them. */
    if (stand_now(w->r) && w->stands_left-- > 0) {
        unsigned d = HASTEN_AGAIN_MS + (unsigned)(random() % 100);
        struct timeval tv = {0, (long)d * 1000};
        evtimer_add(w->stand, &tv);
    }
}

void mraft_hasten_election(struct mraft *r)
{
    struct raft *rp = &r->raft;
    struct leader_watch *w = r->lw;
    if (raft_state(rp) != RAFT_FOLLOWER || !w) return;
    /* Reaching into libraft 0.15's struct raft (public in raft.h; there is no call for it). A
     * follower that still names a leader refuses votes: forget it. Then stand by rank (the
     * voters other than the dead leader, by id): the first at once, the next HASTEN_STEP_MS
     * later if no leader is known by then (libraft resets a timer when it grants a vote or
     * an append is in flight, so the later ones set it again when their turn comes), so that
     * the followers do not split the vote at the same 100 ms tick. */
    raft_id dead = rp->follower_state.current_leader.id;
    rp->follower_state.current_leader.id = 0;
    unsigned rank = 0;
    for (unsigned i = 0; i < rp->configuration.n; i++) {
        const struct raft_server *s = &rp->configuration.servers[i];
        if (s->role == RAFT_VOTER && s->id != dead && s->id < r->id) rank++;
    }
    unsigned d = rank * HASTEN_STEP_MS + (unsigned)(random() % 50);
    if (d >= rp->election_timeout) return; /* the usual timeout comes first */
    w->stands_left = 3;
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    evtimer_add(w->stand, &tv);
}
