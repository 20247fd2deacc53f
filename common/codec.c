/* codec.c - the put/get functions behind struct wbuf and struct rcur (see codec.h). */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void wbuf_init(struct wbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void wbuf_free(struct wbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void wbuf_reset(struct wbuf *b)
{
    b->len = 0;
    b->err = 0;
}

uint8_t *wbuf_extend(struct wbuf *b, size_t n)
{
    if (b->err) return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->err = -ENOMEM;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

void wbuf_put_u8(struct wbuf *b, uint8_t v)
{
    uint8_t *p = wbuf_extend(b, 1);
    if (p) *p = v;
}

void wbuf_put_u16(struct wbuf *b, uint16_t v)
{
    uint8_t *p = wbuf_extend(b, 2);
    if (p) le_put16(p, v);
}

void wbuf_put_u32(struct wbuf *b, uint32_t v)
{
    uint8_t *p = wbuf_extend(b, 4);
    if (p) le_put32(p, v);
}

void wbuf_put_u64(struct wbuf *b, uint64_t v)
{
    uint8_t *p = wbuf_extend(b, 8);
    if (p) le_put64(p, v);
}

void wbuf_put_i32(struct wbuf *b, int32_t v)
{
    wbuf_put_u32(b, (uint32_t)v);
}

void wbuf_put_i64(struct wbuf *b, int64_t v)
{
    wbuf_put_u64(b, (uint64_t)v);
}

void wbuf_put_raw(struct wbuf *b, const void *src, size_t n)
{
    if (n == 0) return;
    uint8_t *p = wbuf_extend(b, n);
    if (p) memcpy(p, src, n);
}

void wbuf_put_bytes(struct wbuf *b, const void *src, size_t n)
{
    wbuf_put_u32(b, (uint32_t)n);
    wbuf_put_raw(b, src, n);
}

void wbuf_put_str(struct wbuf *b, const char *s, size_t n)
{
    if (n > UINT16_MAX) {
        b->err = -ENAMETOOLONG;
        return;
    }
    wbuf_put_u16(b, (uint16_t)n);
    wbuf_put_raw(b, s, n);
}

void rcur_init(struct rcur *c, const void *p, size_t n)
{
    c->p = p;
    c->left = n;
    c->err = 0;
}

static const uint8_t *take(struct rcur *c, size_t n)
{
    if (c->err || c->left < n) {
        c->err = -EBADMSG;
        c->left = 0;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

uint8_t rcur_u8(struct rcur *c)
{
    const uint8_t *p = take(c, 1);
    return p ? *p : 0;
}

uint16_t rcur_u16(struct rcur *c)
{
    const uint8_t *p = take(c, 2);
    return p ? le_get16(p) : 0;
}

uint32_t rcur_u32(struct rcur *c)
{
    const uint8_t *p = take(c, 4);
    return p ? le_get32(p) : 0;
}

uint64_t rcur_u64(struct rcur *c)
{
    const uint8_t *p = take(c, 8);
    return p ? le_get64(p) : 0;
}

int32_t rcur_i32(struct rcur *c)
{
    return (int32_t)rcur_u32(c);
}

int64_t rcur_i64(struct rcur *c)
{
    return (int64_t)rcur_u64(c);
}

void rcur_raw(struct rcur *c, void *out, size_t n)
{
    const uint8_t *p = take(c, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

const uint8_t *rcur_view(struct rcur *c, size_t n)
{
    return take(c, n);
}

const uint8_t *rcur_bytes(struct rcur *c, size_t max, size_t *len)
{
    uint32_t n = rcur_u32(c);
    *len = 0;
    if (c->err) return NULL;
    if (n > max) {
        c->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = take(c, n);
    if (p) *len = n;
    return p;
}

int rcur_str(struct rcur *c, char *out, size_t max)
{
    uint16_t n = rcur_u16(c);
    out[0] = '\0';
    if (c->err) return c->err;
    if (n > max) {
        c->err = -EBADMSG;
        return c->err;
    }
    const uint8_t *p = take(c, n);
    if (!p) return c->err;
    if (memchr(p, '\0', n)) {
        c->err = -EBADMSG;
        return c->err;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

int rcur_done(const struct rcur *c)
{
    if (c->err) return c->err;
    return c->left == 0 ? 0 : -EBADMSG;
}
