/* test_tools_top.c - `cairn top`'s MSG_TOP decoder and rate arithmetic on hand-made replies:
 * a whole reply decodes field by field, every shorter prefix of it and a row count larger
 * than the bytes are refused (-EBADMSG), and rates are per second of the reports' own times,
 * with a counter that went down (a restarted server) counted from zero. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "cmd_top.h"
#include "codec.h"

static void put_reply(struct wbuf *b)
{
    wbuf_put_u64(b, 5000); /* now_ms */
    wbuf_put_u32(b, 2);
    for (int i = 0; i < 2; i++) {
        wbuf_put_u64(b, 0xa0 + (uint64_t)i);
        const char *addr = i ? "127.0.0.1:9531" : "127.0.0.1:9530";
        wbuf_put_str(b, addr, strlen(addr));
        wbuf_put_u8(b, (uint8_t)i); /* up, down */
        wbuf_put_u64(b, 10 + (uint64_t)i);
        wbuf_put_u64(b, 1000 + (uint64_t)i);
        wbuf_put_u64(b, 20 + (uint64_t)i);
        wbuf_put_u64(b, 2000 + (uint64_t)i);
        wbuf_put_u64(b, 4000 + (uint64_t)i);
    }
    wbuf_put_u32(b, 1);
    wbuf_put_u64(b, 77);
    wbuf_put_str(b, "host:/mnt/<b>x</b>", 18);
    wbuf_put_str(b, "127.0.0.1:5555", 14);
    for (uint64_t v = 1; v <= 5; v++)
        wbuf_put_u64(b, v * 100);
    wbuf_put_u64(b, 4500);
}

START_TEST(decodes_whole_reply)
{
    struct wbuf b;
    wbuf_init(&b);
    put_reply(&b);
    struct top_sample s;
    ck_assert_int_eq(top_decode(&s, b.data, b.len), 0);
    ck_assert_uint_eq(s.now_ms, 5000);
    ck_assert_uint_eq(s.nservers, 2);
    ck_assert_str_eq(s.servers[1].addr, "127.0.0.1:9531");
    ck_assert_uint_eq(s.servers[1].state, 1);
    ck_assert_uint_eq(s.servers[1].c.write_bytes, 2001);
    ck_assert_uint_eq(s.servers[1].c.seen_ms, 4001);
    ck_assert_uint_eq(s.nclients, 1);
    ck_assert_str_eq(s.clients[0].label, "host:/mnt/<b>x</b>");
    ck_assert_uint_eq(s.clients[0].c.meta_ops, 100);
    ck_assert_uint_eq(s.clients[0].c.write_bytes, 500);
    ck_assert_ptr_eq(top_find_client(&s, 77), &s.clients[0]);
    ck_assert_ptr_null(top_find_server(&s, 1));
    top_free(&s);
    wbuf_free(&b);
}
END_TEST

START_TEST(refuses_short_and_lying_replies)
{
    struct wbuf b;
    wbuf_init(&b);
    put_reply(&b);
    struct top_sample s;
    for (size_t n = 0; n < b.len; n++)
        ck_assert_int_eq(top_decode(&s, b.data, n), -EBADMSG);
    le_put32(b.data + 8, 1000000); /* more servers than bytes */
    ck_assert_int_eq(top_decode(&s, b.data, b.len), -EBADMSG);
    wbuf_free(&b);
}
END_TEST

START_TEST(rates_per_second_and_restarts)
{
    struct top_counts a = {.reads = 100, .read_bytes = 1000, .writes = 50, .seen_ms = 1000};
    struct top_counts b = {.reads = 300, .read_bytes = 5000, .writes = 10, .seen_ms = 3000};
    struct top_rates r;
    top_rates(&a, &b, &r);
    ck_assert(r.known);
    ck_assert(r.reads == 100.0);
    ck_assert(r.read_bytes == 2000.0);
    ck_assert(r.writes == 5.0); /* went down: a restart, 10 since */
    top_rates(&b, &b, &r);      /* no newer report: unknown */
    ck_assert(!r.known);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools_top");
    TCase *tc = tcase_create("top");
    tcase_add_test(tc, decodes_whole_reply);
    tcase_add_test(tc, refuses_short_and_lying_replies);
    tcase_add_test(tc, rates_per_second_and_restarts);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
