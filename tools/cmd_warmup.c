/* cmd_warmup.c - `cairn warmup PATH...`: read every regular file under the paths through the
 * mount, so that the mount's caches (its memory read cache and, with cache_dir, its disk
 * cache) hold them before a job starts, as JuiceFS's warmup does. The files are listed first
 * (to know the total), then read whole by WU_THREADS threads, each file sequentially in 1 MiB
 * reads (whole segments, which is what the disk cache keeps). A progress bar on a terminal,
 * plain lines every few seconds otherwise, a summary (or --json) at the end. Exit status 1
 * when a file could not be read (each failure reported), 2 for a bad command line. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json_out.h"
#include "progress.h"

#define WU_THREADS 4
#define WU_BUF (1u << 20)

struct wu_file {
    char *path;
    uint64_t size;
};

struct wu {
    struct wu_file *f;
    size_t n, cap;
    uint64_t total_bytes;
    pthread_mutex_t mu;
    size_t next;         /* the next file to hand out */
    size_t files_done;   /* read or failed */
    uint64_t bytes_done; /* bytes read */
    size_t failed;
};

static struct wu *walk_into; /* nftw has no user pointer */

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    struct wu *w = walk_into;
    if (type == FTW_NS || type == FTW_DNR) {
        cli_err("warmup: %s: cannot be read", path);
        w->failed++;
        return 0;
    }
    if (type != FTW_F || !S_ISREG(st->st_mode)) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        struct wu_file *f = realloc(w->f, cap * sizeof(*f));
        if (!f) return -1;
        w->f = f;
        w->cap = cap;
    }
    char *p = strdup(path);
    if (!p) return -1;
    w->f[w->n++] = (struct wu_file){p, (uint64_t)st->st_size};
    w->total_bytes += (uint64_t)st->st_size;
    return 0;
}

/* Read one file whole; the bytes read are added to w as they come. 0 or -errno. */
static int read_file(struct wu *w, const char *path, uint8_t *buf)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    /* pages the kernel holds would be served without asking the mount: drop them first */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    for (;;) {
        ssize_t r = read(fd, buf, WU_BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0) break;
        pthread_mutex_lock(&w->mu);
        w->bytes_done += (uint64_t)r;
        pthread_mutex_unlock(&w->mu);
    }
    close(fd);
    return rc;
}

static void *reader(void *arg)
{
    struct wu *w = arg;
    uint8_t *buf = malloc(WU_BUF);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        size_t i = w->next < w->n && buf ? w->next++ : w->n;
        pthread_mutex_unlock(&w->mu);
        if (i >= w->n) break;
        int rc = read_file(w, w->f[i].path, buf);
        if (rc) cli_err("warmup: %s: %s", w->f[i].path, strerror(-rc));
        pthread_mutex_lock(&w->mu);
        w->files_done++;
        if (rc) w->failed++;
        pthread_mutex_unlock(&w->mu);
    }
    free(buf);
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int cmd_warmup(const struct cli *c)
{
    if (c->argc < 1) {
        cli_err("usage: cairn warmup PATH...");
        return CLI_USAGE;
    }
    struct wu w = {0};
    pthread_mutex_init(&w.mu, NULL);
    walk_into = &w;
    for (int i = 0; i < c->argc; i++)
        if (nftw(c->argv[i], walk_one, 32, FTW_PHYS) != 0) {
            cli_err("warmup: %s: %s", c->argv[i], strerror(errno ? errno : ENOMEM));
            w.failed++;
        }
    uint64_t t0 = now_ms();
    pthread_t th[WU_THREADS];
    int nth = 0;
    for (int i = 0; i < WU_THREADS; i++)
        if (pthread_create(&th[nth], NULL, reader, &w) == 0) nth++;
    if (nth == 0) reader(&w);
    struct progress p;
    progress_init(&p, stderr, "warmup", "files");
    p.off = c->json;
    for (;;) {
        pthread_mutex_lock(&w.mu);
        size_t done = w.files_done;
        pthread_mutex_unlock(&w.mu);
        if (done == w.n) break;
        usleep(200 * 1000);
        progress_update(&p, done, w.n);
    }
    progress_end(&p);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(now_ms() - t0) / 1000.0;
    if (c->json) {
        struct json j;
        json_init(&j, stdout);
        json_obj_begin(&j, NULL);
        json_u64(&j, "files", w.n);
        json_u64(&j, "bytes", w.bytes_done);
        json_u64(&j, "failed", w.failed);
        json_fixed(&j, "seconds", secs, 3);
        json_obj_end(&j);
        json_finish(&j);
    } else {
        char a[32];
        printf("warmup: %zu files, %s read in %.1f s%s\n", w.n,
               cli_size(w.bytes_done, a, sizeof(a)), secs, w.failed ? ", some failed" : "");
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.f[i].path);
    free(w.f);
    pthread_mutex_destroy(&w.mu);
    return w.failed ? CLI_FAIL : CLI_OK;
}
