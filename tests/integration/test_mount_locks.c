/* test_mount_locks.c - locks across clients (issue #12): real mounts of one real cluster, the
 * meta leader arbitrating every flock and fcntl lock.
 *
 * - two_mounts (one meta replica, session_timeout=4, three mounts): flock and fcntl exclusion
 *   both ways between two mounts; F_GETLK through the other mount reports the lock with l_pid 0
 *   (a pid of another client means nothing here) and through the holder's mount with the
 *   holder's pid; a blocked F_SETLKW waiter is woken when the holder releases; a waiter
 *   interrupted by a signal gets EINTR and holds nothing afterwards; OFD locks exclude other
 *   open files of the same process and go with their open file; a POSIX lock goes when its
 *   process closes any descriptor of the file; locks (fcntl and flock) go when the holding
 *   process is killed with SIGKILL; and when the holder's mount stops (SIGSTOP past the
 *   session timeout) its session expires and the other mount gets the lock.
 * - sqlite_two_mounts: sqlite3 (python's module) writing one database from both mounts at
 *   once, each writer logging the ids it committed: in rollback-journal mode (the default
 *   locking), then in WAL mode with locking_mode=EXCLUSIVE. WAL's shared memory (the -shm
 *   file, mmap'ed) cannot be shared by two clients of a network file system, which is why
 *   sqlite documents EXCLUSIVE locking mode (the WAL index in heap memory, the database locked
 *   for the whole connection) as the way to use WAL there; the writers then take turns, a
 *   connection per batch. Afterwards PRAGMA integrity_check says ok, every logged id is in
 *   the table and the counter every transaction incremented equals the number of rows (no
 *   lost update).
 * - failover (three meta replicas): a lock held through one mount stays held when the leader
 *   is killed: after the new leader's grace period the other mount still cannot take it, and
 *   gets it once the holder releases it.
 *
 * Lock waits are bounded; every process is killed by PID. Mounts FUSE (named test_mount_*, so
 * the sanitizer run leaves it out). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_fs.h"
#include "harness_raft.h"

#define META_OPTS "election_timeout_ms=1000 heartbeat_ms=100 cs_timeout=3"
#define SESSION_TIMEOUT_S 4

/* ---- a locker: a child process with descriptors of one file, locking on command ---------- */

struct lreq {
    char op;   /* see locker_main */
    int fd2;   /* use the second descriptor */
    int type;  /* F_RDLCK, F_WRLCK, F_UNLCK; flock: LOCK_* */
    int alarm; /* seconds before SIGALRM interrupts a blocking wait (0: none) */
    int64_t start, len;
};

struct lrep {
    int err; /* 0 or errno */
    int type;
    int64_t start, len;
    int pid;
};

struct locker {
    pid_t pid;
    int wfd, rfd;
};

static void on_alarm(int sig)
{
    (void)sig;
}

static void locker_main(const char *path, int rfd, int wfd)
{
    int fd = open(path, O_RDWR), fd2 = open(path, O_RDWR);
    if (fd < 0 || fd2 < 0) _exit(2);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: a blocked fcntl returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    for (;;) {
        struct lreq q;
        if (read(rfd, &q, sizeof(q)) != (ssize_t)sizeof(q)) _exit(0);
        struct lrep r = {0};
        struct flock fl = {.l_type = (short)q.type,
                           .l_whence = SEEK_SET,
                           .l_start = (off_t)q.start,
                           .l_len = (off_t)q.len};
        int d = q.fd2 ? fd2 : fd, rc = 0;
        if (q.alarm) alarm((unsigned)q.alarm);
        switch (q.op) {
        case 'p': /* fcntl F_SETLK */
            rc = fcntl(d, F_SETLK, &fl);
            break;
        case 'w': /* F_SETLKW */
            rc = fcntl(d, F_SETLKW, &fl);
            break;
        case 'o': /* F_OFD_SETLK */
            rc = fcntl(d, F_OFD_SETLK, &fl);
            break;
        case 'g': /* F_GETLK */
            rc = fcntl(d, F_GETLK, &fl);
            break;
        case 'G': /* F_OFD_GETLK */
            rc = fcntl(d, F_OFD_GETLK, &fl);
            break;
        case 'f': /* flock */
            rc = flock(d, q.type);
            break;
        case 'c': /* close */
            rc = close(d);
            if (q.fd2)
                fd2 = -1;
            else
                fd = -1;
            break;
        case 'r': /* open again */
            rc = open(path, O_RDWR);
            if (rc >= 0) {
                if (q.fd2)
                    fd2 = rc;
                else
                    fd = rc;
                rc = 0;
            }
            break;
        default:
            rc = -1;
            errno = EINVAL;
        }
        r.err = rc < 0 ? errno : 0;
        alarm(0);
        r.type = fl.l_type;
        r.start = fl.l_start;
        r.len = fl.l_len;
        r.pid = fl.l_pid;
        if (write(wfd, &r, sizeof(r)) != (ssize_t)sizeof(r)) _exit(3);
    }
}

static void locker_start(struct locker *l, const char *path)
{
    int down[2], up[2];
    ck_assert_int_eq(pipe(down), 0);
    ck_assert_int_eq(pipe(up), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        locker_main(path, down[0], up[1]);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    l->pid = pid;
    l->wfd = down[1];
    l->rfd = up[0];
}

static void locker_send(struct locker *l, char op, int fd2, int type, int64_t start, int64_t len,
                        int alarm_s)
{
    struct lreq q = {
        .op = op, .fd2 = fd2, .type = type, .alarm = alarm_s, .start = start, .len = len};
    ck_assert_int_eq(write(l->wfd, &q, sizeof(q)), (ssize_t)sizeof(q));
}

/* The answer to the command sent: 0, or -ETIMEDOUT when none came within timeout_ms. */
static int locker_recv(struct locker *l, int timeout_ms, struct lrep *r)
{
    struct pollfd p = {.fd = l->rfd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0) return -ETIMEDOUT;
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(read(l->rfd, r, sizeof(*r)), (ssize_t)sizeof(*r));
    return 0;
}

/* Run one command (at most 20 s: a non-blocking lock may wait out a grace period); errno. */
static int ldo(struct locker *l, char op, int fd2, int type, int64_t start, int64_t len)
{
    struct lrep r;
    locker_send(l, op, fd2, type, start, len, 0);
    int rc = locker_recv(l, 20000, &r);
    ck_assert_msg(rc == 0, "locker %d: no answer to '%c' within 20 s", (int)l->pid, op);
    return r.err;
}

/* F_GETLK (or F_OFD_GETLK) of a write lock over everything. */
static struct lrep lgetlk(struct locker *l, char op)
{
    struct lrep r;
    locker_send(l, op, 0, F_WRLCK, 0, 0, 0);
    ck_assert_int_eq(locker_recv(l, 20000, &r), 0);
    ck_assert_msg(r.err == 0, "F_GETLK: %s", strerror(r.err));
    return r;
}

/* Ask every 100 ms until the command succeeds, at most timeout_ms; the time it took or -1. */
static int luntil(struct locker *l, char op, int type, int timeout_ms)
{
    uint64_t t0 = hfs_now_ms();
    for (;;) {
        int e = ldo(l, op, 0, type, 0, 0);
        if (e == 0) return (int)(hfs_now_ms() - t0);
        ck_assert_msg(e == EAGAIN || e == EWOULDBLOCK || e == EACCES, "'%c': %s", op, strerror(e));
        if (hfs_now_ms() - t0 > (uint64_t)timeout_ms) return -1;
        hfs_sleep_ms(100);
    }
}

static void locker_kill(struct locker *l, int sig)
{
    if (l->pid <= 0) return;
    kill(l->pid, sig);
    close(l->wfd);
    close(l->rfd);
    int st;
    for (int i = 0; i < 200 && waitpid(l->pid, &st, WNOHANG) == 0; i++)
        hfs_sleep_ms(50);
    if (h_alive(l->pid)) {
        kill(l->pid, SIGKILL);
        waitpid(l->pid, &st, 0);
    }
    l->pid = 0;
}

static void make_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0666);
    ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    ck_assert_int_eq(close(fd), 0);
}

#define EWB EWOULDBLOCK

/* A group of one or three replicas with two chunk servers and nmounts mounts. */
static void start_group(struct hraft_group *g, const char *tag, int n, const char *opts,
                        int nmounts)
{
    char why[4096];
    int rc = hraft_init(g, hraft_root, tag, n, opts, 0, why, sizeof(why));
    ck_assert_msg(rc == 0, "group: %s", why);
    ck_assert_int_eq(hraft_start_all(g), 0);
    int lead = hraft_wait_leader(g, 0, 15000);
    ck_assert_msg(lead >= 0, "no leader within 15 s (logs in %s)", g->c.dir);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(h_cs_start(&g->c, k), 0);
        rc = hraft_cs_wait_registered(g, k, 0, 15000);
        ck_assert_msg(rc == 0, "chunk server %d did not register (logs in %s)", k, g->c.dir);
    }
    for (int k = 0; k < nmounts; k++) {
        rc = h_mount(&g->c);
        ck_assert_msg(rc == k, "mount %d: %s (logs in %s)", k, strerror(-rc), g->c.dir);
    }
}

START_TEST(two_mounts)
{
    struct hraft_group *g = hraft_g;
    start_group(g, "lk", 1, META_OPTS " session_timeout=4", 3);
    char p0[400], p1[400], p2[400];
    snprintf(p0, sizeof(p0), "%s/f", g->c.mnt[0]);
    snprintf(p1, sizeof(p1), "%s/f", g->c.mnt[1]);
    snprintf(p2, sizeof(p2), "%s/f", g->c.mnt[2]);
    make_file(p0);
    struct locker a, b, c;
    locker_start(&a, p0);
    locker_start(&b, p1);

    /* flock, both ways */
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), EWB);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_SH | LOCK_NB, 0, 0), EWB);
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_UN, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_SH | LOCK_NB, 0, 0), EWB);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_SH | LOCK_NB, 0, 0), 0);   /* downgrade */
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_SH | LOCK_NB, 0, 0), 0);   /* readers share */
    ck_assert_int_eq(ldo(&a, 'f', 1, LOCK_EX | LOCK_NB, 0, 0), EWB); /* its other open file */
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_UN, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_UN, 0, 0), 0);
    /* flock and fcntl locks do not interact (as on Linux local file systems) */
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'f', 0, LOCK_UN, 0, 0), 0);

    /* fcntl byte ranges, both ways */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 0, 100), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 50, 10), EAGAIN);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_RDLCK, 99, 1), EAGAIN);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 100, 10), 0); /* next to it */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 105, 1), EAGAIN);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_RDLCK, 0, 10), 0);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_RDLCK, 0, 10), 0); /* readers share */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 5, 1), EAGAIN);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 5, 1), 0); /* upgrade once alone */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_UNLCK, 0, 0), 0);

    /* F_GETLK: through the other mount l_pid is 0, through the holder's mount its pid */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 10, 10), 0);
    struct lrep r = lgetlk(&b, 'g');
    ck_assert_int_eq(r.type, F_WRLCK);
    ck_assert_int_eq(r.start, 10);
    ck_assert_int_eq(r.len, 10);
    ck_assert_int_eq(r.pid, 0);
    locker_start(&c, p0);
    r = lgetlk(&c, 'g');
    ck_assert_int_eq(r.type, F_WRLCK);
    ck_assert_int_eq(r.pid, a.pid);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_UNLCK, 0, 0), 0);
    r = lgetlk(&b, 'g');
    ck_assert_int_eq(r.type, F_UNLCK);

    /* a blocked waiter is woken when the holder releases */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 0, 1), 0);
    locker_send(&b, 'w', 0, F_WRLCK, 0, 1, 0);
    ck_assert_int_eq(locker_recv(&b, 700, &r), -ETIMEDOUT); /* still waiting */
    uint64_t t0 = hfs_now_ms();
    ck_assert_int_eq(ldo(&a, 'p', 0, F_UNLCK, 0, 0), 0);
    ck_assert_msg(locker_recv(&b, 5000, &r) == 0, "the waiter was not woken within 5 s");
    ck_assert_int_eq(r.err, 0);
    printf("two_mounts: a waiter got the lock %d ms after its release\n", (int)(hfs_now_ms() - t0));
    ck_assert_int_lt(hfs_now_ms() - t0, 3000);

    /* an interrupted waiter gets EINTR and holds nothing afterwards */
    locker_send(&c, 'w', 0, F_WRLCK, 0, 1, 1);
    ck_assert_msg(locker_recv(&c, 6000, &r) == 0, "the interrupted waiter did not return");
    ck_assert_int_eq(r.err, EINTR);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_UNLCK, 0, 0), 0);
    hfs_sleep_ms(300);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_UNLCK, 0, 0), 0);

    /* OFD locks belong to the open file: two of one process exclude each other */
    ck_assert_int_eq(ldo(&a, 'o', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'o', 1, F_WRLCK, 0, 0), EAGAIN);
    ck_assert_int_eq(ldo(&b, 'o', 0, F_RDLCK, 0, 0), EAGAIN);
    r = lgetlk(&b, 'G');
    ck_assert_int_eq(r.type, F_WRLCK);
    ck_assert_int_eq(ldo(&a, 'c', 0, 0, 0, 0), 0); /* its open file goes, and the lock */
    ck_assert_msg(luntil(&b, 'o', F_RDLCK, 3000) >= 0, "the OFD lock outlived its open file");
    ck_assert_int_eq(ldo(&a, 'o', 1, F_WRLCK, 0, 0), EAGAIN); /* b reads now */
    ck_assert_int_eq(ldo(&b, 'o', 0, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'o', 1, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'o', 1, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'r', 0, 0, 0, 0), 0);

    /* POSIX: closing any descriptor of the file releases the process's locks */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), EAGAIN);
    ck_assert_int_eq(ldo(&a, 'c', 1, 0, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'r', 1, 0, 0, 0), 0);

    /* kill -9 of the holder: its fcntl and flock locks go with it */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'f', 1, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), EAGAIN);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), EWB);
    locker_kill(&a, SIGKILL);
    ck_assert_msg(luntil(&b, 'p', F_WRLCK, 3000) >= 0, "the fcntl lock outlived its process");
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_UN, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_UNLCK, 0, 0), 0);

    /* the holder's mount stops (SIGSTOP) past the session timeout: its session expires and
     * its locks go */
    struct locker e;
    locker_start(&e, p2);
    ck_assert_int_eq(ldo(&e, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&e, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), EAGAIN);
    pid_t mp = g->c.mount_pid[2];
    ck_assert_int_eq(kill(mp, SIGSTOP), 0);
    t0 = hfs_now_ms();
    int took = luntil(&b, 'p', F_WRLCK, 8 * SESSION_TIMEOUT_S * 1000);
    int took_flock = ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0);
    kill(mp, SIGCONT);
    ck_assert_msg(took >= 0, "the stopped mount's lock was not released within %d s",
                  8 * SESSION_TIMEOUT_S);
    printf("two_mounts: the stopped mount's lock went after %d ms (session_timeout %d s)\n", took,
           SESSION_TIMEOUT_S);
    /* by the expiry (the last keepalive came at most a third of the timeout before the stop),
     * not before */
    ck_assert_int_ge(took, (SESSION_TIMEOUT_S - 2) * 1000);
    ck_assert_int_eq(took_flock, 0);
    locker_kill(&e, SIGKILL);
    locker_kill(&b, SIGKILL);
    locker_kill(&c, SIGKILL);
    hraft_stop(g);
}
END_TEST

/* ---- sqlite ------------------------------------------------------------------------------- */

static const char WRITER_PY[] =
    "import random, sqlite3, sys, time\n"
    "db, who, log, secs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), "
    "sys.argv[5]\n"
    "end = time.time() + secs\n"
    "n = 0\n"
    "busy = 0\n"
    "errs = {}\n"
    "t_start = time.time()\n"
    "worst = 0.0\n"
    "logf = open(log, 'a')\n"
    "def connect():\n"
    "    # opening in WAL's exclusive mode takes the database's lock: two writers that both\n"
    "    # hold SHARED wait for each other until the busy timeout, so wait briefly here and\n"
    "    # ask again after a random pause (bounded), then wait as long as needed\n"
    "    while True:\n"
    "        con = sqlite3.connect(db, timeout=0.2, isolation_level=None)\n"
    "        try:\n"
    "            if mode == 'wal':\n"
    "                con.execute('PRAGMA locking_mode=EXCLUSIVE')\n"
    "                jm = con.execute('PRAGMA journal_mode=WAL').fetchone()[0]\n"
    "                assert jm == 'wal', jm\n"
    "            con.execute('PRAGMA busy_timeout=60000')\n"
    "            return con\n"
    "        except sqlite3.OperationalError:\n"
    "            con.close()\n"
    "            if time.time() > end + 60: raise\n"
    "            time.sleep(random.uniform(0.02, 0.1))\n"
    "con = connect()\n"
    "while time.time() < end:\n"
    "    if mode == 'wal' and n % 20 == 0 and n:\n"
    "        con.close()  # lets the other writer in\n"
    "        time.sleep(0.05)\n"
    "        con = connect()\n"
    "    rid = who * 1000000 + n\n"
    "    t1 = time.time()\n"
    "    try:\n"
    "        con.execute('BEGIN IMMEDIATE')\n"
    "        con.execute('INSERT INTO t(id, who, pad) VALUES (?, ?, randomblob(300))', (rid, "
    "who))\n"
    "        con.execute('UPDATE c SET n = n + 1')\n"
    "        con.execute('COMMIT')\n"
    "    except sqlite3.OperationalError as e:\n"
    "        busy += 1\n"
    "        errs[str(e)] = errs.get(str(e), 0) + 1\n"
    "        try: con.execute('ROLLBACK')\n"
    "        except sqlite3.OperationalError: pass\n"
    "        continue\n"
    "    worst = max(worst, time.time() - t1)\n"
    "    time.sleep(0.005)  # a moment for the other writer's retry\n"
    "    logf.write('%d\\n' % rid)\n"
    "    logf.flush()\n"
    "    n += 1\n"
    "con.close()\n"
    "print('writer', who, 'committed', n, 'busy', busy, errs, 'slowest commit %.2f s' % worst,\n"
    "      'ran %.1f s' % (time.time() - t_start))\n"
    "sys.exit(1 if errs else 0)  # an error an application would see\n";

static const char CHECK_PY[] =
    "import sqlite3, sys\n"
    "db, mode, logs = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
    "con = sqlite3.connect(db, isolation_level=None)\n"
    "if mode == 'wal':\n"
    "    con.execute('PRAGMA locking_mode=EXCLUSIVE')\n"
    "ic = con.execute('PRAGMA integrity_check').fetchall()\n"
    "ids = set(r[0] for r in con.execute('SELECT id FROM t'))\n"
    "cnt = con.execute('SELECT n FROM c').fetchone()[0]\n"
    "logged = set()\n"
    "per = []\n"
    "for p in logs:\n"
    "    s = set(int(x) for x in open(p).read().split())\n"
    "    per.append(len(s))\n"
    "    logged |= s\n"
    "missing = logged - ids\n"
    "print('integrity', ic, 'rows', len(ids), 'counter', cnt, 'logged', per, 'missing',\n"
    "      len(missing), sorted(missing)[:5])\n"
    "import os\n"
    "shm = os.path.exists(db + '-shm')\n"
    "if mode == 'wal':\n"
    "    jm = con.execute('PRAGMA journal_mode').fetchone()[0]\n"
    "    print('journal_mode', jm, 'shm file', shm)\n"
    "    if jm != 'wal' or shm: sys.exit(1)\n"
    "ok = ic == [('ok',)] and not missing and cnt == len(ids) and min(per) >= 5\n"
    "sys.exit(0 if ok else 1)\n";

static void write_text(const char *path, const char *text)
{
    ck_assert_int_eq(hfs_write_file(path, text, strlen(text), 0644), 0);
}

/* Both writers for secs seconds on the database through mounts 0 and 1, then the check. */
static void sqlite_round(struct hraft_group *g, const char *mode, int secs)
{
    const char *d = g->c.dir;
    char out[4000];
    int rc = h_run(60, out, sizeof(out),
                   "cd '%s/%s' && rm -f %s.db* && python3 -c \"import sqlite3; "
                   "c = sqlite3.connect('%s.db'); "
                   "c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, who INT, pad BLOB)'); "
                   "c.execute('CREATE TABLE c(n INT)'); c.execute('INSERT INTO c VALUES (0)'); "
                   "c.commit()\" && rm -f '%s/%s-0.log' '%s/%s-1.log'",
                   g->c.mnt[0], "sq", mode, mode, d, mode, d, mode);
    ck_assert_msg(rc == 0, "%s: create: %s", mode, out);
    rc = h_run(secs + 120, out, sizeof(out),
               "python3 '%s/writer.py' '%s/sq/%s.db' 1 '%s/%s-0.log' %d %s > '%s/%s-w0.out' 2>&1 & "
               "p1=$!; "
               "python3 '%s/writer.py' '%s/sq/%s.db' 2 '%s/%s-1.log' %d %s > '%s/%s-w1.out' 2>&1 & "
               "p2=$!; wait $p1; a=$?; wait $p2; b=$?; cat '%s/%s-w0.out' '%s/%s-w1.out'; "
               "[ $a = 0 ] && [ $b = 0 ]",
               d, g->c.mnt[0], mode, d, mode, secs, mode, d, mode, d, g->c.mnt[1], mode, d, mode,
               secs, mode, d, mode, d, mode, d, mode);
    printf("sqlite %s writers:\n%s\n", mode, out);
    ck_assert_msg(rc == 0, "%s: a writer failed:\n%s", mode, out);
    rc = h_run(120, out, sizeof(out),
               "python3 '%s/check.py' '%s/sq/%s.db' %s '%s/%s-0.log' "
               "'%s/%s-1.log'",
               d, g->c.mnt[1], mode, mode, d, mode, d, mode);
    printf("sqlite %s check: %s\n", mode, out);
    ck_assert_msg(rc == 0, "%s: check failed: %s", mode, out);
}

START_TEST(sqlite_two_mounts)
{
    struct hraft_group *g = hraft_g;
    start_group(g, "sq", 1, META_OPTS, 2);
    char p[600];
    snprintf(p, sizeof(p), "%s/writer.py", g->c.dir);
    write_text(p, WRITER_PY);
    snprintf(p, sizeof(p), "%s/check.py", g->c.dir);
    write_text(p, CHECK_PY);
    snprintf(p, sizeof(p), "%s/sq", g->c.mnt[0]);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    sqlite_round(g, "rollback", 30); /* a minute of writers in all */
    sqlite_round(g, "wal", 30);
    hraft_stop(g);
}
END_TEST

/* ---- failover ----------------------------------------------------------------------------- */

START_TEST(failover)
{
    struct hraft_group *g = hraft_g;
    start_group(g, "fo", 3, META_OPTS, 2);
    char p0[400], p1[400], st[1500];
    snprintf(p0, sizeof(p0), "%s/f", g->c.mnt[0]);
    snprintf(p1, sizeof(p1), "%s/f", g->c.mnt[1]);
    make_file(p0);
    struct locker a, b;
    locker_start(&a, p0);
    locker_start(&b, p1);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'f', 1, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), EAGAIN);
    hfs_sleep_ms(1000); /* the holder's mount has polled the leader's epoch */

    int lead = hraft_wait_leader(g, 0, 5000);
    ck_assert_int_ge(lead, 0);
    ck_assert_int_eq(hraft_kill(g, lead, SIGKILL), 0);
    int killed = lead;
    lead = hraft_wait_leader(g, 1u << killed, 15000);
    hraft_status_str(g, st, sizeof(st));
    ck_assert_msg(lead >= 0, "no new leader: %s", st);
    /* through the new leader's grace period and past it, the lock stays its owner's */
    uint64_t t0 = hfs_now_ms();
    int tries = 0;
    while (hfs_now_ms() - t0 < LOCK_GRACE_MS + 3000) {
        int e1 = ldo(&b, 'p', 0, F_WRLCK, 0, 0);
        int e2 = ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0);
        ck_assert_msg(e1 == EAGAIN, "after the failover the other mount took the fcntl lock (%s)",
                      strerror(e1));
        ck_assert_msg(e2 == EWB, "after the failover the other mount took the flock (%s)",
                      strerror(e2));
        tries++;
        hfs_sleep_ms(300);
    }
    struct lrep r = lgetlk(&b, 'g');
    ck_assert_int_eq(r.type, F_WRLCK);
    ck_assert_int_eq(r.pid, 0);
    printf("failover: %d attempts of the other mount refused after the new leader\n", tries);
    /* and released normally */
    ck_assert_int_eq(ldo(&a, 'p', 0, F_UNLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'f', 1, LOCK_UN, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'p', 0, F_WRLCK, 0, 0), 0);
    ck_assert_int_eq(ldo(&b, 'f', 0, LOCK_EX | LOCK_NB, 0, 0), 0);
    ck_assert_int_eq(ldo(&a, 'p', 0, F_RDLCK, 0, 0), EAGAIN);
    locker_kill(&a, SIGKILL);
    locker_kill(&b, SIGKILL);
    hraft_stop(g);
}
END_TEST

int main(void)
{
    const struct h_test tests[] = {
        {"two_mounts", two_mounts},
        {"sqlite_two_mounts", sqlite_two_mounts},
        {"failover", failover},
    };
    return hraft_main("locks", "mount_locks", tests, sizeof(tests) / sizeof(tests[0]), 180, NULL);
}
