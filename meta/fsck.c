/* fsck.c - the leader's side of `cairn fsck` (MSG_FSCK, layout in proto.h): one bounded slice
 * of the namespace check per request (inodes, directory entries, chunks against the chunk
 * servers' reports, copies of unknown chunks), the link counts of suspect inodes counted in one
 * read, and the repairs fsck may make: records (MOP_FSCK_FIX) for dangling entries and link
 * counts, the repair queue for under-replicated chunks. It keeps no state between requests
 * but the last copies of unknown chunks the chunk servers reported (fsck_note_unref).
 * Cost: a scan slice reads at most FSCK_SLICE_MAX records; a LINKS count reads every directory
 * entry once (one read transaction) for up to FSCK_LINKS_MAX inodes, which is why the client
 * asks it only for the inodes whose counts looked wrong; paths alone (FSCK_F_PATHS) need no
 * such pass. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "meta.h"
#include "mraft.h"
#include "mstore_fsck.h"
#include "net.h"

#define UNREF_RING 256
#define UNREF_KEEP_MS (10 * 60 * 1000) /* reported this long after it was seen */
#define DANGLING_FIX_MAX 64            /* repairs of dangling entries per slice */

/* Copies of chunks no file references, as learn_copy (server_cs.c) saw them. */
static struct unref_seen {
    uint64_t chunk_id, server_id, seen_ms;
    uint32_t version;
} unref[UNREF_RING];
static uint32_t unref_next;
static uint64_t unref_total;

void fsck_note_unref(uint64_t server_id, uint64_t chunk_id, uint32_t version)
{
    /* the same copy reported again replaces its old sighting */
    for (uint32_t i = 0; i < UNREF_RING; i++)
        if (unref[i].chunk_id == chunk_id && unref[i].server_id == server_id) {
            unref[i].version = version;
            unref[i].seen_ms = net_now_ms();
            return;
        }
    unref[unref_next] = (struct unref_seen){chunk_id, server_id, net_now_ms(), version};
    unref_next = (unref_next + 1) % UNREF_RING;
    unref_total++;
}

struct scan {
    struct meta *m;
    int repair;
    struct wbuf inodes, entries, problems;
    uint32_t ni, ne, np, scanned;
    /* dangling entries to remove once the read is over (no record inside it) */
    struct {
        uint64_t parent, child;
        char name[CAIRN_NAME_MAX + 1];
        size_t at; /* offset of the problem's `fixed` byte in problems */
    } fix[DANGLING_FIX_MAX];
    int nfix;
    uint64_t under[FSCK_SLICE_MAX];
    size_t under_at[FSCK_SLICE_MAX];
    uint32_t nunder;
};

/* Append one problem; returns the offset of its `fixed` byte. */
static size_t put_problem(struct scan *x, uint8_t kind, uint8_t fixed, uint64_t ino,
                          uint64_t parent, uint64_t chunk, uint64_t index, uint32_t have,
                          uint32_t want, const char *name)
{
    struct wbuf *b = &x->problems;
    wbuf_put_u8(b, kind);
    size_t at = b->len;
    wbuf_put_u8(b, fixed);
    wbuf_put_u64(b, ino);
    wbuf_put_u64(b, parent);
    wbuf_put_u64(b, chunk);
    wbuf_put_u64(b, index);
    wbuf_put_u32(b, have);
    wbuf_put_u32(b, want);
    wbuf_put_str(b, name, strlen(name));
    x->np++;
    return at;
}

static int scan_inode(void *arg, const struct mstore_fsck_inode *i)
{
    struct scan *x = arg;
    wbuf_put_u64(&x->inodes, i->ino);
    wbuf_put_u32(&x->inodes, i->mode);
    wbuf_put_u32(&x->inodes, i->nlink);
    wbuf_put_u8(&x->inodes, (uint8_t)(i->open != 0));
    x->ni++;
    x->scanned++;
    return 0;
}

static int scan_entry(void *arg, const struct mstore_fsck_entry *e)
{
    struct scan *x = arg;
    x->scanned++;
    if (e->child_exists) {
        wbuf_put_u64(&x->entries, e->parent);
        wbuf_put_u64(&x->entries, e->child);
        wbuf_put_u8(&x->entries, (uint8_t)(e->child_is_dir != 0));
        x->ne++;
        return 0;
    }
    size_t at = put_problem(x, FSCK_P_DANGLING, 0, e->child, e->parent, 0, 0, 0, 0, e->name);
    if (x->repair && x->nfix < DANGLING_FIX_MAX) {
        x->fix[x->nfix].parent = e->parent;
        x->fix[x->nfix].child = e->child;
        snprintf(x->fix[x->nfix].name, sizeof(x->fix[x->nfix].name), "%s", e->name);
        x->fix[x->nfix].at = at;
        x->nfix++;
        return x->nfix == DANGLING_FIX_MAX; /* the rest in the next slice */
    }
    return 0;
}

static int scan_chunk(void *arg, const struct mstore_chunk *ck)
{
    struct scan *x = arg;
    x->scanned++;
    if (ck->copies == 0) return 0; /* its file is gone: freed with it */
    struct csr_view v;
    csr_classify(&x->m->reg, ck, &v);
    int usable = v.valid + v.draining;
    if (usable > 0 && (uint32_t)v.valid >= ck->copies) return 0;
    uint8_t kind = usable == 0 ? FSCK_P_MISSING : FSCK_P_UNDER;
    size_t at =
        put_problem(x, kind, 0, ck->ino, 0, ck->id, ck->index, (uint32_t)v.valid, ck->copies, "");
    if (kind == FSCK_P_UNDER && x->repair && x->nunder < FSCK_SLICE_MAX) {
        x->under[x->nunder] = ck->id;
        x->under_at[x->nunder++] = at;
    }
    return 0;
}

/* Whether server slot still has the deletion of chunk queued (not yet sent). */
static int delete_queued(const struct csr_server *s, uint64_t chunk)
{
    if (s->ndel > 65536) return 1; /* too long to look through: it waits anyway */
    for (uint32_t i = 0; i < s->ndel; i++)
        if (s->del_id[i] == chunk) return 1;
    return 0;
}

static void scan_unref(struct scan *x)
{
    uint64_t now = net_now_ms();
    for (uint32_t i = 0; i < UNREF_RING; i++) {
        const struct unref_seen *u = &unref[i];
        if (!u->chunk_id || now - u->seen_ms > UNREF_KEEP_MS) continue;
        uint32_t cur;
        if (mstore_chunk_version(x->m->store, u->chunk_id, &cur) == 0) continue; /* known now */
        int slot = csr_slot(&x->m->reg, u->server_id);
        int queued = slot >= 0 && delete_queued(&x->m->reg.srv[slot], u->chunk_id);
        put_problem(x, FSCK_P_UNREF, 1, 0, u->server_id, u->chunk_id, u->version, (uint32_t)queued,
                    0, "");
        x->scanned++;
    }
}

/* Remove the dangling entries found, each with a record that checks again. */
static int fix_dangling(struct scan *x)
{
    int applied = 0;
    for (int i = 0; i < x->nfix; i++) {
        struct mop op = {.type = MOP_FSCK_FIX, .flags = MOP_FSCK_DANGLING};
        op.parent = x->fix[i].parent;
        op.ino = x->fix[i].child;
        snprintf(op.name, sizeof(op.name), "%s", x->fix[i].name);
        struct mop_result res = {0};
        int rc = meta_apply(x->m, &op, &res);
        applied = 1;
        if (rc == 0) {
            x->problems.data[x->fix[i].at] = 1;
            LOG_INFO("fsck",
                     "removed dangling entry '%s' in directory %" PRIu64 " (inode %" PRIu64
                     " does not exist)",
                     op.name, op.parent, op.ino);
        } else {
            LOG_WARN("fsck", "dangling entry '%s' in directory %" PRIu64 ": %s", op.name, op.parent,
                     strerror(-rc));
        }
    }
    return applied;
}

static void fix_under(struct scan *x)
{
    for (uint32_t i = 0; i < x->nunder; i++) {
        repair_check_chunk(x->m, x->under[i]);
        struct csr_entry *e = csr_entry(&x->m->reg, x->under[i]);
        if (e && (e->flags & (CSR_E_QUEUED | CSR_E_INFLIGHT))) x->problems.data[x->under_at[i]] = 1;
    }
}

static void scan_free(struct scan *x)
{
    wbuf_free(&x->inodes);
    wbuf_free(&x->entries);
    wbuf_free(&x->problems);
}

static int do_scan(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                   struct rcur *r, struct wbuf *out)
{
    uint8_t phase = rcur_u8(r);
    uint64_t pos = rcur_u64(r);
    char name[CAIRN_NAME_MAX + 1] = "";
    rcur_str(r, name, CAIRN_NAME_MAX);
    uint32_t max = rcur_u32(r);
    uint8_t flags = rcur_u8(r);
    if (rcur_done(r)) return -EBADMSG;
    if (phase < FSCK_PH_INODES || phase > FSCK_PH_UNREF) {
        evsrv_reply(conn, h, -EINVAL, NULL, 0);
        return 0;
    }
    if (max == 0 || max > FSCK_SLICE_MAX) max = FSCK_SLICE_MAX;
    int repair = (flags & FSCK_F_REPAIR) != 0;
    /* repairs are records: wait until one may be written */
    if (repair && phase == FSCK_PH_ENTRIES && !meta_can_apply(m)) {
        mraft_park_retry(m);
        return EVSRV_DEFER;
    }
    /* a new leader does not know yet where the copies are: every chunk would look missing */
    if (phase == FSCK_PH_CHUNKS && !meta_warm(m)) {
        evsrv_reply(conn, h, -EAGAIN, NULL, 0);
        return 0;
    }
    static struct scan x; /* large; one request at a time on the meta thread */
    memset(&x, 0, sizeof(x));
    x.m = m;
    x.repair = repair;
    wbuf_init(&x.inodes);
    wbuf_init(&x.entries);
    wbuf_init(&x.problems);
    uint8_t next_phase = phase;
    uint64_t next_pos = 0;
    char next_name[CAIRN_NAME_MAX + 1] = "";
    int rc = 0, eof = 0;
    switch (phase) {
    case FSCK_PH_INODES:
        rc = mstore_fsck_inodes(m->store, pos, max, scan_inode, &x, &next_pos);
        eof = next_pos == 0;
        break;
    case FSCK_PH_ENTRIES:
        rc = mstore_fsck_entries(m->store, pos, name, max, scan_entry, &x, &next_pos, next_name,
                                 &eof);
        break;
    case FSCK_PH_CHUNKS:
        rc = mstore_chunk_scan(m->store, pos, max, scan_chunk, &x, &next_pos);
        eof = next_pos == 0;
        break;
    default:
        scan_unref(&x);
        eof = 1;
        break;
    }
    if (rc) {
        LOG_WARN("fsck", "scan of phase %u: %s", phase, strerror(-rc));
        scan_free(&x);
        evsrv_reply(conn, h, rc, NULL, 0);
        return 0;
    }
    /* a slice stopped early by the dangling repairs is not at the end */
    if (phase == FSCK_PH_ENTRIES && x.nfix == DANGLING_FIX_MAX) eof = 0;
    int held = fix_dangling(&x);
    fix_under(&x);
    if (eof) {
        next_phase = phase == FSCK_PH_UNREF ? 0 : (uint8_t)(phase + 1);
        next_pos = 0;
        next_name[0] = '\0';
    }
    uint64_t ni = 0, ne = 0, nc = 0;
    mstore_fsck_counts(m->store, &ni, &ne, &nc);
    wbuf_put_u8(out, next_phase);
    wbuf_put_u64(out, next_pos);
    wbuf_put_str(out, next_name, strlen(next_name));
    wbuf_put_u32(out, x.scanned);
    wbuf_put_u64(out, ni + ne + nc);
    wbuf_put_u64(out, unref_total);
    wbuf_put_u32(out, x.ni);
    wbuf_put_raw(out, x.inodes.data, x.inodes.len);
    wbuf_put_u32(out, x.ne);
    wbuf_put_raw(out, x.entries.data, x.entries.len);
    wbuf_put_u32(out, x.np);
    wbuf_put_raw(out, x.problems.data, x.problems.len);
    rc = x.inodes.err ? x.inodes.err : x.entries.err ? x.entries.err : x.problems.err;
    if (!rc) rc = out->err;
    scan_free(&x);
    /* a reply that reports a repair leaves only once the repair is committed */
    if (held) evsrv_bypass(m->srv, 0);
    evsrv_reply(conn, h, rc, rc ? NULL : out->data, rc ? 0 : out->len);
    return 0;
}

/* The link count the namespace says an inode should have, or 0 when it cannot say (an inode
 * no entry points at, a directory with more than one entry). */
static uint32_t links_expected(const struct mstore_fsck_links *l)
{
    if (S_ISDIR(l->mode)) {
        if (l->entries != (l->ino == CAIRN_ROOT_INO ? 0u : 1u)) return 0;
        return 2 + l->subdirs;
    }
    return l->entries;
}

/* FSCK_OP_LINKS with FSCK_F_PATHS: attributes and a path of each inode, no counting. */
static int do_paths(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                    struct rcur *r, struct wbuf *out, uint32_t n)
{
    char path[CAIRN_PATH_MAX + 1];
    wbuf_put_u32(out, n);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t ino = rcur_u64(r);
        struct cairn_attr a;
        int exists = mstore_getattr(m->store, ino, &a) == 0;
        if (!exists || mstore_fsck_ino_path(m->store, ino, path, sizeof(path)) != 0) path[0] = 0;
        wbuf_put_u64(out, ino);
        wbuf_put_u8(out, (uint8_t)exists);
        wbuf_put_u32(out, exists ? a.mode : 0);
        wbuf_put_u32(out, exists ? a.nlink : 0);
        wbuf_put_u32(out, 0);
        wbuf_put_u32(out, 0);
        wbuf_put_u8(out, 0);
        wbuf_put_u8(out, 0);
        wbuf_put_str(out, path, strlen(path));
    }
    evsrv_reply(conn, h, out->err, out->err ? NULL : out->data, out->err ? 0 : out->len);
    return 0;
}

static int do_links(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h,
                    struct rcur *r, struct wbuf *out)
{
    uint8_t flags = rcur_u8(r);
    uint32_t n = rcur_u32(r);
    if (r->err || n > FSCK_LINKS_MAX || r->left != (size_t)n * 8) return -EBADMSG;
    if (flags & FSCK_F_PATHS) return do_paths(m, conn, h, r, out, n);
    int repair = (flags & FSCK_F_REPAIR) != 0;
    /* a count taken now must not be applied over a batch that changes it */
    if (repair && (!meta_can_apply(m) || mstore_batch_active(m->store))) {
        mraft_park_retry(m);
        return EVSRV_DEFER;
    }
    static struct mstore_fsck_links v[FSCK_LINKS_MAX];
    static uint8_t fixed[FSCK_LINKS_MAX];
    for (uint32_t i = 0; i < n; i++)
        v[i].ino = rcur_u64(r);
    int rc = mstore_fsck_links(m->store, v, n);
    if (rc) {
        evsrv_reply(conn, h, rc, NULL, 0);
        return 0;
    }
    int held = 0;
    for (uint32_t i = 0; i < n; i++) {
        fixed[i] = 0;
        uint32_t want = links_expected(&v[i]);
        if (!repair || !v[i].exists || v[i].nlink == 0 || want == 0 || want == v[i].nlink) continue;
        struct mop op = {.type = MOP_FSCK_FIX, .flags = MOP_FSCK_NLINK, .ino = v[i].ino};
        op.size = want;
        struct mop_result res = {0};
        rc = meta_apply(m, &op, &res);
        held = 1;
        if (rc == 0) fixed[i] = 1;
        LOG_INFO("fsck", "inode %" PRIu64 ": link count %u -> %u: %s", v[i].ino, v[i].nlink, want,
                 rc ? strerror(-rc) : "set");
    }
    wbuf_put_u32(out, n);
    char path[CAIRN_PATH_MAX + 1];
    for (uint32_t i = 0; i < n; i++) {
        const struct mstore_fsck_links *l = &v[i];
        path[0] = '\0';
        if (l->exists && S_ISDIR(l->mode) && (l->entries || l->ino == CAIRN_ROOT_INO))
            mstore_fsck_path(m->store, l->ino, NULL, path, sizeof(path));
        else if (l->entries)
            mstore_fsck_path(m->store, l->parent, l->name, path, sizeof(path));
        wbuf_put_u64(out, l->ino);
        wbuf_put_u8(out, (uint8_t)l->exists);
        wbuf_put_u32(out, l->mode);
        wbuf_put_u32(out, l->nlink);
        wbuf_put_u32(out, l->entries);
        wbuf_put_u32(out, l->subdirs);
        wbuf_put_u8(out, (uint8_t)(l->open != 0));
        wbuf_put_u8(out, fixed[i]);
        wbuf_put_str(out, path, strlen(path));
    }
    if (held) evsrv_bypass(m->srv, 0);
    evsrv_reply(conn, h, out->err, out->err ? NULL : out->data, out->err ? 0 : out->len);
    return 0;
}

int meta_fsck(struct meta *m, struct evsrv_conn *conn, const struct wire_hdr *h, struct rcur *r,
              struct wbuf *out)
{
    uint8_t op = rcur_u8(r);
    if (r->err) return -EBADMSG;
    switch (op) {
    case FSCK_OP_SCAN:
        return do_scan(m, conn, h, r, out);
    case FSCK_OP_LINKS:
        return do_links(m, conn, h, r, out);
    default:
        evsrv_reply(conn, h, -EINVAL, NULL, 0);
        return 0;
    }
}
