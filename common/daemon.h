/* daemon.h - running a program in the background: the parent waits until the child says it
 * is ready (or failed), so `cairn-meta --daemon` exits 0 only once the daemon serves; plus
 * pid files and the limit of open files. Shared by cairn-meta, cairn-chunk and cairn-mount. */
#ifndef CAIRN_DAEMON_H
#define CAIRN_DAEMON_H

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
/* Write the current pid to path. 0 or -errno. */
int pidfile_write(const char *path);

#endif
