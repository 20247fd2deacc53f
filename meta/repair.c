/* repair.c - keeping every chunk at its number of copies (see repair.h).
 *
 * Every REP_TICK_MS the scanner looks at the next slice of the chunk map (in chunk id order,
 * wrapping around), classifies each chunk against the registry (csr_classify), counts it,
 * drops copies nobody needs (stale copies once a valid one exists, bad or draining copies and
 * surplus copies once the chunk has its copies without them) and queues chunks short of
 * copies. Then orders go out, fewest copies left first: the chunk's version is bumped by a
 * record (its valid copies form the new chain), the record is made durable, and the
 * destination gets {chunk, new version, sources} in its next heartbeat reply; it moves the
 * sources to the new version, copies, verifies and installs (CS_REPLICATED). Orders are
 * limited per server and by a byte rate. With no repair pending the balancer moves chunks
 * from the fullest server to the emptiest until their usage is within balance_pct. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "meta.h"
#include "net.h"

#define REP_TICK_MS 200
#define REP_SCAN_SLICE 4096u   /* chunks looked at per tick */
#define REP_PASS_REST_MS 1000u /* rest between whole passes (none after a rescan request) */
#define REP_DEADLINE_MS 60000u
#define REP_TRIES_PER_TICK 256 /* queued chunks looked at per tick for an order */
#define REP_MOVES_MAX 4        /* balance moves in flight */

static int start_order(struct meta *m, const struct mstore_chunk *ck, const struct csr_view *v,
                       int dest, int move);
static int busy_servers(struct meta *m, uint64_t *out);

uint32_t repair_goal(struct meta *m, uint64_t ino)
{
    struct repair *rp = &m->rep;
    if (rp->cache_ino == ino && ino) return rp->cache_copies;
    struct cairn_attr a;
    uint32_t goal = mstore_getattr(m->store, ino, &a) == 0 ? a.copies : 0;
    rp->cache_ino = ino;
    rp->cache_copies = goal;
    return goal;
}

static int queue_push(struct rep_queue *q, uint64_t id)
{
    if (q->n == q->cap) {
        uint32_t nc = q->cap ? q->cap * 2 : 256;
        uint64_t *n = realloc(q->ids, nc * sizeof(*n));
        if (!n) return -ENOMEM;
        q->ids = n;
        q->cap = nc;
    }
    q->ids[q->n++] = id;
    return 0;
}

static void enqueue(struct meta *m, struct csr_entry *e, int left)
{
    if (!e || (e->flags & (CSR_E_QUEUED | CSR_E_INFLIGHT))) return;
    if (left < 0) left = 0;
    if (left > 8) left = 8;
    if (queue_push(&m->rep.q[left], e->key) == 0) e->flags |= CSR_E_QUEUED;
}

/* The copy to drop among the candidates (states in `which`): on the fullest server, unless
 * that would leave its zone without a copy while another zone has two. */
static int pick_surplus(struct meta *m, const struct csr_view *v, int which_state)
{
    int best = -1;
    double best_score = -1;
    for (int k = 0; k < v->n; k++) {
        if (v->c[k].state != which_state) continue;
        const struct csr_server *s = &m->reg.srv[v->c[k].slot];
        int same_zone = 0;
        for (int j = 0; j < v->n; j++)
            if (j != k && (v->c[j].state == COPY_VALID || v->c[j].state == COPY_DRAINING) &&
                s->zone[0] && strcmp(m->reg.srv[v->c[j].slot].zone, s->zone) == 0)
                same_zone = 1;
        double score = csr_usage(s) + (same_zone ? 10.0 : 0.0);
        if (score > best_score) {
            best_score = score;
            best = k;
        }
    }
    return best;
}

/* Classify one chunk, count it into c (may be NULL), tidy its copies and queue it when short.
 * ck->copies is the file's goal when the scan filled it in. */
static void check_chunk(struct meta *m, const struct mstore_chunk *ck, struct rep_counts *c)
{
    uint32_t goal = ck->copies ? ck->copies : repair_goal(m, ck->ino);
    if (goal == 0) return;
    struct csr_view v;
    csr_classify(&m->reg, ck, &v);
    int usable = v.valid + v.draining;
    if (c) {
        c->chunks++;
        if (usable == 0)
            c->missing++;
        else if ((uint32_t)usable < goal)
            c->under++;
        else if ((uint32_t)v.valid > goal)
            c->over++;
        else
            c->full++;
        c->stale += (uint64_t)v.stale;
        c->bad += (uint64_t)v.bad;
    }
    struct csr_entry *e = csr_entry(&m->reg, ck->id);
    if (!e || (e->flags & CSR_E_INFLIGHT)) return;
    /* right after a write lease the chain members' version events are still arriving: one
     * that lags looks stale for a moment; touch nothing until they are in */
    if (e->leased_s && net_now_ms() / 1000 < (uint64_t)e->leased_s + CSR_SETTLE_S) return;
    /* copies that missed a write: useless once a valid copy exists (kept while none does) */
    if (usable > 0)
        for (int k = 0; k < v.n; k++)
            if (v.c[k].state == COPY_STALE &&
                !(v.c[k].flags & (CSR_H_NOCOPY | CSR_H_UNCONFIRMED)) &&
                m->reg.srv[v.c[k].slot].alive) {
                LOG_INFO("repair", "chunk %016" PRIx64 ": dropping stale v%u on %s", ck->id,
                         v.c[k].version, m->reg.srv[v.c[k].slot].addr);
                csr_drop_copy(&m->reg, ck->id, v.c[k].slot, v.c[k].version);
            }
    if ((uint32_t)v.valid >= goal) {
        /* the chunk has its copies without the bad and draining ones: drop those */
        for (int k = 0; k < v.n; k++) {
            int st = v.c[k].state;
            if ((st != COPY_BAD && st != COPY_DRAINING) || !m->reg.srv[v.c[k].slot].alive) continue;
            LOG_INFO("repair", "chunk %016" PRIx64 ": dropping %s copy on %s", ck->id,
                     st == COPY_BAD ? "bad" : "draining", m->reg.srv[v.c[k].slot].addr);
            if (st == COPY_BAD)
                m->rep.bad_repaired++;
            else
                m->rep.moves_done++;
            csr_drop_copy(&m->reg, ck->id, v.c[k].slot, v.c[k].version);
        }
        /* copies crowded in one zone while a zone without one has room: move one there (the
         * surplus copy then goes from the crowded zone) */
        csr_classify(&m->reg, ck, &v); /* without the copies just dropped */
        if ((uint32_t)v.valid == goal && goal > 1) {
            int slots[CSR_HOLD_MAX], n = 0, crowded = 0;
            for (int k = 0; k < v.n; k++)
                if (v.c[k].state == COPY_VALID) {
                    crowded |= csr_zone_has(&m->reg, m->reg.srv[v.c[k].slot].zone, slots, n);
                    slots[n++] = v.c[k].slot;
                }
            uint64_t busy[CSR_MAX];
            int nbusy = busy_servers(m, busy), dest;
            if (!crowded || !csr_zone_free_exists(&m->reg, 0, slots, n)) return;
            if (m->rep.in_scan) { /* records cannot be written inside the scan */
                if (m->rep.nzone_fix < 16) m->rep.zone_fix[m->rep.nzone_fix++] = ck->id;
                return;
            }
            if (csr_place(&m->reg, 1, 0, busy, nbusy, slots, n, &dest) == 1 &&
                !csr_zone_has(&m->reg, m->reg.srv[dest].zone, slots, n))
                start_order(m, ck, &v, dest, 1);
            return;
        }
        /* surplus valid copies (copies lowered, or a balance move finished) */
        for (uint32_t extra = (uint32_t)v.valid - goal; extra > 0; extra--) {
            csr_classify(&m->reg, ck, &v);
            int k = pick_surplus(m, &v, COPY_VALID);
            if (k < 0) break;
            LOG_INFO("repair", "chunk %016" PRIx64 ": dropping surplus copy on %s", ck->id,
                     m->reg.srv[v.c[k].slot].addr);
            csr_drop_copy(&m->reg, ck->id, v.c[k].slot, v.c[k].version);
        }
        return;
    }
    if (usable > 0) enqueue(m, e, usable);
}

static int scan_one(void *arg, const struct mstore_chunk *ck)
{
    struct meta *m = arg;
    check_chunk(m, ck, &m->rep.pass);
    return 0;
}

void repair_rescan(struct meta *m)
{
    m->rep.rescan = 1;
    m->rep.scan_next = 0;
    memset(&m->rep.pass, 0, sizeof(m->rep.pass));
}

void repair_check_chunk(struct meta *m, uint64_t chunk_id)
{
    struct mstore_chunk ck;
    if (mstore_chunk_by_id(m->store, chunk_id, &ck) == 0) check_chunk(m, &ck, NULL);
}

static void scan_slice(struct meta *m)
{
    struct repair *rp = &m->rep;
    uint64_t now = net_now_ms();
    /* between passes the scanner rests, unless something asked for a rescan */
    if (rp->scan_next == 0 && !rp->rescan && now < rp->pass_end_ms + REP_PASS_REST_MS) return;
    rp->rescan = 0;
    uint64_t next = 0;
    rp->cache_ino = 0;
    rp->in_scan = 1;
    rp->nzone_fix = 0;
    int rc = mstore_chunk_scan(m->store, rp->scan_next, REP_SCAN_SLICE, scan_one, m, &next);
    rp->in_scan = 0;
    for (int i = 0; i < rp->nzone_fix; i++)
        repair_check_chunk(m, rp->zone_fix[i]);
    if (rc) {
        LOG_WARN("repair", "chunk scan: %s", strerror(-rc));
        return;
    }
    rp->scan_next = next;
    if (next == 0) { /* a whole pass done */
        rp->last = rp->pass;
        rp->have_last = 1;
        rp->pass_end_ms = now;
        memset(&rp->pass, 0, sizeof(rp->pass));
    }
}

/* --- orders ------------------------------------------------------------------------------- */

static void refill_tokens(struct meta *m, uint64_t now)
{
    struct repair *rp = &m->rep;
    double rate = (double)m->cfg.repair_rate * 1048576.0;
    if (rp->tokens_ms == 0) rp->tokens_ms = now;
    rp->tokens += rate * (double)(now - rp->tokens_ms) / 1000.0;
    if (rp->tokens > rate) rp->tokens = rate; /* at most one second's worth saved up */
    rp->tokens_ms = now;
}

/* Bump the chunk's version (its usable copies become the chain) and send dest an order.
 * Returns 0 when the order is out. */
static int start_order(struct meta *m, const struct mstore_chunk *ck, const struct csr_view *v,
                       int dest, int move)
{
    struct csr_server *d = &m->reg.srv[dest];
    if (d->norders >= CSR_ORDERS_MAX || m->rep.nfl >= REP_FLIGHT_MAX) return -EAGAIN;
    struct mop op = {.type = MOP_CHUNK_LEASE, .ino = ck->ino, .index = ck->index};
    uint8_t src[CAIRN_MAX_CHAIN];
    int nsrc = 0;
    for (int k = 0; k < v->n; k++) {
        /* only copies a server has reported: a place listed at lease time may hold nothing */
        if (v->c[k].flags & (CSR_H_NOCOPY | CSR_H_UNCONFIRMED)) continue;
        if (v->c[k].version == ck->version) op.flags |= MOP_LEASE_CUR_KNOWN;
        if ((v->c[k].state == COPY_VALID || v->c[k].state == COPY_DRAINING) &&
            nsrc < CAIRN_MAX_CHAIN) {
            src[nsrc] = v->c[k].slot;
            op.chain[nsrc++] = m->reg.srv[v->c[k].slot].id;
        }
    }
    if (nsrc == 0) return -ENOENT;
    op.nchain = (uint8_t)nsrc;
    struct mop_result res = {0};
    int rc = meta_apply(m, &op, &res);
    if (rc) {
        LOG_WARN("repair", "chunk %016" PRIx64 ": version bump failed: %s", ck->id, strerror(-rc));
        return rc;
    }
    uint32_t nv = res.chunk.version;
    struct csr_order *o = &d->orders[d->norders++];
    o->batch = m->batch_no; /* no server hears of the new version before it is committed */
    o->chunk_id = ck->id;
    o->version = nv;
    o->nsrc = (uint8_t)nsrc;
    memcpy(o->src, src, (size_t)nsrc);
    struct csr_entry *e = csr_entry(&m->reg, ck->id);
    int had = e && csr_entry_holder(e, dest) >= 0;
    uint32_t had_ver = had ? e->h[csr_entry_holder(e, dest)].version : 0;
    csr_holder_set(&m->reg, ck->id, dest, had_ver, CSR_H_PENDING | (had ? 0 : CSR_H_NOCOPY), 0);
    e = csr_entry(&m->reg, ck->id);
    if (e) e->flags |= CSR_E_INFLIGHT;
    uint64_t bytes = ck->alloc ? ck->alloc : mstore_chunk_size(m->store);
    struct rep_flight *f = &m->rep.fl[m->rep.nfl++];
    memset(f, 0, sizeof(*f));
    f->chunk_id = ck->id;
    f->version = nv;
    f->dest = dest;
    f->nsrc = (uint8_t)nsrc;
    memcpy(f->src, src, (size_t)nsrc);
    f->move = move;
    f->bytes = bytes;
    f->deadline_ms = net_now_ms() + REP_DEADLINE_MS;
    d->inflight++;
    for (int i = 0; i < nsrc; i++)
        m->reg.srv[src[i]].src_inflight++;
    if (m->cfg.repair_rate > 0) m->rep.tokens -= (double)bytes;
    LOG_INFO("repair", "chunk %016" PRIx64 " v%u: %s to %s from %s (%d usable of %u)", ck->id, nv,
             move ? "moving a copy" : "copying", d->addr, m->reg.srv[src[0]].addr,
             v->valid + v->draining, repair_goal(m, ck->ino));
    return 0;
}

/* Servers that may take no more orders now (ids in out). */
static int busy_servers(struct meta *m, uint64_t *out)
{
    int n = 0;
    for (int s = 0; s < CSR_MAX; s++) {
        struct csr_server *sv = &m->reg.srv[s];
        if (!sv->id) continue;
        if (sv->inflight >= m->cfg.repair_per_server || sv->norders >= CSR_ORDERS_MAX)
            out[n++] = sv->id;
    }
    return n;
}

/* Try to order a copy of one queued chunk. 1: order out or nothing to do (dequeue),
 * 0: not now (keep it queued). */
static int try_repair(struct meta *m, uint64_t id)
{
    struct csr_entry *e = csr_entry(&m->reg, id);
    if (!e || (e->flags & CSR_E_INFLIGHT)) return 1;
    /* a writer is busy with it: copying now would only make it take a new lease */
    if (e->leased_s && net_now_ms() / 1000 < (uint64_t)e->leased_s + CSR_SETTLE_S) return 0;
    struct mstore_chunk ck;
    if (mstore_chunk_by_id(m->store, id, &ck)) return 1;
    uint32_t goal = repair_goal(m, ck.ino);
    struct csr_view v;
    csr_classify(&m->reg, &ck, &v);
    if (goal == 0 || (uint32_t)v.valid >= goal || v.valid + v.draining == 0) return 1;
    int have[CSR_HOLD_MAX], nhave = 0;
    for (int k = 0; k < v.n; k++)
        if (v.c[k].state == COPY_VALID || v.c[k].state == COPY_DRAINING ||
            v.c[k].state == COPY_DOWN || (v.c[k].flags & CSR_H_PENDING))
            have[nhave++] = v.c[k].slot;
    uint64_t busy[CSR_MAX];
    int nbusy = busy_servers(m, busy);
    int dest;
    uint64_t need = ck.alloc ? ck.alloc : mstore_chunk_size(m->store) / 16;
    if (csr_place(&m->reg, 1, need, busy, nbusy, have, nhave, &dest) != 1) return 0;
    /* a zone without a copy whose servers are all busy: wait for them rather than put a
     * second copy in a zone that has one */
    if (csr_zone_has(&m->reg, m->reg.srv[dest].zone, have, nhave) &&
        csr_zone_free_exists(&m->reg, need, have, nhave))
        return 0;
    return start_order(m, &ck, &v, dest, 0) != -EAGAIN;
}

static void dispatch(struct meta *m)
{
    struct repair *rp = &m->rep;
    /* a bounded number of tries per tick: with no destination anywhere (fewer live servers
     * than copies) the whole queue would otherwise be looked at again every tick; what was
     * tried and stays queued goes to the back, so every chunk gets its turn */
    int budget = REP_TRIES_PER_TICK;
    for (int p = 0; p <= 8 && budget > 0; p++) {
        struct rep_queue *q = &rp->q[p];
        uint32_t n = q->n, keep = 0, nlater = 0, i = 0;
        if (n == 0) continue;
        uint64_t *later = malloc(n * sizeof(*later));
        if (!later) return;
        for (; i < n && budget > 0; i++) {
            uint64_t id = q->ids[i];
            if (rp->nfl >= REP_FLIGHT_MAX || (m->cfg.repair_rate > 0 && rp->tokens <= 0)) break;
            budget--;
            if (try_repair(m, id)) {
                struct csr_entry *e = csr_entry(&m->reg, id);
                if (e) e->flags &= (uint8_t)~CSR_E_QUEUED;
                continue;
            }
            later[nlater++] = id;
        }
        for (; i < n; i++) /* not tried this tick: stay in front */
            q->ids[keep++] = q->ids[i];
        if (nlater) memcpy(q->ids + keep, later, nlater * sizeof(*later));
        q->n = keep + nlater;
        free(later);
    }
}

/* --- balance ------------------------------------------------------------------------------ */

static void balance(struct meta *m)
{
    struct repair *rp = &m->rep;
    int moves = 0;
    for (int i = 0; i < rp->nfl; i++)
        moves += rp->fl[i].move;
    if (moves >= REP_MOVES_MAX || repair_backlog(m) > (uint64_t)moves) return;
    if (m->cfg.repair_rate > 0 && rp->tokens <= 0) return;
    int hi = -1, lo = -1;
    for (int s = 0; s < CSR_MAX; s++) {
        struct csr_server *sv = &m->reg.srv[s];
        if (!sv->id || !sv->alive || sv->draining || !sv->capacity) continue;
        if (hi < 0 || csr_usage(sv) > csr_usage(&m->reg.srv[hi])) hi = s;
        if (lo < 0 || csr_usage(sv) < csr_usage(&m->reg.srv[lo])) lo = s;
    }
    if (hi < 0 || lo < 0 || hi == lo) return;
    double spread = (csr_usage(&m->reg.srv[hi]) - csr_usage(&m->reg.srv[lo])) * 100.0;
    if (spread <= (double)m->cfg.balance_pct) return;
    if (m->reg.srv[lo].inflight >= m->cfg.repair_per_server) return;
    /* a chunk with a valid copy on hi and none on lo */
    struct csr_locs *l = &m->reg.locs;
    for (uint64_t step = 0; step < l->cap && step < 65536; step++) {
        uint64_t i = (rp->balance_cursor + step) & (l->cap - 1);
        struct csr_entry *e = &l->e[i];
        if (!e->key || (e->flags & (CSR_E_INFLIGHT | CSR_E_QUEUED))) continue;
        if (csr_entry_holder(e, hi) < 0 || csr_entry_holder(e, lo) >= 0) continue;
        struct mstore_chunk ck;
        if (mstore_chunk_by_id(m->store, e->key, &ck)) continue;
        struct csr_view v;
        csr_classify(&m->reg, &ck, &v);
        int on_hi = 0;
        for (int k = 0; k < v.n; k++)
            on_hi |= v.c[k].slot == hi && v.c[k].state == COPY_VALID;
        if (!on_hi || (uint32_t)v.valid != repair_goal(m, ck.ino)) continue;
        /* zones: moving must not put two copies in one zone when the source's zone had one */
        const char *zlo = m->reg.srv[lo].zone, *zhi = m->reg.srv[hi].zone;
        if (zlo[0] && strcmp(zlo, zhi) != 0) {
            int clash = 0;
            for (int k = 0; k < v.n; k++)
                clash |=
                    v.c[k].state == COPY_VALID && strcmp(m->reg.srv[v.c[k].slot].zone, zlo) == 0;
            if (clash) continue;
        }
        rp->balance_cursor = i + 1;
        start_order(m, &ck, &v, lo, 1);
        return;
    }
    rp->balance_cursor = 0;
}

/* --- results and the tick ------------------------------------------------------------------ */

static void flight_end(struct meta *m, int i, int ok)
{
    struct repair *rp = &m->rep;
    struct rep_flight *f = &rp->fl[i];
    struct csr_entry *e = csr_entry(&m->reg, f->chunk_id);
    if (e) {
        e->flags &= (uint8_t)~CSR_E_INFLIGHT;
        int k = csr_entry_holder(e, f->dest);
        if (k >= 0 && !ok) {
            if (e->h[k].flags & CSR_H_NOCOPY)
                csr_holder_del(&m->reg, f->chunk_id, f->dest);
            else
                e->h[k].flags &= (uint8_t)~CSR_H_PENDING;
        }
        csr_entry_gc(&m->reg, f->chunk_id);
    }
    struct csr_server *d = &m->reg.srv[f->dest];
    for (int o = 0; o < d->norders; o++) /* not sent yet: it is not wanted any more */
        if (d->orders[o].chunk_id == f->chunk_id && d->orders[o].version == f->version) {
            d->orders[o] = d->orders[--d->norders];
            break;
        }
    if (d->inflight) d->inflight--;
    for (int s = 0; s < f->nsrc; s++)
        if (m->reg.srv[f->src[s]].src_inflight) m->reg.srv[f->src[s]].src_inflight--;
    uint64_t id = f->chunk_id;
    rp->fl[i] = rp->fl[--rp->nfl];
    repair_check_chunk(m, id);
}

void repair_done(struct meta *m, int slot, uint64_t chunk_id, uint32_t version, int status,
                 uint64_t bytes)
{
    struct repair *rp = &m->rep;
    int i;
    for (i = 0; i < rp->nfl; i++)
        if (rp->fl[i].chunk_id == chunk_id && rp->fl[i].dest == slot &&
            rp->fl[i].version == version)
            break;
    if (status == 0) {
        csr_holder_set(&m->reg, chunk_id, slot, version, 0,
                       CSR_H_PENDING | CSR_H_NOCOPY | CSR_H_BAD | CSR_H_UNCONFIRMED);
        rp->done++;
        rp->bytes += bytes;
        rp->rate_bucket[(net_now_ms() / 1000) % 10] += bytes;
        if (i < rp->nfl && rp->fl[i].move) rp->moves_done++;
    } else {
        LOG_WARN("repair", "chunk %016" PRIx64 " v%u: copy to %s failed: %s", chunk_id, version,
                 m->reg.srv[slot].addr, strerror(-status));
    }
    if (i < rp->nfl) flight_end(m, i, status == 0);
}

uint64_t repair_rate_now(const struct meta *m)
{
    uint64_t sum = 0;
    for (int i = 0; i < 10; i++)
        sum += m->rep.rate_bucket[i];
    return sum / 10;
}

uint64_t repair_backlog(const struct meta *m)
{
    uint64_t n = (uint64_t)m->rep.nfl;
    for (int p = 0; p <= 8; p++)
        n += m->rep.q[p].n;
    return n;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    repair_tick(arg);
}

void repair_tick(struct meta *m)
{
    m->tick_pending = 0;
    struct repair *rp = &m->rep;
    /* only the leader repairs; what the scanner reads must include every record applied so
     * far (a chunk freed or created in the open group commit): with a batch open the tick
     * runs as soon as it is committed */
    if (!meta_ready(m)) return;
    if (mstore_batch_active(m->store)) {
        m->tick_pending = 1;
        return;
    }
    uint64_t now = net_now_ms();
    /* the rate window: clear the buckets of seconds that passed */
    uint64_t sec = now / 1000;
    for (uint64_t s = rp->rate_sec + 1; s <= sec && s <= rp->rate_sec + 10; s++)
        rp->rate_bucket[s % 10] = 0;
    rp->rate_sec = sec;
    /* orders whose destination died or that took too long count as failed */
    for (int i = rp->nfl - 1; i >= 0; i--) {
        struct rep_flight *f = &rp->fl[i];
        if (now < f->deadline_ms && m->reg.srv[f->dest].alive) continue;
        LOG_WARN("repair", "chunk %016" PRIx64 ": copy to %s abandoned (%s)", f->chunk_id,
                 m->reg.srv[f->dest].addr, m->reg.srv[f->dest].alive ? "timed out" : "server down");
        flight_end(m, i, 0);
    }
    refill_tokens(m, now);
    scan_slice(m);
    dispatch(m);
    balance(m);
}

int repair_start(struct meta *m)
{
    struct timeval tv = {0, REP_TICK_MS * 1000};
    m->rep.tick_ev = event_new(m->base, -1, EV_PERSIST, on_tick, m);
    if (!m->rep.tick_ev || event_add(m->rep.tick_ev, &tv)) return -ENOMEM;
    return 0;
}

void repair_stop(struct meta *m)
{
    if (m->rep.tick_ev) event_free(m->rep.tick_ev);
    m->rep.tick_ev = NULL;
    for (int p = 0; p <= 8; p++)
        free(m->rep.q[p].ids);
    memset(&m->rep, 0, sizeof(m->rep));
}
