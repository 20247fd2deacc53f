/* snap_fetch.c - a replica that must install a snapshot fetches a copy of another replica's
 * store (snap_xfer.h): the leader first, then every other member it knows of (the Raft
 * configuration, `peers`, `join`). It asks MSG_SNAP_OPEN until the copy is made, reads it in
 * 1 MiB pieces and decompresses each into dest as it arrives, so memory stays bounded
 * whatever the store's size; dest is flushed before it is handed back (snapz_dec_close). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mraft_int.h"
#include "net.h"
#include "rpc.h"
#include "snap_xfer.h"

#define FETCH_WAIT_MS (5 * 60 * 1000) /* a multi-GiB store takes a while to copy */
#define FETCH_CANDIDATES (2 * MRAFT_MAX_PEERS + 1)

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Add addr to the list unless it is there already or is ourselves. */
static void add_candidate(struct mraft *r, char list[][CAIRN_ADDR_MAX + 1], int *n,
                          const char *addr)
{
    if (!addr[0] || !strcmp(addr, r->self) || *n == FETCH_CANDIDATES) return;
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], addr)) return;
    snprintf(list[(*n)++], CAIRN_ADDR_MAX + 1, "%s", addr);
}

static int candidates(struct mraft *r, char list[][CAIRN_ADDR_MAX + 1])
{
    int n = 0;
    char client[CAIRN_ADDR_MAX + 1];
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(r->rp, &lid, &laddr);
    if (lid && laddr && !mraft_addr_to_client(laddr, client, sizeof(client)))
        add_candidate(r, list, &n, client);
    const struct raft_configuration *conf = &r->rp->configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (!mraft_addr_to_client(conf->servers[i].address, client, sizeof(client)))
            add_candidate(r, list, &n, client);
    char more[MRAFT_MAX_PEERS][CAIRN_ADDR_MAX + 1];
    const char *lists[2] = {r->m->cfg.peers, r->m->cfg.join};
    for (int l = 0; l < 2; l++) {
        int k = mraft_split_list(lists[l], more, MRAFT_MAX_PEERS);
        for (int i = 0; i < k; i++)
            add_candidate(r, list, &n, more[i]);
    }
    return n;
}

/* Ask addr for a copy at least at need; -EAGAIN while it is being made. */
static int open_copy(struct rpc_conn *c, uint64_t need, uint64_t *id, uint64_t *size,
                     uint64_t *applied)
{
    uint8_t req[8];
    le_put64(req, need);
    struct rpc_reply rep;
    int rc = rpc_call(c, MSG_SNAP_OPEN, req, sizeof(req), NULL, 0, &rep);
    if (rc) return rc;
    struct rcur cur;
    rcur_init(&cur, rep.payload.data, rep.payload.len);
    *id = rcur_u64(&cur);
    *size = rcur_u64(&cur);
    *applied = rcur_u64(&cur);
    rc = rcur_done(&cur);
    rpc_reply_free(&rep);
    return rc;
}

/* Read the copy [0, size) into the decompressor. */
static int read_copy(struct rpc_conn *c, uint64_t id, uint64_t size, struct snapz_dec *d)
{
    for (uint64_t off = 0; off < size;) {
        uint8_t req[20];
        le_put64(req, id);
        le_put64(req + 8, off);
        le_put32(req + 16, SNAP_READ_MAX);
        struct rpc_reply rep;
        int rc = rpc_call(c, MSG_SNAP_READ, req, sizeof(req), NULL, 0, &rep);
        if (rc) return rc;
        size_t got = rep.payload.len;
        if (got == 0 || got > size - off) rc = -EBADMSG;
        if (!rc) rc = snapz_dec_feed(d, rep.payload.data, got);
        rpc_reply_free(&rep);
        if (rc) return rc;
        off += got;
    }
    return 0;
}

static int fetch_from(const char *addr, uint64_t need, const char *dest, uint64_t deadline)
{
    struct rpc_opts o = {
        .connect_timeout_ms = 500, .call_timeout_ms = 30000, .connect_attempts = 1};
    struct rpc_conn *c = rpc_conn_new(addr, &o);
    if (!c) return -ENOMEM;
    uint64_t id = 0, size = 0, applied = 0;
    int rc;
    while ((rc = open_copy(c, need, &id, &size, &applied)) == -EAGAIN && net_now_ms() < deadline)
        sleep_ms(100);
    struct snapz_dec *d = NULL;
    if (!rc) {
        LOG_INFO("raft",
                 "fetching a copy of the store from %s: index %" PRIu64 ", %" PRIu64 " bytes", addr,
                 applied, size);
        rc = snapz_dec_open(dest, &d);
    }
    if (!rc) {
        rc = read_copy(c, id, size, d);
        int crc = snapz_dec_close(d);
        if (!rc) rc = crc;
    }
    rpc_conn_free(c);
    return rc;
}

int snap_fetch(struct mraft *r, uint64_t need, const char *dest)
{
    char list[FETCH_CANDIDATES][CAIRN_ADDR_MAX + 1];
    uint64_t deadline = net_now_ms() + FETCH_WAIT_MS;
    int rc = -EHOSTUNREACH;
    for (int round = 0; net_now_ms() < deadline; round++) {
        int n = candidates(r, list);
        for (int i = 0; i < n; i++) {
            rc = fetch_from(list[i], need, dest, deadline);
            if (!rc) return 0;
            if (round % 20 == 0)
                LOG_WARN("raft", "no copy of the store (index >= %" PRIu64 ") from %s: %s", need,
                         list[i], strerror(-rc));
        }
        if (n == 0) return -EHOSTUNREACH; /* nobody to ask */
        sleep_ms(500);
    }
    return rc;
}
