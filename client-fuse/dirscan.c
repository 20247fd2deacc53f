/* dirscan.c - tells when files are being opened in the order a directory listed them (tar c,
 * rsync, cp -r, find -exec cat), so the read path can prefetch the next files of the
 * directory before they are opened.
 *
 * It remembers the regular files of the last DS_DIRS directories listed through READDIR(PLUS)
 * (in listing order, with the attributes a READDIRPLUS gave), and for each directory where
 * its last opened file stood. An open of the file right after the last one opened (or one or
 * two further on: a tool may skip what it does not read) extends the directory's streak; any
 * other open breaks it. From the third file in a row, ds_on_open hands out the next files to
 * prefetch, each once, at most DS_AHEAD files or DS_AHEAD_BYTES ahead of the reader. A
 * shuffled reader (a DataLoader) never builds a streak, so it never prefetches: the odd pair
 * of neighbours in a random order is not three in a row.
 *
 * One mutex; listings are bounded (DS_FILES_MAX files per directory, beyond which the rest of
 * the directory is not tracked) and the least recently listed directory is forgotten. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"

#define DS_DIRS 32
#define DS_FILES_MAX 65536
#define DS_STREAK 2 /* follow-ups needed before prefetching (the third file in a row) */
#define DS_SKIP 3   /* an open at most this many files after the last one continues a streak */

struct ds_dir {
    uint64_t dir; /* 0: slot unused */
    uint64_t used;
    uint64_t next_cookie; /* the cookie the listing continues at (its last entry's next) */
    struct ds_file *f;
    uint32_t n, cap;
    struct ds_pos *idx; /* (ino, position) of f[0..nidx) sorted by ino, built when needed */
    uint32_t nidx;
    int64_t last; /* position of the last file opened, -1 none */
    int streak;
    uint32_t pf_to; /* files before this position were handed out for prefetch */
};

struct ds_pos {
    uint64_t ino;
    uint32_t pos;
};

struct ds_table {
    pthread_mutex_t mu;
    uint64_t clock;
    struct ds_dir d[DS_DIRS];
};

struct ds_table *ds_new(void)
{
    struct ds_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void ds_free(struct ds_table *t)
{
    if (!t) return;
    for (int i = 0; i < DS_DIRS; i++) {
        free(t->d[i].f);
        free(t->d[i].idx);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static struct ds_dir *dir_find(struct ds_table *t, uint64_t dir)
{
    for (int i = 0; i < DS_DIRS; i++)
        if (t->d[i].dir == dir) return &t->d[i];
    return NULL;
}

/* The slot of dir, reset for a new listing (the least recently used slot is taken). */
static struct ds_dir *dir_reset(struct ds_table *t, uint64_t dir)
{
    struct ds_dir *d = dir_find(t, dir);
    if (!d) {
        d = &t->d[0];
        for (int i = 1; i < DS_DIRS; i++)
            if (t->d[i].used < d->used) d = &t->d[i];
    }
    d->dir = dir;
    d->n = 0;
    d->nidx = 0;
    d->last = -1;
    d->streak = 0;
    d->pf_to = 0;
    d->next_cookie = 0;
    return d;
}

void ds_note_listing(struct ds_table *t, uint64_t dir, uint64_t cookie, uint64_t end,
                     const struct ds_file *e, uint32_t n)
{
    if (!t || dir == 0) return;
    pthread_mutex_lock(&t->mu);
    struct ds_dir *d = dir_find(t, dir);
    if (cookie == 0)
        d = dir_reset(t, dir);
    else if (!d || d->next_cookie != cookie)
        d = NULL; /* a page of a listing we did not see from its start */
    if (d) {
        d->used = ++t->clock;
        d->next_cookie = end;
        for (uint32_t i = 0; i < n; i++) {
            if (!S_ISREG(e[i].mode) || d->n >= DS_FILES_MAX) continue;
            if (d->n == d->cap) {
                uint32_t cap = d->cap ? d->cap * 2 : 64;
                struct ds_file *f = realloc(d->f, (size_t)cap * sizeof(*f));
                if (!f) break;
                d->f = f;
                d->cap = cap;
            }
            d->f[d->n++] = e[i];
        }
    }
    pthread_mutex_unlock(&t->mu);
}

static int pos_cmp(const void *a, const void *b)
{
    const struct ds_pos *x = a, *y = b;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Position of ino in d's listing, or -1; (re)builds the sorted index when the listing grew. */
static int64_t dir_pos(struct ds_dir *d, uint64_t ino)
{
    if (d->nidx != d->n) {
        struct ds_pos *x = realloc(d->idx, (size_t)(d->n ? d->n : 1) * sizeof(*x));
        if (!x) return -1;
        d->idx = x;
        for (uint32_t i = 0; i < d->n; i++)
            x[i] = (struct ds_pos){d->f[i].ino, i};
        qsort(x, d->n, sizeof(*x), pos_cmp);
        d->nidx = d->n;
    }
    uint32_t lo = 0, hi = d->nidx;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->idx[mid].ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->nidx && d->idx[lo].ino == ino ? (int64_t)d->idx[lo].pos : -1;
}

int ds_on_open(struct ds_table *t, uint64_t ino, struct ds_file *out, int max, uint64_t max_bytes)
{
    if (!t) return 0;
    int got = 0;
    pthread_mutex_lock(&t->mu);
    struct ds_dir *d = NULL;
    uint32_t pos = 0;
    /* the most recently listed directory holding ino */
    for (int i = 0; i < DS_DIRS; i++) {
        struct ds_dir *c = &t->d[i];
        int64_t p;
        if (!c->dir || (d && c->used < d->used)) continue;
        if ((p = dir_pos(c, ino)) >= 0) {
            d = c;
            pos = (uint32_t)p;
        }
    }
    if (d) {
        if (d->last >= 0 && (int64_t)pos > d->last && (int64_t)pos - d->last <= DS_SKIP)
            d->streak++;
        else if ((int64_t)pos != d->last)
            d->streak = 0;
        d->last = pos;
        if (d->streak >= DS_STREAK) {
            uint32_t p = d->pf_to > pos + 1 ? d->pf_to : pos + 1;
            uint64_t bytes = 0;
            for (uint32_t q = pos + 1; q < p && q < d->n; q++)
                bytes += d->f[q].size;
            while (p < d->n && got < max && p <= pos + DS_AHEAD && bytes < max_bytes) {
                out[got++] = d->f[p];
                bytes += d->f[p].size;
                p++;
            }
            d->pf_to = p;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return got;
}
