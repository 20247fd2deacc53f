/* test_tools_output.c - unit tests of the cairn command (tools/): the JSON writer (escaping,
 * commas, nesting), the decoders of the FILEINFO and HEALTH replies fed hand-encoded payloads
 * (every field, paging, and the malformed replies they must refuse), their human and JSON
 * printers, and the built program itself against a fake meta service on loopback (health,
 * cs drain, an unreachable meta service answered in bounded time, usage errors). Each test
 * names the behaviour it proves. */
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

/* --- the program against a fake meta service ----------------------------------------------- */

/* A fake meta on loopback: answers HEALTH with put_health(), CS_DRAIN with 0 for server 0x2
 * and -ENOENT otherwise, anything else with -EOPNOTSUPP. One connection at a time. */
static int fake_fd = -1;
static uint16_t fake_port;

static void *fake_meta(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(fake_fd, NULL, NULL);
        if (c < 0) return NULL;
        struct wbuf in, out;
        wbuf_init(&in);
        wbuf_init(&out);
        struct wire_hdr h;
        while (wire_recv(c, &h, &in, WIRE_MAX_PAYLOAD) == 0) {
            struct wire_hdr r = {.type = h.type | WIRE_REPLY_BIT, .reqid = h.reqid};
            wbuf_reset(&out);
            if (h.type == MSG_HEALTH) {
                put_health(&out);
            } else if (h.type == MSG_CS_DRAIN) {
                struct rcur cur;
                rcur_init(&cur, in.data, in.len);
                uint64_t id = rcur_u64(&cur);
                uint8_t on = rcur_u8(&cur);
                r.status = rcur_done(&cur) ? -EBADMSG : id == 2 && on <= 1 ? 0 : -ENOENT;
            } else {
                r.status = -EOPNOTSUPP;
            }
            r.length = r.status ? 0 : (uint32_t)out.len;
            wire_send(c, &r, out.data, r.length, NULL, 0);
        }
        wbuf_free(&in);
        wbuf_free(&out);
        close(c);
    }
}

static void fake_start(void)
{
    fake_fd = net_listen("127.0.0.1:0", &fake_port);
    ck_assert_int_ge(fake_fd, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fake_meta, NULL), 0);
    pthread_detach(t);
}

/* Run build/cairn with args (a shell fragment); stdout+stderr into out. Returns the exit
 * status; *ms gets the time it took. */
static int run_cairn(const char *args, char *out, size_t len, uint64_t *ms)
{
    const char *b = getenv("BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "env -u CAIRN_META %s/cairn %s 2>&1", b && *b ? b : "build", args);
    uint64_t t0 = net_now_ms();
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (ms) *ms = net_now_ms() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_program_health_and_drain_against_a_fake_meta)
{
    fake_start();
    char args[200], out[8192];
    snprintf(args, sizeof(args), "health --meta 127.0.0.1:%u", fake_port);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "2 chunk servers");
    ck_contains(out, "rack-a");
    snprintf(args, sizeof(args), "--json health --meta=127.0.0.1:%u", fake_port);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_assert_int_eq(out[0], '{');
    ck_contains(out, "\"missing\": 1");
    /* the first address of the list is dead: the second answers */
    uint16_t dead = 0;
    int fd = net_listen("127.0.0.1:0", &dead);
    close(fd);
    snprintf(args, sizeof(args), "health --meta 127.0.0.1:%u,127.0.0.1:%u", dead, fake_port);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);

    snprintf(args, sizeof(args), "cs drain 0x2 --meta 127.0.0.1:%u", fake_port);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "chunk server 0000000000000002: draining");
    snprintf(args, sizeof(args), "cs undrain 0000000000000002 --meta 127.0.0.1:%u", fake_port);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 0);
    ck_contains(out, "no longer draining");
    snprintf(args, sizeof(args), "cs drain 3 --meta 127.0.0.1:%u", fake_port);
    ck_assert_int_eq(run_cairn(args, out, sizeof(out), NULL), 1);
    ck_contains(out, "no chunk server 0000000000000003");
    shutdown(fake_fd, SHUT_RDWR); /* wakes the accept of the fake */
    close(fake_fd);
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
    ck_assert_int_eq(run_cairn("help", out, sizeof(out), NULL), 0);
    ck_contains(out, "cairn fileinfo");
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
    suite_add_tcase(s, t);

    t = tcase_create("program");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_program_health_and_drain_against_a_fake_meta);
    tcase_add_test(t, test_program_unreachable_meta_fails_fast_with_the_address);
    tcase_add_test(t, test_program_usage_errors_exit_2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
