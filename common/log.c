/* log.c - levelled logging: one line per message, timestamp, level, subsystem. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int log_level_current = LOG_LVL_INFO;
static FILE *log_out;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

int log_open_file(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f) return -errno;
    setvbuf(f, NULL, _IOLBF, 0);
    pthread_mutex_lock(&log_lock);
    if (log_out && log_out != stderr) fclose(log_out);
    log_out = f;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_msg(int level, const char *subsys, const char *fmt, ...)
{
    if (level > log_level_current) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    FILE *out = log_out ? log_out : stderr;
    fprintf(out, "%s.%03ldZ %-5s %-6s ", stamp, ts.tv_nsec / 1000000, level_names[level], subsys);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}
