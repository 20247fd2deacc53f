/* server_atime.c - MSG_ATIME: the reads a mount saw, sent lazily in batches (client
 * atime.c). For each inode the leader decides, on committed state, whether its atime moves
 * (relatime unless the mount asks for strictatime) and applies one SETATTR_ATIME_LAZY record
 * for each that does, in the current group commit, so the reads themselves never waited. */
#include <errno.h>

#include "meta.h"

/* Whether a read at (s, ns) moves the atime of a (relatime, or any later time if strict). */
static int atime_moves(const struct cairn_attr *a, int64_t s, uint32_t ns, int strict)
{
    if (s < a->atime_s || (s == a->atime_s && ns <= a->atime_ns)) return 0;
    if (strict) return 1;
    int not_after_m =
        a->atime_s < a->mtime_s || (a->atime_s == a->mtime_s && a->atime_ns <= a->mtime_ns);
    int not_after_c =
        a->atime_s < a->ctime_s || (a->atime_s == a->ctime_s && a->atime_ns <= a->ctime_ns);
    return not_after_m || not_after_c || s - a->atime_s >= ATIME_RELATIME_S;
}

int meta_handle_atime(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                      struct rcur *r)
{
    uint8_t flags = rcur_u8(r);
    uint32_t n = rcur_u32(r);
    if (r->err || n > ATIME_BATCH_MAX || (uint64_t)n * 20 != r->left) return -EBADMSG;
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++) {
        struct mop op = {.type = MOP_SETATTR, .valid = SETATTR_ATIME | SETATTR_ATIME_LAZY};
        op.ino = rcur_u64(r);
        op.atime_s = rcur_i64(r);
        op.atime_ns = rcur_u32(r);
        struct cairn_attr a;
        if (op.atime_ns >= 1000000000u || mstore_getattr(m->store, op.ino, &a) != 0 ||
            !atime_moves(&a, op.atime_s, op.atime_ns, flags & ATIME_STRICT))
            continue;
        struct mop_result res = {0};
        int arc = meta_apply(m, &op, &res);
        if (arc != -ENOENT) rc = arc; /* removed meanwhile: nothing to do */
    }
    evsrv_reply(conn, h, rc, NULL, 0);
    return 0;
}
