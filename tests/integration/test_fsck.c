/* test_fsck.c - `cairn fsck` on a real cluster (two chunk servers, two copies of every file):
 * a clean namespace (nested directories, a hard link) is clean and exits 0; chunk files removed
 * behind the chunk servers' backs are found: a file with one copy left is reported
 * under-replicated with its path, a file whose copies are all gone is reported missing with its
 * path (and kept), both with exit status 1; `--repair` queues the repair of the first, and a
 * later fsck finds it healed while the lost file is still reported; a copy of a chunk whose
 * file was deleted while its server was down is reported unreferenced once the server is back.
 * Damage written straight into the stopped meta service's store (a wrong link count of a file
 * and of a directory, an entry whose inode does not exist, an inode no entry points at;
 * tests/integration/lmdb_patch.py) is reported with paths; --repair fixes the first three
 * through replicated records and leaves the orphan, which the next fsck still reports.
 * Malformed MSG_FSCK requests get an error or lose their connection; the meta service stays up.
 * The other long command that waits, `cairn cs drain ID --wait`, returns once the server holds
 * no copy, every file still at two copies elsewhere.
 *
 * Every case runs in a forked process with its own cluster (harness_repl.h). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "harness_fs.h"
#include "harness_repl.h"
#include "proto.h"
#include "rpc.h"

#define MiB (1024L * 1024L)
#define META_OPTS "chunk_size=4M cs_timeout=2 default_copies=2 repair_rate=0"
#define CS_OPTS "heartbeat_ms=200"
#define OUT_LEN 16384

static char out[OUT_LEN];

/* Run `cairn fsck ARGS --meta ADDR`; returns its exit status (output in out). */
static int fsck(const char *args)
{
    return h_cairn(hr_c, out, sizeof(out), "fsck %s --meta %s", args, hr_c->meta_addr);
}

/* The id of chunk 0 of path. */
static uint64_t chunk0(const char *path)
{
    struct hfs_fileinfo *fi = hr_fileinfo(path);
    ck_assert_int_ge(fi->n, 1);
    return fi->chunk[0].id;
}

/* Remove chunk server i's file of chunk id (it must have one). */
static void remove_chunk_file(int i, uint64_t id)
{
    char f[600];
    int rc = h_chunk_file(hr_c, i, id, f, sizeof(f), NULL);
    ck_assert_msg(rc == 0, "chunk server %d holds no file of chunk %016" PRIx64 ": %s", i, id,
                  strerror(-rc));
    ck_assert_int_eq(unlink(f), 0);
}

START_TEST(fsck_finds_lost_chunks)
{
    hr_start("fsck", 2, META_OPTS, CS_OPTS, NULL, NULL);
    const char *mnt = hr_c->mnt[0];
    char d[400], u[400], v[400], w[400], x[400], e[400], lnk[400];
    snprintf(d, sizeof(d), "%s/d", mnt);
    snprintf(e, sizeof(e), "%s/d/e", mnt);
    snprintf(u, sizeof(u), "%s/d/u", mnt);
    snprintf(v, sizeof(v), "%s/d/e/v", mnt);
    snprintf(w, sizeof(w), "%s/w", mnt);
    snprintf(x, sizeof(x), "%s/x", mnt);
    snprintf(lnk, sizeof(lnk), "%s/d/x-link", mnt);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(mkdir(e, 0755), 0);
    hr_write_file(u, 1, 1 * MiB);
    hr_write_file(v, 2, 1 * MiB);
    hr_write_file(w, 3, 1 * MiB);
    hr_write_file(x, 4, 1000);
    ck_assert_int_eq(link(x, lnk), 0);
    const char *files[] = {u, v, w, x};
    hr_wait_chunks(files, 4, 2, 0, 0, 30, "2 valid copies of every file");

    /* clean: nothing to report, exit 0 (hard link and nested directories counted right) */
    int rc = fsck("");
    ck_assert_msg(rc == 0, "fsck of a clean cluster exited %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "clean") != NULL, "no 'clean' in:\n%s", out);
    char py[200];
    rc = h_cairn_py(hr_c, "print(d['clean'], d['problems_found'], d['inodes'] == 7)", out,
                    sizeof(out), "fsck --json --meta %s", hr_c->meta_addr);
    ck_assert_msg(rc == 0 && strcmp(out, "True 0 True") == 0, "fsck --json: %s", out);

    uint64_t cu = chunk0(u), cv = chunk0(v), cw = chunk0(w);
    /* server 0 goes down, and loses its files of u and v behind its back */
    int rc0 = h_cs_kill(hr_c, 0, SIGKILL);
    ck_assert_int_eq(rc0, 0);
    remove_chunk_file(0, cu);
    remove_chunk_file(0, cv);
    /* w is deleted while server 0 is down: its copy there is no file's any more */
    ck_assert_int_eq(unlink(w), 0);
    /* server 1 loses its file of v too, and notices at its restart */
    int before = h_cs_registrations(hr_c, 1);
    ck_assert_int_eq(h_cs_kill(hr_c, 1, SIGTERM), 0);
    remove_chunk_file(1, cv);
    ck_assert_int_eq(h_cs_restart(hr_c, 1), 0);
    ck_assert_int_eq(h_cs_wait_registered(hr_c, 1, before, 10000), 0);

    /* u (and x, whose copy on server 0 is down) has one copy left, v none: once the meta sees
     * server 0 down */
    snprintf(py, sizeof(py), "under-replicated: /d/u (inode");
    int found = 0;
    for (int i = 0; i < 40 && !found; i++) {
        rc = fsck("");
        found = rc == 1 && strstr(out, py) && strstr(out, "missing: /d/e/v (inode");
        if (!found) usleep(500 * 1000);
    }
    ck_assert_msg(found, "fsck did not report u under-replicated and v missing (exit %d):\n%s", rc,
                  out);
    char idtxt[40];
    snprintf(idtxt, sizeof(idtxt), "chunk %016" PRIx64, cu);
    ck_assert_msg(strstr(out, idtxt), "u's chunk %s not named:\n%s", idtxt, out);
    snprintf(idtxt, sizeof(idtxt), "chunk %016" PRIx64, cv);
    ck_assert_msg(strstr(out, idtxt), "v's chunk %s not named:\n%s", idtxt, out);
    /* the same in JSON (exit status 1: read the document from a file) */
    char prog[300], cmd[1200];
    h_prog("cairn", prog, sizeof(prog));
    snprintf(cmd, sizeof(cmd),
             "%s fsck --json --meta %s > %s/fsck.json; echo exit=$?; python3 -c \"import json; "
             "d=json.load(open('%s/fsck.json')); print(sorted((x['kind'], x['path']) for x in "
             "d['problems'] if x['kind'] in ('missing','under-replicated')), d['clean'])\"",
             prog, hr_c->meta_addr, hr_c->dir, hr_c->dir);
    rc = h_run(60, out, sizeof(out), "%s", cmd);
    ck_assert_msg(rc == 0 && strstr(out, "exit=1") &&
                      strstr(out, "[('missing', '/d/e/v'), ('under-replicated', '/d/u'), "
                                  "('under-replicated', '/x')] False"),
                  "fsck --json problems: %s", out);

    /* --repair queues u's repair, cannot repair v (kept), still exits 1 */
    rc = fsck("--repair");
    ck_assert_msg(rc == 1, "fsck --repair exited %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "under-replicated: /d/u (inode") && strstr(out, "repair queued"),
                  "no queued repair of u:\n%s", out);
    ck_assert_msg(strstr(out, "missing: /d/e/v (inode") &&
                      strstr(out, "cannot be repaired, the file is kept"),
                  "v not reported as kept:\n%s", out);
    struct stat st;
    ck_assert_int_eq(stat(v, &st), 0);
    ck_assert_int_eq(st.st_size, 1 * MiB);

    /* server 0 comes back: u is copied to it again; its copy of w is unreferenced */
    before = h_cs_registrations(hr_c, 0);
    ck_assert_int_eq(h_cs_restart(hr_c, 0), 0);
    ck_assert_int_eq(h_cs_wait_registered(hr_c, 0, before, 10000), 0);
    snprintf(idtxt, sizeof(idtxt), "unreferenced: chunk %016" PRIx64, cw);
    int healed = 0;
    for (int i = 0; i < 120 && !healed; i++) {
        rc = fsck("");
        healed = rc == 1 && !strstr(out, "under-replicated") && strstr(out, "missing: /d/e/v");
        if (!healed) usleep(500 * 1000);
    }
    ck_assert_msg(healed, "u not healed after --repair (exit %d):\n%s", rc, out);
    ck_assert_msg(strstr(out, idtxt), "w's copy on server 0 not reported (%s):\n%s", idtxt, out);
    h_cluster_stop(hr_c);
}
END_TEST

/* lmdb_patch.py on the stopped meta's store. */
static void patch(const char *args)
{
    int rc = h_run(60, out, sizeof(out), "python3 tests/integration/lmdb_patch.py %s/meta %s",
                   hr_c->dir, args);
    ck_assert_msg(rc == 0, "lmdb_patch.py %s: %s", args, out);
}

START_TEST(fsck_repairs_namespace_damage)
{
    hr_start("damage", 2, META_OPTS, CS_OPTS, NULL, NULL);
    char f[400], b[400], c[400];
    snprintf(f, sizeof(f), "%s/f", hr_c->mnt[0]);
    snprintf(b, sizeof(b), "%s/b", hr_c->mnt[0]);
    snprintf(c, sizeof(c), "%s/b/c", hr_c->mnt[0]);
    hr_write_file(f, 5, 1000);
    ck_assert_int_eq(mkdir(b, 0755), 0);
    ck_assert_int_eq(mkdir(c, 0755), 0);
    struct stat sf, sb;
    ck_assert_int_eq(stat(f, &sf), 0);
    ck_assert_int_eq(stat(b, &sb), 0);
    int rc = fsck("");
    ck_assert_msg(rc == 0, "fsck before the damage exited %d:\n%s", rc, out);

    ck_assert_int_eq(h_kill_wait(hr_c->meta_pid, SIGTERM, 10000), 0);
    char args[300];
    /* inode 8888 (0x22b8): a copy of f's record that no entry points at */
    snprintf(args, sizeof(args), "inode copy %016llx 00000000000022b8",
             (unsigned long long)sf.st_ino);
    patch(args);
    /* link counts: f 1 -> 5, b 3 -> 9 (the u32 at byte 21 of an inode record) */
    snprintf(args, sizeof(args), "inode set32 %016llx 21 5", (unsigned long long)sf.st_ino);
    patch(args);
    snprintf(args, sizeof(args), "inode set32 %016llx 21 9", (unsigned long long)sb.st_ino);
    patch(args);
    /* "ghost" in the root, pointing at inode 9999 (0x270f), which does not exist: the entry
     * (child, mode, readdir seq 0xffff0000) and its readdir record */
    patch("dirent put 000000000000000167686f7374 0f27000000000000a48100000000ffff00000000");
    patch("dirseq put 000000000000000100000000ffff0000 0f27000000000000a481000067686f7374");
    ck_assert_int_eq(h_meta_restart(hr_c), 0);

    char want[4][200];
    snprintf(want[0], sizeof(want[0]),
             "dangling: /ghost (in directory inode 1) points at inode 9999");
    snprintf(want[1], sizeof(want[1]), "nlink: /f (inode %llu): link count 5, should be 1",
             (unsigned long long)sf.st_ino);
    snprintf(want[2], sizeof(want[2]), "nlink: /b (inode %llu): link count 9, should be 3",
             (unsigned long long)sb.st_ino);
    snprintf(want[3], sizeof(want[3]),
             "orphan: inode 8888 (link count 1) is not open and no entry points at it");
    rc = fsck("");
    ck_assert_msg(rc == 1, "fsck of the damage exited %d:\n%s", rc, out);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(strstr(out, want[i]), "no '%s' in:\n%s", want[i], out);
    ck_assert_msg(strstr(out, "4 problems found"), "not exactly 4 problems:\n%s", out);

    rc = fsck("--repair");
    ck_assert_msg(rc == 1, "fsck --repair exited %d:\n%s", rc, out);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(strstr(out, want[i]), "no '%s' in:\n%s", want[i], out);
    ck_assert_msg(strstr(out, "; entry removed") &&
                      strstr(out, "4 problems found, 3 fixed, 1 left"),
                  "not the three repairs:\n%s", out);

    /* what was fixed stays fixed (records); the orphan is kept and still reported */
    rc = fsck("");
    ck_assert_msg(rc == 1 && strstr(out, want[3]) && strstr(out, "1 problem found"),
                  "fsck after --repair exited %d:\n%s", rc, out);
    h_cluster_stop(hr_c);
}
END_TEST

/* One MSG_FSCK request with payload p on a fresh connection: the reply's status, or the
 * transport error when the meta service dropped the connection. */
static int raw_fsck(const struct wbuf *p)
{
    struct rpc_opts o = {.connect_timeout_ms = 2000, .call_timeout_ms = 5000};
    struct rpc_conn *r = rpc_conn_new(hr_c->meta_addr, &o);
    ck_assert_ptr_nonnull(r);
    struct rpc_reply rep;
    int rc = rpc_call(r, MSG_FSCK, p->data, p->len, NULL, 0, &rep);
    if (rc == 0) rpc_reply_free(&rep);
    rpc_conn_free(r);
    return rc;
}

START_TEST(fsck_refuses_bad_requests)
{
    hr_start("badreq", 1, META_OPTS, CS_OPTS, NULL, NULL);
    struct wbuf b;
    wbuf_init(&b);
    wbuf_put_u8(&b, 9); /* no such operation */
    ck_assert_int_eq(raw_fsck(&b), -EINVAL);
    wbuf_reset(&b);
    wbuf_put_u8(&b, FSCK_OP_SCAN);
    wbuf_put_u8(&b, 7); /* no such phase */
    wbuf_put_u64(&b, 0);
    wbuf_put_str(&b, "", 0);
    wbuf_put_u32(&b, 10);
    wbuf_put_u8(&b, 0);
    ck_assert_int_eq(raw_fsck(&b), -EINVAL);
    wbuf_reset(&b);
    wbuf_put_u8(&b, FSCK_OP_SCAN);
    wbuf_put_u8(&b, FSCK_PH_INODES);
    wbuf_put_u32(&b, 0); /* cut short */
    int rc = raw_fsck(&b);
    ck_assert_msg(rc != 0 && rc != -EINVAL, "a truncated scan got %d", rc);
    wbuf_reset(&b);
    wbuf_put_u8(&b, FSCK_OP_LINKS);
    wbuf_put_u8(&b, 0);
    wbuf_put_u32(&b, 100000); /* more inodes than allowed, and than sent */
    wbuf_put_u64(&b, 1);
    rc = raw_fsck(&b);
    ck_assert_msg(rc != 0, "an oversized links request got %d", rc);
    wbuf_reset(&b);
    wbuf_put_u8(&b, FSCK_OP_LINKS);
    wbuf_put_u8(&b, FSCK_F_PATHS);
    wbuf_put_u32(&b, 2);
    wbuf_put_u64(&b, 1);
    wbuf_put_u64(&b, 424242); /* an inode that does not exist: no path, no harm */
    ck_assert_int_eq(raw_fsck(&b), 0);
    wbuf_free(&b);
    /* still serving */
    rc = fsck("");
    ck_assert_msg(rc == 0, "fsck after bad requests exited %d:\n%s", rc, out);
    ck_assert(h_alive(hr_c->meta_pid));
    h_cluster_stop(hr_c);
}
END_TEST

START_TEST(drain_waits_until_empty)
{
    hr_start("drain", 3, META_OPTS, CS_OPTS, NULL, NULL);
    char f[4][400];
    const char *files[4];
    for (int i = 0; i < 4; i++) {
        snprintf(f[i], sizeof(f[i]), "%s/f%d", hr_c->mnt[0], i);
        hr_write_file(f[i], 10 + (uint64_t)i, 1 * MiB);
        files[i] = f[i];
    }
    hr_wait_chunks(files, 4, 2, 0, 0, 30, "2 valid copies of every file");
    uint64_t id = h_cs_id(hr_c, 0);
    const struct hfs_server *sv = hfs_server(hr_health(), id);
    ck_assert_ptr_nonnull(sv);
    ck_assert_uint_gt(sv->chunks, 0);
    int rc = h_cairn(hr_c, out, sizeof(out), "cs drain %016" PRIx64 " --wait --meta %s", id,
                     hr_c->meta_addr);
    ck_assert_msg(rc == 0 && strstr(out, "drained"), "cs drain --wait exited %d:\n%s", rc, out);
    /* it returned only once the server held nothing, and nothing was lost on the way */
    sv = hfs_server(hr_health(), id);
    ck_assert_ptr_nonnull(sv);
    ck_assert_uint_eq(sv->chunks, 0);
    hr_wait_chunks(files, 4, 2, id, 0, 10, "2 valid copies, none on the drained server");
    rc = h_cairn(hr_c, out, sizeof(out), "cs undrain %016" PRIx64 " --wait --meta %s", id,
                 hr_c->meta_addr);
    ck_assert_int_eq(rc, 2); /* --wait is for drain only */
    h_cluster_stop(hr_c);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {{"lost", fsck_finds_lost_chunks},
                                   {"damage", fsck_repairs_namespace_damage},
                                   {"badreq", fsck_refuses_bad_requests},
                                   {"drain", drain_waits_until_empty}};
    return hr_main("fsck", "fsck", tests, sizeof(tests) / sizeof(tests[0]), 240);
}
