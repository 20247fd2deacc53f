/* mraft.c - this replica in the Raft group: starting (bootstrap from `peers`, or waiting for
 * `cairn meta add` with `join`), driving libuv (libraft's loop) from the daemon's libevent
 * loop, following leadership (a new leader applies a barrier before it serves: everything of
 * earlier terms is then in its store), and handing the open group commit to the log. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mraft_int.h"
#include "net.h"
#include "rpc.h"

/* ---- addresses ---------------------------------------------------------------------------- */

static int addr_shift(const char *in, int delta, char *out, size_t len)
{
    const char *colon = strrchr(in, ':');
    if (!colon || colon == in) return -EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port + delta < 1 || port + delta > 65535) return -EINVAL;
    int n = snprintf(out, len, "%.*s:%ld", (int)(colon - in), in, port + delta);
    return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

int mraft_addr_to_raft(const char *client, char *out, size_t len)
{
    return addr_shift(client, 1, out, len);
}

int mraft_addr_to_client(const char *raft, char *out, size_t len)
{
    return addr_shift(raft, -1, out, len);
}

/* Split a comma-separated list into at most max addresses; -EINVAL on a bad one. */
int mraft_split_list(const char *list, char out[][CAIRN_ADDR_MAX + 1], int max)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l && (*p == ' ')) {
            p++;
            l--;
        }
        while (l && p[l - 1] == ' ')
            l--;
        if (l) {
            if (n == max || l > CAIRN_ADDR_MAX || !memchr(p, ':', l)) return -EINVAL;
            memcpy(out[n], p, l);
            out[n][l] = '\0';
            n++;
        }
        if (!e) break;
        p = e + 1;
    }
    return n;
}

/* ---- libuv inside libevent ----------------------------------------------------------------- */

static void watch(struct mraft *r);

static void pump(struct mraft *r)
{
    if (r->in_pump) return;
    r->in_pump = 1;
    uv_run(&r->loop, UV_RUN_NOWAIT);
    r->in_pump = 0;
    int t = uv_backend_timeout(&r->loop);
    if (t >= 0) {
        struct timeval tv = {t / 1000, (t % 1000) * 1000};
        evtimer_add(r->uv_timer, &tv);
    } else {
        evtimer_del(r->uv_timer);
    }
    if (r->started) watch(r);
}

static void on_uv(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

void mraft_kick(struct mraft *r)
{
    if (r && r->kick_ev) event_active(r->kick_ev, EV_TIMEOUT, 0);
}

/* ---- leadership ------------------------------------------------------------------------------ */

static void on_barrier(struct raft_barrier *req, int status)
{
    struct mraft *r = req->data;
    r->barrier_out = 0;
    if (status != 0 || raft_state(&r->raft) != RAFT_LEADER) return;
    r->ready = 1;
    LOG_INFO("raft", "leader of term %llu, serving", (unsigned long long)r->lead_term);
    meta_leader_changed(r->m, 1);
    mraft_kick(r);
}

/* Compare what libraft says now with what we saw last and act on a change. */
static void watch(struct mraft *r)
{
    int leading = raft_state(&r->raft) == RAFT_LEADER;
    if (leading && (!r->leading || r->lead_term != r->raft.current_term)) {
        if (r->ready) {
            r->ready = 0;
            meta_leader_changed(r->m, 0);
        }
        r->leading = 1;
        r->lead_term = r->raft.current_term;
        LOG_INFO("raft", "elected leader (term %llu): applying what earlier terms left",
                 (unsigned long long)r->lead_term);
        r->barrier.data = r;
        if (!r->barrier_out && raft_barrier(&r->raft, &r->barrier, on_barrier) == 0)
            r->barrier_out = 1;
        mraft_kick(r);
    } else if (!leading && r->leading) {
        r->leading = 0;
        int was_ready = r->ready;
        r->ready = 0;
        LOG_INFO("raft", "no longer the leader (term %llu)",
                 (unsigned long long)r->raft.current_term);
        if (was_ready) meta_leader_changed(r->m, 0);
    }
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&r->raft, &lid, &laddr);
    char client[CAIRN_ADDR_MAX + 1] = "";
    if (lid && laddr) mraft_addr_to_client(laddr, client, sizeof(client));
    if (!client[0] && !r->no_leader_since_ms) r->no_leader_since_ms = net_now_ms();
    if (client[0]) r->no_leader_since_ms = 0;
    if (strcmp(client, r->leader_client)) {
        memcpy(r->leader_client, client, sizeof(client));
        if (client[0]) LOG_INFO("raft", "leader is %llu at %s", (unsigned long long)lid, client);
        /* requests parked while no leader was known can now be redirected */
        event_active(r->resume_ev, EV_TIMEOUT, 0);
    }
    mraft_watch_leader(r, leading ? "" : client);
    mraft_change_tick(r);
}

int mraft_ready(const struct meta *m)
{
    return m->raft && m->raft->ready && raft_state(&m->raft->raft) == RAFT_LEADER;
}

int mraft_should_wait(struct meta *m)
{
    struct mraft *r = m->raft;
    if (!r || !r->started) return 0;
    if (r->leading) return 1; /* a few ms: its barrier */
    if (r->leader_client[0] || !r->no_leader_since_ms) return 0;
    if (net_now_ms() - r->no_leader_since_ms > 3ull * (uint64_t)m->cfg.election_timeout_ms)
        return 0;
    mraft_park_retry(m);
    return 1;
}

void mraft_resume_soon(struct meta *m)
{
    if (m->raft && m->raft->resume_ev) event_active(m->raft->resume_ev, EV_TIMEOUT, 0);
}

void mraft_park_retry(struct meta *m)
{
    struct timeval tv = {0, 100 * 1000};
    if (m->raft && m->raft->park_timer) evtimer_add(m->raft->park_timer, &tv);
}

void mraft_info(struct meta *m, struct mraft_info *out)
{
    memset(out, 0, sizeof(*out));
    struct mraft *r = m->raft;
    if (!r || !r->started) return;
    int st = raft_state(&r->raft);
    out->started = 1;
    out->state = st == RAFT_LEADER      ? META_ST_LEADER
                 : st == RAFT_CANDIDATE ? META_ST_CANDIDATE
                 : st == RAFT_FOLLOWER  ? META_ST_FOLLOWER
                                        : META_ST_UNAVAILABLE;
    out->id = r->id;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&r->raft, &lid, &laddr);
    out->leader = lid;
    out->term = r->raft.current_term;
    out->commit = r->raft.commit_index;
    out->applied = raft_last_applied(&r->raft);
    out->last_index = raft_last_index(&r->raft);
    const struct raft_configuration *conf = &r->raft.configuration;
    for (unsigned i = 0; i < conf->n && out->nmembers < MRAFT_INFO_MEMBERS; i++) {
        struct mraft_member_info *mi = &out->member[out->nmembers++];
        mi->id = conf->servers[i].id;
        if (st == RAFT_LEADER && r->raft.leader_state.progress) {
            const struct raft_progress *p = &r->raft.leader_state.progress[i];
            mi->match = mi->id == r->id ? out->last_index : p->match_index;
            mi->reachable = mi->id == r->id || p->recent_recv;
        }
    }
}

const char *mraft_leader_addr(struct meta *m)
{
    if (!m->raft || !m->raft->started) return "";
    if (raft_state(&m->raft->raft) == RAFT_LEADER) return m->raft->self;
    return m->raft->leader_client;
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mraft *r = arg;
    evsrv_resume(r->m->srv);
}

/* ---- reads ------------------------------------------------------------------------------------
 */

static void on_read_barrier(struct raft_barrier *req, int status)
{
    struct mraft *r = req->data;
    r->read_barrier_out = 0;
    if (status == 0 && r->read_barrier_ms > r->m->proof_ms) r->m->proof_ms = r->read_barrier_ms;
    mraft_resume_soon(r->m);
}

int mraft_read_proof(struct meta *m)
{
    struct mraft *r = m->raft;
    uint64_t now = net_now_ms();
    if (now - m->proof_ms < (uint64_t)m->cfg.election_timeout_ms / 2) return 1;
    if (!r->read_barrier_out) {
        r->read_barrier.data = r;
        if (raft_barrier(&r->raft, &r->read_barrier, on_read_barrier) == 0) {
            r->read_barrier_out = 1;
            r->read_barrier_ms = now;
            mraft_kick(r);
        }
    }
    return 0;
}

/* ---- the log ----------------------------------------------------------------------------------
 */

static void on_transferred(struct raft_transfer *req)
{
    struct mraft *r = req->data;
    free(req);
    LOG_INFO("raft", "leadership hand-over finished: %s",
             raft_state(&r->raft) == RAFT_LEADER ? "still the leader (no other voter took it)"
                                                 : "another replica leads");
}

/* This replica could not write its log (a full or failing disk): it must not go on leading,
 * since it cannot store what it would acknowledge. libraft 0.15 keeps a leader whose append
 * failed in place, so leadership is handed to another voter. */
static void step_down_for_disk(struct mraft *r, int status)
{
    if (raft_state(&r->raft) != RAFT_LEADER || r->raft.transfer) return;
    LOG_ERR("raft", "cannot write the Raft log (%s: %s): handing leadership to another replica",
            raft_strerror(status), raft_errmsg(&r->raft));
    struct raft_transfer *t = calloc(1, sizeof(*t));
    if (!t) return;
    t->data = r;
    if (raft_transfer(&r->raft, t, 0, on_transferred)) free(t);
    mraft_kick(r);
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct mraft *r = req->data;
    struct meta *m = r->m;
    raft_index index = req->index;
    free(req);
    if (status == 0) return; /* committed: mraft_fsm.c's apply already committed the batch */
    if (status == RAFT_IOERR || status == RAFT_NOSPACE || status == RAFT_CORRUPT)
        step_down_for_disk(r, status);
    if (m->inflight && index == m->spec_index) {
        LOG_WARN("raft", "batch at index %llu not committed (%s): dropped, clients retry",
                 (unsigned long long)index, raft_strerror(status));
        meta_batch_lost(m);
    }
    mraft_kick(r);
}

int mraft_submit(struct meta *m)
{
    struct mraft *r = m->raft;
    if (!mraft_ready(m)) return -EAGAIN;
    /* libraft's disk format needs entries whose length is a multiple of 8 (a shorter one is
     * read back misaligned: the segment then fails its checksum on load); the padding after
     * the last record is never read */
    size_t len = (4 + m->batch_log.len + 7) & ~(size_t)7;
    struct raft_buffer buf = {.base = raft_calloc(1, len), .len = len};
    if (!buf.base) return -ENOMEM;
    le_put32(buf.base, m->batch_nrec);
    memcpy((uint8_t *)buf.base + 4, m->batch_log.data, m->batch_log.len);
    struct raft_apply *req = calloc(1, sizeof(*req));
    if (!req) {
        raft_free(buf.base);
        return -ENOMEM;
    }
    req->data = r;
    int rc = raft_apply(&r->raft, req, &buf, 1, on_applied);
    if (rc) {
        free(req);
        raft_free(buf.base);
        LOG_WARN("raft", "cannot append a batch: %s", raft_strerror(rc));
        return rc == RAFT_NOTLEADER || rc == RAFT_LEADERSHIPLOST ? -EAGAIN : -EIO;
    }
    m->spec_index = req->index;
    mraft_kick(r);
    return 0;
}

/* ---- start ------------------------------------------------------------------------------------
 */

static int id_file(struct mraft *r, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/id", r->dir);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static uint64_t read_id(struct mraft *r)
{
    char p[CONF_STR_MAX + 16];
    if (id_file(r, p, sizeof(p))) return 0;
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return v;
}

static int write_id(struct mraft *r, uint64_t id)
{
    char p[CONF_STR_MAX + 16], tmp[CONF_STR_MAX + 24];
    if (id_file(r, p, sizeof(p))) return -ENAMETOOLONG;
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (!f) return -errno;
    fprintf(f, "%llu\n", (unsigned long long)id);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    fclose(f);
    if (!ok || rename(tmp, p)) return -EIO;
    return 0;
}

static void damaged(struct mraft *r, const char *what, const char *detail)
{
    LOG_ERR("raft", "%s in %s: %s", what, r->dir, detail);
    fprintf(stderr,
            "cairn-meta: %s in %s: %s\n"
            "This replica cannot start. The other replicas carry on without it. To rebuild it:\n"
            "  cairn meta remove %llu        (on the group)\n"
            "  wipe %s and start cairn-meta again with join=<the other replicas>\n"
            "  cairn meta add %s            (it then catches up from a snapshot)\n",
            what, r->dir, detail, (unsigned long long)r->id, r->m->cfg.data_dir, r->self);
}

static int init_raft(struct mraft *r, const char (*peers)[CAIRN_ADDR_MAX + 1], int npeers)
{
    struct meta_cfg *c = &r->m->cfg;
    /* libraft says little when its port is taken: try it first */
    uint16_t port = 0;
    int lfd = net_listen(r->raft_addr, &port);
    if (lfd < 0) {
        LOG_ERR("raft", "cannot listen on the Raft address %s (the client port + 1): %s",
                r->raft_addr, strerror(-lfd));
        fprintf(stderr,
                "cairn-meta: cannot listen on the Raft address %s (port + 1 of listen): %s\n",
                r->raft_addr, strerror(-lfd));
        return -EADDRINUSE;
    }
    close(lfd);
    int rc = raft_uv_init(&r->io, &r->loop, r->dir, &r->transport);
    if (rc) {
        damaged(r, "the Raft log cannot be opened", r->io.errmsg);
        return -EIO;
    }
    raft_uv_set_snapshot_compression(&r->io, false); /* our snapshots are zstd already */
    raft_uv_set_connect_retry_delay(&r->io, 200);
    /* a damaged log is reported, not silently moved aside (libraft would rename a corrupt
     * segment and start without its entries) */
    raft_uv_set_auto_recovery(&r->io, false);
    mraft_fsm_init(r, &r->raft);
    rc = raft_init(&r->raft, &r->io, &r->fsm, r->id, r->raft_addr);
    if (rc) {
        LOG_ERR("raft", "init: %s", raft_errmsg(&r->raft));
        return -EIO;
    }
    r->inited = 1;
    r->raft.data = r;
    raft_set_election_timeout(&r->raft, (unsigned)c->election_timeout_ms);
    raft_set_heartbeat_timeout(&r->raft, (unsigned)c->heartbeat_ms);
    raft_set_pre_vote(&r->raft, true);
    raft_set_snapshot_threshold(&r->raft, (unsigned)c->snapshot_entries);
    raft_set_snapshot_trailing(&r->raft, (unsigned)c->snapshot_trailing);
    raft_set_install_snapshot_timeout(&r->raft, 5000); /* resent when dropped (busy) */
    char md1[sizeof(r->dir) + 16], md2[sizeof(r->dir) + 16];
    snprintf(md1, sizeof(md1), "%s/metadata1", r->dir);
    snprintf(md2, sizeof(md2), "%s/metadata2", r->dir);
    int fresh = access(md1, F_OK) != 0 && access(md2, F_OK) != 0;
    /* bootstrap only a log that has never been written: libraft would write its first
     * configuration entry over an existing log */
    if (npeers > 0 && fresh) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (int i = 0; i < npeers && !rc; i++) {
            char ra[CAIRN_ADDR_MAX + 1];
            rc = mraft_addr_to_raft(peers[i], ra, sizeof(ra));
            if (!rc) rc = raft_configuration_add(&conf, (raft_id)(i + 1), ra, RAFT_VOTER);
        }
        if (!rc) rc = raft_bootstrap(&r->raft, &conf);
        raft_configuration_close(&conf);
        if (rc && rc != RAFT_CANTBOOTSTRAP) {
            damaged(r, "the Raft log cannot be bootstrapped", raft_errmsg(&r->raft));
            return -EIO;
        }
        if (rc == 0) LOG_INFO("raft", "bootstrapped a group of %d", npeers);
    }
    rc = raft_start(&r->raft);
    if (rc) {
        const char *why = raft_errmsg(&r->raft);
        if (rc == RAFT_CORRUPT || rc == RAFT_MALFORMED || rc == RAFT_IOERR) {
            damaged(r, "the Raft log is damaged", why[0] ? why : raft_strerror(rc));
        } else {
            LOG_ERR("raft", "cannot start: %s (%s)", raft_strerror(rc), why);
            fprintf(stderr, "cairn-meta: cannot start Raft: %s (%s)\n", raft_strerror(rc), why);
        }
        return -EIO;
    }
    uint64_t applied = mstore_applied(r->m->store);
    if (applied > raft_last_index(&r->raft)) {
        char why[160];
        snprintf(why, sizeof(why),
                 "the store holds entries up to %llu but the Raft log ends at %llu (log lost "
                 "or damaged)",
                 (unsigned long long)applied, (unsigned long long)raft_last_index(&r->raft));
        damaged(r, "the Raft log is behind the store", why);
        return -EIO;
    }
    r->started = 1;
    LOG_INFO("raft", "replica %llu started (raft address %s, last index %llu)",
             (unsigned long long)r->id, r->raft_addr,
             (unsigned long long)raft_last_index(&r->raft));
    mraft_kick(r);
    return 0;
}

/* A replica waiting to be added: ask the replicas in `join` which id `cairn meta add` gave
 * our address. */
static void on_join(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mraft *r = arg;
    char list[MRAFT_MAX_PEERS][CAIRN_ADDR_MAX + 1];
    int n = mraft_split_list(r->m->cfg.join, list, MRAFT_MAX_PEERS);
    struct rpc_opts o = {.connect_timeout_ms = 300, .call_timeout_ms = 1000, .connect_attempts = 1};
    uint64_t id = 0;
    for (int i = 0; i < n && !id; i++) {
        struct rpc_conn *c = rpc_conn_new(list[i], &o);
        if (!c) continue;
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_str(&b, r->self, strlen(r->self));
        struct rpc_reply rep;
        if (rpc_call(c, MSG_META_WHOAMI, b.data, b.len, NULL, 0, &rep) == 0) {
            struct rcur cur;
            rcur_init(&cur, rep.payload.data, rep.payload.len);
            uint64_t v = rcur_u64(&cur);
            if (!cur.err) id = v;
            rpc_reply_free(&rep);
        }
        wbuf_free(&b);
        rpc_conn_free(c);
    }
    if (!id) {
        struct timeval tv = {0, 500 * 1000};
        evtimer_add(r->join_ev, &tv);
        return;
    }
    r->id = id;
    LOG_INFO("raft", "added to the group as replica %llu: catching up", (unsigned long long)id);
    if (write_id(r, id) || init_raft(r, NULL, 0)) {
        LOG_ERR("raft", "cannot start after joining: stopping");
        event_base_loopbreak(r->m->base);
    }
}

int mraft_start(struct meta *m)
{
    struct mraft *r = calloc(1, sizeof(*r));
    if (!r) return -ENOMEM;
    r->m = m;
    m->raft = r;
    struct meta_cfg *c = &m->cfg;
    snprintf(r->dir, sizeof(r->dir), "%s/raft", c->data_dir);
    if (mkdir(r->dir, 0700) && errno != EEXIST) return -errno;
    if (strlen(c->listen) > CAIRN_ADDR_MAX) return -EINVAL;
    memcpy(r->self, c->listen, strlen(c->listen) + 1);
    if (mraft_addr_to_raft(c->listen, r->raft_addr, sizeof(r->raft_addr))) {
        fprintf(stderr, "cairn-meta: listen %s: cannot derive the Raft port (port + 1)\n",
                c->listen);
        return -EINVAL;
    }
    char peers[MRAFT_MAX_PEERS][CAIRN_ADDR_MAX + 1];
    int npeers = mraft_split_list(c->peers, peers, MRAFT_MAX_PEERS);
    if (npeers < 0) {
        fprintf(stderr, "cairn-meta: bad peers list '%s' (HOST:PORT,...)\n", c->peers);
        return -EINVAL;
    }
    if (npeers == 0 && !c->join[0]) { /* a group of one: ourselves */
        memcpy(peers[0], r->self, sizeof(peers[0]));
        npeers = 1;
    }
    int self_at = -1;
    for (int i = 0; i < npeers; i++)
        if (!strcmp(peers[i], c->listen)) self_at = i;
    uint64_t stored = read_id(r);
    if (self_at >= 0) {
        r->id = (raft_id)(self_at + 1);
        if (stored && stored != r->id && c->join[0] == '\0') {
            /* added later under another id: the stored one is the truth */
            r->id = stored;
            self_at = -1;
        }
    } else {
        r->id = stored;
    }
    if (uv_loop_init(&r->loop)) return -ENOMEM;
    if (raft_uv_tcp_init(&r->transport, &r->loop)) return -ENOMEM;
    r->uv_ev = event_new(m->base, uv_backend_fd(&r->loop), EV_READ | EV_PERSIST, on_uv, r);
    r->uv_timer = evtimer_new(m->base, on_uv, r);
    r->kick_ev = event_new(m->base, -1, 0, on_uv, r);
    r->join_ev = evtimer_new(m->base, on_join, r);
    r->resume_ev = event_new(m->base, -1, 0, on_resume, r);
    r->park_timer = evtimer_new(m->base, on_resume, r);
    r->no_leader_since_ms = net_now_ms();
    if (!r->park_timer || !r->uv_ev || !r->uv_timer || !r->kick_ev || !r->join_ev ||
        !r->resume_ev || event_add(r->uv_ev, NULL))
        return -ENOMEM;
    event_priority_set(r->resume_ev, 1);
    if (r->id == 0) {
        if (!c->join[0]) {
            fprintf(stderr,
                    "cairn-meta: %s is not in peers (%s) and has no id yet: give it join=<the "
                    "group's replicas> and run `cairn meta add %s`\n",
                    c->listen, c->peers, c->listen);
            return -EINVAL;
        }
        LOG_INFO("raft", "waiting to be added to the group (cairn meta add %s)", r->self);
        event_active(r->join_ev, EV_TIMEOUT, 0);
        return 0;
    }
    if (!stored && write_id(r, r->id)) return -EIO;
    return init_raft(r, self_at >= 0 ? peers : NULL, self_at >= 0 ? npeers : 0);
}

static void on_raft_closed(struct raft *raft)
{
    struct mraft *r = raft->data;
    r->inited = 0;
}

void mraft_stop(struct meta *m)
{
    struct mraft *r = m->raft;
    if (!r) return;
    r->started = 0;
    mraft_watch_stop(r);
    if (r->inited) {
        r->raft.data = r;
        raft_close(&r->raft, on_raft_closed);
        for (int i = 0; i < 2000 && r->inited; i++)
            uv_run(&r->loop, UV_RUN_ONCE);
        raft_uv_close(&r->io);
    }
    raft_uv_tcp_close(&r->transport);
    for (int i = 0; i < 2000 && uv_run(&r->loop, UV_RUN_NOWAIT); i++)
        ;
    if (uv_loop_close(&r->loop)) LOG_WARN("raft", "libuv handles left open at exit");
    if (r->uv_ev) event_free(r->uv_ev);
    if (r->uv_timer) event_free(r->uv_timer);
    if (r->kick_ev) event_free(r->kick_ev);
    if (r->join_ev) event_free(r->join_ev);
    if (r->resume_ev) event_free(r->resume_ev);
    if (r->park_timer) event_free(r->park_timer);
    free(r->change);
    free(r);
    m->raft = NULL;
}
