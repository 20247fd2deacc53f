/* cli_meta.h - how the cairn command finds and talks to the meta service.
 *
 * Finding it (first that applies): the --meta ADDR[,ADDR...] option; the CAIRN_META
 * environment variable; for a PATH the read-only xattr user.cairn.meta that the mount answers;
 * without a PATH the same xattr on the root of the first fuse.cairn mount in /proc/self/mounts;
 * else CLI_META_DEFAULT.
 *
 * Talking to it: one connection per address list for the life of the process. A call tries the
 * address that answered last, then the others in order, each with a bounded connect (about
 * 2 s x 2 attempts); when none answers the list is marked unreachable, so later calls (a -r walk
 * of many files) fail at once with the same message instead of waiting again. */
#ifndef CAIRN_CLI_META_H
#define CAIRN_CLI_META_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cli.h"
#include "rpc.h"

#define CLI_META_DEFAULT "127.0.0.1:9520"
#define CLI_META_XATTR "user.cairn.meta"
#define CLI_ADDRS_LEN 512 /* an address list */
#define CLI_ADDRS_MAX 8   /* addresses in one list */

/* The address list to use for path (see above) into out. Returns 1 when it is only the
 * default (nothing named one), else 0. */
int cli_meta_addr_for_path(const struct cli *c, const char *path, char *out, size_t len);
/* The address list to use without a path (see above) into out. */
void cli_meta_addr_default(const struct cli *c, char *out, size_t len);

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
/* Send one request (payload req, may be NULL for an empty one) and wait for the reply.
 * Returns 0 with rep->payload owned by the caller (rpc_reply_free), or a negative errno:
 * the server's status, or a transport error. Either way cli_meta_why() says what happened
 * in a sentence ("cannot reach the meta service at 127.0.0.1:9520: Connection refused"). */
int cli_meta_call(struct cli_meta *m, uint16_t type, const struct wbuf *req, struct rpc_reply *rep);
/* Whether no address of m answered (every later call fails at once). */
int cli_meta_unreachable(const struct cli_meta *m);
/* The message for the last failed call on m. */
const char *cli_meta_why(const struct cli_meta *m);
/* Close every connection (at exit). */
void cli_meta_close_all(void);

#endif
