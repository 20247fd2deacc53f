/* snap_serve.c - a replica lends its store to one that must install a snapshot
 * (MSG_SNAP_OPEN / MSG_SNAP_READ, see snap_xfer.h). The copy (mdb_env_copyfd2, compacting,
 * then zstd) is made by a thread of its own into an unlinked file in the Raft folder, so the
 * event loop goes on serving and committing meanwhile; it is then read out in pieces of at
 * most 1 MiB. One prepared copy is kept, shared by every replica that asks for an index it
 * covers, and forgotten after a minute nobody read it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evsrv.h"
#include "log.h"
#include "meta.h"
#include "net.h"
#include "snap_xfer.h"

#define SNAP_IDLE_MS 60000

struct prepared {
    uint64_t id;
    int fd; /* -1: none */
    uint64_t size, applied;
    uint64_t used_ms;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct prepared g_ready = {.fd = -1};
static pthread_t g_thread;
static int g_thread_live; /* joinable */
static int g_preparing;
static uint64_t g_next_id;

struct prep_job {
    struct meta *m;
    char dir[CONF_STR_MAX + 8];
};

static int open_unlinked(const char *dir, const char *name)
{
    char path[CONF_STR_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    unlink(path); /* only the descriptor is needed */
    return fd;
}

static void *prep_main(void *arg)
{
    struct prep_job *job = arg;
    uint64_t t0 = net_now_ms(), applied = 0;
    int raw = open_unlinked(job->dir, "snapshot.copy");
    int z = raw < 0 ? raw : open_unlinked(job->dir, "snapshot.send");
    int rc = z < 0 ? z : 0;
    if (!rc) {
        meta_store_lock(); /* the store is not replaced (restored) meanwhile */
        applied = mstore_applied(job->m->store);
        rc = mstore_copy_fd(job->m->store, raw);
        meta_store_unlock();
    }
    if (!rc) rc = snapz_compress_fd(raw, z);
    off_t size = rc ? -1 : lseek(z, 0, SEEK_END);
    if (!rc && size < 0) rc = -errno;
    if (raw >= 0) close(raw);
    pthread_mutex_lock(&g_mu);
    if (rc) {
        if (z >= 0) close(z);
        LOG_WARN("raft", "copying the store for another replica: %s", strerror(-rc));
    } else {
        if (g_ready.fd >= 0) close(g_ready.fd);
        g_ready = (struct prepared){++g_next_id, z, (uint64_t)size, applied, net_now_ms()};
        LOG_INFO("raft",
                 "store copied for another replica: index %" PRIu64 ", %" PRIu64
                 " bytes compressed, in %" PRIu64 " ms",
                 applied, (uint64_t)size, net_now_ms() - t0);
    }
    g_preparing = 0;
    pthread_mutex_unlock(&g_mu);
    free(job);
    return NULL;
}

/* Under g_mu, with no copy being made. */
static int start_prep(struct meta *m)
{
    if (g_thread_live) { /* finished: g_preparing is 0 */
        pthread_join(g_thread, NULL);
        g_thread_live = 0;
    }
    struct prep_job *job = calloc(1, sizeof(*job));
    if (!job) return -ENOMEM;
    job->m = m;
    snprintf(job->dir, sizeof(job->dir), "%s/raft", m->cfg.data_dir);
    if (pthread_create(&g_thread, NULL, prep_main, job)) {
        free(job);
        return -EAGAIN;
    }
    g_thread_live = 1;
    g_preparing = 1;
    return 0;
}

static int do_open(struct meta *m, uint64_t need, struct wbuf *out)
{
    if (g_ready.fd >= 0 && g_ready.applied >= need) {
        g_ready.used_ms = net_now_ms();
        wbuf_put_u64(out, g_ready.id);
        wbuf_put_u64(out, g_ready.size);
        wbuf_put_u64(out, g_ready.applied);
        return 0;
    }
    if (g_preparing) return -EAGAIN;
    if (!m->store || mstore_applied(m->store) < need) return -ESTALE;
    int rc = start_prep(m);
    return rc ? rc : -EAGAIN;
}

static int do_read(uint64_t id, uint64_t off, uint32_t len, struct wbuf *out)
{
    if (g_ready.fd < 0 || id != g_ready.id) return -ENOENT;
    if (off > g_ready.size) return -EINVAL;
    if (len > SNAP_READ_MAX) len = SNAP_READ_MAX;
    if (len > g_ready.size - off) len = (uint32_t)(g_ready.size - off);
    uint8_t *p = len ? wbuf_extend(out, len) : NULL;
    if (len && !p) return -ENOMEM;
    for (uint32_t got = 0; got < len;) {
        ssize_t n = pread(g_ready.fd, p + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -errno : -EIO;
        got += (uint32_t)n;
    }
    g_ready.used_ms = net_now_ms();
    return 0;
}

int snap_serve_handle(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      const uint8_t *payload)
{
    struct rcur c;
    rcur_init(&c, payload, h->length);
    struct wbuf out;
    wbuf_init(&out);
    int status;
    if (h->type == MSG_SNAP_OPEN) {
        uint64_t need = rcur_u64(&c);
        if (rcur_done(&c)) return -EBADMSG;
        pthread_mutex_lock(&g_mu);
        status = do_open(m, need, &out);
        pthread_mutex_unlock(&g_mu);
    } else {
        uint64_t id = rcur_u64(&c), off = rcur_u64(&c);
        uint32_t len = rcur_u32(&c);
        if (rcur_done(&c)) return -EBADMSG;
        pthread_mutex_lock(&g_mu);
        status = do_read(id, off, len, &out);
        pthread_mutex_unlock(&g_mu);
    }
    if (!status && out.err) status = out.err;
    evsrv_reply(conn, h, status, status ? NULL : out.data, status ? 0 : out.len);
    wbuf_free(&out);
    return 0;
}

void snap_serve_tick(struct meta *m)
{
    (void)m;
    pthread_mutex_lock(&g_mu);
    if (g_ready.fd >= 0 && net_now_ms() - g_ready.used_ms > SNAP_IDLE_MS) {
        close(g_ready.fd);
        g_ready.fd = -1;
    }
    pthread_mutex_unlock(&g_mu);
}

void snap_serve_stop(void)
{
    pthread_mutex_lock(&g_mu);
    int live = g_thread_live;
    g_thread_live = 0;
    pthread_mutex_unlock(&g_mu);
    if (live) pthread_join(g_thread, NULL);
    pthread_mutex_lock(&g_mu);
    if (g_ready.fd >= 0) close(g_ready.fd);
    g_ready.fd = -1;
    pthread_mutex_unlock(&g_mu);
}
