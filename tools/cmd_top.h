/* cmd_top.h - the decoded MSG_TOP reply (every chunk server's and every mount's cumulative
 * counters) and the rates between two of them, for `cairn top`. Decoding and the rate
 * arithmetic are apart from the terminal so that tests can feed hand-made replies.
 *
 * Ownership: a struct top_sample owns its arrays (top_free). */
#ifndef CAIRN_CMD_TOP_H
#define CAIRN_CMD_TOP_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Counters of one server or mount: reads, read bytes, writes, write bytes (and, for a mount,
 * meta calls). */
struct top_counts {
    uint64_t meta_ops, reads, read_bytes, writes, write_bytes;
    uint64_t seen_ms; /* the leader's monotonic ms when they were reported */
};

struct top_server {
    uint64_t id;
    char addr[CAIRN_ADDR_MAX + 1];
    uint8_t state; /* CS_STATE_* */
    struct top_counts c;
};

struct top_client {
    uint64_t session;
    char label[CAIRN_NAME_MAX + 1];
    char peer[CAIRN_ADDR_MAX + 1];
    struct top_counts c;
};

struct top_sample {
    uint64_t now_ms;
    uint32_t nservers, nclients;
    struct top_server *servers;
    struct top_client *clients;
};

/* Per-second rates of one row. */
struct top_rates {
    double meta_ops, reads, read_bytes, writes, write_bytes;
    int known; /* 0: no earlier sample of this row with older counters */
};

int top_decode(struct top_sample *s, const void *p, size_t len);
void top_free(struct top_sample *s);
/* Rates from a (older) to b; a counter that went down (a restart) counts from 0. */
void top_rates(const struct top_counts *a, const struct top_counts *b, struct top_rates *r);
/* The row of server id / session in s, or NULL. */
const struct top_server *top_find_server(const struct top_sample *s, uint64_t id);
const struct top_client *top_find_client(const struct top_sample *s, uint64_t session);

#endif
