/* top_decode.c - MSG_TOP's decoder and the rate arithmetic of `cairn top` (cmd_top.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_top.h"
#include "codec.h"

int top_decode(struct top_sample *s, const void *p, size_t len)
{
    struct rcur c;
    memset(s, 0, sizeof(*s));
    rcur_init(&c, p, len);
    s->now_ms = rcur_u64(&c);
    uint32_t n = rcur_u32(&c);
    if (c.err) return c.err;
    if ((uint64_t)n * 51 > c.left) return -EBADMSG; /* a server row is at least 51 bytes */
    if (n && !(s->servers = calloc(n, sizeof(*s->servers)))) return -ENOMEM;
    s->nservers = n;
    for (uint32_t i = 0; i < n && !c.err; i++) {
        struct top_server *v = &s->servers[i];
        v->id = rcur_u64(&c);
        rcur_str(&c, v->addr, CAIRN_ADDR_MAX);
        v->state = rcur_u8(&c);
        v->c.reads = rcur_u64(&c);
        v->c.read_bytes = rcur_u64(&c);
        v->c.writes = rcur_u64(&c);
        v->c.write_bytes = rcur_u64(&c);
        v->c.seen_ms = rcur_u64(&c);
    }
    uint32_t k = rcur_u32(&c);
    if (!c.err && (uint64_t)k * 60 > c.left) c.err = -EBADMSG; /* a client row: >= 60 bytes */
    if (!c.err && k && !(s->clients = calloc(k, sizeof(*s->clients)))) c.err = -ENOMEM;
    if (!c.err) s->nclients = k;
    for (uint32_t i = 0; i < s->nclients && !c.err; i++) {
        struct top_client *v = &s->clients[i];
        v->session = rcur_u64(&c);
        rcur_str(&c, v->label, CAIRN_NAME_MAX);
        rcur_str(&c, v->peer, CAIRN_ADDR_MAX);
        v->c.meta_ops = rcur_u64(&c);
        v->c.reads = rcur_u64(&c);
        v->c.read_bytes = rcur_u64(&c);
        v->c.writes = rcur_u64(&c);
        v->c.write_bytes = rcur_u64(&c);
        v->c.seen_ms = rcur_u64(&c);
    }
    int rc = rcur_done(&c);
    if (rc) top_free(s);
    return rc;
}

void top_free(struct top_sample *s)
{
    free(s->servers);
    free(s->clients);
    memset(s, 0, sizeof(*s));
}

static double per_s(uint64_t a, uint64_t b, double secs)
{
    return (double)(b >= a ? b - a : b) / secs;
}

void top_rates(const struct top_counts *a, const struct top_counts *b, struct top_rates *r)
{
    memset(r, 0, sizeof(*r));
    if (!a || b->seen_ms <= a->seen_ms) return;
    double secs = (double)(b->seen_ms - a->seen_ms) / 1000.0;
    r->meta_ops = per_s(a->meta_ops, b->meta_ops, secs);
    r->reads = per_s(a->reads, b->reads, secs);
    r->read_bytes = per_s(a->read_bytes, b->read_bytes, secs);
    r->writes = per_s(a->writes, b->writes, secs);
    r->write_bytes = per_s(a->write_bytes, b->write_bytes, secs);
    r->known = 1;
}

const struct top_server *top_find_server(const struct top_sample *s, uint64_t id)
{
    for (uint32_t i = 0; i < s->nservers; i++)
        if (s->servers[i].id == id) return &s->servers[i];
    return NULL;
}

const struct top_client *top_find_client(const struct top_sample *s, uint64_t session)
{
    for (uint32_t i = 0; i < s->nclients; i++)
        if (s->clients[i].session == session) return &s->clients[i];
    return NULL;
}
