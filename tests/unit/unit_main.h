/* unit_main.h - the one main() body every Check unit test runs: run the suite, report, and
 * exit with the failure count as status. */
#ifndef CAIRN_UNIT_MAIN_H
#define CAIRN_UNIT_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int unit_run(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
