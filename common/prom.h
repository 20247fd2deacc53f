/* prom.h - writing the Prometheus text exposition format (version 0.0.4) into a wbuf, and a
 * latency histogram with fixed buckets that any thread may observe into.
 *
 * A metric family is written as its "# HELP" and "# TYPE" lines (prom_family) followed at once
 * by all its samples: the format wants a family's samples together, so a writer that loops
 * over objects writes one family per loop. Label values are escaped as the format says
 * (backslash, double quote and newline), so any name (a server address, a zone) is safe;
 * label names and metric names are the caller's constants ([a-zA-Z_][a-zA-Z0-9_]*).
 *
 * Nothing here fails loudly: a wbuf that cannot grow keeps its err (-ENOMEM) and the HTTP
 * server answers 500 (httpd.h). */
#ifndef CAIRN_PROM_H
#define CAIRN_PROM_H

#include <stdint.h>

#include "codec.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A label set being built: {k1="v1",k2="v2"} (without the braces), escaped. A label that does
 * not fit in PROM_LABELS_MAX bytes is left out (labels are short: ids, addresses, names). */
#define PROM_LABELS_MAX 512
struct prom_labels {
    char s[PROM_LABELS_MAX];
    size_t n;
};

void prom_labels_init(struct prom_labels *l);
/* Append key="value" (value escaped; NULL is written as ""). */
void prom_label(struct prom_labels *l, const char *key, const char *value);
void prom_label_u64(struct prom_labels *l, const char *key, uint64_t value);

/* "# HELP name help" and "# TYPE name type" (type: "counter", "gauge", "histogram"). Newlines
 * and backslashes in help are escaped. */
void prom_family(struct wbuf *b, const char *name, const char *type, const char *help);
/* One sample "name{labels} value" (l may be NULL: no labels). */
void prom_sample_u64(struct wbuf *b, const char *name, const struct prom_labels *l, uint64_t v);
void prom_sample_f(struct wbuf *b, const char *name, const struct prom_labels *l, double v);
/* A family of one unlabelled sample. */
void prom_counter(struct wbuf *b, const char *name, const char *help, uint64_t v);
void prom_gauge(struct wbuf *b, const char *name, const char *help, double v);

/* Latency histogram: counts per fixed bucket (upper bounds prom_hist_bounds_us, the last is
 * +Inf) and the sum of the observations, each a relaxed atomic: observing never locks, and a
 * writer sees every counter whole (the _count it writes is the sum of the buckets it read, so
 * the buckets and the count always agree; the _sum may be a few observations ahead). A zeroed
 * struct is empty. */
#define PROM_HIST_NB 17
struct prom_hist {
    uint64_t bucket[PROM_HIST_NB]; /* observations in (bound[i-1], bound[i]] */
    uint64_t sum_us;
};
/* Upper bounds in microseconds of the first PROM_HIST_NB - 1 buckets: 100 us .. 10 s. */
extern const uint64_t prom_hist_bounds_us[PROM_HIST_NB - 1];
void prom_hist_observe_us(struct prom_hist *h, uint64_t us);
/* Whether anything was observed. */
int prom_hist_any(const struct prom_hist *h);
/* The samples of one histogram series, in seconds: name_bucket{labels,le="..."} for every
 * bound and +Inf, name_sum{labels}, name_count{labels}. The family line (type "histogram") is
 * the caller's, once for all the series of name. */
void prom_hist_write(struct wbuf *b, const char *name, const struct prom_labels *l,
                     const struct prom_hist *h);

#endif
