/* cs_metaconn.c - the chunk server's way to the meta leader (see cs_metaconn.h): the known
 * replica addresses, one reference-counted endpoint (rpc_conn) per address, the current
 * address, and the leader epoch.
 *
 * Invariants (under mu): ep[0..nconf) are the configured addresses and are never replaced;
 * ep[nconf..n) are learnt ones, replaced round robin once n == CS_META_ADDRS; 0 <= cur < n;
 * an endpoint's refs counts its table slot (while it has one) plus every request holding it,
 * and the endpoint is freed (outside mu) when refs reaches 0. */
#include "cs_metaconn.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "net.h"

#define MC_CONNECT_MS 1000

struct cs_metaconn_ep {
    char addr[CAIRN_ADDR_MAX + 1];
    struct rpc_conn *c;
    int refs; /* under the owner's mu */
};

struct cs_metaconn {
    pthread_mutex_t mu;
    int nconf; /* configured addresses: ep[0..nconf) */
    int n;     /* addresses known: ep[0..n) */
    int cur;   /* the address asked next */
    int evict; /* the learnt slot replaced next when the table is full */
    struct cs_metaconn_ep *ep[CS_META_ADDRS];
    char leader[CAIRN_ADDR_MAX + 1]; /* the last address that answered as leader */
    uint64_t epoch;
};

int cs_metaconn_unreached(int rc)
{
    switch (-rc) {
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETUNREACH:
    case ENETDOWN:
    case EPIPE:
    case ENOTCONN:
    case EADDRNOTAVAIL:
    case CAIRN_ENOTLEADER:
        return 1;
    default:
        return 0;
    }
}

/* host:port that net_parse_addr accepts, port not 0, at most CAIRN_ADDR_MAX bytes, the host
 * made of what host names and IP addresses use (so "a:1;b:2" is no address). */
static int mc_addr_ok(const char *a)
{
    char host[CAIRN_ADDR_MAX + 1];
    uint16_t port;
    if (strlen(a) > CAIRN_ADDR_MAX || net_parse_addr(a, host, sizeof(host), &port) || port == 0)
        return 0;
    for (const char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_:%", *p)) return 0;
    return 1;
}

int cs_metaconn_parse(const char *list, char (*out)[CAIRN_ADDR_MAX + 1], char *err, size_t errlen)
{
    int n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        size_t l = (size_t)(end - p);
        while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\t'))
            l--;
        if (l == 0) {
            snprintf(err, errlen, "meta '%s': empty address (expected host:port[,host:port...])",
                     list);
            return -EINVAL;
        }
        if (n == CS_META_MAX) {
            snprintf(err, errlen, "meta '%s': more than %d addresses", list, CS_META_MAX);
            return -E2BIG;
        }
        if (l > CAIRN_ADDR_MAX) {
            snprintf(err, errlen, "meta: address '%.*s' is longer than %d characters", (int)l, p,
                     CAIRN_ADDR_MAX);
            return -ENAMETOOLONG;
        }
        memcpy(out[n], p, l);
        out[n][l] = '\0';
        if (!mc_addr_ok(out[n])) {
            snprintf(err, errlen, "meta: '%s' is not host:port", out[n]);
            return -EINVAL;
        }
        for (int i = 0; i < n; i++)
            if (strcmp(out[i], out[n]) == 0) {
                snprintf(err, errlen, "meta: '%s' is listed twice", out[n]);
                return -EINVAL;
            }
        n++;
        if (!*end) return n;
        p = end + 1;
    }
}

static struct cs_metaconn_ep *mc_ep_new(const char *addr)
{
    struct rpc_opts o = {.connect_timeout_ms = MC_CONNECT_MS,
                         .backoff_min_ms = CS_META_RETRY_MIN_MS,
                         .backoff_max_ms = CS_META_RECONNECT_MS,
                         /* a dead replica costs one attempt: the next one is tried instead */
                         .connect_attempts = 1};
    struct cs_metaconn_ep *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    e->c = rpc_conn_new(addr, &o);
    if (!e->c) {
        free(e);
        return NULL;
    }
    e->refs = 1;
    return e;
}

static void mc_ep_free(struct cs_metaconn_ep *e)
{
    if (!e) return;
    rpc_conn_free(e->c);
    free(e);
}

int cs_metaconn_new(const char *list, struct cs_metaconn **out, char *err, size_t errlen)
{
    char addr[CS_META_MAX][CAIRN_ADDR_MAX + 1];
    int n = cs_metaconn_parse(list, addr, err, errlen);
    if (n < 0) return n;
    struct cs_metaconn *m = calloc(1, sizeof(*m));
    if (!m) goto err_nomem;
    pthread_mutex_init(&m->mu, NULL);
    for (int i = 0; i < n; i++) {
        m->ep[i] = mc_ep_new(addr[i]);
        if (!m->ep[i]) goto err_free;
        m->n = m->nconf = i + 1;
    }
    *out = m;
    return 0;
err_free:
    cs_metaconn_free(m);
err_nomem:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

void cs_metaconn_free(struct cs_metaconn *m)
{
    if (!m) return;
    for (int i = 0; i < m->n; i++)
        mc_ep_free(m->ep[i]);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* The current endpoint, with a reference for the caller. */
static struct cs_metaconn_ep *mc_hold(struct cs_metaconn *m)
{
    pthread_mutex_lock(&m->mu);
    struct cs_metaconn_ep *e = m->ep[m->cur];
    e->refs++;
    pthread_mutex_unlock(&m->mu);
    return e;
}

static void mc_put(struct cs_metaconn *m, struct cs_metaconn_ep *e)
{
    pthread_mutex_lock(&m->mu);
    int last = --e->refs == 0;
    pthread_mutex_unlock(&m->mu);
    if (last) mc_ep_free(e);
}

/* e failed: move on to the next address, unless another request moved already. */
static void mc_next(struct cs_metaconn *m, struct cs_metaconn_ep *e)
{
    pthread_mutex_lock(&m->mu);
    if (m->ep[m->cur] == e) m->cur = (m->cur + 1) % m->n;
    pthread_mutex_unlock(&m->mu);
}

/* Slot of addr, or -1. Under mu. */
static int mc_find(struct cs_metaconn *m, const char *addr)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->ep[i]->addr, addr) == 0) return i;
    return -1;
}

/* A replica named addr the leader: make it current, learning it when new, and return its
 * endpoint with a reference for the caller (who asks it next); NULL on ENOMEM (nothing
 * changed). */
static struct cs_metaconn_ep *mc_redirect(struct cs_metaconn *m, const char *addr)
{
    struct cs_metaconn_ep *fresh = NULL, *old = NULL, *e;
    pthread_mutex_lock(&m->mu);
    int slot = mc_find(m, addr);
    if (slot < 0) {
        pthread_mutex_unlock(&m->mu);
        fresh = mc_ep_new(addr); /* outside mu: it allocates */
        if (!fresh) return NULL;
        pthread_mutex_lock(&m->mu);
        slot = mc_find(m, addr); /* another request may have learnt it meanwhile */
    }
    if (slot < 0 && m->n < CS_META_ADDRS) {
        slot = m->n++;
        m->ep[slot] = fresh;
        fresh = NULL;
    } else if (slot < 0) {
        slot = m->nconf + m->evict++ % (CS_META_ADDRS - m->nconf);
        old = m->ep[slot];
        m->ep[slot] = fresh;
        fresh = NULL;
        if (--old->refs > 0) old = NULL; /* the last request on it frees it */
    }
    m->cur = slot;
    e = m->ep[slot];
    e->refs++;
    pthread_mutex_unlock(&m->mu);
    mc_ep_free(fresh);
    mc_ep_free(old);
    return e;
}

/* e answered as the leader: a new epoch when it is not the leader of the last answer. */
static void mc_answered(struct cs_metaconn *m, struct cs_metaconn_ep *e)
{
    pthread_mutex_lock(&m->mu);
    int changed = strcmp(m->leader, e->addr) != 0;
    if (changed) {
        memcpy(m->leader, e->addr, sizeof(m->leader));
        m->epoch++;
    }
    pthread_mutex_unlock(&m->mu);
    if (changed) LOG_INFO("meta", "meta leader is now %s", e->addr);
}

/* Judge the outcome rc (rpc_wait's, *rep filled when 0) of a request held on e. Returns 0 for
 * the leader's answer (rep kept), -CAIRN_ENOTLEADER (rep freed; *named is the endpoint of the
 * replica the answer named, now current, with a reference for the caller, or NULL), or rc.
 * Transport errors and "no leader known" move on to the next address. */
static int mc_outcome(struct cs_metaconn *m, struct cs_metaconn_ep *e, int rc,
                      struct rpc_reply *rep, struct cs_metaconn_ep **named)
{
    *named = NULL;
    if (rc) {
        if (cs_metaconn_unreached(rc)) mc_next(m, e);
        return rc;
    }
    if (rep->status != -CAIRN_ENOTLEADER) {
        mc_answered(m, e);
        return 0;
    }
    char addr[CAIRN_ADDR_MAX + 1];
    struct rcur r;
    rcur_init(&r, rep->payload.data, rep->payload.len);
    int ok =
        rcur_str(&r, addr, CAIRN_ADDR_MAX) > 0 && mc_addr_ok(addr) && strcmp(addr, e->addr) != 0;
    rpc_reply_free(rep);
    memset(rep, 0, sizeof(*rep));
    if (ok && (*named = mc_redirect(m, addr))) {
        LOG_DEBUG("meta", "%s does not lead; it names %s", e->addr, addr);
    } else {
        LOG_DEBUG("meta", "%s does not lead and knows no leader", e->addr);
        mc_next(m, e);
    }
    return -CAIRN_ENOTLEADER;
}

static void mc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int cs_metaconn_call(struct cs_metaconn *m, uint16_t type, const void *p1, size_t n1,
                     const void *p2, size_t n2, int timeout_ms, struct rpc_reply *rep)
{
    uint64_t deadline = net_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    int hops = 0, fails = 0, last = -ETIMEDOUT;
    struct cs_metaconn_ep *named = NULL;
    memset(rep, 0, sizeof(*rep));
    for (;;) {
        /* the replica named by the last answer, else the current one */
        struct cs_metaconn_ep *e = named ? named : mc_hold(m);
        /* one replica gets CS_META_ATTEMPT_MS at most: a hung one must not use up the call */
        uint64_t until = net_now_ms() + CS_META_ATTEMPT_MS;
        if (until > deadline) until = deadline;
        struct rpc_call *call;
        int rc = rpc_submit(e->c, type, p1, n1, p2, n2, until, &call);
        if (!rc) rc = rpc_wait(call, until, rep);
        rc = mc_outcome(m, e, rc, rep, &named);
        mc_put(m, e);
        if (rc == 0) return 0;
        int pause;
        if (rc == -CAIRN_ENOTLEADER) { /* a replica answered: the network is fine */
            pause = !named ? CS_META_ELECTION_MS : hops++ ? CS_META_HOP_MS : 0;
            fails = 0;
        } else if (cs_metaconn_unreached(rc)) {
            last = rc;
            pause = CS_META_RETRY_MIN_MS << (fails < 5 ? fails : 5);
            if (pause > CS_META_RETRY_MAX_MS) pause = CS_META_RETRY_MAX_MS;
            fails++;
        } else {
            return rc; /* -ENOMEM, -EMSGSIZE: asking elsewhere does not help */
        }
        uint64_t now = net_now_ms();
        if (now >= deadline || (pause && now + (uint64_t)pause >= deadline)) {
            if (named) mc_put(m, named);
            return last;
        }
        if (pause) mc_sleep_ms(pause);
    }
}

int cs_metaconn_submit(struct cs_metaconn *m, uint16_t type, const void *p1, size_t n1,
                       const void *p2, size_t n2, uint64_t deadline_ms, struct cs_metaconn_req *req)
{
    struct cs_metaconn_ep *e = mc_hold(m);
    int rc = rpc_submit(e->c, type, p1, n1, p2, n2, deadline_ms, &req->call);
    if (rc) {
        if (cs_metaconn_unreached(rc)) mc_next(m, e);
        mc_put(m, e);
        req->ep = NULL;
        req->call = NULL;
        return rc;
    }
    req->ep = e; /* the reference goes with the request */
    return 0;
}

int cs_metaconn_wait(struct cs_metaconn *m, struct cs_metaconn_req *req, uint64_t deadline_ms,
                     struct rpc_reply *rep)
{
    struct cs_metaconn_ep *e = req->ep, *named;
    int rc = rpc_wait(req->call, deadline_ms, rep);
    rc = mc_outcome(m, e, rc, rep, &named);
    if (named) mc_put(m, named);
    mc_put(m, e);
    req->ep = NULL;
    req->call = NULL;
    return rc;
}

uint64_t cs_metaconn_epoch(struct cs_metaconn *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t e = m->epoch;
    pthread_mutex_unlock(&m->mu);
    return e;
}

void cs_metaconn_leader(struct cs_metaconn *m, char *buf, size_t len)
{
    pthread_mutex_lock(&m->mu);
    snprintf(buf, len, "%s", m->leader);
    pthread_mutex_unlock(&m->mu);
}
