/* cstore_tmp.c - replicas copied into the chunk store: a chunk file built under a temporary
 * name in DIR/tmp/ (never seen by lookups, cstore_foreach or chunk reports; emptied by
 * cstore_open), filled with blocks whose checksums the caller verified, then fsynced and
 * installed atomically under its chunk name by a rename in the same data folder, replacing
 * every other version of the chunk the store held. The header is written last, so a temporary
 * file is a valid chunk file only once it is complete. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cksum.h"
#include "cstore_priv.h"
#include "log.h"

#define B CKSUM_BLOCK

static unsigned tmp_seq;

static void tmp_free(struct cstore_tmp *t)
{
    if (t->fd >= 0) close(t->fd);
    free(t->cks);
    free(t->have);
    t->fd = -1;
    t->cks = NULL;
    t->have = NULL;
}

void cs_tmp_clean(struct cstore *cs)
{
    char sub[600], path[900];
    for (int d = 0; d < cs->ndirs; d++) {
        snprintf(sub, sizeof(sub), "%s/%s", cs->dirs[d].path, CSTORE_TMP_SUBDIR);
        DIR *dp = opendir(sub);
        if (!dp) continue;
        struct dirent *de;
        int n = 0;
        while ((de = readdir(dp))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
            if (unlink(path) == 0) n++;
        }
        closedir(dp);
        if (n) LOG_INFO("cstore", "removed %d unfinished replica file(s) from %s", n, sub);
    }
}

int cstore_tmp_open(struct cstore *cs, uint64_t id, uint32_t ver, uint32_t len,
                    struct cstore_tmp *t)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    if (len > cs->chunk_size || ver == 0) return -EINVAL;
    int d = cs_pick_dir(cs);
    if (d < 0) return -EIO;
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/%s", cs->dirs[d].path, CSTORE_TMP_SUBDIR);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST) return cs_dir_err(cs, d, -errno);
    t->dir = d;
    t->id = id;
    t->ver = ver;
    t->len = len;
    t->nblocks = cksum_nblocks(len);
    t->ncap = cs_ncap(cs);
    unsigned seq = __atomic_add_fetch(&tmp_seq, 1, __ATOMIC_RELAXED);
    snprintf(t->path, sizeof(t->path), "%s/%016" PRIx64 "_%u.%u.part", sub, id, ver, seq);
    t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (t->fd < 0) return cs_dir_err(cs, d, -errno);
    t->cks = calloc(t->ncap ? t->ncap : 1, sizeof(uint64_t));
    t->have = calloc(t->nblocks ? t->nblocks : 1, 1);
    int rc = t->cks && t->have ? 0 : -ENOMEM;
    /* the whole header area now (as cf_create), then the data size as holes */
    size_t hsz = CSTORE_HDR_SIZE + (size_t)t->ncap * 8;
    uint8_t *z = rc ? NULL : calloc(1, hsz);
    if (!rc && !z) rc = -ENOMEM;
    if (!rc && pwrite(t->fd, z, hsz, 0) != (ssize_t)hsz) rc = errno ? -errno : -ENOSPC;
    free(z);
    if (!rc && ftruncate(t->fd, (off_t)CSTORE_DATA_OFF + len) != 0) rc = -errno;
    if (rc) cstore_tmp_abort(cs, t);
    return rc;
}

static int all_zero(const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

int cstore_tmp_write(struct cstore *cs, struct cstore_tmp *t, uint32_t off, const void *data,
                     uint32_t dlen, const uint64_t *cks)
{
    if (t->fd < 0) return -EBADF;
    if (off % B || (uint64_t)off + dlen > t->len) return -EINVAL;
    if (dlen % B && off + dlen != t->len) return -EINVAL;
    const uint8_t *p = data;
    for (uint32_t i = 0; (uint64_t)i * B < dlen; i++) {
        uint32_t b = off / B + i, start = i * B;
        uint32_t valid = dlen - start < B ? dlen - start : B;
        int hole = cks[i] == zero_cks(valid) && all_zero(p + start, valid);
        if (!hole) {
            ssize_t n = pwrite(t->fd, p + start, valid, (off_t)CSTORE_DATA_OFF + off + start);
            if (n != (ssize_t)valid) return cs_dir_err(cs, t->dir, n < 0 ? -errno : -ENOSPC);
        }
        t->cks[b] = cks[i];
        t->have[b] = 1;
    }
    return 0;
}

void cstore_tmp_abort(struct cstore *cs, struct cstore_tmp *t)
{
    (void)cs;
    if (t->path[0]) unlink(t->path);
    tmp_free(t);
}

/* Unlink every version of chunk id except the file of version keep in folder keep_dir. */
static void remove_others(struct cstore *cs, uint64_t id, int keep_dir, uint32_t keep)
{
    char sub[600], path[900];
    for (int d = 0; d < cs->ndirs; d++) {
        if (!cs->dirs[d].ok) continue;
        snprintf(sub, sizeof(sub), "%s/%02x", cs->dirs[d].path, (unsigned)(id & 0xff));
        DIR *dp = opendir(sub);
        if (!dp) continue;
        struct dirent *de;
        while ((de = readdir(dp))) {
            uint64_t fid;
            uint32_t fv;
            if (cs_parse_name(de->d_name, &fid, &fv) || fid != id) continue;
            if (d == keep_dir && fv == keep) continue;
            snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
            if (unlink(path) == 0)
                LOG_INFO("cstore", "chunk %016" PRIx64 " v%u removed: replaced by v%u", id, fv,
                         keep);
        }
        closedir(dp);
    }
}

int cstore_tmp_install(struct cstore *cs, struct cstore_tmp *t)
{
    if (t->fd < 0) return -EBADF;
    int rc = 0;
    for (uint32_t b = 0; b < t->nblocks && !rc; b++)
        if (!t->have[b]) rc = -EPROTO; /* a piece is missing: never install a partial copy */
    struct chunkf f = {.fd = t->fd,
                       .dir = t->dir,
                       .id = t->id,
                       .ver = t->ver,
                       .len = t->len,
                       .cks = t->cks,
                       .ncks = t->ncap,
                       .ncap = t->ncap};
    if (!rc) rc = cf_store_hdr(&f, 0, t->nblocks);
    if (!rc && fsync(t->fd) != 0) rc = -errno;
    if (rc) {
        if (rc == -EIO) cs_dir_err(cs, t->dir, rc);
        cstore_tmp_abort(cs, t);
        return rc;
    }
    cs_lock_excl(cs, t->id);
    cc_drop(cs, t->id); /* whatever happens below, the next read loads from disk */
    int d;
    uint32_t cur;
    char sub[600], to[640];
    if (cs_find(cs, t->id, &d, &cur) == 0 && cur > t->ver) {
        rc = -ESTALE;
        goto out;
    }
    snprintf(sub, sizeof(sub), "%s/%02x", cs->dirs[t->dir].path, (unsigned)(t->id & 0xff));
    if (mkdir(sub, 0755) != 0 && errno != EEXIST) {
        rc = cs_dir_err(cs, t->dir, -errno);
        goto out;
    }
    cs_chunk_path(cs, t->dir, t->id, t->ver, to, sizeof(to));
    if (rename(t->path, to) != 0) {
        rc = cs_dir_err(cs, t->dir, -errno);
        goto out;
    }
    t->path[0] = 0;
    remove_others(cs, t->id, t->dir, t->ver);
    cs_sync_dir(to);
    LOG_INFO("cstore", "chunk %016" PRIx64 " v%u installed (%u bytes)", t->id, t->ver, t->len);
    cs_gained(cs, t->id, t->ver);
out:
    cs_unlock(cs, t->id);
    cstore_tmp_abort(cs, t);
    return rc;
}
