/* wire.c - frame header encode/decode and blocking frame I/O (see wire.h). */
#include "wire.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cksum.h"

void wire_hdr_encode(uint8_t out[WIRE_HDR_SIZE], const struct wire_hdr *h)
{
    le_put32(out + 0, WIRE_MAGIC);
    le_put16(out + 4, WIRE_VERSION);
    le_put16(out + 6, h->type);
    le_put64(out + 8, h->reqid);
    le_put32(out + 16, h->length);
    le_put32(out + 20, (uint32_t)h->status);
    le_put32(out + 24, h->flags);
    le_put32(out + 28, (uint32_t)cksum_xxh3(out, 28));
}

int wire_hdr_decode(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h, uint32_t max_payload)
{
    if (le_get32(in) != WIRE_MAGIC) return -EBADMSG;
    if (le_get16(in + 4) != WIRE_VERSION) return -EBADMSG;
    if (le_get32(in + 28) != (uint32_t)cksum_xxh3(in, 28)) return -EBADMSG;
    h->type = le_get16(in + 6);
    h->reqid = le_get64(in + 8);
    h->length = le_get32(in + 16);
    h->status = (int32_t)le_get32(in + 20);
    h->flags = le_get32(in + 24);
    if (max_payload > WIRE_MAX_PAYLOAD) max_payload = WIRE_MAX_PAYLOAD;
    if (h->length > max_payload) return -EMSGSIZE;
    return 0;
}

int wire_write_full(int fd, const struct iovec *iov_in, int iovcnt)
{
    struct iovec iov[8];
    if (iovcnt > 8) return -EINVAL;
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)iovcnt);
    int i = 0;
    while (i < iovcnt) {
        ssize_t w = writev(fd, iov + i, iovcnt - i);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EPIPE ? -ECONNRESET : -errno;
        }
        size_t done = (size_t)w;
        while (i < iovcnt && done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            i++;
        }
        if (i < iovcnt) {
            iov[i].iov_base = (char *)iov[i].iov_base + done;
            iov[i].iov_len -= done;
        }
    }
    return 0;
}

int wire_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -ECONNRESET;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int wire_send(int fd, const struct wire_hdr *h, const void *p1, size_t n1, const void *p2,
              size_t n2)
{
    uint8_t hb[WIRE_HDR_SIZE];
    struct wire_hdr hh = *h;
    hh.length = (uint32_t)(n1 + n2);
    wire_hdr_encode(hb, &hh);
    struct iovec iov[3];
    int cnt = 0;
    iov[cnt++] = (struct iovec){hb, sizeof(hb)};
    if (n1) iov[cnt++] = (struct iovec){(void *)p1, n1};
    if (n2) iov[cnt++] = (struct iovec){(void *)p2, n2};
    return wire_write_full(fd, iov, cnt);
}

int wire_recv(int fd, struct wire_hdr *h, struct wbuf *payload, uint32_t max_payload)
{
    uint8_t hb[WIRE_HDR_SIZE];
    int rc = wire_read_full(fd, hb, sizeof(hb));
    if (rc) return rc;
    rc = wire_hdr_decode(hb, h, max_payload);
    if (rc) return rc;
    wbuf_reset(payload);
    if (h->length == 0) return 0;
    uint8_t *p = wbuf_extend(payload, h->length);
    if (!p) return -ENOMEM;
    return wire_read_full(fd, p, h->length);
}
