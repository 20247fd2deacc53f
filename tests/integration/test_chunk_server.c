/* test_chunk_server.c - cairn-chunk as a real process: verified write/read, chain writes over
 * three servers, durability across kill -9, corruption detection on read and by the scrubber,
 * ENOSPC on a tiny tmpfs, malformed frames, and registration with cairn-meta. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cksum.h"
#include "codec.h"
#include "harness.h"
#include "net.h"
#include "proto.h"
#include "rpc.h"
#include "wire.h"

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

static int chk_write(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t prev, uint32_t off,
                     const void *data, uint32_t len, uint8_t flags, int nchain,
                     const char chain[][64], uint32_t *clen)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, id);
    wbuf_put_u32(&b, ver);
    wbuf_put_u32(&b, prev);
    wbuf_put_u32(&b, off);
    wbuf_put_u64(&b, cksum_xxh3(data, len));
    wbuf_put_u8(&b, flags);
    wbuf_put_u8(&b, (uint8_t)nchain);
    for (int i = 0; i < nchain; i++)
        wbuf_put_str(&b, chain[i], strlen(chain[i]));
    wbuf_put_u32(&b, len);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_WRITE, b.data, b.len, data, len, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    uint32_t l = rcur_u32(&cur);
    if (clen) *clen = l;
    rpc_reply_free(&rep);
    return 0;
}

/* Read and verify every block checksum of the reply; copies [off, off+len) into out. */
static int chk_read(struct rpc_conn *r, uint64_t id, uint32_t ver, uint32_t off, uint32_t len,
                    uint8_t *out, uint32_t *got)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, id);
    wbuf_put_u32(&b, ver);
    wbuf_put_u32(&b, off);
    wbuf_put_u32(&b, len);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_CHK_READ, b.data, b.len, NULL, 0, &rep);
    wbuf_free(&b);
    if (rc) return rc;
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
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
    rpc_reply_free(&rep);
    return 0;
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
    start_no_meta(&c, "cschain", 3);
    struct rpc_conn *r0 = cs_conn(&c, 0);
    char chain[2][64];
    snprintf(chain[0], 64, "127.0.0.1:%u", c.cs_port[1]);
    snprintf(chain[1], 64, "127.0.0.1:%u", c.cs_port[2]);
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
    /* a dead downstream makes the write fail */
    h_kill_wait(c.cs_pid[2], SIGKILL, 5000);
    c.cs_pid[2] = 0;
    ck_assert_int_ne(chk_write(r0, 8, 1, 0, 0, a, 100, 0, 2, chain, &clen), 0);
    rpc_conn_free(r0);
    free(a);
    free(b);
    h_cluster_stop(&c);
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

/* A stand-in for meta: receive one request of the expected type on fd. */
static void fake_recv(int fd, uint16_t type, struct wire_hdr *h, struct wbuf *p)
{
    ck_assert_int_eq(wire_recv(fd, h, p, 1 << 20), 0);
    ck_assert_uint_eq(h->type, type);
}

static void fake_reply(int fd, const struct wire_hdr *req, int status, const struct wbuf *b)
{
    struct wire_hdr h = {.type = req->type | WIRE_REPLY_BIT,
                         .reqid = req->reqid,
                         .status = status,
                         .length = b ? (uint32_t)b->len : 0};
    ck_assert_int_eq(wire_send(fd, &h, b ? b->data : NULL, b ? b->len : 0, NULL, 0), 0);
}

START_TEST(test_membership_with_fake_meta)
{
    struct h_cluster c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(h_mkdtemp("csmemb", c.dir, sizeof(c.dir)), 0);
    uint16_t mport;
    int lfd = net_listen("127.0.0.1:0", &mport);
    ck_assert_int_ge(lfd, 0);
    snprintf(c.meta_addr, sizeof(c.meta_addr), "127.0.0.1:%u", mport);
    ck_assert_int_eq(h_cs_start(&c, 0), 0);
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    struct wire_hdr h;
    struct wbuf p, out;
    wbuf_init(&p);
    wbuf_init(&out);
    fake_recv(fd, MSG_CS_REGISTER, &h, &p);
    struct rcur r;
    rcur_init(&r, p.data, p.len);
    uint64_t sid = rcur_u64(&r);
    char addr[64], want[64];
    ck_assert_int_gt(rcur_str(&r, addr, 63), 0);
    snprintf(want, sizeof(want), "127.0.0.1:%u", c.cs_port[0]);
    ck_assert_str_eq(addr, want);
    ck_assert_uint_ne(sid, 0);
    wbuf_put_u64(&out, 64u << 20);
    fake_reply(fd, &h, 0, &out);
    fake_recv(fd, MSG_CS_REPORT, &h, &p);
    rcur_init(&r, p.data, p.len);
    ck_assert_uint_eq(rcur_u64(&r), sid);
    ck_assert_uint_eq(rcur_u32(&r), 0);
    wbuf_reset(&out);
    wbuf_put_u32(&out, 0);
    fake_reply(fd, &h, 0, &out);
    /* a chunk appears; meta then tells the server to delete it */
    struct rpc_conn *cl = cs_conn(&c, 0);
    uint32_t clen, got;
    uint8_t b[8];
    ck_assert_int_eq(chk_write(cl, 77, 1, 0, 0, "gone", 4, 0, 0, NULL, &clen), 0);
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    wbuf_reset(&out);
    wbuf_put_u32(&out, 1);
    wbuf_put_u64(&out, 77);
    wbuf_put_u32(&out, 1);
    fake_reply(fd, &h, 0, &out);
    /* meta forgot us: the server registers again and reports what it holds */
    fake_recv(fd, MSG_CS_HEARTBEAT, &h, &p);
    ck_assert_int_eq(chk_read(cl, 77, 1, 0, 4, b, &got), -ENOENT);
    fake_reply(fd, &h, -ENOENT, NULL);
    fake_recv(fd, MSG_CS_REGISTER, &h, &p);
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

int main(void)
{
    Suite *s = suite_create("chunk_server");
    TCase *t = tcase_create("server");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_write_read_verified);
    tcase_add_test(t, test_chain_three_copies);
    tcase_add_test(t, test_kill9_keeps_synced_data);
    tcase_add_test(t, test_flipped_byte_detected);
    tcase_add_test(t, test_enospc_clean);
    tcase_add_test(t, test_malformed_frame_closes_one_conn);
    tcase_add_test(t, test_register_with_meta);
    tcase_add_test(t, test_membership_with_fake_meta);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
