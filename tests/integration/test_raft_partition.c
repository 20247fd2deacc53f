/* test_raft_partition.c - the meta leader cut off from the other two replicas:
 *
 * - cut_off_leader_yields: three replicas, each in a network namespace of its own on one bridge
 *   (harness_raft.h); the test process reaches every replica through its own veth. The leader's
 *   traffic to and from the two others is dropped (blackhole routes in the namespaces: a real
 *   cut of the Raft traffic, the cut-off replica keeps running). Then:
 *     - a MKDIR sent straight to the cut-off leader gets no success within 3 s (its replica is
 *       still alive and answers status);
 *     - reads (LOOKUP) sent straight to it stop being answered within 2 election timeouts (+0.5 s);
 *       an answer it gives after the majority acknowledged a write the answer does not show
 *       is reported as a stale read;
 *     - the two others elect a leader that serves: MKDIRs through it succeed;
 *   after the cut is healed the old leader follows the new one and applies everything it has,
 *   the MKDIR it was sent is nowhere, and with every replica stopped (the leader first) the
 *   three LMDB stores hold the same records (mdb_dump, database by database).
 *
 * The binary says SKIPPED (and counts no check) when the machine cannot make network namespaces,
 * veth pairs, a bridge or blackhole routes: a partition is never simulated with SIGSTOP. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_raft.h"

#define ELECTION_MS 1000
#define OPTS "election_timeout_ms=1000 heartbeat_ms=100"
#define READ_BOUND_MS (2 * ELECTION_MS + 500)

static const char *errname(int rc)
{
    if (rc == -CAIRN_ENOTLEADER) return "ENOTLEADER";
    return rc ? strerrorname_np(-rc) : "OK";
}

/* ---- the mutation sent to the cut-off leader (its own thread) -------------------------------- */

struct cut_mkdir {
    struct hraft_group *g;
    int replica;
    const char *name;
    int rc;
    uint64_t done_ms;
};

static void *send_cut_mkdir(void *arg)
{
    struct cut_mkdir *c = arg;
    struct wbuf b;
    wbuf_init(&b);
    hraft_put_mkdir(&b, CAIRN_ROOT_INO, c->name);
    c->rc = hraft_call(c->g, c->replica, MSG_MKDIR, &b, NULL, 3000);
    c->done_ms = hraft_now_ms();
    wbuf_free(&b);
    return NULL;
}

static int mkdir_on(struct hraft_group *g, int i, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    hraft_put_mkdir(&b, CAIRN_ROOT_INO, name);
    int rc = hraft_call(g, i, MSG_MKDIR, &b, NULL, 5000);
    wbuf_free(&b);
    return rc;
}

static int lookup_on(struct hraft_group *g, int i, const char *name, int timeout_ms)
{
    struct wbuf b;
    wbuf_init(&b);
    hraft_put_lookup(&b, CAIRN_ROOT_INO, name);
    int rc = hraft_call(g, i, MSG_LOOKUP, &b, NULL, timeout_ms);
    wbuf_free(&b);
    return rc;
}

/* An answer of a replica that serves reads: found, or not found. */
static int answered(int rc)
{
    return rc == 0 || rc == -ENOENT;
}

/* One round: cut replica old (the leader) off. With mutate, a MKDIR "cut-R" goes straight to it
 * (its own thread) while the test watches; reads (LOOKUP of "majority-R") go straight to it
 * every 100 ms either way, and once the other two elected a serving leader a MKDIR
 * "majority-R" goes through that one. Checks what the file's comment says, heals, waits until
 * the old leader follows again and returns the new leader. */
static int cut_round(struct hraft_group *g, int old, int round, int mutate)
{
    char why[4096], st[1500], cut_name[32], maj[32];
    snprintf(cut_name, sizeof(cut_name), "cut-%d", round);
    snprintf(maj, sizeof(maj), "majority-%d", round);
    ck_assert_int_eq(hraft_partition(g, old), 0);
    uint64_t t0 = hraft_now_ms();
    fprintf(stderr, "round %d: replica %d (%s), the leader, cut off from the others%s\n", round,
            old + 1, g->r[old].addr, mutate ? "; a MKDIR sent to it" : "; reads sent to it");
    struct cut_mkdir cm = {.g = g, .replica = old, .name = cut_name};
    pthread_t th;
    if (mutate) ck_assert_int_eq(pthread_create(&th, NULL, send_cut_mkdir, &cm), 0);

    /* reads straight to the old leader, while the majority elects and writes */
    uint64_t last_answer = 0, ack_ms = 0, stale_ms = 0;
    int now_lead = -1, nreads = 0, last_rc = 0, rc;
    while (hraft_now_ms() < t0 + 8000) {
        uint64_t inv = hraft_now_ms();
        int r = lookup_on(g, old, maj, 300);
        nreads++;
        last_rc = r;
        if (answered(r)) {
            last_answer = hraft_now_ms();
            if (r == -ENOENT && ack_ms && inv > ack_ms && !stale_ms) stale_ms = inv;
        }
        if (now_lead < 0) {
            now_lead = hraft_wait_leader(g, 1u << old, 0);
            if (now_lead >= 0) {
                rc = mkdir_on(g, now_lead, maj);
                ck_assert_msg(rc == 0, "mkdir through the new leader %d: %s", now_lead + 1,
                              errname(rc));
                ack_ms = hraft_now_ms();
            }
        }
        if (now_lead >= 0 && inv > (last_answer ? last_answer : t0) + 1500) break;
        hraft_sleep_ms(100);
    }
    if (mutate) pthread_join(th, NULL);
    hraft_status_str(g, st, sizeof(st));
    if (mutate)
        fprintf(stderr, "  the MKDIR sent to the cut-off leader: %s after %.2f s\n", errname(cm.rc),
                (double)(cm.done_ms - t0) / 1000.0);
    char when[64] = "none after the cut";
    if (last_answer)
        snprintf(when, sizeof(when), "%.2f s after the cut", (double)(last_answer - t0) / 1000.0);
    fprintf(stderr,
            "  its last answer to a read: %s (%d reads, the last: %s)\n"
            "  new leader: replica %d, its first write acknowledged %.2f s after the cut\n"
            "  [%s]\n",
            when, nreads, errname(last_rc), now_lead + 1,
            ack_ms ? (double)(ack_ms - t0) / 1000.0 : 0.0, st);
    if (stale_ms)
        fprintf(stderr,
                "  STALE READ: the cut-off replica answered '%s does not exist' to a read sent "
                "%.2f s after the cut, %llu ms after the new leader acknowledged creating it\n",
                maj, (double)(stale_ms - t0) / 1000.0, (unsigned long long)(stale_ms - ack_ms));

    if (mutate)
        ck_assert_msg(cm.rc != 0, "the cut-off leader acknowledged a MKDIR (logs in %s)", g->c.dir);
    ck_assert_msg(hraft_running(g, old), "the cut-off replica died (see %s)", g->r[old].log);
    struct hraft_status os;
    ck_assert_msg(hraft_status(g, old, &os) == 0, "the cut-off replica does not answer status");
    ck_assert_msg(os.state != META_ST_LEADER, "the cut-off replica still says it leads: [%s]", st);
    ck_assert_msg(!last_answer || last_answer - t0 <= READ_BOUND_MS,
                  "the cut-off replica answered reads until %.2f s after the cut (bound %.1f s)",
                  (double)(last_answer - t0) / 1000.0, READ_BOUND_MS / 1000.0);
    ck_assert_msg(now_lead >= 0, "the majority elected no serving leader within 8 s: [%s]", st);
    for (int k = 0; k < 5; k++) {
        char name[40];
        snprintf(name, sizeof(name), "majority-%d-%d", round, k);
        rc = mkdir_on(g, now_lead, name);
        ck_assert_msg(rc == 0, "mkdir %s through the new leader: %s", name, errname(rc));
    }

    /* heal: the old leader follows and holds the majority's history */
    uint64_t th0 = hraft_now_ms();
    ck_assert_int_eq(hraft_heal(g), 0);
    rc = hraft_wait_quiet(g, now_lead, 0, 20000, why, sizeof(why));
    hraft_status_str(g, st, sizeof(st));
    ck_assert_msg(rc == 0, "after healing the old leader did not catch up in 20 s: %s [%s]", why,
                  st);
    ck_assert_int_eq(hraft_status(g, old, &os), 0);
    ck_assert_msg(os.state == META_ST_FOLLOWER && os.leader_id == g->r[now_lead].id,
                  "after healing the old leader is not a follower of replica %d: [%s]",
                  now_lead + 1, st);
    fprintf(stderr, "  healed: replica %d follows replica %d after %.1f s\n", old + 1, now_lead + 1,
            (double)(hraft_now_ms() - th0) / 1000.0);
    if (mutate) {
        rc = lookup_on(g, now_lead, cut_name, 3000);
        ck_assert_msg(rc == -ENOENT, "the MKDIR sent to the cut-off leader exists: LOOKUP says %s",
                      errname(rc));
    }
    rc = lookup_on(g, now_lead, maj, 3000);
    ck_assert_msg(rc == 0, "%s after healing: %s", maj, errname(rc));
    return now_lead;
}

START_TEST(cut_off_leader_yields)
{
    struct hraft_group *g = hraft_g;
    char why[4096];
    int rc = hraft_init(g, hraft_root, "part", 3, OPTS, 1, why, sizeof(why));
    ck_assert_msg(rc == 0, "group in namespaces: %s", why);
    rc = hraft_start_all(g);
    ck_assert_msg(rc == 0, "start: %s (logs in %s)", strerror(-rc), g->c.dir);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_msg(lead >= 0, "no leader within 15 s (logs in %s)", g->c.dir);
    for (int k = 0; k < 10; k++) {
        char name[32];
        snprintf(name, sizeof(name), "before%d", k);
        rc = mkdir_on(g, lead, name);
        ck_assert_msg(rc == 0, "mkdir %s on the leader: %s", name, errname(rc));
    }
    lead = cut_round(g, lead, 1, 1); /* a mutation sent to the cut-off leader */
    lead = cut_round(g, lead, 2, 0); /* only reads: when does it stop answering? */

    ck_assert_int_eq(hraft_kill(g, lead, SIGTERM), 0);
    for (int i = 0; i < g->n; i++)
        if (i != lead) ck_assert_int_eq(hraft_kill(g, i, SIGTERM), 0);
    rc = hraft_compare_stores(g, 7u, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s", why);
    fprintf(stderr, "the three stores hold the same records\n");
    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {{"cut_off_leader_yields", cut_off_leader_yields}};
    char why[700];
    const char *skip = NULL;
    if (hraft_netns_probe(why, sizeof(why)) != 0) skip = why;
    return hraft_main("rpart", "raft_partition", tests, sizeof(tests) / sizeof(tests[0]), 90, skip);
}
