/* cs_registry.c - the chunk servers a meta service knows and where each chunk lives.
 *
 * This is soft state, never written to LMDB (as in GFS): servers tell it at registration what
 * they hold and keep it alive with heartbeats; after a restart the meta service relearns it.
 * Locations are a bit mask of server slots per chunk id in an open-addressing table, 16 bytes
 * a chunk. Deletions for a server wait in its queue until its next heartbeat reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meta.h"

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
    l->keys = calloc(cap, sizeof(*l->keys));
    l->masks = calloc(cap, sizeof(*l->masks));
    if (!l->keys || !l->masks) {
        free(l->keys);
        free(l->masks);
        l->keys = l->masks = NULL;
        return -ENOMEM;
    }
    l->cap = cap;
    l->count = 0;
    return 0;
}

/* Slot index of key, or of the empty slot where it would go. */
static uint64_t locs_find(const struct csr_locs *l, uint64_t key)
{
    uint64_t i = mix64(key) & (l->cap - 1);
    while (l->keys[i] && l->keys[i] != key)
        i = (i + 1) & (l->cap - 1);
    return i;
}

static int locs_grow(struct csr_locs *l)
{
    struct csr_locs n;
    int rc = locs_alloc(&n, l->cap * 2);
    if (rc) return rc;
    for (uint64_t i = 0; i < l->cap; i++) {
        if (!l->keys[i]) continue;
        uint64_t j = locs_find(&n, l->keys[i]);
        n.keys[j] = l->keys[i];
        n.masks[j] = l->masks[i];
        n.count++;
    }
    free(l->keys);
    free(l->masks);
    *l = n;
    return 0;
}

/* Remove slot i, moving later entries of its probe run back (no tombstones). */
static void locs_remove_at(struct csr_locs *l, uint64_t i)
{
    uint64_t mask = l->cap - 1;
    l->keys[i] = 0;
    l->masks[i] = 0;
    l->count--;
    for (uint64_t j = (i + 1) & mask; l->keys[j]; j = (j + 1) & mask) {
        uint64_t k = l->keys[j], m = l->masks[j];
        l->keys[j] = 0;
        l->masks[j] = 0;
        uint64_t h = locs_find(l, k);
        l->keys[h] = k;
        l->masks[h] = m;
    }
}

int csr_init(struct cs_registry *r, int timeout_ms)
{
    memset(r, 0, sizeof(*r));
    r->timeout_ms = timeout_ms;
    return locs_alloc(&r->locs, LOCS_MIN_CAP);
}

void csr_free(struct cs_registry *r)
{
    for (int i = 0; i < CSR_MAX; i++) {
        free(r->srv[i].del_id);
        free(r->srv[i].del_ver);
    }
    free(r->locs.keys);
    free(r->locs.masks);
    memset(r, 0, sizeof(*r));
}

int csr_slot(const struct cs_registry *r, uint64_t id)
{
    if (id == 0) return -ENOENT;
    for (int i = 0; i < CSR_MAX; i++)
        if (r->srv[i].id == id) return i;
    return -ENOENT;
}

int csr_register(struct cs_registry *r, uint64_t id, const char *addr, uint64_t cap,
                 uint64_t free_bytes, uint64_t now_ms)
{
    if (id == 0) return -EINVAL;
    int slot = csr_slot(r, id);
    if (slot < 0) {
        for (int i = 0; i < CSR_MAX && slot < 0; i++)
            if (r->srv[i].id == 0) slot = i;
        if (slot < 0) return -ENOSPC;
    }
    struct csr_server *s = &r->srv[slot];
    s->id = id;
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
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

int csr_loc_add(struct cs_registry *r, uint64_t chunk_id, int slot)
{
    if (chunk_id == 0 || slot < 0 || slot >= CSR_MAX) return -EINVAL;
    if ((r->locs.count + 1) * 4 > r->locs.cap * 3) {
        int rc = locs_grow(&r->locs);
        if (rc) return rc;
    }
    uint64_t i = locs_find(&r->locs, chunk_id);
    if (!r->locs.keys[i]) {
        r->locs.keys[i] = chunk_id;
        r->locs.count++;
    }
    r->locs.masks[i] |= 1ull << slot;
    return 0;
}

void csr_loc_del(struct cs_registry *r, uint64_t chunk_id, int slot)
{
    if (chunk_id == 0 || slot < 0 || slot >= CSR_MAX) return;
    uint64_t i = locs_find(&r->locs, chunk_id);
    if (!r->locs.keys[i]) return;
    r->locs.masks[i] &= ~(1ull << slot);
    if (!r->locs.masks[i]) locs_remove_at(&r->locs, i);
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

void csr_chunk_freed(struct cs_registry *r, uint64_t chunk_id, uint32_t version)
{
    uint64_t i = locs_find(&r->locs, chunk_id);
    if (!r->locs.keys[i]) return;
    uint64_t mask = r->locs.masks[i];
    locs_remove_at(&r->locs, i);
    for (int s = 0; s < CSR_MAX; s++)
        if (mask & (1ull << s)) csr_queue_delete(r, s, chunk_id, version);
}

void csr_fill_locs(const struct cs_registry *r, struct chunk_info *ci)
{
    ci->nloc = 0;
    uint64_t i = locs_find(&r->locs, ci->chunk_id);
    if (!r->locs.keys[i]) return;
    uint64_t mask = r->locs.masks[i];
    for (int s = 0; s < CSR_MAX && ci->nloc < CAIRN_MAX_LOCS; s++) {
        if (!(mask & (1ull << s)) || !r->srv[s].alive) continue;
        struct chunk_loc *l = &ci->loc[ci->nloc++];
        l->server_id = r->srv[s].id;
        snprintf(l->addr, sizeof(l->addr), "%s", r->srv[s].addr);
    }
}

int csr_place(struct cs_registry *r, int n, uint64_t need_bytes, int *out)
{
    int got = 0;
    for (int k = 0; k < CSR_MAX && got < n; k++) {
        int s = (int)((r->rr + (uint32_t)k) % CSR_MAX);
        if (!r->srv[s].id || !r->srv[s].alive || r->srv[s].free < need_bytes) continue;
        out[got++] = s;
    }
    r->rr = (r->rr + 1) % CSR_MAX;
    /* advance past empty slots so consecutive chunks land on different servers */
    for (int k = 0; k < CSR_MAX && !(r->srv[r->rr].id && r->srv[r->rr].alive); k++)
        r->rr = (r->rr + 1) % CSR_MAX;
    return got;
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
