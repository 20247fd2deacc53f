/* test_cluster_ops.c - the cluster-wide commands an operator watches a cluster with, on a real
 * cluster (cairn-meta, three cairn-chunk servers on their own tmpfs, one mount):
 *
 * - status_and_cs_list: `cairn status MNT` says healthy and exits 0, with the three servers up,
 *   the files' inodes and bytes and the mount's session; `cairn cs list MNT --json` lists the
 *   three servers with their addresses; a path that is not on a mount is a usage error (2);
 *   after a chunk server is killed, `cairn status` says degraded and exits 1.
 * - top_shows_live_rates: while a writer thread writes through the mount, `cairn top MNT
 *   --json` shows write bytes/s on the chunk servers and on the mount (named by its mount
 *   point); then, while a reader reads the file through a second mount, the chunk servers and
 *   that mount show read bytes/s. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"
#include "harness_repl.h"

#define MiB (1024L * 1024L)
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2"
#define CS_OPTS "heartbeat_ms=200"

/* `cairn ARGS` with the JSON it prints given to the python3 expression py: its output in out;
 * fails the test when either fails. */
static void cairn_py(const char *py, char *out, size_t len, const char *args)
{
    int rc = h_cairn_py(hr_c, py, out, len, "%s", args);
    ck_assert_msg(rc == 0, "cairn %s | %s: %s", args, py, out);
}

START_TEST(status_and_cs_list)
{
    hr_start("status", 3, META_OPTS, CS_OPTS, NULL, "256m");
    const char *mnt = hr_c->mnt[0];
    char f[400], out[4096], args[600];
    snprintf(f, sizeof(f), "%s/f", mnt);
    hr_write_file(f, 7, 8 * MiB);
    hr_wait_file(f, 2, 0, 0, 30, "2 valid copies after the write");

    snprintf(args, sizeof(args), "status %s", mnt);
    int rc = h_cairn(hr_c, out, sizeof(out), "%s", args);
    ck_assert_msg(rc == 0, "cairn status exited %d: %s", rc, out);
    ck_assert_msg(strstr(out, ": healthy\n") && strstr(out, "3 up, 0 down"), "%s", out);

    snprintf(args, sizeof(args), "status --json %s", mnt);
    cairn_py("print(d['state'], d['chunk_servers']['up'], d['inodes'] >= 2, "
             "d['file_bytes'] >= 8 << 20, d['sessions'] >= 1, d['leader']['addr'] != '')",
             out, sizeof(out), args);
    ck_assert_str_eq(out, "healthy 3 True True True True");

    snprintf(args, sizeof(args), "cs list --json %s", mnt);
    cairn_py("print(' '.join(s['addr'] + '/' + s['state'] for s in "
             "sorted(d['servers'], key=lambda s: int(s['addr'].split(':')[1]))))",
             out, sizeof(out), args);
    uint16_t port[3] = {hr_c->cs_port[0], hr_c->cs_port[1], hr_c->cs_port[2]};
    for (int i = 0; i < 3; i++)
        for (int k = i + 1; k < 3; k++)
            if (port[k] < port[i]) {
                uint16_t t = port[i];
                port[i] = port[k];
                port[k] = t;
            }
    char want[200];
    snprintf(want, sizeof(want), "127.0.0.1:%u/up 127.0.0.1:%u/up 127.0.0.1:%u/up", port[0],
             port[1], port[2]);
    ck_assert_str_eq(out, want);

    rc = h_cairn(hr_c, out, sizeof(out), "status %s", hr_c->dir);
    ck_assert_msg(rc == 2 && strstr(out, "not on a CairnFS mount"), "exit %d: %s", rc, out);

    ck_assert_int_eq(h_cs_kill(hr_c, 2, SIGKILL), 0);
    uint64_t end = hfs_now_ms() + 20000;
    for (;;) {
        rc = h_cairn(hr_c, out, sizeof(out), "status %s", mnt);
        if (rc == 1 && strstr(out, ": degraded\n") && strstr(out, "2 up, 1 down")) break;
        ck_assert_msg(hfs_now_ms() < end, "no degraded status 20 s after a kill: exit %d: %s", rc,
                      out);
        hfs_sleep_ms(500);
    }
    h_cluster_stop(hr_c);
}
END_TEST

struct writer {
    char path[400];
    volatile int stop;
    long written;
    int err;
};

/* Write 1 MiB pieces (a 64 MiB file over and over) until told to stop or 120 s passed. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    static char buf[MiB];
    memset(buf, 'w', sizeof(buf));
    int fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        w->err = errno;
        return NULL;
    }
    uint64_t end = hfs_now_ms() + 120000;
    while (!w->stop && hfs_now_ms() < end) {
        off_t off = (off_t)(w->written % (64 * MiB));
        if (pwrite(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf)) {
            w->err = errno;
            break;
        }
        w->written += MiB;
        if (w->written % (16 * MiB) == 0) fsync(fd);
    }
    close(fd);
    return NULL;
}

START_TEST(top_shows_live_rates)
{
    hr_start("top", 3, META_OPTS, CS_OPTS, NULL, "512m");
    const char *mnt = hr_c->mnt[0];
    struct writer w = {0};
    snprintf(w.path, sizeof(w.path), "%s/busy", mnt);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
    char out[4096], args[600], py[800];
    /* a mount reports every CLIENT_STATS_S (2 s) from its start: wait (15 s at most, a loaded
     * machine) until the meta service has heard from this one, so both of top's samples do */
    snprintf(args, sizeof(args), "top --json --interval 1 %s", mnt);
    snprintf(py, sizeof(py), "print(len([x for x in d['mounts'] if x['label'].endswith(':%s')]))",
             mnt);
    for (int i = 0; i < 15 && !(h_cairn_py(hr_c, py, out, sizeof(out), "%s", args) == 0 &&
                                strcmp(out, "1") == 0);
         i++)
        ;
    snprintf(args, sizeof(args), "top --json --interval 2 %s", mnt);
    snprintf(py, sizeof(py),
             "m = [x for x in d['mounts'] if x['label'].endswith(':%s')]\n"
             "print(len(d['servers']), sum(s['write_bytes_per_s'] for s in d['servers']) > 0, "
             "len(m), m[0]['known'] and m[0]['write_bytes_per_s'] > 0 if m else None)",
             mnt);
    int rc = h_cairn_py(hr_c, py, out, sizeof(out), "%s", args);
    w.stop = 1;
    pthread_join(th, NULL);
    ck_assert_msg(w.err == 0, "writer: %s", strerror(w.err));
    ck_assert_msg(rc == 0, "cairn %s: %s", args, out);
    ck_assert_msg(w.written > 0, "nothing was written");
    ck_assert_str_eq(out, "3 True 1 True");

    /* reads: the file again and again, through a second mount whose memory cache is too small
     * to keep it and that reads nothing in place (so the chunk servers serve every pass) */
    int k = h_mount_opts(hr_c, HR_MOUNT_OPTS ",mem_cache_size=4M,local_reads=0");
    ck_assert_int_ge(k, 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "for i in $(seq 200); do cat '%s/busy' > /dev/null; "
             "echo 3 > /proc/sys/vm/drop_caches; done",
             hr_c->mnt[k]);
    pid_t reader = fork();
    ck_assert_int_ge(reader, 0);
    if (reader == 0) {
        setpgid(0, 0); /* its own group: the loop and its cat are killed together */
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    snprintf(py, sizeof(py),
             "m = [x for x in d['mounts'] if x['label'].endswith(':%s')]\n"
             "print(sum(s['read_bytes_per_s'] for s in d['servers']) > 0, "
             "m[0]['read_bytes_per_s'] > 0 if m else None)",
             hr_c->mnt[k]);
    rc = h_cairn_py(hr_c, py, out, sizeof(out), "%s", args);
    kill(-reader, SIGKILL);
    h_kill_wait(reader, SIGKILL, 5000);
    ck_assert_msg(rc == 0, "cairn %s: %s", args, out);
    ck_assert_str_eq(out, "True True");
    h_cluster_stop(hr_c);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {{"status", status_and_cs_list}, {"top", top_shows_live_rates}};
    return hr_main("cluster-ops", "cluster_ops", tests, sizeof(tests) / sizeof(tests[0]), 180);
}
