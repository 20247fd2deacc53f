/* daemon.h - running a program in the background: the parent waits until the child says it
 * is ready (or failed), so `cairn-meta --daemon` exits 0 only once the daemon serves; plus
 * pid files and the limit of open files. Shared by cairn-meta, cairn-chunk and cairn-mount. */
#ifndef CAIRN_DAEMON_H
#define CAIRN_DAEMON_H

#include <stddef.h>

/* Fork; the parent waits for daemon_done() of the child and exits with its status. In the
 * child, returns 0 with *fd_out the pipe to pass to daemon_done. */
int daemon_start(int *fd_out);
/* Tell the waiting parent the status (0 = ready); on 0 detach stdin/stdout (and stderr unless
 * keep_stderr). The working folder stays, so relative data paths keep working. fd < 0 does
 * nothing. */
void daemon_done(int fd, int status, int keep_stderr);
/* Raise the limit of open files to its ceiling (every connection, open chunk file and chunk file
 * read in place takes one). Returns the limit now. */
long daemon_raise_nofile(void);
/* The kernel's boot id (/proc/sys/kernel/random/boot_id, 36 characters) into out (cap bytes,
 * NUL-terminated): its length, or a negative errno. Two processes with the same one run on the
 * same kernel (local reads, client-fuse/local_read.c and chunk/cs_local.c). */
int daemon_boot_id(char *out, size_t cap);
/* Write the current pid to path. 0 or -errno. */
int pidfile_write(const char *path);

#endif
