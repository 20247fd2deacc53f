/* meta_metrics.c - cairn-meta's Prometheus metrics at /metrics. */
#include "httpd.h"
#include "meta.h"

static void serve_metrics(struct httpd_req *req, struct wbuf *body, void *arg)
{
    struct meta *m = arg;
    req->content_type = "text/plain; version=0.0.4; charset=utf-8";
    httpd_printf(body,
                 "# HELP cairn_meta_leader Whether this replica is the ready leader.\n"
                 "# TYPE cairn_meta_leader gauge\ncairn_meta_leader %d\n",
                 meta_ready(m));
}

int meta_metrics_routes(struct meta *m, struct httpd *h)
{
    return httpd_route(h, "/metrics", serve_metrics, m);
}
