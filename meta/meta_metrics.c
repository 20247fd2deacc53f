/* meta_metrics.c - cairn-meta's Prometheus metrics at /metrics: requests per operation (counts,
 * latency histograms, errors by kind), this replica's Raft state, the chunk-server registry,
 * chunk health and repair as the last scan pass saw them, sessions, the store and the disk of
 * its data folder.
 *
 * The request counters are this module's own (one set per process): meta_handle() reports
 * each request's time here, and a reply hook on the request server (evsrv_on_reply) counts
 * the error replies by kind. Everything runs on the daemon's one thread, the HTTP handler
 * included (meta_http.c starts the server on the daemon's base), so reading the registry,
 * the repair state and Raft needs no lock. Chunk health and the registry are the leader's
 * knowledge: a follower shows what it knows (no servers report to it). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "httpd.h"
#include "meta.h"
#include "mraft.h"
#include "prom.h"

#define MM_TYPES 128 /* base message types are below 128 */
#define MM_ERR_KINDS 256

struct mm_err {
    uint16_t type;
    int err; /* positive errno (or CAIRN_E*) */
    uint64_t n;
};

static struct {
    uint64_t req[MM_TYPES];
    struct prom_hist lat[MM_TYPES];
    struct mm_err errs[MM_ERR_KINDS];
    int nerrs;
    uint64_t errs_dropped; /* kinds past MM_ERR_KINDS (never expected) */
} mm;

static uint16_t base_type(uint16_t type)
{
    type &= (uint16_t) ~(0x8000u | MSG_F_SEQ);
    return type < MM_TYPES ? type : MM_TYPES - 1;
}

uint64_t meta_metrics_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void count_error(uint16_t type, int err)
{
    type = base_type(type);
    for (int i = 0; i < mm.nerrs; i++)
        if (mm.errs[i].type == type && mm.errs[i].err == err) {
            mm.errs[i].n++;
            return;
        }
    if (mm.nerrs == MM_ERR_KINDS) {
        mm.errs_dropped++;
        return;
    }
    mm.errs[mm.nerrs++] = (struct mm_err){.type = type, .err = err, .n = 1};
}

void meta_metrics_request(uint16_t type, int rc, uint64_t us)
{
    uint16_t t = base_type(type);
    mm.req[t]++;
    prom_hist_observe_us(&mm.lat[t], us);
    if (rc < 0) count_error(type, -rc); /* malformed: the connection was closed */
}

uint64_t meta_metrics_requests_total(void)
{
    uint64_t n = 0;
    for (int t = 0; t < MM_TYPES; t++)
        n += mm.req[t];
    return n;
}

static void on_reply(void *arg, uint16_t type, int status)
{
    (void)arg;
    if (status < 0) count_error(type, -status);
}

static void err_name(int err, char *out, size_t len)
{
    const char *n = err == CAIRN_ENOTLEADER ? "ENOTLEADER" : strerrorname_np(err);
    if (n)
        snprintf(out, len, "%s", n);
    else
        snprintf(out, len, "E%d", err);
}

static void write_requests(struct wbuf *b)
{
    char op[48];
    struct prom_labels l;
    prom_family(b, "cairn_meta_requests_total", "counter",
                "Requests handled, by operation (message type).");
    for (uint16_t t = 0; t < MM_TYPES; t++) {
        if (!mm.req[t]) continue;
        proto_type_lname(t, op, sizeof(op));
        prom_labels_init(&l);
        prom_label(&l, "op", op);
        prom_sample_u64(b, "cairn_meta_requests_total", &l, mm.req[t]);
    }
    prom_family(b, "cairn_meta_request_duration_seconds", "histogram",
                "Time the daemon's thread spent handling a request, by operation (a mutation's "
                "reply also waits for its group commit, not counted here).");
    for (uint16_t t = 0; t < MM_TYPES; t++) {
        if (!prom_hist_any(&mm.lat[t])) continue;
        proto_type_lname(t, op, sizeof(op));
        prom_labels_init(&l);
        prom_label(&l, "op", op);
        prom_hist_write(b, "cairn_meta_request_duration_seconds", &l, &mm.lat[t]);
    }
    prom_family(b, "cairn_meta_request_errors_total", "counter",
                "Requests answered with an error (or malformed: EBADMSG), by operation and "
                "errno name.");
    for (int i = 0; i < mm.nerrs; i++) {
        char en[32];
        proto_type_lname(mm.errs[i].type, op, sizeof(op));
        err_name(mm.errs[i].err, en, sizeof(en));
        prom_labels_init(&l);
        prom_label(&l, "op", op);
        prom_label(&l, "error", en);
        prom_sample_u64(b, "cairn_meta_request_errors_total", &l, mm.errs[i].n);
    }
}

static void write_raft(struct meta *m, struct wbuf *b)
{
    struct mraft_info ri;
    mraft_info(m, &ri);
    static const char *const states[] = {"unavailable", "follower", "candidate", "leader"};
    prom_gauge(b, "cairn_meta_leader", "Whether this replica is the ready leader (serves).",
               meta_ready(m));
    prom_family(b, "cairn_meta_raft_state", "gauge",
                "This replica's Raft role (1 for the current one).");
    for (int i = 0; i < 4; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "state", states[i]);
        prom_sample_u64(b, "cairn_meta_raft_state", &l, ri.state == i);
    }
    prom_gauge(b, "cairn_meta_raft_leader_known", "Whether this replica knows a leader.",
               ri.leader != 0);
    prom_gauge(b, "cairn_meta_raft_term", "Current Raft term.", (double)ri.term);
    prom_gauge(b, "cairn_meta_raft_commit_index", "Highest log index known committed.",
               (double)ri.commit);
    prom_gauge(b, "cairn_meta_raft_applied_index", "Highest log index applied to the store.",
               (double)ri.applied);
    prom_gauge(b, "cairn_meta_raft_last_index", "Highest log index in this replica's log.",
               (double)ri.last_index);
    prom_gauge(b, "cairn_meta_raft_apply_lag_entries",
               "Committed entries not applied yet on this replica.",
               (double)(ri.commit > ri.applied ? ri.commit - ri.applied : 0));
    prom_gauge(b, "cairn_meta_raft_members", "Members of the Raft configuration.", ri.nmembers);
    if (ri.state != META_ST_LEADER) return;
    prom_family(b, "cairn_meta_raft_follower_lag_entries", "gauge",
                "Leader only: log entries a member is behind the leader's log.");
    for (int i = 0; i < ri.nmembers; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label_u64(&l, "member", ri.member[i].id);
        uint64_t match = ri.member[i].match;
        prom_sample_u64(b, "cairn_meta_raft_follower_lag_entries", &l,
                        ri.last_index > match ? ri.last_index - match : 0);
    }
    prom_family(b, "cairn_meta_raft_member_reachable", "gauge",
                "Leader only: whether a member answered recently.");
    for (int i = 0; i < ri.nmembers; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label_u64(&l, "member", ri.member[i].id);
        prom_sample_u64(b, "cairn_meta_raft_member_reachable", &l,
                        (uint64_t)ri.member[i].reachable);
    }
}

static void server_labels(const struct csr_server *s, struct prom_labels *l)
{
    char id[20];
    snprintf(id, sizeof(id), "%016" PRIx64, s->id);
    prom_labels_init(l);
    prom_label(l, "id", id);
    prom_label(l, "addr", s->addr);
    prom_label(l, "zone", s->zone);
}

/* One family with one sample per registered server; field picks the value. */
enum srv_field { F_UP, F_DRAINING, F_CAP, F_FREE, F_CHUNKS, F_REPL, F_RD, F_RDB, F_WR, F_WRB };

static uint64_t srv_value(const struct csr_server *s, enum srv_field f)
{
    switch (f) {
    case F_UP:
        return (uint64_t)(s->alive != 0);
    case F_DRAINING:
        return (uint64_t)(s->draining != 0);
    case F_CAP:
        return s->capacity;
    case F_FREE:
        return s->free;
    case F_CHUNKS:
        return s->nchunks;
    case F_REPL:
        return (uint64_t)(s->inflight + s->src_inflight);
    case F_RD:
        return s->st_reads;
    case F_RDB:
        return s->st_read_bytes;
    case F_WR:
        return s->st_writes;
    case F_WRB:
        return s->st_write_bytes;
    }
    return 0;
}

static void write_servers(struct meta *m, struct wbuf *b)
{
    static const struct {
        enum srv_field f;
        const char *name, *type, *help;
    } fams[] = {
        {F_UP, "cairn_meta_chunkserver_up", "gauge",
         "Whether a registered chunk server is alive (heartbeats arrive)."},
        {F_DRAINING, "cairn_meta_chunkserver_draining", "gauge",
         "Whether a chunk server is being drained."},
        {F_CAP, "cairn_meta_chunkserver_capacity_bytes", "gauge",
         "Disk capacity a chunk server reported."},
        {F_FREE, "cairn_meta_chunkserver_free_bytes", "gauge",
         "Free disk space a chunk server reported."},
        {F_CHUNKS, "cairn_meta_chunkserver_chunks", "gauge",
         "Chunk copies the registry lists on a server."},
        {F_REPL, "cairn_meta_chunkserver_replications_inflight", "gauge",
         "Replication orders a server is the source or destination of."},
        {F_RD, "cairn_meta_chunkserver_reads_total", "counter",
         "Reads a chunk server served since it started (from its heartbeats)."},
        {F_RDB, "cairn_meta_chunkserver_read_bytes_total", "counter",
         "Bytes a chunk server read for clients since it started (from its heartbeats)."},
        {F_WR, "cairn_meta_chunkserver_writes_total", "counter",
         "Writes a chunk server served since it started (from its heartbeats)."},
        {F_WRB, "cairn_meta_chunkserver_write_bytes_total", "counter",
         "Bytes a chunk server wrote since it started (from its heartbeats)."},
    };
    uint64_t up = 0, down = 0, draining = 0;
    for (int i = 0; i < CSR_MAX; i++) {
        const struct csr_server *s = &m->reg.srv[i];
        if (!s->id) continue;
        if (!s->alive)
            down++;
        else if (s->draining)
            draining++;
        else
            up++;
    }
    prom_family(b, "cairn_meta_chunkservers", "gauge",
                "Registered chunk servers by state (draining: alive and being drained).");
    const char *st[] = {"up", "down", "draining"};
    uint64_t v[] = {up, down, draining};
    for (int i = 0; i < 3; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "state", st[i]);
        prom_sample_u64(b, "cairn_meta_chunkservers", &l, v[i]);
    }
    for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
        prom_family(b, fams[k].name, fams[k].type, fams[k].help);
        for (int i = 0; i < CSR_MAX; i++) {
            const struct csr_server *s = &m->reg.srv[i];
            if (!s->id) continue;
            struct prom_labels l;
            server_labels(s, &l);
            prom_sample_u64(b, fams[k].name, &l, srv_value(s, fams[k].f));
        }
    }
    uint64_t total = 0, free_bytes = 0;
    csr_space(&m->reg, &total, &free_bytes);
    prom_gauge(b, "cairn_meta_cluster_capacity_bytes", "Capacity of the live chunk servers.",
               (double)total);
    prom_gauge(b, "cairn_meta_cluster_free_bytes", "Free space of the live chunk servers.",
               (double)free_bytes);
}

static void write_chunks(struct meta *m, struct wbuf *b)
{
    const struct repair *r = &m->rep;
    prom_gauge(b, "cairn_meta_chunk_scan_complete",
               "Whether a whole scan of the chunk map has completed since this replica leads "
               "(the chunk counts below are from the last complete pass).",
               r->have_last);
    if (r->have_last) {
        const struct rep_counts *c = &r->last;
        prom_gauge(b, "cairn_meta_chunks_scanned", "Chunks of files the last scan pass looked at.",
                   (double)c->chunks);
        prom_family(b, "cairn_meta_chunks", "gauge",
                    "Chunks by state in the last scan pass: full (at their number of copies), "
                    "under_replicated, over_replicated, missing (no usable copy).");
        const char *st[] = {"full", "under_replicated", "over_replicated", "missing"};
        uint64_t v[] = {c->full, c->under, c->over, c->missing};
        for (int i = 0; i < 4; i++) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "state", st[i]);
            prom_sample_u64(b, "cairn_meta_chunks", &l, v[i]);
        }
        prom_family(b, "cairn_meta_chunk_copies_unusable", "gauge",
                    "Copies the last scan pass found stale (missed a write) or bad (failed a "
                    "checksum).");
        const char *cs[] = {"stale", "bad"};
        uint64_t cv[] = {c->stale, c->bad};
        for (int i = 0; i < 2; i++) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "state", cs[i]);
            prom_sample_u64(b, "cairn_meta_chunk_copies_unusable", &l, cv[i]);
        }
    }
    prom_gauge(b, "cairn_meta_repair_backlog", "Chunks waiting for a copy or being copied.",
               (double)repair_backlog(m));
    prom_family(b, "cairn_meta_repair_queue", "gauge",
                "Chunks in the repair queue by the usable copies they have left.");
    for (int p = 0; p <= 8; p++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label_u64(&l, "copies_left", (uint64_t)p);
        prom_sample_u64(b, "cairn_meta_repair_queue", &l, r->q[p].n);
    }
    prom_gauge(b, "cairn_meta_repair_inflight", "Replication orders out now (repairs and moves).",
               r->nfl);
    prom_counter(b, "cairn_meta_repair_copies_total", "Chunk copies made by replication orders.",
                 r->done);
    prom_counter(b, "cairn_meta_repair_bytes_total", "Bytes copied by replication orders.",
                 r->bytes);
    prom_counter(b, "cairn_meta_repair_bad_replaced_total",
                 "Bad copies (failed checksums) replaced.", r->bad_repaired);
    prom_counter(b, "cairn_meta_balance_moves_total", "Chunk copies moved by the balancer.",
                 r->moves_done);
    prom_gauge(b, "cairn_meta_repair_rate_bytes_per_second",
               "Bytes per second copied over the last 10 s.", (double)repair_rate_now(m));
}

struct client_sum {
    struct wbuf *b;
    const char *name;
    int field;
};

static void client_sample(void *arg, const struct client_stat *cs)
{
    struct client_sum *x = arg;
    struct prom_labels l;
    char sess[20];
    snprintf(sess, sizeof(sess), "%016" PRIx64, cs->session);
    prom_labels_init(&l);
    prom_label(&l, "session", sess);
    prom_label(&l, "client", cs->name);
    uint64_t v = x->field == 0 ? cs->meta_ops : x->field == 1 ? cs->read_bytes : cs->write_bytes;
    prom_sample_u64(x->b, x->name, &l, v);
}

static int count_session(void *arg, uint64_t session, int64_t last_seen_s)
{
    (void)session;
    (void)last_seen_s;
    (*(uint64_t *)arg)++;
    return 0;
}

static void write_sessions(struct meta *m, struct wbuf *b)
{
    uint64_t stored = 0;
    if (m->store) mstore_session_list(m->store, count_session, &stored);
    prom_gauge(b, "cairn_meta_sessions", "Client sessions recorded in the store.", (double)stored);
    prom_gauge(b, "cairn_meta_sessions_reporting",
               "Client sessions whose keepalives the leader has counters of.",
               client_stats_count());
    prom_gauge(b, "cairn_meta_soft_opens", "Read-only opens kept in the leader's memory.",
               (double)soft_open_count());
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"cairn_meta_client_meta_ops_total", "Meta requests a client session made (keepalives)."},
        {"cairn_meta_client_read_bytes_total", "Bytes a client session read (keepalives)."},
        {"cairn_meta_client_write_bytes_total", "Bytes a client session wrote (keepalives)."},
    };
    for (int f = 0; f < 3; f++) {
        prom_family(b, fams[f].name, "counter", fams[f].help);
        struct client_sum x = {.b = b, .name = fams[f].name, .field = f};
        client_stats_each(client_sample, &x);
    }
}

static void write_store(struct meta *m, struct wbuf *b)
{
    struct mstore_stats ms;
    if (m->store && mstore_stats(m->store, &ms) == 0) {
        prom_gauge(b, "cairn_meta_inodes", "Live inodes in the store.", (double)ms.inodes);
        prom_gauge(b, "cairn_meta_file_bytes", "Sum of the sizes of all files.", (double)ms.bytes);
    }
    char path[CONF_STR_MAX + 16];
    struct stat st;
    snprintf(path, sizeof(path), "%s/data.mdb", m->cfg.data_dir);
    if (stat(path, &st) == 0)
        prom_gauge(b, "cairn_meta_store_file_bytes", "Size of the store's LMDB file.",
                   (double)st.st_size);
    struct statvfs vfs;
    if (statvfs(m->cfg.data_dir, &vfs) == 0) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "path", m->cfg.data_dir);
        prom_family(b, "cairn_meta_disk_size_bytes", "gauge",
                    "Size of the file system of the data folder.");
        prom_sample_f(b, "cairn_meta_disk_size_bytes", &l, (double)vfs.f_blocks * vfs.f_frsize);
        prom_family(b, "cairn_meta_disk_avail_bytes", "gauge",
                    "Space of the data folder's file system available to the daemon.");
        prom_sample_f(b, "cairn_meta_disk_avail_bytes", &l, (double)vfs.f_bavail * vfs.f_frsize);
    }
}

static void serve_metrics(struct httpd_req *req, struct wbuf *body, void *arg)
{
    struct meta *m = arg;
    req->content_type = PROM_CONTENT_TYPE;
    write_requests(body);
    write_raft(m, body);
    write_servers(m, body);
    write_chunks(m, body);
    write_sessions(m, body);
    write_store(m, body);
}

int meta_metrics_routes(struct meta *m, struct httpd *h)
{
    if (m->srv) evsrv_on_reply(m->srv, on_reply, m);
    return httpd_route(h, "/metrics", serve_metrics, m);
}
