/* cmd_meta.c - `cairn meta status`, `cairn meta add ADDR` and `cairn meta remove ID`: the Raft
 * group of meta replicas. status builds a view from MSG_META_STATUS answers (see cmd_meta.h);
 * add and remove go to the leader with MSG_META_ADD / MSG_META_REMOVE (cli_meta follows the
 * redirects). */
#include "cmd_meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_meta.h"

#define ADD_REPLY_MS 75000 /* the leader answers META_ADD within 60 s of catching up */
#define MEMBER_MIN 20      /* bytes of the smallest member entry */
/* A change asked while another one is still being committed is asked again, this long at most
 * (libraft takes one configuration change at a time). */
#define BUSY_WAIT_MS 15000
#define BUSY_PAUSE_US 200000
#define NO_LEADER_WHY "an election is running, or fewer than a majority of the replicas are up"

/* ---- the reply and the view -------------------------------------------------------------- */

int mt_decode(struct mt_status *s, const void *p, size_t len)
{
    struct rcur c;
    memset(s, 0, sizeof(*s));
    rcur_init(&c, p, len);
    s->self_id = rcur_u64(&c);
    s->self_state = rcur_u8(&c);
    s->leader_id = rcur_u64(&c);
    rcur_str(&c, s->leader_addr, CAIRN_ADDR_MAX);
    s->term = rcur_u64(&c);
    s->commit_index = rcur_u64(&c);
    s->applied_index = rcur_u64(&c);
    s->last_index = rcur_u64(&c);
    uint32_t n = rcur_u32(&c);
    if (c.err) return c.err;
    if ((uint64_t)n * MEMBER_MIN > c.left) return -EBADMSG;
    if (n) {
        s->members = calloc(n, sizeof(*s->members));
        if (!s->members) return -ENOMEM;
    }
    s->nmembers = n;
    for (uint32_t i = 0; i < n && !c.err; i++) {
        struct mt_member *mb = &s->members[i];
        mb->id = rcur_u64(&c);
        rcur_str(&c, mb->addr, CAIRN_ADDR_MAX);
        mb->role = rcur_u8(&c);
        mb->reachable = rcur_u8(&c);
        mb->match_index = rcur_u64(&c);
    }
    int rc = rcur_done(&c);
    if (rc) mt_free(s);
    return rc;
}

void mt_free(struct mt_status *s)
{
    free(s->members);
    memset(s, 0, sizeof(*s));
}

int mt_view_init(struct mt_view *v, const char *meta, uint32_t cap)
{
    memset(v, 0, sizeof(*v));
    v->meta = meta;
    v->leader = -1;
    v->replicas = calloc(cap ? cap : 1, sizeof(*v->replicas));
    if (!v->replicas) return -ENOMEM;
    v->cap = cap;
    return 0;
}

void mt_view_free(struct mt_view *v)
{
    for (uint32_t i = 0; i < v->n; i++)
        mt_free(&v->replicas[i].st);
    free(v->replicas);
    memset(v, 0, sizeof(*v));
    v->leader = -1;
}

struct mt_replica *mt_view_slot(struct mt_view *v, const char *addr)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (strcmp(v->replicas[i].addr, addr) == 0) return &v->replicas[i];
    if (v->n == v->cap) return NULL;
    struct mt_replica *r = &v->replicas[v->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "%s", addr);
    return r;
}

int mt_view_find_leader(struct mt_view *v)
{
    v->leader = -1;
    for (uint32_t i = 0; i < v->n; i++) {
        const struct mt_replica *r = &v->replicas[i];
        if (r->rc || r->st.self_state != META_ST_LEADER) continue;
        if (v->leader < 0 || r->st.term > v->replicas[v->leader].st.term) v->leader = (int)i;
    }
    return v->leader;
}

const char *mt_view_named_leader(const struct mt_view *v)
{
    const struct mt_replica *best = NULL;
    for (uint32_t i = 0; i < v->n; i++) {
        const struct mt_replica *r = &v->replicas[i];
        if (r->rc || !r->st.leader_addr[0]) continue;
        if (!best || r->st.term > best->st.term) best = r;
    }
    if (!best) return NULL;
    for (uint32_t i = 0; i < v->n; i++)
        if (strcmp(v->replicas[i].addr, best->st.leader_addr) == 0) return NULL;
    return best->st.leader_addr;
}

uint64_t mt_lag(const struct mt_status *leader, const struct mt_member *mb)
{
    if (mb->id == leader->self_id || mb->match_index >= leader->last_index) return 0;
    return leader->last_index - mb->match_index;
}

const char *mt_replica_state(const struct mt_replica *r)
{
    if (r->rc == 0) return cli_meta_state_name(r->st.self_state);
    return r->down ? "down" : "error";
}

/* ---- printing ---------------------------------------------------------------------------- */

static void print_replicas(FILE *out, const struct mt_view *v)
{
    fprintf(out, "%-21s  %4s  %-11s  %6s  %10s  %10s  %10s  %s\n", "REPLICA", "ID", "STATE", "TERM",
            "COMMIT", "APPLIED", "LAST", "LEADER");
    for (uint32_t i = 0; i < v->n; i++) {
        const struct mt_replica *r = &v->replicas[i];
        if (r->rc) {
            fprintf(out, "%-21s  %4s  %s: %s\n", r->addr, "-", mt_replica_state(r), r->why);
            continue;
        }
        const struct mt_status *s = &r->st;
        char id[24] = "-", leader[CAIRN_ADDR_MAX + 32] = "-";
        if (s->self_id) snprintf(id, sizeof(id), "%" PRIu64, s->self_id);
        if (s->leader_id || s->leader_addr[0])
            snprintf(leader, sizeof(leader), "%" PRIu64 " %s", s->leader_id,
                     s->leader_addr[0] ? s->leader_addr : "?");
        fprintf(out,
                "%-21s  %4s  %-11s  %6" PRIu64 "  %10" PRIu64 "  %10" PRIu64 "  %10" PRIu64
                "  %s\n",
                r->addr, id, mt_replica_state(r), s->term, s->commit_index, s->applied_index,
                s->last_index, leader);
    }
}

void mt_print(FILE *out, const struct mt_view *v)
{
    if (v->leader < 0) {
        uint32_t down = 0;
        for (uint32_t i = 0; i < v->n; i++)
            down += (uint32_t)v->replicas[i].down;
        fprintf(out, "meta group %s: no leader (%s)\n", v->meta,
                down == v->n ? "no replica answers" : NO_LEADER_WHY);
        print_replicas(out, v);
        return;
    }
    const struct mt_replica *lr = &v->replicas[v->leader];
    const struct mt_status *l = &lr->st;
    fprintf(out, "meta group %s: leader %" PRIu64 " at %s, term %" PRIu64 "\n", v->meta, l->self_id,
            lr->addr, l->term);
    fprintf(out,
            "commit index %" PRIu64 ", applied index %" PRIu64 ", last index %" PRIu64 ", %u "
            "member%s\n",
            l->commit_index, l->applied_index, l->last_index, l->nmembers,
            l->nmembers == 1 ? "" : "s");
    fprintf(out, "%4s  %-21s  %-7s  %-6s  %-9s  %10s  %10s\n", "ID", "ADDRESS", "ROLE", "LEADER",
            "REACHABLE", "MATCH", "LAG");
    for (uint32_t i = 0; i < l->nmembers; i++) {
        const struct mt_member *mb = &l->members[i];
        int is_leader = mb->id == l->self_id;
        fprintf(out, "%4" PRIu64 "  %-21s  %-7s  %-6s  %-9s  %10" PRIu64 "  %10" PRIu64 "\n",
                mb->id, mb->addr, cli_meta_role_name(mb->role), is_leader ? "*" : "",
                is_leader || mb->reachable ? "yes" : "no", mb->match_index, mt_lag(l, mb));
    }
    fputc('\n', out);
    print_replicas(out, v);
}

void mt_json(struct json *j, const struct mt_view *v)
{
    const struct mt_replica *lr = v->leader >= 0 ? &v->replicas[v->leader] : NULL;
    const struct mt_status *l = lr ? &lr->st : NULL;
    json_obj_begin(j, NULL);
    json_str(j, "meta", v->meta);
    json_u64(j, "leader_id", l ? l->self_id : 0);
    json_str(j, "leader_addr", lr ? lr->addr : "");
    if (l) {
        json_u64(j, "term", l->term);
        json_u64(j, "commit_index", l->commit_index);
        json_u64(j, "applied_index", l->applied_index);
        json_u64(j, "last_index", l->last_index);
    } else {
        json_null(j, "term");
        json_null(j, "commit_index");
        json_null(j, "applied_index");
        json_null(j, "last_index");
    }
    json_arr_begin(j, "members");
    for (uint32_t i = 0; l && i < l->nmembers; i++) {
        const struct mt_member *mb = &l->members[i];
        int is_leader = mb->id == l->self_id;
        json_obj_begin(j, NULL);
        json_u64(j, "id", mb->id);
        json_str(j, "addr", mb->addr);
        json_str(j, "role", cli_meta_role_name(mb->role));
        json_bool(j, "leader", is_leader);
        json_bool(j, "reachable", is_leader || mb->reachable);
        json_u64(j, "match_index", mb->match_index);
        json_u64(j, "lag", mt_lag(l, mb));
        json_obj_end(j);
    }
    json_arr_end(j);
    json_arr_begin(j, "replicas");
    for (uint32_t i = 0; i < v->n; i++) {
        const struct mt_replica *r = &v->replicas[i];
        json_obj_begin(j, NULL);
        json_str(j, "addr", r->addr);
        json_str(j, "state", mt_replica_state(r));
        json_bool(j, "reachable", !r->down);
        if (r->rc) {
            json_str(j, "error", r->why);
        } else {
            json_u64(j, "id", r->st.self_id);
            json_u64(j, "term", r->st.term);
            json_u64(j, "leader_id", r->st.leader_id);
            json_str(j, "leader_addr", r->st.leader_addr);
            json_u64(j, "commit_index", r->st.commit_index);
            json_u64(j, "applied_index", r->st.applied_index);
            json_u64(j, "last_index", r->st.last_index);
        }
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

/* ---- the commands ------------------------------------------------------------------------ */

/* Ask the replica at r->addr about itself into r. */
static void ask_replica(struct cli_meta *m, struct mt_replica *r)
{
    struct rpc_reply rep;
    r->rc = cli_meta_call_at(m, r->addr, MSG_META_STATUS, NULL, &rep);
    if (r->rc) {
        r->down = 1;
    } else if (rep.status < 0) {
        r->rc = rep.status;
    } else {
        r->rc = mt_decode(&r->st, rep.payload.data, rep.payload.len);
        if (r->rc) snprintf(r->why, sizeof(r->why), "%s", cli_strerror(r->rc));
    }
    if (r->rc && !r->why[0]) snprintf(r->why, sizeof(r->why), "%s", cli_meta_why(m));
    rpc_reply_free(&rep);
}

int mt_view_gather(struct cli_meta *m, struct mt_view *v)
{
    int n = cli_meta_naddrs(m);
    if (mt_view_init(v, cli_meta_list(m), (uint32_t)n + 1)) return -ENOMEM;
    for (int i = 0; i < n; i++) {
        struct mt_replica *r = mt_view_slot(v, cli_meta_addr(m, i));
        if (r) ask_replica(m, r);
    }
    if (mt_view_find_leader(v) < 0) {
        const char *named = mt_view_named_leader(v);
        char addr[CAIRN_ADDR_MAX + 1];
        struct mt_replica *r = NULL;
        if (named && cli_addr_valid(named)) {
            snprintf(addr, sizeof(addr), "%s", named); /* the slot below may move it */
            r = mt_view_slot(v, addr);
        }
        if (r) {
            ask_replica(m, r);
            mt_view_find_leader(v);
        }
    }
    return 0;
}

static int meta_status(const struct cli *c, struct cli_meta *m)
{
    struct mt_view v;
    if (mt_view_gather(m, &v)) {
        cli_err("meta status: out of memory");
        return CLI_FAIL;
    }
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        mt_json(&j, &v);
        json_finish(&j);
    } else {
        mt_print(stdout, &v);
    }
    int rc = CLI_OK;
    if (v.leader < 0) {
        uint32_t down = 0;
        for (uint32_t i = 0; i < v.n; i++)
            down += (uint32_t)v.replicas[i].down;
        if (down == v.n)
            cli_err("meta status: cannot reach any meta service replica at %s", v.meta);
        else
            cli_err("meta status: no leader among the meta service replicas at %s (%s)", v.meta,
                    NO_LEADER_WHY);
        rc = CLI_FAIL;
    }
    mt_view_free(&v);
    return rc;
}

/* The id the group gave addr (MSG_META_WHOAMI), or 0 when it has none or cannot be asked. */
static uint64_t whoami(struct cli_meta *m, const char *addr)
{
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_str(&req, addr, strlen(addr));
    struct rpc_reply rep;
    uint64_t id = 0;
    if (cli_meta_call(m, MSG_META_WHOAMI, &req, &rep) == 0) {
        struct rcur cur;
        rcur_init(&cur, rep.payload.data, rep.payload.len);
        id = rcur_u64(&cur);
        if (rcur_done(&cur)) id = 0;
        rpc_reply_free(&rep);
    }
    wbuf_free(&req);
    return id;
}

static void print_added(const struct cli *c, const char *addr, uint64_t id)
{
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_u64(&j, "id", id);
        json_str(&j, "addr", addr);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        printf("%" PRIu64 "\n", id);
    }
}

static int meta_add(const struct cli *c, struct cli_meta *m, const char *addr)
{
    /* a replica that does not run would only be noticed by the leader a minute later */
    struct cli_meta *fresh = cli_meta_get(addr);
    struct rpc_reply rep;
    int rc = fresh ? cli_meta_call_at(fresh, addr, MSG_META_STATUS, NULL, &rep) : -ENOMEM;
    if (rc) {
        cli_err("meta add: no cairn-meta answers at %s (%s): start it first, with an empty "
                "data_dir and join = the group's addresses (cairn-meta(8))",
                addr, fresh ? cli_meta_why(fresh) : strerror(ENOMEM));
        return CLI_FAIL;
    }
    rc = rep.status;
    rpc_reply_free(&rep);
    if (rc < 0) {
        cli_err("meta add: the cairn-meta at %s: %s", addr, cli_meta_why(fresh));
        return CLI_FAIL;
    }

    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_str(&req, addr, strlen(addr));
    for (int waited = 0;; waited += BUSY_PAUSE_US / 1000) {
        rc = cli_meta_call_wait(m, MSG_META_ADD, &req, &rep, ADD_REPLY_MS);
        if (rc != -EBUSY || waited >= BUSY_WAIT_MS) break;
        usleep(BUSY_PAUSE_US); /* the change before it is still being committed */
    }
    wbuf_free(&req);
    uint64_t id = 0;
    if (rc == 0) {
        struct rcur cur;
        rcur_init(&cur, rep.payload.data, rep.payload.len);
        id = rcur_u64(&cur);
        rc = rcur_done(&cur);
        rpc_reply_free(&rep);
        if (rc) {
            cli_err("meta add: %s: %s", addr, cli_strerror(rc));
            return CLI_FAIL;
        }
        print_added(c, addr, id);
        return CLI_OK;
    }
    switch (rc) {
    case -EEXIST: {
        int resent = cli_meta_resent(m); /* before whoami's call resets it */
        id = whoami(m, addr);
        if (resent && id) { /* our first attempt added it; its reply was lost */
            print_added(c, addr, id);
            return CLI_OK;
        }
        if (id)
            cli_err("meta add: %s is already member %" PRIu64 " of the group", addr, id);
        else
            cli_err("meta add: %s is already a member of the group", addr);
        break;
    }
    case -ETIMEDOUT:
        id = whoami(m, addr);
        if (id)
            cli_err("meta add: %s did not catch up within 60 s; it stays a non-voting member "
                    "(id %" PRIu64 "): run cairn meta add %s again, or cairn meta remove %" PRIu64,
                    addr, id, addr, id);
        else
            cli_err("meta add: %s: %s", addr, cli_meta_why(m));
        break;
    case -EBUSY:
        cli_err("meta add: %s: another membership change is still running after %d s; try again "
                "when it is done",
                addr, BUSY_WAIT_MS / 1000);
        break;
    default:
        cli_err("meta add: %s: %s", addr, cli_meta_why(m));
    }
    return CLI_FAIL;
}

static int meta_remove(const struct cli *c, struct cli_meta *m, uint64_t id)
{
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_u64(&req, id);
    struct rpc_reply rep;
    int rc;
    for (int waited = 0;; waited += BUSY_PAUSE_US / 1000) {
        rc = cli_meta_call(m, MSG_META_REMOVE, &req, &rep);
        if (rc != -EBUSY || waited >= BUSY_WAIT_MS) break;
        usleep(BUSY_PAUSE_US); /* the change before it is still being committed */
    }
    wbuf_free(&req);
    if (rc == -ENOENT && cli_meta_resent(m)) rc = 0; /* our first attempt removed it */
    if (rc == 0) {
        rpc_reply_free(&rep);
        if (c->json) {
            struct json j;
            json_init(&j, stdout);
            json_obj_begin(&j, NULL);
            json_u64(&j, "removed", id);
            json_obj_end(&j);
            json_finish(&j);
        } else {
            printf("removed member %" PRIu64 "\n", id);
        }
        return CLI_OK;
    }
    if (rc == -ENOENT)
        cli_err("meta remove: the group at %s has no member %" PRIu64 " (see cairn meta status)",
                cli_meta_list(m), id);
    else if (rc == -EBUSY)
        cli_err("meta remove: %" PRIu64 ": another membership change is still running after %d s; "
                "try again when it is done",
                id, BUSY_WAIT_MS / 1000);
    else
        cli_err("meta remove: %" PRIu64 ": %s", id, cli_meta_why(m));
    return CLI_FAIL;
}

/* "3" -> 3; -EINVAL unless 1 to 20 decimal digits of a nonzero 64-bit number. */
static int parse_member_id(const char *s, uint64_t *id)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n) return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v == 0) return -EINVAL;
    *id = v;
    return 0;
}

#define META_USAGE "usage: cairn meta status | add ADDR | remove ID  [--json] [--meta ADDR,...]"

int cmd_meta(const struct cli *c)
{
    const char *sub = c->argc > 0 ? c->argv[0] : "";
    uint64_t id = 0;
    if (strcmp(sub, "status") == 0) {
        if (c->argc != 1) goto usage;
    } else if (strcmp(sub, "add") == 0) {
        if (c->argc != 2) goto usage;
        if (!cli_addr_valid(c->argv[1])) {
            cli_err("meta add: '%s' is not an address HOST:PORT (the new replica's listen)",
                    c->argv[1]);
            return CLI_USAGE;
        }
    } else if (strcmp(sub, "remove") == 0) {
        if (c->argc != 2) goto usage;
        if (parse_member_id(c->argv[1], &id)) {
            cli_err("meta remove: '%s' is not a member id (a number, as cairn meta status "
                    "prints it)",
                    c->argv[1]);
            return CLI_USAGE;
        }
    } else {
        goto usage;
    }
    char addrs[CLI_ADDRS_LEN];
    cli_meta_addr_default(c, addrs, sizeof(addrs));
    struct cli_meta *m = cli_meta_get(addrs);
    if (!m) {
        cli_err("meta: bad meta service address list '%s'", addrs);
        return CLI_USAGE;
    }
    if (sub[0] == 's') return meta_status(c, m);
    if (sub[0] == 'a') return meta_add(c, m, c->argv[1]);
    return meta_remove(c, m, id);
usage:
    cli_err(META_USAGE);
    return CLI_USAGE;
}
