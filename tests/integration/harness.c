/* harness.c - real processes and mounts for the integration tests (see harness.h). */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define FUSE_SUPER_MAGIC 0x65735546

const char *h_prog(const char *name, char *buf, size_t len)
{
    const char *b = getenv("BUILD");
    if (!b || !*b) b = "build";
    char cwd[256];
    if (b[0] != '/' && getcwd(cwd, sizeof(cwd)))
        snprintf(buf, len, "%s/%s/%s", cwd, b, name);
    else
        snprintf(buf, len, "%s/%s", b, name);
    return buf;
}

int h_mkdtemp(const char *tag, char *out, size_t len)
{
    snprintf(out, len, "/tmp/cairn-test-%s-XXXXXX", tag);
    return mkdtemp(out) ? 0 : -errno;
}

static int port_bindable(uint16_t p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001), .sin_port = htons(p)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* A port P such that P and P+1 are free (a meta replica uses P+1 for Raft), taken below the
 * kernel's ephemeral range (32768 and up), so no outgoing connection takes it meanwhile. */
uint16_t h_free_port(void)
{
    static uint16_t last;
    static unsigned seed;
    if (!seed) seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 500; tries++) {
        seed = seed * 1103515245u + 12345u;
        uint16_t p = (uint16_t)(20000 + (seed >> 8) % 12000);
        if (p == last || p == last + 1 || p + 1 == last) continue;
        if (port_bindable(p) && port_bindable((uint16_t)(p + 1))) {
            last = p;
            return p;
        }
    }
    return 0;
}

pid_t h_spawn_ns(const char *ns, char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        if (ns && ns[0]) {
            char p[128];
            snprintf(p, sizeof(p), "/var/run/netns/%s", ns);
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
            close(fd);
        }
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        setpgid(0, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

pid_t h_spawn(char *const argv[], const char *logpath)
{
    return h_spawn_ns(NULL, argv, logpath);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int h_wait_port(uint16_t port, int timeout_ms)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    while (net_now_ms() < end) {
        int fd = net_connect(addr, 200);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        sleep_ms(20);
    }
    return -ETIMEDOUT;
}

/* State letter of pid from /proc (0 when it does not exist). */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    return p && p[1] == ' ' ? p[2] : 0;
}

int h_alive(pid_t pid)
{
    int st;
    if (pid <= 0) return 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0) return 1;
    if (r < 0 && errno == ECHILD) { /* not our child (a forked test's): ask /proc */
        char s = proc_state(pid);
        return s && s != 'Z' && s != 'X';
    }
    return 0;
}

int h_kill_wait(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0) return -ESRCH;
    kill(pid, sig);
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        if (r < 0 && errno != ECHILD) return -errno;
        if (r < 0) { /* not our child: gone (or a zombie of its parent) is enough */
            char s = proc_state(pid);
            if (!s || s == 'Z' || s == 'X') return 0;
        }
        if (net_now_ms() >= end) {
            kill(pid, SIGKILL);
            if (r < 0) {
                for (int i = 0; i < 500 && proc_state(pid) && proc_state(pid) != 'Z'; i++)
                    sleep_ms(10);
                return 0;
            }
            if (waitpid(pid, &st, 0) == pid) return st;
            return -errno;
        }
        sleep_ms(10);
    }
}

/* h_wait_port, but give up as soon as pid (the daemon that should listen there) is gone. */
static int wait_port_pid(uint16_t port, pid_t pid, int timeout_ms)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    while (net_now_ms() < end) {
        if (h_wait_port(port, 100) == 0) return 0;
        if (!h_alive(pid)) return -ESRCH; /* it exited: see its log */
    }
    return -ETIMEDOUT;
}

/* Append each word of opts ("a=1 b=2") to argv[*n] as "--a=1" (storage in store). */
static void add_opts(char **argv, int *n, int max, char store[][160], const char *opts)
{
    if (!opts) return;
    const char *p = opts;
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

static pid_t start_meta_proc(struct h_cluster *c)
{
    char prog[512], listen[64], data[300], log[300], store[24][160];
    h_prog("cairn-meta", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", c->meta_port);
    snprintf(data, sizeof(data), "--data_dir=%s/meta", c->dir);
    snprintf(log, sizeof(log), "%s/meta.log", c->dir);
    char *argv[40] = {prog, listen, data, "--log_level=info", "--session_timeout=10"};
    int n = 5;
    add_opts(argv, &n, 39, store, c->meta_opts);
    argv[n] = NULL;
    return h_spawn(argv, log);
}

int h_meta_start(struct h_cluster *c, const char *tag)
{
    memset(c, 0, sizeof(*c));
    int rc = h_mkdtemp(tag, c->dir, sizeof(c->dir));
    if (rc) return rc;
    return h_meta_launch(c);
}

int h_meta_launch(struct h_cluster *c)
{
    if (!c->meta_port) {
        c->meta_port = h_free_port();
        snprintf(c->meta_addr, sizeof(c->meta_addr), "127.0.0.1:%u", c->meta_port);
    }
    c->meta_pid = start_meta_proc(c);
    if (c->meta_pid < 0) return (int)c->meta_pid;
    return wait_port_pid(c->meta_port, c->meta_pid, 10000);
}

int h_meta_restart(struct h_cluster *c)
{
    return h_meta_launch(c);
}

int h_cs_start(struct h_cluster *c, int i)
{
    if (i < 0 || i >= H_MAX_CS) return -EINVAL;
    if (c->cs_port[i] == 0) c->cs_port[i] = h_free_port();
    char base[sizeof(c->dir)];
    memcpy(base, c->dir, sizeof(base));
    snprintf(c->cs_dir[i], sizeof(c->cs_dir[i]), "%s/cs%d", base, i);
    mkdir(c->cs_dir[i], 0755);
    char prog[512], listen[64], meta[80], data[320], log[320], store[24][160];
    h_prog("cairn-chunk", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", c->cs_port[i]);
    snprintf(meta, sizeof(meta), "--meta=%s", c->meta_addr);
    snprintf(data, sizeof(data), "--data_dirs=%s", c->cs_dir[i]);
    snprintf(log, sizeof(log), "%s/cs%d.log", c->dir, i);
    char *argv[40] = {prog, listen, meta, data, "--heartbeat_ms=500", "--log_level=info"};
    int n = 6;
    add_opts(argv, &n, 39, store, c->cs_opts[i]);
    argv[n] = NULL;
    c->cs_pid[i] = h_spawn(argv, log);
    if (c->cs_pid[i] < 0) return (int)c->cs_pid[i];
    if (i >= c->ncs) c->ncs = i + 1;
    int rc = wait_port_pid(c->cs_port[i], c->cs_pid[i], 10000);
    if (!rc) h_cs_id(c, i); /* the server writes its id before it listens */
    return rc;
}

/* Count "registered" lines in meta.log as a proxy for live servers. */
static int registered_count(struct h_cluster *c)
{
    char path[300], line[512];
    snprintf(path, sizeof(path), "%s/meta.log", c->dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "chunk server") && strstr(line, "registered")) n++;
    fclose(f);
    return n;
}

int h_cluster_start(struct h_cluster *c, const char *tag, int ncs)
{
    int rc = h_meta_start(c, tag);
    if (rc) return rc;
    for (int i = 0; i < ncs; i++) {
        rc = h_cs_start(c, i);
        if (rc) return rc;
    }
    uint64_t end = net_now_ms() + 10000;
    while (registered_count(c) < ncs) {
        if (net_now_ms() > end) return -ETIMEDOUT;
        sleep_ms(50);
    }
    return 0;
}

static int is_fuse_mounted(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

/* Start cairn-mount for slot k at c->mnt[k] with extra options; waits until mounted. */
static int mount_slot(struct h_cluster *c, int k, const char *extra)
{
    char base[sizeof(c->dir)];
    memcpy(base, c->dir, sizeof(base));
    snprintf(c->mnt[k], sizeof(c->mnt[k]), "%s/mnt%d", base, k);
    mkdir(c->mnt[k], 0755);
    if (extra != c->mount_opts[k])
        snprintf(c->mount_opts[k], sizeof(c->mount_opts[k]), "%s", extra ? extra : "");
    char prog[512], opts[400], log[320];
    h_prog("cairn-mount", prog, sizeof(prog));
    snprintf(opts, sizeof(opts), "meta=%s%s%s", c->meta_addr, c->mount_opts[k][0] ? "," : "",
             c->mount_opts[k]);
    snprintf(log, sizeof(log), "%s/mount%d.log", c->dir, k);
    char *argv[] = {prog, c->mnt[k], "-f", "-o", opts, NULL};
    c->mount_pid[k] = h_spawn(argv, log);
    if (c->mount_pid[k] < 0) return (int)c->mount_pid[k];
    if (k >= c->nmounts) c->nmounts = k + 1;
    uint64_t end = net_now_ms() + 10000;
    while (!is_fuse_mounted(c->mnt[k])) {
        if (net_now_ms() > end || !h_alive(c->mount_pid[k])) return -ETIMEDOUT;
        sleep_ms(20);
    }
    return k;
}

int h_mount_opts(struct h_cluster *c, const char *extra)
{
    if (c->nmounts >= H_MAX_MOUNTS) return -ENOSPC;
    return mount_slot(c, c->nmounts, extra);
}

int h_mount(struct h_cluster *c)
{
    return h_mount_opts(c, NULL);
}

int h_remount(struct h_cluster *c, int k)
{
    if (k < 0 || k >= c->nmounts) return -EINVAL;
    if (c->mount_pid[k] > 0) {
        int rc = h_umount(c, k);
        if (rc) return rc;
    }
    return mount_slot(c, k, c->mount_opts[k]);
}

int h_umount(struct h_cluster *c, int k)
{
    if (k < 0 || k >= c->nmounts || c->mount_pid[k] <= 0) return -EINVAL;
    if (umount2(c->mnt[k], 0) != 0) umount2(c->mnt[k], MNT_DETACH);
    int st = h_kill_wait(c->mount_pid[k], SIGTERM, 5000);
    c->mount_pid[k] = 0;
    return st < 0 ? st : 0;
}

/* Unmount every mount point below dir (deepest first; lazily when busy). */
static void umount_below(const char *dir)
{
    size_t dl = strlen(dir);
    for (int pass = 0; pass < 16; pass++) {
        FILE *f = fopen("/proc/self/mounts", "r");
        if (!f) return;
        char line[1024], best[600] = "";
        while (fgets(line, sizeof(line), f)) {
            char dev[300], mp[600];
            if (sscanf(line, "%299s %599s", dev, mp) != 2) continue;
            if (strncmp(mp, dir, dl) != 0 || mp[dl] != '/') continue;
            if (strlen(mp) > strlen(best)) snprintf(best, sizeof(best), "%s", mp);
        }
        fclose(f);
        if (!best[0]) return;
        if (umount2(best, 0) != 0 && umount2(best, MNT_DETACH) != 0) return;
    }
}

void h_cluster_stop(struct h_cluster *c)
{
    for (int k = 0; k < c->nmounts; k++)
        if (c->mount_pid[k] > 0) h_umount(c, k);
    if (c->dir[0]) umount_below(c->dir); /* FUSE mounts of dead clients */
    for (int i = 0; i < c->ncs; i++)
        if (c->cs_pid[i] > 0) h_kill_wait(c->cs_pid[i], SIGTERM, 5000);
    if (c->meta_pid > 0) h_kill_wait(c->meta_pid, SIGTERM, 5000);
    memset(c->cs_pid, 0, sizeof(c->cs_pid));
    memset(c->mount_pid, 0, sizeof(c->mount_pid));
    c->meta_pid = 0;
    if (c->dir[0]) umount_below(c->dir); /* the chunk servers' tmpfs */
    memset(c->cs_tmpfs, 0, sizeof(c->cs_tmpfs));
    if (!getenv("KEEP") && c->dir[0]) h_sh(60, "rm -rf '%s'", c->dir);
    c->stopped = 1;
}

int h_sh(int timeout_s, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        char to[16];
        snprintf(to, sizeof(to), "%d", timeout_s);
        execlp("timeout", "timeout", "-k", "5", to, "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- clusters with options, server faults, chunk files, the cairn CLI ---------------------- */

int h_cluster_init(struct h_cluster *c, const char *parent, const char *tag)
{
    memset(c, 0, sizeof(*c));
    if (!parent) return h_mkdtemp(tag, c->dir, sizeof(c->dir));
    snprintf(c->dir, sizeof(c->dir), "%s/%s-XXXXXX", parent, tag);
    if (!mkdtemp(c->dir)) {
        int e = -errno;
        c->dir[0] = '\0';
        return e;
    }
    return 0;
}

int h_meta_set_opts(struct h_cluster *c, const char *opts)
{
    size_t l = strlen(opts ? opts : "");
    if (l >= sizeof(c->meta_opts)) return -E2BIG;
    memcpy(c->meta_opts, opts ? opts : "", l + 1);
    return 0;
}

int h_cs_set_opts(struct h_cluster *c, int i, const char *opts)
{
    if (i < 0 || i >= H_MAX_CS) return -EINVAL;
    size_t l = strlen(opts ? opts : "");
    if (l >= sizeof(c->cs_opts[i])) return -E2BIG;
    memcpy(c->cs_opts[i], opts ? opts : "", l + 1);
    return 0;
}

int h_cs_tmpfs(struct h_cluster *c, int i, const char *size)
{
    if (i < 0 || i >= H_MAX_CS || !c->dir[0]) return -EINVAL;
    char base[sizeof(c->dir)], opts[64];
    memcpy(base, c->dir, sizeof(base));
    snprintf(c->cs_dir[i], sizeof(c->cs_dir[i]), "%s/cs%d", base, i);
    if (mkdir(c->cs_dir[i], 0755) != 0 && errno != EEXIST) return -errno;
    snprintf(opts, sizeof(opts), "size=%s,mode=0755", size);
    if (mount("tmpfs", c->cs_dir[i], "tmpfs", 0, opts) != 0) return -errno;
    c->cs_tmpfs[i] = 1;
    return 0;
}

int h_cs_lose_data(struct h_cluster *c, int i)
{
    if (i < 0 || i >= H_MAX_CS || !c->cs_tmpfs[i]) return -EINVAL;
    if (!h_cs_id(c, i)) return -ENOENT; /* the id lives in the folder about to vanish */
    if (umount2(c->cs_dir[i], MNT_DETACH) != 0) return -errno;
    c->cs_tmpfs[i] = 0;
    if (rmdir(c->cs_dir[i]) != 0) return -errno;
    return 0;
}

int h_cs_kill(struct h_cluster *c, int i, int sig)
{
    if (i < 0 || i >= H_MAX_CS || c->cs_pid[i] <= 0) return -ESRCH;
    pid_t pid = c->cs_pid[i];
    c->cs_pid[i] = 0; /* never signal a reaped pid again */
    int st = h_kill_wait(pid, sig, 10000);
    if (st < 0) return st;
    /* the port is free again once the process is gone; wait until nobody answers there */
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", c->cs_port[i]);
    for (int t = 0; t < 200; t++) {
        int fd = net_connect(addr, 100);
        if (fd < 0) return 0;
        close(fd);
        sleep_ms(10);
    }
    return -EBUSY;
}

int h_cs_restart(struct h_cluster *c, int i)
{
    if (i < 0 || i >= H_MAX_CS || c->cs_pid[i] > 0) return -EBUSY;
    return h_cs_start(c, i);
}

uint64_t h_cs_id(struct h_cluster *c, int i)
{
    if (i < 0 || i >= H_MAX_CS || !c->cs_dir[i][0]) return 0;
    if (c->cs_id[i]) return c->cs_id[i];
    char path[400], buf[64];
    snprintf(path, sizeof(path), "%s/server_id", c->cs_dir[i]);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    uint64_t id = 0;
    if (fgets(buf, sizeof(buf), f)) id = strtoull(buf, NULL, 16);
    fclose(f);
    c->cs_id[i] = id;
    return id;
}

int h_cs_index(struct h_cluster *c, uint64_t id)
{
    for (int i = 0; id && i < c->ncs; i++)
        if (h_cs_id(c, i) == id) return i;
    return -ENOENT;
}

int h_cs_index_addr(struct h_cluster *c, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon) return -ENOENT;
    long port = strtol(colon + 1, NULL, 10);
    for (int i = 0; i < c->ncs; i++)
        if (c->cs_port[i] == port) return i;
    return -ENOENT;
}

int h_cs_registrations(struct h_cluster *c, int i)
{
    uint64_t id = h_cs_id(c, i);
    if (!id) return 0;
    char path[300], line[1024], hex[24];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id);
    snprintf(path, sizeof(path), "%s/meta.log", c->dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, hex) && strstr(line, "registered") && !strstr(line, "unregistered")) n++;
    fclose(f);
    return n;
}

int h_cs_wait_registered(struct h_cluster *c, int i, int before, int timeout_ms)
{
    uint64_t end = net_now_ms() + (uint64_t)timeout_ms;
    while (h_cs_registrations(c, i) <= before) {
        if (net_now_ms() > end) return -ETIMEDOUT;
        sleep_ms(50);
    }
    return 0;
}

int h_chunk_file(struct h_cluster *c, int i, uint64_t chunk_id, char *out, size_t len,
                 uint32_t *ver)
{
    if (i < 0 || i >= H_MAX_CS || !c->cs_dir[i][0]) return -EINVAL;
    char sub[400], prefix[32];
    snprintf(sub, sizeof(sub), "%s/%02x", c->cs_dir[i], (unsigned)(chunk_id & 0xff));
    snprintf(prefix, sizeof(prefix), "%016llx_", (unsigned long long)chunk_id);
    DIR *d = opendir(sub);
    if (!d) return -ENOENT;
    int rc = -ENOENT;
    uint32_t best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        const char *v = e->d_name + strlen(prefix);
        char *end = NULL;
        unsigned long vv = strtoul(v, &end, 10);
        if (!end || strcmp(end, ".chk") != 0) continue; /* a temporary name */
        if (rc == 0 && vv <= best) continue;
        best = (uint32_t)vv;
        snprintf(out, len, "%s/%s", sub, e->d_name);
        rc = 0;
    }
    closedir(d);
    if (!rc && ver) *ver = best;
    return rc;
}

int h_cs_chunk_files(struct h_cluster *c, int i)
{
    if (i < 0 || i >= H_MAX_CS || !c->cs_dir[i][0]) return -EINVAL;
    int n = 0;
    for (int x = 0; x < 256; x++) {
        char sub[400];
        snprintf(sub, sizeof(sub), "%s/%02x", c->cs_dir[i], x);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l > 4 && strcmp(e->d_name + l - 4, ".chk") == 0 && strchr(e->d_name, '_')) n++;
        }
        closedir(d);
    }
    return n;
}

int h_chunk_flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) return -errno;
    off_t at = (off_t)(64u * 1024u + off);
    uint8_t b;
    int rc = 0;
    if (pread(fd, &b, 1, at) != 1)
        rc = -EIO;
    else {
        b ^= 0xff;
        if (pwrite(fd, &b, 1, at) != 1 || fsync(fd) != 0) rc = -EIO;
    }
    close(fd);
    return rc;
}

int h_drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0) return -errno;
    int rc = write(fd, "3\n", 2) == 2 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Last len-1 bytes of file path into out (NUL-terminated, trailing newlines cut). */
static void read_tail(const char *path, char *out, size_t len)
{
    if (!len) return;
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    long from = sz > (long)len - 1 ? sz - (long)len + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

static int run_v(int timeout_s, char *out, size_t len, const char *fmt, va_list ap)
{
    char cmd[4096], tmp[64] = "/tmp/cairn-h-run-XXXXXX";
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    int fd = mkstemp(tmp);
    if (fd < 0) return -1;
    close(fd);
    int rc = h_sh(timeout_s, "( %s ) >'%s' 2>&1", cmd, tmp);
    read_tail(tmp, out, len);
    unlink(tmp);
    return rc;
}

int h_run(int timeout_s, char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = run_v(timeout_s, out, len, fmt, ap);
    va_end(ap);
    return rc;
}

int h_cairn(struct h_cluster *c, char *out, size_t len, const char *fmt, ...)
{
    (void)c;
    char prog[512], args[3000];
    h_prog("cairn", prog, sizeof(prog));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    return h_run(30, out, len, "'%s' %s", prog, args);
}

int h_cairn_py(struct h_cluster *c, const char *py, char *out, size_t len, const char *fmt, ...)
{
    char prog[512], args[3000], json[320], err[320], pyf[320], res[320];
    h_prog("cairn", prog, sizeof(prog));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(json, sizeof(json), "%s/cli-last.json", c->dir);
    snprintf(err, sizeof(err), "%s/cli-last.err", c->dir);
    snprintf(pyf, sizeof(pyf), "%s/cli-last.py", c->dir);
    snprintf(res, sizeof(res), "%s/cli-last.out", c->dir);
    int rc = h_sh(30, "'%s' %s >'%s' 2>'%s'", prog, args, json, err);
    if (rc != 0) {
        char e[600];
        read_tail(err, e, sizeof(e));
        snprintf(out, len, "cairn %.300s: exit %d: %s", args, rc, e);
        return -1;
    }
    FILE *f = fopen(pyf, "w");
    if (!f) {
        snprintf(out, len, "%s: %s", pyf, strerror(errno));
        return -1;
    }
    fprintf(f, "import json, sys\nd = json.load(open(sys.argv[1]))\n%s\n", py);
    fclose(f);
    rc = h_sh(30, "python3 '%s' '%s' >'%s' 2>&1", pyf, json, res);
    read_tail(res, out, len);
    if (rc != 0) {
        char o[700];
        snprintf(o, sizeof(o), "python on the output of cairn %.200s: exit %d: %.400s", args, rc,
                 out);
        snprintf(out, len, "%s", o);
        return -1;
    }
    return 0;
}

int h_cluster_start_opts(struct h_cluster *c, const char *parent, const char *tag, int ncs,
                         const char *meta_opts, const char *cs_opts, const char *const *cs_extra,
                         const char *tmpfs_size)
{
    if (ncs < 0 || ncs > H_MAX_CS) return -EINVAL;
    int rc = h_cluster_init(c, parent, tag);
    if (!rc) rc = h_meta_set_opts(c, meta_opts);
    if (!rc) rc = h_meta_launch(c);
    for (int i = 0; i < ncs && !rc; i++) {
        char o[256];
        snprintf(o, sizeof(o), "%s %s", cs_opts ? cs_opts : "",
                 cs_extra && cs_extra[i] ? cs_extra[i] : "");
        rc = h_cs_set_opts(c, i, o);
        if (!rc && tmpfs_size) rc = h_cs_tmpfs(c, i, tmpfs_size);
        if (!rc) rc = h_cs_start(c, i);
    }
    for (int i = 0; i < ncs && !rc; i++)
        rc = h_cs_wait_registered(c, i, 0, 10000);
    return rc;
}

struct h_cluster *h_cluster_shared(void)
{
    struct h_cluster *c =
        mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED) return NULL;
    memset(c, 0, sizeof(*c));
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return c;
}

void h_cluster_leftovers(struct h_cluster *c)
{
    if (!c->dir[0]) return;
    struct stat st;
    if (c->stopped || stat(c->dir, &st) != 0) { /* the test stopped its cluster */
        memset(c, 0, sizeof(*c));
        return;
    }
    fprintf(stderr, "--- the test left its cluster in %s; end of its logs:\n", c->dir);
    h_sh(10, "cd '%s' && for f in *.log; do echo \"== $f\"; tail -n 15 \"$f\"; done 1>&2", c->dir);
    char dir[sizeof(c->dir)];
    memcpy(dir, c->dir, sizeof(dir));
    for (int k = 0; k < c->nmounts; k++)
        if (c->mount_pid[k] > 0) h_umount(c, k);
    umount_below(dir);
    for (int i = 0; i < c->ncs; i++)
        if (c->cs_pid[i] > 0) h_kill_wait(c->cs_pid[i], SIGKILL, 5000);
    if (c->meta_pid > 0) h_kill_wait(c->meta_pid, SIGKILL, 5000);
    umount_below(dir);
    /* reap anything else the test left (we are the subreaper) */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    if (getenv("KEEP"))
        fprintf(stderr, "--- kept %s\n", dir);
    else if (h_sh(60,
                  "find '%s' -xdev -type f ! -name '*.log' -delete; "
                  "find '%s' -xdev -depth -type d -empty -delete",
                  dir, dir) == 0)
        fprintf(stderr, "--- logs kept in %s\n", dir);
    memset(c, 0, sizeof(*c));
}

static void (*sig_stop)(void *);
static void *sig_arg;
static pid_t sig_runner;

static void on_stop_signal(int sig)
{
    if (getpid() == sig_runner && sig_stop) sig_stop(sig_arg);
    _exit(128 + sig);
}

void h_stop_on_signal(void (*stop)(void *), void *arg)
{
    sig_stop = stop;
    sig_arg = arg;
    sig_runner = getpid();
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
}

static void leftovers_on_signal(void *c)
{
    h_cluster_leftovers(c);
}

void h_cluster_stop_on_signal(struct h_cluster *c)
{
    h_stop_on_signal(leftovers_on_signal, c);
}
