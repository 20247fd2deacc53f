/* cs_metrics.c - cairn-chunk's Prometheus metrics at /metrics (option http): requests per type
 * (counts, errors, bytes, latency histograms, the phases of reads and writes), the open-chunk
 * cache, reads in flight, checksum failures and the scrubber, the disk of every data folder
 * and the chunks held.
 *
 * The HTTP server runs on a thread of its own (httpd_start with no base): everything it reads
 * is either a relaxed atomic counter of cs_stats.c or taken under the lock that guards it. The
 * chunk count walks the data folders, so it is counted at most every CSM_COUNT_EVERY_S seconds
 * and the last count is shown in between. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cs.h"
#include "httpd.h"
#include "log.h"
#include "prom.h"

#define CSM_COUNT_EVERY_S 30

/* The chunk count (HTTP thread only). */
static uint64_t csm_chunks, csm_counted_us;
static int csm_have_count;

static uint64_t ld(const uint64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static int count_one(void *arg, uint64_t id, uint32_t ver)
{
    (void)id;
    (void)ver;
    (*(uint64_t *)arg)++;
    return 0;
}

static void write_requests(struct cs_state *s, struct wbuf *b)
{
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"cairn_chunk_requests_total", "Requests answered, by type."},
        {"cairn_chunk_request_errors_total", "Requests answered with an error, by type."},
        {"cairn_chunk_request_bytes_total", "Payload bytes received and sent, by request type."},
    };
    const struct cs_stats *st = &s->stats;
    const uint64_t *vals[] = {st->req, st->err, st->bytes};
    for (int f = 0; f < 3; f++) {
        prom_family(b, fams[f].name, "counter", fams[f].help);
        for (int t = 0; t < CS_T_N; t++) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "op", cs_stats_type_name(t));
            prom_sample_u64(b, fams[f].name, &l, ld(&vals[f][t]));
        }
    }
    prom_family(b, "cairn_chunk_request_duration_seconds", "histogram",
                "Time from a request's frame received to its reply written, by type.");
    for (int t = 0; t < CS_T_N; t++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "op", cs_stats_type_name(t));
        prom_hist_write(b, "cairn_chunk_request_duration_seconds", &l, &st->lat[t]);
    }
    static const struct {
        const char *fam, *phase;
        size_t off;
    } phases[] = {
        {"cairn_chunk_read_phase_seconds_total", "queue", offsetof(struct cs_stats, read_queue_us)},
        {"cairn_chunk_read_phase_seconds_total", "disk", offsetof(struct cs_stats, read_disk_us)},
        {"cairn_chunk_read_phase_seconds_total", "checksum",
         offsetof(struct cs_stats, read_checksum_us)},
        {"cairn_chunk_read_phase_seconds_total", "send", offsetof(struct cs_stats, read_send_us)},
        {"cairn_chunk_write_phase_seconds_total", "disk", offsetof(struct cs_stats, write_disk_us)},
        {"cairn_chunk_write_phase_seconds_total", "chain",
         offsetof(struct cs_stats, write_chain_us)},
        {"cairn_chunk_write_phase_seconds_total", "fsync",
         offsetof(struct cs_stats, write_fsync_us)},
    };
    prom_family(b, "cairn_chunk_read_phase_seconds_total", "counter",
                "Time reads spent waiting for a worker (queue), reading the disk, checking "
                "checksums and sending, summed.");
    for (int i = 0; i < 4; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "phase", phases[i].phase);
        const uint64_t *v = (const uint64_t *)((const char *)st + phases[i].off);
        prom_sample_f(b, phases[i].fam, &l, (double)ld(v) / 1e6);
    }
    prom_family(b, "cairn_chunk_write_phase_seconds_total", "counter",
                "Time writes spent on the disk, waiting for the next server of the chain and in "
                "fdatasync, summed.");
    for (int i = 4; i < 7; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "phase", phases[i].phase);
        const uint64_t *v = (const uint64_t *)((const char *)st + phases[i].off);
        prom_sample_f(b, phases[i].fam, &l, (double)ld(v) / 1e6);
    }
    prom_gauge(b, "cairn_chunk_reads_in_flight", "Reads handed to the read workers, not answered.",
               (double)ld(&st->reads_in_flight));
    prom_gauge(b, "cairn_chunk_reads_in_flight_max", "Most reads in flight at once so far.",
               (double)ld(&st->reads_in_flight_max));
    prom_counter(b, "cairn_chunk_checksum_errors_total",
                 "Client reads refused because a block failed its checksum.",
                 ld(&st->cksum_errors));
    prom_counter(b, "cairn_chunk_scrub_chunks_total", "Chunks the scrubber checked.",
                 ld(&st->scrub_chunks));
    prom_counter(b, "cairn_chunk_scrub_bad_chunks_total",
                 "Chunks the scrubber found with a bad block.", ld(&st->scrub_bad));
    prom_counter(b, "cairn_chunk_scrub_passes_total", "Whole passes the scrubber finished.",
                 ld(&st->scrub_passes));
}

static void write_state(struct cs_state *s, struct wbuf *b)
{
    uint64_t hits, misses;
    int open;
    cstore_cache_counts(&s->store, &hits, &misses, &open);
    prom_counter(b, "cairn_chunk_open_cache_hits_total",
                 "Chunk lookups that found the chunk file open.", hits);
    prom_counter(b, "cairn_chunk_open_cache_misses_total",
                 "Chunk lookups that had to open the chunk file.", misses);
    prom_gauge(b, "cairn_chunk_open_cache_chunks", "Chunk files kept open.", open);
    pthread_mutex_lock(&s->lock);
    int conns = s->nconns;
    pthread_mutex_unlock(&s->lock);
    prom_gauge(b, "cairn_chunk_connections", "Client connections being served.", conns);
    prom_gauge(b, "cairn_chunk_uptime_seconds", "Seconds since the server started.",
               (double)(cstore_now_us() - s->stats.start_us) / 1e6);
    struct prom_labels l;
    char id[20];
    snprintf(id, sizeof(id), "%016" PRIx64, s->server_id);
    prom_labels_init(&l);
    prom_label(&l, "id", id);
    prom_label(&l, "addr", s->advertise);
    prom_label(&l, "zone", s->cfg.zone);
    prom_family(b, "cairn_chunk_info", "gauge", "This chunk server's id, address and zone.");
    prom_sample_u64(b, "cairn_chunk_info", &l, 1);
}

static void write_disks(struct cs_state *s, struct wbuf *b)
{
    struct cstore *cs = &s->store;
    char path[CSTORE_MAX_DIRS][sizeof(cs->dirs[0].path)];
    int ok[CSTORE_MAX_DIRS], n = cs->ndirs;
    pthread_mutex_lock(&cs->dir_lock);
    for (int d = 0; d < n; d++) {
        memcpy(path[d], cs->dirs[d].path, sizeof(path[d]));
        ok[d] = cs->dirs[d].ok;
    }
    pthread_mutex_unlock(&cs->dir_lock);
    struct statvfs v[CSTORE_MAX_DIRS];
    int have[CSTORE_MAX_DIRS];
    for (int d = 0; d < n; d++)
        have[d] = ok[d] && statvfs(path[d], &v[d]) == 0;
    prom_family(b, "cairn_chunk_data_dir_ok", "gauge",
                "Whether a data folder is in service (0: taken out after it vanished or failed).");
    for (int d = 0; d < n; d++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "path", path[d]);
        prom_sample_u64(b, "cairn_chunk_data_dir_ok", &l, (uint64_t)ok[d]);
    }
    prom_family(b, "cairn_chunk_disk_size_bytes", "gauge",
                "Size of the file system of a data folder in service.");
    for (int d = 0; d < n; d++) {
        if (!have[d]) continue;
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "path", path[d]);
        prom_sample_f(b, "cairn_chunk_disk_size_bytes", &l, (double)v[d].f_blocks * v[d].f_frsize);
    }
    prom_family(b, "cairn_chunk_disk_avail_bytes", "gauge",
                "Space of a data folder's file system available to the server.");
    for (int d = 0; d < n; d++) {
        if (!have[d]) continue;
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "path", path[d]);
        prom_sample_f(b, "cairn_chunk_disk_avail_bytes", &l, (double)v[d].f_bavail * v[d].f_frsize);
    }
    uint64_t now = cstore_now_us();
    if (!csm_have_count || now - csm_counted_us > CSM_COUNT_EVERY_S * 1000000ull) {
        uint64_t c = 0;
        cstore_foreach(cs, count_one, &c);
        csm_chunks = c;
        csm_counted_us = now;
        csm_have_count = 1;
    }
    prom_gauge(b, "cairn_chunk_chunks",
               "Chunk files held (counted at most every 30 s by walking the data folders).",
               (double)csm_chunks);
}

static void serve_metrics(struct httpd_req *req, struct wbuf *body, void *arg)
{
    struct cs_state *s = arg;
    req->content_type = PROM_CONTENT_TYPE;
    write_requests(s, body);
    write_state(s, body);
    write_disks(s, body);
}

int cs_metrics_start(struct cs_state *s, struct httpd **out)
{
    *out = NULL;
    if (!s->cfg.http[0]) return 0;
    int err = 0;
    struct httpd *h = httpd_start(NULL, s->cfg.http, &err);
    if (!h) {
        LOG_ERR("http", "cannot serve HTTP on %s: %s", s->cfg.http, strerror(-err));
        return err ? err : -EINVAL;
    }
    int rc = httpd_route(h, "/metrics", serve_metrics, s);
    if (rc) {
        LOG_ERR("http", "routes: %s", strerror(-rc));
        httpd_stop(h);
        return rc;
    }
    LOG_INFO("http", "serving metrics on %s (port %u): /metrics", s->cfg.http, httpd_port(h));
    *out = h;
    return 0;
}
