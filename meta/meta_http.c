/* meta_http.c - cairn-meta's HTTP server: started on the daemon's event loop (handlers read the
 * daemon's state on its own thread), with the metrics and the status page routes. */
#include <errno.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "meta.h"

int meta_http_start(struct meta *m)
{
    int err = 0;
    m->http = httpd_start(m->base, m->cfg.http, &err);
    if (!m->http) {
        LOG_ERR("http", "cannot serve HTTP on %s: %s", m->cfg.http, strerror(-err));
        return err ? err : -EINVAL;
    }
    int rc = meta_metrics_routes(m, m->http);
    if (!rc) rc = meta_status_routes(m, m->http);
    if (rc) {
        LOG_ERR("http", "routes: %s", strerror(-rc));
        httpd_stop(m->http);
        m->http = NULL;
        return rc;
    }
    LOG_INFO("http", "serving HTTP on %s (port %u): /metrics", m->cfg.http, httpd_port(m->http));
    return 0;
}
