/* evsrv.c - libevent frame server (see evsrv.h). */
#include "evsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "proto.h"

struct evsrv {
    struct event_base *base;
    struct evconnlistener *listener;
    uint16_t port;
    uint32_t max_payload;
    evsrv_handler handler;
    void *arg;
    int hold;
    int bypass;
    struct evsrv_conn *held;     /* connections with held replies */
    struct evsrv_conn *parked;   /* connections whose first frame was deferred */
    struct evsrv_conn *resuming; /* the parked ones evsrv_resume is handing over */
    evsrv_reply_fn on_reply;     /* sees every reply (metrics); NULL = none */
    void *on_reply_arg;
};

struct evsrv_conn {
    struct evsrv *srv;
    struct bufferevent *bev;
    char peer[64];
    void *data;
    void (*data_free)(void *);
    struct evbuffer *held_buf; /* replies held until evsrv_release */
    struct evsrv_conn *held_prev, *held_next;
    int is_held;
    struct evsrv_conn *park_prev, *park_next;
    int is_parked;
};

static void park_unlink(struct evsrv_conn *c)
{
    if (!c->is_parked) return;
    struct evsrv_conn **head = c->is_parked == 2 ? &c->srv->resuming : &c->srv->parked;
    if (c->park_prev)
        c->park_prev->park_next = c->park_next;
    else
        *head = c->park_next;
    if (c->park_next) c->park_next->park_prev = c->park_prev;
    c->park_prev = c->park_next = NULL;
    c->is_parked = 0;
}

static void park_link(struct evsrv_conn *c)
{
    if (c->is_parked) return;
    c->park_next = c->srv->parked;
    c->park_prev = NULL;
    if (c->park_next) c->park_next->park_prev = c;
    c->srv->parked = c;
    c->is_parked = 1;
}

static void held_unlink(struct evsrv_conn *c)
{
    if (!c->is_held) return;
    if (c->held_prev)
        c->held_prev->held_next = c->held_next;
    else
        c->srv->held = c->held_next;
    if (c->held_next) c->held_next->held_prev = c->held_prev;
    c->held_prev = c->held_next = NULL;
    c->is_held = 0;
}

static void conn_free(struct evsrv_conn *c)
{
    held_unlink(c);
    park_unlink(c);
    if (c->held_buf) evbuffer_free(c->held_buf);
    if (c->data_free) c->data_free(c->data);
    bufferevent_free(c->bev);
    free(c);
}

void evsrv_conn_set_data(struct evsrv_conn *c, void *data, void (*free_fn)(void *))
{
    c->data = data;
    c->data_free = free_fn;
}

void *evsrv_conn_data(struct evsrv_conn *c)
{
    return c->data;
}

const char *evsrv_conn_peer(const struct evsrv_conn *c)
{
    return c->peer;
}

void evsrv_on_reply(struct evsrv *s, evsrv_reply_fn fn, void *arg)
{
    s->on_reply = fn;
    s->on_reply_arg = arg;
}

void evsrv_reply(struct evsrv_conn *c, const struct wire_hdr *req, int status, const void *payload,
                 size_t len)
{
    struct wire_hdr h = {.type = (uint16_t)(req->type | WIRE_REPLY_BIT),
                         .reqid = req->reqid,
                         .length = payload ? (uint32_t)len : 0,
                         .status = status};
    uint8_t hb[WIRE_HDR_SIZE];
    wire_hdr_encode(hb, &h);
    if (c->srv->on_reply) c->srv->on_reply(c->srv->on_reply_arg, req->type, status);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->srv->hold && !c->srv->bypass) {
        if (!c->held_buf) c->held_buf = evbuffer_new();
        if (c->held_buf) {
            out = c->held_buf;
            if (!c->is_held) {
                c->held_next = c->srv->held;
                c->held_prev = NULL;
                if (c->held_next) c->held_next->held_prev = c;
                c->srv->held = c;
                c->is_held = 1;
            }
        }
    }
    evbuffer_add(out, hb, sizeof(hb));
    if (payload && len) evbuffer_add(out, payload, len);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evsrv_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < WIRE_HDR_SIZE) return;
        uint8_t hb[WIRE_HDR_SIZE];
        evbuffer_copyout(in, hb, sizeof(hb));
        struct wire_hdr h;
        int rc = wire_hdr_decode(hb, &h, c->srv->max_payload);
        if (rc == 0 && (h.type & WIRE_REPLY_BIT)) rc = -EBADMSG;
        if (rc) {
            LOG_WARN("net", "malformed frame from %s (%s): closing the connection", c->peer,
                     strerror(-rc));
            conn_free(c);
            return;
        }
        if (avail < WIRE_HDR_SIZE + (size_t)h.length) {
            /* Wait for the rest; make sure libevent reads that far. */
            return;
        }
        uint8_t *frame = evbuffer_pullup(in, (ssize_t)(WIRE_HDR_SIZE + h.length));
        if (!frame) {
            conn_free(c);
            return;
        }
        rc = c->srv->handler(c, &h, h.length ? frame + WIRE_HDR_SIZE : NULL, c->srv->arg);
        if (rc == EVSRV_DEFER) {
            park_link(c);
            return;
        }
        evbuffer_drain(in, WIRE_HDR_SIZE + (size_t)h.length);
        if (rc) {
            LOG_WARN("net", "bad %s request from %s (%s): closing the connection",
                     proto_type_name(h.type), c->peer, strerror(-rc));
            conn_free(c);
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct evsrv_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                      void *arg)
{
    (void)l;
    (void)sl;
    struct evsrv *s = arg;
    struct evsrv_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(in->sin_port));
    } else {
        snprintf(c->peer, sizeof(c->peer), "[v6]");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct evsrv *evsrv_new(struct event_base *base, const char *hostport, uint32_t max_payload,
                        evsrv_handler handler, void *arg, int *err)
{
    uint16_t port = 0;
    int fd = net_listen(hostport, &port);
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    evutil_make_socket_nonblocking(fd);
    struct evsrv *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    s->base = base;
    s->port = port;
    s->max_payload = max_payload ? max_payload : WIRE_MAX_PAYLOAD;
    s->handler = handler;
    s->arg = arg;
    s->listener = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (!s->listener) {
        close(fd);
        free(s);
        *err = -ENOMEM;
        return NULL;
    }
    return s;
}

void evsrv_hold(struct evsrv *s)
{
    s->hold = 1;
}

void evsrv_bypass(struct evsrv *s, int on)
{
    s->bypass = on;
}

void evsrv_release(struct evsrv *s)
{
    s->hold = 0;
    while (s->held) {
        struct evsrv_conn *c = s->held;
        held_unlink(c);
        evbuffer_add_buffer(bufferevent_get_output(c->bev), c->held_buf);
    }
}

void evsrv_drop_held(struct evsrv *s)
{
    s->hold = 0;
    while (s->held) {
        struct evsrv_conn *c = s->held;
        LOG_WARN("net", "closing the connection of %s: its replies were not committed", c->peer);
        conn_free(c);
    }
}

void evsrv_resume(struct evsrv *s)
{
    /* a connection deferred again parks itself anew: hand over the list as it is now */
    if (s->resuming) return; /* called from a handler during a resume: that one goes on */
    s->resuming = s->parked;
    s->parked = NULL;
    for (struct evsrv_conn *c = s->resuming; c; c = c->park_next)
        c->is_parked = 2;
    while (s->resuming) {
        struct evsrv_conn *c = s->resuming;
        park_unlink(c);
        on_read(c->bev, c);
    }
}

uint16_t evsrv_port(const struct evsrv *s)
{
    return s->port;
}

void evsrv_free(struct evsrv *s)
{
    if (!s) return;
    evconnlistener_free(s->listener);
    free(s);
}
