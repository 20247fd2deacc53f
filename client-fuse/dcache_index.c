/* dcache_index.c - writing and loading the disk cache's index file (dcache_index.h): its
 * encoding, its checksum, and its removal once loaded. */
#include "dcache_index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cksum.h"
#include "codec.h"
#include "fileio.h"

#define DCI_MAGIC 0x3158444e52494143ull /* "CAIRNDX1" */
#define DCI_FORMAT 1u
#define DCI_HEAD 24 /* magic, format, record size, count */
#define DCI_REC 40
#define DCI_NAME "index"
#define DCI_TMP "index.tmp"

int dci_write(int rootfd, const struct dci_rec *recs, size_t n)
{
    if (n > DCI_MAX_RECORDS) return -EINVAL;
    size_t len = DCI_HEAD + n * DCI_REC + 8;
    uint8_t *b = calloc(1, len);
    if (!b) return -ENOMEM;
    le_put64(b, DCI_MAGIC);
    le_put32(b + 8, DCI_FORMAT);
    le_put32(b + 12, DCI_REC);
    le_put64(b + 16, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = b + DCI_HEAD + i * DCI_REC;
        le_put64(r, recs[i].id);
        le_put64(r + 8, recs[i].tag);
        le_put64(r + 16, recs[i].gen);
        le_put32(r + 24, recs[i].ver);
        le_put32(r + 28, recs[i].seg_off);
        le_put32(r + 32, recs[i].len);
    }
    le_put64(b + len - 8, cksum_xxh3(b, len - 8));
    int fd = openat(rootfd, DCI_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int rc = fd < 0 ? -errno : fio_write_all(fd, b, len);
    free(b);
    if (fd >= 0 && close(fd) < 0 && !rc) rc = -errno;
    if (!rc && renameat(rootfd, DCI_TMP, rootfd, DCI_NAME) < 0) rc = -errno;
    if (rc) unlinkat(rootfd, DCI_TMP, 0);
    return rc;
}

/* Decode the index bytes b (len) into *recs, *n: 0, -EUCLEAN or -ENOMEM. */
static int decode(const uint8_t *b, size_t len, struct dci_rec **recs, size_t *n)
{
    if (len < DCI_HEAD + 8 || le_get64(b) != DCI_MAGIC || le_get32(b + 8) != DCI_FORMAT ||
        le_get32(b + 12) != DCI_REC || le_get64(b + len - 8) != cksum_xxh3(b, len - 8))
        return -EUCLEAN;
    uint64_t count = le_get64(b + 16);
    if (count > DCI_MAX_RECORDS || len != DCI_HEAD + count * DCI_REC + 8) return -EUCLEAN;
    struct dci_rec *r = calloc(count ? count : 1, sizeof(*r));
    if (!r) return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = b + DCI_HEAD + i * DCI_REC;
        r[i] = (struct dci_rec){.id = le_get64(p),
                                .tag = le_get64(p + 8),
                                .gen = le_get64(p + 16),
                                .ver = le_get32(p + 24),
                                .seg_off = le_get32(p + 28),
                                .len = le_get32(p + 32)};
    }
    *recs = r;
    *n = count;
    return 0;
}

int dci_load(int rootfd, struct dci_rec **recs, size_t *n)
{
    *recs = NULL;
    *n = 0;
    int fd = openat(rootfd, DCI_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? -ENOENT : errno == ELOOP ? -EUCLEAN : -errno;
    struct stat st;
    uint8_t *b = NULL;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (!rc && (!S_ISREG(st.st_mode) ||
                (uint64_t)st.st_size > DCI_HEAD + (uint64_t)DCI_MAX_RECORDS * DCI_REC + 8))
        rc = -EUCLEAN;
    if (!rc && !(b = malloc((size_t)st.st_size + 1))) rc = -ENOMEM;
    if (!rc) rc = fio_pread_all(fd, b, (size_t)st.st_size, 0);
    if (rc == -EIO) rc = -EUCLEAN; /* shorter than it was a moment ago */
    close(fd);
    if (!rc) rc = decode(b, (size_t)st.st_size, recs, n);
    free(b);
    if (rc == -ENOMEM) return rc;
    /* used once: gone before anything else happens in the folder, and durably so, or the
     * next mount after a crash would believe it */
    if (unlinkat(rootfd, DCI_NAME, 0) < 0 || fsync(rootfd) < 0) {
        if (!rc) rc = -errno;
    }
    if (rc) {
        free(*recs);
        *recs = NULL;
        *n = 0;
    }
    return rc;
}
