/* progress.c - a progress bar on a terminal, plain lines otherwise (progress.h). */
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH 30

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void progress_init(struct progress *p, FILE *out, const char *what, const char *unit)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->what = what;
    p->unit = unit;
    p->tty = isatty(fileno(out));
    p->line_ms = PROGRESS_LINE_MS;
    p->start_ms = p->last_ms = now_ms();
}

static unsigned percent(const struct progress *p)
{
    if (!p->total) return 0;
    uint64_t d = p->done < p->total ? p->done : p->total;
    return (unsigned)(d * 100 / p->total);
}

const char *progress_text(const struct progress *p, char *buf, size_t len)
{
    if (p->total)
        snprintf(buf, len, "%u%% (%" PRIu64 "/%" PRIu64 " %s)", percent(p), p->done, p->total,
                 p->unit);
    else
        snprintf(buf, len, "%" PRIu64 " %s", p->done, p->unit);
    return buf;
}

static void draw(struct progress *p)
{
    char text[128];
    if (!p->tty) {
        fprintf(p->out, "%s: %s\n", p->what, progress_text(p, text, sizeof(text)));
        fflush(p->out);
        p->printed = 1;
        return;
    }
    char bar[BAR_WIDTH + 1];
    if (p->total) {
        int fill = (int)(percent(p) * BAR_WIDTH / 100);
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        fprintf(p->out, "\r%s [%s] %3u%% %" PRIu64 "/%" PRIu64 " %s\033[K", p->what, bar,
                percent(p), p->done, p->total, p->unit);
    } else {
        fprintf(p->out, "\r%s: %" PRIu64 " %s\033[K", p->what, p->done, p->unit);
    }
    fflush(p->out);
    p->printed = 1;
}

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
    p->done = done;
    p->total = total;
    if (p->off) return;
    uint64_t now = now_ms();
    uint64_t every = p->tty ? PROGRESS_TTY_MS : p->line_ms;
    if (now - p->last_ms < every) return;
    p->last_ms = now;
    draw(p);
}

void progress_clear(struct progress *p)
{
    if (p->off || !p->tty || !p->printed) return;
    fputs("\r\033[K", p->out);
    fflush(p->out);
    p->printed = 0;
    p->last_ms = 0; /* drawn again at the next update */
}

void progress_end(struct progress *p)
{
    if (p->off || !p->printed) return;
    if (p->tty) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    } else {
        draw(p);
    }
    p->printed = 0;
}
