/* test_meta_raft.c - the replicated state machine (meta/mraft_fsm.c) under libraft's
 * raft_fixture: three replicas with real LMDB stores in a temporary folder, driven by the
 * fixture's deterministic clock and in-memory network. Entries are batches of operation
 * records as the leader writes them. Checks that every replica applies the same records to
 * the same state (same inode numbers), that a replica cut off catches up when the network
 * heals, that a new leader's numbers never collide with what was applied, that an entry the
 * store already holds is not applied twice, and that a replica that missed entries the log
 * no longer has catches up from a snapshot. A snapshot is a reference to the store; the copy
 * a restore needs comes here from the replica whose store is furthest ahead, in this process
 * (the daemons fetch it over the network: snap_fetch.c, covered by test_raft_snapshot). A
 * snapshot of the older kind (a whole compressed store in the buffer) still restores. */
#include <check.h>
#include <fcntl.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta.h"
#include "mraft_int.h"
#include "snap_xfer.h"
#include "unit_main.h"

#define N 3

static char g_dir[256];
static struct meta g_m[N];
static struct mraft g_r[N];
static struct raft_fixture F;

static void open_store(int i)
{
    struct mstore_opts so = {.no_sync = 1, .no_format = 1, .map_size = 64ull << 20};
    ck_assert_int_eq(mstore_open(g_m[i].cfg.data_dir, &so, &g_m[i].store), 0);
}

static int g_fetches; /* snapshot copies fetched */

/* The in-process stand-in for snap_fetch: a compacted copy of the store furthest ahead,
 * through the compressed form the daemons send. */
static int fetch_from_best(struct mraft *r, uint64_t need, const char *dest)
{
    int best = -1;
    for (int i = 0; i < N; i++)
        if (&g_r[i] != r && g_m[i].store &&
            (best < 0 || mstore_applied(g_m[i].store) > mstore_applied(g_m[best].store)))
            best = i;
    if (best < 0 || mstore_applied(g_m[best].store) < need) return -ESTALE;
    FILE *raw = tmpfile(), *z = tmpfile();
    ck_assert_ptr_nonnull(raw);
    ck_assert_ptr_nonnull(z);
    int rc = mstore_copy_fd(g_m[best].store, fileno(raw));
    if (!rc) rc = snapz_compress_fd(fileno(raw), fileno(z));
    struct snapz_dec *d;
    ck_assert_int_eq(snapz_dec_open(dest, &d), 0);
    uint8_t piece[4096 + 17]; /* odd pieces: the header and frames split anywhere */
    ssize_t got;
    lseek(fileno(z), 0, SEEK_SET);
    while (!rc && (got = read(fileno(z), piece, sizeof(piece))) > 0)
        rc = snapz_dec_feed(d, piece, (size_t)got);
    int crc = snapz_dec_close(d);
    if (!rc) rc = crc;
    fclose(raw);
    fclose(z);
    g_fetches++;
    return rc;
}

static void setup(void)
{
    g_fetches = 0;
    snprintf(g_dir, sizeof(g_dir), "/tmp/cairn-unit-raft-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    ck_assert_int_eq(raft_fixture_initialize(&F), 0);
    for (int i = 0; i < N; i++) {
        memset(&g_m[i], 0, sizeof(g_m[i]));
        memset(&g_r[i], 0, sizeof(g_r[i]));
        snprintf(g_m[i].cfg.data_dir, sizeof(g_m[i].cfg.data_dir), "%s/m%d", g_dir, i);
        snprintf(g_r[i].dir, sizeof(g_r[i].dir), "%s/m%d", g_dir, i);
        g_m[i].cfg.map_size = 64ull << 20;
        g_m[i].cfg.chunk_size = 1 << 20;
        ck_assert_int_eq(csr_init(&g_m[i].reg, 3000), 0);
        open_store(i);
        g_r[i].m = &g_m[i];
        mraft_fsm_init(&g_r[i], NULL);
        g_r[i].fetch = fetch_from_best;
        ck_assert_int_eq(raft_fixture_grow(&F, &g_r[i].fsm), 0);
        g_r[i].rp = raft_fixture_get(&F, (unsigned)i);
    }
    struct raft_configuration conf;
    ck_assert_int_eq(raft_fixture_configuration(&F, N, &conf), 0);
    ck_assert_int_eq(raft_fixture_bootstrap(&F, &conf), 0);
    raft_configuration_close(&conf);
    ck_assert_int_eq(raft_fixture_start(&F), 0);
}

static void teardown(void)
{
    raft_fixture_close(&F);
    for (int i = 0; i < N; i++) {
        mstore_close(g_m[i].store);
        csr_free(&g_m[i].reg);
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Propose one entry of records on server i (the leader), prepared with its store's counters
 * as the daemon does; returns the entry's index. */
static raft_index propose(unsigned i, struct mop *ops, int n)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u32(&b, (uint32_t)n);
    for (int k = 0; k < n; k++) {
        ck_assert_int_eq(mop_prepare(g_m[i].store, &ops[k]), 0);
        mop_encode(&ops[k], &b);
    }
    ck_assert_int_eq(b.err, 0);
    size_t len = (b.len + 7) & ~(size_t)7; /* as mraft_submit pads it */
    struct raft_buffer buf = {.base = raft_calloc(1, len), .len = len};
    memcpy(buf.base, b.data, b.len);
    wbuf_free(&b);
    static struct raft_apply reqs[64];
    static int next;
    struct raft_apply *req = &reqs[next++ % 64];
    ck_assert_int_eq(raft_apply(raft_fixture_get(&F, i), req, &buf, 1, NULL), 0);
    return req->index;
}

static raft_index mkdirs(unsigned leader, const char *prefix, int n)
{
    struct mop ops[16];
    ck_assert_int_le(n, 16);
    for (int k = 0; k < n; k++) {
        memset(&ops[k], 0, sizeof(ops[k]));
        ops[k].type = MOP_MKDIR;
        ops[k].parent = CAIRN_ROOT_INO;
        ops[k].mode = 0755;
        snprintf(ops[k].name, sizeof(ops[k].name), "%s%d", prefix, k);
    }
    return propose(leader, ops, n);
}

/* The group's first record, applied everywhere before anything else is prepared (the daemon
 * serves nothing until its format record is committed). */
static void format(unsigned leader)
{
    struct mop op = {.type = MOP_FORMAT, .size = 1 << 20};
    raft_index idx = propose(leader, &op, 1);
    ck_assert(raft_fixture_step_until_applied(&F, leader, idx, 5000));
}

/* The inode number of root/name on replica i, 0 if absent. */
static uint64_t ino_of(int i, const char *name)
{
    struct cairn_attr a;
    return mstore_lookup(g_m[i].store, CAIRN_ROOT_INO, name, &a) == 0 ? a.ino : 0;
}

static void assert_same(const char *prefix, int n)
{
    for (int k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%d", prefix, k);
        uint64_t ino = ino_of(0, name);
        ck_assert_msg(ino != 0, "%s missing on replica 0", name);
        for (int i = 1; i < N; i++)
            ck_assert_msg(ino_of(i, name) == ino, "%s: replica %d has %lu, replica 0 %lu", name, i,
                          (unsigned long)ino_of(i, name), (unsigned long)ino);
    }
    struct mstore_stats s0;
    ck_assert_int_eq(mstore_stats(g_m[0].store, &s0), 0);
    for (int i = 1; i < N; i++) {
        struct mstore_stats si;
        ck_assert_int_eq(mstore_stats(g_m[i].store, &si), 0);
        ck_assert_uint_eq(si.inodes, s0.inodes);
        ck_assert_uint_eq(si.next_ino, s0.next_ino);
    }
}

START_TEST(test_every_replica_applies_the_same_records)
{
    raft_fixture_elect(&F, 0);
    format(0);
    raft_index idx = mkdirs(0, "d", 8);
    ck_assert(raft_fixture_step_until_applied(&F, N, idx, 5000));
    assert_same("d", 8);
    for (int i = 0; i < N; i++) {
        ck_assert(mstore_formatted(g_m[i].store));
        ck_assert_uint_eq(mstore_applied(g_m[i].store), idx);
    }
}
END_TEST

START_TEST(test_cut_off_replica_catches_up)
{
    raft_fixture_elect(&F, 0);
    format(0);
    raft_fixture_disconnect(&F, 0, 2);
    raft_fixture_disconnect(&F, 1, 2);
    raft_index idx = mkdirs(0, "x", 5);
    ck_assert(raft_fixture_step_until_applied(&F, 1, idx, 5000));
    ck_assert(raft_fixture_step_until_applied(&F, 0, idx, 5000));
    ck_assert_uint_eq(ino_of(2, "x0"), 0); /* it heard nothing */
    raft_fixture_reconnect(&F, 0, 2);
    raft_fixture_reconnect(&F, 1, 2);
    ck_assert(raft_fixture_step_until_applied(&F, 2, idx, 10000));
    assert_same("x", 5);
}
END_TEST

START_TEST(test_new_leader_numbers_follow_what_was_applied)
{
    raft_fixture_elect(&F, 0);
    format(0);
    raft_index idx = mkdirs(0, "a", 4);
    ck_assert(raft_fixture_step_until_applied(&F, N, idx, 5000));
    raft_fixture_depose(&F);
    raft_fixture_elect(&F, 1);
    idx = mkdirs(1, "b", 4);
    ck_assert(raft_fixture_step_until_applied(&F, N, idx, 5000));
    assert_same("a", 4);
    assert_same("b", 4);
    /* inode numbers never collide across the two leaders */
    for (int k = 0; k < 4; k++) {
        char na[16], nb[16];
        snprintf(na, sizeof(na), "a%d", k);
        for (int j = 0; j < 4; j++) {
            snprintf(nb, sizeof(nb), "b%d", j);
            ck_assert_uint_ne(ino_of(1, na), ino_of(1, nb));
        }
    }
}
END_TEST

START_TEST(test_entry_already_in_store_is_skipped)
{
    raft_fixture_elect(&F, 0);
    format(0);
    raft_index idx = mkdirs(0, "s", 2);
    ck_assert(raft_fixture_step_until_applied(&F, N, idx, 5000));
    /* a replica whose store is ahead of libraft (a restart: libraft replays from its
     * snapshot) must not apply the entry again: the apply is skipped by index */
    struct mstore_stats before, after;
    ck_assert_int_eq(mstore_stats(g_m[2].store, &before), 0);
    struct raft_buffer again = {.base = NULL, .len = 0};
    struct raft *r2 = raft_fixture_get(&F, 2);
    raft_index saved = r2->last_applied;
    r2->last_applied = idx - 1; /* as if libraft were about to apply idx again */
    void *result = NULL;
    ck_assert_int_eq(g_r[2].fsm.apply(&g_r[2].fsm, &again, &result), 0);
    r2->last_applied = saved;
    ck_assert_int_eq(mstore_stats(g_m[2].store, &after), 0);
    ck_assert_uint_eq(after.inodes, before.inodes);
}
END_TEST

START_TEST(test_replica_catches_up_from_a_snapshot)
{
    for (int i = 0; i < N; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&F, (unsigned)i), 4);
        raft_set_snapshot_trailing(raft_fixture_get(&F, (unsigned)i), 1);
    }
    raft_fixture_elect(&F, 0);
    format(0);
    raft_fixture_kill(&F, 2);
    raft_index idx = 0;
    char prefix[16];
    for (int round = 0; round < 10; round++) {
        snprintf(prefix, sizeof(prefix), "r%d_", round);
        idx = mkdirs(0, prefix, 3);
        ck_assert(raft_fixture_step_until_applied(&F, 0, idx, 5000));
    }
    ck_assert(raft_fixture_step_until_applied(&F, 1, idx, 5000));
    /* the leader's log no longer starts at 1: replica 2 can only be sent a snapshot */
    ck_assert_uint_gt(raft_fixture_get(&F, 0)->log.offset, 1);
    ck_assert_uint_eq(ino_of(2, "r0_0"), 0);
    raft_fixture_revive(&F, 2);
    ck_assert(raft_fixture_step_until_applied(&F, 2, idx, 20000));
    for (int round = 0; round < 10; round++) {
        snprintf(prefix, sizeof(prefix), "r%d_", round);
        assert_same(prefix, 3);
    }
    ck_assert_int_ge(g_fetches, 1); /* it came from another store, not from the log */
}
END_TEST

/* A snapshot of the older kind: the whole store, compressed, in libraft's buffer. */
START_TEST(test_whole_store_snapshot_still_restores)
{
    raft_fixture_elect(&F, 0);
    format(0);
    raft_index idx = mkdirs(0, "w", 4);
    ck_assert(raft_fixture_step_until_applied(&F, 0, idx, 5000));
    FILE *raw = tmpfile(), *z = tmpfile();
    ck_assert_int_eq(mstore_copy_fd(g_m[0].store, fileno(raw)), 0);
    ck_assert_int_eq(snapz_compress_fd(fileno(raw), fileno(z)), 0);
    long len = lseek(fileno(z), 0, SEEK_END);
    struct raft_buffer buf = {.base = raft_malloc((size_t)len), .len = (size_t)len};
    ck_assert_int_eq(pread(fileno(z), buf.base, (size_t)len, 0), len);
    fclose(raw);
    fclose(z);
    /* a fresh replica 3 of its own (not in the group) restores it */
    struct meta m3 = {0};
    struct mraft r3 = {0};
    snprintf(m3.cfg.data_dir, sizeof(m3.cfg.data_dir), "%s/fresh", g_dir);
    m3.cfg.map_size = 64ull << 20;
    m3.cfg.chunk_size = 1 << 20;
    ck_assert_int_eq(mkdir(m3.cfg.data_dir, 0700), 0);
    struct mstore_opts so = {.no_sync = 1, .no_format = 1, .map_size = 64ull << 20};
    ck_assert_int_eq(mstore_open(m3.cfg.data_dir, &so, &m3.store), 0);
    r3.m = &m3;
    mraft_fsm_init(&r3, raft_fixture_get(&F, 0));
    ck_assert_int_eq(r3.fsm.restore(&r3.fsm, &buf), 0);
    struct cairn_attr a;
    ck_assert_int_eq(mstore_lookup(m3.store, CAIRN_ROOT_INO, "w3", &a), 0);
    ck_assert_uint_eq(a.ino, ino_of(0, "w3"));
    ck_assert_uint_eq(mstore_applied(m3.store), idx);
    /* a cut-short one is refused, and the store is left as it was */
    struct raft_buffer bad = {.base = raft_malloc(64), .len = 64};
    memset(bad.base, 0, 64);
    le_put32(bad.base, SNAP_MAGIC);
    ck_assert_int_ne(r3.fsm.restore(&r3.fsm, &bad), 0);
    raft_free(bad.base);
    ck_assert_uint_eq(mstore_applied(m3.store), idx);
    mstore_close(m3.store);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_raft");
    TCase *t = tcase_create("fixture");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_every_replica_applies_the_same_records);
    tcase_add_test(t, test_cut_off_replica_catches_up);
    tcase_add_test(t, test_new_leader_numbers_follow_what_was_applied);
    tcase_add_test(t, test_entry_already_in_store_is_skipped);
    tcase_add_test(t, test_replica_catches_up_from_a_snapshot);
    tcase_add_test(t, test_whole_store_snapshot_still_restores);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
