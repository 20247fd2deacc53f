/* mop.c - metadata operation records: the leader's preparation (time, new inode number and
 * generation, new chunk id, new session id) and the byte encoding Raft replicates. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "mop.h"
#include "mstore_int.h"

#define MOP_VERSION 3 /* 1: without the chain; 2: without the (session, seq) */

int mop_prepare(struct mstore *s, struct mop *op)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    op->now_s = now.tv_sec;
    op->now_ns = (uint32_t)now.tv_nsec;
    pthread_mutex_lock(&s->lock);
    switch (op->type) {
    case MOP_MKNOD:
    case MOP_MKDIR:
    case MOP_SYMLINK:
    case MOP_CREATE:
        op->new_ino = s->next_ino++;
        op->new_gen = s->epoch;
        break;
    case MOP_CHUNK_LEASE:
        op->new_chunk = s->next_chunk++;
        break;
    case MOP_SESSION_OPEN:
        if (op->session == 0) op->session = s->next_session++;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return op->type >= MOP_MKNOD && op->type <= MOP_LAST ? 0 : -EINVAL;
}

void mop_encode(const struct mop *op, struct wbuf *b)
{
    wbuf_put_u8(b, MOP_VERSION);
    wbuf_put_u16(b, op->type);
    wbuf_put_i64(b, op->now_s);
    wbuf_put_u32(b, op->now_ns);
    wbuf_put_u64(b, op->new_ino);
    wbuf_put_u64(b, op->new_gen);
    wbuf_put_u64(b, op->new_chunk);
    wbuf_put_u64(b, op->ino);
    wbuf_put_u64(b, op->parent);
    wbuf_put_u64(b, op->parent2);
    wbuf_put_u64(b, op->session);
    wbuf_put_u64(b, op->index);
    wbuf_put_u64(b, op->size);
    wbuf_put_u64(b, op->rdev);
    wbuf_put_u32(b, op->mode);
    wbuf_put_u32(b, op->uid);
    wbuf_put_u32(b, op->gid);
    wbuf_put_u32(b, op->valid);
    wbuf_put_u32(b, op->flags);
    wbuf_put_i64(b, op->atime_s);
    wbuf_put_u32(b, op->atime_ns);
    wbuf_put_i64(b, op->mtime_s);
    wbuf_put_u32(b, op->mtime_ns);
    wbuf_put_str(b, op->name, strnlen(op->name, CAIRN_NAME_MAX));
    wbuf_put_str(b, op->name2, strnlen(op->name2, CAIRN_NAME_MAX));
    wbuf_put_bytes(b, op->data, op->data ? op->data_len : 0);
    uint8_t n = op->nchain <= CAIRN_MAX_CHAIN ? op->nchain : CAIRN_MAX_CHAIN;
    wbuf_put_u8(b, n);
    for (uint8_t i = 0; i < n; i++)
        wbuf_put_u64(b, op->chain[i]);
    wbuf_put_u64(b, op->cs_session);
    wbuf_put_u64(b, op->cs_seq);
    wbuf_put_u64(b, op->cs_acked);
}

int mop_decode(struct rcur *c, struct mop *op)
{
    memset(op, 0, sizeof(*op));
    uint8_t ver = rcur_u8(c);
    if (ver < 1 || ver > MOP_VERSION) return -EBADMSG;
    op->type = rcur_u16(c);
    op->now_s = rcur_i64(c);
    op->now_ns = rcur_u32(c);
    op->new_ino = rcur_u64(c);
    op->new_gen = rcur_u64(c);
    op->new_chunk = rcur_u64(c);
    op->ino = rcur_u64(c);
    op->parent = rcur_u64(c);
    op->parent2 = rcur_u64(c);
    op->session = rcur_u64(c);
    op->index = rcur_u64(c);
    op->size = rcur_u64(c);
    op->rdev = rcur_u64(c);
    op->mode = rcur_u32(c);
    op->uid = rcur_u32(c);
    op->gid = rcur_u32(c);
    op->valid = rcur_u32(c);
    op->flags = rcur_u32(c);
    op->atime_s = rcur_i64(c);
    op->atime_ns = rcur_u32(c);
    op->mtime_s = rcur_i64(c);
    op->mtime_ns = rcur_u32(c);
    rcur_str(c, op->name, CAIRN_NAME_MAX);
    rcur_str(c, op->name2, CAIRN_NAME_MAX);
    size_t n = 0;
    const uint8_t *d = rcur_bytes(
        c, CAIRN_XATTR_SIZE_MAX > CAIRN_PATH_MAX ? CAIRN_XATTR_SIZE_MAX : CAIRN_PATH_MAX, &n);
    op->data = n ? d : NULL;
    op->data_len = (uint32_t)n;
    if (ver >= 2) {
        op->nchain = rcur_u8(c);
        if (op->nchain > CAIRN_MAX_CHAIN) c->err = -EBADMSG;
        for (uint8_t i = 0; i < op->nchain && !c->err; i++)
            op->chain[i] = rcur_u64(c);
    }
    if (ver >= 3) {
        op->cs_session = rcur_u64(c);
        op->cs_seq = rcur_u64(c);
        op->cs_acked = rcur_u64(c);
    }
    if (c->err || op->type < MOP_MKNOD || op->type > MOP_LAST) {
        memset(op, 0, sizeof(*op));
        return -EBADMSG;
    }
    return 0;
}
