/* atime.c - access times without a round trip on the read path. A read (the first of each
 * open handle, a readdir from the start, an open that lets the kernel serve cached pages) only
 * notes (inode, now) in a pending set; a thread of its own sends the set every
 * AT_FLUSH_MS as MSG_ATIME batches, and the meta leader decides, as relatime does, which
 * atimes move (server_atime.c). noatime notes nothing; strictatime asks the leader to move
 * every atime. What is pending when the mount goes away is sent once more at at_free. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "net.h"

#define AT_FLUSH_MS 1000
#define AT_PENDING_MAX (64u * 1024u) /* notes beyond this wait for the next flush (dropped) */

struct at_note {
    uint64_t ino;
    int64_t s;
    uint32_t ns;
};

struct at_queue {
    struct mc *meta;
    int mode; /* AT_MODE_* */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    pthread_t thread;
    /* open addressing on ino; 0 = empty (inode numbers start at 1) */
    struct at_note *set;
    uint32_t cap, n;
    uint64_t sent, dropped; /* counters, for the stats */
};

static uint32_t slot_of(uint64_t ino, uint32_t cap)
{
    return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

void at_note(struct at_queue *q, uint64_t ino)
{
    if (!q || q->mode == AT_MODE_NOATIME || ino == 0) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&q->mu);
    uint32_t i = slot_of(ino, q->cap);
    while (q->set[i].ino && q->set[i].ino != ino)
        i = (i + 1) & (q->cap - 1);
    if (!q->set[i].ino) {
        if (q->n >= AT_PENDING_MAX) { /* keep the table at most half full */
            q->dropped++;
            pthread_mutex_unlock(&q->mu);
            return;
        }
        q->n++;
    }
    q->set[i] = (struct at_note){ino, (int64_t)now.tv_sec, (uint32_t)now.tv_nsec};
    pthread_mutex_unlock(&q->mu);
}

/* Take everything pending (caller holds mu); returns the count put in out. */
static uint32_t take_all(struct at_queue *q, struct at_note *out)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < q->cap && k < q->n; i++)
        if (q->set[i].ino) {
            out[k++] = q->set[i];
            q->set[i].ino = 0;
        }
    q->n = 0;
    return k;
}

static void send_notes(struct at_queue *q, const struct at_note *notes, uint32_t n)
{
    for (uint32_t first = 0; first < n; first += ATIME_BATCH_MAX) {
        uint32_t k = n - first < ATIME_BATCH_MAX ? n - first : ATIME_BATCH_MAX;
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u8(&b, q->mode == AT_MODE_STRICT ? ATIME_STRICT : 0);
        wbuf_put_u32(&b, k);
        for (uint32_t i = first; i < first + k; i++) {
            wbuf_put_u64(&b, notes[i].ino);
            wbuf_put_i64(&b, notes[i].s);
            wbuf_put_u32(&b, notes[i].ns);
        }
        struct rpc_reply rep;
        int rc = mc_call(q->meta, MSG_ATIME, &b, &rep);
        wbuf_free(&b);
        if (rc == 0) {
            if (rep.status < 0) rc = rep.status;
            rpc_reply_free(&rep);
        }
        if (rc) /* atimes are advisory: a lost batch is not retried */
            LOG_DEBUG("atime", "%u access times not sent: %s", k, strerror(-rc));
        else
            __atomic_add_fetch(&q->sent, k, __ATOMIC_RELAXED);
    }
}

static void flush(struct at_queue *q, struct at_note *buf)
{
    pthread_mutex_lock(&q->mu);
    uint32_t n = take_all(q, buf);
    pthread_mutex_unlock(&q->mu);
    if (n) send_notes(q, buf, n);
}

static void *at_main(void *arg)
{
    struct at_queue *q = arg;
    struct at_note *buf = malloc(AT_PENDING_MAX * sizeof(*buf));
    if (!buf) return NULL;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        struct timespec ts;
        net_abstime_in(AT_FLUSH_MS, &ts);
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        if (q->stopping) break;
        pthread_mutex_unlock(&q->mu);
        flush(q, buf);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    flush(q, buf); /* the last notes, once */
    free(buf);
    return NULL;
}

struct at_queue *at_new(struct mc *meta, int mode)
{
    struct at_queue *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->meta = meta;
    q->mode = mode;
    q->cap = 2 * AT_PENDING_MAX;
    q->set = calloc(q->cap, sizeof(*q->set));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (!q->set || (mode != AT_MODE_NOATIME && pthread_create(&q->thread, NULL, at_main, q))) {
        free(q->set);
        free(q);
        return NULL;
    }
    return q;
}

void at_free(struct at_queue *q)
{
    if (!q) return;
    if (q->mode != AT_MODE_NOATIME) {
        pthread_mutex_lock(&q->mu);
        q->stopping = 1;
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->set);
    free(q);
}

int at_mode_parse(const char *s)
{
    if (!strcmp(s, "relatime")) return AT_MODE_RELATIME;
    if (!strcmp(s, "strictatime")) return AT_MODE_STRICT;
    if (!strcmp(s, "noatime")) return AT_MODE_NOATIME;
    return -EINVAL;
}
