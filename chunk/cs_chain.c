/* cs_chain.c - connections down the replica chain: one cached rpc_conn per downstream chunk
 * server address, shared by every connection thread (rpc_conn is thread safe and pipelined). */
#include <pthread.h>
#include <string.h>

#include "cs.h"
#include "rpc.h"

#define CHAIN_CONNS 64

static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rpc_conn *chain_conns[CHAIN_CONNS];
static int chain_n;

struct rpc_conn *cs_chain_conn(const char *addr)
{
    struct rpc_conn *c = NULL;
    pthread_mutex_lock(&chain_lock);
    for (int i = 0; i < chain_n; i++)
        if (strcmp(rpc_conn_addr(chain_conns[i]), addr) == 0) c = chain_conns[i];
    if (!c) {
        struct rpc_opts o = {.connect_timeout_ms = 2000,
                             .call_timeout_ms = 30000,
                             .backoff_min_ms = 50,
                             .backoff_max_ms = 1000,
                             .connect_attempts = 2}; /* a dead hop fails fast */
        if (chain_n == CHAIN_CONNS) { /* evict the oldest; cannot free while others use it */
            c = NULL;
        } else {
            c = rpc_conn_new(addr, &o);
            if (c) chain_conns[chain_n++] = c;
        }
    }
    pthread_mutex_unlock(&chain_lock);
    return c;
}

void cs_chain_shutdown(void)
{
    pthread_mutex_lock(&chain_lock);
    for (int i = 0; i < chain_n; i++)
        rpc_conn_free(chain_conns[i]);
    chain_n = 0;
    pthread_mutex_unlock(&chain_lock);
}
