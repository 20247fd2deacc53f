/* harness_meta.c - a connection to cairn-meta and one request on it, for the daemon-level tests
 * (see harness_meta.h). This file calls Check: every integration test links libcheck. */
#include "harness_meta.h"

#include <check.h>
#include <errno.h>

struct rpc_conn *hm_connect(const char *addr)
{
    struct rpc_opts o = {.call_timeout_ms = 10000, .connect_timeout_ms = 2000};
    struct rpc_conn *r = rpc_conn_new(addr, &o);
    ck_assert_ptr_nonnull(r);
    return r;
}

int hm_call(struct rpc_conn *m, uint16_t type, struct wbuf *b, struct rpc_reply *rep)
{
    struct rpc_reply tmp;
    ck_assert_int_eq(b->err, 0);
    int rc = rpc_call(m, type, b->data, b->len, NULL, 0, rep ? rep : &tmp);
    wbuf_free(b);
    ck_assert_msg(rc != -ECONNRESET && rc != -ETIMEDOUT, "%s: transport error %d",
                  proto_type_name(type), rc);
    if (!rep && rc == 0) rpc_reply_free(&tmp);
    return rc;
}

/* hm_call, then the reply must be exactly one attr (is_attr) or one chunk_info, decoded into out.
 */
static int call_one(struct rpc_conn *m, uint16_t type, struct wbuf *b, int is_attr, void *out)
{
    struct rpc_reply rep;
    int rc = hm_call(m, type, b, &rep);
    if (rc) return rc;
    struct rcur r;
    rcur_init(&r, rep.payload.data, rep.payload.len);
    if (is_attr)
        proto_get_attr(&r, out);
    else
        proto_get_chunk_info(&r, out);
    ck_assert_msg(rcur_done(&r) == 0, "%s: reply is not one %s", proto_type_name(type),
                  is_attr ? "attr" : "chunk info");
    rpc_reply_free(&rep);
    return 0;
}

int hm_call_attr(struct rpc_conn *m, uint16_t type, struct wbuf *b, struct cairn_attr *a)
{
    struct cairn_attr tmp;
    return call_one(m, type, b, 1, a ? a : &tmp);
}

int hm_call_chunk_info(struct rpc_conn *m, uint16_t type, struct wbuf *b, struct chunk_info *ci)
{
    return call_one(m, type, b, 0, ci);
}
