/* cli_meta.h - how the cairn command finds and talks to the meta service.
 *
 * Finding it (first that applies): the --meta ADDR[,ADDR...] option; the CAIRN_META
 * environment variable; for a PATH the read-only xattr user.cairn.meta that the mount answers;
 * without a PATH the same xattr on the root of the first fuse.cairn mount in /proc/self/mounts;
 * else CLI_META_DEFAULT.
 *
 * Talking to it: one connection per address for the life of the process. The meta service is a
 * Raft group of replicas and only the leader serves requests: a replica that is not the leader
 * answers -CAIRN_ENOTLEADER with the leader's address (proto.h). A call starts at the address
 * that answered last and follows those answers: to the address named (added to the list when
 * it is not in it); on "" (an election runs) it waits CLI_ELECTION_PAUSE_MS and asks the next
 * address; on a connection error it asks the next address. Each connect is bounded (about
 * 2 s x 2 attempts). When every address failed to connect and none answered, or no leader was
 * found within CLI_LEADER_WAIT_MS, the call fails with a sentence saying which, and the list is
 * marked unreachable so that later calls (a -r walk of many files) fail at once with the same
 * message instead of waiting again. A reply is awaited at most CLI_REPLY_MS (a call may ask for
 * longer); no reply in that time is an error, not a reason to ask another replica. */
#ifndef CAIRN_CLI_META_H
#define CAIRN_CLI_META_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cli.h"
#include "rpc.h"

#define CLI_META_DEFAULT "127.0.0.1:9520"
#define CLI_META_XATTR "user.cairn.meta"
#define CLI_ADDRS_LEN 512         /* an address list */
#define CLI_ADDRS_MAX 8           /* addresses in one list */
#define CLI_META_SLOTS 16         /* a list's addresses plus leaders learnt from redirects */
#define CLI_LEADER_WAIT_MS 5000   /* bound of looking for the leader in one call */
#define CLI_ELECTION_PAUSE_MS 100 /* wait after "no leader known" before the next address */
#define CLI_REPLY_MS 10000        /* default bound of waiting for one reply */

/* The address list to use for path (see above) into out. Returns 1 when it is only the
 * default (nothing named one), else 0. */
int cli_meta_addr_for_path(const struct cli *c, const char *path, char *out, size_t len);
/* The address list to use without a path (see above) into out. */
void cli_meta_addr_default(const struct cli *c, char *out, size_t len);
/* For commands about the whole cluster (status, health, top): the cluster of path (a path on
 * a mount, unless --meta or $CAIRN_META name one) or, path NULL, cli_meta_addr_default.
 * Returns CLI_OK, or CLI_USAGE after a message when path is not on a CairnFS mount. */
int cli_meta_addr_cluster(const struct cli *c, const char *path, char *out, size_t len);

/* Whether st (of a path) lives on a CairnFS mount: its device is a fuse.cairn mount in
 * /proc/self/mountinfo. 0 yes, -EXDEV no, other -errno when mountinfo cannot be read. */
int cli_on_cairn_mount(const struct stat *st);

struct cli_meta;
/* Everything a command needs to act on path: stat(2) of it (following symlinks; st_ino is
 * the inode number the meta service knows), a check that it is on a CairnFS mount, and the
 * connection for its address list. 0, or a negative errno with a sentence in why. */
int cli_meta_for_path(const struct cli *c, const char *path, struct stat *st, struct cli_meta **m,
                      char *why, size_t len);
/* Whether an inode's type in the meta service's attributes matches the mount's stat: a
 * mismatch means the address belongs to another cluster. 0, or -ESTALE with a sentence. */
int cli_meta_check_type(const struct cli_meta *m, uint32_t meta_mode, mode_t st_mode, char *why,
                        size_t len);
/* The connection for an address list (created at the first use; kept until
 * cli_meta_close_all). NULL on ENOMEM or a list that is empty or too long. */
struct cli_meta *cli_meta_get(const char *addrs);
/* Send one request (payload req, may be NULL for an empty one) to the leader, following
 * redirects as above, and wait for the reply. Returns 0 with rep->payload owned by the caller
 * (rpc_reply_free), or a negative errno: the leader's status, a transport error, or -EAGAIN
 * when no leader was found in time. Either way cli_meta_why() says what happened in a
 * sentence ("cannot reach the meta service at 127.0.0.1:9520: Connection refused"). */
int cli_meta_call(struct cli_meta *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep);
/* The same with the reply awaited up to reply_ms (META_ADD waits until the new replica has
 * caught up, up to a minute). */
int cli_meta_call_wait(struct cli_meta *m, uint16_t type, const struct wbuf *req,
                       struct rpc_reply *rep, int reply_ms);
/* Whether the last cli_meta_call on m sent its request again after a connection was lost
 * while waiting for the reply: the first one may have been carried out, so an "already done"
 * answer (-EEXIST to an add, -ENOENT to a remove) may be the first attempt's success. */
int cli_meta_resent(const struct cli_meta *m);
/* One request to the replica at addr (a member of m's list or not), without following
 * redirects: for MSG_META_STATUS, which every replica answers about itself. Returns 0 with
 * *rep whatever its status (the caller owns rep->payload and frees it with rpc_reply_free;
 * cli_meta_why() spells out a negative status), or a negative transport error (no
 * connection, no reply) that cli_meta_why() describes. */
int cli_meta_call_at(struct cli_meta *m, const char *addr, uint16_t type, const struct wbuf *req,
                     struct rpc_reply *rep);
/* The address list of m as given ("a:1,b:2"), its number of addresses and the i-th. */
const char *cli_meta_list(const struct cli_meta *m);
int cli_meta_naddrs(const struct cli_meta *m);
const char *cli_meta_addr(const struct cli_meta *m, int i);
/* Whether s looks like HOST:PORT (a host without ',', ' ' or control characters, a port
 * 1..65535) and fits CAIRN_ADDR_MAX. */
int cli_addr_valid(const char *s);
/* Whether no address of m answered (every later call fails at once). */
int cli_meta_unreachable(const struct cli_meta *m);
/* The message for the last failed call on m. */
const char *cli_meta_why(const struct cli_meta *m);
/* Close every connection (at exit). */
void cli_meta_close_all(void);

#endif
