/* kernel_tune.c - the kernel's read-ahead for this mount. FUSE gets a backing device whose
 * read-ahead starts at 128 KiB, and the INIT handshake can only lower it (the kernel offers
 * its current value as max_readahead). So a sequential reader and a 1 MiB pread would reach
 * the client as 128 KiB requests, one after the other. Once the mount has answered INIT,
 * writing /sys/class/bdi/MAJ:MIN/read_ahead_kb raises it: the kernel then sends requests of up
 * to max_read (1 MiB) and keeps several in flight ahead of a sequential reader. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "client.h"
#include "log.h"

struct kt_job {
    char mnt[4096];
    uint64_t bytes;
};

int kt_set_readahead(dev_t dev, uint64_t bytes)
{
    char path[96];
    snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(dev), minor(dev));
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    int ok = fprintf(f, "%" PRIu64 "\n", bytes >> 10) > 0;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -EIO;
}

static void *kt_main(void *arg)
{
    struct kt_job *j = arg;
    struct stat st;
    /* stat waits for the kernel's INIT to be answered: the read-ahead it set is final then */
    if (stat(j->mnt, &st) != 0) {
        LOG_WARN("mount", "read-ahead of %s not set: %s", j->mnt, strerror(errno));
    } else {
        int rc = kt_set_readahead(st.st_dev, j->bytes);
        if (rc)
            LOG_WARN("mount", "cannot set the kernel read-ahead of %s to %" PRIu64 " KiB: %s",
                     j->mnt, j->bytes >> 10, strerror(-rc));
        else
            LOG_INFO("mount", "kernel read-ahead of %s: %" PRIu64 " KiB", j->mnt, j->bytes >> 10);
    }
    free(j);
    return NULL;
}

void kt_start(const char *mnt, uint64_t readahead_bytes)
{
    if (readahead_bytes == 0) return; /* leave the kernel's default */
    struct kt_job *j = calloc(1, sizeof(*j));
    if (!j) return;
    snprintf(j->mnt, sizeof(j->mnt), "%s", mnt);
    j->bytes = readahead_bytes;
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, kt_main, j) != 0) free(j);
    pthread_attr_destroy(&at);
}
