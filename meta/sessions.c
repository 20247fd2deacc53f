/* sessions.c - expiry of client sessions: a session not seen (keepalive or open) for
 * session_timeout seconds is closed, which releases its open files and purges the orphans
 * (unlinked while open) it was the last to hold, and its locks (locks.c). A restart of the meta
 * service gives every recorded session a fresh grace period, counted from the start. */
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "meta.h"

#define EXPIRE_BATCH 256

struct expire_ctx {
    int64_t cutoff;
    uint64_t ids[EXPIRE_BATCH];
    int n;
};

static int collect(void *arg, uint64_t session, int64_t last_seen_s)
{
    struct expire_ctx *x = arg;
    if (last_seen_s >= x->cutoff) return 0;
    x->ids[x->n++] = session;
    return x->n == EXPIRE_BATCH;
}

void meta_sessions_expire(struct meta *m)
{
    int64_t now = (int64_t)time(NULL);
    if (!meta_can_apply(m) || !mstore_formatted(m->store)) return; /* the leader's job */
    /* grace after this replica became the leader: clients need a moment to find it */
    if (now - m->lead_since_s < m->cfg.session_timeout) return;
    struct expire_ctx x = {.cutoff = now - m->cfg.session_timeout};
    if (mstore_session_list(m->store, collect, &x) < 0) return;
    for (int i = 0; i < x.n; i++) {
        struct mop op = {.type = MOP_SESSION_CLOSE, .session = x.ids[i]};
        struct mop_result res = {0};
        int rc = meta_apply(m, &op, &res);
        if (!rc) {
            soft_open_drop_session(x.ids[i]);
            locks_drop_session(x.ids[i]);
        }
        LOG_INFO("session", "session %" PRIu64 " expired (no keepalive for %d s)%s", x.ids[i],
                 m->cfg.session_timeout, rc ? ": close failed" : "");
    }
}
