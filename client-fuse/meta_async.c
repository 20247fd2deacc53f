/* meta_async.c - opens and releases told to the meta service off the application's path.
 *
 * A read-only open of a file whose attributes and chunk locations came with the LOOKUP just
 * before (fs_ops.c) is answered at once; the meta service still has to count the open (so an
 * unlink elsewhere keeps the file's data until it is closed), and this queue tells it, MA_HOLD_MS
 * later: an open released before that is never told at all (the common case of a data loader
 * reading small files), which saves meta two requests per file. One
 * thread sends the queued OPENs and RELEASEs in order, so a release never overtakes the open
 * it closes. The queue is bounded (MA_QUEUE_MAX): a full queue refuses an open (the caller
 * then opens the usual way) and makes a release wait for room. An unlink or rename through this
 * mount first sends the queue at once and waits for it (ma_drain), so an open made here is
 * known before it. (One made on another mount less than MA_HOLD_MS and a round trip earlier
 * may not be: its reads may then fail. The price of the short path.)
 * At unmount what is still queued
 * is dropped: closing the session releases every open of the mount anyway. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "cstats.h"
#include "log.h"
#include "net.h"

#define MA_QUEUE_MAX 4096
/* An open is told this long after it was made, unless its release came first (then neither
 * is told: a file read and closed within it never costs meta a request). */
#define MA_HOLD_MS 5

struct ma_item {
    uint64_t ino;
    uint32_t flags;
    int release;  /* 0: OPEN with flags, 1: RELEASE */
    uint64_t due; /* net_now_ms() when it may be sent */
};

struct ma_queue {
    struct mc *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work queued, or stopping */
    pthread_cond_t room_cv; /* an item was taken */
    struct ma_item q[MA_QUEUE_MAX];
    int head, n;
    int busy;     /* an item taken and being sent */
    int draining; /* ma_drain callers waiting: send at once */
    int stop;
    int started;
    pthread_t th;
};

static void send_item(struct mc *m, const struct ma_item *it)
{
    int rc;
    if (it->release) {
        rc = mc_release(m, it->ino);
    } else {
        struct cairn_attr a;
        struct chunk_info ci[1];
        uint32_t n = 0;
        rc = mc_open_file(m, it->ino, it->flags, &a, ci, 0, &n);
    }
    if (rc)
        LOG_INFO("meta", "%s of inode %" PRIu64 " (told after the fact): %s",
                 it->release ? "release" : "open", it->ino, strerror(-rc));
}

/* Wait on cv until ms (a net_now_ms() time); mu held. */
static void wait_until(struct ma_queue *q, uint64_t ms)
{
    uint64_t now = net_now_ms();
    if (ms <= now) return;
    struct timespec ts;
    net_abstime_in(ms - now, &ts);
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

static void *ma_main(void *arg)
{
    struct ma_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stop && q->n == 0)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->stop) break;
        /* an open is held back a moment: if its release comes meanwhile, neither is sent */
        struct ma_item *h = &q->q[q->head];
        if (!q->draining && net_now_ms() < h->due) {
            wait_until(q, h->due);
            continue;
        }
        struct ma_item it = *h;
        q->head = (q->head + 1) % MA_QUEUE_MAX;
        q->n--;
        q->busy = 1;
        pthread_cond_broadcast(&q->room_cv);
        pthread_mutex_unlock(&q->mu);
        send_item(q->m, &it);
        pthread_mutex_lock(&q->mu);
        q->busy = 0;
        pthread_cond_broadcast(&q->room_cv);
    }
    q->n = 0;
    pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

struct ma_queue *ma_new(struct mc *m)
{
    struct ma_queue *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->m = m;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    pthread_cond_init(&q->room_cv, NULL);
    if (pthread_create(&q->th, NULL, ma_main, q) != 0) {
        ma_free(q);
        return NULL;
    }
    q->started = 1;
    return q;
}

void ma_free(struct ma_queue *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_cond_broadcast(&q->room_cv);
    pthread_mutex_unlock(&q->mu);
    if (q->started) pthread_join(q->th, NULL);
    pthread_cond_destroy(&q->room_cv);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Append it; wait for room when wait is set, else -EAGAIN when full. -ESHUTDOWN once
 * stopping. */
static int push(struct ma_queue *q, const struct ma_item *it, int wait)
{
    pthread_mutex_lock(&q->mu);
    while (wait && !q->stop && q->n == MA_QUEUE_MAX)
        pthread_cond_wait(&q->room_cv, &q->mu);
    int rc = q->stop ? -ESHUTDOWN : q->n == MA_QUEUE_MAX ? -EAGAIN : 0;
    if (!rc) {
        q->q[(q->head + q->n) % MA_QUEUE_MAX] = *it;
        q->n++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int ma_open(struct ma_queue *q, uint64_t ino, uint32_t flags)
{
    struct ma_item it = {.ino = ino, .flags = flags, .due = net_now_ms() + MA_HOLD_MS};
    return q ? push(q, &it, 0) : -EAGAIN;
}

/* An OPEN of ino still queued is taken out (mu held): 1 if there was one. */
static int cancel_open(struct ma_queue *q, uint64_t ino)
{
    for (int k = q->n - 1; k >= 0; k--) {
        int i = (q->head + k) % MA_QUEUE_MAX;
        if (q->q[i].release || q->q[i].ino != ino) continue;
        for (int j = k; j < q->n - 1; j++) /* close the gap */
            q->q[(q->head + j) % MA_QUEUE_MAX] = q->q[(q->head + j + 1) % MA_QUEUE_MAX];
        q->n--;
        pthread_cond_broadcast(&q->room_cv);
        return 1;
    }
    return 0;
}

void ma_drain(struct ma_queue *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->draining++;
    pthread_cond_broadcast(&q->cv);
    while (!q->stop && (q->n > 0 || q->busy))
        pthread_cond_wait(&q->room_cv, &q->mu);
    q->draining--;
    pthread_mutex_unlock(&q->mu);
}

int ma_release(struct ma_queue *q, uint64_t ino)
{
    if (!q) return -ESHUTDOWN;
    pthread_mutex_lock(&q->mu);
    int gone = !q->stop && cancel_open(q, ino);
    pthread_mutex_unlock(&q->mu);
    if (gone) {
        st_add(ST_OPENS_NEVER_TOLD, 1); /* opened and closed before meta had to know */
        return 0;
    }
    struct ma_item it = {.ino = ino, .release = 1};
    return push(q, &it, 1);
}
