/* cmd_status.c - `cairn status [PATH]`: the cluster in five lines - its state (healthy,
 * degraded, data missing, no leader), the meta group (leader, term, members, lag), the chunk
 * servers (up, down, draining, space), the chunks (health and repair) and the namespace
 * (inodes, bytes, sessions), from MSG_META_STATUS of each replica and one MSG_HEALTH.
 * Exit status 0 only when the cluster is healthy, so scripts and probes can use it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_meta.h"
#include "cmd_health.h"
#include "cmd_meta.h"

struct st_summary {
    uint32_t up, down, draining;
    uint64_t capacity, free;
    uint32_t members, reachable;
    uint64_t max_lag;
};

static void summarize(const struct mt_view *v, const struct hl_report *h, struct st_summary *s)
{
    memset(s, 0, sizeof(*s));
    for (uint32_t i = 0; h && i < h->nservers; i++) {
        const struct hl_server *sv = &h->servers[i];
        if (sv->state == CS_STATE_DOWN) {
            s->down++;
            continue;
        }
        if (sv->state == CS_STATE_DRAINING)
            s->draining++;
        else
            s->up++;
        s->capacity += sv->capacity;
        s->free += sv->free < sv->capacity ? sv->free : sv->capacity;
    }
    if (v->leader < 0) return;
    const struct mt_status *l = &v->replicas[v->leader].st;
    s->members = l->nmembers;
    for (uint32_t i = 0; i < l->nmembers; i++) {
        const struct mt_member *mb = &l->members[i];
        s->reachable += mb->id == l->self_id || mb->reachable;
        uint64_t lag = mt_lag(l, mb);
        if (lag > s->max_lag) s->max_lag = lag;
    }
}

/* "healthy", or the worst problem. */
static const char *cluster_state(const struct mt_view *v, const struct hl_report *h,
                                 const struct st_summary *s)
{
    if (v->leader < 0 || !h) return "no leader";
    if (h->missing) return "data missing";
    if (h->under || s->down || s->reachable < s->members) return "degraded";
    return "healthy";
}

static void print_text(const struct mt_view *v, const struct hl_report *h,
                       const struct st_summary *s, const char *state)
{
    char b1[32], b2[32], b3[32];
    printf("cluster %s: %s\n", v->meta, state);
    if (v->leader >= 0) {
        const struct mt_replica *lr = &v->replicas[v->leader];
        printf("meta:          leader %" PRIu64 " at %s, term %" PRIu64 ", %u/%u members "
               "reachable, largest lag %" PRIu64 " entries\n",
               lr->st.self_id, lr->addr, lr->st.term, s->reachable, s->members, s->max_lag);
    } else {
        printf("meta:          no leader (see cairn meta status)\n");
    }
    if (!h) return;
    uint64_t used = s->capacity - s->free;
    printf("chunk servers: %u up, %u down, %u draining; %s used of %s (%.0f%%), %s free\n", s->up,
           s->down, s->draining, cli_size(used, b1, sizeof(b1)),
           cli_size(s->capacity, b2, sizeof(b2)),
           s->capacity ? 100.0 * (double)used / (double)s->capacity : 0.0,
           cli_size(s->free, b3, sizeof(b3)));
    printf("chunks:        %" PRIu64 " (%" PRIu64 " full, %" PRIu64 " under-replicated, %" PRIu64
           " missing)%s; repair queue %" PRIu64 ", %.1f MiB/s\n",
           h->chunks, h->full, h->under, h->missing,
           h->scan_complete ? "" : " (first scan running)", h->repair_queue,
           (double)h->repair_rate / (1024.0 * 1024.0));
    if (h->has_totals)
        printf("namespace:     %" PRIu64 " inodes, %s in files, %u session%s\n", h->inodes,
               cli_size(h->file_bytes, b1, sizeof(b1)), h->sessions, h->sessions == 1 ? "" : "s");
}

static void print_json(const struct mt_view *v, const struct hl_report *h,
                       const struct st_summary *s, const char *state)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j, NULL);
    json_str(&j, "meta", v->meta);
    json_str(&j, "state", state);
    json_obj_begin(&j, "leader");
    if (v->leader >= 0) {
        const struct mt_replica *lr = &v->replicas[v->leader];
        json_u64(&j, "id", lr->st.self_id);
        json_str(&j, "addr", lr->addr);
        json_u64(&j, "term", lr->st.term);
        json_u64(&j, "members", s->members);
        json_u64(&j, "reachable", s->reachable);
        json_u64(&j, "max_lag", s->max_lag);
    }
    json_obj_end(&j);
    if (h) {
        json_obj_begin(&j, "chunk_servers");
        json_u64(&j, "up", s->up);
        json_u64(&j, "down", s->down);
        json_u64(&j, "draining", s->draining);
        json_u64(&j, "capacity", s->capacity);
        json_u64(&j, "free", s->free);
        json_obj_end(&j);
        json_obj_begin(&j, "chunks");
        json_u64(&j, "total", h->chunks);
        json_u64(&j, "full", h->full);
        json_u64(&j, "under_replicated", h->under);
        json_u64(&j, "missing", h->missing);
        json_bool(&j, "scan_complete", h->scan_complete);
        json_u64(&j, "repair_queue", h->repair_queue);
        json_u64(&j, "repair_rate_bytes_per_s", h->repair_rate);
        json_obj_end(&j);
        if (h->has_totals) {
            json_u64(&j, "inodes", h->inodes);
            json_u64(&j, "file_bytes", h->file_bytes);
            json_u64(&j, "sessions", h->sessions);
        }
    }
    json_obj_end(&j);
    json_finish(&j);
}

int cmd_status(const struct cli *c)
{
    if (c->argc > 1) {
        cli_err("usage: cairn status [PATH] [--json] [--meta ADDR,...]");
        return CLI_USAGE;
    }
    char addrs[CLI_ADDRS_LEN];
    if (cli_meta_addr_cluster(c, c->argc ? c->argv[0] : NULL, addrs, sizeof(addrs)))
        return CLI_USAGE;
    struct cli_meta *m = cli_meta_get(addrs);
    if (!m) {
        cli_err("status: bad meta service address list '%s'", addrs);
        return CLI_USAGE;
    }
    struct mt_view v;
    if (mt_view_gather(m, &v)) {
        cli_err("status: out of memory");
        return CLI_FAIL;
    }
    struct hl_report h;
    int have_h = v.leader >= 0 && hl_fetch(addrs, "status", &h) == 0;
    struct st_summary s;
    summarize(&v, have_h ? &h : NULL, &s);
    const char *state = cluster_state(&v, have_h ? &h : NULL, &s);
    if (c->json)
        print_json(&v, have_h ? &h : NULL, &s, state);
    else
        print_text(&v, have_h ? &h : NULL, &s, state);
    if (have_h) hl_free(&h);
    mt_view_free(&v);
    return strcmp(state, "healthy") == 0 ? CLI_OK : CLI_FAIL;
}
