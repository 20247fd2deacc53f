/* cstore_cache.c - the chunk store's open-chunk cache: chunk files kept open with their header
 * (length, flags, block checksums) in memory, at most max of them, the least recently used
 * closed first. One entry per chunk id, at the version the store holds. A hash table and an
 * LRU list under one mutex, held only to find, list and unlist entries: files are opened,
 * read and closed outside it. The rules for users (pins under the chunk's lock, changes on
 * taken entries) are in cstore_priv.h. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "cksum.h"
#include "cstore_priv.h"

#define CC_BUCKETS 4096 /* hash chains; a power of two */

struct cstore_cache {
    pthread_mutex_t lock; /* everything below */
    struct cs_open *bucket[CC_BUCKETS];
    struct cs_open lru; /* list head: lru.next is the most recently used */
    int n, max;
    uint64_t hits, misses;
};

static struct cs_open **cc_slot(struct cstore_cache *c, uint64_t id)
{
    id ^= id >> 29;
    id *= 0xbf58476d1ce4e5b9ull;
    return &c->bucket[(id >> 32) & (CC_BUCKETS - 1)];
}

struct cs_open *cc_new(void)
{
    struct cs_open *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->f.fd = -1;
    o->refs = 1;
    return o;
}

static void cc_free(struct cs_open *o)
{
    cf_free(&o->f);
    free(o);
}

void cc_unpin(struct cs_open *o)
{
    if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0) cc_free(o);
}

static void lru_unlink(struct cs_open *o)
{
    o->prev->next = o->next;
    o->next->prev = o->prev;
}

static void lru_push(struct cstore_cache *c, struct cs_open *o)
{
    o->next = c->lru.next;
    o->prev = &c->lru;
    c->lru.next->prev = o;
    c->lru.next = o;
}

/* Unlist o (lock held). keep_ref: the cache's reference goes to the caller; else it is dropped
 * and o, when that was the last one, is chained on *dead to be freed after the unlock. */
static void cc_unlist(struct cstore_cache *c, struct cs_open *o, int keep_ref,
                      struct cs_open **dead)
{
    struct cs_open **p = cc_slot(c, o->f.id);
    while (*p != o)
        p = &(*p)->hnext;
    *p = o->hnext;
    lru_unlink(o);
    o->listed = 0;
    c->n--;
    if (!keep_ref && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        o->hnext = *dead;
        *dead = o;
    }
}

static void cc_free_list(struct cs_open *dead)
{
    while (dead) {
        struct cs_open *o = dead;
        dead = o->hnext;
        cc_free(o);
    }
}

static struct cs_open *cc_find(struct cstore_cache *c, uint64_t id)
{
    struct cs_open *o = *cc_slot(c, id);
    while (o && o->f.id != id)
        o = o->hnext;
    return o;
}

/* Whether o was made for the store's chunk size (its checksum array is large enough). */
static int cc_fits(struct cstore *cs, const struct cs_open *o)
{
    return o->f.ncap == cs_ncap(cs);
}

/* Find the entry of chunk id and unlist it when it does not fit the chunk size (lock held). */
static struct cs_open *cc_lookup(struct cstore *cs, uint64_t id, struct cs_open **dead)
{
    struct cstore_cache *c = cs->cache;
    struct cs_open *o = cc_find(c, id);
    if (o && !cc_fits(cs, o)) {
        cc_unlist(c, o, 0, dead);
        o = NULL;
    }
    return o;
}

/* The listed entry of chunk id: pinned (a reference more, counted as a hit or a miss), or
 * taken (unlisted, the cache's reference handed over). */
static struct cs_open *cc_get(struct cstore *cs, uint64_t id, int take)
{
    struct cstore_cache *c = cs->cache;
    struct cs_open *dead = NULL;
    pthread_mutex_lock(&c->lock);
    struct cs_open *o = cc_lookup(cs, id, &dead);
    if (o && take) {
        cc_unlist(c, o, 1, &dead);
    } else if (o) {
        __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
        lru_unlink(o);
        lru_push(c, o);
    }
    if (!take && o)
        c->hits++;
    else if (!take)
        c->misses++;
    pthread_mutex_unlock(&c->lock);
    cc_free_list(dead);
    return o;
}

struct cs_open *cc_pin(struct cstore *cs, uint64_t id)
{
    return cc_get(cs, id, 0);
}

struct cs_open *cc_take(struct cstore *cs, uint64_t id)
{
    struct cs_open *o = cc_get(cs, id, 1);
    /* under the chunk's exclusive lock nobody else can hold it */
    assert(!o || __atomic_load_n(&o->refs, __ATOMIC_RELAXED) == 1);
    return o;
}

void cc_insert(struct cstore *cs, struct cs_open *o)
{
    struct cstore_cache *c = cs->cache;
    struct cs_open *dead = NULL;
    pthread_mutex_lock(&c->lock);
    if (o->listed) {
        lru_unlink(o);
        lru_push(c, o);
    } else if (c->max > 0 && cs->dirs[o->f.dir].ok && cc_fits(cs, o)) {
        struct cs_open *old = cc_find(c, o->f.id);
        if (old) cc_unlist(c, old, 0, &dead);
        __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
        struct cs_open **p = cc_slot(c, o->f.id);
        o->hnext = *p;
        *p = o;
        lru_push(c, o);
        o->listed = 1;
        c->n++;
        while (c->n > c->max)
            cc_unlist(c, c->lru.prev, 0, &dead);
    }
    pthread_mutex_unlock(&c->lock);
    cc_free_list(dead);
}

void cc_drop(struct cstore *cs, uint64_t id)
{
    struct cstore_cache *c = cs->cache;
    struct cs_open *dead = NULL;
    pthread_mutex_lock(&c->lock);
    struct cs_open *o = cc_find(c, id);
    if (o) cc_unlist(c, o, 0, &dead);
    pthread_mutex_unlock(&c->lock);
    cc_free_list(dead);
}

void cc_drop_dir(struct cstore *cs, int d)
{
    struct cstore_cache *c = cs->cache;
    struct cs_open *dead = NULL;
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    for (struct cs_open *o = c->lru.next, *nx; o != &c->lru; o = nx) {
        nx = o->next;
        if (d < 0 || o->f.dir == d) cc_unlist(c, o, 0, &dead);
    }
    pthread_mutex_unlock(&c->lock);
    cc_free_list(dead);
}

int cstore_set_open_max(struct cstore *cs, int n)
{
    struct cstore_cache *c = cs->cache;
    struct cs_open *dead = NULL;
    if (n < 0) return -EINVAL;
    pthread_mutex_lock(&c->lock);
    c->max = n;
    while (c->n > c->max)
        cc_unlist(c, c->lru.prev, 0, &dead);
    pthread_mutex_unlock(&c->lock);
    cc_free_list(dead);
    return 0;
}

void cstore_cache_counts(struct cstore *cs, uint64_t *hits, uint64_t *misses, int *open)
{
    struct cstore_cache *c = cs->cache;
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    *open = c->n;
    pthread_mutex_unlock(&c->lock);
}

int cc_init(struct cstore *cs)
{
    struct cstore_cache *c = calloc(1, sizeof(*c));
    if (!c) return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->lru.next = c->lru.prev = &c->lru;
    c->max = CSTORE_OPEN_DEFAULT;
    cs->cache = c;
    return 0;
}

/* Every user is gone (cstore_close). */
void cc_fini(struct cstore *cs)
{
    if (!cs->cache) return;
    cc_drop_dir(cs, -1);
    pthread_mutex_destroy(&cs->cache->lock);
    free(cs->cache);
    cs->cache = NULL;
}
