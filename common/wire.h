/* wire.h - the frame: a fixed 32-byte little-endian header followed by a payload.
 *
 *   off  size  field
 *     0     4  magic      WIRE_MAGIC
 *     4     2  version    WIRE_VERSION
 *     6     2  type       message type (proto.h); replies set WIRE_REPLY_BIT
 *     8     8  reqid      chosen by the requester, echoed in the reply (pipelining)
 *    16     4  length     payload bytes that follow, at most the receiver's limit
 *    20     4  status     replies: 0 or a negative errno; requests: 0
 *    24     4  flags      reserved, 0
 *    28     4  hcsum      low 32 bits of XXH3-64 over bytes 0..27
 *
 * A frame whose header fails any check is a protocol error: the receiver closes that one
 * connection. Blocking helpers for thread-per-connection code live here too. */
#ifndef CAIRN_WIRE_H
#define CAIRN_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "codec.h"

#define WIRE_MAGIC 0x4e524143u /* "CARN" */
#define WIRE_VERSION 1
#define WIRE_HDR_SIZE 32
#define WIRE_REPLY_BIT 0x8000u
/* Default and hard ceiling on payload size; a daemon may configure a smaller limit. */
#define WIRE_MAX_PAYLOAD (8u << 20)

struct wire_hdr {
    uint16_t type;
    uint64_t reqid;
    uint32_t length;
    int32_t status;
    uint32_t flags;
};

void wire_hdr_encode(uint8_t out[WIRE_HDR_SIZE], const struct wire_hdr *h);
/* Decode and validate a header: magic, version, checksum, length <= max_payload.
 * Returns 0, -EBADMSG (malformed) or -EMSGSIZE (payload too large). */
int wire_hdr_decode(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h, uint32_t max_payload);

/* Blocking I/O on a socket. Both return 0 or a negative errno; -ECONNRESET on EOF. */
int wire_write_full(int fd, const struct iovec *iov, int iovcnt);
int wire_read_full(int fd, void *buf, size_t n);
/* Send one frame: header + up to two payload pieces (either may be NULL/0). */
int wire_send(int fd, const struct wire_hdr *h, const void *p1, size_t n1, const void *p2,
              size_t n2);
/* Receive one frame into *h and payload (reset, then filled). */
int wire_recv(int fd, struct wire_hdr *h, struct wbuf *payload, uint32_t max_payload);

#endif
