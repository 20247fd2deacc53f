/* cstore.c - the on-disk chunk store: chunk files in hashed sub-folders of the data folders,
 * their header (magic, id, version, length, flags, per-block xxh3 checksums), verified reads,
 * read-modify-write of partial blocks, version moves, truncation, scrubbing of one chunk, and
 * the health of the data folders (a folder that vanishes or returns EIO is taken out of
 * service). Every operation on a chunk works on its entry of the open-chunk cache
 * (cstore_cache.c): readers pin it, changes take it out and put it back or drop it (the rules
 * are in cstore_priv.h). Layout and invariants: see cstore.h. */
#include "cstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cksum.h"
#include "codec.h"
#include "cstore_priv.h"
#include "log.h"

#define B CKSUM_BLOCK

static uint64_t zero_cks_full;

uint32_t cs_ncap(const struct cstore *cs)
{
    return cksum_nblocks(cs->chunk_size);
}

static void cs_dir_fail(struct cstore *cs, int d, int err)
{
    pthread_mutex_lock(&cs->dir_lock);
    if (cs->dirs[d].ok) {
        cs->dirs[d].ok = 0;
        cs->dirs_lost++;
        LOG_ERR("cstore", "data folder %s taken out of service: %s", cs->dirs[d].path,
                strerror(err));
    }
    pthread_mutex_unlock(&cs->dir_lock);
    cc_drop_dir(cs, d); /* its files are not served from the cache either */
}

/* An error from a data folder: EIO or a vanished root take the folder out of service. */
int cs_dir_err(struct cstore *cs, int d, int rc)
{
    struct stat st;
    if (rc == -EIO || stat(cs->dirs[d].path, &st) != 0)
        cs_dir_fail(cs, d, rc == -EIO ? EIO : ENOENT);
    return rc;
}

int cstore_set_chunk_size(struct cstore *cs, uint64_t chunk_size)
{
    if (chunk_size < B || chunk_size > CSTORE_MAX_CHUNK_SIZE || chunk_size % B) return -EINVAL;
    int changed = cs->chunk_size != chunk_size;
    cs->chunk_size = chunk_size;
    if (changed) cc_drop_dir(cs, -1); /* entries hold checksum arrays sized for the old one */
    return 0;
}

int cstore_open(struct cstore *cs, char *const *dirs, int ndirs, uint64_t chunk_size)
{
    static uint8_t zeros[B];
    memset(cs, 0, sizeof(*cs));
    if (ndirs < 1 || ndirs > CSTORE_MAX_DIRS) return -EINVAL;
    if (cstore_set_chunk_size(cs, chunk_size)) return -EINVAL;
    zero_cks_full = cksum_xxh3(zeros, B);
    for (int i = 0; i < ndirs; i++) {
        if (strlen(dirs[i]) >= sizeof(cs->dirs[i].path)) return -ENAMETOOLONG;
        snprintf(cs->dirs[i].path, sizeof(cs->dirs[i].path), "%s", dirs[i]);
        if (mkdir(dirs[i], 0755) != 0 && errno != EEXIST) return -errno;
        cs->dirs[i].ok = 1;
    }
    cs->ndirs = ndirs;
    if (cc_init(cs)) return -ENOMEM;
    pthread_mutex_init(&cs->dir_lock, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < CSTORE_LOCKS; i++)
        pthread_rwlock_init(&cs->locks[i], &ra);
    pthread_rwlockattr_destroy(&ra);
    cs_tmp_clean(cs);
    return 0;
}

void cstore_close(struct cstore *cs)
{
    cc_fini(cs);
    pthread_mutex_destroy(&cs->dir_lock);
    for (int i = 0; i < CSTORE_LOCKS; i++)
        pthread_rwlock_destroy(&cs->locks[i]);
}

static pthread_rwlock_t *cs_lock(struct cstore *cs, uint64_t id)
{
    return &cs->locks[(id ^ (id >> 17)) % CSTORE_LOCKS];
}

void cs_lock_shared(struct cstore *cs, uint64_t id)
{
    pthread_rwlock_rdlock(cs_lock(cs, id));
}

void cs_lock_excl(struct cstore *cs, uint64_t id)
{
    pthread_rwlock_wrlock(cs_lock(cs, id));
}

void cs_unlock(struct cstore *cs, uint64_t id)
{
    pthread_rwlock_unlock(cs_lock(cs, id));
}

void cs_chunk_path(struct cstore *cs, int d, uint64_t id, uint32_t ver, char *out, size_t len)
{
    chunkfile_path(cs->dirs[d].path, id, ver, out, len);
}

int cs_parse_name(const char *name, uint64_t *id, uint32_t *ver)
{
    char *end;
    if (strlen(name) < 22 || name[16] != '_') return -1;
    errno = 0;
    *id = strtoull(name, &end, 16);
    if (end != name + 16 || errno) return -1;
    unsigned long v = strtoul(name + 17, &end, 10);
    if (strcmp(end, ".chk") != 0 || v > UINT32_MAX || end == name + 17) return -1;
    *ver = (uint32_t)v;
    return 0;
}

/* Find which folder holds chunk id and at which version. 0 or -ENOENT. */
int cs_find(struct cstore *cs, uint64_t id, int *dir, uint32_t *ver)
{
    char sub[600];
    int found = 0;
    for (int d = 0; d < cs->ndirs; d++) {
        if (!cs->dirs[d].ok) continue;
        snprintf(sub, sizeof(sub), "%s/%02x", cs->dirs[d].path, (unsigned)(id & 0xff));
        DIR *dp = opendir(sub);
        if (!dp) {
            if (errno != ENOENT)
                cs_dir_err(cs, d, -errno);
            else
                cs_dir_err(cs, d, -ENOENT); /* checks the root still exists */
            continue;
        }
        struct dirent *de;
        while ((de = readdir(dp))) {
            uint64_t fid;
            uint32_t fv;
            if (cs_parse_name(de->d_name, &fid, &fv) || fid != id) continue;
            if (!found || fv > *ver) {
                *ver = fv;
                *dir = d;
            }
            found = 1;
        }
        closedir(dp);
    }
    return found ? 0 : -ENOENT;
}

/* The fast path of cs_find for a caller that knows the version it expects: is there a file
 * DIR/XX/<id>_<ver>.chk in a folder in service? A stat per folder instead of a scan of the
 * hashed sub-folder. Versions move by rename inside one folder and a chunk is created only
 * when no version of it exists, so a store holds one file per chunk: when that file is the
 * expected version, the scan would have found the same. (Not so only when a folder that was
 * taken out of service comes back at a restart with an older copy of a chunk that was made
 * again elsewhere meanwhile: that copy can be found by its own version until meta has it
 * deleted after the chunk report.) 0 with *dir set, or -ENOENT when there is none (anything
 * unusual, an error included, is left to the scan). Like the scan, it notices that another
 * folder has vanished. */
static int cs_find_exact(struct cstore *cs, uint64_t id, uint32_t ver, int *dir)
{
    char path[640];
    int hit = -1;
    for (int d = 0; d < cs->ndirs && hit < 0; d++) {
        struct stat st;
        if (!cs->dirs[d].ok) continue;
        cs_chunk_path(cs, d, id, ver, path, sizeof(path));
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) hit = d;
    }
    if (hit < 0) return -ENOENT;
    for (int d = 0; d < cs->ndirs; d++) {
        struct stat st;
        if (d != hit && cs->dirs[d].ok && stat(cs->dirs[d].path, &st) != 0)
            cs_dir_fail(cs, d, errno == EIO ? EIO : ENOENT);
    }
    *dir = hit;
    return 0;
}

/* cs_find for a caller expecting version want (0 = none expected): the exact file name first,
 * then the scan. */
static int cs_find_ver(struct cstore *cs, uint64_t id, uint32_t want, int *dir, uint32_t *ver)
{
    if (want && cs_find_exact(cs, id, want, dir) == 0) {
        *ver = want;
        return 0;
    }
    return cs_find(cs, id, dir, ver);
}

int cf_cks_full(struct chunkf *f)
{
    if (f->ncks >= f->ncap) return 0;
    uint64_t *c = realloc(f->cks, (size_t)f->ncap * sizeof(uint64_t));
    if (!c) return -ENOMEM;
    memset(c + f->ncks, 0, (size_t)(f->ncap - f->ncks) * sizeof(uint64_t));
    f->cks = c;
    f->ncks = f->ncap;
    return 0;
}

void cf_free(struct chunkf *f)
{
    if (f->fd >= 0) close(f->fd);
    free(f->cks);
    f->fd = -1;
    f->cks = NULL;
}

/* Open and load the header of the chunk file found in dir d at version ver. */
/* The data range a read is about to need (chunk offsets), read ahead while the header is
 * read; NULL: the first block. */
struct cs_ra {
    uint32_t off, len;
};

static int cf_load(struct cstore *cs, int d, uint64_t id, uint32_t ver, struct chunkf *f,
                   const struct cs_ra *ra)
{
    uint8_t h[CSTORE_HDR_SIZE];
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->dir = d;
    f->id = id;
    f->ver = ver;
    f->ncap = cs_ncap(cs);
    cs_chunk_path(cs, d, id, ver, f->path, sizeof(f->path));
    f->fd = open(f->path, O_RDWR | O_CLOEXEC);
    if (f->fd < 0) return cs_dir_err(cs, d, -errno);
    /* start reading the data wanted (or the first block) while the header is read: a cold
     * read then costs one disk wait, not two */
    posix_fadvise(f->fd, CSTORE_DATA_OFF + (ra ? ra->off / CKSUM_BLOCK * CKSUM_BLOCK : 0),
                  ra ? ra->len + ra->off % CKSUM_BLOCK : CKSUM_BLOCK, POSIX_FADV_WILLNEED);
    /* only what the chunk holds now: a cached header costs 8 bytes a block in use, not a
     * full chunk's table (cf_cks_full grows it before a change) */
    f->ncks = 1;
    f->cks = calloc(1, sizeof(uint64_t));
    if (!f->cks) {
        cf_free(f);
        return -ENOMEM;
    }
    ssize_t n = pread(f->fd, h, sizeof(h), 0);
    if (n < 0) {
        int rc = -errno;
        cf_free(f);
        return cs_dir_err(cs, d, rc);
    }
    struct chunkfile_hdr hd;
    if (n != sizeof(h) || chunkfile_hdr_get(h, &hd) || hd.id != id) {
        LOG_ERR("cstore", "chunk %016" PRIx64 " v%u: bad header in %s", id, ver, f->path);
        cf_free(f);
        return -EUCLEAN;
    }
    f->len = hd.length;
    f->flags = hd.flags;
    if (f->len > cs->chunk_size) {
        cf_free(f);
        return -EUCLEAN;
    }
    uint32_t nb = cksum_nblocks(f->len);
    if (nb > f->ncks) {
        uint64_t *c = realloc(f->cks, (size_t)nb * sizeof(uint64_t));
        if (!c) {
            cf_free(f);
            return -ENOMEM;
        }
        f->cks = c;
        f->ncks = nb;
    }
    if (nb) {
        uint8_t *raw = malloc((size_t)nb * 8);
        if (!raw) {
            cf_free(f);
            return -ENOMEM;
        }
        n = pread(f->fd, raw, (size_t)nb * 8, CSTORE_HDR_SIZE);
        if (n != (ssize_t)nb * 8) {
            int rc = n < 0 ? -errno : -EUCLEAN;
            free(raw);
            cf_free(f);
            return rc == -EIO ? cs_dir_err(cs, d, rc) : rc;
        }
        for (uint32_t i = 0; i < nb; i++)
            f->cks[i] = le_get64(raw + 8 * i);
        free(raw);
    }
    return 0;
}

/* Write the fixed header and checksums [b0, b1) in one pwrite. */
int cf_store_hdr(struct chunkf *f, uint32_t b0, uint32_t b1)
{
    size_t n = CSTORE_HDR_SIZE + (size_t)b1 * 8;
    uint8_t *h = calloc(1, n);
    if (!h) return -ENOMEM;
    struct chunkfile_hdr hd = {
        .id = f->id, .version = f->ver, .length = f->len, .flags = f->flags, .block = CKSUM_BLOCK};
    chunkfile_hdr_put(h, &hd);
    for (uint32_t i = b0; i < b1; i++)
        le_put64(h + CSTORE_HDR_SIZE + 8 * i, f->cks[i]);
    /* header fields, then the changed checksum range */
    int rc = 0;
    if (pwrite(f->fd, h, CSTORE_HDR_SIZE, 0) != CSTORE_HDR_SIZE) rc = -errno;
    if (!rc && b1 > b0) {
        size_t off = CSTORE_HDR_SIZE + (size_t)b0 * 8, len = (size_t)(b1 - b0) * 8;
        if (pwrite(f->fd, h + off, len, (off_t)off) != (ssize_t)len) rc = errno ? -errno : -EIO;
    }
    free(h);
    return rc;
}

int cs_pick_dir(struct cstore *cs)
{
    int best = -1;
    uint64_t bestfree = 0;
    for (int d = 0; d < cs->ndirs; d++) {
        struct statvfs sv;
        if (!cs->dirs[d].ok) continue;
        if (statvfs(cs->dirs[d].path, &sv) != 0) {
            cs_dir_err(cs, d, -errno);
            continue;
        }
        uint64_t fr = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (best < 0 || fr > bestfree) {
            best = d;
            bestfree = fr;
        }
    }
    return best;
}

void cs_sync_dir(const char *file)
{
    char dir[640];
    snprintf(dir, sizeof(dir), "%s", file);
    char *s = strrchr(dir, '/');
    if (!s) return;
    *s = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Create an empty chunk file; its whole header area is allocated now. */
static int cf_create(struct cstore *cs, uint64_t id, uint32_t ver, struct chunkf *f)
{
    int d = cs_pick_dir(cs);
    if (d < 0) return -EIO;
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/%02x", cs->dirs[d].path, (unsigned)(id & 0xff));
    if (mkdir(sub, 0755) != 0 && errno != EEXIST) return cs_dir_err(cs, d, -errno);
    memset(f, 0, sizeof(*f));
    f->dir = d;
    f->id = id;
    f->ver = ver;
    f->ncap = cs_ncap(cs);
    cs_chunk_path(cs, d, id, ver, f->path, sizeof(f->path));
    f->fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0) return cs_dir_err(cs, d, -errno);
    f->cks = calloc(f->ncap, sizeof(uint64_t));
    f->ncks = f->ncap;
    int rc = f->cks ? 0 : -ENOMEM;
    size_t hsz = CSTORE_HDR_SIZE + (size_t)f->ncap * 8;
    uint8_t *z = rc ? NULL : calloc(1, hsz);
    if (!rc && !z) rc = -ENOMEM;
    if (!rc && pwrite(f->fd, z, hsz, 0) != (ssize_t)hsz) rc = errno ? -errno : -ENOSPC;
    free(z);
    if (!rc && ftruncate(f->fd, CSTORE_DATA_OFF) != 0) rc = -errno;
    if (!rc) rc = cf_store_hdr(f, 0, 0);
    if (rc) {
        unlink(f->path);
        cf_free(f);
        if (rc == -EIO) cs_dir_err(cs, d, rc);
    }
    return rc;
}

/* Load the header of chunk id at version ver in folder d into a new entry owned by the
 * caller. */
static int cs_load_at(struct cstore *cs, int d, uint64_t id, uint32_t ver, struct cs_open **out,
                      const struct cs_ra *ra)
{
    struct cs_open *o = cc_new();
    if (!o) return -ENOMEM;
    int rc = cf_load(cs, d, id, ver, &o->f, ra);
    if (rc) {
        cc_unpin(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Load chunk id from disk at the version held (want: the version expected, 0 = none) into a
 * new entry owned by the caller. */
static int cs_load(struct cstore *cs, uint64_t id, uint32_t want, struct cs_open **out,
                   const struct cs_ra *ra)
{
    int d;
    uint32_t cur;
    int rc = cs_find_ver(cs, id, want, &d, &cur);
    return rc ? rc : cs_load_at(cs, d, id, cur, out, ra);
}

/* Chunk's lock held (either mode): the entry of chunk id pinned, from the cache or loaded from
 * disk and cached. The caller unpins it before unlocking. */
static int cs_pin(struct cstore *cs, uint64_t id, uint32_t want, struct cs_open **out,
                  const struct cs_ra *ra)
{
    *out = cc_pin(cs, id);
    if (*out) return 0;
    int rc = cs_load(cs, id, want, out, ra);
    if (!rc) cc_insert(cs, *out);
    return rc;
}

/* Chunk's lock held exclusively: the entry of chunk id taken out of the cache, or loaded from
 * disk, for a change; cs_put ends it. */
static int cs_own(struct cstore *cs, uint64_t id, uint32_t want, struct cs_open **out)
{
    *out = cc_take(cs, id);
    int rc = *out ? 0 : cs_load(cs, id, want, out, NULL);
    if (!rc && (rc = cf_cks_full(&(*out)->f))) {
        cc_unpin(*out);
        *out = NULL;
    }
    return rc;
}

/* End of a change on o (may be NULL): keep, when the file and o->f agree, puts it back in the
 * cache; otherwise it is closed and the next user reads the header from disk. */
void cs_put(struct cstore *cs, struct cs_open *o, int keep)
{
    if (!o) return;
    if (keep) cc_insert(cs, o);
    cc_unpin(o);
}

/* Create chunk id at version ver in a new entry owned by the caller. */
static int cs_create(struct cstore *cs, uint64_t id, uint32_t ver, struct cs_open **out)
{
    struct cs_open *o = cc_new();
    if (!o) return -ENOMEM;
    int rc = cf_create(cs, id, ver, &o->f);
    if (rc) {
        cc_unpin(o);
        return rc;
    }
    cs_gained(cs, id, ver);
    *out = o;
    return 0;
}

/* Move the file of chunk id in folder d from version from up to version to (a rename, data
 * unchanged); f (may be NULL) is the open file, renamed with it. */
static int cs_move(struct cstore *cs, int d, uint64_t id, uint32_t from, uint32_t to,
                   struct chunkf *f)
{
    char a[640], b[640];
    cs_chunk_path(cs, d, id, from, a, sizeof(a));
    cs_chunk_path(cs, d, id, to, b, sizeof(b));
    if (rename(a, b) != 0) return cs_dir_err(cs, d, -errno);
    /* the header's version follows the name: a client reading the file in place (chunkfile.h)
     * then sees that it moved on, even through a file it opened under the old name; a crash
     * before this write leaves the older version there, which such a reader refuses */
    uint8_t v[4];
    le_put32(v, to);
    int fd = f ? f->fd : open(b, O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && pwrite(fd, v, sizeof(v), CHUNKFILE_VERSION_OFF) != (ssize_t)sizeof(v))
        LOG_WARN("cstore", "chunk %016" PRIx64 " v%u: header version not updated: %s", id, to,
                 strerror(errno));
    if (fd >= 0 && !f) close(fd);
    if (f) {
        f->ver = to;
        memcpy(f->path, b, sizeof(f->path));
    }
    cs_gained(cs, id, to);
    return 0;
}

/* Apply the version rules of write/truncate (chunk's lock held exclusively); on success *out
 * is the chunk's entry at version ver, owned by the caller (cs_put). */
int cs_take(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, struct cs_open **out)
{
    int d, rc = 0;
    uint32_t cur;
    struct cs_open *o = cc_take(cs, id);
    if (o) {
        d = o->f.dir;
        cur = o->f.ver;
    } else {
        /* the common cases first: another write under the same lease (the file is at ver),
         * then the first write of a new lease (at prev); the scan for anything else */
        rc = cs_find_exact(cs, id, ver, &d);
        if (!rc)
            cur = ver;
        else
            rc = cs_find_ver(cs, id, prev != ver ? prev : 0, &d, &cur);
        if (rc == -ENOENT) return prev != 0 ? -ENOENT : cs_create(cs, id, ver, out);
        if (rc) return rc;
    }
    /* A holder older than prev missed only leases that wrote nothing (a lease bumps the version
     * before the data comes); the meta service chains only holders it trusts. */
    if (cur > ver) {
        cs_put(cs, o, 1);
        return -ESTALE;
    }
    if (cur != ver) {
        rc = cs_move(cs, d, id, cur, ver, o ? &o->f : NULL);
        if (rc) {
            cs_put(cs, o, 1); /* nothing changed */
            return rc;
        }
        LOG_DEBUG("cstore", "chunk %016" PRIx64 " v%u -> v%u", id, cur, ver);
    }
    if (!o) {
        rc = cs_load_at(cs, d, id, ver, &o, NULL);
        if (rc) return rc;
        /* a crash may have left bytes past the recorded length: drop them */
        struct stat st;
        if (fstat(o->f.fd, &st) == 0 && st.st_size > (off_t)CSTORE_DATA_OFF + o->f.len)
            if (ftruncate(o->f.fd, (off_t)CSTORE_DATA_OFF + o->f.len) != 0) { /* harmless */
            }
    }
    if ((rc = cf_cks_full(&o->f))) {
        cc_unpin(o); /* unchanged: the next user loads it again */
        return rc;
    }
    *out = o;
    return 0;
}

/* The data [off, off+len) of f was read and will not be needed again: out of the page cache
 * unless the store keeps it. */
static void cf_drop_pages(struct cstore *cs, struct chunkf *f, uint32_t off, uint32_t len)
{
    if (!cs->keep_page_cache)
        posix_fadvise(f->fd, (off_t)CSTORE_DATA_OFF + off, len, POSIX_FADV_DONTNEED);
}

/* Read the valid bytes of block b (file holes read as zeros) into buf (B bytes, zero padded)
 * and verify them against the stored checksum. */
int cf_read_block(struct chunkf *f, uint32_t b, uint8_t *buf)
{
    uint32_t start = b * B;
    uint32_t valid = f->len - start < B ? f->len - start : B;
    memset(buf, 0, B);
    ssize_t n = pread(f->fd, buf, valid, (off_t)CSTORE_DATA_OFF + start);
    if (n < 0) return -errno;
    if (n < (ssize_t)valid) memset(buf + n, 0, valid - n);
    if (cksum_xxh3(buf, valid) != f->cks[b]) return -EUCLEAN;
    return 0;
}

uint64_t zero_cks(uint32_t valid)
{
    static const uint8_t zeros[B];
    return valid == B ? zero_cks_full : cksum_xxh3(zeros, valid);
}

/* Grow the recorded length to new_len: the old last block's checksum now covers more bytes
 * (zeros past the old length), and blocks in between are holes of zeros. Only checksums in
 * memory change; *lo gets the first changed block. */
static int cf_grow(struct chunkf *f, uint32_t new_len, uint32_t *lo, uint8_t *tmp)
{
    uint32_t old = f->len;
    uint32_t nb_old = cksum_nblocks(old), nb_new = cksum_nblocks(new_len);
    *lo = nb_old;
    if (old % B) {
        uint32_t lb = old / B;
        int rc = cf_read_block(f, lb, tmp);
        if (rc) return rc;
        /* make sure the bytes past the old length really are zeros on disk */
        uint32_t blkend = (lb + 1) * B < new_len ? (lb + 1) * B : new_len;
        if (pwrite(f->fd, tmp + (old - lb * B), blkend - old, (off_t)CSTORE_DATA_OFF + old) !=
            (ssize_t)(blkend - old))
            return errno ? -errno : -ENOSPC;
        f->cks[lb] = cksum_xxh3(tmp, blkend - lb * B);
        *lo = lb;
    }
    for (uint32_t b = nb_old; b < nb_new; b++) {
        uint32_t valid = new_len - b * B < B ? new_len - b * B : B;
        f->cks[b] = zero_cks(valid);
    }
    f->len = new_len;
    return 0;
}

int cstore_write(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                 const void *data, uint32_t len, int sync, uint32_t *chunk_len)
{
    return cstore_write_timed(cs, id, ver, prev, off, data, len, sync, chunk_len, NULL);
}

/* fdatasync f, adding its time to *sync_us. */
static int cf_datasync(struct chunkf *f, uint64_t *sync_us)
{
    uint64_t t0 = cstore_now_us();
    int rc = fdatasync(f->fd) != 0 ? -errno : 0;
    *sync_us += cstore_now_us() - t0;
    return rc;
}

int cstore_write_timed(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                       const void *data, uint32_t len, int sync, uint32_t *chunk_len,
                       struct cstore_times *t)
{
    if ((uint64_t)off + len > cs->chunk_size) return -EINVAL;
    struct cs_open *o = NULL;
    uint8_t *buf = NULL;
    int keep = 0;
    uint64_t t0 = cstore_now_us(), sync_us = 0;
    cs_lock_excl(cs, id);
    int rc = cs_take(cs, id, ver, prev, &o);
    if (rc) goto out;
    struct chunkf *f = &o->f;
    keep = 1;                                          /* refusals below change nothing */
    if ((uint64_t)off + len > (uint64_t)f->ncap * B) { /* the chunk size changed meanwhile */
        rc = -EINVAL;
        goto out;
    }
    if (f->flags & CSTORE_FLAG_BAD) {
        rc = -EUCLEAN;
        goto out;
    }
    if (len == 0) {
        *chunk_len = f->len;
        goto hdr;
    }
    keep = 0;
    uint32_t end = off + len;
    uint32_t b0 = off / B, b1 = (end - 1) / B;
    uint32_t nblk = b1 - b0 + 1;
    uint32_t saved_len = f->len;
    buf = malloc((size_t)nblk * B);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    uint32_t lo = b0;
    if (off > f->len) { /* extend past a gap: fix the old last block first */
        uint8_t *tmp = malloc(B);
        uint32_t glo = 0;
        rc = tmp ? cf_grow(f, off, &glo, tmp) : -ENOMEM;
        free(tmp);
        if (rc) goto restore;
        if (glo < lo) lo = glo;
    }
    /* read-modify-write of the partial head and tail blocks */
    memset(buf, 0, (size_t)nblk * B);
    if (off % B && b0 * B < f->len) {
        rc = cf_read_block(f, b0, buf);
        if (rc) goto restore;
    }
    if (end % B && b1 != b0 && b1 * B < f->len) {
        rc = cf_read_block(f, b1, buf + (size_t)(nblk - 1) * B);
        if (rc) goto restore;
    } else if (end % B && b1 == b0 && !(off % B) && b0 * B < f->len) {
        rc = cf_read_block(f, b0, buf);
        if (rc) goto restore;
    }
    memcpy(buf + (off - b0 * B), data, len);
    uint32_t new_len = end > f->len ? end : f->len;
    uint32_t wend = (b1 + 1) * B < new_len ? (b1 + 1) * B : new_len;
    size_t wlen = wend - b0 * B;
    ssize_t n = pwrite(f->fd, buf, wlen, (off_t)CSTORE_DATA_OFF + (off_t)b0 * B);
    if (n != (ssize_t)wlen) {
        rc = n < 0 ? -errno : -ENOSPC;
        goto restore;
    }
    f->len = new_len;
    for (uint32_t b = b0; b <= b1; b++) {
        uint32_t valid = new_len - b * B < B ? new_len - b * B : B;
        f->cks[b] = cksum_xxh3(buf + (size_t)(b - b0) * B, valid);
    }
    *chunk_len = f->len;
    rc = cf_store_hdr(f, lo, b1 + 1);
    if (rc) goto out;
    if (sync) rc = cf_datasync(f, &sync_us);
    if (sync && !rc && ver != prev) cs_sync_dir(f->path);
    keep = !rc;
    goto out;
restore:
    /* leave the old length and checksums (the entry is dropped): put the file size back */
    if (ftruncate(f->fd, (off_t)CSTORE_DATA_OFF + saved_len) != 0) { /* best effort */
    }
    if (rc == -ENOSPC) LOG_WARN("cstore", "chunk %016" PRIx64 " v%u: no space", id, ver);
    goto out;
hdr:
    rc = cf_store_hdr(f, 0, 0);
    if (!rc && sync) rc = cf_datasync(f, &sync_us);
    keep = !rc;
out:
    if (rc == -EIO && o) cs_dir_err(cs, o->f.dir, rc);
    free(buf);
    cs_put(cs, o, keep);
    cs_unlock(cs, id);
    if (t) {
        t->sync_us = sync_us;
        t->disk_us = cstore_now_us() - t0 - sync_us;
    }
    return rc;
}

int cstore_truncate(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t prev, uint32_t len)
{
    if (len > cs->chunk_size) return -EINVAL;
    struct cs_open *o = NULL;
    uint8_t *tmp = malloc(B);
    if (!tmp) return -ENOMEM;
    cs_lock_excl(cs, id);
    int rc = cs_take(cs, id, ver, prev, &o);
    if (rc) goto out;
    struct chunkf *f = &o->f;
    uint32_t lo = 0, hi = cksum_nblocks(len);
    if (hi > f->ncap) { /* the chunk size changed meanwhile */
        rc = -EINVAL;
        goto out;
    }
    if (len > f->len) {
        uint32_t old = f->len;
        rc = cf_grow(f, len, &lo, tmp);
        if (rc) goto out;
        if (ftruncate(f->fd, (off_t)CSTORE_DATA_OFF + len) != 0) {
            rc = -errno;
            f->len = old;
            goto out;
        }
    } else if (len < f->len) {
        if (len % B) {
            uint32_t lb = len / B;
            rc = cf_read_block(f, lb, tmp);
            if (rc) goto out;
            f->cks[lb] = cksum_xxh3(tmp, len - lb * B);
            lo = lb;
        } else {
            lo = hi;
        }
        /* header first: a crash leaves a shorter length over longer data, still consistent */
        f->len = len;
        rc = cf_store_hdr(f, lo, hi);
        if (rc) goto out;
        if (ftruncate(f->fd, (off_t)CSTORE_DATA_OFF + len) != 0) rc = -errno;
        goto out;
    } else {
        lo = hi;
    }
    rc = cf_store_hdr(f, lo, hi);
out:
    if (rc == -EIO && o) cs_dir_err(cs, o->f.dir, rc);
    free(tmp);
    /* a failure may have left f ahead of the file: drop it (but a refused bad block or a size
     * check changed nothing) */
    cs_put(cs, o, !rc || rc == -EUCLEAN || rc == -EINVAL);
    cs_unlock(cs, id);
    return rc;
}

int cstore_read(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                uint8_t *buf, uint32_t *data_off, uint32_t *chunk_len, uint32_t *nblocks,
                uint64_t *cks, uint32_t *datalen, uint32_t *bad_block, int exact)
{
    return cstore_read_timed(cs, id, ver, off, len, buf, data_off, chunk_len, nblocks, cks, datalen,
                             bad_block, exact, NULL);
}

int cstore_read_timed(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                      uint8_t *buf, uint32_t *data_off, uint32_t *chunk_len, uint32_t *nblocks,
                      uint64_t *cks, uint32_t *datalen, uint32_t *bad_block, int exact,
                      struct cstore_times *t)
{
    struct cstore_times tm = {0};
    struct cs_open *o = NULL;
    *bad_block = 0;
    cs_lock_shared(cs, id);
    struct cs_ra ra = {off, len};
    int rc = cs_pin(cs, id, ver, &o, &ra);
    if (rc) goto out;
    struct chunkf *f = &o->f;
    /* Older than asked: a writer took a lease but has not written yet, the data is unchanged
     * (served unless the caller wants exactly ver). Newer than asked: stale request. */
    if (f->ver > ver || (exact && f->ver != ver)) {
        rc = -ESTALE;
        goto out;
    }
    *chunk_len = f->len;
    if (f->flags & CSTORE_FLAG_BAD) {
        rc = -EUCLEAN;
        goto out;
    }
    if (len == 0 || off >= f->len) {
        *data_off = (off < f->len ? off : f->len) / B * B;
        *nblocks = 0;
        *datalen = 0;
        goto out;
    }
    uint32_t end = (uint64_t)off + len < f->len ? off + len : f->len;
    uint32_t b0 = off / B, b1 = (end - 1) / B;
    uint32_t dstart = b0 * B, dend = (b1 + 1) * B < f->len ? (b1 + 1) * B : f->len;
    uint64_t t0 = cstore_now_us();
    ssize_t n = pread(f->fd, buf, dend - dstart, (off_t)CSTORE_DATA_OFF + dstart);
    uint64_t t1 = cstore_now_us();
    tm.disk_us = t1 - t0;
    if (n < 0) {
        rc = -errno;
        goto out;
    }
    if (n < (ssize_t)(dend - dstart)) memset(buf + n, 0, dend - dstart - n);
    for (uint32_t b = b0; b <= b1 && !rc; b++) {
        uint32_t valid = f->len - b * B < B ? f->len - b * B : B;
        cks[b - b0] = cksum_xxh3(buf + (size_t)(b - b0) * B, valid);
        if (cks[b - b0] != f->cks[b]) {
            *bad_block = b;
            LOG_ERR("cstore", "chunk %016" PRIx64 " v%u block %u: checksum mismatch on read", id,
                    ver, b);
            rc = -EUCLEAN;
        }
    }
    tm.cksum_us = cstore_now_us() - t1;
    if (rc) goto out;
    /* the client keeps what it asked for: pages it got whole leave our cache; the blocks of a
     * small read stay (the client drops the rest of them, and the next small read near it
     * would otherwise go to the disk again) */
    if (off == dstart && (end == dend || end == f->len))
        cf_drop_pages(cs, f, dstart, dend - dstart);
    *data_off = dstart;
    *nblocks = b1 - b0 + 1;
    *datalen = dend - dstart;
out:
    if (rc == -EIO && o) cs_dir_err(cs, o->f.dir, rc);
    if (o) cc_unpin(o);
    cs_unlock(cs, id);
    if (t) *t = tm;
    return rc;
}

int cstore_delete(struct cstore *cs, uint64_t id, uint32_t ver)
{
    int d, rc;
    uint32_t cur;
    char path[640];
    cs_lock_excl(cs, id);
    cc_drop(cs, id);
    rc = cs_find_ver(cs, id, ver, &d, &cur);
    /* an older version than named is deleted too: it only missed leases (see cs_take) */
    if (!rc && ver != 0 && cur > ver) rc = -ESTALE;
    if (!rc) {
        cs_chunk_path(cs, d, id, cur, path, sizeof(path));
        if (unlink(path) != 0)
            rc = cs_dir_err(cs, d, -errno);
        else
            LOG_DEBUG("cstore", "chunk %016" PRIx64 " v%u deleted", id, cur);
    }
    cs_unlock(cs, id);
    return rc;
}

int cstore_fsync(struct cstore *cs, uint64_t id, uint32_t ver)
{
    struct cs_open *o = NULL;
    cs_lock_shared(cs, id);
    int rc = cs_pin(cs, id, ver, &o, NULL);
    if (!rc && o->f.ver != ver) rc = -ESTALE;
    if (!rc) {
        if (fsync(o->f.fd) != 0) rc = -errno;
        cs_sync_dir(o->f.path);
        if (rc == -EIO) cs_dir_err(cs, o->f.dir, rc);
    }
    if (o) cc_unpin(o);
    cs_unlock(cs, id);
    return rc;
}

int cstore_seek(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t off, int whence,
                uint32_t *out)
{
    if (whence != SEEK_DATA && whence != SEEK_HOLE) return -EINVAL;
    struct cs_open *o = NULL;
    cs_lock_shared(cs, id);
    int rc = cs_pin(cs, id, ver, &o, NULL);
    if (!rc && o->f.ver > ver) rc = -ESTALE;
    if (!rc) {
        uint32_t len = o->f.len;
        if (off >= len) {
            /* past the data: all hole */
            rc = whence == SEEK_DATA ? -ENXIO : 0;
            *out = off;
        } else {
            off_t r = lseek(o->f.fd, (off_t)CSTORE_DATA_OFF + off, whence);
            if (r < 0) {
                /* ENXIO: no data after off; a file system without holes: all data */
                rc = errno == ENXIO ? (whence == SEEK_DATA ? -ENXIO : 0) : -errno;
                if (!rc) *out = len;
                if (rc == -EINVAL) {
                    rc = 0;
                    *out = whence == SEEK_DATA ? off : len;
                }
            } else {
                uint64_t at = (uint64_t)r - CSTORE_DATA_OFF;
                if (whence == SEEK_DATA && at >= len) rc = -ENXIO;
                *out = at < len ? (uint32_t)at : len;
            }
        }
    }
    if (o) cc_unpin(o);
    cs_unlock(cs, id);
    return rc;
}

int cstore_info(struct cstore *cs, uint64_t id, uint32_t *ver, uint32_t *len)
{
    struct cs_open *o = NULL;
    cs_lock_shared(cs, id);
    int rc = cs_pin(cs, id, 0, &o, NULL);
    if (!rc) {
        *ver = o->f.ver;
        *len = o->f.len;
        cc_unpin(o);
    }
    cs_unlock(cs, id);
    return rc;
}

int cstore_path(struct cstore *cs, uint64_t id, char *out, size_t len, uint32_t *ver)
{
    int d;
    int rc = cs_find(cs, id, &d, ver);
    if (!rc) cs_chunk_path(cs, d, id, *ver, out, len);
    return rc;
}

int cstore_foreach(struct cstore *cs, int (*fn)(void *arg, uint64_t id, uint32_t ver), void *arg)
{
    char sub[600];
    for (int d = 0; d < cs->ndirs; d++) {
        if (!cs->dirs[d].ok) continue;
        for (int x = 0; x < 256; x++) {
            snprintf(sub, sizeof(sub), "%s/%02x", cs->dirs[d].path, x);
            DIR *dp = opendir(sub);
            if (!dp) {
                if (errno != ENOENT) cs_dir_err(cs, d, -errno);
                continue;
            }
            struct dirent *de;
            int rc = 0;
            while (!rc && (de = readdir(dp))) {
                uint64_t id;
                uint32_t ver;
                if (cs_parse_name(de->d_name, &id, &ver)) continue;
                rc = fn(arg, id, ver);
            }
            closedir(dp);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Mark chunk id at version ver bad, under its exclusive lock. block < 0: at once; else only
 * when that block still fails its checksum (tmp: B bytes) - a write may have replaced it since
 * it was found bad. 0 when marked (or already bad), -EAGAIN when the block is good now, or the
 * error (-ESTALE: another version is held). */
static int cs_mark(struct cstore *cs, uint64_t id, uint32_t ver, int64_t block, uint8_t *tmp)
{
    struct cs_open *o = NULL;
    cs_lock_excl(cs, id);
    int rc = cs_own(cs, id, ver, &o);
    if (!rc && o->f.ver != ver) rc = -ESTALE;
    if (!rc && !(o->f.flags & CSTORE_FLAG_BAD) && block >= 0) {
        if (block >= cksum_nblocks(o->f.len) || cf_read_block(&o->f, (uint32_t)block, tmp) == 0)
            rc = -EAGAIN;
    }
    if (!rc && !(o->f.flags & CSTORE_FLAG_BAD)) {
        /* kept bad in memory even when the header cannot be written: never served again */
        o->f.flags |= CSTORE_FLAG_BAD;
        rc = cf_store_hdr(&o->f, 0, 0);
    }
    cs_put(cs, o, 1);
    cs_unlock(cs, id);
    return rc;
}

int cstore_mark_bad(struct cstore *cs, uint64_t id, uint32_t ver)
{
    return cs_mark(cs, id, ver, -1, NULL);
}

int cstore_setver(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t *held)
{
    struct cs_open *o = NULL;
    uint32_t cur = 0;
    cs_lock_excl(cs, id);
    int rc = cs_own(cs, id, 0, &o);
    if (!rc) cur = o->f.ver;
    if (!rc && cur > ver) rc = -ESTALE;
    if (!rc && (o->f.flags & CSTORE_FLAG_BAD)) rc = -EUCLEAN;
    if (!rc && cur != ver) {
        rc = cs_move(cs, o->f.dir, id, cur, ver, &o->f);
        if (!rc) {
            cs_sync_dir(o->f.path);
            LOG_INFO("cstore", "chunk %016" PRIx64 " v%u -> v%u (setver)", id, cur, ver);
            cur = ver;
        }
    }
    *held = cur;
    cs_put(cs, o, 1);
    cs_unlock(cs, id);
    return rc;
}

int cstore_scrub_chunk(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t *bad_block,
                       void (*rate_fn)(void *arg, uint32_t bytes), void *arg)
{
    uint8_t *tmp = malloc(B);
    if (!tmp) return -ENOMEM;
    /* read the header from disk again: damage to a cached chunk's checksums is found too */
    cs_lock_excl(cs, id);
    cc_drop(cs, id);
    cs_unlock(cs, id);
    int rc = 0;
    uint32_t nb = 0;
    for (uint32_t b = 0; !rc && (b == 0 || b < nb); b++) {
        /* lock per block so that clients are not held up behind a whole chunk */
        struct cs_open *o = NULL;
        cs_lock_shared(cs, id);
        rc = cs_pin(cs, id, ver, &o, NULL);
        if (!rc && o->f.ver != ver) rc = -ESTALE;
        if (!rc) {
            nb = cksum_nblocks(o->f.len);
            if (o->f.flags & CSTORE_FLAG_BAD)
                rc = 1; /* already known bad */
            else if (b < nb && !(rc = cf_read_block(&o->f, b, tmp)))
                cf_drop_pages(cs, &o->f, b * B, B);
        }
        if (o) cc_unpin(o);
        cs_unlock(cs, id);
        if (rc == -EUCLEAN) {
            int m = cs_mark(cs, id, ver, b, tmp);
            if (m == 0) *bad_block = b;
            rc = m == 0 ? -EUCLEAN : m == -EAGAIN ? 0 : m;
        }
        if (!rc && rate_fn && b < nb) rate_fn(arg, B);
        if (nb == 0) break;
    }
    free(tmp);
    return rc == 1 ? 0 : rc;
}

void cstore_space(struct cstore *cs, uint64_t *capacity, uint64_t *avail)
{
    *capacity = *avail = 0;
    for (int d = 0; d < cs->ndirs; d++) {
        struct statvfs sv;
        if (!cs->dirs[d].ok) continue;
        if (statvfs(cs->dirs[d].path, &sv) != 0) {
            cs_dir_err(cs, d, -errno);
            continue;
        }
        *capacity += (uint64_t)sv.f_blocks * sv.f_frsize;
        *avail += (uint64_t)sv.f_bavail * sv.f_frsize;
    }
}

int cstore_dirs_ok(struct cstore *cs)
{
    int n = 0;
    for (int d = 0; d < cs->ndirs; d++)
        n += cs->dirs[d].ok;
    return n;
}

int cstore_check_dirs(struct cstore *cs)
{
    for (int d = 0; d < cs->ndirs; d++) {
        struct stat st;
        if (cs->dirs[d].ok && stat(cs->dirs[d].path, &st) != 0) cs_dir_fail(cs, d, ENOENT);
    }
    pthread_mutex_lock(&cs->dir_lock);
    int n = cs->dirs_lost;
    pthread_mutex_unlock(&cs->dir_lock);
    return n;
}

int cstore_alloc(struct cstore *cs, uint64_t id, uint64_t *bytes)
{
    char path[700];
    uint32_t ver;
    int rc = cstore_path(cs, id, path, sizeof(path), &ver);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    /* the header area is written up to the checksum array's end, the rest of it is a hole */
    uint64_t blk = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
    uint64_t hdr = CSTORE_HDR_SIZE + (uint64_t)cs_ncap(cs) * 8;
    hdr = (hdr + blk - 1) / blk * blk;
    uint64_t a = (uint64_t)st.st_blocks * 512u;
    *bytes = a > hdr ? a - hdr : 0;
    return 0;
}
