/* repair.h - keeping every chunk at its number of copies: the scanner that walks the chunk map
 * a slice at a time and classifies each chunk (full, under-, over-replicated, missing; stale,
 * bad and draining copies), the repair queue (fewest copies left first), replication orders
 * to destination servers (rate limited, a bounded number in flight per server), trimming of
 * surplus copies, and the balancer that evens out disk usage. Runs on the meta service's one
 * thread (included by meta.h). */
#ifndef CAIRN_REPAIR_H
#define CAIRN_REPAIR_H

#include <stdint.h>

#define REP_FLIGHT_MAX 256

struct rep_counts {
    uint64_t chunks, full, under, missing, over, stale, bad;
};

struct rep_flight {
    uint64_t chunk_id;
    uint32_t version;
    int dest;
    uint8_t nsrc;
    uint8_t src[8];
    int move; /* a balance move, not a repair */
    uint64_t bytes;
    uint64_t deadline_ms;
};

struct rep_queue {
    uint64_t *ids;
    uint32_t n, cap;
};

struct repair {
    struct event *tick_ev;
    uint64_t scan_next;           /* last chunk id of the pass so far */
    struct rep_counts pass, last; /* this pass so far, the last complete pass */
    int have_last;
    struct rep_queue q[9]; /* chunk ids to copy, by copies left (0..8) */
    struct rep_flight fl[REP_FLIGHT_MAX];
    int nfl;
    uint64_t done, bytes, bad_repaired, moves_done;
    uint64_t rate_bucket[10]; /* bytes copied per second, the last 10 s */
    uint64_t rate_sec;
    double tokens; /* rate limit: bytes that may start now */
    uint64_t tokens_ms;
    uint64_t balance_cursor; /* where the balancer looks for the next chunk to move */
    uint64_t cache_ino;      /* goal of the last inode looked up */
    uint32_t cache_copies;
    int in_scan;           /* inside the scan's read transaction: no records now */
    int rescan;            /* a pass is wanted now (servers or copies changed) */
    uint64_t pass_end_ms;  /* when the last whole pass ended */
    uint64_t zone_fix[16]; /* chunks the scan found crowded in one zone, fixed after it */
    int nzone_fix;
};

struct meta;
struct mstore_chunk;

int repair_start(struct meta *m);
/* One step of the scanner and the repair queue (every 200 ms; at once after a group commit
 * when a tick found one open). Leader only. */
void repair_tick(struct meta *m);
void repair_stop(struct meta *m);
/* A destination finished (status 0) or failed an order. */
void repair_done(struct meta *m, int slot, uint64_t chunk_id, uint32_t version, int status,
                 uint64_t bytes);
/* Start the scan over from the first chunk (copies changed, a server drains). */
void repair_rescan(struct meta *m);
/* Look at one chunk now (after a bad block report or a finished copy). */
void repair_check_chunk(struct meta *m, uint64_t chunk_id);
/* Effective copies of an inode (0 when it does not exist). */
uint32_t repair_goal(struct meta *m, uint64_t ino);
/* Bytes per second copied over the last 10 s. */
uint64_t repair_rate_now(const struct meta *m);
/* Chunks waiting for a copy or being copied. */
uint64_t repair_backlog(const struct meta *m);

#endif
