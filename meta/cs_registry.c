/* cs_registry.c - the chunk servers a meta service knows and which copies each one holds.
 *
 * This is soft state, never written to LMDB (as in GFS): servers tell it at registration what
 * they hold (chunk id and version), report every version change, and keep themselves alive
 * with heartbeats; after a restart the meta service relearns it. Per chunk id an entry of an
 * open-addressing table lists its holders (server slot, version held, flags). Whether a copy
 * is valid is decided against the chunk's record in LMDB (csr_classify). Deletions and
 * replication orders for a server wait in its queues until its next heartbeat reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meta.h"
#include "net.h"

#define LOCS_MIN_CAP 1024u
#define DEL_QUEUE_MAX (1u << 20)

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static int locs_alloc(struct csr_locs *l, uint64_t cap)
{
    l->e = calloc(cap, sizeof(*l->e));
    if (!l->e) return -ENOMEM;
    l->cap = cap;
    l->count = 0;
    return 0;
}

/* Slot index of key, or of the empty slot where it would go. */
static uint64_t locs_find(const struct csr_locs *l, uint64_t key)
{
    uint64_t i = mix64(key) & (l->cap - 1);
    while (l->e[i].key && l->e[i].key != key)
        i = (i + 1) & (l->cap - 1);
    return i;
}

static int locs_grow(struct csr_locs *l)
{
    struct csr_locs n;
    int rc = locs_alloc(&n, l->cap * 2);
    if (rc) return rc;
    for (uint64_t i = 0; i < l->cap; i++) {
        if (!l->e[i].key) continue;
        n.e[locs_find(&n, l->e[i].key)] = l->e[i];
        n.count++;
    }
    free(l->e);
    *l = n;
    return 0;
}

/* Remove slot i, moving later entries of its probe run back (no tombstones). */
static void locs_remove_at(struct csr_locs *l, uint64_t i)
{
    uint64_t mask = l->cap - 1;
    memset(&l->e[i], 0, sizeof(l->e[i]));
    l->count--;
    for (uint64_t j = (i + 1) & mask; l->e[j].key; j = (j + 1) & mask) {
        struct csr_entry moved = l->e[j];
        memset(&l->e[j], 0, sizeof(l->e[j]));
        l->e[locs_find(l, moved.key)] = moved;
    }
}

int csr_init(struct cs_registry *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    r->timeout_ms = timeout_ms;
    r->rng = 0x9e3779b97f4a7c15ull;
    return locs_alloc(&r->locs, LOCS_MIN_CAP);
}

void csr_free(struct cs_registry *r)
{
    for (int i = 0; i < CSR_MAX; i++) {
        free(r->srv[i].del_id);
        free(r->srv[i].del_ver);
    }
    free(r->locs.e);
    memset(r, 0, sizeof(*r));
}

int csr_slot(const struct cs_registry *r, uint64_t id)
{
    if (id == 0) return -ENOENT;
    for (int i = 0; i < CSR_MAX; i++)
        if (r->srv[i].id == id) return i;
    return -ENOENT;
}

/* Forget every copy slot was said to hold (it is about to report them all again). */
static void drop_slot_holders(struct cs_registry *r, int slot)
{
    for (uint64_t i = 0; i < r->locs.cap;) {
        struct csr_entry *e = &r->locs.e[i];
        int k = e->key ? csr_entry_holder(e, slot) : -1;
        if (k < 0) {
            i++;
            continue;
        }
        e->h[k] = e->h[--e->n];
        if (e->n == 0) {
            locs_remove_at(&r->locs, i); /* an entry may have moved into i: look again */
            continue;
        }
        i++;
    }
    r->srv[slot].nchunks = 0;
}

int csr_register(struct cs_registry *r, uint64_t id, const char *addr, const char *zone,
                 uint64_t cap, uint64_t free_bytes, uint64_t now_ms)
{
    if (id == 0) return -EINVAL;
    int slot = csr_slot(r, id);
    if (slot < 0) {
        for (int i = 0; i < CSR_MAX && slot < 0; i++)
            if (r->srv[i].id == 0) slot = i;
        if (slot < 0) return -ENOSPC;
    } else {
        /* what it holds is learnt again from its report; queued deletions and orders were
         * decided on what it held before, so they go */
        drop_slot_holders(r, slot);
        r->srv[slot].ndel = 0;
        r->srv[slot].norders = 0;
    }
    struct csr_server *s = &r->srv[slot];
    s->id = id;
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->zone, sizeof(s->zone), "%s", zone ? zone : "");
    s->capacity = cap;
    s->free = free_bytes;
    s->last_seen_ms = now_ms;
    s->alive = 1;
    return slot;
}

void csr_heartbeat(struct cs_registry *r, int slot, uint64_t cap, uint64_t free_bytes,
                   uint32_t load, uint64_t now_ms)
{
    struct csr_server *s = &r->srv[slot];
    s->capacity = cap;
    s->free = free_bytes;
    s->load = load;
    s->placed = 0;
    s->last_seen_ms = now_ms;
    if (!s->alive)
        LOG_INFO("cs", "chunk server %016llx at %s is back", (unsigned long long)s->id, s->addr);
    s->alive = 1;
}

int csr_expire(struct cs_registry *r, uint64_t now_ms)
{
    int n = 0;
    for (int i = 0; i < CSR_MAX; i++) {
        struct csr_server *s = &r->srv[i];
        if (!s->id || !s->alive || now_ms < s->last_seen_ms + (uint64_t)r->timeout_ms) continue;
        s->alive = 0;
        n++;
        LOG_WARN("cs", "chunk server %016llx at %s: no heartbeat for %d ms, marked dead",
                 (unsigned long long)s->id, s->addr, r->timeout_ms);
    }
    return n;
}

int csr_entry_holder(const struct csr_entry *e, int slot)
{
    for (int k = 0; k < e->n; k++)
        if (e->h[k].slot == slot) return k;
    return -1;
}

struct csr_entry *csr_entry(struct cs_registry *r, uint64_t chunk_id)
{
    if (chunk_id == 0) return NULL;
    uint64_t i = locs_find(&r->locs, chunk_id);
    return r->locs.e[i].key ? &r->locs.e[i] : NULL;
}

int csr_holder_set(struct cs_registry *r, uint64_t chunk_id, int slot, uint32_t version,
                   uint8_t flags_set, uint8_t flags_clear)
{
    if (chunk_id == 0 || slot < 0 || slot >= CSR_MAX) return -EINVAL;
    if ((r->locs.count + 1) * 4 > r->locs.cap * 3) {
        int rc = locs_grow(&r->locs);
        if (rc) return rc;
    }
    uint64_t i = locs_find(&r->locs, chunk_id);
    struct csr_entry *e = &r->locs.e[i];
    if (!e->key) {
        e->key = chunk_id;
        r->locs.count++;
    }
    int k = csr_entry_holder(e, slot);
    if (k < 0) {
        if (e->n == CSR_HOLD_MAX) return -ENOSPC;
        k = e->n++;
        e->h[k].slot = (uint8_t)slot;
        e->h[k].flags = 0;
        r->srv[slot].nchunks++;
    }
    e->h[k].version = version;
    e->h[k].flags = (uint8_t)((e->h[k].flags | flags_set) & ~flags_clear);
    return 0;
}

void csr_holder_del(struct cs_registry *r, uint64_t chunk_id, int slot)
{
    if (chunk_id == 0 || slot < 0 || slot >= CSR_MAX) return;
    uint64_t i = locs_find(&r->locs, chunk_id);
    struct csr_entry *e = &r->locs.e[i];
    if (!e->key) return;
    int k = csr_entry_holder(e, slot);
    if (k < 0) return;
    e->h[k] = e->h[--e->n];
    if (r->srv[slot].nchunks) r->srv[slot].nchunks--;
    if (e->n == 0 && !(e->flags & CSR_E_INFLIGHT)) locs_remove_at(&r->locs, i);
}

void csr_entry_gc(struct cs_registry *r, uint64_t chunk_id)
{
    if (chunk_id == 0) return;
    uint64_t i = locs_find(&r->locs, chunk_id);
    struct csr_entry *e = &r->locs.e[i];
    if (e->key && e->n == 0 && !(e->flags & CSR_E_INFLIGHT)) locs_remove_at(&r->locs, i);
}

int csr_queue_delete(struct cs_registry *r, int slot, uint64_t chunk_id, uint32_t version)
{
    struct csr_server *s = &r->srv[slot];
    if (s->ndel == s->cap_del) {
        if (s->cap_del >= DEL_QUEUE_MAX) return -ENOSPC; /* resent: it reports the chunk again */
        uint32_t nc = s->cap_del ? s->cap_del * 2 : 256;
        uint64_t *ni = realloc(s->del_id, nc * sizeof(*ni));
        if (!ni) return -ENOMEM;
        s->del_id = ni;
        uint32_t *nv = realloc(s->del_ver, nc * sizeof(*nv));
        if (!nv) return -ENOMEM;
        s->del_ver = nv;
        s->cap_del = nc;
    }
    s->del_id[s->ndel] = chunk_id;
    s->del_ver[s->ndel] = version;
    s->ndel++;
    return 0;
}

void csr_drop_copy(struct cs_registry *r, uint64_t chunk_id, int slot, uint32_t version)
{
    /* version 0 would delete whatever the server holds: only ever name the copy meant */
    if (version) csr_queue_delete(r, slot, chunk_id, version);
    csr_holder_del(r, chunk_id, slot);
}

void csr_chunk_freed(struct cs_registry *r, uint64_t chunk_id, uint32_t version)
{
    uint64_t i = locs_find(&r->locs, chunk_id);
    struct csr_entry *e = &r->locs.e[i];
    if (!e->key) return;
    for (int k = 0; k < e->n; k++) {
        if (r->srv[e->h[k].slot].nchunks) r->srv[e->h[k].slot].nchunks--;
        csr_queue_delete(r, e->h[k].slot, chunk_id, version);
    }
    locs_remove_at(&r->locs, i);
}

static int in_chain(const struct mstore_chunk *ck, uint64_t server_id)
{
    for (int i = 0; i < ck->nchain; i++)
        if (ck->chain[i] == server_id) return 1;
    return 0;
}

/* strict: for readers, a chain member one event behind is stale even while things settle. */
static int classify(const struct cs_registry *r, const struct mstore_chunk *ck, struct csr_view *v,
                    int strict)
{
    memset(v, 0, sizeof(*v));
    uint64_t i = locs_find(&r->locs, ck->id);
    const struct csr_entry *e = r->locs.e[i].key ? &r->locs.e[i] : NULL;
    if (!e) return 0;
    /* while an order is out (its sources move to the new version one event at a time) or a
     * lease is settling, a chain member one event behind is not taken for stale by the
     * repair scanner; a copy listed at lease time that its server never confirmed counts only
     * while the lease settles (the writer may have died before it had anything) */
    int settling = (e->flags & CSR_E_INFLIGHT) ||
                   (e->leased_s && net_now_ms() / 1000 < (uint64_t)e->leased_s + CSR_SETTLE_S);
    int cur_known = 0;
    for (int k = 0; (strict || !settling) && k < e->n; k++)
        if (!(e->h[k].flags & (CSR_H_NOCOPY | CSR_H_UNCONFIRMED)) && e->h[k].version == ck->version)
            cur_known = 1;
    for (int k = 0; k < e->n && v->n < CSR_HOLD_MAX; k++) {
        const struct csr_holder *h = &e->h[k];
        const struct csr_server *s = &r->srv[h->slot];
        struct csr_copy *c = &v->c[v->n++];
        c->slot = h->slot;
        c->version = h->version;
        c->flags = h->flags;
        uint32_t w = h->version;
        int valid = w == ck->version ||
                    (w >= ck->prev && w < ck->version && !cur_known && in_chain(ck, s->id));
        if (h->flags & CSR_H_NOCOPY)
            c->state = (h->flags & CSR_H_PENDING) ? COPY_PENDING : COPY_STALE;
        else if ((h->flags & CSR_H_UNCONFIRMED) && !settling)
            c->state = COPY_PENDING; /* never confirmed: not a copy, not served, not dropped */
        else if (h->flags & CSR_H_BAD)
            c->state = COPY_BAD;
        else if (!valid)
            c->state = COPY_STALE;
        else if (!s->alive)
            c->state = COPY_DOWN;
        else if (s->draining)
            c->state = COPY_DRAINING;
        else
            c->state = COPY_VALID;
        if (c->state == COPY_VALID) v->valid++;
        if (c->state == COPY_DRAINING) v->draining++;
        if (c->state == COPY_DOWN) v->down++;
        if (c->state == COPY_STALE && !(h->flags & (CSR_H_NOCOPY | CSR_H_UNCONFIRMED))) v->stale++;
        if (c->state == COPY_BAD) v->bad++;
        if (h->flags & CSR_H_PENDING) v->pending++;
    }
    return v->n;
}

int csr_classify(const struct cs_registry *r, const struct mstore_chunk *ck, struct csr_view *v)
{
    return classify(r, ck, v, 0);
}

void csr_fill_locs(const struct cs_registry *r, const struct mstore_chunk *ck,
                   struct chunk_info *ci)
{
    struct csr_view v;
    classify(r, ck, &v, 1);
    ci->nloc = 0;
    for (int k = 0; k < v.n && ci->nloc < CAIRN_MAX_LOCS; k++) {
        if (v.c[k].state != COPY_VALID && v.c[k].state != COPY_DRAINING) continue;
        struct chunk_loc *l = &ci->loc[ci->nloc++];
        l->server_id = r->srv[v.c[k].slot].id;
        snprintf(l->addr, sizeof(l->addr), "%s", r->srv[v.c[k].slot].addr);
    }
}

static uint64_t rng_next(struct cs_registry *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

/* Fraction of the server's disk in use, counting what was placed since its last heartbeat. */
double csr_usage(const struct csr_server *s)
{
    if (!s->capacity) return 1.0;
    uint64_t used = s->capacity > s->free ? s->capacity - s->free : 0;
    used += s->placed;
    return used >= s->capacity ? 1.0 : (double)used / (double)s->capacity;
}

static int zone_taken(const struct cs_registry *r, const char *zone, const int *have, int nhave)
{
    if (!zone[0]) return 0;
    for (int i = 0; i < nhave; i++)
        if (strcmp(r->srv[have[i]].zone, zone) == 0) return 1;
    return 0;
}

int csr_place(struct cs_registry *r, int n, uint64_t need_bytes, const uint64_t *excl, int nexcl,
              const int *have, int nhave, int *out)
{
    int taken[CSR_MAX + CAIRN_MAX_CHAIN];
    int ntaken = 0;
    for (int i = 0; i < nhave && ntaken < CSR_MAX; i++)
        taken[ntaken++] = have[i];
    int got = 0;
    while (got < n) {
        /* candidates: live, not draining, with room, not excluded or already holding it;
         * servers in a zone that has no copy yet come first */
        double weight[CSR_MAX];
        double total = 0;
        for (int pass = 0; pass < 2 && total == 0; pass++) {
            for (int s = 0; s < CSR_MAX; s++) {
                weight[s] = 0;
                const struct csr_server *sv = &r->srv[s];
                if (!sv->id || !sv->alive || sv->draining || sv->free < need_bytes) continue;
                int skip = 0;
                for (int i = 0; i < ntaken && !skip; i++)
                    skip = taken[i] == s;
                for (int i = 0; i < nexcl && !skip; i++)
                    skip = excl[i] == sv->id;
                if (skip) continue;
                if (pass == 0 && zone_taken(r, sv->zone, taken, ntaken)) continue;
                /* free space and low load attract new copies */
                double room = 1.0 - csr_usage(sv);
                if (room < 0.001) room = 0.001;
                weight[s] = room * room / (1.0 + (double)sv->load / 8.0);
                total += weight[s];
            }
        }
        if (total == 0) break;
        double pick = (double)(rng_next(r) >> 11) / (double)(1ull << 53) * total;
        int chosen = -1;
        for (int s = 0; s < CSR_MAX; s++) {
            if (weight[s] == 0) continue;
            chosen = s;
            if (pick < weight[s]) break;
            pick -= weight[s];
        }
        out[got++] = chosen;
        taken[ntaken++] = chosen;
        r->srv[chosen].placed += need_bytes;
    }
    return got;
}

int csr_zone_has(const struct cs_registry *r, const char *zone, const int *slots, int n)
{
    return zone_taken(r, zone, slots, n);
}

int csr_zone_free_exists(const struct cs_registry *r, uint64_t need_bytes, const int *have,
                         int nhave)
{
    for (int s = 0; s < CSR_MAX; s++) {
        const struct csr_server *sv = &r->srv[s];
        if (!sv->id || !sv->alive || sv->draining || sv->free < need_bytes || !sv->zone[0])
            continue;
        if (!zone_taken(r, sv->zone, have, nhave)) return 1;
    }
    return 0;
}

int csr_live_count(const struct cs_registry *r)
{
    int n = 0;
    for (int s = 0; s < CSR_MAX; s++)
        n += r->srv[s].id && r->srv[s].alive;
    return n;
}

void csr_space(const struct cs_registry *r, uint64_t *total, uint64_t *free_bytes)
{
    *total = *free_bytes = 0;
    for (int s = 0; s < CSR_MAX; s++) {
        if (!r->srv[s].id || !r->srv[s].alive) continue;
        *total += r->srv[s].capacity;
        *free_bytes += r->srv[s].free;
    }
}

uint32_t csr_count(const struct cs_registry *r)
{
    uint32_t n = 0;
    for (int s = 0; s < CSR_MAX; s++)
        n += r->srv[s].id != 0;
    return n;
}

uint8_t csr_state(const struct csr_server *s)
{
    return !s->alive ? CS_STATE_DOWN : s->draining ? CS_STATE_DRAINING : CS_STATE_UP;
}
