/* cs_local.c - the MSG_CHK_LOCAL reply: what a client on this machine needs to read this
 * server's chunk files in place (client-fuse/local_read.c). The kernel's boot id tells the
 * client it runs on the same kernel; each data folder in service goes with its device and inode
 * number, which the client compares with what it sees at that path (another mount namespace or
 * container sees other folders, or none); the server's pid and pid namespace let the client
 * notice when this server dies, and stop reading its files then. Nothing here opens a chunk: the
 * client opens the files itself, checks their headers and every block's checksum, and falls back to
 * a CHK_READ. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs.h"
#include "daemon.h"

int cs_local_put(struct cs_state *s, struct wbuf *out)
{
    if (!s->cfg.local_reads) return -EOPNOTSUPP;
    char id[64];
    int n = daemon_boot_id(id, sizeof(id));
    if (n < 0) return -EOPNOTSUPP;
    struct cstore *st = &s->store;
    struct {
        const char *path;
        struct stat sb;
    } dirs[CSTORE_MAX_DIRS];
    int nd = 0;
    pthread_mutex_lock(&st->dir_lock);
    for (int d = 0; d < st->ndirs; d++)
        if (st->dirs[d].ok && stat(st->dirs[d].path, &dirs[nd].sb) == 0)
            dirs[nd++].path = st->dirs[d].path; /* paths never change once open */
    pthread_mutex_unlock(&st->dir_lock);
    struct stat ns;
    if (stat("/proc/self/ns/pid", &ns) != 0) return -EOPNOTSUPP;
    wbuf_put_str(out, id, (size_t)n);
    wbuf_put_u32(out, (uint32_t)getpid());
    wbuf_put_u64(out, (uint64_t)ns.st_ino);
    wbuf_put_u8(out, (uint8_t)nd);
    for (int i = 0; i < nd; i++) {
        wbuf_put_str(out, dirs[i].path, strlen(dirs[i].path));
        wbuf_put_u64(out, (uint64_t)dirs[i].sb.st_dev);
        wbuf_put_u64(out, (uint64_t)dirs[i].sb.st_ino);
    }
    return 0;
}
