/* test_chunk_metaconn.c - the chunk server's way to the meta leader (chunk/cs_metaconn.c) and
 * the membership thread over it (chunk/cs_meta.c), against fake meta replicas on loopback
 * that lead, name a leader, or know none: the `meta` list's validation; redirection to a named
 * leader (also one outside the list); the wait and the next address when no leader is known;
 * the next address after a refused connection; the leader epoch; pipelined requests; endpoints
 * replaced under concurrent callers; and, in the membership thread, registration and the full
 * report sent again to a new leader, with bad-block reports that were delivered before, or
 * could not be delivered while no leader was known, sent to it too. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cs.h"
#include "cs_metaconn.h"
#include "net.h"
#include "unit_main.h"
#include "wire.h"

/* --- fake meta replicas -------------------------------------------------------------------- */

enum { F_LEAD = 0, F_NAME, F_NONE, F_HANG };

#define F_LOG 512

struct fake {
    int fd;
    char addr[64];
    pthread_mutex_t mu;
    int mode;      /* F_* */
    char name[64]; /* F_NAME: the leader named */
    int nreq;      /* requests answered */
    int nlog;      /* requests answered as leader: type and the chunk id they name */
    uint16_t type[F_LOG];
    uint64_t chunk[F_LOG];
    pthread_t th;
    int conn_fd[64]; /* connections being served (-1 = free slot) */
    int nconn;
};

static void fake_set(struct fake *f, int mode, const struct fake *named)
{
    pthread_mutex_lock(&f->mu);
    f->mode = mode;
    size_t l = named ? strlen(named->addr) : 0;
    memcpy(f->name, named ? named->addr : "", l); /* never f itself */
    f->name[l] = '\0';
    pthread_mutex_unlock(&f->mu);
}

/* Answer one request as the fake replica's mode says; 0 or a transport error. */
static int fake_answer(struct fake *f, int fd, const struct wire_hdr *h, const struct wbuf *in)
{
    struct wbuf out;
    wbuf_init(&out);
    struct wire_hdr r = {.type = h->type | WIRE_REPLY_BIT, .reqid = h->reqid};
    pthread_mutex_lock(&f->mu);
    f->nreq++;
    if (f->mode == F_HANG) { /* reads, never answers */
        pthread_mutex_unlock(&f->mu);
        wbuf_free(&out);
        return 0;
    }
    if (f->mode != F_LEAD) {
        r.status = -CAIRN_ENOTLEADER;
        wbuf_put_str(&out, f->mode == F_NAME ? f->name : "",
                     f->mode == F_NAME ? strlen(f->name) : 0);
    } else {
        struct rcur c;
        rcur_init(&c, in->data, in->len);
        rcur_u64(&c); /* server id */
        uint64_t chunk = 0;
        if (h->type == MSG_CS_BAD_CHUNK || h->type == MSG_CS_CHUNK_EVENT) chunk = rcur_u64(&c);
        if (h->type == MSG_CS_REPORT && rcur_u32(&c) > 0) chunk = rcur_u64(&c);
        if (f->nlog < F_LOG) {
            f->type[f->nlog] = h->type;
            f->chunk[f->nlog++] = chunk;
        }
        switch (h->type) {
        case MSG_CS_REGISTER:
            wbuf_put_u64(&out, 4u << 20);
            break;
        case MSG_CS_REPORT:
        case MSG_CS_HEARTBEAT:
            wbuf_put_u32(&out, 0);
            break;
        case MSG_CS_BAD_CHUNK:
        case MSG_CS_CHUNK_EVENT:
        case MSG_CS_REPLICATED:
            break;
        default: /* tests of the connection alone: who answered */
            wbuf_put_str(&out, f->addr, strlen(f->addr));
        }
    }
    pthread_mutex_unlock(&f->mu);
    int rc = wire_send(fd, &r, out.data, out.len, NULL, 0);
    wbuf_free(&out);
    return rc;
}

struct fake_conn {
    struct fake *f;
    int fd;
};

static void *fake_conn_main(void *arg)
{
    struct fake_conn *fc = arg;
    struct fake *f = fc->f;
    struct wbuf in;
    wbuf_init(&in);
    struct wire_hdr h;
    while (wire_recv(fc->fd, &h, &in, WIRE_MAX_PAYLOAD) == 0 &&
           fake_answer(f, fc->fd, &h, &in) == 0)
        ;
    wbuf_free(&in);
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < 64; i++)
        if (f->conn_fd[i] == fc->fd) f->conn_fd[i] = -1;
    close(fc->fd);
    f->nconn--;
    pthread_mutex_unlock(&f->mu);
    free(fc);
    return NULL;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->fd, NULL, NULL);
        if (fd < 0) return NULL; /* the listener was shut down */
        struct fake_conn *fc = malloc(sizeof(*fc));
        ck_assert_ptr_nonnull(fc);
        fc->f = f;
        fc->fd = fd;
        pthread_mutex_lock(&f->mu);
        int slot = 0;
        while (slot < 64 && f->conn_fd[slot] >= 0)
            slot++;
        ck_assert_int_lt(slot, 64);
        f->conn_fd[slot] = fd;
        f->nconn++;
        pthread_mutex_unlock(&f->mu);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, fake_conn_main, fc), 0);
        pthread_detach(th);
    }
}

static void fake_start(struct fake *f, int mode, const struct fake *named)
{
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    for (int i = 0; i < 64; i++)
        f->conn_fd[i] = -1;
    uint16_t port;
    f->fd = net_listen("127.0.0.1:0", &port);
    ck_assert_int_ge(f->fd, 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", port);
    fake_set(f, mode, named);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

/* Stop accepting, drop every connection and wait for their threads. */
static void fake_stop(struct fake *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->th, NULL);
    close(f->fd);
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < 64; i++)
        if (f->conn_fd[i] >= 0) shutdown(f->conn_fd[i], SHUT_RDWR);
    pthread_mutex_unlock(&f->mu);
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int n = f->nconn;
        pthread_mutex_unlock(&f->mu);
        if (!n) break;
        usleep(1000);
    }
    pthread_mutex_destroy(&f->mu);
}

/* An address nothing listens on (connections are refused). */
static void dead_addr(char *out, size_t len)
{
    uint16_t port;
    int fd = net_listen("127.0.0.1:0", &port);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(out, len, "127.0.0.1:%u", port);
}

static int fake_count(struct fake *f, uint16_t type, uint64_t chunk)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->nlog; i++)
        n += f->type[i] == type && (!chunk || f->chunk[i] == chunk);
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int fake_nreq(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->nreq;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* One call; returns its result and who answered in who (the payload of a leader). */
static int call(struct cs_metaconn *m, int timeout_ms, char *who)
{
    struct rpc_reply rep;
    int rc = cs_metaconn_call(m, MSG_STATFS, "x", 1, NULL, 0, timeout_ms, &rep);
    who[0] = '\0';
    if (rc) return rc;
    ck_assert_int_eq(rep.status, 0);
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    ck_assert_int_gt(rcur_str(&c, who, 63), 0);
    rpc_reply_free(&rep);
    return 0;
}

static struct cs_metaconn *mc_new(const char *list)
{
    struct cs_metaconn *m = NULL;
    char err[256];
    ck_assert_int_eq(cs_metaconn_new(list, &m, err, sizeof(err)), 0);
    return m;
}

/* --- the connection ------------------------------------------------------------------------ */

START_TEST(test_parse_list)
{
    char a[CS_META_MAX][CAIRN_ADDR_MAX + 1], err[256];
    ck_assert_int_eq(cs_metaconn_parse("127.0.0.1:9520", a, err, sizeof(err)), 1);
    ck_assert_str_eq(a[0], "127.0.0.1:9520");
    ck_assert_int_eq(cs_metaconn_parse("m1:9520, m2:9520 ,m3:9521", a, err, sizeof(err)), 3);
    ck_assert_str_eq(a[1], "m2:9520");
    ck_assert_str_eq(a[2], "m3:9521");
    ck_assert_int_eq(cs_metaconn_parse("a:1,b:1,c:1,d:1,e:1,f:1,g:1", a, err, sizeof(err)), 7);
    ck_assert_int_eq(cs_metaconn_parse("a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1", a, err, sizeof(err)),
                     -E2BIG);
    ck_assert_ptr_nonnull(strstr(err, "more than 7"));
    ck_assert_int_eq(cs_metaconn_parse("", a, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(cs_metaconn_parse("a:1,,b:1", a, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(cs_metaconn_parse("a:1,", a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "empty address"));
    ck_assert_int_eq(cs_metaconn_parse("a:1,meta", a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'meta' is not host:port"));
    ck_assert_int_eq(cs_metaconn_parse("a:0", a, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(cs_metaconn_parse("a:70000", a, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(cs_metaconn_parse("a:1;b:2", a, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(cs_metaconn_parse("a:1,b:2,a:1", a, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "twice"));
    char longer[200];
    memset(longer, 'h', 100);
    snprintf(longer + 100, sizeof(longer) - 100, ":1");
    ck_assert_int_eq(cs_metaconn_parse(longer, a, err, sizeof(err)), -ENAMETOOLONG);
    struct cs_metaconn *m = NULL;
    ck_assert_int_eq(cs_metaconn_new("a:1,,", &m, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_redirect_to_named_leader_outside_list)
{
    struct fake a, b, c;
    fake_start(&c, F_LEAD, NULL);
    fake_start(&a, F_NAME, &c);
    fake_start(&b, F_NONE, NULL);
    char list[200], who[64];
    snprintf(list, sizeof(list), "%s,%s", a.addr, b.addr);
    struct cs_metaconn *m = mc_new(list);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 0);
    uint64_t t0 = net_now_ms();
    ck_assert_int_eq(call(m, 2000, who), 0);
    ck_assert_str_eq(who, c.addr);
    ck_assert_uint_lt(net_now_ms() - t0, CS_META_ELECTION_MS); /* a named leader: no pause */
    ck_assert_uint_eq(cs_metaconn_epoch(m), 1);
    char leader[64];
    cs_metaconn_leader(m, leader, sizeof(leader));
    ck_assert_str_eq(leader, c.addr);
    /* the next call goes straight to the leader */
    int na = fake_nreq(&a);
    ck_assert_int_eq(call(m, 2000, who), 0);
    ck_assert_str_eq(who, c.addr);
    ck_assert_int_eq(fake_nreq(&a), na);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 1);
    cs_metaconn_free(m);
    fake_stop(&a);
    fake_stop(&b);
    fake_stop(&c);
}
END_TEST

START_TEST(test_no_leader_known_waits_then_next)
{
    struct fake a, b;
    fake_start(&a, F_NONE, NULL);
    fake_start(&b, F_LEAD, NULL);
    char list[200], who[64];
    snprintf(list, sizeof(list), "%s,%s", a.addr, b.addr);
    struct cs_metaconn *m = mc_new(list);
    uint64_t t0 = net_now_ms();
    ck_assert_int_eq(call(m, 2000, who), 0);
    uint64_t took = net_now_ms() - t0;
    ck_assert_str_eq(who, b.addr);
    ck_assert_uint_ge(took, CS_META_ELECTION_MS);
    ck_assert_uint_lt(took, 1000);
    /* nobody leads: the call gives up at its deadline with an "unreached" error */
    fake_set(&b, F_NONE, NULL);
    t0 = net_now_ms();
    int rc = call(m, 400, who);
    ck_assert_int_eq(rc, -ETIMEDOUT);
    ck_assert(cs_metaconn_unreached(rc));
    ck_assert_uint_lt(net_now_ms() - t0, 1000);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 1);
    cs_metaconn_free(m);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

START_TEST(test_refused_tries_next)
{
    struct fake b;
    fake_start(&b, F_LEAD, NULL);
    char dead[64], list[200], who[64];
    dead_addr(dead, sizeof(dead));
    snprintf(list, sizeof(list), "%s,%s", dead, b.addr);
    struct cs_metaconn *m = mc_new(list);
    uint64_t t0 = net_now_ms();
    ck_assert_int_eq(call(m, 3000, who), 0);
    ck_assert_str_eq(who, b.addr);
    ck_assert_uint_lt(net_now_ms() - t0, 1000);
    /* the leader dies: nobody answers, the last transport error comes back */
    char only[64];
    dead_addr(only, sizeof(only));
    struct cs_metaconn *m2 = mc_new(only);
    int rc = call(m2, 300, who);
    ck_assert(rc == -ECONNREFUSED || rc == -ETIMEDOUT);
    ck_assert(cs_metaconn_unreached(rc));
    ck_assert_uint_eq(cs_metaconn_epoch(m2), 0);
    cs_metaconn_free(m2);
    cs_metaconn_free(m);
    fake_stop(&b);
}
END_TEST

START_TEST(test_hung_replica_left_for_next)
{
    struct fake a, b;
    fake_start(&a, F_HANG, NULL);
    fake_start(&b, F_LEAD, NULL);
    char list[200], who[64];
    snprintf(list, sizeof(list), "%s,%s", a.addr, b.addr);
    struct cs_metaconn *m = mc_new(list);
    uint64_t t0 = net_now_ms();
    ck_assert_int_eq(call(m, 5000, who), 0);
    uint64_t took = net_now_ms() - t0;
    ck_assert_str_eq(who, b.addr);
    ck_assert_uint_ge(took, CS_META_ATTEMPT_MS);
    ck_assert_uint_lt(took, CS_META_ATTEMPT_MS + 1000);
    cs_metaconn_free(m);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

START_TEST(test_leader_change_new_epoch)
{
    struct fake a, b;
    fake_start(&a, F_LEAD, NULL);
    fake_start(&b, F_NAME, &a);
    char list[200], who[64];
    snprintf(list, sizeof(list), "%s,%s", a.addr, b.addr);
    struct cs_metaconn *m = mc_new(list);
    ck_assert_int_eq(call(m, 2000, who), 0);
    ck_assert_str_eq(who, a.addr);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 1);
    fake_set(&a, F_NAME, &b);
    fake_set(&b, F_LEAD, NULL);
    ck_assert_int_eq(call(m, 2000, who), 0);
    ck_assert_str_eq(who, b.addr);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 2);
    ck_assert_int_eq(call(m, 2000, who), 0);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 2);
    /* and back: a new epoch again */
    fake_set(&b, F_NAME, &a);
    fake_set(&a, F_LEAD, NULL);
    ck_assert_int_eq(call(m, 2000, who), 0);
    ck_assert_str_eq(who, a.addr);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 3);
    cs_metaconn_free(m);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

START_TEST(test_pipelined_requests)
{
    struct fake a, b;
    fake_start(&a, F_NAME, NULL);
    fake_start(&b, F_LEAD, NULL);
    fake_set(&a, F_NAME, &b);
    char list[200];
    snprintf(list, sizeof(list), "%s,%s", a.addr, b.addr);
    struct cs_metaconn *m = mc_new(list);
    struct cs_metaconn_req r[4];
    struct rpc_reply rep;
    uint64_t deadline = net_now_ms() + 2000;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(cs_metaconn_submit(m, MSG_STATFS, "x", 1, NULL, 0, deadline, &r[i]), 0);
    for (int i = 0; i < 4; i++) /* sent once each: the replica that does not lead refuses */
        ck_assert_int_eq(cs_metaconn_wait(m, &r[i], deadline, &rep), -CAIRN_ENOTLEADER);
    ck_assert_uint_eq(cs_metaconn_epoch(m), 0);
    /* ... and the next ones go to the leader it named */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(cs_metaconn_submit(m, MSG_STATFS, "x", 1, NULL, 0, deadline, &r[i]), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(cs_metaconn_wait(m, &r[i], deadline, &rep), 0);
        ck_assert_int_eq(rep.status, 0);
        rpc_reply_free(&rep);
    }
    ck_assert_uint_eq(cs_metaconn_epoch(m), 1);
    cs_metaconn_free(m);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

/* More learnt leaders than the table holds, from several threads at once: endpoints are
 * replaced while other calls hold them (run under ASan by check-san). */
#define CHAIN 20
static struct fake chain[CHAIN];
static struct cs_metaconn *shared;

static void *chain_caller(void *arg)
{
    (void)arg;
    char who[64];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(call(shared, 10000, who), 0);
        ck_assert_str_eq(who, chain[CHAIN - 1].addr);
    }
    return NULL;
}

START_TEST(test_learnt_endpoints_replaced_under_callers)
{
    fake_start(&chain[CHAIN - 1], F_LEAD, NULL);
    for (int i = CHAIN - 2; i >= 0; i--)
        fake_start(&chain[i], F_NAME, &chain[i + 1]);
    shared = mc_new(chain[0].addr);
    for (int round = 0; round < 2; round++) {
        pthread_t th[4];
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, chain_caller, NULL), 0);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        /* walk the whole chain again: the leader moves back to the start of it */
        fake_set(&chain[CHAIN - 1], F_NAME, &chain[0]);
        char who[64];
        ck_assert_int_eq(call(shared, 100, who), -ETIMEDOUT);
        fake_set(&chain[CHAIN - 1], F_LEAD, NULL);
    }
    ck_assert_uint_eq(cs_metaconn_epoch(shared), 1);
    cs_metaconn_free(shared);
    for (int i = 0; i < CHAIN; i++)
        fake_stop(&chain[i]);
}
END_TEST

/* Callers while the leader flips between two replicas every few milliseconds: every call is
 * answered by a leader within its deadline. */
static struct fake flip[2];
static volatile int flip_done; /* the flipping is over */

static void *flip_caller(void *arg)
{
    (void)arg;
    char who[64];
    /* at least 100 calls, and calls for as long as the leader flips (fast calls could all be
     * over before the first flip) */
    for (int i = 0; i < 100 || (!__atomic_load_n(&flip_done, __ATOMIC_ACQUIRE) && i < 100000); i++)
        ck_assert_int_eq(call(shared, 5000, who), 0);
    return NULL;
}

START_TEST(test_calls_while_leader_flips)
{
    fake_start(&flip[0], F_LEAD, NULL);
    fake_start(&flip[1], F_NAME, &flip[0]);
    char list[200];
    snprintf(list, sizeof(list), "%s,%s", flip[0].addr, flip[1].addr);
    shared = mc_new(list);
    pthread_t th[4];
    __atomic_store_n(&flip_done, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, flip_caller, NULL), 0);
    for (int k = 0; k < 40; k++) {
        int to = (k + 1) % 2;
        fake_set(&flip[1 - to], k % 3 ? F_NAME : F_NONE, &flip[to]);
        fake_set(&flip[to], F_LEAD, NULL);
        usleep(5000);
    }
    __atomic_store_n(&flip_done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_uint_ge(cs_metaconn_epoch(shared), 2);
    cs_metaconn_free(shared);
    fake_stop(&flip[0]);
    fake_stop(&flip[1]);
}
END_TEST

/* --- the membership thread ----------------------------------------------------------------- */

static struct cs_state st;
static char dir[256];

static void ms_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-cmeta-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *d[] = {dir};
    memset(&st, 0, sizeof(st));
    ck_assert_int_eq(cstore_open(&st.store, d, 1, 4u << 20), 0);
    pthread_mutex_init(&st.lock, NULL);
    ck_assert_int_eq(cs_events_init(&st), 0);
    st.server_id = 0x5e4e4;
    snprintf(st.advertise, sizeof(st.advertise), "127.0.0.1:1");
    st.cfg.heartbeat_ms = 100;
}

static void ms_teardown(void)
{
    cstore_close(&st.store);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
    }
}

/* Wait up to ms for fake f to have answered n requests of type (naming chunk, 0 = any). */
static int wait_count(struct fake *f, uint16_t type, uint64_t chunk, int n, int ms)
{
    uint64_t end = net_now_ms() + (uint64_t)ms;
    while (fake_count(f, type, chunk) < n) {
        if (net_now_ms() > end) return 0;
        usleep(10000);
    }
    return 1;
}

START_TEST(test_new_leader_gets_register_report_and_bad_blocks)
{
    uint32_t len;
    ck_assert_int_eq(cstore_write(&st.store, 0xc1, 1, 0, 0, "abc", 3, 0, &len), 0);
    ck_assert_int_eq(cstore_write(&st.store, 0xc2, 1, 0, 0, "def", 3, 0, &len), 0);
    struct fake a, b;
    fake_start(&a, F_LEAD, NULL);
    fake_start(&b, F_NAME, &a);
    char list[200];
    snprintf(list, sizeof(list), "%s,%s", b.addr, a.addr);
    snprintf(st.cfg.meta, sizeof(st.cfg.meta), "%s", list);
    st.meta = mc_new(list);
    pthread_t th;
    ck_assert_int_eq(cs_meta_start(&st, &th), 0);
    ck_assert(wait_count(&a, MSG_CS_REGISTER, 0, 1, 3000));
    ck_assert(wait_count(&a, MSG_CS_REPORT, 0, 1, 3000));
    ck_assert(wait_count(&a, MSG_CS_HEARTBEAT, 0, 1, 3000));
    cs_meta_report_bad(&st, 0xc1, 1, 0);
    ck_assert(wait_count(&a, MSG_CS_BAD_CHUNK, 0xc1, 1, 3000));

    /* b leads now: registration, the full report and the bad block all reach it quickly */
    uint64_t t0 = net_now_ms();
    fake_set(&a, F_NAME, &b);
    fake_set(&b, F_LEAD, NULL);
    ck_assert(wait_count(&b, MSG_CS_REGISTER, 0, 1, 2000));
    ck_assert(wait_count(&b, MSG_CS_REPORT, 0, 1, 2000));
    ck_assert(wait_count(&b, MSG_CS_BAD_CHUNK, 0xc1, 1, 2000));
    ck_assert_uint_lt(net_now_ms() - t0, 2000);
    ck_assert_int_eq(fake_count(&a, MSG_CS_REGISTER, 0), 1);

    /* an election: nobody leads; a bad block found meanwhile is kept, not lost */
    fake_set(&a, F_NONE, NULL);
    fake_set(&b, F_NONE, NULL);
    usleep(300000);
    cs_meta_report_bad(&st, 0xc2, 1, 0);
    ck_assert_int_eq(cstore_write(&st.store, 0xc3, 1, 0, 0, "ghi", 3, 0, &len), 0);
    usleep(500000);
    fake_set(&a, F_LEAD, NULL);
    fake_set(&b, F_NAME, &a);
    ck_assert(wait_count(&a, MSG_CS_REGISTER, 0, 2, 8000));
    ck_assert(wait_count(&a, MSG_CS_REPORT, 0, 2, 2000));
    ck_assert(wait_count(&a, MSG_CS_BAD_CHUNK, 0xc2, 1, 3000));
    ck_assert(wait_count(&a, MSG_CS_BAD_CHUNK, 0xc1, 2, 3000)); /* the earlier one again */
    pthread_mutex_lock(&st.lock);
    st.stop = 1;
    pthread_mutex_unlock(&st.lock);
    pthread_join(th, NULL);
    cs_metaconn_free(st.meta);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk_metaconn");
    TCase *t = tcase_create("metaconn");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_parse_list);
    tcase_add_test(t, test_redirect_to_named_leader_outside_list);
    tcase_add_test(t, test_no_leader_known_waits_then_next);
    tcase_add_test(t, test_refused_tries_next);
    tcase_add_test(t, test_hung_replica_left_for_next);
    tcase_add_test(t, test_leader_change_new_epoch);
    tcase_add_test(t, test_pipelined_requests);
    tcase_add_test(t, test_learnt_endpoints_replaced_under_callers);
    tcase_add_test(t, test_calls_while_leader_flips);
    suite_add_tcase(s, t);
    TCase *ms = tcase_create("membership");
    tcase_set_timeout(ms, 60);
    tcase_add_checked_fixture(ms, ms_setup, ms_teardown);
    tcase_add_test(ms, test_new_leader_gets_register_report_and_bad_blocks);
    suite_add_tcase(s, ms);
    return unit_run(s);
}
