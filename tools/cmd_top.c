/* cmd_top.c - `cairn top [PATH]`: operations/s and bytes/s of every chunk server and every
 * mount, from MSG_TOP asked every --interval seconds (default 2). On a terminal the screen is
 * redrawn until Ctrl-C (or --count N samples); otherwise, and with --json, it prints the rates
 * between two samples --interval apart (--count N: N times) and exits. Servers report with
 * their heartbeats (every second), mounts every CLIENT_STATS_S seconds: a row's rate is taken
 * between the two latest different reports, so it may lag that much. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_meta.h"
#include "cmd_top.h"
#include "json_out.h"

#define MiB (1024.0 * 1024.0)

static volatile sig_atomic_t top_stop;

static void on_int(int sig)
{
    (void)sig;
    top_stop = 1;
}

static int fetch(struct cli_meta *m, struct top_sample *s)
{
    struct rpc_reply rep;
    int rc = cli_meta_call(m, MSG_TOP, NULL, &rep);
    if (rc) {
        cli_err("top: %s", cli_meta_why(m));
        return CLI_FAIL;
    }
    rc = top_decode(s, rep.payload.data, rep.payload.len);
    rpc_reply_free(&rep);
    if (rc) {
        cli_err("top: %s", cli_strerror(rc));
        return CLI_FAIL;
    }
    return 0;
}

/* The rates of each row of cur, against the newest older report of the same row (kept in
 * base, which is updated: a row whose report did not change keeps its last rates). */
struct top_row_rates {
    uint64_t key;
    struct top_counts base;
    struct top_rates r;
};

struct top_state {
    struct top_row_rates *rows;
    uint32_t n, cap;
};

static struct top_row_rates *row_of(struct top_state *t, uint64_t key)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->rows[i].key == key) return &t->rows[i];
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 32;
        struct top_row_rates *r = realloc(t->rows, cap * sizeof(*r));
        if (!r) return NULL;
        t->rows = r;
        t->cap = cap;
    }
    struct top_row_rates *r = &t->rows[t->n++];
    memset(r, 0, sizeof(*r));
    r->key = key;
    return r;
}

/* key: server ids as they are, sessions with the top bit set (they never collide in use). */
static const struct top_rates *update(struct top_state *t, uint64_t key, const struct top_counts *c)
{
    static const struct top_rates none;
    struct top_row_rates *r = row_of(t, key);
    if (!r) return &none;
    if (r->base.seen_ms == 0) {
        r->base = *c;
    } else if (c->seen_ms > r->base.seen_ms) {
        top_rates(&r->base, c, &r->r);
        r->base = *c;
    }
    return &r->r;
}

#define CLIENT_KEY(s) ((s) | (1ull << 63))

/* One row: label, address, then the state (servers) or the meta operations/s (mounts), and
 * the read and write rates. */
static void print_rates_text(const char *label, const char *addr, const char *state,
                             const struct top_rates *r, int meta)
{
    char third[16];
    if (meta)
        snprintf(third, sizeof(third), r->known ? "%.0f" : "-", r->meta_ops);
    else
        snprintf(third, sizeof(third), "%s", state);
    if (!r->known) {
        printf("%-32.32s %-21s %10s %8s %10s %8s %11s\n", label, addr, third, "-", "-", "-", "-");
        return;
    }
    printf("%-32.32s %-21s %10s %8.0f %10.1f %8.0f %11.1f\n", label, addr, third, r->reads,
           r->read_bytes / MiB, r->writes, r->write_bytes / MiB);
}

static void add_rates(struct top_rates *sum, const struct top_rates *r)
{
    if (!r->known) return;
    sum->meta_ops += r->meta_ops;
    sum->reads += r->reads;
    sum->read_bytes += r->read_bytes;
    sum->writes += r->writes;
    sum->write_bytes += r->write_bytes;
    sum->known = 1;
}

static void show_text(struct top_state *t, const struct top_sample *s, const char *addrs,
                      int interval, int tty)
{
    if (tty) fputs("\033[H\033[2J", stdout);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
    printf("cairn top: %s, every %d s, %s%s\n\n", addrs, interval, when,
           tty ? " (Ctrl-C to quit)" : "");
    printf("%-32s %-21s %10s %8s %10s %8s %11s\n", "CHUNK SERVER", "ADDRESS", "STATE", "READS/s",
           "READ MiB/s", "WRITES/s", "WRITE MiB/s");
    struct top_rates sum = {0};
    for (uint32_t i = 0; i < s->nservers; i++) {
        const struct top_server *v = &s->servers[i];
        const struct top_rates *r = update(t, v->id, &v->c);
        char id[20];
        snprintf(id, sizeof(id), "%016" PRIx64, v->id);
        print_rates_text(id, v->addr, cli_cs_state_name(v->state), r, 0);
        add_rates(&sum, r);
    }
    print_rates_text("all chunk servers", "", "", &sum, 0);
    printf("\n%-32s %-21s %10s %8s %10s %8s %11s\n", "MOUNT", "PEER", "META OPS/s", "READS/s",
           "READ MiB/s", "WRITES/s", "WRITE MiB/s");
    memset(&sum, 0, sizeof(sum));
    for (uint32_t i = 0; i < s->nclients; i++) {
        const struct top_client *v = &s->clients[i];
        const struct top_rates *r = update(t, CLIENT_KEY(v->session), &v->c);
        print_rates_text(v->label[0] ? v->label : "?", v->peer, "", r, 1);
        add_rates(&sum, r);
    }
    print_rates_text("all mounts", "", "", &sum, 1);
    fflush(stdout);
}

static void json_rates(struct json *j, const struct top_rates *r, int meta)
{
    json_bool(j, "known", r->known);
    if (meta) json_fixed(j, "meta_ops_per_s", r->meta_ops, 1);
    json_fixed(j, "reads_per_s", r->reads, 1);
    json_fixed(j, "read_bytes_per_s", r->read_bytes, 0);
    json_fixed(j, "writes_per_s", r->writes, 1);
    json_fixed(j, "write_bytes_per_s", r->write_bytes, 0);
}

static void show_json(struct top_state *t, const struct top_sample *s, const char *addrs)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j, NULL);
    json_str(&j, "meta", addrs);
    json_arr_begin(&j, "servers");
    for (uint32_t i = 0; i < s->nservers; i++) {
        const struct top_server *v = &s->servers[i];
        json_obj_begin(&j, NULL);
        json_hex64(&j, "id", v->id);
        json_str(&j, "addr", v->addr);
        json_str(&j, "state", cli_cs_state_name(v->state));
        json_rates(&j, update(t, v->id, &v->c), 0);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_arr_begin(&j, "mounts");
    for (uint32_t i = 0; i < s->nclients; i++) {
        const struct top_client *v = &s->clients[i];
        json_obj_begin(&j, NULL);
        json_hex64(&j, "session", v->session);
        json_str(&j, "label", v->label);
        json_str(&j, "peer", v->peer);
        json_rates(&j, update(t, CLIENT_KEY(v->session), &v->c), 1);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    json_finish(&j);
}

/* Feed every row of s into t; whether every row has rates now. */
static int update_all(struct top_state *t, const struct top_sample *s)
{
    int known = 1;
    for (uint32_t i = 0; i < s->nservers; i++)
        known &= update(t, s->servers[i].id, &s->servers[i].c)->known;
    for (uint32_t i = 0; i < s->nclients; i++)
        known &= update(t, CLIENT_KEY(s->clients[i].session), &s->clients[i].c)->known;
    return known;
}

/* Sleep up to secs, waking early on Ctrl-C. */
static void nap(int secs)
{
    for (int i = 0; i < secs * 10 && !top_stop; i++)
        usleep(100 * 1000);
}

int cmd_top(const struct cli *c)
{
    if (c->argc > 1) {
        cli_err("usage: cairn top [PATH] [--interval S] [--count N] [--json] [--meta ADDR,...]");
        return CLI_USAGE;
    }
    int interval = c->interval > 0 ? c->interval : 2;
    int tty = isatty(STDOUT_FILENO) && !c->json;
    int count = c->count > 0 ? c->count : (tty ? 0 : 1); /* 0: until Ctrl-C */
    char addrs[CLI_ADDRS_LEN];
    if (cli_meta_addr_cluster(c, c->argc ? c->argv[0] : NULL, addrs, sizeof(addrs)))
        return CLI_USAGE;
    struct cli_meta *m = cli_meta_get(addrs);
    if (!m) {
        cli_err("top: bad meta service address list '%s'", addrs);
        return CLI_USAGE;
    }
    signal(SIGINT, on_int);
    struct top_state t = {0};
    struct top_sample s;
    int rc = fetch(m, &s);
    if (rc) return rc;
    if (tty) {
        show_text(&t, &s, addrs, interval, tty);
    } else {
        update_all(&t, &s); /* the base of the first rates */
    }
    top_free(&s);
    for (int shown = 0; !top_stop && (count == 0 || shown < count); shown++) {
        nap(interval);
        if (top_stop) break;
        if ((rc = fetch(m, &s))) break;
        /* printed once: wait (a little) for a new report of every row that sent none yet */
        for (int extra = 0; !tty && extra < CLIENT_STATS_S + 1 && !update_all(&t, &s); extra++) {
            top_free(&s);
            nap(1);
            if (top_stop || (rc = fetch(m, &s))) break;
        }
        if (rc || top_stop) break;
        if (c->json)
            show_json(&t, &s, addrs);
        else
            show_text(&t, &s, addrs, interval, tty);
        top_free(&s);
    }
    free(t.rows);
    return rc ? CLI_FAIL : CLI_OK;
}
