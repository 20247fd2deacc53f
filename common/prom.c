/* prom.c - the Prometheus text exposition writer and the fixed-bucket latency histogram (see
 * prom.h). */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const uint64_t prom_hist_bounds_us[PROM_HIST_NB - 1] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static void put_s(struct wbuf *b, const char *s)
{
    wbuf_put_raw(b, s, strlen(s));
}

void prom_labels_init(struct prom_labels *l)
{
    l->s[0] = '\0';
    l->n = 0;
}

void prom_label(struct prom_labels *l, const char *key, const char *value)
{
    char tmp[PROM_LABELS_MAX];
    size_t n = 0, cap = sizeof(tmp);
    int w = snprintf(tmp, cap, "%s%s=\"", l->n ? "," : "", key);
    if (w < 0 || (size_t)w >= cap) return;
    n = (size_t)w;
    for (const char *p = value ? value : ""; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t k = esc ? 2 : 1;
        if (n + k + 2 > cap) return; /* room for the closing quote and NUL */
        if (esc)
            memcpy(tmp + n, esc, 2);
        else
            tmp[n] = *p;
        n += k;
    }
    tmp[n++] = '"';
    tmp[n] = '\0';
    if (l->n + n + 1 > sizeof(l->s)) return;
    memcpy(l->s + l->n, tmp, n + 1);
    l->n += n;
}

void prom_label_u64(struct prom_labels *l, const char *key, uint64_t value)
{
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, value);
    prom_label(l, key, v);
}

void prom_family(struct wbuf *b, const char *name, const char *type, const char *help)
{
    put_s(b, "# HELP ");
    put_s(b, name);
    wbuf_put_u8(b, ' ');
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            put_s(b, "\\\\");
        else if (*p == '\n')
            put_s(b, "\\n");
        else
            wbuf_put_u8(b, (uint8_t)*p);
    }
    put_s(b, "\n# TYPE ");
    put_s(b, name);
    wbuf_put_u8(b, ' ');
    put_s(b, type);
    wbuf_put_u8(b, '\n');
}

static void put_name(struct wbuf *b, const char *name, const struct prom_labels *l)
{
    put_s(b, name);
    if (l && l->n) {
        wbuf_put_u8(b, '{');
        wbuf_put_raw(b, l->s, l->n);
        wbuf_put_u8(b, '}');
    }
}

void prom_sample_u64(struct wbuf *b, const char *name, const struct prom_labels *l, uint64_t v)
{
    char num[32];
    put_name(b, name, l);
    snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
    put_s(b, num);
}

void prom_sample_f(struct wbuf *b, const char *name, const struct prom_labels *l, double v)
{
    char num[40];
    put_name(b, name, l);
    if (isnan(v))
        snprintf(num, sizeof(num), " NaN\n");
    else if (isinf(v))
        snprintf(num, sizeof(num), " %sInf\n", v > 0 ? "+" : "-");
    else if (v > -9.0e18 && v < 9.0e18 && v == (double)(int64_t)v)
        snprintf(num, sizeof(num), " %" PRId64 "\n", (int64_t)v); /* whole: every digit */
    else
        snprintf(num, sizeof(num), " %.15g\n", v);
    put_s(b, num);
}

void prom_counter(struct wbuf *b, const char *name, const char *help, uint64_t v)
{
    prom_family(b, name, "counter", help);
    prom_sample_u64(b, name, NULL, v);
}

void prom_gauge(struct wbuf *b, const char *name, const char *help, double v)
{
    prom_family(b, name, "gauge", help);
    prom_sample_f(b, name, NULL, v);
}

void prom_hist_observe_us(struct prom_hist *h, uint64_t us)
{
    int i = 0;
    while (i < PROM_HIST_NB - 1 && us > prom_hist_bounds_us[i])
        i++;
    __atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_us, us, __ATOMIC_RELAXED);
}

int prom_hist_any(const struct prom_hist *h)
{
    for (int i = 0; i < PROM_HIST_NB; i++)
        if (__atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED)) return 1;
    return 0;
}

void prom_hist_write(struct wbuf *b, const char *name, const struct prom_labels *l,
                     const struct prom_hist *h)
{
    char n_bucket[128], n_sum[128], n_count[128];
    snprintf(n_bucket, sizeof(n_bucket), "%s_bucket", name);
    snprintf(n_sum, sizeof(n_sum), "%s_sum", name);
    snprintf(n_count, sizeof(n_count), "%s_count", name);
    uint64_t cum = 0;
    for (int i = 0; i < PROM_HIST_NB; i++) {
        cum += __atomic_load_n(&h->bucket[i], __ATOMIC_RELAXED);
        struct prom_labels ll;
        if (l)
            ll = *l;
        else
            prom_labels_init(&ll);
        char le[32];
        if (i < PROM_HIST_NB - 1)
            snprintf(le, sizeof(le), "%g", (double)prom_hist_bounds_us[i] / 1e6);
        else
            snprintf(le, sizeof(le), "+Inf");
        prom_label(&ll, "le", le);
        prom_sample_u64(b, n_bucket, &ll, cum);
    }
    prom_sample_f(b, n_sum, l, (double)__atomic_load_n(&h->sum_us, __ATOMIC_RELAXED) / 1e6);
    prom_sample_u64(b, n_count, l, cum);
}
