/* cs_reads.c - the chunk server's read workers: a pool of read_threads threads serving the
 * CHK_READ requests that connection threads hand over (cs_conn.h), so that one connection can
 * have several reads on the disk at once and a slow disk read does not hold up the frames
 * behind it. One FIFO queue for every connection; each worker owns one read buffer (the
 * largest reply's data and checksums), so the memory of reads in flight is bounded by the
 * number of workers, and the queue by max_conns x conn_reads. A worker sends its reply itself,
 * under the connection's write lock; a request of a connection that died meanwhile is dropped
 * without touching the disk. The workers live as long as the process. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "cksum.h"
#include "cs_conn.h"
#include "log.h"

struct cs_rjob {
    struct cs_rjob *next;
    struct cs_conn *c;
    struct wire_hdr h; /* the request's type and reqid */
    uint64_t id;
    uint32_t ver, off, len;
    uint8_t flags;
    uint64_t t_recv; /* cstore_now_us: the frame was received */
};

struct cs_reads {
    struct cs_state *s;
    pthread_mutex_t lock; /* the queue */
    pthread_cond_t more;
    struct cs_rjob *head, *tail;
};

struct cs_rworker {
    struct cs_reads *p;
    uint8_t *buf;  /* CAIRN_IO_MAX + 2 blocks: whole blocks around the range asked */
    uint64_t *cks; /* their checksums */
    struct wbuf out;
};

/* Read the chunk for job j into the worker's buffer; the reply's fields go to w->out, the
 * data length to *dlen. 0 or the store's error (-EUCLEAN is reported to meta). */
static int rd_chunk(struct cs_rworker *w, const struct cs_rjob *j, uint32_t *dlen)
{
    struct cs_state *s = w->p->s;
    uint32_t doff = 0, clen = 0, nb = 0, bad = 0;
    struct cstore_times tm = {0};
    int rc = cstore_read_timed(&s->store, j->id, j->ver, j->off, j->len, w->buf, &doff, &clen, &nb,
                               w->cks, dlen, &bad, (j->flags & CHK_READ_EXACT) != 0, &tm);
    cs_stat_add(&s->stats.read_disk_us, tm.disk_us);
    cs_stat_add(&s->stats.read_checksum_us, tm.cksum_us);
    if (rc == -EUCLEAN) {
        cs_stat_add(&s->stats.cksum_errors, 1);
        cs_meta_report_bad(s, j->id, j->ver, bad);
    }
    if (rc) return rc;
    wbuf_put_u32(&w->out, doff);
    wbuf_put_u32(&w->out, clen);
    wbuf_put_u32(&w->out, nb);
    for (uint32_t i = 0; i < nb; i++)
        wbuf_put_u64(&w->out, w->cks[i]);
    wbuf_put_u32(&w->out, *dlen); /* bytes: u32 length then the data (sent as the second piece) */
    return 0;
}

/* The end of a read of c: the last use of c by a worker (it may be freed right after). */
static void rd_done(struct cs_conn *c)
{
    __atomic_sub_fetch(&c->s->load, 1, __ATOMIC_RELAXED);
    cs_stats_read_end(c->s);
    pthread_mutex_lock(&c->lock);
    c->reads--;
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->lock);
}

static void rd_serve(struct cs_rworker *w, struct cs_rjob *j)
{
    struct cs_conn *c = j->c;
    struct cs_stats *st = &c->s->stats;
    uint64_t t0 = cstore_now_us();
    cs_stat_add(&st->read_queue_us, t0 - j->t_recv);
    uint32_t dlen = 0;
    int rc = -ECONNRESET; /* a dead connection's read is dropped, not read */
    wbuf_reset(&w->out);
    if (!cs_conn_dead(c)) rc = rd_chunk(w, j, &dlen);
    uint64_t t1 = cstore_now_us();
    cs_conn_reply(c, &j->h, rc, &w->out, w->buf, dlen, j->t_recv);
    cs_stat_add(&st->read_send_us, cstore_now_us() - t1);
    rd_done(c);
}

/* A worker's buffers (w->p set by the caller); 0 or -ENOMEM (then nothing to free). */
static int rd_worker_init(struct cs_rworker *w)
{
    w->buf = malloc(CAIRN_IO_MAX + 2 * CKSUM_BLOCK);
    w->cks = malloc(sizeof(uint64_t) * (cksum_nblocks(CAIRN_IO_MAX) + 2));
    wbuf_init(&w->out);
    if (w->buf && w->cks) return 0;
    free(w->buf);
    free(w->cks);
    return -ENOMEM;
}

void cs_reads_conn_free(struct cs_conn *c)
{
    struct cs_rworker *w = c->inline_rd;
    if (!w) return;
    free(w->buf);
    free(w->cks);
    wbuf_free(&w->out);
    free(w);
    c->inline_rd = NULL;
}

/* Whether the connection thread should serve this read itself: no read of c in flight and no
 * further frame already waiting on the socket (then the pool gives them parallelism). */
static int serve_inline(struct cs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    int idle = c->reads == 0;
    pthread_mutex_unlock(&c->lock);
    if (!idle) return 0;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) != 0) return 0;
    if (!c->inline_rd) {
        struct cs_rworker *w = calloc(1, sizeof(*w));
        if (!w) return 0;
        w->p = c->s->reads;
        if (rd_worker_init(w)) {
            free(w);
            return 0;
        }
        c->inline_rd = w;
    }
    return 1;
}

static void *rd_worker_main(void *arg)
{
    struct cs_rworker *w = arg;
    struct cs_reads *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head)
            pthread_cond_wait(&p->more, &p->lock);
        struct cs_rjob *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        rd_serve(w, j);
        free(j);
    }
    return NULL;
}

int cs_reads_start(struct cs_state *s)
{
    struct cs_reads *p = calloc(1, sizeof(*p));
    if (!p) return -ENOMEM;
    p->s = s;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->more, NULL);
    int started = 0, rc = 0;
    for (int i = 0; i < s->cfg.read_threads && !rc; i++) {
        struct cs_rworker *w = calloc(1, sizeof(*w));
        if (w) w->p = p;
        pthread_t th;
        rc = !w || rd_worker_init(w) ? -ENOMEM : 0;
        if (!rc && (rc = -pthread_create(&th, NULL, rd_worker_main, w))) {
            free(w->buf);
            free(w->cks);
        }
        if (rc) {
            free(w);
        } else {
            pthread_detach(th);
            started++;
        }
    }
    if (!started) return rc ? rc : -EINVAL; /* p stays: nothing else refers to it */
    if (rc) LOG_WARN("cs", "only %d read threads started: %s", started, strerror(-rc));
    s->reads = p;
    return 0;
}

int cs_reads_submit(struct cs_conn *c, const struct wire_hdr *h, struct rcur *r, uint64_t t_recv)
{
    struct cs_state *s = c->s;
    struct cs_rjob j = {.c = c, .h = *h, .t_recv = t_recv};
    j.id = rcur_u64(r);
    j.ver = rcur_u32(r);
    j.off = rcur_u32(r);
    j.len = rcur_u32(r);
    j.flags = r->left > 0 ? rcur_u8(r) : 0; /* optional; absent = 0 */
    struct wbuf none = {0};
    if (rcur_done(r)) return -EBADMSG;
    if (j.len > CAIRN_IO_MAX) return cs_conn_reply(c, h, -EINVAL, &none, NULL, 0, t_recv);
    if (serve_inline(c)) {
        pthread_mutex_lock(&c->lock);
        c->reads++;
        pthread_mutex_unlock(&c->lock);
        __atomic_add_fetch(&s->load, 1, __ATOMIC_RELAXED);
        cs_stats_read_begin(s);
        rd_serve(c->inline_rd, &j);
        return cs_conn_dead(c) ? -EPIPE : 0;
    }
    struct cs_rjob *q = malloc(sizeof(*q));
    if (!q) return cs_conn_reply(c, h, -ENOMEM, &none, NULL, 0, t_recv);
    *q = j;
    pthread_mutex_lock(&c->lock);
    while (c->reads >= s->cfg.conn_reads)
        pthread_cond_wait(&c->done, &c->lock);
    c->reads++;
    pthread_mutex_unlock(&c->lock);
    __atomic_add_fetch(&s->load, 1, __ATOMIC_RELAXED);
    cs_stats_read_begin(s);
    struct cs_reads *p = s->reads;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = q;
    else
        p->head = q;
    p->tail = q;
    pthread_cond_signal(&p->more);
    pthread_mutex_unlock(&p->lock);
    return 0;
}
