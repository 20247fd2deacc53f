/* server_top.c - the live counters of the cluster: MSG_CLIENT_STATS (a mount tells the leader
 * its counters; kept in memory by client_stats.c) and MSG_TOP (every chunk server's and every
 * mount's cumulative counters, for `cairn top`). Layouts in proto.h. */
#include <errno.h>
#include <string.h>

#include "meta.h"
#include "net.h"

/* A mount not heard from for this long is left out of MSG_TOP (and forgotten). */
#define CLIENT_STATS_FORGET_MS (30u * 1000u)

static int client_stats(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                        struct rcur *r)
{
    struct client_stat cs = {0};
    cs.session = rcur_u64(r);
    rcur_str(r, cs.name, sizeof(cs.name) - 1);
    cs.meta_ops = rcur_u64(r);
    cs.reads = rcur_u64(r);
    cs.read_bytes = rcur_u64(r);
    cs.writes = rcur_u64(r);
    cs.write_bytes = rcur_u64(r);
    if (rcur_done(r)) return -EBADMSG;
    (void)m;
    snprintf(cs.peer, sizeof(cs.peer), "%s", evsrv_conn_peer(conn));
    cs.seen_ms = net_now_ms();
    int rc = cs.session ? client_stats_update(&cs) : -EINVAL;
    evsrv_reply(conn, h, rc, NULL, 0);
    return 0;
}

struct top_out {
    struct wbuf *out;
    uint64_t now_ms;
    uint32_t n;
    uint64_t forget[64];
    int nforget;
};

static void put_client(void *arg, const struct client_stat *cs)
{
    struct top_out *t = arg;
    if (t->now_ms - cs->seen_ms > CLIENT_STATS_FORGET_MS) {
        if (t->nforget < 64) t->forget[t->nforget++] = cs->session;
        return;
    }
    wbuf_put_u64(t->out, cs->session);
    wbuf_put_str(t->out, cs->name, strlen(cs->name));
    wbuf_put_str(t->out, cs->peer, strlen(cs->peer));
    wbuf_put_u64(t->out, cs->meta_ops);
    wbuf_put_u64(t->out, cs->reads);
    wbuf_put_u64(t->out, cs->read_bytes);
    wbuf_put_u64(t->out, cs->writes);
    wbuf_put_u64(t->out, cs->write_bytes);
    wbuf_put_u64(t->out, cs->seen_ms);
    t->n++;
}

static int top(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h, struct rcur *r,
               struct wbuf *out)
{
    if (rcur_done(r)) return -EBADMSG;
    uint64_t now = net_now_ms();
    wbuf_put_u64(out, now);
    wbuf_put_u32(out, csr_count(&m->reg));
    for (int s = 0; s < CSR_MAX; s++) {
        const struct csr_server *sv = &m->reg.srv[s];
        if (!sv->id) continue;
        wbuf_put_u64(out, sv->id);
        wbuf_put_str(out, sv->addr, strlen(sv->addr));
        wbuf_put_u8(out, csr_state(sv));
        wbuf_put_u64(out, sv->st_reads);
        wbuf_put_u64(out, sv->st_read_bytes);
        wbuf_put_u64(out, sv->st_writes);
        wbuf_put_u64(out, sv->st_write_bytes);
        wbuf_put_u64(out, sv->last_seen_ms);
    }
    size_t at = out->len;
    wbuf_put_u32(out, 0);
    struct top_out t = {.out = out, .now_ms = now};
    client_stats_each(put_client, &t);
    if (!out->err) le_put32(out->data + at, t.n);
    for (int i = 0; i < t.nforget; i++)
        client_stats_drop(t.forget[i]);
    int rc = out->err;
    evsrv_reply(conn, h, rc, rc ? NULL : out->data, rc ? 0 : out->len);
    return 0;
}

int meta_handle_top(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                    struct rcur *r, struct wbuf *out)
{
    if (h->type == MSG_CLIENT_STATS) return client_stats(m, conn, h, r);
    if (h->type == MSG_TOP) return top(m, conn, h, r, out);
    return -EBADMSG;
}
