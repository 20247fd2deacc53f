/* mstore_acl.c - POSIX ACLs in the meta store: the xattr encoding and its rules
 * (mstore_acl.h), and applying them inside records: setxattr of an ACL (validated; the mode
 * follows an access ACL, an access ACL the mode says all of is not stored), chmod (the access
 * ACL follows the mode) and new nodes (the parent's default ACL, or else the caller's umask).
 * Everything here runs inside the apply of a record and depends only on the record and the
 * store, so every replica computes the same modes and ACLs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mstore_acl.h"
#include "mstore_int.h"

int mst_acl_kind(const char *name)
{
    if (strcmp(name, MST_ACL_ACCESS) == 0) return 1;
    if (strcmp(name, MST_ACL_DEFAULT) == 0) return 2;
    return 0;
}

/* The checks of the kernel's posix_acl_valid(): order of tags, one of each base entry,
 * increasing ids, a mask with named entries. */
static int acl_valid(const struct mst_acl *a)
{
    uint32_t state = MST_ACL_USER_OBJ;
    int needs_mask = 0, have_prev = 0;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const struct mst_acl_entry *e = &a->e[i];
        if (e->perm & ~7u) return -EINVAL;
        switch (e->tag) {
        case MST_ACL_USER_OBJ:
            if (state != MST_ACL_USER_OBJ) return -EINVAL;
            state = MST_ACL_USER;
            break;
        case MST_ACL_USER:
        case MST_ACL_GROUP:
            if (state != (e->tag == MST_ACL_USER ? MST_ACL_USER : MST_ACL_GROUP)) return -EINVAL;
            if (e->id == MST_ACL_UNDEFINED_ID) return -EINVAL;
            if (have_prev && e->id <= prev) return -EINVAL;
            prev = e->id;
            have_prev = 1;
            needs_mask = 1;
            break;
        case MST_ACL_GROUP_OBJ:
            if (state != MST_ACL_USER) return -EINVAL;
            state = MST_ACL_GROUP;
            have_prev = 0;
            break;
        case MST_ACL_MASK:
            if (state != MST_ACL_GROUP) return -EINVAL;
            state = MST_ACL_OTHER;
            break;
        case MST_ACL_OTHER:
            if (state != MST_ACL_OTHER && !(state == MST_ACL_GROUP && !needs_mask)) return -EINVAL;
            state = 0;
            break;
        default:
            return -EINVAL;
        }
    }
    return state == 0 ? 0 : -EINVAL;
}

int mst_acl_decode(const uint8_t *v, size_t len, struct mst_acl *a)
{
    a->n = 0;
    if (!v || len < 4 || (len - 4) % 8) return -EINVAL;
    if (le_get32(v) != MST_ACL_VERSION) return -EINVAL;
    size_t n = (len - 4) / 8;
    if (n == 0) return -EINVAL;
    if (n > MST_ACL_MAX_ENTRIES) return -E2BIG;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = v + 4 + 8 * i;
        a->e[i].tag = le_get16(p);
        a->e[i].perm = le_get16(p + 2);
        a->e[i].id = le_get32(p + 4);
    }
    a->n = (uint32_t)n;
    int rc = acl_valid(a);
    if (rc) a->n = 0;
    return rc;
}

size_t mst_acl_size(const struct mst_acl *a)
{
    return 4 + 8 * (size_t)a->n;
}

void mst_acl_encode(const struct mst_acl *a, uint8_t *out)
{
    le_put32(out, MST_ACL_VERSION);
    for (uint32_t i = 0; i < a->n; i++) {
        const struct mst_acl_entry *e = &a->e[i];
        uint8_t *p = out + 4 + 8 * i;
        int named = e->tag == MST_ACL_USER || e->tag == MST_ACL_GROUP;
        le_put16(p, e->tag);
        le_put16(p + 2, e->perm);
        le_put32(p + 4, named ? e->id : MST_ACL_UNDEFINED_ID);
    }
}

int mst_acl_equiv_mode(const struct mst_acl *a, uint32_t *mode)
{
    uint32_t m = 0;
    int not_equiv = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        const struct mst_acl_entry *e = &a->e[i];
        switch (e->tag) {
        case MST_ACL_USER_OBJ:
            m |= (e->perm & 7u) << 6;
            break;
        case MST_ACL_GROUP_OBJ:
            m |= (e->perm & 7u) << 3;
            break;
        case MST_ACL_OTHER:
            m |= e->perm & 7u;
            break;
        case MST_ACL_MASK: /* after the group entry: the group bits are the mask */
            m = (m & ~(uint32_t)S_IRWXG) | ((e->perm & 7u) << 3);
            not_equiv = 1;
            break;
        default:
            not_equiv = 1;
            break;
        }
    }
    *mode = (*mode & ~(uint32_t)0777) | m;
    return not_equiv;
}

void mst_acl_chmod(struct mst_acl *a, uint32_t mode)
{
    struct mst_acl_entry *group = NULL, *mask = NULL;
    for (uint32_t i = 0; i < a->n; i++) {
        struct mst_acl_entry *e = &a->e[i];
        if (e->tag == MST_ACL_USER_OBJ) e->perm = (mode >> 6) & 7u;
        if (e->tag == MST_ACL_OTHER) e->perm = mode & 7u;
        if (e->tag == MST_ACL_GROUP_OBJ) group = e;
        if (e->tag == MST_ACL_MASK) mask = e;
    }
    if (mask)
        mask->perm = (mode >> 3) & 7u;
    else if (group)
        group->perm = (mode >> 3) & 7u;
}

int mst_acl_create_masq(struct mst_acl *a, uint32_t *mode_p)
{
    uint32_t mode = *mode_p;
    struct mst_acl_entry *group = NULL, *mask = NULL;
    int not_equiv = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        struct mst_acl_entry *e = &a->e[i];
        switch (e->tag) {
        case MST_ACL_USER_OBJ:
            e->perm &= (mode >> 6) & 7u;
            mode &= ((uint32_t)e->perm << 6) | ~(uint32_t)S_IRWXU;
            break;
        case MST_ACL_OTHER:
            e->perm &= mode & 7u;
            mode &= e->perm | ~(uint32_t)S_IRWXO;
            break;
        case MST_ACL_GROUP_OBJ:
            group = e;
            break;
        case MST_ACL_MASK:
            mask = e;
            not_equiv = 1;
            break;
        default:
            not_equiv = 1;
            break;
        }
    }
    struct mst_acl_entry *g = mask ? mask : group;
    if (g) {
        g->perm &= (mode >> 3) & 7u;
        mode &= ((uint32_t)g->perm << 3) | ~(uint32_t)S_IRWXG;
    }
    *mode_p = (*mode_p & ~(uint32_t)0777) | (mode & 0777);
    return not_equiv;
}

/* ---- in records ---------------------------------------------------------------------------- */

/* Read and decode an ACL of ino: 0, -ENOENT when it has none, -EIO if the stored value is not
 * valid (values are validated before they are stored). */
static int acl_load(MDB_txn *t, struct mstore *s, uint64_t ino, const char *name, struct mst_acl *a)
{
    MDB_val v;
    int rc = mst_xattr_get_raw(t, s, ino, name, &v);
    if (rc) return rc;
    return mst_acl_decode(v.mv_data, v.mv_size, a) ? -EIO : 0;
}

static int acl_store(struct mtx *x, uint64_t ino, const char *name, const struct mst_acl *a)
{
    uint8_t *b = malloc(mst_acl_size(a));
    if (!b) return -ENOMEM;
    mst_acl_encode(a, b);
    int rc = mst_xattr_put_raw(x, ino, name, b, mst_acl_size(a));
    free(b);
    return rc;
}

int mst_acl_set(struct mtx *x, struct mst_inode *r, int kind)
{
    const struct mop *op = x->op;
    if (S_ISLNK(r->mode)) return -EOPNOTSUPP;
    if (kind == 2 && !S_ISDIR(r->mode)) return -EACCES;
    struct mst_acl *a = malloc(sizeof(*a));
    if (!a) return -ENOMEM;
    int rc = mst_acl_decode(op->data, op->data_len, a);
    if (!rc && kind == 2) rc = acl_store(x, op->ino, MST_ACL_DEFAULT, a);
    if (!rc && kind == 1) {
        if (mst_acl_equiv_mode(a, &r->mode)) {
            rc = acl_store(x, op->ino, MST_ACL_ACCESS, a);
        } else {
            rc = mst_xattr_del_raw(x, op->ino, MST_ACL_ACCESS);
            if (rc == -ENOENT) rc = 0;
        }
        if (!rc) rc = mst_inode_put(x->txn, x->s, op->ino, r);
    }
    free(a);
    return rc;
}

int mstore_acl_access_unchanged(struct mstore *s, uint64_t ino, const char *name, const void *value,
                                size_t len)
{
    if (mst_acl_kind(name) != 1) return 0;
    struct mst_acl *a = malloc(sizeof(*a));
    MDB_txn *t = NULL;
    struct mst_inode r;
    MDB_val v;
    int same = a && mst_acl_decode(value, len, a) == 0 && mst_rtxn(s, &t) == 0 &&
               mst_inode_get(t, s, ino, &r) == 0 && !S_ISLNK(r.mode) &&
               mst_xattr_get_raw(t, s, ino, MST_ACL_ACCESS, &v) == -ENOENT;
    if (same) {
        uint32_t mode = r.mode;
        same = !mst_acl_equiv_mode(a, &mode) && mode == r.mode;
    }
    if (t) mdb_txn_abort(t);
    free(a);
    return same;
}

int mst_acl_chmod_inode(struct mtx *x, uint64_t ino, uint32_t mode)
{
    struct mst_acl *a = malloc(sizeof(*a));
    if (!a) return -ENOMEM;
    int rc = acl_load(x->txn, x->s, ino, MST_ACL_ACCESS, a);
    if (!rc) {
        mst_acl_chmod(a, mode);
        rc = acl_store(x, ino, MST_ACL_ACCESS, a);
    }
    free(a);
    return rc == -ENOENT ? 0 : rc;
}

int mst_acl_new_prepare(struct mtx *x, uint64_t parent, uint32_t *mode, struct mst_acl_new *n)
{
    n->access = n->dflt = NULL;
    if (S_ISLNK(*mode)) return 0; /* symlinks have no ACL and always mode 0777 */
    struct mst_acl *d = malloc(sizeof(*d));
    if (!d) return -ENOMEM;
    int rc = acl_load(x->txn, x->s, parent, MST_ACL_DEFAULT, d);
    if (rc == -ENOENT) {
        free(d);
        if (x->op->valid & MOP_UMASK_SET) *mode &= ~(x->op->valid & 0777u);
        return 0;
    }
    if (rc) {
        free(d);
        return rc;
    }
    struct mst_acl *acc = malloc(sizeof(*acc));
    if (!acc) {
        free(d);
        return -ENOMEM;
    }
    acc->n = d->n;
    memcpy(acc->e, d->e, d->n * sizeof(d->e[0]));
    if (mst_acl_create_masq(acc, mode))
        n->access = acc;
    else
        free(acc);
    if (S_ISDIR(*mode))
        n->dflt = d;
    else
        free(d);
    return 0;
}

int mst_acl_new_store(struct mtx *x, uint64_t ino, struct mst_inode *r, const struct mst_acl_new *n)
{
    if (!n->access && !n->dflt) return 0;
    int rc = 0;
    if (n->access) rc = acl_store(x, ino, MST_ACL_ACCESS, n->access);
    if (!rc && n->dflt) rc = acl_store(x, ino, MST_ACL_DEFAULT, n->dflt);
    if (rc) return rc;
    r->flags |= MST_INO_XATTRS | MST_INO_XATTRS_KNOWN;
    return mst_inode_put(x->txn, x->s, ino, r);
}

void mst_acl_new_free(struct mst_acl_new *n)
{
    free(n->access);
    free(n->dflt);
    n->access = n->dflt = NULL;
}
