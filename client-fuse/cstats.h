/* cstats.h - the mount's counters and timings: how many FUSE reads, meta calls (per message
 * type) and chunk server reads it made, their bytes, and the microseconds they took (summed),
 * the read cache's hits and the prefetches that were used or wasted. One process-wide set,
 * lock-free (relaxed atomics), cheap enough to count every request. Read as text through the
 * virtual xattr user.cairn.stats (fs_ops.c) and by `cairn stats`; docs/ARCHITECTURE.md's read
 * path breakdown comes from these. */
#ifndef CAIRN_CSTATS_H
#define CAIRN_CSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"

enum st_id {
    ST_FUSE_READS,       /* FUSE READ requests answered */
    ST_FUSE_READ_BYTES,  /* bytes returned to the kernel */
    ST_FUSE_READ_US,     /* time spent answering them */
    ST_FUSE_OPENS,       /* FUSE OPEN requests */
    ST_FUSE_RELEASES,    /* FUSE RELEASE requests */
    ST_OPENS_TOLD_AFTER, /* read-only opens answered from their LOOKUP (meta told after) */
    ST_OPENS_NEVER_TOLD, /* of those, closed before meta was told: neither was sent */
    ST_CHUNK_READS,      /* CHK_READ requests sent */
    ST_CHUNK_READ_BYTES,
    ST_CHUNK_READ_US,        /* submit to verified reply, summed over requests */
    ST_CACHE_HIT_BYTES,      /* bytes served from the memory read cache */
    ST_CACHE_MISS_BYTES,     /* bytes the memory read cache did not have */
    ST_PREFETCH_SEGMENTS,    /* segments queued for prefetching */
    ST_PREFETCH_USED,        /* prefetched segments read at least once */
    ST_PREFETCH_WASTED,      /* prefetched segments dropped unread */
    ST_DISK_CACHE_HIT_BYTES, /* bytes served from the disk cache (dcache.c) */
    ST_DISK_CACHE_MISS_BYTES,
    ST_FUSE_WRITES,      /* FUSE WRITE requests answered */
    ST_FUSE_WRITE_BYTES, /* bytes the kernel wrote */
    ST_LOCAL_READS,      /* pieces read in place from a local server's chunk file */
    ST_LOCAL_READ_BYTES,
    ST_LOCAL_READ_US,
    ST_LOCAL_READ_FAILS, /* reads in place that failed and went to a server */
    ST_NIDS
};

/* Add v to counter id. */
void st_add(enum st_id id, uint64_t v);
uint64_t st_get(enum st_id id);
/* One meta call of message type (its base type, without flags) that took us microseconds. */
void st_meta_call(uint16_t type, uint64_t us);
/* Meta calls of every type so far. */
uint64_t st_meta_calls_total(void);
/* Microseconds on a monotonic clock. */
uint64_t st_now_us(void);
/* Every counter as "name value\n" lines (meta calls as meta_<type>_calls / _us for the types
 * that were called), NUL-terminated, truncated to cap. Returns the length written. */
size_t st_format(char *out, size_t cap);

/* Latency histograms (prom.h) for /metrics (cmetrics.c): FUSE reads (request to reply) and
 * chunk-server reads (submit to verified reply), and one per meta message type (st_meta_call
 * observes into it). */
enum st_hist_id { STH_FUSE_READ, STH_CHUNK_READ, STH_N };
void st_observe(enum st_hist_id id, uint64_t us);
const struct prom_hist *st_hist(enum st_hist_id id);
#define ST_META_TYPES 128 /* meta message types counted: base types below this */
/* Calls of meta message type so far, and their latencies (NULL for a type out of range). */
uint64_t st_meta_calls(uint16_t type);
const struct prom_hist *st_meta_hist(uint16_t type);

#endif
