/* rpc.c - pipelined client connection (see rpc.h).
 *
 * Replies are read by the waiters themselves (leader/follower): a thread in rpc_wait whose
 * reply has not come takes the reader role if nobody holds it, reads frames and hands each to
 * its call, until its own reply is in (or its deadline passes); then it gives the role up and
 * wakes the other waiters, one of which takes it over. So the common lone call costs one
 * wake-up (the socket's), not two (a reader thread's, then the caller's).
 *
 * Locking: `mu` guards the pending list, fd, the reader role and reconnect state; `send_mu`
 * serialises writes on the socket. Only a thread holding the reader role, or a sender that
 * found nobody reading, closes a broken socket, and only with send_mu then mu held, so no
 * writer can ever use a closed (and possibly reused) fd number. A reader never blocks for
 * long inside a frame: the socket has a receive timeout (call_timeout_ms), after which the
 * connection counts as broken. */
#include "rpc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "wire.h"

struct rpc_call {
    struct rpc_call *next, *prev;
    uint64_t reqid;
    uint64_t deadline_ms;
    int done;   /* 1 once a reply or an error is in */
    int status; /* transport error, or 0 */
    struct rpc_reply reply;
    pthread_cond_t cond;
    struct rpc_conn *conn;
};

struct rpc_conn {
    char addr[128];
    struct rpc_opts o;
    pthread_mutex_t mu;
    pthread_mutex_t send_mu;
    int fd;
    int reading;                /* a waiter holds the reader role */
    pthread_cond_t reader_gone; /* the reader role was given up (rpc_conn_free waits on it) */
    uint64_t next_reqid;
    uint64_t next_attempt_ms;
    int backoff_ms;
    struct rpc_call pending; /* list head */
};

static void opts_default(struct rpc_opts *o, const struct rpc_opts *in)
{
    if (in)
        *o = *in;
    else
        memset(o, 0, sizeof(*o));
    if (o->connect_timeout_ms <= 0) o->connect_timeout_ms = 2000;
    if (o->call_timeout_ms <= 0) o->call_timeout_ms = 30000;
    if (o->backoff_min_ms <= 0) o->backoff_min_ms = 50;
    if (o->backoff_max_ms <= 0) o->backoff_max_ms = 2000;
    if (o->max_payload == 0 || o->max_payload > WIRE_MAX_PAYLOAD) o->max_payload = WIRE_MAX_PAYLOAD;
}

struct rpc_conn *rpc_conn_new(const char *hostport, const struct rpc_opts *opts)
{
    struct rpc_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    snprintf(c->addr, sizeof(c->addr), "%s", hostport);
    opts_default(&c->o, opts);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->send_mu, NULL);
    pthread_cond_init(&c->reader_gone, NULL);
    c->fd = -1;
    c->next_reqid = 1;
    c->pending.next = c->pending.prev = &c->pending;
    return c;
}

const char *rpc_conn_addr(const struct rpc_conn *c)
{
    return c->addr;
}

static void call_unlink(struct rpc_call *k)
{
    if (k->next) {
        k->next->prev = k->prev;
        k->prev->next = k->next;
        k->next = k->prev = NULL;
    }
}

/* Fail every pending call; mu held. */
static void fail_pending(struct rpc_conn *c, int err)
{
    while (c->pending.next != &c->pending) {
        struct rpc_call *k = c->pending.next;
        call_unlink(k);
        k->done = 1;
        k->status = err;
        pthread_cond_signal(&k->cond);
    }
}

/* Wake every waiter (mu held): the reader role is free, one of them may take it. */
static void wake_waiters(struct rpc_conn *c)
{
    for (struct rpc_call *k = c->pending.next; k != &c->pending; k = k->next)
        pthread_cond_signal(&k->cond);
    pthread_cond_broadcast(&c->reader_gone);
}

/* The connection is broken (send_mu and mu held): fail every call in flight, close it. */
static void conn_broken(struct rpc_conn *c, int fd, int rc)
{
    if (rc != -ECONNRESET) LOG_DEBUG("rpc", "connection to %s lost: %s", c->addr, strerror(-rc));
    fail_pending(c, -ECONNRESET);
    if (c->fd == fd) c->fd = -1;
    close(fd);
}

/* Holding the reader role (mu held on entry and exit, released while reading): read one frame
 * within wait_ms and hand it to its call. 0 when a frame was handled, -ETIMEDOUT when nothing
 * came, or the connection's error (then it is closed and every pending call failed). */
static int read_one(struct rpc_conn *c, int wait_ms)
{
    int fd = c->fd;
    pthread_mutex_unlock(&c->mu);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, wait_ms);
    int rc = n < 0 ? (errno == EINTR ? -ETIMEDOUT : -errno) : n == 0 ? -ETIMEDOUT : 0;
    struct wire_hdr h;
    struct wbuf buf;
    wbuf_init(&buf);
    if (!rc) {
        rc = wire_recv(fd, &h, &buf, c->o.max_payload);
        if (rc == -EAGAIN || rc == -ETIMEDOUT) rc = -EPROTO; /* stalled inside a frame */
        if (!rc && !(h.type & WIRE_REPLY_BIT)) rc = -EBADMSG;
    }
    if (rc && rc != -ETIMEDOUT) {
        wbuf_free(&buf);
        pthread_mutex_lock(&c->send_mu);
        pthread_mutex_lock(&c->mu);
        conn_broken(c, fd, rc);
        pthread_mutex_unlock(&c->send_mu);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    if (rc) return rc;
    struct rpc_call *k;
    for (k = c->pending.next; k != &c->pending; k = k->next)
        if (k->reqid == h.reqid) break;
    if (k != &c->pending) {
        call_unlink(k);
        k->reply.status = h.status;
        k->reply.payload = buf; /* hand the buffer over */
        wbuf_init(&buf);
        k->done = 1;
        pthread_cond_signal(&k->cond);
    }
    wbuf_free(&buf); /* a reply nobody waits for any more (timed out) */
    return 0;
}

/* Make sure a connection is up; mu held. Returns 0 or negative errno. */
static int ensure_connected(struct rpc_conn *c)
{
    if (c->fd >= 0) return 0;
    uint64_t now = net_now_ms();
    if (now < c->next_attempt_ms) return -EAGAIN;
    int fd = net_connect(c->addr, c->o.connect_timeout_ms);
    if (fd < 0) {
        c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : c->o.backoff_min_ms;
        if (c->backoff_ms > c->o.backoff_max_ms) c->backoff_ms = c->o.backoff_max_ms;
        c->next_attempt_ms = net_now_ms() + (uint64_t)c->backoff_ms;
        return fd;
    }
    /* a frame that stalls half way counts as a broken connection (read_one) */
    struct timeval tv = {c->o.call_timeout_ms / 1000, (c->o.call_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    c->backoff_ms = 0;
    c->next_attempt_ms = 0;
    c->fd = fd;
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int rpc_submit(struct rpc_conn *c, uint16_t type, const void *p1, size_t n1, const void *p2,
               size_t n2, uint64_t deadline_ms, struct rpc_call **out)
{
    if (n1 + n2 > WIRE_MAX_PAYLOAD) return -EMSGSIZE;
    if (deadline_ms == 0) deadline_ms = net_now_ms() + (uint64_t)c->o.call_timeout_ms;
    struct rpc_call *k = calloc(1, sizeof(*k));
    if (!k) return -ENOMEM;
    pthread_cond_init(&k->cond, NULL);
    k->conn = c;
    k->deadline_ms = deadline_ms;

    int attempts = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int rc = ensure_connected(c);
        if (rc != 0 && rc != -EAGAIN && rc != -ENOMEM) attempts++;
        if (rc == 0) {
            k->reqid = c->next_reqid++;
            k->done = 0;
            k->status = 0;
            k->prev = c->pending.prev;
            k->next = &c->pending;
            c->pending.prev->next = k;
            c->pending.prev = k;
            pthread_mutex_unlock(&c->mu);

            pthread_mutex_lock(&c->send_mu);
            pthread_mutex_lock(&c->mu);
            int fd = c->fd;
            int lost = k->done; /* reader failed it between our two locks */
            pthread_mutex_unlock(&c->mu);
            int src = -ECONNRESET;
            if (fd >= 0 && !lost) {
                struct wire_hdr h = {.type = type, .reqid = k->reqid};
                src = wire_send(fd, &h, p1, n1, p2, n2);
                if (src) {
                    pthread_mutex_lock(&c->mu);
                    if (c->reading)
                        shutdown(fd, SHUT_RDWR); /* the reader cleans up */
                    else if (c->fd == fd)
                        conn_broken(c, fd, src); /* nobody reads: clean up here */
                    pthread_mutex_unlock(&c->mu);
                }
            }
            pthread_mutex_unlock(&c->send_mu);
            if (src == 0) {
                *out = k;
                return 0;
            }
            /* Not sent (or partly sent on a connection now dead): safe to retry. */
            pthread_mutex_lock(&c->mu);
            call_unlink(k);
            k->reply.status = 0;
            pthread_mutex_unlock(&c->mu);
            rc = src;
        } else {
            pthread_mutex_unlock(&c->mu);
        }
        uint64_t now = net_now_ms();
        if (now >= deadline_ms ||
            (c->o.connect_attempts > 0 && attempts >= c->o.connect_attempts)) {
            pthread_cond_destroy(&k->cond);
            free(k);
            return rc == -EAGAIN ? -ETIMEDOUT : rc;
        }
        int wait = c->backoff_ms > 0 ? c->backoff_ms : 10;
        if ((uint64_t)wait > deadline_ms - now) wait = (int)(deadline_ms - now);
        sleep_ms(wait);
    }
}

int rpc_wait(struct rpc_call *k, uint64_t deadline_ms, struct rpc_reply *reply)
{
    struct rpc_conn *c = k->conn;
    if (deadline_ms == 0) deadline_ms = k->deadline_ms;
    struct timespec ts;
    uint64_t now = net_now_ms();
    net_abstime_in(deadline_ms > now ? deadline_ms - now : 0, &ts);
    pthread_mutex_lock(&c->mu);
    while (!k->done) {
        now = net_now_ms();
        if (now >= deadline_ms) {
            call_unlink(k);
            k->done = 1;
            k->status = -ETIMEDOUT;
            break;
        }
        if (!c->reading && c->fd >= 0) {
            /* nobody reads: take the role until this reply is in */
            c->reading = 1;
            while (!k->done && c->fd >= 0) {
                uint64_t t = net_now_ms();
                if (t >= deadline_ms) break;
                if (read_one(c, (int)(deadline_ms - t)) && !k->done) break;
            }
            c->reading = 0;
            wake_waiters(c);
            continue;
        }
        if (c->fd < 0 && !k->done) { /* the connection went away under this call */
            call_unlink(k);
            k->done = 1;
            k->status = -ECONNRESET;
            break;
        }
        if (pthread_cond_timedwait(&k->cond, &c->mu, &ts) == ETIMEDOUT && !k->done) {
            call_unlink(k);
            k->done = 1;
            k->status = -ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&c->mu);
    int rc = k->status;
    if (rc == 0) {
        *reply = k->reply;
    } else {
        wbuf_free(&k->reply.payload);
        memset(reply, 0, sizeof(*reply));
        reply->status = rc;
        if (rc == -ETIMEDOUT)
            LOG_WARN("rpc", "request %llu to %s timed out", (unsigned long long)k->reqid, c->addr);
    }
    pthread_cond_destroy(&k->cond);
    free(k);
    return rc;
}

int rpc_call(struct rpc_conn *c, uint16_t type, const void *p1, size_t n1, const void *p2,
             size_t n2, struct rpc_reply *reply)
{
    struct rpc_call *k;
    memset(reply, 0, sizeof(*reply));
    int rc = rpc_submit(c, type, p1, n1, p2, n2, 0, &k);
    if (rc) {
        reply->status = rc;
        return rc;
    }
    rc = rpc_wait(k, 0, reply);
    if (rc) return rc;
    if (reply->status < 0) {
        wbuf_free(&reply->payload);
        return reply->status;
    }
    return 0;
}

void rpc_reply_free(struct rpc_reply *r)
{
    wbuf_free(&r->payload);
}

void rpc_conn_reset(struct rpc_conn *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&c->mu);
}

void rpc_conn_free(struct rpc_conn *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    while (c->reading) /* a waiter reading now sees the shutdown and gives the role up */
        pthread_cond_wait(&c->reader_gone, &c->mu);
    fail_pending(c, -ECONNRESET);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&c->reader_gone);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
    free(c);
}
