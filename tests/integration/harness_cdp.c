/* harness_cdp.c - chromium headless driven over --remote-debugging-pipe (see harness_cdp.h):
 * starting and ending the browser, sending DevTools commands and waiting for their replies
 * (events are skipped), and reading a string value out of a Runtime.evaluate reply. */
#include "harness_cdp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CDP_MSG_MAX (8u << 20) /* a reply larger than this is refused */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Append s to out as the inside of a JSON string. Returns 0 or -E2BIG. */
static int json_esc(char *out, size_t len, size_t *pos, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        int n;
        if (*p == '"' || *p == '\\')
            n = snprintf(tmp, sizeof(tmp), "\\%c", *p);
        else if (*p < 0x20)
            n = snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
        else
            n = snprintf(tmp, sizeof(tmp), "%c", *p);
        if (*pos + (size_t)n >= len) return -E2BIG;
        memcpy(out + *pos, tmp, (size_t)n);
        *pos += (size_t)n;
    }
    out[*pos] = '\0';
    return 0;
}

/* Copy the JSON string starting at s (just after its opening quote) into out, unescaped. */
static int json_unesc(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = s; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 1; i <= 4; i++) {
                    char h = p[i];
                    if (!h) return -EPROTO;
                    v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                p += 4;
                c = v < 0x80 ? (char)v : '?';
                break;
            }
            case '\0':
                return -EPROTO;
            default:
                c = *p; /* \" \\ \/ */
            }
        }
        if (o + 1 < len) out[o++] = c;
    }
    if (len) out[o < len ? o : len - 1] = '\0';
    return 0;
}

static int send_cmd(struct h_cdp *b, const char *method, const char *params, int in_session)
{
    char msg[65536];
    int id = ++b->next_id;
    int n;
    if (in_session)
        n = snprintf(msg, sizeof(msg),
                     "{\"id\":%d,\"method\":\"%s\",\"params\":%s,\"sessionId\":\"%s\"}", id, method,
                     params, b->session);
    else
        n = snprintf(msg, sizeof(msg), "{\"id\":%d,\"method\":\"%s\",\"params\":%s}", id, method,
                     params);
    if (n < 0 || (size_t)n + 1 > sizeof(msg)) return -E2BIG;
    size_t total = (size_t)n + 1, off = 0; /* the NUL ends the message */
    while (off < total) {
        ssize_t w = write(b->to, msg + off, total - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        off += (size_t)w;
    }
    return id;
}

/* Wait for the reply to command id; *reply is a malloc'd NUL-terminated copy. */
static int wait_reply(struct h_cdp *b, int id, char **reply, int timeout_ms)
{
    char want[32];
    int wl = snprintf(want, sizeof(want), "{\"id\":%d", id);
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *nul;
        while (b->len && (nul = memchr(b->buf, '\0', b->len)) != NULL) {
            size_t ml = (size_t)(nul - b->buf);
            int match = ml > (size_t)wl && memcmp(b->buf, want, (size_t)wl) == 0 &&
                        (b->buf[wl] == ',' || b->buf[wl] == '}');
            if (match) {
                *reply = malloc(ml + 1);
                if (!*reply) return -ENOMEM;
                memcpy(*reply, b->buf, ml + 1);
            }
            memmove(b->buf, nul + 1, b->len - ml - 1);
            b->len -= ml + 1;
            if (match) return 0;
        }
        uint64_t now = mono_ms();
        if (now >= end) return -ETIMEDOUT;
        struct pollfd pf = {.fd = b->from, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(end - now));
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return -errno;
        if (pr == 0) return -ETIMEDOUT;
        if (b->cap - b->len < 65536) {
            if (b->cap >= CDP_MSG_MAX) return -EMSGSIZE;
            size_t cap = b->cap ? b->cap * 2 : 131072;
            char *nb = realloc(b->buf, cap);
            if (!nb) return -ENOMEM;
            b->buf = nb;
            b->cap = cap;
        }
        ssize_t r = read(b->from, b->buf + b->len, b->cap - b->len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EPIPE; /* the browser went away */
        b->len += (size_t)r;
    }
}

static int call(struct h_cdp *b, const char *method, const char *params, int in_session,
                char **reply, int timeout_ms)
{
    int id = send_cmd(b, method, params, in_session);
    if (id < 0) return id;
    int rc = wait_reply(b, id, reply, timeout_ms);
    if (rc) return rc;
    if (strstr(*reply, "\"error\":{") && !strstr(*reply, "\"result\":")) {
        fprintf(stderr, "cdp: %s: %.300s\n", method, *reply);
        free(*reply);
        *reply = NULL;
        return -EPROTO;
    }
    return 0;
}

/* The string value of "key":"..." in msg, into out. */
static int json_field(const char *msg, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(msg, pat);
    if (!p) return -EPROTO;
    return json_unesc(p + strlen(pat), out, len);
}

static pid_t spawn_browser(const char *dir, int cmd_r, int rep_w)
{
    char profile[512], log[512], udd[560];
    snprintf(profile, sizeof(profile), "%s/chromium-profile", dir);
    snprintf(log, sizeof(log), "%s/chromium.log", dir);
    snprintf(udd, sizeof(udd), "--user-data-dir=%s", profile);
    mkdir(profile, 0700);
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) return -errno;
    char *argv[] = {H_CDP_CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--remote-debugging-pipe",
                    udd,
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--no-proxy-server",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--disable-breakpad",
                    "--mute-audio",
                    "--window-size=1280,1000",
                    "about:blank",
                    NULL};
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        return -errno;
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* fds 3 and 4 are the protocol's; move ours out of the way first */
        int r = fcntl(cmd_r, F_DUPFD_CLOEXEC, 10), w = fcntl(rep_w, F_DUPFD_CLOEXEC, 10);
        int nul = open("/dev/null", O_RDONLY);
        if (r < 0 || w < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 ||
            dup2(logfd, 2) < 0 || dup2(r, 3) < 0 || dup2(w, 4) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a kill of the group */
    close(logfd);
    return pid;
}

int h_cdp_open(struct h_cdp *b, const char *dir, const char *url, int timeout_ms)
{
    memset(b, 0, sizeof(*b));
    b->to = b->from = -1;
    if (access(H_CDP_CHROMIUM, X_OK) != 0) return -ENOENT;
    int cmd[2], rep[2];
    if (pipe2(cmd, O_CLOEXEC) < 0) return -errno;
    if (pipe2(rep, O_CLOEXEC) < 0) {
        int e = -errno;
        close(cmd[0]);
        close(cmd[1]);
        return e;
    }
    pid_t pid = spawn_browser(dir, cmd[0], rep[1]);
    close(cmd[0]);
    close(rep[1]);
    if (pid < 0) {
        close(cmd[1]);
        close(rep[0]);
        return (int)pid;
    }
    signal(SIGPIPE, SIG_IGN); /* a browser gone mid-write is an error, not our death */
    b->pid = pid;
    b->to = cmd[1];
    b->from = rep[0];

    char params[2048], target[128], *reply = NULL;
    size_t pos = 0;
    strcpy(params, "{\"url\":\"");
    pos = strlen(params);
    int rc = json_esc(params, sizeof(params) - 4, &pos, url);
    if (!rc) {
        strcat(params, "\"}");
        rc = call(b, "Target.createTarget", params, 0, &reply, timeout_ms);
    }
    if (!rc) rc = json_field(reply, "targetId", target, sizeof(target));
    free(reply);
    reply = NULL;
    if (!rc) {
        snprintf(params, sizeof(params), "{\"targetId\":\"%s\",\"flatten\":true}", target);
        rc = call(b, "Target.attachToTarget", params, 0, &reply, timeout_ms);
    }
    if (!rc) rc = json_field(reply, "sessionId", b->session, sizeof(b->session));
    free(reply);
    if (rc) h_cdp_close(b);
    return rc;
}

int h_cdp_eval(struct h_cdp *b, const char *expr, char *out, size_t len, int timeout_ms)
{
    if (len) out[0] = '\0';
    if (b->pid <= 0) return -ESRCH;
    size_t cap = strlen(expr) * 6 + 128;
    char *params = malloc(cap);
    if (!params) return -ENOMEM;
    strcpy(params, "{\"expression\":\"");
    size_t pos = strlen(params);
    int rc = json_esc(params, cap - 32, &pos, expr);
    char *reply = NULL;
    if (!rc) {
        strcat(params, "\",\"returnByValue\":true}");
        rc = call(b, "Runtime.evaluate", params, 1, &reply, timeout_ms);
    }
    free(params);
    if (rc) return rc;
    const char *res = strstr(reply, "\"result\":{\"result\":{");
    const char *val = res ? strstr(res, "\"value\":\"") : NULL;
    if (!res || strstr(reply, "\"exceptionDetails\"") || !strstr(res, "\"type\":\"string\"") ||
        !val) {
        snprintf(out, len, "%s", reply);
        rc = -EPROTO;
    } else {
        rc = json_unesc(val + strlen("\"value\":\""), out, len);
    }
    free(reply);
    return rc;
}

int h_cdp_eval_num(struct h_cdp *b, const char *expr, double *out, int timeout_ms)
{
    size_t l = strlen(expr) + 16;
    char *w = malloc(l), val[64];
    if (!w) return -ENOMEM;
    snprintf(w, l, "String(%s)", expr);
    int rc = h_cdp_eval(b, w, val, sizeof(val), timeout_ms);
    free(w);
    if (rc) return rc;
    char *end;
    *out = strtod(val, &end);
    return end == val || *end ? -EPROTO : 0;
}

/* Wait (at most ms) for the browser to end, without reaping it. 1 if it ended. */
static int ended(pid_t pid, int ms)
{
    uint64_t end = mono_ms() + (uint64_t)ms;
    for (;;) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
            return errno == ECHILD; /* not ours to wait for any more */
        if (si.si_pid == pid) return 1;
        if (mono_ms() >= end) return 0;
        usleep(50 * 1000);
    }
}

/* Whether a process other than pid is in the process group pid (from /proc). */
static int group_others(pid_t pid)
{
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        long p = strtol(e->d_name, NULL, 10);
        if (p <= 0 || p == pid) continue;
        char path[64], line[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", p);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = '\0';
        /* pid (comm) state ppid pgrp ...: comm may hold spaces, so start after its ')' */
        const char *rp = strrchr(line, ')');
        int ppid, pgrp;
        char st;
        if (rp && sscanf(rp + 1, " %c %d %d", &st, &ppid, &pgrp) == 3 && pgrp == pid) found = 1;
    }
    closedir(d);
    return found;
}

void h_cdp_close(struct h_cdp *b)
{
    if (b->pid > 0) {
        char *reply = NULL;
        if (b->to >= 0 && call(b, "Browser.close", "{}", 0, &reply, 3000) == 0) free(reply);
        if (b->to >= 0) close(b->to); /* a closed pipe also ends it */
        b->to = -1;
        if (!ended(b->pid, 5000)) {
            kill(b->pid, SIGTERM);
            if (!ended(b->pid, 3000)) kill(b->pid, SIGKILL);
        }
        ended(b->pid, 5000);
        /* the leader is a zombie now (its id cannot be reused): give its group a moment to
         * end on its own, then end what is left of it */
        for (int i = 0; i < 40 && group_others(b->pid); i++)
            usleep(50 * 1000);
        if (group_others(b->pid)) kill(-b->pid, SIGKILL);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
    if (b->to >= 0) close(b->to);
    if (b->from >= 0) close(b->from);
    b->to = b->from = -1;
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}
