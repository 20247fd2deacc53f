/* client_stats.c - the counters each client session sends with its keepalive (operations and
 * bytes it read and wrote), kept in the leader's memory for `cairn top`, the status page and
 * the metrics. Soft state: a new leader learns them again from the next keepalives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

#define CLIENT_STATS_MAX 4096

static struct client_stat *stats;
static uint32_t nstats, capstats;

static struct client_stat *find(uint64_t session)
{
    for (uint32_t i = 0; i < nstats; i++)
        if (stats[i].session == session) return &stats[i];
    return NULL;
}

int client_stats_update(const struct client_stat *cs)
{
    struct client_stat *e = find(cs->session);
    if (!e) {
        if (nstats == CLIENT_STATS_MAX) return -ENOSPC;
        if (nstats == capstats) {
            uint32_t cap = capstats ? capstats * 2 : 16;
            struct client_stat *n = realloc(stats, cap * sizeof(*n));
            if (!n) return -ENOMEM;
            stats = n;
            capstats = cap;
        }
        e = &stats[nstats++];
    }
    *e = *cs;
    return 0;
}

void client_stats_each(client_stat_fn fn, void *arg)
{
    for (uint32_t i = 0; i < nstats; i++)
        fn(arg, &stats[i]);
}

void client_stats_drop(uint64_t session)
{
    struct client_stat *e = find(session);
    if (e) *e = stats[--nstats];
}

uint32_t client_stats_count(void)
{
    return nstats;
}
