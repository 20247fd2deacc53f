/* meta_seq.c - the exactly-once numbering of a meta session's mutations (MSG_F_SEQ).
 *
 * Every mutation a mount sends once it has a session gets the next seq of that session (from
 * 1, one per request, not per attempt: a retry carries the same trailer) and stays
 * outstanding until its reply is in or the caller gives up. acked_below, sent with each
 * request, is the lowest outstanding seq when the request was numbered: every lower seq was
 * answered, so the meta service may forget their outcomes. Invariants: every outstanding seq
 * is < next; acked_below <= the request's own seq; a new session restarts at 1 with nothing
 * outstanding. The set stays small (about one entry per thread in a meta call), so it is an
 * unordered array scanned under the mutex. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

void mc_seq_init(struct mc_seq *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    w->next = 1;
}

void mc_seq_destroy(struct mc_seq *w)
{
    free(w->out);
    w->out = NULL;
    w->nout = w->cap = 0;
    pthread_mutex_destroy(&w->mu);
}

void mc_seq_reset(struct mc_seq *w, uint64_t session)
{
    pthread_mutex_lock(&w->mu);
    if (w->session != session) {
        w->session = session;
        w->next = 1;
        w->nout = 0;
    }
    pthread_mutex_unlock(&w->mu);
}

/* mu held. */
static uint64_t lowest(const struct mc_seq *w)
{
    uint64_t lo = w->next;
    for (uint32_t i = 0; i < w->nout; i++)
        if (w->out[i] < lo) lo = w->out[i];
    return lo;
}

int mc_seq_begin(struct mc_seq *w, struct mc_seq_tag *t)
{
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->session == 0) {
        rc = -ENOTCONN;
        goto out;
    }
    if (w->nout == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 64;
        uint64_t *n = realloc(w->out, cap * sizeof(*n));
        if (!n) {
            rc = -ENOMEM;
            goto out;
        }
        w->out = n;
        w->cap = cap;
    }
    t->session = w->session;
    t->seq = w->next++;
    w->out[w->nout++] = t->seq;
    t->acked_below = lowest(w);
    assert(t->acked_below <= t->seq);
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void mc_seq_end(struct mc_seq *w, const struct mc_seq_tag *t)
{
    pthread_mutex_lock(&w->mu);
    if (t->session == w->session) {
        for (uint32_t i = 0; i < w->nout; i++) {
            if (w->out[i] == t->seq) {
                w->out[i] = w->out[--w->nout];
                break;
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
}

uint64_t mc_seq_acked_below(struct mc_seq *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t lo = lowest(w);
    pthread_mutex_unlock(&w->mu);
    return lo;
}

int mc_seq_wanted(uint16_t type)
{
    return proto_numbered(type);
}

void mc_seq_put(struct wbuf *b, const struct mc_seq_tag *t)
{
    wbuf_put_u64(b, t->session);
    wbuf_put_u64(b, t->seq);
    wbuf_put_u64(b, t->acked_below);
}
