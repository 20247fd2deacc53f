/* test_chunk_server.c - cairn-chunk as a real process: verified write/read, chain writes over
 * three servers and how far a write got when a hop dies (chain_ok/chain_err), fallocate down a
 * chain (CHK_FALLOC: punch, reserve, bad requests refused), SETVER and exact
 * reads, durability across kill -9, corruption detection on read and by the scrubber, ENOSPC
 * on a tiny tmpfs, malformed frames, several reads in flight on one connection (in order with
 * the writes around them, a close while they run), counters and timings (MSG_CHK_STATS and
 * `cairn cs stats`), the zone option, registration with
 * cairn-meta, and
 * against a stand-in meta: membership, version events and replication orders run end to end
 * between real chunk servers (a flipped byte on a source is detected). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cksum.h"
#include "codec.h"
#include "harness.h"
#include "net.h"
#include "proto.h"
#include "rpc.h"
#include "wire.h"

static int log_has(const char *path, const char *what);

/* A cluster of n chunk servers with meta pointing at a port nobody listens on. */
static void start_no_meta(struct h_cluster *c, const char *tag, int n)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(h_mkdtemp(tag, c->dir, sizeof(c->dir)), 0);
    snprintf(c->meta_addr, sizeof(c->meta_addr), "127.0.0.1:%u", h_free_port());
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(h_cs_start(c, i), 0);
}

static struct rpc_conn *cs_conn(struct h_cluster *c, int i)
{
    char a[64];
    snprintf(a, sizeof(a), "127.0.0.1:%u", c->cs_port[i]);
    struct rpc_opts o = {.call_timeout_ms = 10000};
    struct rpc_conn *r = rpc_conn_new(a, &o);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Three chunk servers without a meta service: a connection to server 0 (the head) in *r0 and
 * the addresses of servers 1 and 2 (the rest of its chain) in chain. */
static void start_chain(struct h_cluster *c, const char *tag, struct rpc_conn **r0,
                        char chain[2][64])
{
    start_no_meta(c, tag, 3);
    *r0 = cs_conn(c, 0);
    for (int i = 0; i < 2; i++)
        snprintf(chain[i], 64, "127.0.0.1:%u", c->cs_port[i + 1]);
}

/* chain_ok/chain_err of the last chk_write or chk_truncate that succeeded */
static uint8_t last_cok;
static int32_t last_cerr;

/* A CHK_WRITE request without its data (which follows as the second piece). */
static void write_req(struct wbuf *b, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                      const void *data, uint32_t len, uint8_t flags, int nchain,
                      const char chain[][64])
{
    wbuf_put_u64(b, id);
    wbuf_put_u32(b, ver);
    wbuf_put_u32(b, prev);
    wbuf_put_u32(b, off);
    wbuf_put_u64(b, cksum_xxh3(data, len));
    wbuf_put_u8(b, flags);
    wbuf_put_u8(b, (uint8_t)nchain);
    for (int i = 0; i < nchain; i++)
        wbuf_put_str(b, chain[i], strlen(chain[i]));
    wbuf_put_u32(b, len);
}

static int chk_write(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                     const void *data, uint32_t len, uint8_t flags, int nchain,
                     const char chain[][64], uint32_t *clen)
{
    struct wbuf b;
    wbuf_init(&b);
    write_req(&b, id, ver, prev, off, data, len, flags, nchain, chain);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_WRITE, b.data, b.len, data, len, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    uint32_t l = rcur_u32(&cur);
    rcur_u64(&cur); /* allocated bytes */
    last_cok = rcur_u8(&cur);
    last_cerr = rcur_i32(&cur);
    ck_assert_int_eq(rcur_done(&cur), 0);
    ck_assert_int_ge(last_cok, 1);
    ck_assert_int_le(last_cok, nchain + 1);
    if (clen) *clen = l;
    rpc_reply_free(&rep);
    return 0;
}

/* A CHK_TRUNCATE request. */
static void truncate_req(struct wbuf *b, uint64_t id, uint32_t ver, uint32_t prev, uint32_t len,
                         int nchain, const char chain[][64])
{
    wbuf_put_u64(b, id);
    wbuf_put_u32(b, ver);
    wbuf_put_u32(b, prev);
    wbuf_put_u32(b, len);
    wbuf_put_u8(b, (uint8_t)nchain);
    for (int i = 0; i < nchain; i++)
        wbuf_put_str(b, chain[i], strlen(chain[i]));
}

static int chk_truncate(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t prev, uint32_t len,
                        int nchain, const char chain[][64])
{
    struct wbuf b;
    wbuf_init(&b);
    truncate_req(&b, id, ver, prev, len, nchain, chain);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_TRUNCATE, b.data, b.len, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    last_cok = rcur_u8(&cur);
    last_cerr = rcur_i32(&cur);
    ck_assert_int_eq(rcur_done(&cur), 0);
    rpc_reply_free(&rep);
    return 0;
}

/* CHK_FALLOC of [off, off+len) with mode down chain; *alloc and *clen (may be NULL) from the
 * reply. */
static int chk_falloc(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                      uint32_t len, uint8_t mode, int nchain, const char chain[][64],
                      uint32_t *clen, uint64_t *alloc)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, id);
    wbuf_put_u32(&b, ver);
    wbuf_put_u32(&b, prev);
    wbuf_put_u32(&b, off);
    wbuf_put_u32(&b, len);
    wbuf_put_u8(&b, mode);
    wbuf_put_u8(&b, (uint8_t)nchain);
    for (int i = 0; i < nchain; i++)
        wbuf_put_str(&b, chain[i], strlen(chain[i]));
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_FALLOC, b.data, b.len, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    uint32_t l = rcur_u32(&cur);
    uint64_t a = rcur_u64(&cur);
    last_cok = rcur_u8(&cur);
    last_cerr = rcur_i32(&cur);
    ck_assert_int_eq(rcur_done(&cur), 0);
    if (clen) *clen = l;
    if (alloc) *alloc = a;
    rpc_reply_free(&rep);
    return 0;
}

/* u64 id, u32 ver -> u32 held */
static int chk_setver(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t *held)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, id);
    wbuf_put_u32(&b, ver);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_SETVER, b.data, b.len, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    *held = rcur_u32(&cur);
    ck_assert_int_eq(rcur_done(&cur), 0);
    rpc_reply_free(&rep);
    return 0;
}

static int chk_info(struct rpc_conn *r, uint64_t id, uint32_t *ver, uint32_t *len)
{
    uint8_t p[8];
    le_put64(p, id);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_INFO, p, 8, NULL, 0, &rep);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    *ver = rcur_u32(&cur);
    *len = rcur_u32(&cur);
    rpc_reply_free(&rep);
    return 0;
}

/* A CHK_READ request: u64 id, u32 ver, u32 off, u32 len, [u8 flags] (flags < 0: none, as
 * older clients send). */
static void read_req(struct wbuf *b, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                     int flags)
{
    wbuf_put_u64(b, id);
    wbuf_put_u32(b, ver);
    wbuf_put_u32(b, off);
    wbuf_put_u32(b, len);
    if (flags >= 0) wbuf_put_u8(b, (uint8_t)flags);
}

/* Check a CHK_READ reply payload for a read of [off, off+len): every block checksum
 * verifies; copies the bytes of the range into out, their count into *got. */
static void read_check(const struct wbuf *p, uint32_t off, uint32_t len, uint8_t *out,
                       uint32_t *got)
{
    struct rcur c;
    rcur_init(&c, p->data, p->len);
    uint32_t doff = rcur_u32(&c), clen = rcur_u32(&c), nb = rcur_u32(&c);
    ck_assert_uint_le(nb, 32);
    uint64_t cks[32];
    for (uint32_t i = 0; i < nb; i++)
        cks[i] = rcur_u64(&c);
    size_t dl;
    const uint8_t *d = rcur_bytes(&c, 8u << 20, &dl);
    ck_assert_int_eq(rcur_done(&c), 0);
    ck_assert_uint_eq(doff % CKSUM_BLOCK, 0);
    ck_assert_uint_le(doff, off);
    for (uint32_t i = 0; i < nb; i++) {
        size_t s = (size_t)i * CKSUM_BLOCK;
        size_t n = dl - s < CKSUM_BLOCK ? dl - s : CKSUM_BLOCK;
        ck_assert_uint_eq(cksum_xxh3(d + s, n), cks[i]);
    }
    uint32_t end = off + len < clen ? off + len : clen;
    *got = end > off ? end - off : 0;
    if (*got) memcpy(out, d + (off - doff), *got);
}

/* Read and verify every block checksum of the reply; copies [off, off+len) into out. */
static int chk_read_fl(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                       int flags, uint8_t *out, uint32_t *got)
{
    struct wbuf b;
    wbuf_init(&b);
    read_req(&b, id, ver, off, len, flags);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_READ, b.data, b.len, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    read_check(&rep.payload, off, len, out, got);
    rpc_reply_free(&rep);
    return 0;
}

static int chk_read(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                    uint8_t *out, uint32_t *got)
{
    return chk_read_fl(r, id, ver, off, len, -1, out, got);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

START_TEST(test_write_read_verified)
{
    struct h_cluster c;
    start_no_meta(&c, "csrw", 1);
    struct rpc_conn *r = cs_conn(&c, 0);
    size_t n = 300000;
    uint8_t *a = malloc(n), *b = malloc(n);
    fill(a, n, 1);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r, 42, 1, 0, 1000, a, (uint32_t)n, 0, 0, NULL, &clen), 0);
    ck_assert_uint_eq(clen, 1000 + n);
    ck_assert_int_eq(chk_read(r, 42, 1, 1000, (uint32_t)n, b, &got), 0);
    ck_assert_uint_eq(got, n);
    ck_assert_mem_eq(a, b, n);
    /* partial overwrite inside a block, then the head still reads as zeros */
    ck_assert_int_eq(chk_write(r, 42, 1, 0, 70000, "hello", 5, 0, 0, NULL, &clen), 0);
    ck_assert_int_eq(chk_read(r, 42, 1, 69998, 9, b, &got), 0);
    ck_assert_uint_eq(got, 9);
    ck_assert_mem_eq(b + 2, "hello", 5);
    ck_assert_int_eq(chk_read(r, 42, 1, 0, 1000, b, &got), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(b[i], 0);
    /* wrong version and missing chunk */
    ck_assert_int_eq(chk_read(r, 42, 0, 0, 10, b, &got), -ESTALE);
    ck_assert_int_eq(chk_read(r, 43, 1, 0, 10, b, &got), -ENOENT);
    /* version move, then the old version is stale for writes */
    ck_assert_int_eq(chk_write(r, 42, 3, 1, 0, "x", 1, 0, 0, NULL, &clen), 0);
    ck_assert_int_eq(chk_write(r, 42, 2, 1, 0, "y", 1, 0, 0, NULL, &clen), -ESTALE);
    ck_assert_int_eq(chk_read(r, 42, 3, 0, 1, b, &got), 0);
    ck_assert_uint_eq(b[0], 'x');
    /* beyond the chunk size */
    ck_assert_int_eq(chk_write(r, 42, 3, 3, (64u << 20) - 2, "abc", 3, 0, 0, NULL, &clen), -EINVAL);
    rpc_conn_free(r);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_chain_three_copies)
{
    struct h_cluster c;
    struct rpc_conn *r0;
    char chain[2][64];
    start_chain(&c, "cschain", &r0, chain);
    size_t n = 1u << 20;
    uint8_t *a = malloc(n), *b = malloc(n);
    fill(a, n, 5);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r0, 7, 1, 0, 0, a, (uint32_t)n, CHK_WRITE_SYNC, 2, chain, &clen), 0);
    ck_assert_int_eq(chk_write(r0, 7, 1, 0, (uint32_t)n, a, 12345, 0, 2, chain, &clen), 0);
    for (int i = 0; i < 3; i++) {
        struct rpc_conn *r = cs_conn(&c, i);
        memset(b, 0, n);
        ck_assert_int_eq(chk_read(r, 7, 1, 0, (uint32_t)n, b, &got), 0);
        ck_assert_uint_eq(got, n);
        ck_assert_mem_eq(a, b, n);
        ck_assert_int_eq(chk_read(r, 7, 1, (uint32_t)n, 20000, b, &got), 0);
        ck_assert_uint_eq(got, 12345);
        ck_assert_mem_eq(a, b, 12345);
        rpc_conn_free(r);
    }
    ck_assert_uint_eq(last_cok, 3);
    ck_assert_int_eq(last_cerr, 0);
    ck_assert_int_eq(chk_truncate(r0, 7, 2, 1, 5000, 2, chain), 0);
    ck_assert_uint_eq(last_cok, 3);
    ck_assert_int_eq(last_cerr, 0);
    /* a dead tail: the others still write and say how far the data got */
    h_kill_wait(c.cs_pid[2], SIGKILL, 5000);
    c.cs_pid[2] = 0;
    ck_assert_int_eq(chk_write(r0, 8, 1, 0, 0, a, 100, 0, 2, chain, &clen), 0);
    ck_assert_uint_eq(last_cok, 2);
    ck_assert_int_lt(last_cerr, 0);
    ck_assert_int_eq(chk_truncate(r0, 8, 1, 1, 50, 2, chain), 0);
    ck_assert_uint_eq(last_cok, 2);
    ck_assert_int_lt(last_cerr, 0);
    /* the head's own failure is the reply's status */
    ck_assert_int_eq(chk_write(r0, 7, 1, 0, 0, a, 10, 0, 1, chain, &clen), -ESTALE);
    rpc_conn_free(r0);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_chain_falloc)
{
    struct h_cluster c;
    struct rpc_conn *r0;
    char chain[2][64];
    start_chain(&c, "csfalloc", &r0, chain);
    const uint32_t n = 1u << 20, ps = 100000, pe = 700000;
    uint8_t *a = malloc(n), *b = malloc(n);
    fill(a, n, 9);
    uint32_t clen, got;
    uint64_t al0, al1, al2;
    ck_assert_int_eq(chk_write(r0, 9, 1, 0, 0, a, n, 0, 2, chain, &clen), 0);
    /* a punch down the chain: every copy reads zeros there, the rest intact */
    ck_assert_int_eq(chk_falloc(r0, 9, 1, 1, 0, 1, CHK_FALLOC_RESERVE, 2, chain, NULL, &al0), 0);
    ck_assert_int_eq(chk_falloc(r0, 9, 2, 1, ps, pe - ps, CHK_FALLOC_PUNCH, 2, chain, &clen, &al1),
                     0);
    ck_assert_uint_eq(last_cok, 3);
    ck_assert_int_eq(last_cerr, 0);
    ck_assert_uint_eq(clen, n);
    ck_assert_msg(al0 - al1 >= pe - ps - 2 * CKSUM_BLOCK, "allocated %llu -> %llu",
                  (unsigned long long)al0, (unsigned long long)al1);
    memset(a + ps, 0, pe - ps);
    for (int i = 0; i < 3; i++) {
        struct rpc_conn *r = cs_conn(&c, i);
        ck_assert_int_eq(chk_read(r, 9, 2, 0, n, b, &got), 0);
        ck_assert_uint_eq(got, n);
        ck_assert_mem_eq(a, b, n);
        rpc_conn_free(r);
    }
    /* a reservation past the data: allocated, the length unchanged */
    ck_assert_int_eq(
        chk_falloc(r0, 9, 2, 2, n, 4u << 20, CHK_FALLOC_RESERVE, 2, chain, &clen, &al2), 0);
    ck_assert_uint_eq(clen, n);
    ck_assert_uint_ge(al2, al1 + (4u << 20));
    /* bad requests are refused with a clear error, by every hop */
    ck_assert_int_eq(chk_falloc(r0, 9, 2, 2, 0, 10, 9, 2, chain, NULL, NULL), -EINVAL);
    ck_assert_int_eq(chk_falloc(r0, 9, 2, 2, 0, 0, CHK_FALLOC_PUNCH, 2, chain, NULL, NULL),
                     -EINVAL);
    ck_assert_int_eq(
        chk_falloc(r0, 9, 2, 2, 0xfffffff0u, 100, CHK_FALLOC_ZERO, 0, chain, NULL, NULL), -EINVAL);
    ck_assert_int_eq(chk_falloc(r0, 9, 1, 1, 0, 10, CHK_FALLOC_PUNCH, 0, chain, NULL, NULL),
                     -ESTALE);
    /* a truncated frame closes that connection only */
    struct wbuf w;
    wbuf_init(&w);
    wbuf_put_u64(&w, 9);
    wbuf_put_u32(&w, 2);
    struct rpc_reply rep;
    ck_assert_int_ne(rpc_call(r0, MSG_CHK_FALLOC, w.data, w.len, NULL, 0, &rep), 0);
    wbuf_free(&w);
    struct rpc_conn *r = cs_conn(&c, 0);
    ck_assert_int_eq(chk_read(r, 9, 2, 0, n, b, &got), 0);
    ck_assert_mem_eq(a, b, n);
    rpc_conn_free(r);
    rpc_conn_free(r0);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_chain_middle_killed)
{
    struct h_cluster c;
    struct rpc_conn *r0;
    char chain[2][64];
    start_chain(&c, "csmid", &r0, chain);
    uint8_t a[100000], b[100000];
    fill(a, sizeof(a), 8);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r0, 11, 1, 0, 0, a, 1000, 0, 2, chain, &clen), 0);
    ck_assert_uint_eq(last_cok, 3);
    h_kill_wait(c.cs_pid[1], SIGKILL, 5000);
    c.cs_pid[1] = 0;
    /* the head writes its own copy and replies success quickly: hop 1 failed */
    uint64_t t0 = net_now_ms();
    ck_assert_int_eq(chk_write(r0, 11, 2, 1, 0, a, sizeof(a), CHK_WRITE_SYNC, 2, chain, &clen), 0);
    ck_assert_uint_lt(net_now_ms() - t0, 5000);
    ck_assert_uint_eq(last_cok, 1);
    ck_assert_int_lt(last_cerr, 0);
    ck_assert_int_eq(chk_read_fl(r0, 11, 2, 0, sizeof(a), CHK_READ_EXACT, b, &got), 0);
    ck_assert_uint_eq(got, sizeof(a));
    ck_assert_mem_eq(a, b, sizeof(a));
    /* a new chunk too (created on the head only) */
    ck_assert_int_eq(chk_write(r0, 12, 1, 0, 0, a, 10, 0, 2, chain, &clen), 0);
    ck_assert_uint_eq(last_cok, 1);
    ck_assert_int_lt(last_cerr, 0);
    /* the tail never saw version 2 */
    struct rpc_conn *r2 = cs_conn(&c, 2);
    uint32_t ver, len;
    ck_assert_int_eq(chk_info(r2, 11, &ver, &len), 0);
    ck_assert_uint_eq(ver, 1);
    rpc_conn_free(r2);
    rpc_conn_free(r0);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_setver_and_exact_read)
{
    struct h_cluster c;
    start_no_meta(&c, "cssetv", 1);
    struct rpc_conn *r = cs_conn(&c, 0);
    uint32_t clen, got, held, ver, len;
    uint8_t b[16];
    ck_assert_int_eq(chk_write(r, 21, 3, 0, 0, "abcdef", 6, 0, 0, NULL, &clen), 0);
    /* tolerant read of a newer version, exact read refused */
    ck_assert_int_eq(chk_read(r, 21, 4, 0, 6, b, &got), 0);
    ck_assert_int_eq(chk_read_fl(r, 21, 4, 0, 6, 0, b, &got), 0);
    ck_assert_int_eq(chk_read_fl(r, 21, 4, 0, 6, CHK_READ_EXACT, b, &got), -ESTALE);
    ck_assert_int_eq(chk_read_fl(r, 21, 3, 0, 6, CHK_READ_EXACT, b, &got), 0);
    ck_assert_mem_eq(b, "abcdef", 6);
    /* SETVER: move up, no-op when equal, refusals */
    ck_assert_int_eq(chk_setver(r, 21, 4, &held), 0);
    ck_assert_uint_eq(held, 4);
    ck_assert_int_eq(chk_setver(r, 21, 4, &held), 0);
    ck_assert_uint_eq(held, 4);
    ck_assert_int_eq(chk_setver(r, 21, 3, &held), -ESTALE);
    ck_assert_int_eq(chk_setver(r, 22, 3, &held), -ENOENT);
    ck_assert_int_eq(chk_info(r, 21, &ver, &len), 0);
    ck_assert_uint_eq(ver, 4);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(chk_read_fl(r, 21, 4, 0, 6, CHK_READ_EXACT, b, &got), 0);
    ck_assert_mem_eq(b, "abcdef", 6);
    /* the writer with the older lease is refused now */
    ck_assert_int_eq(chk_write(r, 21, 3, 0, 0, "x", 1, 0, 0, NULL, &clen), -ESTALE);
    /* a bad copy: SETVER says so */
    char path[600];
    snprintf(path, sizeof(path), "%s/%02x/%016x_4.chk", c.cs_dir[0], 21, 21);
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    fseek(f, 65536 + 2, SEEK_SET);
    fputc('Z', f);
    fclose(f);
    ck_assert_int_eq(chk_read(r, 21, 4, 0, 6, b, &got), -EUCLEAN);
    rpc_conn_free(r);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_zone_too_long_refused)
{
    char dir[256], prog[512], data[320], logp[320], cmd[1200];
    ck_assert_int_eq(h_mkdtemp("cszone", dir, sizeof(dir)), 0);
    h_prog("cairn-chunk", prog, sizeof(prog));
    snprintf(data, sizeof(data), "--data_dirs=%s/cs0", dir);
    snprintf(logp, sizeof(logp), "%s/out.log", dir);
    char *argv[] = {prog, "--listen=127.0.0.1:0", data,
                    "--zone=a-zone-name-much-longer-than-31-chars", NULL};
    pid_t pid = h_spawn(argv, logp);
    ck_assert_int_gt(pid, 0);
    int st = h_kill_wait(pid, 0, 5000);
    /* signal 0 only reaps: the program exits by itself with status 2 */
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    ck_assert(log_has(logp, "longer than 31"));
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(h_sh(10, "%s", cmd), 0);
}
END_TEST

START_TEST(test_kill9_keeps_synced_data)
{
    struct h_cluster c;
    start_no_meta(&c, "cskill", 1);
    struct rpc_conn *r = cs_conn(&c, 0);
    size_t n = 500000;
    uint8_t *a = malloc(n), *b = malloc(n);
    fill(a, n, 9);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r, 99, 4, 0, 0, a, (uint32_t)n, CHK_WRITE_SYNC, 0, NULL, &clen), 0);
    ck_assert_int_eq(chk_write(r, 99, 4, 0, 3, "ABC", 3, CHK_WRITE_SYNC, 0, NULL, &clen), 0);
    memcpy(a + 3, "ABC", 3);
    rpc_conn_free(r);
    h_kill_wait(c.cs_pid[0], SIGKILL, 5000);
    ck_assert_int_eq(h_cs_start(&c, 0), 0);
    r = cs_conn(&c, 0);
    ck_assert_int_eq(chk_read(r, 99, 4, 0, (uint32_t)n, b, &got), 0);
    ck_assert_uint_eq(got, n);
    ck_assert_mem_eq(a, b, n);
    rpc_conn_free(r);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

static int log_has(const char *path, const char *what)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

START_TEST(test_flipped_byte_detected)
{
    struct h_cluster c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(h_mkdtemp("csflip", c.dir, sizeof(c.dir)), 0);
    snprintf(c.meta_addr, sizeof(c.meta_addr), "127.0.0.1:%u", h_free_port());
    c.cs_port[0] = h_free_port();
    char prog[512], listen[64], meta[80], data[320], logp[320];
    h_prog("cairn-chunk", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", c.cs_port[0]);
    snprintf(meta, sizeof(meta), "--meta=%s", c.meta_addr);
    snprintf(c.cs_dir[0], sizeof(c.cs_dir[0]), "%s/cs0", c.dir);
    snprintf(data, sizeof(data), "--data_dirs=%s", c.cs_dir[0]);
    snprintf(logp, sizeof(logp), "%s/cs0.log", c.dir);
    char *argv[] = {prog, listen, meta, data, "--scrub_rate=50", "--scrub_interval=1", NULL};
    c.cs_pid[0] = h_spawn(argv, logp);
    c.ncs = 1;
    ck_assert_int_eq(h_wait_port(c.cs_port[0], 10000), 0);
    struct rpc_conn *r = cs_conn(&c, 0);
    uint8_t a[200000], b[200000];
    fill(a, sizeof(a), 3);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r, 0x1234, 1, 0, 0, a, sizeof(a), CHK_WRITE_SYNC, 0, NULL, &clen),
                     0);
    ck_assert_int_eq(chk_write(r, 0x1235, 1, 0, 0, a, sizeof(a), CHK_WRITE_SYNC, 0, NULL, &clen),
                     0);
    /* flip one byte of block 1 of chunk 0x1234 on disk */
    char path[600];
    snprintf(path, sizeof(path), "%s/34/%016x_1.chk", c.cs_dir[0], 0x1234);
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    long pos = 65536 + 65536 + 100;
    fseek(f, pos, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, pos, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    /* block 0 is fine, block 1 is refused */
    ck_assert_int_eq(chk_read(r, 0x1234, 1, 0, 1000, b, &got), 0);
    ck_assert_int_eq(chk_read(r, 0x1234, 1, 65536, 10, b, &got), -EUCLEAN);
    /* the other chunk is untouched */
    ck_assert_int_eq(chk_read(r, 0x1235, 1, 0, sizeof(a), b, &got), 0);
    ck_assert_mem_eq(a, b, sizeof(a));
    /* the scrubber finds it */
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        found = log_has(logp, "0000000000001234 v1 block 1: bad checksum");
        if (!found) usleep(100000);
    }
    ck_assert_int_eq(found, 1);
    ck_assert_int_eq(log_has(logp, "0000000000001235 v1 block"), 0);
    rpc_conn_free(r);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_enospc_clean)
{
    if (geteuid() != 0) return;
    struct h_cluster c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(h_mkdtemp("csnospc", c.dir, sizeof(c.dir)), 0);
    snprintf(c.meta_addr, sizeof(c.meta_addr), "127.0.0.1:%u", h_free_port());
    char mnt[400];
    snprintf(mnt, sizeof(mnt), "%s/cs0", c.dir);
    mkdir(mnt, 0755);
    ck_assert_int_eq(h_sh(10, "mount -t tmpfs -o size=2m tmpfs %s", mnt), 0);
    int rc = h_cs_start(&c, 0);
    ck_assert_int_eq(rc, 0);
    struct rpc_conn *r = cs_conn(&c, 0);
    size_t n = 1u << 20;
    uint8_t *a = malloc(n), *b = malloc(n);
    fill(a, n, 11);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r, 5, 1, 0, 0, a, 500000, CHK_WRITE_SYNC, 0, NULL, &clen), 0);
    /* extend the same chunk beyond the space left, then a new chunk */
    int e1 = chk_write(r, 5, 1, 1, 500000, a, (uint32_t)n, 0, 0, NULL, &clen);
    int e2 = chk_write(r, 5, 1, 1, 1500000, a, (uint32_t)n, 0, 0, NULL, &clen);
    int e3 = chk_write(r, 6, 1, 0, 0, a, (uint32_t)n, 0, 0, NULL, &clen);
    int e4 = chk_write(r, 6, 1, 0, 1u << 20, a, (uint32_t)n, 0, 0, NULL, &clen);
    ck_assert(e1 == -ENOSPC || e2 == -ENOSPC || e3 == -ENOSPC || e4 == -ENOSPC);
    ck_assert_int_eq(chk_read(r, 5, 1, 0, 500000, b, &got), 0);
    ck_assert_uint_eq(got, 500000);
    ck_assert_mem_eq(a, b, 500000);
    rpc_conn_free(r);
    h_kill_wait(c.cs_pid[0], SIGTERM, 5000);
    c.cs_pid[0] = 0;
    h_sh(10, "umount %s", mnt);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_malformed_frame_closes_one_conn)
{
    struct h_cluster c;
    start_no_meta(&c, "csbad", 1);
    struct rpc_conn *good = cs_conn(&c, 0);
    uint32_t clen, got;
    uint8_t b[16];
    ck_assert_int_eq(chk_write(good, 1, 1, 0, 0, "data", 4, 0, 0, NULL, &clen), 0);
    char a[64];
    snprintf(a, sizeof(a), "127.0.0.1:%u", c.cs_port[0]);
    /* garbage header */
    int fd = net_connect(a, 2000);
    ck_assert_int_ge(fd, 0);
    uint8_t junk[64];
    memset(junk, 0xab, sizeof(junk));
    ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    char x;
    ck_assert_int_le(read(fd, &x, 1), 0);
    close(fd);
    /* valid header, truncated payload for a read */
    fd = net_connect(a, 2000);
    struct wire_hdr h = {.type = MSG_CHK_READ, .reqid = 1, .length = 3};
    ck_assert_int_eq(wire_send(fd, &h, "abc", 3, NULL, 0), 0);
    ck_assert_int_le(read(fd, &x, 1), 0);
    close(fd);
    /* chain count over the limit */
    fd = net_connect(a, 2000);
    struct wbuf w;
    wbuf_init(&w);
    wbuf_put_u64(&w, 1);
    wbuf_put_u32(&w, 1);
    wbuf_put_u32(&w, 0);
    wbuf_put_u32(&w, 0);
    wbuf_put_u64(&w, 0);
    wbuf_put_u8(&w, 0);
    wbuf_put_u8(&w, 200);
    h.type = MSG_CHK_WRITE;
    h.length = (uint32_t)w.len;
    ck_assert_int_eq(wire_send(fd, &h, w.data, w.len, NULL, 0), 0);
    wbuf_free(&w);
    struct wbuf p;
    wbuf_init(&p);
    struct wire_hdr rh;
    int rc = wire_recv(fd, &rh, &p, 1 << 20);
    ck_assert(rc != 0 || rh.status != 0);
    wbuf_free(&p);
    close(fd);
    /* the other connection still works */
    ck_assert_int_eq(chk_read(good, 1, 1, 0, 4, b, &got), 0);
    ck_assert_mem_eq(b, "data", 4);
    ck_assert(h_alive(c.cs_pid[0]));
    rpc_conn_free(good);
    h_cluster_stop(&c);
}
END_TEST

/* Submit a CHK_READ of [off, off+len) of chunk id v1 on r without waiting. */
static struct rpc_call *read_submit(struct rpc_conn *r, uint64_t id, uint32_t off, uint32_t len)
{
    struct wbuf b;
    wbuf_init(&b);
    read_req(&b, id, 1, off, len, 0);
    struct rpc_call *call = NULL;
    ck_assert_int_eq(rpc_submit(r, MSG_CHK_READ, b.data, b.len, NULL, 0, 0, &call), 0);
    wbuf_free(&b);
    return call;
}

/* Wait for a read submitted with read_submit and check it returned want (wlen bytes). */
static void read_wait_eq(struct rpc_call *call, uint32_t off, uint32_t len, const uint8_t *want,
                         uint32_t wlen, uint8_t *buf)
{
    struct rpc_reply rep;
    uint32_t got;
    ck_assert_int_eq(rpc_wait(call, 0, &rep), 0);
    ck_assert_int_eq(rep.status, 0);
    read_check(&rep.payload, off, len, buf, &got);
    ck_assert_uint_eq(got, wlen);
    ck_assert_mem_eq(buf, want, wlen);
    rpc_reply_free(&rep);
}

/* Submit a CHK_WRITE (no chain) on r without waiting. */
static struct rpc_call *write_submit(struct rpc_conn *r, uint64_t id, uint32_t prev, uint32_t off,
                                     const uint8_t *data, uint32_t len)
{
    struct wbuf b;
    wbuf_init(&b);
    write_req(&b, id, 1, prev, off, data, len, 0, 0, NULL);
    struct rpc_call *call = NULL;
    ck_assert_int_eq(rpc_submit(r, MSG_CHK_WRITE, b.data, b.len, data, len, 0, &call), 0);
    wbuf_free(&b);
    return call;
}

static void wait_ok(struct rpc_call *call)
{
    struct rpc_reply rep;
    ck_assert_int_eq(rpc_wait(call, 0, &rep), 0);
    ck_assert_int_eq(rep.status, 0);
    rpc_reply_free(&rep);
}

START_TEST(test_pipelined_reads_one_connection)
{
    struct h_cluster c;
    start_no_meta(&c, "cspipe", 1);
    struct rpc_conn *r = cs_conn(&c, 0);
    const uint32_t mib = 1u << 20, n = 3 * mib + 12345;
    uint8_t *a = malloc(n), *b = malloc(mib);
    fill(a, n, 13);
    uint32_t clen;
    for (uint32_t off = 0; off < n; off += mib)
        ck_assert_int_eq(chk_write(r, 0x900, 1, 0, off, a + off, n - off < mib ? n - off : mib, 0,
                                   0, NULL, &clen),
                         0);
    /* many reads in flight on one connection, large and small, across block borders: every
     * reply is right whatever order they come back in */
    enum { NP = 24 };
    struct rpc_call *calls[NP];
    uint32_t offs[NP], lens[NP];
    for (int i = 0; i < NP; i++) {
        offs[i] = (uint32_t)(((uint64_t)i * 397 * 1024 + (uint64_t)i * 13) % (n - 1));
        lens[i] = i % 3 == 0 ? mib : 1 + (uint32_t)(i * 7919) % 200000;
        calls[i] = read_submit(r, 0x900, offs[i], lens[i]);
    }
    for (int i = 0; i < NP; i++) {
        uint32_t want = n - offs[i] < lens[i] ? n - offs[i] : lens[i];
        read_wait_eq(calls[i], offs[i], lens[i], a + offs[i], want, b);
    }
    /* a read sent right behind a write on the same connection sees the write */
    uint8_t piece[5000];
    for (int k = 0; k < 20; k++) {
        uint32_t off = (uint32_t)(k * 100003) % (n - sizeof(piece));
        fill(piece, sizeof(piece), 100 + k);
        memcpy(a + off, piece, sizeof(piece));
        struct rpc_call *w = write_submit(r, 0x900, 1, off, piece, sizeof(piece));
        struct rpc_call *rd = read_submit(r, 0x900, off, sizeof(piece));
        wait_ok(w);
        read_wait_eq(rd, off, sizeof(piece), piece, sizeof(piece), b);
    }
    /* and a change never overtakes the reads sent before it */
    struct rpc_call *before[4], *after;
    for (int i = 0; i < 4; i++)
        before[i] = read_submit(r, 0x900, (uint32_t)i * mib / 2, mib);
    struct wbuf t;
    wbuf_init(&t);
    truncate_req(&t, 0x900, 1, 1, 1000, 0, NULL);
    struct rpc_call *tr = NULL;
    ck_assert_int_eq(rpc_submit(r, MSG_CHK_TRUNCATE, t.data, t.len, NULL, 0, 0, &tr), 0);
    wbuf_free(&t);
    after = read_submit(r, 0x900, 0, mib);
    for (int i = 0; i < 4; i++)
        read_wait_eq(before[i], (uint32_t)i * mib / 2, mib, a + (uint32_t)i * mib / 2, mib, b);
    wait_ok(tr);
    read_wait_eq(after, 0, mib, a, 1000, b);
    /* connections closed with reads in flight and queued (raw frames, no reply read) */
    ck_assert_int_eq(chk_write(r, 0x901, 1, 0, 0, a, mib, 0, 0, NULL, &clen), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", c.cs_port[0]);
    for (int round = 0; round < 8; round++) {
        int fd = net_connect(addr, 2000);
        ck_assert_int_ge(fd, 0);
        for (int i = 0; i < 40; i++) {
            struct wbuf q;
            wbuf_init(&q);
            read_req(&q, 0x901, 1, (uint32_t)(i % 4) * 1000, mib, 0);
            struct wire_hdr h = {
                .type = MSG_CHK_READ, .reqid = (uint64_t)i + 1, .length = (uint32_t)q.len};
            int rc = wire_send(fd, &h, q.data, q.len, NULL, 0);
            wbuf_free(&q);
            if (rc) break; /* the server stopped reading: its bound of reads in flight */
            if (round % 2 && i == 20) shutdown(fd, SHUT_RD);
        }
        close(fd);
    }
    /* the server is alive and serves the first connection as before */
    ck_assert(h_alive(c.cs_pid[0]));
    uint32_t got;
    ck_assert_int_eq(chk_read(r, 0x901, 1, 0, mib, b, &got), 0);
    ck_assert_uint_eq(got, mib);
    ck_assert_mem_eq(b, a, mib);
    rpc_conn_free(r);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

/* MSG_CHK_STATS of the server behind r into text (size len): checks every line is
 * "name value" with a name of [a-z0-9_] and a decimal value. */
static void stats_fetch(struct rpc_conn *r, char *text, size_t len)
{
    struct rpc_reply rep;
    ck_assert_int_eq(rpc_call(r, MSG_CHK_STATS, NULL, 0, NULL, 0, &rep), 0);
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    ck_assert_int_gt(rcur_str(&c, text, len - 1), 0);
    ck_assert_int_eq(rcur_done(&c), 0);
    rpc_reply_free(&rep);
    for (const char *p = text; *p;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        ck_assert_msg(n > 0 && p[n] == ' ', "bad stats line: %.40s", p);
        p += n + 1;
        n = strspn(p, "0123456789");
        ck_assert_msg(n > 0 && p[n] == '\n', "bad stats value: %.40s", p);
        p += n + 1;
    }
}

/* The value of counter name in text (it must be there). */
static uint64_t stats_val(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtoull(p + n + 1, NULL, 10);
    ck_abort_msg("no counter %s", name);
    return 0;
}

START_TEST(test_stats_count_reads)
{
    struct h_cluster c;
    start_no_meta(&c, "csstats", 1);
    struct rpc_conn *r = cs_conn(&c, 0);
    uint8_t *a = malloc(300000), *b = malloc(300000);
    fill(a, 300000, 17);
    uint32_t clen, got;
    ck_assert_int_eq(chk_write(r, 0xa00, 1, 0, 0, a, 300000, CHK_WRITE_SYNC, 0, NULL, &clen), 0);
    static char t0[65536], t1[65536];
    stats_fetch(r, t0, sizeof(t0));
    ck_assert_uint_eq(stats_val(t0, "write_requests"), 1);
    ck_assert_uint_ge(stats_val(t0, "write_bytes"), 300000);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(chk_read(r, 0xa00, 1, (uint32_t)i * 20000, 100000, b, &got), 0);
        ck_assert_mem_eq(b, a + i * 20000, got);
    }
    ck_assert_int_eq(chk_read(r, 0xa01, 1, 0, 10, b, &got), -ENOENT);
    stats_fetch(r, t1, sizeof(t1));
    ck_assert_uint_eq(stats_val(t1, "read_requests") - stats_val(t0, "read_requests"), 11);
    ck_assert_uint_eq(stats_val(t1, "read_errors") - stats_val(t0, "read_errors"), 1);
    ck_assert_uint_ge(stats_val(t1, "read_bytes") - stats_val(t0, "read_bytes"), 10 * 100000);
    ck_assert_uint_gt(stats_val(t1, "read_us"), 0);
    ck_assert_uint_le(stats_val(t1, "read_disk_us") + stats_val(t1, "read_checksum_us"),
                      stats_val(t1, "read_us"));
    ck_assert_uint_ge(stats_val(t1, "open_cache_hits") - stats_val(t0, "open_cache_hits"), 10);
    ck_assert_uint_ge(stats_val(t1, "reads_in_flight_max"), 1);
    ck_assert_uint_eq(stats_val(t1, "reads_in_flight"), 0);
    ck_assert_uint_eq(stats_val(t1, "stats_requests"), 1); /* counted once answered */
    ck_assert_uint_ge(stats_val(t1, "connections"), 1);
    /* a request with a payload is malformed: that connection only is closed */
    char addr[64], prog[512], out[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", c.cs_port[0]);
    int fd = net_connect(addr, 2000);
    ck_assert_int_ge(fd, 0);
    struct wire_hdr h = {.type = MSG_CHK_STATS, .reqid = 1, .length = 1};
    ck_assert_int_eq(wire_send(fd, &h, "x", 1, NULL, 0), 0);
    char x;
    ck_assert_int_le(read(fd, &x, 1), 0);
    close(fd);
    /* the cairn command prints them */
    h_prog("cairn", prog, sizeof(prog));
    ck_assert_int_eq(h_run(10, out, sizeof(out),
                           "'%s' cs stats %s | grep -q '^read_requests  *11$'", prog, addr),
                     0);
    ck_assert_int_eq(h_run(10, out, sizeof(out),
                           "'%s' cs stats %s --json | grep -q '\"read_disk_us\": [0-9]'", prog,
                           addr),
                     0);
    rpc_conn_free(r);
    free(a);
    free(b);
    h_cluster_stop(&c);
}
END_TEST

START_TEST(test_register_with_meta)
{
    struct h_cluster c;
    ck_assert_int_eq(h_cluster_start(&c, "csreg", 3), 0);
    char logp[400];
    for (int i = 0; i < 3; i++) {
        snprintf(logp, sizeof(logp), "%s/cs%d.log", c.dir, i);
        int ok = 0;
        for (int k = 0; k < 100 && !ok; k++) {
            ok = log_has(logp, "registered with meta");
            if (!ok) usleep(100000);
        }
        ck_assert_int_eq(ok, 1);
    }
    h_cluster_stop(&c);
}
END_TEST

/* A stand-in for meta. Version events and replication results are answered and recorded
 * whenever they come; every wait is bounded (SO_RCVTIMEO). */
static struct {
    uint64_t id;
    uint32_t ver;
} fk_ev[256];
static int fk_nev;
static struct {
    uint64_t id;
    uint32_t ver;
    int32_t status;
    uint64_t bytes;
} fk_done[16];
static int fk_ndone;

static void fake_reply(int fd, const struct wire_hdr *req, int status, const struct wbuf *b)
{
    struct wire_hdr h = {.type = req->type | WIRE_REPLY_BIT,
                         .reqid = req->reqid,
                         .status = status,
                         .length = b ? (uint32_t)b->len : 0};
    ck_assert_int_eq(wire_send(fd, &h, b ? b->data : NULL, b ? b->len : 0, NULL, 0), 0);
}

/* Receive one request; an event or a replication result is recorded and answered (returns
 * 1), anything else is left to the caller (returns 0). */
static int fake_one(int fd, struct wire_hdr *h, struct wbuf *p)
{
    {
        ck_assert_int_eq(wire_recv(fd, h, p, 1 << 20), 0);
        struct rcur r;
        rcur_init(&r, p->data, p->len);
        if (h->type == MSG_CS_CHUNK_EVENT) {
            rcur_u64(&r);
            uint64_t id = rcur_u64(&r);
            uint32_t ver = rcur_u32(&r), flags = rcur_u32(&r);
            ck_assert_int_eq(rcur_done(&r), 0);
            ck_assert_uint_eq(flags, 1);
            if (fk_nev < 256) {
                fk_ev[fk_nev].id = id;
                fk_ev[fk_nev++].ver = ver;
            }
            fake_reply(fd, h, 0, NULL);
        } else if (h->type == MSG_CS_REPLICATED) {
            rcur_u64(&r);
            ck_assert_int_lt(fk_ndone, 16);
            fk_done[fk_ndone].id = rcur_u64(&r);
            fk_done[fk_ndone].ver = rcur_u32(&r);
            fk_done[fk_ndone].status = rcur_i32(&r);
            fk_done[fk_ndone++].bytes = rcur_u64(&r);
            ck_assert_int_eq(rcur_done(&r), 0);
            fake_reply(fd, h, 0, NULL);
        } else {
            return 0;
        }
    }
    return 1;
}

/* Receive requests until one that is not an event or a replication result. */
static void fake_recv_any(int fd, struct wire_hdr *h, struct wbuf *p)
{
    for (int i = 0; i < 10000; i++)
        if (!fake_one(fd, h, p)) return;
    ck_abort_msg("too many frames");
}

/* Receive requests until one of type comes (heartbeats meanwhile get an empty reply). */
static void fake_recv(int fd, uint16_t type, struct wire_hdr *h, struct wbuf *p)
{
    for (int i = 0; i < 100; i++) {
        fake_recv_any(fd, h, p);
        if (h->type == type) return;
        ck_assert_uint_eq(h->type, MSG_CS_HEARTBEAT);
        struct wbuf out;
        wbuf_init(&out);
        wbuf_put_u32(&out, 0);
        fake_reply(fd, h, 0, &out);
        wbuf_free(&out);
    }
    ck_abort_msg("expected request never came");
}

static int fake_has_event(uint64_t id, uint32_t ver)
{
    for (int i = 0; i < fk_nev; i++)
        if (fk_ev[i].id == id && fk_ev[i].ver == ver) return 1;
    return 0;
}

/* Accept the chunk server's connection to the stand-in meta and take it through REGISTER
 * (checking the zone it sends) and REPORT. Returns the fd; *sid gets the server id. */
static int fake_meta_accept(int lfd, const char *zone, uint64_t *sid)
{
    struct timeval tv = {.tv_sec = 15};
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct wire_hdr h;
    struct wbuf p, out;
    wbuf_init(&p);
    wbuf_init(&out);
    fake_recv(fd, MSG_CS_REGISTER, &h, &p);
    struct rcur r;
    rcur_init(&r, p.data, p.len);
    *sid = rcur_u64(&r);
    char addr[64], z[64];
    ck_assert_int_gt(rcur_str(&r, addr, 63), 0);
    rcur_u64(&r);
    rcur_u64(&r);
    ck_assert_int_ge(rcur_str(&r, z, CAIRN_ZONE_MAX), 0);
    ck_assert_int_eq(rcur_done(&r), 0);
    ck_assert_str_eq(z, zone);
    wbuf_put_u64(&out, 64u << 20);
    fake_reply(fd, &h, 0, &out);
    fake_recv(fd, MSG_CS_REPORT, &h, &p);
    wbuf_reset(&out);
    wbuf_put_u32(&out, 0);
    fake_reply(fd, &h, 0, &out);
    wbuf_free(&p);
    wbuf_free(&out);
    return fd;
}

/* Start chunk server i with its meta at meta_addr and extra arguments (NULL-terminated). */
static void cs_start_args(struct h_cluster *c, int i, const char *extra1, const char *extra2)
{
    if (!c->cs_port[i]) c->cs_port[i] = h_free_port();
    char prog[512], listen[64], meta[80], data[320], logp[320];
    h_prog("cairn-chunk", prog, sizeof(prog));
    snprintf(listen, sizeof(listen), "--listen=127.0.0.1:%u", c->cs_port[i]);
    snprintf(meta, sizeof(meta), "--meta=%s", c->meta_addr);
    char base[sizeof(c->dir)];
    memcpy(base, c->dir, sizeof(base));
    snprintf(c->cs_dir[i], sizeof(c->cs_dir[i]), "%s/cs%d", base, i);
    snprintf(data, sizeof(data), "--data_dirs=%s", c->cs_dir[i]);
    snprintf(logp, sizeof(logp), "%s/cs%d.log", base, i);
    char *argv[] = {prog,           listen,         meta, data, "--heartbeat_ms=500",
                    (char *)extra1, (char *)extra2, NULL};
    c->cs_pid[i] = h_spawn(argv, logp);
    ck_assert_int_gt(c->cs_pid[i], 0);
    if (i >= c->ncs) c->ncs = i + 1;
    ck_assert_int_eq(h_wait_port(c->cs_port[i], 10000), 0);
}

START_TEST(test_membership_with_fake_meta)
{
    struct h_cluster c;
    memset(&c, 0, sizeof(c));
    fk_nev = fk_ndone = 0;
    ck_assert_int_eq(h_mkdtemp("csmemb", c.dir, sizeof(c.dir)), 0);
    uint16_t mport;
    int lfd = net_listen("127.0.0.1:0", &mport);
    ck_assert_int_ge(lfd, 0);
    snprintf(c.meta_addr, sizeof(c.meta_addr), "127.0.0.1:%u", mport);
    cs_start_args(&c, 0, "--zone=rack-7", NULL);
    uint64_t sid;
    int fd = fake_meta_accept(lfd, "rack-7", &sid);
    ck_assert_uint_ne(sid, 0);
    struct wire_hdr h;
    struct wbuf p, out;
    wbuf_init(&p);
    wbuf_init(&out);
    /* a chunk appears: its event comes at once, not with the next heartbeat */
    struct rpc_conn *cl = cs_conn(&c, 0);
    uint32_t clen, got;
    uint8_t b[8];
    ck_assert_int_eq(chk_write(cl, 77, 1, 0, 0, "gone", 4, 0, 0, NULL, &clen), 0);
    uint64_t t0 = net_now_ms();
    int isev = fake_one(fd, &h, &p);
    if (!isev) { /* a heartbeat was on its way */
        ck_assert_uint_eq(h.type, MSG_CS_HEARTBEAT);
        wbuf_reset(&out);
        wbuf_put_u32(&out, 0);
        fake_reply(fd, &h, 0, &out);
        ck_assert_int_eq(fake_one(fd, &h, &p), 1);
    }
    ck_assert(fake_has_event(77, 1));
    ck_assert_uint_lt(net_now_ms() - t0, 200);
    fake_recv_any(fd, &h, &p);
    /* a version move is an event too, writes under the same lease are not */
    ck_assert_int_eq(chk_write(cl, 77, 2, 1, 0, "GONE", 4, 0, 0, NULL, &clen), 0);
    ck_assert_int_eq(chk_write(cl, 77, 2, 1, 1, "x", 1, 0, 0, NULL, &clen), 0);
    if (h.type != MSG_CS_HEARTBEAT) fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    /* meta tells the server to delete it */
    wbuf_reset(&out);
    wbuf_put_u32(&out, 1);
    wbuf_put_u64(&out, 77);
    wbuf_put_u32(&out, 2);
    fake_reply(fd, &h, 0, &out);
    /* meta forgot us: the server registers again and reports what it holds */
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    ck_assert(fake_has_event(77, 2));
    ck_assert_int_eq(fk_nev, 2);
    ck_assert_int_eq(chk_read(cl, 77, 1, 0, 4, b, &got), -ENOENT);
    fake_reply(fd, &h, -ENOENT, NULL);
    fake_recv(fd, MSG_CS_REGISTER, &h, &p);
    struct rcur r;
    rcur_init(&r, p.data, p.len);
    ck_assert_uint_eq(rcur_u64(&r), sid);
    wbuf_reset(&out);
    wbuf_put_u64(&out, 64u << 20);
    fake_reply(fd, &h, 0, &out);
    fake_recv(fd, MSG_CS_REPORT, &h, &p);
    /* the server id is stable across restarts */
    char idpath[400];
    snprintf(idpath, sizeof(idpath), "%s/server_id", c.cs_dir[0]);
    FILE *f = fopen(idpath, "r");
    ck_assert_ptr_nonnull(f);
    uint64_t fid = 0;
    ck_assert_int_eq(fscanf(f, "%" SCNx64, &fid), 1);
    fclose(f);
    ck_assert_uint_eq(fid, sid);
    rpc_conn_free(cl);
    wbuf_free(&p);
    wbuf_free(&out);
    close(fd);
    close(lfd);
    h_cluster_stop(&c);
}
END_TEST

/* Reply to the next heartbeat with replication orders: n x {id, ver, the addresses}. */
static void fake_orders(int fd, int n, const uint64_t *id, const uint32_t *ver, int nsrc,
                        char src[][64])
{
    struct wire_hdr h;
    struct wbuf p, out;
    wbuf_init(&p);
    wbuf_init(&out);
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    wbuf_put_u32(&out, 0); /* no deletions */
    wbuf_put_u32(&out, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        wbuf_put_u64(&out, id[i]);
        wbuf_put_u32(&out, ver[i]);
        wbuf_put_u8(&out, (uint8_t)nsrc);
        for (int k = 0; k < nsrc; k++)
            wbuf_put_str(&out, src[k], strlen(src[k]));
    }
    fake_reply(fd, &h, 0, &out);
    wbuf_free(&p);
    wbuf_free(&out);
}

/* Serve the stand-in meta until a replication result for id came (bounded). */
static int fake_wait_done(int fd, uint64_t id)
{
    for (int k = 0; k < 200; k++) {
        for (int i = 0; i < fk_ndone; i++)
            if (fk_done[i].id == id) return i;
        struct wire_hdr h;
        struct wbuf p, out;
        wbuf_init(&p);
        wbuf_init(&out);
        fake_recv_any(fd, &h, &p);
        if (h.type == MSG_CS_HEARTBEAT) {
            wbuf_put_u32(&out, 0);
            fake_reply(fd, &h, 0, &out);
        } else {
            ck_assert_uint_eq(h.type, MSG_CS_REPORT);
            wbuf_put_u32(&out, 0);
            fake_reply(fd, &h, 0, &out);
        }
        wbuf_free(&p);
        wbuf_free(&out);
    }
    ck_abort_msg("no replication result");
    return -1;
}

/* Flip one byte of the data of chunk id (version ver) in a chunk server's folder. */
static void flip_on_disk(const char *csdir, uint64_t id, uint32_t ver, long data_off)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%02x/%016" PRIx64 "_%u.chk", csdir, (unsigned)(id & 0xff), id,
             ver);
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    fseek(f, 65536 + data_off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 65536 + data_off, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

START_TEST(test_replication_orders)
{
    /* cs1, cs2: sources (meta unreachable); cs0: the destination, with the stand-in meta */
    struct h_cluster c;
    memset(&c, 0, sizeof(c));
    fk_nev = fk_ndone = 0;
    ck_assert_int_eq(h_mkdtemp("csrepl", c.dir, sizeof(c.dir)), 0);
    snprintf(c.meta_addr, sizeof(c.meta_addr), "127.0.0.1:%u", h_free_port());
    ck_assert_int_eq(h_cs_start(&c, 1), 0);
    ck_assert_int_eq(h_cs_start(&c, 2), 0);
    uint16_t mport;
    int lfd = net_listen("127.0.0.1:0", &mport);
    ck_assert_int_ge(lfd, 0);
    snprintf(c.meta_addr, sizeof(c.meta_addr), "127.0.0.1:%u", mport);
    cs_start_args(&c, 0, NULL, NULL);
    uint64_t sid;
    int fd = fake_meta_accept(lfd, "", &sid);
    char src[2][64];
    snprintf(src[0], 64, "127.0.0.1:%u", c.cs_port[1]);
    snprintf(src[1], 64, "127.0.0.1:%u", c.cs_port[2]);
    /* chunk 0x500: 3.5 MiB + a tail, with a hole, on both sources at v3 */
    uint32_t n = (7u << 19) + 4321, clen, got;
    uint8_t *a = calloc(1, n), *b = malloc(n);
    fill(a, 1u << 20, 21);
    fill(a + (2u << 20), n - (2u << 20), 22);
    struct rpc_conn *r1 = cs_conn(&c, 1), *r2 = cs_conn(&c, 2), *r0 = cs_conn(&c, 0);
    for (uint32_t off = 0; off < n; off += 1u << 20) {
        uint32_t l = n - off < (1u << 20) ? n - off : (1u << 20);
        ck_assert_int_eq(chk_write(r1, 0x500, 3, 0, off, a + off, l, 0, 1, src + 1, &clen), 0);
        ck_assert_uint_eq(last_cok, 2);
    }
    /* the first source's copy rots: the copy must come from the second */
    flip_on_disk(c.cs_dir[1], 0x500, 3, (3u << 20) + 77);
    /* the destination holds an old copy of its own, to be replaced */
    ck_assert_int_eq(chk_write(r0, 0x500, 1, 0, 0, "old", 3, 0, 0, NULL, &clen), 0);
    uint64_t ids[] = {0x500};
    uint32_t vers[] = {4};
    fake_orders(fd, 1, ids, vers, 2, src);
    int k = fake_wait_done(fd, 0x500);
    ck_assert_int_eq(fk_done[k].status, 0);
    ck_assert_uint_eq(fk_done[k].bytes, n);
    ck_assert_uint_eq(fk_done[k].ver, 4);
    ck_assert(fake_has_event(0x500, 4)); /* the gained event came before the result */
    /* the copy is whole and exact at v4; the old copy is gone */
    for (uint32_t off = 0; off < n; off += 1u << 20) {
        ck_assert_int_eq(chk_read_fl(r0, 0x500, 4, off, 1u << 20, CHK_READ_EXACT, b + off, &got),
                         0);
    }
    ck_assert_mem_eq(a, b, n);
    uint32_t ver, len;
    ck_assert_int_eq(chk_info(r0, 0x500, &ver, &len), 0);
    ck_assert_uint_eq(ver, 4);
    ck_assert_uint_eq(len, n);
    /* both sources were moved to v4 (SETVER) */
    ck_assert_int_eq(chk_info(r2, 0x500, &ver, &len), 0);
    ck_assert_uint_eq(ver, 4);
    ck_assert_int_eq(chk_info(r1, 0x500, &ver, &len), 0);
    ck_assert_uint_eq(ver, 4);
    /* a chunk only the rotten source holds: the copy fails, nothing is installed */
    ck_assert_int_eq(chk_write(r1, 0x600, 1, 0, 0, a, 200000, 0, 0, NULL, &clen), 0);
    flip_on_disk(c.cs_dir[1], 0x600, 1, 70000);
    ids[0] = 0x600;
    vers[0] = 2;
    fake_orders(fd, 1, ids, vers, 1, src);
    k = fake_wait_done(fd, 0x600);
    ck_assert_int_lt(fk_done[k].status, 0);
    ck_assert_int_eq(chk_info(r0, 0x600, &ver, &len), -ENOENT);
    /* an unreachable source and a source without the chunk, then a good one */
    ck_assert_int_eq(chk_write(r2, 0x700, 5, 0, 0, a, 70000, 0, 0, NULL, &clen), 0);
    char src3[3][64];
    snprintf(src3[0], 64, "127.0.0.1:%u", h_free_port());
    snprintf(src3[1], 64, "%s", src[0]);
    snprintf(src3[2], 64, "%s", src[1]);
    ids[0] = 0x700;
    vers[0] = 5;
    fake_orders(fd, 1, ids, vers, 3, src3);
    k = fake_wait_done(fd, 0x700);
    ck_assert_int_eq(fk_done[k].status, 0);
    ck_assert_uint_eq(fk_done[k].bytes, 70000);
    ck_assert_int_eq(chk_read_fl(r0, 0x700, 5, 0, 70000, CHK_READ_EXACT, b, &got), 0);
    ck_assert_mem_eq(a, b, 70000);
    /* no temporary file is left behind */
    char tmpd[400];
    snprintf(tmpd, sizeof(tmpd), "%s/tmp", c.cs_dir[0]);
    ck_assert_int_eq(h_sh(10, "test -z \"$(ls -A %s 2>/dev/null)\"", tmpd), 0);
    /* malformed orders do not hurt the server */
    struct wire_hdr h;
    struct wbuf p, out;
    wbuf_init(&p);
    wbuf_init(&out);
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    wbuf_put_u32(&out, 0);
    wbuf_put_u32(&out, 1000);
    wbuf_put_u64(&out, 0x800);
    wbuf_put_u32(&out, 1);
    wbuf_put_u8(&out, 200);
    wbuf_put_u16(&out, 60000);
    fake_reply(fd, &h, 0, &out);
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    fake_reply(fd, &h, 0, NULL); /* an empty reply too */
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    ck_assert(h_alive(c.cs_pid[0]));
    wbuf_free(&p);
    wbuf_free(&out);
    rpc_conn_free(r0);
    rpc_conn_free(r1);
    rpc_conn_free(r2);
    free(a);
    free(b);
    close(fd);
    close(lfd);
    h_cluster_stop(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk_server");
    TCase *t = tcase_create("server");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_write_read_verified);
    tcase_add_test(t, test_chain_three_copies);
    tcase_add_test(t, test_chain_middle_killed);
    tcase_add_test(t, test_chain_falloc);
    tcase_add_test(t, test_setver_and_exact_read);
    tcase_add_test(t, test_zone_too_long_refused);
    tcase_add_test(t, test_kill9_keeps_synced_data);
    tcase_add_test(t, test_flipped_byte_detected);
    tcase_add_test(t, test_enospc_clean);
    tcase_add_test(t, test_malformed_frame_closes_one_conn);
    tcase_add_test(t, test_pipelined_reads_one_connection);
    tcase_add_test(t, test_stats_count_reads);
    tcase_add_test(t, test_register_with_meta);
    tcase_add_test(t, test_membership_with_fake_meta);
    tcase_add_test(t, test_replication_orders);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
