/* cmd_health.h - the decoded MSG_HEALTH reply, its decoder and its printers. Decoding is apart
 * from printing so that tests can feed hand-made replies.
 *
 * Ownership: a struct hl_report owns its servers array; hl_free releases it. */
#ifndef CAIRN_CMD_HEALTH_H
#define CAIRN_CMD_HEALTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_out.h"
#include "proto.h"

struct hl_server {
    uint64_t id;
    char addr[CAIRN_ADDR_MAX + 1];
    char zone[CAIRN_ZONE_MAX + 1];
    uint8_t state; /* CS_STATE_* */
    uint64_t capacity;
    uint64_t free;
    uint32_t load;
    uint64_t chunks; /* copies it holds */
    uint32_t repairs_in_flight;
};

struct hl_report {
    uint32_t nservers;
    struct hl_server *servers;
    uint64_t chunks, full, under, missing, over;
    uint64_t stale_copies, bad_copies;
    uint64_t repair_queue, repairs_done, repair_bytes, repair_rate; /* rate in bytes/s */
    uint64_t bad_repaired, moves_done;
    uint8_t scan_complete;
    uint32_t default_copies, balance_pct;
    /* absent from an older meta service (then 0, has_totals 0) */
    uint8_t has_totals;
    uint64_t inodes, file_bytes;
    uint32_t sessions;
};

/* Decode a HEALTH reply payload into h (zeroed first). 0, -EBADMSG or -ENOMEM; on error h
 * holds nothing to free. */
int hl_decode(struct hl_report *h, const void *p, size_t len);
void hl_free(struct hl_report *h);
/* Used share of a server's capacity in percent (0 when the capacity is unknown). */
double hl_used_pct(const struct hl_server *s);
/* The server table alone (cairn cs list), as text or as a "servers" array member. */
void hl_print_servers(FILE *out, const struct hl_report *h);
void hl_json_servers(struct json *j, const struct hl_report *h);
/* Ask the meta service at addrs for its HEALTH report; 0 or CLI_FAIL after a message naming
 * what (e.g. "health"). */
int hl_fetch(const char *addrs, const char *what, struct hl_report *h);
/* Human output; meta is the address list asked (for the heading). */
void hl_print(FILE *out, const char *meta, const struct hl_report *h);
/* The whole report as one JSON object. */
void hl_json(struct json *j, const char *meta, const struct hl_report *h);

#endif
