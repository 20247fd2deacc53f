/* scrub.c - the scrubber thread: every scrub_interval seconds it re-reads and verifies every
 * block of every chunk, throttled by a token bucket at scrub_rate MiB/s; a bad block is logged,
 * its chunk marked bad (never served) and reported to meta. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs.h"
#include "log.h"
#include "net.h"

struct scrub_ctx {
    struct cs_state *s;
    uint64_t t0;    /* ms at pass start */
    uint64_t bytes; /* bytes read this pass */
    uint64_t nchunks, nbad;
};

/* Token bucket: sleep until bytes read fit the rate since the pass started. */
static void scrub_rate(void *arg, uint32_t n)
{
    struct scrub_ctx *x = arg;
    x->bytes += n;
    uint64_t rate = (uint64_t)x->s->cfg.scrub_rate << 20; /* bytes per second */
    if (!rate) return;
    for (int i = 0; i < 1000 && !x->s->stop; i++) {
        uint64_t due_ms = x->bytes * 1000 / rate;
        uint64_t el = net_now_ms() - x->t0;
        if (el >= due_ms) break;
        uint64_t w = due_ms - el;
        usleep((useconds_t)(w > 100 ? 100000 : w * 1000));
    }
}

static int scrub_one(void *arg, uint64_t id, uint32_t ver)
{
    struct scrub_ctx *x = arg;
    uint32_t bad = 0;
    int rc = cstore_scrub_chunk(&x->s->store, id, ver, &bad, scrub_rate, x);
    x->nchunks++;
    cs_stat_add(&x->s->stats.scrub_chunks, 1);
    if (rc == -EUCLEAN) {
        x->nbad++;
        cs_stat_add(&x->s->stats.scrub_bad, 1);
        LOG_ERR("scrub", "chunk %016" PRIx64 " v%u block %u: bad checksum", id, ver, bad);
        cs_meta_report_bad(x->s, id, ver, bad);
    }
    return x->s->stop;
}

static void *scrub_main(void *arg)
{
    struct cs_state *s = arg;
    while (!s->stop) {
        struct scrub_ctx x = {.s = s, .t0 = net_now_ms()};
        cstore_foreach(&s->store, scrub_one, &x);
        cs_stat_add(&s->stats.scrub_passes, 1);
        LOG_INFO("scrub", "pass done: %" PRIu64 " chunks, %" PRIu64 " bad, %" PRIu64 " MiB",
                 x.nchunks, x.nbad, x.bytes >> 20);
        for (int t = 0; t < s->cfg.scrub_interval * 10 && !s->stop; t++)
            usleep(100000);
    }
    return NULL;
}

int cs_scrub_start(struct cs_state *s, pthread_t *th, int *started)
{
    *started = 0;
    if (s->cfg.scrub_rate <= 0) return 0;
    int rc = pthread_create(th, NULL, scrub_main, s);
    if (rc) return -rc;
    *started = 1;
    return 0;
}
