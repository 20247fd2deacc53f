/* read_path.c - reading file data: split a range at chunk boundaries into pieces of at most
 * CAIRN_IO_MAX, serve each from the disk cache or, for a copy on a server of this machine, in
 * place from its chunk file (local_read.c), and send the others to chunk servers in parallel
 * (each to the replica with the
 * fewest of this client's requests in flight, ties round robin, servers that recently timed
 * out or refused last: cc_order; then the other replicas on an error or a bad checksum, the
 * chunk located again when none could serve), read holes and bytes past a chunk's end as zeros, and
 * keep a per-handle read-ahead window whose prefetches run on a few worker threads into the read
 * cache (rcache.c). Holds an inode's mutex only to consult or fill its chunk location cache. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cksum.h"
#include "client.h"
#include "cstats.h"
#include "dcache.h"
#include "log.h"
#include "net.h"

#define RP_QUEUE_MAX 64

int rp_split(uint64_t off, uint64_t len, uint64_t chunk_size, uint32_t max_piece,
             struct rp_piece *out, int max)
{
    int n = 0;
    uint64_t done = 0;
    if (chunk_size == 0 || max_piece == 0) return -EINVAL;
    while (done < len) {
        uint64_t pos = off + done;
        uint64_t in_chunk = pos % chunk_size;
        uint64_t l = chunk_size - in_chunk;
        if (l > len - done) l = len - done;
        if (l > max_piece) l = max_piece;
        if (n == max) return -E2BIG;
        out[n].index = pos / chunk_size;
        out[n].off = (uint32_t)in_chunk;
        out[n].len = (uint32_t)l;
        out[n].buf_off = done;
        n++;
        done += l;
    }
    return n;
}

uint64_t rp_ra_update(struct rp_ra *ra, uint64_t off, uint64_t len, uint64_t max)
{
    uint64_t lo = ra->next_off > CAIRN_IO_MAX ? ra->next_off - CAIRN_IO_MAX : 0;
    int seq = off >= lo && off <= ra->next_off + CAIRN_IO_MAX;
    if (seq) {
        if (ra->streak < RP_RA_STREAK) ra->streak++;
        if (ra->streak < RP_RA_STREAK)
            ; /* not yet: perhaps a shuffled reader's chance neighbour */
        else if (ra->window == 0)
            ra->window = CM_RA_MIN;
        else if (ra->window < max)
            ra->window *= 2;
        if (ra->window > max) ra->window = max;
        if (off + len > ra->next_off) ra->next_off = off + len;
    } else {
        ra->window = 0;
        ra->done_to = 0;
        ra->streak = 1; /* this read starts the next run */
        ra->next_off = off + len;
    }
    return ra->window;
}

int rp_locate(struct cm *cm, struct inode_st *s, uint64_t index, struct chunk_info *ci,
              int *present)
{
    struct ist_chunk *c = ist_chunk_find(s, index);
    if (!c) {
        struct chunk_info got[CM_LOCATE_BATCH];
        uint32_t n = 0;
        int rc =
            mc_chunk_locate(&cm->meta, s->ino, index, CM_LOCATE_BATCH, got, CM_LOCATE_BATCH, &n);
        if (rc) return rc;
        for (uint64_t i = index; i < index + CM_LOCATE_BATCH; i++) {
            if (ist_chunk_find(s, i)) continue; /* a lease taken here knows better */
            const struct chunk_info *hit = NULL;
            for (uint32_t j = 0; j < n; j++)
                if (got[j].index == i) hit = &got[j];
            ist_chunk_set(s, i, hit != NULL, hit);
        }
        c = ist_chunk_find(s, index);
        if (!c) return -ENOMEM;
    }
    *present = c->present;
    if (c->present) *ci = c->ci;
    return 0;
}

uint32_t rp_piece_size(uint64_t len, int fanout)
{
    if (fanout <= 1 || len < 2 * RP_PIECE_MIN) return CAIRN_IO_MAX;
    uint64_t p = (len + (uint64_t)fanout - 1) / (uint64_t)fanout;
    p = (p + CKSUM_BLOCK - 1) / CKSUM_BLOCK * CKSUM_BLOCK; /* whole checksum blocks */
    if (p < RP_PIECE_MIN) p = RP_PIECE_MIN;
    return p < CAIRN_IO_MAX ? (uint32_t)p : CAIRN_IO_MAX;
}

int rp_disk_cacheable(const struct inode_st *s, uint64_t *tag)
{
    if (!s->have_open_attr || s->writers || s->nleases || s->dlen || s->need_commit ||
        s->size_local != s->open_size || s->size_meta != s->open_size)
        return 0;
    /* the file as it was opened: mtime and size (FNV-1a over their bytes) */
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t v[3] = {(uint64_t)s->open_mtime_s, s->open_mtime_ns, s->open_size};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 8; b++) {
            h ^= (v[i] >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    *tag = h;
    return 1;
}

/* Serve piece pc of chunk ci from the disk cache into dst; 1 on a hit. A piece crossing a
 * segment boundary is not looked up (the read path's pieces never do when aligned). */
static int dc_piece(struct cm *cm, const struct chunk_info *ci, const struct rp_piece *pc,
                    uint64_t tag, uint8_t *dst)
{
    uint32_t seg_off = pc->off / CAIRN_IO_MAX * CAIRN_IO_MAX;
    uint32_t within = pc->off - seg_off;
    int r = within + pc->len <= CAIRN_IO_MAX
                ? dc_read(cm->dcache, ci->chunk_id, ci->version, seg_off, tag, within, pc->len, dst)
                : -ENOENT;
    if (r == (int)pc->len) {
        st_add(ST_DISK_CACHE_HIT_BYTES, pc->len);
        return 1;
    }
    st_add(ST_DISK_CACHE_MISS_BYTES, pc->len);
    return 0;
}

/* Send piece p of chunk ci to the copy cc_order puts first (order filled for the fail-over);
 * chosen one piece at a time, so the pieces submitted so far count as load. */
static void submit_piece(struct cm *cm, const struct chunk_info *ci, const struct rp_piece *p,
                         int *order, uint64_t deadline, struct cc_call *call, int *sub)
{
    cc_order(cm->cc, ci, order);
    *sub = cc_read_submit(cm->cc, ci->loc[order[0]].addr, ci->chunk_id, ci->version, p->off, p->len,
                          deadline, call);
}

/* Read [off, off+len) of the file (inside its size) into out: from the disk cache, in place from
 * a local server's chunk file, or from chunk servers. */
static int fetch(struct cm *cm, struct inode_st *s, uint64_t off, uint64_t len, uint8_t *out)
{
    uint64_t csz = cm->meta.chunk_size;
    uint32_t piece = rp_piece_size(len, cm->cfg.read_pieces);
    uint64_t unit = csz < piece ? csz : piece;
    int max = (int)(len / unit) + 3;
    struct rp_piece stack_p[8];
    struct rp_piece *p = max <= 8 ? stack_p : calloc((size_t)max, sizeof(*p));
    struct {
        struct chunk_info ci;
        int present;
        int order[CAIRN_MAX_LOCS];
        int sub;
        int cached; /* served without a server: by the disk cache or read in place */
        struct cc_call call;
    } stack_st[8], *st;
    st = max <= 8 ? (void *)stack_st : calloc((size_t)max, sizeof(*st));
    int rc = 0;
    if (!p || !st) {
        rc = -ENOMEM;
        goto out;
    }
    int n = rp_split(off, len, csz, piece, p, max);
    if (n < 0) {
        rc = n;
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < n && !rc; i++)
        rc = rp_locate(cm, s, p[i].index, &st[i].ci, &st[i].present);
    uint64_t tag = 0, size_at_open = s->open_size;
    int use_dc = cm->dcache && rp_disk_cacheable(s, &tag);
    pthread_mutex_unlock(&s->mu);
    if (rc) goto out;
    uint64_t deadline = net_now_ms() + (uint64_t)cm->cfg.io_timeout_s * 1000;
    for (int i = 0; i < n; i++) {
        st[i].sub = -ENOENT;
        st[i].cached = 0;
        if (!st[i].present || st[i].ci.nloc == 0) continue;
        if (use_dc && dc_piece(cm, &st[i].ci, &p[i], tag, out + p[i].buf_off)) {
            st[i].cached = 1;
            continue;
        }
        if (cm->local) {
            st[i].cached = -1; /* read in place below, once the others are on their way */
            continue;
        }
        submit_piece(cm, &st[i].ci, &p[i], st[i].order, deadline, &st[i].call, &st[i].sub);
    }
    for (int i = 0; i < n; i++) {
        if (st[i].cached != -1) continue;
        st[i].cached = lr_read(cm->local, &st[i].ci, p[i].off, p[i].len, out + p[i].buf_off) == 0;
        if (!st[i].cached)
            submit_piece(cm, &st[i].ci, &p[i], st[i].order, deadline, &st[i].call, &st[i].sub);
    }
    for (int i = 0; i < n; i++) {
        uint8_t *dst = out + p[i].buf_off;
        if (!st[i].present) {
            memset(dst, 0, p[i].len);
            continue;
        }
        if (st[i].cached) continue;
        int r = st[i].sub;
        if (r == 0) r = cc_read_finish(&st[i].call, deadline, p[i].off, p[i].len, dst);
        if (r == 0) continue;
        /* the other replicas, then the chunk located afresh */
        struct chunk_info ci = st[i].ci;
        if (ci.nloc > 1) {
            struct chunk_info rest = ci;
            rest.nloc = ci.nloc - 1;
            for (int k = 0; k < rest.nloc; k++)
                rest.loc[k] = ci.loc[st[i].order[k + 1]];
            r = cc_read(cm->cc, &rest, p[i].off, p[i].len, dst);
        }
        if (r == 0) continue;
        pthread_mutex_lock(&s->mu);
        struct ist_chunk *c = ist_chunk_find(s, p[i].index);
        if (c && !ist_lease_find(s, p[i].index)) {
            /* forget it so it is located again */
            *c = s->chunks[--s->nchunks];
        }
        int present = 0;
        int lr = rp_locate(cm, s, p[i].index, &ci, &present);
        pthread_mutex_unlock(&s->mu);
        if (lr) {
            r = lr;
        } else if (!present) {
            memset(dst, 0, p[i].len);
            r = 0;
        } else {
            r = cc_read(cm->cc, &ci, p[i].off, p[i].len, dst);
        }
        if (r) {
            LOG_ERR("read", "inode %" PRIu64 " chunk %" PRIu64 ": no replica could serve: %s",
                    s->ino, p[i].index, strerror(-r));
            if (!rc) rc = -EIO;
        }
    }
    /* offer the disk cache the whole segments this read fetched from the servers */
    for (int i = 0; use_dc && !rc && i < n; i++) {
        if (!st[i].present || st[i].cached) continue;
        uint32_t seg_off = p[i].off / CAIRN_IO_MAX * CAIRN_IO_MAX;
        uint64_t seg_file = p[i].index * csz + seg_off; /* the segment's file offset */
        uint64_t seg_end = seg_file + CAIRN_IO_MAX;
        if (seg_end > (p[i].index + 1) * csz) seg_end = (p[i].index + 1) * csz;
        if (seg_end > size_at_open) seg_end = size_at_open;
        /* once per segment: by the piece that starts it, when the read covers all of it */
        if (p[i].off != seg_off || seg_file < off || seg_end > off + len || seg_end <= seg_file)
            continue;
        dc_put(cm->dcache, st[i].ci.chunk_id, st[i].ci.version, seg_off, tag,
               out + (seg_file - off), (uint32_t)(seg_end - seg_file));
    }
out:
    if (p != stack_p) free(p);
    if (st != (void *)stack_st) free(st);
    return rc;
}

/* ---- prefetch workers --------------------------------------------------------------------- */

struct rp_job {
    struct inode_st *s; /* holds a reference (a segment job) */
    uint64_t seg;
    uint64_t size;
    struct rc_ent *e;
    int whole_file; /* a file job (rp_prefetch_file): f says which; s, e unused */
    struct ds_file f;
};

struct rp_prefetcher {
    struct cm *cm;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rp_job q[RP_QUEUE_MAX];
    int head, n;
    int stop;
    int nthreads;
    pthread_t th[16];
};

/* A buffer for a segment loaded into the read cache (freed by it): page aligned, so a read in
 * place goes around the page cache into it rather than through it (a copy, and the chunk
 * file's pages to drop again). NULL when out of memory. */
static uint8_t *seg_buf(uint32_t len)
{
    void *b = NULL;
    return posix_memalign(&b, 4096, len ? len : 1) == 0 ? b : NULL;
}

static void load_segment(struct cm *cm, struct inode_st *s, uint64_t seg, uint64_t size,
                         struct rc_ent *e)
{
    uint64_t start = seg * CM_SEG_SIZE;
    uint64_t end = start + CM_SEG_SIZE;
    if (end > size) end = size;
    uint32_t len = end > start ? (uint32_t)(end - start) : 0;
    uint8_t *buf = seg_buf(len);
    int rc = buf ? 0 : -ENOMEM;
    if (!rc && len) rc = fetch(cm, s, start, len, buf);
    if (rc) {
        free(buf);
        buf = NULL;
    }
    rc_end_load(cm->cache, e, buf, len, rc);
}

/* The attributes f will be read with: the listing's, or asked for. 0 or -errno. */
static int file_attr(struct cm *cm, const struct ds_file *f, uint64_t *size, int64_t *ms,
                     uint32_t *mns)
{
    if (f->have_attr) {
        *size = f->size;
        *ms = f->mtime_s;
        *mns = f->mtime_ns;
        return 0;
    }
    struct cairn_attr a;
    int rc = mc_getattr(&cm->meta, f->ino, &a);
    if (rc) return rc;
    if (!S_ISREG(a.mode)) return -EINVAL;
    *size = a.size;
    *ms = a.mtime_s;
    *mns = a.mtime_ns;
    return 0;
}

/* Prefetch the first RP_FILE_SEGS segments of a file a directory scan is about to open. The
 * inode's state records the attributes the data goes with (as an open would), so the open
 * that follows keeps the prefetched segments when the file is unchanged and drops them
 * otherwise. A file open or written here is left alone. */
static void load_file(struct cm *cm, const struct ds_file *f)
{
    uint64_t size;
    int64_t ms;
    uint32_t mns;
    if (file_attr(cm, f, &size, &ms, &mns)) return;
    struct inode_st *s = ist_get(cm->inodes, f->ino);
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    int busy = s->refs > 1 || s->writers || s->nleases || s->dlen || s->need_commit;
    if (!busy && !(s->have_open_attr && s->open_mtime_s == ms && s->open_mtime_ns == mns &&
                   s->open_size == size)) {
        rc_drop_ino(cm->cache, f->ino);
        ist_chunks_clear(s);
        s->open_mtime_s = ms;
        s->open_mtime_ns = mns;
        s->open_size = size;
        s->size_meta = s->size_local = size;
        s->have_open_attr = 1;
    }
    pthread_mutex_unlock(&s->mu);
    for (uint64_t seg = 0; !busy && seg < RP_FILE_SEGS && seg * CM_SEG_SIZE < size; seg++) {
        struct rc_ent *e;
        if (rc_begin_load(cm->cache, f->ino, seg, &e) != 1) continue;
        rc_mark_prefetch(cm->cache, e);
        load_segment(cm, s, seg, size, e);
    }
    ist_put(cm->inodes, s);
}

static void *pf_main(void *arg)
{
    struct rp_prefetcher *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->n == 0)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->n == 0 && p->stop) break;
        struct rp_job j = p->q[p->head];
        p->head = (p->head + 1) % RP_QUEUE_MAX;
        p->n--;
        pthread_mutex_unlock(&p->mu);
        if (j.whole_file) {
            if (!p->stop) load_file(p->cm, &j.f);
        } else {
            if (p->stop)
                rc_end_load(p->cm->cache, j.e, NULL, 0, -ECANCELED);
            else
                load_segment(p->cm, j.s, j.seg, j.size, j.e);
            ist_put(p->cm->inodes, j.s);
        }
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct rp_prefetcher *rp_prefetcher_new(struct cm *cm, int nthreads)
{
    struct rp_prefetcher *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->cm = cm;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (nthreads > 16) nthreads = 16;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&p->th[p->nthreads], NULL, pf_main, p) == 0) p->nthreads++;
    return p;
}

void rp_prefetcher_free(struct rp_prefetcher *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Queue a job unless the queue is full or stopping; 0 or -EAGAIN. */
static int pf_enqueue(struct rp_prefetcher *p, const struct rp_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (p->n == RP_QUEUE_MAX || p->stop) {
        pthread_mutex_unlock(&p->mu);
        return -EAGAIN;
    }
    p->q[(p->head + p->n) % RP_QUEUE_MAX] = *j;
    p->n++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void rp_prefetch_file(struct cm *cm, const struct ds_file *f)
{
    if (!cm->pf || cm->pf->nthreads == 0) return;
    struct rp_job j = {.whole_file = 1, .f = *f};
    pf_enqueue(cm->pf, &j);
}

/* Queue segment seg of s for prefetching (if not cached and there is room). */
static void prefetch(struct cm *cm, struct inode_st *s, uint64_t seg, uint64_t size)
{
    struct rp_prefetcher *p = cm->pf;
    if (!p || p->nthreads == 0) return;
    pthread_mutex_lock(&p->mu);
    int full = p->n == RP_QUEUE_MAX;
    pthread_mutex_unlock(&p->mu);
    if (full) return;
    struct rc_ent *e;
    if (rc_begin_load(cm->cache, s->ino, seg, &e) != 1) return;
    rc_mark_prefetch(cm->cache, e);
    struct inode_st *ref = ist_get(cm->inodes, s->ino); /* the job's reference */
    struct rp_job j = {.s = ref, .seg = seg, .size = size, .e = e};
    if (!ref || pf_enqueue(p, &j)) {
        rc_end_load(cm->cache, e, NULL, 0, -EAGAIN);
        ist_put(cm->inodes, ref);
    }
}

int rp_read(struct cm *cm, struct inode_st *s, struct rp_ra *ra, uint64_t off, size_t len,
            uint8_t *out, size_t *got)
{
    return rp_read_pinned(cm, s, ra, off, len, out, NULL, got, NULL);
}

/* Point *data at [pos, pos+part) of segment seg when the read cache holds all of it: *pin set,
 * 1. Else 0. */
static int pin_part(struct cm *cm, struct inode_st *s, uint64_t pos, uint64_t part,
                    const uint8_t **data, struct rc_ent **pin)
{
    uint64_t seg = pos / CM_SEG_SIZE;
    uint32_t soff = (uint32_t)(pos % CM_SEG_SIZE);
    const uint8_t *d;
    uint32_t have;
    struct rc_ent *e = rc_pin(cm->cache, s->ino, seg, cm->cfg.io_timeout_s * 1000, &d, &have);
    if (!e) return 0;
    if (soff >= have || have - soff < part) {
        rc_unpin(cm->cache, e);
        return 0;
    }
    *data = d + soff;
    *pin = e;
    return 1;
}

int rp_read_pinned(struct cm *cm, struct inode_st *s, struct rp_ra *ra, uint64_t off, size_t len,
                   uint8_t *out, const uint8_t **data, size_t *got, struct rc_ent **pin)
{
    *got = 0;
    if (pin) {
        *data = out;
        *pin = NULL;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    rc = wp_readable_locked(cm, s, off, len);
    uint64_t size = ist_size(s);
    uint64_t window = 0, pf_from = 0, pf_to = 0;
    if (!rc && off < size) {
        if (len > size - off) len = (size_t)(size - off);
        window = rp_ra_update(ra, off, len, cm->cfg.readahead_max);
        if (window) {
            uint64_t end = off + len;
            /* the kernel asks for the next kernel_readahead bytes by itself (async, in
             * parallel): prefetch what lies beyond, or both would fetch the same segments */
            uint64_t from = end + cm->cfg.kernel_readahead;
            pf_from = ra->done_to > from ? ra->done_to : from;
            pf_to = from + window;
            if (pf_to > size) pf_to = size;
            if (pf_to > ra->done_to) ra->done_to = pf_to;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (rc) return rc;
    if (off >= size || len == 0) return 0;

    int tmo = cm->cfg.io_timeout_s * 1000;
    uint64_t pos = off, end = off + len;
    /* all of it in one cached segment: the reply goes out of the cache's buffer, uncopied */
    if (pin && off / CM_SEG_SIZE == (end - 1) / CM_SEG_SIZE &&
        pin_part(cm, s, off, len, data, pin)) {
        st_add(ST_CACHE_HIT_BYTES, len);
        pos = end;
    }
    while (pos < end) {
        uint64_t seg = pos / CM_SEG_SIZE;
        uint32_t soff = (uint32_t)(pos % CM_SEG_SIZE);
        uint64_t part = CM_SEG_SIZE - soff;
        if (part > end - pos) part = end - pos;
        uint8_t *dst = out + (pos - off);
        int n = rc_read(cm->cache, s->ino, seg, soff, (uint32_t)part, dst, tmo);
        if (n == (int)part) {
            st_add(ST_CACHE_HIT_BYTES, part);
            pos += part;
            continue;
        }
        st_add(ST_CACHE_MISS_BYTES, part);
        struct rc_ent *e;
        uint64_t seg_len =
            size - seg * CM_SEG_SIZE < CM_SEG_SIZE ? size - seg * CM_SEG_SIZE : CM_SEG_SIZE;
        /* a read of a whole segment goes straight into the reply: the kernel's page cache
         * keeps it, a copy here would only be a second one */
        int whole = soff == 0 && part >= seg_len;
        if (window && n < 0 && !whole && rc_begin_load(cm->cache, s->ino, seg, &e) == 1) {
            /* sequential: load the whole segment into the cache, then copy our part */
            uint64_t sstart = seg * CM_SEG_SIZE, send = sstart + CM_SEG_SIZE;
            if (send > size) send = size;
            uint32_t slen = (uint32_t)(send - sstart);
            uint8_t *buf = seg_buf(slen);
            rc = buf ? fetch(cm, s, sstart, slen, buf) : -ENOMEM;
            if (!rc) memcpy(dst, buf + soff, (size_t)part);
            if (rc) {
                free(buf);
                buf = NULL;
            }
            rc_end_load(cm->cache, e, buf, slen, rc);
        } else {
            rc = fetch(cm, s, pos, part, dst);
        }
        if (rc) return rc;
        pos += part;
    }
    *got = len;
    for (uint64_t p = pf_from; p < pf_to; p = (p / CM_SEG_SIZE + 1) * CM_SEG_SIZE)
        prefetch(cm, s, p / CM_SEG_SIZE, size);
    return 0;
}
