/* cli_exec.c - handing over to cairn-local (the local-cluster launcher) and to cairn-mount
 * (the mount helper form), see cli_exec.h. */
#include "cli_exec.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define HELPER_OPTS_MAX 8192

/* The folder of the running program (symlinks followed) into dir; 0 or -errno. */
static int self_dir(char *dir, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0) return -errno;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return -ENOENT;
    *slash = '\0';
    if ((size_t)snprintf(dir, len, "%s", exe) >= len) return -ENAMETOOLONG;
    return 0;
}

/* exec name (from next to this program, else PATH) with argv; returns the exit status. */
static int exec_sibling(const char *name, char **argv)
{
    char dir[PATH_MAX] = "", path[PATH_MAX + 64];
    if (self_dir(dir, sizeof(dir)) == 0) {
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (access(path, X_OK) == 0) {
            argv[0] = path;
            execv(path, argv);
            cli_err("cannot run %s: %s", path, strerror(errno));
            return CLI_FAIL;
        }
    }
    argv[0] = (char *)name;
    execvp(name, argv);
    cli_err("%s not found next to this cairn (%s) or in PATH (run make)", name, dir[0] ? dir : "?");
    return CLI_FAIL;
}

int cli_exec_local(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        setenv("CAIRN_SELF", self, 1);
    }
    /* argv[0] is replaced by the script's path; argv[1..] are passed as they came */
    (void)argc;
    return exec_sibling("cairn-local", argv);
}

static int append_opts(char *opts, size_t len, const char *more)
{
    size_t have = strlen(opts);
    int w = snprintf(opts + have, len - have, "%s%s", have ? "," : "", more);
    return w < 0 || (size_t)w >= len - have ? -E2BIG : 0;
}

/* append_opts for the list mount.fuse3 passes, without "dev" and "suid": mount.fuse3 adds
 * them to every mount not marked nodev/nosuid, so they do not say that the user asked
 * (cairn-mount(8): allow_dev and allow_suid do). */
static int append_helper_opts(char *opts, size_t len, const char *list)
{
    char *dup = strdup(list), *save = NULL;
    if (!dup) return -ENOMEM;
    int rc = 0;
    for (char *o = strtok_r(dup, ",", &save); o && !rc; o = strtok_r(NULL, ",", &save))
        if (strcmp(o, "dev") && strcmp(o, "suid")) rc = append_opts(opts, len, o);
    free(dup);
    return rc;
}

int cli_exec_mount_helper(int argc, char **argv)
{
    const char *src = argv[1], *mnt = argv[2];
    static char opts[HELPER_OPTS_MAX];
    char *flags[16];
    int nflags = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *o = NULL;
        if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc) {
                cli_err("-o needs options");
                return CLI_FAIL;
            }
            o = argv[++i];
        } else if (strncmp(a, "-o", 2) == 0) {
            o = a + 2;
        } else if (strlen(a) == 2 && a[0] == '-' && strchr("fdnsv", a[1])) {
            if (nflags < 10) flags[nflags++] = argv[i];
            continue;
        } else {
            cli_err("unexpected argument %s (usage: cairn SOURCE MNT [-o OPTS])", a);
            return CLI_FAIL;
        }
        if (append_helper_opts(opts, sizeof(opts), o)) {
            cli_err("mount options too long");
            return CLI_FAIL;
        }
    }
    if (strncmp(src, "cairn#", 6) == 0) src += 6;
    if (!strchr(src, ':')) {
        cli_err("SOURCE must be the meta service address HOST:PORT, not '%s'", src);
        return CLI_FAIL;
    }
    static char metaopt[HELPER_OPTS_MAX + 600];
    snprintf(metaopt, sizeof(metaopt), "meta=%s%s%s", src, opts[0] ? "," : "", opts);
    char *nargv[32];
    int k = 0;
    nargv[k++] = "cairn-mount";
    nargv[k++] = (char *)mnt;
    for (int i = 0; i < nflags; i++)
        nargv[k++] = flags[i];
    nargv[k++] = "-o";
    nargv[k++] = metaopt;
    nargv[k] = NULL;
    return exec_sibling("cairn-mount", nargv);
}
