/* fs_ops.c - the FUSE low-level operations table of cairn-mount.
 *
 * Each operation turns a kernel request into meta requests (meta_client.c) or into the read
 * and write paths, and maps the result straight into a reply (fuse_reply_err(req, -rc)). The
 * FUSE node id is the inode number, so forget has nothing to drop and NFS file handles stay
 * valid. Open files carry a struct fh (fi->fh) holding a reference on the inode's shared state
 * and the handle's read-ahead window. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "cstats.h"
#include "dcache.h"
#include "lockset.h"
#include "log.h"
#include "net.h"
#include "wire.h"

struct fh {
    struct inode_st *s;
    struct rp_ra ra;
    int writable;
    int atime_noted; /* a read of this handle was noted for the access time (atime.c) */
};

static struct cm *CM(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static struct fh *FH(struct fuse_file_info *fi)
{
    return (struct fh *)(uintptr_t)fi->fh;
}

/* ---- parent directory attributes, for setgid inheritance ----------------------------------- */

#define DIRC_SIZE 256
static struct {
    pthread_mutex_t mu;
    struct {
        uint64_t ino;
        uint32_t mode, gid;
        uint64_t expires_ms;
    } e[DIRC_SIZE];
} dirc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void dirc_note(struct cm *cm, const struct cairn_attr *a)
{
    if (!S_ISDIR(a->mode)) return;
    pthread_mutex_lock(&dirc.mu);
    size_t i = a->ino % DIRC_SIZE;
    dirc.e[i].ino = a->ino;
    dirc.e[i].mode = a->mode;
    dirc.e[i].gid = a->gid;
    dirc.e[i].expires_ms = net_now_ms() + (uint64_t)(cm->cfg.attr_timeout * 1000) + 1000;
    pthread_mutex_unlock(&dirc.mu);
}

/* The umask a new node's request carries: the caller's when the kernel left it to us. */
static int new_umask(struct cm *cm, fuse_req_t req)
{
    return cm->dont_mask ? (int)(fuse_req_ctx(req)->umask & 0777) : MC_NO_UMASK;
}

/* Owner for a new node in parent: the caller's uid, and its gid unless parent is setgid;
 * *mode gets S_ISGID added for a new directory under a setgid parent. */
static int new_owner(struct cm *cm, fuse_req_t req, uint64_t parent, uint32_t *mode, uint32_t *uid,
                     uint32_t *gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    *uid = ctx->uid;
    *gid = ctx->gid;
    uint32_t pmode = 0, pgid = 0;
    int hit = 0;
    pthread_mutex_lock(&dirc.mu);
    size_t i = parent % DIRC_SIZE;
    if (dirc.e[i].ino == parent && dirc.e[i].expires_ms > net_now_ms()) {
        pmode = dirc.e[i].mode;
        pgid = dirc.e[i].gid;
        hit = 1;
    }
    pthread_mutex_unlock(&dirc.mu);
    if (!hit) {
        struct cairn_attr pa;
        int rc = mc_getattr(&cm->meta, parent, &pa);
        if (rc) return rc;
        dirc_note(cm, &pa);
        pmode = pa.mode;
        pgid = pa.gid;
    }
    if (pmode & S_ISGID) {
        *gid = pgid;
        if (S_ISDIR(*mode)) *mode |= S_ISGID;
    }
    return 0;
}

/* ---- attributes ----------------------------------------------------------------------------- */

/* How long a fact learnt from a meta reply is trusted: the kernel's attribute timeout. */
static uint64_t xa_ttl_ms(struct cm *cm)
{
    return (uint64_t)(cm->cfg.attr_timeout * 1000);
}

/* A ticket for the xattr facts (ist_xa_ticket), taken before asking meta for attributes. */
static uint64_t xa_ticket(struct cm *cm)
{
    return ist_xa_ticket(cm->inodes);
}

/* The size to show: while this mount writes the file, what it has written counts. */
static uint64_t shown_size(struct cm *cm, const struct cairn_attr *a)
{
    if (!S_ISREG(a->mode)) return a->size;
    struct inode_st *s = ist_find(cm->inodes, a->ino);
    if (!s) return a->size;
    uint64_t size = a->size;
    pthread_mutex_lock(&s->mu);
    if (s->writers > 0 || s->need_commit || s->dlen) {
        if (s->size_local > size) size = s->size_local;
    }
    pthread_mutex_unlock(&s->mu);
    ist_put(cm->inodes, s);
    return size;
}

/* Fill st from a meta reply to a request sent after ticket tk was taken (see ist_xa_*). */
static void to_stat(struct cm *cm, const struct cairn_attr *a, uint64_t tk, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)shown_size(cm, a);
    st->st_blksize = 65536;
    /* what the chunk servers store, so sparse files show as sparse; never 0 for a file with
     * bytes, since tar and cp take st_blocks == 0 as "all holes" and would not read it */
    st->st_blocks = (blkcnt_t)a->blocks;
    if (st->st_blocks == 0 && S_ISREG(a->mode) && a->size > 0) st->st_blocks = 1;
    st->st_atim.tv_sec = a->atime_s;
    st->st_atim.tv_nsec = a->atime_ns;
    st->st_mtim.tv_sec = a->mtime_s;
    st->st_mtim.tv_nsec = a->mtime_ns;
    st->st_ctim.tv_sec = a->ctime_s;
    st->st_ctim.tv_nsec = a->ctime_ns;
    dirc_note(cm, a);
    ist_xa_note_attr(cm->inodes, a, xa_ttl_ms(cm), tk);
    kv_note(cm->kview, a->ino, (uint64_t)st->st_size, a->mtime_s, a->mtime_ns);
}

static void to_entry(struct cm *cm, const struct cairn_attr *a, uint64_t tk,
                     struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = a->ino;
    e->generation = a->gen;
    to_stat(cm, a, tk, &e->attr);
    e->attr_timeout = cm->cfg.attr_timeout;
    e->entry_timeout = cm->cfg.entry_timeout;
}

static void reply_entry(fuse_req_t req, int rc, const struct cairn_attr *a, uint64_t tk)
{
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    to_entry(CM(req), a, tk, &e);
    fuse_reply_entry(req, &e);
}

static void reply_attr(fuse_req_t req, int rc, const struct cairn_attr *a, uint64_t tk)
{
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat st;
    to_stat(CM(req), a, tk, &st);
    fuse_reply_attr(req, &st, CM(req)->cfg.attr_timeout);
}

static int check_name(const char *name)
{
    return strlen(name) > CAIRN_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* A LOOKUP brought a regular file's attributes and first chunk locations: keep them for a
 * read-only open that follows at once (fs_open). A file open or written here is left alone.
 * When the file changed since it was last opened here, what is cached of it goes now. */
static void note_lookup(struct cm *cm, const struct cairn_attr *a, const struct chunk_info *ci,
                        uint32_t n)
{
    struct inode_st *s = ist_get(cm->inodes, a->ino);
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    if (s->refs == 1 && !s->writers && !s->nleases && !s->dlen && !s->need_commit && !s->wq_n) {
        int changed = !(s->have_open_attr && s->open_mtime_s == a->mtime_s &&
                        s->open_mtime_ns == a->mtime_ns && s->open_size == a->size);
        for (uint32_t i = 0; i < n && !changed; i++) {
            struct ist_chunk *c = ist_chunk_find(s, ci[i].index);
            changed = c && c->present &&
                      (c->ci.chunk_id != ci[i].chunk_id || c->ci.version != ci[i].version);
        }
        if (changed) {
            rc_drop_ino(cm->cache, a->ino);
            ist_chunks_clear(s);
            s->have_open_attr = 0; /* so the open drops the kernel's pages too */
        }
        for (uint32_t i = 0; i < n; i++)
            ist_chunk_set(s, ci[i].index, 1, &ci[i]);
        s->lk_attr = *a;
        s->lk_ms = net_now_ms();
    }
    pthread_mutex_unlock(&s->mu);
    ist_put(cm->inodes, s);
}

/* For a read-only open of ino right after its LOOKUP: the attributes and chunk locations that
 * LOOKUP brought (into a, ci, *n), once. 1 when there are such, else 0 (ask meta). */
static int fresh_lookup(struct cm *cm, uint64_t ino, struct cairn_attr *a, struct chunk_info *ci,
                        uint32_t max, uint32_t *n)
{
    struct inode_st *s = ist_find(cm->inodes, ino);
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    int fresh = s->lk_ms && net_now_ms() - s->lk_ms <= CM_LOOKUP_FRESH_MS && s->refs == 1 &&
                !s->writers && !s->nleases && !s->dlen && !s->need_commit;
    *n = 0;
    if (fresh) {
        *a = s->lk_attr;
        for (uint32_t i = 0; i < max; i++) {
            struct ist_chunk *c = ist_chunk_find(s, i);
            if (c && c->present) ci[(*n)++] = c->ci;
        }
    }
    s->lk_ms = 0;
    pthread_mutex_unlock(&s->mu);
    ist_put(cm->inodes, s);
    return fresh;
}

/* ---- operations ----------------------------------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
    struct cm *cm = userdata;
    conn->want &=
        ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV |
                    FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_EXPORT_SUPPORT |
                    FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
    /* POSIX ACLs: the kernel checks access against them (default_permissions is on) and
     * caches them; the meta service keeps them and the mode consistent and applies a
     * directory's default ACL to new nodes, so the umask is left to it too (DONT_MASK) */
    if ((conn->capable & FUSE_CAP_POSIX_ACL) && !cm->cfg.no_acl)
        want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
    conn->want |= want & conn->capable;
    cm->posix_acl = (conn->want & FUSE_CAP_POSIX_ACL) != 0;
    cm->dont_mask = cm->posix_acl && (conn->want & FUSE_CAP_DONT_MASK) != 0;
    /* locks across clients: every flock and fcntl lock goes to the meta leader (locks.c) */
    conn->want |= (unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS) & conn->capable;
    conn->max_write = CAIRN_IO_MAX;
    conn->max_read = CAIRN_IO_MAX;
    conn->max_readahead = CAIRN_IO_MAX;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->time_gran = 1;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct cm *cm = CM(req);
    uint64_t tk = xa_ticket(cm);
    struct cairn_attr a;
    int rc = check_name(name);
    if (!rc) {
        struct chunk_info ci[CM_LOCATE_BATCH];
        uint32_t n = 0;
        if (!strcmp(name, "."))
            rc = mc_getattr(&cm->meta, parent, &a);
        else
            rc = mc_lookup_chunks(&cm->meta, parent, name, &a, ci, CM_LOCATE_BATCH, &n);
        if (!rc && n > 0 && S_ISREG(a.mode)) note_lookup(cm, &a, ci, n);
    }
    if (rc == -ENOENT && cm->cfg.negative_timeout > 0) {
        /* a negative entry: the kernel remembers the name is absent (saves the lookup before
         * every create); a create through this mount replaces it at once */
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.entry_timeout = cm->cfg.negative_timeout;
        fuse_reply_entry(req, &e);
        return;
    }
    reply_entry(req, rc, &a, tk);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    (void)ino;
    (void)nlookup;
    fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    (void)count;
    (void)forgets;
    fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct cairn_attr a;
    uint64_t tk = xa_ticket(CM(req));
    int rc = mc_getattr(&CM(req)->meta, ino, &a);
    reply_attr(req, rc, &a, tk);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct cm *cm = CM(req);
    struct mc_setattr sa;
    memset(&sa, 0, sizeof(sa));
    if (to_set & FUSE_SET_ATTR_MODE) {
        sa.valid |= SETATTR_MODE;
        sa.mode = attr->st_mode;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        sa.valid |= SETATTR_UID;
        sa.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        sa.valid |= SETATTR_GID;
        sa.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        sa.valid |= SETATTR_SIZE;
        sa.size = (uint64_t)attr->st_size;
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        sa.valid |= SETATTR_ATIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
        sa.valid |= SETATTR_ATIME;
        sa.atime_s = attr->st_atim.tv_sec;
        sa.atime_ns = (uint32_t)attr->st_atim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        sa.valid |= SETATTR_MTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
        sa.valid |= SETATTR_MTIME;
        sa.mtime_s = attr->st_mtim.tv_sec;
        sa.mtime_ns = (uint32_t)attr->st_mtim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_CTIME) sa.valid |= SETATTR_CTIME;
    if (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID))
        sa.valid |= SETATTR_KILL_SUIDGID;
    if (sa.valid & (SETATTR_MODE | SETATTR_UID | SETATTR_GID | SETATTR_SIZE | SETATTR_ATIME |
                    SETATTR_MTIME | SETATTR_ATIME_NOW | SETATTR_MTIME_NOW | SETATTR_KILL_SUIDGID))
        sa.valid |= SETATTR_CTIME;

    struct inode_st *s = NULL;
    if (fi && FH(fi)) {
        s = ist_get(cm->inodes, ino); /* the handle's state, with a reference of our own */
    } else {
        s = ist_find(cm->inodes, ino);
    }
    int rc = 0;
    struct cairn_attr a;
    uint64_t tk = xa_ticket(cm);
    /* written data and its mtime go first, so an explicit time set afterwards sticks */
    if (s && (sa.valid & (SETATTR_MTIME | SETATTR_MTIME_NOW | SETATTR_SIZE)))
        rc = wp_flush(cm, s, 0);
    if (!rc) {
        if (sa.valid & SETATTR_SIZE)
            rc = wp_truncate(cm, ino, s, &sa, &a);
        else
            rc = mc_setattr(&cm->meta, ino, &sa, &a);
    }
    if (s) ist_put(cm->inodes, s);
    reply_attr(req, rc, &a, tk);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
    char buf[CAIRN_PATH_MAX + 1];
    int rc = mc_readlink(&CM(req)->meta, ino, buf);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_readlink(req, buf);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct cm *cm = CM(req);
    struct cairn_attr a;
    uint64_t tk = xa_ticket(cm);
    uint32_t m = mode, uid, gid;
    int rc = check_name(name);
    if (!rc) rc = new_owner(cm, req, parent, &m, &uid, &gid);
    if (!rc) rc = mc_mknod(&cm->meta, parent, name, m, rdev, uid, gid, new_umask(cm, req), &a);
    reply_entry(req, rc, &a, tk);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct cm *cm = CM(req);
    struct cairn_attr a;
    uint64_t tk = xa_ticket(cm);
    uint32_t m = (mode & 07777) | S_IFDIR, uid, gid;
    int rc = check_name(name);
    if (!rc) rc = new_owner(cm, req, parent, &m, &uid, &gid);
    if (!rc) rc = mc_mkdir(&cm->meta, parent, name, m, uid, gid, new_umask(cm, req), &a);
    reply_entry(req, rc, &a, tk);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    ma_drain(CM(req)->notify); /* the opens of this mount are counted first */
    int rc = mc_unlink(&CM(req)->meta, parent, name);
    fuse_reply_err(req, -rc);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    ma_drain(CM(req)->notify); /* opens of the directory made here are known before */
    int rc = mc_rmdir(&CM(req)->meta, parent, name);
    fuse_reply_err(req, -rc);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    struct cm *cm = CM(req);
    struct cairn_attr a;
    uint64_t tk = xa_ticket(cm);
    uint32_t m = S_IFLNK | 0777, uid, gid;
    int rc = check_name(name);
    if (!rc && strlen(link) > CAIRN_PATH_MAX) rc = -ENAMETOOLONG;
    if (!rc) rc = new_owner(cm, req, parent, &m, &uid, &gid);
    if (!rc) rc = mc_symlink(&cm->meta, parent, name, link, uid, gid, &a);
    reply_entry(req, rc, &a, tk);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    int rc = check_name(newname);
    uint32_t f = 0;
    if (flags & RENAME_NOREPLACE) f |= PROTO_RENAME_NOREPLACE;
    if (flags & RENAME_EXCHANGE) f |= PROTO_RENAME_EXCHANGE;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) rc = -EINVAL;
    if (!rc) ma_drain(CM(req)->notify); /* a file renamed over may be open here */
    if (!rc) rc = mc_rename(&CM(req)->meta, parent, name, newparent, newname, f);
    fuse_reply_err(req, -rc);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct cairn_attr a;
    uint64_t tk = xa_ticket(CM(req));
    int rc = check_name(newname);
    if (!rc) rc = mc_link(&CM(req)->meta, ino, newparent, newname, &a);
    reply_entry(req, rc, &a, tk);
}

/* Tell meta this mount closed one open of ino; a failure is only logged (the session still
 * counts the open, until it is closed or expires). */
static void release_meta(struct cm *cm, uint64_t ino, int read_only)
{
    /* a read-only open may have been told after the fact: its release goes the same way,
     * behind it */
    if (read_only && ma_release(cm->notify, ino) == 0) return;
    int rc = mc_release(&cm->meta, ino);
    if (rc) LOG_WARN("fuse", "release of inode %" PRIu64 ": %s", ino, strerror(-rc));
}

/* Set up the shared state and the handle after OPEN or CREATE. */
static int open_handle(struct cm *cm, const struct cairn_attr *a, struct fuse_file_info *fi,
                       const struct chunk_info *ci, uint32_t nci, int created)
{
    struct fh *h = calloc(1, sizeof(*h));
    if (!h) return -ENOMEM;
    struct inode_st *s = ist_get(cm->inodes, a->ino);
    if (!s) {
        free(h);
        return -ENOMEM;
    }
    int acc = fi->flags & O_ACCMODE;
    h->s = s;
    h->writable = acc == O_WRONLY || acc == O_RDWR;
    pthread_mutex_lock(&s->mu);
    int first = s->writers == 0 && s->nleases == 0 && s->dlen == 0 && !s->need_commit;
    int same = s->have_open_attr && s->open_mtime_s == a->mtime_s &&
               s->open_mtime_ns == a->mtime_ns && s->open_size == a->size;
    /* a chunk rewritten since (a new version) changed the data even when the size and an
     * mtime put back say otherwise (rsync, tar -x and cp -p restore mtimes) */
    for (uint32_t i = 0; same && i < nci; i++) {
        struct ist_chunk *c = ist_chunk_find(s, ci[i].index);
        if (c && c->present && !ist_lease_find(s, ci[i].index) &&
            (c->ci.chunk_id != ci[i].chunk_id || c->ci.version != ci[i].version))
            same = 0;
    }
    s->size_meta = a->size;
    if (first) s->size_local = a->size;
    s->mode = a->mode;
    s->copies = a->copies;
    if (!same && !created) {
        rc_drop_ino(cm->cache, a->ino);
        /* forget cached locations, except those of chunks leased here */
        size_t j = 0;
        for (size_t i = 0; i < s->nchunks; i++)
            if (ist_lease_find(s, s->chunks[i].index)) s->chunks[j++] = s->chunks[i];
        s->nchunks = j;
    }
    for (uint32_t i = 0; i < nci; i++)
        if (!ist_lease_find(s, ci[i].index)) ist_chunk_set(s, ci[i].index, 1, &ci[i]);
    s->open_mtime_s = a->mtime_s;
    s->open_mtime_ns = a->mtime_ns;
    s->open_size = a->size;
    s->have_open_attr = 1;
    if (h->writable) s->writers++;
    pthread_mutex_unlock(&s->mu);
    fi->keep_cache = same && !created;
    /* with keep_cache the kernel may serve every read from its pages: count the open as one */
    if (fi->keep_cache && (acc == O_RDONLY || acc == O_RDWR)) {
        h->atime_noted = 1;
        at_note(cm->atime, a->ino);
    }
    /* a read-only handle has nothing to write out at close: the kernel skips FLUSH
     * (FOPEN_NOFLUSH, Linux 5.16), one request less per file a data loader reads. POSIX
     * locks are released at close by FLUSH, so a file with locks here keeps it; a lock taken
     * through a handle opened before goes at its RELEASE instead (lk_release) */
    fi->noflush = !h->writable && !lk_ino_locked(cm->locks, a->ino);
    fi->fh = (uintptr_t)h;
    return 0;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct cm *cm = CM(req);
    st_add(ST_FUSE_OPENS, 1);
    struct cairn_attr a;
    struct chunk_info ci[CM_LOCATE_BATCH];
    uint32_t n = 0;
    uint32_t flags = (uint32_t)(fi->flags & (O_ACCMODE | O_TRUNC));
    int read_only = (fi->flags & O_ACCMODE) == O_RDONLY;
    uint64_t tk = xa_ticket(cm);
    int rc;
    if (read_only && !(fi->flags & O_TRUNC) && fresh_lookup(cm, ino, &a, ci, CM_LOCATE_BATCH, &n) &&
        ma_open(cm->notify, ino, flags) == 0) {
        rc = 0; /* the LOOKUP of this open said it all; meta is told after the fact */
        st_add(ST_OPENS_TOLD_AFTER, 1);
    } else
        rc = mc_open_file(&cm->meta, ino, flags, &a, ci, CM_LOCATE_BATCH, &n);
    /* the inode is gone: the kernel's name for it is stale (another mount removed or replaced
     * it within entry_timeout). ESTALE has the kernel look the name up again and retry the
     * open (as NFS does), so an O_CREAT open creates instead of failing (sqlite's journal) */
    if (rc == -ENOENT) rc = -ESTALE;
    if (!rc) ist_xa_note_attr(cm->inodes, &a, xa_ttl_ms(cm), tk); /* for killpriv on write */
    if (!rc && !S_ISREG(a.mode)) rc = S_ISDIR(a.mode) ? -EISDIR : 0;
    if (!rc) rc = open_handle(cm, &a, fi, ci, n, 0);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    for (uint32_t i = 0; cm->dcache && i < n; i++) /* older versions are never read again */
        dc_drop_old(cm->dcache, ci[i].chunk_id, ci[i].version);
    if (cm->scans && (fi->flags & O_ACCMODE) == O_RDONLY) {
        struct ds_file next[DS_AHEAD];
        int k = ds_on_open(cm->scans, ino, next, DS_AHEAD, DS_AHEAD_BYTES);
        for (int i = 0; i < k; i++)
            rp_prefetch_file(cm, &next[i]);
    }
    /* close-to-open: the kernel stops reads at the size it caches; when the file changed since
     * the kernel was told, drop its attributes (offset -1: pages are kept_cache's business) */
    if (cm->se && !kv_same(cm->kview, ino, shown_size(cm, &a), a.mtime_s, a.mtime_ns))
        fuse_lowlevel_notify_inval_inode(cm->se, ino, -1, 0);
    if (fuse_reply_open(req, fi) == -ENOENT) {
        /* the opener was interrupted: undo */
        struct fh *h = FH(fi);
        pthread_mutex_lock(&h->s->mu);
        if (h->writable) h->s->writers--;
        pthread_mutex_unlock(&h->s->mu);
        ist_put(cm->inodes, h->s);
        free(h);
        release_meta(cm, ino, read_only);
    }
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct cm *cm = CM(req);
    struct cairn_attr a;
    uint64_t tk = xa_ticket(cm);
    uint32_t m = (mode & 07777) | S_IFREG, uid, gid;
    int rc = check_name(name);
    if (!rc) rc = new_owner(cm, req, parent, &m, &uid, &gid);
    if (!rc)
        rc = mc_create(&cm->meta, parent, name, m, uid, gid, (uint32_t)(fi->flags & O_EXCL),
                       new_umask(cm, req), &a);
    if (!rc) rc = open_handle(cm, &a, fi, NULL, 0, 1);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    to_entry(cm, &a, tk, &e);
    if (fuse_reply_create(req, &e, fi) == -ENOENT) {
        struct fh *h = FH(fi);
        pthread_mutex_lock(&h->s->mu);
        if (h->writable) h->s->writers--;
        pthread_mutex_unlock(&h->s->mu);
        ist_put(cm->inodes, h->s);
        free(h);
        release_meta(cm, a.ino, 0);
    }
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    struct cm *cm = CM(req);
    struct fh *h = FH(fi);
    if (size > CAIRN_IO_MAX * 4) size = CAIRN_IO_MAX * 4;
    /* page aligned: a read in place goes around the page cache straight into it */
    uint8_t *buf = rb_get(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t got = 0;
    uint64_t t0 = st_now_us();
    if (!h->atime_noted) {
        h->atime_noted = 1;
        at_note(cm->atime, h->s->ino);
    }
    const uint8_t *data;
    struct rc_ent *pin;
    int rc = rp_read_pinned(cm, h->s, &h->ra, (uint64_t)off, size, buf, &data, &got, &pin);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, (const char *)data, got);
    if (pin) rc_unpin(cm->cache, pin);
    rb_put(buf);
    st_add(ST_FUSE_READS, 1);
    st_add(ST_FUSE_READ_BYTES, rc ? 0 : got);
    uint64_t us = st_now_us() - t0;
    st_add(ST_FUSE_READ_US, us);
    st_observe(STH_FUSE_READ, us);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino;
    struct cm *cm = CM(req);
    struct fh *h = FH(fi);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    int rc = wp_write(cm, h->s, (uint64_t)off, buf, size);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    st_add(ST_FUSE_WRITES, 1);
    st_add(ST_FUSE_WRITE_BYTES, size);
    fuse_reply_write(req, size);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct fh *h = FH(fi);
    int rc = h ? wp_flush(CM(req), h->s, 0) : 0;
    lk_flush(CM(req)->locks, (uint64_t)ino, fi->lock_owner); /* POSIX: a close releases */
    fuse_reply_err(req, -rc);
}

/* The data is written and committed first (as flush does: close-to-open consistency needs
 * it before the next open anywhere); then the kernel is answered, and only then is meta told,
 * on this thread, so that closing a file does not wait for that round trip. */
static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct cm *cm = CM(req);
    struct fh *h = FH(fi);
    st_add(ST_FUSE_RELEASES, 1);
    int read_only = h && !h->writable;
    uint64_t tag = (uint64_t)(uintptr_t)h;
    if (h) {
        struct inode_st *s = h->s;
        /* the end of the last write session of this mount makes the data durable on the
         * chunk servers (the kernel does not wait for release, so close() does not either) */
        pthread_mutex_lock(&s->mu);
        int last_writer = h->writable && s->writers == 1;
        pthread_mutex_unlock(&s->mu);
        int rc = wp_flush(cm, s, last_writer);
        if (rc)
            LOG_WARN("fuse", "inode %" PRIu64 ": writing out at release failed: %s", (uint64_t)ino,
                     strerror(-rc));
        pthread_mutex_lock(&s->mu);
        if (h->writable) s->writers--;
        if (s->writers == 0 && s->dlen == 0 && s->wq_n == 0 && !s->need_commit) {
            /* the write session ends: next time the meta's view of the servers is fresh */
            ist_leases_clear(s);
            ist_excl_clear(s);
        }
        pthread_mutex_unlock(&s->mu);
        ist_put(cm->inodes, s);
        free(h);
    }
    /* OFD and flock locks of this open file go with it (after its data is written out) */
    lk_release(cm->locks, (uint64_t)ino, tag, fi->flock_release ? fi->lock_owner : 0);
    fuse_reply_err(req, 0); /* req is gone after this */
    release_meta(cm, ino, read_only);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    struct fh *h = FH(fi);
    int rc = h ? wp_flush(CM(req), h->s, 1) : 0;
    fuse_reply_err(req, -rc);
}

/* An open directory is an open of its inode for meta (a read-only open: counted in the
 * leader's memory, no record), so that removed or replaced by rename it stays, with nlink 0,
 * until releasedir. fh 1: meta counts this open. */
/* fi->fh of an open directory: how meta was told of the open */
#define DIR_TOLD 1   /* with an OPEN of its own, before the reply */
#define DIR_QUEUED 2 /* through the queue of opens told after the fact (meta_async.c) */

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct cm *cm = CM(req);
    /* meta counts the open, so that an rmdir or a rename over the directory keeps it until it
     * is closed; told off the path, as a read-only open of a file is: `ls` and a directory
     * walk cost no request for it, and a listing closed within MA_HOLD_MS is never told */
    if (ma_open(cm->notify, ino, O_RDONLY) == 0) {
        fi->fh = DIR_QUEUED;
        if (fuse_reply_open(req, fi) == -ENOENT) release_meta(cm, ino, 1); /* interrupted */
        return;
    }
    struct cairn_attr a;
    uint32_t n = 0;
    int rc = mc_open_file(&cm->meta, ino, O_RDONLY, &a, NULL, 0, &n);
    if (!rc && !S_ISDIR(a.mode)) {
        release_meta(cm, ino, 0);
        rc = -ENOTDIR;
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    dirc_note(cm, &a); /* for setgid inheritance of what is made in it */
    fi->fh = DIR_TOLD;
    if (fuse_reply_open(req, fi) == -ENOENT) release_meta(cm, ino, 0); /* interrupted */
}

/* Append f to a growing page of regular files; on ENOMEM the page just stays shorter (the
 * scan tracker then misses a file, nothing worse). */
static void seen_add(struct ds_file **v, uint32_t *n, uint32_t *cap, const struct ds_file *f)
{
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 64;
        struct ds_file *nv = realloc(*v, (size_t)c * sizeof(**v));
        if (!nv) return;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = *f;
}

/* readdir offsets: 1 after ".", 2 after "..", then 2 + the meta cookie of the entry. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
    struct cm *cm = CM(req);
    if (size > (1u << 20)) size = 1u << 20;
    char *buf = malloc(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t pos = 0;
    int rc = 0, full = 0;
    for (int dot = 0; dot < 2 && !full; dot++) {
        if (off > dot) continue;
        struct stat st = {0};
        st.st_mode = S_IFDIR;
        st.st_ino = ino;
        const char *name = dot ? ".." : ".";
        if (dot) {
            struct cairn_attr pa;
            if (mc_lookup(&cm->meta, ino, "..", &pa) == 0) st.st_ino = pa.ino;
        }
        size_t n;
        if (plus) {
            struct fuse_entry_param e;
            memset(&e, 0, sizeof(e));
            e.attr = st;
            n = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, dot + 1);
        } else {
            n = fuse_add_direntry(req, buf + pos, size - pos, name, &st, dot + 1);
        }
        if (n > size - pos)
            full = 1;
        else
            pos += n;
    }
    uint64_t cookie = off >= 2 ? (uint64_t)off - 2 : 0;
    struct ds_file *seen = NULL; /* this page's regular files, for directory scans */
    uint32_t nseen = 0, seen_cap = 0;
    uint64_t seen_from = cookie;
    for (int round = 0; round < 1000 && !full && !rc; round++) {
        uint32_t want = (uint32_t)((size - pos) / (plus ? 160 : 32)) + 1;
        if (want > 1024) want = 1024;
        struct rpc_reply rep;
        uint64_t tk = xa_ticket(cm);
        rc = mc_readdir(&cm->meta, ino, cookie, want, plus, &rep);
        if (rc) break;
        struct rcur c;
        rcur_init(&c, rep.payload.data, rep.payload.len);
        uint32_t cnt = rcur_u32(&c);
        for (uint32_t i = 0; i < cnt && !c.err && !full; i++) {
            char name[CAIRN_NAME_MAX + 1];
            uint64_t eino = rcur_u64(&c);
            uint32_t mode = rcur_u32(&c);
            rcur_str(&c, name, CAIRN_NAME_MAX);
            uint64_t next = rcur_u64(&c);
            struct cairn_attr a;
            if (plus) proto_get_attr(&c, &a);
            if (c.err) break;
            off_t noff = (off_t)(next + 2);
            size_t n;
            if (plus) {
                struct fuse_entry_param e;
                to_entry(cm, &a, tk, &e);
                n = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, noff);
            } else {
                struct stat st = {0};
                st.st_ino = eino;
                st.st_mode = mode;
                n = fuse_add_direntry(req, buf + pos, size - pos, name, &st, noff);
            }
            if (n > size - pos) {
                full = 1;
                break;
            }
            pos += n;
            cookie = next;
            if (cm->scans && S_ISREG(mode)) {
                struct ds_file f = {.ino = eino, .mode = mode};
                if (plus) {
                    f.size = a.size;
                    f.mtime_s = a.mtime_s;
                    f.mtime_ns = a.mtime_ns;
                    f.have_attr = 1;
                }
                seen_add(&seen, &nseen, &seen_cap, &f);
            }
        }
        uint8_t eof = full ? 0 : rcur_u8(&c);
        if (c.err) rc = -EIO;
        rpc_reply_free(&rep);
        if (eof || cnt == 0) break;
    }
    if (rc && pos == 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, pos);
    free(buf);
    if (cm->scans && pos > 0) ds_note_listing(cm->scans, ino, seen_from, cookie, seen, nseen);
    free(seen);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    if (off == 0) at_note(CM(req)->atime, ino); /* a listing from the start reads the folder */
    do_readdir(req, ino, size, off, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    (void)fi;
    if (off == 0) at_note(CM(req)->atime, ino);
    do_readdir(req, ino, size, off, 1);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct cm *cm = CM(req);
    uint64_t how = fi->fh;
    fuse_reply_err(req, 0); /* req is gone after this */
    if (how == DIR_TOLD || how == DIR_QUEUED) release_meta(cm, ino, how == DIR_QUEUED);
}

static void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    fuse_reply_err(req, 0); /* every namespace change is committed when it returns */
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct mc_statfs sf;
    int rc = mc_statfs(&CM(req)->meta, &sf);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct statvfs st;
    memset(&st, 0, sizeof(st));
    unsigned long bs = sf.block_size ? sf.block_size : 65536;
    st.f_bsize = bs;
    st.f_frsize = bs;
    st.f_blocks = sf.total_bytes / bs;
    st.f_bfree = sf.free_bytes / bs;
    st.f_bavail = st.f_bfree;
    st.f_files = sf.total_inodes;
    st.f_ffree = sf.free_inodes;
    st.f_favail = sf.free_inodes;
    st.f_namemax = sf.name_max ? sf.name_max : CAIRN_NAME_MAX;
    fuse_reply_statfs(req, &st);
}

/* The kernel asks for this before every write (file_remove_privs), coreutils `ls -l` for
 * security.selinux and the POSIX ACLs of every entry: see IST_XA_* in client.h. */
#define CAP_XATTR "security.capability"

/* A read-only virtual xattr on every inode: the meta service address list of this mount
 * (cfg.meta, as given with -o meta=), so the `cairn` admin tool can find the meta service from
 * a path. Answered here; never listed (cp -a, tar and rsync must not copy it); setting or
 * removing it is EPERM. */
#define META_XATTR "user.cairn.meta"
/* Another, the mount's counters and timings (cstats.h) as "name value" lines. */
#define STATS_XATTR "user.cairn.stats"
#define STATS_TEXT_MAX 8192

static int is_meta_xattr(const char *name)
{
    return strcmp(name, META_XATTR) == 0 || strcmp(name, STATS_XATTR) == 0;
}

/* The value of a virtual xattr (is_meta_xattr) into out (cap bytes); its length. */
static size_t virtual_xattr(struct cm *cm, const char *name, char *out, size_t cap)
{
    if (strcmp(name, STATS_XATTR) == 0) {
        size_t n = st_format(out, cap);
        struct dc_stats d;
        dc_get_stats(cm->dcache, &d);
        if (cm->dcache && n < cap)
            snprintf(out + n, cap - n,
                     "disk_cache_hits %llu\ndisk_cache_misses %llu\ndisk_cache_stale %llu\n"
                     "disk_cache_corrupt %llu\ndisk_cache_puts %llu\ndisk_cache_put_dropped %llu\n"
                     "disk_cache_write_errors %llu\ndisk_cache_evicted %llu\n"
                     "disk_cache_bytes_used %llu\ndisk_cache_entries %llu\ndisk_cache_limit %llu\n"
                     "disk_cache_loaded %llu\n",
                     (unsigned long long)d.hits, (unsigned long long)d.misses,
                     (unsigned long long)d.stale, (unsigned long long)d.corrupt,
                     (unsigned long long)d.put, (unsigned long long)d.put_dropped,
                     (unsigned long long)d.write_errors, (unsigned long long)d.evicted,
                     (unsigned long long)d.bytes_used, (unsigned long long)d.entries,
                     (unsigned long long)d.limit, (unsigned long long)d.loaded);
        return strlen(out);
    }
    snprintf(out, cap, "%s", cm->cfg.meta);
    return strlen(out);
}

/* POSIX ACLs are kept by the meta service, which validates them and keeps the mode in step.
 * When the kernel does not enforce them (no FUSE_CAP_POSIX_ACL, or -o noacl) they are refused
 * rather than stored as opaque xattrs nobody applies: cp -a, tar and rsync then fall back to
 * chmod. */
static int acl_refused(struct cm *cm, const char *name)
{
    return !cm->posix_acl && strncmp(name, "system.posix_acl_", 17) == 0;
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    struct cm *cm = CM(req);
    int rc = 0;
    if (acl_refused(cm, name))
        rc = -EOPNOTSUPP;
    else if (is_meta_xattr(name))
        rc = -EPERM;
    else if (strlen(name) > CAIRN_XATTR_NAME_MAX)
        rc = -ERANGE;
    else if (size > CAIRN_XATTR_SIZE_MAX)
        rc = -E2BIG;
    else if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
        rc = -EINVAL;
    if (!rc) {
        rc = mc_setxattr(&cm->meta, ino, name, value, size, (uint32_t)flags);
        /* after the change (whatever came of it): a reply sent before it is not noted */
        ist_xa_forget(cm->inodes, ino);
    }
    fuse_reply_err(req, -rc);
}

/* Answer a getxattr/listxattr: the size for a size-0 query, ERANGE when too small. */
static void reply_xattr_value(fuse_req_t req, int rc, struct rpc_reply *rep, size_t size)
{
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct rcur c;
    rcur_init(&c, rep->payload.data, rep->payload.len);
    size_t len = 0;
    const uint8_t *v = rcur_bytes(&c, WIRE_MAX_PAYLOAD, &len);
    if (c.err)
        fuse_reply_err(req, EIO);
    else if (size == 0)
        fuse_reply_xattr(req, len);
    else if (len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, (const char *)v, len);
    rpc_reply_free(rep);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct cm *cm = CM(req);
    if (strlen(name) > CAIRN_XATTR_NAME_MAX || acl_refused(cm, name)) {
        fuse_reply_err(req, acl_refused(cm, name) ? EOPNOTSUPP : ERANGE);
        return;
    }
    if (is_meta_xattr(name)) {
        char *text = malloc(STATS_TEXT_MAX);
        size_t len = text ? virtual_xattr(cm, name, text, STATS_TEXT_MAX) : 0;
        if (!text)
            fuse_reply_err(req, ENOMEM);
        else if (size == 0)
            fuse_reply_xattr(req, len);
        else if (len > size)
            fuse_reply_err(req, ERANGE);
        else
            fuse_reply_buf(req, text, len);
        free(text);
        return;
    }
    int is_cap = strcmp(name, CAP_XATTR) == 0;
    /* the directory totals (proto.h) are answered by meta whatever xattrs the inode has */
    int is_dir_total = strncmp(name, CAIRN_DIR_XATTR_PREFIX, CAIRN_DIR_XATTR_PREFIX_LEN) == 0;
    uint32_t known = is_dir_total ? 0 : ist_xa_facts(cm->inodes, ino);
    if ((known & IST_XA_NONE) || (is_cap && (known & IST_XA_NOCAP))) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    struct rpc_reply rep;
    uint64_t tk = xa_ticket(cm);
    int rc = mc_getxattr(&cm->meta, ino, name, &rep);
    if (rc == -ENODATA && is_cap) ist_xa_note_nocap(cm->inodes, ino, xa_ttl_ms(cm), tk);
    reply_xattr_value(req, rc, &rep, size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct cm *cm = CM(req);
    if (ist_xa_facts(cm->inodes, ino) & IST_XA_NONE) {
        if (size == 0)
            fuse_reply_xattr(req, 0);
        else
            fuse_reply_buf(req, NULL, 0);
        return;
    }
    struct rpc_reply rep;
    int rc = mc_listxattr(&cm->meta, ino, &rep);
    reply_xattr_value(req, rc, &rep, size);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct cm *cm = CM(req);
    int rc = strlen(name) > CAIRN_XATTR_NAME_MAX ? -ERANGE : is_meta_xattr(name) ? -EPERM : 0;
    if (!rc) {
        rc = mc_removexattr(&cm->meta, ino, name);
        ist_xa_forget(cm->inodes, ino);
    }
    fuse_reply_err(req, -rc);
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    /* default_permissions is always on: the kernel has checked the mode bits already; here
     * only existence is confirmed. */
    (void)mask;
    struct cairn_attr a;
    int rc = mc_getattr(&CM(req)->meta, ino, &a);
    fuse_reply_err(req, -rc);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    (void)ino;
    int rc = off < 0 || len <= 0
                 ? -EINVAL
                 : fa_fallocate(CM(req), FH(fi)->s, mode, (uint64_t)off, (uint64_t)len);
    fuse_reply_err(req, -rc);
}

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    (void)ino;
    struct cm *cm = CM(req);
    struct inode_st *s = FH(fi)->s;
    if (whence != SEEK_DATA && whence != SEEK_HOLE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    pthread_mutex_lock(&s->mu);
    int rc = wp_flush_locked(cm, s, 0);
    uint64_t size = ist_size(s), csz = cm->meta.chunk_size;
    uint64_t res = 0;
    if (!rc && (off < 0 || (uint64_t)off >= size)) rc = -ENXIO;
    if (!rc) {
        uint64_t last = (size - 1) / csz;
        int found = 0;
        for (uint64_t i = (uint64_t)off / csz; i <= last && !rc && !found; i++) {
            struct chunk_info ci;
            int present = 0;
            uint64_t from = i * csz > (uint64_t)off ? 0 : (uint64_t)off - i * csz;
            rc = rp_locate(cm, s, i, &ci, &present);
            if (rc) break;
            if (!present) { /* a chunk never written: all hole */
                found = whence == SEEK_HOLE;
                res = i * csz + from;
            } else {
                /* the chunk server knows its blocks; unreachable, the chunk counts as data */
                uint32_t at = 0;
                int r = cc_seek(cm->cc, &ci, (uint32_t)from, whence, &at);
                if (r == 0 && (whence == SEEK_DATA || at < csz)) {
                    found = 1;
                    res = i * csz + at;
                } else if (r != 0 && r != -ENXIO && whence == SEEK_DATA) {
                    found = 1;
                    res = i * csz + from;
                }
            }
            if (i - (uint64_t)off / csz > (1u << 20)) break; /* bounded walk */
        }
        if (!rc && !found) {
            if (whence == SEEK_DATA)
                rc = -ENXIO;
            else
                res = size;
        }
        if (!rc && res > size) res = size;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_lseek(req, (off_t)res);
}

/* ---- locks across clients (locks.c) ------------------------------------------------------- */

static int req_interrupted(void *arg)
{
    return fuse_req_interrupted((fuse_req_t)arg);
}

/* Locks order what other mounts see, as NFS does: what this mount wrote under a lock is on
 * the chunk servers and committed before the lock goes (lock_release_prep), and a lock
 * granted here drops what this mount and its kernel cached of the file (pages, attributes,
 * chunk locations), so reads under the lock see what the last holder wrote
 * (lock_granted). */
static int lock_release_prep(struct cm *cm, uint64_t ino)
{
    struct inode_st *s = ist_find(cm->inodes, ino);
    if (!s) return 0;
    int rc = wp_flush(cm, s, 0);
    ist_put(cm->inodes, s);
    return rc;
}

static void lock_granted(struct cm *cm, uint64_t ino)
{
    struct inode_st *s = ist_find(cm->inodes, ino);
    if (s) {
        /* this mount's write leases may be older than another mount's writes since: written
         * out and made durable, they are dropped (the next write here takes a new one), so
         * reads go to the current version */
        int rc = wp_flush(cm, s, 1);
        if (rc)
            LOG_WARN("fuse", "inode %" PRIu64 ": writing out at a lock: %s", ino, strerror(-rc));
        struct cairn_attr a;
        int have = mc_getattr(&cm->meta, ino, &a) == 0;
        pthread_mutex_lock(&s->mu);
        rc_drop_ino(cm->cache, ino);
        if (s->dlen == 0 && s->wq_n == 0) {
            size_t k = 0;
            for (size_t i = 0; i < s->nleases; i++)
                if (s->leases[i].unsynced || s->leases[i].alloc_dirty)
                    s->leases[k++] = s->leases[i];
            s->nleases = k;
        }
        size_t j = 0; /* forget cached locations, except those of chunks leased here */
        for (size_t i = 0; i < s->nchunks; i++)
            if (ist_lease_find(s, s->chunks[i].index)) s->chunks[j++] = s->chunks[i];
        s->nchunks = j;
        s->have_open_attr = 0; /* no disk cache for it until the next open */
        if (have) {
            s->size_meta = a.size;
            if (s->dlen == 0 && s->wq_n == 0 && !s->need_commit) s->size_local = a.size;
        }
        pthread_mutex_unlock(&s->mu);
        ist_put(cm->inodes, s);
    }
    if (cm->se) fuse_lowlevel_notify_inval_inode(cm->se, (fuse_ino_t)ino, 0, 0);
}

/* Set or release want (fs_setlk, fs_flock) with the ordering above. */
static int lock_apply(fuse_req_t req, struct ls_lock *want, int wait)
{
    struct cm *cm = CM(req);
    if (want->type == LS_UN) {
        int rc = lock_release_prep(cm, want->ino);
        if (rc)
            LOG_WARN("fuse", "inode %" PRIu64 ": writing out before an unlock: %s", want->ino,
                     strerror(-rc));
        return lk_set(cm->locks, want, 0, NULL, NULL);
    }
    int rc = lk_set(cm->locks, want, wait, req_interrupted, req);
    if (!rc) lock_granted(cm, want->ino);
    return rc;
}

/* A struct flock from FUSE (l_len 0: to the end of the file) as a POSIX lock of fi's owner. */
static int posix_want(fuse_ino_t ino, struct fuse_file_info *fi, const struct flock *fl,
                      struct ls_lock *l)
{
    memset(l, 0, sizeof(*l));
    l->ino = (uint64_t)ino;
    l->owner = fi->lock_owner;
    l->kind = LS_POSIX;
    l->type = fl->l_type == F_RDLCK ? LS_RD : fl->l_type == F_WRLCK ? LS_WR : LS_UN;
    if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK && fl->l_type != F_UNLCK) return -EINVAL;
    if (fl->l_start < 0 || fl->l_len < 0) return -EINVAL;
    l->start = (uint64_t)fl->l_start;
    l->end = fl->l_len == 0 ? LS_EOF : (uint64_t)fl->l_start + (uint64_t)fl->l_len - 1;
    l->pid = fl->l_pid > 0 ? (uint32_t)fl->l_pid : 0;
    l->tag = (uint64_t)fi->fh;
    return 0;
}

static void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
    struct ls_lock want, held;
    int rc = posix_want(ino, fi, lock, &want);
    if (!rc) rc = lk_test(CM(req)->locks, &want, &held);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (rc == 1) {
        lock->l_type = held.type == LS_WR ? F_WRLCK : F_RDLCK;
        lock->l_whence = SEEK_SET;
        lock->l_start = (off_t)held.start;
        lock->l_len = held.end >= (uint64_t)INT64_MAX ? 0 : (off_t)(held.end - held.start + 1);
        lock->l_pid = (pid_t)held.pid; /* 0: held through another mount */
    } else {
        lock->l_type = F_UNLCK;
    }
    fuse_reply_lock(req, lock);
}

static void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
                     int sleep)
{
    struct ls_lock want;
    int rc = posix_want(ino, fi, lock, &want);
    if (!rc) rc = lock_apply(req, &want, sleep);
    fuse_reply_err(req, -rc);
}

static void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
    struct ls_lock want = {.ino = (uint64_t)ino,
                           .owner = fi->lock_owner,
                           .kind = LS_FLOCK,
                           .end = LS_EOF,
                           .tag = (uint64_t)fi->fh};
    int how = op & ~LOCK_NB, rc = 0;
    if (how == LOCK_SH)
        want.type = LS_RD;
    else if (how == LOCK_EX)
        want.type = LS_WR;
    else if (how == LOCK_UN)
        want.type = LS_UN;
    else
        rc = -EINVAL;
    if (!rc) rc = lock_apply(req, &want, !(op & LOCK_NB));
    fuse_reply_err(req, rc == -EAGAIN ? EWOULDBLOCK : -rc);
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .setattr = fs_setattr,
    .readlink = fs_readlink,
    .mknod = fs_mknod,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .symlink = fs_symlink,
    .rename = fs_rename,
    .link = fs_link,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .release = fs_release,
    .fsync = fs_fsync,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .readdirplus = fs_readdirplus,
    .releasedir = fs_releasedir,
    .fsyncdir = fs_fsyncdir,
    .statfs = fs_statfs,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
    .access = fs_access,
    .fallocate = fs_fallocate,
    .lseek = fs_lseek,
    .getlk = fs_getlk,
    .setlk = fs_setlk,
    .flock = fs_flock,
};
