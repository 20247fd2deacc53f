/* proto.c - encoders and decoders of the structures several messages share (see proto.h). */
#include "proto.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void proto_put_attr(struct wbuf *b, const struct cairn_attr *a)
{
    wbuf_put_u64(b, a->ino);
    wbuf_put_u64(b, a->gen);
    wbuf_put_u32(b, a->mode);
    wbuf_put_u32(b, a->uid);
    wbuf_put_u32(b, a->gid);
    wbuf_put_u32(b, a->nlink);
    wbuf_put_u64(b, a->rdev);
    wbuf_put_u64(b, a->size);
    wbuf_put_i64(b, a->atime_s);
    wbuf_put_u32(b, a->atime_ns);
    wbuf_put_i64(b, a->mtime_s);
    wbuf_put_u32(b, a->mtime_ns);
    wbuf_put_i64(b, a->ctime_s);
    wbuf_put_u32(b, a->ctime_ns);
    wbuf_put_u32(b, a->flags);
    wbuf_put_u64(b, a->blocks);
    wbuf_put_u32(b, a->copies);
}

void proto_get_attr(struct rcur *c, struct cairn_attr *a)
{
    a->ino = rcur_u64(c);
    a->gen = rcur_u64(c);
    a->mode = rcur_u32(c);
    a->uid = rcur_u32(c);
    a->gid = rcur_u32(c);
    a->nlink = rcur_u32(c);
    a->rdev = rcur_u64(c);
    a->size = rcur_u64(c);
    a->atime_s = rcur_i64(c);
    a->atime_ns = rcur_u32(c);
    a->mtime_s = rcur_i64(c);
    a->mtime_ns = rcur_u32(c);
    a->ctime_s = rcur_i64(c);
    a->ctime_ns = rcur_u32(c);
    a->flags = rcur_u32(c);
    a->blocks = rcur_u64(c);
    a->copies = rcur_u32(c);
}

void proto_put_chunk_info(struct wbuf *b, const struct chunk_info *ci)
{
    wbuf_put_u64(b, ci->index);
    wbuf_put_u64(b, ci->chunk_id);
    wbuf_put_u32(b, ci->version);
    wbuf_put_u32(b, ci->prev_version);
    uint8_t n = ci->nloc > CAIRN_MAX_LOCS ? CAIRN_MAX_LOCS : ci->nloc;
    wbuf_put_u8(b, n);
    for (uint8_t i = 0; i < n; i++) {
        wbuf_put_u64(b, ci->loc[i].server_id);
        wbuf_put_str(b, ci->loc[i].addr, strlen(ci->loc[i].addr));
    }
}

void proto_get_chunk_info(struct rcur *c, struct chunk_info *ci)
{
    memset(ci, 0, sizeof(*ci));
    ci->index = rcur_u64(c);
    ci->chunk_id = rcur_u64(c);
    ci->version = rcur_u32(c);
    ci->prev_version = rcur_u32(c);
    uint8_t n = rcur_u8(c);
    if (n > CAIRN_MAX_LOCS) {
        c->err = -EBADMSG;
        return;
    }
    ci->nloc = n;
    for (uint8_t i = 0; i < n && !c->err; i++) {
        ci->loc[i].server_id = rcur_u64(c);
        rcur_str(c, ci->loc[i].addr, CAIRN_ADDR_MAX);
    }
}

const char *proto_type_name(uint16_t type)
{
    switch (type & ~(0x8000u | MSG_F_SEQ)) {
#define N(x)                                                                                       \
    case MSG_##x:                                                                                  \
        return #x
        N(SESSION_OPEN);
        N(SESSION_KEEPALIVE);
        N(SESSION_CLOSE);
        N(LOOKUP);
        N(GETATTR);
        N(SETATTR);
        N(MKNOD);
        N(MKDIR);
        N(UNLINK);
        N(RMDIR);
        N(RENAME);
        N(LINK);
        N(SYMLINK);
        N(READLINK);
        N(READDIR);
        N(STATFS);
        N(SETXATTR);
        N(GETXATTR);
        N(LISTXATTR);
        N(REMOVEXATTR);
        N(CREATE);
        N(OPEN);
        N(RELEASE);
        N(CHUNK_LOCATE);
        N(CHUNK_LEASE);
        N(COMMIT);
        N(CLIENT_STATS);
        N(ATIME);
        N(SET_COPIES);
        N(FILEINFO);
        N(HEALTH);
        N(CS_DRAIN);
        N(FSCK);
        N(META_STATUS);
        N(META_ADD);
        N(META_REMOVE);
        N(META_WHOAMI);
        N(TOP);
        N(CS_REGISTER);
        N(CS_REPORT);
        N(CS_HEARTBEAT);
        N(CS_BAD_CHUNK);
        N(CS_CHUNK_EVENT);
        N(CS_REPLICATED);
        N(LOCK);
        N(LOCK_TEST);
        N(LOCK_DROP);
        N(LOCK_EPOCH);
        N(SNAP_OPEN);
        N(SNAP_READ);
        N(CHK_READ);
        N(CHK_WRITE);
        N(CHK_TRUNCATE);
        N(CHK_DELETE);
        N(CHK_FSYNC);
        N(CHK_INFO);
        N(CHK_SETVER);
        N(CHK_STATS);
        N(CHK_SEEK);
        N(CHK_FALLOC);
        N(CHK_LOCAL);
#undef N
    }
    return "?";
}

int proto_numbered(uint16_t type)
{
    switch (type) {
    case MSG_SETATTR:
    case MSG_MKNOD:
    case MSG_MKDIR:
    case MSG_UNLINK:
    case MSG_RMDIR:
    case MSG_RENAME:
    case MSG_LINK:
    case MSG_SYMLINK:
    case MSG_SETXATTR:
    case MSG_REMOVEXATTR:
    case MSG_CREATE:
    case MSG_OPEN:
    case MSG_RELEASE:
    case MSG_CHUNK_LEASE:
    case MSG_COMMIT:
    case MSG_SET_COPIES:
        return 1;
    }
    return 0;
}

void proto_type_lname(uint16_t type, char *out, size_t len)
{
    const char *n = proto_type_name(type);
    if (!strcmp(n, "?")) {
        snprintf(out, len, "type_%u", type);
        return;
    }
    size_t k = 0;
    for (; *n && k + 1 < len; n++)
        out[k++] = (char)tolower((unsigned char)*n);
    out[k] = '\0';
}
