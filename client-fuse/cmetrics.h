/* cmetrics.h - the mount's Prometheus metrics at /metrics (option http=HOST:PORT, off by
 * default): an HTTP server on a thread of its own (the FUSE client has no event loop) that
 * writes the counters of cstats.h and the memory cache's size. */
#ifndef CAIRN_CMETRICS_H
#define CAIRN_CMETRICS_H

struct cm;
struct httpd;

/* Serve /metrics of mount cm (mounted at mnt: a label) on hostport. NULL when hostport is
 * empty (*err = 0) or on failure (*err a negative errno). Start it after daemonizing (the
 * server's thread does not survive a fork); cm and mnt must outlive it (cmet_stop). */
struct httpd *cmet_start(struct cm *cm, const char *hostport, const char *mnt, int *err);
void cmet_stop(struct httpd *h);

#endif
