/* test_common_lockset.c - unit tests of the lock table both the meta leader and the mounts use
 * (common/lockset.c): conflicts between owners (read/write, ranges, flock apart from POSIX),
 * setting and releasing ranges of one owner (splits, replacement, upgrade in place), drops by
 * owner and by session, and a randomised comparison with a byte-map model. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockset.h"
#include "unit_main.h"

static struct ls_lock L(uint64_t sess, uint64_t owner, int kind, int type, uint64_t s, uint64_t e) {
    struct ls_lock l = {.ino = 7,
                        .session = sess,
                        .owner = owner,
                        .kind = (uint8_t)kind,
                        .type = (uint8_t)type,
                        .start = s,
                        .end = e};
    return l;
}

static int
conflicts(struct lockset *s, struct ls_lock l)
{
    return ls_conflict(s, &l, NULL);
}

static void set(struct lockset *s, struct ls_lock l)
{
    ck_assert_int_eq(ls_set(s, &l), 0);
}

START_TEST(test_readers_share_writers_exclude)
{
    struct lockset *s = ls_new();
    set(s, L(1, 1, LS_POSIX, LS_RD, 0, 99));
    ck_assert(!conflicts(s, L(2, 1, LS_POSIX, LS_RD, 50, 60)));   /* another reader */
    ck_assert(conflicts(s, L(2, 1, LS_POSIX, LS_WR, 99, 200)));   /* overlaps at 99 */
    ck_assert(!conflicts(s, L(2, 1, LS_POSIX, LS_WR, 100, 200))); /* just past it */
    ck_assert(!conflicts(s, L(1, 1, LS_POSIX, LS_WR, 0, 99)));    /* its own: an upgrade */
    ck_assert(conflicts(s, L(1, 2, LS_POSIX, LS_WR, 0, 0)));      /* same session, other owner */
    /* flock and POSIX locks live apart */
    ck_assert(!conflicts(s, L(2, 1, LS_FLOCK, LS_WR, 0, 0)));
    set(s, L(3, 9, LS_FLOCK, LS_RD, 0, 0));
    ck_assert(conflicts(s, L(2, 1, LS_FLOCK, LS_WR, 5, 5))); /* a flock covers the file */
    ck_assert(!conflicts(s, L(2, 1, LS_FLOCK, LS_RD, 5, 5)));
    struct ls_lock want = L(2, 1, LS_POSIX, LS_WR, 10, 10), got;
    ck_assert(ls_conflict(s, &want, &got));
    ck_assert_uint_eq(got.session, 1);
    ck_assert_uint_eq(got.start, 0);
    ck_assert_uint_eq(got.end, 99);
    ls_free(s);
}
END_TEST

START_TEST(test_unlock_in_the_middle_splits)
{
    struct lockset *s = ls_new();
    set(s, L(1, 1, LS_POSIX, LS_WR, 0, LS_EOF));
    set(s, L(1, 1, LS_POSIX, LS_UN, 100, 199));
    ck_assert_uint_eq(ls_count(s), 2);
    ck_assert(!conflicts(s, L(2, 1, LS_POSIX, LS_WR, 100, 199)));
    ck_assert(conflicts(s, L(2, 1, LS_POSIX, LS_RD, 99, 99)));
    ck_assert(conflicts(s, L(2, 1, LS_POSIX, LS_RD, 200, 200)));
    ck_assert(conflicts(s, L(2, 1, LS_POSIX, LS_RD, LS_EOF, LS_EOF)));
    /* a downgrade of part of it to a read lock lets readers in there only */
    set(s, L(1, 1, LS_POSIX, LS_RD, 0, 49));
    ck_assert(!conflicts(s, L(2, 1, LS_POSIX, LS_RD, 0, 49)));
    ck_assert(conflicts(s, L(2, 1, LS_POSIX, LS_RD, 0, 50)));
    /* releasing everything leaves nothing */
    set(s, L(1, 1, LS_POSIX, LS_UN, 0, LS_EOF));
    ck_assert_uint_eq(ls_count(s), 0);
    ls_free(s);
}
END_TEST

START_TEST(test_drop_by_owner_and_session)
{
    struct lockset *s = ls_new();
    set(s, L(1, 1, LS_POSIX, LS_WR, 0, 9));
    set(s, L(1, 1, LS_FLOCK, LS_WR, 0, 0));
    set(s, L(1, 2, LS_POSIX, LS_WR, 20, 29));
    set(s, L(2, 1, LS_POSIX, LS_WR, 40, 49));
    ck_assert_int_eq(ls_drop_owner(s, 7, 1, 1, 1u << LS_POSIX), 1);
    ck_assert(conflicts(s, L(9, 9, LS_FLOCK, LS_RD, 0, 0))); /* the flock stays */
    ck_assert_int_eq(ls_drop_owner(s, 7, 1, 1, 1u << LS_FLOCK), 1);
    ck_assert_int_eq(ls_drop_session(s, 1), 1);
    ck_assert_uint_eq(ls_count(s), 1);
    ck_assert(conflicts(s, L(9, 9, LS_POSIX, LS_RD, 45, 45)));
    ls_clear(s);
    ck_assert_uint_eq(ls_count(s), 0);
    ck_assert(!conflicts(s, L(9, 9, LS_POSIX, LS_WR, 0, LS_EOF)));
    ls_free(s);
}
END_TEST

/* Model: per byte of [0, 64), the type each of 3 owners holds. */
START_TEST(test_random_against_a_byte_model)
{
    enum { N = 64, OWNERS = 3 };
    uint8_t model[OWNERS][N];
    memset(model, 0, sizeof(model));
    struct lockset *s = ls_new();
    srand(12);
    for (int step = 0; step < 20000; step++) {
        int o = rand() % OWNERS;
        uint64_t a = (uint64_t)(rand() % N), b = (uint64_t)(rand() % N);
        if (a > b) {
            uint64_t t = a;
            a = b;
            b = t;
        }
        int type = rand() % 3;
        struct ls_lock l = L(1, (uint64_t)o + 1, LS_POSIX, type, a, b);
        int model_conflict = 0;
        for (int k = 0; k < OWNERS; k++)
            for (uint64_t i = a; k != o && i <= b; i++)
                if (model[k][i] && (model[k][i] == LS_WR || type == LS_WR)) model_conflict = 1;
        if (type == LS_UN) model_conflict = 0;
        ck_assert_int_eq(ls_conflict(s, &l, NULL), model_conflict);
        if (model_conflict) continue;
        set(s, l);
        for (uint64_t i = a; i <= b; i++)
            model[o][i] = (uint8_t)type;
    }
    /* every byte: a writer probe conflicts exactly where some owner holds something */
    for (int i = 0; i < N; i++) {
        int held = 0, wr = 0;
        for (int k = 0; k < OWNERS; k++) {
            held |= model[k][i] != 0;
            wr |= model[k][i] == LS_WR;
        }
        ck_assert_int_eq(conflicts(s, L(2, 1, LS_POSIX, LS_WR, (uint64_t)i, (uint64_t)i)), held);
        ck_assert_int_eq(conflicts(s, L(2, 1, LS_POSIX, LS_RD, (uint64_t)i, (uint64_t)i)), wr);
    }
    ls_free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_lockset");
    TCase *t = tcase_create("lockset");
    tcase_add_test(t, test_readers_share_writers_exclude);
    tcase_add_test(t, test_unlock_in_the_middle_splits);
    tcase_add_test(t, test_drop_by_owner_and_session);
    tcase_add_test(t, test_random_against_a_byte_model);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
