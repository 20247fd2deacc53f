/* snap_zstd.c - the compressed form of a store copy (a 16-byte header, then one zstd frame),
 * written from a file descriptor and read back in pieces, in bounded memory; and reading the
 * applied index a store file records. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "codec.h"
#include "fileio.h"
#include "snap_xfer.h"

#define SNAPZ_IO (1u << 20)

int snapz_compress_fd(int in_fd, int out_fd)
{
    uint8_t hdr[SNAP_HDR] = {0};
    le_put32(hdr, SNAP_MAGIC);
    le_put32(hdr + 4, 1);
    int rc = fio_write_all(out_fd, hdr, sizeof(hdr));
    ZSTD_CCtx *z = ZSTD_createCCtx();
    uint8_t *in = malloc(SNAPZ_IO), *zout = malloc(ZSTD_CStreamOutSize());
    if (!z || !in || !zout) rc = -ENOMEM;
    if (!rc) ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 3);
    if (!rc && lseek(in_fd, 0, SEEK_SET) < 0) rc = -errno;
    for (int last = 0; !rc && !last;) {
        ssize_t got = read(in_fd, in, SNAPZ_IO);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        last = got == 0;
        ZSTD_inBuffer ib = {in, (size_t)got, 0};
        for (int done = 0; !rc && !done;) {
            ZSTD_outBuffer ob = {zout, ZSTD_CStreamOutSize(), 0};
            size_t left = ZSTD_compressStream2(z, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError(left)) rc = -EIO;
            if (!rc && ob.pos) rc = fio_write_all(out_fd, zout, ob.pos);
            done = last ? left == 0 : ib.pos == ib.size;
        }
    }
    ZSTD_freeCCtx(z);
    free(in);
    free(zout);
    return rc;
}

struct snapz_dec {
    int fd;
    ZSTD_DCtx *z;
    uint8_t *out;
    size_t cap;
    uint8_t hdr[SNAP_HDR];
    size_t hdr_len; /* header bytes seen so far */
    size_t left;    /* zstd's hint: 0 once a frame is complete */
    int err;
};

int snapz_dec_open(const char *path, struct snapz_dec **out)
{
    *out = NULL;
    struct snapz_dec *d = calloc(1, sizeof(*d));
    if (!d) return -ENOMEM;
    d->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    d->z = ZSTD_createDCtx();
    d->cap = ZSTD_DStreamOutSize();
    d->out = malloc(d->cap);
    d->left = 1;
    int rc = d->fd < 0 ? -errno : !d->z || !d->out ? -ENOMEM : 0;
    if (rc) {
        if (d->fd >= 0) close(d->fd);
        ZSTD_freeDCtx(d->z);
        free(d->out);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int snapz_dec_feed(struct snapz_dec *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (d->err) return d->err;
    if (d->hdr_len < SNAP_HDR) {
        size_t take = SNAP_HDR - d->hdr_len < n ? SNAP_HDR - d->hdr_len : n;
        memcpy(d->hdr + d->hdr_len, b, take);
        d->hdr_len += take;
        b += take;
        n -= take;
        if (d->hdr_len == SNAP_HDR && le_get32(d->hdr) != SNAP_MAGIC) d->err = -EBADMSG;
    }
    ZSTD_inBuffer ib = {b, n, 0};
    while (!d->err && ib.pos < ib.size) {
        ZSTD_outBuffer ob = {d->out, d->cap, 0};
        d->left = ZSTD_decompressStream(d->z, &ob, &ib);
        if (ZSTD_isError(d->left)) d->err = -EBADMSG;
        if (!d->err && ob.pos) d->err = fio_write_all(d->fd, d->out, ob.pos);
    }
    return d->err;
}

int snapz_dec_close(struct snapz_dec *d)
{
    int rc = d->err;
    if (!rc && (d->hdr_len < SNAP_HDR || d->left != 0)) rc = -EBADMSG; /* cut short */
    if (!rc && fsync(d->fd)) rc = -errno;
    close(d->fd);
    ZSTD_freeDCtx(d->z);
    free(d->out);
    free(d);
    return rc;
}

int snapz_peek_applied(const char *file, uint64_t *applied)
{
    MDB_env *env;
    if (mdb_env_create(&env)) return -ENOMEM;
    mdb_env_set_maxdbs(env, 16);
    int rc = mdb_env_open(env, file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0600);
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    if (!rc) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
    if (!rc) rc = mdb_dbi_open(t, "meta", 0, &dbi);
    *applied = 0;
    if (!rc) {
        MDB_val k = {7, (void *)"applied"}, v;
        if (mdb_get(t, dbi, &k, &v) == 0 && v.mv_size == 8) *applied = le_get64(v.mv_data);
    }
    if (t) mdb_txn_abort(t);
    mdb_env_close(env);
    return rc ? -EBADMSG : 0;
}
