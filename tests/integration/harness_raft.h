/* harness_raft.h - a Raft group of cairn-meta replicas for the integration tests
 * (test_raft_*.c, test_mount_raft_*.c): start N replicas, find the serving leader, kill -9 a
 * replica and start it again on its data, add and remove members through `cairn meta`, cut one
 * replica off from the others with network namespaces, compare the replicas' stores, and a
 * small wire client that follows the leader and numbers its mutations (exactly-once).
 *
 * The group lives in struct hraft_group next to an h_cluster (harness.h) whose meta_addr is the
 * list of the first replicas' addresses, so chunk servers (h_cs_start) and mounts (h_mount_opts)
 * of that cluster are given the whole list. Every process is recorded and killed by PID; every
 * wait is bounded. Unless a function says otherwise it returns 0 or a negative errno and does
 * not call Check (the runner and the client's users do).
 *
 * Replicas run on 127.0.0.1, or (hraft_init with netns) each in a network namespace of its own
 * with an address NET.K on a bridge that the test process reaches through a veth of its own
 * (NET.254): hraft_partition then really cuts the traffic between one replica and the others
 * (blackhole routes inside the namespaces) while the test still talks to each of them. */
#ifndef CAIRN_HARNESS_RAFT_H
#define CAIRN_HARNESS_RAFT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "harness.h"
#include "harness_run.h"
#include "proto.h"
#include "rpc.h"

#define HRAFT_MAX 7

struct hraft_replica {
    uint64_t id;   /* Raft id: 1.. in peers order; a joined replica's from `cairn meta add` */
    pid_t pid;     /* 0 when not running */
    uint16_t port; /* client port; Raft uses port + 1 */
    char host[24];
    char addr[40];  /* host:port */
    char dir[300];  /* its --data_dir */
    char log[300];  /* its stdout and stderr */
    char ns[40];    /* its network namespace ("" = the test's) */
    int joiner;     /* started with --join (not one of the first members) */
    int removed;    /* taken out of the group by hraft_remove */
    int started_at; /* how many times it was started */
};

struct hraft_group {
    struct h_cluster c; /* folder, chunk servers, mounts; c.meta_addr = the first members */
    int n;              /* slots used in r */
    struct hraft_replica r[HRAFT_MAX];
    char peers[256]; /* --peers of the first members */
    char opts[512];  /* extra cairn-meta options of every replica ("key=value ...") */
    /* network namespaces (hraft_init with netns) */
    int netns;
    char nsp[24]; /* namespace names are NSP-hub and NSP-mK */
    char net[16]; /* "10.213.7": the /24 of the replicas */
    char root_link[16];
    int cut; /* 1 + the replica hraft_partition cut off, 0 = none */
    int stopped;
};

/* ---- the group ------------------------------------------------------------------------------- */

/* Make g's folder PARENT/TAG-XXXXXX (PARENT NULL: under /tmp), choose the addresses of n
 * replicas (ports P with P+1 free too) and remember opts ("election_timeout_ms=500 ..."; may be
 * NULL) for every replica. netns: put each replica in a namespace of its own (see above);
 * -EOPNOTSUPP when this machine cannot (why says why; nothing is left behind). */
int hraft_init(struct hraft_group *g, const char *parent, const char *tag, int n, const char *opts,
               int netns, char *why, size_t wlen);
/* Start replica i (first start or restart on its data folder) and wait (10 s) for its port. */
int hraft_start(struct hraft_group *g, int i);
/* Start every replica of the first n. */
int hraft_start_all(struct hraft_group *g);
/* Stop replica i with sig (SIGKILL: a crash) and wait until it is gone (10 s, then SIGKILL).
 * Works from a forked test too. */
int hraft_kill(struct hraft_group *g, int i, int sig);
/* Whether replica i runs. */
int hraft_running(struct hraft_group *g, int i);
/* Comma-separated client addresses of the replicas that run and were not removed. */
void hraft_list(struct hraft_group *g, char *out, size_t len);
/* Index of the replica with Raft id id, or -ENOENT. */
int hraft_index_of(struct hraft_group *g, uint64_t id);

/* ---- what the replicas say ------------------------------------------------------------------- */

struct hraft_member {
    uint64_t id;
    char addr[CAIRN_ADDR_MAX + 1];
    int role; /* META_ROLE_* */
    int reachable;
    uint64_t match_index;
};

/* MSG_META_STATUS of one replica (proto.h) */
struct hraft_status {
    uint64_t id;
    int state; /* META_ST_* */
    uint64_t leader_id;
    char leader_addr[CAIRN_ADDR_MAX + 1];
    uint64_t term, commit_index, applied_index, last_index;
    int n;
    struct hraft_member m[HRAFT_MAX + 2];
};

/* One request to replica i on a connection of its own, bounded by timeout_ms in all. rep may be
 * NULL; otherwise on 0 the caller frees rep->payload (rpc_reply_free). b is not freed. Returns
 * a transport error (-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT...) or the reply's status. */
int hraft_call(struct hraft_group *g, int i, uint16_t type, const struct wbuf *b,
               struct rpc_reply *rep, int timeout_ms);
/* MSG_META_STATUS of replica i (1 s at most). */
int hraft_status(struct hraft_group *g, int i, struct hraft_status *st);
/* Wait until some running replica (not in the bit mask skip) says it leads and serves (it
 * answers a GETATTR of the root); returns its index or -ETIMEDOUT. */
int hraft_wait_leader(struct hraft_group *g, unsigned skip, int timeout_ms);
/* Wait until every running replica that is not removed (and not in skip) has applied
 * everything the leader (index lead) has in its log, and nothing moved for 300 ms. */
int hraft_wait_quiet(struct hraft_group *g, int lead, unsigned skip, int timeout_ms, char *why,
                     size_t wlen);
/* One line per replica ("r2 leader t3 commit 40 applied 40 last 40 | r1 down ...") for
 * messages. */
void hraft_status_str(struct hraft_group *g, char *out, size_t len);
/* Lines of replica i's log that contain needle. */
int hraft_log_count(struct hraft_group *g, int i, const char *needle);

/* ---- membership (the cairn command) ---------------------------------------------------------- */

/* Start a fresh replica (new slot, empty data folder, --join=<the running members>) and run
 * `cairn meta add ADDR`; its id (printed by cairn) goes to the slot. Returns the slot or -errno
 * (out gets cairn's output). */
int hraft_add(struct hraft_group *g, char *out, size_t len);
/* `cairn meta remove ID` of replica i (it need not run); out gets cairn's output. */
int hraft_remove(struct hraft_group *g, int i, char *out, size_t len);

/* ---- partitions (netns groups only) ---------------------------------------------------------- */

/* Whether this machine can run a netns group (root, `ip netns`, a bridge, veth pairs): 0, or
 * -EOPNOTSUPP with the reason in why. Leaves nothing behind. */
int hraft_netns_probe(char *why, size_t wlen);
/* Cut replica i off from every other replica (both directions); the test still reaches all. */
int hraft_partition(struct hraft_group *g, int i);
/* Undo hraft_partition. */
int hraft_heal(struct hraft_group *g);

/* ---- stores ---------------------------------------------------------------------------------- */

/* Write the replicated content of replica i's store (stopped) to path: mdb_dump of every
 * database but the replica's own bookkeeping (the applied index in db meta). */
int hraft_dump_store(struct hraft_group *g, int i, const char *path);
/* Dump the stores of the replicas in mask (all stopped) and compare them with the first one:
 * 0 when equal, 1 when not (why names the database and the replicas), -errno. */
int hraft_compare_stores(struct hraft_group *g, unsigned mask, char *why, size_t wlen);
/* Stop the group for a comparison: the leader first (nothing can commit behind a stopped
 * follower), then every running replica, with SIGTERM; then hraft_compare_stores(mask). */
int hraft_stop_and_compare(struct hraft_group *g, int lead, unsigned mask, char *why, size_t len);

/* ---- chunk servers --------------------------------------------------------------------------- */

/* How many times the replicas' logs say chunk server k registered. */
int hraft_cs_registrations(struct hraft_group *g, int k);
/* Wait until that count exceeds before. */
int hraft_cs_wait_registered(struct hraft_group *g, int k, int before, int timeout_ms);

/* ---- stop ------------------------------------------------------------------------------------ */

/* Unmount, stop every process by PID, take the namespaces down, remove the folder ($KEEP: kept). */
void hraft_stop(struct hraft_group *g);
/* The runner's teardown: nothing when the test stopped its group; otherwise print the end of
 * the logs, kill everything by PID (SIGKILL), take the namespaces down and keep only the logs. */
void hraft_leftovers(struct hraft_group *g);

/* ---- a client that follows the leader -------------------------------------------------------- */

/* A wire client of the group: it sends each request to the replica it believes leads, follows
 * -CAIRN_ENOTLEADER answers and tries the other replicas on transport errors, and numbers its
 * mutations (MSG_F_SEQ) so that a retry is answered with the first outcome. Used from one
 * thread at a time. */
struct hraft_client {
    struct hraft_group *g;
    int cur; /* replica it talks to */
    struct rpc_conn *conn;
    uint64_t session, next_seq;
    uint64_t ka_ms; /* when the session was last kept alive */
    int retries;    /* requests sent again (failover) */
};

/* Open a session (retrying for up to timeout_ms). */
int hraft_client_open(struct hraft_client *cl, struct hraft_group *g, int timeout_ms);
void hraft_client_close(struct hraft_client *cl);
/* Send one request (numbered when numbered) until it is answered by a leader or timeout_ms
 * passed: returns the leader's status (rep as hraft_call) or -ETIMEDOUT. */
/* A SETXATTR request (b initialised here) setting user.big on ino to len bytes that say which
 * round wrote them: large log entries that fill a log or a disk quickly. */
#define HRAFT_BIG_XATTR 60000
void hraft_big_xattr_req(struct wbuf *b, uint64_t ino, int round);
int hraft_client_call(struct hraft_client *cl, uint16_t type, const struct wbuf *b, int numbered,
                      struct rpc_reply *rep, int timeout_ms);
/* MSG_MKDIR of name under parent (numbered); *ino gets the new inode (may be NULL). */
int hraft_client_mkdir(struct hraft_client *cl, uint64_t parent, const char *name, uint64_t *ino,
                       int timeout_ms);

/* Encoders of the requests the tests send. */
void hraft_put_mkdir(struct wbuf *b, uint64_t parent, const char *name);
void hraft_put_lookup(struct wbuf *b, uint64_t parent, const char *name);
/* Names in directory ino through replica i (READDIR, every page), one per line into out
 * (sorted), *n the count. -ENOSPC when out is too small. */
int hraft_readdir(struct hraft_group *g, int i, uint64_t ino, char *out, size_t len, int *n);

/* ---- the runner ------------------------------------------------------------------------------ */

/* The group of the running test case (memory shared with the runner, see hraft_main). */
extern struct hraft_group *hraft_g;

/* main() of a test binary: a group record shared with the runner (a child subreaper, which
 * runs hraft_leftovers after each test case), a folder /tmp/cairn-test-TAG-XXXXXX for the
 * groups (hraft_root), each test in its own test case (timeout_s) of suite SUITE. When skip is
 * not NULL no test runs: the binary says "SKIPPED: <skip>" and its summary counts no checks
 * (not a pass). Returns main's exit status. */
int hraft_main(const char *tag, const char *suite, const struct h_test *tests, size_t n,
               int timeout_s, const char *skip);
/* The folder hraft_main made (the parent for hraft_init). */
extern char hraft_root[256];

/* Milliseconds of a monotonic clock and a sleep. */
uint64_t hraft_now_ms(void);
void hraft_sleep_ms(int ms);

#endif
