/* test_common_prom.c - unit tests of the Prometheus text writer (common/prom.c): label values
 * escaped as the exposition format says, families and samples as Prometheus parses them
 * (checked with `promtool check metrics` when promtool is installed, as the tests' deps
 * install it), numbers written exactly, and the latency histogram: the right bucket for each
 * observation, cumulative buckets whose +Inf equals _count, and no observation lost when
 * several threads observe at once. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "prom.h"
#include "unit_main.h"

/* The wbuf's text, NUL-terminated (owned by b). */
static const char *text(struct wbuf *b)
{
    wbuf_put_u8(b, 0);
    b->len--;
    return (const char *)b->data;
}

START_TEST(test_label_values_escaped)
{
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "zone", "a\"b\\c\nd");
    prom_label(&l, "addr", "127.0.0.1:9530");
    prom_label(&l, "empty", NULL);
    ck_assert_str_eq(l.s, "zone=\"a\\\"b\\\\c\\nd\",addr=\"127.0.0.1:9530\",empty=\"\"");
    struct wbuf b;
    wbuf_init(&b);
    prom_sample_u64(&b, "x_total", &l, 7);
    ck_assert_str_eq(text(&b),
                     "x_total{zone=\"a\\\"b\\\\c\\nd\",addr=\"127.0.0.1:9530\",empty=\"\"} 7\n");
    wbuf_free(&b);
}
END_TEST

START_TEST(test_label_too_long_left_out_whole)
{
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "a", "1");
    char big[PROM_LABELS_MAX + 10];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    prom_label(&l, "big", big);
    ck_assert_str_eq(l.s, "a=\"1\""); /* never a label cut in the middle of an escape */
}
END_TEST

START_TEST(test_numbers)
{
    struct wbuf b;
    wbuf_init(&b);
    prom_sample_f(&b, "a", NULL, 270553174016.0);
    prom_sample_f(&b, "b", NULL, 0.25);
    prom_sample_f(&b, "c", NULL, INFINITY);
    prom_sample_u64(&b, "d", NULL, UINT64_MAX);
    prom_sample_f(&b, "e", NULL, -3);
    ck_assert_str_eq(text(&b), "a 270553174016\nb 0.25\nc +Inf\nd 18446744073709551615\ne -3\n");
    wbuf_free(&b);
}
END_TEST

START_TEST(test_family_help_escaped)
{
    struct wbuf b;
    wbuf_init(&b);
    prom_family(&b, "x", "gauge", "line\\one\nline two");
    ck_assert_str_eq(text(&b), "# HELP x line\\\\one\\nline two\n# TYPE x gauge\n");
    wbuf_free(&b);
}
END_TEST

START_TEST(test_hist_buckets_cumulative)
{
    struct prom_hist h;
    memset(&h, 0, sizeof(h));
    ck_assert(!prom_hist_any(&h));
    prom_hist_observe_us(&h, 100);      /* le 0.0001 (bounds are inclusive) */
    prom_hist_observe_us(&h, 101);      /* le 0.00025 */
    prom_hist_observe_us(&h, 3000);     /* le 0.005 */
    prom_hist_observe_us(&h, 60000000); /* +Inf only */
    ck_assert(prom_hist_any(&h));
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "op", "read");
    struct wbuf b;
    wbuf_init(&b);
    prom_hist_write(&b, "lat_seconds", &l, &h);
    const char *t = text(&b);
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{op=\"read\",le=\"0.0001\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{op=\"read\",le=\"0.00025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{op=\"read\",le=\"0.0025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{op=\"read\",le=\"0.005\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{op=\"read\",le=\"10\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_sum{op=\"read\"} 60.003201\n"));
    ck_assert_ptr_nonnull(strstr(t, "lat_seconds_count{op=\"read\"} 4\n"));
    wbuf_free(&b);
}
END_TEST

#define OBS_THREADS 4
#define OBS_EACH 100000

static void *observer(void *arg)
{
    struct prom_hist *h = arg;
    for (int i = 0; i < OBS_EACH; i++)
        prom_hist_observe_us(h, (uint64_t)(i % 2000));
    return NULL;
}

START_TEST(test_hist_threads_lose_nothing)
{
    static struct prom_hist h;
    pthread_t th[OBS_THREADS];
    for (int i = 0; i < OBS_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, observer, &h), 0);
    for (int i = 0; i < OBS_THREADS; i++)
        pthread_join(th[i], NULL);
    uint64_t n = 0;
    for (int i = 0; i < PROM_HIST_NB; i++)
        n += h.bucket[i];
    ck_assert_uint_eq(n, (uint64_t)OBS_THREADS * OBS_EACH);
    /* each thread observed 0..1999 us fifty times: sum = 50 * 1999 * 2000 / 2 per thread */
    ck_assert_uint_eq(h.sum_us, (uint64_t)OBS_THREADS * 50u * 1999u * 1000u);
}
END_TEST

/* A whole page with every kind of family passes promtool's parser and linter. */
START_TEST(test_promtool_accepts)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not installed (make deps): skipping its check\n");
        return;
    }
    struct wbuf b;
    wbuf_init(&b);
    prom_counter(&b, "cairn_test_requests_total", "Requests.", 3);
    prom_gauge(&b, "cairn_test_free_bytes", "Free \"space\".", 1e12);
    prom_family(&b, "cairn_test_up", "gauge", "Whether a server is up.");
    const char *zones[] = {"r\"1\\x", "new\nline", ""};
    for (int i = 0; i < 3; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label_u64(&l, "id", (uint64_t)i);
        prom_label(&l, "zone", zones[i]);
        prom_sample_u64(&b, "cairn_test_up", &l, 1);
    }
    struct prom_hist h;
    memset(&h, 0, sizeof(h));
    prom_hist_observe_us(&h, 1234);
    prom_family(&b, "cairn_test_duration_seconds", "histogram", "Latency.");
    prom_hist_write(&b, "cairn_test_duration_seconds", NULL, &h);
    ck_assert_int_eq(b.err, 0);
    char path[] = "/tmp/cairn-prom-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "promtool check metrics <%s", path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "promtool check metrics refused:\n%s", text(&b));
    wbuf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("prom");
    TCase *t = tcase_create("text");
    tcase_add_test(t, test_label_values_escaped);
    tcase_add_test(t, test_label_too_long_left_out_whole);
    tcase_add_test(t, test_numbers);
    tcase_add_test(t, test_family_help_escaped);
    tcase_add_test(t, test_promtool_accepts);
    suite_add_tcase(s, t);
    t = tcase_create("histogram");
    tcase_add_test(t, test_hist_buckets_cumulative);
    tcase_add_test(t, test_hist_threads_lose_nothing);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
