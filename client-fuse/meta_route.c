/* meta_route.c - which meta replica a request goes to.
 *
 * The mount knows up to MC_PEERS_MAX replicas: the addresses of meta= (kept for the life of
 * the mount) and leaders named by a replica's -CAIRN_ENOTLEADER reply that were not in the
 * list ("learned"). Each peer has one rpc_conn, created at its first use. `cur` is the peer
 * every request goes to, the leader as far as the mount knows; mc_pick holds cur's
 * connection for one attempt and mc_drop releases it and moves cur when the attempt says so.
 *
 * Invariants (under m->mu): 0 <= cur < npeer; a peer's conn is freed only when its refs are 0
 * (so no thread between mc_pick and mc_drop ever sees its connection freed), and only at
 * mc_close or when a learned peer's slot is reused; epoch grows by one per move of cur, and
 * mc_drop moves cur only if epoch is still the one its mc_pick saw, so when many threads see
 * the same failure at once cur moves once, not once per thread. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "log.h"
#include "net.h"

/* One "host:port" of at most CAIRN_ADDR_MAX bytes: 0 or -EINVAL with the reason in why. */
static int addr_check(const char *a, size_t len, char *why, size_t whylen)
{
    char tmp[CAIRN_ADDR_MAX + 1], host[CAIRN_ADDR_MAX + 1];
    uint16_t port;
    if (len == 0) {
        snprintf(why, whylen, "empty address");
        return -EINVAL;
    }
    if (len > CAIRN_ADDR_MAX) {
        snprintf(why, whylen, "address '%.*s...' longer than %d bytes", 20, a, CAIRN_ADDR_MAX);
        return -EINVAL;
    }
    memcpy(tmp, a, len);
    tmp[len] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)tmp[i];
        if (!isalnum(ch) && !strchr(".-_:%", ch)) {
            snprintf(why, whylen, "'%s': bad character in a host:port address", tmp);
            return -EINVAL;
        }
    }
    if (net_parse_addr(tmp, host, sizeof(host), &port) || host[0] == '\0' || port == 0) {
        snprintf(why, whylen, "'%s' is not host:port (port 1-65535)", tmp);
        return -EINVAL;
    }
    return 0;
}

int mc_addrs_parse(const char *list, char (*out)[CAIRN_ADDR_MAX + 1], int max, char *why,
                   size_t whylen)
{
    if (!list || !*list) {
        snprintf(why, whylen, "no address");
        return -EINVAL;
    }
    int n = 0;
    for (const char *s = list;;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (n == max) {
            snprintf(why, whylen, "more than %d addresses", max);
            return -EINVAL;
        }
        if (addr_check(s, len, why, whylen)) return -EINVAL;
        memcpy(out[n], s, len);
        out[n][len] = '\0';
        for (int i = 0; i < n; i++) {
            if (strcmp(out[i], out[n]) == 0) {
                snprintf(why, whylen, "'%s' is listed twice", out[n]);
                return -EINVAL;
            }
        }
        n++;
        if (!e) break;
        s = e + 1;
    }
    return n;
}

int mc_peers_init(struct mc *m, const char *list)
{
    char addrs[MC_REPLICAS_MAX][CAIRN_ADDR_MAX + 1], why[160];
    int n = mc_addrs_parse(list, addrs, MC_REPLICAS_MAX, why, sizeof(why));
    if (n < 0) return n;
    memset(m->peer, 0, sizeof(m->peer));
    for (int i = 0; i < n; i++)
        memcpy(m->peer[i].addr, addrs[i], sizeof(addrs[i]));
    m->npeer = n;
    m->cur = 0;
    m->leader = -1;
    m->epoch = 0;
    return 0;
}

void mc_peers_free(struct mc *m)
{
    for (int i = 0; i < m->npeer; i++) {
        assert(m->peer[i].refs == 0);
        rpc_conn_free(m->peer[i].conn);
        m->peer[i].conn = NULL;
    }
    m->npeer = 0;
}

void mc_current(struct mc *m, char *out)
{
    pthread_mutex_lock(&m->mu);
    memcpy(out, m->peer[m->cur].addr, CAIRN_ADDR_MAX + 1);
    pthread_mutex_unlock(&m->mu);
}

int mc_pick(struct mc *m, struct mc_pick *p)
{
    pthread_mutex_lock(&m->mu);
    assert(m->cur >= 0 && m->cur < m->npeer);
    struct mc_peer *pe = &m->peer[m->cur];
    if (!pe->conn) pe->conn = rpc_conn_new(pe->addr, &m->ropts); /* does not connect yet */
    int rc = pe->conn ? 0 : -ENOMEM;
    if (!rc) {
        pe->refs++;
        p->idx = m->cur;
        p->epoch = m->epoch;
        p->conn = pe->conn;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* The peer with address a, added (as learned) when it is new: a free slot, else the slot of a
 * learned peer nobody uses (its connection goes to *evicted, freed by the caller). -1 when
 * the table is full of peers in use. mu held. */
static int peer_learn(struct mc *m, const char *a, struct rpc_conn **evicted)
{
    for (int i = 0; i < m->npeer; i++)
        if (strcmp(m->peer[i].addr, a) == 0) return i;
    int i = -1;
    if (m->npeer < MC_PEERS_MAX) {
        i = m->npeer++;
    } else {
        for (int j = 0; j < m->npeer && i < 0; j++)
            if (m->peer[j].learned && m->peer[j].refs == 0 && j != m->cur && j != m->leader) i = j;
        if (i < 0) return -1;
        *evicted = m->peer[i].conn;
    }
    memset(&m->peer[i], 0, sizeof(m->peer[i]));
    snprintf(m->peer[i].addr, sizeof(m->peer[i].addr), "%s", a);
    m->peer[i].learned = 1;
    return i;
}

/* Make peer i the one requests go to. mu held. */
static void move_to(struct mc *m, int i)
{
    m->cur = i;
    m->epoch++;
}

enum mc_verdict mc_drop(struct mc *m, const struct mc_pick *p, enum mc_verdict v, const char *named,
                        int err)
{
    char why[160];
    struct rpc_conn *evicted = NULL;
    char lost[CAIRN_ADDR_MAX + 1] = "", now_leader[CAIRN_ADDR_MAX + 1] = "";
    int reset = 0;
    if (v == MC_V_REDIRECT && (!named || addr_check(named, strlen(named), why, sizeof(why))))
        v = MC_V_NOLEADER;

    pthread_mutex_lock(&m->mu);
    struct mc_peer *pe = &m->peer[p->idx];
    assert(pe->refs > 0 && pe->conn == p->conn);
    int fresh = p->epoch == m->epoch; /* nobody moved cur since this attempt began */
    if (v == MC_V_REDIRECT && strcmp(named, pe->addr) == 0) v = MC_V_NOLEADER;
    switch (v) {
    case MC_V_LOCAL:
        break;
    case MC_V_ANSWERED:
        if (m->leader != p->idx) {
            m->leader = p->idx;
            memcpy(now_leader, pe->addr, sizeof(now_leader));
        }
        break;
    case MC_V_REDIRECT:
        if (fresh) {
            int i = peer_learn(m, named, &evicted);
            move_to(m, i >= 0 ? i : (p->idx + 1) % m->npeer);
        }
        break;
    case MC_V_NOLEADER:
        if (fresh) move_to(m, (p->idx + 1) % m->npeer);
        break;
    case MC_V_UNREACHABLE:
        if (fresh) {
            reset = err == -ETIMEDOUT;
            if (m->leader == p->idx) {
                m->leader = -1;
                memcpy(lost, pe->addr, sizeof(lost));
            }
            move_to(m, (p->idx + 1) % m->npeer);
        }
        break;
    }
    if (!reset) pe->refs--;
    pthread_mutex_unlock(&m->mu);

    if (reset) {
        /* No reply in time: the calls still waiting on this connection fail over now rather
         * than each at its own deadline. Outside mu: a connect in progress holds the
         * connection's lock for up to its connect timeout. Our hold keeps it alive. */
        rpc_conn_reset(p->conn);
        pthread_mutex_lock(&m->mu);
        pe->refs--;
        pthread_mutex_unlock(&m->mu);
    }
    rpc_conn_free(evicted); /* refs were 0: nobody holds it */
    if (now_leader[0]) LOG_INFO("meta", "meta leader is now %s", now_leader);
    if (lost[0]) LOG_WARN("meta", "lost the meta leader %s: %s", lost, strerror(-err));
    return v;
}
