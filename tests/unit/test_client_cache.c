/* test_client_cache.c - the client's read cache (client-fuse/rcache.c): hits copy the right
 * bytes, the byte limit holds with least recently used segments evicted first, dropping an
 * inode discards its segments (also one still being loaded), and a failed load leaves no
 * entry behind; a pinned segment's bytes outlive its eviction and drop. Also the per-inode state
 * table (inode_state.c): chunk cache and leases. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "unit_main.h"

static uint8_t seg_data[CM_SEG_SIZE];

START_TEST(hit_copies_the_requested_bytes)
{
    struct rc_cache *c = rc_new(8ull * CM_SEG_SIZE);
    for (size_t i = 0; i < sizeof(seg_data); i++)
        seg_data[i] = (uint8_t)(i * 13);
    rc_put(c, 5, 2, seg_data, 1000);
    uint8_t out[600];
    ck_assert_int_eq(rc_read(c, 5, 2, 100, 600, out, 100), 600);
    ck_assert_int_eq(memcmp(out, seg_data + 100, 600), 0);
    /* a short segment (end of file) copies what it has */
    ck_assert_int_eq(rc_read(c, 5, 2, 900, 600, out, 100), 100);
    ck_assert_int_eq(rc_read(c, 5, 3, 0, 10, out, 100), -ENOENT);
    ck_assert_int_eq(rc_read(c, 6, 2, 0, 10, out, 100), -ENOENT);
    rc_free(c);
}
END_TEST

START_TEST(limit_holds_and_lru_goes_first)
{
    struct rc_cache *c = rc_new(4ull * CM_SEG_SIZE);
    for (uint64_t s = 0; s < 4; s++)
        rc_put(c, 1, s, seg_data, CM_SEG_SIZE);
    ck_assert_uint_eq(rc_bytes(c), 4ull * CM_SEG_SIZE);
    uint8_t b[1];
    ck_assert_int_eq(rc_read(c, 1, 0, 0, 1, b, 10), 1); /* 0 is now the most recent */
    for (uint64_t s = 4; s < 20; s++) {
        rc_put(c, 1, s, seg_data, CM_SEG_SIZE);
        ck_assert_uint_le(rc_bytes(c), rc_limit(c));
        if (s == 5) {
            ck_assert_int_eq(rc_read(c, 1, 1, 0, 1, b, 10), -ENOENT); /* oldest went first */
            ck_assert_int_eq(rc_read(c, 1, 0, 0, 1, b, 10), 1);
        }
    }
    ck_assert_int_eq(rc_read(c, 1, 19, 0, 1, b, 10), 1);
    rc_free(c);
}
END_TEST

START_TEST(full_of_loading_segments_refuses_more)
{
    struct rc_cache *c = rc_new(2ull * CM_SEG_SIZE);
    struct rc_ent *e1, *e2, *e3;
    ck_assert_int_eq(rc_begin_load(c, 1, 0, &e1), 1);
    ck_assert_int_eq(rc_begin_load(c, 1, 0, &e3), 0); /* already being loaded */
    ck_assert_int_eq(rc_begin_load(c, 1, 1, &e2), 1);
    ck_assert_int_eq(rc_begin_load(c, 1, 2, &e3), -ENOSPC);
    rc_end_load(c, e1, NULL, 0, -EIO); /* a failed load leaves nothing */
    uint8_t b[1];
    ck_assert_int_eq(rc_read(c, 1, 0, 0, 1, b, 10), -ENOENT);
    uint8_t *d = malloc(10);
    memset(d, 7, 10);
    rc_end_load(c, e2, d, 10, 0);
    ck_assert_int_eq(rc_read(c, 1, 1, 0, 1, b, 10), 1);
    ck_assert_uint_eq(b[0], 7);
    rc_free(c);
}
END_TEST

START_TEST(drop_discards_ready_and_loading_segments)
{
    struct rc_cache *c = rc_new(8ull * CM_SEG_SIZE);
    rc_put(c, 9, 0, seg_data, 100);
    rc_put(c, 10, 0, seg_data, 100);
    struct rc_ent *e;
    ck_assert_int_eq(rc_begin_load(c, 9, 1, &e), 1);
    rc_drop_ino(c, 9);
    uint8_t *d = malloc(100);
    rc_end_load(c, e, d, 100, 0); /* finished after the drop: must not be served */
    uint8_t b[1];
    ck_assert_int_eq(rc_read(c, 9, 0, 0, 1, b, 10), -ENOENT);
    ck_assert_int_eq(rc_read(c, 9, 1, 0, 1, b, 10), -ENOENT);
    ck_assert_int_eq(rc_read(c, 10, 0, 0, 1, b, 10), 1);
    ck_assert_uint_eq(rc_bytes(c), 100);
    rc_free(c);
}
END_TEST

START_TEST(pinned_bytes_outlive_eviction_and_drop)
{
    struct rc_cache *c = rc_new(2ull * CM_SEG_SIZE);
    for (size_t i = 0; i < sizeof(seg_data); i++)
        seg_data[i] = (uint8_t)(i * 7 + 1);
    rc_put(c, 9, 0, seg_data, CM_SEG_SIZE);
    const uint8_t *d = NULL;
    uint32_t len = 0;
    struct rc_ent *pin = rc_pin(c, 9, 0, 100, &d, &len);
    ck_assert_ptr_nonnull(pin);
    ck_assert_uint_eq(len, CM_SEG_SIZE);
    ck_assert_ptr_null(rc_pin(c, 9, 1, 100, &d, &len)); /* absent */
    /* evicted by newer segments and dropped: the pinned bytes stay readable (ASan would
     * report a read of freed memory) and are freed at the unpin */
    for (uint64_t s = 1; s < 4; s++)
        rc_put(c, 10, s, seg_data, CM_SEG_SIZE);
    rc_drop_ino(c, 9);
    ck_assert_int_eq(memcmp(d, seg_data, CM_SEG_SIZE), 0);
    rc_unpin(c, pin);
    uint8_t b[1];
    ck_assert_int_eq(rc_read(c, 9, 0, 0, 1, b, 10), -ENOENT);
    /* a failed load pins nothing */
    struct rc_ent *e;
    ck_assert_int_eq(rc_begin_load(c, 11, 0, &e), 1);
    rc_end_load(c, e, NULL, 0, -EIO);
    ck_assert_ptr_null(rc_pin(c, 11, 0, 100, &d, &len));
    rc_free(c);
}
END_TEST

START_TEST(inode_table_shares_state_and_tracks_chunks)
{
    struct ist_table *t = ist_new();
    struct inode_st *a = ist_get(t, 42), *b = ist_get(t, 42);
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_null(ist_find(t, 43));
    struct chunk_info ci = {.index = 3, .chunk_id = 77, .version = 2, .nloc = 1};
    ck_assert_int_eq(ist_chunk_set(a, 3, 1, &ci), 0);
    ck_assert_int_eq(ist_chunk_set(a, 4, 0, NULL), 0);
    ck_assert_int_eq(ist_chunk_find(a, 3)->present, 1);
    ck_assert_uint_eq(ist_chunk_find(a, 3)->ci.chunk_id, 77);
    ck_assert_int_eq(ist_chunk_find(a, 4)->present, 0);
    ist_chunks_drop_from(a, 4);
    ck_assert_ptr_null(ist_chunk_find(a, 4));
    ck_assert_ptr_nonnull(ist_lease_add(a, &ci));
    ck_assert_ptr_nonnull(ist_lease_find(a, 3));
    ist_lease_drop(a, 3);
    ck_assert_ptr_null(ist_lease_find(a, 3));
    a->size_meta = 10;
    a->size_local = 20;
    ck_assert_uint_eq(ist_size(a), 20);
    ist_put(t, a);
    ist_put(t, b);
    ist_free(t);
}
END_TEST

Suite *suite(void)
{
    Suite *s = suite_create("client_cache");
    TCase *t = tcase_create("core");
    tcase_add_test(t, hit_copies_the_requested_bytes);
    tcase_add_test(t, limit_holds_and_lru_goes_first);
    tcase_add_test(t, full_of_loading_segments_refuses_more);
    tcase_add_test(t, drop_discards_ready_and_loading_segments);
    tcase_add_test(t, pinned_bytes_outlive_eviction_and_drop);
    tcase_add_test(t, inode_table_shares_state_and_tracks_chunks);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
