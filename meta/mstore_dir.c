/* mstore_dir.c - directory entries: the dirent and dirseq databases, lookup, readdir (a
 * cursor range scan by sequence number, so cookies stay valid across inserts and deletes),
 * readlink, and the namespace operations mknod, mkdir, symlink, link, unlink and rmdir.
 *
 * Readdir positions: an entry's sequence number is given once, when its name appears in the
 * directory (the directory's next_seq), and kept until the name goes. A rename inside one
 * directory keeps the moving entry's sequence under its new name, and RENAME_EXCHANGE keeps
 * both names where they are (only the inodes swap), so a listing in progress never meets an
 * entry a second time, and a cookie (sequence + 1) resumes at the same place from any open of
 * the directory, at any later time, on every replica. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_int.h"

int mst_name_check(const char *name)
{
    size_t n = strnlen(name, CAIRN_NAME_MAX + 1);
    if (n > CAIRN_NAME_MAX) return -ENAMETOOLONG;
    if (n == 0 || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) return -EINVAL;
    return 0;
}

static size_t dirent_key(uint8_t *k, uint64_t parent, const char *name)
{
    size_t n = strlen(name);
    be_put64(k, parent);
    memcpy(k + 8, name, n);
    return 8 + n;
}

static int dirent_read(MDB_txn *t, struct mstore *s, uint64_t parent, const char *name,
                       uint64_t *child, uint32_t *mode, uint64_t *seq)
{
    uint8_t k[8 + CAIRN_NAME_MAX];
    MDB_val v;
    int rc = mst_get(t, s->dirent, k, dirent_key(k, parent, name), &v);
    if (rc) return rc;
    if (v.mv_size != 20) return -EIO;
    *child = le_get64(v.mv_data);
    *mode = le_get32((uint8_t *)v.mv_data + 8);
    if (seq) *seq = le_get64((uint8_t *)v.mv_data + 12);
    return 0;
}

int mst_dirent_get(MDB_txn *t, struct mstore *s, uint64_t parent, const char *name, uint64_t *child,
                   uint32_t *mode)
{
    return dirent_read(t, s, parent, name, child, mode, NULL);
}

int mst_dir_get(struct mtx *x, uint64_t dir, struct mst_inode *r)
{
    int rc = mst_inode_get(x->txn, x->s, dir, r);
    if (rc) return rc;
    return S_ISDIR(r->mode) ? 0 : -ENOTDIR;
}

/* Write both records of entry (parent, name) -> child at readdir position seq. */
static int dirent_put(struct mtx *x, uint64_t parent, const char *name, uint64_t child,
                      uint32_t mode, uint64_t seq)
{
    uint8_t k[8 + CAIRN_NAME_MAX], v[20];
    size_t kl = dirent_key(k, parent, name);
    le_put64(v, child);
    le_put32(v + 8, mode);
    le_put64(v + 12, seq);
    int rc = mst_put(x->txn, x->s->dirent, k, kl, v, 20);
    if (rc) return rc;
    uint8_t sk[16], sv[12 + CAIRN_NAME_MAX];
    size_t n = strlen(name);
    be_put64(sk, parent);
    be_put64(sk + 8, seq);
    le_put64(sv, child);
    le_put32(sv + 8, mode);
    memcpy(sv + 12, name, n);
    return mst_put(x->txn, x->s->dirseq, sk, 16, sv, 12 + n);
}

int mst_dirent_add(struct mtx *x, uint64_t parent, const char *name, uint64_t child, uint32_t mode)
{
    struct mst_inode d;
    int rc = mst_dir_get(x, parent, &d);
    if (rc) return rc;
    uint64_t seq = d.next_seq++;
    rc = mst_inode_put(x->txn, x->s, parent, &d);
    if (!rc) rc = dirent_put(x, parent, name, child, mode, seq);
    return rc ? rc : mst_rstat_entry_add(x, parent, child, mode);
}

int mst_dirent_rename(struct mtx *x, uint64_t parent, const char *from, const char *to)
{
    uint64_t child, seq;
    uint32_t mode;
    int rc = dirent_read(x->txn, x->s, parent, from, &child, &mode, &seq);
    if (rc) return rc;
    uint8_t k[8 + CAIRN_NAME_MAX];
    rc = mst_del(x->txn, x->s->dirent, k, dirent_key(k, parent, from));
    /* the same names of the same inodes in the same directory: the totals do not change */
    return rc ? rc : dirent_put(x, parent, to, child, mode, seq);
}

int mst_dirent_set_child(struct mtx *x, uint64_t parent, const char *name, uint64_t child,
                         uint32_t mode)
{
    uint64_t old, seq;
    uint32_t omode;
    int rc = dirent_read(x->txn, x->s, parent, name, &old, &omode, &seq);
    return rc ? rc : dirent_put(x, parent, name, child, mode, seq);
}

int mst_dirent_del(struct mtx *x, uint64_t parent, const char *name)
{
    uint64_t child, seq;
    uint32_t mode;
    int rc = dirent_read(x->txn, x->s, parent, name, &child, &mode, &seq);
    if (rc) return rc;
    uint8_t k[8 + CAIRN_NAME_MAX], sk[16];
    rc = mst_del(x->txn, x->s->dirent, k, dirent_key(k, parent, name));
    if (rc) return rc;
    be_put64(sk, parent);
    be_put64(sk + 8, seq);
    rc = mst_del(x->txn, x->s->dirseq, sk, 16);
    return rc ? rc : mst_rstat_entry_del(x, parent, child, mode);
}

int mst_dir_is_empty(MDB_txn *t, struct mstore *s, uint64_t dir)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->dirent, &c));
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, dir);
    MDB_val key = {8, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    int empty;
    if (rc == MDB_NOTFOUND)
        empty = 1;
    else if (rc)
        empty = mst_err(rc);
    else
        empty = !(key.mv_size >= 8 && memcmp(key.mv_data, k, 8) == 0);
    mdb_cursor_close(c);
    return empty;
}

int mst_dir_touch(struct mtx *x, uint64_t dir, int dnlink)
{
    struct mst_inode d;
    int rc = mst_dir_get(x, dir, &d);
    if (rc) return rc;
    if (dnlink > 0 && d.nlink >= MST_LINK_MAX) return -EMLINK;
    d.nlink = (uint32_t)((int64_t)d.nlink + dnlink);
    mst_set_mctime(x, &d);
    return mst_inode_put(x->txn, x->s, dir, &d);
}

/* Checks shared by every operation adding name to parent: the name, the parent, no entry. */
static int new_entry_check(struct mtx *x, uint64_t parent, const char *name)
{
    int rc = mst_name_check(name);
    if (rc) return rc;
    struct mst_inode d;
    rc = mst_dir_get(x, parent, &d);
    if (rc) return rc;
    if (d.nlink == 0) return -ENOENT; /* removed directory still open */
    uint64_t child;
    uint32_t mode;
    rc = mst_dirent_get(x->txn, x->s, parent, name, &child, &mode);
    if (rc == 0) return -EEXIST;
    return rc == -ENOENT ? 0 : rc;
}

static int make_node(struct mtx *x, uint32_t mode, uint64_t rdev)
{
    const struct mop *op = x->op;
    int rc = new_entry_check(x, op->parent, op->name);
    if (rc) return rc;
    struct mst_acl_new acl; /* the parent's default ACL, or the umask, decide the mode */
    rc = mst_acl_new_prepare(x, op->parent, &mode, &acl);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_new(x, mode, op->uid, op->gid, rdev, op->parent, &r);
    if (!rc) rc = mst_acl_new_store(x, op->new_ino, &r, &acl);
    mst_acl_new_free(&acl);
    if (!rc) rc = mst_dirent_add(x, op->parent, op->name, op->new_ino, mode);
    if (!rc) rc = mst_dir_touch(x, op->parent, S_ISDIR(mode) ? 1 : 0);
    if (!rc && x->res) mst_inode_attr(op->new_ino, &r, &x->res->attr);
    return rc;
}

int mst_apply_mknod(struct mtx *x)
{
    uint32_t mode = x->op->mode;
    if ((mode & S_IFMT) == 0) mode |= S_IFREG;
    if (S_ISDIR(mode) || S_ISLNK(mode)) return -EINVAL;
    if (!S_ISREG(mode) && !S_ISCHR(mode) && !S_ISBLK(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode))
        return -EINVAL;
    return make_node(x, mode & (S_IFMT | 07777), x->op->rdev);
}

int mst_apply_mkdir(struct mtx *x)
{
    return make_node(x, S_IFDIR | (x->op->mode & 07777), 0);
}

int mst_apply_symlink(struct mtx *x)
{
    const struct mop *op = x->op;
    if (op->data_len == 0) return -ENOENT;
    if (op->data_len > CAIRN_PATH_MAX || !op->data) return -ENAMETOOLONG;
    int rc = make_node(x, S_IFLNK | 0777, 0);
    if (rc) return rc;
    uint8_t k[8];
    be_put64(k, op->new_ino);
    rc = mst_put(x->txn, x->s->symlink, k, 8, op->data, op->data_len);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_get(x->txn, x->s, op->new_ino, &r);
    if (rc) return rc;
    r.size = op->data_len;
    rc = mst_rstat_size(x, &r, 0);
    if (!rc) rc = mst_inode_put(x->txn, x->s, op->new_ino, &r);
    if (!rc && x->res) mst_inode_attr(op->new_ino, &r, &x->res->attr);
    return rc;
}

int mst_apply_link(struct mtx *x)
{
    const struct mop *op = x->op;
    struct mst_inode r;
    int rc = mst_inode_get(x->txn, x->s, op->ino, &r);
    if (rc) return rc;
    if (S_ISDIR(r.mode)) return -EPERM;
    if (r.nlink == 0) return -ENOENT;
    if (r.nlink >= MST_LINK_MAX) return -EMLINK;
    rc = new_entry_check(x, op->parent, op->name);
    if (rc) return rc;
    r.nlink++;
    mst_set_ctime(x, &r);
    rc = mst_inode_put(x->txn, x->s, op->ino, &r);
    if (!rc) rc = mst_dirent_add(x, op->parent, op->name, op->ino, r.mode);
    if (!rc) rc = mst_dir_touch(x, op->parent, 0);
    if (!rc && x->res) mst_inode_attr(op->ino, &r, &x->res->attr);
    return rc;
}

/* Look up an existing entry for removal: name checks, parent is a directory. */
static int entry_for_remove(struct mtx *x, uint64_t *child, uint32_t *mode)
{
    const struct mop *op = x->op;
    if (strnlen(op->name, CAIRN_NAME_MAX + 1) > CAIRN_NAME_MAX) return -ENAMETOOLONG;
    struct mst_inode d;
    int rc = mst_dir_get(x, op->parent, &d);
    if (rc) return rc;
    if (!strcmp(op->name, ".")) return -EINVAL;
    if (!strcmp(op->name, "..")) return -ENOTEMPTY;
    return mst_dirent_get(x->txn, x->s, op->parent, op->name, child, mode);
}

int mst_apply_unlink(struct mtx *x)
{
    uint64_t child;
    uint32_t mode;
    int rc = entry_for_remove(x, &child, &mode);
    if (rc == -ENOTEMPTY) rc = -EISDIR;
    if (rc) return rc;
    if (S_ISDIR(mode)) return -EISDIR;
    rc = mst_dirent_del(x, x->op->parent, x->op->name);
    if (!rc) rc = mst_dir_touch(x, x->op->parent, 0);
    if (!rc) rc = mst_inode_unlink(x, child);
    return rc;
}

int mst_apply_rmdir(struct mtx *x)
{
    uint64_t child;
    uint32_t mode;
    int rc = entry_for_remove(x, &child, &mode);
    if (rc) return rc;
    if (!S_ISDIR(mode)) return -ENOTDIR;
    rc = mst_dir_is_empty(x->txn, x->s, child);
    if (rc < 0) return rc;
    if (!rc) return -ENOTEMPTY;
    rc = mst_dirent_del(x, x->op->parent, x->op->name);
    if (!rc) rc = mst_dir_touch(x, x->op->parent, -1);
    if (!rc) rc = mst_inode_unlink(x, child);
    return rc;
}

int mstore_child_now(struct mstore *s, uint64_t parent, const char *name, uint64_t *child)
{
    uint32_t mode;
    if (s->batch) return mst_dirent_get(s->batch, s, parent, name, child, &mode);
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    rc = mst_dirent_get(t, s, parent, name, child, &mode);
    mdb_txn_abort(t);
    return rc;
}

int mstore_lookup(struct mstore *s, uint64_t parent, const char *name, struct cairn_attr *out)
{
    if (strnlen(name, CAIRN_NAME_MAX + 1) > CAIRN_NAME_MAX) return -ENAMETOOLONG;
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    struct mst_inode d;
    uint64_t child = 0;
    uint32_t mode;
    rc = mst_inode_get(t, s, parent, &d);
    if (!rc && !S_ISDIR(d.mode)) rc = -ENOTDIR;
    if (!rc) {
        if (!strcmp(name, "."))
            child = parent;
        else if (!strcmp(name, ".."))
            child = d.parent ? d.parent : parent;
        else if (name[0] == '\0')
            rc = -ENOENT;
        else
            rc = mst_dirent_get(t, s, parent, name, &child, &mode);
    }
    struct mst_inode r;
    if (!rc) rc = mst_inode_get(t, s, child, &r);
    if (!rc) mst_inode_attr(child, &r, out);
    mdb_txn_abort(t);
    return rc;
}

int mstore_readlink(struct mstore *s, uint64_t ino, char *buf, size_t buflen)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    struct mst_inode r;
    rc = mst_inode_get(t, s, ino, &r);
    if (!rc && !S_ISLNK(r.mode)) rc = -EINVAL;
    MDB_val v;
    uint8_t k[8];
    be_put64(k, ino);
    if (!rc) rc = mst_get(t, s->symlink, k, 8, &v);
    if (!rc && v.mv_size + 1 > buflen) rc = -ERANGE;
    if (!rc) {
        memcpy(buf, v.mv_data, v.mv_size);
        buf[v.mv_size] = '\0';
    }
    mdb_txn_abort(t);
    return rc;
}

static int readdir_scan(struct mstore *s, MDB_txn *t, uint64_t dir, uint64_t cookie, int plus,
                        mstore_dirent_fn fn, void *arg, int *eof)
{
    MDB_cursor *c;
    int rc = mst_err(mdb_cursor_open(t, s->dirseq, &c));
    if (rc) return rc;
    uint8_t k[16];
    be_put64(k, dir);
    be_put64(k + 8, cookie);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    *eof = 0;
    for (;;) {
        if (mrc == MDB_NOTFOUND || key.mv_size != 16 || be_get64(key.mv_data) != dir) {
            *eof = 1;
            break;
        }
        if (mrc) {
            rc = mst_err(mrc);
            break;
        }
        if (val.mv_size < 12 || val.mv_size > 12 + CAIRN_NAME_MAX) {
            rc = -EIO;
            break;
        }
        char name[CAIRN_NAME_MAX + 1];
        uint64_t child = le_get64(val.mv_data);
        uint32_t mode = le_get32((uint8_t *)val.mv_data + 8);
        memcpy(name, (uint8_t *)val.mv_data + 12, val.mv_size - 12);
        name[val.mv_size - 12] = '\0';
        uint64_t seq = be_get64((uint8_t *)key.mv_data + 8);
        struct cairn_attr a, *ap = NULL;
        if (plus) {
            struct mst_inode r;
            rc = mst_inode_get(t, s, child, &r);
            if (rc) break;
            mst_inode_attr(child, &r, &a);
            ap = &a;
        }
        if (fn(arg, child, mode, name, ap, seq + 1)) break;
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc;
}

int mstore_readdir(struct mstore *s, uint64_t dir, uint64_t cookie, int plus, mstore_dirent_fn fn,
                   void *arg, int *eof)
{
    MDB_txn *t;
    int rc = mst_rtxn(s, &t);
    if (rc) return rc;
    struct mst_inode d;
    rc = mst_inode_get(t, s, dir, &d);
    if (!rc && !S_ISDIR(d.mode)) rc = -ENOTDIR;
    if (!rc) rc = readdir_scan(s, t, dir, cookie, plus, fn, arg, eof);
    mdb_txn_abort(t);
    return rc;
}
