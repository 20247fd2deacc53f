/* test_raft_membership.c - replacing a meta replica under load:
 *
 * - replace_a_replica_under_load: three replicas (ids 1, 2, 3) and a client thread making
 *   numbered MKDIRs (exactly-once: a retry after a failover is answered with its first
 *   outcome) through whichever replica leads, one every 20 ms. Replica 2 is killed with SIGKILL
 *   and `cairn meta remove 2` takes it out; a fresh cairn-meta (empty data folder, --join=<the
 *   others>) is started and `cairn meta add` makes it member 4 (it returns once the new member
 *   caught up and votes). Then the leader, an original replica, is killed too: the two left
 *   (one original, member 4) are a majority of {1, 3, 4}, elect a leader and serve, which
 *   needs member 4's vote. `cairn meta status --json` lists 4 as a voter and 2 no more.
 *   Throughout, the client never gets an error; every MKDIR it was told succeeded exists
 *   exactly once in the directory (and nothing else does); the two replicas left hold the same
 *   records once stopped.
 *
 * Requests go over the wire (harness_raft's client); no chunk servers or mounts. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_raft.h"

#define OPTS "election_timeout_ms=1000 heartbeat_ms=100"
#define MAX_OPS 4000

/* ---- the load: numbered MKDIRs in one folder ------------------------------------------------- */

/* Name of the load's i-th MKDIR: names of 7 to 14 bytes, so that log entries have all sizes. */
static void load_name(int i, char *out, size_t len)
{
    snprintf(out, len, "load%d%.*s", i, i % 8, "xxxxxxx");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct load {
    struct hraft_group *g;
    uint64_t dir;
    volatile int stop;
    int n;         /* operations done */
    int ok;        /* acknowledged */
    int first_err; /* index of the first failed one, -1 none */
    int err_rc;
    int rc[MAX_OPS];
    uint64_t done_ms[MAX_OPS];
    int retries;
};

static void *load_run(void *arg)
{
    struct load *l = arg;
    struct hraft_client cl;
    int rc = hraft_client_open(&cl, l->g, 20000);
    if (rc) {
        l->first_err = 0;
        l->err_rc = rc;
        return NULL;
    }
    while (!l->stop && l->n < MAX_OPS) {
        char name[32];
        load_name(l->n, name, sizeof(name));
        rc = hraft_client_mkdir(&cl, l->dir, name, NULL, 20000);
        l->rc[l->n] = rc;
        l->done_ms[l->n] = hraft_now_ms();
        if (rc == 0) l->ok++;
        if (rc && l->first_err < 0) {
            l->first_err = l->n;
            l->err_rc = rc;
        }
        l->n++;
        hraft_sleep_ms(20);
    }
    l->retries = cl.retries;
    hraft_client_close(&cl);
    return NULL;
}

/* Acknowledged operations after time t. */
static int acked_since(struct load *l, uint64_t t)
{
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->rc[i] == 0 && l->done_ms[i] > t;
    return n;
}

/* Wait (bounded) until the load acknowledged `want` more operations after t. */
static void load_progress(struct load *l, uint64_t t, int want, int timeout_ms, const char *when)
{
    uint64_t end = hraft_now_ms() + (uint64_t)timeout_ms;
    while (acked_since(l, t) < want) {
        ck_assert_msg(l->first_err < 0, "%s: the client got %s for MKDIR %d", when,
                      strerror(-l->err_rc), l->first_err);
        ck_assert_msg(hraft_now_ms() < end, "%s: only %d MKDIRs acknowledged in %.1f s", when,
                      acked_since(l, t), timeout_ms / 1000.0);
        hraft_sleep_ms(50);
    }
}

/* The leader's view of the members: ids and roles into ids/roles, count returned. */
static int members(struct hraft_group *g, int lead, uint64_t *ids, int *roles)
{
    struct hraft_status st;
    ck_assert_int_eq(hraft_status(g, lead, &st), 0);
    for (int i = 0; i < st.n; i++) {
        ids[i] = st.m[i].id;
        roles[i] = st.m[i].role;
    }
    return st.n;
}

START_TEST(replace_a_replica_under_load)
{
    struct hraft_group *g = hraft_g;
    char why[4096], out[4096], st[1500];
    uint64_t t0 = hraft_now_ms();
    int rc = hraft_init(g, hraft_root, "memb", 3, OPTS, 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    ck_assert_int_eq(hraft_start_all(g), 0);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_msg(lead >= 0, "no leader within 15 s (logs in %s)", g->c.dir);

    static struct load l;
    memset(&l, 0, sizeof(l));
    l.g = g;
    l.first_err = -1;
    struct hraft_client setup;
    ck_assert_int_eq(hraft_client_open(&setup, g, 10000), 0);
    ck_assert_int_eq(hraft_client_mkdir(&setup, CAIRN_ROOT_INO, "load", &l.dir, 10000), 0);
    hraft_client_close(&setup);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, load_run, &l), 0);
    load_progress(&l, 0, 20, 10000, "before any change");

    /* replica 2 dies and is removed */
    int dead = hraft_index_of(g, 2);
    ck_assert_int_eq(hraft_kill(g, dead, SIGKILL), 0);
    uint64_t t1 = hraft_now_ms();
    rc = hraft_remove(g, dead, out, sizeof(out));
    ck_assert_msg(rc == 0, "cairn meta remove 2: %s", out);
    fprintf(stderr, "replace_a_replica_under_load: replica 2 killed and removed in %.1f s\n",
            (double)(hraft_now_ms() - t1) / 1000.0);
    lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(lead, 0);
    uint64_t ids[HRAFT_MAX + 2];
    int roles[HRAFT_MAX + 2];
    int n = members(g, lead, ids, roles);
    ck_assert_msg(n == 2 && ids[0] != 2 && ids[1] != 2,
                  "after removing 2 the leader lists %d "
                  "members: %llu, %llu",
                  n, (unsigned long long)ids[0], (unsigned long long)(n > 1 ? ids[1] : 0));
    load_progress(&l, t1, 20, 20000, "after removing replica 2");

    /* a fresh replica joins */
    uint64_t t2 = hraft_now_ms();
    int fresh = hraft_add(g, out, sizeof(out));
    ck_assert_msg(fresh >= 0, "cairn meta add of a fresh replica: %s (%s)", strerror(-fresh), out);
    fprintf(stderr, "  a fresh replica joined as member %llu in %.1f s\n",
            (unsigned long long)g->r[fresh].id, (double)(hraft_now_ms() - t2) / 1000.0);
    ck_assert_msg(g->r[fresh].id == 4, "the fresh replica got id %llu, not 4 (ids 1-3 were used)",
                  (unsigned long long)g->r[fresh].id);
    lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(lead, 0);
    n = members(g, lead, ids, roles);
    int voter4 = 0;
    for (int i = 0; i < n; i++)
        voter4 |= ids[i] == 4 && roles[i] == META_ROLE_VOTER;
    ck_assert_msg(n == 3 && voter4,
                  "after `cairn meta add` the leader lists %d members, 4 %s a "
                  "voter",
                  n, voter4 ? "is" : "is not");
    load_progress(&l, t2, 20, 20000, "after adding member 4");

    /* the leader (an original replica) dies: {the other original, 4} must elect and serve */
    ck_assert_msg(g->r[lead].id != 4, "member 4 leads already");
    int killed = lead;
    ck_assert_int_eq(hraft_kill(g, killed, SIGKILL), 0);
    uint64_t t3 = hraft_now_ms();
    lead = hraft_wait_leader(g, 0, 15000);
    hraft_status_str(g, st, sizeof(st));
    ck_assert_msg(lead >= 0, "no leader among the two left within 15 s: [%s]", st);
    load_progress(&l, t3, 20, 20000, "after killing the leader");
    fprintf(stderr, "  leader %llu killed: member %llu leads after %.1f s; the load resumed\n",
            (unsigned long long)g->r[killed].id, (unsigned long long)g->r[lead].id,
            (double)(hraft_now_ms() - t3) / 1000.0);

    /* what `cairn meta status` says */
    char list[256];
    hraft_list(g, list, sizeof(list));
    rc = h_cairn_py(&g->c,
                    "m = {x['id']: x['role'] for x in d['members']}\n"
                    "print(m.get(4), 2 in m, len(m), d['leader_id'])",
                    out, sizeof(out), "meta status --json --meta %s", list);
    ck_assert_msg(rc == 0, "cairn meta status --json: %s", out);
    char want[64];
    snprintf(want, sizeof(want), "voter False 3 %llu", (unsigned long long)g->r[lead].id);
    ck_assert_msg(strcmp(out, want) == 0,
                  "cairn meta status: member 4's role, whether 2 is listed, members, leader: "
                  "'%s', expected '%s'",
                  out, want);

    l.stop = 1;
    pthread_join(th, NULL);
    ck_assert_msg(l.first_err < 0, "the client got %s for MKDIR %d", strerror(-l.err_rc),
                  l.first_err);
    fprintf(stderr, "  load: %d MKDIRs acknowledged, %d requests resent\n", l.ok, l.retries);

    /* every acknowledged MKDIR exists exactly once, nothing else does */
    static char names[MAX_OPS * 12 + 64];
    int cnt = 0;
    rc = hraft_readdir(g, lead, l.dir, names, sizeof(names), &cnt);
    ck_assert_msg(rc == 0, "readdir: %s", strerror(-rc));
    ck_assert_msg(cnt == l.ok, "the folder holds %d entries, %d MKDIRs were acknowledged", cnt,
                  l.ok);
    static char expect[MAX_OPS][24];
    static char *sorted[MAX_OPS];
    for (int i = 0; i < l.n; i++) {
        load_name(i, expect[i], sizeof(expect[i]));
        sorted[i] = expect[i];
    }
    qsort(sorted, (size_t)l.n, sizeof(sorted[0]), cmp_str);
    const char *p = names;
    for (int i = 0; i < l.n; i++) {
        size_t wl = strlen(sorted[i]);
        ck_assert_msg(strncmp(p, sorted[i], wl) == 0 && p[wl] == '\n',
                      "entry %d of the folder (sorted) is '%.16s', expected %s", i, p, sorted[i]);
        p += wl + 1;
    }

    hraft_client_close(&setup);
    rc = hraft_wait_quiet(g, lead, 0, 15000, why, sizeof(why));
    ck_assert_msg(rc == 0, "not quiet: %s", why);
    unsigned mask = 0;
    for (int i = 0; i < g->n; i++)
        if (hraft_running(g, i)) mask |= 1u << i;
    rc = hraft_stop_and_compare(g, lead, mask, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s", why);
    fprintf(stderr, "  the stores of the two replicas left hold the same records; %.1f s in all\n",
            (double)(hraft_now_ms() - t0) / 1000.0);
    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"replace_a_replica_under_load", replace_a_replica_under_load},
    };
    return hraft_main("rmemb", "raft_membership", tests, sizeof(tests) / sizeof(tests[0]), 120,
                      NULL);
}
