/* cs.h - the chunk server daemon's state (one struct, shared by its threads) and the entry
 * points of its parts: request serving (cs_server.c), chain forwarding (cs_chain.c), meta
 * membership and bad-chunk reports (cs_meta.c), and the scrubber (scrub.c). */
#ifndef CAIRN_CS_H
#define CAIRN_CS_H
#include <pthread.h>
#include <stdint.h>

#include "conf.h"
#include "cstore.h"
#include "proto.h"

struct cs_cfg {
    char listen[CONF_STR_MAX];
    char advertise[CONF_STR_MAX];
    char meta[CONF_STR_MAX];
    char data_dirs[CONF_STR_MAX];
    int heartbeat_ms;
    int scrub_rate;     /* MiB/s, 0 = off */
    int scrub_interval; /* seconds between scrub passes */
    int max_conns;
    char log_level[CONF_STR_MAX];
    char log_file[CONF_STR_MAX];
    int daemon;
    char pid_file[CONF_STR_MAX];
};

#define CS_BADQ 256

struct cs_bad {
    uint64_t id;
    uint32_t ver, block;
};

struct cs_state {
    struct cs_cfg cfg;
    struct cstore store;
    volatile int stop;
    uint64_t server_id;
    char advertise[CAIRN_ADDR_MAX + 1];
    int listen_fd;
    int nconns; /* live connection threads (under lock) */
    pthread_mutex_t lock;
    /* bad blocks waiting to be reported to meta */
    struct cs_bad badq[CS_BADQ];
    int nbad;
    uint32_t load; /* requests in progress */
};

/* Serve connections on s->listen_fd until s->stop; returns 0. */
int cs_server_run(struct cs_state *s);
/* Forwarding down the chain: one cached connection per downstream address. */
struct rpc_conn *cs_chain_conn(const char *addr);
void cs_chain_shutdown(void);
/* Membership thread: register, report, heartbeat, deliver bad-chunk reports. */
int cs_meta_start(struct cs_state *s, pthread_t *th);
/* Queue a bad block for reporting to meta (never blocks on the network). */
void cs_meta_report_bad(struct cs_state *s, uint64_t id, uint32_t ver, uint32_t block);
/* Load or create the stable server id kept in the first data folder. */
int cs_meta_server_id(const char *dir, uint64_t *id);
/* Scrubber thread (returns 0 without starting one when scrub_rate is 0). */
int cs_scrub_start(struct cs_state *s, pthread_t *th, int *started);
#endif
