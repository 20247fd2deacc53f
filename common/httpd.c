/* httpd.c - the daemons' HTTP server on evhttp: exact-path routes, GET/HEAD only, bodies built
 * in a wbuf by the route's handler (see httpd.h). */
#include "httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "net.h"

#define HTTPD_ROUTES_MAX 32

struct httpd_route {
    char *path;
    httpd_fn fn;
    void *arg;
};

struct httpd {
    struct event_base *base;
    int own_base; /* base made here and run on thread */
    pthread_t thread;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    uint16_t port;
    struct httpd_route routes[HTTPD_ROUTES_MAX];
    int nroutes;
};

static const struct httpd_route *find_route(const struct httpd *h, const char *path)
{
    for (int i = 0; i < h->nroutes; i++)
        if (strcmp(h->routes[i].path, path) == 0) return &h->routes[i];
    return NULL;
}

static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *out = evbuffer_new();
    if (out) evbuffer_add(out, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, out);
    if (out) evbuffer_free(out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct httpd *h = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        send_text(req, 405, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) path = "/";
    const struct httpd_route *r = find_route(h, path);
    if (!r) {
        send_text(req, 404, "Not Found", "not found\n");
        return;
    }
    struct httpd_req hr = {.path = path,
                           .query = evhttp_uri_get_query(uri),
                           .status = 200,
                           .content_type = "text/plain; charset=utf-8"};
    struct wbuf body;
    wbuf_init(&body);
    r->fn(&hr, &body, r->arg);
    if (body.err) {
        wbuf_free(&body);
        send_text(req, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    evhttp_add_header(hdr, "Content-Type", hr.content_type);
    evhttp_add_header(hdr, "Cache-Control", "no-store");
    evhttp_add_header(hdr, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evbuffer_new();
    if (out && body.len) evbuffer_add(out, body.data, body.len);
    evhttp_send_reply(req, hr.status, hr.status == 200 ? "OK" : "Error", out);
    if (out) evbuffer_free(out);
    wbuf_free(&body);
}

static void *run_loop(void *arg)
{
    struct httpd *h = arg;
    event_base_dispatch(h->base);
    return NULL;
}

static void free_parts(struct httpd *h)
{
    if (h->http) evhttp_free(h->http);
    if (h->own_base && h->base) event_base_free(h->base);
    for (int i = 0; i < h->nroutes; i++)
        free(h->routes[i].path);
    free(h);
}

struct httpd *httpd_start(struct event_base *base, const char *hostport, int *err)
{
    *err = 0;
    if (!hostport || !*hostport) return NULL;
    struct httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        *err = -ENOMEM;
        return NULL;
    }
    if (!base) {
        evthread_use_pthreads();
        h->base = event_base_new();
        h->own_base = 1;
    } else {
        h->base = base;
    }
    if (!h->base || !(h->http = evhttp_new(h->base))) {
        *err = -ENOMEM;
        free_parts(h);
        return NULL;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(h->http, 16384);
    evhttp_set_max_body_size(h->http, 65536);
    evhttp_set_timeout(h->http, 30);
    evhttp_set_gencb(h->http, on_request, h);
    int fd = net_listen(hostport, &h->port);
    if (fd < 0) {
        *err = fd;
        free_parts(h);
        return NULL;
    }
    evutil_make_socket_nonblocking(fd);
    h->sock = evhttp_accept_socket_with_handle(h->http, fd);
    if (!h->sock) {
        close(fd);
        *err = -ENOMEM;
        free_parts(h);
        return NULL;
    }
    if (h->own_base && pthread_create(&h->thread, NULL, run_loop, h)) {
        *err = -EAGAIN;
        free_parts(h);
        return NULL;
    }
    return h;
}

int httpd_route(struct httpd *h, const char *path, httpd_fn fn, void *arg)
{
    if (find_route(h, path)) return -EEXIST;
    if (h->nroutes == HTTPD_ROUTES_MAX) return -ENOMEM;
    char *p = strdup(path);
    if (!p) return -ENOMEM;
    h->routes[h->nroutes++] = (struct httpd_route){.path = p, .fn = fn, .arg = arg};
    return 0;
}

uint16_t httpd_port(const struct httpd *h)
{
    return h ? h->port : 0;
}

void httpd_stop(struct httpd *h)
{
    if (!h) return;
    if (h->own_base) {
        event_base_loopbreak(h->base);
        pthread_join(h->thread, NULL);
    }
    free_parts(h);
}

void httpd_printf(struct wbuf *body, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(small)) {
        wbuf_put_raw(body, small, (size_t)n);
        return;
    }
    uint8_t *p = wbuf_extend(body, (size_t)n + 1);
    if (!p) return;
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    body->len--; /* drop the terminator */
}

void httpd_json_str(struct wbuf *body, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            wbuf_put_u8(body, '\\');
            wbuf_put_u8(body, *p);
        } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
            httpd_printf(body, "\\u%04x", *p); /* also keeps "</script>" out of JSON */
        } else {
            wbuf_put_u8(body, *p);
        }
    }
}

void httpd_html_str(struct wbuf *body, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '<':
            wbuf_put_raw(body, "&lt;", 4);
            break;
        case '>':
            wbuf_put_raw(body, "&gt;", 4);
            break;
        case '&':
            wbuf_put_raw(body, "&amp;", 5);
            break;
        case '"':
            wbuf_put_raw(body, "&quot;", 6);
            break;
        case '\'':
            wbuf_put_raw(body, "&#39;", 5);
            break;
        default:
            wbuf_put_u8(body, (uint8_t)*p);
        }
    }
}
