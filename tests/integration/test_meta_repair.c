/* test_meta_repair.c - the meta service's replication logic through the wire protocol: a real
 * cairn-meta, with the test speaking for four chunk servers (registration with zones,
 * reports, version events, heartbeats whose replies carry deletions and replication orders,
 * REPLICATED) and for a client (leases with exclusions, FILEINFO, HEALTH, SET_COPIES,
 * CS_DRAIN). It checks exactly what the meta decides: chains on distinct zones, a dead
 * holder's chunk ordered to a live server of the missing zone with a bumped version, stale
 * copies never handed out and deleted, surplus copies trimmed, drains that never leave a
 * chunk short.
 *
 * The daemon's pid lives in shared memory and the runner is a subreaper, so a failing test
 * (Check _exits the test process) still has its daemon killed, by PID, by the runner. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "harness.h"
#include "harness_meta.h"
#include "net.h"
#include "proto.h"
#include "rpc.h"

#define NCS 4

struct shared {
    pid_t meta_pid;
    char dir[256];
};
static struct shared *S;
static struct rpc_conn *M;
static char meta_addr[64];
static const char *zones[NCS] = {"z1", "z1", "z2", "z2"};
static uint64_t ids[NCS] = {0x1111, 0x2222, 0x3333, 0x4444};
static char addrs[NCS][32];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start_meta(void)
{
    /* a test that failed before stop_meta left its daemon: kill it (the runner, our
     * subreaper, reaps it) and its folder */
    if (S->meta_pid > 0) kill(S->meta_pid, SIGKILL);
    S->meta_pid = 0;
    if (S->dir[0] && !getenv("KEEP")) h_sh(30, "rm -rf '%s'", S->dir);
    ck_assert_int_eq(h_mkdtemp("metarep", S->dir, sizeof(S->dir)), 0);
    uint16_t port = h_free_port();
    snprintf(meta_addr, sizeof(meta_addr), "127.0.0.1:%u", port);
    char listen[80], data[320], log[320], meta[256];
    snprintf(listen, sizeof(listen), "--listen=%s", meta_addr);
    snprintf(data, sizeof(data), "--data_dir=%s/meta", S->dir);
    snprintf(log, sizeof(log), "%s/meta.log", S->dir);
    char *argv[] = {(char *)h_prog("cairn-meta", meta, sizeof(meta)),
                    listen,
                    data,
                    "--cs_timeout=1",
                    "--fsync=false",
                    "--pin_memory=false",
                    "--log_level=debug",
                    NULL};
    S->meta_pid = h_spawn(argv, log);
    ck_assert_int_gt(S->meta_pid, 0);
    ck_assert_int_eq(h_wait_port(port, 10000), 0);
    M = hm_connect(meta_addr);
    for (int i = 0; i < NCS; i++)
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", 40001 + i);
}

static void stop_meta(void)
{
    if (M) rpc_conn_free(M);
    M = NULL;
    if (S->meta_pid > 0) h_kill_wait(S->meta_pid, SIGTERM, 5000);
    S->meta_pid = 0;
    if (S->dir[0] && !getenv("KEEP")) h_sh(30, "rm -rf '%s'", S->dir);
    S->dir[0] = 0;
}

/* A request on M (hm_call). */
static int call(uint16_t type, struct wbuf *b, struct rpc_reply *rep)
{
    return hm_call(M, type, b, rep);
}

/* --- the chunk servers' side ------------------------------------------------------------- */

static void cs_register(int i)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[i]);
    wbuf_put_str(&b, addrs[i], strlen(addrs[i]));
    wbuf_put_u64(&b, 100ull << 30);
    wbuf_put_u64(&b, 90ull << 30);
    wbuf_put_str(&b, zones[i], strlen(zones[i]));
    ck_assert_int_eq(call(MSG_CS_REGISTER, &b, NULL), 0);
}

struct orders {
    int ndel;
    uint64_t del_id[16];
    uint32_t del_ver[16];
    int n;
    uint64_t chunk[16];
    uint32_t version[16];
    int nsrc[16];
    char src[16][4][64];
};

/* A heartbeat of server i; what the reply asks of it is added to o (may be NULL). */
static void cs_heartbeat(int i, struct orders *o)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[i]);
    wbuf_put_u64(&b, 100ull << 30);
    wbuf_put_u64(&b, 90ull << 30);
    wbuf_put_u32(&b, 0);
    struct rpc_reply rep;
    ck_assert_int_eq(call(MSG_CS_HEARTBEAT, &b, &rep), 0);
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    uint32_t nd = rcur_u32(&r);
    for (uint32_t k = 0; k < nd; k++) {
        uint64_t id = rcur_u64(&r);
        uint32_t ver = rcur_u32(&r);
        if (o && o->ndel < 16) {
            o->del_id[o->ndel] = id;
            o->del_ver[o->ndel++] = ver;
        }
    }
    uint32_t no = rcur_u32(&r);
    for (uint32_t k = 0; k < no; k++) {
        uint64_t id = rcur_u64(&r);
        uint32_t ver = rcur_u32(&r);
        uint8_t ns = rcur_u8(&r);
        int at = o && o->n < 16 ? o->n++ : -1;
        if (at >= 0) {
            o->chunk[at] = id;
            o->version[at] = ver;
            o->nsrc[at] = ns;
        }
        for (uint8_t s = 0; s < ns; s++) {
            char a[64];
            rcur_str(&r, a, 63);
            if (at >= 0 && s < 4) snprintf(o->src[at][s], 64, "%s", a);
        }
    }
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
}

static void cs_event(int i, uint64_t chunk, uint32_t ver)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[i]);
    wbuf_put_u64(&b, chunk);
    wbuf_put_u32(&b, ver);
    wbuf_put_u32(&b, 1);
    ck_assert_int_eq(call(MSG_CS_CHUNK_EVENT, &b, NULL), 0);
}

static void cs_report(int i, uint64_t chunk, uint32_t ver)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[i]);
    wbuf_put_u32(&b, 1);
    wbuf_put_u64(&b, chunk);
    wbuf_put_u32(&b, ver);
    ck_assert_int_eq(call(MSG_CS_REPORT, &b, NULL), 0);
}

static void cs_replicated(int i, uint64_t chunk, uint32_t ver, int status)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[i]);
    wbuf_put_u64(&b, chunk);
    wbuf_put_u32(&b, ver);
    wbuf_put_u32(&b, (uint32_t)status);
    wbuf_put_u64(&b, 1u << 20);
    ck_assert_int_eq(call(MSG_CS_REPLICATED, &b, NULL), 0);
}

/* Heartbeats of every server in `alive` (bit mask) for ms, collecting what each is asked. */
static void beat(unsigned alive, int ms, struct orders *o)
{
    uint64_t end = net_now_ms() + (uint64_t)ms;
    do {
        for (int i = 0; i < NCS; i++)
            if (alive & (1u << i)) cs_heartbeat(i, o ? &o[i] : NULL);
        sleep_ms(100);
    } while (net_now_ms() < end);
}

/* --- the client's side ----------------------------------------------------------------- */

static uint64_t session_open(void)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_str(&b, "repair", 6);
    wbuf_put_u64(&b, 0);
    struct rpc_reply rep;
    ck_assert_int_eq(call(MSG_SESSION_OPEN, &b, &rep), 0);
    uint64_t sid = le_get64(rep.payload.data);
    rpc_reply_free(&rep);
    return sid;
}

static uint64_t create(uint64_t sid, const char *name)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, CAIRN_ROOT_INO);
    wbuf_put_str(&b, name, strlen(name));
    wbuf_put_u32(&b, 0100644);
    wbuf_put_u32(&b, 0);
    wbuf_put_u32(&b, 0);
    wbuf_put_u32(&b, O_EXCL);
    wbuf_put_u64(&b, sid);
    struct cairn_attr a;
    ck_assert_int_eq(hm_call_attr(M, MSG_CREATE, &b, &a), 0);
    ck_assert_uint_eq(a.copies, 2);
    return a.ino;
}

static int lease(uint64_t ino, uint64_t sid, const uint64_t *excl, int nexcl, struct chunk_info *ci)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, 0);
    wbuf_put_u64(&b, sid);
    wbuf_put_u8(&b, (uint8_t)nexcl);
    for (int i = 0; i < nexcl; i++)
        wbuf_put_u64(&b, excl[i]);
    return hm_call_chunk_info(M, MSG_CHUNK_LEASE, &b, ci);
}

struct finfo {
    uint32_t copies;
    uint64_t chunk_id;
    uint32_t version;
    int n;
    uint64_t server[12];
    uint32_t ver[12];
    int state[12];
};

static void fileinfo(uint64_t ino, struct finfo *f)
{
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u64(&b, 0);
    wbuf_put_u32(&b, 16);
    struct rpc_reply rep;
    ck_assert_int_eq(call(MSG_FILEINFO, &b, &rep), 0);
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    struct cairn_attr a;
    proto_get_attr(&r, &a);
    memset(f, 0, sizeof(*f));
    f->copies = rcur_u32(&r);
    rcur_u64(&r); /* chunk size */
    uint32_t n = rcur_u32(&r);
    ck_assert_uint_eq(n, 1);
    rcur_u64(&r); /* index */
    f->chunk_id = rcur_u64(&r);
    f->version = rcur_u32(&r);
    rcur_u64(&r); /* length */
    f->n = rcur_u8(&r);
    for (int k = 0; k < f->n; k++) {
        char s[64];
        f->server[k] = rcur_u64(&r);
        rcur_str(&r, s, 63);
        rcur_str(&r, s, 63);
        f->ver[k] = rcur_u32(&r);
        f->state[k] = rcur_u8(&r);
    }
    ck_assert_int_eq(rcur_u8(&r), 0); /* no more */
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
}

static int count_state(const struct finfo *f, int state)
{
    int n = 0;
    for (int k = 0; k < f->n; k++)
        n += f->state[k] == state;
    return n;
}

static int state_on(const struct finfo *f, uint64_t server)
{
    for (int k = 0; k < f->n; k++)
        if (f->server[k] == server) return f->state[k];
    return -1;
}

static int index_of(uint64_t id)
{
    for (int i = 0; i < NCS; i++)
        if (ids[i] == id) return i;
    ck_abort_msg("unknown server id %" PRIx64, id);
    return -1;
}

/* HEALTH: the counts (chunks, full, under, missing, over) of the last complete pass. */
static void health(uint64_t c[5], int *complete)
{
    struct wbuf b;
    wbuf_init(&b);
    struct rpc_reply rep;
    ck_assert_int_eq(call(MSG_HEALTH, &b, &rep), 0);
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    uint32_t ns = rcur_u32(&r);
    for (uint32_t i = 0; i < ns; i++) {
        char s[64];
        rcur_u64(&r);
        rcur_str(&r, s, 63);
        rcur_str(&r, s, 63);
        rcur_u8(&r);
        rcur_u64(&r);
        rcur_u64(&r);
        rcur_u32(&r);
        rcur_u64(&r);
        rcur_u32(&r);
    }
    for (int i = 0; i < 5; i++)
        c[i] = rcur_u64(&r);
    for (int i = 0; i < 8; i++)
        rcur_u64(&r);
    *complete = rcur_u8(&r);
    rcur_u32(&r);
    rcur_u32(&r);
    rcur_u64(&r); /* inodes, file bytes, sessions */
    rcur_u64(&r);
    rcur_u32(&r);
    ck_assert_int_eq(rcur_done(&r), 0);
    rpc_reply_free(&rep);
}

/* ------------------------------------------------------------------------------------------ */

/* A meta service with every server registered, a session (*sid) and a file NAME whose first
 * chunk is leased (*ci) to two servers (*h0, *h1) that both wrote version 1. Returns its ino. */
static uint64_t file_with_chunk(const char *name, uint64_t *sid, struct chunk_info *ci, int *h0,
                                int *h1)
{
    start_meta();
    for (int i = 0; i < NCS; i++)
        cs_register(i);
    *sid = session_open();
    uint64_t ino = create(*sid, name);
    ck_assert_int_eq(lease(ino, *sid, NULL, 0, ci), 0);
    ck_assert_uint_eq(ci->nloc, 2);
    *h0 = index_of(ci->loc[0].server_id);
    *h1 = index_of(ci->loc[1].server_id);
    cs_event(*h0, ci->chunk_id, 1);
    cs_event(*h1, ci->chunk_id, 1);
    return ino;
}

START_TEST(test_copies_placed_lost_and_rebuilt)
{
    /* a new chunk goes to two servers in two zones */
    uint64_t sid;
    struct chunk_info ci;
    int h0, h1;
    uint64_t ino = file_with_chunk("f", &sid, &ci, &h0, &h1);
    ck_assert_str_ne(zones[h0], zones[h1]);
    struct finfo f;
    fileinfo(ino, &f);
    ck_assert_uint_eq(f.copies, 2);
    ck_assert_int_eq(count_state(&f, COPY_VALID), 2);

    /* a writer saw h1 fail: the new chain leaves it out, and its copy is stale from then on */
    uint64_t excl[1] = {ids[h1]};
    ck_assert_int_eq(lease(ino, sid, excl, 1, &ci), 0);
    ck_assert_uint_eq(ci.nloc, 1);
    ck_assert_uint_eq(ci.loc[0].server_id, ids[h0]);
    ck_assert_uint_eq(ci.version, 2);
    ck_assert_uint_eq(ci.prev_version, 1);
    fileinfo(ino, &f);
    ck_assert_int_eq(state_on(&f, ids[h1]), COPY_STALE);
    ck_assert_int_eq(state_on(&f, ids[h0]), COPY_VALID); /* member of the chain, v2 unknown */
    cs_event(h0, ci.chunk_id, 2);

    /* h1 goes silent. The others keep beating; the stale copy is not a copy, so the chunk
     * is ordered to the other server of h1's zone, from h0, at a new version */
    unsigned alive = 0xfu & ~(1u << h1);
    struct orders o[NCS];
    memset(o, 0, sizeof(o));
    uint64_t end = net_now_ms() + 15000;
    int dest = -1;
    while (dest < 0 && net_now_ms() < end) {
        beat(alive, 300, o);
        for (int i = 0; i < NCS; i++)
            if (o[i].n) dest = i;
    }
    ck_assert_msg(dest >= 0, "no replication order within 15 s");
    ck_assert_int_ne(dest, h0);
    ck_assert_int_ne(dest, h1);
    ck_assert_str_eq(zones[dest], zones[h1]); /* the zone without a copy */
    ck_assert_uint_eq(o[dest].chunk[0], ci.chunk_id);
    /* a bumped version (an order may first have gone to h1 before it was declared dead) */
    uint32_t nv = o[dest].version[0];
    ck_assert_uint_ge(nv, 3);
    ck_assert_int_eq(o[dest].nsrc[0], 1);
    ck_assert_str_eq(o[dest].src[0][0], addrs[h0]);
    fileinfo(ino, &f);
    ck_assert_int_eq(state_on(&f, ids[dest]), COPY_PENDING);
    ck_assert_uint_eq(f.version, nv);

    /* the copy is made: the source moved to nv, the destination installed nv */
    cs_event(h0, ci.chunk_id, nv);
    cs_event(dest, ci.chunk_id, nv);
    cs_replicated(dest, ci.chunk_id, nv, 0);
    fileinfo(ino, &f);
    ck_assert_int_eq(state_on(&f, ids[h0]), COPY_VALID);
    ck_assert_int_eq(state_on(&f, ids[dest]), COPY_VALID);

    /* h1 comes back with its old version: never handed out, and deleted */
    cs_register(h1);
    cs_report(h1, ci.chunk_id, 1);
    memset(o, 0, sizeof(o));
    end = net_now_ms() + 10000;
    while (o[h1].ndel == 0 && net_now_ms() < end)
        beat(0xf, 300, o);
    ck_assert_int_eq(o[h1].ndel, 1);
    ck_assert_uint_eq(o[h1].del_id[0], ci.chunk_id);
    ck_assert_uint_eq(o[h1].del_ver[0], 1);
    fileinfo(ino, &f);
    ck_assert_int_eq(state_on(&f, ids[h1]), -1);
    ck_assert_int_eq(count_state(&f, COPY_VALID), 2);
    uint64_t c[5];
    int complete = 0;
    end = net_now_ms() + 5000;
    do {
        beat(0xf, 200, NULL);
        health(c, &complete);
    } while ((!complete || c[1] != 1) && net_now_ms() < end);
    ck_assert_uint_eq(c[0], 1); /* chunks */
    ck_assert_uint_eq(c[1], 1); /* full */
    ck_assert_uint_eq(c[2], 0); /* under */

    /* copies 1: the surplus copy goes (from the fuller server; here either) */
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u32(&b, 1);
    ck_assert_int_eq(call(MSG_SET_COPIES, &b, NULL), 0);
    memset(o, 0, sizeof(o));
    end = net_now_ms() + 10000;
    do {
        beat(0xf, 300, o);
        fileinfo(ino, &f);
    } while (count_state(&f, COPY_VALID) != 1 && net_now_ms() < end);
    ck_assert_int_eq(count_state(&f, COPY_VALID), 1);
    ck_assert_int_eq(o[h0].ndel + o[dest].ndel, 1);

    /* copies 2 again, then drain the holder: a copy is made elsewhere before it goes */
    wbuf_init(&b);
    wbuf_put_u64(&b, ino);
    wbuf_put_u32(&b, 2);
    ck_assert_int_eq(call(MSG_SET_COPIES, &b, NULL), 0);
    int keep = state_on(&f, ids[h0]) == COPY_VALID ? h0 : dest;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[keep]);
    wbuf_put_u8(&b, 1);
    ck_assert_int_eq(call(MSG_CS_DRAIN, &b, NULL), 0);
    wbuf_init(&b);
    wbuf_put_u64(&b, 0x9999);
    wbuf_put_u8(&b, 1);
    ck_assert_int_eq(call(MSG_CS_DRAIN, &b, NULL), -ENOENT);
    memset(o, 0, sizeof(o));
    int made = 0;
    uint32_t ver = 0;
    end = net_now_ms() + 15000;
    while (made < 2 && net_now_ms() < end) {
        beat(0xf, 300, o);
        for (int i = 0; i < NCS; i++)
            for (int k = 0; k < o[i].n; k++) {
                ck_assert_int_ne(i, keep); /* never onto the draining server */
                ver = o[i].version[k];
                /* what the destination does first: every source moves to the new version */
                for (int sidx = 0; sidx < o[i].nsrc[k] && sidx < 4; sidx++)
                    for (int j = 0; j < NCS; j++)
                        if (!strcmp(o[i].src[k][sidx], addrs[j])) cs_event(j, o[i].chunk[k], ver);
                cs_event(i, o[i].chunk[k], ver);
                cs_replicated(i, o[i].chunk[k], ver, 0);
                made++;
            }
        memset(o, 0, sizeof(o));
        fileinfo(ino, &f);
        /* under-replicated never: the draining copy still serves */
        ck_assert_int_ge(count_state(&f, COPY_VALID) + count_state(&f, COPY_DRAINING), 1);
        if (made && count_state(&f, COPY_VALID) == 2 && state_on(&f, ids[keep]) == -1) break;
    }
    ck_assert_int_eq(count_state(&f, COPY_VALID), 2);
    ck_assert_int_eq(state_on(&f, ids[keep]), -1); /* dropped once the others had it */
    stop_meta();
}
END_TEST

START_TEST(test_failed_order_is_retried_and_bad_copy_replaced)
{
    uint64_t sid;
    struct chunk_info ci;
    int h0, h1;
    uint64_t ino = file_with_chunk("g", &sid, &ci, &h0, &h1);
    /* h1 finds a bad block: the copy is no longer served and a new one is ordered */
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u64(&b, ids[h1]);
    wbuf_put_u64(&b, ci.chunk_id);
    wbuf_put_u32(&b, 1);
    wbuf_put_u32(&b, 0);
    ck_assert_int_eq(call(MSG_CS_BAD_CHUNK, &b, NULL), 0);
    struct finfo f;
    fileinfo(ino, &f);
    ck_assert_int_eq(state_on(&f, ids[h1]), COPY_BAD);
    struct orders o[NCS];
    int dest = -1, tries = 0;
    uint64_t end = net_now_ms() + 20000;
    uint32_t ver = 0;
    while (net_now_ms() < end) {
        memset(o, 0, sizeof(o));
        beat(0xf, 300, o);
        for (int i = 0; i < NCS; i++)
            if (o[i].n) {
                dest = i;
                ver = o[i].version[0];
            }
        if (dest < 0) continue;
        if (++tries == 1) { /* the first attempt fails: ordered again */
            cs_replicated(dest, ci.chunk_id, ver, -EIO);
            dest = -1;
            continue;
        }
        break;
    }
    ck_assert_int_eq(tries, 2);
    ck_assert_int_ne(dest, h0);
    cs_event(h0, ci.chunk_id, ver);
    cs_event(dest, ci.chunk_id, ver);
    cs_replicated(dest, ci.chunk_id, ver, 0);
    /* with two good copies the bad one is deleted (unless it was the destination) */
    end = net_now_ms() + 10000;
    do {
        beat(0xf, 300, NULL);
        fileinfo(ino, &f);
    } while (count_state(&f, COPY_BAD) && net_now_ms() < end);
    ck_assert_int_eq(count_state(&f, COPY_BAD), 0);
    ck_assert_int_eq(count_state(&f, COPY_VALID), 2);
    stop_meta();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_repair");
    TCase *t = tcase_create("repair");
    tcase_set_timeout(t, 90);
    tcase_add_test(t, test_copies_placed_lost_and_rebuilt);
    tcase_add_test(t, test_failed_order_is_retried_and_bad_copy_replaced);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) return EXIT_FAILURE;
    memset(S, 0, sizeof(*S));
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    if (S->meta_pid > 0) {
        fprintf(stderr, "--- tail of %s/meta.log:\n", S->dir);
        h_sh(10, "tail -n 40 '%s/meta.log' 1>&2", S->dir);
        h_kill_wait(S->meta_pid, SIGKILL, 5000);
    }
    if (S->dir[0] && !getenv("KEEP")) h_sh(30, "rm -rf '%s'", S->dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
