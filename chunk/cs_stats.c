/* cs_stats.c - the chunk server's counters and timings, and their text for MSG_CHK_STATS.
 * Every counter is a u64 added to with relaxed atomics by whichever thread did the work
 * (connection threads, read workers), so counting never takes a lock; a reader sees each
 * counter whole, not all of them at one instant. Times are microseconds of cstore_now_us
 * (CLOCK_MONOTONIC), summed since the server started. The names are the protocol (proto.h:
 * "name value" lines, names [a-z0-9_]); `cairn cs stats` prints them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cs.h"

/* Counted request types, in the order of enum cs_stat_type. */
static const struct {
    uint16_t type;
    const char *name;
} st_types[CS_T_N] = {
    {MSG_CHK_READ, "read"},     {MSG_CHK_WRITE, "write"}, {MSG_CHK_TRUNCATE, "truncate"},
    {MSG_CHK_DELETE, "delete"}, {MSG_CHK_FSYNC, "fsync"}, {MSG_CHK_INFO, "info"},
    {MSG_CHK_SETVER, "setver"}, {MSG_CHK_STATS, "stats"}, {0, "other"},
};

void cs_stat_add(uint64_t *counter, uint64_t v)
{
    __atomic_add_fetch(counter, v, __ATOMIC_RELAXED);
}

static uint64_t st_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static int st_type(uint16_t type)
{
    for (int i = 0; i < CS_T_OTHER; i++)
        if (st_types[i].type == type) return i;
    return CS_T_OTHER;
}

void cs_stats_init(struct cs_state *s)
{
    memset(&s->stats, 0, sizeof(s->stats));
    s->stats.start_us = cstore_now_us();
}

void cs_stats_request(struct cs_state *s, uint16_t type, int rc, uint64_t bytes, uint64_t t_recv)
{
    struct cs_stats *st = &s->stats;
    int t = st_type(type);
    cs_stat_add(&st->req[t], 1);
    if (rc) cs_stat_add(&st->err[t], 1);
    cs_stat_add(&st->bytes[t], bytes);
    uint64_t us = cstore_now_us() - t_recv;
    cs_stat_add(&st->us[t], us);
    prom_hist_observe_us(&st->lat[t], us);
}

const char *cs_stats_type_name(int t)
{
    return t >= 0 && t < CS_T_N ? st_types[t].name : "other";
}

void cs_stats_read_begin(struct cs_state *s)
{
    struct cs_stats *st = &s->stats;
    uint64_t n = __atomic_add_fetch(&st->reads_in_flight, 1, __ATOMIC_RELAXED);
    uint64_t max = st_get(&st->reads_in_flight_max);
    while (n > max && !__atomic_compare_exchange_n(&st->reads_in_flight_max, &max, n, 1,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

void cs_stats_read_end(struct cs_state *s)
{
    __atomic_sub_fetch(&s->stats.reads_in_flight, 1, __ATOMIC_RELAXED);
}

/* Append "name value\n" to buf (size len) at *at; a line that does not fit is left out. */
static void st_line(char *buf, size_t len, size_t *at, const char *prefix, const char *name,
                    uint64_t v)
{
    int n = snprintf(buf + *at, len - *at, "%s%s %" PRIu64 "\n", prefix, name, v);
    if (n > 0 && (size_t)n < len - *at) *at += (size_t)n;
}

int cs_stats_put(struct cs_state *s, struct wbuf *out)
{
    struct cs_stats *st = &s->stats;
    char buf[4096];
    size_t at = 0, l = sizeof(buf);
    for (int t = 0; t < CS_T_N; t++) {
        char p[32];
        snprintf(p, sizeof(p), "%s_", st_types[t].name);
        st_line(buf, l, &at, p, "requests", st_get(&st->req[t]));
        st_line(buf, l, &at, p, "errors", st_get(&st->err[t]));
        st_line(buf, l, &at, p, "bytes", st_get(&st->bytes[t]));
        st_line(buf, l, &at, p, "us", st_get(&st->us[t]));
    }
    st_line(buf, l, &at, "read_", "queue_us", st_get(&st->read_queue_us));
    st_line(buf, l, &at, "read_", "disk_us", st_get(&st->read_disk_us));
    st_line(buf, l, &at, "read_", "checksum_us", st_get(&st->read_checksum_us));
    st_line(buf, l, &at, "read_", "send_us", st_get(&st->read_send_us));
    st_line(buf, l, &at, "write_", "disk_us", st_get(&st->write_disk_us));
    st_line(buf, l, &at, "write_", "chain_us", st_get(&st->write_chain_us));
    st_line(buf, l, &at, "write_", "fsync_us", st_get(&st->write_fsync_us));
    uint64_t hits, misses;
    int open;
    cstore_cache_counts(&s->store, &hits, &misses, &open);
    st_line(buf, l, &at, "open_cache_", "hits", hits);
    st_line(buf, l, &at, "open_cache_", "misses", misses);
    st_line(buf, l, &at, "open_cache_", "chunks", (uint64_t)open);
    st_line(buf, l, &at, "reads_", "in_flight", st_get(&st->reads_in_flight));
    st_line(buf, l, &at, "reads_", "in_flight_max", st_get(&st->reads_in_flight_max));
    pthread_mutex_lock(&s->lock);
    int conns = s->nconns;
    pthread_mutex_unlock(&s->lock);
    st_line(buf, l, &at, "", "connections", (uint64_t)conns);
    st_line(buf, l, &at, "", "uptime_s", (cstore_now_us() - st->start_us) / 1000000u);
    wbuf_put_str(out, buf, at);
    return out->err;
}
