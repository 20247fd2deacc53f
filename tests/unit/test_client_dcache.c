/* test_client_dcache.c - the client's local disk cache (client-fuse/dcache.c) on real files:
 * segments read back whole and in pieces, misses for another version, tag or key, a flipped
 * byte is caught once and the entry is gone, the limit holds on disk with the least recently
 * used entries evicted, a new dc_open finds the entries again (from the index file a clean close
 * left, or by a scan when there is none or it is damaged) and the scan removes what does not parse,
 * dc_drop_old, a full file system (a 2 MiB tmpfs) costs only the puts that do not fit, and
 * readers, puts and drops from several threads never see wrong bytes.
 * Every test works in its own folder under one mkdtemp folder that the parent removes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dcache.h"
#include "proto.h"
#include "unit_main.h"

#define SEG CAIRN_IO_MAX
#define MB (1u << 20)

static char root[64];
static uint8_t seg_a[SEG], seg_b[SEG];
static _Alignas(4096) uint8_t out[SEG + 4096]; /* page aligned: whole entries go O_DIRECT */

static uint64_t charge(uint32_t len)
{
    return (DC_DATA_OFF + (uint64_t)len + 4095) / 4096 * 4096;
}

static void fill(uint8_t *p, uint32_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (uint32_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static const char *case_dir(const char *name)
{
    static char d[128];
    snprintf(d, sizeof(d), "%s/%s", root, name);
    return d;
}

static struct dcache *open_ok(const char *dir, uint64_t limit)
{
    char why[256] = "";
    struct dcache *c = dc_open(dir, limit, why, sizeof(why));
    ck_assert_msg(c != NULL, "dc_open %s: %s", dir, why);
    return c;
}

/* A cache of 64 MiB in a new folder for the test `name`; seg_a filled from seed. */
static struct dcache *open_case(const char *name, uint64_t seed, const char **dir)
{
    *dir = case_dir(name);
    fill(seg_a, SEG, seed);
    return open_ok(*dir, 64ull * MB);
}

static struct dc_stats stats(struct dcache *c)
{
    struct dc_stats s;
    dc_get_stats(c, &s);
    return s;
}

/* What the fan-out subfolders of a cache hold: files (anything but folders) whose name
 * contains `contains` (NULL: all), their st_blocks in bytes, the path of the last one. */
struct walk {
    int n;
    uint64_t bytes, size;
    char path[512];
};

static struct walk walk(const char *dir, const char *contains)
{
    struct walk w = {0};
    for (int sub = 0; sub < DC_FANOUT; sub++) {
        char d[200];
        snprintf(d, sizeof(d), "%s/%02x", dir, sub);
        DIR *dp = opendir(d);
        if (!dp) continue;
        struct dirent *de;
        while ((de = readdir(dp))) {
            char p[512];
            struct stat st;
            snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
            if (lstat(p, &st) < 0 || S_ISDIR(st.st_mode)) continue;
            if (contains && !strstr(de->d_name, contains)) continue;
            w.n++;
            w.bytes += (uint64_t)st.st_blocks * 512;
            w.size += (uint64_t)st.st_size;
            snprintf(w.path, sizeof(w.path), "%s", p);
        }
        closedir(dp);
    }
    return w;
}

/* The cache holds nothing: no entry in its index, no bytes charged, no file on disk. */
static void assert_empty(struct dcache *c, const char *dir)
{
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 0);
    ck_assert_uint_eq(s.bytes_used, 0);
    ck_assert_int_eq(walk(dir, NULL).n, 0);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* dc_read of [off, off+len) must give exactly those bytes of want. */
static void read_eq(struct dcache *c, uint64_t id, uint32_t ver, uint32_t seg_off, uint64_t tag,
                    uint32_t off, uint32_t len, const uint8_t *want)
{
    memset(out, 0xee, len);
    ck_assert_int_eq(dc_read(c, id, ver, seg_off, tag, off, len, out), (int)len);
    ck_assert_msg(memcmp(out, want + off, len) == 0, "bytes differ at [%u, +%u)", off, len);
}

START_TEST(put_then_read_back_whole_and_in_ranges)
{
    const char *dir;
    struct dcache *c = open_case("readback", 1, &dir);
    const uint32_t short_len = 300000; /* a chunk's last segment: 4 blocks and a partial one */
    fill(seg_b, short_len, 2);
    dc_put(c, 7, 3, 0, 99, seg_a, SEG);
    dc_put(c, 7, 3, 2 * SEG, 99, seg_b, short_len);
    dc_flush(c);
    read_eq(c, 7, 3, 0, 99, 0, SEG, seg_a);
    static const uint32_t r[][2] = {
        {1, 100},       {65535, 2},       {3 * 65536 - 10, 2 * 65536 + 20},
        {65536, 65536}, {100000, 700000}, {SEG - 5, 5}};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        read_eq(c, 7, 3, 0, 99, r[i][0], r[i][1], seg_a);
    read_eq(c, 7, 3, 2 * SEG, 99, 0, short_len, seg_b);
    read_eq(c, 7, 3, 2 * SEG, 99, 262100, 37900, seg_b);
    read_eq(c, 7, 3, 2 * SEG, 99, short_len - 10, 10, seg_b);
    ck_assert_int_eq(dc_read(c, 7, 3, 2 * SEG, 99, short_len - 10, 11, out), -ENOENT);
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.hits, 10);
    ck_assert_uint_eq(s.misses, 1);
    ck_assert_uint_eq(s.put, 2);
    ck_assert_uint_eq(s.entries, 2);
    ck_assert_uint_eq(s.bytes_used, charge(SEG) + charge(short_len));
    ck_assert_uint_eq(s.bytes_written, 2 * DC_DATA_OFF + SEG + short_len);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 2);
    ck_assert_uint_eq(w.size, 2 * DC_DATA_OFF + SEG + short_len);
    dc_close(c);
}
END_TEST

START_TEST(other_version_tag_or_key_is_a_miss)
{
    const char *dir;
    struct dcache *c = open_case("miss", 3, &dir);
    dc_put(c, 7, 3, 0, 99, seg_a, 40960);
    dc_flush(c);
    ck_assert_int_eq(dc_has(c, 7, 3, 0, 99), 1);
    ck_assert_int_eq(dc_has(c, 7, 3, 0, 98), 0);
    ck_assert_int_eq(dc_has(c, 7, 4, 0, 99), 0);
    ck_assert_int_eq(dc_has(c, 8, 3, 0, 99), 0);
    ck_assert_int_eq(dc_has(c, 7, 3, SEG, 99), 0);
    ck_assert_int_eq(dc_read(c, 7, 4, 0, 99, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_read(c, 8, 3, 0, 99, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_read(c, 7, 3, SEG, 99, 0, 10, out), -ENOENT);
    read_eq(c, 7, 3, 0, 99, 0, 10, seg_a);
    /* another tag: the file changed since; the entry is dropped for every tag */
    ck_assert_int_eq(dc_read(c, 7, 3, 0, 98, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_read(c, 7, 3, 0, 99, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_has(c, 7, 3, 0, 99), 0);
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.stale, 1);
    ck_assert_uint_eq(s.misses, 5);
    ck_assert_uint_eq(s.hits, 1);
    assert_empty(c, dir);
    dc_close(c);
}
END_TEST

START_TEST(put_of_an_existing_key_replaces_it)
{
    const char *dir;
    struct dcache *c = open_case("replace", 4, &dir);
    fill(seg_b, SEG, 5);
    dc_put(c, 9, 1, SEG, 1, seg_a, 200000);
    dc_flush(c);
    dc_put(c, 9, 1, SEG, 2, seg_b, 300000);
    dc_flush(c);
    read_eq(c, 9, 1, SEG, 2, 0, 300000, seg_b);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 1);
    ck_assert_uint_eq(w.size, DC_DATA_OFF + 300000);
    ck_assert_uint_eq(stats(c).bytes_used, charge(300000));
    ck_assert_int_eq(dc_read(c, 9, 1, SEG, 1, 0, 10, out), -ENOENT);
    dc_close(c);
}
END_TEST

START_TEST(flipped_byte_is_caught_once_then_the_entry_is_gone)
{
    const char *dir;
    struct dcache *c = open_case("corrupt", 6, &dir);
    dc_put(c, 1, 1, 0, 5, seg_a, SEG);
    dc_flush(c);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 1);
    flip_byte(w.path, DC_DATA_OFF + 70000); /* in block 1 */
    read_eq(c, 1, 1, 0, 5, 0, 1000, seg_a); /* block 0 alone still verifies */
    ck_assert_int_eq(dc_read(c, 1, 1, 0, 5, 60000, 20000, out), -EUCLEAN);
    ck_assert_int_eq(dc_read(c, 1, 1, 0, 5, 60000, 20000, out), -ENOENT);
    ck_assert_int_eq(dc_read(c, 1, 1, 0, 5, 0, 1000, out), -ENOENT);
    ck_assert_uint_eq(stats(c).corrupt, 1);
    assert_empty(c, dir);
    /* a damaged header is caught the same way */
    dc_put(c, 2, 1, 0, 5, seg_a, 5000);
    dc_flush(c);
    w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 1);
    flip_byte(w.path, 20);
    ck_assert_int_eq(dc_read(c, 2, 1, 0, 5, 0, 10, out), -EUCLEAN);
    ck_assert_int_eq(dc_read(c, 2, 1, 0, 5, 0, 10, out), -ENOENT);
    ck_assert_uint_eq(stats(c).corrupt, 2);
    assert_empty(c, dir);
    dc_close(c);
}
END_TEST

/* Whole entries (the header and data in one read) into a page-aligned buffer (O_DIRECT, the
 * last part page through a page of the cache's own) and into one that is not (through the page
 * cache): the same bytes, and a flipped last byte caught either way. */
START_TEST(whole_entries_verify_in_either_buffer)
{
    const char *dir;
    struct dcache *c = open_case("unaligned", 1, &dir);
    const uint32_t short_len = 300000;
    fill(seg_b, short_len, 2);
    dc_put(c, 7, 3, 0, 99, seg_a, SEG);
    dc_put(c, 7, 3, SEG, 99, seg_b, short_len);
    dc_flush(c);
    uint8_t *u = out + (_i ? 8 : 0);
    ck_assert_int_eq(dc_read(c, 7, 3, 0, 99, 0, SEG - 4096, u), (int)(SEG - 4096));
    ck_assert_mem_eq(u, seg_a, SEG - 4096);
    ck_assert_int_eq(dc_read(c, 7, 3, SEG, 99, 0, short_len, u), (int)short_len);
    ck_assert_mem_eq(u, seg_b, short_len);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 2);
    flip_byte(w.path, DC_DATA_OFF + 299999); /* the last byte of one of the two */
    int bad = 0;
    bad += dc_read(c, 7, 3, 0, 99, 0, SEG, u) == -EUCLEAN;
    bad += dc_read(c, 7, 3, SEG, 99, 0, short_len, u) == -EUCLEAN;
    ck_assert_int_eq(bad, 1);
    ck_assert_uint_eq(stats(c).corrupt, 1);
    dc_close(c);
}
END_TEST

START_TEST(limit_holds_on_disk_and_least_recent_go_first)
{
    const char *dir = case_dir("limit");
    const uint32_t len = 256u << 10;
    const uint64_t limit = 10 * charge(len) + 100;
    struct dcache *c = open_ok(dir, limit);
    fill(seg_a, len, 7);
    for (uint32_t s = 0; s < 10; s++)
        dc_put(c, 3, 1, s * SEG, 1, seg_a, len);
    dc_flush(c);
    ck_assert_uint_eq(stats(c).evicted, 0);
    read_eq(c, 3, 1, 0, 1, 0, 10, seg_a); /* segment 0 is now the most recent */
    for (uint32_t s = 10; s < 15; s++)
        dc_put(c, 3, 1, s * SEG, 1, seg_a, len);
    dc_flush(c);
    ck_assert_int_eq(dc_has(c, 3, 1, 0, 1), 1);
    for (uint32_t s = 1; s <= 5; s++)
        ck_assert_msg(!dc_has(c, 3, 1, s * SEG, 1), "segment %u should be evicted", s);
    for (uint32_t s = 6; s < 15; s++)
        read_eq(c, 3, 1, s * SEG, 1, len - 100, 100, seg_a);
    ck_assert_uint_eq(stats(c).evicted, 5);
    for (uint32_t s = 15; s < 60; s++) /* many more, back to back */
        dc_put(c, 3, 1, s * SEG, 1, seg_a, len);
    dc_flush(c);
    struct dc_stats st = stats(c);
    ck_assert_uint_eq(st.entries, 10);
    ck_assert_uint_le(st.bytes_used, limit);
    ck_assert_uint_eq(st.evicted, 50);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 10);
    ck_assert_uint_le(w.bytes, limit);
    ck_assert_uint_eq(w.size, 10 * (DC_DATA_OFF + len));
    for (uint32_t s = 50; s < 60; s++)
        read_eq(c, 3, 1, s * SEG, 1, 0, len, seg_a);
    dc_close(c);
}
END_TEST

START_TEST(reopen_finds_the_entries_again)
{
    const char *dir;
    struct dcache *c = open_case("reopen", 8, &dir);
    for (uint32_t i = 0; i < 3; i++)
        dc_put(c, 10 + i, 2, i * SEG, 77, seg_a, SEG - i * 1000);
    dc_flush(c);
    struct dc_stats before = stats(c);
    char why[256] = "";
    ck_assert_ptr_null(dc_open(dir, 64ull * MB, why, sizeof(why)));
    ck_assert_msg(strstr(why, "another mount") != NULL, "why: %s", why);
    dc_close(c);

    c = open_ok(dir, 64ull * MB);
    dc_flush(c); /* the scan has ended */
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.entries, 3);
    ck_assert_uint_eq(s.bytes_used, before.bytes_used);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_int_eq(dc_has(c, 10 + i, 2, i * SEG, 77), 1);
        read_eq(c, 10 + i, 2, i * SEG, 77, 0, SEG - i * 1000, seg_a);
    }
    /* new puts of this mount get on alongside */
    dc_put(c, 10, 2, 0, 78, seg_a, 1000);
    dc_flush(c);
    read_eq(c, 10, 2, 0, 78, 0, 1000, seg_a);
    ck_assert_int_eq(walk(dir, NULL).n, 3);
    dc_close(c);
}
END_TEST

/* A cache folder for the test `name` that a mount closed holding chunks 1, 2 and 3 (version
 * 1, segment 0, tag) of 100,000 bytes of seg_a (filled from seed); its path. */
static const char *three_entries_closed(const char *name, uint64_t seed, uint64_t tag)
{
    const char *dir;
    struct dcache *c = open_case(name, seed, &dir);
    for (uint64_t id = 1; id <= 3; id++)
        dc_put(c, id, 1, 0, tag, seg_a, 100000);
    dc_flush(c);
    dc_close(c);
    return dir;
}

START_TEST(scan_removes_what_does_not_parse)
{
    const char *dir = three_entries_closed("scan", 9, 1);
    struct dcache *c;
    struct walk a = walk(dir, "0000000000000001-"), b = walk(dir, "0000000000000002-"),
                k = walk(dir, "0000000000000003-");
    ck_assert_int_eq(a.n + b.n + k.n, 3);
    flip_byte(a.path, 32); /* the tag in the header of entry 1: only its checksum tells */
    ck_assert_int_eq(truncate(b.path, DC_DATA_OFF + 100000 - 1), 0); /* entry 2 is short */
    /* entry 3's key under older gens: a fifo and a symlink (must not hang or be followed) */
    char p[512];
    snprintf(p, sizeof(p), "%s", k.path);
    memcpy(p + strlen(p) - 16, "0000000000000001", 16);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    memcpy(p + strlen(p) - 16, "0000000000000002", 16);
    ck_assert_int_eq(symlink(k.path, p), 0);
    /* foreign things in the subfolders, and a file of the user's next to them */
    const char *junk[] = {"07/hello", "07/tmp-0000000000000001", "ff/0000000000000003-x"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, junk[i]);
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        fputs("not an entry", f);
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/07/folder", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/README", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(walk(dir, NULL).n, 8);
    /* as after a crash: no index file, so the folder is scanned */
    char idx[512];
    snprintf(idx, sizeof(idx), "%s/index", dir);
    ck_assert_int_eq(unlink(idx), 0);

    c = open_ok(dir, 64ull * MB);
    dc_flush(c);
    ck_assert_uint_eq(stats(c).entries, 1);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 1);
    ck_assert_str_eq(w.path, k.path);
    ck_assert_int_eq(dc_read(c, 1, 1, 0, 1, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_read(c, 2, 1, 0, 1, 0, 10, out), -ENOENT);
    read_eq(c, 3, 1, 0, 1, 0, 100000, seg_a);
    ck_assert_int_eq(access(p, F_OK), 0); /* README stays */
    snprintf(p, sizeof(p), "%s/07/folder", dir);
    ck_assert_int_eq(access(p, F_OK), 0);
    dc_close(c);
}
END_TEST

/* A clean close leaves an index file; the next open takes its entries at once (no scan: a
 * foreign file in a subfolder stays), in their order of use (a smaller limit evicts the least
 * recently used), and removes the file; an entry whose file went away meanwhile is a miss. */
START_TEST(clean_close_leaves_an_index_the_next_open_takes)
{
    const char *dir;
    struct dcache *c = open_case("index", 11, &dir);
    for (uint64_t id = 1; id <= 3; id++)
        dc_put(c, id, 1, 0, 5, seg_a, SEG);
    dc_flush(c);
    read_eq(c, 1, 1, 0, 5, 0, 100, seg_a); /* 2 is now the least recently used */
    dc_close(c);
    char idx[512], junk[512];
    snprintf(idx, sizeof(idx), "%s/index", dir);
    ck_assert_int_eq(access(idx, F_OK), 0);
    snprintf(junk, sizeof(junk), "%s/07/hello", dir);
    FILE *f = fopen(junk, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);

    c = open_ok(dir, 2 * charge(SEG));
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.loaded, 3);
    ck_assert_uint_eq(s.entries, 2);
    ck_assert_uint_eq(s.evicted, 1);
    ck_assert_uint_eq(s.bytes_used, 2 * charge(SEG));
    ck_assert_int_eq(access(idx, F_OK), -1); /* used once */
    ck_assert_int_eq(access(junk, F_OK), 0); /* no scan ran */
    ck_assert_int_eq(dc_has(c, 2, 1, 0, 5), 0);
    ck_assert_int_eq(walk(dir, "0000000000000002-").n, 0);
    read_eq(c, 1, 1, 0, 5, 0, SEG, seg_a);
    read_eq(c, 3, 1, 0, 5, 0, SEG, seg_a);
    dc_close(c);

    /* an entry file removed while no mount ran: a miss, and no longer indexed */
    struct walk w = walk(dir, "0000000000000003-");
    ck_assert_int_eq(w.n, 1);
    ck_assert_int_eq(unlink(w.path), 0);
    c = open_ok(dir, 64ull * MB);
    ck_assert_uint_eq(stats(c).loaded, 2);
    ck_assert_int_eq(dc_read(c, 3, 1, 0, 5, 0, SEG, out), -ENOENT);
    ck_assert_uint_eq(stats(c).entries, 1);
    read_eq(c, 1, 1, 0, 5, 0, SEG, seg_a);
    dc_close(c);
}
END_TEST

/* An index file that does not verify is removed and the folder scanned: nothing is lost. */
START_TEST(damaged_index_falls_back_to_the_scan)
{
    const char *dir = three_entries_closed("index_bad", 12, 5);
    char idx[512];
    snprintf(idx, sizeof(idx), "%s/index", dir);
    flip_byte(idx, 30); /* inside the first record */
    struct dcache *c = open_ok(dir, 64ull * MB);
    dc_flush(c); /* the scan has ended */
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.loaded, 0);
    ck_assert_uint_eq(s.entries, 3);
    ck_assert_int_eq(access(idx, F_OK), -1);
    for (uint64_t id = 1; id <= 3; id++)
        read_eq(c, id, 1, 0, 5, 0, 100000, seg_a);
    dc_close(c);
    /* the scan went through the whole folder: this close writes an index again */
    ck_assert_int_eq(access(idx, F_OK), 0);
}
END_TEST

START_TEST(drop_old_removes_other_versions_of_the_chunk)
{
    const char *dir;
    struct dcache *c = open_case("dropold", 10, &dir);
    dc_put(c, 5, 1, 0, 1, seg_a, 1000);
    dc_put(c, 5, 1, 3 * SEG, 1, seg_a, 1000);
    dc_put(c, 5, 2, 0, 1, seg_a, 1000);
    dc_put(c, 5, 3, 0, 1, seg_a, 1000);
    dc_put(c, 6, 1, 0, 1, seg_a, 1000);
    dc_flush(c);
    dc_drop_old(c, 5, 2);
    ck_assert_int_eq(dc_has(c, 5, 1, 0, 1), 0);
    ck_assert_int_eq(dc_has(c, 5, 1, 3 * SEG, 1), 0);
    ck_assert_int_eq(dc_has(c, 5, 3, 0, 1), 0);
    read_eq(c, 5, 2, 0, 1, 0, 1000, seg_a);
    read_eq(c, 6, 1, 0, 1, 0, 1000, seg_a);
    ck_assert_uint_eq(stats(c).entries, 2);
    ck_assert_int_eq(walk(dir, NULL).n, 2);
    dc_close(c);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    char why[256] = "";
    ck_assert_ptr_null(dc_open(case_dir("small"), MB, why, sizeof(why)));
    ck_assert_msg(why[0] != 0, "no reason given");
    why[0] = 0;
    const char *dir = case_dir("args");
    char p[200];
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(p, sizeof(p), "%s/file", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/file/cache", dir);
    ck_assert_ptr_null(dc_open(p, 64ull * MB, why, sizeof(why)));
    ck_assert_msg(strstr(why, "cannot create") != NULL, "why: %s", why);

    snprintf(p, sizeof(p), "%s/cache", dir);
    struct dcache *c = open_ok(p, 64ull * MB);
    dc_put(c, 1, 1, 0, 1, seg_a, 0);
    dc_put(c, 1, 1, 0, 1, seg_a, SEG + 1);
    dc_put(c, 1, 1, 4096, 1, seg_a, 100);
    dc_put(c, 1, 1, 0, 1, NULL, 100);
    dc_flush(c);
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.put_dropped, 4);
    ck_assert_uint_eq(s.put, 0);
    ck_assert_uint_eq(s.entries, 0);
    ck_assert_uint_eq(s.limit, 64ull * MB);
    dc_put(c, 1, 1, 0, 1, seg_a, 100);
    dc_flush(c);
    ck_assert_int_eq(dc_read(c, 1, 1, 0, 1, 0, 0, out), -EINVAL);
    ck_assert_int_eq(dc_read(c, 1, 1, 0, 1, SEG - 10, 11, out), -EINVAL);
    dc_close(c);
    /* NULL is a cache that holds nothing */
    ck_assert_int_eq(dc_read(NULL, 1, 1, 0, 1, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_has(NULL, 1, 1, 0, 1), 0);
    dc_put(NULL, 1, 1, 0, 1, seg_a, 10);
    dc_drop_old(NULL, 1, 1);
    dc_flush(NULL);
    dc_get_stats(NULL, &s);
    ck_assert_uint_eq(s.put_dropped, 0);
    dc_close(NULL);
}
END_TEST

START_TEST(full_file_system_costs_only_the_puts_that_do_not_fit)
{
    char mnt[128], dir[160];
    snprintf(mnt, sizeof(mnt), "%s/tmpfs", root);
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") != 0) {
        fprintf(stderr,
                "SKIPPED full_file_system_costs_only_the_puts_that_do_not_fit: "
                "cannot mount a tmpfs (%s); run as root\n",
                strerror(errno));
        return;
    }
    snprintf(dir, sizeof(dir), "%s/cache", mnt);
    struct dcache *c = open_ok(dir, 64ull * MB); /* far more than the 2 MiB there is */
    fill(seg_a, SEG, 11);
    fill(seg_b, SEG, 12);
    dc_put(c, 1, 1, 0, 1, seg_a, SEG);
    dc_flush(c);
    ck_assert_uint_eq(stats(c).write_errors, 0);
    dc_put(c, 2, 1, 0, 1, seg_b, SEG); /* 1 MiB + 4 KiB more does not fit */
    dc_flush(c);
    ck_assert_uint_eq(stats(c).write_errors, 1);
    dc_put(c, 3, 1, 0, 1, seg_b, 200000); /* this does */
    dc_put(c, 4, 1, 0, 1, seg_a, SEG);    /* this does not */
    dc_flush(c);
    struct dc_stats s = stats(c);
    ck_assert_uint_eq(s.write_errors, 2);
    ck_assert_uint_eq(s.entries, 2);
    ck_assert_uint_eq(s.bytes_used, charge(SEG) + charge(200000));
    read_eq(c, 1, 1, 0, 1, 0, SEG, seg_a);
    read_eq(c, 3, 1, 0, 1, 0, 200000, seg_b);
    ck_assert_int_eq(dc_read(c, 2, 1, 0, 1, 0, 10, out), -ENOENT);
    ck_assert_int_eq(dc_read(c, 4, 1, 0, 1, 0, 10, out), -ENOENT);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, 2); /* no partial file left */
    ck_assert_int_eq(walk(dir, "tmp-").n, 0);
    dc_close(c);
    ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

/* ---- many threads ---------------------------------------------------------------------- */

#define MT_IDS 12
#define MT_LEN (128u << 10)
static uint8_t mt_data[MT_IDS][2][2][MT_LEN]; /* [id][ver-1][tag-1] */

struct mt {
    struct dcache *c;
    struct timespec end;
    unsigned seed;
    int role; /* 0 reader, 1 putter, 2 dropper */
    long bad, hits;
};

static int mt_over(const struct mt *m)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > m->end.tv_sec ||
           (now.tv_sec == m->end.tv_sec && now.tv_nsec >= m->end.tv_nsec);
}

static void *mt_main(void *arg)
{
    struct mt *m = arg;
    uint8_t *buf = malloc(MT_LEN);
    for (int i = 0; i < 50000 && !mt_over(m); i++) {
        /* mostly the same tag, so that puts replace entries under the readers' feet; now and
         * then the other one (the file changed) and a drop of the other version */
        uint32_t r = (uint32_t)rand_r(&m->seed), id = r % MT_IDS, ver = 1 + (r >> 8 & 1),
                 tag = (r >> 9 & 15) ? 1 : 2;
        const uint8_t *want = mt_data[id][ver - 1][tag - 1];
        if (m->role == 1) {
            dc_put(m->c, id, ver, 0, tag, want, MT_LEN);
            usleep(1000);
        } else if (m->role == 2) {
            dc_drop_old(m->c, id, ver);
            usleep(20000);
        } else {
            uint32_t off = (uint32_t)rand_r(&m->seed) % MT_LEN;
            uint32_t len = 1 + (uint32_t)rand_r(&m->seed) % (MT_LEN - off);
            int rc = dc_read(m->c, id, ver, 0, tag, off, len, buf);
            if (rc == (int)len && !memcmp(buf, want + off, len))
                m->hits++;
            else if (rc != -ENOENT)
                m->bad++;
            else
                usleep(100); /* a miss costs nothing: leave the time to the others */
        }
    }
    free(buf);
    return NULL;
}

START_TEST(threads_never_see_wrong_bytes)
{
    const char *dir = case_dir("threads");
    struct dcache *c = open_ok(dir, 16 * charge(MT_LEN)); /* fewer than the keys: evictions */
    for (int id = 0; id < MT_IDS; id++)
        for (int v = 0; v < 2; v++)
            for (int t = 0; t < 2; t++)
                fill(mt_data[id][v][t], MT_LEN, (uint64_t)id * 16 + (uint64_t)v * 4 + (uint64_t)t);
    enum { N = 7 };
    struct mt m[N];
    pthread_t th[N];
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_nsec += 500 * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (int i = 0; i < N; i++) {
        m[i] = (struct mt){.c = c,
                           .end = end,
                           .seed = 1234u + (unsigned)i,
                           .role = i < 4   ? 0
                                   : i < 6 ? 1
                                           : 2};
        ck_assert_int_eq(pthread_create(&th[i], NULL, mt_main, &m[i]), 0);
    }
    long bad = 0, hits = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        bad += m[i].bad;
        hits += m[i].hits;
    }
    dc_flush(c);
    struct dc_stats s = stats(c);
    ck_assert_int_eq(bad, 0);
    ck_assert_msg(hits > 0, "no reader ever hit (%lu puts, %lu dropped)", s.put, s.put_dropped);
    ck_assert_uint_eq(s.corrupt, 0);
    ck_assert_uint_eq(s.write_errors, 0);
    ck_assert_uint_le(s.bytes_used, s.limit);
    struct walk w = walk(dir, NULL);
    ck_assert_int_eq(w.n, (int)s.entries);
    ck_assert_uint_le(w.bytes, s.limit);
    dc_close(c);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void root_make(void)
{
    snprintf(root, sizeof(root), "/tmp/cairn-dcache.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void root_remove(void)
{
    char mnt[128];
    snprintf(mnt, sizeof(mnt), "%s/tmpfs", root);
    umount2(mnt, MNT_DETACH); /* left mounted by a failed test */
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

Suite *suite(void)
{
    Suite *s = suite_create("client_dcache");
    TCase *t = tcase_create("core");
    tcase_add_unchecked_fixture(t, root_make, root_remove);
    tcase_set_timeout(t, 30);
    tcase_add_test(t, put_then_read_back_whole_and_in_ranges);
    tcase_add_test(t, other_version_tag_or_key_is_a_miss);
    tcase_add_test(t, put_of_an_existing_key_replaces_it);
    tcase_add_test(t, flipped_byte_is_caught_once_then_the_entry_is_gone);
    tcase_add_loop_test(t, whole_entries_verify_in_either_buffer, 0, 2);
    tcase_add_test(t, limit_holds_on_disk_and_least_recent_go_first);
    tcase_add_test(t, reopen_finds_the_entries_again);
    tcase_add_test(t, clean_close_leaves_an_index_the_next_open_takes);
    tcase_add_test(t, damaged_index_falls_back_to_the_scan);
    tcase_add_test(t, scan_removes_what_does_not_parse);
    tcase_add_test(t, drop_old_removes_other_versions_of_the_chunk);
    tcase_add_test(t, bad_arguments_are_refused);
    tcase_add_test(t, full_file_system_costs_only_the_puts_that_do_not_fit);
    tcase_add_test(t, threads_never_see_wrong_bytes);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
