/* codec.h - bounds-checked little-endian encoding and decoding of message payloads.
 *
 * A `struct wbuf` is a growable output buffer; every put appends. A `struct rcur` is a read
 * cursor over bytes it does not own; every get checks the bytes left and, on a short buffer or
 * a bad length, sets `err` to -EBADMSG and returns zeros from then on, so a decoder can read a
 * whole message and check `err` once at the end. Nothing read from the wire is used as a length
 * without a bound. */
#ifndef CAIRN_CODEC_H
#define CAIRN_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct wbuf {
    uint8_t *data; /* owned; freed by wbuf_free */
    size_t len;
    size_t cap;
    int err; /* -ENOMEM once an allocation failed */
};

void wbuf_init(struct wbuf *b);
void wbuf_free(struct wbuf *b);
void wbuf_reset(struct wbuf *b);
/* Make room for n more bytes; returns a pointer to them (len is advanced) or NULL. */
uint8_t *wbuf_extend(struct wbuf *b, size_t n);
void wbuf_put_u8(struct wbuf *b, uint8_t v);
void wbuf_put_u16(struct wbuf *b, uint16_t v);
void wbuf_put_u32(struct wbuf *b, uint32_t v);
void wbuf_put_u64(struct wbuf *b, uint64_t v);
void wbuf_put_i32(struct wbuf *b, int32_t v);
void wbuf_put_i64(struct wbuf *b, int64_t v);
void wbuf_put_raw(struct wbuf *b, const void *p, size_t n);
/* u32 length followed by the bytes. */
void wbuf_put_bytes(struct wbuf *b, const void *p, size_t n);
/* A string: u16 length then the bytes, no terminator. */
void wbuf_put_str(struct wbuf *b, const char *s, size_t n);

struct rcur {
    const uint8_t *p;
    size_t left;
    int err; /* 0, or -EBADMSG once a get ran past the end or a length was out of bounds */
};

void rcur_init(struct rcur *c, const void *p, size_t n);
uint8_t rcur_u8(struct rcur *c);
uint16_t rcur_u16(struct rcur *c);
uint32_t rcur_u32(struct rcur *c);
uint64_t rcur_u64(struct rcur *c);
int32_t rcur_i32(struct rcur *c);
int64_t rcur_i64(struct rcur *c);
/* Copy n bytes out; zero-fills on error. */
void rcur_raw(struct rcur *c, void *out, size_t n);
/* Point at n bytes inside the buffer (no copy); NULL on error. */
const uint8_t *rcur_view(struct rcur *c, size_t n);
/* u32-length-prefixed bytes, at most max long; returns a pointer into the buffer. */
const uint8_t *rcur_bytes(struct rcur *c, size_t max, size_t *len);
/* u16-length-prefixed string of at most max bytes, copied into out (size max+1) with a NUL.
 * Embedded NULs are refused. Returns the length, or -EBADMSG. */
int rcur_str(struct rcur *c, char *out, size_t max);
/* 0 if the cursor is intact and fully consumed, else -EBADMSG. */
int rcur_done(const struct rcur *c);

static inline void le_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void le_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t le_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t le_get64(const uint8_t *p)
{
    return (uint64_t)le_get32(p) | ((uint64_t)le_get32(p + 4) << 32);
}

#endif
