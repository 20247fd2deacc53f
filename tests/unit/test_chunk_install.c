/* test_chunk_install.c - the chunk store's replication side (chunk/cstore.c, cstore_tmp.c):
 * CHK_SETVER's version move and its refusals, exact-version reads, replicas built in a
 * temporary file (invisible to lookups and cstore_foreach, removed when the store is opened)
 * and installed atomically over any other version, and the version events (on_gain) that every
 * creation and version change raises. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cksum.h"
#include "cstore.h"
#include "unit_main.h"

#define B CKSUM_BLOCK
static char dir[256];
static struct cstore cs;
static uint8_t *rbuf;
static uint64_t rcks[64];

/* Version events seen through cs.on_gain. */
static struct {
    uint64_t id;
    uint32_t ver;
} ev[64];
static int nev;

static void on_gain(void *arg, uint64_t id, uint32_t ver)
{
    (void)arg;
    if (nev < 64) {
        ev[nev].id = id;
        ev[nev++].ver = ver;
    }
}

static void open_store(void)
{
    char *d[] = {dir};
    ck_assert_int_eq(cstore_open(&cs, d, 1, 4u << 20), 0);
    cs.on_gain = on_gain;
    nev = 0;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cairn-cinst-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    open_store();
    rbuf = malloc((1u << 20) + 2 * B);
}

static void teardown(void)
{
    cstore_close(&cs);
    free(rbuf);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
    }
}

static int rd(uint64_t id, uint32_t ver, int exact, uint32_t off, uint32_t len, uint8_t *out,
              uint32_t *got)
{
    uint32_t doff, clen, nb, dl, bad;
    int rc = cstore_read(&cs, id, ver, off, len, rbuf, &doff, &clen, &nb, rcks, &dl, &bad, exact);
    if (rc) return rc;
    uint32_t end = off + len < clen ? off + len : clen;
    *got = end > off ? end - off : 0;
    if (*got) memcpy(out, rbuf + (off - doff), *got);
    return 0;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 13 + seed + (i >> 10));
}

static int count_files(const char *sub)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_setver_moves_and_refuses)
{
    uint32_t len, held, ver, got;
    uint8_t b[8];
    ck_assert_int_eq(cstore_write(&cs, 0x21, 3, 0, 0, "abc", 3, 0, &len), 0);
    ck_assert_int_eq(cstore_setver(&cs, 0x21, 5, &held), 0);
    ck_assert_uint_eq(held, 5);
    ck_assert_int_eq(cstore_info(&cs, 0x21, &ver, &len), 0);
    ck_assert_uint_eq(ver, 5);
    ck_assert_int_eq(rd(0x21, 5, 1, 0, 3, b, &got), 0);
    ck_assert_mem_eq(b, "abc", 3);
    /* equal: nothing to do; newer held: stale; absent: ENOENT */
    ck_assert_int_eq(cstore_setver(&cs, 0x21, 5, &held), 0);
    ck_assert_uint_eq(held, 5);
    ck_assert_int_eq(cstore_setver(&cs, 0x21, 4, &held), -ESTALE);
    ck_assert_uint_eq(held, 5);
    ck_assert_int_eq(cstore_setver(&cs, 0x22, 4, &held), -ENOENT);
    /* a writer with the old lease is refused from now on */
    ck_assert_int_eq(cstore_write(&cs, 0x21, 4, 3, 0, "x", 1, 0, &len), -ESTALE);
    /* a bad copy is never moved */
    ck_assert_int_eq(cstore_mark_bad(&cs, 0x21, 5), 0);
    ck_assert_int_eq(cstore_setver(&cs, 0x21, 6, &held), -EUCLEAN);
    ck_assert_int_eq(cstore_info(&cs, 0x21, &ver, &len), 0);
    ck_assert_uint_eq(ver, 5);
}
END_TEST

START_TEST(test_exact_read)
{
    uint32_t len, got;
    uint8_t b[8];
    ck_assert_int_eq(cstore_write(&cs, 0x31, 2, 0, 0, "data", 4, 0, &len), 0);
    /* tolerant: an older held version serves a newer ask; exact does not */
    ck_assert_int_eq(rd(0x31, 3, 0, 0, 4, b, &got), 0);
    ck_assert_int_eq(rd(0x31, 3, 1, 0, 4, b, &got), -ESTALE);
    ck_assert_int_eq(rd(0x31, 2, 1, 0, 4, b, &got), 0);
    ck_assert_mem_eq(b, "data", 4);
    ck_assert_int_eq(rd(0x31, 1, 1, 0, 4, b, &got), -ESTALE);
    ck_assert_int_eq(rd(0x31, 1, 0, 0, 4, b, &got), -ESTALE);
    ck_assert_int_eq(rd(0x32, 1, 1, 0, 4, b, &got), -ENOENT);
}
END_TEST

/* Copy n bytes into a temporary file for chunk id at ver, piece by piece (1 MiB). */
static int copy_in(uint64_t id, uint32_t ver, const uint8_t *a, uint32_t n, struct cstore_tmp *t)
{
    int rc = cstore_tmp_open(&cs, id, ver, n, t);
    if (rc) return rc;
    for (uint32_t off = 0; off < n; off += 1u << 20) {
        uint32_t dl = n - off < (1u << 20) ? n - off : (1u << 20);
        uint64_t c[20];
        cksum_blocks(a + off, dl, c);
        rc = cstore_tmp_write(&cs, t, off, a + off, dl, c);
        if (rc) return rc;
    }
    return 0;
}

START_TEST(test_tmp_install_replaces_other_versions)
{
    uint32_t n = (1u << 20) + 3 * B + 123, len, ver, got;
    uint8_t *a = calloc(1, n), *b = malloc(n);
    fill(a, 300000, 1); /* then a hole of zeros, then data again */
    fill(a + (1u << 20), n - (1u << 20), 2);
    /* this store holds a stale, bad copy at v2 */
    ck_assert_int_eq(cstore_write(&cs, 0x41, 2, 0, 0, "old", 3, 0, &len), 0);
    ck_assert_int_eq(cstore_mark_bad(&cs, 0x41, 2), 0);
    nev = 0;
    struct cstore_tmp t;
    ck_assert_int_eq(copy_in(0x41, 7, a, n, &t), 0);
    /* before install: not visible, the old copy still is */
    ck_assert_int_eq(count_files("tmp"), 1);
    ck_assert_int_eq(cstore_info(&cs, 0x41, &ver, &len), 0);
    ck_assert_uint_eq(ver, 2);
    ck_assert_int_eq(nev, 0);
    ck_assert_int_eq(cstore_tmp_install(&cs, &t), 0);
    ck_assert_int_eq(count_files("tmp"), 0);
    ck_assert_int_eq(cstore_info(&cs, 0x41, &ver, &len), 0);
    ck_assert_uint_eq(ver, 7);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(count_files("41"), 1); /* v2 is gone */
    ck_assert_int_eq(rd(0x41, 7, 1, 0, 1u << 20, b, &got), 0);
    ck_assert_uint_eq(got, 1u << 20);
    ck_assert_mem_eq(a, b, 1u << 20);
    ck_assert_int_eq(rd(0x41, 7, 1, 1u << 20, 1u << 20, b, &got), 0);
    ck_assert_uint_eq(got, n - (1u << 20));
    ck_assert_mem_eq(a + (1u << 20), b, got);
    ck_assert_int_eq(nev, 1);
    ck_assert_uint_eq(ev[0].id, 0x41);
    ck_assert_uint_eq(ev[0].ver, 7);
    /* the installed copy is an ordinary chunk: writable under the next lease */
    ck_assert_int_eq(cstore_write(&cs, 0x41, 8, 7, 5, "Q", 1, 0, &len), 0);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_tmp_install_refusals)
{
    uint8_t a[3 * B];
    fill(a, sizeof(a), 4);
    uint32_t len, ver;
    struct cstore_tmp t;
    /* a newer version held: install refused, nothing changed */
    ck_assert_int_eq(cstore_write(&cs, 0x51, 9, 0, 0, "new", 3, 0, &len), 0);
    ck_assert_int_eq(copy_in(0x51, 8, a, sizeof(a), &t), 0);
    ck_assert_int_eq(cstore_tmp_install(&cs, &t), -ESTALE);
    ck_assert_int_eq(cstore_info(&cs, 0x51, &ver, &len), 0);
    ck_assert_uint_eq(ver, 9);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(count_files("tmp"), 0);
    /* a missing piece: never installed */
    ck_assert_int_eq(cstore_tmp_open(&cs, 0x52, 1, sizeof(a), &t), 0);
    uint64_t c[3];
    cksum_blocks(a, B, c);
    ck_assert_int_eq(cstore_tmp_write(&cs, &t, 0, a, B, c), 0);
    ck_assert_int_eq(cstore_tmp_install(&cs, &t), -EPROTO);
    ck_assert_int_eq(cstore_info(&cs, 0x52, &ver, &len), -ENOENT);
    /* misaligned or out of range pieces, too long a chunk */
    ck_assert_int_eq(cstore_tmp_open(&cs, 0x53, 1, sizeof(a), &t), 0);
    ck_assert_int_eq(cstore_tmp_write(&cs, &t, 100, a, B, c), -EINVAL);
    ck_assert_int_eq(cstore_tmp_write(&cs, &t, 2 * B, a, 2 * B, c), -EINVAL);
    ck_assert_int_eq(cstore_tmp_write(&cs, &t, 0, a, 100, c), -EINVAL);
    cstore_tmp_abort(&cs, &t);
    ck_assert_int_eq(cstore_tmp_open(&cs, 0x54, 1, (4u << 20) + 1, &t), -EINVAL);
    ck_assert_int_eq(count_files("tmp"), 0);
}
END_TEST

static int count_cb(void *arg, uint64_t id, uint32_t ver)
{
    (void)id;
    (void)ver;
    (*(int *)arg)++;
    return 0;
}

START_TEST(test_tmp_ignored_and_cleaned_at_open)
{
    uint8_t a[B];
    fill(a, sizeof(a), 6);
    uint32_t len, ver;
    ck_assert_int_eq(cstore_write(&cs, 0x61, 1, 0, 0, "keep", 4, 0, &len), 0);
    struct cstore_tmp t;
    ck_assert_int_eq(copy_in(0x62, 3, a, sizeof(a), &t), 0);
    /* a crash now leaves the temporary file: never listed, never found */
    int n = 0;
    ck_assert_int_eq(cstore_foreach(&cs, count_cb, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(cstore_info(&cs, 0x62, &ver, &len), -ENOENT);
    ck_assert_int_eq(count_files("tmp"), 1);
    close(t.fd);
    free(t.cks);
    free(t.have);
    cstore_close(&cs);
    open_store();
    ck_assert_int_eq(count_files("tmp"), 0);
    n = 0;
    ck_assert_int_eq(cstore_foreach(&cs, count_cb, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(cstore_info(&cs, 0x61, &ver, &len), 0);
}
END_TEST

START_TEST(test_version_events)
{
    uint32_t len, held;
    ck_assert_int_eq(cstore_write(&cs, 0x71, 1, 0, 0, "a", 1, 0, &len), 0); /* created */
    ck_assert_int_eq(cstore_write(&cs, 0x71, 1, 0, 1, "b", 1, 0, &len), 0); /* same lease */
    ck_assert_int_eq(cstore_write(&cs, 0x71, 2, 1, 2, "c", 1, 0, &len), 0); /* new lease */
    ck_assert_int_eq(cstore_truncate(&cs, 0x71, 3, 2, 1), 0);
    ck_assert_int_eq(cstore_truncate(&cs, 0x71, 3, 2, 2), 0);
    ck_assert_int_eq(cstore_setver(&cs, 0x71, 5, &held), 0);
    ck_assert_int_eq(cstore_setver(&cs, 0x71, 5, &held), 0);
    ck_assert_int_eq(cstore_write(&cs, 0x71, 4, 3, 0, "x", 1, 0, &len), -ESTALE);
    uint32_t want[] = {1, 2, 3, 5};
    ck_assert_int_eq(nev, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(ev[i].id, 0x71);
        ck_assert_uint_eq(ev[i].ver, want[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk_install");
    TCase *t = tcase_create("install");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_setver_moves_and_refuses);
    tcase_add_test(t, test_exact_read);
    tcase_add_test(t, test_tmp_install_replaces_other_versions);
    tcase_add_test(t, test_tmp_install_refusals);
    tcase_add_test(t, test_tmp_ignored_and_cleaned_at_open);
    tcase_add_test(t, test_version_events);
    suite_add_tcase(s, t);
    return unit_run(s);
}
