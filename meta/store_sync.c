/* store_sync.c - the background flush of the LMDB store. Commits are MDB_NOSYNC (the Raft log
 * is the durable point), so a thread of its own writes the store's dirty pages to disk once a
 * second (fdatasync), off the event loop: a flush under load takes long enough to delay Raft
 * heartbeats and commits if the loop did it. Replacing the store (a snapshot restore) takes
 * the same lock. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "meta.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_t g_thread;
static int g_running, g_stop;

void meta_store_lock(void)
{
    pthread_mutex_lock(&g_mu);
}

void meta_store_unlock(void)
{
    pthread_mutex_unlock(&g_mu);
}

static void *sync_main(void *arg)
{
    struct meta *m = arg;
    pthread_mutex_lock(&g_mu);
    while (!g_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&g_cv, &g_mu, &ts);
        if (g_stop || !m->store) continue;
        int rc = mstore_sync(m->store); /* under the lock: the store is not replaced meanwhile */
        if (rc) LOG_WARN("main", "flushing the store: %s", strerror(-rc));
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

int meta_store_sync_start(struct meta *m)
{
    g_stop = 0;
    if (pthread_create(&g_thread, NULL, sync_main, m)) return -1;
    g_running = 1;
    return 0;
}

void meta_store_sync_stop(void)
{
    if (!g_running) return;
    pthread_mutex_lock(&g_mu);
    g_stop = 1;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pthread_join(g_thread, NULL);
    g_running = 0;
}
