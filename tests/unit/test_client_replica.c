/* test_client_replica.c - the client's replication bookkeeping (client-fuse/inode_state.c,
 * chunk_client.c): the per-chunk exclusion set a writer keeps while a file is open, what a
 * chain write result means (which server to exclude, -ESTALE excluding nobody), and the
 * replica order of reads (fewest requests in flight first, ties round robin so concurrent
 * readers use every copy, recently failed servers last). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "unit_main.h"

static struct inode_st *new_inode(void)
{
    struct inode_st *s = calloc(1, sizeof(*s));
    ck_assert_ptr_nonnull(s);
    s->ino = 42;
    return s;
}

static void free_inode(struct inode_st *s)
{
    free(s->excl);
    free(s);
}

START_TEST(excl_kept_per_chunk)
{
    struct inode_st *s = new_inode();
    ck_assert_ptr_null(ist_excl_get(s, 0));
    ck_assert_int_eq(ist_excl_add(s, 0, 0xa1), 0);
    ck_assert_int_eq(ist_excl_add(s, 0, 0xa2), 0);
    ck_assert_int_eq(ist_excl_add(s, 0, 0xa1), 0); /* twice: once */
    ck_assert_int_eq(ist_excl_add(s, 3, 0xb1), 0);
    const struct ist_excl *e = ist_excl_get(s, 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->n, 2);
    ck_assert_uint_eq(e->id[0], 0xa1);
    ck_assert_uint_eq(e->id[1], 0xa2);
    e = ist_excl_get(s, 3);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->n, 1);
    ck_assert_ptr_null(ist_excl_get(s, 1));
    /* truncation drops the chunks past the end, the end of the write session all */
    ist_excl_drop_from(s, 1);
    ck_assert_ptr_nonnull(ist_excl_get(s, 0));
    ck_assert_ptr_null(ist_excl_get(s, 3));
    ist_excl_clear(s);
    ck_assert_ptr_null(ist_excl_get(s, 0));
    free_inode(s);
}
END_TEST

START_TEST(excl_bounded)
{
    struct inode_st *s = new_inode();
    for (int i = 0; i < CM_EXCL_MAX; i++)
        ck_assert_int_eq(ist_excl_add(s, 7, 100 + (uint64_t)i), 0);
    ck_assert_int_eq(ist_excl_add(s, 7, 999), -ENOSPC);
    ck_assert_int_eq(ist_excl_add(s, 7, 100), 0); /* already in */
    /* many chunks grow the table */
    for (uint64_t c = 0; c < 100; c++)
        ck_assert_int_eq(ist_excl_add(s, 1000 + c, c), 0);
    ck_assert_int_eq(ist_excl_get(s, 1099)->n, 1);
    ck_assert_uint_eq(ist_excl_get(s, 1099)->id[0], 99);
    ck_assert_int_eq(ist_excl_get(s, 7)->n, CM_EXCL_MAX);
    free_inode(s);
}
END_TEST

static struct chunk_info chain3(void)
{
    struct chunk_info ci = {.chunk_id = 5, .version = 3, .prev_version = 2, .nloc = 3};
    for (int i = 0; i < 3; i++) {
        ci.loc[i].server_id = 0x10 + (uint64_t)i;
        strcpy(ci.loc[i].addr, "127.0.0.1:1");
    }
    return ci;
}

START_TEST(verdict_names_failed_hop)
{
    struct chunk_info ci = chain3();
    uint64_t bad = 0;
    struct cc_wres r = {.status = 0, .chain_ok = 3, .chain_err = 0};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), 0);
    /* the second hop failed: hops [0, 1) hold it, loc[1] is to blame */
    r = (struct cc_wres){.status = 0, .chain_ok = 1, .chain_err = -ECONNRESET};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), 1);
    ck_assert_uint_eq(bad, 0x11);
    r = (struct cc_wres){.status = 0, .chain_ok = 2, .chain_err = -EIO};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), 1);
    ck_assert_uint_eq(bad, 0x12);
    /* the head's own failure, or the head unreachable */
    r = (struct cc_wres){.status = -ENOSPC};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), 1);
    ck_assert_uint_eq(bad, 0x10);
    r = (struct cc_wres){.status = -ETIMEDOUT};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), 1);
    ck_assert_uint_eq(bad, 0x10);
    /* a hop index past the chain blames the head rather than reading past loc[] */
    r = (struct cc_wres){.status = 0, .chain_ok = 9, .chain_err = -EIO};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), 1);
    ck_assert_uint_eq(bad, 0x10);
}
END_TEST

START_TEST(verdict_stale_excludes_nobody)
{
    struct chunk_info ci = chain3();
    uint64_t bad = 77;
    struct cc_wres r = {.status = -ESTALE};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), -ESTALE);
    r = (struct cc_wres){.status = 0, .chain_ok = 1, .chain_err = -ESTALE};
    ck_assert_int_eq(cc_wres_verdict(&r, &ci, &bad), -ESTALE);
    ck_assert_uint_eq(bad, 77);
}
END_TEST

START_TEST(rank_lowest_load_first)
{
    unsigned load[3] = {4, 1, 2};
    int avoid[3] = {0, 0, 0}, order[3];
    cc_rank(3, load, avoid, 0, order);
    ck_assert_int_eq(order[0], 1);
    ck_assert_int_eq(order[1], 2);
    ck_assert_int_eq(order[2], 0);
}
END_TEST

START_TEST(rank_ties_round_robin)
{
    unsigned load[3] = {0, 0, 0};
    int avoid[3] = {0, 0, 0}, order[3], seen[3] = {0, 0, 0};
    for (unsigned rr = 0; rr < 3; rr++) {
        cc_rank(3, load, avoid, rr, order);
        ck_assert_int_eq(order[0], (int)rr);
        ck_assert_int_eq(order[1], (int)((rr + 1) % 3));
        seen[order[0]]++;
    }
    /* three readers of one chunk start on three different copies */
    ck_assert_int_eq(seen[0] + seen[1] + seen[2], 3);
    ck_assert_int_eq(seen[0], 1);
    ck_assert_int_eq(seen[2], 1);
    /* a tie between two of three, the third busier */
    unsigned l2[3] = {1, 5, 1};
    cc_rank(3, l2, avoid, 2, order);
    ck_assert_int_eq(order[0], 2);
    ck_assert_int_eq(order[1], 0);
    ck_assert_int_eq(order[2], 1);
}
END_TEST

START_TEST(rank_avoided_last_but_kept)
{
    unsigned load[3] = {0, 9, 3};
    int avoid[3] = {1, 0, 0}, order[3];
    cc_rank(3, load, avoid, 0, order);
    ck_assert_int_eq(order[0], 2);
    ck_assert_int_eq(order[1], 1);
    ck_assert_int_eq(order[2], 0); /* still tried, last */
    /* the only location stays usable */
    unsigned l1[1] = {0};
    int a1[1] = {1}, o1[1] = {-1};
    cc_rank(1, l1, a1, 5, o1);
    ck_assert_int_eq(o1[0], 0);
}
END_TEST

START_TEST(order_spreads_and_avoids_through_pool)
{
    /* nothing in flight: a chunk's reads stay on the copy its id prefers, and consecutive
     * chunks prefer different copies */
    struct cc_pool *p = cc_pool_new(1000);
    ck_assert_ptr_nonnull(p);
    struct chunk_info ci = chain3();
    strcpy(ci.loc[0].addr, "127.0.0.1:1");
    strcpy(ci.loc[1].addr, "127.0.0.1:2");
    strcpy(ci.loc[2].addr, "127.0.0.1:3");
    int first[3] = {0, 0, 0}, order[CAIRN_MAX_LOCS];
    cc_order(p, &ci, order);
    int pref = order[0];
    for (int i = 0; i < 3; i++) {
        cc_order(p, &ci, order);
        ck_assert_int_eq(order[0], pref);
    }
    uint64_t id0 = ci.chunk_id;
    for (int i = 0; i < 3; i++) {
        ci.chunk_id = id0 + (uint64_t)i;
        cc_order(p, &ci, order);
        first[order[0]]++;
    }
    ci.chunk_id = id0;
    ck_assert_int_eq(first[0], 1);
    ck_assert_int_eq(first[1], 1);
    ck_assert_int_eq(first[2], 1);
    /* a read from a closed port is refused: that server goes last for a while */
    uint8_t buf[16];
    struct cc_call call;
    uint64_t deadline = 0;
    int rc = cc_read_submit(p, "127.0.0.1:1", 5, 3, 0, sizeof(buf), deadline, &call);
    if (rc == 0) rc = cc_read_finish(&call, deadline, 0, sizeof(buf), buf);
    ck_assert_int_ne(rc, 0);
    for (int i = 0; i < 3; i++) {
        cc_order(p, &ci, order);
        ck_assert_int_eq(order[2], 0);
    }
    cc_pool_free(p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client_replica");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, excl_kept_per_chunk);
    tcase_add_test(t, excl_bounded);
    tcase_add_test(t, verdict_names_failed_hop);
    tcase_add_test(t, verdict_stale_excludes_nobody);
    tcase_add_test(t, rank_lowest_load_first);
    tcase_add_test(t, rank_ties_round_robin);
    tcase_add_test(t, rank_avoided_last_but_kept);
    tcase_add_test(t, order_spreads_and_avoids_through_pool);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
