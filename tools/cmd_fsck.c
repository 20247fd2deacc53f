/* cmd_fsck.c - `cairn fsck [PATH] [--repair] [--json]`: checks the namespace against the chunk
 * servers' reports through MSG_FSCK (proto.h), slice by slice, with a progress bar.
 *
 * The meta leader walks the inodes, the directory entries and the chunks a bounded slice per
 * request and reports what it can judge alone: chunks missing or under-replicated, dangling
 * entries, copies of chunks no file references. Link counts need the whole namespace: this
 * command adds up, from the inodes and entries listed, how many entries point at each inode
 * (and how many subdirectories each directory has), then asks the leader to count again, in
 * one consistent read, the inodes that look wrong (a rename during the walk can make a count
 * look wrong for a moment), so that only confirmed problems are reported. Paths are the
 * leader's (one path per inode).
 *
 * Exit status: 0 clean; 1 a problem was found, whether --repair fixed it or not (a second run
 * says whether anything is left), or the check could not be completed; 2 bad usage.
 * Copies of unknown chunks count as a problem only while their deletion waits to be sent. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_meta.h"
#include "json_out.h"
#include "progress.h"

#define FSCK_SLICE 2048
#define FSCK_LEARN_WAIT_MS 30000 /* a new leader learning where chunks are */

/* What the walk learnt of one inode. */
struct fent {
    uint64_t ino; /* 0 = empty slot */
    uint32_t mode, nlink, entries, subdirs;
    uint8_t open, seen; /* seen: listed in the inode walk */
};

struct ftab {
    struct fent *e;
    uint64_t cap, count;
};

struct fprob {
    uint8_t kind, fixed;
    uint64_t ino, parent, chunk, index;
    uint32_t have, want;
    char *name; /* entry name (dangling) */
    char *path; /* filled at the end */
};

struct fsck_run {
    const struct cli *c;
    struct cli_meta *m;
    int repair;
    struct ftab tab;
    struct fprob *p;
    size_t np, capp;
    uint64_t n_inodes, n_entries, n_chunks, unref_seen;
    struct progress prog;
    uint64_t done;
};

static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int tab_grow(struct ftab *t)
{
    uint64_t nc = t->cap ? t->cap * 2 : 4096;
    struct fent *ne = calloc(nc, sizeof(*ne));
    if (!ne) return -ENOMEM;
    for (uint64_t i = 0; i < t->cap; i++) {
        if (!t->e[i].ino) continue;
        uint64_t k = hash64(t->e[i].ino) & (nc - 1);
        while (ne[k].ino)
            k = (k + 1) & (nc - 1);
        ne[k] = t->e[i];
    }
    free(t->e);
    t->e = ne;
    t->cap = nc;
    return 0;
}

/* The entry of ino, added when absent; NULL on ENOMEM. */
static struct fent *tab_get(struct ftab *t, uint64_t ino)
{
    if ((t->count + 1) * 2 > t->cap && tab_grow(t)) return NULL;
    uint64_t k = hash64(ino) & (t->cap - 1);
    while (t->e[k].ino && t->e[k].ino != ino)
        k = (k + 1) & (t->cap - 1);
    if (!t->e[k].ino) {
        t->e[k].ino = ino;
        t->count++;
    }
    return &t->e[k];
}

static struct fprob *add_problem(struct fsck_run *r)
{
    if (r->np == r->capp) {
        size_t nc = r->capp ? r->capp * 2 : 64;
        struct fprob *n = realloc(r->p, nc * sizeof(*n));
        if (!n) return NULL;
        r->p = n;
        r->capp = nc;
    }
    struct fprob *p = &r->p[r->np++];
    memset(p, 0, sizeof(*p));
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Read one slice reply into r. Returns 0 or -EBADMSG; *phase, *pos, name: where to go on. */
static int take_slice(struct fsck_run *r, struct rcur *c, uint8_t *phase, uint64_t *pos, char *name,
                      uint64_t *total)
{
    uint8_t cur = *phase;
    *phase = rcur_u8(c);
    *pos = rcur_u64(c);
    rcur_str(c, name, CAIRN_NAME_MAX);
    uint32_t scanned = rcur_u32(c);
    *total = rcur_u64(c);
    r->unref_seen = rcur_u64(c);
    r->done += scanned;
    if (cur == FSCK_PH_INODES) r->n_inodes += scanned;
    if (cur == FSCK_PH_ENTRIES) r->n_entries += scanned;
    if (cur == FSCK_PH_CHUNKS) r->n_chunks += scanned;
    uint32_t ni = rcur_u32(c);
    for (uint32_t i = 0; i < ni && !c->err; i++) {
        uint64_t ino = rcur_u64(c);
        uint32_t mode = rcur_u32(c), nlink = rcur_u32(c);
        uint8_t open = rcur_u8(c);
        struct fent *e = tab_get(&r->tab, ino);
        if (!e) return -ENOMEM;
        e->mode = mode;
        e->nlink = nlink;
        e->open = open;
        e->seen = 1;
    }
    uint32_t ne = rcur_u32(c);
    for (uint32_t i = 0; i < ne && !c->err; i++) {
        uint64_t parent = rcur_u64(c), child = rcur_u64(c);
        uint8_t isdir = rcur_u8(c);
        struct fent *e = tab_get(&r->tab, child);
        if (!e) return -ENOMEM;
        e->entries++;
        if (isdir) {
            struct fent *pe = tab_get(&r->tab, parent);
            if (!pe) return -ENOMEM;
            pe->subdirs++;
        }
    }
    uint32_t np = rcur_u32(c);
    for (uint32_t i = 0; i < np && !c->err; i++) {
        struct fprob *p = add_problem(r);
        if (!p) return -ENOMEM;
        char nm[CAIRN_NAME_MAX + 1] = "";
        p->kind = rcur_u8(c);
        p->fixed = rcur_u8(c);
        p->ino = rcur_u64(c);
        p->parent = rcur_u64(c);
        p->chunk = rcur_u64(c);
        p->index = rcur_u64(c);
        p->have = rcur_u32(c);
        p->want = rcur_u32(c);
        rcur_str(c, nm, CAIRN_NAME_MAX);
        if (nm[0] && !(p->name = strdup(nm))) return -ENOMEM;
    }
    return rcur_done(c) ? -EBADMSG : 0;
}

/* The walk: every slice until the leader says the scan is over. */
static int walk(struct fsck_run *r)
{
    uint8_t phase = FSCK_PH_INODES;
    uint64_t pos = 0, total = 0;
    char name[CAIRN_NAME_MAX + 1] = "";
    int waited = 0;
    while (phase) {
        struct wbuf req;
        wbuf_init(&req);
        wbuf_put_u8(&req, FSCK_OP_SCAN);
        wbuf_put_u8(&req, phase);
        wbuf_put_u64(&req, pos);
        wbuf_put_str(&req, name, strlen(name));
        wbuf_put_u32(&req, FSCK_SLICE);
        wbuf_put_u8(&req, r->repair ? FSCK_F_REPAIR : 0);
        struct rpc_reply rep;
        int rc = cli_meta_call(r->m, MSG_FSCK, &req, &rep);
        wbuf_free(&req);
        if (rc == -EAGAIN && phase == FSCK_PH_CHUNKS && waited < FSCK_LEARN_WAIT_MS &&
            !cli_meta_unreachable(r->m)) {
            sleep_ms(500); /* a new leader is learning where the copies are */
            waited += 500;
            continue;
        }
        if (rc) {
            cli_err("fsck: %s", rc == -EOPNOTSUPP ? cli_strerror(rc) : cli_meta_why(r->m));
            return rc;
        }
        struct rcur c;
        rcur_init(&c, rep.payload.data, rep.payload.len);
        rc = take_slice(r, &c, &phase, &pos, name, &total);
        rpc_reply_free(&rep);
        if (rc) {
            cli_err("fsck: %s", rc == -ENOMEM ? "out of memory" : "malformed reply");
            return rc;
        }
        progress_update(&r->prog, r->done, total > r->done ? total : r->done);
    }
    return 0;
}

struct links_res {
    uint64_t ino;
    uint8_t exists, open, fixed;
    uint32_t mode, nlink, entries, subdirs;
    char path[CAIRN_PATH_MAX + 1];
};

/* FSCK_OP_LINKS (flags FSCK_F_*) for inos[0..n) (n <= FSCK_LINKS_MAX) into out. */
static int links_call(struct fsck_run *r, const uint64_t *inos, uint32_t n, uint8_t flags,
                      struct links_res *out)
{
    struct wbuf req;
    wbuf_init(&req);
    wbuf_put_u8(&req, FSCK_OP_LINKS);
    wbuf_put_u8(&req, flags);
    wbuf_put_u32(&req, n);
    for (uint32_t i = 0; i < n; i++)
        wbuf_put_u64(&req, inos[i]);
    struct rpc_reply rep;
    int rc = cli_meta_call(r->m, MSG_FSCK, &req, &rep);
    wbuf_free(&req);
    if (rc) {
        cli_err("fsck: %s", rc == -EOPNOTSUPP ? cli_strerror(rc) : cli_meta_why(r->m));
        return rc;
    }
    struct rcur c;
    rcur_init(&c, rep.payload.data, rep.payload.len);
    if (rcur_u32(&c) != n) c.err = -EBADMSG;
    for (uint32_t i = 0; i < n && !c.err; i++) {
        struct links_res *l = &out[i];
        l->ino = rcur_u64(&c);
        l->exists = rcur_u8(&c);
        l->mode = rcur_u32(&c);
        l->nlink = rcur_u32(&c);
        l->entries = rcur_u32(&c);
        l->subdirs = rcur_u32(&c);
        l->open = rcur_u8(&c);
        l->fixed = rcur_u8(&c);
        rcur_str(&c, l->path, CAIRN_PATH_MAX);
        if (l->ino != inos[i]) c.err = -EBADMSG;
    }
    rc = rcur_done(&c);
    rpc_reply_free(&rep);
    if (rc) cli_err("fsck: malformed reply");
    return rc ? -EBADMSG : 0;
}

/* Whether what the walk saw of e looks wrong (to be counted again). */
static int suspect(const struct fent *e)
{
    if (!e->seen) return 0; /* created during the walk */
    if (e->nlink == 0) return !e->open;
    if (S_ISDIR(e->mode))
        return e->entries != (e->ino == CAIRN_ROOT_INO ? 0u : 1u) || e->nlink != 2 + e->subdirs;
    return e->entries != e->nlink;
}

/* The confirmed problem of a recount, if any. */
static int judge(struct fsck_run *r, const struct links_res *l)
{
    if (!l->exists || (l->nlink == 0 && l->open)) return 0;
    struct fprob *p;
    if (l->entries == 0 && l->ino != CAIRN_ROOT_INO) {
        if (l->open) return 0;
        if (!(p = add_problem(r))) return -ENOMEM;
        p->kind = FSCK_P_ORPHAN;
        p->ino = l->ino;
        p->have = l->nlink;
        return 0;
    }
    uint32_t want = l->entries;
    if (S_ISDIR(l->mode))
        want = l->entries == (l->ino == CAIRN_ROOT_INO ? 0u : 1u) ? 2 + l->subdirs : 0;
    if (want == l->nlink) return 0;
    if (!(p = add_problem(r))) return -ENOMEM;
    p->kind = FSCK_P_NLINK;
    p->ino = l->ino;
    p->have = l->nlink;
    p->want = want; /* 0: a directory with more than one entry */
    p->index = l->entries;
    p->fixed = l->fixed;
    if (l->path[0] && !(p->path = strdup(l->path))) return -ENOMEM;
    return 0;
}

static struct links_res lres[FSCK_LINKS_MAX];

/* Count the suspects again and keep the confirmed problems. */
static int check_links(struct fsck_run *r)
{
    uint64_t batch[FSCK_LINKS_MAX];
    uint32_t n = 0;
    for (uint64_t i = 0; i <= r->tab.cap; i++) {
        if (i < r->tab.cap && !(r->tab.e[i].ino && suspect(&r->tab.e[i]))) continue;
        if (i < r->tab.cap) batch[n++] = r->tab.e[i].ino;
        if (n == FSCK_LINKS_MAX || (i == r->tab.cap && n > 0)) {
            int rc = links_call(r, batch, n, r->repair ? FSCK_F_REPAIR : 0, lres);
            for (uint32_t k = 0; !rc && k < n; k++)
                rc = judge(r, &lres[k]);
            if (rc) return rc;
            n = 0;
        }
    }
    return 0;
}

/* The inode whose path a problem shows (and whether it is the entry's directory). */
static uint64_t path_ino(const struct fprob *p)
{
    switch (p->kind) {
    case FSCK_P_MISSING:
    case FSCK_P_UNDER:
        return p->ino;
    case FSCK_P_DANGLING:
        return p->parent;
    default:
        return 0;
    }
}

/* Paths of the problems' files and directories, FSCK_LINKS_MAX at a time. */
static int find_paths(struct fsck_run *r)
{
    uint64_t batch[FSCK_LINKS_MAX];
    size_t from = 0;
    while (from < r->np) {
        uint32_t n = 0;
        size_t i = from;
        for (; i < r->np && n < FSCK_LINKS_MAX; i++) {
            uint64_t ino = path_ino(&r->p[i]);
            if (!ino || r->p[i].path) continue;
            int dup = 0;
            for (uint32_t k = 0; k < n && !dup; k++)
                dup = batch[k] == ino;
            if (!dup) batch[n++] = ino;
        }
        if (n) {
            int rc = links_call(r, batch, n, FSCK_F_PATHS, lres);
            if (rc) return rc;
            for (size_t j = from; j < i; j++)
                for (uint32_t k = 0; k < n; k++)
                    if (!r->p[j].path && path_ino(&r->p[j]) == lres[k].ino && lres[k].path[0] &&
                        !(r->p[j].path = strdup(lres[k].path)))
                        return -ENOMEM;
        }
        from = i;
    }
    return 0;
}

static const char *kind_name(uint8_t kind)
{
    switch (kind) {
    case FSCK_P_MISSING:
        return "missing";
    case FSCK_P_UNDER:
        return "under-replicated";
    case FSCK_P_UNREF:
        return "unreferenced";
    case FSCK_P_DANGLING:
        return "dangling";
    case FSCK_P_NLINK:
        return "nlink";
    case FSCK_P_ORPHAN:
        return "orphan";
    default:
        return "?";
    }
}

/* Whether a problem counts for the exit status. */
static int counts(const struct fprob *p)
{
    return p->kind != FSCK_P_UNREF || p->have;
}

static void print_text(const struct fsck_run *r, const struct fprob *p)
{
    const char *path = p->path ? p->path : "?";
    switch (p->kind) {
    case FSCK_P_MISSING:
        printf("missing: %s (inode %" PRIu64 "): chunk %016" PRIx64 " (index %" PRIu64
               ") has no valid copy on a live server (goal %u); %s\n",
               path, p->ino, p->chunk, p->index, p->want,
               r->repair ? "cannot be repaired, the file is kept" : "its data is lost");
        break;
    case FSCK_P_UNDER:
        printf("under-replicated: %s (inode %" PRIu64 "): chunk %016" PRIx64 " (index %" PRIu64
               ") has %u of %u copies%s\n",
               path, p->ino, p->chunk, p->index, p->have, p->want,
               p->fixed ? "; repair queued" : "");
        break;
    case FSCK_P_UNREF:
        printf("unreferenced: chunk %016" PRIx64 " v%" PRIu64 " on chunk server %016" PRIx64
               ": no file references it; deletion %s\n",
               p->chunk, p->index, p->parent, p->have ? "queued" : "sent");
        break;
    case FSCK_P_DANGLING:
        printf("dangling: %s%s%s (in directory inode %" PRIu64 ") points at inode %" PRIu64
               ", which does not exist%s\n",
               path, strcmp(path, "/") ? "/" : "", p->name ? p->name : "", p->parent, p->ino,
               p->fixed ? "; entry removed" : "");
        break;
    case FSCK_P_NLINK:
        if (p->want)
            printf("nlink: %s (inode %" PRIu64 "): link count %u, should be %u (%" PRIu64
                   " entries point at it)%s\n",
                   path, p->ino, p->have, p->want, p->index, p->fixed ? "; set right" : "");
        else
            printf("nlink: %s (inode %" PRIu64 "): a directory with %" PRIu64
                   " entries pointing at it; left as is\n",
                   path, p->ino, p->index);
        break;
    case FSCK_P_ORPHAN:
        printf("orphan: inode %" PRIu64 " (link count %u) is not open and no entry points at "
               "it; left as is\n",
               p->ino, p->have);
        break;
    }
}

static void print_json(const struct fsck_run *r, uint64_t found, uint64_t fixed)
{
    struct json j;
    json_init(&j, stdout);
    json_obj_begin(&j, NULL);
    json_bool(&j, "repair", r->repair);
    json_u64(&j, "inodes", r->n_inodes);
    json_u64(&j, "entries", r->n_entries);
    json_u64(&j, "chunks", r->n_chunks);
    json_u64(&j, "unreferenced_seen", r->unref_seen);
    json_u64(&j, "problems_found", found);
    json_u64(&j, "problems_fixed", fixed);
    json_bool(&j, "clean", found == 0);
    json_arr_begin(&j, "problems");
    for (size_t i = 0; i < r->np; i++) {
        const struct fprob *p = &r->p[i];
        json_obj_begin(&j, NULL);
        json_str(&j, "kind", kind_name(p->kind));
        if (p->path)
            json_str(&j, "path", p->path);
        else
            json_null(&j, "path");
        json_bool(&j, "fixed", p->fixed);
        json_bool(&j, "counted", counts(p));
        switch (p->kind) {
        case FSCK_P_MISSING:
        case FSCK_P_UNDER:
            json_u64(&j, "ino", p->ino);
            json_hex64(&j, "chunk", p->chunk);
            json_u64(&j, "index", p->index);
            json_u64(&j, "copies", p->have);
            json_u64(&j, "goal", p->want);
            break;
        case FSCK_P_UNREF:
            json_hex64(&j, "chunk", p->chunk);
            json_u64(&j, "version", p->index);
            json_hex64(&j, "server", p->parent);
            json_bool(&j, "deletion_queued", p->have);
            break;
        case FSCK_P_DANGLING:
            json_u64(&j, "parent", p->parent);
            json_str(&j, "name", p->name ? p->name : "");
            json_u64(&j, "ino", p->ino);
            break;
        default:
            json_u64(&j, "ino", p->ino);
            json_u64(&j, "nlink", p->have);
            if (p->kind == FSCK_P_NLINK) {
                json_u64(&j, "entries", p->index);
                json_u64(&j, "expected", p->want);
            }
            break;
        }
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    json_finish(&j);
}

static void run_free(struct fsck_run *r)
{
    for (size_t i = 0; i < r->np; i++) {
        free(r->p[i].name);
        free(r->p[i].path);
    }
    free(r->p);
    free(r->tab.e);
}

int cmd_fsck(const struct cli *c)
{
    if (c->argc > 1) {
        cli_err("usage: cairn fsck [PATH] [--repair] [--json] [--meta ADDR]");
        return CLI_USAGE;
    }
    struct fsck_run r = {.c = c, .repair = c->repair};
    char addrs[CLI_ADDRS_LEN];
    if (cli_meta_addr_cluster(c, c->argc == 1 ? c->argv[0] : NULL, addrs, sizeof(addrs)))
        return CLI_USAGE;
    if (!(r.m = cli_meta_get(addrs))) {
        cli_err("fsck: bad meta service address list '%s'", addrs);
        return CLI_USAGE;
    }
    progress_init(&r.prog, stderr, "fsck", "items");
    int rc = walk(&r);
    if (!rc) rc = check_links(&r);
    if (!rc) rc = find_paths(&r);
    progress_end(&r.prog);
    if (rc) {
        if (rc == -ENOMEM) cli_err("fsck: out of memory");
        run_free(&r);
        return CLI_FAIL;
    }
    uint64_t found = 0, fixed = 0;
    for (size_t i = 0; i < r.np; i++) {
        found += (uint64_t)counts(&r.p[i]);
        fixed += (uint64_t)(counts(&r.p[i]) && r.p[i].fixed);
    }
    if (c->json) {
        print_json(&r, found, fixed);
    } else {
        for (size_t i = 0; i < r.np; i++)
            print_text(&r, &r.p[i]);
        printf("fsck: %" PRIu64 " inodes, %" PRIu64 " entries, %" PRIu64 " chunks checked: ",
               r.n_inodes, r.n_entries, r.n_chunks);
        if (found == 0)
            printf("clean\n");
        else if (r.repair)
            printf("%" PRIu64 " problem%s found, %" PRIu64 " fixed, %" PRIu64 " left\n", found,
                   found == 1 ? "" : "s", fixed, found - fixed);
        else
            printf("%" PRIu64 " problem%s found (cairn fsck --repair fixes what it safely can)\n",
                   found, found == 1 ? "" : "s");
    }
    run_free(&r);
    return found ? CLI_FAIL : CLI_OK;
}
