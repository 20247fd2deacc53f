/* test_mount_dirs.c - directory listings and open directories on real mounts of a real
 * cluster: a 15,000-entry directory listed with readdir while every entry read is renamed
 * (to names that sort anywhere) shows each entry exactly once, also across telldir/seekdir
 * and across a second opendir resumed with seekdir; a listing while other entries are removed
 * and created (through the other mount) shows every entry that existed throughout exactly
 * once, and so does every name while names are exchanged (RENAME_EXCHANGE); an open
 * directory replaced by rename or removed by rmdir (through the same mount or the other one,
 * with the kernel's caches dropped) keeps answering fstat with nlink 0 until closed, after
 * which its inode is gone; and opendir writes no Raft record. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h> /* renameat2 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness_fs.h"

#define N_BIG 15000
#define N_STAY 2000
#define N_GONE 2000

static struct hfs_env E;
static char T[600], T1[600]; /* the test's folder through mount 0 and through mount 1 */

static void need(void)
{
    ck_assert_msg(E.ready, "no cluster/mount: %s", E.why);
}

/* A fresh folder NAME under T; its paths through mount 0 and mount 1. */
static void fresh(const char *name, char *p0, size_t l0, char *p1, size_t l1)
{
    snprintf(p0, l0, "%s/%s", T, name);
    snprintf(p1, l1, "%s/%s", T1, name);
    ck_assert_int_eq(h_sh(120, "rm -rf '%s'", p0), 0);
    HFS_OK(mkdir(p0, 0755));
}

static void touch(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644);
    ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
    close(fd);
}

/* A name that sorts anywhere among the others: a scrambled number first. */
static void any_name(char *buf, size_t len, uint64_t i, uint64_t round)
{
    snprintf(buf, len, "%08" PRIx64 "-%" PRIu64 "-%" PRIu64,
             hfs_mix64(i * 7919 + round) & 0xffffffffu, i, round);
}

/* ---- every inode seen once ------------------------------------------------------------- */

struct seen {
    uint64_t *ino;
    int n, cap;
};

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void seen_add(struct seen *s, uint64_t ino)
{
    ck_assert_msg(s->n < s->cap, "more entries than ever existed (%d)", s->n);
    s->ino[s->n++] = ino;
}

/* No inode twice; returns the number of distinct inodes. */
static int seen_check_once(struct seen *s)
{
    qsort(s->ino, (size_t)s->n, sizeof(uint64_t), u64_cmp);
    for (int i = 1; i < s->n; i++)
        ck_assert_msg(s->ino[i] != s->ino[i - 1], "inode %" PRIu64 " listed twice", s->ino[i]);
    return s->n;
}

static int is_dot(const char *n)
{
    return !strcmp(n, ".") || !strcmp(n, "..");
}

/* Create N_BIG files, list them with readdir renaming each entry read, with a telldir/seekdir
 * every 1000 entries and, half way, a new opendir resumed at the first one's position. */
START_TEST(rename_every_entry_read)
{
    need();
    char d[700], d1[700], n[64], from[1000], to[1000];
    fresh("big", d, sizeof(d), d1, sizeof(d1));
    uint64_t t0 = hfs_now_ms();
    for (int i = 0; i < N_BIG; i++) {
        any_name(n, sizeof(n), (uint64_t)i, 0);
        touch(d, n);
    }
    fprintf(stderr, "rename_every_entry_read: %d files made in %" PRIu64 " ms\n", N_BIG,
            hfs_now_ms() - t0);
    struct seen s = {.cap = N_BIG * 2};
    s.ino = calloc((size_t)s.cap, sizeof(uint64_t));
    ck_assert_ptr_nonnull(s.ino);
    DIR *dp = opendir(d);
    ck_assert_ptr_nonnull(dp);
    int reopened = 0, seeks = 0;
    uint64_t round = 1;
    t0 = hfs_now_ms();
    for (int guard = 0; guard < N_BIG * 3; guard++) {
        errno = 0;
        struct dirent *e = readdir(dp);
        if (!e) {
            ck_assert_msg(errno == 0, "readdir: %s", strerror(errno));
            break;
        }
        if (is_dot(e->d_name)) continue;
        seen_add(&s, e->d_ino);
        snprintf(from, sizeof(from), "%s/%.255s", d, e->d_name);
        any_name(n, sizeof(n), e->d_ino, round++);
        snprintf(to, sizeof(to), "%s/%s", d, n);
        HFS_OK(rename(from, to));
        if (s.n % 1000 == 0) { /* the position read back and set again: the same place */
            long pos = telldir(dp);
            ck_assert_int_ne(pos, -1);
            seekdir(dp, pos);
            seeks++;
        }
        if (s.n == N_BIG / 2 + 17) { /* another open of the directory resumes the cookie */
            long pos = telldir(dp);
            ck_assert_int_ne(pos, -1);
            closedir(dp);
            dp = opendir(d);
            ck_assert_ptr_nonnull(dp);
            seekdir(dp, pos);
            reopened = 1;
        }
    }
    closedir(dp);
    fprintf(stderr, "rename_every_entry_read: listed and renamed in %" PRIu64 " ms\n",
            hfs_now_ms() - t0);
    ck_assert_int_eq(reopened, 1);
    ck_assert_int_ge(seeks, 10);
    ck_assert_int_eq(seen_check_once(&s), N_BIG);
    /* and a listing now still has them all, under their new names */
    dp = opendir(d);
    ck_assert_ptr_nonnull(dp);
    int total = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && total <= N_BIG)
        if (!is_dot(e->d_name)) total++;
    closedir(dp);
    ck_assert_int_eq(total, N_BIG);
    free(s.ino);
    ck_assert_int_eq(h_sh(300, "rm -rf '%s'", d), 0);
}
END_TEST

/* Listing through mount 0 while mount 1 removes other entries and creates new ones (and
 * renames the entries kept, within the folder, to names sorting anywhere). */
START_TEST(listing_while_entries_come_and_go)
{
    need();
    char d[700], d1[700], n[64], from[1000], to[1000];
    fresh("churn", d, sizeof(d), d1, sizeof(d1));
    for (int i = 0; i < N_STAY; i++) {
        snprintf(n, sizeof(n), "stay-%05d", i);
        touch(d, n);
    }
    for (int i = 0; i < N_GONE; i++) {
        snprintf(n, sizeof(n), "gone-%05d", i);
        touch(d, n);
    }
    /* the kept entries' inodes, to recognise them under any name */
    struct seen stay = {.cap = N_STAY};
    stay.ino = calloc(N_STAY, sizeof(uint64_t));
    ck_assert_ptr_nonnull(stay.ino);
    char stay_name[N_STAY][40];
    for (int i = 0; i < N_STAY; i++) {
        struct stat sb;
        snprintf(stay_name[i], sizeof(stay_name[i]), "stay-%05d", i);
        snprintf(from, sizeof(from), "%s/%.39s", d, stay_name[i]);
        HFS_OK(stat(from, &sb));
        seen_add(&stay, sb.st_ino);
    }
    qsort(stay.ino, N_STAY, sizeof(uint64_t), u64_cmp);
    struct seen s = {.cap = N_STAY + N_GONE * 3};
    s.ino = calloc((size_t)s.cap, sizeof(uint64_t));
    ck_assert_ptr_nonnull(s.ino);
    DIR *dp = opendir(d);
    ck_assert_ptr_nonnull(dp);
    struct hfs_rng r;
    hfs_rng_seed(&r, 12);
    int step = 0;
    for (int guard = 0; guard < (N_STAY + N_GONE) * 3; guard++) {
        errno = 0;
        struct dirent *e = readdir(dp);
        if (!e) {
            ck_assert_msg(errno == 0, "readdir: %s", strerror(errno));
            break;
        }
        if (is_dot(e->d_name)) continue;
        seen_add(&s, e->d_ino);
        /* meanwhile, through the other mount: one entry removed, one created, one kept
         * entry renamed (each at most once per step, all bounded) */
        if (step < N_GONE) {
            snprintf(from, sizeof(from), "%s/gone-%05d", d1, (int)((step * 7919) % N_GONE));
            HFS_OK(unlink(from));
            snprintf(n, sizeof(n), "new-%05d", step);
            touch(d1, n);
            int k = (int)hfs_rng_below(&r, N_STAY);
            snprintf(from, sizeof(from), "%s/%.39s", d1, stay_name[k]);
            any_name(n, sizeof(n), (uint64_t)k, (uint64_t)step + 1);
            snprintf(to, sizeof(to), "%s/%s", d1, n);
            HFS_OK(rename(from, to));
            snprintf(stay_name[k], sizeof(stay_name[k]), "%.39s", n);
        }
        step++;
    }
    closedir(dp);
    ck_assert_int_ge(step, N_GONE);
    seen_check_once(&s);
    /* every kept entry was seen (exactly once: no inode twice above) */
    int found = 0;
    for (int i = 0; i < s.n; i++)
        if (bsearch(&s.ino[i], stay.ino, N_STAY, sizeof(uint64_t), u64_cmp)) found++;
    ck_assert_int_eq(found, N_STAY);
    free(s.ino);
    free(stay.ino);
    ck_assert_int_eq(h_sh(300, "rm -rf '%s'", d), 0);
}
END_TEST

/* RENAME_EXCHANGE while listing: both names stay where they are (only the files behind them
 * swap), so every name is listed exactly once. */
#define N_X 400
START_TEST(exchange_while_listing)
{
    need();
    char d[700], d1[700], n[64], a[800], b[800];
    fresh("exchange", d, sizeof(d), d1, sizeof(d1));
    for (int i = 0; i < N_X; i++) {
        snprintf(n, sizeof(n), "x%04d", i);
        touch(d, n);
    }
    static int seen[N_X];
    memset(seen, 0, sizeof(seen));
    DIR *dp = opendir(d);
    ck_assert_ptr_nonnull(dp);
    int got = 0;
    for (int guard = 0; guard < N_X * 3; guard++) {
        errno = 0;
        struct dirent *e = readdir(dp);
        if (!e) {
            ck_assert_msg(errno == 0, "readdir: %s", strerror(errno));
            break;
        }
        if (is_dot(e->d_name)) continue;
        int k = -1;
        ck_assert_msg(sscanf(e->d_name, "x%d", &k) == 1 && k >= 0 && k < N_X, "name %s", e->d_name);
        seen[k]++;
        got++;
        /* exchange the name just read with one further on (through the other mount) */
        int j = N_X - 1 - k;
        snprintf(a, sizeof(a), "%s/x%04d", d1, k);
        snprintf(b, sizeof(b), "%s/x%04d", d1, j);
        if (j != k) HFS_OK(renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE));
    }
    closedir(dp);
    for (int i = 0; i < N_X; i++)
        ck_assert_msg(seen[i] == 1, "x%04d listed %d times", i, seen[i]);
    ck_assert_int_eq(got, N_X);
}
END_TEST

/* ---- open directories ------------------------------------------------------------------ */

/* The meta service's inode count (cairn status). */
static uint64_t inodes_now(void)
{
    char out[1000];
    int rc = h_cairn_py(&E.c, "print(d['inodes'])", out, sizeof(out), "status --json --meta %s",
                        E.c.meta_addr);
    ck_assert_msg(rc == 0, "cairn status: %s", out);
    return strtoull(out, NULL, 10);
}

/* Wait (5 s at most: the kernel sends RELEASEDIR after close returned) for the count. */
static void wait_inodes(uint64_t want)
{
    uint64_t got = 0;
    for (int i = 0; i < 50; i++) {
        got = inodes_now();
        if (got == want) return;
        hfs_sleep_ms(100);
    }
    ck_assert_msg(0, "inodes: %" PRIu64 ", want %" PRIu64, got, want);
}

/* Entries other than . and .. that fd's directory still lists (ENOENT: none, as Linux
 * answers for a removed directory). */
static int entries_left(int fd)
{
    char buf[4096];
    int n = 0;
    for (int i = 0; i < 100; i++) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (got < 0) {
            ck_assert_msg(errno == ENOENT, "getdents: %s", strerror(errno));
            return n;
        }
        if (got == 0) return n;
        for (long off = 0; off < got;) {
            struct dirent64 *e = (struct dirent64 *)(buf + off);
            if (!is_dot(e->d_name)) n++;
            off += e->d_reclen;
        }
    }
    return n;
}

/* The directory open as fd was replaced or removed: fstat answers nlink 0, it lists nothing
 * but . and .., and nothing can be made in it. */
static void check_removed_open(int fd, uint64_t ino, const char *what)
{
    struct stat sb;
    int rc = fstat(fd, &sb);
    ck_assert_msg(rc == 0, "%s: fstat: %s", what, strerror(errno));
    ck_assert_msg(S_ISDIR(sb.st_mode), "%s: mode %o", what, sb.st_mode);
    ck_assert_uint_eq(sb.st_ino, ino);
    ck_assert_msg(sb.st_nlink == 0, "%s: nlink %lu", what, (unsigned long)sb.st_nlink);
    ck_assert_int_eq(entries_left(fd), 0);
    errno = 0;
    ck_assert_msg(mkdirat(fd, "x", 0755) == -1 && errno == ENOENT, "%s: mkdirat: %s", what,
                  strerror(errno));
}

/* Open `victim` through mount `open_k`, replace it (rename of an empty folder over it, or
 * rmdir) through mount `op_k`, optionally drop the kernel's caches, check, close. */
static void open_dir_case(int open_k, int op_k, int by_rename, int drop)
{
    char d[700], d1[700], v[800], other[800], what[200];
    snprintf(what, sizeof(what), "%s through mount %d, open on mount %d%s",
             by_rename ? "rename over" : "rmdir", op_k, open_k, drop ? ", caches dropped" : "");
    static int ncase;
    char name[32]; /* a folder new to both kernels' caches */
    snprintf(name, sizeof(name), "open%d-%d%d%d%d", ncase++, open_k, op_k, by_rename, drop);
    fresh(name, d, sizeof(d), d1, sizeof(d1));
    const char *base_open = open_k ? d1 : d, *base_op = op_k ? d1 : d;
    snprintf(v, sizeof(v), "%s/victim", d);
    HFS_OK(mkdir(v, 0755));
    snprintf(other, sizeof(other), "%s/other", d);
    HFS_OK(mkdir(other, 0755));
    uint64_t before = inodes_now();
    snprintf(v, sizeof(v), "%s/victim", base_open);
    int fd = open(v, O_RDONLY | O_DIRECTORY);
    ck_assert_msg(fd >= 0, "open %s: %s", v, strerror(errno));
    struct stat sb;
    HFS_OK(fstat(fd, &sb));
    uint64_t ino = sb.st_ino;
    /* an open is told to meta a few ms after it is made (as a read-only open of a file,
     * meta_async.c): another mount's change protects it from then on */
    if (open_k != op_k) hfs_sleep_ms(100);
    snprintf(v, sizeof(v), "%s/victim", base_op);
    snprintf(other, sizeof(other), "%s/other", base_op);
    if (by_rename)
        HFS_OK(rename(other, v));
    else
        HFS_OK(rmdir(v));
    if (drop) ck_assert_int_eq(h_drop_caches(), 0);
    /* through the other mount the kernel knows nothing: its attributes expire (1 s) first */
    if (open_k != op_k || drop) hfs_sleep_ms(1300);
    check_removed_open(fd, ino, what);
    ck_assert_uint_eq(inodes_now(), before); /* still there, orphaned */
    if (by_rename) {                         /* the name now is the other folder */
        HFS_OK(stat(v, &sb));
        ck_assert_uint_ne(sb.st_ino, ino);
    }
    HFS_OK(close(fd));
    wait_inodes(before - 1); /* the victim is gone at its close */
    ck_assert_int_eq(h_sh(60, "rm -rf '%s'", d), 0);
}

START_TEST(open_dir_replaced_by_rename)
{
    need();
    open_dir_case(0, 0, 1, 0);
    open_dir_case(0, 1, 1, 0);
    open_dir_case(0, 1, 1, 1);
}
END_TEST

START_TEST(open_dir_removed_by_rmdir)
{
    need();
    open_dir_case(0, 0, 0, 0);
    open_dir_case(0, 1, 0, 0);
    open_dir_case(0, 0, 0, 1);
}
END_TEST

/* The meta leader's last Raft log index. */
static uint64_t log_index_now(void)
{
    char out[1000];
    int rc = h_cairn_py(&E.c, "print(d['last_index'])", out, sizeof(out),
                        "meta status --json --meta %s", E.c.meta_addr);
    ck_assert_msg(rc == 0, "cairn meta status: %s", out);
    return strtoull(out, NULL, 10);
}

/* Opening directories writes no record (the opens are counted in the leader's memory); a
 * directory opened and closed many times leaves nothing behind, and removed once closed it
 * goes at once. */
START_TEST(opendir_leaves_nothing)
{
    need();
    char d[700], d1[700], v[800];
    fresh("many", d, sizeof(d), d1, sizeof(d1));
    snprintf(v, sizeof(v), "%s/v", d);
    HFS_OK(mkdir(v, 0755));
    uint64_t before = inodes_now(), idx0 = log_index_now();
    for (int i = 0; i < 200; i++) {
        DIR *dp = opendir(i % 2 ? d1 : d);
        ck_assert_ptr_nonnull(dp);
        closedir(dp);
    }
    uint64_t idx1 = log_index_now();
    /* a few records may come from elsewhere (session keepalives), not one per open */
    ck_assert_msg(idx1 - idx0 < 40, "200 opendirs wrote %" PRIu64 " log entries", idx1 - idx0);
    HFS_OK(rmdir(v));
    wait_inodes(before - 1);
}
END_TEST

int main(void)
{
    hfs_stop_on_signal(&E);
    hfs_env_start(&E, "dirs", 1, 2, NULL);
    if (E.ready && E.local) {
        E.ready = 0;
        snprintf(E.why, sizeof(E.why), "needs a real cluster");
    }
    if (E.ready) {
        int rc = hfs_subdir(&E, 0, "dirs", T, sizeof(T));
        snprintf(T1, sizeof(T1), "%s/dirs", E.root[1]);
        if (rc) {
            E.ready = 0;
            snprintf(E.why, sizeof(E.why), "mkdir under the mount: %s", strerror(-rc));
        }
    }
    if (!E.ready) fprintf(stderr, "test_mount_dirs: setup failed: %s\n", E.why);
    Suite *s = suite_create("mount_dirs");
    TCase *tc = tcase_create("dirs");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, open_dir_replaced_by_rename);
    tcase_add_test(tc, open_dir_removed_by_rmdir);
    tcase_add_test(tc, opendir_leaves_nothing);
    tcase_add_test(tc, listing_while_entries_come_and_go);
    tcase_add_test(tc, exchange_while_listing);
    tcase_add_test(tc, rename_every_entry_read);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    hfs_env_stop(&E);
    return nf ? 1 : 0;
}
