/* cmd_health.c - `cairn health`: the chunk servers (id, address, zone, state, usage, chunks,
 * load), the chunk counts of the repair scanner's last pass, and the repair and move
 * counters, from one MSG_HEALTH; the reply's decoder and printers (see cmd_health.h). */
#include "cmd_health.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_meta.h"

#define MiB (1024.0 * 1024.0)

int hl_decode(struct hl_report *h, const void *p, size_t len)
{
    struct rcur c;
    memset(h, 0, sizeof(*h));
    rcur_init(&c, p, len);
    uint32_t n = rcur_u32(&c);
    if (c.err) return c.err;
    if ((uint64_t)n * 45 > c.left) return -EBADMSG; /* a server entry is at least 45 bytes */
    if (n) {
        h->servers = calloc(n, sizeof(*h->servers));
        if (!h->servers) return -ENOMEM;
    }
    h->nservers = n;
    for (uint32_t i = 0; i < n && !c.err; i++) {
        struct hl_server *s = &h->servers[i];
        s->id = rcur_u64(&c);
        rcur_str(&c, s->addr, CAIRN_ADDR_MAX);
        rcur_str(&c, s->zone, CAIRN_ZONE_MAX);
        s->state = rcur_u8(&c);
        s->capacity = rcur_u64(&c);
        s->free = rcur_u64(&c);
        s->load = rcur_u32(&c);
        s->chunks = rcur_u64(&c);
        s->repairs_in_flight = rcur_u32(&c);
    }
    h->chunks = rcur_u64(&c);
    h->full = rcur_u64(&c);
    h->under = rcur_u64(&c);
    h->missing = rcur_u64(&c);
    h->over = rcur_u64(&c);
    h->stale_copies = rcur_u64(&c);
    h->bad_copies = rcur_u64(&c);
    h->repair_queue = rcur_u64(&c);
    h->repairs_done = rcur_u64(&c);
    h->repair_bytes = rcur_u64(&c);
    h->repair_rate = rcur_u64(&c);
    h->bad_repaired = rcur_u64(&c);
    h->moves_done = rcur_u64(&c);
    h->scan_complete = rcur_u8(&c);
    h->default_copies = rcur_u32(&c);
    h->balance_pct = rcur_u32(&c);
    if (!c.err && c.left >= 20) {
        h->has_totals = 1;
        h->inodes = rcur_u64(&c);
        h->file_bytes = rcur_u64(&c);
        h->sessions = rcur_u32(&c);
    }
    int rc = rcur_done(&c);
    if (rc) hl_free(h);
    return rc;
}

void hl_free(struct hl_report *h)
{
    free(h->servers);
    memset(h, 0, sizeof(*h));
}

double hl_used_pct(const struct hl_server *s)
{
    if (s->capacity == 0) return 0;
    uint64_t free_b = s->free > s->capacity ? s->capacity : s->free;
    return 100.0 * (double)(s->capacity - free_b) / (double)s->capacity;
}

void hl_print_servers(FILE *out, const struct hl_report *h)
{
    char s1[32];
    if (h->nservers)
        fprintf(out, "%-16s  %-21s  %-8s  %-8s  %5s  %10s  %10s  %6s  %7s\n", "SERVER", "ADDRESS",
                "ZONE", "STATE", "USED", "FREE", "CHUNKS", "LOAD", "REPAIRS");
    for (uint32_t i = 0; i < h->nservers; i++) {
        const struct hl_server *s = &h->servers[i];
        char used[16] = "-";
        if (s->capacity) snprintf(used, sizeof(used), "%.0f%%", hl_used_pct(s));
        fprintf(out, "%016" PRIx64 "  %-21s  %-8s  %-8s  %5s  %10s  %10" PRIu64 "  %6u  %7u\n",
                s->id, s->addr, s->zone[0] ? s->zone : "-", cli_cs_state_name(s->state), used,
                cli_size(s->free, s1, sizeof(s1)), s->chunks, s->load, s->repairs_in_flight);
    }
}

void hl_print(FILE *out, const char *meta, const struct hl_report *h)
{
    char s1[32];
    fprintf(out, "meta service %s: %u chunk server%s, default copies %u, balance %u%%\n", meta,
            h->nservers, h->nservers == 1 ? "" : "s", h->default_copies, h->balance_pct);
    hl_print_servers(out, h);
    fprintf(out,
            "chunks: %" PRIu64 " total, %" PRIu64 " full, %" PRIu64 " under-replicated, %" PRIu64
            " missing, %" PRIu64 " over-replicated%s\n",
            h->chunks, h->full, h->under, h->missing, h->over,
            h->scan_complete ? "" : " (first scan still running)");
    fprintf(out, "copies: %" PRIu64 " stale, %" PRIu64 " bad\n", h->stale_copies, h->bad_copies);
    fprintf(out,
            "repair: %" PRIu64 " queued, %" PRIu64 " done (%s), %.1f MiB/s, %" PRIu64
            " bad copies repaired, %" PRIu64 " moves done\n",
            h->repair_queue, h->repairs_done, cli_size(h->repair_bytes, s1, sizeof(s1)),
            (double)h->repair_rate / MiB, h->bad_repaired, h->moves_done);
}

void hl_json_servers(struct json *j, const struct hl_report *h)
{
    json_arr_begin(j, "servers");
    for (uint32_t i = 0; i < h->nservers; i++) {
        const struct hl_server *s = &h->servers[i];
        json_obj_begin(j, NULL);
        json_hex64(j, "id", s->id);
        json_str(j, "addr", s->addr);
        json_str(j, "zone", s->zone);
        json_str(j, "state", cli_cs_state_name(s->state));
        json_u64(j, "capacity", s->capacity);
        json_u64(j, "free", s->free);
        json_fixed(j, "used_pct", hl_used_pct(s), 1);
        json_u64(j, "chunks", s->chunks);
        json_u64(j, "load", s->load);
        json_u64(j, "repairs_in_flight", s->repairs_in_flight);
        json_obj_end(j);
    }
    json_arr_end(j);
}

void hl_json(struct json *j, const char *meta, const struct hl_report *h)
{
    json_obj_begin(j, NULL);
    json_str(j, "meta", meta);
    hl_json_servers(j, h);
    json_obj_begin(j, "chunks");
    json_u64(j, "total", h->chunks);
    json_u64(j, "full", h->full);
    json_u64(j, "under_replicated", h->under);
    json_u64(j, "missing", h->missing);
    json_u64(j, "over_replicated", h->over);
    json_obj_end(j);
    json_u64(j, "stale_copies", h->stale_copies);
    json_u64(j, "bad_copies", h->bad_copies);
    json_obj_begin(j, "repair");
    json_u64(j, "queue", h->repair_queue);
    json_u64(j, "done", h->repairs_done);
    json_u64(j, "bytes", h->repair_bytes);
    json_u64(j, "rate_bytes_per_s", h->repair_rate);
    json_fixed(j, "rate_mib_per_s", (double)h->repair_rate / MiB, 1);
    json_u64(j, "bad_repaired", h->bad_repaired);
    json_u64(j, "moves_done", h->moves_done);
    json_obj_end(j);
    json_bool(j, "scan_complete", h->scan_complete);
    json_u64(j, "default_copies", h->default_copies);
    json_u64(j, "balance_pct", h->balance_pct);
    if (h->has_totals) {
        json_u64(j, "inodes", h->inodes);
        json_u64(j, "file_bytes", h->file_bytes);
        json_u64(j, "sessions", h->sessions);
    }
    json_obj_end(j);
}

int hl_fetch(const char *addrs, const char *what, struct hl_report *h)
{
    struct cli_meta *m = cli_meta_get(addrs);
    if (!m) {
        cli_err("%s: bad meta service address list '%s'", what, addrs);
        return CLI_FAIL;
    }
    struct rpc_reply rep;
    int rc = cli_meta_call(m, MSG_HEALTH, NULL, &rep);
    if (rc) {
        cli_err("%s: %s", what, cli_meta_why(m));
        return CLI_FAIL;
    }
    rc = hl_decode(h, rep.payload.data, rep.payload.len);
    rpc_reply_free(&rep);
    if (rc) {
        cli_err("%s: %s", what, cli_strerror(rc));
        return CLI_FAIL;
    }
    return 0;
}

int cmd_health(const struct cli *c)
{
    if (c->argc > 1) {
        cli_err("usage: cairn health [PATH] [--json] [--meta ADDR]");
        return CLI_USAGE;
    }
    char addrs[CLI_ADDRS_LEN];
    if (cli_meta_addr_cluster(c, c->argc ? c->argv[0] : NULL, addrs, sizeof(addrs)))
        return CLI_USAGE;
    struct hl_report h;
    if (hl_fetch(addrs, "health", &h)) return CLI_FAIL;
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        hl_json(&j, addrs, &h);
        json_finish(&j);
    } else {
        hl_print(stdout, addrs, &h);
    }
    hl_free(&h);
    return CLI_OK;
}
