/* fileio.c - whole reads and writes on file descriptors (fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* pread (writing 0) or pwrite (writing 1) exactly n bytes at off: 0, -EIO at a zero-length
 * transfer (the end of the file for a read), or -errno. */
static int transfer_all(int fd, uint8_t *p, size_t n, off_t off, int writing)
{
    while (n) {
        ssize_t r = writing ? pwrite(fd, p, n, off) : pread(fd, p, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int fio_pread_all(int fd, void *buf, size_t n, off_t off)
{
    return transfer_all(fd, buf, n, off, 0);
}

int fio_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    return transfer_all(fd, (uint8_t *)(uintptr_t)buf, n, off, 1); /* only written from */
}

int fio_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

ssize_t fio_preadv_pages(int fd, void *head, size_t head_len, uint8_t *out, uint32_t len, off_t pos)
{
    uint32_t whole = len / FIO_PAGE * FIO_PAGE;
    _Alignas(FIO_PAGE) uint8_t page[FIO_PAGE];
    struct iovec v[3];
    int nv = 0;
    if (head_len) v[nv++] = (struct iovec){head, head_len};
    v[nv++] = (struct iovec){out, whole};
    if (whole < len) v[nv++] = (struct iovec){page, FIO_PAGE};
    ssize_t n = preadv(fd, v, nv, pos);
    if (n < 0) return -errno;
    size_t upto = head_len + whole;
    if ((size_t)n <= upto) return n;
    size_t part = (size_t)n - upto < len - whole ? (size_t)n - upto : len - whole;
    memcpy(out + whole, page, part);
    return (ssize_t)(upto + part);
}
