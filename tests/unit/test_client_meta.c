/* test_client_meta.c - the client's side of a replicated meta service (client-fuse/meta_seq.c,
 * meta_route.c): the numbering of mutations (seq from 1 per session, the same outstanding-set
 * window from many threads, acked_below never above a request still waiting, a new session
 * restarting at 1), the trailer's bytes, which requests are numbered, the meta= list check,
 * and the leader guess (a named leader is followed and learned, "" and an unreachable replica
 * move on to the next, a failure seen by many threads moves the guess once, a learned replica
 * in use is never evicted). No network: rpc_conn objects are created but never connect. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "unit_main.h"

/* ---- the seq window ---------------------------------------------------------------------- */

START_TEST(seq_needs_a_session)
{
    struct mc_seq w;
    struct mc_seq_tag t;
    mc_seq_init(&w);
    ck_assert_int_eq(mc_seq_begin(&w, &t), -ENOTCONN);
    mc_seq_reset(&w, 7);
    ck_assert_int_eq(mc_seq_begin(&w, &t), 0);
    ck_assert_uint_eq(t.session, 7);
    ck_assert_uint_eq(t.seq, 1);
    ck_assert_uint_eq(t.acked_below, 1);
    mc_seq_end(&w, &t);
    mc_seq_destroy(&w);
}
END_TEST

START_TEST(seq_acked_below_is_lowest_outstanding)
{
    struct mc_seq w;
    struct mc_seq_tag t1, t2, t3, t4;
    mc_seq_init(&w);
    mc_seq_reset(&w, 7);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 1); /* none outstanding: the next seq */
    ck_assert_int_eq(mc_seq_begin(&w, &t1), 0);
    ck_assert_int_eq(mc_seq_begin(&w, &t2), 0);
    ck_assert_int_eq(mc_seq_begin(&w, &t3), 0);
    ck_assert_uint_eq(t2.seq, 2);
    ck_assert_uint_eq(t3.seq, 3);
    ck_assert_uint_eq(t3.acked_below, 1); /* 1 and 2 still wait */
    /* replies out of order: the window moves only when the lowest is answered */
    mc_seq_end(&w, &t2);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 1);
    mc_seq_end(&w, &t1);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 3);
    ck_assert_int_eq(mc_seq_begin(&w, &t4), 0);
    ck_assert_uint_eq(t4.seq, 4);
    ck_assert_uint_eq(t4.acked_below, 3);
    mc_seq_end(&w, &t3);
    mc_seq_end(&w, &t4);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 5);
    mc_seq_end(&w, &t4); /* twice: nothing happens */
    ck_assert_uint_eq(mc_seq_acked_below(&w), 5);
    mc_seq_destroy(&w);
}
END_TEST

START_TEST(seq_new_session_restarts_at_one)
{
    struct mc_seq w;
    struct mc_seq_tag a1, a2, b1;
    mc_seq_init(&w);
    mc_seq_reset(&w, 7);
    ck_assert_int_eq(mc_seq_begin(&w, &a1), 0);
    ck_assert_int_eq(mc_seq_begin(&w, &a2), 0);
    mc_seq_reset(&w, 7); /* the same session resumed: numbering goes on */
    ck_assert_uint_eq(mc_seq_acked_below(&w), 1);
    mc_seq_reset(&w, 9);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 1);
    ck_assert_int_eq(mc_seq_begin(&w, &b1), 0);
    ck_assert_uint_eq(b1.session, 9);
    ck_assert_uint_eq(b1.seq, 1);
    /* the old session's requests end late: seq 1 of session 7 is not seq 1 of session 9 */
    mc_seq_end(&w, &a1);
    mc_seq_end(&w, &a2);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 1);
    mc_seq_end(&w, &b1);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 2);
    mc_seq_destroy(&w);
}
END_TEST

START_TEST(seq_window_grows)
{
    struct mc_seq w;
    enum { N = 1000 };
    static struct mc_seq_tag t[N];
    mc_seq_init(&w);
    mc_seq_reset(&w, 3);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(mc_seq_begin(&w, &t[i]), 0);
        ck_assert_uint_eq(t[i].seq, (uint64_t)i + 1);
        ck_assert_uint_eq(t[i].acked_below, 1);
    }
    for (int i = N - 1; i >= 0; i--)
        if (i != 499) mc_seq_end(&w, &t[i]);
    ck_assert_uint_eq(mc_seq_acked_below(&w), 500);
    mc_seq_end(&w, &t[499]);
    ck_assert_uint_eq(mc_seq_acked_below(&w), N + 1);
    mc_seq_destroy(&w);
}
END_TEST

enum { TH = 8, PER = 3000 };
struct seq_worker {
    struct mc_seq *w;
    uint64_t seq[PER];
    int bad; /* acked_below above a seq this thread still waited for */
};

static void *seq_worker_main(void *arg)
{
    struct seq_worker *k = arg;
    for (int i = 0; i < PER; i++) {
        struct mc_seq_tag a, b;
        if (mc_seq_begin(k->w, &a) || mc_seq_begin(k->w, &b)) {
            k->bad++;
            break;
        }
        /* b was numbered while a waited: b's window may not pass a */
        if (b.acked_below > a.seq || a.acked_below > a.seq || b.seq <= a.seq) k->bad++;
        mc_seq_end(k->w, &a);
        mc_seq_end(k->w, &b);
        k->seq[i] = a.seq;
    }
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

START_TEST(seq_many_threads)
{
    struct mc_seq w;
    mc_seq_init(&w);
    mc_seq_reset(&w, 11);
    static struct seq_worker k[TH];
    pthread_t th[TH];
    for (int i = 0; i < TH; i++) {
        k[i].w = &w;
        k[i].bad = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, seq_worker_main, &k[i]), 0);
    }
    static uint64_t all[TH * PER];
    for (int i = 0; i < TH; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(k[i].bad, 0);
        memcpy(all + i * PER, k[i].seq, sizeof(k[i].seq));
    }
    qsort(all, TH * PER, sizeof(all[0]), cmp_u64);
    for (int i = 1; i < TH * PER; i++)
        ck_assert_uint_ne(all[i], all[i - 1]); /* every request its own seq */
    /* two per round, all answered: the next seq is past all of them */
    ck_assert_uint_eq(mc_seq_acked_below(&w), 2 * TH * PER + 1);
    mc_seq_destroy(&w);
}
END_TEST

START_TEST(seq_which_requests)
{
    const uint16_t numbered[] = {MSG_SETATTR,  MSG_MKNOD,       MSG_MKDIR,  MSG_UNLINK,
                                 MSG_RMDIR,    MSG_RENAME,      MSG_LINK,   MSG_SYMLINK,
                                 MSG_SETXATTR, MSG_REMOVEXATTR, MSG_CREATE, MSG_OPEN,
                                 MSG_RELEASE,  MSG_CHUNK_LEASE, MSG_COMMIT, MSG_SET_COPIES};
    for (size_t i = 0; i < sizeof(numbered) / sizeof(numbered[0]); i++)
        ck_assert_int_eq(mc_seq_wanted(numbered[i]), 1);
    const uint16_t plain[] = {
        MSG_SESSION_OPEN, MSG_SESSION_KEEPALIVE, MSG_SESSION_CLOSE, MSG_LOOKUP,
        MSG_GETATTR,      MSG_READLINK,          MSG_READDIR,       MSG_STATFS,
        MSG_GETXATTR,     MSG_LISTXATTR,         MSG_CHUNK_LOCATE};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        ck_assert_int_eq(mc_seq_wanted(plain[i]), 0);
}
END_TEST

START_TEST(seq_trailer_bytes)
{
    struct mc_seq_tag t = {.session = 0x1122334455667788ull, .seq = 42, .acked_below = 40};
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u32(&b, 5); /* the request's own fields come first */
    mc_seq_put(&b, &t);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.len, 4 + MSG_SEQ_TRAILER);
    struct rcur c;
    rcur_init(&c, b.data + 4, b.len - 4);
    ck_assert_uint_eq(rcur_u64(&c), t.session);
    ck_assert_uint_eq(rcur_u64(&c), 42);
    ck_assert_uint_eq(rcur_u64(&c), 40);
    ck_assert_int_eq(rcur_done(&c), 0);
    wbuf_free(&b);
}
END_TEST

/* ---- the meta= list ---------------------------------------------------------------------- */

static int parse(const char *list, char (*out)[CAIRN_ADDR_MAX + 1])
{
    char why[160] = "";
    int n = mc_addrs_parse(list, out, MC_REPLICAS_MAX, why, sizeof(why));
    if (n < 0) ck_assert_msg(why[0] != '\0', "no reason given for '%s'", list);
    return n;
}

START_TEST(addrs_good)
{
    char a[MC_REPLICAS_MAX][CAIRN_ADDR_MAX + 1];
    ck_assert_int_eq(parse("127.0.0.1:9520", a), 1);
    ck_assert_str_eq(a[0], "127.0.0.1:9520");
    ck_assert_int_eq(parse("m1:9520,m2.example.org:9521,10.0.0.3:1", a), 3);
    ck_assert_str_eq(a[1], "m2.example.org:9521");
    ck_assert_str_eq(a[2], "10.0.0.3:1");
    ck_assert_int_eq(parse("a:1,b:2,c:3,d:4,e:5,f:6,g:7", a), 7);
    ck_assert_str_eq(a[6], "g:7");
}
END_TEST

START_TEST(addrs_bad)
{
    char a[MC_REPLICAS_MAX][CAIRN_ADDR_MAX + 1];
    const char *bad[] = {
        "",
        "a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8", /* 8 > 7 */
        ",a:1",
        "a:1,",
        "a:1,,b:2",
        "a",
        "a:",
        ":1",
        "a:0",
        "a:65536",
        "a:12x",
        "a:1,a:1",
        "a b:1",
        "a:1;b:2",
        "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh:1" /* 65 */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], a) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

/* ---- the leader guess -------------------------------------------------------------------- */

static const char *cur_addr(struct mc *m)
{
    static char out[CAIRN_ADDR_MAX + 1];
    mc_current(m, out);
    return out;
}

/* One attempt on the current peer with outcome v. */
static enum mc_verdict attempt(struct mc *m, enum mc_verdict v, const char *named)
{
    struct mc_pick p;
    ck_assert_int_eq(mc_pick(m, &p), 0);
    return mc_drop(m, &p, v, named, v == MC_V_UNREACHABLE ? -ECONNREFUSED : 0);
}

START_TEST(route_follows_the_leader)
{
    struct mc m;
    ck_assert_int_eq(mc_init(&m, "a:1,b:2,c:3", 30000), 0);
    ck_assert_int_eq(m.npeer, 3);
    ck_assert_str_eq(cur_addr(&m), "a:1");
    ck_assert_int_eq(attempt(&m, MC_V_ANSWERED, NULL), MC_V_ANSWERED);
    ck_assert_int_eq(m.leader, 0);
    /* a follower names a listed leader */
    ck_assert_int_eq(attempt(&m, MC_V_REDIRECT, "c:3"), MC_V_REDIRECT);
    ck_assert_str_eq(cur_addr(&m), "c:3");
    ck_assert_int_eq(m.npeer, 3);
    /* ... or one the list does not have: it joins the known set */
    ck_assert_int_eq(attempt(&m, MC_V_REDIRECT, "d:4"), MC_V_REDIRECT);
    ck_assert_str_eq(cur_addr(&m), "d:4");
    ck_assert_int_eq(m.npeer, 4);
    ck_assert_int_eq(m.peer[3].learned, 1);
    ck_assert_int_eq(attempt(&m, MC_V_ANSWERED, NULL), MC_V_ANSWERED);
    ck_assert_int_eq(m.leader, 3);
    /* the leader dies: the next known replica, then the one after while none is elected */
    ck_assert_int_eq(attempt(&m, MC_V_UNREACHABLE, NULL), MC_V_UNREACHABLE);
    ck_assert_int_eq(m.leader, -1);
    ck_assert_str_eq(cur_addr(&m), "a:1");
    ck_assert_int_eq(attempt(&m, MC_V_NOLEADER, ""), MC_V_NOLEADER);
    ck_assert_str_eq(cur_addr(&m), "b:2");
    ck_assert_int_eq(attempt(&m, MC_V_ANSWERED, NULL), MC_V_ANSWERED);
    ck_assert_int_eq(m.leader, 1);
    mc_close(&m);
}
END_TEST

START_TEST(route_bad_redirects_move_on)
{
    struct mc m;
    ck_assert_int_eq(mc_init(&m, "a:1,b:2", 30000), 0);
    /* a replica naming itself, or a name that is no address, is no leader */
    ck_assert_int_eq(attempt(&m, MC_V_REDIRECT, "a:1"), MC_V_NOLEADER);
    ck_assert_str_eq(cur_addr(&m), "b:2");
    ck_assert_int_eq(attempt(&m, MC_V_REDIRECT, "no port"), MC_V_NOLEADER);
    ck_assert_str_eq(cur_addr(&m), "a:1");
    ck_assert_int_eq(m.npeer, 2);
    /* a local failure teaches nothing */
    ck_assert_int_eq(attempt(&m, MC_V_LOCAL, NULL), MC_V_LOCAL);
    ck_assert_str_eq(cur_addr(&m), "a:1");
    mc_close(&m);
}
END_TEST

START_TEST(route_one_move_per_failure)
{
    struct mc m;
    ck_assert_int_eq(mc_init(&m, "a:1,b:2,c:3", 30000), 0);
    /* three threads on a:1 when it dies: the guess moves to b:2 once, not to a:1 again */
    struct mc_pick p[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mc_pick(&m, &p[i]), 0);
    ck_assert_ptr_eq(p[0].conn, p[2].conn); /* one connection per replica */
    ck_assert_int_eq(m.peer[0].refs, 3);
    for (int i = 0; i < 3; i++)
        mc_drop(&m, &p[i], MC_V_UNREACHABLE, NULL, -ECONNRESET);
    ck_assert_str_eq(cur_addr(&m), "b:2");
    ck_assert_int_eq(m.peer[0].refs, 0);
    /* same for a redirect seen by two threads after another thread moved the guess */
    struct mc_pick q1, q2;
    ck_assert_int_eq(mc_pick(&m, &q1), 0);
    ck_assert_int_eq(mc_pick(&m, &q2), 0);
    mc_drop(&m, &q1, MC_V_REDIRECT, "c:3", 0);
    mc_drop(&m, &q2, MC_V_NOLEADER, "", 0);
    ck_assert_str_eq(cur_addr(&m), "c:3");
    mc_close(&m);
}
END_TEST

START_TEST(route_learned_peers_bounded)
{
    struct mc m;
    char a[32];
    ck_assert_int_eq(mc_init(&m, "a:1,b:2,c:3", 30000), 0);
    /* hold a learned replica's connection while the table fills up */
    ck_assert_int_eq(attempt(&m, MC_V_REDIRECT, "l:100"), MC_V_REDIRECT);
    struct mc_pick held;
    ck_assert_int_eq(mc_pick(&m, &held), 0);
    ck_assert_str_eq(rpc_conn_addr(held.conn), "l:100");
    for (int i = 1; i < 40; i++) {
        snprintf(a, sizeof(a), "l:%d", 100 + i);
        ck_assert_int_eq(attempt(&m, MC_V_REDIRECT, a), MC_V_REDIRECT);
        ck_assert_str_eq(cur_addr(&m), a);
        ck_assert_int_le(m.npeer, MC_PEERS_MAX);
    }
    ck_assert_int_eq(m.npeer, MC_PEERS_MAX);
    /* meta= never leaves the table, nor a peer in use */
    ck_assert_str_eq(m.peer[0].addr, "a:1");
    ck_assert_str_eq(m.peer[1].addr, "b:2");
    ck_assert_str_eq(m.peer[2].addr, "c:3");
    ck_assert_str_eq(m.peer[held.idx].addr, "l:100");
    ck_assert_ptr_eq(m.peer[held.idx].conn, held.conn);
    mc_drop(&m, &held, MC_V_LOCAL, NULL, 0);
    mc_close(&m);
}
END_TEST

START_TEST(route_init_rejects_bad_list)
{
    struct mc m;
    ck_assert_int_eq(mc_init(&m, "a:1,nope", 30000), -EINVAL);
    mc_close(&m); /* harmless on a mount that was never set up */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client_meta");
    TCase *t = tcase_create("seq");
    tcase_add_test(t, seq_needs_a_session);
    tcase_add_test(t, seq_acked_below_is_lowest_outstanding);
    tcase_add_test(t, seq_new_session_restarts_at_one);
    tcase_add_test(t, seq_window_grows);
    tcase_add_test(t, seq_many_threads);
    tcase_add_test(t, seq_which_requests);
    tcase_add_test(t, seq_trailer_bytes);
    suite_add_tcase(s, t);
    t = tcase_create("addrs");
    tcase_add_test(t, addrs_good);
    tcase_add_test(t, addrs_bad);
    suite_add_tcase(s, t);
    t = tcase_create("route");
    tcase_add_test(t, route_follows_the_leader);
    tcase_add_test(t, route_bad_redirects_move_on);
    tcase_add_test(t, route_one_move_per_failure);
    tcase_add_test(t, route_learned_peers_bounded);
    tcase_add_test(t, route_init_rejects_bad_list);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
