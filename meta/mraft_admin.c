/* mraft_admin.c - the Raft group as operators see it: MSG_META_STATUS (members, leader, term,
 * commit and applied index, each member's lag), MSG_META_ADD (a fresh replica gets the next id,
 * joins as a spare and is promoted to voter once it caught up), MSG_META_REMOVE, and
 * MSG_META_WHOAMI (how a fresh replica learns the id it was given). A change is answered when
 * it is done; one runs at a time. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mraft_int.h"
#include "net.h"

static uint8_t role_of(int raft_role)
{
    switch (raft_role) {
    case RAFT_VOTER:
        return META_ROLE_VOTER;
    case RAFT_STANDBY:
        return META_ROLE_STANDBY;
    default:
        return META_ROLE_SPARE;
    }
}

uint64_t mraft_max_member_id(struct meta *m)
{
    uint64_t max = 0;
    if (!m->raft || !m->raft->started) return 0;
    for (unsigned i = 0; i < m->raft->raft.configuration.n; i++)
        if (m->raft->raft.configuration.servers[i].id > max)
            max = m->raft->raft.configuration.servers[i].id;
    return max;
}

void mraft_status(struct meta *m, struct wbuf *out)
{
    struct mraft *r = m->raft;
    int on = r && r->started;
    int st = on ? raft_state(&r->raft) : RAFT_UNAVAILABLE;
    uint8_t state = st == RAFT_LEADER      ? META_ST_LEADER
                    : st == RAFT_CANDIDATE ? META_ST_CANDIDATE
                    : st == RAFT_FOLLOWER  ? META_ST_FOLLOWER
                                           : META_ST_UNAVAILABLE;
    raft_id lid = 0;
    const char *laddr = NULL;
    if (on) raft_leader(&r->raft, &lid, &laddr);
    const char *lc = mraft_leader_addr(m);
    wbuf_put_u64(out, r ? r->id : 0);
    wbuf_put_u8(out, state);
    wbuf_put_u64(out, lid);
    wbuf_put_str(out, lc, strlen(lc));
    wbuf_put_u64(out, on ? r->raft.current_term : 0);
    wbuf_put_u64(out, on ? r->raft.commit_index : 0);
    wbuf_put_u64(out, on ? raft_last_applied(&r->raft) : mstore_applied(m->store));
    wbuf_put_u64(out, on ? raft_last_index(&r->raft) : 0);
    const struct raft_configuration *conf = on ? &r->raft.configuration : NULL;
    unsigned n = conf ? conf->n : 0;
    wbuf_put_u32(out, n);
    for (unsigned i = 0; i < n; i++) {
        const struct raft_server *s = &conf->servers[i];
        char ca[CAIRN_ADDR_MAX + 1] = "";
        mraft_addr_to_client(s->address, ca, sizeof(ca));
        wbuf_put_u64(out, s->id);
        wbuf_put_str(out, ca, strlen(ca));
        wbuf_put_u8(out, role_of(s->role));
        uint8_t reachable = 1;
        uint64_t match = 0;
        if (st == RAFT_LEADER && r->raft.leader_state.progress) {
            const struct raft_progress *p = &r->raft.leader_state.progress[i];
            match = s->id == r->id ? raft_last_index(&r->raft) : p->match_index;
            reachable = s->id == r->id || p->recent_recv;
        }
        wbuf_put_u8(out, reachable);
        wbuf_put_u64(out, match);
    }
}

/* ---- changes -----------------------------------------------------------------------------------
 */

static void change_conn_gone(void *data)
{
    struct mraft_change *c = data;
    c->conn = NULL;
}

static void change_finish(struct mraft *r, int status)
{
    struct mraft_change *c = r->change;
    if (!c) return;
    if (c->conn) {
        struct wbuf b;
        wbuf_init(&b);
        if (status == 0 && c->adding) wbuf_put_u64(&b, c->id);
        evsrv_conn_set_data(c->conn, NULL, NULL);
        evsrv_reply(c->conn, &c->h, status, b.data, status ? 0 : b.len);
        wbuf_free(&b);
    }
    LOG_INFO("raft", "%s of replica %llu: %s", c->adding ? "adding" : "removing",
             (unsigned long long)c->id, status ? strerror(-status) : "done");
    r->change = NULL;
    free(c);
}

static int raft_to_errno(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return -CAIRN_ENOTLEADER;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return -ENOENT;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return -EEXIST;
    case RAFT_CANTCHANGE:
        return -EBUSY;
    case RAFT_NOCONNECTION:
        return -ETIMEDOUT;
    default:
        return -EIO;
    }
}

static void on_promoted(struct raft_change *req, int status)
{
    struct mraft_change *c = req->data;
    change_finish(c->r, raft_to_errno(status));
}

static void on_added(struct raft_change *req, int status)
{
    struct mraft_change *c = req->data;
    struct mraft *r = c->r;
    if (status) {
        change_finish(r, raft_to_errno(status));
        return;
    }
    LOG_INFO("raft", "replica %llu added as a spare: catching up before it votes",
             (unsigned long long)c->id);
    int rv = raft_assign(&r->raft, &c->req, c->id, RAFT_VOTER, on_promoted);
    if (rv) change_finish(r, raft_to_errno(rv));
    mraft_kick(r);
}

static void on_removed(struct raft_change *req, int status)
{
    struct mraft_change *c = req->data;
    change_finish(c->r, raft_to_errno(status));
}

/* Called after each libuv round: a change that takes too long is answered (it stays
 * pending in libraft; the operator can remove the replica). */
void mraft_change_tick(struct mraft *r)
{
    struct mraft_change *c = r->change;
    if (c && c->conn && net_now_ms() > c->deadline_ms) {
        evsrv_conn_set_data(c->conn, NULL, NULL);
        evsrv_reply(c->conn, &c->h, -ETIMEDOUT, NULL, 0);
        c->conn = NULL;
    }
}

static struct mraft_change *change_new(struct mraft *r, struct evsrv_conn *conn,
                                       const struct wire_hdr *h)
{
    struct mraft_change *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->r = r;
    c->conn = conn;
    c->h = *h;
    c->req.data = c;
    c->deadline_ms = net_now_ms() + MRAFT_ADD_TIMEOUT_MS;
    evsrv_conn_set_data(conn, c, change_conn_gone);
    return c;
}

static int do_add(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                  const char *addr)
{
    struct mraft *r = m->raft;
    char ra[CAIRN_ADDR_MAX + 1];
    if (mraft_addr_to_raft(addr, ra, sizeof(ra))) return -EINVAL;
    raft_id next = 1;
    for (unsigned i = 0; i < r->raft.configuration.n; i++) {
        const struct raft_server *s = &r->raft.configuration.servers[i];
        if (!strcmp(s->address, ra)) return -EEXIST;
        if (s->id >= next) next = s->id + 1;
    }
    if (r->change) return -EBUSY;
    /* never an id a removed member had: it could come back and be taken for the new one */
    uint64_t used = mstore_member_id_max(m->store);
    if (used >= next) next = used + 1;
    struct mop op = {.type = MOP_MEMBER_ID, .size = next};
    struct mop_result res = {0};
    int arc = meta_apply(m, &op, &res);
    if (arc) return arc == -EAGAIN ? -EBUSY : arc;
    struct mraft_change *c = change_new(r, conn, h);
    if (!c) return -ENOMEM;
    c->id = next;
    c->adding = 1;
    r->change = c;
    int rv = raft_add(&r->raft, &c->req, next, ra, on_added);
    if (rv) {
        evsrv_conn_set_data(conn, NULL, NULL);
        r->change = NULL;
        free(c);
        return raft_to_errno(rv);
    }
    LOG_INFO("raft", "adding replica %llu at %s (from %s)", (unsigned long long)next, addr,
             evsrv_conn_peer(conn));
    mraft_kick(r);
    return 0;
}

static int do_remove(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h, uint64_t id)
{
    struct mraft *r = m->raft;
    int known = 0;
    for (unsigned i = 0; i < r->raft.configuration.n; i++)
        known |= r->raft.configuration.servers[i].id == id;
    if (!known) return -ENOENT;
    if (r->change) return -EBUSY;
    struct mraft_change *c = change_new(r, conn, h);
    if (!c) return -ENOMEM;
    c->id = id;
    r->change = c;
    int rv = raft_remove(&r->raft, &c->req, id, on_removed);
    if (rv) {
        evsrv_conn_set_data(conn, NULL, NULL);
        r->change = NULL;
        free(c);
        return raft_to_errno(rv);
    }
    LOG_INFO("raft", "removing replica %llu (from %s)", (unsigned long long)id,
             evsrv_conn_peer(conn));
    mraft_kick(r);
    return 0;
}

int mraft_handle_admin(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                       struct rcur *rc)
{
    struct wbuf out;
    wbuf_init(&out);
    int status = 0;
    if (h->type == MSG_META_STATUS) {
        if (rcur_done(rc)) return -EBADMSG;
        mraft_status(m, &out);
    } else if (h->type == MSG_META_WHOAMI) {
        char addr[CAIRN_ADDR_MAX + 1];
        rcur_str(rc, addr, CAIRN_ADDR_MAX);
        if (rcur_done(rc)) return -EBADMSG;
        char ra[CAIRN_ADDR_MAX + 1];
        uint64_t id = 0;
        struct mraft *r = m->raft;
        if (r && r->started && !mraft_addr_to_raft(addr, ra, sizeof(ra)))
            for (unsigned i = 0; i < r->raft.configuration.n; i++)
                if (!strcmp(r->raft.configuration.servers[i].address, ra))
                    id = r->raft.configuration.servers[i].id;
        wbuf_put_u64(&out, id);
    } else {
        char addr[CAIRN_ADDR_MAX + 1] = "";
        uint64_t id = 0;
        if (h->type == MSG_META_ADD)
            rcur_str(rc, addr, CAIRN_ADDR_MAX);
        else
            id = rcur_u64(rc);
        if (rcur_done(rc)) return -EBADMSG;
        if (!mraft_ready(m)) {
            meta_reply_not_leader(m, conn, h);
            wbuf_free(&out);
            return 0;
        }
        status = h->type == MSG_META_ADD ? do_add(m, conn, h, addr) : do_remove(m, conn, h, id);
        if (status == 0) { /* answered when the change is done */
            wbuf_free(&out);
            return 0;
        }
    }
    if (!status && out.err) status = out.err;
    evsrv_reply(conn, h, status, status ? NULL : out.data, status ? 0 : out.len);
    wbuf_free(&out);
    return 0;
}
