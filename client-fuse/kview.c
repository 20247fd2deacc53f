/* kview.c - what the kernel was last told about each inode's size and mtime (prefix kv_).
 *
 * The kernel caches attributes for attr_timeout and stops reads at the size it caches, so
 * open has to invalidate that cache when the file changed elsewhere (close-to-open
 * consistency between mounts). Invalidating on every open would cost a GETATTR per open;
 * this table lets open invalidate only when the attributes the meta service returned differ
 * from the ones the kernel holds. A direct-mapped table: a lost slot only costs one extra
 * invalidation. */
#include <pthread.h>
#include <stdlib.h>

#include "client.h"

#define KV_SLOTS 8192u
#define KV_STRIPES 64u

struct kv_slot {
    uint64_t ino, size;
    int64_t mtime_s;
    uint32_t mtime_ns;
};

struct kv_table {
    pthread_mutex_t mu[KV_STRIPES];
    struct kv_slot slot[KV_SLOTS];
};

struct kv_table *kv_new(void)
{
    struct kv_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    for (unsigned i = 0; i < KV_STRIPES; i++)
        pthread_mutex_init(&t->mu[i], NULL);
    return t;
}

void kv_free(struct kv_table *t)
{
    if (!t) return;
    for (unsigned i = 0; i < KV_STRIPES; i++)
        pthread_mutex_destroy(&t->mu[i]);
    free(t);
}

static unsigned kv_index(uint64_t ino)
{
    return (unsigned)((ino * 0x9e3779b97f4a7c15ull) >> 51) % KV_SLOTS;
}

void kv_note(struct kv_table *t, uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t mtime_ns)
{
    if (!t) return;
    unsigned i = kv_index(ino);
    pthread_mutex_t *mu = &t->mu[i % KV_STRIPES];
    pthread_mutex_lock(mu);
    t->slot[i] =
        (struct kv_slot){.ino = ino, .size = size, .mtime_s = mtime_s, .mtime_ns = mtime_ns};
    pthread_mutex_unlock(mu);
}

int kv_same(struct kv_table *t, uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t mtime_ns)
{
    if (!t) return 0;
    unsigned i = kv_index(ino);
    pthread_mutex_t *mu = &t->mu[i % KV_STRIPES];
    pthread_mutex_lock(mu);
    const struct kv_slot *s = &t->slot[i];
    int same = s->ino == ino && s->size == size && s->mtime_s == mtime_s && s->mtime_ns == mtime_ns;
    pthread_mutex_unlock(mu);
    return same;
}
