/* test_mount_tools.c - everyday tools on a real mount of a real cluster: `cp -a`, `ls -lR`,
 * `rsync -a --checksum`, `tar` and `git init/add/commit/gc/fsck/clone`, each a round trip
 * between a local folder and the mount, the trees compared with `diff -r` and with
 * hfs_tree_compare (modes, mtimes, link counts, xattrs).
 *
 * main() builds one local source tree (binary and text files, an empty file, a sparse file,
 * many small files, odd names, symlinks incl. a dangling one, hard links, modes, old mtimes,
 * user xattrs) under the cluster's folder; every test copies it somewhere. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "harness_fs.h"

#define MiB (1024L * 1024L)
#define FUSE_SUPER_MAGIC 0x65735546

static struct hfs_env E;
static char SRC[600];  /* the local source tree */
static char WORK[400]; /* local scratch space */
static char LOG[700];  /* output of the last command */

/* ---- helpers ----------------------------------------------------------------------------- */

static void need(void)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    struct statfs sf;
    ck_assert_int_eq(statfs(E.root[0], &sf), 0);
    ck_assert_msg(E.local || sf.f_type == FUSE_SUPER_MAGIC, "%s is not a FUSE mount", E.root[0]);
}

/* Run a shell command (bounded), its output in LOG; on failure the test fails with the
 * command and the end of its output. */
static void run(int timeout_s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run(int timeout_s, const char *fmt, ...)
{
    char cmd[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc =
        h_sh(timeout_s, "export HOME='%s' GIT_CONFIG_NOSYSTEM=1 LC_ALL=C TZ=UTC; ( %s ) >'%s' 2>&1",
             WORK, cmd, LOG);
    if (rc == 0) return;
    char tail[1500] = "";
    FILE *f = fopen(LOG, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, sz > (long)sizeof(tail) - 1 ? sz - (long)sizeof(tail) + 1 : 0, SEEK_SET);
        size_t n = fread(tail, 1, sizeof(tail) - 1, f);
        tail[n] = '\0';
        fclose(f);
    }
    ck_abort_msg("exit %d from: %s\n--- output:\n%s", rc, cmd, tail);
}

static void same_tree(const char *a, const char *b, unsigned flags)
{
    run(300, "diff -r --no-dereference '%s' '%s'", a, b);
    char why[2048];
    int rc = hfs_tree_compare(a, b, flags, why, sizeof(why));
    ck_assert_msg(rc == 0, "trees differ: %s", why);
}

/* A fresh folder under the mount and a fresh one under WORK. */
static void dirs(const char *name, char *m, size_t ml, char *l, size_t ll)
{
    int rc = hfs_subdir(&E, 0, name, m, ml);
    ck_assert_msg(rc == 0, "mkdir %s: %s", m, strerror(-rc));
    snprintf(l, ll, "%s/%s", WORK, name);
    run(60, "rm -rf '%s' && mkdir -p '%s'", l, l);
}

static int write_pattern_file(const char *path, uint64_t seed, off_t off, size_t len, off_t size)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return -errno;
    char *b = malloc(len ? len : 1);
    int rc = b ? 0 : -ENOMEM;
    if (!rc) {
        hfs_fill(b, len, seed, (uint64_t)off);
        rc = hfs_pwrite_all(fd, b, len, off);
    }
    if (!rc && size > off + (off_t)len && ftruncate(fd, size) != 0) rc = -errno;
    free(b);
    if (close(fd) != 0 && !rc) rc = -errno;
    return rc;
}

/* The source tree; 0 or -errno / a positive shell status. */
static int make_src(void)
{
    snprintf(WORK, sizeof(WORK), "%s/work", E.c.dir);
    snprintf(SRC, sizeof(SRC), "%s/src", WORK);
    snprintf(LOG, sizeof(LOG), "%s/cmd.log", E.c.dir);
    char p[800];
    int rc = h_sh(60,
                  "mkdir -p '%s' && cd '%s' && mkdir -p a/b/c empty many 'with space' "
                  "'ünïcödé' deep/1/2/3/4/5/6/7/8",
                  SRC, SRC);
    if (rc) return rc;
    const struct {
        const char *name;
        uint64_t seed;
        off_t off;
        size_t len;
        off_t size;
    } files[] = {
        {"bin5m", 1, 0, 5 * MiB + 1, 0},
        {"a/b/c/64k", 2, 0, 65536, 0},
        {"one", 3, 0, 1, 0},
        {"empty-file", 4, 0, 0, 0},
        {"sparse", 5, 18 * MiB, MiB + 7, 20 * MiB},
        {"with space/file name with spaces", 6, 0, 3000, 0},
        {"ünïcödé/dätä", 7, 0, 100, 0},
        {"deep/1/2/3/4/5/6/7/8/leaf", 8, 0, 10, 0},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", SRC, files[i].name);
        rc = write_pattern_file(p, files[i].seed, files[i].off, files[i].len, files[i].size);
        if (rc) return rc;
    }
    rc = h_sh(120,
              "cd '%s' && printf 'hello\\nworld\\n' > hello.txt && "
              "for i in $(seq 1 200); do echo \"small file $i\" > many/f$i; done && "
              "printf '#!/bin/sh\\necho hi\\n' > a/exec.sh && chmod 0755 a/exec.sh && "
              "echo secret > a/secret && chmod 0600 a/secret && chmod 0700 a/b/c && "
              "chmod 2755 a/b && chmod 0444 one && "
              "ln -s hello.txt link-to-hello && ln -s nowhere dangling && ln -s a/b alink && "
              "ln -s ../../hello.txt a/b/up && ln hello.txt a/b/hard && "
              "setfattr -n user.color -v blue hello.txt && "
              "setfattr -n user.empty bin5m && setfattr -n user.dir -v yes a && "
              "find . -exec touch -h -d '2001-02-03 04:05:06' {} + && "
              "touch -d '2020-01-01 00:00:00.123456789' one",
              SRC);
    return rc;
}

/* ---- cp -a and ls -lR ----------------------------------------------------------------------- */

START_TEST(cp_archive)
{
    need();
    char m[600], l[600];
    dirs("cp", m, sizeof(m), l, sizeof(l));
    unsigned all = HFS_CMP_MTIME | HFS_CMP_OWNER | HFS_CMP_NLINK | HFS_CMP_XATTR;
    run(300, "cp -a '%s' '%s/tree'", SRC, m);
    char mt[700], lt[700];
    snprintf(mt, sizeof(mt), "%s/tree", m);
    snprintf(lt, sizeof(lt), "%s/tree", l);
    same_tree(SRC, mt, all);
    struct stat st;
    char p[800];
    snprintf(p, sizeof(p), "%s/one", mt);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mtim.tv_nsec, 123456789); /* nanoseconds kept */
    /* and back out to a local folder */
    run(300, "cp -a '%s' '%s'", mt, lt);
    same_tree(SRC, lt, all);
    /* from the mount to the mount (copy_file_range) */
    run(300, "cp -a '%s' '%s/tree2'", mt, m);
    snprintf(p, sizeof(p), "%s/tree2", m);
    same_tree(SRC, p, all);
    /* a second cp -a over the existing copy (overwrites every file in place) */
    run(300, "cp -a '%s/.' '%s/'", SRC, mt);
    same_tree(SRC, mt, all);
}
END_TEST

START_TEST(ls_recursive)
{
    need();
    char m[600], l[600];
    dirs("ls", m, sizeof(m), l, sizeof(l));
    run(300,
        "tar -C '%s' --xattrs -cf - . | (mkdir '%s/tree' && tar -C '%s/tree' --xattrs "
        "--xattrs-include='user.*' -xpf -)",
        SRC, m, m);
    /* ls -lR of both, with folder sizes and "total" lines (allocation) taken out; a "+" after
     * the mode (an ACL) shows up as a difference */
    /* (fields re-joined by single spaces: column widths follow the folder sizes) */
    const char *norm = "awk '/^total / {next} /^d/ {$5=\"-\"} {$1=$1; print}'";
    run(120, "cd '%s' && ls -lR --time-style=+%%s.%%N . | %s > '%s/ls.src'", SRC, norm, l);
    run(120, "cd '%s/tree' && ls -lR --time-style=+%%s.%%N . | %s > '%s/ls.mnt'", m, norm, l);
    run(60, "diff '%s/ls.src' '%s/ls.mnt'", l, l);
    run(60, "test $(grep -c . '%s/ls.mnt') -gt 230", l);
    /* ls -i: hard links share an inode number */
    run(60,
        "cd '%s/tree' && test \"$(stat -c %%i hello.txt)\" = \"$(stat -c %%i a/b/hard)\" && "
        "test \"$(stat -c %%h hello.txt)\" = 2",
        m);
}
END_TEST

/* ---- rsync ---------------------------------------------------------------------------------- */

START_TEST(rsync_checksum)
{
    need();
    char m[600], l[600];
    dirs("rsync", m, sizeof(m), l, sizeof(l));
    unsigned all = HFS_CMP_MTIME | HFS_CMP_OWNER | HFS_CMP_NLINK | HFS_CMP_XATTR;
    run(300, "rsync -aHX --checksum '%s/' '%s/rs/'", SRC, m);
    char mr[700];
    snprintf(mr, sizeof(mr), "%s/rs", m);
    same_tree(SRC, mr, all);

    /* change two files without changing size or mtime: only --checksum sees it */
    run(120,
        "cp -a '%s' '%s/src2' && cd '%s/src2' && "
        "printf X | dd of=bin5m bs=1 seek=4096 conv=notrunc status=none && "
        "touch -d '2001-02-03 04:05:06' bin5m && "
        "printf Q | dd of='with space/file name with spaces' bs=1 seek=7 conv=notrunc "
        "status=none && touch -d '2001-02-03 04:05:06' 'with space/file name with spaces'",
        SRC, l, l);
    run(300, "rsync -aHX --checksum -i '%s/src2/' '%s/' > '%s/itemize'", l, mr, l);
    run(60,
        "test $(grep -c '^>f' '%s/itemize') -eq 2 && grep -q '^>f.* bin5m$' '%s/itemize' && "
        "grep -q '^>f.*file name with spaces$' '%s/itemize'",
        l, l, l);
    char s2[700];
    snprintf(s2, sizeof(s2), "%s/src2", l);
    same_tree(s2, mr, all);
    /* nothing left to send */
    run(300, "rsync -aHX --checksum -i '%s/src2/' '%s/' > '%s/itemize2'", l, mr, l);
    run(60, "! grep -q '^[<>ch]f' '%s/itemize2'", l);
    /* and from the mount to a local folder */
    run(300, "rsync -aHX --checksum '%s/' '%s/back/'", mr, l);
    char back[700];
    snprintf(back, sizeof(back), "%s/back", l);
    same_tree(s2, back, all);
    /* --delete removes what the source lost */
    run(60, "rm -rf '%s/src2/many' '%s/src2/one'", l, l);
    run(300, "rsync -aHX --delete --checksum '%s/src2/' '%s/'", l, mr);
    same_tree(s2, mr, all);
}
END_TEST

/* ---- tar ------------------------------------------------------------------------------------ */

START_TEST(tar_roundtrip)
{
    need();
    char m[600], l[600];
    dirs("tar", m, sizeof(m), l, sizeof(l));
    unsigned all = HFS_CMP_MTIME | HFS_CMP_OWNER | HFS_CMP_NLINK | HFS_CMP_XATTR;
    /* archive written to the mount, extracted on the mount */
    run(300, "tar -C '%s' --xattrs -S -cf '%s/t.tar' .", SRC, m);
    run(300, "mkdir '%s/x' && tar -C '%s/x' --xattrs --xattrs-include='user.*' -xpf '%s/t.tar'", m,
        m, m);
    char mx[700], lx[700];
    snprintf(mx, sizeof(mx), "%s/x", m);
    same_tree(SRC, mx, all);
    /* archive of the mount, extracted locally; the listing matches the source's */
    run(300, "tar -C '%s' --xattrs -S -cf '%s/u.tar' .", mx, l);
    run(300, "mkdir '%s/x' && tar -C '%s/x' --xattrs --xattrs-include='user.*' -xpf '%s/u.tar'", l,
        l, l);
    snprintf(lx, sizeof(lx), "%s/x", l);
    same_tree(SRC, lx, all);
    run(120,
        "tar -tvf '%s/t.tar' | sort > '%s/t.list' && tar -tvf '%s/u.tar' | sort > '%s/u.list' "
        "&& diff '%s/t.list' '%s/u.list'",
        m, l, l, l, l, l);
    /* compressed, through a pipe, straight onto the mount */
    run(300, "tar -C '%s' -czf - . | (mkdir '%s/z' && tar -C '%s/z' -xzpf -)", SRC, m, m);
    char mz[700];
    snprintf(mz, sizeof(mz), "%s/z", m);
    same_tree(SRC, mz, HFS_CMP_MTIME | HFS_CMP_NLINK);
    run(120, "cd '%s' && tar -df '%s/t.tar'", mx, m); /* tar's own compare */
}
END_TEST

/* ---- git ------------------------------------------------------------------------------------ */

START_TEST(git_repo)
{
    need();
    char m[600], l[600];
    dirs("git", m, sizeof(m), l, sizeof(l));
    const char *git = "git -c user.name=Test -c user.email=test@example.com "
                      "-c init.defaultBranch=main -c safe.directory='*' -c gc.auto=0";
    run(300,
        "mkdir '%s/repo' && cd '%s/repo' && %s init -q && cp -a '%s/.' . && rm -rf empty && "
        "%s add -A && %s commit -q -m first && %s fsck --full --strict",
        m, m, git, SRC, git, git, git);
    run(300,
        "cd '%s/repo' && echo more >> hello.txt && rm a/secret && mv bin5m bin5m.moved && "
        "%s add -A && %s commit -q -m second && test $(%s rev-list --count HEAD) -eq 2 && "
        "test -z \"$(%s status --porcelain)\"",
        m, git, git, git, git);
    /* pack everything (mmap'd pack files, renames over locks), then check again */
    run(300,
        "cd '%s/repo' && %s gc -q --prune=now && %s fsck --full --strict && "
        "test -z \"$(%s status --porcelain)\" && ls .git/objects/pack/*.pack",
        m, git, git, git);
    /* clone to a local folder and back onto the mount */
    run(300, "%s clone -q '%s/repo' '%s/clone' && cd '%s/clone' && %s fsck --full", git, m, l, l,
        git);
    run(300, "diff -r --no-dereference -x .git '%s/repo' '%s/clone'", m, l);
    run(300,
        "%s clone -q '%s/clone' '%s/clone2' && cd '%s/clone2' && %s fsck --full --strict && "
        "test $(%s rev-list --count HEAD) -eq 2",
        git, l, m, m, git, git);
    run(300, "diff -r --no-dereference -x .git '%s/clone' '%s/clone2'", l, m);
    run(120,
        "cd '%s/clone2' && %s log --stat > /dev/null && %s checkout -q HEAD~1 && "
        "test -f bin5m && cmp bin5m '%s/bin5m' && %s checkout -q main",
        m, git, git, SRC, git);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

int main(void)
{
    hfs_stop_on_signal(&E);
    umask(022);
    hfs_env_start(&E, "tools", 2, 1, NULL);
    if (E.ready) {
        int rc = make_src();
        if (rc) {
            E.ready = 0;
            snprintf(E.why, sizeof(E.why), "cannot build the source tree in %s: %d", SRC, rc);
        }
    }
    if (!E.ready) fprintf(stderr, "test_mount_tools: setup failed: %s\n", E.why);

    Suite *s = suite_create("mount_tools");
    TCase *tc = tcase_create("tools");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, cp_archive);
    tcase_add_test(tc, ls_recursive);
    tcase_add_test(tc, rsync_checksum);
    tcase_add_test(tc, tar_roundtrip);
    tcase_add_test(tc, git_repo);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
