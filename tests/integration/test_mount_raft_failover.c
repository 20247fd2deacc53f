/* test_mount_raft_failover.c - two mounts keep writing while the meta leader dies:
 *
 * - leader_killed_under_load: three meta replicas, three chunk servers and two mounts, every one
 *   of them given the whole list of replicas. One writer process per mount makes a storm of
 *   operations on names of its own (create + write + fsync + close of a file with content of
 *   its own, mkdir, rename of a file it created, unlink of a file it renamed), logging for each
 *   the time it was invoked, the time it completed and its outcome. The leader is killed with
 *   SIGKILL in the middle and started again on its data once a new leader serves; once it has
 *   caught up, the new leader is killed too, so that the first one is needed for a majority.
 *   Each time a follower notices that the dead leader's port refuses connections (it then
 *   holds the election at once, instead of after the election timeout).
 *   - Both writers carry on by themselves: no operation returns an error to them, and both get
 *     operations acknowledged after each kill (within 30 s; otherwise the operation a writer
 *     hangs in, its kernel stack and its mount's threads, through gdb, are reported).
 *   - Through each mount, every writer's folder lists no name twice and nothing no operation
 *     made; every file holds exactly the content it was written with.
 *   - Per name, a small linearizability checker finds an order of that name's operations
 *     (create, mkdir, rename away, rename to, unlink) that agrees with real time (an operation
 *     that completed before another was invoked comes first), in which every acknowledged
 *     operation takes effect with the outcome it had and an unfinished one may or may not, and
 *     which ends in the state the folder shows; and a renamed file shows under exactly one of
 *     its two names (unless the new one was unlinked), which no per-name model can see.
 *     Together: every acknowledged operation is there exactly once (a retried mkdir or rename
 *     applied once, renamed files only under their new name).
 *   - The pause of each kill, from the kill to the first acknowledged operation invoked after
 *     it, and the longest gap between acknowledgements around it, are printed.
 *   - Once everything is unmounted and stopped, the three replicas' stores (the restarted ones
 *     caught up) hold the same records.
 * - checker_rejects_what_cannot_happen (no cluster): that checker accepts histories that can
 *   have happened and rejects ones that cannot.
 *
 * Mounts FUSE (named test_mount_*, so the sanitizer run leaves it out). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_fs.h"
#include "harness_raft.h"

#define META_OPTS "election_timeout_ms=1000 heartbeat_ms=100 cs_timeout=3"
#define NWRITERS 2
#define MAX_OPS 20000
#define KILL_AFTER_MS 2500 /* of storm before the leader is killed */
#define KILLS 2
#define AFTER_KILL_ACKS 20 /* operations each writer must get acknowledged after the kill */
#define RESUME_BOUND_MS 30000
#define FILE_MAX (16 * 1024)

/* ---- the writers' log (memory shared with the test) ------------------------------------------ */

enum op_kind { OP_CREATE, OP_MKDIR, OP_RENAME, OP_UNLINK };
static const char *const kind_name[] = {"create", "mkdir", "rename", "unlink"};

struct op {
    uint8_t kind;
    uint8_t step; /* the syscall that failed (1 open/mkdir/rename/unlink, 2 write, 3 fsync,
                     4 close) */
    int32_t err;  /* 0 or the errno it returned */
    uint32_t a;   /* name index: f<a>, d<a>; rename: f<a> -> r<a>; unlink: r<a> */
    uint64_t inv_us, done_us; /* done_us 0: never completed */
};

struct wlog {
    volatile int stop;
    volatile int n; /* ops[0..n) were invoked */
    struct op ops[MAX_OPS];
};

static struct wlog *W; /* NWRITERS of them */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t seed_of(int w, uint32_t a)
{
    return hfs_mix64(((uint64_t)(w + 1) << 32) | a);
}

static size_t size_of(int w, uint32_t a)
{
    return 1 + (size_t)(seed_of(w, a) % FILE_MAX);
}

/* ---- a writer (its own process) -------------------------------------------------------------- */

static int create_file(const char *path, int w, uint32_t a, uint8_t *step)
{
    static uint8_t buf[FILE_MAX];
    size_t len = size_of(w, a);
    hfs_fill(buf, len, seed_of(w, a), 0);
    *step = 1;
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return errno;
    *step = 2;
    int rc = hfs_pwrite_all(fd, buf, len, 0);
    if (!rc) {
        *step = 3;
        if (fsync(fd) != 0) rc = -errno;
    }
    if (rc) {
        close(fd);
        return -rc;
    }
    *step = 4;
    return close(fd) == 0 ? 0 : errno;
}

static void writer_main(int w, const char *dir)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct wlog *l = &W[w];
    static uint32_t created[MAX_OPS], renamed[MAX_OPS];
    int ncreated = 0, rhead = 0, rtail = 0;
    uint64_t deadline = now_us() + 120u * 1000000u;
    for (uint32_t i = 0; !l->stop && i < MAX_OPS && now_us() < deadline; i++) {
        struct op *o = &l->ops[i];
        memset(o, 0, sizeof(*o));
        o->kind = OP_CREATE;
        o->a = i;
        if (i % 10 == 3) {
            o->kind = OP_MKDIR;
        } else if (i % 10 == 6 && ncreated > 0) {
            o->kind = OP_RENAME;
            o->a = created[--ncreated];
        } else if (i % 10 == 9 && rhead < rtail) {
            o->kind = OP_UNLINK;
            o->a = renamed[rhead++];
        }
        char p1[600], p2[600];
        o->inv_us = now_us();
        __atomic_store_n(&l->n, (int)i + 1, __ATOMIC_SEQ_CST);
        int e = 0;
        o->step = 1;
        switch (o->kind) {
        case OP_CREATE:
            snprintf(p1, sizeof(p1), "%s/f%u", dir, o->a);
            e = create_file(p1, w, o->a, &o->step);
            break;
        case OP_MKDIR:
            snprintf(p1, sizeof(p1), "%s/d%u", dir, o->a);
            e = mkdir(p1, 0755) == 0 ? 0 : errno;
            break;
        case OP_RENAME:
            snprintf(p1, sizeof(p1), "%s/f%u", dir, o->a);
            snprintf(p2, sizeof(p2), "%s/r%u", dir, o->a);
            e = rename(p1, p2) == 0 ? 0 : errno;
            break;
        case OP_UNLINK:
            snprintf(p1, sizeof(p1), "%s/r%u", dir, o->a);
            e = unlink(p1) == 0 ? 0 : errno;
            break;
        }
        o->err = e;
        o->done_us = now_us();
        if (!e && o->kind == OP_CREATE) created[ncreated++] = o->a;
        if (!e && o->kind == OP_RENAME) renamed[rtail++] = o->a;
    }
    _exit(0);
}

/* ---- what the folders show ------------------------------------------------------------------- */

/* Observed state of a name: ST_ABSENT, ST_DIR, a file of the right content (ST_FILE), a file
 * whose content is not what any operation wrote (ST_BAD), or ST_OTHER. */
enum { ST_ABSENT, ST_DIR, ST_FILE, ST_BAD, ST_OTHER };
static const char *const st_name[] = {"absent", "a folder", "the file", "a file of wrong content",
                                      "something else"};

struct seen {
    uint8_t f[MAX_OPS], d[MAX_OPS], r[MAX_OPS];
};

/* Read writer w's folder at dir into s; duplicates, strangers and bad content go to why.
 * Returns the number of problems. */
static int scan(int w, const char *dir, struct seen *s, char *why, size_t wlen)
{
    memset(s, 0, sizeof(*s));
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, wlen, "opendir %s: %s", dir, strerror(errno));
        return 1;
    }
    int bad = 0;
    size_t o = strlen(why);
    struct dirent *e;
    static uint8_t buf[FILE_MAX + 1], want[FILE_MAX];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char c = e->d_name[0], *end;
        unsigned long a = strtoul(e->d_name + 1, &end, 10);
        uint8_t *slot = c == 'f' ? s->f : c == 'd' ? s->d : c == 'r' ? s->r : NULL;
        if (!slot || *end || a >= MAX_OPS) {
            bad++;
            o += (size_t)snprintf(why + o, o < wlen ? wlen - o : 0, " stranger '%s';", e->d_name);
            continue;
        }
        if (slot[a]) {
            bad++;
            o += (size_t)snprintf(why + o, o < wlen ? wlen - o : 0, " '%s' listed twice;",
                                  e->d_name);
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0) {
            slot[a] = ST_OTHER;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            slot[a] = ST_DIR;
        } else if (S_ISREG(st.st_mode)) {
            size_t len = 0, wl = size_of(w, (uint32_t)a);
            int rc = hfs_read_file(path, buf, sizeof(buf), &len);
            hfs_fill(want, wl, seed_of(w, (uint32_t)a), 0);
            slot[a] = !rc && len == wl && !memcmp(buf, want, wl) ? ST_FILE : ST_BAD;
        } else {
            slot[a] = ST_OTHER;
        }
    }
    closedir(d);
    return bad;
}

/* ---- the linearizability checker (one name) ----------------------------------------------------
 * A name's model state is absent, a folder, or the file (names are never reused for other
 * content: f<a> and r<a> only ever hold the content of a). An acknowledged operation must take
 * effect, legally, in an order that agrees with real time; one that failed or never completed
 * may take effect or not. */

enum lkind { L_CREATE, L_MKDIR, L_RENAME_OUT, L_RENAME_IN, L_UNLINK };

struct lop {
    int kind;
    int acked;
    uint64_t inv, done; /* done UINT64_MAX: unfinished */
};

/* The state after op k in state st, or -1 when it cannot take effect there. */
static int step_model(int kind, int st)
{
    switch (kind) {
    case L_CREATE: /* O_EXCL */
        return st == ST_ABSENT ? ST_FILE : -1;
    case L_MKDIR:
        return st == ST_ABSENT ? ST_DIR : -1;
    case L_RENAME_OUT:
    case L_UNLINK:
        return st == ST_FILE ? ST_ABSENT : -1;
    case L_RENAME_IN:
        return st == ST_ABSENT || st == ST_FILE ? ST_FILE : -1;
    }
    return -1;
}

/* Whether the ops not in done_mask can be ordered from state st to end in final. */
static int lin_search(const struct lop *ops, int n, unsigned done_mask, int st, int final)
{
    if (done_mask == (1u << n) - 1) return st == final;
    for (int i = 0; i < n; i++) {
        if (done_mask & (1u << i)) continue;
        /* i may go next only if every op that completed before i was invoked is placed */
        int blocked = 0;
        for (int j = 0; j < n && !blocked; j++)
            blocked = j != i && !(done_mask & (1u << j)) && ops[j].done < ops[i].inv;
        if (blocked) continue;
        int ns = step_model(ops[i].kind, st);
        if (ns >= 0 && lin_search(ops, n, done_mask | (1u << i), ns, final)) return 1;
        if (!ops[i].acked && lin_search(ops, n, done_mask | (1u << i), st, final)) return 1;
    }
    return 0;
}

#define MAX_NAME_OPS 8

struct history {
    int n;
    struct lop op[MAX_NAME_OPS];
};

static void add_op(struct history *h, int kind, const struct op *o)
{
    if (h->n == MAX_NAME_OPS) return;
    struct lop *l = &h->op[h->n++];
    l->kind = kind;
    l->acked = o->done_us && !o->err;
    l->inv = o->inv_us;
    l->done = o->done_us ? o->done_us : UINT64_MAX;
}

static void history_str(const struct history *h, uint64_t t0, char *out, size_t len)
{
    static const char *const k[] = {"create", "mkdir", "rename-out", "rename-in", "unlink"};
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < h->n && o < len; i++)
        o += (size_t)snprintf(
            out + o, len - o, " %s[%.3f,%s]%s", k[h->op[i].kind], (double)(h->op[i].inv - t0) / 1e6,
            h->op[i].done == UINT64_MAX ? "-" : "done", h->op[i].acked ? "" : "(not acked)");
}

/* Check writer w's log against what the folder shows; 0 or the number of bad names (the first
 * few described in why). */
static int check_writer(int w, const struct seen *s, uint64_t t0, char *why, size_t wlen)
{
    static struct history hf[MAX_OPS], hd[MAX_OPS], hr[MAX_OPS];
    memset(hf, 0, sizeof(hf));
    memset(hd, 0, sizeof(hd));
    memset(hr, 0, sizeof(hr));
    struct wlog *l = &W[w];
    for (int i = 0; i < l->n; i++) {
        const struct op *o = &l->ops[i];
        switch (o->kind) {
        case OP_CREATE:
            add_op(&hf[o->a], L_CREATE, o);
            break;
        case OP_MKDIR:
            add_op(&hd[o->a], L_MKDIR, o);
            break;
        case OP_RENAME:
            add_op(&hf[o->a], L_RENAME_OUT, o);
            add_op(&hr[o->a], L_RENAME_IN, o);
            break;
        case OP_UNLINK:
            add_op(&hr[o->a], L_UNLINK, o);
            break;
        }
    }
    int bad = 0;
    size_t off = strlen(why);
    /* across the two names of a rename (the per-name model cannot see it): the file shows
     * under exactly one of them, unless the new name was unlinked */
    for (int i = 0; i < l->n; i++) {
        const struct op *o = &l->ops[i];
        if (o->kind != OP_RENAME) continue;
        int shows = (s->f[o->a] == ST_FILE) + (s->r[o->a] == ST_FILE);
        if (shows == 1 || (shows == 0 && hr[o->a].n > 1)) continue;
        if (bad++ < 5 && off < wlen)
            off += (size_t)snprintf(why + off, wlen - off, "\n  w%d: f%u renamed to r%u shows %s",
                                    w, o->a, o->a, shows ? "under both names" : "under neither");
    }
    for (int a = 0; a < MAX_OPS; a++) {
        const struct history *hs[3] = {&hf[a], &hd[a], &hr[a]};
        const uint8_t st[3] = {s->f[a], s->d[a], s->r[a]};
        const char pre[3] = {'f', 'd', 'r'};
        for (int k = 0; k < 3; k++) {
            if (!hs[k]->n && st[k] == ST_ABSENT) continue;
            if (lin_search(hs[k]->op, hs[k]->n, 0, ST_ABSENT, st[k])) continue;
            if (bad++ < 5 && off < wlen) {
                char hist[600];
                history_str(hs[k], t0, hist, sizeof(hist));
                off += (size_t)snprintf(why + off, wlen - off,
                                        "\n  w%d %c%d: shows %s; no order of its history"
                                        " explains that:%s",
                                        w, pre[k], a, st_name[st[k]], hs[k]->n ? hist : " (none)");
            }
        }
    }
    return bad;
}

/* Write writer w's log to DIR/writerW.log (kept with the daemons' logs when the test fails):
 * one line per operation, times in seconds from t0. */
static void dump_log(int w, const char *dir, uint64_t t0)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/writer%d.log", dir, w);
    FILE *f = fopen(path, "w");
    if (!f) return;
    for (int i = 0; i < W[w].n; i++) {
        const struct op *o = &W[w].ops[i];
        fprintf(f, "%d %s %u invoked %.6f ", i, kind_name[o->kind], o->a,
                (double)(o->inv_us - t0) / 1e6);
        if (o->done_us)
            fprintf(f, "completed %.6f %s\n", (double)(o->done_us - t0) / 1e6,
                    o->err ? strerrorname_np(o->err) : "ok");
        else
            fprintf(f, "unfinished\n");
    }
    fclose(f);
}

/* A writer that got nothing acknowledged for too long: say which operation it is in and since
 * when, with its kernel stack, and save every thread's stack of its mount's client into
 * DIR/mountK-threads.log (gdb; kept with the logs). */
static void hang_report(struct hraft_group *g, const pid_t *wp, uint64_t t0, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (int k = 0; k < NWRITERS && o < len; k++) {
        int n = __atomic_load_n(&W[k].n, __ATOMIC_SEQ_CST);
        const struct op *last = n ? &W[k].ops[n - 1] : NULL;
        if (!last || last->done_us) continue;
        char stack[1200] = "";
        h_run(10, stack, sizeof(stack), "cat /proc/%d/stack", (int)wp[k]);
        o += (size_t)snprintf(out + o, len - o,
                              "\n  writer %d: %s #%u invoked at %.3f s, unfinished %.1f s later; "
                              "its kernel stack:\n%s",
                              k, kind_name[last->kind], last->a, (double)(last->inv_us - t0) / 1e6,
                              (double)(now_us() - last->inv_us) / 1e6, stack);
        if (g->c.mount_pid[k] > 0) {
            char dummy[200];
            h_run(60, dummy, sizeof(dummy),
                  "gdb -p %d -batch -ex 'thread apply all bt' >'%s/mount%d-threads.log' 2>&1",
                  (int)g->c.mount_pid[k], g->c.dir, k);
            o += (size_t)snprintf(out + o, len - o,
                                  "\n  (threads of mount %d in "
                                  "mount%d-threads.log)",
                                  k, k);
        }
    }
}

/* ---- the test -------------------------------------------------------------------------------- */

/* Acknowledged operations of writer w invoked after t (us). */
static int acked_after(int w, uint64_t t)
{
    int n = 0, m = __atomic_load_n(&W[w].n, __ATOMIC_SEQ_CST);
    for (int i = 0; i < m; i++) {
        const struct op *o = &W[w].ops[i];
        n += o->inv_us > t && o->done_us && !o->err;
    }
    return n;
}

/* The first failed operation of any writer, described in out; 0 when none failed. */
static int first_error(char *out, size_t len, uint64_t t0)
{
    for (int w = 0; w < NWRITERS; w++) {
        int m = __atomic_load_n(&W[w].n, __ATOMIC_SEQ_CST);
        for (int i = 0; i < m; i++) {
            const struct op *o = &W[w].ops[i];
            if (o->done_us && o->err) {
                snprintf(out, len, "writer %d: %s #%u (step %u) failed with %s at %.3f s", w,
                         kind_name[o->kind], o->a, o->step, strerrorname_np(o->err),
                         (double)(o->done_us - t0) / 1e6);
                return 1;
            }
        }
    }
    return 0;
}

START_TEST(leader_killed_under_load)
{
    struct hraft_group *g = hraft_g;
    char why[8192], st[1500];
    int rc = hraft_init(g, hraft_root, "fo", 3, META_OPTS, 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    ck_assert_int_eq(hraft_start_all(g), 0);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_msg(lead >= 0, "no leader within 15 s (logs in %s)", g->c.dir);
    for (int k = 0; k < 3; k++) {
        rc = h_cs_start(&g->c, k);
        ck_assert_msg(rc == 0, "chunk server %d: %s", k, strerror(-rc));
    }
    for (int k = 0; k < 3; k++) {
        rc = hraft_cs_wait_registered(g, k, 0, 15000);
        ck_assert_msg(rc == 0, "chunk server %d did not register (logs in %s)", k, g->c.dir);
    }
    char dirs[NWRITERS][400];
    for (int k = 0; k < NWRITERS; k++) {
        rc = h_mount(&g->c);
        ck_assert_msg(rc == k, "mount %d: %s (logs in %s)", k, strerror(-rc), g->c.dir);
        snprintf(dirs[k], sizeof(dirs[k]), "%s/w%d", g->c.mnt[k], k);
        HFS_OK(mkdir(dirs[k], 0755));
    }

    W = mmap(NULL, NWRITERS * sizeof(*W), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
             0);
    ck_assert_ptr_ne(W, MAP_FAILED);
    uint64_t t0 = now_us();
    pid_t wp[NWRITERS];
    for (int k = 0; k < NWRITERS; k++) {
        wp[k] = fork();
        ck_assert_int_ge(wp[k], 0);
        if (wp[k] == 0) writer_main(k, dirs[k]);
    }

    /* the storm; then the leader dies, twice: the second time the replica killed first (started
     * again at once) is needed for a majority */
    hraft_sleep_ms(KILL_AFTER_MS);
    for (int k = 0; k < NWRITERS; k++)
        ck_assert_msg(acked_after(k, t0) >= 10, "writer %d: only %d operations in %.1f s", k,
                      acked_after(k, t0), KILL_AFTER_MS / 1000.0);
    char err[600];
    uint64_t t_kill[KILLS], t_lead[KILLS];
    int killed[KILLS], leader_after[KILLS];
    for (int r = 0; r < KILLS; r++) {
        if (r > 0) { /* the replica killed before has caught up (it needs no snapshot) */
            struct hraft_status ls, os;
            uint64_t cend = hraft_now_ms() + 20000;
            ck_assert_int_eq(hraft_status(g, lead, &ls), 0);
            while (hraft_status(g, killed[r - 1], &os) != 0 || os.applied_index < ls.commit_index) {
                hraft_status_str(g, st, sizeof(st));
                ck_assert_msg(hraft_now_ms() < cend,
                              "replica %d, started again, did not reach index %llu in 20 s: [%s]",
                              killed[r - 1] + 1, (unsigned long long)ls.commit_index, st);
                hraft_sleep_ms(50);
            }
        }
        killed[r] = lead;
        int gone_before[3];
        for (int i = 0; i < 3; i++)
            gone_before[i] = hraft_log_count(g, i, "is gone (its port refuses)");
        ck_assert_int_eq(hraft_kill(g, lead, SIGKILL), 0);
        t_kill[r] = now_us();
        fprintf(stderr,
                "leader_killed_under_load: leader (replica %d) killed %.2f s into the storm\n",
                lead + 1, (double)(t_kill[r] - t0) / 1e6);
        lead = hraft_wait_leader(g, 0, 15000);
        hraft_status_str(g, st, sizeof(st));
        ck_assert_msg(lead >= 0, "no new leader within 15 s: [%s]", st);
        t_lead[r] = now_us();
        leader_after[r] = lead;
        /* the new leader was elected because its port refused, not after a timeout: a
         * follower's connection to the dead leader's port saw it go (leader_watch.c) */
        int noticed = 0;
        for (int i = 0; i < 3; i++)
            if (i != killed[r])
                noticed += hraft_log_count(g, i, "is gone (its port refuses)") - gone_before[i];
        ck_assert_msg(noticed > 0, "no follower noticed that the leader's port refused (see %s)",
                      g->r[lead].log);
        ck_assert_int_eq(hraft_start(g, killed[r]), 0); /* it rejoins as a follower under load */

        /* both writers resume on their own */
        uint64_t end = t_kill[r] + RESUME_BOUND_MS * 1000ull;
        for (;;) {
            int done = 1;
            for (int k = 0; k < NWRITERS; k++)
                done &= acked_after(k, t_kill[r]) >= AFTER_KILL_ACKS;
            if (done || now_us() > end || first_error(err, sizeof(err), t0)) break;
            hraft_sleep_ms(50);
        }
        if (first_error(err, sizeof(err), t0)) break;
        int resumed = 1;
        for (int k = 0; k < NWRITERS; k++)
            resumed &= acked_after(k, t_kill[r]) >= AFTER_KILL_ACKS;
        if (!resumed) {
            char hung[4096];
            hang_report(g, wp, t0, hung, sizeof(hung));
            hraft_status_str(g, st, sizeof(st));
            for (int k = 0; k < NWRITERS; k++) {
                W[k].stop = 1;
                dump_log(k, g->c.dir, t0);
            }
            ck_abort_msg("kill %d: a writer got fewer than %d operations acknowledged in the %d s "
                         "after it (%d and %d): [%s]%s",
                         r + 1, AFTER_KILL_ACKS, RESUME_BOUND_MS / 1000, acked_after(0, t_kill[r]),
                         acked_after(1, t_kill[r]), st, hung);
        }
    }
    hraft_sleep_ms(500);
    for (int k = 0; k < NWRITERS; k++)
        W[k].stop = 1;
    for (int k = 0; k < NWRITERS; k++) {
        int wst;
        uint64_t wend = hraft_now_ms() + 30000;
        while (waitpid(wp[k], &wst, WNOHANG) == 0 && hraft_now_ms() < wend)
            hraft_sleep_ms(20);
        if (hraft_now_ms() >= wend) {
            kill(wp[k], SIGKILL);
            waitpid(wp[k], &wst, 0);
            ck_abort_msg("writer %d still hung in an operation 30 s after the stop", k);
        }
    }
    for (int k = 0; k < NWRITERS; k++)
        dump_log(k, g->c.dir, t0);
    ck_assert_msg(!first_error(err, sizeof(err), t0), "%s", err);
    for (int r = 0; r < KILLS; r++)
        for (int k = 0; k < NWRITERS; k++)
            ck_assert_msg(acked_after(k, t_kill[r]) >= AFTER_KILL_ACKS,
                          "writer %d: %d operations acknowledged in the %d s after kill %d", k,
                          acked_after(k, t_kill[r]), RESUME_BOUND_MS / 1000, r + 1);

    /* the pauses */
    static uint64_t done_times[NWRITERS * MAX_OPS];
    int nd = 0, nops = 0;
    for (int k = 0; k < NWRITERS; k++) {
        nops += W[k].n;
        for (int i = 0; i < W[k].n; i++)
            if (W[k].ops[i].done_us && !W[k].ops[i].err) done_times[nd++] = W[k].ops[i].done_us;
    }
    for (int i = 0; i < nd; i++) /* insertion sort: a few thousand at most */
        for (int j = i; j > 0 && done_times[j - 1] > done_times[j]; j--) {
            uint64_t t = done_times[j];
            done_times[j] = done_times[j - 1];
            done_times[j - 1] = t;
        }
    fprintf(stderr, "  %d operations (%d acknowledged) by %d writers\n", nops, nd, NWRITERS);
    for (int r = 0; r < KILLS; r++) {
        uint64_t first_after = UINT64_MAX, first_any = UINT64_MAX, gap = 0, prev = 0;
        uint64_t until = r + 1 < KILLS ? t_kill[r + 1] : UINT64_MAX;
        for (int k = 0; k < NWRITERS; k++)
            for (int i = 0; i < W[k].n; i++) {
                const struct op *o = &W[k].ops[i];
                if (!o->done_us || o->err) continue;
                if (o->done_us > t_kill[r] && o->done_us < first_any) first_any = o->done_us;
                if (o->inv_us > t_kill[r] && o->done_us < first_after) first_after = o->done_us;
            }
        for (int i = 0; i < nd && done_times[i] < until; i++) {
            if (prev && done_times[i] > t_kill[r] - 1000000 && done_times[i] - prev > gap)
                gap = done_times[i] - prev;
            prev = done_times[i];
        }
        fprintf(stderr,
                "  kill %d (replica %d): replica %d served %.2f s after it; pause %.2f s from the "
                "kill to the first acknowledged operation invoked after it (first "
                "acknowledgement of any: %.2f s); longest gap between acknowledgements %.2f s\n",
                r + 1, killed[r] + 1, leader_after[r] + 1, (double)(t_lead[r] - t_kill[r]) / 1e6,
                (double)(first_after - t_kill[r]) / 1e6, (double)(first_any - t_kill[r]) / 1e6,
                (double)gap / 1e6);
    }

    /* what each mount shows, and whether the histories explain it */
    static struct seen seen[2];
    for (int k = 0; k < NWRITERS; k++) {
        for (int m = 0; m < NWRITERS; m++) {
            char dir[500];
            snprintf(dir, sizeof(dir), "%s/w%d", g->c.mnt[m], k);
            why[0] = '\0';
            int nb = scan(k, dir, &seen[m], why, sizeof(why));
            ck_assert_msg(nb == 0, "writer %d's folder through mount %d:%s", k, m, why);
        }
        ck_assert_msg(memcmp(&seen[0], &seen[1], sizeof(seen[0])) == 0,
                      "the two mounts show writer %d's folder differently", k);
        why[0] = '\0';
        int nb = check_writer(k, &seen[0], t0, why, sizeof(why));
        ck_assert_msg(nb == 0, "writer %d: %d names not explained by their histories:%s", k, nb,
                      why);
    }
    fprintf(stderr, "  every name of both writers is explained by its history, through both "
                    "mounts\n");

    /* the stores: unmount, stop the chunk servers, let the group settle, stop the leader first */
    for (int k = 0; k < g->c.nmounts; k++)
        ck_assert_int_eq(h_umount(&g->c, k), 0);
    for (int k = 0; k < g->c.ncs; k++)
        ck_assert_int_eq(h_cs_kill(&g->c, k, SIGTERM), 0);
    lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_int_ge(lead, 0);
    rc = hraft_wait_quiet(g, lead, 0, 30000, why, sizeof(why));
    hraft_status_str(g, st, sizeof(st));
    ck_assert_msg(rc == 0, "the group did not settle: %s [%s]", why, st);
    rc = hraft_stop_and_compare(g, lead, 7u, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s", why);
    fprintf(stderr, "  the three stores hold the same records; %.1f s in all\n",
            (double)(now_us() - t0) / 1e6);
    hraft_stop(g);
}
END_TEST

/* ---- the checker itself ---------------------------------------------------------------------- */

static void put_op(int i, int kind, uint32_t a, uint64_t inv, uint64_t done, int err)
{
    W[0].ops[i] =
        (struct op){.kind = (uint8_t)kind, .a = a, .inv_us = inv, .done_us = done, .err = err};
    if (W[0].n < i + 1) W[0].n = i + 1;
}

/* Bad names check_writer finds in writer 0's log against s. */
static int bad_names(const struct seen *s)
{
    char why[4096] = "";
    return check_writer(0, s, 0, why, sizeof(why));
}

START_TEST(checker_rejects_what_cannot_happen)
{
    W = calloc(1, sizeof(*W));
    ck_assert_ptr_nonnull(W);
    static struct seen s;
    /* a history that happened: f0 created, renamed to r0, r0 unlinked; d3 made; f4 unfinished */
    put_op(0, OP_CREATE, 0, 10, 20, 0);
    put_op(1, OP_RENAME, 0, 30, 40, 0);
    put_op(2, OP_UNLINK, 0, 50, 60, 0);
    put_op(3, OP_MKDIR, 3, 70, 80, 0);
    put_op(4, OP_CREATE, 4, 90, 0, 0);
    memset(&s, 0, sizeof(s));
    s.d[3] = ST_DIR;
    ck_assert_int_eq(bad_names(&s), 0);
    s.f[4] = ST_FILE; /* the unfinished create may have taken effect */
    ck_assert_int_eq(bad_names(&s), 0);
    s.f[4] = ST_BAD; /* but not with other content */
    ck_assert_int_eq(bad_names(&s), 1);
    s.f[4] = ST_ABSENT;
    s.r[0] = ST_FILE; /* an acknowledged unlink undone */
    ck_assert_int_eq(bad_names(&s), 1);
    s.r[0] = ST_ABSENT;
    s.f[0] = ST_FILE; /* the renamed file still under its old name */
    ck_assert_int_eq(bad_names(&s), 1);
    s.f[0] = ST_ABSENT;
    s.d[3] = ST_ABSENT; /* an acknowledged mkdir lost */
    ck_assert_int_eq(bad_names(&s), 1);
    s.d[3] = ST_DIR;
    s.f[7] = ST_FILE; /* a name no operation made */
    ck_assert_int_eq(bad_names(&s), 1);
    s.f[7] = ST_ABSENT;

    /* f0 is created, then renamed away (acknowledged, in this order): it cannot show */
    memset(W, 0, sizeof(*W));
    put_op(0, OP_CREATE, 0, 10, 20, 0);
    put_op(1, OP_RENAME, 0, 30, 40, 0);
    memset(&s, 0, sizeof(s));
    s.r[0] = ST_FILE;
    ck_assert_int_eq(bad_names(&s), 0);
    s.f[0] = ST_FILE; /* f0 by its history, and the file under both names */
    ck_assert_int_eq(bad_names(&s), 2);
    /* a rename that failed may or may not have happened (the file under one of its names) */
    W[0].ops[1].err = EIO;
    ck_assert_int_eq(bad_names(&s), 1); /* not under both */
    s.r[0] = ST_ABSENT;
    ck_assert_int_eq(bad_names(&s), 0);
    s.r[0] = ST_FILE;
    s.f[0] = ST_ABSENT;
    ck_assert_int_eq(bad_names(&s), 0);
    s.r[0] = ST_ABSENT; /* under neither name: lost */
    ck_assert_int_eq(bad_names(&s), 1);

    /* real time: an unlink acknowledged before a rename to the name was invoked cannot have
     * removed it; overlapping, it could have gone either way but must be legal */
    memset(W, 0, sizeof(*W));
    put_op(0, OP_CREATE, 0, 10, 20, 0);
    put_op(1, OP_RENAME, 0, 30, 40, 0);
    put_op(2, OP_UNLINK, 0, 50, 60, 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(bad_names(&s), 0);
    W[0].ops[2].inv_us = 35; /* the unlink overlaps the rename: still it must come after it */
    ck_assert_int_eq(bad_names(&s), 0);
    s.r[0] = ST_FILE;
    ck_assert_int_eq(bad_names(&s), 1);
    free(W);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"checker_rejects_what_cannot_happen", checker_rejects_what_cannot_happen},
        {"leader_killed_under_load", leader_killed_under_load},
    };
    return hraft_main("rfo", "mount_raft_failover", tests, sizeof(tests) / sizeof(tests[0]), 180,
                      NULL);
}
