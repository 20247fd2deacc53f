/* cli_meta.c - the cairn command's side of the meta service: which replica addresses to use
 * (option, environment, the mount's user.cairn.meta xattr, default), whether a path is on a
 * CairnFS mount, and bounded request/reply calls over rpc.h that find the Raft leader by
 * following the replicas' -CAIRN_ENOTLEADER answers (see cli_meta.h). */
#include "cli_meta.h"

#include <ctype.h>
#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#include "net.h"

#define CONNECT_MS 2000    /* one connect attempt */
#define CONNECT_ATTEMPTS 2 /* per address and call */
#define SUBMIT_MS 5000     /* bound of getting a request out to one address */
#define MAX_LISTS 8        /* address lists with a connection */

struct cli_meta {
    char addrs[CLI_ADDRS_LEN]; /* the list as given */
    int ngiven;                /* addresses in it */
    int n;                     /* slots used: the given ones, then leaders learnt */
    char addr[CLI_META_SLOTS][CAIRN_ADDR_MAX + 1];
    struct rpc_conn *conn[CLI_META_SLOTS]; /* created at first use */
    int cur;                               /* the slot that answered last */
    int unreachable;                       /* nothing answered: fail at once from now on */
    int resent;                            /* see cli_meta_resent */
    char why[CLI_ADDRS_LEN + 300];
};

static struct cli_meta *lists[MAX_LISTS];

/* ---- finding the address ----------------------------------------------------------------- */

/* Copy a user-supplied address list (trimmed) into out; 0, or -EINVAL when empty. */
static int take_list(const char *s, char *out, size_t len)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= len) return -EINVAL;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* The user.cairn.meta xattr of path into out; 0 or -errno. */
static int xattr_addr(const char *path, char *out, size_t len)
{
    char buf[CLI_ADDRS_LEN];
    ssize_t n = getxattr(path, CLI_META_XATTR, buf, sizeof(buf) - 1);
    if (n < 0) return -errno;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] != '\n' && !isprint((unsigned char)buf[i])) return -EBADMSG;
    return take_list(buf, out, len);
}

/* --meta, then CAIRN_META; 0 when one of them gave the list. */
static int explicit_addr(const struct cli *c, char *out, size_t len)
{
    if (c->meta && take_list(c->meta, out, len) == 0) return 0;
    const char *env = getenv("CAIRN_META");
    if (env && take_list(env, out, len) == 0) return 0;
    return -ENOENT;
}

int cli_meta_addr_for_path(const struct cli *c, const char *path, char *out, size_t len)
{
    if (explicit_addr(c, out, len) == 0) return 0;
    if (xattr_addr(path, out, len) == 0) return 0;
    snprintf(out, len, "%s", CLI_META_DEFAULT);
    return 1;
}

void cli_meta_addr_default(const struct cli *c, char *out, size_t len)
{
    if (explicit_addr(c, out, len) == 0) return;
    FILE *f = setmntent("/proc/self/mounts", "r");
    if (f) {
        struct mntent *m;
        int found = 0;
        for (int i = 0; i < 100000 && !found && (m = getmntent(f)) != NULL; i++)
            if (strcmp(m->mnt_type, "fuse.cairn") == 0)
                found = xattr_addr(m->mnt_dir, out, len) == 0;
        endmntent(f);
        if (found) return;
    }
    snprintf(out, len, "%s", CLI_META_DEFAULT);
}

int cli_meta_addr_cluster(const struct cli *c, const char *path, char *out, size_t len)
{
    if (!path) {
        cli_meta_addr_default(c, out, len);
        return CLI_OK;
    }
    if (explicit_addr(c, out, len) == 0) return CLI_OK;
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_err("%s: %s", path, strerror(errno));
        return CLI_USAGE;
    }
    if (cli_on_cairn_mount(&st) != 0 || xattr_addr(path, out, len) != 0) {
        cli_err("%s is not on a CairnFS mount (name the cluster with --meta ADDR)", path);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_on_cairn_mount(const struct stat *st)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) return -errno;
    char line[4096];
    int rc = -EXDEV;
    /* id parent major:minor root mountpoint options [optional...] - fstype source super */
    for (int i = 0; i < 100000 && rc == -EXDEV && fgets(line, sizeof(line), f); i++) {
        unsigned ma, mi;
        if (sscanf(line, "%*s %*s %u:%u", &ma, &mi) != 2) continue;
        if (ma != major(st->st_dev) || mi != minor(st->st_dev)) continue;
        const char *sep = strstr(line, " - ");
        char fstype[64];
        if (sep && sscanf(sep + 3, "%63s", fstype) == 1 && strcmp(fstype, "fuse.cairn") == 0)
            rc = 0;
    }
    fclose(f);
    return rc;
}

int cli_meta_for_path(const struct cli *c, const char *path, struct stat *st, struct cli_meta **m,
                      char *why, size_t len)
{
    if (stat(path, st) != 0) {
        int e = errno;
        snprintf(why, len, "%s", strerror(e));
        return -e;
    }
    int rc = cli_on_cairn_mount(st);
    if (rc) {
        snprintf(why, len, "%s", rc == -EXDEV ? "not on a CairnFS mount" : strerror(-rc));
        return rc;
    }
    char addrs[CLI_ADDRS_LEN];
    static int warned;
    if (cli_meta_addr_for_path(c, path, addrs, sizeof(addrs)) && !warned++)
        cli_err("note: the mount of %s does not name its meta service (no %s xattr): using "
                "%s; give --meta ADDR if that is another cluster",
                path, CLI_META_XATTR, addrs);
    *m = cli_meta_get(addrs);
    if (!*m) {
        snprintf(why, len, "bad meta service address list '%s'", addrs);
        return -EINVAL;
    }
    return 0;
}

int cli_meta_check_type(const struct cli_meta *m, uint32_t meta_mode, mode_t st_mode, char *why,
                        size_t len)
{
    if ((meta_mode & S_IFMT) == ((uint32_t)st_mode & S_IFMT)) return 0;
    snprintf(why, len, "the meta service at %s describes another inode (wrong --meta?)", m->addrs);
    return -ESTALE;
}

/* ---- connections ------------------------------------------------------------------------- */

int cli_addr_valid(const char *s)
{
    size_t n = strlen(s);
    const char *colon = strrchr(s, ':');
    if (n == 0 || n > CAIRN_ADDR_MAX || !colon || colon == s) return 0;
    for (const char *p = s; p < colon; p++)
        if (*p == ',' || !isgraph((unsigned char)*p)) return 0;
    const char *port = colon + 1;
    size_t pl = strlen(port);
    if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl) return 0;
    long v = strtol(port, NULL, 10);
    return v >= 1 && v <= 65535;
}

static struct cli_meta *meta_new(const char *addrs)
{
    struct cli_meta *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    snprintf(m->addrs, sizeof(m->addrs), "%s", addrs);
    char tmp[CLI_ADDRS_LEN], *save = NULL;
    snprintf(tmp, sizeof(tmp), "%s", addrs);
    for (char *t = strtok_r(tmp, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (m->n == CLI_ADDRS_MAX || !cli_addr_valid(t)) {
            free(m);
            return NULL;
        }
        snprintf(m->addr[m->n++], CAIRN_ADDR_MAX + 1, "%s", t);
    }
    if (m->n == 0) {
        free(m);
        return NULL;
    }
    m->ngiven = m->n;
    return m;
}

struct cli_meta *cli_meta_get(const char *addrs)
{
    int i;
    for (i = 0; i < MAX_LISTS && lists[i]; i++)
        if (strcmp(lists[i]->addrs, addrs) == 0) return lists[i];
    if (i == MAX_LISTS) return NULL; /* more clusters than one command line plausibly names */
    lists[i] = meta_new(addrs);
    return lists[i];
}

/* The slot of addr in m, added when it is new; -1 when it is not an address or m is full. */
static int slot_of(struct cli_meta *m, const char *addr)
{
    for (int k = 0; k < m->n; k++)
        if (strcmp(m->addr[k], addr) == 0) return k;
    if (m->n == CLI_META_SLOTS || !cli_addr_valid(addr)) return -1;
    snprintf(m->addr[m->n], CAIRN_ADDR_MAX + 1, "%s", addr);
    return m->n++;
}

/* One attempt on slot k, the reply awaited up to reply_ms: 0 with *rep (whatever its status),
 * or a transport error (negative). *sent: the request went out (it may have been carried out
 * even when no reply came back). */
static int call_one(struct cli_meta *m, int k, uint16_t type, const struct wbuf *req,
                    struct rpc_reply *rep, int reply_ms, int *sent)
{
    *sent = 0;
    if (!m->conn[k]) {
        struct rpc_opts o = {.connect_timeout_ms = CONNECT_MS,
                             .call_timeout_ms = reply_ms,
                             .backoff_min_ms = 100,
                             .backoff_max_ms = 500,
                             .connect_attempts = CONNECT_ATTEMPTS};
        m->conn[k] = rpc_conn_new(m->addr[k], &o);
        if (!m->conn[k]) return -ENOMEM;
    }
    struct rpc_call *call;
    int rc = rpc_submit(m->conn[k], type, req ? req->data : NULL, req ? req->len : 0, NULL, 0,
                        net_now_ms() + SUBMIT_MS, &call);
    if (rc) return rc;
    *sent = 1;
    rc = rpc_wait(call, net_now_ms() + (uint64_t)reply_ms, rep);
    if (rc) wbuf_init(&rep->payload);
    return rc;
}

/* The leader named in a -CAIRN_ENOTLEADER reply's payload into out ("" when none or when
 * the payload is not { str leader_addr }). */
static void redirect_addr(const struct rpc_reply *rep, char *out)
{
    struct rcur c;
    rcur_init(&c, rep->payload.data, rep->payload.len);
    if (rcur_str(&c, out, CAIRN_ADDR_MAX) < 0 || rcur_done(&c) || !cli_addr_valid(out))
        out[0] = '\0';
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int check_req(struct cli_meta *m, const struct wbuf *req, struct rpc_reply *rep)
{
    memset(rep, 0, sizeof(*rep));
    wbuf_init(&rep->payload);
    m->resent = 0;
    if (req && req->err) {
        snprintf(m->why, sizeof(m->why), "%s", strerror(ENOMEM));
        return req->err;
    }
    return 0;
}

/* A reply with a status: 0 and the payload for the caller, or the status (payload freed). */
static int take_reply(struct cli_meta *m, int k, struct rpc_reply *rep)
{
    m->cur = k;
    if (rep->status >= 0) return 0;
    int rc = rep->status;
    rpc_reply_free(rep);
    wbuf_init(&rep->payload);
    snprintf(m->why, sizeof(m->why), "%s", cli_strerror(rc));
    return rc;
}

int cli_meta_call_wait(struct cli_meta *m, uint16_t type, const struct wbuf *req,
                       struct rpc_reply *rep, int reply_ms)
{
    int rc = check_req(m, req, rep);
    if (rc) return rc;
    if (m->unreachable) return -EHOSTUNREACH; /* m->why still says why */
    uint64_t deadline = net_now_ms() + CLI_LEADER_WAIT_MS;
    uint32_t failed = 0; /* slots whose connection failed in this call */
    int answered = 0;    /* some replica answered (not the leader, or no leader known) */
    int maybe_done = 0;  /* a request went out and its reply was lost */
    int redirects = 0;   /* redirects followed in a row */
    int k = m->cur, last_err = 0;
    char last_addr[CAIRN_ADDR_MAX + 1] = "";
    for (;;) {
        int sent;
        rc = call_one(m, k, type, req, rep, reply_ms, &sent);
        if (rc == -ENOMEM) {
            snprintf(m->why, sizeof(m->why), "%s", strerror(ENOMEM));
            return rc;
        }
        if (rc == 0 && rep->status != -CAIRN_ENOTLEADER) {
            m->resent = maybe_done;
            return take_reply(m, k, rep);
        }
        if (rc == -ETIMEDOUT && sent) {
            /* the replica took the request and did not answer: asking another one would
             * double the wait, and it may still carry it out */
            snprintf(m->why, sizeof(m->why), "no reply from the meta service at %s within %d s",
                     m->addr[k], (reply_ms + 999) / 1000);
            return rc;
        }
        if (rc == 0) { /* not the leader: follow the address it names, if any */
            char leader[CAIRN_ADDR_MAX + 1];
            redirect_addr(rep, leader);
            rpc_reply_free(rep);
            wbuf_init(&rep->payload);
            answered = 1;
            failed &= ~(1u << k);
            int next = leader[0] ? slot_of(m, leader) : -1;
            if (next >= 0 && next != k) {
                if (++redirects > 1) pause_ms(CLI_ELECTION_PAUSE_MS); /* a stale leader */
                k = next;
            } else {
                redirects = 0;
                pause_ms(CLI_ELECTION_PAUSE_MS); /* an election runs */
                k = (k + 1) % m->n;
            }
        } else { /* no connection, or it broke while waiting */
            maybe_done |= sent;
            redirects = 0;
            failed |= 1u << k;
            last_err = rc;
            snprintf(last_addr, sizeof(last_addr), "%s", m->addr[k]);
            uint32_t all = m->n >= 32 ? ~0u : (1u << m->n) - 1;
            if ((failed & all) == all) {
                if (!answered) break; /* nothing runs there */
                failed = 0;           /* the others were electing: ask around again */
                pause_ms(CLI_ELECTION_PAUSE_MS);
            }
            k = (k + 1) % m->n;
        }
        if (net_now_ms() >= deadline) break;
    }
    m->unreachable = 1;
    if (!answered) {
        snprintf(m->why, sizeof(m->why), "cannot reach the meta service at %s: %s", m->addrs,
                 strerror(-last_err));
        return last_err;
    }
    char tail[CAIRN_ADDR_MAX + 100] = "";
    if (last_err) snprintf(tail, sizeof(tail), "; %s: %s", last_addr, strerror(-last_err));
    snprintf(m->why, sizeof(m->why),
             "no leader among the meta service replicas at %s after %d s (an election is "
             "running, or fewer than a majority of the replicas are up%s)",
             m->addrs, CLI_LEADER_WAIT_MS / 1000, tail);
    return -EAGAIN;
}

int cli_meta_call(struct cli_meta *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep)
{
    return cli_meta_call_wait(m, type, req, rep, CLI_REPLY_MS);
}

int cli_meta_call_at(struct cli_meta *m, const char *addr, uint16_t type, const struct wbuf *req,
                     struct rpc_reply *rep)
{
    int rc = check_req(m, req, rep);
    if (rc) return rc;
    int k = slot_of(m, addr);
    if (k < 0) {
        snprintf(m->why, sizeof(m->why), "'%s' is not an address HOST:PORT", addr);
        return -EINVAL;
    }
    int sent;
    rc = call_one(m, k, type, req, rep, CLI_REPLY_MS, &sent);
    if (rc == 0) {
        snprintf(m->why, sizeof(m->why), "%s", rep->status < 0 ? cli_strerror(rep->status) : "");
        return 0;
    }
    if (rc == -ETIMEDOUT && sent)
        snprintf(m->why, sizeof(m->why), "no reply within %d s", CLI_REPLY_MS / 1000);
    else
        snprintf(m->why, sizeof(m->why), "%s", strerror(-rc));
    return rc;
}

int cli_meta_resent(const struct cli_meta *m)
{
    return m->resent;
}

int cli_meta_unreachable(const struct cli_meta *m)
{
    return m->unreachable;
}

const char *cli_meta_why(const struct cli_meta *m)
{
    return m->why;
}

const char *cli_meta_list(const struct cli_meta *m)
{
    return m->addrs;
}

int cli_meta_naddrs(const struct cli_meta *m)
{
    return m->ngiven;
}

const char *cli_meta_addr(const struct cli_meta *m, int i)
{
    return i >= 0 && i < m->n ? m->addr[i] : NULL;
}

void cli_meta_close_all(void)
{
    for (int i = 0; i < MAX_LISTS && lists[i]; i++) {
        for (int k = 0; k < lists[i]->n; k++)
            if (lists[i]->conn[k]) rpc_conn_free(lists[i]->conn[k]);
        free(lists[i]);
        lists[i] = NULL;
    }
}
