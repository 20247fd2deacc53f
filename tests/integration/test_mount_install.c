/* test_mount_install.c - `make install` for real: the files it puts in place, the installed
 * mount helper and example configurations used from a clean environment, and the README's
 * three machines in network namespaces. Each case runs one mode of install_check.sh (next to
 * this file; it says what each checks) in a folder of its own; the parent's fixture stops
 * whatever a case that timed out left behind (daemons by PID, namespaces by name).
 *
 * Named test_mount_* because it makes real FUSE mounts (not part of the sanitizer run). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SCRIPT "tests/integration/install_check.sh"

static char W_FILES[300], W_MOUNT[300], W_NETNS[300]; /* one folder per case, made by main */

/* Run a mode of the script in dir; on failure the test fails with the end of its output. */
static void check_mode(const char *mode, const char *dir, int timeout_s)
{
    char log[400];
    snprintf(log, sizeof(log), "%s.log", dir);
    const char *b = getenv("BUILD");
    int rc = h_sh(timeout_s, "BUILD='%s' %s %s '%s' >'%s' 2>&1", b && *b ? b : "build", SCRIPT,
                  mode, dir, log);
    char out[1500] = "";
    if (rc != 0)
        h_run(5, out, sizeof(out), "tail -c 1400 '%s'", log);
    else
        h_run(5, out, sizeof(out), "tail -n 1 '%s'", log);
    fprintf(stderr, "%s: %s\n", mode, out);
    ck_assert_msg(rc == 0, "install_check.sh %s: exit %d:\n%s", mode, rc, out);
}

START_TEST(install_lists_every_file)
{
    check_mode("files", W_FILES, 60);
}
END_TEST

START_TEST(installed_helper_mounts_from_clean_env)
{
    check_mode("mount", W_MOUNT, 60);
}
END_TEST

START_TEST(three_machines_walkthrough)
{
    check_mode("netns", W_NETNS, 60);
}
END_TEST

/* After every case (in the parent): stop what a case that timed out left running. */
static void leftovers(void)
{
    const char *dirs[] = {W_MOUNT, W_NETNS};
    for (size_t i = 0; i < 2; i++)
        if (dirs[i][0]) h_sh(30, "%s cleanup '%s' >/dev/null 2>&1", SCRIPT, dirs[i]);
}

int main(void)
{
    if (h_mkdtemp("install-files", W_FILES, sizeof(W_FILES)) ||
        h_mkdtemp("install-mount", W_MOUNT, sizeof(W_MOUNT)) ||
        h_mkdtemp("install-netns", W_NETNS, sizeof(W_NETNS))) {
        fprintf(stderr, "cannot make temporary folders\n");
        return 1;
    }
    Suite *s = suite_create("mount_install");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, install_lists_every_file);
    suite_add_tcase(s, tc);
    if (geteuid() == 0) {
        tc = tcase_create("mount");
        tcase_set_timeout(tc, 90);
        tcase_add_unchecked_fixture(tc, NULL, leftovers);
        tcase_add_test(tc, installed_helper_mounts_from_clean_env);
        suite_add_tcase(s, tc);
        tc = tcase_create("netns");
        tcase_set_timeout(tc, 90);
        tcase_add_unchecked_fixture(tc, NULL, leftovers);
        tcase_add_test(tc, three_machines_walkthrough);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "mount_install: mounts and network namespaces need root: only the "
                        "file list is checked\n");
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (!getenv("KEEP")) {
        leftovers();
        h_sh(60, "rm -rf '%s' '%s' '%s' '%s.log' '%s.log' '%s.log'", W_FILES, W_MOUNT, W_NETNS,
             W_FILES, W_MOUNT, W_NETNS);
    }
    return nf ? 1 : 0;
}
