/* meta.h - the cairn-meta daemon's shared state and the interfaces between its modules:
 * the request dispatcher for clients (server.c), the chunk-server messages (server_cs.c),
 * the chunk-server registry with its soft-state chunk locations (cs_registry.c) and session
 * expiry (sessions.c). Everything here runs on the one libevent thread of the daemon, which is
 * also the store's only writer. */
#ifndef CAIRN_META_H
#define CAIRN_META_H

#include <stdint.h>

#include "conf.h"
#include "evsrv.h"
#include "mop.h"
#include "mstore.h"
#include "proto.h"

#define CSR_MAX 64 /* chunk servers a meta service knows (one bit each in a location mask) */

struct meta_cfg {
    char listen[CONF_STR_MAX];
    char data_dir[CONF_STR_MAX];
    int session_timeout;
    int cs_timeout;
    uint64_t chunk_size;
    uint64_t map_size;
    int open_chunks;
    int fsync_commits;
    int pin_memory;
    char log_level[CONF_STR_MAX];
    char log_file[CONF_STR_MAX];
    int daemon;
    char pid_file[CONF_STR_MAX];
};

struct csr_server {
    uint64_t id; /* stable id the server keeps in its data folder; 0 = free slot */
    char addr[CAIRN_ADDR_MAX + 1];
    uint64_t capacity, free;
    uint32_t load;
    uint64_t last_seen_ms;
    int alive;
    /* chunk versions this server should delete, sent with its next heartbeat reply */
    uint64_t *del_id;
    uint32_t *del_ver;
    uint32_t ndel, cap_del;
};

/* Open-addressing table chunk id -> bit mask of server slots holding it. */
struct csr_locs {
    uint64_t *keys; /* 0 = empty (chunk ids start at 1) */
    uint64_t *masks;
    uint64_t cap, count;
};

struct cs_registry {
    struct csr_server srv[CSR_MAX];
    struct csr_locs locs;
    uint32_t rr; /* round-robin start for placing new chunks */
    int timeout_ms;
};

struct meta {
    struct meta_cfg cfg;
    struct mstore *store;
    struct cs_registry reg;
    struct event_base *base;
    struct evsrv *srv;
    struct event *flush_ev; /* lowest priority: runs once the ready requests are handled */
    uint64_t pinned;        /* bytes of the store locked in memory */
};

#define META_BATCH_MAX 512 /* records per group commit at most */

/* server.c: the evsrv handler for every request. */
int meta_handle(struct evsrv_conn *conn, const struct wire_hdr *h, const uint8_t *payload,
                void *arg);
/* Prepare and apply one mutation inside the current group commit (opened here if needed);
 * replies are held until meta_flush made the batch durable. Chunks it frees are queued for
 * deletion on their servers once durable. */
int meta_apply(struct meta *m, struct mop *op, struct mop_result *res);
/* Commit the open batch durably and send the held replies. A failed commit stops the daemon:
 * nothing of the batch was acknowledged, and clients retry against the restarted service. */
void meta_flush(struct meta *m);

/* server_cs.c: MSG_CS_* requests (the reply is sent here). Returns 0 or -EBADMSG. */
int meta_handle_cs(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                   const uint8_t *payload);

/* sessions.c: expire client sessions not seen for session_timeout seconds. */
void meta_sessions_expire(struct meta *m);

/* cs_registry.c */
int csr_init(struct cs_registry *r, int timeout_ms);
void csr_free(struct cs_registry *r);
/* Register (or re-register) server id at addr; returns its slot or -ENOSPC. */
int csr_register(struct cs_registry *r, uint64_t id, const char *addr, uint64_t cap,
                 uint64_t free_bytes, uint64_t now_ms);
/* Slot of a registered server id, or -ENOENT. */
int csr_slot(const struct cs_registry *r, uint64_t id);
void csr_heartbeat(struct cs_registry *r, int slot, uint64_t cap, uint64_t free_bytes,
                   uint32_t load, uint64_t now_ms);
/* Mark servers not heard from within the timeout as dead; returns how many died now. */
int csr_expire(struct cs_registry *r, uint64_t now_ms);
int csr_loc_add(struct cs_registry *r, uint64_t chunk_id, int slot);
void csr_loc_del(struct cs_registry *r, uint64_t chunk_id, int slot);
/* Forget a chunk everywhere; queue (id, ver) for deletion on every server that held it. */
void csr_chunk_freed(struct cs_registry *r, uint64_t chunk_id, uint32_t version);
/* Queue one deletion for a server. */
int csr_queue_delete(struct cs_registry *r, int slot, uint64_t chunk_id, uint32_t version);
/* Fill ci->loc with the live servers holding chunk_id. */
void csr_fill_locs(const struct cs_registry *r, struct chunk_info *ci);
/* Choose up to n live servers with room for a new chunk, spread round-robin; returns the
 * count chosen (slots in out). */
int csr_place(struct cs_registry *r, int n, uint64_t need_bytes, int *out);
/* Live servers registered (does not move the placement cursor). */
int csr_live_count(const struct cs_registry *r);
void csr_space(const struct cs_registry *r, uint64_t *total, uint64_t *free_bytes);

#endif
