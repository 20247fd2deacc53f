/* main.c - cairn-mount (and mount.cairn): command line, daemonizing, and the FUSE session.
 *
 *   cairn-mount MNT [-f] [-d] [-o meta=HOST:PORT[,HOST:PORT...],opt[=val],...]
 *   mount.cairn HOST:PORT[,HOST:PORT...][:/] MNT [-o opts]   (as run by mount(8) and fstab)
 *
 * The client's own -o options are one conf_opt table (printed by --help, documented in
 * cairn-mount(8)); options mount(8) adds that mean nothing here are dropped; the rest go to
 * libfuse. meta= names the meta service's replicas (up to MC_REPLICAS_MAX); because -o lists
 * are comma-separated too, the bare host:port items that follow meta= are the rest of its
 * list. Unless -f is given the program forks, and the parent exits only once the child has
 * connected to the meta service and mounted (exit status 0) or failed (1). */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "cmetrics.h"
#include "conf.h"
#include "dcache.h"
#include "daemon.h"
#include "httpd.h"
#include "log.h"

struct mount_opts {
    char meta[CONF_STR_MAX];
    char entry_timeout[CONF_STR_MAX];
    char attr_timeout[CONF_STR_MAX];
    char negative_timeout[CONF_STR_MAX];
    uint64_t readahead_max;
    uint64_t kernel_readahead;
    uint64_t mem_cache_size;
    uint64_t cache_size;
    char cache_dir[CONF_STR_MAX];
    int io_timeout;
    int max_threads;
    int dir_prefetch;
    int read_pieces;
    int local_reads;
    int acl;
    char atime[CONF_STR_MAX];
    char http[CONF_STR_MAX];
    char log_level[CONF_STR_MAX];
    char log_file[CONF_STR_MAX];
};

#define O(f) offsetof(struct mount_opts, f)
static const struct conf_opt mount_tab[] = {
    {"meta", CONF_STR, "127.0.0.1:9520", O(meta),
     "meta service replicas HOST:PORT[,HOST:PORT...] (up to 7)"},
    {"entry_timeout", CONF_STR, "1.0", O(entry_timeout),
     "seconds the kernel may cache a name lookup"},
    {"attr_timeout", CONF_STR, "1.0", O(attr_timeout), "seconds the kernel may cache attributes"},
    {"negative_timeout", CONF_STR, "1.0", O(negative_timeout),
     "seconds the kernel may remember that a name does not exist (0 = never)"},
    {"readahead_max", CONF_U64, "16M", O(readahead_max),
     "largest read-ahead window of a sequential reader"},
    {"kernel_readahead", CONF_U64, "4M", O(kernel_readahead),
     "the kernel's read-ahead for the mount (0 = its default, 128K)"},
    {"mem_cache_size", CONF_U64, "256M", O(mem_cache_size),
     "bytes of file data (read ahead, prefetched) held in memory"},
    {"cache_dir", CONF_STR, "", O(cache_dir),
     "a folder on a local disk where data read is kept for later reads (empty = none)"},
    {"cache_size", CONF_U64, "10G", O(cache_size), "most bytes kept in cache_dir"},
    {"io_timeout", CONF_INT, "30", O(io_timeout),
     "seconds any network request may take before the operation fails with EIO"},
    {"max_threads", CONF_INT, "64", O(max_threads), "most threads serving FUSE requests"},
    {"dir_prefetch", CONF_INT, "1", O(dir_prefetch),
     "1: prefetch the next files of a directory read in listing order (tar, rsync, cp -r)"},
    {"local_reads", CONF_BOOL, "1", O(local_reads),
     "read the chunk files of chunk servers on this machine in place (checked against their "
     "checksums), not through the server"},
    {"read_pieces", CONF_INT, "1", O(read_pieces),
     "pieces a read of 256K or more is split into, read from the copies at once (1..8)"},
    {"acl", CONF_INT, "1", O(acl),
     "1: POSIX ACLs (getfacl, setfacl; default ACLs inherited), enforced by the kernel; 0: "
     "refused, as on a file system without them (also -o acl, -o noacl)"},
    {"atime", CONF_STR, "relatime", O(atime),
     "relatime: a read moves the access time when it is not later than the modification or "
     "change time, or a day old; strictatime: every read; noatime: never. Sent lazily, once a "
     "second (also -o relatime, -o strictatime, -o noatime)"},
    {"http", CONF_STR, "", O(http),
     "HOST:PORT of this mount's Prometheus metrics (/metrics); empty = none (each mount needs "
     "a port of its own)"},
    {"log_level", CONF_STR, "warn", O(log_level), "error, warn, info or debug"},
    {"log_file", CONF_STR, NULL, O(log_file), "append logs to this file instead of stderr"},
    {NULL, 0, NULL, 0, NULL},
};
#undef O

/* Options mount(8) passes that have no meaning for a FUSE client (or are always set). */
static int ignored_opt(const char *o)
{
    static const char *const names[] = {
        "rw",     "exec",    "auto",  "noauto", "user",
        "users",  "nouser",  "owner", "group",  "defaults",
        "nofail", "_netdev", "async", "loop",   "default_permissions",
        NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(o, names[i])) return 1;
    return !strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8) || o[0] == '_';
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s MOUNTPOINT [-f] [-d] [-o meta=HOST:PORT[,HOST:PORT...][,option...]]\n"
            "       mount.cairn HOST:PORT[,HOST:PORT...] MOUNTPOINT [-o option,...]\n"
            "  -f  stay in the foreground      -d  FUSE debug output (implies -f)\n"
            "cairn options (-o name=value):\n",
            prog);
    conf_print_help(mount_tab, out);
    fprintf(out,
            "other -o options (allow_other, ro, ...) are passed to FUSE; a mount made by root\n"
            "gets allow_other unless -o noallow_other, and is nodev,nosuid unless -o dev,suid\n"
            "(allow_dev,allow_suid through mount(8) and fstab, which drop dev and suid).\n");
}

struct args {
    const char *source;
    const char *mnt;
    int foreground, debug;
    char fuse_opts[4096];
    struct mount_opts mo;
    int allow_other;   /* -o allow_other given */
    int noallow_other; /* -o noallow_other given: root's mount stays private */
    int dev, suid;     /* -o dev / suid (allow_dev / allow_suid): honoured for root only */
};

/* Apply one comma-separated -o list. A bare "host:port" item continues the meta= list
 * before it ("meta=a:9520,b:9520,c:9520" is one option); one elsewhere is an error. */
static int apply_opts(struct args *a, const char *list)
{
    char *dup = strdup(list), *save = NULL;
    if (!dup) return -ENOMEM;
    int rc = 0, in_meta = 0;
    for (char *o = strtok_r(dup, ",", &save); o && !rc; o = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(o, '=');
        if (!eq && strchr(o, ':')) {
            size_t cur = strlen(a->mo.meta);
            if (!in_meta) {
                fprintf(stderr, "cairn-mount: -o %s: an address outside a meta= list\n", o);
                rc = -EINVAL;
            } else if (cur + 1 + strlen(o) >= sizeof(a->mo.meta)) {
                fprintf(stderr, "cairn-mount: the meta= list is too long\n");
                rc = -EINVAL;
            } else {
                snprintf(a->mo.meta + cur, sizeof(a->mo.meta) - cur, ",%s", o);
            }
            continue;
        }
        in_meta = 0;
        if (!*o || ignored_opt(o)) continue;
        if (at_mode_parse(o) >= 0 || !strcmp(o, "atime")) { /* the mount(8) words */
            snprintf(a->mo.atime, sizeof(a->mo.atime), "%s", strcmp(o, "atime") ? o : "relatime");
            continue;
        }
        if (!strcmp(o, "acl") || !strcmp(o, "noacl")) { /* the mount(8) words */
            a->mo.acl = !strcmp(o, "acl");
            continue;
        }
        if (!strcmp(o, "noallow_other")) {
            a->noallow_other = 1;
            continue;
        }
        if (!strcmp(o, "allow_other")) a->allow_other = 1;
        /* dev and suid: libfuse mounts nodev,nosuid unless told; mount(8) never passes them
         * to a helper (they are its own defaults), so allow_dev / allow_suid say the same
         * through mount(8) and fstab */
        if (!strcmp(o, "dev") || !strcmp(o, "allow_dev")) {
            a->dev = 1;
            continue;
        }
        if (!strcmp(o, "suid") || !strcmp(o, "allow_suid")) {
            a->suid = 1;
            continue;
        }
        if (!strcmp(o, "nodev") || !strcmp(o, "nosuid")) {
            *(o[2] == 'd' ? &a->dev : &a->suid) = 0;
            continue;
        }
        char name[128];
        size_t nl = eq ? (size_t)(eq - o) : strlen(o);
        if (nl >= sizeof(name)) nl = sizeof(name) - 1;
        memcpy(name, o, nl);
        name[nl] = '\0';
        int r = conf_set(mount_tab, &a->mo, name, eq ? eq + 1 : "");
        if (r == 0) {
            in_meta = strcmp(name, "meta") == 0;
            continue;
        }
        if (r != -ENOENT) {
            fprintf(stderr, "cairn-mount: bad value in -o %s\n", o);
            rc = -EINVAL;
            break;
        }
        size_t cur = strlen(a->fuse_opts);
        if (cur + strlen(o) + 2 >= sizeof(a->fuse_opts)) {
            rc = -E2BIG;
            break;
        }
        snprintf(a->fuse_opts + cur, sizeof(a->fuse_opts) - cur, ",%s", o);
    }
    free(dup);
    return rc;
}

/* Returns 0, 1 for "exit 0" (help) or a negative errno. */
static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    conf_defaults(mount_tab, &a->mo);
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    int helper = !strncmp(base, "mount.", 6);
    int meta_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout, base);
            return 1;
        } else if (!strcmp(s, "-f")) {
            a->foreground = 1;
        } else if (!strcmp(s, "-d")) {
            a->debug = a->foreground = 1;
        } else if (!strcmp(s, "-n") || !strcmp(s, "-s") || !strcmp(s, "-v")) {
            /* mount(8) helper flags: no mtab, sloppy, verbose */
        } else if (!strcmp(s, "-t") && helper && i + 1 < argc) {
            i++; /* -t fuse.cairn, as mount.fuse3 style callers pass it */
        } else if (!strncmp(s, "-o", 2)) {
            const char *list = s[2] ? s + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!list) return -EINVAL;
            if (strstr(list, "meta=")) meta_given = 1;
            int rc = apply_opts(a, list);
            if (rc) return rc;
        } else if (s[0] == '-') {
            fprintf(stderr, "%s: unknown flag %s\n", base, s);
            return -EINVAL;
        } else if (helper && !a->source) {
            a->source = s;
        } else if (!a->mnt) {
            a->mnt = s;
        } else {
            fprintf(stderr, "%s: unexpected argument %s\n", base, s);
            return -EINVAL;
        }
    }
    if (!a->mnt) {
        usage(stderr, base);
        return -EINVAL;
    }
    if (a->source && !meta_given && strchr(a->source, ':')) {
        /* "a:p,b:p" or, as NFS-style fstab lines write it, "a:p,b:p:/" (the root) */
        size_t n = strlen(a->source);
        const char *sub = strstr(a->source, ":/");
        if (sub && sub != a->source + n - 2) {
            fprintf(stderr, "%s: %s: only the root (:/) can be mounted\n", base, a->source);
            return -EINVAL;
        }
        if (sub) n -= 2;
        if (n >= sizeof(a->mo.meta)) {
            fprintf(stderr, "%s: the meta address list %s is too long\n", base, a->source);
            return -EINVAL;
        }
        memcpy(a->mo.meta, a->source, n);
        a->mo.meta[n] = '\0';
    }
    /* a data-set mount made by root is for its users too (as MooseFS and JuiceFS do); the
     * kernel still checks every access against the file's mode (default_permissions) */
    int root = geteuid() == 0;
    if ((a->dev || a->suid) && !root) {
        fprintf(stderr, "%s: dev and suid need a mount made by root: ignored\n", base);
        a->dev = a->suid = 0;
    }
    /* libfuse mounts nodev,nosuid unless asked: device files and set-user-ID programs of a
     * shared data set do not act on this machine */
    const char *extra[] = {root && !a->allow_other && !a->noallow_other ? ",allow_other" : "",
                           a->dev ? ",dev" : "", a->suid ? ",suid" : ""};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        size_t cur = strlen(a->fuse_opts);
        if (cur + strlen(extra[i]) + 1 > sizeof(a->fuse_opts)) return -E2BIG;
        snprintf(a->fuse_opts + cur, sizeof(a->fuse_opts) - cur, "%s", extra[i]);
    }
    return 0;
}

/* Check the options and fill cfg; on error says which option is bad on stderr. */
static int cfg_from_opts(const struct mount_opts *mo, struct cm_cfg *cfg)
{
    char *end;
    memset(cfg, 0, sizeof(*cfg));
    char addrs[MC_REPLICAS_MAX][CAIRN_ADDR_MAX + 1], why[160];
    if (mc_addrs_parse(mo->meta, addrs, MC_REPLICAS_MAX, why, sizeof(why)) < 0 ||
        strlen(mo->meta) >= sizeof(cfg->meta)) {
        fprintf(stderr, "cairn-mount: bad meta= list '%s': %s\n", mo->meta,
                strlen(mo->meta) >= sizeof(cfg->meta) ? "too long" : why);
        return -EINVAL;
    }
    memcpy(cfg->meta, mo->meta, strlen(mo->meta) + 1); /* length checked above */
    cfg->entry_timeout = strtod(mo->entry_timeout, &end);
    if (*end || cfg->entry_timeout < 0) goto bad_timeout;
    cfg->attr_timeout = strtod(mo->attr_timeout, &end);
    if (*end || cfg->attr_timeout < 0) goto bad_timeout;
    cfg->negative_timeout = strtod(mo->negative_timeout, &end);
    if (*end || cfg->negative_timeout < 0) goto bad_timeout;
    cfg->readahead_max = mo->readahead_max;
    cfg->atime_mode = at_mode_parse(mo->atime);
    if (cfg->atime_mode < 0) {
        fprintf(stderr, "cairn-mount: atime=%s: relatime, strictatime or noatime\n", mo->atime);
        return -EINVAL;
    }
    cfg->no_acl = mo->acl == 0;
    cfg->kernel_readahead = mo->kernel_readahead;
    cfg->cache_size = mo->cache_size;
    cfg->mem_cache_size = mo->mem_cache_size;
    snprintf(cfg->cache_dir, sizeof(cfg->cache_dir), "%s", mo->cache_dir);
    cfg->io_timeout_s = mo->io_timeout > 0 ? mo->io_timeout : 30;
    cfg->max_threads = mo->max_threads > 0 ? mo->max_threads : 64;
    cfg->dir_prefetch = mo->dir_prefetch != 0;
    if (mo->read_pieces < 1 || mo->read_pieces > 8) {
        fprintf(stderr, "cairn-mount: read_pieces must be 1..8\n");
        return -EINVAL;
    }
    cfg->read_pieces = mo->read_pieces;
    cfg->local_reads = mo->local_reads;
    return 0;
bad_timeout:
    fprintf(stderr, "cairn-mount: bad entry_timeout, attr_timeout or negative_timeout\n");
    return -EINVAL;
}

/* Fork; the parent waits for the child's verdict on *fd_out's pipe and exits with it. */
static int cm_start(struct cm *cm)
{
    int rc = mc_open(&cm->meta, cm->cfg.meta, cm->cfg.io_timeout_s * 1000);
    if (rc) return rc;
    cm->cc = cc_pool_new(cm->cfg.io_timeout_s * 1000);
    cm->inodes = ist_new();
    cm->cache = rc_new(cm->cfg.mem_cache_size);
    cm->kview = kv_new();
    if (!cm->cc || !cm->inodes || !cm->cache || !cm->kview) return -ENOMEM;
    cm->pf = rp_prefetcher_new(cm, CM_PREFETCH_THREADS);
    if (cm->cfg.local_reads && !(cm->local = lr_new(cm->cc)))
        LOG_WARN("local", "no boot id: chunk files are read through their servers");
    if (cm->cfg.dir_prefetch && !(cm->scans = ds_new())) return -ENOMEM;
    if (!(cm->notify = ma_new(&cm->meta))) return -ENOMEM;
    if (!(cm->atime = at_new(&cm->meta, cm->cfg.atime_mode))) return -ENOMEM;
    if (!(cm->locks = lk_new(&cm->meta))) return -ENOMEM;
    return 0;
}

static void cm_stop(struct cm *cm)
{
    rp_prefetcher_free(cm->pf);
    ma_free(cm->notify);
    at_free(cm->atime);
    lk_free(cm->locks);
    mc_close(&cm->meta);
    lr_free(cm->local);
    cc_pool_free(cm->cc);
    rc_free(cm->cache);
    ist_free(cm->inodes);
    kv_free(cm->kview);
    ds_free(cm->scans);
    dc_close(cm->dcache);
}

int main(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == 1) return 0;
    if (rc) return 1;
    static struct cm cm;
    if (cfg_from_opts(&a.mo, &cm.cfg)) return 1;
    int lvl = log_level_parse(a.mo.log_level);
    if (lvl < 0) {
        fprintf(stderr, "cairn-mount: bad log_level %s\n", a.mo.log_level);
        return 1;
    }
    log_level_current = a.debug ? LOG_LVL_DEBUG : lvl;
    if (a.mo.log_file[0] && log_open_file(a.mo.log_file) < 0) {
        fprintf(stderr, "cairn-mount: cannot open log file %s\n", a.mo.log_file);
        return 1;
    }
    char mnt[PATH_MAX];
    if (!realpath(a.mnt, mnt)) {
        fprintf(stderr, "cairn-mount: mount point %s: %s\n", a.mnt, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* every FUSE read has a buffer of up to 4 MiB: keep such buffers in the heap, warm, rather
     * than mapping and unmapping fresh pages per request (an O_DIRECT read into them faults
     * every page in first) */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    int dfd = -1;
    if (!a.foreground && daemon_start(&dfd)) {
        fprintf(stderr, "cairn-mount: cannot fork\n");
        return 1;
    }
    if (cm.cfg.cache_dir[0]) {
        char why[256];
        cm.dcache = dc_open(cm.cfg.cache_dir, cm.cfg.cache_size, why, sizeof(why));
        if (!cm.dcache) {
            fprintf(stderr, "cairn-mount: cache_dir %s: %s\n", cm.cfg.cache_dir, why);
            daemon_done(dfd, 1, 1);
            return 1;
        }
    }
    rc = cm_start(&cm);
    if (rc) {
        fprintf(stderr, "cairn-mount: cannot reach the meta service at %s: %s\n", cm.cfg.meta,
                strerror(-rc));
        daemon_done(dfd, 1, 1);
        return 1;
    }
    struct httpd *http = cmet_start(&cm, a.mo.http, mnt, &rc);
    if (!http && rc) {
        fprintf(stderr, "cairn-mount: http=%s: %s\n", a.mo.http, strerror(-rc));
        daemon_done(dfd, 1, 1);
        cm_stop(&cm);
        return 1;
    }

    char optstr[4400];
    snprintf(optstr, sizeof(optstr), "fsname=cairn,subtype=cairn,default_permissions,max_read=%u%s",
             CAIRN_IO_MAX, a.fuse_opts);
    char *fargv[] = {argv[0], "-o", optstr, a.debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(a.debug ? 4 : 3, fargv);
    struct fuse_session *se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &cm);
    rc = 1;
    if (!se) {
        fprintf(stderr, "cairn-mount: bad FUSE options: %s\n", optstr);
        goto out_cm;
    }
    cm.se = se;
    if (fuse_set_signal_handlers(se) != 0) goto out_se;
    if (fuse_session_mount(se, mnt) != 0) {
        fprintf(stderr, "cairn-mount: cannot mount on %s\n", mnt);
        goto out_sig;
    }
    LOG_INFO("mount", "mounted %s at %s", cm.cfg.meta, mnt);
    char host[64], label[PATH_MAX + 80];
    if (gethostname(host, sizeof(host)) != 0) snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(label, sizeof(label), "%s:%s", host, mnt);
    mc_set_label(&cm.meta, label);
    kt_start(mnt, cm.cfg.kernel_readahead);
    daemon_done(dfd, 0, a.mo.log_file[0] == 0 && a.foreground);
    dfd = -1;

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (!lc) goto out_umount;
    fuse_loop_cfg_set_clone_fd(lc, 1);
    fuse_loop_cfg_set_max_threads(lc, (unsigned)cm.cfg.max_threads);
    fuse_loop_cfg_set_idle_threads(lc, 10);
    rc = fuse_session_loop_mt(se, lc) ? 1 : 0;
    fuse_loop_cfg_destroy(lc);
out_umount:
    fuse_session_unmount(se);
out_sig:
    fuse_remove_signal_handlers(se);
    /* unmounted: the rest is the mount's own orderly end (the session closed, the disk cache's
     * writer stopped and its index written), which a stop request arriving now (umount then
     * SIGTERM, as service managers do) must not cut short */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
out_se:
    fuse_session_destroy(se);
out_cm:
    daemon_done(dfd, 1, 1);
    cmet_stop(http);
    cm_stop(&cm);
    fuse_opt_free_args(&args);
    return rc;
}
