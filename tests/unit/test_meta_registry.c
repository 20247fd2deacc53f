/* test_meta_registry.c - the chunk-server registry: which copies are valid against a chunk
 * record (versions, the lease chain, copies known at the current version), bad, down and
 * draining copies, re-registration, and placement (distinct servers and zones, exclusions,
 * draining servers, free space). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "net.h"
#include "unit_main.h"

static struct cs_registry R;
static int A, B, C, D;

static void setup(void)
{
    ck_assert_int_eq(csr_init(&R, 3000), 0);
    A = csr_register(&R, 0xa, "127.0.0.1:1", "z1", 1000, 900, 0);
    B = csr_register(&R, 0xb, "127.0.0.1:2", "z1", 1000, 900, 0);
    C = csr_register(&R, 0xc, "127.0.0.1:3", "z2", 1000, 900, 0);
    D = csr_register(&R, 0xd, "127.0.0.1:4", "z2", 1000, 900, 0);
    ck_assert(A >= 0 && B >= 0 && C >= 0 && D >= 0);
}

static void teardown(void)
{
    csr_free(&R);
}

static int state_of(const struct csr_view *v, int slot)
{
    for (int k = 0; k < v->n; k++)
        if (v->c[k].slot == slot) return v->c[k].state;
    return -1;
}

START_TEST(test_valid_and_stale_by_version)
{
    struct mstore_chunk ck = {.id = 42, .version = 3, .prev = 2, .nchain = 2, .chain = {0xa, 0xb}};
    struct csr_view v;
    /* a lease to 3 that wrote nothing known: chain members at 2 are valid, C is not in it */
    csr_holder_set(&R, 42, A, 2, 0, 0);
    csr_holder_set(&R, 42, B, 2, 0, 0);
    csr_holder_set(&R, 42, C, 2, 0, 0);
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(state_of(&v, A), COPY_VALID);
    ck_assert_int_eq(state_of(&v, B), COPY_VALID);
    ck_assert_int_eq(state_of(&v, C), COPY_STALE);
    ck_assert_int_eq(v.valid, 2);
    ck_assert_int_eq(v.stale, 1);
    /* A reports version 3: now B, still at 2, missed a write */
    csr_holder_set(&R, 42, A, 3, 0, 0);
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(state_of(&v, A), COPY_VALID);
    ck_assert_int_eq(state_of(&v, B), COPY_STALE);
    /* a chain member older than prev missed a write too */
    csr_holder_set(&R, 42, A, 1, 0, 0);
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(state_of(&v, A), COPY_STALE);
    /* only valid copies are handed out */
    csr_holder_set(&R, 42, D, 3, 0, 0);
    struct chunk_info ci = {0};
    csr_fill_locs(&R, &ck, &ci);
    ck_assert_uint_eq(ci.nloc, 1);
    ck_assert_uint_eq(ci.loc[0].server_id, 0xd);
}
END_TEST

START_TEST(test_bad_down_draining)
{
    struct mstore_chunk ck = {.id = 7, .version = 5, .prev = 5, .nchain = 0};
    csr_holder_set(&R, 7, A, 5, 0, 0);
    csr_holder_set(&R, 7, B, 5, CSR_H_BAD, 0);
    csr_holder_set(&R, 7, C, 5, 0, 0);
    csr_holder_set(&R, 7, D, 5, 0, 0);
    R.srv[C].draining = 1;
    R.srv[D].alive = 0;
    struct csr_view v;
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(state_of(&v, A), COPY_VALID);
    ck_assert_int_eq(state_of(&v, B), COPY_BAD);
    ck_assert_int_eq(state_of(&v, C), COPY_DRAINING);
    ck_assert_int_eq(state_of(&v, D), COPY_DOWN);
    ck_assert_int_eq(v.valid, 1);
    ck_assert_int_eq(v.draining, 1);
    struct chunk_info ci = {0};
    csr_fill_locs(&R, &ck, &ci);
    ck_assert_uint_eq(ci.nloc, 2); /* A and the draining C serve; bad and down do not */
    /* a pending copy is not a copy */
    csr_holder_del(&R, 7, B);
    csr_holder_set(&R, 7, B, 0, CSR_H_PENDING | CSR_H_NOCOPY, 0);
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(state_of(&v, B), COPY_PENDING);
    ck_assert_int_eq(v.valid, 1);
    /* freeing the chunk queues deletions for every holder */
    uint32_t before = R.srv[A].ndel;
    csr_chunk_freed(&R, 7, 5);
    ck_assert_ptr_null(csr_entry(&R, 7));
    ck_assert_uint_eq(R.srv[A].ndel, before + 1);
}
END_TEST

START_TEST(test_unconfirmed_counts_only_while_the_lease_settles)
{
    /* a new chunk: both chain members listed at lease time, neither has said anything yet */
    struct mstore_chunk ck = {.id = 9, .version = 1, .prev = 0, .nchain = 2, .chain = {0xa, 0xb}};
    csr_holder_set(&R, 9, A, 1, CSR_H_UNCONFIRMED, 0);
    csr_holder_set(&R, 9, B, 1, CSR_H_UNCONFIRMED, 0);
    struct csr_entry *e = csr_entry(&R, 9);
    ck_assert_ptr_nonnull(e);
    e->leased_s = (uint32_t)(net_now_ms() / 1000);
    struct csr_view v;
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(v.valid, 2); /* the writer is at work: readers may be sent there */
    /* long after the lease only A confirmed: B is no copy (never served nor counted) */
    e->leased_s = 1;
    csr_holder_set(&R, 9, A, 1, 0, CSR_H_UNCONFIRMED);
    csr_classify(&R, &ck, &v);
    ck_assert_int_eq(state_of(&v, A), COPY_VALID);
    ck_assert_int_eq(state_of(&v, B), COPY_PENDING);
    ck_assert_int_eq(v.valid, 1);
    ck_assert_int_eq(v.stale, 0);
    struct chunk_info ci = {0};
    csr_fill_locs(&R, &ck, &ci);
    ck_assert_uint_eq(ci.nloc, 1);
    /* readers never get a chain member one event behind, even while a lease settles */
    struct mstore_chunk ck2 = {.id = 9, .version = 2, .prev = 1, .nchain = 2, .chain = {0xa, 0xb}};
    e->leased_s = (uint32_t)(net_now_ms() / 1000);
    csr_holder_set(&R, 9, A, 2, 0, 0);
    csr_holder_set(&R, 9, B, 1, 0, CSR_H_UNCONFIRMED);
    csr_classify(&R, &ck2, &v);
    ck_assert_int_eq(state_of(&v, B), COPY_VALID); /* the scanner waits for its event */
    csr_fill_locs(&R, &ck2, &ci);
    ck_assert_uint_eq(ci.nloc, 1);
    ck_assert_uint_eq(ci.loc[0].server_id, 0xa);
}
END_TEST

START_TEST(test_reregister_forgets_copies)
{
    for (uint64_t id = 1; id <= 3000; id++)
        ck_assert_int_eq(csr_holder_set(&R, id, A, 1, 0, 0), 0);
    for (uint64_t id = 1; id <= 3000; id += 2)
        ck_assert_int_eq(csr_holder_set(&R, id, B, 1, 0, 0), 0);
    ck_assert_uint_eq(R.srv[A].nchunks, 3000);
    ck_assert_int_eq(csr_register(&R, 0xa, "127.0.0.1:1", "z1", 1000, 900, 0), A);
    ck_assert_uint_eq(R.srv[A].nchunks, 0);
    for (uint64_t id = 1; id <= 3000; id++) {
        struct csr_entry *e = csr_entry(&R, id);
        if (id % 2) {
            ck_assert_ptr_nonnull(e);
            ck_assert_int_eq(e->n, 1);
            ck_assert_int_lt(csr_entry_holder(e, A), 0);
        } else {
            ck_assert_ptr_null(e);
        }
    }
}
END_TEST

START_TEST(test_place_zones_and_exclusions)
{
    for (int t = 0; t < 200; t++) {
        int out[2];
        ck_assert_int_eq(csr_place(&R, 2, 0, NULL, 0, NULL, 0, out), 2);
        ck_assert_int_ne(out[0], out[1]);
        ck_assert_str_ne(R.srv[out[0]].zone, R.srv[out[1]].zone);
        csr_heartbeat(&R, A, 1000, 900, 0, 0); /* reset what was placed */
        csr_heartbeat(&R, B, 1000, 900, 0, 0);
        csr_heartbeat(&R, C, 1000, 900, 0, 0);
        csr_heartbeat(&R, D, 1000, 900, 0, 0);
    }
    /* exclusions, a holder, a draining server */
    uint64_t excl[] = {0xa};
    int have[] = {C};
    R.srv[D].draining = 1;
    int out[3];
    ck_assert_int_eq(csr_place(&R, 3, 0, excl, 1, have, 1, out), 1);
    ck_assert_int_eq(out[0], B);
    /* no room */
    R.srv[D].draining = 0;
    ck_assert_int_eq(csr_place(&R, 1, 5000, NULL, 0, NULL, 0, out), 0);
    /* the emptier server is preferred */
    csr_heartbeat(&R, A, 1000, 50, 0, 0);
    csr_heartbeat(&R, B, 1000, 950, 0, 0);
    R.srv[C].alive = R.srv[D].alive = 0;
    int onb = 0;
    for (int t = 0; t < 200; t++) {
        ck_assert_int_eq(csr_place(&R, 1, 0, NULL, 0, NULL, 0, out), 1);
        onb += out[0] == B;
    }
    ck_assert_int_gt(onb, 150);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("meta_registry");
    TCase *t = tcase_create("registry");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_valid_and_stale_by_version);
    tcase_add_test(t, test_bad_down_draining);
    tcase_add_test(t, test_unconfirmed_counts_only_while_the_lease_settles);
    tcase_add_test(t, test_reregister_forgets_copies);
    tcase_add_test(t, test_place_zones_and_exclusions);
    suite_add_tcase(s, t);
    return unit_run(s);
}
