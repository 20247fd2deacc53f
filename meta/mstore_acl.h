/* mstore_acl.h - POSIX ACLs as the meta store keeps them: the Linux xattr encoding of
 * system.posix_acl_access / system.posix_acl_default, its validation, and the three rules
 * that tie an ACL to the mode bits (the same as the Linux kernel's fs/posix_acl.c):
 *
 *   equiv_mode   setfacl of an access ACL: the mode's rwx bits follow the ACL (the group bits
 *                are the mask entry when there is one); an ACL with only the owner, group
 *                and other entries says nothing the mode does not, and is not stored;
 *   chmod        chmod of a file with an access ACL: owner, mask (or group) and other entries
 *                take the new bits;
 *   create_masq  a new node in a directory with a default ACL: the default ACL, limited by
 *                the mode the creator asked for, becomes the node's access ACL and decides its
 *                mode (the umask is not applied); a new directory also inherits the default.
 *
 * Encoding (little-endian, as the kernel sends it through FUSE): u32 version (2), then one
 * entry per 8 bytes {u16 tag, u16 perm, u32 id}; id is meaningful for ACL_USER and ACL_GROUP
 * only (the others carry MST_ACL_UNDEFINED_ID). A valid ACL has its entries sorted by tag,
 * exactly one owner, group and other entry, named users and groups in increasing id order
 * without duplicates, and a mask entry when it has any named entry. */
#ifndef CAIRN_MSTORE_ACL_H
#define CAIRN_MSTORE_ACL_H

#include <stddef.h>
#include <stdint.h>

#define MST_ACL_ACCESS "system.posix_acl_access"
#define MST_ACL_DEFAULT "system.posix_acl_default"
#define MST_ACL_VERSION 2u
#define MST_ACL_UNDEFINED_ID 0xffffffffu
/* More entries than this are refused (-E2BIG); ext4 with 4 KiB blocks stores about 500. */
#define MST_ACL_MAX_ENTRIES 1024u

/* Entry tags (the values of <linux/posix_acl.h>), in the order a valid ACL lists them. */
#define MST_ACL_USER_OBJ 0x01u
#define MST_ACL_USER 0x02u
#define MST_ACL_GROUP_OBJ 0x04u
#define MST_ACL_GROUP 0x08u
#define MST_ACL_MASK 0x10u
#define MST_ACL_OTHER 0x20u

struct mst_acl_entry {
    uint16_t tag, perm; /* perm: 4 read, 2 write, 1 execute */
    uint32_t id;
};

struct mst_acl {
    uint32_t n;
    struct mst_acl_entry e[MST_ACL_MAX_ENTRIES];
};

/* Which ACL an xattr name is: 1 access, 2 default, 0 neither. */
int mst_acl_kind(const char *name);
/* Decode and validate len bytes into a. 0, -EINVAL (malformed: size, version, tag, perm
 * bits, order, missing or repeated entries, missing mask) or -E2BIG (too many entries). */
int mst_acl_decode(const uint8_t *v, size_t len, struct mst_acl *a);
/* Bytes of the encoding of a; mst_acl_encode writes them to out (ids of entries other than
 * named users and groups as MST_ACL_UNDEFINED_ID). */
size_t mst_acl_size(const struct mst_acl *a);
void mst_acl_encode(const struct mst_acl *a, uint8_t *out);
/* Set the rwx bits of *mode from a (valid). 1 if a says more than the mode (named entries or
 * a mask), 0 if the mode says it all. */
int mst_acl_equiv_mode(const struct mst_acl *a, uint32_t *mode);
/* chmod: the owner, mask (else group) and other entries of a take mode's bits. */
void mst_acl_chmod(struct mst_acl *a, uint32_t mode);
/* A default ACL a applied to a new node asking for *mode: a becomes its access ACL, both a
 * and *mode limited by each other. 1 if a must be stored, 0 if the mode says it all. */
int mst_acl_create_masq(struct mst_acl *a, uint32_t *mode);

#endif
