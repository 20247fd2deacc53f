/* test_tools_output.c - unit tests of the cairn command (tools/): the JSON writer (escaping,
 * commas, nesting), the decoders of the FILEINFO and HEALTH replies fed hand-encoded payloads
 * and META_STATUS replies fed hand-encoded payloads (every field, paging, and the malformed
 * replies they must refuse), their human and JSON printers (the Raft group's view with and
 * without a leader), and the built program itself against fake meta replicas on loopback (a
 * leader, a follower that redirects to it, one that is electing forever: health, cs drain,
 * meta status/add/remove, leader redirects, an unreachable or leaderless meta service answered
 * in bounded time, usage errors). Each test names the behaviour it proves. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_fileinfo.h"
#include "cmd_health.h"
#include "cmd_meta.h"
#include "codec.h"
#include "json_out.h"
#include "net.h"
#include "proto.h"
#include "wire.h"
#include "unit_main.h"

/* --- helpers ------------------------------------------------------------------------------ */

/* A memstream the printers write to; text() closes it and returns the bytes (caller frees). */
struct mem {
    char *buf;
    size_t len;
    FILE *f;
};

static FILE *mem_open(struct mem *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    ck_assert_ptr_nonnull(m->f);
    return m->f;
}

static char *mem_text(struct mem *m)
{
    fclose(m->f);
    return m->buf;
}

#define ck_contains(hay, needle)                                                                   \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "missing \"%s\" in:\n%s", (needle), (hay))

static void put_str(struct wbuf *b, const char *s)
{
    wbuf_put_str(b, s, strlen(s));
}

static void put_attr(struct wbuf *b, uint64_t ino, uint64_t size, uint32_t copies)
{
    struct cairn_attr a = {.ino = ino, .mode = 0100644, .nlink = 1, .size = size, .copies = copies};
    proto_put_attr(b, &a);
}

/* One FILEINFO chunk with ncopies copies on servers 0x10+k, zones "a"/"" alternating. */
static void put_chunk(struct wbuf *b, uint64_t index, uint64_t id, uint32_t ver, uint64_t len,
                      int ncopies, const uint8_t *states)
{
    wbuf_put_u64(b, index);
    wbuf_put_u64(b, id);
    wbuf_put_u32(b, ver);
    wbuf_put_u64(b, len);
    wbuf_put_u8(b, (uint8_t)ncopies);
    for (int k = 0; k < ncopies; k++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9530 + k);
        wbuf_put_u64(b, 0x10 + (uint64_t)k);
        put_str(b, addr);
        put_str(b, k % 2 ? "" : "a");
        wbuf_put_u32(b, states[k] == COPY_STALE ? ver - 1 : ver);
        wbuf_put_u8(b, states[k]);
    }
}

static void put_fileinfo_head(struct wbuf *b, uint32_t n)
{
    put_attr(b, 42, 100u << 20, 2);
    wbuf_put_u32(b, 2);         /* copies */
    wbuf_put_u64(b, 64u << 20); /* chunk size */
    wbuf_put_u32(b, n);
}

/* A HEALTH reply: two servers (one draining, one with capacity 0), then every counter. */
static void put_health(struct wbuf *b)
{
    wbuf_put_u32(b, 2);
    wbuf_put_u64(b, 0xabcdef0123456789ull);
    put_str(b, "127.0.0.1:9530");
    put_str(b, "rack-a");
    wbuf_put_u8(b, CS_STATE_DRAINING);
    wbuf_put_u64(b, 1000);
    wbuf_put_u64(b, 250);
    wbuf_put_u32(b, 7);
    wbuf_put_u64(b, 120);
    wbuf_put_u32(b, 3);
    wbuf_put_u64(b, 0x2);
    put_str(b, "127.0.0.1:9531");
    put_str(b, "");
    wbuf_put_u8(b, CS_STATE_DOWN);
    wbuf_put_u64(b, 0);
    wbuf_put_u64(b, 0);
    wbuf_put_u32(b, 0);
    wbuf_put_u64(b, 0);
    wbuf_put_u32(b, 0);
    static const uint64_t counters[] = {
        130, 120, 6, 1, 3, 4, 5, 2, 17, 17ull << 20, (uint64_t)(12.5 * 1048576), 8, 9};
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        wbuf_put_u64(b, counters[i]);
    wbuf_put_u8(b, 1);   /* scan complete */
    wbuf_put_u32(b, 2);  /* default copies */
    wbuf_put_u32(b, 10); /* balance % */
}

/* A META_STATUS reply; members as (id, addr, role, reachable, match) in m[]. */
struct fake_member {
    uint64_t id;
    const char *addr;
    uint8_t role, reachable;
    uint64_t match;
};

static void put_meta_status(struct wbuf *b, uint64_t self, uint8_t state, uint64_t leader_id,
                            const char *leader_addr, uint64_t term, uint64_t commit,
                            uint64_t applied, uint64_t last, const struct fake_member *m,
                            uint32_t n)
{
    wbuf_put_u64(b, self);
    wbuf_put_u8(b, state);
    wbuf_put_u64(b, leader_id);
    put_str(b, leader_addr);
    wbuf_put_u64(b, term);
    wbuf_put_u64(b, commit);
    wbuf_put_u64(b, applied);
    wbuf_put_u64(b, last);
    wbuf_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++) {
        wbuf_put_u64(b, m[i].id);
        put_str(b, m[i].addr);
        wbuf_put_u8(b, m[i].role);
        wbuf_put_u8(b, m[i].reachable);
        wbuf_put_u64(b, m[i].match);
    }
}

static const struct fake_member three[] = {
    {1, "127.0.0.1:9520", META_ROLE_VOTER, 1, 104},
    {2, "127.0.0.1:9522", META_ROLE_VOTER, 1, 101},
    {3, "127.0.0.1:9524", META_ROLE_STANDBY, 0, 40},
};

/* --- JSON writer --------------------------------------------------------------------------- */

START_TEST(test_json_escapes_quotes_controls_and_bad_utf8)
{
    struct mem m;
    FILE *f = mem_open(&m);
    json_write_escaped(f, "a\"b\\c\n\t\x01\x7f"
                          "\xc3\xa9"
                          "\xff"
                          "\xe2\x82"
                          "z");
    char *t = mem_text(&m);
    ck_assert_str_eq(t, "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\xc3\xa9\\ufffd\\ufffd\\ufffdz\"");
    free(t);
}
END_TEST

START_TEST(test_json_nesting_commas_and_empty_containers)
{
    struct mem m;
    struct json j;
    json_init(&j, mem_open(&m));
    json_obj_begin(&j, NULL);
    json_str(&j, "s", "x");
    json_arr_begin(&j, "empty");
    json_arr_end(&j);
    json_arr_begin(&j, "a");
    json_u64(&j, NULL, 1);
    json_i64(&j, NULL, -2);
    json_bool(&j, NULL, 1);
    json_null(&j, NULL);
    json_obj_begin(&j, NULL);
    json_obj_end(&j);
    json_arr_end(&j);
    json_hex64(&j, "id", 0xab);
    json_fixed(&j, "r", 1.25, 1);
    json_obj_end(&j);
    json_finish(&j);
    char *t = mem_text(&m);
    ck_assert_str_eq(t, "{\n  \"s\": \"x\",\n  \"empty\": [],\n  \"a\": [\n    1,\n    -2,\n    "
                        "true,\n    null,\n    {}\n  ],\n  \"id\": \"00000000000000ab\",\n  "
                        "\"r\": 1.2\n}\n");
    free(t);
}
END_TEST

/* --- FILEINFO ------------------------------------------------------------------------------ */

START_TEST(test_fileinfo_decodes_two_pages_and_prints_every_copy)
{
    static const uint8_t st1[] = {COPY_VALID, COPY_STALE, COPY_PENDING};
    static const uint8_t st2[] = {COPY_BAD, COPY_DOWN};
    static const uint8_t st3[] = {COPY_DRAINING};
    struct wbuf b;
    struct fi_file f;
    fi_init(&f);
    wbuf_init(&b);
    put_fileinfo_head(&b, 2);
    put_chunk(&b, 0, 0x1111, 5, 64u << 20, 3, st1);
    put_chunk(&b, 1, 0x2222, 3, 36u << 20, 2, st2);
    wbuf_put_u8(&b, 1); /* more */
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), 0);
    ck_assert(f.more);
    ck_assert_uint_eq(f.next_index, 2);
    wbuf_reset(&b);
    put_fileinfo_head(&b, 1);
    put_chunk(&b, 7, 0x3333, 1, 0, 1, st3);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), 0);
    ck_assert(!f.more);
    wbuf_free(&b);

    ck_assert_uint_eq(f.n, 3);
    ck_assert_uint_eq(f.attr.ino, 42);
    ck_assert_uint_eq(f.copies, 2);
    ck_assert_uint_eq(f.chunk_size, 64u << 20);
    ck_assert_uint_eq(f.chunks[0].ncopies, 3);
    ck_assert_str_eq(f.chunks[0].copies[1].addr, "127.0.0.1:9531");
    ck_assert_uint_eq(f.chunks[0].copies[1].version, 4);
    ck_assert_str_eq(f.chunks[0].copies[0].zone, "a");
    ck_assert_uint_eq(fi_valid_copies(&f.chunks[0]), 1);
    ck_assert_uint_eq(fi_valid_copies(&f.chunks[2]), 0); /* draining does not count */

    struct mem m;
    fi_print(mem_open(&m), "/mnt/x", &f);
    char *t = mem_text(&m);
    ck_contains(t, "/mnt/x: inode 42, size 100.0 MiB (104857600 bytes), copies 2");
    ck_contains(t, "3 chunks");
    ck_contains(t, "chunk 0: id 0000000000001111 v5, 64.0 MiB, 1 of 2 valid (under-replicated)");
    ck_contains(t, "chunk 1: id 0000000000002222 v3, 36.0 MiB, 0 of 2 valid (MISSING)");
    ck_contains(t, "0000000000000010  127.0.0.1:9530         zone a         valid\n");
    ck_contains(t, "zone -         stale (v4)");
    ck_contains(t, "pending");
    ck_contains(t, "bad");
    ck_contains(t, "down");
    ck_contains(t, "draining");
    free(t);

    struct json j;
    json_init(&j, mem_open(&m));
    fi_json(&j, "/mnt/x", &f);
    json_finish(&j);
    t = mem_text(&m);
    ck_contains(t, "\"path\": \"/mnt/x\"");
    ck_contains(t, "\"chunk_size\": 67108864");
    ck_contains(t, "\"id\": \"0000000000003333\"");
    ck_contains(t, "\"server\": \"0000000000000010\"");
    ck_contains(t, "\"state\": \"stale\"");
    ck_contains(t, "\"valid\": 1");
    free(t);
    fi_free(&f);
}
END_TEST

START_TEST(test_fileinfo_refuses_malformed_replies)
{
    static const uint8_t st[] = {COPY_VALID, COPY_VALID};
    struct wbuf b;
    struct fi_file f;
    wbuf_init(&b);

    /* truncated in the middle of a copy */
    fi_init(&f);
    put_fileinfo_head(&b, 1);
    put_chunk(&b, 0, 1, 1, 10, 2, st);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len - 6), -EBADMSG);
    ck_assert_uint_eq(f.n, 0);
    /* trailing garbage */
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), -EBADMSG);

    /* a chunk count far beyond the payload: refused before any allocation */
    wbuf_reset(&b);
    put_fileinfo_head(&b, 0xffffffffu);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), -EBADMSG);

    /* 255 copies announced, none there */
    wbuf_reset(&b);
    put_fileinfo_head(&b, 1);
    put_chunk(&b, 0, 1, 1, 10, 0, st);
    b.data[b.len - 1] = 255;
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), -EBADMSG);

    /* indexes must increase */
    wbuf_reset(&b);
    put_fileinfo_head(&b, 2);
    put_chunk(&b, 3, 1, 1, 10, 1, st);
    put_chunk(&b, 3, 2, 1, 10, 1, st);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), -EBADMSG);
    ck_assert_uint_eq(f.n, 0);

    /* "more" without a chunk would page forever */
    wbuf_reset(&b);
    put_fileinfo_head(&b, 0);
    wbuf_put_u8(&b, 1);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), -EBADMSG);

    /* a long zone label */
    wbuf_reset(&b);
    put_fileinfo_head(&b, 1);
    wbuf_put_u64(&b, 0);
    wbuf_put_u64(&b, 1);
    wbuf_put_u32(&b, 1);
    wbuf_put_u64(&b, 1);
    wbuf_put_u8(&b, 1);
    wbuf_put_u64(&b, 1);
    put_str(&b, "127.0.0.1:1");
    put_str(&b, "a-zone-label-longer-than-31-bytes");
    wbuf_put_u32(&b, 1);
    wbuf_put_u8(&b, 0);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(fi_decode_page(&f, b.data, b.len), -EBADMSG);

    fi_free(&f);
    wbuf_free(&b);
}
END_TEST

/* --- HEALTH -------------------------------------------------------------------------------- */

START_TEST(test_health_decodes_and_prints_servers_and_counters)
{
    struct wbuf b;
    struct hl_report h;
    wbuf_init(&b);
    put_health(&b);
    ck_assert_int_eq(hl_decode(&h, b.data, b.len), 0);
    wbuf_free(&b);
    ck_assert_uint_eq(h.nservers, 2);
    ck_assert_str_eq(h.servers[0].zone, "rack-a");
    ck_assert_uint_eq(h.servers[0].repairs_in_flight, 3);
    ck_assert_uint_eq(h.under, 6);
    ck_assert_uint_eq(h.moves_done, 9);
    ck_assert_uint_eq(h.balance_pct, 10);

    struct mem m;
    hl_print(mem_open(&m), "127.0.0.1:9520", &h);
    char *t = mem_text(&m);
    ck_contains(t, "meta service 127.0.0.1:9520: 2 chunk servers, default copies 2, balance 10%");
    ck_contains(t, "abcdef0123456789  127.0.0.1:9530         rack-a    draining    75%");
    ck_contains(t, "0000000000000002  127.0.0.1:9531         -         down          -");
    ck_contains(t,
                "chunks: 130 total, 120 full, 6 under-replicated, 1 missing, 3 over-replicated\n");
    ck_contains(t, "copies: 4 stale, 5 bad");
    ck_contains(t, "repair: 2 queued, 17 done (17.0 MiB), 12.5 MiB/s, 8 bad copies repaired, 9 "
                   "moves done");
    free(t);

    struct json j;
    json_init(&j, mem_open(&m));
    hl_json(&j, "127.0.0.1:9520", &h);
    json_finish(&j);
    t = mem_text(&m);
    ck_contains(t, "\"id\": \"abcdef0123456789\"");
    ck_contains(t, "\"state\": \"draining\"");
    ck_contains(t, "\"used_pct\": 75.0");
    ck_contains(t, "\"under_replicated\": 6");
    ck_contains(t, "\"rate_mib_per_s\": 12.5");
    ck_contains(t, "\"scan_complete\": true");
    free(t);
    hl_free(&h);
}
END_TEST

START_TEST(test_health_refuses_malformed_replies)
{
    struct wbuf b;
    struct hl_report h;
    wbuf_init(&b);
    put_health(&b);
    for (size_t cut = 0; cut < b.len; cut += 7)
        ck_assert_int_eq(hl_decode(&h, b.data, cut), -EBADMSG);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(hl_decode(&h, b.data, b.len), -EBADMSG);
    wbuf_reset(&b);
    wbuf_put_u32(&b, 0x10000000u); /* servers far beyond the payload */
    ck_assert_int_eq(hl_decode(&h, b.data, b.len), -EBADMSG);
    wbuf_free(&b);
}
END_TEST

/* --- META_STATUS ---------------------------------------------------------------------------- */

/* Decode payload b into the replica slot for addr of v. */
static void view_add(struct mt_view *v, const char *addr, const struct wbuf *b)
{
    struct mt_replica *r = mt_view_slot(v, addr);
    ck_assert_ptr_nonnull(r);
    r->rc = mt_decode(&r->st, b->data, b->len);
    ck_assert_int_eq(r->rc, 0);
}

static void view_down(struct mt_view *v, const char *addr)
{
    struct mt_replica *r = mt_view_slot(v, addr);
    ck_assert_ptr_nonnull(r);
    r->rc = -ECONNREFUSED;
    r->down = 1;
    snprintf(r->why, sizeof(r->why), "Connection refused");
}

START_TEST(test_meta_status_prints_members_lag_and_each_replica_from_the_leaders_view)
{
    struct wbuf b;
    struct mt_view v;
    wbuf_init(&b);
    ck_assert_int_eq(mt_view_init(&v, "127.0.0.1:9522,127.0.0.1:9524", 3), 0);
    /* a follower first: it names the leader, which is not in the list */
    put_meta_status(&b, 2, META_ST_FOLLOWER, 1, "127.0.0.1:9520", 7, 100, 99, 101, NULL, 0);
    view_add(&v, "127.0.0.1:9522", &b);
    view_down(&v, "127.0.0.1:9524");
    ck_assert_int_eq(mt_view_find_leader(&v), -1);
    ck_assert_str_eq(mt_view_named_leader(&v), "127.0.0.1:9520");
    wbuf_reset(&b);
    put_meta_status(&b, 1, META_ST_LEADER, 1, "127.0.0.1:9520", 7, 100, 99, 104, three, 3);
    view_add(&v, "127.0.0.1:9520", &b);
    ck_assert_int_eq(mt_view_find_leader(&v), 2);
    ck_assert_ptr_null(mt_view_named_leader(&v));
    const struct mt_status *l = &v.replicas[2].st;
    ck_assert_uint_eq(l->nmembers, 3);
    ck_assert_uint_eq(mt_lag(l, &l->members[0]), 0); /* the leader itself */
    ck_assert_uint_eq(mt_lag(l, &l->members[1]), 3);
    ck_assert_uint_eq(mt_lag(l, &l->members[2]), 64);

    struct mem m;
    mt_print(mem_open(&m), &v);
    char *t = mem_text(&m);
    ck_contains(t,
                "meta group 127.0.0.1:9522,127.0.0.1:9524: leader 1 at 127.0.0.1:9520, term 7\n");
    ck_contains(t, "commit index 100, applied index 99, last index 104, 3 members\n");
    ck_contains(
        t, "  ID  ADDRESS                ROLE     LEADER  REACHABLE       MATCH         LAG\n");
    ck_contains(
        t, "   1  127.0.0.1:9520         voter    *       yes               104           0\n");
    ck_contains(
        t, "   2  127.0.0.1:9522         voter            yes               101           3\n");
    ck_contains(
        t, "   3  127.0.0.1:9524         standby          no                 40          64\n");
    ck_contains(t, "127.0.0.1:9522            2  follower          7         100          99       "
                   "  101  1 127.0.0.1:9520\n");
    ck_contains(t, "127.0.0.1:9524            -  down: Connection refused\n");
    ck_contains(t, "127.0.0.1:9520            1  leader            7");
    free(t);

    struct json j;
    json_init(&j, mem_open(&m));
    mt_json(&j, &v);
    json_finish(&j);
    t = mem_text(&m);
    ck_contains(t, "\"meta\": \"127.0.0.1:9522,127.0.0.1:9524\"");
    ck_contains(t, "\"leader_id\": 1,\n  \"leader_addr\": \"127.0.0.1:9520\"");
    ck_contains(
        t,
        "\"term\": 7,\n  \"commit_index\": 100,\n  \"applied_index\": 99,\n  \"last_index\": 104");
    ck_contains(
        t,
        "{\n      \"id\": 3,\n      \"addr\": \"127.0.0.1:9524\",\n      \"role\": \"standby\",\n"
        "      \"leader\": false,\n      \"reachable\": false,\n      \"match_index\": 40,\n"
        "      \"lag\": 64\n    }");
    ck_contains(t, "\"role\": \"voter\",\n      \"leader\": true,\n      \"reachable\": true");
    ck_contains(t, "{\n      \"addr\": \"127.0.0.1:9524\",\n      \"state\": \"down\",\n"
                   "      \"reachable\": false,\n      \"error\": \"Connection refused\"\n    }");
    ck_contains(t, "\"addr\": \"127.0.0.1:9522\",\n      \"state\": \"follower\",\n      "
                   "\"reachable\": true,\n"
                   "      \"id\": 2,\n      \"term\": 7,\n      \"leader_id\": 1,\n"
                   "      \"leader_addr\": \"127.0.0.1:9520\"");
    free(t);
    mt_view_free(&v);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_meta_status_without_a_leader_shows_what_each_replica_says)
{
    struct wbuf b;
    struct mt_view v;
    wbuf_init(&b);
    ck_assert_int_eq(mt_view_init(&v, "a:1,b:2,c:3", 3), 0);
    put_meta_status(&b, 1, META_ST_CANDIDATE, 0, "", 9, 50, 50, 52, NULL, 0);
    view_add(&v, "a:1", &b);
    view_down(&v, "b:2");
    struct mt_replica *r = mt_view_slot(&v, "c:3");
    r->rc = -EOPNOTSUPP;
    snprintf(r->why, sizeof(r->why), "older");
    ck_assert_int_eq(mt_view_find_leader(&v), -1);
    ck_assert_ptr_null(mt_view_named_leader(&v));
    ck_assert_ptr_null(mt_view_slot(&v, "d:4")); /* full */
    ck_assert_ptr_eq(mt_view_slot(&v, "b:2"), &v.replicas[1]);

    struct mem m;
    mt_print(mem_open(&m), &v);
    char *t = mem_text(&m);
    ck_contains(t, "meta group a:1,b:2,c:3: no leader (an election is running, or fewer than a "
                   "majority of the replicas are up)\n");
    ck_contains(t, "a:1                       1  candidate         9          50          50       "
                   "   52  -\n");
    ck_contains(t, "b:2                       -  down: Connection refused\n");
    ck_contains(t, "c:3                       -  error: older\n");
    ck_assert_ptr_null(strstr(t, "ROLE"));
    free(t);

    struct json j;
    json_init(&j, mem_open(&m));
    mt_json(&j, &v);
    json_finish(&j);
    t = mem_text(&m);
    ck_contains(t, "\"leader_id\": 0,\n  \"leader_addr\": \"\",\n  \"term\": null");
    ck_contains(t, "\"members\": [],");
    ck_contains(t, "\"state\": \"candidate\"");
    ck_contains(t, "\"state\": \"error\",\n      \"reachable\": true,\n      \"error\": \"older\"");
    free(t);
    mt_view_free(&v);

    /* nothing answers at all */
    ck_assert_int_eq(mt_view_init(&v, "a:1", 1), 0);
    view_down(&v, "a:1");
    mt_print(mem_open(&m), &v);
    t = mem_text(&m);
    ck_contains(t, "meta group a:1: no leader (no replica answers)\n");
    free(t);
    mt_view_free(&v);
    wbuf_free(&b);
}
END_TEST

START_TEST(test_meta_status_refuses_malformed_replies)
{
    struct wbuf b;
    struct mt_status st;
    wbuf_init(&b);
    put_meta_status(&b, 1, META_ST_LEADER, 1, "127.0.0.1:9520", 7, 100, 99, 104, three, 3);
    ck_assert_int_eq(mt_decode(&st, b.data, b.len), 0);
    ck_assert_str_eq(st.members[2].addr, "127.0.0.1:9524");
    ck_assert_uint_eq(st.members[2].role, META_ROLE_STANDBY);
    mt_free(&st);
    for (size_t cut = 0; cut < b.len; cut += 5)
        ck_assert_int_eq(mt_decode(&st, b.data, cut), -EBADMSG);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(mt_decode(&st, b.data, b.len), -EBADMSG);
    wbuf_reset(&b);
    put_meta_status(&b, 1, META_ST_LEADER, 1, "", 7, 1, 1, 1, NULL, 0);
    b.data[b.len - 1] = 0x10; /* 0x10000000 members, far beyond the payload */
    ck_assert_int_eq(mt_decode(&st, b.data, b.len), -EBADMSG);
    wbuf_free(&b);
}
END_TEST

/* --- the program against fake meta replicas ---------------------------------------------- */

/* A fake meta replica on loopback, one thread per connection. The leader answers HEALTH with
 * put_health(), CS_DRAIN with 0 for server 0x2 and -ENOENT otherwise, META_STATUS with three
 * members (1 itself, 2 the follower, 3 a standby it cannot reach), META_ADD with id 4 (-EEXIST
 * for the follower's address), META_WHOAMI with 2 for the follower's address, META_REMOVE with
 * 0 for members 2 and 3. The follower answers META_STATUS about itself and everything else with
 * -CAIRN_ENOTLEADER naming the leader; the electing one the same with no leader known. Anything
 * else: -EOPNOTSUPP. */
enum fake_mode { FAKE_LEADER, FAKE_FOLLOWER, FAKE_ELECTING };

struct fake {
    enum fake_mode mode;
    int fd;
    uint16_t port;
    char addr[32];
};

static struct fake F_leader = {.mode = FAKE_LEADER, .fd = -1};
static struct fake F_follower = {.mode = FAKE_FOLLOWER, .fd = -1};
static struct fake F_electing = {.mode = FAKE_ELECTING, .fd = -1};
static char dead_addr[32]; /* a port nothing listens on */

/* The reply status and payload (out) of fake f to one request. */
static int fake_answer(const struct fake *f, const struct wire_hdr *h, const struct wbuf *in,
                       struct wbuf *out)
{
    struct rcur cur;
    char s[CAIRN_ADDR_MAX + 1];
    rcur_init(&cur, in->data, in->len);
    if (h->type == MSG_META_STATUS) {
        if (f->mode == FAKE_LEADER) {
            struct fake_member m[3] = {{1, F_leader.addr, META_ROLE_VOTER, 1, 104},
                                       {2, F_follower.addr, META_ROLE_VOTER, 1, 101},
                                       {3, dead_addr, META_ROLE_STANDBY, 0, 40}};
            put_meta_status(out, 1, META_ST_LEADER, 1, F_leader.addr, 7, 100, 99, 104, m, 3);
        } else if (f->mode == FAKE_FOLLOWER) {
            put_meta_status(out, 2, META_ST_FOLLOWER, 1, F_leader.addr, 7, 100, 98, 101, NULL, 0);
        } else {
            put_meta_status(out, 0, META_ST_CANDIDATE, 0, "", 8, 0, 0, 0, NULL, 0);
        }
        return 0;
    }
    if (f->mode != FAKE_LEADER) {
        put_str(out, f->mode == FAKE_FOLLOWER ? F_leader.addr : "");
        return -CAIRN_ENOTLEADER;
    }
    switch (h->type) {
    case MSG_HEALTH:
        put_health(out);
        return 0;
    case MSG_CS_DRAIN: {
        uint64_t id = rcur_u64(&cur);
        uint8_t on = rcur_u8(&cur);
        return rcur_done(&cur) ? -EBADMSG : id == 2 && on <= 1 ? 0 : -ENOENT;
    }
    case MSG_META_ADD:
    case MSG_META_WHOAMI: {
        rcur_str(&cur, s, CAIRN_ADDR_MAX);
        if (rcur_done(&cur)) return -EBADMSG;
        int member = strcmp(s, F_follower.addr) == 0;
        if (h->type == MSG_META_ADD && member) return -EEXIST;
        wbuf_put_u64(out, h->type == MSG_META_ADD ? 4 : member ? 2 : 0);
        return 0;
    }
    case MSG_META_REMOVE: {
        uint64_t id = rcur_u64(&cur);
        return rcur_done(&cur) ? -EBADMSG : id == 2 || id == 3 ? 0 : -ENOENT;
    }
    default:
        return -EOPNOTSUPP;
    }
}

struct fake_conn {
    const struct fake *f;
    int fd;
};

static void *fake_serve(void *arg)
{
    struct fake_conn *fc = arg;
    struct wbuf in, out;
    wbuf_init(&in);
    wbuf_init(&out);
    struct wire_hdr h;
    while (wire_recv(fc->fd, &h, &in, WIRE_MAX_PAYLOAD) == 0) {
        struct wire_hdr r = {.type = h.type | WIRE_REPLY_BIT, .reqid = h.reqid};
        wbuf_reset(&out);
        r.status = fake_answer(fc->f, &h, &in, &out);
        r.length = (uint32_t)out.len;
        wire_send(fc->fd, &r, out.data, r.length, NULL, 0);
    }
    wbuf_free(&in);
    wbuf_free(&out);
    close(fc->fd);
    free(fc);
    return NULL;
}

static void *fake_accept(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) return NULL;
        struct fake_conn *fc = malloc(sizeof(*fc));
        pthread_t t;
        if (!fc) {
            close(c);
            continue;
        }
        fc->f = f;
        fc->fd = c;
        if (pthread_create(&t, NULL, fake_serve, fc) != 0) {
            close(c);
            free(fc);
            continue;
        }
        pthread_detach(t);
    }
}

static void fake_listen(struct fake *f)
{
    f->fd = net_listen("127.0.0.1:0", &f->port);
    ck_assert_int_ge(f->fd, 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", f->port);
}

/* Start the three fakes (addresses first: each names the others). */
static void fakes_start(void)
{
    uint16_t dead = 0;
    int fd = net_listen("127.0.0.1:0", &dead);
    close(fd);
    snprintf(dead_addr, sizeof(dead_addr), "127.0.0.1:%u", dead);
    struct fake *all[] = {&F_leader, &F_follower, &F_electing};
    for (int i = 0; i < 3; i++)
        fake_listen(all[i]);
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, fake_accept, all[i]), 0);
        pthread_detach(t);
    }
}

static void fakes_stop(void)
{
    struct fake *all[] = {&F_leader, &F_follower, &F_electing};
    for (int i = 0; i < 3; i++) {
        shutdown(all[i]->fd, SHUT_RDWR); /* wakes the accept */
        close(all[i]->fd);
    }
}

/* Run build/cairn with args (a shell fragment) and the environment settings env ("" for none;
 * CAIRN_META is removed first); stdout+stderr into out. Returns the exit status; *ms gets the
 * time it took. */
static int run_cairn_env(const char *env, const char *args, char *out, size_t len, uint64_t *ms)
{
    const char *b = getenv("BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "env -u CAIRN_META %s %s/cairn %s 2>&1", env, b && *b ? b : "build",
             args);
    uint64_t t0 = net_now_ms();
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (ms) *ms = net_now_ms() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_cairn(const char *args, char *out, size_t len, uint64_t *ms)
{
    return run_cairn_env("", args, out, len, ms);
}

START_TEST(test_program_health_and_drain_against_a_fake_meta)
{
    fakes_start();
    char args[200], out[8192];
    snprintf(args, sizeof(args), "health --meta %s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "2 chunk servers");
    ck_contains(out, "rack-a");
    snprintf(args, sizeof(args), "--json health --meta=%s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_assert_int_eq(out[0], '{');
    ck_contains(out, "\"missing\": 1");
    /* the first address of the list is dead: the second answers */
    snprintf(args, sizeof(args), "health --meta %s,%s", dead_addr, F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);

    snprintf(args, sizeof(args), "cs drain 0x2 --meta %s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "chunk server 0000000000000002: draining");
    snprintf(args, sizeof(args), "cs undrain 0000000000000002 --meta %s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "no longer draining");
    snprintf(args, sizeof(args), "cs drain 3 --meta %s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 1);
    ck_contains(out, "no chunk server 0000000000000003");
    fakes_stop();
}
END_TEST

START_TEST(test_program_follows_not_leader_answers_to_the_leader)
{
    fakes_start();
    char args[300], out[8192];
    /* a dead address, an electing replica, a follower naming a leader outside the list */
    snprintf(args, sizeof(args), "health --meta %s,%s,%s", dead_addr, F_electing.addr,
             F_follower.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "2 chunk servers");
    snprintf(args, sizeof(args), "cs drain 2 --meta %s", F_follower.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "draining");
    /* CAIRN_META takes a list too */
    char env[200];
    snprintf(env, sizeof(env), "CAIRN_META=%s,%s", dead_addr, F_follower.addr);
    ck_assert_int_eq(run_cairn_env(env, "health --json", out, sizeof(out), NULL), 0);
    ck_contains(out, "\"default_copies\": 2");
    fakes_stop();
}
END_TEST

START_TEST(test_program_no_leader_fails_in_bounded_time_saying_so)
{
    fakes_start();
    char args[300], out[8192], want[300];
    uint64_t ms;
    snprintf(args, sizeof(args), "health --meta %s,%s", F_electing.addr, dead_addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), &ms), 1);
    snprintf(want, sizeof(want),
             "cairn: health: no leader among the meta service replicas at %s,%s after 5 s",
             F_electing.addr, dead_addr);
    ck_contains(out, want);
    ck_assert_msg(ms >= 4500 && ms < 9000, "took %llu ms", (unsigned long long)ms);

    snprintf(args, sizeof(args), "meta status --meta %s,%s", F_electing.addr, dead_addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), &ms), 1);
    ck_contains(out, "no leader (an election is running");
    ck_contains(out, "candidate");
    ck_contains(out, "down: Connection refused");
    ck_contains(out, "cairn: meta status: no leader among the meta service replicas at");
    ck_assert_msg(ms < 3000, "took %llu ms", (unsigned long long)ms);
    fakes_stop();
}
END_TEST

START_TEST(test_program_meta_status_add_remove)
{
    fakes_start();
    char args[300], out[8192], want[300];
    /* asked: the follower and a dead one; the leader is found through the follower */
    snprintf(args, sizeof(args), "meta status --meta %s,%s", F_follower.addr, dead_addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    snprintf(want, sizeof(want), "leader 1 at %s, term 7\n", F_leader.addr);
    ck_contains(out, want);
    snprintf(want, sizeof(want),
             "   2  %-21s  voter            yes               101           3\n", F_follower.addr);
    ck_contains(out, want);
    snprintf(want, sizeof(want), "%-21s     -  down: ", dead_addr);
    ck_contains(out, want);
    snprintf(args, sizeof(args), "meta status --json --meta %s", F_follower.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_assert_int_eq(out[0], '{');
    snprintf(want, sizeof(want), "\"leader_addr\": \"%s\"", F_leader.addr);
    ck_contains(out, want);
    ck_contains(out, "\"lag\": 64");

    /* add: the electing fake plays the fresh replica; the request is redirected */
    snprintf(args, sizeof(args), "meta add %s --meta %s", F_electing.addr, F_follower.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_assert_str_eq(out, "4\n");
    snprintf(args, sizeof(args), "meta add %s --json --meta %s", F_electing.addr, F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "\"id\": 4");
    snprintf(args, sizeof(args), "meta add %s --meta %s", F_follower.addr, F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 1);
    snprintf(want, sizeof(want), "meta add: %s is already member 2 of the group", F_follower.addr);
    ck_contains(out, want);
    snprintf(args, sizeof(args), "meta add %s --meta %s", dead_addr, F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 1);
    snprintf(want, sizeof(want), "meta add: no cairn-meta answers at %s (Connection refused)",
             dead_addr);
    ck_contains(out, want);

    snprintf(args, sizeof(args), "meta remove 3 --meta %s", F_follower.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_assert_str_eq(out, "removed member 3\n");
    snprintf(args, sizeof(args), "meta remove 2 --json --meta %s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "\"removed\": 2");
    snprintf(args, sizeof(args), "meta remove 9 --meta %s", F_leader.addr);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 1);
    ck_contains(out, "has no member 9");
    fakes_stop();
}
END_TEST

START_TEST(test_program_unreachable_meta_fails_fast_with_the_address)
{
    uint16_t dead = 0;
    int fd = net_listen("127.0.0.1:0", &dead);
    close(fd);
    char args[200], out[4096];
    uint64_t ms;
    snprintf(args, sizeof(args), "health --meta 127.0.0.1:%u", dead);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), &ms), 1);
    char want[100];
    snprintf(want, sizeof(want), "cannot reach the meta service at 127.0.0.1:%u: ", dead);
    ck_contains(out, want);
    ck_assert_msg(ms < 6000, "took %llu ms", (unsigned long long)ms);
}
END_TEST

START_TEST(test_program_usage_errors_exit_2)
{
    char out[4096];
    ck_assert_int_eq(run_cairn("", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("nosuchcommand", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("copies", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("copies 9 /tmp", out, sizeof(out), NULL), 2);
    ck_contains(out, "0 (inherit) to 8");
    ck_assert_int_eq(run_cairn("cs drain xyz", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("health --bogus", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("health -r", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("meta", out, sizeof(out), NULL), 2);
    ck_contains(out, "usage: cairn meta status | add ADDR | remove ID");
    ck_assert_int_eq(run_cairn("meta status extra", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("meta add nohostport", out, sizeof(out), NULL), 2);
    ck_contains(out, "meta add: 'nohostport' is not an address HOST:PORT");
    ck_assert_int_eq(run_cairn("meta add 127.0.0.1:70000", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("meta remove 0", out, sizeof(out), NULL), 2);
    ck_assert_int_eq(run_cairn("meta remove 0x3", out, sizeof(out), NULL), 2);
    ck_contains(out, "'0x3' is not a member id");
    ck_assert_int_eq(run_cairn("meta status --meta 127.0.0.1", out, sizeof(out), NULL), 2);
    ck_contains(out, "bad meta service address list '127.0.0.1'");
    ck_assert_int_eq(run_cairn("help", out, sizeof(out), NULL), 0);
    ck_contains(out, "cairn fileinfo");
    ck_contains(out, "cairn meta status");
    /* a path that is not on a CairnFS mount is a failed operation, said so */
    ck_assert_int_eq(run_cairn("copies /", out, sizeof(out), NULL), 1);
    ck_contains(out, "copies: /: not on a CairnFS mount");
    ck_assert_int_eq(run_cairn("fileinfo /nonexistent-cairn-path", out, sizeof(out), NULL), 1);
    ck_contains(out, "No such file or directory");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tools");
    TCase *t = tcase_create("json");
    tcase_add_test(t, test_json_escapes_quotes_controls_and_bad_utf8);
    tcase_add_test(t, test_json_nesting_commas_and_empty_containers);
    suite_add_tcase(s, t);

    t = tcase_create("decode");
    tcase_add_test(t, test_fileinfo_decodes_two_pages_and_prints_every_copy);
    tcase_add_test(t, test_fileinfo_refuses_malformed_replies);
    tcase_add_test(t, test_health_decodes_and_prints_servers_and_counters);
    tcase_add_test(t, test_health_refuses_malformed_replies);
    tcase_add_test(t, test_meta_status_prints_members_lag_and_each_replica_from_the_leaders_view);
    tcase_add_test(t, test_meta_status_without_a_leader_shows_what_each_replica_says);
    tcase_add_test(t, test_meta_status_refuses_malformed_replies);
    suite_add_tcase(s, t);

    t = tcase_create("program");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_program_health_and_drain_against_a_fake_meta);
    tcase_add_test(t, test_program_follows_not_leader_answers_to_the_leader);
    tcase_add_test(t, test_program_no_leader_fails_in_bounded_time_saying_so);
    tcase_add_test(t, test_program_meta_status_add_remove);
    tcase_add_test(t, test_program_unreachable_meta_fails_fast_with_the_address);
    tcase_add_test(t, test_program_usage_errors_exit_2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
