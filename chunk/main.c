/* main.c - cairn-chunk: options, logging, daemonizing, pid file, signals; opens the chunk
 * store, listens, starts the meta, replication and scrubber threads and serves until
 * SIGTERM/SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cs.h"
#include "cs_conn.h"
#include "cs_metaconn.h"
#include "daemon.h"
#include "httpd.h"
#include "log.h"
#include "net.h"
#include "rpc.h"

#define O(f) offsetof(struct cs_cfg, f)
static const struct conf_opt cs_opts[] = {
    {"listen", CONF_STR, "0.0.0.0:9530", O(listen), "address to serve clients on"},
    {"advertise", CONF_STR, NULL, O(advertise),
     "address given to meta (default: listen, 0.0.0.0 as 127.0.0.1)"},
    {"meta", CONF_STR, "127.0.0.1:9520", O(meta),
     "metadata service: host:port, or the replicas as host:port,host:port,... (at most 7)"},
    {"data_dirs", CONF_STR, "/var/lib/cairn/chunks", O(data_dirs), "comma separated data folders"},
    {"heartbeat_ms", CONF_INT, "1000", O(heartbeat_ms), "heartbeat period to meta (ms)"},
    {"scrub_rate", CONF_INT, "0", O(scrub_rate), "scrubber read rate in MiB/s (0 = off)"},
    {"scrub_interval", CONF_INT, "86400", O(scrub_interval), "seconds between scrub passes"},
    {"max_conns", CONF_INT, "512", O(max_conns), "most client connections served at once"},
    {"log_level", CONF_STR, "info", O(log_level), "error, warn, info or debug"},
    {"log_file", CONF_STR, NULL, O(log_file), "log to this file instead of stderr"},
    {"daemon", CONF_FLAG, NULL, O(daemon), "run in the background"},
    {"pid_file", CONF_STR, NULL, O(pid_file), "write the process id here"},
    {"http", CONF_STR, NULL, O(http),
     "HOST:PORT of the HTTP server of Prometheus metrics (/metrics); empty: none"},
    {"zone", CONF_STR, NULL, O(zone),
     "failure zone (rack, room) given to meta, at most 31 characters (default: none)"},
    {"replication_workers", CONF_INT, "2", O(replication_workers),
     "threads copying chunks for replication orders (1..16)"},
    {"chain_timeout_ms", CONF_INT, "5000", O(chain_timeout_ms),
     "wait for the next server of a write chain, per server below this one (ms)"},
    {"open_chunks", CONF_INT, "8192", O(open_chunks),
     "chunk files kept open with their checksums in memory, for reads (0..65536, 0 = none)"},
    {"read_threads", CONF_INT, "8", O(read_threads),
     "threads reading chunks for clients' reads, each with a 1 MiB buffer (1..256)"},
    {"conn_reads", CONF_INT, "8", O(conn_reads),
     "reads of one connection served at once (1..64); other requests stay in order"},
    {"keep_page_cache", CONF_BOOL, "0", O(keep_page_cache),
     "keep the data served in the page cache (default: drop it after each read, since the "
     "clients cache what they read)"},
    {"local_reads", CONF_BOOL, "1", O(local_reads),
     "tell clients on this machine where the chunk files are, so that they read them in place "
     "(MSG_CHK_LOCAL; they still check every block against its checksum)"},
    {NULL, 0, NULL, 0, NULL},
};

static struct cs_state g_cs;

static void on_signal(int sig)
{
    (void)sig;
    g_cs.stop = 1;
}

static int split_dirs(char *s, char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t) continue;
        if (n == max) return -E2BIG;
        out[n++] = t;
    }
    return n ? n : -EINVAL;
}

/* Copy src into dst (size n); -ENAMETOOLONG when it does not fit. */
static int copy_str(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    if (l >= n) return -ENAMETOOLONG;
    memcpy(dst, src, l + 1);
    return 0;
}

int main(int argc, char **argv)
{
    struct cs_state *s = &g_cs;
    char err[256] = "";
    int help = 0;
    conf_defaults(cs_opts, &s->cfg);
    if (conf_parse_args(cs_opts, &s->cfg, &argc, argv, &help, err, sizeof(err))) {
        fprintf(stderr, "cairn-chunk: %s\n", err);
        return 2;
    }
    if (help) {
        printf("usage: cairn-chunk [--config FILE] [--name=value...]\n");
        conf_print_help(cs_opts, stdout);
        return 0;
    }
    int rc, lvl = log_level_parse(s->cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "cairn-chunk: bad log_level %s\n", s->cfg.log_level);
        return 2;
    }
    log_level_current = lvl;
    if (s->cfg.heartbeat_ms < 50) s->cfg.heartbeat_ms = 50;
    if (s->cfg.max_conns < 1) s->cfg.max_conns = 1;
    if (s->cfg.scrub_interval < 1) s->cfg.scrub_interval = 1;
    if (s->cfg.chain_timeout_ms < 100) s->cfg.chain_timeout_ms = 100;
    if (strlen(s->cfg.zone) > CAIRN_ZONE_MAX) {
        fprintf(stderr, "cairn-chunk: zone '%s' is longer than %d characters\n", s->cfg.zone,
                CAIRN_ZONE_MAX);
        return 2;
    }
    if (s->cfg.replication_workers < 1 || s->cfg.replication_workers > 16) {
        fprintf(stderr, "cairn-chunk: replication_workers must be 1..16\n");
        return 2;
    }
    if (s->cfg.read_threads < 1 || s->cfg.read_threads > 256) {
        fprintf(stderr, "cairn-chunk: read_threads must be 1..256\n");
        return 2;
    }
    if (s->cfg.conn_reads < 1 || s->cfg.conn_reads > 64) {
        fprintf(stderr, "cairn-chunk: conn_reads must be 1..64\n");
        return 2;
    }
    if (s->cfg.open_chunks < 0 || s->cfg.open_chunks > 65536) {
        fprintf(stderr, "cairn-chunk: open_chunks must be 0..65536\n");
        return 2;
    }
    /* lives until exit: the membership thread may still be in a call at shutdown */
    if ((rc = cs_metaconn_new(s->cfg.meta, &s->meta, err, sizeof(err)))) {
        fprintf(stderr, "cairn-chunk: %s\n", err);
        return rc == -ENOMEM ? 1 : 2;
    }

    char dirbuf[CONF_STR_MAX];
    char *dirs[CSTORE_MAX_DIRS];
    copy_str(dirbuf, sizeof(dirbuf), s->cfg.data_dirs);
    int nd = split_dirs(dirbuf, dirs, CSTORE_MAX_DIRS);
    if (nd < 0) {
        fprintf(stderr, "cairn-chunk: bad data_dirs '%s'\n", s->cfg.data_dirs);
        return 2;
    }
    rc = cstore_open(&s->store, dirs, nd, CAIRN_DEFAULT_CHUNK_SIZE);
    if (rc) {
        fprintf(stderr, "cairn-chunk: data folders: %s\n", strerror(-rc));
        return 1;
    }
    /* connections, open chunks, and some for everything else (meta, chain, scrubber) */
    long nofile = daemon_raise_nofile(), spare = nofile - s->cfg.max_conns - 256;
    if (s->cfg.open_chunks > spare) {
        int n = spare > 0 ? (int)spare : 0;
        fprintf(stderr, "cairn-chunk: open file limit %ld: open_chunks lowered to %d\n", nofile, n);
        s->cfg.open_chunks = n;
    }
    cstore_set_open_max(&s->store, s->cfg.open_chunks);
    s->store.keep_page_cache = s->cfg.keep_page_cache;
    rc = cs_meta_server_id(dirs[0], &s->server_id);
    if (rc) {
        fprintf(stderr, "cairn-chunk: server id in %s: %s\n", dirs[0], strerror(-rc));
        return 1;
    }
    char adv[CONF_STR_MAX + 16];
    if (s->cfg.advertise[0])
        copy_str(adv, sizeof(adv), s->cfg.advertise);
    else if (strncmp(s->cfg.listen, "0.0.0.0:", 8) == 0) {
        copy_str(adv, sizeof(adv), "127.0.0.1:");
        copy_str(adv + 10, sizeof(adv) - 10, s->cfg.listen + 8);
    } else
        copy_str(adv, sizeof(adv), s->cfg.listen);
    if (copy_str(s->advertise, sizeof(s->advertise), adv)) {
        fprintf(stderr, "cairn-chunk: advertise address too long\n");
        return 2;
    }
    uint16_t port;
    s->listen_fd = net_listen(s->cfg.listen, &port);
    if (s->listen_fd < 0) {
        fprintf(stderr, "cairn-chunk: listen %s: %s\n", s->cfg.listen, strerror(-s->listen_fd));
        return 1;
    }
    int dfd = -1;
    if (s->cfg.daemon && daemon_start(&dfd)) {
        fprintf(stderr, "cairn-chunk: cannot daemonize\n");
        return 1;
    }
    if (s->cfg.log_file[0] && (rc = log_open_file(s->cfg.log_file))) {
        fprintf(stderr, "cairn-chunk: log file %s: %s\n", s->cfg.log_file, strerror(-rc));
        daemon_done(dfd, 1, 1);
        return 1;
    }
    if (s->cfg.pid_file[0] && (rc = pidfile_write(s->cfg.pid_file))) {
        LOG_ERR("main", "pid file %s: %s", s->cfg.pid_file, strerror(-rc));
        daemon_done(dfd, 1, 1);
        return 1;
    }
    pthread_mutex_init(&s->lock, NULL);
    cs_stats_init(s);
    if ((rc = cs_events_init(s))) {
        LOG_ERR("main", "events: %s", strerror(-rc));
        daemon_done(dfd, 1, 1);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    LOG_INFO("main",
             "cairn-chunk %016llx serving on %s (advertised %s), %d data folder(s), meta %s",
             (unsigned long long)s->server_id, s->cfg.listen, s->advertise, nd, s->cfg.meta);
    pthread_t meta_th, scrub_th;
    int scrub_on = 0;
    if ((rc = cs_reads_start(s)) || (rc = cs_repl_start(s)) || (rc = cs_meta_start(s, &meta_th)) ||
        (rc = cs_scrub_start(s, &scrub_th, &scrub_on))) {
        LOG_ERR("main", "cannot start threads: %s", strerror(-rc));
        daemon_done(dfd, 1, 1);
        return 1;
    }
    struct httpd *http = NULL;
    if ((rc = cs_metrics_start(s, &http))) {
        daemon_done(dfd, 1, 1);
        return 1;
    }
    daemon_done(dfd, 0, 0);
    cs_server_run(s);
    LOG_INFO("main", "shutting down");
    /* the meta thread may sit in a call to an unreachable meta: do not wait for it */
    pthread_detach(meta_th);
    if (scrub_on) pthread_join(scrub_th, NULL);
    httpd_stop(http);
    close(s->listen_fd);
    if (s->cfg.pid_file[0]) unlink(s->cfg.pid_file);
    return 0;
}
