/* dcache.c - the client's local disk cache (dcache.h): the index of the entry files (hash table
 * by key and LRU list under one mutex), the writer thread that turns queued puts into entry
 * files, the scan thread that indexes the files an earlier mount left, and the verified read.
 *
 * Invariants (under mu): an entry is in the hash iff it is on the LRU list, and a key is in the
 * hash at most once; `used` is the sum of the charges of the indexed entries plus `reserved`
 * (the file the writer is writing), and is at most `limit` once the writer or the scan has
 * finished a step; the writer is the only one to create files, this mount's have a gen of
 * `gen_base` or more (the scan leaves them alone). Files are removed outside mu and by name; a
 * name holds its gen, which no other file ever had, so removing a name removes exactly the
 * entry that was detached from the index, even when a newer entry of the same key exists.
 * A put that dc_drop_old made useless while it was being written is removed, not indexed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cksum.h"
#include "codec.h"
#include "dcache.h"
#include "dcache_index.h"
#include "fileio.h"
#include "log.h"
#include "proto.h"

#define DC_MAGIC 0x3143444e52494143ull /* "CAIRNDC1" */
#define DC_FORMAT 1u
#define DC_MAXBLK (CAIRN_IO_MAX / CKSUM_BLOCK)
#define DC_HDR_CKS 48                           /* the block checksums start here */
#define DC_HDR_SUM (DC_HDR_CKS + 8 * DC_MAXBLK) /* the header's own checksum */
#define DC_HDR_LEN (DC_HDR_SUM + 8)
#define DC_PAGE 4096u
#define DC_NAME_LEN 51 /* <id:16>-<ver:8>-<seg_off:8>-<gen:16> */
#define DC_PATH_MAX 64
#define DC_GEN_SPAN ((uint64_t)1 << 40) /* gens one mount may use: the next starts above them */
#define DC_IDLE_WAIT_S 1                /* the writer looks up at least this often */

struct dc_ent {
    struct dc_ent *hnext;       /* chain of h[]; also links detached entries for removal */
    struct dc_ent *prev, *next; /* LRU, lru.next = most recent */
    uint64_t id, tag, gen;
    uint32_t ver, seg_off, len;
};

struct dc_job {
    struct dc_job *next;
    uint64_t id, tag;
    uint32_t ver, seg_off, len;
    uint8_t data[];
};

struct dcache {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* the writer: a job was queued, or stop */
    pthread_cond_t idle_cv; /* dc_flush: a job was done, or the scan ended */
    char *dir;              /* for logs */
    int rootfd, lockfd;
    uint64_t limit, used, reserved;
    struct dc_ent **h;
    size_t hmask;
    struct dc_ent lru;
    uint64_t nent;
    uint32_t max_seg; /* the highest seg_off indexed so far: bounds dc_drop_old */
    struct dc_job *qhead, **qtail;
    uint64_t qbytes; /* data bytes of the queued jobs and of the one being written */
    int writing, scanning, stopping;
    int known_all; /* every entry file in the folder is indexed: the scan went through it all,
                    * or the index file of a clean close was loaded (dc_close then writes one) */
    const struct dc_job *inflight; /* the job the writer is writing */
    int inflight_dropped;          /* dc_drop_old came for it: do not index it */
    uint64_t gen_base, next_gen;   /* next_gen: the writer's only */
    int write_failing;             /* a write error was logged and none succeeded since */
    int no_direct;                 /* the folder refused O_DIRECT: read through the page cache */
    pthread_t writer, scanner;
    int have_writer, have_scanner;
    struct dc_stats st; /* counters (atomic adds); bytes_used, entries, limit unused */
};

/* Entry header, decoded. */
struct dc_hdr {
    uint64_t id, tag;
    uint32_t ver, seg_off, len, nblocks;
    uint64_t cks[DC_MAXBLK];
};

static void count(uint64_t *ctr, uint64_t n)
{
    __atomic_fetch_add(ctr, n, __ATOMIC_RELAXED);
}

static uint64_t key_hash(uint64_t id, uint32_t seg_off)
{
    uint64_t h =
        id * 0x9e3779b97f4a7c15ull ^ (uint64_t)(seg_off / CAIRN_IO_MAX + 1) * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 31;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static unsigned key_sub(uint64_t id, uint32_t seg_off)
{
    return (unsigned)(key_hash(id, seg_off) >> 56);
}

static uint64_t ent_charge(uint32_t len)
{
    return ((uint64_t)DC_DATA_OFF + len + DC_PAGE - 1) / DC_PAGE * DC_PAGE;
}

static void ent_name(char *out, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t gen)
{
    snprintf(out, DC_PATH_MAX, "%02x/%016" PRIx64 "-%08" PRIx32 "-%08" PRIx32 "-%016" PRIx64,
             key_sub(id, seg_off), id, ver, seg_off, gen);
}

static void tmp_name(char *out, uint64_t id, uint32_t seg_off, uint64_t gen)
{
    snprintf(out, DC_PATH_MAX, "%02x/tmp-%016" PRIx64, key_sub(id, seg_off), gen);
}

static void mono_deadline(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += seconds;
}

/* ---- the index (all under mu) --------------------------------------------------------- */

static struct dc_ent **bucket(struct dcache *c, uint64_t id, uint32_t seg_off)
{
    return &c->h[key_hash(id, seg_off) & c->hmask];
}

static struct dc_ent *find(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off)
{
    for (struct dc_ent *e = *bucket(c, id, seg_off); e; e = e->hnext)
        if (e->id == id && e->ver == ver && e->seg_off == seg_off) return e;
    return NULL;
}

static void lru_unlink(struct dc_ent *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->next = e->prev = e;
}

static void lru_insert_after(struct dc_ent *at, struct dc_ent *e)
{
    e->prev = at;
    e->next = at->next;
    at->next->prev = e;
    at->next = e;
}

/* Index e (its key not indexed yet), as the most recent entry or (scanned ones) the oldest;
 * charges it. */
static void link_ent(struct dcache *c, struct dc_ent *e, int most_recent)
{
    struct dc_ent **b = bucket(c, e->id, e->seg_off);
    e->hnext = *b;
    *b = e;
    lru_insert_after(most_recent ? &c->lru : c->lru.prev, e);
    c->used += ent_charge(e->len);
    c->nent++;
    if (e->seg_off > c->max_seg) c->max_seg = e->seg_off;
}

/* Take e out of the index and uncharge it; it goes on *gone for remove_files(). */
static void detach(struct dcache *c, struct dc_ent *e, struct dc_ent **gone)
{
    struct dc_ent **pp = bucket(c, e->id, e->seg_off);
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(e);
    c->used -= ent_charge(e->len);
    c->nent--;
    e->hnext = *gone;
    *gone = e;
}

/* Detach least recently used entries until used <= limit. */
static void evict(struct dcache *c, struct dc_ent **gone)
{
    while (c->used > c->limit && c->lru.prev != &c->lru) {
        detach(c, c->lru.prev, gone);
        count(&c->st.evicted, 1);
    }
}

/* Remove the files of detached entries and free them (outside mu). */
static void remove_files(struct dcache *c, struct dc_ent *gone)
{
    char name[DC_PATH_MAX];
    while (gone) {
        struct dc_ent *n = gone->hnext;
        ent_name(name, gone->id, gone->ver, gone->seg_off, gone->gen);
        unlinkat(c->rootfd, name, 0);
        free(gone);
        gone = n;
    }
}

/* Detach the entry of this key if it is still the one of this gen (a newer one stays). */
static void drop_gen(struct dcache *c, const struct dc_ent *snap)
{
    struct dc_ent *gone = NULL;
    pthread_mutex_lock(&c->mu);
    struct dc_ent *e = find(c, snap->id, snap->ver, snap->seg_off);
    if (e && e->gen == snap->gen) detach(c, e, &gone);
    pthread_mutex_unlock(&c->mu);
    if (gone) {
        remove_files(c, gone);
    } else {
        char name[DC_PATH_MAX];
        ent_name(name, snap->id, snap->ver, snap->seg_off, snap->gen);
        unlinkat(c->rootfd, name, 0);
    }
}

/* ---- entry files ------------------------------------------------------------------------ */

/* Fill the first DC_HDR_LEN bytes of h for job j (the rest of the header area stays zero). */
static void hdr_encode(uint8_t *h, const struct dc_job *j)
{
    uint64_t cks[DC_MAXBLK];
    uint32_t n = cksum_blocks(j->data, j->len, cks);
    memset(h, 0, DC_HDR_LEN);
    le_put64(h, DC_MAGIC);
    le_put32(h + 8, DC_FORMAT);
    le_put32(h + 12, DC_DATA_OFF);
    le_put64(h + 16, j->id);
    le_put32(h + 24, j->ver);
    le_put32(h + 28, j->seg_off);
    le_put64(h + 32, j->tag);
    le_put32(h + 40, j->len);
    le_put32(h + 44, n);
    for (uint32_t i = 0; i < n; i++)
        le_put64(h + DC_HDR_CKS + 8 * i, cks[i]);
    le_put64(h + DC_HDR_SUM, cksum_xxh3(h, DC_HDR_SUM));
}

/* 0, or -EUCLEAN when h is not a header this module wrote. */
static int hdr_decode(const uint8_t *h, struct dc_hdr *out)
{
    if (le_get64(h) != DC_MAGIC || le_get32(h + 8) != DC_FORMAT ||
        le_get32(h + 12) != DC_DATA_OFF || le_get64(h + DC_HDR_SUM) != cksum_xxh3(h, DC_HDR_SUM))
        return -EUCLEAN;
    out->id = le_get64(h + 16);
    out->ver = le_get32(h + 24);
    out->seg_off = le_get32(h + 28);
    out->tag = le_get64(h + 32);
    out->len = le_get32(h + 40);
    out->nblocks = le_get32(h + 44);
    if (out->len == 0 || out->len > CAIRN_IO_MAX || out->seg_off % CAIRN_IO_MAX ||
        out->nblocks != cksum_nblocks(out->len))
        return -EUCLEAN;
    for (uint32_t i = 0; i < out->nblocks; i++)
        out->cks[i] = le_get64(h + DC_HDR_CKS + 8 * i);
    return 0;
}

/* Open name (relative to the cache folder) and read and decode its header. Returns the fd,
 * -ENOENT (no such file), -EUCLEAN (not a valid entry file; fd closed), or another -errno. */
static int hdr_open(int dirfd, const char *name, struct dc_hdr *h, struct stat *st, uint32_t ra_off,
                    uint32_t ra_len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return errno == ELOOP ? -EUCLEAN : -errno;
    /* start reading the data wanted while the header is read: one disk wait, not two */
    if (ra_len)
        posix_fadvise(fd, DC_DATA_OFF + ra_off / CKSUM_BLOCK * CKSUM_BLOCK,
                      ra_len + ra_off % CKSUM_BLOCK + CKSUM_BLOCK, POSIX_FADV_WILLNEED);
    else /* the header alone (the scan): no read-ahead into the data */
        posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    uint8_t b[DC_HDR_LEN];
    int rc = 0;
    if (fstat(fd, st) < 0) rc = -errno;
    if (!rc && !S_ISREG(st->st_mode)) rc = -EUCLEAN;
    if (!rc) rc = fio_pread_all(fd, b, sizeof(b), 0);
    if (rc == -EIO) rc = -EUCLEAN; /* short */
    if (!rc) rc = hdr_decode(b, h);
    if (!rc && (uint64_t)st->st_size != (uint64_t)DC_DATA_OFF + h->len) rc = -EUCLEAN;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

static int verify(const uint8_t *p, uint32_t n, uint64_t want)
{
    return cksum_xxh3(p, n) == want ? 0 : -EUCLEAN;
}

static uint32_t blk_end(const struct dc_hdr *h, uint32_t b)
{
    uint64_t e = (uint64_t)(b + 1) * CKSUM_BLOCK;
    return e < h->len ? (uint32_t)e : h->len;
}

/* Read [off, off+len) of the data (inside h->len) into out, verifying every block it touches:
 * a run of blocks wholly inside the range is read straight into out with one pread, a block
 * the range covers in part goes through a bounce buffer. 0, -EUCLEAN (a block does not verify
 * or cannot be read), -ENOMEM. */
static int read_blocks(int fd, const struct dc_hdr *h, uint32_t off, uint32_t len, uint8_t *out)
{
    uint32_t end = off + len, last = (end - 1) / CKSUM_BLOCK;
    uint8_t *bounce = NULL;
    int rc = 0;
    for (uint32_t b = off / CKSUM_BLOCK; b <= last && !rc;) {
        uint32_t start = b * CKSUM_BLOCK;
        if (start >= off && blk_end(h, b) <= end) {
            uint32_t k = b;
            while (k < last && blk_end(h, k + 1) <= end)
                k++;
            rc = fio_pread_all(fd, out + (start - off), blk_end(h, k) - start, DC_DATA_OFF + start);
            for (uint32_t i = b; i <= k && !rc; i++)
                rc = verify(out + (i * CKSUM_BLOCK - off), blk_end(h, i) - i * CKSUM_BLOCK,
                            h->cks[i]);
            b = k + 1;
            continue;
        }
        if (!bounce && !(bounce = malloc(CKSUM_BLOCK))) {
            rc = -ENOMEM;
            break;
        }
        rc = fio_pread_all(fd, bounce, blk_end(h, b) - start, DC_DATA_OFF + start);
        if (!rc) rc = verify(bounce, blk_end(h, b) - start, h->cks[b]);
        if (!rc) {
            uint32_t lo = start > off ? start : off, hi = blk_end(h, b) < end ? blk_end(h, b) : end;
            memcpy(out + (lo - off), bounce + (lo - start), hi - lo);
        }
        b++;
    }
    free(bounce);
    return rc == -ENOMEM ? rc : rc ? -EUCLEAN : 0;
}

/* Read bytes of the entry snap (as indexed) through its file. 0, -ENOENT (the file has gone),
 * -EAGAIN (could not try: no fd or memory; the entry may be fine), -EUCLEAN. */
/* read_entry for a range that starts the data and ends on a block boundary or at its end
 * (a whole segment, a whole small file): the header and the data in one preadv, so a cold
 * entry costs one disk read, not two. Into a page-aligned out it goes around the page cache
 * (O_DIRECT: whole pages straight into out, a last part page through a page of our own), so
 * that what the kernel caches for the mount is not cached a second time for its entry file;
 * a folder that refuses O_DIRECT (tmpfs) is read through the page cache from then on. */
static int read_entry_head(struct dcache *c, const char *name, const struct dc_ent *snap,
                           uint32_t len, uint8_t *out)
{
    const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    int direct = (uintptr_t)out % DC_PAGE == 0 && !__atomic_load_n(&c->no_direct, __ATOMIC_RELAXED);
    int fd = openat(c->rootfd, name, flags | (direct ? O_DIRECT : 0));
    if (fd < 0 && direct && errno == EINVAL) {
        __atomic_store_n(&c->no_direct, 1, __ATOMIC_RELAXED);
        fd = openat(c->rootfd, name, flags);
    }
    if (fd < 0) return errno == ENOENT ? -ENOENT : errno == ELOOP ? -EUCLEAN : -EAGAIN;
    _Alignas(DC_PAGE) uint8_t hb[DC_DATA_OFF];
    ssize_t n = fio_preadv_pages(fd, hb, sizeof(hb), out, len, 0);
    close(fd);
    if (n < 0) return n == -EIO ? -EUCLEAN : -EAGAIN;
    struct dc_hdr h;
    if ((size_t)n != sizeof(hb) + len || hdr_decode(hb, &h) || h.id != snap->id ||
        h.ver != snap->ver || h.seg_off != snap->seg_off || h.tag != snap->tag ||
        h.len != snap->len)
        return -EUCLEAN;
    for (uint32_t b = 0; b * CKSUM_BLOCK < len; b++)
        if (verify(out + (size_t)b * CKSUM_BLOCK, blk_end(&h, b) - b * CKSUM_BLOCK, h.cks[b]))
            return -EUCLEAN;
    return 0;
}

static int read_entry(struct dcache *c, const struct dc_ent *snap, uint32_t off, uint32_t len,
                      uint8_t *out)
{
    char name[DC_PATH_MAX];
    struct dc_hdr h;
    struct stat st;
    ent_name(name, snap->id, snap->ver, snap->seg_off, snap->gen);
    if (off == 0 && (len % CKSUM_BLOCK == 0 || len == snap->len))
        return read_entry_head(c, name, snap, len, out);
    int fd = hdr_open(c->rootfd, name, &h, &st, off, len);
    if (fd == -ENOENT || fd == -EUCLEAN) return fd;
    if (fd < 0) return fd == -EIO ? -EUCLEAN : -EAGAIN;
    int rc = 0;
    if (h.id != snap->id || h.ver != snap->ver || h.seg_off != snap->seg_off ||
        h.tag != snap->tag || h.len != snap->len)
        rc = -EUCLEAN;
    if (!rc) rc = read_blocks(fd, &h, off, len, out);
    close(fd);
    return rc == -ENOMEM ? -EAGAIN : rc;
}

/* ---- the writer ------------------------------------------------------------------------- */

/* Write j's entry file under a tmp- name and rename it into place. 0 or -errno; on an error
 * nothing is left behind. */
static int write_file(struct dcache *c, const struct dc_job *j, const uint8_t *hdr, uint64_t gen)
{
    char tmp[DC_PATH_MAX], name[DC_PATH_MAX];
    tmp_name(tmp, j->id, j->seg_off, gen);
    ent_name(name, j->id, j->ver, j->seg_off, gen);
    int fd = openat(c->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int rc = fio_pwrite_all(fd, hdr, DC_DATA_OFF, 0);
    if (!rc) rc = fio_pwrite_all(fd, j->data, j->len, DC_DATA_OFF);
    if (close(fd) < 0 && !rc) rc = -errno;
    if (!rc && renameat(c->rootfd, tmp, c->rootfd, name) < 0) rc = -errno;
    if (rc) unlinkat(c->rootfd, tmp, 0);
    return rc;
}

/* Make room (LRU), write j's file, index it in place of an older entry of its key. */
static void write_job(struct dcache *c, const struct dc_job *j, uint8_t *hdr)
{
    uint64_t charge = ent_charge(j->len), gen = c->next_gen++;
    struct dc_ent *gone = NULL, *e = calloc(1, sizeof(*e));
    int rc = e ? 0 : -ENOMEM;
    if (!rc) {
        hdr_encode(hdr, j);
        pthread_mutex_lock(&c->mu);
        c->used += charge;
        c->reserved = charge;
        evict(c, &gone);
        pthread_mutex_unlock(&c->mu);
        remove_files(c, gone);
        gone = NULL;
        rc = write_file(c, j, hdr, gen);
    }
    pthread_mutex_lock(&c->mu);
    c->used -= c->reserved;
    c->reserved = 0;
    if (!rc) {
        *e = (struct dc_ent){.id = j->id,
                             .tag = j->tag,
                             .gen = gen,
                             .ver = j->ver,
                             .seg_off = j->seg_off,
                             .len = j->len};
        struct dc_ent *old = c->inflight_dropped ? NULL : find(c, j->id, j->ver, j->seg_off);
        if (old) detach(c, old, &gone);
        if (c->inflight_dropped) { /* an old version by now: remove the file */
            e->hnext = gone;
            gone = e;
            count(&c->st.put_dropped, 1);
        } else {
            link_ent(c, e, 1);
        }
    }
    int was_failing = c->write_failing;
    c->write_failing = rc != 0;
    pthread_mutex_unlock(&c->mu);
    remove_files(c, gone);
    if (!rc) {
        count(&c->st.bytes_written, (uint64_t)DC_DATA_OFF + j->len);
        return;
    }
    free(e);
    count(&c->st.write_errors, 1);
    if (!was_failing)
        LOG_WARN("dcache",
                 "%s: cannot write chunk %016" PRIx64 " v%" PRIu32 " at %" PRIu32
                 ": %s (further errors are only counted)",
                 c->dir, j->id, j->ver, j->seg_off, strerror(-rc));
}

static void *writer_main(void *arg)
{
    struct dcache *c = arg;
    uint8_t *hdr = calloc(1, DC_DATA_OFF);
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        if (!c->qhead) {
            struct timespec dl;
            mono_deadline(&dl, DC_IDLE_WAIT_S);
            pthread_cond_timedwait(&c->work_cv, &c->mu, &dl);
            continue;
        }
        struct dc_job *j = c->qhead;
        c->qhead = j->next;
        if (!c->qhead) c->qtail = &c->qhead;
        c->writing = 1;
        c->inflight = j;
        c->inflight_dropped = 0;
        pthread_mutex_unlock(&c->mu);
        if (hdr) {
            write_job(c, j, hdr);
        } else {
            count(&c->st.write_errors, 1);
        }
        pthread_mutex_lock(&c->mu);
        c->qbytes -= j->len;
        c->writing = 0;
        c->inflight = NULL;
        free(j);
        pthread_cond_broadcast(&c->idle_cv);
    }
    while (c->qhead) { /* stopping: drop what is left */
        struct dc_job *j = c->qhead;
        c->qhead = j->next;
        c->qbytes -= j->len;
        count(&c->st.put_dropped, 1);
        free(j);
    }
    c->qtail = &c->qhead;
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
    free(hdr);
    return NULL;
}

/* ---- the scan of an earlier mount's files ---------------------------------------------- */

static int hexnum(const char *s, int n, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                             : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

enum { NAME_FOREIGN, NAME_ENTRY, NAME_TMP };

/* What name in subfolder sub is: an entry file (key and gen into e), a tmp- file (gen into e),
 * or anything else. */
static int name_parse(const char *name, unsigned sub, struct dc_ent *e)
{
    uint64_t ver, seg;
    if (!strncmp(name, "tmp-", 4) && strlen(name) == 20 && !hexnum(name + 4, 16, &e->gen))
        return NAME_TMP;
    if (strlen(name) != DC_NAME_LEN || name[16] != '-' || name[25] != '-' || name[34] != '-' ||
        hexnum(name, 16, &e->id) || hexnum(name + 17, 8, &ver) || hexnum(name + 26, 8, &seg) ||
        hexnum(name + 35, 16, &e->gen))
        return NAME_FOREIGN;
    e->ver = (uint32_t)ver;
    e->seg_off = (uint32_t)seg;
    return key_sub(e->id, e->seg_off) == sub ? NAME_ENTRY : NAME_FOREIGN;
}

/* Index e, found by the scan, as the oldest entry; a newer entry of its key wins. */
static void index_scanned(struct dcache *c, struct dc_ent *e)
{
    struct dc_ent *gone = NULL;
    pthread_mutex_lock(&c->mu);
    struct dc_ent *old = find(c, e->id, e->ver, e->seg_off);
    if (old && old->gen == e->gen) { /* seen twice by readdir */
        free(e);
    } else if (old && old->gen > e->gen) {
        e->hnext = NULL;
        gone = e;
    } else {
        if (old) detach(c, old, &gone);
        link_ent(c, e, 0);
        evict(c, &gone);
    }
    pthread_mutex_unlock(&c->mu);
    remove_files(c, gone);
}

enum { SCAN_LEFT, SCAN_REMOVED, SCAN_INDEXED };

/* Index or remove one file of subfolder sub (dfd), or leave it; says which. */
static int scan_file(struct dcache *c, int dfd, unsigned sub, const char *name)
{
    struct dc_ent *e = calloc(1, sizeof(*e));
    if (!e) return SCAN_LEFT;
    int kind = name_parse(name, sub, e);
    if (kind != NAME_FOREIGN && e->gen >= c->gen_base) goto keep; /* this mount's */
    if (kind != NAME_ENTRY) goto remove;
    struct dc_hdr h;
    struct stat st;
    int fd = hdr_open(dfd, name, &h, &st, 0, 0);
    if (fd == -EUCLEAN) goto remove;
    if (fd < 0) goto keep; /* gone meanwhile, or cannot tell */
    close(fd);
    if (h.id != e->id || h.ver != e->ver || h.seg_off != e->seg_off) goto remove;
    e->tag = h.tag;
    e->len = h.len;
    index_scanned(c, e);
    return SCAN_INDEXED;
remove:
    free(e);
    return unlinkat(dfd, name, 0) == 0 ? SCAN_REMOVED : SCAN_LEFT; /* a folder stays */
keep:
    free(e);
    return SCAN_LEFT;
}

static int stopping(struct dcache *c)
{
    return __atomic_load_n(&c->stopping, __ATOMIC_RELAXED);
}

static void *scan_main(void *arg)
{
    struct dcache *c = arg;
    uint64_t n[3] = {0};
    for (unsigned sub = 0; sub < DC_FANOUT && !stopping(c); sub++) {
        char dname[4];
        snprintf(dname, sizeof(dname), "%02x", sub);
        int dfd = openat(c->rootfd, dname, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
        if (!d) {
            if (dfd >= 0) close(dfd);
            continue;
        }
        struct dirent *de;
        while (!stopping(c) && (de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                n[scan_file(c, dirfd(d), sub, de->d_name)]++;
        closedir(d);
    }
    pthread_mutex_lock(&c->mu);
    c->scanning = 0;
    c->known_all = !stopping(c);
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
    LOG_INFO("dcache",
             "%s: %" PRIu64 " entries of an earlier mount found, %" PRIu64 " files removed", c->dir,
             n[SCAN_INDEXED], n[SCAN_REMOVED]);
    return NULL;
}

/* ---- open and close -------------------------------------------------------------------- */

/* mkdir -p, mode 0700 for what it creates. 0 or -errno. */
static int mkdir_p(const char *dir)
{
    char p[4096];
    if (!*dir || strlen(dir) >= sizeof(p)) return -ENAMETOOLONG;
    strcpy(p, dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0700) < 0 && errno != EEXIST) return -errno;
        *s = '/';
    }
    return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* The first gen of this mount: above every gen an earlier mount may have used (the lock file
 * remembers where the last one stopped) and above the clock's nanoseconds. */
static uint64_t gen_start(int lockfd)
{
    char buf[32] = {0};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t base = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    if (pread(lockfd, buf, sizeof(buf) - 1, 0) > 0) {
        uint64_t prev = strtoull(buf, NULL, 10);
        if (prev > base) base = prev;
    }
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", base + DC_GEN_SPAN);
    if (pwrite(lockfd, buf, (size_t)n, 0) == n) (void)!ftruncate(lockfd, n);
    return base;
}

/* Everything of dc_open that can fail: folders, lock, tables. 0 or -errno, why filled. */
static int open_dir(struct dcache *c, const char *dir, char *why, size_t whylen)
{
    int rc = mkdir_p(dir);
    if (rc) {
        snprintf(why, whylen, "cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    c->rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->rootfd < 0) {
        snprintf(why, whylen, "cannot open %s: %s", dir, strerror(errno));
        return -errno;
    }
    c->lockfd = openat(c->rootfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (c->lockfd < 0) {
        snprintf(why, whylen, "cannot write in %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(why, whylen, "%s is in use by another mount (%s)", dir, strerror(errno));
        return -EBUSY;
    }
    for (unsigned sub = 0; sub < DC_FANOUT; sub++) {
        char dname[4];
        snprintf(dname, sizeof(dname), "%02x", sub);
        if (mkdirat(c->rootfd, dname, 0700) < 0 && errno != EEXIST) {
            snprintf(why, whylen, "cannot create %s/%s: %s", dir, dname, strerror(errno));
            return -errno;
        }
    }
    c->gen_base = c->next_gen = gen_start(c->lockfd);
    size_t nb = 1024;
    while (nb < c->limit / CAIRN_IO_MAX && nb < (1u << 22))
        nb <<= 1;
    c->h = calloc(nb, sizeof(*c->h));
    c->dir = strdup(dir);
    if (!c->h || !c->dir) {
        snprintf(why, whylen, "no memory");
        return -ENOMEM;
    }
    c->hmask = nb - 1;
    return 0;
}

/* Index the entries of the index file a clean close left (dcache_index.h), oldest first, and
 * evict down to the limit (it may be smaller than the last mount's). The number indexed, or a
 * negative errno when there is no usable index file (then the folder is scanned). */
static int load_index(struct dcache *c)
{
    struct dci_rec *r;
    size_t n;
    int rc = dci_load(c->rootfd, &r, &n);
    if (rc) {
        if (rc != -ENOENT)
            LOG_WARN("dcache", "%s: index file not used (%s): scanning the folder", c->dir,
                     strerror(-rc));
        return rc;
    }
    struct dc_ent *gone = NULL;
    int indexed = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        /* what a mount can have written, and each key once */
        if (r[i].len == 0 || r[i].len > CAIRN_IO_MAX || r[i].seg_off % CAIRN_IO_MAX ||
            r[i].gen >= c->gen_base || find(c, r[i].id, r[i].ver, r[i].seg_off))
            continue;
        struct dc_ent *e = calloc(1, sizeof(*e));
        if (!e) break;
        *e = (struct dc_ent){.id = r[i].id,
                             .tag = r[i].tag,
                             .gen = r[i].gen,
                             .ver = r[i].ver,
                             .seg_off = r[i].seg_off,
                             .len = r[i].len};
        link_ent(c, e, 1);
        indexed++;
    }
    evict(c, &gone);
    c->known_all = 1;
    pthread_mutex_unlock(&c->mu);
    remove_files(c, gone);
    free(r);
    count(&c->st.loaded, (uint64_t)indexed);
    LOG_INFO("dcache", "%s: %d entries of the last mount taken from its index file", c->dir,
             indexed);
    return indexed;
}

/* At a clean close of a folder whose every entry is indexed: the index file for the next
 * mount, least recently used first. */
static void save_index(struct dcache *c)
{
    struct dci_rec *r = calloc(c->nent ? c->nent : 1, sizeof(*r));
    size_t n = 0;
    for (struct dc_ent *e = c->lru.prev; r && e != &c->lru && n < c->nent; e = e->prev)
        r[n++] = (struct dci_rec){.id = e->id,
                                  .tag = e->tag,
                                  .gen = e->gen,
                                  .ver = e->ver,
                                  .seg_off = e->seg_off,
                                  .len = e->len};
    int rc = r ? dci_write(c->rootfd, r, n) : -ENOMEM;
    free(r);
    if (rc)
        LOG_WARN("dcache", "%s: no index file written (%s): the next mount scans the folder",
                 c->dir, strerror(-rc));
}

struct dcache *dc_open(const char *dir, uint64_t limit, char *why, size_t whylen)
{
    if (limit < (uint64_t)DC_DATA_OFF + CAIRN_IO_MAX) {
        snprintf(why, whylen, "cache size %" PRIu64 " is smaller than one entry (%u bytes)", limit,
                 DC_DATA_OFF + CAIRN_IO_MAX);
        return NULL;
    }
    struct dcache *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(why, whylen, "no memory");
        return NULL;
    }
    c->rootfd = c->lockfd = -1;
    c->limit = limit;
    c->lru.next = c->lru.prev = &c->lru;
    c->qtail = &c->qhead;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->work_cv, &ca);
    pthread_cond_init(&c->idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->mu, NULL);
    if (open_dir(c, dir, why, whylen)) goto err;
    c->scanning = load_index(c) < 0;
    if (pthread_create(&c->writer, NULL, writer_main, c)) goto err_thread;
    c->have_writer = 1;
    if (c->scanning && pthread_create(&c->scanner, NULL, scan_main, c)) goto err_thread;
    c->have_scanner = c->scanning;
    LOG_INFO("dcache", "%s: disk cache of %" PRIu64 " bytes", dir, limit);
    return c;
err_thread:
    snprintf(why, whylen, "cannot start a thread");
err:
    c->scanning = 0;
    dc_close(c);
    return NULL;
}

void dc_close(struct dcache *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    __atomic_store_n(&c->stopping, 1, __ATOMIC_RELAXED); /* the scan reads it without mu */
    pthread_cond_broadcast(&c->work_cv);
    pthread_mutex_unlock(&c->mu);
    if (c->have_scanner) pthread_join(c->scanner, NULL);
    if (c->have_writer) pthread_join(c->writer, NULL);
    if (c->known_all && c->have_writer) save_index(c);
    for (struct dc_ent *e = c->lru.next; e != &c->lru;) {
        struct dc_ent *n = e->next;
        free(e);
        e = n;
    }
    while (c->qhead) { /* no writer was started */
        struct dc_job *j = c->qhead;
        c->qhead = j->next;
        free(j);
    }
    if (c->lockfd >= 0) close(c->lockfd);
    if (c->rootfd >= 0) close(c->rootfd);
    pthread_cond_destroy(&c->work_cv);
    pthread_cond_destroy(&c->idle_cv);
    pthread_mutex_destroy(&c->mu);
    free(c->h);
    free(c->dir);
    free(c);
}

/* ---- the operations --------------------------------------------------------------------- */

int dc_read(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag,
            uint32_t off, uint32_t len, uint8_t *out)
{
    if (!c) return -ENOENT;
    if (len == 0 || off > CAIRN_IO_MAX || len > CAIRN_IO_MAX - off) return -EINVAL;
    struct dc_ent *gone = NULL, snap;
    pthread_mutex_lock(&c->mu);
    struct dc_ent *e = find(c, id, ver, seg_off);
    int hit = e && e->tag == tag && e->len >= off + len;
    if (hit) {
        lru_unlink(e);
        lru_insert_after(&c->lru, e);
        snap = *e;
    } else if (e && e->tag != tag) {
        detach(c, e, &gone);
        count(&c->st.stale, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (!hit) {
        remove_files(c, gone);
        count(&c->st.misses, 1);
        return -ENOENT;
    }
    int rc = read_entry(c, &snap, off, len, out);
    if (!rc) {
        count(&c->st.hits, 1);
        count(&c->st.bytes_read, len);
        return (int)len;
    }
    if (rc == -EUCLEAN) {
        count(&c->st.corrupt, 1);
        LOG_WARN("dcache",
                 "%s: chunk %016" PRIx64 " v%" PRIu32 " at %" PRIu32
                 " does not verify; entry removed",
                 c->dir, id, ver, seg_off);
    } else {
        count(&c->st.misses, 1);
    }
    if (rc != -EAGAIN) drop_gen(c, &snap);
    return rc == -EUCLEAN ? rc : -ENOENT;
}

void dc_put(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag,
            const uint8_t *data, uint32_t len)
{
    if (!c) return;
    struct dc_job *j = NULL;
    int ok = data && len > 0 && len <= CAIRN_IO_MAX && seg_off % CAIRN_IO_MAX == 0;
    if (ok) {
        pthread_mutex_lock(&c->mu);
        ok = !c->stopping && c->qbytes + len <= DC_QUEUE_MAX;
        if (ok) c->qbytes += len; /* taken before the copy so the bound holds */
        pthread_mutex_unlock(&c->mu);
    }
    if (ok && (j = malloc(sizeof(*j) + len))) {
        *j = (struct dc_job){.id = id, .tag = tag, .ver = ver, .seg_off = seg_off, .len = len};
        memcpy(j->data, data, len);
    }
    if (ok) {
        pthread_mutex_lock(&c->mu);
        if (j) {
            *c->qtail = j;
            c->qtail = &j->next;
            pthread_cond_signal(&c->work_cv);
        } else {
            c->qbytes -= len;
        }
        pthread_mutex_unlock(&c->mu);
    }
    count(j ? &c->st.put : &c->st.put_dropped, 1);
}

int dc_has(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag)
{
    if (!c) return 0;
    pthread_mutex_lock(&c->mu);
    struct dc_ent *e = find(c, id, ver, seg_off);
    int has = e && e->tag == tag;
    pthread_mutex_unlock(&c->mu);
    return has;
}

void dc_drop_old(struct dcache *c, uint64_t id, uint32_t ver)
{
    if (!c) return;
    struct dc_ent *gone = NULL;
    struct dc_job *dropped = NULL;
    pthread_mutex_lock(&c->mu);
    for (uint64_t seg = 0; seg <= c->max_seg; seg += CAIRN_IO_MAX) {
        for (struct dc_ent *e = *bucket(c, id, (uint32_t)seg), *n; e; e = n) {
            n = e->hnext;
            if (e->id == id && e->seg_off == seg && e->ver != ver) detach(c, e, &gone);
        }
    }
    for (struct dc_job **pp = &c->qhead; *pp;) {
        struct dc_job *j = *pp;
        if (j->id != id || j->ver == ver) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        c->qbytes -= j->len;
        j->next = dropped;
        dropped = j;
        count(&c->st.put_dropped, 1);
    }
    c->qtail = &c->qhead;
    while (*c->qtail)
        c->qtail = &(*c->qtail)->next;
    if (c->inflight && c->inflight->id == id && c->inflight->ver != ver) c->inflight_dropped = 1;
    pthread_cond_broadcast(&c->idle_cv);
    pthread_mutex_unlock(&c->mu);
    remove_files(c, gone);
    while (dropped) {
        struct dc_job *n = dropped->next;
        free(dropped);
        dropped = n;
    }
}

_Static_assert(sizeof(struct dc_stats) == 14 * sizeof(uint64_t), "dc_stats is all u64");

void dc_get_stats(struct dcache *c, struct dc_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (!c) return;
    const uint64_t *src = (const uint64_t *)&c->st;
    uint64_t *dst = (uint64_t *)s;
    for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    pthread_mutex_lock(&c->mu);
    s->bytes_used = c->used;
    s->entries = c->nent;
    s->limit = c->limit;
    pthread_mutex_unlock(&c->mu);
}

void dc_flush(struct dcache *c)
{
    if (!c) return;
    struct timespec dl;
    mono_deadline(&dl, DC_FLUSH_MAX_S);
    pthread_mutex_lock(&c->mu);
    while ((c->qhead || c->writing || c->scanning) &&
           pthread_cond_timedwait(&c->idle_cv, &c->mu, &dl) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&c->mu);
}
