/* status_page.c - the status page cairn-meta serves on its HTTP port (meta_http.c): the page's
 * files at /, /status.css and /status.js (meta/www/, embedded by status_www.c) and
 * /api/status, the JSON the page polls every second or two.
 *
 * /api/status is one object (numbers are JSON numbers, counters cumulative; the page takes
 * rates from successive polls):
 *   role ("leader", "follower", "candidate", "unavailable"), ready (a leader serving),
 *   self (this replica's client address), leader (the leader's, "" when unknown),
 *   leader_page (http://LEADER_HOST:OUR_HTTP_PORT/ on a follower that knows the leader: a
 *   guess that every replica serves HTTP on the same port, so "" when the leader's host is
 *   ours, and on the leader), term, commit_index,
 *   applied_index, now_ms (this replica's monotonic clock),
 *   replicas [{id, addr, role, reachable, match_index}],
 *   servers [{id (16 hex digits), addr, zone, alive, draining, capacity, free, chunks, load,
 *     reads, read_bytes, writes, write_bytes, seen_ms_ago}] (the leader's registry; a
 *     follower's is empty),
 *   chunks {scanned (a whole scan pass finished), chunks, full, under, missing, over, stale,
 *     bad, backlog, repair_bytes_per_s, repaired, repaired_bytes},
 *   sessions {count, list [{session, name, peer, meta_ops, reads, read_bytes, writes,
 *     write_bytes, seen_ms_ago}]} (the leader's memory of client keepalives),
 *   totals {inodes, bytes, capacity, free, servers, servers_alive}.
 * Every string is escaped by httpd_json_str (which also turns <, > and & into \u escapes);
 * the page puts names into the document as text only. Runs on the daemon's loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "httpd.h"
#include "meta.h"
#include "mraft.h"
#include "net.h"
#include "status_www.h"

static void serve_file(struct httpd_req *req, struct wbuf *body, void *arg)
{
    const struct www_file *f = arg;
    req->content_type = f->content_type;
    wbuf_put_raw(body, f->data, (size_t)(f->end - f->data));
}

/* ---- JSON pieces -------------------------------------------------------------------------- */

static void j_str(struct wbuf *b, const char *key, const char *val)
{
    httpd_printf(b, "\"%s\":\"", key);
    httpd_json_str(b, val);
    wbuf_put_u8(b, '"');
}

static void j_u64(struct wbuf *b, const char *key, uint64_t v)
{
    httpd_printf(b, "\"%s\":%" PRIu64, key, v);
}

static void j_bool(struct wbuf *b, const char *key, int v)
{
    httpd_printf(b, "\"%s\":%s", key, v ? "true" : "false");
}

static void j_comma(struct wbuf *b)
{
    wbuf_put_u8(b, ',');
}

/* ---- the Raft group (MSG_META_STATUS's payload, read back) -------------------------------- */

static const char *state_name(uint8_t st)
{
    switch (st) {
    case META_ST_LEADER:
        return "leader";
    case META_ST_FOLLOWER:
        return "follower";
    case META_ST_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

static const char *member_role(uint8_t role)
{
    switch (role) {
    case META_ROLE_VOTER:
        return "voter";
    case META_ROLE_STANDBY:
        return "standby";
    default:
        return "spare";
    }
}

/* Whether addr ("HOST:PORT") names host (hl bytes). */
static int same_host(const char *addr, const char *host, int hl)
{
    const char *colon = strrchr(addr, ':');
    return colon && colon - addr == hl && memcmp(addr, host, (size_t)hl) == 0;
}

/* http://HOST:PORT/ of the leader's page, HOST from its client address, PORT ours; "" when
 * the leader runs on our own host (that address would be this page). */
static void leader_page(const struct meta *m, const char *leader, char *out, size_t len)
{
    out[0] = '\0';
    const char *colon = strrchr(leader, ':');
    if (!colon || colon == leader || !m->http) return;
    int hl = (int)(colon - leader);
    if (same_host(m->cfg.listen, leader, hl) || same_host(m->cfg.http, leader, hl)) return;
    int v6 = memchr(leader, ':', (size_t)hl) != NULL && leader[0] != '[';
    snprintf(out, len, "http://%s%.*s%s:%u/", v6 ? "[" : "", hl, leader, v6 ? "]" : "",
             httpd_port(m->http));
}

static void put_raft(struct meta *m, struct wbuf *b)
{
    struct wbuf rs;
    wbuf_init(&rs);
    mraft_status(m, &rs);
    struct rcur c;
    rcur_init(&c, rs.data, rs.err ? 0 : rs.len);
    rcur_u64(&c); /* our id */
    uint8_t st = rcur_u8(&c);
    rcur_u64(&c); /* the leader's id */
    char leader[CAIRN_ADDR_MAX + 1] = "";
    if (rcur_str(&c, leader, CAIRN_ADDR_MAX) < 0) leader[0] = '\0';
    uint64_t term = rcur_u64(&c), commit = rcur_u64(&c), applied = rcur_u64(&c);
    rcur_u64(&c); /* the last index of our log */
    uint32_t n = rcur_u32(&c);

    int leading = st == META_ST_LEADER;
    char page[CAIRN_ADDR_MAX + 32] = "";
    if (!leading && leader[0] && strcmp(leader, m->cfg.listen) != 0)
        leader_page(m, leader, page, sizeof(page));
    j_str(b, "role", c.err ? "unavailable" : state_name(st));
    j_comma(b);
    j_bool(b, "ready", meta_ready(m));
    j_comma(b);
    j_str(b, "self", m->cfg.listen);
    j_comma(b);
    j_str(b, "leader", leader);
    j_comma(b);
    j_str(b, "leader_page", page);
    j_comma(b);
    j_u64(b, "term", term);
    j_comma(b);
    j_u64(b, "commit_index", commit);
    j_comma(b);
    j_u64(b, "applied_index", applied);
    httpd_printf(b, ",\"replicas\":[");
    for (uint32_t i = 0; i < n && !c.err; i++) {
        uint64_t id = rcur_u64(&c);
        char addr[CAIRN_ADDR_MAX + 1] = "";
        if (rcur_str(&c, addr, CAIRN_ADDR_MAX) < 0) break;
        uint8_t role = rcur_u8(&c), reachable = rcur_u8(&c);
        uint64_t match = rcur_u64(&c);
        if (c.err) break;
        httpd_printf(b, "%s{", i ? "," : "");
        j_u64(b, "id", id);
        j_comma(b);
        j_str(b, "addr", addr);
        j_comma(b);
        j_str(b, "role", member_role(role));
        j_comma(b);
        j_bool(b, "reachable", reachable);
        j_comma(b);
        j_u64(b, "match_index", match);
        wbuf_put_u8(b, '}');
    }
    wbuf_put_u8(b, ']');
    wbuf_free(&rs);
}

/* ---- chunk servers, chunk health, sessions, totals ---------------------------------------- */

static void put_servers(struct meta *m, struct wbuf *b, uint64_t now)
{
    httpd_printf(b, "\"servers\":[");
    int first = 1;
    for (int i = 0; i < CSR_MAX; i++) {
        const struct csr_server *s = &m->reg.srv[i];
        if (!s->id) continue;
        httpd_printf(b, "%s{\"id\":\"%016" PRIx64 "\",", first ? "" : ",", s->id);
        first = 0;
        j_str(b, "addr", s->addr);
        j_comma(b);
        j_str(b, "zone", s->zone);
        j_comma(b);
        j_bool(b, "alive", s->alive);
        j_comma(b);
        j_bool(b, "draining", s->draining);
        j_comma(b);
        j_u64(b, "capacity", s->capacity);
        j_comma(b);
        j_u64(b, "free", s->free);
        j_comma(b);
        j_u64(b, "chunks", s->nchunks);
        j_comma(b);
        j_u64(b, "load", s->load);
        j_comma(b);
        j_u64(b, "reads", s->st_reads);
        j_comma(b);
        j_u64(b, "read_bytes", s->st_read_bytes);
        j_comma(b);
        j_u64(b, "writes", s->st_writes);
        j_comma(b);
        j_u64(b, "write_bytes", s->st_write_bytes);
        j_comma(b);
        j_u64(b, "seen_ms_ago", now > s->last_seen_ms ? now - s->last_seen_ms : 0);
        wbuf_put_u8(b, '}');
    }
    wbuf_put_u8(b, ']');
}

static void put_chunks(struct meta *m, struct wbuf *b)
{
    const struct repair *rp = &m->rep;
    const struct rep_counts *c = rp->have_last ? &rp->last : &rp->pass;
    httpd_printf(b, "\"chunks\":{");
    j_bool(b, "scanned", rp->have_last);
    httpd_printf(b,
                 ",\"chunks\":%" PRIu64 ",\"full\":%" PRIu64 ",\"under\":%" PRIu64
                 ",\"missing\":%" PRIu64 ",\"over\":%" PRIu64 ",\"stale\":%" PRIu64
                 ",\"bad\":%" PRIu64 ",",
                 c->chunks, c->full, c->under, c->missing, c->over, c->stale, c->bad);
    j_u64(b, "backlog", repair_backlog(m));
    j_comma(b);
    j_u64(b, "repair_bytes_per_s", repair_rate_now(m));
    j_comma(b);
    j_u64(b, "repaired", rp->done);
    j_comma(b);
    j_u64(b, "repaired_bytes", rp->bytes);
    wbuf_put_u8(b, '}');
}

struct session_ctx {
    struct wbuf *b;
    uint64_t now;
    int n;
};

static void put_session(void *arg, const struct client_stat *cs)
{
    struct session_ctx *x = arg;
    struct wbuf *b = x->b;
    httpd_printf(b, "%s{", x->n++ ? "," : "");
    j_u64(b, "session", cs->session);
    j_comma(b);
    j_str(b, "name", cs->name);
    j_comma(b);
    j_str(b, "peer", cs->peer);
    j_comma(b);
    j_u64(b, "meta_ops", cs->meta_ops);
    j_comma(b);
    j_u64(b, "reads", cs->reads);
    j_comma(b);
    j_u64(b, "read_bytes", cs->read_bytes);
    j_comma(b);
    j_u64(b, "writes", cs->writes);
    j_comma(b);
    j_u64(b, "write_bytes", cs->write_bytes);
    j_comma(b);
    j_u64(b, "seen_ms_ago", x->now > cs->seen_ms ? x->now - cs->seen_ms : 0);
    wbuf_put_u8(b, '}');
}

static void put_sessions(struct wbuf *b, uint64_t now)
{
    struct session_ctx x = {.b = b, .now = now};
    httpd_printf(b, "\"sessions\":{");
    j_u64(b, "count", client_stats_count());
    httpd_printf(b, ",\"list\":[");
    client_stats_each(put_session, &x);
    httpd_printf(b, "]}");
}

static void put_totals(struct meta *m, struct wbuf *b)
{
    struct mstore_stats st = {0};
    int rc = m->store ? mstore_stats(m->store, &st) : -1;
    uint64_t total, free_bytes;
    csr_space(&m->reg, &total, &free_bytes);
    int nsrv = 0;
    for (int i = 0; i < CSR_MAX; i++)
        if (m->reg.srv[i].id) nsrv++;
    httpd_printf(b, "\"totals\":{");
    j_bool(b, "store_ok", rc == 0);
    j_comma(b);
    j_u64(b, "inodes", st.inodes);
    j_comma(b);
    j_u64(b, "bytes", st.bytes);
    j_comma(b);
    j_u64(b, "capacity", total);
    j_comma(b);
    j_u64(b, "free", free_bytes);
    j_comma(b);
    j_u64(b, "servers", (uint64_t)nsrv);
    j_comma(b);
    j_u64(b, "servers_alive", (uint64_t)csr_live_count(&m->reg));
    wbuf_put_u8(b, '}');
}

static void serve_status(struct httpd_req *req, struct wbuf *body, void *arg)
{
    struct meta *m = arg;
    uint64_t now = net_now_ms();
    req->content_type = "application/json";
    wbuf_put_u8(body, '{');
    put_raft(m, body);
    j_comma(body);
    j_u64(body, "now_ms", now);
    j_comma(body);
    put_servers(m, body, now);
    j_comma(body);
    put_chunks(m, body);
    j_comma(body);
    put_sessions(body, now);
    j_comma(body);
    put_totals(m, body);
    httpd_printf(body, "}\n");
}

int meta_status_routes(struct meta *m, struct httpd *h)
{
    size_t n;
    const struct www_file *f = www_files(&n);
    for (size_t i = 0; i < n; i++) {
        int rc = httpd_route(h, f[i].path, serve_file, (void *)&f[i]);
        if (rc) return rc;
    }
    return httpd_route(h, "/api/status", serve_status, m);
}
