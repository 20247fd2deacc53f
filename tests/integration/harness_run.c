/* harness_run.c - the Check runner of the integration tests (see harness_run.h). */
#include "harness_run.h"

int h_run_cases(const char *suite, const struct h_test *tests, size_t n, int timeout_s,
                void (*after_each)(void))
{
    Suite *s = suite_create(suite);
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, timeout_s);
        if (after_each) tcase_add_unchecked_fixture(tc, NULL, after_each);
        tcase_add_test(tc, tests[i].test);
        suite_add_tcase(s, tc);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf;
}
