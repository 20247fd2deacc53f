/* rpc.c - pipelined client connection (see rpc.h).
 *
 * Locking: `mu` guards the pending list, fd and reconnect state; `send_mu` serialises writes
 * on the socket. The reader thread owns the socket's read side; when it sees an error it takes
 * send_mu then mu, fails every pending call, closes the fd and exits, so no writer can ever
 * use a closed (and possibly reused) fd number. */
#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    int reader_running;
    pthread_t reader;
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

static void *reader_main(void *arg)
{
    struct rpc_conn *c = arg;
    pthread_mutex_lock(&c->mu);
    int fd = c->fd;
    pthread_mutex_unlock(&c->mu);

    struct wbuf buf;
    wbuf_init(&buf);
    int rc;
    for (;;) {
        struct wire_hdr h;
        rc = wire_recv(fd, &h, &buf, c->o.max_payload);
        if (rc) break;
        if (!(h.type & WIRE_REPLY_BIT)) {
            rc = -EBADMSG;
            break;
        }
        pthread_mutex_lock(&c->mu);
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
        pthread_mutex_unlock(&c->mu);
    }
    wbuf_free(&buf);
    if (rc != -ECONNRESET) LOG_DEBUG("rpc", "connection to %s lost: %s", c->addr, strerror(-rc));
    pthread_mutex_lock(&c->send_mu);
    pthread_mutex_lock(&c->mu);
    fail_pending(c, -ECONNRESET);
    c->fd = -1;
    close(fd);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->send_mu);
    return NULL;
}

/* Make sure a connection is up; mu held. Returns 0 or negative errno. */
static int ensure_connected(struct rpc_conn *c)
{
    if (c->fd >= 0) return 0;
    if (c->reader_running) {
        /* The old reader has finished (fd == -1 is its last act); collect it. */
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->reader, NULL);
        pthread_mutex_lock(&c->mu);
        c->reader_running = 0;
        if (c->fd >= 0) return 0;
    }
    uint64_t now = net_now_ms();
    if (now < c->next_attempt_ms) return -EAGAIN;
    int fd = net_connect(c->addr, c->o.connect_timeout_ms);
    if (fd < 0) {
        c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : c->o.backoff_min_ms;
        if (c->backoff_ms > c->o.backoff_max_ms) c->backoff_ms = c->o.backoff_max_ms;
        c->next_attempt_ms = net_now_ms() + (uint64_t)c->backoff_ms;
        return fd;
    }
    c->backoff_ms = 0;
    c->next_attempt_ms = 0;
    c->fd = fd;
    if (pthread_create(&c->reader, NULL, reader_main, c)) {
        close(fd);
        c->fd = -1;
        return -ENOMEM;
    }
    c->reader_running = 1;
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
                if (src) shutdown(fd, SHUT_RDWR); /* the reader cleans up */
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
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = net_now_ms();
    uint64_t wait_ms = deadline_ms > now ? deadline_ms - now : 0;
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (!k->done) {
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
    int running = c->reader_running;
    pthread_mutex_unlock(&c->mu);
    if (running) pthread_join(c->reader, NULL);
    pthread_mutex_lock(&c->mu);
    fail_pending(c, -ECONNRESET);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
    free(c);
}
