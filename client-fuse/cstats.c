/* cstats.c - the mount's counters and timings (see cstats.h): one array of relaxed atomics
 * for the named counters and one for meta calls by message type. */
#include "cstats.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "proto.h"

#define ST_TYPES ST_META_TYPES

static _Atomic uint64_t counters[ST_NIDS];
static _Atomic uint64_t meta_calls[ST_TYPES], meta_us[ST_TYPES];
static struct prom_hist hists[STH_N], meta_hist[ST_TYPES];

static const char *const names[ST_NIDS] = {
    [ST_FUSE_READS] = "fuse_reads",
    [ST_FUSE_READ_BYTES] = "fuse_read_bytes",
    [ST_FUSE_READ_US] = "fuse_read_us",
    [ST_FUSE_OPENS] = "fuse_opens",
    [ST_FUSE_RELEASES] = "fuse_releases",
    [ST_OPENS_TOLD_AFTER] = "opens_told_after",
    [ST_OPENS_NEVER_TOLD] = "opens_never_told",
    [ST_CHUNK_READS] = "chunk_reads",
    [ST_CHUNK_READ_BYTES] = "chunk_read_bytes",
    [ST_CHUNK_READ_US] = "chunk_read_us",
    [ST_CACHE_HIT_BYTES] = "cache_hit_bytes",
    [ST_CACHE_MISS_BYTES] = "cache_miss_bytes",
    [ST_PREFETCH_SEGMENTS] = "prefetch_segments",
    [ST_PREFETCH_USED] = "prefetch_used",
    [ST_PREFETCH_WASTED] = "prefetch_wasted",
    [ST_DISK_CACHE_HIT_BYTES] = "disk_cache_hit_bytes",
    [ST_DISK_CACHE_MISS_BYTES] = "disk_cache_miss_bytes",
    [ST_FUSE_WRITES] = "fuse_writes",
    [ST_FUSE_WRITE_BYTES] = "fuse_write_bytes",
    [ST_LOCAL_READS] = "local_reads",
    [ST_LOCAL_READ_BYTES] = "local_read_bytes",
    [ST_LOCAL_READ_US] = "local_read_us",
    [ST_LOCAL_READ_FAILS] = "local_read_fails",
};

void st_add(enum st_id id, uint64_t v)
{
    if ((unsigned)id < ST_NIDS) atomic_fetch_add_explicit(&counters[id], v, memory_order_relaxed);
}

uint64_t st_get(enum st_id id)
{
    return (unsigned)id < ST_NIDS ? atomic_load_explicit(&counters[id], memory_order_relaxed) : 0;
}

void st_meta_call(uint16_t type, uint64_t us)
{
    type &= (uint16_t) ~(0x8000u | MSG_F_SEQ);
    if (type >= ST_TYPES) return;
    atomic_fetch_add_explicit(&meta_calls[type], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&meta_us[type], us, memory_order_relaxed);
    prom_hist_observe_us(&meta_hist[type], us);
}

uint64_t st_meta_calls_total(void)
{
    uint64_t n = 0;
    for (int t = 0; t < ST_TYPES; t++)
        n += atomic_load_explicit(&meta_calls[t], memory_order_relaxed);
    return n;
}

uint64_t st_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* Append one line; returns the new length (never past cap - 1). */
static size_t line(char *out, size_t cap, size_t n, const char *name, const char *suffix,
                   uint64_t v)
{
    if (n + 1 >= cap) return n;
    int w = snprintf(out + n, cap - n, "%s%s %llu\n", name, suffix, (unsigned long long)v);
    if (w < 0) return n;
    return (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
}

size_t st_format(char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0) return 0;
    out[0] = '\0';
    for (int i = 0; i < ST_NIDS; i++)
        n = line(out, cap, n, names[i], "", st_get((enum st_id)i));
    for (uint16_t t = 0; t < ST_TYPES; t++) {
        uint64_t calls = atomic_load_explicit(&meta_calls[t], memory_order_relaxed);
        if (!calls) continue;
        char name[48] = "meta_";
        const char *tn = proto_type_name(t);
        size_t k = 5;
        for (; *tn && k < sizeof(name) - 1; tn++)
            name[k++] = (char)tolower((unsigned char)*tn);
        name[k] = '\0';
        n = line(out, cap, n, name, "_calls", calls);
        n = line(out, cap, n, name, "_us", atomic_load_explicit(&meta_us[t], memory_order_relaxed));
    }
    return n;
}

void st_observe(enum st_hist_id id, uint64_t us)
{
    if ((unsigned)id < STH_N) prom_hist_observe_us(&hists[id], us);
}

const struct prom_hist *st_hist(enum st_hist_id id)
{
    return (unsigned)id < STH_N ? &hists[id] : NULL;
}

uint64_t st_meta_calls(uint16_t type)
{
    return type < ST_TYPES ? atomic_load_explicit(&meta_calls[type], memory_order_relaxed) : 0;
}

const struct prom_hist *st_meta_hist(uint16_t type)
{
    return type < ST_TYPES ? &meta_hist[type] : NULL;
}
