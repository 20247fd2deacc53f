/* httpd.h - a small HTTP server (libevent's evhttp) for what daemons show to people and to
 * monitoring: Prometheus metrics at /metrics, the meta leader's status page, JSON for it.
 *
 * It serves GET and HEAD only. Each route is an exact path and a handler that writes the body
 * into a wbuf; the handler runs on the thread of the event base the server was started on
 * (the daemon's own loop, so handlers read daemon state without locks), or on a thread of the
 * server's own when started with no base (the FUSE client, which has no event loop). Any other
 * path is 404, any other method 405. */
#ifndef CAIRN_HTTPD_H
#define CAIRN_HTTPD_H

#include <stdint.h>

#include "codec.h"

struct event_base;
struct httpd;

/* What a handler sees of a request. */
struct httpd_req {
    const char *path;  /* "/metrics" */
    const char *query; /* the text after '?', or NULL */
    /* what the handler sets for the reply (defaults: 200, "text/plain; charset=utf-8") */
    int status;
    const char *content_type;
};

/* Write the reply body into body (and set req->status / req->content_type if not the
 * defaults). A wbuf that failed to grow (body->err) is answered 500. */
typedef void (*httpd_fn)(struct httpd_req *req, struct wbuf *body, void *arg);

/* Listen on "host:port" (port 0 picks one; "" or NULL: nothing is served and NULL is returned
 * with *err = 0). base NULL runs the server on a thread of its own. On failure returns NULL
 * with *err a negative errno. */
struct httpd *httpd_start(struct event_base *base, const char *hostport, int *err);
/* Serve path with fn. Call before requests can arrive for it (right after httpd_start, on the
 * loop's thread or before the loop runs). 0 or -ENOMEM / -EEXIST. */
int httpd_route(struct httpd *h, const char *path, httpd_fn fn, void *arg);
uint16_t httpd_port(const struct httpd *h);
/* Stop serving and free (joins the own thread, if any). NULL is ignored. */
void httpd_stop(struct httpd *h);

/* Helpers for handlers. */
/* Append text (printf style). */
void httpd_printf(struct wbuf *body, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s escaped for a JSON string (without the quotes). */
void httpd_json_str(struct wbuf *body, const char *s);
/* Append s escaped for HTML text or an attribute value. */
void httpd_html_str(struct wbuf *body, const char *s);

#endif
