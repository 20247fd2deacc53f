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
#include <time.h>

#include "conf.h"
#include "cstore.h"
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
    char zone[CONF_STR_MAX]; /* at most CAIRN_ZONE_MAX bytes (checked at start) */
    int replication_workers; /* threads running replication orders */
    int chain_timeout_ms;    /* wait for the next hop, per hop below it */
    int open_chunks;         /* chunk files kept open with their headers (cstore cache) */
    int read_threads;        /* read workers (cs_reads.c) */
    int conn_reads;          /* CHK_READs of one connection in flight at most */
    int keep_page_cache;     /* leave the data served in the page cache */
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
};

/* Microseconds of CLOCK_MONOTONIC: the clock of the server's timings. */
static inline uint64_t cs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

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

/* Scrubber thread (returns 0 without starting one when scrub_rate is 0). */
int cs_scrub_start(struct cs_state *s, pthread_t *th, int *started);
#endif
