/* harness_raft.c - a Raft group of cairn-meta replicas for the integration tests (see
 * harness_raft.h): processes, namespaces and partitions, status, membership through the cairn
 * command, store dumps, the leader-following client and the runner. Only the runner's test
 * cases call Check; everything else returns codes. */
#include "harness_raft.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

struct hraft_group *hraft_g;
char hraft_root[256];

uint64_t hraft_now_ms(void)
{
    return net_now_ms();
}

void hraft_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- addresses and processes ----------------------------------------------------------------- */

/* Whether 127.0.0.1:port can be bound now. */
static int port_free(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A port P with P and P+1 free, not used by another replica of g. */
static uint16_t pair_port(struct hraft_group *g)
{
    for (int tries = 0; tries < 200; tries++) {
        uint16_t p = h_free_port();
        if (!p || p == 65535) continue;
        int taken = 0;
        for (int i = 0; i < g->n; i++)
            taken |= g->r[i].port == p || g->r[i].port + 1 == p || g->r[i].port == p + 1;
        if (!taken && port_free((uint16_t)(p + 1))) return p;
    }
    return 0;
}

/* Fill slot i's address and folders (the namespace address when the group has namespaces). */
static int slot_init(struct hraft_group *g, int i)
{
    struct hraft_replica *r = &g->r[i];
    memset(r, 0, sizeof(*r));
    if (g->netns) {
        snprintf(r->host, sizeof(r->host), "%.15s.%u", g->net, (unsigned)(i + 1) % 100u);
        snprintf(r->ns, sizeof(r->ns), "%s-m%d", g->nsp, i + 1);
        r->port = 9520;
    } else {
        snprintf(r->host, sizeof(r->host), "127.0.0.1");
        r->port = pair_port(g);
        if (!r->port) return -EADDRINUSE;
    }
    char base[sizeof(g->c.dir)];
    memcpy(base, g->c.dir, sizeof(base));
    char host[sizeof(r->host)];
    memcpy(host, r->host, sizeof(host));
    snprintf(r->addr, sizeof(r->addr), "%s:%u", host, r->port);
    snprintf(r->dir, sizeof(r->dir), "%s/meta%d", base, i + 1);
    snprintf(r->log, sizeof(r->log), "%s/meta%d.log", base, i + 1);
    if (mkdir(r->dir, 0755) && errno != EEXIST) return -errno;
    return 0;
}

/* Wait until addr accepts a connection; give up early when pid is gone. */
static int wait_addr(const char *addr, pid_t pid, int timeout_ms)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    while (net_now_ms() < end) {
        int fd = net_connect(addr, 200);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (pid > 0 && !h_alive(pid)) return -ESRCH;
        hraft_sleep_ms(20);
    }
    return -ETIMEDOUT;
}

/* Append each word of opts ("a=1 b=2") to argv as "--a=1". */
static void add_opts(char **argv, int *n, int max, char store[][160], const char *opts)
{
    const char *p = opts ? opts : "";
    int k = 0;
    while (*p && *n < max && k < 24) {
        while (*p == ' ')
            p++;
        size_t l = strcspn(p, " ");
        if (!l) break;
        snprintf(store[k], sizeof(store[k]), "--%.*s", (int)l, p);
        argv[(*n)++] = store[k++];
        p += l;
    }
}

/* ---- network namespaces ---------------------------------------------------------------------- */

static int ns_replica_up(struct hraft_group *g, int i)
{
    const char *ns = g->r[i].ns;
    return h_sh(30,
                "set -e; ip netns add %s; ip -n %s link set lo up; "
                "ip -n %s link add eth0 type veth peer name m%d netns %s-hub; "
                "ip -n %s-hub link set m%d master br0; ip -n %s-hub link set m%d up; "
                "ip -n %s addr add %s/24 dev eth0; ip -n %s link set eth0 up",
                ns, ns, ns, i + 1, g->nsp, g->nsp, i + 1, g->nsp, i + 1, ns, g->r[i].host, ns) == 0
               ? 0
               : -EOPNOTSUPP;
}

static void ns_down(struct hraft_group *g)
{
    if (!g->netns) return;
    h_sh(60,
         "for n in $(ip netns list | awk '{print $1}' | grep -E '^%s-(hub|m[0-9]+)$'); do "
         "ip netns del $n; done; ip link del %s 2>/dev/null; true",
         g->nsp, g->root_link);
    g->netns = 0;
}

static int ns_hub_up(struct hraft_group *g, char *why, size_t wlen)
{
    snprintf(g->nsp, sizeof(g->nsp), "crt%d", (int)getpid());
    snprintf(g->root_link, sizeof(g->root_link), "crt%d", (int)getpid());
    int y;
    for (y = 20 + (int)(getpid() % 200); y < 250; y++)
        if (h_sh(10, "! ip -4 route show table all | grep -q '10\\.213\\.%d\\.'", y) == 0) break;
    if (y >= 250) {
        snprintf(why, wlen, "no free 10.213.X.0/24 for the namespaces");
        return -EOPNOTSUPP;
    }
    snprintf(g->net, sizeof(g->net), "10.213.%u", (unsigned)y & 0xffu);
    g->netns = 1; /* from here on ns_down cleans up */
    char out[600];
    int rc = h_run(30, out, sizeof(out),
                   "set -e; ip netns add %s-hub; ip -n %s-hub link set lo up; "
                   "ip -n %s-hub link add br0 type bridge; ip -n %s-hub link set br0 up; "
                   "ip link add %s type veth peer name r netns %s-hub; "
                   "ip -n %s-hub link set r master br0; ip -n %s-hub link set r up; "
                   "ip addr add %s.254/24 dev %s; ip link set %s up",
                   g->nsp, g->nsp, g->nsp, g->nsp, g->root_link, g->nsp, g->nsp, g->nsp, g->net,
                   g->root_link, g->root_link);
    if (rc != 0) {
        snprintf(why, wlen, "network namespaces with a bridge: %s", out[0] ? out : "failed");
        ns_down(g);
        return -EOPNOTSUPP;
    }
    return 0;
}

int hraft_netns_probe(char *why, size_t wlen)
{
    if (geteuid() != 0) {
        snprintf(why, wlen, "network namespaces need root");
        return -EOPNOTSUPP;
    }
    char out[600];
    if (h_run(10, out, sizeof(out), "ip -V") != 0) {
        snprintf(why, wlen, "no ip command (iproute2): %s", out);
        return -EOPNOTSUPP;
    }
    struct hraft_group *g = calloc(1, sizeof(*g));
    if (!g) return -ENOMEM;
    int rc = ns_hub_up(g, why, wlen);
    if (!rc) {
        snprintf(g->r[0].ns, sizeof(g->r[0].ns), "%s-m1", g->nsp);
        snprintf(g->r[0].host, sizeof(g->r[0].host), "%s.1", g->net);
        rc = ns_replica_up(g, 0);
        if (rc) snprintf(why, wlen, "a veth pair into a network namespace could not be made");
        if (!rc && h_run(10, out, sizeof(out), "ip -n %s route add blackhole %s.2/32", g->r[0].ns,
                         g->net) != 0) {
            snprintf(why, wlen, "blackhole routes: %s", out);
            rc = -EOPNOTSUPP;
        }
    }
    ns_down(g);
    free(g);
    return rc;
}

int hraft_partition(struct hraft_group *g, int i)
{
    if (!g->netns) return -EOPNOTSUPP;
    if (g->cut) return -EBUSY;
    for (int j = 0; j < g->n; j++) {
        if (j == i) continue;
        if (h_sh(10, "ip -n %s route add blackhole %s/32 && ip -n %s route add blackhole %s/32",
                 g->r[i].ns, g->r[j].host, g->r[j].ns, g->r[i].host) != 0)
            return -EIO;
    }
    g->cut = i + 1;
    return 0;
}

int hraft_heal(struct hraft_group *g)
{
    if (!g->cut) return 0;
    int i = g->cut - 1, rc = 0;
    for (int j = 0; j < g->n; j++) {
        if (j == i) continue;
        if (h_sh(10, "ip -n %s route del blackhole %s/32; ip -n %s route del blackhole %s/32",
                 g->r[i].ns, g->r[j].host, g->r[j].ns, g->r[i].host) != 0)
            rc = -EIO;
    }
    g->cut = 0;
    return rc;
}

/* ---- the group ------------------------------------------------------------------------------- */

int hraft_init(struct hraft_group *g, const char *parent, const char *tag, int n, const char *opts,
               int netns, char *why, size_t wlen)
{
    if (n < 1 || n > HRAFT_MAX) return -EINVAL;
    why[0] = '\0';
    int rc = h_cluster_init(&g->c, parent, tag);
    if (rc) {
        snprintf(why, wlen, "folder: %s", strerror(-rc));
        return rc;
    }
    g->n = 0;
    g->netns = 0;
    g->cut = 0;
    g->stopped = 0;
    memset(g->r, 0, sizeof(g->r));
    snprintf(g->opts, sizeof(g->opts), "%s", opts ? opts : "");
    if (netns && (rc = ns_hub_up(g, why, wlen))) return rc;
    g->peers[0] = '\0';
    for (int i = 0; i < n; i++) {
        rc = slot_init(g, i);
        if (!rc && netns) rc = ns_replica_up(g, i);
        if (rc) {
            snprintf(why, wlen, "replica %d: %s", i + 1, strerror(-rc));
            return rc;
        }
        g->r[i].id = (uint64_t)(i + 1);
        g->n = i + 1;
        size_t l = strlen(g->peers);
        snprintf(g->peers + l, sizeof(g->peers) - l, "%s%s", i ? "," : "", g->r[i].addr);
    }
    if (strlen(g->peers) >= sizeof(g->c.meta_addr)) {
        snprintf(why, wlen, "the address list %s is too long for h_cluster", g->peers);
        return -E2BIG;
    }
    memcpy(g->c.meta_addr, g->peers, strlen(g->peers) + 1); /* length checked above */
    return 0;
}

int hraft_start(struct hraft_group *g, int i)
{
    if (i < 0 || i >= g->n) return -EINVAL;
    struct hraft_replica *r = &g->r[i];
    if (r->pid > 0) return -EBUSY;
    char prog[512], listen[80], data[320], peers[300], join[300], store[24][160];
    h_prog("cairn-meta", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=%s", r->addr);
    snprintf(data, sizeof(data), "--data_dir=%s", r->dir);
    char *argv[48] = {prog, listen, data, "--log_level=info", "--session_timeout=10"};
    int n = 5;
    if (r->joiner) {
        char list[256] = "";
        for (int k = 0; k < g->n; k++) {
            if (k == i || g->r[k].removed || !hraft_running(g, k)) continue;
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%s", l ? "," : "", g->r[k].addr);
        }
        snprintf(join, sizeof(join), "--join=%s", list);
        argv[n++] = join;
    } else {
        snprintf(peers, sizeof(peers), "--peers=%s", g->peers);
        argv[n++] = peers;
    }
    add_opts(argv, &n, 47, store, g->opts);
    argv[n] = NULL;
    FILE *f = fopen(r->log, "a");
    if (f) {
        fprintf(f, "=== harness: start %d of replica %d (%s)\n", r->started_at + 1, i + 1, r->addr);
        fclose(f);
    }
    r->pid = h_spawn_ns(r->ns, argv, r->log);
    if (r->pid < 0) {
        int e = (int)r->pid;
        r->pid = 0;
        return e;
    }
    r->started_at++;
    return wait_addr(r->addr, r->pid, 10000);
}

int hraft_start_all(struct hraft_group *g)
{
    for (int i = 0; i < g->n; i++) {
        if (g->r[i].joiner) continue;
        int rc = hraft_start(g, i);
        if (rc) return rc;
    }
    return 0;
}

int hraft_kill(struct hraft_group *g, int i, int sig)
{
    if (i < 0 || i >= g->n || g->r[i].pid <= 0) return -ESRCH;
    pid_t pid = g->r[i].pid;
    g->r[i].pid = 0; /* never signal a reaped pid again */
    int st = h_kill_wait(pid, sig, 10000);
    if (st < 0) return st;
    for (int t = 0; t < 300; t++) { /* its ports are free once nobody answers there */
        int fd = net_connect(g->r[i].addr, 100);
        if (fd < 0) return 0;
        close(fd);
        hraft_sleep_ms(10);
    }
    return -EBUSY;
}

int hraft_running(struct hraft_group *g, int i)
{
    return i >= 0 && i < g->n && g->r[i].pid > 0 && h_alive(g->r[i].pid);
}

void hraft_list(struct hraft_group *g, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < g->n; i++) {
        if (g->r[i].removed || !hraft_running(g, i)) continue;
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%s", l ? "," : "", g->r[i].addr);
    }
}

int hraft_index_of(struct hraft_group *g, uint64_t id)
{
    for (int i = 0; i < g->n; i++)
        if (g->r[i].id == id) return i;
    return -ENOENT;
}

/* ---- requests -------------------------------------------------------------------------------- */

/* One request on connection c, bounded by deadline (absolute). Returns the transport error
 * (*answered 0) or the reply's status (*answered 1); the reply (any status) is left in *rep for
 * the caller to free. */
static int call_on(struct rpc_conn *c, uint16_t type, const void *p1, size_t n1, const void *p2,
                   size_t n2, struct rpc_reply *rep, uint64_t deadline, int *answered)
{
    struct rpc_call *k;
    memset(rep, 0, sizeof(*rep));
    *answered = 0;
    int rc = rpc_submit(c, type, p1, n1, p2, n2, deadline, &k);
    if (rc) return rc;
    rc = rpc_wait(k, deadline, rep);
    if (rc) return rc;
    *answered = 1;
    return rep->status;
}

static struct rpc_conn *conn_to(const char *addr, int timeout_ms)
{
    struct rpc_opts o = {.connect_timeout_ms = timeout_ms < 1000 ? timeout_ms : 1000,
                         .call_timeout_ms = timeout_ms,
                         .backoff_min_ms = 20,
                         .backoff_max_ms = 200,
                         .connect_attempts = 1};
    return rpc_conn_new(addr, &o);
}

int hraft_call(struct hraft_group *g, int i, uint16_t type, const struct wbuf *b,
               struct rpc_reply *rep, int timeout_ms)
{
    if (i < 0 || i >= g->n) return -EINVAL;
    struct rpc_conn *c = conn_to(g->r[i].addr, timeout_ms);
    if (!c) return -ENOMEM;
    struct rpc_reply r;
    int answered;
    int rc = call_on(c, type, b ? b->data : NULL, b ? b->len : 0, NULL, 0, &r,
                     net_now_ms() + (uint64_t)timeout_ms, &answered);
    rpc_conn_free(c);
    if (rc == 0 && rep)
        *rep = r;
    else
        rpc_reply_free(&r);
    return rc;
}

static int decode_status(const void *p, size_t len, struct hraft_status *st)
{
    struct rcur c;
    memset(st, 0, sizeof(*st));
    rcur_init(&c, p, len);
    st->id = rcur_u64(&c);
    st->state = rcur_u8(&c);
    st->leader_id = rcur_u64(&c);
    rcur_str(&c, st->leader_addr, CAIRN_ADDR_MAX);
    st->term = rcur_u64(&c);
    st->commit_index = rcur_u64(&c);
    st->applied_index = rcur_u64(&c);
    st->last_index = rcur_u64(&c);
    uint32_t n = rcur_u32(&c);
    if (c.err || n > HRAFT_MAX + 2) return -EBADMSG;
    st->n = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        st->m[i].id = rcur_u64(&c);
        rcur_str(&c, st->m[i].addr, CAIRN_ADDR_MAX);
        st->m[i].role = rcur_u8(&c);
        st->m[i].reachable = rcur_u8(&c);
        st->m[i].match_index = rcur_u64(&c);
    }
    return rcur_done(&c);
}

int hraft_status(struct hraft_group *g, int i, struct hraft_status *st)
{
    struct rpc_reply rep;
    int rc = hraft_call(g, i, MSG_META_STATUS, NULL, &rep, 1000);
    if (rc) return rc;
    rc = decode_status(rep.payload.data, rep.payload.len, st);
    rpc_reply_free(&rep);
    return rc;
}

static int getattr_root(struct hraft_group *g, int i, int timeout_ms)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, CAIRN_ROOT_INO);
    int rc = hraft_call(g, i, MSG_GETATTR, &b, NULL, timeout_ms);
    wbuf_free(&b);
    return rc;
}

int hraft_wait_leader(struct hraft_group *g, unsigned skip, int timeout_ms)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    do {
        for (int i = 0; i < g->n; i++) {
            if ((skip >> i) & 1 || g->r[i].removed || !hraft_running(g, i)) continue;
            struct hraft_status st;
            if (hraft_status(g, i, &st) || st.state != META_ST_LEADER) continue;
            if (getattr_root(g, i, 1000) == 0) return i;
        }
        hraft_sleep_ms(50);
    } while (net_now_ms() < end);
    return -ETIMEDOUT;
}

int hraft_wait_quiet(struct hraft_group *g, int lead, unsigned skip, int timeout_ms, char *why,
                     size_t wlen)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms, prev = 0;
    int stable = 0;
    why[0] = '\0';
    for (;;) {
        struct hraft_status ls;
        int ok = hraft_status(g, lead, &ls) == 0 && ls.state == META_ST_LEADER &&
                 ls.applied_index == ls.last_index && ls.commit_index == ls.last_index;
        if (!ok)
            snprintf(why, wlen, "replica %d is not a leader with everything applied", lead + 1);
        for (int i = 0; ok && i < g->n; i++) {
            if (i == lead || (skip >> i) & 1 || g->r[i].removed || !hraft_running(g, i)) continue;
            struct hraft_status st;
            int rc = hraft_status(g, i, &st);
            if (rc || st.applied_index != ls.last_index) {
                snprintf(why, wlen, "replica %d applied %llu of the leader's %llu%s", i + 1,
                         rc ? 0ull : (unsigned long long)st.applied_index,
                         (unsigned long long)ls.last_index, rc ? " (no status)" : "");
                ok = 0;
            }
        }
        if (ok && ls.last_index == prev) {
            if (++stable >= 2) return 0;
        } else {
            stable = ok ? 1 : 0;
        }
        prev = ok ? ls.last_index : 0;
        if (net_now_ms() > end) return -ETIMEDOUT;
        hraft_sleep_ms(300);
    }
}

void hraft_status_str(struct hraft_group *g, char *out, size_t len)
{
    static const char *const states[] = {"unavailable", "follower", "candidate", "leader"};
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < g->n && o < len; i++) {
        struct hraft_status st;
        int rc = hraft_running(g, i) ? hraft_status(g, i, &st) : -ESRCH;
        if (rc)
            o += (size_t)snprintf(out + o, len - o, "%sr%d %s", i ? " | " : "", i + 1,
                                  rc == -ESRCH ? "down" : strerror(-rc));
        else
            o += (size_t)snprintf(
                out + o, len - o, "%sr%d %s t%llu leader %llu commit %llu applied %llu last %llu",
                i ? " | " : "", i + 1, st.state <= 3 ? states[st.state] : "?",
                (unsigned long long)st.term, (unsigned long long)st.leader_id,
                (unsigned long long)st.commit_index, (unsigned long long)st.applied_index,
                (unsigned long long)st.last_index);
    }
}

int hraft_log_count(struct hraft_group *g, int i, const char *needle)
{
    FILE *f = fopen(g->r[i].log, "r");
    if (!f) return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

/* ---- membership ------------------------------------------------------------------------------ */

/* The last line of out that is a number, or 0. */
static uint64_t last_number(const char *out)
{
    uint64_t v = 0;
    const char *p = out;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char line[64];
        if (l && l < sizeof(line)) {
            memcpy(line, p, l);
            line[l] = '\0';
            char *end;
            unsigned long long x = strtoull(line, &end, 10);
            if (*end == '\0') v = x;
        }
        if (!e) break;
        p = e + 1;
    }
    return v;
}

int hraft_add(struct hraft_group *g, char *out, size_t len)
{
    out[0] = '\0';
    if (g->n >= HRAFT_MAX) return -ENOSPC;
    int i = g->n;
    int rc = slot_init(g, i);
    if (!rc && g->netns) rc = ns_replica_up(g, i);
    if (rc) return rc;
    g->r[i].joiner = 1;
    g->n++;
    rc = hraft_start(g, i);
    if (rc) {
        snprintf(out, len, "the new replica did not start: %s", strerror(-rc));
        return rc;
    }
    char list[256];
    hraft_list(g, list, sizeof(list));
    rc = h_cairn(&g->c, out, len, "meta add %s --meta %s", g->r[i].addr, list);
    if (rc != 0) return -EIO;
    uint64_t id = last_number(out);
    if (!id) return -EBADMSG;
    g->r[i].id = id;
    return i;
}

int hraft_remove(struct hraft_group *g, int i, char *out, size_t len)
{
    if (i < 0 || i >= g->n) return -EINVAL;
    char list[256];
    hraft_list(g, list, sizeof(list));
    int rc = h_cairn(&g->c, out, len, "meta remove %llu --meta %s", (unsigned long long)g->r[i].id,
                     list);
    if (rc != 0) return -EIO;
    g->r[i].removed = 1;
    return 0;
}

/* ---- stores ---------------------------------------------------------------------------------- */

/* every database of mstore_env.c; "meta" without the replica's own applied index */
#define STORE_DBS                                                                                  \
    "inode dirent dirseq symlink xattr chunk chunkid session open openref orphan dedup meta"

int hraft_dump_store(struct hraft_group *g, int i, const char *path)
{
    if (hraft_running(g, i)) return -EBUSY;
    char out[600];
    /* the applied key is "applied" in hex; mdb_dump prints a key line, then its value line */
    int rc = h_run(60, out, sizeof(out),
                   "set -e; for db in " STORE_DBS "; do echo \"== $db\"; "
                   "mdb_dump -s $db '%s' | awk 'h{print} /^HEADER=END/{h=1}'; done | "
                   "awk '/^== /{sec=$2; print; next} skip{skip=0; next} "
                   "sec==\"meta\" && $1==\"6170706c696564\" {skip=1; next} {print}' > '%s'",
                   g->r[i].dir, path);
    return rc == 0 ? 0 : -EIO;
}

int hraft_compare_stores(struct hraft_group *g, unsigned mask, char *why, size_t wlen)
{
    int first = -1;
    char a[400], b[400];
    why[0] = '\0';
    for (int i = 0; i < g->n; i++) {
        if (!((mask >> i) & 1)) continue;
        snprintf(b, sizeof(b), "%s/store%d.dump", g->c.dir, i + 1);
        int rc = hraft_dump_store(g, i, b);
        if (rc) {
            snprintf(why, wlen, "mdb_dump of replica %d's store: %s", i + 1, strerror(-rc));
            return rc;
        }
        if (first < 0) {
            first = i;
            memcpy(a, b, sizeof(a));
            continue;
        }
        if (h_sh(30, "cmp -s '%s' '%s'", a, b) == 0) continue;
        char d[1500];
        h_run(30, d, sizeof(d),
              "diff '%s' '%s' | head -n 8; echo 'in database:'; "
              "awk -v n=$(cmp '%s' '%s' | sed -E 's/.* line ([0-9]+).*/\\1/') "
              "'/^== /{s=$2} NR==n{print s; exit}' '%s'",
              a, b, a, b, a);
        snprintf(why, wlen, "the stores of replicas %d and %d differ:\n%s", first + 1, i + 1, d);
        return 1;
    }
    return 0;
}

/* ---- chunk servers --------------------------------------------------------------------------- */

int hraft_cs_registrations(struct hraft_group *g, int k)
{
    uint64_t id = h_cs_id(&g->c, k);
    if (!id) return 0;
    char hex[24];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id);
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        FILE *f = fopen(g->r[i].log, "r");
        if (!f) continue;
        char line[2048];
        while (fgets(line, sizeof(line), f))
            if (strstr(line, hex) && strstr(line, "registered") && !strstr(line, "unregistered"))
                n++;
        fclose(f);
    }
    return n;
}

int hraft_cs_wait_registered(struct hraft_group *g, int k, int before, int timeout_ms)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    while (hraft_cs_registrations(g, k) <= before) {
        if (net_now_ms() > end) return -ETIMEDOUT;
        hraft_sleep_ms(50);
    }
    return 0;
}

/* ---- stop ------------------------------------------------------------------------------------ */

void hraft_stop(struct hraft_group *g)
{
    if (!g->c.dir[0]) return;
    for (int k = 0; k < g->c.nmounts; k++) /* while the meta service still answers */
        if (g->c.mount_pid[k] > 0) h_umount(&g->c, k);
    for (int k = 0; k < g->c.ncs; k++)
        if (g->c.cs_pid[k] > 0) h_cs_kill(&g->c, k, SIGTERM);
    for (int i = 0; i < g->n; i++)
        if (g->r[i].pid > 0) hraft_kill(g, i, SIGTERM);
    ns_down(g);
    h_cluster_stop(&g->c); /* the rest: mounts left, the folder */
    g->stopped = 1;
}

void hraft_leftovers(struct hraft_group *g)
{
    if (!g->c.dir[0]) return;
    struct stat st;
    if (g->stopped || stat(g->c.dir, &st) != 0) {
        memset(g, 0, sizeof(*g));
        return;
    }
    /* the replicas first (h_cluster_leftovers prints the end of every log, then cleans up) */
    for (int i = 0; i < g->n; i++)
        if (g->r[i].pid > 0) {
            h_kill_wait(g->r[i].pid, SIGKILL, 5000);
            g->r[i].pid = 0;
        }
    ns_down(g);
    g->c.meta_pid = 0;
    h_cluster_leftovers(&g->c); /* mounts, chunk servers, everything but the logs */
    memset(g, 0, sizeof(*g));
}

/* ---- the client ------------------------------------------------------------------------------ */

/* The next running, not removed replica after cur. */
static int next_replica(struct hraft_group *g, int cur)
{
    for (int k = 1; k <= g->n; k++) {
        int i = (cur + k) % g->n;
        if (!g->r[i].removed && hraft_running(g, i)) return i;
    }
    return cur;
}

static int index_of_addr(struct hraft_group *g, const char *addr)
{
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->r[i].addr, addr)) return i;
    return -ENOENT;
}

static void client_switch(struct hraft_client *cl, int to)
{
    if (cl->conn) rpc_conn_free(cl->conn);
    cl->conn = NULL;
    cl->cur = to;
}

/* One attempt per replica until answered by the leader: the core of hraft_client_call. */
static int client_send(struct hraft_client *cl, uint16_t type, const struct wbuf *b,
                       const uint8_t *trailer, struct rpc_reply *rep, uint64_t end)
{
    struct hraft_group *g = cl->g;
    int attempts = 0;
    for (;;) {
        if (net_now_ms() >= end) return -ETIMEDOUT;
        if (!cl->conn) cl->conn = conn_to(g->r[cl->cur].addr, 3000);
        if (!cl->conn) return -ENOMEM;
        uint64_t dl = net_now_ms() + 3000;
        if (dl > end) dl = end;
        struct rpc_reply r;
        int answered;
        int rc = call_on(cl->conn, type, b ? b->data : NULL, b ? b->len : 0, trailer,
                         trailer ? MSG_SEQ_TRAILER : 0, &r, dl, &answered);
        if (attempts++) cl->retries++;
        if (rc == -CAIRN_ENOTLEADER) {
            char leader[CAIRN_ADDR_MAX + 1] = "";
            struct rcur c;
            rcur_init(&c, r.payload.data, r.payload.len);
            rcur_str(&c, leader, CAIRN_ADDR_MAX);
            rpc_reply_free(&r);
            int to = c.err ? -1 : index_of_addr(g, leader);
            if (to < 0 || to == cl->cur) {
                to = next_replica(g, cl->cur);
                hraft_sleep_ms(100); /* an election runs */
            }
            client_switch(cl, to);
            continue;
        }
        if (!answered) { /* no answer (transport): try the next replica */
            if (net_now_ms() >= end) return rc;
            client_switch(cl, next_replica(g, cl->cur));
            hraft_sleep_ms(50);
            continue;
        }
        if (rc == 0 && rep)
            *rep = r;
        else
            rpc_reply_free(&r);
        return rc;
    }
}

static void client_keepalive(struct hraft_client *cl, uint64_t end)
{
    if (!cl->session || net_now_ms() - cl->ka_ms < 3000) return;
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, cl->session);
    client_send(cl, MSG_SESSION_KEEPALIVE, &b, NULL, NULL, end);
    wbuf_free(&b);
    cl->ka_ms = net_now_ms();
}

int hraft_client_open(struct hraft_client *cl, struct hraft_group *g, int timeout_ms)
{
    memset(cl, 0, sizeof(*cl));
    cl->g = g;
    cl->cur = next_replica(g, g->n - 1);
    struct wbuf b;
    wbuf_init(&b);
    const char *name = "hraft-client";
    wbuf_put_str(&b, name, strlen(name));
    wbuf_put_u64(&b, 0);
    struct rpc_reply rep;
    int rc = client_send(cl, MSG_SESSION_OPEN, &b, NULL, &rep, net_now_ms() + (uint64_t)timeout_ms);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    cl->session = rcur_u64(&c);
    rc = c.err;
    rpc_reply_free(&rep);
    cl->ka_ms = net_now_ms();
    cl->retries = 0;
    return rc;
}

void hraft_client_close(struct hraft_client *cl)
{
    client_switch(cl, 0);
}

int hraft_client_call(struct hraft_client *cl, uint16_t type, const struct wbuf *b, int numbered,
                      struct rpc_reply *rep, int timeout_ms)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    client_keepalive(cl, end);
    uint8_t trailer[MSG_SEQ_TRAILER];
    if (numbered) {
        uint64_t seq = ++cl->next_seq;
        le_put64(trailer, cl->session);
        le_put64(trailer + 8, seq);
        le_put64(trailer + 16, seq); /* one request at a time: every lower one was answered */
        type |= MSG_F_SEQ;
    }
    return client_send(cl, type, b, numbered ? trailer : NULL, rep, end);
}

void hraft_put_mkdir(struct wbuf *b, uint64_t parent, const char *name)
{
    wbuf_put_u64(b, parent);
    wbuf_put_str(b, name, strlen(name));
    wbuf_put_u32(b, 040755);
    wbuf_put_u32(b, 0);
    wbuf_put_u32(b, 0);
}

void hraft_put_lookup(struct wbuf *b, uint64_t parent, const char *name)
{
    wbuf_put_u64(b, parent);
    wbuf_put_str(b, name, strlen(name));
}

int hraft_client_mkdir(struct hraft_client *cl, uint64_t parent, const char *name, uint64_t *ino,
                       int timeout_ms)
{
    struct wbuf b;
    wbuf_init(&b);
    hraft_put_mkdir(&b, parent, name);
    struct rpc_reply rep;
    int rc = hraft_client_call(cl, MSG_MKDIR, &b, 1, &rep, timeout_ms);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur c;
    struct cairn_attr a;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    proto_get_attr(&c, &a);
    rc = rcur_done(&c);
    rpc_reply_free(&rep);
    if (!rc && ino) *ino = a.ino;
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hraft_readdir(struct hraft_group *g, int i, uint64_t ino, char *out, size_t len, int *n)
{
    size_t cap = 1024, cnt = 0;
    char **names = malloc(cap * sizeof(*names));
    if (!names) return -ENOMEM;
    uint64_t cookie = 0;
    int rc = 0, eof = 0;
    while (!rc && !eof) {
        struct wbuf b;
        wbuf_init(&b);
        wbuf_put_u64(&b, ino);
        wbuf_put_u64(&b, cookie);
        wbuf_put_u32(&b, 512);
        wbuf_put_u8(&b, 0);
        struct rpc_reply rep;
        rc = hraft_call(g, i, MSG_READDIR, &b, &rep, 5000);
        wbuf_free(&b);
        if (rc) break;
        struct rcur c;
        rcur_init(&c, rep.payload.data, rep.payload.len);
        uint32_t k = rcur_u32(&c);
        for (uint32_t j = 0; j < k && !c.err; j++) {
            char name[256];
            rcur_u64(&c);
            rcur_u32(&c);
            rcur_str(&c, name, 255);
            cookie = rcur_u64(&c);
            if (c.err) break;
            if (cnt == cap) {
                char **nn = realloc(names, 2 * cap * sizeof(*names));
                if (!nn) {
                    rc = -ENOMEM;
                    break;
                }
                names = nn;
                cap *= 2;
            }
            names[cnt++] = strdup(name);
        }
        eof = rcur_u8(&c);
        if (!rc) rc = rcur_done(&c);
        rpc_reply_free(&rep);
        if (!rc && !eof && k == 0) rc = -EBADMSG; /* no progress */
    }
    qsort(names, cnt, sizeof(*names), cmp_str);
    size_t o = 0;
    if (len) out[0] = '\0';
    for (size_t j = 0; j < cnt; j++) {
        size_t l = strlen(names[j]);
        if (!rc && o + l + 2 > len) rc = -ENOSPC;
        if (!rc) {
            memcpy(out + o, names[j], l);
            out[o + l] = '\n';
            o += l + 1;
            out[o] = '\0';
        }
        free(names[j]);
    }
    free(names);
    if (n) *n = (int)cnt;
    return rc;
}

/* ---- the runner ------------------------------------------------------------------------------ */

static void leftovers(void)
{
    hraft_leftovers(hraft_g);
}

static void leftovers_on_signal(void *arg)
{
    hraft_leftovers(arg);
}

int hraft_main(const char *tag, const char *suite, const struct h_test *tests, size_t n,
               int timeout_s, const char *skip)
{
    signal(SIGPIPE, SIG_IGN);
    hraft_g =
        mmap(NULL, sizeof(*hraft_g), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (hraft_g == MAP_FAILED || h_mkdtemp(tag, hraft_root, sizeof(hraft_root)) != 0) {
        fprintf(stderr, "test_%s: setup: %s\n", suite, strerror(errno));
        return 1;
    }
    memset(hraft_g, 0, sizeof(*hraft_g));
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    h_stop_on_signal(leftovers_on_signal, hraft_g);
    if (skip) {
        fprintf(stderr, "test_%s: SKIPPED (not run, not passed): %s\n", suite, skip);
        n = 0;
    }
    int nf = h_run_cases(suite, tests, n, timeout_s, leftovers);
    hraft_leftovers(hraft_g);
    if (rmdir(hraft_root) != 0)
        fprintf(stderr, "%s: %s\n", getenv("KEEP") ? "kept" : "logs of failed tests", hraft_root);
    return nf ? 1 : 0;
}

int hraft_stop_and_compare(struct hraft_group *g, int lead, unsigned mask, char *why, size_t len)
{
    int rc = hraft_kill(g, lead, SIGTERM);
    for (int i = 0; i < g->n && !rc; i++)
        if (i != lead && hraft_running(g, i)) rc = hraft_kill(g, i, SIGTERM);
    if (rc) {
        snprintf(why, len, "cannot stop the replicas: %s", strerror(-rc));
        return rc;
    }
    return hraft_compare_stores(g, mask, why, len);
}

void hraft_big_xattr_req(struct wbuf *b, uint64_t ino, int round)
{
    static char v[HRAFT_BIG_XATTR];
    memset(v, 'a' + round % 26, sizeof(v));
    snprintf(v, 32, "round %d", round);
    wbuf_init(b);
    wbuf_put_u64(b, ino);
    wbuf_put_str(b, "user.big", 8);
    wbuf_put_bytes(b, v, sizeof(v));
    wbuf_put_u32(b, 0);
}
