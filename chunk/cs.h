/* cs.h - the chunk server daemon's state (one struct, shared by its threads) and the entry
 * points of its parts: request serving (cs_server.c, one thread per connection; its CHK_READs
 * go to the read workers of cs_reads.c, see cs_conn.h), chain forwarding (cs_chain.c), meta
 * membership and bad-chunk reports (cs_meta.c), version events and the membership thread's
 * wake-up (cs_events.c), replication orders and their workers (cs_repl.c), the copy of one
 * chunk from other servers (replicate.c), and the scrubber (scrub.c). Every request to the
 * meta service goes through cs_metaconn.h, which finds the leader of the meta replicas. */
#ifndef CAIRN_CS_H
#define CAIRN_CS_H
#include <pthread.h>
#include <stdint.h>

#include "conf.h"
#include "cstore.h"
#include "prom.h"
#include "proto.h"

struct cs_cfg {
    char listen[CONF_STR_MAX];
    char advertise[CONF_STR_MAX];
    char meta[CONF_STR_MAX]; /* "host:port[,host:port...]": the meta replicas */
    char data_dirs[CONF_STR_MAX];
    int heartbeat_ms;
    int scrub_rate;     /* MiB/s, 0 = off */
    int scrub_interval; /* seconds between scrub passes */
    int max_conns;
    char log_level[CONF_STR_MAX];
    char log_file[CONF_STR_MAX];
    int daemon;
    char pid_file[CONF_STR_MAX];
    char http[CONF_STR_MAX]; /* HOST:PORT of /metrics; "" = none */
    char zone[CONF_STR_MAX]; /* at most CAIRN_ZONE_MAX bytes (checked at start) */
    int replication_workers; /* threads running replication orders */
    int chain_timeout_ms;    /* wait for the next hop, per hop below it */
    int open_chunks;         /* chunk files kept open with their headers (cstore cache) */
    int read_threads;        /* read workers (cs_reads.c) */
    int conn_reads;          /* CHK_READs of one connection in flight at most */
    int keep_page_cache;     /* leave the data served in the page cache */
    int local_reads;         /* tell clients on this machine where the chunk files are */
};

#define CS_BADQ 256

struct cs_bad {
    uint64_t id;
    uint32_t ver, block;
};

/* Version events waiting for the meta (coalesced per chunk id). */
#define CS_EVQ 1024

struct cs_ev {
    uint64_t id;
    uint32_t ver;
};

/* Request types counted apart (cs_stats.c) */
enum cs_stat_type {
    CS_T_READ,
    CS_T_WRITE,
    CS_T_TRUNCATE,
    CS_T_DELETE,
    CS_T_FSYNC,
    CS_T_INFO,
    CS_T_SETVER,
    CS_T_STATS,
    CS_T_OTHER,
    CS_T_N
};

/* Counters and timings (atomics; microseconds of cstore_now_us, summed). Per request type:
 * requests, errors (status < 0), payload bytes received and sent, time from the frame received
 * to the reply written. A read's time is split into queue (frame received until a worker takes
 * it), disk (pread), checksum (xxh3) and send (waiting for the socket and writing the reply);
 * a write's into disk (the store's work but fdatasync), chain (waiting for the next server)
 * and fsync (fdatasync). lat[] is the same time per request as a histogram (/metrics). Blocks
 * that failed their checksum: on a client's read (cksum_errors), and in the scrubber's
 * passes with the chunks it checked. */
struct cs_stats {
    uint64_t req[CS_T_N], err[CS_T_N], bytes[CS_T_N], us[CS_T_N];
    struct prom_hist lat[CS_T_N];
    uint64_t cksum_errors, scrub_chunks, scrub_bad, scrub_passes;
    uint64_t read_queue_us, read_disk_us, read_checksum_us, read_send_us;
    uint64_t write_disk_us, write_chain_us, write_fsync_us;
    uint64_t reads_in_flight, reads_in_flight_max; /* handed to the workers, not answered */
    uint64_t start_us;
};

struct cs_repl;
struct cs_reads;
struct cs_metaconn;
struct rpc_conn;

struct cs_state {
    struct cs_cfg cfg;
    struct cstore store;
    volatile int stop;
    uint64_t server_id;
    char advertise[CAIRN_ADDR_MAX + 1];
    int listen_fd;
    int nconns; /* live connection threads (under lock) */
    pthread_mutex_t lock;
    struct cs_metaconn *meta; /* the way to the meta leader (set before any thread starts) */
    /* bad blocks waiting to be reported to meta */
    struct cs_bad badq[CS_BADQ];
    int nbad;
    /* bad blocks reported (the newest CS_BADQ, membership thread only): reported again after
     * every registration, since a new meta leader or a restarted meta does not know them */
    struct cs_bad badsent[CS_BADQ];
    int nbadsent;
    uint32_t load; /* requests in progress */
    /* cs_events.c (under lock): the membership thread sleeps on wake until kick */
    pthread_cond_t wake;
    int kick;     /* something to deliver */
    int hb_early; /* heartbeat now (a replication order finished) */
    int rereport; /* the event queue overflowed: report every chunk again */
    struct cs_ev evq[CS_EVQ];
    int nev;
    struct cs_repl *repl;   /* cs_repl.c; NULL until cs_repl_start */
    struct cs_reads *reads; /* cs_reads.c; NULL until cs_reads_start */
    struct cs_stats stats;  /* cs_stats.c */
};

/* Serve connections on s->listen_fd until s->stop (the read workers must be started, see
 * cs_conn.h); returns 0. */
int cs_server_run(struct cs_state *s);
/* Forwarding down the chain: one cached connection per downstream address. */
struct rpc_conn *cs_chain_conn(const char *addr);
void cs_chain_shutdown(void);
/* Membership thread: register, report, heartbeat, deliver bad-chunk reports. */
int cs_meta_start(struct cs_state *s, pthread_t *th);
/* Queue a bad block for reporting to meta (never blocks on the network). */
void cs_meta_report_bad(struct cs_state *s, uint64_t id, uint32_t ver, uint32_t block);
/* Load or create the stable server id kept in the first data folder. */
int cs_meta_server_id(const char *dir, uint64_t *id);
/* Version events (cs_events.c). cs_events_init sets up the wake-up and hooks the store so
 * that every created chunk or version change queues a gained event (never blocks). */
int cs_events_init(struct cs_state *s);
/* Wake the membership thread; heartbeat: also send a heartbeat now. */
void cs_kick(struct cs_state *s, int heartbeat);
/* Sleep until deadline_ms (net_now_ms time), a kick or stop. Returns 1 when an early
 * heartbeat was asked (the flag is consumed). */
int cs_wait(struct cs_state *s, uint64_t deadline_ms);
/* Forget queued events (a full report follows). */
void cs_events_clear(struct cs_state *s);
/* Send the queued events to the meta leader (pipelined). 0, or a negative errno when some
 * did not reach it (cs_metaconn_unreached: unreachable, no leader); those stay queued. */
int cs_events_send(struct cs_state *s);

/* Replication (cs_repl.c). Start the workers; queue one order (drops duplicates of an order
 * queued or running, and orders past the queue bound); send the finished orders' results
 * (MSG_CS_REPLICATED) to the meta leader: 0, or a negative errno when one did not reach it
 * (it stays queued with the ones after it). */
int cs_repl_start(struct cs_state *s);
void cs_repl_order(struct cs_state *s, uint64_t id, uint32_t ver, int nsrc,
                   char (*src)[CAIRN_ADDR_MAX + 1]);
int cs_repl_send_done(struct cs_state *s);

/* replicate.c: make a copy of chunk id at version ver in st from one of nsrc sources: SETVER
 * ver on every source (best effort), then read it with CHK_INFO and CHK_READ_EXACT from one
 * source after another until one gives a whole copy whose every block checksum verifies;
 * written under a temporary name, fsynced and installed (cstore_tmp_*). Every network wait
 * is bounded by timeout_ms. *bytes gets the chunk length. 0 or the negative errno of the last
 * failure (-EINVAL for bad arguments). */
int cs_replicate(struct cstore *st, uint64_t id, uint32_t ver, int nsrc,
                 char (*src)[CAIRN_ADDR_MAX + 1], int timeout_ms, uint64_t *bytes);

/* Counters (cs_stats.c; thread safe, never block). cs_stats_init before any thread starts;
 * cs_stats_request when a request of type was answered with status rc (bytes: payload in and
 * out; t_recv: cstore_now_us when its frame was received); cs_stat_add adds v to one counter
 * of s->stats; cs_stats_read_begin/end around a read in flight; cs_stats_put appends the
 * MSG_CHK_STATS reply (str: "name value" lines) to out (0 or out's error). */
void cs_stats_init(struct cs_state *s);
void cs_stats_request(struct cs_state *s, uint16_t type, int rc, uint64_t bytes, uint64_t t_recv);
void cs_stat_add(uint64_t *counter, uint64_t v);
void cs_stats_read_begin(struct cs_state *s);
void cs_stats_read_end(struct cs_state *s);
int cs_stats_put(struct cs_state *s, struct wbuf *out);

/* cs_local.c: the MSG_CHK_LOCAL reply (boot id, data folders in service) into out;
 * -EOPNOTSUPP when local_reads is off or the boot id cannot be read. */
int cs_local_put(struct cs_state *s, struct wbuf *out);

/* cs_stats.c: the name of counted request type t ("read", "write"... "other"). */
const char *cs_stats_type_name(int t);

/* cs_metrics.c: serve Prometheus metrics at /metrics on cfg.http from a thread of the HTTP
 * server's own (nothing when cfg.http is empty: *out = NULL). 0 or -errno (logged). */
struct httpd;
int cs_metrics_start(struct cs_state *s, struct httpd **out);

/* Scrubber thread (returns 0 without starting one when scrub_rate is 0). */
int cs_scrub_start(struct cs_state *s, pthread_t *th, int *started);
#endif
