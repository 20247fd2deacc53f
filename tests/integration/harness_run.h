/* harness_run.h - the Check runner the integration test binaries share: one test case per
 * test (so the parent-side fixture runs after each), each with a timeout. */
#ifndef CAIRN_HARNESS_RUN_H
#define CAIRN_HARNESS_RUN_H

#include <check.h>
#include <stddef.h>

struct h_test {
    const char *name; /* the test case's name (CK_RUN_CASE selects it) */
    const TTest *test;
};

/* Run tests[0..n) as suite `suite`, each case bounded by timeout_s, after_each (may be NULL)
 * run by the parent after every case. Returns the number of failed tests. */
int h_run_cases(const char *suite, const struct h_test *tests, size_t n, int timeout_s,
                void (*after_each)(void));

#endif
