/* test_client_reply_buf.c - the READ reply buffers (client-fuse/reply_buf.c): page aligned and
 * writable to their full size, one per thread kept across requests, a request larger than the
 * thread's buffer gets a fresh one of its own, and two threads never share a buffer. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "client.h"
#include "unit_main.h"

START_TEST(thread_buffer_is_aligned_writable_and_kept)
{
    uint8_t *a = rb_get(1u << 20);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq((uintptr_t)a % 4096, 0);
    memset(a, 0x5a, 1u << 20);
    rb_put(a);
    uint8_t *b = rb_get(4096);
    ck_assert_ptr_eq(a, b); /* the same thread's buffer again, its bytes left as they were */
    ck_assert_uint_eq(b[(1u << 20) - 1], 0x5a);
    rb_put(b);
}
END_TEST

START_TEST(larger_request_gets_a_fresh_buffer)
{
    uint8_t *mine = rb_get(1);
    size_t big = 3u << 20;
    uint8_t *b = rb_get(big);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(b, mine);
    ck_assert_uint_eq((uintptr_t)b % 4096, 0);
    memset(b, 0xa5, big);
    ck_assert_uint_eq(b[big - 1], 0xa5);
    rb_put(b); /* freed: ASan reports it otherwise */
    rb_put(mine);
}
END_TEST

static void *other_thread(void *arg)
{
    uint8_t *b = rb_get(64 * 1024);
    memset(b, 0x11, 64 * 1024);
    *(uint8_t **)arg = b;
    rb_put(b);
    return NULL;
}

START_TEST(threads_do_not_share)
{
    uint8_t *mine = rb_get(64 * 1024);
    memset(mine, 0x22, 64 * 1024);
    uint8_t *theirs = NULL;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &theirs), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_ptr_nonnull(theirs);
    ck_assert_ptr_ne(theirs, mine);
    ck_assert_uint_eq(mine[100], 0x22); /* the other thread wrote its own */
    rb_put(mine);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reply_buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, thread_buffer_is_aligned_writable_and_kept);
    tcase_add_test(tc, larger_request_gets_a_fresh_buffer);
    tcase_add_test(tc, threads_do_not_share);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
