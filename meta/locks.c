/* locks.c - locks across clients: the leader arbitrates every flock and POSIX record lock
 * (MSG_LOCK, LOCK_TEST, LOCK_DROP, LOCK_EPOCH; proto.h) in one lockset (lockset.h).
 *
 * Lock state is soft state in the leader's memory, never in the Raft log: a lock lives as long
 * as the mount that holds it, and a mount remembers its own locks. So:
 * - a session closed or expired loses its locks (locks_drop_session, from the session close
 *   and the expiry paths);
 * - a replica that stops leading forgets every lock; one that starts leading draws a new epoch
 *   and, when the store has sessions (mounts that may hold locks), opens a grace period of
 *   LOCK_GRACE_MS during which only reclaims (LOCK_F_RECLAIM) and releases are served; the
 *   mounts notice the new epoch (they poll MSG_LOCK_EPOCH every LOCK_POLL_MS while they hold
 *   locks) and reclaim what they hold. Everything else waits for the end of the grace
 *   (-CAIRN_EGRACE), so nobody is granted a lock a reclaim has yet to bring back.
 * Requests are reads for the dispatcher (server.c): they wait for no batch, are answered at
 * once, and only by a leader with a recent commit as proof of its leadership, so a deposed
 * leader cut off from the group grants nothing.
 *
 * Sessions: a lock is granted only to a session the store records (checked once per session
 * and remembered until it closes or the leadership ends), so an expired session's late
 * request cannot leave a lock nobody will ever release. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lockset.h"
#include "log.h"
#include "meta.h"
#include "net.h"

#define LIVE_MAX 4096 /* sessions remembered as checked */

static struct {
    struct lockset *set;
    uint64_t epoch;
    uint64_t grace_until_ms; /* net_now_ms() before which only reclaims are served */
    uint64_t live[LIVE_MAX]; /* sessions known to be recorded (0 = free) */
} L;

static uint64_t new_epoch(void)
{
    uint64_t e = 0;
    if (getrandom(&e, sizeof(e), 0) != (ssize_t)sizeof(e) || e == 0)
        e = net_now_ms() ^ ((uint64_t)getpid() << 32) ^ (L.epoch + 1);
    return e ? e : 1;
}

static int count_session(void *arg, uint64_t session, int64_t last_seen_s)
{
    (void)session;
    (void)last_seen_s;
    (*(uint64_t *)arg)++;
    return 0;
}

void locks_leader_changed(struct meta *m, int leading)
{
    if (L.set && ls_count(L.set))
        LOG_INFO("locks", "%s: forgetting %" PRIu64 " locks",
                 leading ? "a new leadership" : "no longer the leader", ls_count(L.set));
    if (L.set) ls_clear(L.set);
    memset(L.live, 0, sizeof(L.live));
    L.grace_until_ms = 0;
    if (!leading) return;
    if (!L.set) L.set = ls_new(); /* NULL: every request answers -ENOMEM */
    L.epoch = new_epoch();
    uint64_t n = 0;
    if (mstore_formatted(m->store)) mstore_session_list(m->store, count_session, &n);
    if (n > 0) {
        L.grace_until_ms = net_now_ms() + LOCK_GRACE_MS;
        LOG_INFO("locks", "lock grace period of %d ms for the reclaims of %" PRIu64 " sessions",
                 LOCK_GRACE_MS, n);
    }
}

static uint32_t live_slot(uint64_t session)
{
    return (uint32_t)((session * 0x9e3779b97f4a7c15ull) >> 40) % LIVE_MAX;
}

void locks_drop_session(uint64_t session)
{
    uint32_t i = live_slot(session);
    if (L.live[i] == session) L.live[i] = 0;
    int n = L.set ? ls_drop_session(L.set, session) : 0;
    if (n) LOG_INFO("locks", "session %" PRIu64 ": %d locks released with it", session, n);
}

struct find_ctx {
    uint64_t want;
    int found;
};

static int find_session(void *arg, uint64_t session, int64_t last_seen_s)
{
    (void)last_seen_s;
    struct find_ctx *x = arg;
    if (session == x->want) x->found = 1;
    return x->found;
}

/* Whether the store records session (remembered once checked). */
static int session_live(struct meta *m, uint64_t session)
{
    uint32_t i = live_slot(session);
    if (session == 0) return 0;
    if (L.live[i] == session) return 1;
    struct find_ctx x = {.want = session};
    if (mstore_session_list(m->store, find_session, &x) < 0 || !x.found) return 0;
    L.live[i] = session;
    return 1;
}

static int in_grace(void)
{
    return L.grace_until_ms && net_now_ms() < L.grace_until_ms;
}

/* Read the fields shared by LOCK and LOCK_TEST; 0 or -EINVAL (bad values, not a bad frame). */
static int get_lock(struct rcur *r, struct ls_lock *l)
{
    memset(l, 0, sizeof(*l));
    l->session = rcur_u64(r);
    l->ino = rcur_u64(r);
    l->owner = rcur_u64(r);
    l->kind = rcur_u8(r);
    l->type = rcur_u8(r);
    l->start = rcur_u64(r);
    l->end = rcur_u64(r);
    if (r->err) return 0;
    if (l->kind > LS_FLOCK || l->type > LS_WR) return -EINVAL;
    if (l->kind == LS_FLOCK) {
        l->start = 0;
        l->end = LS_EOF;
    }
    return l->start <= l->end ? 0 : -EINVAL;
}

static int do_lock(struct meta *m, struct rcur *r, struct wbuf *out, int *status)
{
    struct ls_lock l;
    int rc = get_lock(r, &l);
    l.pid = rcur_u32(r);
    uint8_t flags = rcur_u8(r);
    if (rcur_done(r)) return -EBADMSG;
    if (!rc && !L.set) rc = -ENOMEM;
    /* a release is always served; a reclaim during the grace period only */
    if (!rc && l.type != LS_UN && in_grace() && !(flags & LOCK_F_RECLAIM)) rc = -CAIRN_EGRACE;
    if (!rc && l.type != LS_UN && !session_live(m, l.session)) rc = -ENOENT;
    struct ls_lock other;
    if (!rc && ls_conflict(L.set, &l, &other)) {
        rc = -EAGAIN;
        if (flags & LOCK_F_RECLAIM)
            LOG_WARN("locks",
                     "inode %" PRIu64 ": a reclaim by session %" PRIu64
                     " conflicts with session %" PRIu64 "'s lock: refused",
                     l.ino, l.session, other.session);
    }
    if (!rc) rc = ls_set(L.set, &l);
    if (!rc) wbuf_put_u64(out, L.epoch);
    *status = rc;
    return 0;
}

static int do_lock_test(struct meta *m, struct rcur *r, struct wbuf *out, int *status)
{
    (void)m;
    struct ls_lock l;
    int rc = get_lock(r, &l);
    if (rcur_done(r)) return -EBADMSG;
    if (!rc && !L.set) rc = -ENOMEM;
    if (!rc && in_grace()) rc = -CAIRN_EGRACE; /* the answer may miss a lock to be reclaimed */
    if (!rc) {
        struct ls_lock o;
        if (l.type != LS_UN && ls_conflict(L.set, &l, &o)) {
            wbuf_put_u8(out, o.type);
            wbuf_put_u64(out, o.start);
            wbuf_put_u64(out, o.end);
            wbuf_put_u32(out, o.session == l.session ? o.pid : 0);
            wbuf_put_u64(out, o.session);
        } else {
            wbuf_put_u8(out, LS_UN);
            wbuf_put_u64(out, 0);
            wbuf_put_u64(out, 0);
            wbuf_put_u32(out, 0);
            wbuf_put_u64(out, 0);
        }
    }
    *status = rc;
    return 0;
}

static int do_lock_drop(struct rcur *r, int *status)
{
    uint64_t session = rcur_u64(r), ino = rcur_u64(r), owner = rcur_u64(r);
    uint8_t kinds = rcur_u8(r);
    if (rcur_done(r)) return -EBADMSG;
    if (L.set) ls_drop_owner(L.set, ino, session, owner, kinds);
    *status = 0;
    return 0;
}

static int do_lock_epoch(struct rcur *r, struct wbuf *out, int *status)
{
    (void)rcur_u64(r); /* session: for the logs of a future version */
    if (rcur_done(r)) return -EBADMSG;
    uint64_t now = net_now_ms();
    wbuf_put_u64(out, L.epoch);
    wbuf_put_u32(out, in_grace() ? (uint32_t)(L.grace_until_ms - now) : 0);
    *status = 0;
    return 0;
}

int meta_handle_locks(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r, struct wbuf *out)
{
    int status = 0, rc;
    switch (h->type) {
    case MSG_LOCK:
        rc = do_lock(m, r, out, &status);
        break;
    case MSG_LOCK_TEST:
        rc = do_lock_test(m, r, out, &status);
        break;
    case MSG_LOCK_DROP:
        rc = do_lock_drop(r, &status);
        break;
    case MSG_LOCK_EPOCH:
        rc = do_lock_epoch(r, out, &status);
        break;
    default:
        return -EBADMSG;
    }
    if (rc) return rc;
    if (out->err && !status) status = out->err;
    evsrv_reply(conn, h, status, status ? NULL : out->data, status ? 0 : out->len);
    return 0;
}

uint64_t locks_count(void)
{
    return L.set ? ls_count(L.set) : 0;
}
