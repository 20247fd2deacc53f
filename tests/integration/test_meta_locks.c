/* test_meta_locks.c - the meta leader's lock service (meta/locks.c) through the wire protocol,
 * as mounts speak it (MSG_LOCK, LOCK_TEST, LOCK_DROP, LOCK_EPOCH of proto.h), on a real
 * cairn-meta (run under the sanitizers by check-san):
 *
 * - rules: conflicts between sessions and owners, F_GETLK answers (l_pid 0 for another
 *   session's lock, the holder's pid for the same session's), releases by owner and by
 *   session close, bad values answered -EINVAL, an unknown session -ENOENT, and a truncated
 *   request that closes only its own connection;
 * - restart: after kill -9 and a restart the new leadership has another epoch and a grace
 *   period: only reclaims are granted (others get -CAIRN_EGRACE), and once it is over the
 *   reclaimed lock excludes the other session. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "harness.h"
#include "harness_meta.h"
#include "harness_run.h"
#include "lockset.h"
#include "net.h"
#include "proto.h"
#include "rpc.h"

static struct h_cluster *C;
static char ROOT[256];
static struct rpc_conn *M;

#define INO 4242u

static void start(const char *tag)
{
    ck_assert_int_eq(h_cluster_init(C, ROOT, tag), 0);
    ck_assert_int_eq(h_meta_launch(C), 0);
    M = hm_connect(C->meta_addr);
}

static uint64_t session_open(const char *who)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_str(&b, who, strlen(who));
    wbuf_put_u64(&b, 0);
    struct rpc_reply rep;
    ck_assert_int_eq(hm_call(M, MSG_SESSION_OPEN, &b, &rep), 0);
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    uint64_t sid = rcur_u64(&r);
    ck_assert(!r.err && sid != 0);
    rpc_reply_free(&rep);
    return sid;
}

static void put_lock(struct wbuf *b, uint64_t sess, uint64_t owner, int kind, int type,
                     uint64_t start, uint64_t end)
{
    wbuf_put_u64(b, sess);
    wbuf_put_u64(b, INO);
    wbuf_put_u64(b, owner);
    wbuf_put_u8(b, (uint8_t)kind);
    wbuf_put_u8(b, (uint8_t)type);
    wbuf_put_u64(b, start);
    wbuf_put_u64(b, end);
}

/* MSG_LOCK: the status; *epoch (may be NULL) gets the leader's epoch on success. */
static int lock(uint64_t sess, uint64_t owner, int kind, int type, uint64_t start, uint64_t end,
                uint32_t pid, uint8_t flags, uint64_t *epoch)
{
    struct wbuf b;
    wbuf_init(&b);
    put_lock(&b, sess, owner, kind, type, start, end);
    wbuf_put_u32(&b, pid);
    wbuf_put_u8(&b, flags);
    struct rpc_reply rep;
    int rc = hm_call(M, MSG_LOCK, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    uint64_t e = rcur_u64(&r);
    ck_assert_int_eq(rcur_done(&r), 0);
    ck_assert(e != 0);
    if (epoch) *epoch = e;
    rpc_reply_free(&rep);
    return 0;
}

struct held {
    int type;
    uint64_t start, end, session;
    uint32_t pid;
};

static int test_lock(uint64_t sess, uint64_t owner, int type, uint64_t start, uint64_t end,
                     struct held *h)
{
    struct wbuf b;
    wbuf_init(&b);
    put_lock(&b, sess, owner, LS_POSIX, type, start, end);
    struct rpc_reply rep;
    int rc = hm_call(M, MSG_LOCK_TEST, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    h->type = rcur_u8(&r);
    h->start = rcur_u64(&r);
    h->end = rcur_u64(&r);
    h->pid = rcur_u32(&r);
    h->session = rcur_u64(&r);
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
    return 0;
}

static int drop(uint64_t sess, uint64_t owner, unsigned kinds)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, sess);
    wbuf_put_u64(&b, INO);
    wbuf_put_u64(&b, owner);
    wbuf_put_u8(&b, (uint8_t)kinds);
    return hm_call(M, MSG_LOCK_DROP, &b, NULL);
}

static int epoch_of(uint64_t sess, uint64_t *epoch, uint32_t *grace_ms)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, sess);
    struct rpc_reply rep;
    int rc = hm_call(M, MSG_LOCK_EPOCH, &b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    *epoch = rcur_u64(&r);
    *grace_ms = rcur_u32(&r);
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
    return 0;
}

START_TEST(rules)
{
    start("lkrules");
    uint64_t s1 = session_open("one"), s2 = session_open("two"), e1 = 0, e2 = 0;
    ck_assert_int_eq(lock(s1, 1, LS_POSIX, LS_WR, 0, 9, 111, 0, &e1), 0);
    ck_assert_int_eq(lock(s2, 1, LS_POSIX, LS_WR, 5, 5, 222, 0, NULL), -EAGAIN);
    ck_assert_int_eq(lock(s1, 2, LS_POSIX, LS_RD, 9, 9, 112, 0, NULL), -EAGAIN); /* owners too */
    ck_assert_int_eq(lock(s2, 1, LS_POSIX, LS_RD, 10, 20, 222, 0, &e2), 0);
    ck_assert_uint_eq(e1, e2);
    struct held h;
    ck_assert_int_eq(test_lock(s2, 1, LS_WR, 0, 100, &h), 0);
    ck_assert_int_eq(h.type, LS_WR);
    ck_assert_uint_eq(h.start, 0);
    ck_assert_uint_eq(h.end, 9);
    ck_assert_uint_eq(h.session, s1);
    ck_assert_uint_eq(h.pid, 0); /* another session's */
    ck_assert_int_eq(test_lock(s1, 2, LS_WR, 5, 5, &h), 0);
    ck_assert_uint_eq(h.pid, 111); /* the same session's */
    ck_assert_int_eq(test_lock(s2, 1, LS_WR, 30, LS_EOF, &h), 0);
    ck_assert_int_eq(h.type, LS_UN);
    /* bad values and an unknown session are answered, not dropped */
    ck_assert_int_eq(lock(s1, 1, 7, LS_WR, 0, 0, 1, 0, NULL), -EINVAL);
    ck_assert_int_eq(lock(s1, 1, LS_POSIX, 9, 0, 0, 1, 0, NULL), -EINVAL);
    ck_assert_int_eq(lock(s1, 1, LS_POSIX, LS_WR, 10, 5, 1, 0, NULL), -EINVAL);
    ck_assert_int_eq(lock(987654321, 1, LS_POSIX, LS_WR, 100, 100, 1, 0, NULL), -ENOENT);
    /* a truncated request closes its own connection only */
    struct rpc_conn *bad = hm_connect(C->meta_addr);
    uint8_t junk[5] = {1, 2, 3, 4, 5};
    struct rpc_reply rep;
    int rc = rpc_call(bad, MSG_LOCK, junk, sizeof(junk), NULL, 0, &rep);
    ck_assert_msg(rc == -ECONNRESET || rc == -EPIPE || rc == -EBADMSG || rc == -EIO,
                  "a truncated MSG_LOCK got %d", rc);
    rpc_conn_free(bad);
    /* releases: by owner, then with the session */
    ck_assert_int_eq(drop(s1, 1, 1u << LS_POSIX), 0);
    ck_assert_int_eq(lock(s2, 1, LS_POSIX, LS_WR, 5, 5, 222, 0, NULL), 0);
    ck_assert_int_eq(lock(s1, 3, LS_FLOCK, LS_WR, 0, 0, 111, 0, NULL), 0);
    ck_assert_int_eq(lock(s2, 4, LS_FLOCK, LS_RD, 0, 0, 222, 0, NULL), -EAGAIN);
    ck_assert_int_eq(drop(s1, 3, 1u << LS_POSIX), 0); /* the flock stays */
    ck_assert_int_eq(lock(s2, 4, LS_FLOCK, LS_RD, 0, 0, 222, 0, NULL), -EAGAIN);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, s1);
    ck_assert_int_eq(hm_call(M, MSG_SESSION_CLOSE, &b, NULL), 0);
    ck_assert_int_eq(lock(s2, 4, LS_FLOCK, LS_RD, 0, 0, 222, 0, NULL), 0);
    ck_assert_int_eq(lock(s1, 3, LS_FLOCK, LS_RD, 0, 0, 111, 0, NULL), -ENOENT); /* closed */
    uint64_t e;
    uint32_t grace;
    ck_assert_int_eq(epoch_of(s2, &e, &grace), 0);
    ck_assert_uint_eq(e, e1);
    ck_assert_uint_eq(grace, 0); /* a fresh file system had no session to wait for */
    rpc_conn_free(M);
    M = NULL;
    h_cluster_stop(C);
}
END_TEST

START_TEST(restart_grace)
{
    start("lkgrace");
    uint64_t s1 = session_open("one"), s2 = session_open("two"), e1 = 0, e2 = 0;
    ck_assert_int_eq(lock(s1, 1, LS_POSIX, LS_WR, 0, LS_EOF, 111, 0, &e1), 0);
    pid_t pid = C->meta_pid;
    C->meta_pid = 0;
    ck_assert_int_ge(h_kill_wait(pid, SIGKILL, 5000), 0);
    rpc_conn_free(M);
    ck_assert_int_eq(h_meta_launch(C), 0);
    M = hm_connect(C->meta_addr);
    uint64_t t0 = net_now_ms();
    uint64_t e;
    uint32_t grace;
    ck_assert_int_eq(epoch_of(s2, &e, &grace), 0);
    ck_assert_uint_ne(e, e1);
    ck_assert_uint_gt(grace, 0);
    ck_assert_uint_le(grace, LOCK_GRACE_MS);
    /* in the grace: only reclaims */
    ck_assert_int_eq(lock(s2, 1, LS_POSIX, LS_WR, 0, 0, 222, 0, NULL), -CAIRN_EGRACE);
    struct held h;
    ck_assert_int_eq(test_lock(s2, 1, LS_WR, 0, 0, &h), -CAIRN_EGRACE);
    ck_assert_int_eq(lock(s1, 1, LS_POSIX, LS_WR, 0, LS_EOF, 111, LOCK_F_RECLAIM, &e2), 0);
    ck_assert_uint_eq(e2, e);
    ck_assert_int_eq(drop(s2, 9, 3), 0); /* releases are served */
    /* after it: the reclaimed lock is there, the rest is served as usual */
    uint64_t waited = net_now_ms() - t0;
    if (waited < grace + 200) usleep((useconds_t)(grace + 200 - waited) * 1000);
    ck_assert_int_eq(lock(s2, 1, LS_POSIX, LS_WR, 0, 0, 222, 0, NULL), -EAGAIN);
    ck_assert_int_eq(test_lock(s2, 1, LS_WR, 0, 0, &h), 0);
    ck_assert_uint_eq(h.session, s1);
    ck_assert_int_eq(lock(s1, 1, LS_POSIX, LS_UN, 0, LS_EOF, 111, 0, NULL), 0);
    ck_assert_int_eq(lock(s2, 1, LS_POSIX, LS_WR, 0, 0, 222, 0, NULL), 0);
    rpc_conn_free(M);
    M = NULL;
    h_cluster_stop(C);
}
END_TEST

static void leftovers(void)
{
    h_cluster_leftovers(C);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    C = h_cluster_shared();
    if (!C || h_mkdtemp("meta-locks", ROOT, sizeof(ROOT)) != 0) {
        perror("test_meta_locks: setup");
        return 1;
    }
    h_cluster_stop_on_signal(C);
    const struct h_test tests[] = {{"rules", rules}, {"restart_grace", restart_grace}};
    int nf = h_run_cases("meta_locks", tests, sizeof(tests) / sizeof(tests[0]), 60, leftovers);
    h_cluster_leftovers(C);
    if (rmdir(ROOT) != 0)
        fprintf(stderr, "%s: %s\n", getenv("KEEP") ? "kept" : "logs of failed tests", ROOT);
    return nf ? 1 : 0;
}
