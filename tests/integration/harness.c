/* harness.c - real processes and mounts for the integration tests (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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

uint16_t h_free_port(void)
{
    static uint16_t last;
    for (int tries = 0; tries < 50; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            socklen_t l = sizeof(a);
            getsockname(fd, (struct sockaddr *)&a, &l);
            close(fd);
            uint16_t p = ntohs(a.sin_port);
            if (p != last) {
                last = p;
                return p;
            }
        } else {
            close(fd);
        }
    }
    return 0;
}

pid_t h_spawn(char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
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

int h_alive(pid_t pid)
{
    int st;
    return pid > 0 && waitpid(pid, &st, WNOHANG) == 0;
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
        if (r < 0) return -errno;
        if (net_now_ms() >= end) {
            kill(pid, SIGKILL);
            if (waitpid(pid, &st, 0) == pid) return st;
            return -errno;
        }
        sleep_ms(10);
    }
}

static pid_t start_meta_proc(struct h_cluster *c)
{
    char prog[512], listen[64], data[300], log[300];
    h_prog("cairn-meta", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", c->meta_port);
    snprintf(data, sizeof(data), "--data_dir=%s/meta", c->dir);
    snprintf(log, sizeof(log), "%s/meta.log", c->dir);
    char *argv[] = {prog, listen, data, "--log_level=info", "--session_timeout=10", NULL};
    return h_spawn(argv, log);
}

int h_meta_start(struct h_cluster *c, const char *tag)
{
    memset(c, 0, sizeof(*c));
    int rc = h_mkdtemp(tag, c->dir, sizeof(c->dir));
    if (rc) return rc;
    c->meta_port = h_free_port();
    snprintf(c->meta_addr, sizeof(c->meta_addr), "127.0.0.1:%u", c->meta_port);
    c->meta_pid = start_meta_proc(c);
    if (c->meta_pid < 0) return (int)c->meta_pid;
    return h_wait_port(c->meta_port, 10000);
}

int h_meta_restart(struct h_cluster *c)
{
    c->meta_pid = start_meta_proc(c);
    if (c->meta_pid < 0) return (int)c->meta_pid;
    return h_wait_port(c->meta_port, 10000);
}

int h_cs_start(struct h_cluster *c, int i)
{
    if (i < 0 || i >= H_MAX_CS) return -EINVAL;
    if (c->cs_port[i] == 0) c->cs_port[i] = h_free_port();
    char base[sizeof(c->dir)];
    memcpy(base, c->dir, sizeof(base));
    snprintf(c->cs_dir[i], sizeof(c->cs_dir[i]), "%s/cs%d", base, i);
    mkdir(c->cs_dir[i], 0755);
    char prog[512], listen[64], meta[80], data[320], log[320];
    h_prog("cairn-chunk", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", c->cs_port[i]);
    snprintf(meta, sizeof(meta), "--meta=%s", c->meta_addr);
    snprintf(data, sizeof(data), "--data_dirs=%s", c->cs_dir[i]);
    snprintf(log, sizeof(log), "%s/cs%d.log", c->dir, i);
    char *argv[] = {prog, listen, meta, data, "--heartbeat_ms=500", "--log_level=info", NULL};
    c->cs_pid[i] = h_spawn(argv, log);
    if (c->cs_pid[i] < 0) return (int)c->cs_pid[i];
    if (i >= c->ncs) c->ncs = i + 1;
    return h_wait_port(c->cs_port[i], 10000);
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

int h_mount_opts(struct h_cluster *c, const char *extra)
{
    if (c->nmounts >= 4) return -ENOSPC;
    int k = c->nmounts;
    char base[sizeof(c->dir)];
    memcpy(base, c->dir, sizeof(base));
    snprintf(c->mnt[k], sizeof(c->mnt[k]), "%s/mnt%d", base, k);
    mkdir(c->mnt[k], 0755);
    char prog[512], opts[400], log[320];
    h_prog("cairn-mount", prog, sizeof(prog));
    snprintf(opts, sizeof(opts), "meta=%s%s%s", c->meta_addr, extra && *extra ? "," : "",
             extra ? extra : "");
    snprintf(log, sizeof(log), "%s/mount%d.log", c->dir, k);
    char *argv[] = {prog, c->mnt[k], "-f", "-o", opts, NULL};
    c->mount_pid[k] = h_spawn(argv, log);
    if (c->mount_pid[k] < 0) return (int)c->mount_pid[k];
    c->nmounts++;
    uint64_t end = net_now_ms() + 10000;
    while (!is_fuse_mounted(c->mnt[k])) {
        if (net_now_ms() > end || !h_alive(c->mount_pid[k])) return -ETIMEDOUT;
        sleep_ms(20);
    }
    return k;
}

int h_mount(struct h_cluster *c)
{
    return h_mount_opts(c, NULL);
}

int h_umount(struct h_cluster *c, int k)
{
    if (k < 0 || k >= c->nmounts || c->mount_pid[k] <= 0) return -EINVAL;
    if (umount2(c->mnt[k], 0) != 0) umount2(c->mnt[k], MNT_DETACH);
    int st = h_kill_wait(c->mount_pid[k], SIGTERM, 5000);
    c->mount_pid[k] = 0;
    return st < 0 ? st : 0;
}

void h_cluster_stop(struct h_cluster *c)
{
    for (int k = 0; k < c->nmounts; k++)
        if (c->mount_pid[k] > 0) h_umount(c, k);
    for (int i = 0; i < c->ncs; i++)
        if (c->cs_pid[i] > 0) h_kill_wait(c->cs_pid[i], SIGTERM, 5000);
    if (c->meta_pid > 0) h_kill_wait(c->meta_pid, SIGTERM, 5000);
    memset(c->cs_pid, 0, sizeof(c->cs_pid));
    c->meta_pid = 0;
    if (!getenv("KEEP") && c->dir[0]) h_sh(60, "rm -rf '%s'", c->dir);
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
