/* cmetrics.c - the mount's Prometheus metrics (see cmetrics.h): FUSE requests, meta calls and
 * chunk-server reads with their latency histograms, the memory and disk caches' hits and
 * misses, and read-ahead (prefetch) use. Every value is a relaxed atomic of cstats.c, or the
 * memory cache's size under its own lock, so the HTTP thread never waits for a FUSE request. */
#include "cmetrics.h"

#include <stdio.h>
#include <string.h>

#include "client.h"
#include "cstats.h"
#include "httpd.h"
#include "prom.h"

struct cmet {
    struct cm *cm;
    const char *mnt;
};

static struct cmet cmet_ctx; /* one mount per process */

static void counter_of(struct wbuf *b, const char *name, const char *help, enum st_id id)
{
    prom_counter(b, name, help, st_get(id));
}

static void write_fuse(struct wbuf *b)
{
    static const struct {
        const char *op;
        enum st_id id;
    } ops[] = {{"read", ST_FUSE_READS},
               {"write", ST_FUSE_WRITES},
               {"open", ST_FUSE_OPENS},
               {"release", ST_FUSE_RELEASES}};
    prom_family(b, "cairn_mount_fuse_requests_total", "counter",
                "FUSE requests answered, by operation (those counted).");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "op", ops[i].op);
        prom_sample_u64(b, "cairn_mount_fuse_requests_total", &l, st_get(ops[i].id));
    }
    counter_of(b, "cairn_mount_fuse_read_bytes_total", "Bytes returned to the kernel by reads.",
               ST_FUSE_READ_BYTES);
    counter_of(b, "cairn_mount_fuse_write_bytes_total", "Bytes the kernel wrote.",
               ST_FUSE_WRITE_BYTES);
    prom_family(b, "cairn_mount_fuse_read_duration_seconds", "histogram",
                "Time from a FUSE read request to its reply.");
    prom_hist_write(b, "cairn_mount_fuse_read_duration_seconds", NULL, st_hist(STH_FUSE_READ));
    counter_of(b, "cairn_mount_opens_told_after_total",
               "Read-only opens answered from their lookup (the meta service told after).",
               ST_OPENS_TOLD_AFTER);
    counter_of(b, "cairn_mount_opens_never_told_total",
               "Of those, closed before the meta service had to be told.", ST_OPENS_NEVER_TOLD);
}

static void write_meta(struct wbuf *b)
{
    char op[48];
    prom_family(b, "cairn_mount_meta_calls_total", "counter",
                "Requests made to the meta service, by operation.");
    for (uint16_t t = 0; t < ST_META_TYPES; t++) {
        uint64_t n = st_meta_calls(t);
        if (!n) continue;
        struct prom_labels l;
        prom_labels_init(&l);
        proto_type_lname(t, op, sizeof(op));
        prom_label(&l, "op", op);
        prom_sample_u64(b, "cairn_mount_meta_calls_total", &l, n);
    }
    prom_family(b, "cairn_mount_meta_call_duration_seconds", "histogram",
                "Time a request to the meta service took, by operation.");
    for (uint16_t t = 0; t < ST_META_TYPES; t++) {
        const struct prom_hist *h = st_meta_hist(t);
        if (!h || !prom_hist_any(h)) continue;
        struct prom_labels l;
        prom_labels_init(&l);
        proto_type_lname(t, op, sizeof(op));
        prom_label(&l, "op", op);
        prom_hist_write(b, "cairn_mount_meta_call_duration_seconds", &l, h);
    }
}

static void write_data(struct wbuf *b, struct cm *cm)
{
    counter_of(b, "cairn_mount_chunk_reads_total", "Reads sent to chunk servers.", ST_CHUNK_READS);
    counter_of(b, "cairn_mount_local_reads_total",
               "Pieces read in place from the chunk files of servers on this machine.",
               ST_LOCAL_READS);
    counter_of(b, "cairn_mount_local_read_bytes_total", "Bytes read in place.",
               ST_LOCAL_READ_BYTES);
    counter_of(b, "cairn_mount_local_read_fails_total",
               "Reads in place that failed and went to a chunk server.", ST_LOCAL_READ_FAILS);
    counter_of(b, "cairn_mount_chunk_read_bytes_total", "Bytes read from chunk servers.",
               ST_CHUNK_READ_BYTES);
    prom_family(b, "cairn_mount_chunk_read_duration_seconds", "histogram",
                "Time from sending a chunk read to its verified reply.");
    prom_hist_write(b, "cairn_mount_chunk_read_duration_seconds", NULL, st_hist(STH_CHUNK_READ));
    counter_of(b, "cairn_mount_mem_cache_hit_bytes_total", "Bytes read from the memory read cache.",
               ST_CACHE_HIT_BYTES);
    counter_of(b, "cairn_mount_mem_cache_miss_bytes_total",
               "Bytes the memory read cache did not have.", ST_CACHE_MISS_BYTES);
    counter_of(b, "cairn_mount_disk_cache_hit_bytes_total",
               "Bytes read from the local disk cache (cache_dir).", ST_DISK_CACHE_HIT_BYTES);
    counter_of(b, "cairn_mount_disk_cache_miss_bytes_total",
               "Bytes the local disk cache did not have.", ST_DISK_CACHE_MISS_BYTES);
    counter_of(b, "cairn_mount_prefetch_queued_total", "Segments queued for read-ahead (prefetch).",
               ST_PREFETCH_SEGMENTS);
    counter_of(b, "cairn_mount_prefetch_used_total", "Prefetched segments read at least once.",
               ST_PREFETCH_USED);
    counter_of(b, "cairn_mount_prefetch_wasted_total", "Prefetched segments dropped unread.",
               ST_PREFETCH_WASTED);
    if (cm->cache) {
        prom_gauge(b, "cairn_mount_mem_cache_bytes", "Bytes of file data in the memory cache.",
                   (double)rc_bytes(cm->cache));
        prom_gauge(b, "cairn_mount_mem_cache_limit_bytes", "The memory cache's limit.",
                   (double)rc_limit(cm->cache));
    }
}

static void serve_metrics(struct httpd_req *req, struct wbuf *body, void *arg)
{
    struct cmet *x = arg;
    req->content_type = PROM_CONTENT_TYPE;
    write_fuse(body);
    write_meta(body);
    write_data(body, x->cm);
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "mountpoint", x->mnt);
    prom_label(&l, "meta", x->cm->cfg.meta);
    prom_family(body, "cairn_mount_info", "gauge", "The mount point and the meta service.");
    prom_sample_u64(body, "cairn_mount_info", &l, 1);
}

struct httpd *cmet_start(struct cm *cm, const char *hostport, const char *mnt, int *err)
{
    *err = 0;
    if (!hostport || !*hostport) return NULL;
    cmet_ctx.cm = cm;
    cmet_ctx.mnt = mnt;
    struct httpd *h = httpd_start(NULL, hostport, err);
    if (!h) return NULL;
    int rc = httpd_route(h, "/metrics", serve_metrics, &cmet_ctx);
    if (rc) {
        httpd_stop(h);
        *err = rc;
        return NULL;
    }
    return h;
}

void cmet_stop(struct httpd *h)
{
    httpd_stop(h);
}
