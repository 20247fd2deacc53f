/* cs_meta.c - the chunk server's membership with cairn-meta: its stable server id (file
 * `server_id` in the first data folder), MSG_CS_REGISTER (with its zone), MSG_CS_REPORT of
 * every chunk held (in batches), MSG_CS_HEARTBEAT every heartbeat_ms (earlier when a
 * replication order finished), deletion of what meta lists and hand-over of the replication
 * orders its replies carry, delivery of queued MSG_CS_BAD_CHUNK reports, version events and
 * replication results as soon as they are queued (the thread sleeps on cs_wait), and
 * re-registration when meta restarts or forgets us, or when another meta replica becomes the
 * leader (a new leader epoch of cs_metaconn.h: its registry of chunk servers starts empty).
 * Every request goes to the leader through s->meta. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cs.h"
#include "cs_metaconn.h"
#include "log.h"
#include "net.h"

#define REPORT_BATCH 10000
#define META_CALL_MS 5000

/* One request to the meta leader with rpc_call's result: 0 (the caller owns rep->payload),
 * the leader's error status (nothing to free), or a failure to reach the leader
 * (cs_metaconn_unreached). */
static int meta_call(struct cs_state *s, uint16_t type, const struct wbuf *b, const void *p2,
                     size_t n2, struct rpc_reply *rep)
{
    if (b->err) return b->err;
    int rc = cs_metaconn_call(s->meta, type, b->data, b->len, p2, n2, META_CALL_MS, rep);
    if (!rc && rep->status < 0) {
        rc = rep->status;
        rpc_reply_free(rep);
    }
    return rc;
}

int cs_meta_server_id(const char *dir, uint64_t *id)
{
    char path[600], buf[64];
    snprintf(path, sizeof(path), "%s/server_id", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        if (ok && sscanf(buf, "%" SCNx64, id) == 1 && *id) return 0;
    }
    do {
        if (getrandom(id, sizeof(*id), 0) != sizeof(*id)) return -EIO;
    } while (*id == 0);
    char tmp[620];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) return -errno;
    fprintf(f, "%016" PRIx64 "\n", *id);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return -EIO;
    }
    fclose(f);
    if (rename(tmp, path) != 0) return -errno;
    return 0;
}

void cs_meta_report_bad(struct cs_state *s, uint64_t id, uint32_t ver, uint32_t block)
{
    pthread_mutex_lock(&s->lock);
    int dup = 0;
    for (int i = 0; i < s->nbad; i++)
        if (s->badq[i].id == id && s->badq[i].ver == ver) dup = 1;
    if (!dup && s->nbad < CS_BADQ) {
        s->badq[s->nbad].id = id;
        s->badq[s->nbad].ver = ver;
        s->badq[s->nbad++].block = block;
    }
    pthread_mutex_unlock(&s->lock);
    cs_kick(s, 0);
}

/* Apply a REPORT or HEARTBEAT reply: delete every {id, version} listed, then queue the
 * replication orders that may follow (u32 r, r x {u64 id, u32 ver, u8 nsrc, nsrc x str}).
 * A malformed tail is logged and ignored from there on. */
static void apply_reply(struct cs_state *s, const struct wbuf *p)
{
    struct rcur r;
    rcur_init(&r, p->data, p->len);
    uint32_t m = rcur_u32(&r);
    if (r.err || (uint64_t)m * 12 > r.left) return;
    for (uint32_t i = 0; i < m; i++) {
        uint64_t id = rcur_u64(&r);
        uint32_t ver = rcur_u32(&r);
        if (r.err) return;
        int rc = cstore_delete(&s->store, id, ver);
        LOG_INFO("meta", "chunk %016" PRIx64 " v%u deleted at meta's request: %s", id, ver,
                 rc ? strerror(-rc) : "ok");
    }
    if (r.left == 0) return; /* no orders (or a meta that sends none) */
    uint32_t n = rcur_u32(&r);
    if (r.err || (uint64_t)n * 13 > r.left) goto bad;
    for (uint32_t i = 0; i < n; i++) {
        char src[CAIRN_MAX_LOCS][CAIRN_ADDR_MAX + 1];
        uint64_t id = rcur_u64(&r);
        uint32_t ver = rcur_u32(&r);
        uint8_t nsrc = rcur_u8(&r);
        int kept = 0;
        for (int k = 0; k < nsrc; k++) {
            char a[CAIRN_ADDR_MAX + 1];
            if (rcur_str(&r, a, CAIRN_ADDR_MAX) < 0) goto bad;
            if (kept < CAIRN_MAX_LOCS && a[0]) memcpy(src[kept++], a, sizeof(a));
        }
        if (r.err) goto bad;
        if (ver == 0 || kept == 0) {
            LOG_WARN("meta",
                     "chunk %016" PRIx64 ": replication order without version or "
                     "source ignored",
                     id);
            continue;
        }
        cs_repl_order(s, id, ver, kept, src);
    }
    if (rcur_done(&r) == 0) return;
bad:
    LOG_WARN("meta", "malformed replication orders in a reply from meta: ignored");
}

struct report_ctx {
    struct cs_state *s;
    struct wbuf b;
    uint32_t n;
    int sent; /* batches sent */
    int rc;
};

/* Send the batch (an empty one only when force: meta learns we hold nothing). */
static int report_flush(struct report_ctx *x, int force)
{
    if (!x->n && !force) return 0;
    struct wbuf hdr;
    wbuf_init(&hdr);
    wbuf_put_u64(&hdr, x->s->server_id);
    wbuf_put_u32(&hdr, x->n);
    struct rpc_reply rep;
    int rc = x->b.err ? x->b.err : meta_call(x->s, MSG_CS_REPORT, &hdr, x->b.data, x->b.len, &rep);
    wbuf_free(&hdr);
    if (!rc) {
        apply_reply(x->s, &rep.payload);
        rpc_reply_free(&rep);
    }
    wbuf_reset(&x->b);
    x->n = 0;
    x->sent++;
    return rc;
}

static int report_one(void *arg, uint64_t id, uint32_t ver)
{
    struct report_ctx *x = arg;
    wbuf_put_u64(&x->b, id);
    wbuf_put_u32(&x->b, ver);
    if (++x->n == REPORT_BATCH) x->rc = report_flush(x, 0);
    return x->rc || x->s->stop;
}

/* Report every chunk held. The queued version events are dropped first: the scan covers
 * them, and events queued during the scan stay queued. */
static int meta_report(struct cs_state *s)
{
    cs_events_clear(s);
    struct report_ctx x = {.s = s};
    wbuf_init(&x.b);
    cstore_foreach(&s->store, report_one, &x);
    int rc = x.rc ? x.rc : report_flush(&x, x.n > 0 || !x.sent);
    wbuf_free(&x.b);
    return rc;
}

/* Queue again the bad blocks already reported whose copy is still held at that version (a
 * meta that registers us afresh knows nothing of them); forget the others. */
static void meta_requeue_bad(struct cs_state *s)
{
    int kept = 0;
    for (int i = 0; i < s->nbadsent; i++) {
        struct cs_bad e = s->badsent[i];
        uint32_t held = 0, len;
        if (cstore_info(&s->store, e.id, &held, &len) != 0 || held != e.ver) continue;
        s->badsent[kept++] = e;
        cs_meta_report_bad(s, e.id, e.ver, e.block);
    }
    s->nbadsent = kept;
}

/* Remember a delivered bad-block report (the oldest is forgotten when full). */
static void meta_bad_sent(struct cs_state *s, const struct cs_bad *e)
{
    for (int i = 0; i < s->nbadsent; i++)
        if (s->badsent[i].id == e->id && s->badsent[i].ver == e->ver) return;
    if (s->nbadsent == CS_BADQ) memmove(&s->badsent[0], &s->badsent[1], sizeof(*e) * --s->nbadsent);
    s->badsent[s->nbadsent++] = *e;
}

/* Register with the meta leader and report every chunk. *epoch gets the leader epoch of the
 * REGISTER's answer: a report answered by another leader leaves the epoch newer than it. */
static int meta_register(struct cs_state *s, uint64_t *epoch)
{
    uint64_t cap, avail;
    cstore_space(&s->store, &cap, &avail);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, s->server_id);
    wbuf_put_str(&b, s->advertise, strlen(s->advertise));
    wbuf_put_u64(&b, cap);
    wbuf_put_u64(&b, avail);
    wbuf_put_str(&b, s->cfg.zone, strlen(s->cfg.zone));
    struct rpc_reply rep;
    int rc = meta_call(s, MSG_CS_REGISTER, &b, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    *epoch = cs_metaconn_epoch(s->meta);
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    uint64_t csz = rcur_u64(&r);
    rpc_reply_free(&rep);
    if (r.err) return -EBADMSG;
    if (csz != s->store.chunk_size && cstore_set_chunk_size(&s->store, csz) != 0) {
        LOG_ERR("meta", "meta's chunk size %" PRIu64 " is not usable", csz);
        return -EINVAL;
    }
    char leader[CAIRN_ADDR_MAX + 1];
    cs_metaconn_leader(s->meta, leader, sizeof(leader));
    LOG_INFO("meta", "registered with meta %s as %016" PRIx64 " (chunk size %" PRIu64 ")", leader,
             s->server_id, csz);
    rc = meta_report(s);
    if (!rc) meta_requeue_bad(s);
    return rc;
}

static int meta_heartbeat(struct cs_state *s)
{
    uint64_t cap, avail;
    cstore_space(&s->store, &cap, &avail);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, s->server_id);
    wbuf_put_u64(&b, cap);
    wbuf_put_u64(&b, avail);
    wbuf_put_u32(&b, __atomic_load_n(&s->load, __ATOMIC_RELAXED));
    /* request counters, for cairn top, the status page and the meta's metrics */
    const struct cs_stats *st = &s->stats;
    wbuf_put_u64(&b, __atomic_load_n(&st->req[CS_T_READ], __ATOMIC_RELAXED));
    wbuf_put_u64(&b, __atomic_load_n(&st->bytes[CS_T_READ], __ATOMIC_RELAXED));
    wbuf_put_u64(&b, __atomic_load_n(&st->req[CS_T_WRITE], __ATOMIC_RELAXED));
    wbuf_put_u64(&b, __atomic_load_n(&st->bytes[CS_T_WRITE], __ATOMIC_RELAXED));
    struct rpc_reply rep;
    int rc = meta_call(s, MSG_CS_HEARTBEAT, &b, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    apply_reply(s, &rep.payload);
    rpc_reply_free(&rep);
    return 0;
}

/* Deliver the queued bad-block reports in order. One that did not reach the leader, or that a
 * leader which does not know this server yet refused (-ENOENT: it registers us first), stays
 * queued with those behind it for the next round. */
static void meta_send_bad(struct cs_state *s)
{
    for (int k = 0; k < CS_BADQ; k++) {
        struct cs_bad e;
        pthread_mutex_lock(&s->lock);
        int have = s->nbad > 0;
        if (have) e = s->badq[0];
        pthread_mutex_unlock(&s->lock);
        if (!have) return;
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, s->server_id);
        wbuf_put_u64(&b, e.id);
        wbuf_put_u32(&b, e.ver);
        wbuf_put_u32(&b, e.block);
        struct rpc_reply rep;
        int rc = meta_call(s, MSG_CS_BAD_CHUNK, &b, NULL, 0, &rep);
        wbuf_free(&b);
        if (rc == 0) rpc_reply_free(&rep);
        if (cs_metaconn_unreached(rc) || rc == -ENOENT) return; /* retry later */
        LOG_INFO("meta", "reported bad chunk %016" PRIx64 " v%u block %u: %s", e.id, e.ver, e.block,
                 rc ? strerror(-rc) : "ok");
        if (rc == 0) meta_bad_sent(s, &e);
        pthread_mutex_lock(&s->lock);
        if (s->nbad > 0) {
            memmove(&s->badq[0], &s->badq[1], sizeof(s->badq[0]) * (s->nbad - 1));
            s->nbad--;
        }
        pthread_mutex_unlock(&s->lock);
    }
}

/* Sleep ms in small steps, returning early on stop. */
static void meta_sleep(struct cs_state *s, int ms)
{
    for (int t = 0; t < ms && !s->stop; t += 50)
        usleep(50000);
}

/* Deliver what is queued: bad blocks, version events (or a full report when the event queue
 * overflowed), replication results. Transport errors leave things queued for later. */
static void meta_deliver(struct cs_state *s)
{
    meta_send_bad(s);
    pthread_mutex_lock(&s->lock);
    int rereport = s->rereport;
    pthread_mutex_unlock(&s->lock);
    if (rereport) {
        LOG_WARN("meta", "too many version events queued: reporting every chunk again");
        meta_report(s);
    }
    if (cs_events_send(s) == 0) cs_repl_send_done(s);
}

static void *meta_main(void *arg)
{
    struct cs_state *s = arg;
    int registered = 0, warned = 0, lost_seen = cstore_check_dirs(&s->store);
    uint64_t next_hb = 0, reg_epoch = 0;
    char leader[CAIRN_ADDR_MAX + 1];
    while (!s->stop) {
        int rc;
        /* a data folder went out of service: the meta service must forget what it held, so
         * register again (it then drops every copy it listed here) and report what is left */
        int lost = cstore_check_dirs(&s->store);
        if (lost != lost_seen && registered) {
            LOG_WARN("meta", "a data folder was lost: registering again so that its chunks "
                             "are copied elsewhere");
            registered = 0;
        }
        lost_seen = lost;
        /* another replica leads now: its registry does not hold us yet */
        if (registered && cs_metaconn_epoch(s->meta) != reg_epoch) {
            cs_metaconn_leader(s->meta, leader, sizeof(leader));
            LOG_INFO("meta", "registering with the new meta leader %s", leader);
            registered = 0;
        }
        if (!registered) {
            rc = meta_register(s, &reg_epoch);
            if (rc) {
                if (!warned++)
                    LOG_WARN("meta", "register with meta %s: %s (retrying)", s->cfg.meta,
                             strerror(-rc));
                meta_sleep(s, 1000);
                continue;
            }
            registered = 1;
            warned = 0;
            next_hb = net_now_ms() + (uint64_t)s->cfg.heartbeat_ms;
            continue; /* the report may have met yet another leader */
        }
        meta_deliver(s);
        if (cs_metaconn_epoch(s->meta) != reg_epoch) continue;
        int early = cs_wait(s, next_hb);
        if (s->stop) break;
        if (!early && net_now_ms() < next_hb) continue; /* woken to deliver something */
        rc = meta_heartbeat(s);
        next_hb = net_now_ms() + (uint64_t)s->cfg.heartbeat_ms;
        if (rc && cs_metaconn_epoch(s->meta) == reg_epoch) {
            cs_metaconn_leader(s->meta, leader, sizeof(leader));
            LOG_WARN("meta", "heartbeat to meta %s: %s; registering again",
                     leader[0] ? leader : s->cfg.meta, strerror(-rc));
            registered = 0;
        } /* a new leader: registering again at the top of the loop */
    }
    return NULL;
}

int cs_meta_start(struct cs_state *s, pthread_t *th)
{
    int rc = pthread_create(th, NULL, meta_main, s);
    return rc ? -rc : 0;
}
