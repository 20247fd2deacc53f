/* main.c - cairn-meta: options, logging, daemonizing, pid file and signals; opens the LMDB
 * store, listens, runs the periodic work (chunk-server liveness, session expiry) and serves on
 * one libevent thread until SIGTERM/SIGINT. `cairn-meta --init` runs the same replica only
 * until the group of one it bootstraps has committed its MOP_FORMAT record, then exits. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "httpd.h"
#include "log.h"
#include "meta.h"
#include "mraft.h"
#include "net.h"
#include "snap_xfer.h"

#define O(f) offsetof(struct meta_cfg, f)
static const struct conf_opt meta_opts[] = {
    {"listen", CONF_STR, "127.0.0.1:9520", O(listen),
     "address to serve clients and chunk servers on"},
    {"data_dir", CONF_STR, "/var/lib/cairn/meta", O(data_dir), "folder of the LMDB environment"},
    {"session_timeout", CONF_INT, "60", O(session_timeout),
     "seconds without keepalive before a client session expires and its open files close"},
    {"cs_timeout", CONF_INT, "10", O(cs_timeout),
     "seconds without heartbeat before a chunk server counts as dead"},
    {"chunk_size", CONF_U64, "64M", O(chunk_size),
     "chunk size of a new file system (multiple of 64K, at most 512M); fixed at format"},
    {"map_size", CONF_U64, "8G", O(map_size), "largest size the LMDB file may grow to"},
    {"open_chunks", CONF_INT, "4", O(open_chunks),
     "chunk locations sent with every open (saves round trips for small files)"},
    {"fsync", CONF_BOOL, "true", O(fsync_commits),
     "flush the store to disk every second (the Raft log, written before every reply, is what "
     "makes a change durable; false: only at exit)"},
    {"pin_memory", CONF_BOOL, "true", O(pin_memory),
     "keep the metadata store resident in memory (mlock), so lookups never wait for the disk"},
    {"default_copies", CONF_INT, "2", O(default_copies),
     "copies of every chunk of a file whose directories set none (1 to 8)"},
    {"repair_rate", CONF_INT, "200", O(repair_rate),
     "MiB/s the cluster spends on making missing copies and balancing (0 = no limit)"},
    {"repair_per_server", CONF_INT, "4", O(repair_per_server),
     "copies a chunk server makes at the same time"},
    {"balance_pct", CONF_INT, "10", O(balance_pct),
     "percentage points of disk usage between the fullest and the emptiest chunk server that "
     "start moving chunks"},
    {"peers", CONF_STR, "", O(peers),
     "client addresses HOST:PORT,... of the replicas that first form the group (ids 1, 2, 3... "
     "in this order; Raft uses PORT+1); empty: a group of this one replica"},
    {"join", CONF_STR, "", O(join),
     "replicas of a running group this new replica (empty data_dir, not in peers) asks for its "
     "id after `cairn meta add` of its address"},
    {"election_timeout_ms", CONF_INT, "1000", O(election_timeout_ms),
     "milliseconds without a leader's heartbeat before a replica starts an election"},
    {"heartbeat_ms", CONF_INT, "100", O(heartbeat_ms), "milliseconds between leader heartbeats"},
    {"snapshot_entries", CONF_INT, "8192", O(snapshot_entries),
     "log entries between two snapshots of the store"},
    {"snapshot_trailing", CONF_INT, "2048", O(snapshot_trailing),
     "log entries kept behind a snapshot (a slightly late replica catches up from the log)"},
    {"http", CONF_STR, NULL, O(http),
     "HOST:PORT of the HTTP server for Prometheus metrics (/metrics) and, on the leader, the "
     "status page (/); empty: none"},
    {"log_level", CONF_STR, "info", O(log_level), "error, warn, info or debug"},
    {"log_file", CONF_STR, NULL, O(log_file), "log to this file instead of stderr"},
    {"daemon", CONF_FLAG, NULL, O(daemon), "run in the background"},
    {"pid_file", CONF_STR, NULL, O(pid_file), "write the process id here"},
    {NULL, 0, NULL, 0, NULL},
};

static struct meta g_meta;

/* --init: make a new cluster's first replica (see init_check and on_init_poll) */
#define INIT_TIMEOUT_MS 30000
static struct {
    int on;      /* --init given */
    int done;    /* the format record is committed */
    uint64_t t0; /* when serving started (net_now_ms) */
    struct event *poll;
} g_init;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct meta *m = arg;
    LOG_INFO("main", "signal %d: shutting down", (int)sig);
    event_base_loopbreak(m->base);
}

/* Lock what the store uses in memory, following its growth; gives up on the first refusal. */
static void pin_store(struct meta *m)
{
    if (!m->cfg.pin_memory) return;
    int rc = mstore_pin(m->store, &m->pinned);
    if (rc) {
        LOG_WARN("main", "cannot keep the store in memory (%s): pin_memory off", strerror(-rc));
        m->cfg.pin_memory = 0;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct meta *m = arg;
    if (meta_ready(m) && csr_expire(&m->reg, net_now_ms()) > 0)
        repair_rescan(m); /* their chunks are short */
    meta_sessions_expire(m);
    pin_store(m);
    snap_serve_tick(m);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    meta_flush(arg);
}

/* --init, every 20 ms: stop once the group of one has formatted the store through its log. */
static void on_init_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct meta *m = arg;
    if (mstore_formatted(m->store)) {
        g_init.done = 1;
        event_base_loopbreak(m->base);
    } else if (net_now_ms() - g_init.t0 > INIT_TIMEOUT_MS) {
        fprintf(stderr, "cairn-meta: --init: the store was not formatted within %d s\n",
                INIT_TIMEOUT_MS / 1000);
        event_base_loopbreak(m->base);
    }
}

/* mkdir -p dir (mode 0700 for the folders made here). 0 or -errno. */
static int mkdir_p(const char *dir)
{
    char p[CONF_STR_MAX];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) return -ENAMETOOLONG;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) && errno != EEXIST) return -errno;
        *s = '/';
    }
    if (mkdir(p, 0700) && errno != EEXIST) return -errno;
    return 0;
}

/* --init checks: a group of one (no peers other than itself, no join) and a data_dir that is
 * absent or empty, which is then created. Returns 0 or 2 (the exit status of a bad option). */
static int init_check(struct meta_cfg *c)
{
    if (c->join[0]) {
        fprintf(stderr, "cairn-meta: --init makes a new group; a replica with join= is added "
                        "to a running one instead (start it empty and run `cairn meta add`)\n");
        return 2;
    }
    if (c->peers[0] && strcmp(c->peers, c->listen)) {
        fprintf(stderr,
                "cairn-meta: --init makes a group of one replica, but peers=%s names others. "
                "Either start every replica of peers= empty, without --init (the group formats "
                "the store when it first elects a leader), or --init one replica without "
                "peers= and add the others with join= and `cairn meta add`.\n",
                c->peers);
        return 2;
    }
    DIR *d = opendir(c->data_dir);
    if (d) {
        struct dirent *e;
        int used = 0;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) used = 1;
        closedir(d);
        if (used) {
            fprintf(stderr,
                    "cairn-meta: --init: data_dir %s is not empty (a replica's store is there "
                    "already); refusing to touch it. Start cairn-meta without --init to use it, "
                    "or move it away to make a new cluster.\n",
                    c->data_dir);
            return 2;
        }
    } else if (errno != ENOENT) {
        fprintf(stderr, "cairn-meta: --init: data_dir %s: %s\n", c->data_dir, strerror(errno));
        return 2;
    }
    int rc = mkdir_p(c->data_dir);
    if (rc) {
        fprintf(stderr, "cairn-meta: --init: cannot create data_dir %s: %s\n", c->data_dir,
                strerror(-rc));
        return 2;
    }
    /* only the format: no status page, no background, no pid file of a service */
    c->http[0] = '\0';
    c->daemon = 0;
    c->pid_file[0] = '\0';
    c->pin_memory = 0;
    return 0;
}

static int check_cfg(struct meta_cfg *c)
{
    if (c->chunk_size < (64u << 10) || c->chunk_size % (64u << 10) ||
        c->chunk_size > (512ull << 20)) {
        fprintf(stderr, "cairn-meta: chunk_size must be a multiple of 64K between 64K and 512M\n");
        return -EINVAL;
    }
    if (c->session_timeout < 2) c->session_timeout = 2;
    if (c->election_timeout_ms < 50 || c->heartbeat_ms < 10 ||
        c->heartbeat_ms * 2 > c->election_timeout_ms || c->snapshot_entries < 16 ||
        c->snapshot_trailing < 0) {
        fprintf(stderr, "cairn-meta: election_timeout_ms >= 50, heartbeat_ms between 10 and half "
                        "of it, snapshot_entries >= 16, please\n");
        return -EINVAL;
    }
    if (c->cs_timeout < 1) c->cs_timeout = 1;
    if (c->default_copies < 1 || c->default_copies > CAIRN_COPIES_MAX) {
        fprintf(stderr, "cairn-meta: default_copies must be between 1 and %d\n", CAIRN_COPIES_MAX);
        return -EINVAL;
    }
    if (c->repair_rate < 0 || c->repair_per_server < 1 || c->balance_pct < 1 ||
        c->balance_pct > 100) {
        fprintf(stderr, "cairn-meta: repair_rate >= 0, repair_per_server >= 1 and balance_pct "
                        "in 1..100, please\n");
        return -EINVAL;
    }
    mstore_set_default_copies((uint32_t)c->default_copies);
    int lvl = log_level_parse(c->log_level);
    if (lvl < 0) {
        fprintf(stderr, "cairn-meta: bad log_level %s\n", c->log_level);
        return -EINVAL;
    }
    log_level_current = lvl;
    return 0;
}

/* Everything after option parsing; dfd is the daemon readiness pipe (or -1). */
static int serve(struct meta *m, int dfd)
{
    int rc;
    if (m->cfg.log_file[0] && (rc = log_open_file(m->cfg.log_file))) {
        fprintf(stderr, "cairn-meta: log file %s: %s\n", m->cfg.log_file, strerror(-rc));
        return 1;
    }
    /* the Raft log is the durable point: the store is flushed in the background, and a
     * replica formats its store only through the group's first record */
    struct mstore_opts so = {
        .map_size = m->cfg.map_size, .chunk_size = m->cfg.chunk_size, .no_sync = 1, .no_format = 1};
    rc = mstore_open(m->cfg.data_dir, &so, &m->store);
    if (rc) {
        LOG_ERR("main", "cannot open the store in %s: %s", m->cfg.data_dir, strerror(-rc));
        fprintf(stderr, "cairn-meta: store %s: %s\n", m->cfg.data_dir, strerror(-rc));
        if (rc == -EIO || rc == -EINVAL)
            fprintf(stderr,
                    "The store looks damaged. This replica cannot start; the others carry on. "
                    "To rebuild it: `cairn meta remove ID` on the group, wipe %s, start "
                    "cairn-meta again with join=<the other replicas>, and `cairn meta add %s` "
                    "(it then catches up from a snapshot).\n",
                    m->cfg.data_dir, m->cfg.listen);
        return 1;
    }
    int status = 1;
    struct event *sigterm = NULL, *sigint = NULL, *tick = NULL;
    if (csr_init(&m->reg, m->cfg.cs_timeout * 1000)) goto out_store;
    m->base = event_base_new();
    if (!m->base) goto out_reg;
    /* connections run at priority 1, the group commit at 2: it waits for the ready requests */
    if (event_base_priority_init(m->base, 3)) goto out_base;
    m->srv = evsrv_new(m->base, m->cfg.listen, WIRE_MAX_PAYLOAD, meta_handle, m, &rc);
    if (!m->srv) {
        LOG_ERR("main", "cannot listen on %s: %s", m->cfg.listen, strerror(-rc));
        fprintf(stderr, "cairn-meta: listen %s: %s\n", m->cfg.listen, strerror(-rc));
        goto out_base;
    }
    if (m->cfg.http[0] && meta_http_start(m)) goto out_srv;
    if (m->cfg.pid_file[0] && (rc = pidfile_write(m->cfg.pid_file))) {
        LOG_ERR("main", "pid file %s: %s", m->cfg.pid_file, strerror(-rc));
        goto out_srv;
    }
    sigterm = evsignal_new(m->base, SIGTERM, on_signal, m);
    sigint = evsignal_new(m->base, SIGINT, on_signal, m);
    tick = event_new(m->base, -1, EV_PERSIST, on_tick, m);
    m->flush_ev = event_new(m->base, -1, 0, on_flush, m);
    if (!m->flush_ev || event_priority_set(m->flush_ev, 2)) goto out_ev;
    struct timeval one_s = {1, 0};
    if (!sigterm || !sigint || !tick || event_add(sigterm, NULL) || event_add(sigint, NULL) ||
        event_add(tick, &one_s))
        goto out_ev;
    if (g_init.on) {
        g_init.t0 = net_now_ms();
        struct timeval tv = {0, 20 * 1000};
        g_init.poll = event_new(m->base, -1, EV_PERSIST, on_init_poll, m);
        if (!g_init.poll || event_add(g_init.poll, &tv)) goto out_ev;
    }
    if (repair_start(m)) goto out_ev;
    signal(SIGPIPE, SIG_IGN);
    wbuf_init(&m->batch_log);
    if (m->cfg.fsync_commits && meta_store_sync_start(m)) goto out_ev;
    rc = mraft_start(m);
    if (rc) {
        LOG_ERR("main", "cannot start the Raft replica: %s", strerror(-rc));
        goto out_raft;
    }
    pin_store(m);
    LOG_INFO("main", "cairn-meta serving on %s (port %u), data in %s, chunk size %llu",
             m->cfg.listen, evsrv_port(m->srv), m->cfg.data_dir,
             (unsigned long long)mstore_chunk_size(m->store));
    daemon_done(dfd, 0, 0);
    dfd = -1;
    event_base_dispatch(m->base);
    /* a batch not committed by the group was never acknowledged */
    if (mstore_batch_active(m->store)) mstore_batch_abort(m->store);
    status = 0;
out_raft:
    snap_serve_stop();
    meta_store_sync_stop();
    mraft_stop(m);
    mstore_sync(m->store);
    wbuf_free(&m->batch_log);
out_ev:
    repair_stop(m);
    if (g_init.poll) event_free(g_init.poll);
    g_init.poll = NULL;
    if (m->flush_ev) event_free(m->flush_ev);
    m->flush_ev = NULL;
    if (tick) event_free(tick);
    if (sigint) event_free(sigint);
    if (sigterm) event_free(sigterm);
    if (m->cfg.pid_file[0] && status == 0) unlink(m->cfg.pid_file);
out_srv:
    httpd_stop(m->http);
    evsrv_free(m->srv);
out_base:
    event_base_free(m->base);
out_reg:
    csr_free(&m->reg);
out_store:
    mstore_close(m->store);
    daemon_done(dfd, 1, 1);
    LOG_INFO("main", "stopped");
    return status;
}

int main(int argc, char **argv)
{
    struct meta *m = &g_meta;
    char err[256] = "";
    int help = 0;
    /* --init is an action, not a setting (a config file must never re-format): taken out of
     * argv before the option table sees it */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--init")) {
            g_init.on = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
            argc--;
            i--;
        }
    conf_defaults(meta_opts, &m->cfg);
    if (conf_parse_args(meta_opts, &m->cfg, &argc, argv, &help, err, sizeof(err))) {
        fprintf(stderr, "cairn-meta: %s\n", err);
        return 2;
    }
    if (help) {
        printf("usage: cairn-meta [--config FILE] [--name=value...]\n"
               "       cairn-meta --init [--config FILE] [--name=value...]\n"
               "The CairnFS metadata service: inodes, directories, xattrs and the chunk map in "
               "LMDB.\n--init makes a new cluster's first replica in an empty data_dir (a "
               "group of one, formatted with chunk_size) and exits.\n\n"
               "options (also as `name = value` lines in the config file):\n");
        conf_print_help(meta_opts, stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "cairn-meta: unexpected argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    if (check_cfg(&m->cfg)) return 2;
    if (g_init.on) {
        if (init_check(&m->cfg)) return 2;
        int st = serve(m, -1);
        if (st || !g_init.done) {
            fprintf(stderr, "cairn-meta: --init failed; remove %s before trying again\n",
                    m->cfg.data_dir);
            return 1;
        }
        printf("cairn-meta: a new file system in %s (chunk size %llu), replica 1 of a group "
               "of one; start cairn-meta with the same options to serve it\n",
               m->cfg.data_dir, (unsigned long long)m->cfg.chunk_size);
        return 0;
    }
    int dfd = -1;
    if (m->cfg.daemon && daemon_start(&dfd)) {
        fprintf(stderr, "cairn-meta: cannot daemonize\n");
        return 1;
    }
    return serve(m, dfd);
}
