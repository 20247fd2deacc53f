/* test_meta_acl.c - unit tests of POSIX ACLs in the meta store (meta/mstore_acl.c): decoding
 * and validation of the xattr format (malformed values refused, never a crash), the mode rules
 * (equivalent mode, chmod, inheritance masking) against values worked out by hand from the
 * kernel's rules, and the records on a real LMDB store: setxattr of an ACL sets the mode,
 * chmod updates the mask, new files, directories and nodes inherit a directory's default ACL
 * (the umask applied only without one), and a replica replaying the records agrees. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mop.h"
#include "mstore.h"
#include "mstore_acl.h"
#include "unit_main.h"

#define UNDEF MST_ACL_UNDEFINED_ID

static char dir[64];
static struct mstore *st;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mst-acl-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct mstore_opts o = {.map_size = 1ull << 28, .chunk_size = 1u << 20, .no_sync = 1};
    ck_assert_int_eq(mstore_open(dir, &o, &st), 0);
}

static void teardown(void)
{
    mstore_close(st);
    st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- building values ------------------------------------------------------------------------- */

struct ent {
    uint16_t tag, perm;
    uint32_t id;
};

/* Encode n entries as the kernel does; returns the length. */
static size_t enc(uint8_t *out, const struct ent *e, size_t n)
{
    out[0] = 2, out[1] = out[2] = out[3] = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = out + 4 + 8 * i;
        p[0] = (uint8_t)e[i].tag, p[1] = (uint8_t)(e[i].tag >> 8);
        p[2] = (uint8_t)e[i].perm, p[3] = (uint8_t)(e[i].perm >> 8);
        for (int b = 0; b < 4; b++)
            p[4 + b] = (uint8_t)(e[i].id >> (8 * b));
    }
    return 4 + 8 * n;
}

/* user::rw-, user:1001:rwx, group::r-x, group:2001:r--, mask::rw-, other::--- */
static const struct ent FULL[] = {
    {MST_ACL_USER_OBJ, 6, UNDEF}, {MST_ACL_USER, 7, 1001},  {MST_ACL_GROUP_OBJ, 5, UNDEF},
    {MST_ACL_GROUP, 4, 2001},     {MST_ACL_MASK, 6, UNDEF}, {MST_ACL_OTHER, 0, UNDEF},
};
#define NFULL (sizeof(FULL) / sizeof(FULL[0]))

static int decode_ents(const struct ent *e, size_t n, struct mst_acl *a)
{
    uint8_t b[256];
    return mst_acl_decode(b, enc(b, e, n), a);
}

static struct mst_acl *acl_new(void)
{
    struct mst_acl *a = malloc(sizeof(*a));
    ck_assert_ptr_nonnull(a);
    return a;
}

static uint16_t perm_of(const struct mst_acl *a, uint16_t tag)
{
    for (uint32_t i = 0; i < a->n; i++)
        if (a->e[i].tag == tag) return a->e[i].perm;
    ck_abort_msg("no entry with tag 0x%x", tag);
    return 0;
}

/* ---- format ---------------------------------------------------------------------------------- */

START_TEST(test_decode_valid_and_encode_back)
{
    struct mst_acl *a = acl_new();
    uint8_t b[256], out[256];
    size_t len = enc(b, FULL, NFULL);
    ck_assert_int_eq(mst_acl_decode(b, len, a), 0);
    ck_assert_uint_eq(a->n, NFULL);
    ck_assert_uint_eq(a->e[1].id, 1001);
    ck_assert_uint_eq(mst_acl_size(a), len);
    mst_acl_encode(a, out);
    ck_assert_mem_eq(out, b, len);
    ck_assert_int_eq(mst_acl_kind("system.posix_acl_access"), 1);
    ck_assert_int_eq(mst_acl_kind("system.posix_acl_default"), 2);
    ck_assert_int_eq(mst_acl_kind("user.posix_acl_access"), 0);
    free(a);
}
END_TEST

START_TEST(test_decode_refuses_malformed)
{
    struct mst_acl *a = acl_new();
    uint8_t b[256];
    size_t len = enc(b, FULL, NFULL);
    ck_assert_int_eq(mst_acl_decode(NULL, 0, a), -EINVAL);
    ck_assert_int_eq(mst_acl_decode(b, 3, a), -EINVAL);       /* shorter than the header */
    ck_assert_int_eq(mst_acl_decode(b, 4, a), -EINVAL);       /* no entry */
    ck_assert_int_eq(mst_acl_decode(b, len - 1, a), -EINVAL); /* a torn entry */
    b[0] = 1;
    ck_assert_int_eq(mst_acl_decode(b, len, a), -EINVAL); /* version */
    b[0] = 2;
    b[4 + 8 * 1 + 2] = 8; /* a perm bit beyond rwx */
    ck_assert_int_eq(mst_acl_decode(b, len, a), -EINVAL);

    /* order, duplicates, missing entries, missing mask, unknown tags */
    const struct ent unsorted[] = {
        {MST_ACL_GROUP_OBJ, 4, UNDEF}, {MST_ACL_USER_OBJ, 6, UNDEF}, {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(unsorted, 3, a), -EINVAL);
    const struct ent dup_user[] = {{MST_ACL_USER_OBJ, 6, UNDEF}, {MST_ACL_USER, 6, 5},
                                   {MST_ACL_USER, 6, 5},         {MST_ACL_GROUP_OBJ, 4, UNDEF},
                                   {MST_ACL_MASK, 6, UNDEF},     {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(dup_user, 6, a), -EINVAL);
    const struct ent desc_group[] = {{MST_ACL_USER_OBJ, 6, UNDEF}, {MST_ACL_GROUP_OBJ, 4, UNDEF},
                                     {MST_ACL_GROUP, 6, 9},        {MST_ACL_GROUP, 6, 3},
                                     {MST_ACL_MASK, 6, UNDEF},     {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(desc_group, 6, a), -EINVAL);
    const struct ent no_mask[] = {{MST_ACL_USER_OBJ, 6, UNDEF},
                                  {MST_ACL_USER, 6, 5},
                                  {MST_ACL_GROUP_OBJ, 4, UNDEF},
                                  {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(no_mask, 4, a), -EINVAL);
    const struct ent no_other[] = {{MST_ACL_USER_OBJ, 6, UNDEF}, {MST_ACL_GROUP_OBJ, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(no_other, 2, a), -EINVAL);
    const struct ent two_other[] = {{MST_ACL_USER_OBJ, 6, UNDEF},
                                    {MST_ACL_GROUP_OBJ, 4, UNDEF},
                                    {MST_ACL_OTHER, 4, UNDEF},
                                    {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(two_other, 4, a), -EINVAL);
    const struct ent bad_tag[] = {{MST_ACL_USER_OBJ, 6, UNDEF},
                                  {0x40, 4, UNDEF},
                                  {MST_ACL_GROUP_OBJ, 4, UNDEF},
                                  {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(bad_tag, 4, a), -EINVAL);
    const struct ent undef_user[] = {{MST_ACL_USER_OBJ, 6, UNDEF},
                                     {MST_ACL_USER, 6, UNDEF},
                                     {MST_ACL_GROUP_OBJ, 4, UNDEF},
                                     {MST_ACL_MASK, 6, UNDEF},
                                     {MST_ACL_OTHER, 4, UNDEF}};
    ck_assert_int_eq(decode_ents(undef_user, 5, a), -EINVAL);

    /* too many entries */
    size_t n = MST_ACL_MAX_ENTRIES + 1;
    uint8_t *big = calloc(1, 4 + 8 * n);
    ck_assert_ptr_nonnull(big);
    big[0] = 2;
    ck_assert_int_eq(mst_acl_decode(big, 4 + 8 * n, a), -E2BIG);
    free(big);
    free(a);
}
END_TEST

/* Random bytes never crash the decoder and whatever it accepts encodes back to the same. */
START_TEST(test_decode_random_bytes)
{
    struct mst_acl *a = acl_new();
    uint8_t b[4 + 8 * 8], out[4 + 8 * 8];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 4 + 8 * (round % 8);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[i] = (uint8_t)x;
        }
        /* mostly-valid shapes too: version 2 and tags from the real set */
        if (round % 2) {
            b[0] = 2, b[1] = b[2] = b[3] = 0;
            for (size_t i = 4; i < len; i += 8) {
                static const uint16_t tags[] = {1, 2, 4, 8, 0x10, 0x20};
                b[i] = (uint8_t)tags[b[i] % 6], b[i + 1] = 0, b[i + 2] &= 7, b[i + 3] = 0;
            }
        }
        int rc = mst_acl_decode(b, len, a);
        ck_assert(rc == 0 || rc == -EINVAL);
        if (rc == 0) {
            accepted++;
            mst_acl_encode(a, out);
            struct mst_acl *a2 = acl_new();
            ck_assert_int_eq(mst_acl_decode(out, mst_acl_size(a), a2), 0);
            ck_assert_uint_eq(a2->n, a->n);
            free(a2);
        }
    }
    ck_assert_int_gt(accepted, 0); /* the shaped inputs do reach the accepting path */
    free(a);
}
END_TEST

/* ---- mode rules ------------------------------------------------------------------------------ */

START_TEST(test_equiv_mode_and_chmod)
{
    struct mst_acl *a = acl_new();
    ck_assert_int_eq(decode_ents(FULL, NFULL, a), 0);
    uint32_t mode = S_IFREG | 04777;
    ck_assert_int_eq(mst_acl_equiv_mode(a, &mode), 1);
    ck_assert_uint_eq(mode, S_IFREG | 04660); /* group bits are the mask (rw-), not group:: */

    const struct ent minimal[] = {
        {MST_ACL_USER_OBJ, 7, UNDEF}, {MST_ACL_GROUP_OBJ, 5, UNDEF}, {MST_ACL_OTHER, 1, UNDEF}};
    ck_assert_int_eq(decode_ents(minimal, 3, a), 0);
    mode = S_IFDIR | 0;
    ck_assert_int_eq(mst_acl_equiv_mode(a, &mode), 0);
    ck_assert_uint_eq(mode, S_IFDIR | 0751);

    /* chmod: owner, mask and other change; group:: and named entries stay */
    ck_assert_int_eq(decode_ents(FULL, NFULL, a), 0);
    mst_acl_chmod(a, 0741);
    ck_assert_uint_eq(perm_of(a, MST_ACL_USER_OBJ), 7);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 4);
    ck_assert_uint_eq(perm_of(a, MST_ACL_OTHER), 1);
    ck_assert_uint_eq(perm_of(a, MST_ACL_GROUP_OBJ), 5);
    ck_assert_uint_eq(perm_of(a, MST_ACL_USER), 7);
    /* without a mask, group:: takes the group bits */
    ck_assert_int_eq(decode_ents(minimal, 3, a), 0);
    mst_acl_chmod(a, 0620);
    ck_assert_uint_eq(perm_of(a, MST_ACL_GROUP_OBJ), 2);
    free(a);
}
END_TEST

START_TEST(test_create_masq)
{
    struct mst_acl *a = acl_new();
    ck_assert_int_eq(decode_ents(FULL, NFULL, a), 0);
    /* open(O_CREAT, 0644): owner rw & rw, mask rw & r = r, other 0 & r = 0 */
    uint32_t mode = S_IFREG | 0644;
    ck_assert_int_eq(mst_acl_create_masq(a, &mode), 1);
    ck_assert_uint_eq(mode, S_IFREG | 0640);
    ck_assert_uint_eq(perm_of(a, MST_ACL_USER_OBJ), 6);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 4);
    ck_assert_uint_eq(perm_of(a, MST_ACL_OTHER), 0);
    ck_assert_uint_eq(perm_of(a, MST_ACL_USER), 7); /* named entries are kept, masked */

    const struct ent minimal[] = {
        {MST_ACL_USER_OBJ, 7, UNDEF}, {MST_ACL_GROUP_OBJ, 0, UNDEF}, {MST_ACL_OTHER, 5, UNDEF}};
    ck_assert_int_eq(decode_ents(minimal, 3, a), 0);
    mode = S_IFDIR | 0777;
    ck_assert_int_eq(mst_acl_create_masq(a, &mode), 0); /* the mode says it all */
    ck_assert_uint_eq(mode, S_IFDIR | 0705);
    free(a);
}
END_TEST

/* ---- records -----------------------------------------------------------------------------------
 */

static int apply(struct mop *op, struct cairn_attr *attr)
{
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    int rc = mop_prepare(st, op);
    if (rc) return rc;
    rc = mstore_apply(st, op, &res);
    if (!rc && attr) *attr = res.attr;
    return rc;
}

/* Make a node; umask < 0: none sent (the mode is final). */
static int mk(uint16_t type, uint64_t parent, const char *name, uint32_t mode, int umask,
              struct cairn_attr *a)
{
    struct mop op = {.type = type, .parent = parent, .mode = mode, .uid = 10, .gid = 20};
    if (umask >= 0) op.valid = MOP_UMASK_SET | (uint32_t)umask;
    snprintf(op.name, sizeof(op.name), "%s", name);
    if (type == MOP_SYMLINK) {
        op.data = (const uint8_t *)"target";
        op.data_len = 6;
    }
    return apply(&op, a);
}

static int setx(uint64_t ino, const char *name, const struct ent *e, size_t n)
{
    uint8_t b[256];
    struct mop op = {.type = MOP_SETXATTR, .ino = ino, .data = b};
    op.data_len = (uint32_t)enc(b, e, n);
    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(&op, NULL);
}

/* The stored ACL of ino (decoded), or the errno getxattr gives. */
static int getacl(uint64_t ino, const char *name, struct mst_acl *a)
{
    struct wbuf w;
    wbuf_init(&w);
    int rc = mstore_getxattr(st, ino, name, &w);
    if (!rc) rc = mst_acl_decode(w.data, w.len, a);
    wbuf_free(&w);
    return rc;
}

static uint32_t mode_of(uint64_t ino)
{
    struct cairn_attr a;
    ck_assert_int_eq(mstore_getattr(st, ino, &a), 0);
    return a.mode;
}

START_TEST(test_setxattr_access_acl_sets_mode)
{
    struct cairn_attr f;
    ck_assert_int_eq(mk(MOP_MKNOD, 1, "f", S_IFREG | 0600, -1, &f), 0);
    ck_assert_int_eq(setx(f.ino, MST_ACL_ACCESS, FULL, NFULL), 0);
    ck_assert_uint_eq(mode_of(f.ino), S_IFREG | 0660);
    struct mst_acl *a = acl_new();
    ck_assert_int_eq(getacl(f.ino, MST_ACL_ACCESS, a), 0);
    ck_assert_uint_eq(a->n, NFULL);
    struct cairn_attr now;
    ck_assert_int_eq(mstore_getattr(st, f.ino, &now), 0);
    ck_assert(now.flags & ATTR_F_XATTRS);

    /* chmod updates the mask (and owner, other); getxattr shows it */
    struct mop op = {.type = MOP_SETATTR, .ino = f.ino, .valid = SETATTR_MODE, .mode = 0705};
    ck_assert_int_eq(apply(&op, NULL), 0);
    ck_assert_int_eq(getacl(f.ino, MST_ACL_ACCESS, a), 0);
    ck_assert_uint_eq(perm_of(a, MST_ACL_USER_OBJ), 7);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 0);
    ck_assert_uint_eq(perm_of(a, MST_ACL_OTHER), 5);
    ck_assert_uint_eq(perm_of(a, MST_ACL_USER), 7);

    /* an ACL the mode says all of replaces the stored one by nothing, and sets the mode */
    const struct ent minimal[] = {
        {MST_ACL_USER_OBJ, 6, UNDEF}, {MST_ACL_GROUP_OBJ, 4, UNDEF}, {MST_ACL_OTHER, 0, UNDEF}};
    ck_assert_int_eq(setx(f.ino, MST_ACL_ACCESS, minimal, 3), 0);
    ck_assert_uint_eq(mode_of(f.ino), S_IFREG | 0640);
    ck_assert_int_eq(getacl(f.ino, MST_ACL_ACCESS, a), -ENODATA);
    ck_assert_int_eq(mstore_getattr(st, f.ino, &now), 0);
    ck_assert(!(now.flags & ATTR_F_XATTRS));

    /* malformed values are refused and change nothing; a default ACL needs a directory */
    const struct ent no_mask[] = {{MST_ACL_USER_OBJ, 7, UNDEF},
                                  {MST_ACL_USER, 7, 5},
                                  {MST_ACL_GROUP_OBJ, 7, UNDEF},
                                  {MST_ACL_OTHER, 7, UNDEF}};
    ck_assert_int_eq(setx(f.ino, MST_ACL_ACCESS, no_mask, 4), -EINVAL);
    ck_assert_int_eq(setx(f.ino, MST_ACL_DEFAULT, FULL, NFULL), -EACCES);
    ck_assert_uint_eq(mode_of(f.ino), S_IFREG | 0640);
    struct mop raw = {
        .type = MOP_SETXATTR, .ino = f.ino, .data = (const uint8_t *)"junk!", .data_len = 5};
    snprintf(raw.name, sizeof(raw.name), "%s", MST_ACL_ACCESS);
    ck_assert_int_eq(apply(&raw, NULL), -EINVAL);

    /* removing an ACL that is not there succeeds (as on ext4 and xfs); other names do not */
    struct mop rm = {.type = MOP_REMOVEXATTR, .ino = f.ino};
    snprintf(rm.name, sizeof(rm.name), "%s", MST_ACL_DEFAULT);
    ck_assert_int_eq(apply(&rm, NULL), 0);
    snprintf(rm.name, sizeof(rm.name), "user.none");
    ck_assert_int_eq(apply(&rm, NULL), -ENODATA);
    free(a);
}
END_TEST

/* default: user::rwx, user:1001:rwx, group::r-x, mask::rwx, other::r-x */
static const struct ent DEF[] = {
    {MST_ACL_USER_OBJ, 7, UNDEF}, {MST_ACL_USER, 7, 1001},   {MST_ACL_GROUP_OBJ, 5, UNDEF},
    {MST_ACL_MASK, 7, UNDEF},     {MST_ACL_OTHER, 5, UNDEF},
};
#define NDEF (sizeof(DEF) / sizeof(DEF[0]))

START_TEST(test_default_acl_inherited)
{
    struct cairn_attr d, f, sub, fifo, ln, plain;
    ck_assert_int_eq(mk(MOP_MKDIR, 1, "d", 0755, 022, &d), 0);
    ck_assert_uint_eq(d.mode, S_IFDIR | 0755);
    ck_assert_int_eq(setx(d.ino, MST_ACL_DEFAULT, DEF, NDEF), 0);
    ck_assert_uint_eq(mode_of(d.ino), S_IFDIR | 0755); /* a default ACL leaves the mode */

    /* a file: the umask (077) is not applied, the default ACL masks the mode asked for */
    ck_assert_int_eq(mk(MOP_CREATE, d.ino, "f", 0666, 077, &f), 0);
    ck_assert_uint_eq(f.mode, S_IFREG | 0664);
    ck_assert(f.flags & ATTR_F_XATTRS);
    struct mst_acl *a = acl_new();
    ck_assert_int_eq(getacl(f.ino, MST_ACL_ACCESS, a), 0);
    ck_assert_uint_eq(a->n, NDEF);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 6);
    ck_assert_uint_eq(perm_of(a, MST_ACL_OTHER), 4);
    ck_assert_int_eq(getacl(f.ino, MST_ACL_DEFAULT, a), -ENODATA);

    /* a directory gets both, the default unchanged */
    ck_assert_int_eq(mk(MOP_MKDIR, d.ino, "sub", 0750, 077, &sub), 0);
    ck_assert_uint_eq(sub.mode, S_IFDIR | 0750);
    ck_assert_int_eq(getacl(sub.ino, MST_ACL_ACCESS, a), 0);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 5);
    ck_assert_uint_eq(perm_of(a, MST_ACL_OTHER), 0);
    ck_assert_int_eq(getacl(sub.ino, MST_ACL_DEFAULT, a), 0);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 7);
    ck_assert_uint_eq(perm_of(a, MST_ACL_OTHER), 5);
    /* ... and passes it on */
    struct cairn_attr deep;
    ck_assert_int_eq(mk(MOP_MKDIR, sub.ino, "deep", 0777, 077, &deep), 0);
    ck_assert_int_eq(getacl(deep.ino, MST_ACL_DEFAULT, a), 0);
    ck_assert_uint_eq(deep.mode, S_IFDIR | 0775);

    /* mknod (a fifo) gets the access ACL; a symlink nothing (mode 0777) */
    ck_assert_int_eq(mk(MOP_MKNOD, d.ino, "fifo", S_IFIFO | 0600, 077, &fifo), 0);
    ck_assert_uint_eq(fifo.mode, S_IFIFO | 0600);
    ck_assert_int_eq(getacl(fifo.ino, MST_ACL_ACCESS, a), 0);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 0);
    ck_assert_int_eq(mk(MOP_SYMLINK, d.ino, "ln", 0, 077, &ln), 0);
    ck_assert_uint_eq(ln.mode, S_IFLNK | 0777);
    ck_assert_int_eq(getacl(ln.ino, MST_ACL_ACCESS, a), -ENODATA);

    /* without a default ACL the umask applies; without a umask the mode is kept */
    ck_assert_int_eq(mk(MOP_CREATE, 1, "plain", 0666, 027, &plain), 0);
    ck_assert_uint_eq(plain.mode, S_IFREG | 0640);
    ck_assert(!(plain.flags & ATTR_F_XATTRS));
    ck_assert_int_eq(mk(MOP_MKDIR, 1, "asis", 0777, -1, &plain), 0);
    ck_assert_uint_eq(plain.mode, S_IFDIR | 0777);
    free(a);
}
END_TEST

/* The records, encoded and applied on a second store, give the same modes and ACLs. */
struct rec_log {
    struct wbuf w[16];
    int n;
};

static int apply_logged(struct rec_log *l, struct mop *op)
{
    int rc = mop_prepare(st, op);
    if (rc) return rc;
    ck_assert_int_lt(l->n, 16);
    wbuf_init(&l->w[l->n]);
    mop_encode(op, &l->w[l->n]);
    l->n++;
    struct mop_result res;
    memset(&res, 0, sizeof(res));
    return mstore_apply(st, op, &res);
}

START_TEST(test_replica_agrees)
{
    struct rec_log l = {.n = 0};
    uint8_t b[256];
    struct mop op = {.type = MOP_MKDIR, .parent = 1, .mode = 0777, .valid = MOP_UMASK_SET | 022};
    snprintf(op.name, sizeof(op.name), "d");
    ck_assert_int_eq(apply_logged(&l, &op), 0);
    uint64_t d = op.new_ino;
    op = (struct mop){.type = MOP_SETXATTR, .ino = d, .data = b};
    op.data_len = (uint32_t)enc(b, DEF, NDEF);
    snprintf(op.name, sizeof(op.name), "%s", MST_ACL_DEFAULT);
    ck_assert_int_eq(apply_logged(&l, &op), 0);
    op = (struct mop){.type = MOP_CREATE, .parent = d, .mode = 0640, .valid = MOP_UMASK_SET | 077};
    snprintf(op.name, sizeof(op.name), "f");
    ck_assert_int_eq(apply_logged(&l, &op), 0);
    uint64_t f = op.new_ino;
    op = (struct mop){.type = MOP_SETATTR, .ino = f, .valid = SETATTR_MODE, .mode = 0600};
    ck_assert_int_eq(apply_logged(&l, &op), 0);

    struct mst_acl *a = acl_new(), *a2 = acl_new();
    ck_assert_int_eq(getacl(f, MST_ACL_ACCESS, a), 0);
    uint32_t m = mode_of(f);
    ck_assert_uint_eq(m, S_IFREG | 0600);
    ck_assert_uint_eq(perm_of(a, MST_ACL_MASK), 0);

    /* the replica */
    mstore_close(st);
    char dir1[64];
    snprintf(dir1, sizeof(dir1), "%s", dir);
    setup();
    for (int i = 0; i < l.n; i++) {
        struct rcur c;
        rcur_init(&c, l.w[i].data, l.w[i].len);
        struct mop r;
        ck_assert_int_eq(mop_decode(&c, &r), 0);
        struct mop_result res;
        memset(&res, 0, sizeof(res));
        ck_assert_int_eq(mstore_apply(st, &r, &res), 0);
        wbuf_free(&l.w[i]);
    }
    ck_assert_uint_eq(mode_of(f), m);
    ck_assert_int_eq(getacl(f, MST_ACL_ACCESS, a2), 0);
    ck_assert_uint_eq(a2->n, a->n);
    ck_assert_mem_eq(a2->e, a->e, a->n * sizeof(a->e[0]));
    free(a);
    free(a2);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir1);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta_acl");
    TCase *t = tcase_create("acl");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_decode_valid_and_encode_back);
    tcase_add_test(t, test_decode_refuses_malformed);
    tcase_add_test(t, test_decode_random_bytes);
    tcase_add_test(t, test_equiv_mode_and_chmod);
    tcase_add_test(t, test_create_masq);
    tcase_add_test(t, test_setxattr_access_acl_sets_mode);
    tcase_add_test(t, test_default_acl_inherited);
    tcase_add_test(t, test_replica_agrees);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
