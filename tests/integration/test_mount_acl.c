/* test_mount_acl.c - POSIX ACLs on a real FUSE mount of a real cluster: setfacl/getfacl round
 * trips (the mount answers exactly as the local ext4/tmpfs folder given the same commands),
 * the kernel allowing or denying other users exactly as an ACL says (named user, named group,
 * the mask limiting both, other), default ACLs inherited by new files, directories, fifos (not
 * symlinks) with the umask ignored under a default ACL and applied without one, chmod moving
 * the mask, and cp -a, rsync -A and tar --acls carrying ACLs both ways (getfacl of every path
 * compared).
 *
 * One cluster and one mount with allow_other (a forked child running as another uid uses it).
 * Every comparison runs the same shell commands in a local folder and on the mount. The wire
 * case speaks to the meta service directly: MKDIR with and without the optional umask, and
 * malformed ACL values refused with EINVAL. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "harness_fs.h"
#include "harness_meta.h"
#include "proto.h"
#include "rpc.h"

#define FUSE_SUPER_MAGIC 0x65735546

static struct hfs_env E;
static char WORK[400]; /* local scratch space (a file system with ACLs) */
static char LOG[500];  /* output of the last command */

/* ---- helpers ------------------------------------------------------------------------------- */

static void need(void)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
    struct statfs sf;
    ck_assert_int_eq(statfs(E.root[0], &sf), 0);
    ck_assert_msg(E.local || sf.f_type == FUSE_SUPER_MAGIC, "%s is not a FUSE mount", E.root[0]);
}

static void log_tail(char *tail, size_t len)
{
    tail[0] = '\0';
    FILE *f = fopen(LOG, "r");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, sz > (long)len - 1 ? sz - (long)len + 1 : 0, SEEK_SET);
    size_t n = fread(tail, 1, len - 1, f);
    tail[n] = '\0';
    fclose(f);
}

/* Run a shell command (bounded) with its output in LOG; the test fails when it fails. */
static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
    char cmd[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = h_sh(120, "export LC_ALL=C; ( %s ) >'%s' 2>&1", cmd, LOG);
    if (rc == 0) return;
    char tail[1500];
    log_tail(tail, sizeof(tail));
    ck_abort_msg("exit %d from: %s\n--- output:\n%s", rc, cmd, tail);
}

/* A fresh folder NAME on the mount (m) and in WORK (l). */
static void dirs(const char *name, char *m, size_t ml, char *l, size_t ll)
{
    int rc = hfs_subdir(&E, 0, name, m, ml);
    ck_assert_msg(rc == 0, "cannot make %s on the mount: %s", name, strerror(-rc));
    snprintf(l, ll, "%s/%s", WORK, name);
    run("rm -rf '%s' && mkdir '%s'", l, l);
    ck_assert_int_eq(chmod(m, 0755), 0);
    ck_assert_int_eq(chmod(l, 0755), 0);
}

/* getfacl (numeric, relative names, "effective" comments) of every path under dir, in name
 * order, into out. */
static void acls_of(const char *dir, const char *out)
{
    run("cd '%s' && find . -mindepth 1 | sort | xargs -r -d '\\n' getfacl -n -p -- > '%s'", dir,
        out);
}

/* The same ACLs (and modes, owners) under a and b. */
static void same_acls(const char *a, const char *b)
{
    char fa[600], fb[600];
    snprintf(fa, sizeof(fa), "%s/acls-a.txt", WORK);
    snprintf(fb, sizeof(fb), "%s/acls-b.txt", WORK);
    acls_of(a, fa);
    acls_of(b, fb);
    int rc = h_sh(30, "diff -u '%s' '%s' > '%s' 2>&1", fa, fb, LOG);
    char tail[2500];
    log_tail(tail, sizeof(tail));
    ck_assert_msg(rc == 0, "ACLs under %s and %s differ:\n%s", a, b, tail);
    /* and there were ACLs to compare */
    ck_assert_int_eq(h_sh(30, "grep -q '^user:[0-9]' '%s'", fa), 0);
}

/* Run the shell commands cmds in folder m (the mount) and in folder l (local), each in a
 * subshell starting in that folder; then compare what getfacl says of every path. */
static void both(const char *m, const char *l, const char *cmds)
{
    run("cd '%s' && %s", l, cmds);
    run("cd '%s' && %s", m, cmds);
    same_acls(l, m);
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    ck_assert_msg(lstat(p, &st) == 0, "lstat(%s): %s", p, strerror(errno));
    return st.st_mode & 07777;
}

static int has_xattr(const char *p, const char *name)
{
    char b[512];
    return lgetxattr(p, name, b, sizeof(b)) >= 0;
}

/* ---- running a call as another user --------------------------------------------------------- */

struct cred {
    uid_t uid;
    gid_t gid;
    int ng;
    gid_t groups[4];
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* open(path, flags) (0666 when creating) as cr, without capabilities: 0 or the errno. The
 * child enters path's folder first, as root (the folders above may be private). */
static int open_as(const struct cred *cr, const char *path, int flags)
{
    char dir[800];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = '\0';
    const char *base = path + (slash - dir) + 1;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(60);
        if (chdir(dir) != 0) _exit(251);
        if (setgroups((size_t)cr->ng, cr->groups) != 0 ||
            setresgid(cr->gid, cr->gid, cr->gid) != 0 || setresuid(cr->uid, cr->uid, cr->uid) != 0)
            _exit(250);
        int fd = open(base, flags, 0666);
        if (fd < 0) _exit(errno & 0xff);
        close(fd);
        _exit(0);
    }
    int st = 0;
    for (int i = 0; i < 6000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        ck_assert_int_eq(r, 0);
        if (i == 5999) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            ck_abort_msg("child as uid %u hung", cr->uid);
        }
        sleep_ms(10);
    }
    ck_assert_msg(WIFEXITED(st), "child as uid %u died (status 0x%x)", cr->uid, st);
    ck_assert_msg(WEXITSTATUS(st) != 250, "cannot switch to uid %u", cr->uid);
    ck_assert_msg(WEXITSTATUS(st) != 251, "cannot enter %s", dir);
    return WEXITSTATUS(st);
}

#define ALLOWED(cr, p, fl) ck_assert_msg(open_as(cr, p, fl) == 0, "uid %u denied %s", (cr)->uid, p)
#define DENIED(cr, p, fl)                                                                          \
    ck_assert_msg(open_as(cr, p, fl) == EACCES, "uid %u not denied %s", (cr)->uid, p)

/* ---- tests ------------------------------------------------------------------------------------
 */

/* setfacl -m / -x / -b / -d / -k give the same getfacl answers and modes as a local fs. */
START_TEST(setfacl_getfacl_round_trip)
{
    need();
    char m[600], l[600];
    dirs("roundtrip", m, sizeof(m), l, sizeof(l));
    both(m, l,
         "umask 022 && echo x > f && mkdir d && echo y > g && "
         "setfacl -m u:1001:rw,u:1002:r,g:2001:rwx,g:2002:-,m::rwx,o::- f && "
         "setfacl -m u:1003:rwx g && setfacl -x u:1003 g && "
         "setfacl -m u:1001:rx,g:2001:rwx d && setfacl -d -m u:1002:rwx,g:2002:rx,o::- d && "
         "setfacl -m u:1001:rw g && setfacl -b g");
    /* the mode's group bits are the mask */
    char p[700];
    snprintf(p, sizeof(p), "%s/f", m);
    ck_assert_int_eq(mode_of(p), 0670);
    ck_assert(has_xattr(p, "system.posix_acl_access"));
    /* removing every extended entry leaves no ACL behind (the mode says it all) */
    snprintf(p, sizeof(p), "%s/g", m);
    ck_assert(!has_xattr(p, "system.posix_acl_access"));
    /* setfacl -k drops the default ACL; a malformed raw value is refused */
    both(m, l, "setfacl -k d");
    snprintf(p, sizeof(p), "%s/d", m);
    ck_assert(!has_xattr(p, "system.posix_acl_default"));
    ck_assert(has_xattr(p, "system.posix_acl_access"));
    snprintf(p, sizeof(p), "%s/f", m);
    const unsigned char junk[12] = {2, 0, 0, 0, 0x40, 0, 7, 0, 0, 0, 0, 0};
    ck_assert_int_ne(setxattr(p, "system.posix_acl_access", junk, sizeof(junk), 0), 0);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(mode_of(p), 0670);
}
END_TEST

/* Other users get exactly what the ACL gives them: owner, named user, named group, the mask
 * limiting named entries and the owning group, other. */
START_TEST(acl_allows_and_denies)
{
    need();
    char m[600], l[600], f[700], d[700], p[800];
    dirs("perms", m, sizeof(m), l, sizeof(l));
    ck_assert_int_eq(chmod(m, 0755), 0);
    snprintf(f, sizeof(f), "%s/f", m);
    ck_assert_int_eq(hfs_write_file(f, "secret", 6, 0600), 0);
    ck_assert_int_eq(chown(f, 1001, 2001), 0);
    ck_assert_int_eq(chmod(f, 0600), 0);
    const struct cred owner = {1001, 2001, 1, {2001}}, named = {1002, 2002, 1, {2002}},
                      in_group = {1003, 2003, 2, {2003, 2005}},
                      owning_group = {1004, 2001, 1, {2001}}, other = {1005, 2005, 1, {2005}};
    /* before: the mode alone */
    DENIED(&named, f, O_RDONLY);
    ALLOWED(&owner, f, O_RDWR);

    run("setfacl -m u:1002:r,g:2003:rw,g::r,o::- '%s'", f);
    ALLOWED(&named, f, O_RDONLY);
    DENIED(&named, f, O_WRONLY);
    ALLOWED(&in_group, f, O_RDWR); /* a supplementary group's entry */
    ALLOWED(&owning_group, f, O_RDONLY);
    DENIED(&owning_group, f, O_WRONLY);
    DENIED(&other, f, O_RDONLY);
    ALLOWED(&owner, f, O_RDWR);

    /* the mask limits named entries and the owning group, not the owner */
    run("setfacl -m m::- '%s'", f);
    DENIED(&named, f, O_RDONLY);
    DENIED(&in_group, f, O_RDONLY);
    DENIED(&owning_group, f, O_RDONLY);
    ALLOWED(&owner, f, O_RDWR);
    run("setfacl -m m::r '%s'", f);
    ALLOWED(&in_group, f, O_RDONLY);
    DENIED(&in_group, f, O_WRONLY);

    /* other */
    run("setfacl -m o::r '%s'", f);
    ALLOWED(&other, f, O_RDONLY);
    DENIED(&other, f, O_WRONLY);

    /* a directory: a named user may create in it, nobody else */
    snprintf(d, sizeof(d), "%s/drop", m);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    run("setfacl -m u:1002:rwx '%s'", d);
    snprintf(p, sizeof(p), "%s/by-named", d);
    ALLOWED(&named, p, O_CREAT | O_WRONLY);
    snprintf(p, sizeof(p), "%s/by-other", d);
    DENIED(&other, p, O_CREAT | O_WRONLY);
    /* removing the entry takes the right away */
    run("setfacl -x u:1002 '%s'", d);
    snprintf(p, sizeof(p), "%s/by-named-2", d);
    DENIED(&named, p, O_CREAT | O_WRONLY);
}
END_TEST

/* Default ACLs: new files, directories and fifos inherit them (the umask ignored), new
 * directories pass them on, symlinks get nothing; without one the umask applies. */
START_TEST(default_acl_inherited)
{
    need();
    char m[600], l[600], p[800];
    dirs("inherit", m, sizeof(m), l, sizeof(l));
    both(m, l,
         "mkdir d && setfacl -d -m u:1002:rwx,g:2003:rx,m::rwx,o::- d && setfacl -d -m g::rx d && "
         "umask 077 && echo x > d/f && mkdir d/sub && mkdir d/sub/deep && mkfifo d/fifo && "
         "ln -s f d/ln && echo y > d/sub/g && "
         "umask 027 && echo z > plain && mkdir plaindir && "
         "umask 000 && echo w > d/open && mkdir -m 0700 d/private");
    /* on the mount, the umask was ignored under the default ACL ... */
    snprintf(p, sizeof(p), "%s/d/f", m);
    ck_assert_int_eq(mode_of(p), 0660);
    ck_assert(has_xattr(p, "system.posix_acl_access"));
    ck_assert(!has_xattr(p, "system.posix_acl_default"));
    snprintf(p, sizeof(p), "%s/d/sub/deep", m);
    ck_assert_int_eq(mode_of(p), 0770);
    ck_assert(has_xattr(p, "system.posix_acl_default"));
    snprintf(p, sizeof(p), "%s/d/private", m);
    ck_assert_int_eq(mode_of(p), 0700);
    snprintf(p, sizeof(p), "%s/d/ln", m);
    ck_assert_int_eq(mode_of(p), 0777);
    /* ... and applied without one */
    snprintf(p, sizeof(p), "%s/plain", m);
    ck_assert_int_eq(mode_of(p), 0640);
    ck_assert(!has_xattr(p, "system.posix_acl_access"));
    snprintf(p, sizeof(p), "%s/plaindir", m);
    ck_assert_int_eq(mode_of(p), 0750);

    /* the inherited named entry works: 1002 writes the new file, 1005 cannot read it */
    const struct cred named = {1002, 2002, 1, {2002}}, other = {1005, 2005, 1, {2005}};
    snprintf(p, sizeof(p), "%s/d/f", m);
    ALLOWED(&named, p, O_WRONLY);
    DENIED(&other, p, O_RDONLY);
    snprintf(p, sizeof(p), "%s/d/sub/by-named", m);
    ALLOWED(&named, p, O_CREAT | O_WRONLY);
}
END_TEST

/* chmod moves the mask (getfacl shows it) and the rights follow. */
START_TEST(chmod_updates_mask)
{
    need();
    char m[600], l[600], p[800];
    dirs("chmod", m, sizeof(m), l, sizeof(l));
    both(m, l, "echo x > f && setfacl -m u:1002:rwx,g:2003:rw f && chmod 640 f");
    snprintf(p, sizeof(p), "%s/f", m);
    ck_assert_int_eq(mode_of(p), 0640);
    run("getfacl -n '%s' | grep -qx 'mask::r--'", p);
    run("getfacl -n '%s' | grep -q '^user:1002:rwx.*#effective:r--'", p);
    const struct cred named = {1002, 2002, 1, {2002}};
    ALLOWED(&named, p, O_RDONLY);
    DENIED(&named, p, O_WRONLY);
    both(m, l, "chmod 770 f");
    ALLOWED(&named, p, O_RDWR);
    run("getfacl -n '%s' | grep -qx 'mask::rwx'", p);
}
END_TEST

static void ctime_of(const char *p, struct timespec *ts)
{
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "%s: %s", p, strerror(errno));
    *ts = st.st_ctim;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

START_TEST(minimal_acl_changes_nothing)
{
    need();
    char m[600], l[600];
    dirs("minimal", m, sizeof(m), l, sizeof(l));
    const char *where[2] = {m, l};
    for (int i = 0; i < 2; i++)
        run("cd '%s' && echo x > f && chmod 644 f", where[i]);
    for (int i = 0; i < 2; i++) {
        char p[800];
        snprintf(p, sizeof(p), "%s/f", where[i]);
        struct timespec t0, t1, t2;
        ctime_of(p, &t0);
        sleep_ms(20);
        /* what cp -a sets on every file: the mode as it is, as an ACL (setfacl would not
         * send it: it sees nothing changes) */
        static const uint8_t acl644[28] = {2,    0,   0, 0, 1,   0,   6,   0,   255, 255,
                                           255,  255, 4, 0, 4,   0,   255, 255, 255, 255,
                                           0x20, 0,   4, 0, 255, 255, 255, 255};
        ck_assert_msg(setxattr(p, "system.posix_acl_access", acl644, sizeof(acl644), 0) == 0,
                      "%s: %s", p, strerror(errno));
        ctime_of(p, &t1);
        ck_assert_msg(same_time(&t0, &t1), "%s: a minimal ACL equal to the mode moved ctime", p);
        ck_assert_int_eq(mode_of(p), 0644);
        ck_assert_int_eq(has_xattr(p, "system.posix_acl_access"), 0);
        sleep_ms(20);
        run("setfacl -m u::rwx '%s'", p); /* minimal, another mode: a change */
        ctime_of(p, &t2);
        ck_assert_msg(!same_time(&t1, &t2), "%s: a mode change by ACL left ctime alone", p);
        ck_assert_int_eq(mode_of(p), 0744);
    }
}
END_TEST

/* A local tree with ACLs (files, directories with default ACLs, named users and groups). */
static void make_tree(const char *dir)
{
    run("cd '%s' && umask 022 && mkdir -p a/b/c e && echo 1 > a/one && echo 2 > a/b/two && "
        "echo 3 > a/b/c/three && echo 4 > top && ln -s top link && "
        "setfacl -m u:1001:rw,g:2001:r top && setfacl -m u:1002:rwx,m::rx a/one && "
        "setfacl -m u:1003:rx a && setfacl -d -m u:1003:rwx,g:2002:rx a/b && "
        "echo 5 > a/b/five && mkdir a/b/sub && setfacl -m g:2004:rw a/b/c/three && "
        "setfacl -d -m o::- e",
        dir);
}

START_TEST(cp_a_keeps_acls)
{
    need();
    char m[600], l[600];
    dirs("cp", m, sizeof(m), l, sizeof(l));
    run("mkdir '%s/src' '%s/back'", l, l);
    char src[700], back[700];
    snprintf(src, sizeof(src), "%s/src", l);
    snprintf(back, sizeof(back), "%s/back", l);
    make_tree(src);
    run("cp -a '%s/.' '%s/'", src, m);
    same_acls(src, m);
    run("cp -a '%s/.' '%s/'", m, back);
    same_acls(src, back);
}
END_TEST

START_TEST(rsync_A_keeps_acls)
{
    need();
    char m[600], l[600];
    dirs("rsync", m, sizeof(m), l, sizeof(l));
    run("mkdir '%s/src' '%s/back'", l, l);
    char src[700], back[700];
    snprintf(src, sizeof(src), "%s/src", l);
    snprintf(back, sizeof(back), "%s/back", l);
    make_tree(src);
    run("rsync -aA '%s/' '%s/'", src, m);
    same_acls(src, m);
    /* a second run changes nothing; then back to a local folder */
    run("rsync -aAi '%s/' '%s/' > '%s/itemized' && test ! -s '%s/itemized'", src, m, l, l);
    run("rsync -aA '%s/' '%s/'", m, back);
    same_acls(src, back);
}
END_TEST

START_TEST(tar_acls_keeps_acls)
{
    need();
    char m[600], l[600];
    dirs("tar", m, sizeof(m), l, sizeof(l));
    run("mkdir '%s/src' '%s/back'", l, l);
    char src[700], back[700];
    snprintf(src, sizeof(src), "%s/src", l);
    snprintf(back, sizeof(back), "%s/back", l);
    make_tree(src);
    run("tar --acls -cpf '%s/in.tar' -C '%s' . && tar --acls -xpf '%s/in.tar' -C '%s'", l, src, l,
        m);
    same_acls(src, m);
    /* an archive made on the mount */
    run("tar --acls -cpf '%s/out.tar' -C '%s' . && tar --acls -xpf '%s/out.tar' -C '%s'", l, m, l,
        back);
    same_acls(src, back);
}
END_TEST

/* -o noacl: ACLs refused (tools fall back to chmod), the umask applied by the kernel. */
START_TEST(noacl_refuses)
{
    need();
    if (E.local) return;
    char m[600], l[600], p[800];
    dirs("noacl", m, sizeof(m), l, sizeof(l));
    int k = h_mount_opts(&E.c, "noacl");
    ck_assert_msg(k >= 0, "mount -o noacl: %s", strerror(-k));
    char n[700];
    snprintf(n, sizeof(n), "%s/noacl", E.c.mnt[k]);
    int rc = h_sh(60, "cd '%s' && echo x > f && setfacl -m u:1002:rw f >/dev/null 2>&1", n);
    mode_t um = umask(027);
    snprintf(p, sizeof(p), "%s/plain", n);
    int fd = open(p, O_CREAT | O_WRONLY, 0666);
    umask(um);
    char b[64];
    errno = 0;
    ssize_t got = getxattr(n, "system.posix_acl_access", b, sizeof(b));
    int gerr = errno;
    ck_assert_int_eq(h_umount(&E.c, k), 0);
    ck_assert_msg(rc != 0, "setfacl succeeded on a noacl mount");
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(p, sizeof(p), "%s/plain", m);
    ck_assert_int_eq(mode_of(p), 0640);
    ck_assert_int_eq(got, -1);
    ck_assert_int_eq(gerr, EOPNOTSUPP);
}
END_TEST

/* ---- the wire: the optional umask, malformed ACLs ---------------------------------------------
 */

/* MKDIR over the wire; umask < 0: the request of an older client (no trailing umask). */
static int w_mkdir(struct rpc_conn *m, uint64_t parent, const char *name, uint32_t mode, int umask,
                   struct cairn_attr *a)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, parent);
    wbuf_put_str(&b, name, strlen(name));
    wbuf_put_u32(&b, mode);
    wbuf_put_u32(&b, 0);
    wbuf_put_u32(&b, 0);
    if (umask >= 0) wbuf_put_u32(&b, (uint32_t)umask);
    return hm_call_attr(m, MSG_MKDIR, &b, a);
}

START_TEST(wire_umask_and_bad_acls)
{
    need();
    if (E.local) return; /* no meta service to speak to */
    char m[600], l[600], p[800];
    dirs("wire", m, sizeof(m), l, sizeof(l));
    struct stat st;
    ck_assert_int_eq(stat(m, &st), 0);
    uint64_t dir = st.st_ino; /* the node id is the inode number */
    struct rpc_conn *c = hm_connect(E.c.meta_addr);
    ck_assert_ptr_nonnull(c);
    struct cairn_attr a;
    ck_assert_int_eq(w_mkdir(c, dir, "old", 0777, -1, &a), 0);
    ck_assert_uint_eq(a.mode, S_IFDIR | 0777); /* taken as given */
    ck_assert_int_eq(w_mkdir(c, dir, "new", 0777, 027, &a), 0);
    ck_assert_uint_eq(a.mode, S_IFDIR | 0750); /* the umask, applied by meta */
    /* under a default ACL the umask is ignored */
    snprintf(p, sizeof(p), "%s/acl", m);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    run("setfacl -d -m u:1002:rwx,g::rx,o::- '%s'", p);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(w_mkdir(c, st.st_ino, "sub", 0777, 077, &a), 0);
    ck_assert_uint_eq(a.mode, S_IFDIR | 0770);
    ck_assert(a.flags & ATTR_F_XATTRS);

    /* malformed ACL values: EINVAL, and the service keeps answering */
    static const uint8_t bad[][12] = {
        {2, 0, 0, 0, 0x40, 0, 7, 0, 0, 0, 0, 0}, /* unknown tag */
        {1, 0, 0, 0, 1, 0, 7, 0, 0, 0, 0, 0},    /* version */
        {2, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0},    /* perm bits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int len = 0; len <= 12; len += 3) {
            struct wbuf b;
            wbuf_init(&b);
            wbuf_put_u64(&b, a.ino);
            wbuf_put_str(&b, "system.posix_acl_access", 23);
            wbuf_put_bytes(&b, bad[i], (size_t)len);
            wbuf_put_u32(&b, 0);
            ck_assert_int_eq(hm_call(c, MSG_SETXATTR, &b, NULL), -EINVAL);
        }
    }
    struct cairn_attr again;
    ck_assert_int_eq(w_mkdir(c, dir, "still-up", 0700, 0, &again), 0);
    rpc_conn_free(c);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------------------- */

int main(void)
{
    hfs_stop_on_signal(&E);
    hfs_env_start(&E, "acl", 1, 1, "allow_other");
    if (!E.ready) fprintf(stderr, "test_mount_acl: setup failed: %s\n", E.why);
    if (h_mkdtemp("acl-work", WORK, sizeof(WORK)) != 0) {
        fprintf(stderr, "test_mount_acl: no local work folder\n");
        E.ready = 0;
    }
    snprintf(LOG, sizeof(LOG), "%s/last.log", WORK);
    int tools = h_sh(10, "command -v getfacl setfacl >/dev/null") == 0;
    if (!tools) {
        snprintf(E.why, sizeof(E.why), "getfacl/setfacl not installed (the acl package)");
        E.ready = 0;
    }

    Suite *s = suite_create("mount_acl");
    TCase *tc = tcase_create("acl");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, setfacl_getfacl_round_trip);
    tcase_add_test(tc, acl_allows_and_denies);
    tcase_add_test(tc, default_acl_inherited);
    tcase_add_test(tc, chmod_updates_mask);
    tcase_add_test(tc, minimal_acl_changes_nothing);
    tcase_add_test(tc, wire_umask_and_bad_acls);
    tcase_add_test(tc, noacl_refuses);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("tools");
    tcase_set_timeout(tt, 300);
    tcase_add_test(tt, cp_a_keeps_acls);
    tcase_add_test(tt, rsync_A_keeps_acls);
    tcase_add_test(tt, tar_acls_keeps_acls);
    suite_add_tcase(s, tt);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    if (WORK[0] && !getenv("KEEP")) h_sh(60, "rm -rf '%s'", WORK);
    return nf ? 1 : 0;
}
