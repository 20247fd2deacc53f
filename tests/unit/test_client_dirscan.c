/* test_client_dirscan.c - the directory-scan tracker (client-fuse/dirscan.c): opens in
 * listing order hand out the next files to prefetch (each once, bounded ahead), a shuffled
 * order never does, listings arrive in pages chained by cookie, and a page of a listing not
 * seen from its start is ignored. Also the size of the pieces a large read is split into. */
#include <check.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "client.h"
#include "unit_main.h"

#define NF 200

/* List dir's NF regular files (ino 1000 + i, 64 KiB each) in pages of `page` entries. */
static void list(struct ds_table *t, uint64_t dir, uint32_t page)
{
    struct ds_file f[NF];
    for (int i = 0; i < NF; i++)
        f[i] = (struct ds_file){
            .ino = 1000 + (uint64_t)i, .mode = S_IFREG | 0644, .size = 65536, .have_attr = 1};
    for (uint32_t from = 0; from < NF; from += page) {
        uint32_t n = NF - from < page ? NF - from : page;
        ds_note_listing(t, dir, from, from + n, f + from, n);
    }
}

START_TEST(scan_in_order_prefetches_ahead_once)
{
    struct ds_table *t = ds_new();
    list(t, 7, 37);
    struct ds_file out[DS_AHEAD];
    ck_assert_int_eq(ds_on_open(t, 1000, out, DS_AHEAD, DS_AHEAD_BYTES), 0);
    ck_assert_int_eq(ds_on_open(t, 1001, out, DS_AHEAD, DS_AHEAD_BYTES), 0);
    int n = ds_on_open(t, 1002, out, DS_AHEAD, DS_AHEAD_BYTES); /* third in a row */
    ck_assert_int_eq(n, DS_AHEAD);
    ck_assert_uint_eq(out[0].ino, 1003);
    ck_assert_uint_eq(out[n - 1].ino, 1002 + DS_AHEAD);
    /* the next open hands out only the one file that came into reach */
    n = ds_on_open(t, 1003, out, DS_AHEAD, DS_AHEAD_BYTES);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(out[0].ino, 1003 + DS_AHEAD);
    /* skipping a file keeps the streak */
    n = ds_on_open(t, 1005, out, DS_AHEAD, DS_AHEAD_BYTES);
    ck_assert_int_eq(n, 2);
    /* bytes bound: at most 3 files of 64 KiB ahead */
    n = ds_on_open(t, 1006, out, DS_AHEAD, 3 * 65536);
    ck_assert_int_eq(n, 0); /* 16 files are handed out already */
    ds_free(t);
}
END_TEST

START_TEST(shuffled_never_prefetches)
{
    struct ds_table *t = ds_new();
    list(t, 7, 64);
    srand(42);
    int handed = 0;
    uint64_t order[NF];
    for (int i = 0; i < NF; i++)
        order[i] = 1000 + (uint64_t)i;
    for (int i = NF - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        uint64_t x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    struct ds_file out[DS_AHEAD];
    for (int i = 0; i < NF; i++)
        handed += ds_on_open(t, order[i], out, DS_AHEAD, DS_AHEAD_BYTES);
    ck_assert_int_le(handed, DS_AHEAD); /* a chance run of three may hand out one batch */
    ds_free(t);
}
END_TEST

START_TEST(pages_must_chain)
{
    struct ds_table *t = ds_new();
    struct ds_file f[4];
    for (int i = 0; i < 4; i++)
        f[i] = (struct ds_file){.ino = 50 + (uint64_t)i, .mode = S_IFREG | 0600};
    /* a page starting at cookie 10 of a listing never seen from 0: ignored */
    ds_note_listing(t, 9, 10, 14, f, 4);
    struct ds_file out[DS_AHEAD];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ds_on_open(t, 50 + (uint64_t)i, out, DS_AHEAD, DS_AHEAD_BYTES), 0);
    /* from 0 in two chained pages, with a directory entry in between (not a file) */
    struct ds_file d = {.ino = 99, .mode = S_IFDIR | 0755};
    ds_note_listing(t, 9, 0, 2, f, 2);
    ds_note_listing(t, 9, 2, 3, &d, 1);
    ds_note_listing(t, 9, 3, 5, f + 2, 2);
    ck_assert_int_eq(ds_on_open(t, 50, out, DS_AHEAD, DS_AHEAD_BYTES), 0);
    ck_assert_int_eq(ds_on_open(t, 51, out, DS_AHEAD, DS_AHEAD_BYTES), 0);
    ck_assert_int_eq(ds_on_open(t, 52, out, DS_AHEAD, DS_AHEAD_BYTES), 1);
    ck_assert_uint_eq(out[0].ino, 53);
    /* an unlisted inode changes nothing */
    ck_assert_int_eq(ds_on_open(t, 12345, out, DS_AHEAD, DS_AHEAD_BYTES), 0);
    ds_free(t);
}
END_TEST

START_TEST(piece_sizes)
{
    ck_assert_uint_eq(rp_piece_size(1u << 20, 1), CAIRN_IO_MAX);  /* one piece */
    ck_assert_uint_eq(rp_piece_size(160 << 10, 4), CAIRN_IO_MAX); /* small: one piece */
    ck_assert_uint_eq(rp_piece_size(1u << 20, 4), 256u << 10);    /* 1 MiB: four */
    ck_assert_uint_eq(rp_piece_size(1u << 20, 2), 512u << 10);    /* one per copy */
    ck_assert_uint_eq(rp_piece_size(300u << 10, 4), RP_PIECE_MIN);
    ck_assert_uint_eq(rp_piece_size(16u << 20, 4), CAIRN_IO_MAX);
    ck_assert_uint_eq(rp_piece_size(700u << 10, 4) % (64u << 10), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_dirscan");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, scan_in_order_prefetches_ahead_once);
    tcase_add_test(tc, shuffled_never_prefetches);
    tcase_add_test(tc, pages_must_chain);
    tcase_add_test(tc, piece_sizes);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
