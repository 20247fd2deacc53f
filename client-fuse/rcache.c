/* rcache.c - the client's read cache: file segments (CM_SEG_SIZE aligned pieces of a file,
 * keyed by inode and segment number) held in memory under one global byte limit, evicted
 * least recently used first.
 *
 * Invariants (all under `mu`): every entry in the hash is also on the LRU list; `bytes` is the
 * sum of the sizes of the entries on the list, a segment being loaded counting CM_SEG_SIZE;
 * only READY entries are evicted; an entry dropped while loading or while readers wait on it
 * is detached (off the hash and the list, `dead` set) and freed by whoever lets go of it last
 * (the loader in rc_end_load or the last waiter). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "cstats.h"
#include "net.h"

#define RC_BUCKETS 16384

enum { RC_LOADING, RC_READY, RC_FAILED };

struct rc_ent {
    struct rc_ent *hnext;       /* chain of h[]: by (ino, segment) */
    struct rc_ent *inext;       /* chain of ih[]: by ino, so dropping a file's segments is cheap */
    struct rc_ent *prev, *next; /* LRU, head = most recent */
    uint64_t ino, seg;
    int state;
    int dead;
    int waiters;
    uint8_t *data;
    uint32_t len;
    uint64_t charge; /* bytes counted in `bytes` */
    int prefetched;  /* loaded ahead of a reader (rc_mark_prefetch) */
    int used;        /* read at least once (counts a prefetch used, cstats.h) */
};

struct rc_cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t limit, bytes;
    struct rc_ent lru;
    struct rc_ent *h[RC_BUCKETS];
    struct rc_ent *ih[RC_BUCKETS];
};

static size_t hi(uint64_t ino)
{
    return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 40) % RC_BUCKETS;
}

static size_t hb(uint64_t ino, uint64_t seg)
{
    return (size_t)(((ino * 0x9e3779b97f4a7c15ull) ^ (seg * 0xc2b2ae3d27d4eb4full)) >> 40) %
           RC_BUCKETS;
}

struct rc_cache *rc_new(uint64_t limit_bytes)
{
    struct rc_cache *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->limit = limit_bytes;
    c->lru.next = c->lru.prev = &c->lru;
    return c;
}

void rc_free(struct rc_cache *c)
{
    if (!c) return;
    struct rc_ent *e = c->lru.next;
    while (e != &c->lru) {
        struct rc_ent *n = e->next;
        free(e->data);
        free(e);
        e = n;
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct rc_ent *find(struct rc_cache *c, uint64_t ino, uint64_t seg)
{
    for (struct rc_ent *e = c->h[hb(ino, seg)]; e; e = e->hnext)
        if (e->ino == ino && e->seg == seg) return e;
    return NULL;
}

static void lru_unlink(struct rc_ent *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->next = e->prev = e;
}

static void lru_front(struct rc_cache *c, struct rc_ent *e)
{
    e->next = c->lru.next;
    e->prev = &c->lru;
    c->lru.next->prev = e;
    c->lru.next = e;
}

/* Take e off the hash and the list and uncharge it; it becomes dead. */
static void detach(struct rc_cache *c, struct rc_ent *e)
{
    struct rc_ent **pp = &c->h[hb(e->ino, e->seg)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    pp = &c->ih[hi(e->ino)];
    while (*pp && *pp != e)
        pp = &(*pp)->inext;
    if (*pp) *pp = e->inext;
    lru_unlink(e);
    c->bytes -= e->charge;
    e->charge = 0;
    e->dead = 1;
    if (e->prefetched && !e->used && e->state == RC_READY) st_add(ST_PREFETCH_WASTED, 1);
}

static void maybe_free(struct rc_ent *e)
{
    if (e->dead && e->state != RC_LOADING && e->waiters == 0) {
        free(e->data);
        free(e);
    }
}

/* Evict READY entries from the tail until need more bytes fit. 0 or -ENOSPC. */
static int make_room(struct rc_cache *c, uint64_t need)
{
    struct rc_ent *e = c->lru.prev;
    while (c->bytes + need > c->limit && e != &c->lru) {
        struct rc_ent *p = e->prev;
        if (e->state != RC_LOADING) {
            detach(c, e);
            maybe_free(e);
        }
        e = p;
    }
    return c->bytes + need > c->limit ? -ENOSPC : 0;
}

struct rc_ent *rc_pin(struct rc_cache *c, uint64_t ino, uint64_t seg, int timeout_ms,
                      const uint8_t **data, uint32_t *len)
{
    pthread_mutex_lock(&c->mu);
    struct rc_ent *e = find(c, ino, seg);
    if (!e) {
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    e->waiters++; /* a pin holds the entry like a waiter: it is freed only after */
    if (e->state == RC_LOADING) {
        struct timespec ts;
        net_abstime_in(timeout_ms > 0 ? (uint64_t)timeout_ms : 0, &ts);
        while (e->state == RC_LOADING)
            if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) break;
    }
    struct rc_ent *pinned = NULL;
    if (e->state == RC_READY && !e->dead) {
        if (e->prefetched && !e->used) st_add(ST_PREFETCH_USED, 1);
        e->used = 1;
        lru_unlink(e);
        lru_front(c, e);
        *data = e->data;
        *len = e->len;
        pinned = e;
    } else {
        e->waiters--;
        if (e->state == RC_FAILED && !e->dead) detach(c, e);
        maybe_free(e);
    }
    pthread_mutex_unlock(&c->mu);
    return pinned;
}

void rc_unpin(struct rc_cache *c, struct rc_ent *e)
{
    pthread_mutex_lock(&c->mu);
    e->waiters--;
    maybe_free(e);
    pthread_mutex_unlock(&c->mu);
}

int rc_read(struct rc_cache *c, uint64_t ino, uint64_t seg, uint32_t off, uint32_t len,
            uint8_t *out, int timeout_ms)
{
    const uint8_t *data;
    uint32_t have;
    struct rc_ent *e = rc_pin(c, ino, seg, timeout_ms, &data, &have);
    if (!e) return -ENOENT;
    uint32_t n = off >= have ? 0 : have - off;
    if (n > len) n = len;
    if (n) memcpy(out, data + off, n); /* outside the cache's mutex */
    rc_unpin(c, e);
    return (int)n;
}

int rc_begin_load(struct rc_cache *c, uint64_t ino, uint64_t seg, struct rc_ent **out)
{
    pthread_mutex_lock(&c->mu);
    struct rc_ent *e = find(c, ino, seg);
    if (e && e->state != RC_FAILED) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    if (e) {
        detach(c, e);
        maybe_free(e);
    }
    int rc = make_room(c, CM_SEG_SIZE);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        pthread_mutex_unlock(&c->mu);
        return -ENOMEM;
    }
    e->ino = ino;
    e->seg = seg;
    e->state = RC_LOADING;
    e->charge = CM_SEG_SIZE;
    c->bytes += e->charge;
    size_t h = hb(ino, seg);
    e->hnext = c->h[h];
    c->h[h] = e;
    e->inext = c->ih[hi(ino)];
    c->ih[hi(ino)] = e;
    lru_front(c, e);
    *out = e;
    pthread_mutex_unlock(&c->mu);
    return 1;
}

void rc_end_load(struct rc_cache *c, struct rc_ent *e, uint8_t *data, uint32_t len, int rc)
{
    pthread_mutex_lock(&c->mu);
    if (rc < 0 || e->dead) {
        free(data);
        e->state = RC_FAILED;
        if (!e->dead) detach(c, e);
    } else {
        e->data = data;
        e->len = len;
        e->state = RC_READY;
        c->bytes -= e->charge;
        e->charge = len;
        c->bytes += e->charge;
    }
    pthread_cond_broadcast(&c->cv);
    maybe_free(e);
    pthread_mutex_unlock(&c->mu);
}

void rc_mark_prefetch(struct rc_cache *c, struct rc_ent *e)
{
    pthread_mutex_lock(&c->mu);
    e->prefetched = 1;
    pthread_mutex_unlock(&c->mu);
    st_add(ST_PREFETCH_SEGMENTS, 1);
}

void rc_put(struct rc_cache *c, uint64_t ino, uint64_t seg, const uint8_t *data, uint32_t len)
{
    struct rc_ent *e;
    if (rc_begin_load(c, ino, seg, &e) != 1) return;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy && len) memcpy(copy, data, len);
    rc_end_load(c, e, copy, len, copy ? 0 : -ENOMEM);
}

void rc_drop_ino(struct rc_cache *c, uint64_t ino)
{
    pthread_mutex_lock(&c->mu);
    struct rc_ent *e = c->ih[hi(ino)];
    while (e) {
        struct rc_ent *n = e->inext;
        if (e->ino == ino) {
            detach(c, e);
            maybe_free(e);
        }
        e = n;
    }
    pthread_mutex_unlock(&c->mu);
}

uint64_t rc_bytes(struct rc_cache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t b = c->bytes;
    pthread_mutex_unlock(&c->mu);
    return b;
}

uint64_t rc_limit(struct rc_cache *c)
{
    return c->limit;
}
