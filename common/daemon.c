/* daemon.c - background start with a readiness pipe, and pid files (daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon.h"

int daemon_start(int *fd_out)
{
    int p[2];
    if (pipe(p)) return -errno;
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid > 0) {
        close(p[1]);
        char c = 1;
        ssize_t n;
        do
            n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? c : 1);
    }
    close(p[0]);
    setsid();
    *fd_out = p[1];
    return 0;
}

void daemon_done(int fd, int status, int keep_stderr)
{
    if (fd < 0) return;
    char c = (char)status;
    if (write(fd, &c, 1) != 1) { /* the parent is gone; nothing to tell */
    }
    close(fd);
    if (status != 0) return;
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        if (!keep_stderr) dup2(nul, 2);
        if (nul > 2) close(nul);
    }
}

int pidfile_write(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    fprintf(f, "%d\n", (int)getpid());
    return fclose(f) ? -errno : 0;
}

long daemon_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1L << 30) ? 1L << 30 : (long)rl.rlim_cur;
}

int daemon_boot_id(char *out, size_t cap)
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, out, cap - 1);
    int err = errno;
    close(fd);
    if (n <= 0) return n < 0 ? -err : -EIO;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        n--;
    out[n] = 0;
    return n > 0 ? (int)n : -EIO;
}
