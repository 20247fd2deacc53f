/* lockset.c - the lock table of lockset.h: a hash of inodes, each with an array of its lock
 * records (few per inode in practice, so scans are linear). */
#include "lockset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LS_BUCKETS 1024u

struct ls_ino {
    struct ls_ino *next;
    uint64_t ino;
    struct ls_lock *v;
    uint32_t n, cap;
};

struct lockset {
    struct ls_ino *b[LS_BUCKETS];
    uint64_t count;
};

static uint32_t bucket_of(uint64_t ino)
{
    return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 54) & (LS_BUCKETS - 1);
}

struct lockset *ls_new(void)
{
    return calloc(1, sizeof(struct lockset));
}

void ls_clear(struct lockset *s)
{
    for (uint32_t i = 0; i < LS_BUCKETS; i++) {
        while (s->b[i]) {
            struct ls_ino *x = s->b[i];
            s->b[i] = x->next;
            free(x->v);
            free(x);
        }
    }
    s->count = 0;
}

void ls_free(struct lockset *s)
{
    if (!s) return;
    ls_clear(s);
    free(s);
}

static struct ls_ino *find_ino(const struct lockset *s, uint64_t ino)
{
    for (struct ls_ino *x = s->b[bucket_of(ino)]; x; x = x->next)
        if (x->ino == ino) return x;
    return NULL;
}

/* Unlink and free an inode's entry once it holds no lock. */
static void gc_ino(struct lockset *s, struct ls_ino *x)
{
    if (x->n) return;
    for (struct ls_ino **p = &s->b[bucket_of(x->ino)]; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            free(x->v);
            free(x);
            return;
        }
}

static int same_owner(const struct ls_lock *a, const struct ls_lock *b)
{
    return a->session == b->session && a->owner == b->owner;
}

static int overlaps(const struct ls_lock *a, const struct ls_lock *b)
{
    return a->start <= b->end && b->start <= a->end;
}

int ls_conflict(const struct lockset *s, const struct ls_lock *want, struct ls_lock *out)
{
    const struct ls_ino *x = find_ino(s, want->ino);
    if (!x || want->type == LS_UN) return 0;
    for (uint32_t i = 0; i < x->n; i++) {
        const struct ls_lock *l = &x->v[i];
        if (l->kind != want->kind || same_owner(l, want)) continue;
        if (want->kind == LS_POSIX && !overlaps(l, want)) continue;
        if (l->type == LS_WR || want->type == LS_WR) {
            if (out) *out = *l;
            return 1;
        }
    }
    return 0;
}

static int reserve(struct ls_ino *x, uint32_t more)
{
    if (x->n + more <= x->cap) return 0;
    uint32_t cap = x->cap ? x->cap * 2 : 4;
    while (cap < x->n + more)
        cap *= 2;
    struct ls_lock *v = realloc(x->v, cap * sizeof(*v));
    if (!v) return -ENOMEM;
    x->v = v;
    x->cap = cap;
    return 0;
}

int ls_set(struct lockset *s, const struct ls_lock *want)
{
    struct ls_lock w = *want;
    if (w.kind == LS_FLOCK) {
        w.start = 0;
        w.end = LS_EOF;
    }
    if (w.start > w.end) return -EINVAL;
    struct ls_ino *x = find_ino(s, w.ino);
    if (!x) {
        if (w.type == LS_UN) return 0;
        x = calloc(1, sizeof(*x));
        if (!x) return -ENOMEM;
        x->ino = w.ino;
        uint32_t b = bucket_of(w.ino);
        x->next = s->b[b];
        s->b[b] = x;
    }
    /* at most one record is split in two (it covers the whole new range), plus the new one */
    if (reserve(x, 2)) {
        gc_ino(s, x);
        return -ENOMEM;
    }
    /* a matching record is replaced by the last one (so i stays); its pieces outside the
     * new range go to the end, where the scan meets them again and skips them (they do not
     * overlap it). Only one record can leave two pieces, so the reserve above holds. */
    for (uint32_t i = 0; i < x->n;) {
        struct ls_lock *l = &x->v[i];
        if (l->kind != w.kind || !same_owner(l, &w) || !overlaps(l, &w)) {
            i++;
            continue;
        }
        struct ls_lock old = *l;
        x->v[i] = x->v[--x->n];
        s->count--;
        if (old.start < w.start) {
            x->v[x->n] = old;
            x->v[x->n++].end = w.start - 1;
            s->count++;
        }
        if (old.end > w.end) {
            x->v[x->n] = old;
            x->v[x->n++].start = w.end + 1;
            s->count++;
        }
    }
    if (w.type != LS_UN) {
        x->v[x->n++] = w;
        s->count++;
    }
    gc_ino(s, x);
    return 0;
}

int ls_drop_owner(struct lockset *s, uint64_t ino, uint64_t session, uint64_t owner, unsigned kinds)
{
    struct ls_ino *x = find_ino(s, ino);
    if (!x) return 0;
    int gone = 0;
    for (uint32_t i = 0; i < x->n;) {
        struct ls_lock *l = &x->v[i];
        if (l->session == session && l->owner == owner && (kinds & (1u << l->kind))) {
            x->v[i] = x->v[--x->n];
            gone++;
        } else {
            i++;
        }
    }
    s->count -= (uint64_t)gone;
    gc_ino(s, x);
    return gone;
}

int ls_drop_session(struct lockset *s, uint64_t session)
{
    int gone = 0;
    for (uint32_t b = 0; b < LS_BUCKETS; b++) {
        for (struct ls_ino *x = s->b[b], *next; x; x = next) {
            next = x->next;
            for (uint32_t i = 0; i < x->n;) {
                if (x->v[i].session == session) {
                    x->v[i] = x->v[--x->n];
                    gone++;
                } else {
                    i++;
                }
            }
            gc_ino(s, x);
        }
    }
    s->count -= (uint64_t)gone;
    return gone;
}

int ls_each(const struct lockset *s, uint64_t ino, ls_fn fn, void *arg)
{
    if (ino) {
        const struct ls_ino *x = find_ino(s, ino);
        for (uint32_t i = 0; x && i < x->n; i++) {
            int rc = fn(arg, &x->v[i]);
            if (rc) return rc;
        }
        return 0;
    }
    for (uint32_t b = 0; b < LS_BUCKETS; b++)
        for (const struct ls_ino *x = s->b[b]; x; x = x->next)
            for (uint32_t i = 0; i < x->n; i++) {
                int rc = fn(arg, &x->v[i]);
                if (rc) return rc;
            }
    return 0;
}

void ls_retag(struct lockset *s, uint64_t ino, uint64_t session, uint64_t owner, uint64_t tag)
{
    struct ls_ino *x = find_ino(s, ino);
    for (uint32_t i = 0; x && i < x->n; i++)
        if (x->v[i].session == session && x->v[i].owner == owner) x->v[i].tag = tag;
}

uint64_t ls_count(const struct lockset *s)
{
    return s->count;
}
