/* fileio.h - whole reads and writes on file descriptors: loops over short transfers and EINTR,
 * and a read into a page-aligned buffer that suits O_DIRECT (whole pages straight in, a last
 * part page through a page of its own). Used by the mount's disk cache and reads in place and
 * by the meta service's snapshot files. */
#ifndef CAIRN_FILEIO_H
#define CAIRN_FILEIO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FIO_PAGE 4096u

/* Read exactly n bytes at off. 0; -EIO when the file ends first; another -errno. */
int fio_pread_all(int fd, void *buf, size_t n, off_t off);

/* Write exactly n bytes at off (pwrite) or at the file position (write). 0 or -errno. */
int fio_pwrite_all(int fd, const void *buf, size_t n, off_t off);
int fio_write_all(int fd, const void *buf, size_t n);

/* One preadv at pos: head_len bytes into head (page aligned, head_len a multiple of FIO_PAGE;
 * 0 for none), then len bytes into out, its whole pages straight in and a last part page
 * through a page of our own, so that no transfer is a part page: with out page aligned, an
 * O_DIRECT fd takes it (any fd takes any out). The bytes read into head and out together (fewer at
 * the end of the file, never more than head_len + len), or -errno. */
ssize_t fio_preadv_pages(int fd, void *head, size_t head_len, uint8_t *out, uint32_t len,
                         off_t pos);

#endif
