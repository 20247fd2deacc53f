/* status_page.c - the status page the meta leader serves at /. */
#include "httpd.h"
#include "meta.h"

static void serve_page(struct httpd_req *req, struct wbuf *body, void *arg)
{
    (void)arg;
    req->content_type = "text/html; charset=utf-8";
    httpd_printf(body, "<!doctype html><title>CairnFS</title><p>CairnFS</p>\n");
}

int meta_status_routes(struct meta *m, struct httpd *h)
{
    return httpd_route(h, "/", serve_page, m);
}
