/* inode_state.c - the table of per-inode client state, keyed by inode number.
 *
 * An entry holds what every open handle of one inode shares: the size as known here, the
 * chunk location cache, the write leases of the current open session and the dirty buffer,
 * all under the entry's mutex. Entries are reference counted; an unreferenced entry stays
 * (it remembers the attributes of the last open, for keep_cache) until the table grows past
 * IST_KEEP entries, when unreferenced clean entries are freed. The table lock is never held
 * while an entry's mutex is taken.
 *
 * An entry also keeps, per chunk, the chunk servers that failed this mount's writes (the
 * exclusion set, sent with every new lease of that chunk) for as long as the file is open for
 * writing here, so a server that died but is not yet declared dead by the meta service is not
 * put back into the chain by the next lease.
 *
 * The table also keeps the xattr facts (ist_xa_*, see client.h): a direct-mapped cache of
 * IST_XA_STRIPES x IST_XA_SLOTS slots, each stripe under its own mutex (never held with any
 * other lock), independent of the entries above so that every inode the kernel hears of can
 * have one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "net.h"

#define IST_BUCKETS 4096
#define IST_KEEP 8192
#define IST_XA_STRIPES 16
#define IST_XA_SLOTS 4096 /* per stripe */

struct ist_xa_slot {
    uint64_t ino;         /* 0 = empty */
    uint64_t none_until;  /* IST_XA_NONE holds while net_now_ms() < this */
    uint64_t nocap_until; /* IST_XA_NOCAP holds while net_now_ms() < this */
};

struct ist_xa_stripe {
    pthread_mutex_t mu;
    struct ist_xa_slot slot[IST_XA_SLOTS];
};

struct ist_table {
    pthread_mutex_t mu;
    struct inode_st *b[IST_BUCKETS];
    size_t count;
    /* forgets so far; changed only under the stripe lock of the inode forgotten */
    uint64_t xa_forgets;
    struct ist_xa_stripe xa[IST_XA_STRIPES];
};

struct ist_table *ist_new(void)
{
    struct ist_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    for (int i = 0; i < IST_XA_STRIPES; i++)
        pthread_mutex_init(&t->xa[i].mu, NULL);
    return t;
}

static void st_free(struct inode_st *s)
{
    pthread_mutex_destroy(&s->mu);
    free(s->chunks);
    free(s->leases);
    free(s->excl);
    free(s->wq);
    free(s->dbuf);
    free(s);
}

void ist_free(struct ist_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < IST_BUCKETS; i++) {
        struct inode_st *s = t->b[i];
        while (s) {
            struct inode_st *n = s->next;
            st_free(s);
            s = n;
        }
    }
    pthread_mutex_destroy(&t->mu);
    for (int i = 0; i < IST_XA_STRIPES; i++)
        pthread_mutex_destroy(&t->xa[i].mu);
    free(t);
}

static size_t bucket(uint64_t ino)
{
    return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 52) % IST_BUCKETS;
}

/* Free unreferenced entries with nothing to write; t->mu held. An entry with refs == 0 is
 * not in use by anyone, so its fields can be read without its mutex. */
static void evict(struct ist_table *t)
{
    for (size_t i = 0; i < IST_BUCKETS; i++) {
        struct inode_st **pp = &t->b[i];
        while (*pp) {
            struct inode_st *s = *pp;
            if (s->refs == 0 && s->dlen == 0 && s->wq_n == 0 && !s->need_commit) {
                *pp = s->next;
                st_free(s);
                t->count--;
            } else {
                pp = &s->next;
            }
        }
    }
}

struct inode_st *ist_find(struct ist_table *t, uint64_t ino)
{
    pthread_mutex_lock(&t->mu);
    struct inode_st *s;
    for (s = t->b[bucket(ino)]; s; s = s->next)
        if (s->ino == ino) break;
    if (s) s->refs++;
    pthread_mutex_unlock(&t->mu);
    return s;
}

struct inode_st *ist_get(struct ist_table *t, uint64_t ino)
{
    pthread_mutex_lock(&t->mu);
    size_t h = bucket(ino);
    struct inode_st *s;
    for (s = t->b[h]; s; s = s->next)
        if (s->ino == ino) break;
    if (!s) {
        if (t->count >= IST_KEEP) evict(t);
        s = calloc(1, sizeof(*s));
        if (s) {
            s->ino = ino;
            pthread_mutex_init(&s->mu, NULL);
            s->next = t->b[h];
            t->b[h] = s;
            t->count++;
        }
    }
    if (s) s->refs++;
    pthread_mutex_unlock(&t->mu);
    return s;
}

void ist_put(struct ist_table *t, struct inode_st *s)
{
    if (!s) return;
    pthread_mutex_lock(&t->mu);
    s->refs--;
    pthread_mutex_unlock(&t->mu);
}

struct ist_chunk *ist_chunk_find(struct inode_st *s, uint64_t index)
{
    for (size_t i = 0; i < s->nchunks; i++)
        if (s->chunks[i].index == index) return &s->chunks[i];
    return NULL;
}

int ist_chunk_set(struct inode_st *s, uint64_t index, int present, const struct chunk_info *ci)
{
    struct ist_chunk *c = ist_chunk_find(s, index);
    if (!c) {
        if (s->nchunks == s->capchunks) {
            size_t cap = s->capchunks ? s->capchunks * 2 : 8;
            struct ist_chunk *n = realloc(s->chunks, cap * sizeof(*n));
            if (!n) return -ENOMEM;
            s->chunks = n;
            s->capchunks = cap;
        }
        c = &s->chunks[s->nchunks++];
    }
    memset(c, 0, sizeof(*c));
    c->index = index;
    c->present = present;
    if (present && ci) c->ci = *ci;
    c->ci.index = index;
    return 0;
}

void ist_chunks_clear(struct inode_st *s)
{
    s->nchunks = 0;
}

void ist_chunks_drop_from(struct inode_st *s, uint64_t first_index)
{
    size_t j = 0;
    for (size_t i = 0; i < s->nchunks; i++)
        if (s->chunks[i].index < first_index) s->chunks[j++] = s->chunks[i];
    s->nchunks = j;
}

struct ist_lease *ist_lease_find(struct inode_st *s, uint64_t index)
{
    for (size_t i = 0; i < s->nleases; i++)
        if (s->leases[i].ci.index == index) return &s->leases[i];
    return NULL;
}

struct ist_lease *ist_lease_add(struct inode_st *s, const struct chunk_info *ci)
{
    struct ist_lease *l = ist_lease_find(s, ci->index);
    if (!l) {
        if (s->nleases == s->capleases) {
            size_t cap = s->capleases ? s->capleases * 2 : 4;
            struct ist_lease *n = realloc(s->leases, cap * sizeof(*n));
            if (!n) return NULL;
            s->leases = n;
            s->capleases = cap;
        }
        l = &s->leases[s->nleases++];
        l->alloc = 0;
        l->alloc_dirty = 0;
    }
    l->ci = *ci;
    l->unsynced = 0;
    return l;
}

void ist_lease_drop(struct inode_st *s, uint64_t index)
{
    for (size_t i = 0; i < s->nleases; i++)
        if (s->leases[i].ci.index == index) {
            s->leases[i] = s->leases[--s->nleases];
            return;
        }
}

void ist_leases_clear(struct inode_st *s)
{
    s->nleases = 0;
}

/* ---- exclusions ------------------------------------------------------------------------- */

static struct ist_excl *excl_find(struct inode_st *s, uint64_t index)
{
    for (size_t i = 0; i < s->nexcl; i++)
        if (s->excl[i].index == index) return &s->excl[i];
    return NULL;
}

int ist_excl_add(struct inode_st *s, uint64_t index, uint64_t server_id)
{
    struct ist_excl *e = excl_find(s, index);
    if (!e) {
        if (s->nexcl == s->capexcl) {
            size_t cap = s->capexcl ? s->capexcl * 2 : 4;
            struct ist_excl *n = realloc(s->excl, cap * sizeof(*n));
            if (!n) return -ENOMEM;
            s->excl = n;
            s->capexcl = cap;
        }
        e = &s->excl[s->nexcl++];
        memset(e, 0, sizeof(*e));
        e->index = index;
    }
    for (int i = 0; i < e->n; i++)
        if (e->id[i] == server_id) return 0;
    if (e->n == CM_EXCL_MAX) return -ENOSPC;
    e->id[e->n++] = server_id;
    return 0;
}

const struct ist_excl *ist_excl_get(struct inode_st *s, uint64_t index)
{
    struct ist_excl *e = excl_find(s, index);
    return e && e->n ? e : NULL;
}

void ist_excl_clear(struct inode_st *s)
{
    s->nexcl = 0;
}

void ist_excl_drop_from(struct inode_st *s, uint64_t first_index)
{
    size_t j = 0;
    for (size_t i = 0; i < s->nexcl; i++)
        if (s->excl[i].index < first_index) s->excl[j++] = s->excl[i];
    s->nexcl = j;
}

/* ---- xattr facts ------------------------------------------------------------------------- */

/* The slot of ino; its stripe's mutex is locked on return. */
static struct ist_xa_slot *xa_lock(struct ist_table *t, uint64_t ino, struct ist_xa_stripe **sp)
{
    uint64_t h = ino * 0x9e3779b97f4a7c15ull;
    struct ist_xa_stripe *st = &t->xa[(h >> 60) % IST_XA_STRIPES];
    pthread_mutex_lock(&st->mu);
    *sp = st;
    return &st->slot[(h >> 32) % IST_XA_SLOTS];
}

uint64_t ist_xa_ticket(struct ist_table *t)
{
    return __atomic_load_n(&t->xa_forgets, __ATOMIC_ACQUIRE);
}

/* Whether a note taken with ticket may still be recorded; stripe lock held. */
static int xa_ticket_ok(struct ist_table *t, uint64_t ticket)
{
    return __atomic_load_n(&t->xa_forgets, __ATOMIC_ACQUIRE) == ticket;
}

void ist_xa_note_attr(struct ist_table *t, const struct cairn_attr *a, uint64_t ttl_ms,
                      uint64_t ticket)
{
    if (ttl_ms == 0 || a->ino == 0) return;
    uint64_t until = net_now_ms() + ttl_ms;
    struct ist_xa_stripe *st;
    struct ist_xa_slot *x = xa_lock(t, a->ino, &st);
    if (xa_ticket_ok(t, ticket)) {
        if (!(a->flags & ATTR_F_XATTRS)) {
            if (x->ino != a->ino) {
                x->ino = a->ino;
                x->nocap_until = 0;
            }
            x->none_until = until;
            if (x->nocap_until < until) x->nocap_until = until;
        } else if (x->ino == a->ino) {
            /* it has some now; which ones is not said, so a "no capability" answer stays */
            x->none_until = 0;
        }
    }
    pthread_mutex_unlock(&st->mu);
}

void ist_xa_note_nocap(struct ist_table *t, uint64_t ino, uint64_t ttl_ms, uint64_t ticket)
{
    if (ttl_ms == 0 || ino == 0) return;
    uint64_t until = net_now_ms() + ttl_ms;
    struct ist_xa_stripe *st;
    struct ist_xa_slot *x = xa_lock(t, ino, &st);
    if (xa_ticket_ok(t, ticket)) {
        if (x->ino != ino) {
            x->ino = ino;
            x->none_until = 0;
        }
        x->nocap_until = until;
    }
    pthread_mutex_unlock(&st->mu);
}

uint32_t ist_xa_facts(struct ist_table *t, uint64_t ino)
{
    uint32_t f = 0;
    uint64_t now = net_now_ms();
    struct ist_xa_stripe *st;
    struct ist_xa_slot *x = xa_lock(t, ino, &st);
    if (x->ino == ino) {
        if (now < x->none_until) f |= IST_XA_NONE | IST_XA_NOCAP;
        if (now < x->nocap_until) f |= IST_XA_NOCAP;
    }
    pthread_mutex_unlock(&st->mu);
    return f;
}

void ist_xa_forget(struct ist_table *t, uint64_t ino)
{
    struct ist_xa_stripe *st;
    struct ist_xa_slot *x = xa_lock(t, ino, &st);
    __atomic_add_fetch(&t->xa_forgets, 1, __ATOMIC_ACQ_REL);
    if (x->ino == ino) memset(x, 0, sizeof(*x));
    pthread_mutex_unlock(&st->mu);
}
