/* test_mount_du.c - `cairn du` and the user.cairn.dir.* xattrs on a real mount of a real
 * cluster: after building a tree (nested folders, files of various sizes, a sparse file, a
 * hard link, a symlink, a fifo) and after each round of creates, writes, truncates (grow and
 * shrink), renames across folders (files and a whole folder), unlinks and rmdirs, the bytes
 * `cairn du -b` reports for a folder equal `du -sb` of it, its files the distinct
 * non-directory inodes `find` sees below it, its directories the folders `find` sees, and
 * `getfattr -n user.cairn.dir.rbytes` (rfiles, rsubdirs) says the same. Also the exit status
 * and message for paths that cannot be answered, and a value read after a meta restart. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness_fs.h"

static struct hfs_env E;
static char T[600]; /* the test's tree on the mount */

static void need(void)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    ck_assert_msg(!E.local, "needs a real cluster");
}

/* Run a shell command in T (bounded); the test fails with its output when it fails. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[2000], out[1000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = h_run(120, out, sizeof(out), "cd '%s' && %s", T, cmd);
    ck_assert_msg(rc == 0, "exit %d from: %s\n%s", rc, cmd, out);
}

struct figures {
    unsigned long long bytes, files, dirs;
};

/* What du -sb, find and getfattr say about folder rel (under T). */
static void reference(const char *rel, struct figures *want, struct figures *xattr)
{
    char out[1000];
    int rc = h_run(120, out, sizeof(out),
                   "cd '%s/%s' && echo $(du -sb . | cut -f1) "
                   "$(find . -mindepth 1 ! -type d -printf '%%i\\n' | sort -u | wc -l) "
                   "$(find . -mindepth 1 -type d | wc -l) "
                   "$(getfattr --only-values -n user.cairn.dir.rbytes .) "
                   "$(getfattr --only-values -n user.cairn.dir.rfiles .) "
                   "$(getfattr --only-values -n user.cairn.dir.rsubdirs .)",
                   T, rel);
    ck_assert_msg(rc == 0, "reference of %s: exit %d: %s", rel, rc, out);
    int n = sscanf(out, "%llu %llu %llu %llu %llu %llu", &want->bytes, &want->files, &want->dirs,
                   &xattr->bytes, &xattr->files, &xattr->dirs);
    ck_assert_msg(n == 6, "reference of %s: cannot parse '%s'", rel, out);
}

/* cairn du --json of folder rel. */
static void cairn_du(const char *rel, struct figures *got)
{
    char out[1000];
    int rc = h_cairn_py(&E.c,
                        "p = d['paths'][0]\n"
                        "assert d['errors'] == 0 and p['type'] == 'dir', d\n"
                        "print(p['bytes'], p['files'], p['dirs'])",
                        out, sizeof(out), "du --json '%s/%s'", T, rel);
    ck_assert_msg(rc == 0, "cairn du %s: %s", rel, out);
    ck_assert_int_eq(sscanf(out, "%llu %llu %llu", &got->bytes, &got->files, &got->dirs), 3);
}

/* After a step: every folder named (space separated) agrees with du/find and the xattrs. */
static void check_dirs(const char *step, const char *rels)
{
    char list[600];
    snprintf(list, sizeof(list), "%s", rels);
    char *save = NULL;
    for (char *rel = strtok_r(list, " ", &save); rel; rel = strtok_r(NULL, " ", &save)) {
        struct figures want, x, got;
        sh("sync"); /* writes are committed on close; sync is belt and braces */
        reference(rel, &want, &x);
        cairn_du(rel, &got);
        ck_assert_msg(got.bytes == want.bytes && got.files == want.files && got.dirs == want.dirs,
                      "%s: %s: cairn du says %llu bytes %llu files %llu dirs; du -sb/find say "
                      "%llu %llu %llu",
                      step, rel, got.bytes, got.files, got.dirs, want.bytes, want.files, want.dirs);
        ck_assert_msg(x.bytes == want.bytes && x.files == want.files && x.dirs == want.dirs,
                      "%s: %s: the xattrs say %llu %llu %llu; du -sb/find %llu %llu %llu", step,
                      rel, x.bytes, x.files, x.dirs, want.bytes, want.files, want.dirs);
    }
}

START_TEST(du_follows_every_change)
{
    need();
    /* a tree: nested folders, files of various sizes, sparse, hard link, symlink, fifo */
    sh("mkdir -p a/b/c d e/f && head -c 1000 /dev/urandom > a/f1 && "
       "head -c 3145733 /dev/urandom > a/b/f2 && : > a/b/c/empty && "
       "printf 'x' > e/f/one && truncate -s 70M d/sparse && "
       "printf 'middle' | dd of=d/sparse bs=1 seek=33554432 conv=notrunc status=none && "
       "ln a/f1 a/f1.hard && ln -s ../f1 a/b/sym && mkfifo e/fifo");
    check_dirs("tree", ". a a/b a/b/c d e");
    /* creates and writes: a new file, an append, an overwrite inside */
    sh("head -c 200000 /dev/urandom > e/new && printf 'appended' >> a/f1 && "
       "printf 'zz' | dd of=a/b/f2 bs=1 seek=10 conv=notrunc status=none && "
       "mkdir a/b/c/deeper && head -c 4097 /dev/urandom > a/b/c/deeper/g");
    check_dirs("writes", ". a a/b a/b/c e");
    /* truncates: grow (sparse) and shrink */
    sh("truncate -s 10M a/b/f2 && truncate -s 100 d/sparse && truncate -s 0 e/new");
    check_dirs("truncates", ". a a/b d e");
    /* renames across folders: a file, then a whole folder with everything in it */
    sh("mv a/b/f2 d/f2 && mv a/b e/f/b2");
    check_dirs("renames", ". a d e e/f e/f/b2 e/f/b2/c");
    /* rename over an existing file, and within a folder */
    sh("mv d/f2 e/new && mv e/f/b2/c e/f/b2/c2");
    check_dirs("replace", ". d e e/f/b2");
    /* unlinks (the first name of the hard-linked file too) and rmdirs */
    sh("rm a/f1 e/fifo && rm -r e/f/b2/c2");
    check_dirs("unlinks", ". a d e e/f");
    sh("rm -f a/f1.hard && rmdir a && rm -r e");
    check_dirs("rmdirs", ". d");
}
END_TEST

START_TEST(du_text_and_errors)
{
    need();
    sh("mkdir -p t/x && head -c 5000 /dev/urandom > t/x/f && head -c 3000 /dev/urandom > t/g");
    char out[1000];
    /* -b: the exact number first, then files and dirs; a file counts as itself */
    int rc = h_cairn(&E.c, out, sizeof(out), "du -b '%s/t' '%s/t/g'", T, T);
    ck_assert_msg(rc == 0, "cairn du -b: exit %d: %s", rc, out);
    unsigned long long b1, f1, d1, b2, f2, d2;
    ck_assert_msg(sscanf(out, "%llu %llu files %llu dir %*s %llu %llu file %llu dirs", &b1, &f1,
                         &d1, &b2, &f2, &d2) == 6,
                  "cannot parse: %s", out);
    ck_assert(b1 == 8000 && f1 == 2 && d1 == 1);
    ck_assert(b2 == 3000 && f2 == 1 && d2 == 0);
    rc = h_cairn(&E.c, out, sizeof(out), "du '%s/t'", T);
    ck_assert_msg(rc == 0 && strstr(out, "7.8 KiB"), "human size: exit %d: %s", rc, out);
    /* a missing path and a path off the mount: exit 1 with the reason, other paths answered */
    rc = h_cairn(&E.c, out, sizeof(out), "du '%s/nope' /tmp '%s/t'", T, T);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "No such file") && strstr(out, "not on a CairnFS mount") &&
                      strstr(out, "2 files"),
                  "%s", out);
    /* the virtual names cannot be set or removed */
    rc = h_run(30, out, sizeof(out), "setfattr -n user.cairn.dir.rbytes -v 1 '%s/t'", T);
    ck_assert_msg(rc != 0 && strstr(out, "not permitted"), "setfattr: exit %d: %s", rc, out);
    /* the totals survive a restart of the meta service (kept in its store) */
    ck_assert_int_eq(h_kill_wait(E.c.meta_pid, SIGTERM, 10000) >= 0, 1);
    ck_assert_int_eq(h_meta_restart(&E.c), 0);
    char out2[1000] = "";
    for (int i = 0; i < 100; i++) { /* until the mount reconnects: 20 s at most */
        rc = h_cairn(&E.c, out2, sizeof(out2), "du -b '%s/t'", T);
        if (rc == 0) break;
        usleep(200 * 1000);
    }
    ck_assert_msg(rc == 0 && strncmp(out2, "8000 ", 5) == 0, "after a restart: %d %s", rc, out2);
}
END_TEST

int main(void)
{
    hfs_stop_on_signal(&E);
    hfs_env_start(&E, "du", 2, 1, NULL);
    if (E.ready) {
        int rc = hfs_subdir(&E, 0, "du", T, sizeof(T));
        if (rc) {
            E.ready = 0;
            snprintf(E.why, sizeof(E.why), "mkdir under the mount: %s", strerror(-rc));
        }
    }
    if (!E.ready) fprintf(stderr, "test_mount_du: setup failed: %s\n", E.why);
    Suite *s = suite_create("mount_du");
    TCase *tc = tcase_create("du");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, du_follows_every_change);
    tcase_add_test(tc, du_text_and_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* in this process: the meta restarted by du_text_and_errors must be the one
     * hfs_env_stop stops (a forked test's new pid would be lost with it) */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
