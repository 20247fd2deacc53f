/* soft_opens.c - read-only opens kept in the leader's memory instead of the replicated store.
 *
 * Opening a file read-only (the bulk of a data-set scan: open, read, close per sample) writes
 * no record: the leader counts the open here, per (session, inode), and the release takes it
 * off again. What an open record is for - keeping an unlinked file's data until its last
 * close - is kept by turning the soft opens of an inode into records (MOP_OPEN) in the same
 * batch, just before a record that may remove its last name (unlink, rename over it). A new
 * leader starts with none: a file opened read-only before a failover and unlinked after it
 * loses its data at once (the reader then gets errors), the one thing this gives up. */
#include <errno.h>
#include <stdlib.h>

#include "meta.h"

#define SO_BUCKETS 16384u

struct so_node {
    uint64_t session, ino;
    uint32_t count;
    struct so_node *next;
};

static struct so_node *g_buckets[SO_BUCKETS];
static uint64_t g_total;

static struct so_node **bucket(uint64_t ino)
{
    return &g_buckets[(ino * 0x9e3779b97f4a7c15ull) >> 50 & (SO_BUCKETS - 1)];
}

int soft_open_add(uint64_t session, uint64_t ino)
{
    struct so_node **b = bucket(ino);
    for (struct so_node *n = *b; n; n = n->next)
        if (n->session == session && n->ino == ino) {
            n->count++;
            g_total++;
            return 0;
        }
    struct so_node *n = malloc(sizeof(*n));
    if (!n) return -ENOMEM;
    *n = (struct so_node){.session = session, .ino = ino, .count = 1, .next = *b};
    *b = n;
    g_total++;
    return 0;
}

int soft_open_release(uint64_t session, uint64_t ino)
{
    for (struct so_node **p = bucket(ino); *p; p = &(*p)->next) {
        struct so_node *n = *p;
        if (n->session != session || n->ino != ino) continue;
        g_total--;
        if (--n->count == 0) {
            *p = n->next;
            free(n);
        }
        return 1;
    }
    return 0;
}

int soft_open_has(uint64_t session, uint64_t ino)
{
    for (struct so_node *n = *bucket(ino); n; n = n->next)
        if (n->session == session && n->ino == ino) return 1;
    return 0;
}

int soft_open_take(uint64_t ino, soft_open_fn fn, void *arg)
{
    int rc = 0;
    for (struct so_node **p = bucket(ino); *p;) {
        struct so_node *n = *p;
        if (n->ino != ino) {
            p = &n->next;
            continue;
        }
        for (uint32_t i = 0; i < n->count && !rc; i++)
            rc = fn(arg, n->session, ino);
        g_total -= n->count;
        *p = n->next;
        free(n);
    }
    return rc;
}

void soft_open_drop_session(uint64_t session)
{
    for (uint32_t b = 0; b < SO_BUCKETS; b++)
        for (struct so_node **p = &g_buckets[b]; *p;) {
            struct so_node *n = *p;
            if (n->session != session) {
                p = &n->next;
                continue;
            }
            g_total -= n->count;
            *p = n->next;
            free(n);
        }
}

void soft_open_clear(void)
{
    for (uint32_t b = 0; b < SO_BUCKETS; b++)
        while (g_buckets[b]) {
            struct so_node *n = g_buckets[b];
            g_buckets[b] = n->next;
            free(n);
        }
    g_total = 0;
}

uint64_t soft_open_count(void)
{
    return g_total;
}
