/* locks.c - the mount's side of locks across clients (prefix lk_): every flock and POSIX
 * lock is asked of the meta leader (MSG_LOCK..., proto.h), and the locks granted are kept
 * here too, in a lockset (lockset.h) tagged with the open file they came through, for three
 * jobs:
 * - releases at close without a round trip per close: FLUSH (a process closed a descriptor:
 *   its POSIX locks on the file go) and RELEASE (an open file description's last close: the
 *   OFD and flock locks taken through it go) ask meta only when this mount holds such locks;
 * - reclaims after a failover: while it holds locks a thread asks the leader's epoch every
 *   LOCK_POLL_MS; a new epoch means a new leader that knows no lock, and every lock held here
 *   is sent again with LOCK_F_RECLAIM within its grace period (LOCK_GRACE_MS);
 * - whether a file has locks here, so that its handles keep FLUSH (fs_ops.c).
 *
 * Blocking waits (F_SETLKW, flock without LOCK_NB) poll the leader: an attempt, then a pause
 * doubling from LK_WAIT_MIN_MS up to LK_WAIT_MAX_MS, until granted or interrupted (a signal:
 * FUSE's INTERRUPT, -EINTR). Polling rather than a parked request keeps the leader stateless
 * about waiters and survives a failover unchanged; a release is seen within LK_WAIT_MAX_MS.
 *
 * Locking: mu guards the set and the epoch; rw is held shared by every request that changes
 * locks at meta and exclusively by a reclaim, so a lock released while a reclaim runs cannot
 * be brought back by it. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "lockset.h"
#include "log.h"
#include "net.h"

#define LK_WAIT_MIN_MS 2
#define LK_WAIT_MAX_MS 50
#define LK_GRACE_RETRY_MS 100

struct lk_table {
    struct mc *meta;
    pthread_mutex_t mu;
    pthread_rwlock_t rw;
    struct lockset *set; /* the locks this mount holds (session = the one granted under) */
    uint64_t epoch;      /* the leader epoch the set was granted or reclaimed under */
    pthread_t poller;
    int running, stopping;
    pthread_cond_t cv;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Send b (freed here) as a request of type whose reply is the leader's lock epoch (u64). */
static int call_epoch(struct lk_table *t, uint16_t type, struct wbuf *b, uint64_t *epoch)
{
    struct rpc_reply rep;
    int rc = mc_call(t->meta, type, b, &rep);
    wbuf_free(b);
    if (rc) return rc;
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    *epoch = rcur_u64(&c);
    rc = c.err ? -EIO : 0;
    rpc_reply_free(&rep);
    return rc;
}

/* MSG_LOCK of l (l->session filled in); *epoch gets the leader's. 0 or -errno (-EAGAIN:
 * conflict, -CAIRN_EGRACE: wait for the grace to end). */
static int send_lock(struct lk_table *t, const struct ls_lock *l, uint8_t flags, uint64_t *epoch)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, l->session);
    wbuf_put_u64(&b, l->ino);
    wbuf_put_u64(&b, l->owner);
    wbuf_put_u8(&b, l->kind);
    wbuf_put_u8(&b, l->type);
    wbuf_put_u64(&b, l->start);
    wbuf_put_u64(&b, l->end);
    wbuf_put_u32(&b, l->pid);
    wbuf_put_u8(&b, flags);
    return call_epoch(t, MSG_LOCK, &b, epoch);
}

static int send_drop(struct lk_table *t, uint64_t session, uint64_t ino, uint64_t owner,
                     unsigned kinds)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, session);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, owner);
    wbuf_put_u8(&b, (uint8_t)kinds);
    struct rpc_reply rep;
    int rc = mc_call(t->meta, MSG_LOCK_DROP, &b, &rep);
    wbuf_free(&b);
    if (!rc) rpc_reply_free(&rep);
    return rc;
}

/* ---- reclaims ---------------------------------------------------------------------------- */

struct snap {
    struct ls_lock *v;
    size_t n, cap;
};

static int snap_add(void *arg, const struct ls_lock *l)
{
    struct snap *s = arg;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct ls_lock *v = realloc(s->v, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *l;
    return 0;
}

/* Send every lock held here again to a leader of epoch `seen` (rw held exclusively). */
static void reclaim_all(struct lk_table *t, uint64_t seen)
{
    struct snap s = {0};
    pthread_mutex_lock(&t->mu);
    int rc = ls_each(t->set, 0, snap_add, &s);
    pthread_mutex_unlock(&t->mu);
    if (rc) {
        LOG_ERR("locks", "cannot list the locks to reclaim: %s", strerror(-rc));
        free(s.v);
        return;
    }
    uint64_t session = mc_session(t->meta), epoch = seen;
    int ok = 0, lost = 0;
    for (size_t i = 0; i < s.n; i++) {
        struct ls_lock *l = &s.v[i];
        rc = l->session == session ? send_lock(t, l, LOCK_F_RECLAIM, &epoch) : -ENOENT;
        if (rc == 0) {
            ok++;
            continue;
        }
        lost++;
        LOG_ERR("locks",
                "inode %" PRIu64 ": lost a %s lock of owner %" PRIx64 " [%" PRIu64 ", %" PRIu64
                "] at the change of meta leader: %s",
                l->ino, l->kind == LS_FLOCK ? "flock" : "POSIX", l->owner, l->start, l->end,
                rc == -ENOENT ? "the session changed" : strerror(-rc));
        struct ls_lock un = *l;
        un.type = LS_UN;
        pthread_mutex_lock(&t->mu);
        ls_set(t->set, &un); /* removing never needs memory */
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_lock(&t->mu);
    t->epoch = epoch;
    pthread_mutex_unlock(&t->mu);
    LOG_INFO("locks", "reclaimed %d locks from the new meta leader (%d lost)", ok, lost);
    free(s.v);
}

/* The leader's epoch (MSG_LOCK_EPOCH): 0 or -errno. */
static int ask_epoch(struct lk_table *t, uint64_t *epoch)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, mc_session(t->meta));
    return call_epoch(t, MSG_LOCK_EPOCH, &b, epoch);
}

static void *poll_main(void *arg)
{
    struct lk_table *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        struct timespec ts;
        net_abstime_in(LOCK_POLL_MS, &ts);
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->stopping || ls_count(t->set) == 0) continue;
        uint64_t mine = t->epoch;
        pthread_mutex_unlock(&t->mu);
        uint64_t now = 0;
        if (ask_epoch(t, &now) == 0 && now != mine) {
            pthread_rwlock_wrlock(&t->rw);
            LOG_INFO("locks", "a new meta leader (lock epoch %" PRIx64 "): reclaiming locks", now);
            reclaim_all(t, now);
            pthread_rwlock_unlock(&t->rw);
        }
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- the table ----------------------------------------------------------------------------- */

struct lk_table *lk_new(struct mc *meta)
{
    struct lk_table *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->meta = meta;
    t->set = ls_new();
    if (!t->set) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_rwlock_init(&t->rw, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->poller, NULL, poll_main, t) == 0) t->running = 1;
    return t;
}

void lk_free(struct lk_table *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (t->running) pthread_join(t->poller, NULL);
    /* what is still held goes with the session's close */
    ls_free(t->set);
    pthread_cond_destroy(&t->cv);
    pthread_rwlock_destroy(&t->rw);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* One attempt: ask meta, and keep what it granted. rw held shared by the caller. */
static int try_once(struct lk_table *t, struct ls_lock *l)
{
    l->session = mc_session(t->meta);
    uint64_t epoch = 0;
    int rc = send_lock(t, l, 0, &epoch);
    if (rc) return rc;
    pthread_mutex_lock(&t->mu);
    if (ls_count(t->set) == 0) t->epoch = epoch; /* else a changed epoch is the poller's */
    rc = ls_set(t->set, l);
    if (!rc && l->type != LS_UN) ls_retag(t->set, l->ino, l->session, l->owner, l->tag);
    pthread_mutex_unlock(&t->mu);
    if (rc) { /* granted at meta but not recorded here: give it back */
        LOG_ERR("locks", "inode %" PRIu64 ": cannot record a lock: %s", l->ino, strerror(-rc));
        send_drop(t, l->session, l->ino, l->owner, 1u << l->kind);
        pthread_mutex_lock(&t->mu);
        ls_drop_owner(t->set, l->ino, l->session, l->owner, 1u << l->kind);
        pthread_mutex_unlock(&t->mu);
        rc = -ENOLCK;
    }
    return rc;
}

int lk_set(struct lk_table *t, const struct ls_lock *want, int wait, lk_intr_fn intr, void *arg)
{
    struct ls_lock l = *want;
    int pause = LK_WAIT_MIN_MS;
    uint64_t grace_deadline = 0;
    for (;;) {
        pthread_rwlock_rdlock(&t->rw);
        int rc = try_once(t, &l);
        pthread_rwlock_unlock(&t->rw);
        if (rc == -CAIRN_EGRACE) {
            /* a new leader waits for the reclaims of the locks held before it; a
             * non-blocking request waits too (the answer is not known yet), not forever */
            uint64_t now = net_now_ms();
            if (!grace_deadline)
                grace_deadline = now + LOCK_GRACE_MS + (uint64_t)t->meta->io_timeout_ms;
            if (now >= grace_deadline) return -ENOLCK;
            if (intr && intr(arg)) return -EINTR;
            sleep_ms(LK_GRACE_RETRY_MS);
            continue;
        }
        if (rc != -EAGAIN || !wait) return rc;
        if (intr && intr(arg)) return -EINTR;
        sleep_ms(pause);
        pause = pause * 2 < LK_WAIT_MAX_MS ? pause * 2 : LK_WAIT_MAX_MS;
    }
}

int lk_test(struct lk_table *t, const struct ls_lock *want, struct ls_lock *out)
{
    uint64_t deadline = net_now_ms() + LOCK_GRACE_MS + (uint64_t)t->meta->io_timeout_ms;
    for (;;) {
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, mc_session(t->meta));
        wbuf_put_u64(&b, want->ino);
        wbuf_put_u64(&b, want->owner);
        wbuf_put_u8(&b, want->kind);
        wbuf_put_u8(&b, want->type);
        wbuf_put_u64(&b, want->start);
        wbuf_put_u64(&b, want->end);
        struct rpc_reply rep;
        int rc = mc_call(t->meta, MSG_LOCK_TEST, &b, &rep);
        wbuf_free(&b);
        if (rc == -CAIRN_EGRACE && net_now_ms() < deadline) {
            sleep_ms(LK_GRACE_RETRY_MS);
            continue;
        }
        if (rc) return rc == -CAIRN_EGRACE ? -ENOLCK : rc;
        struct rcur c;
        rcur_init(&c, rep.payload.data, rep.payload.len);
        memset(out, 0, sizeof(*out));
        out->type = rcur_u8(&c);
        out->start = rcur_u64(&c);
        out->end = rcur_u64(&c);
        out->pid = rcur_u32(&c);
        out->session = rcur_u64(&c);
        out->ino = want->ino;
        out->kind = want->kind;
        rc = c.err || out->type > LS_WR ? -EIO : out->type != LS_UN;
        rpc_reply_free(&rep);
        return rc;
    }
}

/* Release at meta, then here, the locks of owner on ino of the given kinds (rw shared). */
static void drop_owner(struct lk_table *t, uint64_t session, uint64_t ino, uint64_t owner,
                       unsigned kinds)
{
    int rc = send_drop(t, session, ino, owner, kinds);
    if (rc)
        LOG_WARN("locks", "inode %" PRIu64 ": releasing the locks of owner %" PRIx64 ": %s", ino,
                 owner, strerror(-rc));
    pthread_mutex_lock(&t->mu);
    ls_drop_owner(t->set, ino, session, owner, kinds);
    pthread_mutex_unlock(&t->mu);
}

struct owner_find {
    uint64_t owner, tag;
    unsigned kinds;
    int found;
    /* owners with locks tagged tag (RELEASE) */
    uint64_t sess[8], own[8];
    int n, more;
};

static int find_owner(void *arg, const struct ls_lock *l)
{
    struct owner_find *f = arg;
    if (l->owner == f->owner && (f->kinds & (1u << l->kind))) f->found = 1;
    return 0;
}

void lk_flush(struct lk_table *t, uint64_t ino, uint64_t owner)
{
    struct owner_find f = {.owner = owner, .kinds = 1u << LS_POSIX};
    pthread_mutex_lock(&t->mu);
    ls_each(t->set, ino, find_owner, &f);
    pthread_mutex_unlock(&t->mu);
    if (!f.found) return; /* the common close: no round trip */
    pthread_rwlock_rdlock(&t->rw);
    drop_owner(t, mc_session(t->meta), ino, owner, 1u << LS_POSIX);
    pthread_rwlock_unlock(&t->rw);
}

static int find_tagged(void *arg, const struct ls_lock *l)
{
    struct owner_find *f = arg;
    if (l->tag != f->tag && !(f->owner && l->owner == f->owner && l->kind == LS_FLOCK)) return 0;
    for (int i = 0; i < f->n; i++)
        if (f->own[i] == l->owner && f->sess[i] == l->session) return 0;
    if (f->n == 8) {
        f->more = 1;
        return 1;
    }
    f->sess[f->n] = l->session;
    f->own[f->n++] = l->owner;
    return 0;
}

void lk_release(struct lk_table *t, uint64_t ino, uint64_t tag, uint64_t flock_owner)
{
    for (int round = 0; round < 64; round++) {
        struct owner_find f = {.tag = tag, .owner = flock_owner};
        pthread_mutex_lock(&t->mu);
        ls_each(t->set, ino, find_tagged, &f);
        pthread_mutex_unlock(&t->mu);
        if (f.n == 0) return;
        pthread_rwlock_rdlock(&t->rw);
        for (int i = 0; i < f.n; i++)
            drop_owner(t, f.sess[i], ino, f.own[i], (1u << LS_POSIX) | (1u << LS_FLOCK));
        pthread_rwlock_unlock(&t->rw);
        if (!f.more) return;
    }
}

static int any_lock(void *arg, const struct ls_lock *l)
{
    (void)l;
    *(int *)arg = 1;
    return 1;
}

int lk_ino_locked(struct lk_table *t, uint64_t ino)
{
    int found = 0;
    pthread_mutex_lock(&t->mu);
    ls_each(t->set, ino, any_lock, &found);
    pthread_mutex_unlock(&t->mu);
    return found;
}
