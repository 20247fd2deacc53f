/* client.h - the FUSE client's shared state and the interfaces between its modules.
 *
 * One `struct cm` holds the mount's configuration and every long-lived object: the meta
 * session (meta_client.c), the chunk server connections (chunk_client.c), the per-inode state
 * table (inode_state.c), the read cache and its prefetch workers (rcache.c). The FUSE
 * operations (fs_ops.c) use the read path (read_path.c) and the write path (write_path.c).
 * Every function returns 0 or a negative errno unless it says otherwise; network failures and
 * timeouts (bounded by io_timeout) come back as -EIO from the typed wrappers. */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rpc.h"

#define CM_RA_MIN (128u << 10)   /* first read-ahead window on sequential access */
#define CM_SEG_SIZE CAIRN_IO_MAX /* unit of the read cache and of prefetching */
#define CM_DIRTY_MAX (4u << 20)  /* a dirty buffer is written out at this size */
#define CM_LOCATE_BATCH 16       /* chunks asked per CHUNK_LOCATE */
#define CM_CC_POOL 4             /* connections per chunk server (servers serve in order) */
#define CM_WRITE_INFLIGHT 16     /* most 1 MiB write pieces in flight per inode */
#define CM_WRITE_ATTEMPTS 8      /* leases tried for one piece before the write fails */
#define CM_EXCL_MAX 16           /* servers excluded per chunk while a file is open here */
#define CM_AVOID_MS 10000        /* a server that timed out or refused is avoided this long */
/* Requests in flight per server that count as one step of load in the replica choice: below
 * it a chunk's reads stay on the copy it prefers (its id picks one), so a sequential reader
 * keeps one stream per chunk on one server (its read-ahead works); busier, they spread. */
#define CM_LOAD_BAND 4
#define CM_PREFETCH_THREADS 4

/* The meta service: a Raft group of replicas, named by a comma-separated list of "host:port". */
#define MC_REPLICAS_MAX 7 /* addresses in meta= */
#define MC_PEERS_MAX 16   /* replicas known to a mount: meta= plus leaders named by replicas */
#define MC_LIST_LEN (MC_REPLICAS_MAX * (CAIRN_ADDR_MAX + 1)) /* "a:p,b:p,..." with its NUL */

struct cm_cfg {
    char meta[MC_LIST_LEN]; /* the meta= list as given (validated by mc_addrs_parse) */
    double entry_timeout;
    double attr_timeout;
    double negative_timeout; /* seconds the kernel may remember that a name is absent */
    uint64_t readahead_max;
    uint64_t kernel_readahead; /* the kernel's read-ahead for the mount (kernel_tune.c) */
    uint64_t cache_size;       /* the disk cache's limit */
    uint64_t mem_cache_size;   /* the memory read cache's limit */
    char cache_dir[4096];      /* the disk cache's folder ("" = none) */
    int io_timeout_s;
    int max_threads;
    int dir_prefetch; /* prefetch the next files of a directory read in listing order */
    int read_pieces;  /* pieces a large read is split into (rp_piece_size) */
    int local_reads;  /* read the chunk files of servers on this machine in place */
    int atime_mode;   /* AT_MODE_* */
    int no_acl;       /* -o noacl: POSIX ACLs refused (not asked of the kernel) */
};

/* ---- meta_client.c, meta_route.c, meta_seq.c: the meta session (prefix mc_) ---------------
 *
 * Every request goes through mc_call, which sends it to the replica it believes is the leader
 * (meta_route.c) and follows the service through a failover until io_timeout runs out: a
 * replica answering -CAIRN_ENOTLEADER with a leader address is left for that address (added
 * to the known set if it is new); with "" (an election is running) the next known replica is
 * asked after ~100 ms; a replica that cannot be reached (refused, reset, no reply within the
 * attempt time) is left for the next one after a pause of 50..200 ms. Reads are safe to
 * repeat; mutations carry MSG_F_SEQ and a (session, seq, acked_below) trailer (meta_seq.c),
 * built once per request, so a retry resends the same bytes and the service applies it once.
 * Applications see a pause, never an error, while a new leader is elected; -EIO only when
 * io_timeout ran out. */

/* The exactly-once numbering of a session's mutations (meta_seq.c). Its own mutex. */
struct mc_seq {
    pthread_mutex_t mu;
    uint64_t session; /* 0: no session yet (mc_seq_begin fails) */
    uint64_t next;    /* seq the next request gets; from 1 */
    uint64_t *out;    /* seqs sent and not answered yet (unordered) */
    uint32_t nout, cap;
};
/* The trailer of one request: what MSG_SEQ_TRAILER carries. */
struct mc_seq_tag {
    uint64_t session, seq, acked_below;
};
void mc_seq_init(struct mc_seq *w);
void mc_seq_destroy(struct mc_seq *w);
/* Number from 1 again for a new session (nothing outstanding); no-op when it is the same. */
void mc_seq_reset(struct mc_seq *w, uint64_t session);
/* Give a new request the next seq of the current session and note it outstanding; t gets the
 * trailer: acked_below is the lowest outstanding seq (t->seq itself at most). 0, -ENOTCONN
 * (no session yet: send without a seq) or -ENOMEM. Pair with exactly one mc_seq_end. */
int mc_seq_begin(struct mc_seq *w, struct mc_seq_tag *t);
/* The request of t is over (answered or given up): no longer outstanding. A tag of an older
 * session is ignored. */
void mc_seq_end(struct mc_seq *w, const struct mc_seq_tag *t);
/* The lowest outstanding seq, or the next seq when none is outstanding. */
uint64_t mc_seq_acked_below(struct mc_seq *w);
/* 1 when requests of this type are sent with MSG_F_SEQ once there is a session. */
int mc_seq_wanted(uint16_t type);
/* Append the MSG_SEQ_TRAILER bytes of t to b. */
void mc_seq_put(struct wbuf *b, const struct mc_seq_tag *t);

/* One replica the mount knows (meta_route.c). */
struct mc_peer {
    char addr[CAIRN_ADDR_MAX + 1];
    struct rpc_conn *conn; /* created at first use; freed at mc_close, or when a learned peer
                            * is evicted (refs 0 only: no call can be using it) */
    int refs;              /* calls between mc_pick and mc_drop on this peer */
    int learned;           /* named leader by a replica, not in meta= (may be evicted) */
};

struct mc {
    pthread_mutex_t mu; /* guards the session fields and the peer table */
    uint64_t session;
    uint64_t chunk_size;
    uint32_t session_timeout_s;
    int io_timeout_ms;
    struct mc_peer peer[MC_PEERS_MAX];
    int npeer;
    int cur;        /* the peer requests go to: the leader as far as we know */
    int leader;     /* the peer that last answered as leader (-1: none yet) */
    uint64_t epoch; /* +1 per move of cur, so concurrent failures move it once */
    struct rpc_opts ropts;
    struct mc_seq seq;
    pthread_t keepalive;
    int ka_running;
    int stopping;
    pthread_cond_t stop_cv;
    char label[CAIRN_NAME_MAX + 1]; /* "host:mount point", sent with the counters */
};

/* Parse a meta= list ("host:port[,host:port...]", 1..max addresses, each a host and a port
 * 1..65535, at most CAIRN_ADDR_MAX bytes, none twice) into out[]. Returns the count or -EINVAL
 * with the reason in why. */
int mc_addrs_parse(const char *list, char (*out)[CAIRN_ADDR_MAX + 1], int max, char *why,
                   size_t whylen);
/* Set m up for the replicas of list (no I/O). 0, -EINVAL (bad list) or -ENOMEM. */
int mc_init(struct mc *m, const char *list, int io_timeout_ms);
/* mc_init, open a session (any replica, following the leader) and start the keepalive. */
int mc_open(struct mc *m, const char *list, int io_timeout_ms);
/* Close the session (if any), stop the keepalive, free every connection. */
void mc_close(struct mc *m);
uint64_t mc_session(struct mc *m);
/* Name this mount in the counters it sends the leader ("host:mount point"). */
void mc_set_label(struct mc *m, const char *label);
/* The address requests go to now (copied into out, CAIRN_ADDR_MAX + 1 bytes). */
void mc_current(struct mc *m, char *out);

/* Routing (meta_route.c), used by mc_call; pure bookkeeping, the unit tests drive it. */
struct mc_pick {
    int idx;        /* peer used */
    uint64_t epoch; /* m->epoch when picked */
    struct rpc_conn *conn;
};
enum mc_verdict {
    MC_V_LOCAL,       /* the attempt failed here (no memory, too big): nothing learned */
    MC_V_ANSWERED,    /* the peer answered as leader */
    MC_V_REDIRECT,    /* -CAIRN_ENOTLEADER naming a leader: go there */
    MC_V_NOLEADER,    /* -CAIRN_ENOTLEADER with "": try the next peer */
    MC_V_UNREACHABLE, /* transport error: try the next peer (timeout: drop its connection) */
};
/* Fill the peer table from list (mc_addrs_parse), the first address as the leader guess. */
int mc_peers_init(struct mc *m, const char *list);
/* Free every peer's connection (mc_close: no call may be running). */
void mc_peers_free(struct mc *m);
/* Hold the current peer's connection for one attempt. 0 or -ENOMEM. */
int mc_pick(struct mc *m, struct mc_pick *p);
/* Release p and act on the outcome: move cur (only if nobody moved it since p was picked, so
 * a failure seen by many threads at once moves it once), learn a named leader, log a change
 * of leader once. A redirect to a bad address or to the replica itself counts as NOLEADER.
 * err is the transport error of MC_V_UNREACHABLE; on -ETIMEDOUT the peer's connection is
 * dropped (the other calls waiting on it fail over at once). Returns the verdict applied. */
enum mc_verdict mc_drop(struct mc *m, const struct mc_pick *p, enum mc_verdict v, const char *named,
                        int err);

/* One request/reply; on 0 the caller owns rep->payload. Transport errors become -EIO. */
int mc_call(struct mc *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep);
int mc_lookup(struct mc *m, uint64_t parent, const char *name, struct cairn_attr *a);
int mc_getattr(struct mc *m, uint64_t ino, struct cairn_attr *a);
/* LOOKUP asking also for the first chunks' locations of a regular file with data (up to max
 * into ci, *n of them; 0 when the service left them out). */
int mc_lookup_chunks(struct mc *m, uint64_t parent, const char *name, struct cairn_attr *a,
                     struct chunk_info *ci, uint32_t max, uint32_t *n);
struct mc_setattr {
    uint32_t valid; /* SETATTR_* */
    uint32_t mode, uid, gid;
    uint64_t size;
    int64_t atime_s, mtime_s;
    uint32_t atime_ns, mtime_ns;
};
int mc_setattr(struct mc *m, uint64_t ino, const struct mc_setattr *s, struct cairn_attr *a);
/* umask for MKNOD, MKDIR and CREATE: the caller's umask when the meta service is to apply it
 * (the kernel left it to us for POSIX ACLs: the parent's default ACL may decide instead), or
 * MC_NO_UMASK when mode is final. */
#define MC_NO_UMASK (-1)
int mc_mknod(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint64_t rdev,
             uint32_t uid, uint32_t gid, int umask, struct cairn_attr *a);
int mc_mkdir(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, int umask, struct cairn_attr *a);
int mc_unlink(struct mc *m, uint64_t parent, const char *name);
int mc_rmdir(struct mc *m, uint64_t parent, const char *name);
int mc_rename(struct mc *m, uint64_t parent, const char *name, uint64_t newparent,
              const char *newname, uint32_t flags);
int mc_link(struct mc *m, uint64_t ino, uint64_t newparent, const char *newname,
            struct cairn_attr *a);
int mc_symlink(struct mc *m, uint64_t parent, const char *name, const char *target, uint32_t uid,
               uint32_t gid, struct cairn_attr *a);
/* out must hold CAIRN_PATH_MAX + 1 bytes. */
int mc_readlink(struct mc *m, uint64_t ino, char *out);
/* Raw READDIR reply (decoded by the caller); caller frees rep. */
int mc_readdir(struct mc *m, uint64_t ino, uint64_t cookie, uint32_t max, int plus,
               struct rpc_reply *rep);
struct mc_statfs {
    uint64_t total_bytes, free_bytes, total_inodes, free_inodes;
    uint32_t block_size, name_max;
};
int mc_statfs(struct mc *m, struct mc_statfs *out);
int mc_setxattr(struct mc *m, uint64_t ino, const char *name, const void *val, size_t len,
                uint32_t flags);
/* Raw value in rep (rcur_bytes); caller frees rep. */
int mc_getxattr(struct mc *m, uint64_t ino, const char *name, struct rpc_reply *rep);
int mc_listxattr(struct mc *m, uint64_t ino, struct rpc_reply *rep);
int mc_removexattr(struct mc *m, uint64_t ino, const char *name);
int mc_create(struct mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
              uint32_t gid, uint32_t flags, int umask, struct cairn_attr *a);
/* OPEN: attr plus up to max chunk infos (*n gets how many). */
int mc_open_file(struct mc *m, uint64_t ino, uint32_t flags, struct cairn_attr *a,
                 struct chunk_info *ci, uint32_t max, uint32_t *n);
int mc_release(struct mc *m, uint64_t ino);
int mc_chunk_locate(struct mc *m, uint64_t ino, uint64_t first, uint32_t count,
                    struct chunk_info *ci, uint32_t max, uint32_t *n);
/* A write lease for chunk index whose chain leaves out the nexcl servers excl[] (see
 * MSG_CHUNK_LEASE). Any error (the meta refusing: no server left) means no lease. */
int mc_chunk_lease(struct mc *m, uint64_t ino, uint64_t index, const uint64_t *excl, uint8_t nexcl,
                   struct chunk_info *ci);
/* Bytes a chunk server stores for one chunk of the file (for st_blocks). */
struct mc_alloc {
    uint64_t index, bytes;
};
int mc_commit(struct mc *m, uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t mtime_ns,
              uint32_t flags, const struct mc_alloc *allocs, uint32_t nallocs,
              struct cairn_attr *a);

/* ---- chunk_client.c: requests to chunk servers (prefix cc_) ------------------------------ */
struct cc_pool;
struct cc_pool *cc_pool_new(int io_timeout_ms);
void cc_pool_free(struct cc_pool *p);
int cc_io_timeout_ms(const struct cc_pool *p);

/* A parsed and verified CHK_READ reply. data points into the reply payload. */
struct cc_read_view {
    uint32_t data_offset;
    uint32_t chunk_length;
    const uint8_t *data;
    uint32_t data_len;
};
/* Parse a CHK_READ reply payload for a request (off, len) and verify every block checksum.
 * Returns 0, -EBADMSG (malformed/inconsistent) or CAIRN_ECORRUPT-negated (-EUCLEAN). */
int cc_verify_read(const uint8_t *payload, size_t plen, uint32_t off, uint32_t len,
                   struct cc_read_view *v);
/* Copy [off, off+len) of a verified view into out; bytes past the chunk length are zeros. */
void cc_copy_view(const struct cc_read_view *v, uint32_t off, uint32_t len, uint8_t *out);

/* A request in flight to one chunk server: counted in that server's load (requests in
 * flight from this client) until cc_*_finish. Pass it to exactly one finish. */
struct rpc_call;
struct cc_server;
struct cc_call {
    struct rpc_call *k;
    struct cc_server *srv;
    uint64_t t0_us; /* when submitted (cstats.h) */
};

/* Replica choice for reads. cc_rank orders n locations: servers avoided (a timeout or a
 * refused connection in the last CM_AVOID_MS) last, then by load (lowest first), ties broken
 * by distance from rr (round robin), so concurrent readers of one chunk use every copy.
 * Pure: the unit tests call it. */
void cc_rank(int n, const unsigned *load, const int *avoid, unsigned rr, int *order);
/* Ids of the servers avoided now (a transport failure in the last CM_AVOID_MS; at most max),
 * for a new lease to leave out. */
int cc_avoided_ids(struct cc_pool *p, uint64_t *out, int max);
/* Whether rc says the server could not be reached (timeout, refused, reset, unreachable,
 * down): such a server is avoided for CM_AVOID_MS. */
int cc_transport_err(int rc);
/* Mark a server avoided (a chain hop below the head failed to reach it). */
void cc_avoid(struct cc_pool *p, const char *addr, uint64_t id);
/* The order in which to try ci's locations now (order[0..nloc)): cc_rank over the servers'
 * loads in steps of CM_LOAD_BAND, ties broken from the copy the chunk id prefers, so
 * consecutive chunks of a file start on different copies. */
void cc_order(struct cc_pool *p, const struct chunk_info *ci, int *order);

int cc_read_submit(struct cc_pool *p, const char *addr, uint64_t chunk_id, uint32_t version,
                   uint32_t off, uint32_t len, uint64_t deadline, struct cc_call *call);
/* Wait, verify and copy into out (len bytes, zero-filled past the chunk's end). A transport
 * failure (timeout, refused, reset) marks the server avoided. */
int cc_read_finish(struct cc_call *call, uint64_t deadline, uint32_t off, uint32_t len,
                   uint8_t *out);
/* SEEK_DATA or SEEK_HOLE (whence) from off inside chunk ci (MSG_CHK_SEEK), trying every
 * replica: 0 with *out (an offset in the chunk), -ENXIO (no data after off), or the last
 * replica's error. */
int cc_seek(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, int whence,
            uint32_t *out);
/* One request of type to the server at addr, waited for within the pool's io_timeout: 0 with
 * *rep (the caller frees it with rpc_reply_free), or the transport error or the server's
 * status (nothing to free). A transport failure marks the server avoided. */
struct rpc_reply;
int cc_request(struct cc_pool *p, const char *addr, uint16_t type, const void *req, size_t len,
               struct rpc_reply *rep);
/* Whether addr failed (timeout, refused, reset) within the last CM_AVOID_MS. */
int cc_avoided(struct cc_pool *p, const char *addr);
/* Read a piece trying every replica of ci in the order cc_order gives. */
int cc_read(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, uint32_t len,
            uint8_t *out);

/* Outcome of a chain write or truncate (MSG_CHK_WRITE / CHK_TRUNCATE reply). */
struct cc_wres {
    int status;        /* transport error or the head's status (its own write failed) */
    uint8_t chain_ok;  /* hops [0, chain_ok) hold the data (status 0 only) */
    int32_t chain_err; /* 0: every hop holds it; else hop chain_ok failed with this */
    uint64_t alloc;    /* the head's allocated bytes of the chunk (write, status 0) */
};
/* What a result means for the writer (pure). Returns 0 when every member of ci's chain holds
 * the data; -ESTALE when a member holds a newer version (take a new lease, exclude nobody);
 * otherwise 1 with *server set to the member that failed (loc[chain_ok], or loc[0] when the
 * head failed or could not be reached), to be excluded from the next lease. */
int cc_wres_verdict(const struct cc_wres *r, const struct chunk_info *ci, uint64_t *server);

/* Send one piece (len <= CAIRN_IO_MAX) down the chain ci->loc[0..nloc); the pieces of one
 * writer are spread over the pool's connections, so they are written in parallel: the caller
 * never has two pieces in flight that touch the same checksum block. A failure to send is
 * returned here (then nothing is in flight). */
int cc_write_submit(struct cc_pool *p, const struct chunk_info *ci, uint32_t off,
                    const uint8_t *data, size_t len, int sync, uint64_t deadline,
                    struct cc_call *call);
/* Wait for a piece's reply and decode it into *r (r->status carries any failure). */
void cc_write_finish(struct cc_call *call, uint64_t deadline, struct cc_wres *r);
/* Submit + finish. */
void cc_write(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, const uint8_t *data,
              size_t len, int sync, struct cc_wres *r);
void cc_truncate(struct cc_pool *p, const struct chunk_info *ci, uint32_t length,
                 struct cc_wres *r);
/* CHK_FALLOC of [off, off+len) of chunk ci with mode CHK_FALLOC_* down ci's chain, waited for;
 * r->alloc gets the head's allocated bytes afterwards. */
void cc_falloc(struct cc_pool *p, const struct chunk_info *ci, uint32_t off, uint32_t len,
               uint8_t mode, struct cc_wres *r);
/* CHK_FSYNC to every member of ci's chain at once; res[i] gets member i's outcome. A member
 * that answers -ESTALE holds a newer version (replication moved it with SETVER): it is asked
 * for the version it holds (CHK_INFO) and that one is synced, since it holds this writer's
 * data too. Returns how many members synced. */
int cc_fsync(struct cc_pool *p, const struct chunk_info *ci, int *res);

/* ---- reply_buf.c: the buffer a READ is answered from (prefix rb_) ------------------------- */
/* A page-aligned buffer of size bytes for answering one READ on this thread: the thread's own
 * (a huge page) when it is big enough, else a fresh one; give it back with rb_put. NULL when
 * out of memory. */
uint8_t *rb_get(size_t size);
void rb_put(uint8_t *buf);

/* ---- rcache.c: bounded LRU cache of file segments (prefix rc_) ---------------------------- */
struct rc_cache;
struct rc_cache *rc_new(uint64_t limit_bytes);
void rc_free(struct rc_cache *c);
/* Copy [off, off+len) of segment (ino, seg) if cached; waits for a segment being loaded.
 * Returns bytes copied (0..len) when the segment is present and valid (a short segment at
 * EOF copies less), or -ENOENT when absent. */
int rc_read(struct rc_cache *c, uint64_t ino, uint64_t seg, uint32_t off, uint32_t len,
            uint8_t *out, int timeout_ms);
/* Pin segment (ino, seg) when cached (waiting for one being loaded, up to timeout_ms): its
 * bytes (*data, *len) stay valid, even if the segment is evicted or dropped meanwhile, until
 * rc_unpin. NULL when absent or its load failed. */
struct rc_ent;
struct rc_ent *rc_pin(struct rc_cache *c, uint64_t ino, uint64_t seg, int timeout_ms,
                      const uint8_t **data, uint32_t *len);
void rc_unpin(struct rc_cache *c, struct rc_ent *e);
/* Reserve a slot for loading (ino, seg): returns 1 with *e set if the caller must load it
 * (and then call rc_end_load exactly once), 0 if it is present or being loaded, -ENOSPC when
 * the cache is full of segments being loaded. */
struct rc_ent;
int rc_begin_load(struct rc_cache *c, uint64_t ino, uint64_t seg, struct rc_ent **e);
/* Finish a load: data (malloc'd, ownership passes to the cache; len bytes) or an error. */
void rc_end_load(struct rc_cache *c, struct rc_ent *e, uint8_t *data, uint32_t len, int rc);
/* The entry being loaded is a prefetch: counted as used or wasted (cstats.h) later. */
void rc_mark_prefetch(struct rc_cache *c, struct rc_ent *e);
/* Drop every segment of ino (loading ones are discarded when they finish). */
void rc_drop_ino(struct rc_cache *c, uint64_t ino);
uint64_t rc_bytes(struct rc_cache *c);
uint64_t rc_limit(struct rc_cache *c);
/* Insert a ready segment directly (tests, demand reads). */
void rc_put(struct rc_cache *c, uint64_t ino, uint64_t seg, const uint8_t *data, uint32_t len);

/* ---- inode_state.c: per-inode state shared by all handles (prefix ist_) ------------------- */
struct ist_lease {
    struct chunk_info ci; /* version, prev_version, chain in loc[] */
    int unsynced;         /* written without CHK_WRITE_SYNC since the last fsync */
    uint64_t alloc;       /* bytes the chunk server last said it stores for the chunk */
    int alloc_dirty;      /* alloc not yet sent with a COMMIT */
};

struct ist_chunk {
    uint64_t index;
    int present; /* 0 = known hole */
    struct chunk_info ci;
};

/* Servers that failed this mount's writes to one chunk (left out of its next leases). */
struct ist_excl {
    uint64_t index;
    uint8_t n;
    uint64_t id[CM_EXCL_MAX];
};

/* A write piece sent down a chain and not yet answered (write_path.c). Pieces in flight never
 * touch the same checksum block (so their order does not matter). */
struct wp_extent; /* the dirty buffer the piece's bytes lie in (reference counted) */
struct wp_piece {
    struct wp_extent *ext;
    const uint8_t *data;
    uint64_t index;
    uint32_t off, len;
    int sync;
    uint32_t version; /* of the lease it was sent with */
    int sub;          /* submit failure, 0 = in flight */
    struct cc_call call;
    uint64_t deadline;
};

struct inode_st {
    struct inode_st *next; /* hash chain */
    uint64_t ino;
    int refs;    /* open handles + temporary users */
    int writers; /* open handles with write access */
    pthread_mutex_t mu;
    uint64_t size_meta;  /* size as the meta service last told us */
    uint64_t size_local; /* size including data written through this mount */
    int64_t mtime_s;     /* last write here (for COMMIT) */
    uint32_t mtime_ns;
    int need_commit;
    int werr; /* sticky write error, reported at flush/fsync */
    /* the attributes at the last open, for keep_cache */
    int64_t open_mtime_s;
    uint32_t open_mtime_ns;
    uint64_t open_size;
    int have_open_attr;
    uint32_t mode;
    uint32_t copies; /* the file's copies goal at the last open (attr.copies) */
    /* what the last LOOKUP said (with chunk locations, put in the cache below), and when:
     * a read-only open right after it needs no round trip (fs_ops.c) */
    struct cairn_attr lk_attr;
    uint64_t lk_ms; /* net_now_ms() of that LOOKUP, 0 = none */
    /* chunk location cache */
    struct ist_chunk *chunks;
    size_t nchunks, capchunks;
    /* write leases held in this open session */
    struct ist_lease *leases;
    size_t nleases, capleases;
    /* the dirty extent [dstart, dstart + dlen) */
    uint8_t *dbuf;
    uint64_t dstart;
    size_t dlen, dcap;
    /* write pieces in flight, oldest first (write_path.c) */
    struct wp_piece *wq; /* CM_WRITE_INFLIGHT slots, allocated at the first write out */
    int wq_n;
    /* per-chunk exclusions, kept while the file is open for writing here */
    struct ist_excl *excl;
    size_t nexcl, capexcl;
};

struct ist_table;
struct ist_table *ist_new(void);
void ist_free(struct ist_table *t);
/* Find or create the state of ino and take a reference. NULL on ENOMEM. */
struct inode_st *ist_get(struct ist_table *t, uint64_t ino);
/* Find only (with a reference), NULL if absent. */
struct inode_st *ist_find(struct ist_table *t, uint64_t ino);
void ist_put(struct ist_table *t, struct inode_st *s);
/* Chunk cache helpers; s->mu held. */
struct ist_chunk *ist_chunk_find(struct inode_st *s, uint64_t index);
int ist_chunk_set(struct inode_st *s, uint64_t index, int present, const struct chunk_info *ci);
void ist_chunks_clear(struct inode_st *s);
void ist_chunks_drop_from(struct inode_st *s, uint64_t first_index);
struct ist_lease *ist_lease_find(struct inode_st *s, uint64_t index);
struct ist_lease *ist_lease_add(struct inode_st *s, const struct chunk_info *ci);
void ist_lease_drop(struct inode_st *s, uint64_t index);
void ist_leases_clear(struct inode_st *s);
/* Exclusions (s->mu held). add: 0, or -ENOSPC when CM_EXCL_MAX servers are excluded already
 * (adding one twice is a no-op); get: the set of index (NULL when empty, valid until the next
 * change); clear: every chunk's, or those of chunks >= first_index. */
int ist_excl_add(struct inode_st *s, uint64_t index, uint64_t server_id);
const struct ist_excl *ist_excl_get(struct inode_st *s, uint64_t index);
void ist_excl_clear(struct inode_st *s);
void ist_excl_drop_from(struct inode_st *s, uint64_t first_index);
/* What recent meta replies said about an inode's xattrs, so that getxattr/listxattr can be
 * answered here without a round trip: every attribute reply carries ATTR_F_XATTRS, and
 * coreutils `ls -l` asks for security.selinux and the POSIX ACLs of every entry, the kernel
 * for security.capability before every write. A fact holds until its deadline (attr_timeout
 * after the reply, like the kernel's attribute cache); the table is a fixed-size, striped,
 * direct-mapped cache, so a fact may also be forgotten early. Thread safe.
 *
 * A change through this mount takes a ticket before it asks meta and calls ist_xa_forget
 * once meta has answered; a note whose ticket is older than a forget is dropped, so a reply
 * that left meta before the change cannot bring back a stale "none" afterwards. */
#define IST_XA_NONE 1u  /* the inode has no xattr at all */
#define IST_XA_NOCAP 2u /* the inode has no security.capability */
/* Take before sending the request whose reply will be noted. */
uint64_t ist_xa_ticket(struct ist_table *t);
/* Note the xattr flag of an attribute reply (a->flags & ATTR_F_XATTRS), valid ttl_ms. */
void ist_xa_note_attr(struct ist_table *t, const struct cairn_attr *a, uint64_t ttl_ms,
                      uint64_t ticket);
/* Note that meta answered -ENODATA for security.capability, valid ttl_ms. */
void ist_xa_note_nocap(struct ist_table *t, uint64_t ino, uint64_t ttl_ms, uint64_t ticket);
/* The facts (IST_XA_*) that hold now for ino; 0 when nothing is known. */
uint32_t ist_xa_facts(struct ist_table *t, uint64_t ino);
/* Drop what is known about ino (after a setxattr/removexattr through this mount). */
void ist_xa_forget(struct ist_table *t, uint64_t ino);

static inline uint64_t ist_size(const struct inode_st *s)
{
    return s->size_local > s->size_meta ? s->size_local : s->size_meta;
}

/* ---- the mount ----------------------------------------------------------------------------- */
struct fuse_session;

struct cm {
    struct cm_cfg cfg;
    struct mc meta;
    struct cc_pool *cc;
    struct ist_table *inodes;
    struct rc_cache *cache;
    struct rp_prefetcher *pf;
    struct kv_table *kview;
    struct ds_table *scans;  /* NULL: no prefetch for directory scans (dir_prefetch=0) */
    struct dcache *dcache;   /* the local disk cache (dcache.h); NULL without cache_dir */
    struct lr *local;        /* reads in place (local_read.c); NULL with local_reads=0 */
    struct ma_queue *notify; /* opens and releases told after the fact (meta_async.c) */
    struct at_queue *atime;  /* reads noted for access times (atime.c) */
    struct lk_table *locks;  /* the locks this mount holds (locks.c) */
    struct fuse_session *se; /* for cache invalidations sent to the kernel */
    int posix_acl;           /* the kernel enforces POSIX ACLs (FUSE_CAP_POSIX_ACL) */
    int dont_mask;           /* the kernel leaves the umask to us (FUSE_CAP_DONT_MASK) */
};

/* ---- local_read.c: chunk files of servers on this machine, read in place (prefix lr_) ------ */
struct lr;
/* NULL when the kernel's boot id cannot be read (then nothing is read in place). */
struct lr *lr_new(struct cc_pool *cc);
void lr_free(struct lr *l);
/* [off, off+len) of chunk ci into out (zeros past the chunk's length), read in place from the
 * copy of a local server and checked against its block checksums: 0; -EAGAIN when no copy is
 * local (or none opens); another negative errno when the local copy could not serve it (another
 * version, a bad block, a write at work). On anything but 0 the caller reads from a server. */
int lr_read(struct lr *l, const struct chunk_info *ci, uint32_t off, uint32_t len, uint8_t *out);
/* The read of lr_read from the open chunk file fd (chunkfile.h; dfd: the same file opened
 * O_DIRECT, or -1): [off, off+len) of chunk id at exactly version into out, every block checked.
 * A range that starts a block, into a page-aligned out, is read through dfd before the header
 * and checksums (read last, so that they vouch for it) and leaves the data out of the page
 * cache; other reads go through the page cache (header, checksums, data, header again) and drop
 * the whole blocks they read from it. 0; -ESTALE when the file holds another version, carries a
 * bad mark or was deleted; -EUCLEAN (CAIRN_ECORRUPT) for a block that fails its checksum, a
 * damaged header or a file shorter than its header says; another negative errno from the disk. */
int lr_read_file(int fd, int dfd, uint64_t id, uint32_t version, uint32_t off, uint32_t len,
                 uint8_t *out);

/* ---- kview.c: attributes the kernel holds (prefix kv_) -------------------------------------- */
struct kv_table;
struct kv_table *kv_new(void);
void kv_free(struct kv_table *t);
/* Record the size and mtime just handed to the kernel for ino. */
void kv_note(struct kv_table *t, uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t mtime_ns);
/* 1 when the kernel was last told exactly these (so its cache needs no invalidation). */
int kv_same(struct kv_table *t, uint64_t ino, uint64_t size, int64_t mtime_s, uint32_t mtime_ns);

/* ---- read_path.c (prefix rp_) -------------------------------------------------------------- */
/* A piece of a byte range that lies inside one chunk. */
struct rp_piece {
    uint64_t index;   /* chunk index */
    uint32_t off;     /* offset inside the chunk */
    uint32_t len;     /* <= max_piece */
    uint64_t buf_off; /* offset in the caller's buffer */
};
/* Split [off, off+len) at chunk boundaries and into pieces of at most max_piece bytes.
 * Returns the number of pieces written (at most max), or -E2BIG if max is too small. */
int rp_split(uint64_t off, uint64_t len, uint64_t chunk_size, uint32_t max_piece,
             struct rp_piece *out, int max);

/* A read of len bytes is split into pieces of this size (a multiple of the checksum block):
 * up to fanout (read_pieces=) pieces of at least RP_PIECE_MIN, sent at once to the copies
 * and connections, so that one large read keeps several disks and server threads busy; 1 (the
 * default) keeps a read in one piece (CAIRN_IO_MAX at most). */
#define RP_PIECE_MIN (128u << 10)
uint32_t rp_piece_size(uint64_t len, int fanout);

/* Per open file read-ahead state. */
struct rp_ra {
    uint64_t next_off; /* where a sequential reader reads next */
    uint64_t window;   /* current read-ahead bytes (0 = off) */
    uint64_t done_to;  /* prefetch issued up to here */
    unsigned streak;   /* reads in a row that followed on */
};
/* Reads in a row that must follow on before the window opens: a shuffled reader of records
 * lands next to its last one now and then (1 in 40 for 128 records a file), and the kernel's own
 * read-ahead (kernel_readahead) covers the start of a sequential one anyway. */
#define RP_RA_STREAK 3
/* Account a read of [off, off+len); once RP_RA_STREAK reads in a row followed on (within one
 * request of where the last ended, either way: the kernel's async reads overtake each other),
 * grows the window (doubling from CM_RA_MIN up to max); a read elsewhere resets it to 0.
 * Returns the window. */
uint64_t rp_ra_update(struct rp_ra *ra, uint64_t off, uint64_t len, uint64_t max);

struct rp_prefetcher *rp_prefetcher_new(struct cm *cm, int nthreads);
struct ds_file; /* dirscan.c */
/* Segments of a file prefetched ahead of a directory scan (dirscan.c). */
#define RP_FILE_SEGS 4
/* Queue the prefetch of a file a directory scan is about to open (dropped when the queue is
 * full). */
void rp_prefetch_file(struct cm *cm, const struct ds_file *f);
void rp_prefetcher_free(struct rp_prefetcher *p);
/* Read up to len bytes at off of the file into out; *got gets the bytes (short at EOF). */
int rp_read(struct cm *cm, struct inode_st *s, struct rp_ra *ra, uint64_t off, size_t len,
            uint8_t *out, size_t *got);
/* rp_read, but with pin given, a read that lies in one segment the read cache holds is not
 * copied: *pin gets that segment pinned and *data points at the bytes; the caller replies from
 * them, then calls rc_unpin(cm->cache, *pin). Otherwise *pin is NULL and *data is out. With pin
 * NULL (data unused) it is rp_read. */
int rp_read_pinned(struct cm *cm, struct inode_st *s, struct rp_ra *ra, uint64_t off, size_t len,
                   uint8_t *out, const uint8_t **data, size_t *got, struct rc_ent **pin);
/* Whether reads of s may use the disk cache (s->mu held): the file is as it was opened here
 * and nothing is being written to it through this mount; *tag gets the entry tag for its
 * attributes at open (a file changed since has another tag). */
int rp_disk_cacheable(const struct inode_st *s, uint64_t *tag);
/* Chunk info for (s, index): cached or located. *present = 0 for a hole. s->mu held. */
int rp_locate(struct cm *cm, struct inode_st *s, uint64_t index, struct chunk_info *ci,
              int *present);

/* ---- write_path.c (prefix wp_) ------------------------------------------------------------- */
/* Buffer a write (s->mu held by the callee, not the caller). */
int wp_write(struct cm *cm, struct inode_st *s, uint64_t off, const void *data, size_t len);
/* Write out the dirty buffer and wait for every piece in flight (s->mu held). */
int wp_flush_locked(struct cm *cm, struct inode_st *s, int sync);
/* Make [off, off+len) of the file readable from the chunk servers: when dirty or in-flight
 * data overlaps it, write everything out and wait (s->mu held). */
int wp_readable_locked(struct cm *cm, struct inode_st *s, uint64_t off, uint64_t len);
/* Write out dirty data and publish size/mtime (COMMIT). sync: durable on every replica. */
int wp_flush(struct cm *cm, struct inode_st *s, int sync);
/* Truncate to size through meta, then cut the last chunk (s may be NULL). */
int wp_truncate(struct cm *cm, uint64_t ino, struct inode_st *s, const struct mc_setattr *sa,
                struct cairn_attr *out);
/* The write lease of chunk index, taken now if not held (s->mu held). The pointer is valid
 * until the next lease is added or dropped. */
int wp_lease(struct cm *cm, struct inode_st *s, uint64_t index, struct ist_lease **out);
/* After a change of chunk index under lease `version` failed with *r: exclude the failed
 * server (not for -ESTALE) and take a new lease (s->mu held). */
int wp_relet(struct cm *cm, struct inode_st *s, uint64_t index, const struct cc_wres *r,
             uint32_t version, struct ist_lease **out);
/* COMMIT size, mtime and the allocated bytes of every lease not yet published (in batches),
 * when anything is owed (s->mu held). */
int wp_commit_locked(struct cm *cm, struct inode_st *s);

/* ---- falloc.c: fallocate (prefix fa_) ------------------------------------------------------ */
/* fallocate(2) of [off, off+len) with mode 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE or
 * ZERO_RANGE|KEEP_SIZE; -EOPNOTSUPP for any other mode, -ENOSPC when the chunk servers cannot
 * reserve the space (nothing stays reserved then), -EIO when no chunk server could take it. */
int fa_fallocate(struct cm *cm, struct inode_st *s, int mode, uint64_t off, uint64_t len);

/* ---- dirscan.c: opens in directory order (prefix ds_) ------------------------------------ */
#define DS_AHEAD 16                /* most files handed out ahead of a scanning reader */
#define DS_AHEAD_BYTES (32u << 20) /* and most bytes of them */
/* A regular file of a listing; size and mtime are 0 when the listing had no attributes. */
struct ds_file {
    uint64_t ino;
    uint32_t mode;
    uint64_t size;
    int64_t mtime_s;
    uint32_t mtime_ns;
    int have_attr;
};
struct ds_table;
struct ds_table *ds_new(void);
void ds_free(struct ds_table *t);
/* A READDIR(PLUS) of dir from cookie (0: the start) up to cookie end listed the regular
 * files e[0..n) (in order; other entries are skipped). */
void ds_note_listing(struct ds_table *t, uint64_t dir, uint64_t cookie, uint64_t end,
                     const struct ds_file *e, uint32_t n);
/* ino was opened for reading: the files to prefetch now (each handed out once; at most max,
 * and at most max_bytes of them ahead of the reader) when the opens in its directory follow
 * the listing. Returns how many were written to out. */
int ds_on_open(struct ds_table *t, uint64_t ino, struct ds_file *out, int max, uint64_t max_bytes);

/* ---- meta_async.c: opens and releases told after the fact (prefix ma_) ---------------------- */
/* A read-only open within this many ms of a LOOKUP that brought the file's attributes and
 * chunk locations is answered without asking meta (the LOOKUP was part of the same open(2)
 * path walk; a later open asks as usual, for close-to-open consistency). */
#define CM_LOOKUP_FRESH_MS 20
struct ma_queue;
struct ma_queue *ma_new(struct mc *m);
/* ---- atime.c: access times, noted on reads and sent lazily (prefix at_) ----------------- */
enum { AT_MODE_RELATIME, AT_MODE_STRICT, AT_MODE_NOATIME };
struct at_queue;
/* A queue whose thread sends notes to the leader every second (none for noatime). */
struct at_queue *at_new(struct mc *meta, int mode);
/* Send what is pending, stop and free. NULL is ignored. */
void at_free(struct at_queue *q);
/* ino was read now (cheap: a hash insert under a lock; nothing for noatime or q NULL). */
void at_note(struct at_queue *q, uint64_t ino);
/* "relatime", "strictatime", "noatime" -> AT_MODE_*, else -EINVAL. */
int at_mode_parse(const char *s);
void ma_free(struct ma_queue *q);
/* Queue an OPEN (flags) of ino: 0, or -EAGAIN when the queue is full (open the usual way). */
int ma_open(struct ma_queue *q, uint64_t ino, uint32_t flags);
/* Wait until everything queued so far was sent (before an unlink or a rename, so the opens of
 * this mount are counted first). */
void ma_drain(struct ma_queue *q);
/* Queue a RELEASE of ino after the opens queued before it (waits for room). 0 or
 * -ESHUTDOWN at unmount (the session's close releases it). */
int ma_release(struct ma_queue *q, uint64_t ino);

/* ---- locks.c: flock and POSIX locks across clients (prefix lk_) ------------------------------
 * Every lock is the meta leader's to grant (MSG_LOCK); the table keeps what this mount holds,
 * for releases at close and reclaims after a failover (see locks.c). Thread safe. */
struct ls_lock;
struct lk_table;
/* A table and its thread that reclaims the locks after a change of meta leader. NULL: ENOMEM. */
struct lk_table *lk_new(struct mc *meta);
/* Stop and free (the locks still held go with the session's close). NULL is ignored. */
void lk_free(struct lk_table *t);
/* Whether the request waiting for a lock was interrupted (fuse_req_interrupted). */
typedef int (*lk_intr_fn)(void *arg);
/* Set or release want (ino, owner, kind, type, range, pid; tag: the open file it comes
 * through; session is filled in here). wait: until granted (polling, see locks.c) or intr
 * says the caller was interrupted (-EINTR). 0, -EAGAIN (held by another owner, without wait),
 * -EINTR, -ENOLCK (no answer: grace too long, no memory), -EIO. */
int lk_set(struct lk_table *t, const struct ls_lock *want, int wait, lk_intr_fn intr, void *arg);
/* F_GETLK: 1 with the first conflicting lock in *out (pid 0 when another mount holds it), 0
 * when want could be set, or -errno. */
int lk_test(struct lk_table *t, const struct ls_lock *want, struct ls_lock *out);
/* FUSE FLUSH: a descriptor of owner closed: release owner's POSIX locks on ino (a round trip
 * only when it holds some). */
void lk_flush(struct lk_table *t, uint64_t ino, uint64_t owner);
/* FUSE RELEASE of the open file tag: release the locks taken through it (OFD, flock; and the
 * POSIX locks of owners last seen using it), and flock_owner's flock (0: none). */
void lk_release(struct lk_table *t, uint64_t ino, uint64_t tag, uint64_t flock_owner);
/* Whether this mount holds a lock on ino. */
int lk_ino_locked(struct lk_table *t, uint64_t ino);

/* ---- kernel_tune.c (prefix kt_) ----------------------------------------------------------- */
/* Once the mount at mnt has answered the kernel's INIT (a thread waits for it), set the
 * kernel's read-ahead for it to readahead_bytes (0: leave the default). Failures are logged. */
void kt_start(const char *mnt, uint64_t readahead_bytes);
/* Write the read-ahead of the backing device dev. 0 or -errno. */
#include <sys/types.h>
int kt_set_readahead(dev_t dev, uint64_t bytes);

/* ---- fs_ops.c ------------------------------------------------------------------------------ */
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops fs_ops;

#endif
