/* local_read.c - reading the chunk files of chunk servers on this machine in place, the way
 * HDFS's short-circuit reads do: no request, no copy through a socket, no server thread.
 *
 * Which servers are local: the first time a chunk location names a server, one MSG_CHK_LOCAL
 * asks it for the kernel's boot id and its data folders with their device and inode numbers.
 * The server is local when the boot id is ours and every folder we see at its path is the very
 * same one (another mount namespace or container sees other folders, or none); otherwise it is
 * asked again after LR_RETRY_MS. The server's process is watched (a pidfd, looked at every
 * LR_CHECK_MS at most; a server in another pid namespace is not read in place): once it
 * exited, its files are no longer read, so a dead server's chunks are as unreadable as a remote
 * one's and the usual fail-over applies. A server the chunk client avoids (it timed out or
 * refused) is not read in place either.
 *
 * A read in place opens DIR/XX/<id>_<version>.chk (chunkfile.h) read-only, checks its fixed
 * header (magic, id, exactly the version asked for, no bad mark) and every block read against
 * the checksums stored in the file, and fills bytes past the chunk's length with zeros, as a
 * CHK_READ reply would be. A range that starts a block is read data first, O_DIRECT, while the
 * header's pages come into the page cache, and the header is read last: the server moving a
 * chunk to a newer version renames it and updates the header's version before any block of the
 * new version is written, so a header read after the data that still holds our version
 * vouches for it. Other reads go through the page cache, header first and again afterwards.
 * Anything else (no such file, another version, a checksum that does not match, a block half
 * written by a writer at work) is a failure: the caller reads from a chunk server, which
 * serializes with writers and reports bad blocks. Files written before the header's version
 * followed renames fail this way and are read through their server.
 *
 * Up to LR_FDS chunk files stay open (LRU; at most half the limit of open files, which the
 * mount raises to its ceiling), so that a data set read again after the page cache was dropped
 * costs no path walk; an open file whose link count fell to zero (deleted, or a copy replaced)
 * is dropped and opened again, and one unread for LR_IDLE_MS is closed by a sweeper thread, so
 * that a chunk the server deleted does not keep its disk space for long. Data read through the
 * page cache is dropped from it afterwards, as the servers do: the kernel's cache of the mount
 * keeps what was read.
 * Thread safe: one mutex for the tables; reads run outside it on referenced files. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "chunkfile.h"
#include "cksum.h"
#include "client.h"
#include "cstats.h"
#include "daemon.h"
#include "fileio.h"
#include "log.h"
#include "net.h"
#include "rpc.h"

#define LR_FDS 8192      /* chunk files kept open at most (and half the limit of open files) */
#define LR_IDLE_MS 30000 /* a file unread this long is closed (a deleted chunk frees its space) */
#define LR_SWEEP_MS 5000
#define LR_PAGE FIO_PAGE /* O_DIRECT reads: into a page-aligned buffer */
#define LR_BUCKETS 8192
#define LR_RETRY_MS 30000
#define LR_CHECK_MS 20 /* how stale our knowledge that a local server runs may be */
#define LR_MAX_DIRS 16
#define LR_PATH_MAX 512

enum lr_state { LR_UNKNOWN, LR_PROBING, LR_LOCAL, LR_REMOTE };

struct lr_server {
    struct lr_server *next;
    char addr[CAIRN_ADDR_MAX + 1];
    enum lr_state state;
    uint64_t retry_at; /* LR_REMOTE: net_now_ms() from which it is asked again */
    int pidfd;         /* LR_LOCAL: the server process, readable once it has exited */
    uint64_t checked;  /* LR_LOCAL: net_now_ms() of the last look at pidfd */
    int ndirs;
    char dirs[LR_MAX_DIRS][LR_PATH_MAX + 1];
};

struct lr_file {
    struct lr_file *hnext;
    struct lr_file *prev, *next; /* LRU, most recent first */
    struct lr_server *srv;       /* whose folder it is in */
    uint64_t id;
    uint32_t version;
    int fd;
    int dfd;       /* the same file opened O_DIRECT for whole-page data reads, or -1 */
    int refs;      /* the table's own (while listed) plus one per read in progress */
    uint64_t used; /* net_now_ms() of the last read */
    int listed;    /* in the hash table and the LRU list */
};

struct lr {
    pthread_mutex_t mu;
    struct cc_pool *cc;
    char boot_id[64];
    uint64_t pidns; /* inode of our pid namespace */
    struct lr_server *servers;
    struct lr_file *buckets[LR_BUCKETS];
    struct lr_file *head, *tail;
    int nfiles;
    int max_files; /* LR_FDS, or less when the limit of open files is low */
    pthread_t sweeper;
    pthread_cond_t wake;
    int stop, sweeping;
};

/* ---- which servers are local -------------------------------------------------------------- */

/* Decode a MSG_CHK_LOCAL reply into srv's folders: 1 when they are ours to read, 0 if not. */
static int judge_reply(const struct lr *l, struct lr_server *srv, const struct rpc_reply *rep)
{
    struct rcur c;
    char id[64];
    rcur_init(&c, rep->payload.data, rep->payload.len);
    if (rcur_str(&c, id, sizeof(id) - 1) < 0 || strcmp(id, l->boot_id) != 0) return 0;
    uint32_t pid = rcur_u32(&c);
    uint64_t pidns = rcur_u64(&c);
    uint8_t n = rcur_u8(&c);
    if (c.err || n == 0 || n > LR_MAX_DIRS) return 0;
    for (int i = 0; i < n; i++) {
        if (rcur_str(&c, srv->dirs[i], LR_PATH_MAX) < 0) return 0;
        uint64_t dev = rcur_u64(&c), ino = rcur_u64(&c);
        struct stat sb;
        if (c.err || stat(srv->dirs[i], &sb) != 0 || (uint64_t)sb.st_dev != dev ||
            (uint64_t)sb.st_ino != ino)
            return 0;
    }
    if (rcur_done(&c) || pidns != l->pidns || pid == 0) return 0;
    /* a server whose death we cannot see is not read in place: its files would outlive it */
    srv->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (srv->pidfd < 0) return 0;
    srv->ndirs = n;
    return 1;
}

/* Whether local server s still runs (l->mu held); a look at its process every LR_CHECK_MS at
 * most. One that exited is not local any more (asked again after LR_RETRY_MS: a restarted
 * server is read in place again). */
static int server_alive(struct lr_server *s)
{
    if (s->state != LR_LOCAL) return 0;
    uint64_t now = net_now_ms();
    if (now - s->checked < LR_CHECK_MS) return 1;
    s->checked = now;
    struct pollfd p = {.fd = s->pidfd, .events = POLLIN};
    if (poll(&p, 1, 0) == 0) return 1;
    LOG_INFO("local", "chunk server %s exited: its files are no longer read in place", s->addr);
    close(s->pidfd);
    s->pidfd = -1;
    s->state = LR_REMOTE;
    s->retry_at = now + LR_RETRY_MS;
    return 0;
}

/* srv is LR_PROBING (set by the caller, so only one thread asks): ask and judge. */
static void probe(struct lr *l, struct lr_server *srv)
{
    struct rpc_reply rep;
    struct lr_server got = {.pidfd = -1};
    int rc = cc_request(l->cc, srv->addr, MSG_CHK_LOCAL, NULL, 0, &rep);
    int local = 0;
    if (rc == 0) {
        local = judge_reply(l, &got, &rep);
        rpc_reply_free(&rep);
    }
    pthread_mutex_lock(&l->mu);
    if (local) {
        srv->ndirs = got.ndirs;
        memcpy(srv->dirs, got.dirs, sizeof(got.dirs));
        srv->pidfd = got.pidfd;
        srv->checked = net_now_ms();
        srv->state = LR_LOCAL;
    } else {
        srv->state = LR_REMOTE;
        srv->retry_at = net_now_ms() + LR_RETRY_MS;
    }
    pthread_mutex_unlock(&l->mu);
    LOG_INFO("local", "chunk server %s: %s", srv->addr,
             local ? "on this machine, read in place"
                   : (rc ? strerror(-rc) : "elsewhere (boot id or folders differ)"));
}

/* The entry for addr, created when new (l->mu held). */
static struct lr_server *server_get(struct lr *l, const char *addr)
{
    for (struct lr_server *s = l->servers; s; s = s->next)
        if (strcmp(s->addr, addr) == 0) return s;
    struct lr_server *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    s->pidfd = -1;
    s->next = l->servers;
    l->servers = s;
    return s;
}

/* Copy the folders of addr into dirs when it is local now (probing it first if it was never
 * asked), and its entry into *srv; returns their number, 0 when it is not local (yet). */
static int local_dirs(struct lr *l, const char *addr, char (*dirs)[LR_PATH_MAX + 1],
                      struct lr_server **srv)
{
    if (cc_avoided(l->cc, addr)) return 0;
    pthread_mutex_lock(&l->mu);
    struct lr_server *s = server_get(l, addr);
    int ask =
        s && (s->state == LR_UNKNOWN || (s->state == LR_REMOTE && net_now_ms() >= s->retry_at));
    if (ask) s->state = LR_PROBING;
    pthread_mutex_unlock(&l->mu);
    if (ask) probe(l, s);
    int n = 0;
    pthread_mutex_lock(&l->mu);
    if (s && server_alive(s)) {
        n = s->ndirs;
        memcpy(dirs, s->dirs, sizeof(s->dirs[0]) * (size_t)n);
        *srv = s;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* ---- open chunk files --------------------------------------------------------------------- */

static unsigned bucket(uint64_t id, uint32_t version)
{
    uint64_t h = (id ^ ((uint64_t)version << 40)) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> 51) % LR_BUCKETS;
}

static void lru_unlink(struct lr *l, struct lr_file *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_push(struct lr *l, struct lr_file *f)
{
    f->next = l->head;
    f->prev = NULL;
    if (l->head) l->head->prev = f;
    l->head = f;
    if (!l->tail) l->tail = f;
}

/* Drop one reference (l->mu held); the last closes the file. */
static void file_unref(struct lr_file *f)
{
    if (--f->refs == 0) {
        close(f->fd);
        if (f->dfd >= 0) close(f->dfd);
        free(f);
    }
}

/* Take f out of the tables (l->mu held). */
static void file_unlist(struct lr *l, struct lr_file *f)
{
    if (!f->listed) return;
    struct lr_file **pp = &l->buckets[bucket(f->id, f->version)];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp) *pp = f->hnext;
    lru_unlink(l, f);
    f->listed = 0;
    l->nfiles--;
    file_unref(f);
}

/* The listed file for (id, version) with a reference for the caller, or NULL (l->mu held). */
static struct lr_file *file_find(struct lr *l, uint64_t id, uint32_t version)
{
    for (struct lr_file *f = l->buckets[bucket(id, version)]; f; f = f->hnext)
        if (f->id == id && f->version == version) {
            lru_unlink(l, f);
            lru_push(l, f);
            f->used = net_now_ms();
            f->refs++;
            return f;
        }
    return NULL;
}

/* Open (id, version) in the folders of the first local location of ci: a referenced file, or
 * NULL (no local copy, or none that opens). */
static struct lr_file *file_open(struct lr *l, const struct chunk_info *ci)
{
    char dirs[LR_MAX_DIRS][LR_PATH_MAX + 1];
    char path[LR_PATH_MAX + 64];
    int fd = -1;
    struct lr_server *srv = NULL;
    for (int i = 0; i < ci->nloc && fd < 0; i++) {
        int n = local_dirs(l, ci->loc[i].addr, dirs, &srv);
        for (int d = 0; d < n && fd < 0; d++) {
            chunkfile_path(dirs[d], ci->chunk_id, ci->version, path, sizeof(path));
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
            if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_CLOEXEC);
        }
    }
    if (fd < 0) return NULL;
    struct lr_file *f = calloc(1, sizeof(*f));
    if (!f) {
        close(fd);
        return NULL;
    }
    f->dfd = -1;
    /* data read around the page cache: nothing cached twice, nothing to drop afterwards (not
     * every file system takes O_DIRECT: tmpfs refuses it, and then the page cache it is) */
    f->dfd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME | O_DIRECT);
    if (f->dfd < 0) f->dfd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    f->srv = srv;
    f->id = ci->chunk_id;
    f->version = ci->version;
    f->fd = fd;
    f->refs = 2; /* the table's and the caller's */
    f->used = net_now_ms();
    f->listed = 1;
    pthread_mutex_lock(&l->mu);
    struct lr_file *other = file_find(l, f->id, f->version);
    if (other) { /* another reader opened it meanwhile: use theirs */
        pthread_mutex_unlock(&l->mu);
        close(fd);
        if (f->dfd >= 0) close(f->dfd);
        free(f);
        return other;
    }
    unsigned b = bucket(f->id, f->version);
    f->hnext = l->buckets[b];
    l->buckets[b] = f;
    lru_push(l, f);
    l->nfiles++;
    while (l->nfiles > l->max_files && l->tail && l->tail != f)
        file_unlist(l, l->tail);
    pthread_mutex_unlock(&l->mu);
    return f;
}

/* ---- one read in place -------------------------------------------------------------------- */

/* Judge the fixed header h of a chunk file we mean to read at version: 0 with its data length
 * in *clen; -EUCLEAN (not the chunk, or not our block size); -ESTALE (another version, or
 * a bad mark). */
static int judge_header(const uint8_t *h, uint64_t id, uint32_t version, uint32_t *clen)
{
    struct chunkfile_hdr hd;
    if (chunkfile_hdr_get(h, &hd) || hd.id != id || hd.block != CKSUM_BLOCK) return -EUCLEAN;
    if (hd.version != version || (hd.flags & CHUNKFILE_FLAG_BAD)) return -ESTALE;
    *clen = hd.length;
    return 0;
}

/* The stored checksums of blocks [b0, b0+nb) into raw (8 bytes each): 0 or a negative errno. */
static int read_cksums(int fd, uint8_t *raw, uint32_t b0, uint32_t nb)
{
    ssize_t n = pread(fd, raw, (size_t)nb * 8, CHUNKFILE_HDR_SIZE + (off_t)b0 * 8);
    return n == (ssize_t)nb * 8 ? 0 : n < 0 ? -errno : -EUCLEAN;
}

/* The buffered read: the fixed header first (waiting for the disk only if it must: when the
 * header is not in the page cache, the data's read is started first, into the page cache, so
 * that both wait for the disk together), then the checksums and the data, then the header again
 * (a writer that moved the chunk on meanwhile may have written blocks and their checksums
 * between our reads of the two); whole blocks read are dropped from the page cache afterwards.
 * For reads the direct one does not take: a range that does not start a block, an out that is
 * not page aligned, a file system without O_DIRECT. */
static int read_buffered(int fd, uint64_t id, uint32_t version, uint32_t off, uint32_t len,
                         uint8_t *out)
{
    const uint32_t B = CKSUM_BLOCK;
    uint8_t h[CHUNKFILE_HDR_SIZE];
    struct iovec v = {h, sizeof(h)};
    if (preadv2(fd, &v, 1, 0, RWF_NOWAIT) != (ssize_t)sizeof(h)) {
        posix_fadvise(fd, (off_t)CHUNKFILE_DATA_OFF + off / B * B, (off_t)len + B,
                      POSIX_FADV_WILLNEED);
        ssize_t n = pread(fd, h, sizeof(h), 0);
        if (n != (ssize_t)sizeof(h)) return n < 0 ? -errno : -EUCLEAN;
    }
    uint32_t clen;
    int rc = judge_header(h, id, version, &clen);
    if (rc) return rc;
    if (off >= clen || len == 0) {
        memset(out, 0, len);
        return 0;
    }
    uint32_t end = (uint64_t)off + len < clen ? off + len : clen;
    uint32_t b0 = off / B, b1 = (end - 1) / B, nb = b1 - b0 + 1;
    uint32_t dstart = b0 * B, dend = (b1 + 1) * B < clen ? (b1 + 1) * B : clen;
    uint8_t raw[8 * (CAIRN_IO_MAX / CKSUM_BLOCK + 2)];
    if (nb > sizeof(raw) / 8) return -EINVAL;
    if ((rc = read_cksums(fd, raw, b0, nb))) return rc;
    /* whole blocks from the start of out are read straight into it */
    int into_out = off == dstart && dend - dstart <= len;
    uint8_t *buf = into_out ? out : malloc(dend - dstart);
    if (!buf) return -ENOMEM;
    ssize_t n = pread(fd, buf, dend - dstart, (off_t)CHUNKFILE_DATA_OFF + dstart);
    rc = n < 0 ? -errno : 0;
    if (!rc && n < (ssize_t)(dend - dstart)) memset(buf + n, 0, dend - dstart - (size_t)n);
    for (uint32_t b = 0; b < nb && !rc; b++) {
        uint32_t valid = dend - (dstart + b * B) < B ? dend - (dstart + b * B) : B;
        if (cksum_xxh3(buf + (size_t)b * B, valid) != le_get64(raw + 8 * b)) rc = -CAIRN_ECORRUPT;
    }
    if (!rc && !into_out) memcpy(out, buf + (off - dstart), end - off);
    if (!into_out) free(buf);
    if (rc) return rc;
    if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) return -EIO;
    uint32_t clen_again;
    if (judge_header(h, id, version, &clen_again)) return -ESTALE;
    memset(out + (end - off), 0, len - (end - off));
    if (off == dstart && (end == dend || end == clen))
        posix_fadvise(fd, (off_t)CHUNKFILE_DATA_OFF + dstart, dend - dstart, POSIX_FADV_DONTNEED);
    return 0;
}

#define LR_BUFFERED 1 /* read_direct's answer for a read it cannot take */

/* The direct read, for a range that starts a block into a page-aligned out: the data first,
 * around the page cache (nothing cached twice, nothing to drop afterwards), while the pages of
 * the header and checksums are read into the page cache (so a cold file costs one wait for
 * the disk), then the checksums, then the header, read last: a writer moving the chunk on
 * writes the new version into the header before any block of it, so a header that still holds
 * our version vouches for the checksums and data read before it, and the checksums for the
 * data. LR_BUFFERED when the range ends inside a block short of the chunk's length (the rest
 * of that block is needed to check it) or the file system refuses O_DIRECT. */
static int read_direct(int fd, int dfd, uint64_t id, uint32_t version, uint32_t off, uint32_t len,
                       uint8_t *out)
{
    const uint32_t B = CKSUM_BLOCK;
    uint32_t b0 = off / B, nb = (uint32_t)(((uint64_t)off + len + B - 1) / B) - b0;
    uint8_t raw[8 * (CAIRN_IO_MAX / CKSUM_BLOCK + 2)];
    if (nb > sizeof(raw) / 8) return LR_BUFFERED;
    posix_fadvise(fd, 0, CHUNKFILE_HDR_SIZE + 8 * ((off_t)b0 + nb), POSIX_FADV_WILLNEED);
    ssize_t got = fio_preadv_pages(dfd, NULL, 0, out, len, (off_t)CHUNKFILE_DATA_OFF + off);
    if (got == -EINVAL) return LR_BUFFERED;
    if (got < 0) return (int)got;
    int rc = read_cksums(fd, raw, b0, nb);
    if (rc) return rc;
    uint8_t h[CHUNKFILE_HDR_SIZE];
    ssize_t n = pread(fd, h, sizeof(h), 0);
    if (n != (ssize_t)sizeof(h)) return n < 0 ? -errno : -EUCLEAN;
    uint32_t clen;
    if ((rc = judge_header(h, id, version, &clen))) return rc;
    if (off >= clen || len == 0) {
        memset(out, 0, len);
        return 0;
    }
    uint32_t end = (uint64_t)off + len < clen ? off + len : clen;
    if (end % B && end < clen) return LR_BUFFERED;
    if ((uint64_t)got < end - off) return -EUCLEAN; /* the file is shorter than its header says */
    for (uint32_t b = 0; off + b * B < end; b++) {
        uint32_t valid = end - (off + b * B) < B ? end - (off + b * B) : B;
        if (cksum_xxh3(out + (size_t)b * B, valid) != le_get64(raw + 8 * b)) return -CAIRN_ECORRUPT;
    }
    memset(out + (end - off), 0, len - (end - off));
    return 0;
}

int lr_read_file(int fd, int dfd, uint64_t id, uint32_t version, uint32_t off, uint32_t len,
                 uint8_t *out)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) return -errno;
    if (sb.st_nlink == 0) return -ESTALE; /* deleted or replaced since it was opened */
    if (dfd >= 0 && off % CKSUM_BLOCK == 0 && (uintptr_t)out % LR_PAGE == 0) {
        int rc = read_direct(fd, dfd, id, version, off, len, out);
        if (rc != LR_BUFFERED) return rc;
    }
    return read_buffered(fd, id, version, off, len, out);
}

int lr_read(struct lr *l, const struct chunk_info *ci, uint32_t off, uint32_t len, uint8_t *out)
{
    if (!l || ci->nloc == 0) return -EAGAIN;
    uint64_t t0 = st_now_us();
    pthread_mutex_lock(&l->mu);
    struct lr_file *f = file_find(l, ci->chunk_id, ci->version);
    if (f && !server_alive(f->srv)) { /* its server died: read through the others */
        file_unlist(l, f);
        file_unref(f);
        pthread_mutex_unlock(&l->mu);
        return -EAGAIN;
    }
    pthread_mutex_unlock(&l->mu);
    if (!f && !(f = file_open(l, ci))) return -EAGAIN;
    int rc = lr_read_file(f->fd, f->dfd, ci->chunk_id, ci->version, off, len, out);
    pthread_mutex_lock(&l->mu);
    if (rc) file_unlist(l, f); /* opened afresh next time */
    file_unref(f);
    pthread_mutex_unlock(&l->mu);
    if (rc) {
        st_add(ST_LOCAL_READ_FAILS, 1);
        LOG_DEBUG("local", "chunk %016" PRIx64 " v%u [%u, +%u) in place: %s, from a server",
                  ci->chunk_id, ci->version, off, len, strerror(-rc));
        return rc;
    }
    st_add(ST_LOCAL_READS, 1);
    st_add(ST_LOCAL_READ_BYTES, len);
    st_add(ST_LOCAL_READ_US, st_now_us() - t0);
    return 0;
}

/* Close the files nobody read for LR_IDLE_MS, every LR_SWEEP_MS: an open file of a chunk the
 * server deleted would hold its disk space. */
static void *sweep_main(void *arg)
{
    struct lr *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += LR_SWEEP_MS / 1000;
        pthread_cond_timedwait(&l->wake, &l->mu, &ts);
        uint64_t now = net_now_ms();
        while (l->tail && now - l->tail->used > LR_IDLE_MS)
            file_unlist(l, l->tail);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

struct lr *lr_new(struct cc_pool *cc)
{
    struct lr *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    if (daemon_boot_id(l->boot_id, sizeof(l->boot_id)) < 0) {
        free(l); /* no boot id: no way to tell a local server */
        return NULL;
    }
    struct stat ns;
    if (stat("/proc/self/ns/pid", &ns) != 0) {
        free(l);
        return NULL;
    }
    l->pidns = (uint64_t)ns.st_ino;
    long nofile = daemon_raise_nofile();
    l->max_files = nofile / 3 < LR_FDS ? (int)(nofile / 3) : LR_FDS; /* two fds a file */
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->wake, &ca);
    pthread_condattr_destroy(&ca);
    l->cc = cc;
    l->sweeping = pthread_create(&l->sweeper, NULL, sweep_main, l) == 0;
    return l;
}

void lr_free(struct lr *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    if (l->sweeping) pthread_join(l->sweeper, NULL);
    pthread_mutex_lock(&l->mu);
    while (l->head)
        file_unlist(l, l->head);
    pthread_mutex_unlock(&l->mu);
    pthread_cond_destroy(&l->wake);
    for (struct lr_server *s = l->servers, *n; s; s = n) {
        n = s->next;
        if (s->pidfd >= 0) close(s->pidfd);
        free(s);
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}
