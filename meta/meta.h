/* meta.h - the cairn-meta daemon's shared state and the interfaces between its modules:
 * the request dispatcher for clients (server.c), the chunk-server messages (server_cs.c),
 * the chunk-server registry with its soft-state chunk locations (cs_registry.c) and session
 * expiry (sessions.c). Everything here runs on the one libevent thread of the daemon, which is
 * also the store's only writer. */
#ifndef CAIRN_META_H
#define CAIRN_META_H

#include <stdint.h>

#include "conf.h"
#include "evsrv.h"
#include "mop.h"
#include "mstore.h"
#include "proto.h"

#define CSR_MAX 64 /* chunk servers a meta service knows (one bit each in a location mask) */

struct meta_cfg {
    char listen[CONF_STR_MAX];
    char data_dir[CONF_STR_MAX];
    int session_timeout;
    int cs_timeout;
    uint64_t chunk_size;
    uint64_t map_size;
    int open_chunks;
    int fsync_commits;
    int pin_memory;
    int default_copies;
    int repair_rate;       /* MiB/s of replication over the cluster, 0 = unlimited */
    int repair_per_server; /* replication orders in flight per destination (and source) */
    int balance_pct;       /* disk usage spread that starts rebalancing */
    /* the Raft group (mraft.c) */
    char peers[CONF_STR_MAX]; /* client addresses of the first members ("" = just this one) */
    char join[CONF_STR_MAX];  /* replicas to ask for our id while we wait to be added */
    int election_timeout_ms;
    int heartbeat_ms;
    int snapshot_entries;
    int snapshot_trailing;
    char http[CONF_STR_MAX]; /* HOST:PORT of /metrics and the status page; "" = none */
    char log_level[CONF_STR_MAX];
    char log_file[CONF_STR_MAX];
    int daemon;
    char pid_file[CONF_STR_MAX];
};

#define CSR_ORDERS_MAX 32 /* replication orders waiting for one server's heartbeat */

struct csr_order {
    uint64_t batch; /* the group commit of its version bump: sent once that is committed */
    uint64_t chunk_id;
    uint32_t version;
    uint8_t nsrc;
    uint8_t src[CAIRN_MAX_CHAIN]; /* slots of the sources */
};

struct csr_server {
    uint64_t id; /* stable id the server keeps in its data folder; 0 = free slot */
    char addr[CAIRN_ADDR_MAX + 1];
    char zone[CAIRN_ZONE_MAX + 1];
    uint64_t capacity, free;
    uint64_t placed; /* bytes of new chunks placed on it since its last heartbeat */
    uint32_t load;
    uint64_t last_seen_ms;
    int alive;
    int draining;     /* no new copies; its copies are made elsewhere, then dropped */
    uint64_t nchunks; /* copies the registry lists on it */
    int inflight;     /* replication orders it is the destination of */
    int src_inflight; /* replication orders it is a source of */
    /* the server's request counters as its last heartbeat told them (cumulative since it
     * started; 0 from a server that sends none): rates for cairn top and the status page */
    uint64_t st_reads, st_read_bytes, st_writes, st_write_bytes;
    /* chunk versions this server should delete, sent with its next heartbeat reply */
    uint64_t *del_id;
    uint32_t *del_ver;
    uint32_t ndel, cap_del;
    /* replication orders for it, sent with its next heartbeat reply */
    struct csr_order orders[CSR_ORDERS_MAX];
    int norders;
};

/* A holder of a chunk: a server slot and the version it holds. */
#define CSR_HOLD_MAX 12
#define CSR_H_BAD 1u     /* a block failed its checksum there: never served */
#define CSR_H_PENDING 2u /* a replication order makes a copy there now */
#define CSR_H_NOCOPY 4u  /* no copy there yet (only the pending order): not a holder */
/* listed at lease time, before the server said it has anything: a valid place to read and
 * write, but no proof that the version exists (not a replication source, and it does not
 * make the copies of older versions stale) */
#define CSR_H_UNCONFIRMED 8u
struct csr_holder {
    uint32_t version;
    uint8_t slot;
    uint8_t flags; /* CSR_H_* */
};

/* Seconds after a write lease during which the chain members' version events may still be
 * arriving: a member one event behind is not taken for stale (nor tidied away) meanwhile. */
#define CSR_SETTLE_S 2
#define CSR_E_INFLIGHT 1u /* a replication order for this chunk is out */
#define CSR_E_QUEUED 2u   /* in the repair queue */
struct csr_entry {
    uint64_t key; /* chunk id; 0 = empty (chunk ids start at 1) */
    uint8_t n;
    uint8_t flags;     /* CSR_E_* */
    uint32_t leased_s; /* when a writer last took a lease on it (monotonic seconds) */
    struct csr_holder h[CSR_HOLD_MAX];
};

/* Open-addressing table chunk id -> its holders. */
struct csr_locs {
    struct csr_entry *e;
    uint64_t cap, count;
};

struct cs_registry {
    struct csr_server srv[CSR_MAX];
    struct csr_locs locs;
    uint64_t rng; /* placement's random choice among weighted candidates */
    int timeout_ms;
};

/* The copies of one chunk as csr_classify sees them. */
struct csr_copy {
    uint8_t slot;
    uint8_t state; /* COPY_* */
    uint8_t flags; /* CSR_H_* */
    uint32_t version;
};
struct csr_view {
    int n;
    struct csr_copy c[CSR_HOLD_MAX];
    int valid;    /* COPY_VALID: counted toward the goal */
    int draining; /* valid but on a draining server: served, not counted */
    int down, stale, bad, pending;
};

#include "repair.h"

struct mraft;

struct meta {
    struct meta_cfg cfg;
    struct mstore *store;
    struct mraft *raft; /* the replication of every record (mraft.c) */
    /* group commit under Raft: the records of the open batch, encoded for the log */
    struct wbuf batch_log;
    uint32_t batch_nrec;
    uint64_t batch_no;      /* number of the open (or last) batch */
    uint64_t durable_batch; /* the last batch committed by the group */
    int inflight;           /* the open batch is in the Raft log, waiting for its commit */
    uint64_t spec_index;    /* its log index */
    int tick_pending;       /* a repair tick waits for the batch */
    uint64_t submit_ms;     /* when the batch in the log was submitted */
    uint64_t proof_ms;      /* submit time of the newest entry a majority committed (reads) */
    /* the numbered request being handled (MSG_F_SEQ), copied into its record */
    uint64_t cur_session, cur_seq, cur_acked;
    int64_t lead_since_s;   /* when this replica last became a ready leader (session grace) */
    uint64_t lead_since_ms; /* the same, monotonic ms (warm-up of chunk locations) */
    uint64_t cs_seen_ms;    /* the last chunk server registration or report */
    struct cs_registry reg;
    struct event_base *base;
    struct evsrv *srv;
    struct event *flush_ev; /* lowest priority: runs once the ready requests are handled */
    uint64_t pinned;        /* bytes of the store locked in memory */
    struct repair rep;      /* repair scanner, balancer and their counters (repair.c) */
    struct httpd *http;     /* metrics and status page (meta_http.c), NULL when off */
};

#define META_BATCH_MAX 512 /* records per group commit at most */

/* Whether this replica is the leader and has applied everything before its term (it may
 * serve and prepare records). */
int meta_ready(struct meta *m);
/* Whether a new leader has learnt where chunks are: chunk servers found it and reported (at
 * least one live server, none registering or reporting in the last 700 ms, and 1 s since the
 * election), or 5 s passed. Requests that hand out locations wait until then. */
int meta_warm(struct meta *m);
/* Whether this replica became the leader less than META_LEARN_MS ago: a chunk with no known
 * copy then waits for reports (a lease or a locate asks again) rather than fail. */
#define META_LEARN_MS 5000
int meta_learning(struct meta *m);
/* Whether a record may be applied now (ready, and no batch waits in the Raft log). */
int meta_can_apply(struct meta *m);
/* A batch was committed by the group (mraft.c, at its apply): release its replies, run what
 * waited for it. */
void meta_batch_committed(struct meta *m, uint64_t index);
/* The open batch is lost (leadership lost before its commit): throw it away and close the
 * connections whose replies promised it. */
void meta_batch_lost(struct meta *m);
/* This replica became a ready leader, or stopped being the leader. */
void meta_leader_changed(struct meta *m, int leading);

/* Answer h with -CAIRN_ENOTLEADER and the leader's address (or ""). */
void meta_reply_not_leader(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h);

/* server.c: the evsrv handler for every request. */
int meta_handle(struct evsrv_conn *conn, const struct wire_hdr *h, const uint8_t *payload,
                void *arg);
/* Prepare and apply one mutation inside the current group commit (opened here if needed);
 * replies are held until meta_flush made the batch durable. Chunks it frees are queued for
 * deletion on their servers once durable. */
int meta_apply(struct meta *m, struct mop *op, struct mop_result *res);
/* Commit the open batch durably and send the held replies. A failed commit stops the daemon:
 * nothing of the batch was acknowledged, and clients retry against the restarted service. */
void meta_flush(struct meta *m);

/* server_cs.c: MSG_CS_* requests (the reply is sent here). Returns 0 or -EBADMSG. */
int meta_handle_cs(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                   const uint8_t *payload);

/* server_admin.c: SET_COPIES, FILEINFO, HEALTH, CS_DRAIN (the cairn command). The reply is
 * sent here (payload built in out); returns 0 or -EBADMSG. */
int meta_handle_admin(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r, struct wbuf *out);
/* fsck.c: MSG_FSCK (cairn fsck), called by meta_handle_admin; the same contract, and
 * EVSRV_DEFER when a repair must wait until a record may be written. */
int meta_fsck(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h, struct rcur *r,
              struct wbuf *out);
/* A chunk server holds a copy of a chunk no file references (its deletion was queued):
 * remembered for fsck's report (the last ones, a few minutes). */
void fsck_note_unref(uint64_t server_id, uint64_t chunk_id, uint32_t version);

/* meta_http.c: start the HTTP server of cfg.http on the loop's base with every route:
 * /metrics (meta_metrics.c) and the status page (status_page.c). 0 or -errno (logged). */
int meta_http_start(struct meta *m);
struct httpd;
/* meta_metrics.c: serve /metrics (and count replies by kind on m->srv from then on). */
int meta_metrics_routes(struct meta *m, struct httpd *h);
/* The request of type (flags ignored) took us microseconds on the loop's thread (a deferred
 * request counts once, for the pass that answered it); rc < 0: it was malformed and its
 * connection closed. */
void meta_metrics_request(uint16_t type, int rc, uint64_t us);
uint64_t meta_metrics_now_us(void);
/* Requests this replica handled since it started (every type). */
uint64_t meta_metrics_requests_total(void);
/* status_page.c: serve the status page (/) and the JSON it polls. */
int meta_status_routes(struct meta *m, struct httpd *h);

/* server_top.c: MSG_CLIENT_STATS and MSG_TOP (reply sent here; 0 or -EBADMSG). */
int meta_handle_top(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                    struct rcur *r, struct wbuf *out);

/* server_atime.c: MSG_ATIME (reply sent here; 0 or -EBADMSG). */
int meta_handle_atime(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r);

/* client_stats.c: what each client session told with its last keepalive (the leader's
 * memory only; gone with the session or a failover until the next keepalive). Counters are
 * cumulative since the mount started. */
struct client_stat {
    uint64_t session;
    char peer[CAIRN_ADDR_MAX + 1]; /* "ip:port" of its meta connection */
    char name[CAIRN_NAME_MAX + 1]; /* "host:mount point" the mount calls itself */
    uint64_t meta_ops, reads, read_bytes, writes, write_bytes;
    uint64_t seen_ms; /* monotonic ms of the keepalive */
};
typedef void (*client_stat_fn)(void *arg, const struct client_stat *cs);
int client_stats_update(const struct client_stat *cs);
void client_stats_each(client_stat_fn fn, void *arg);
void client_stats_drop(uint64_t session);
uint32_t client_stats_count(void);

/* soft_opens.c: read-only opens counted in the leader's memory, not in the store */
typedef int (*soft_open_fn)(void *arg, uint64_t session, uint64_t ino);
int soft_open_add(uint64_t session, uint64_t ino);
/* Take one soft open of ino by session off; 1 if there was one, else 0. */
int soft_open_release(uint64_t session, uint64_t ino);
int soft_open_has(uint64_t session, uint64_t ino);
/* Remove every soft open of ino, calling fn once per open (to record it in the store). */
int soft_open_take(uint64_t ino, soft_open_fn fn, void *arg);
void soft_open_drop_session(uint64_t session);
void soft_open_clear(void);
uint64_t soft_open_count(void);

/* locks.c: flock and POSIX locks across clients, the leader's soft state (see there).
 * MSG_LOCK, LOCK_TEST, LOCK_DROP, LOCK_EPOCH (reply sent here; 0 or -EBADMSG). */
int meta_handle_locks(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r, struct wbuf *out);
/* This replica started (a new epoch, maybe a grace period) or stopped leading (forget all). */
void locks_leader_changed(struct meta *m, int leading);
/* A session closed or expired: release its locks. */
void locks_drop_session(uint64_t session);
uint64_t locks_count(void);

/* store_sync.c: flush the store once a second on a thread of its own (fsync = true);
 * meta_store_lock guards replacing m->store against it. */
int meta_store_sync_start(struct meta *m);
void meta_store_sync_stop(void);
void meta_store_lock(void);
void meta_store_unlock(void);

/* sessions.c: expire client sessions not seen for session_timeout seconds. */
void meta_sessions_expire(struct meta *m);

/* cs_registry.c */
int csr_init(struct cs_registry *r, int timeout_ms);
void csr_free(struct cs_registry *r);
/* Register (or re-register: its copies are forgotten until it reports them again) server id
 * at addr in zone; returns its slot or -ENOSPC. */
int csr_register(struct cs_registry *r, uint64_t id, const char *addr, const char *zone,
                 uint64_t cap, uint64_t free_bytes, uint64_t now_ms);
/* Slot of a registered server id, or -ENOENT. */
int csr_slot(const struct cs_registry *r, uint64_t id);
void csr_heartbeat(struct cs_registry *r, int slot, uint64_t cap, uint64_t free_bytes,
                   uint32_t load, uint64_t now_ms);
/* Mark servers not heard from within the timeout as dead; returns how many died now. */
int csr_expire(struct cs_registry *r, uint64_t now_ms);
/* The entry of a chunk id, NULL if no server is known to hold it. */
struct csr_entry *csr_entry(struct cs_registry *r, uint64_t chunk_id);
/* Index of slot among e's holders, or -1. */
int csr_entry_holder(const struct csr_entry *e, int slot);
/* Record that slot holds chunk_id at version (adding the holder), then set and clear flags. */
int csr_holder_set(struct cs_registry *r, uint64_t chunk_id, int slot, uint32_t version,
                   uint8_t flags_set, uint8_t flags_clear);
void csr_holder_del(struct cs_registry *r, uint64_t chunk_id, int slot);
/* Remove chunk_id's entry if it has no holder and no order out. */
void csr_entry_gc(struct cs_registry *r, uint64_t chunk_id);
/* Queue the deletion of slot's copy (at version) and forget it. */
void csr_drop_copy(struct cs_registry *r, uint64_t chunk_id, int slot, uint32_t version);
/* Forget a chunk everywhere; queue (id, ver) for deletion on every server that held it. */
void csr_chunk_freed(struct cs_registry *r, uint64_t chunk_id, uint32_t version);
/* Queue one deletion for a server. */
int csr_queue_delete(struct cs_registry *r, int slot, uint64_t chunk_id, uint32_t version);
/* The state of every copy of chunk ck (see struct mstore_chunk for what is valid); returns
 * the number of holders. */
int csr_classify(const struct cs_registry *r, const struct mstore_chunk *ck, struct csr_view *v);
/* Fill ci->loc with the copies that may be served: valid, on live servers. */
void csr_fill_locs(const struct cs_registry *r, const struct mstore_chunk *ck,
                   struct chunk_info *ci);
/* Choose up to n live, not draining servers with need_bytes free for a copy, none of them
 * in excl (server ids) or have (slots already holding one): zones without a copy first, then
 * weighted by free space and low load. Returns the count chosen (slots in out). */
int csr_place(struct cs_registry *r, int n, uint64_t need_bytes, const uint64_t *excl, int nexcl,
              const int *have, int nhave, int *out);
/* Whether one of slots is in zone (never for the empty zone). */
int csr_zone_has(const struct cs_registry *r, const char *zone, const int *slots, int n);
/* Whether a live, not draining server with room is in a named zone none of have is in. */
int csr_zone_free_exists(const struct cs_registry *r, uint64_t need_bytes, const int *have,
                         int nhave);
/* Fraction of a server's disk in use (0..1). */
double csr_usage(const struct csr_server *s);
/* Servers registered (up or not). */
uint32_t csr_count(const struct cs_registry *r);
/* A server's CS_STATE_* (down, draining or up). */
uint8_t csr_state(const struct csr_server *s);
/* Live servers registered. */
int csr_live_count(const struct cs_registry *r);
void csr_space(const struct cs_registry *r, uint64_t *total, uint64_t *free_bytes);

#endif
