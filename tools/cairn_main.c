/* cairn_main.c - the `cairn` command: reads the command line and hands it to one command
 * (copies, du, fileinfo, health, cs, meta), to the local-cluster launcher (cairn local ...) or to
 * the mount helper (cairn SOURCE MNT -o OPTS). See cairn(1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_exec.h"
#include "cli_meta.h"

static const struct {
    const char *name;
    int (*run)(const struct cli *c);
} commands[] = {
    {"copies", cmd_copies}, {"fileinfo", cmd_fileinfo}, {"health", cmd_health}, {"cs", cmd_cs},
    {"meta", cmd_meta},     {"warmup", cmd_warmup},     {"status", cmd_status}, {"top", cmd_top},
    {"du", cmd_du},         {"fsck", cmd_fsck},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fputs(
        "usage: cairn status [PATH]                  the cluster in a few lines; exit 0 when "
        "healthy\n"
        "       cairn top [PATH] [--interval S] [--count N]\n"
        "                                            operations/s and bytes/s per server and "
        "mount\n"
        "       cairn copies [-r] [-v] [N] PATH...   show, or set to N, the copies of files\n"
        "       cairn fileinfo PATH...               chunks of files and where their copies are\n"
        "       cairn du [-b] PATH...                bytes, files and directories below paths\n"
        "       cairn health [PATH]                  chunk servers, chunk counts, repairs\n"
        "       cairn cs list [PATH]                 the chunk servers: state, space, chunks\n"
        "       cairn cs drain|undrain ID [--wait]   move every copy off a chunk server, or stop\n"
        "       cairn cs stats ADDR                  a chunk server's counters and timings\n"
        "       cairn warmup PATH...                 read files through the mount into its caches\n"
        "       cairn fsck [PATH] [--repair]         check the namespace against the chunk "
        "servers\n"
        "       cairn meta status                    the meta replicas: leader, roles, lag\n"
        "       cairn meta add ADDR                  add a started replica (join=); prints its id\n"
        "       cairn meta remove ID                 take a replica out of the group\n"
        "       cairn local start DIR [--mount MNT] [--metas N] [--chunk-servers N]\n"
        "                             [--meta-port P] [--copies N] [--zones A,B,...]\n"
        "                             [--mount-opts OPTS] [--meta-opt K=V] [--cs-opt K=V]\n"
        "       cairn local stop DIR\n"
        "       cairn local status DIR [--json]\n"
        "       cairn SOURCE MNT [-o OPTS]           mount helper: cairn-mount MNT -o "
        "meta=SOURCE,OPTS\n"
        "       cairn help\n"
        "options of copies, du, fileinfo, health, cs, meta, fsck:\n"
        "  --meta ADDR[,ADDR...]  the meta service replicas (default: $CAIRN_META, the mount's\n"
        "                         user.cairn.meta xattr, 127.0.0.1:9520); requests follow\n"
        "                         the replicas' answers to the leader\n"
        "  --json                 one JSON document on stdout\n"
        "  -r, --recursive        copies: every file and directory below each directory\n"
        "  -v, --verbose          copies N: print each path set\n"
        "  -b, --bytes            du: exact byte counts instead of human sizes\n"
        "  --repair               fsck: fix what is safe (dangling entries, link counts; queue\n"
        "                         under-replicated chunks for repair now)\n"
        "  --wait                 cs drain: wait until the server holds no copy, with progress\n"
        "exit status: 0 ok, 1 an operation failed (meta status: no leader; fsck: a problem was\n"
        "found, fixed or not), 2 bad usage.\n"
        "See cairn(1).\n",
        out);
}

static int is_command(const char *s)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(s, commands[i].name) == 0) return 1;
    return 0;
}

/* Take the options out of argv[1..] (anywhere before "--"); the rest are the command and its
 * arguments, left in c->argv. Returns CLI_OK, or CLI_USAGE after a message. */
static int parse(int argc, char **argv, struct cli *c, char **pos)
{
    int npos = 0, done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (done || a[0] != '-' || a[1] == '\0') {
            pos[npos++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            done = 1;
        } else if (strcmp(a, "--json") == 0) {
            c->json = 1;
        } else if (strcmp(a, "--meta") == 0) {
            if (++i >= argc) {
                cli_err("--meta needs an address (HOST:PORT[,HOST:PORT...])");
                return CLI_USAGE;
            }
            c->meta = argv[i];
        } else if (strncmp(a, "--meta=", 7) == 0) {
            c->meta = a + 7;
        } else if (strcmp(a, "--interval") == 0 || strcmp(a, "--count") == 0) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (!end || *end || v < 1 || v > 86400) {
                cli_err("%s needs a whole number from 1 to 86400", a);
                return CLI_USAGE;
            }
            if (a[2] == 'i')
                c->interval = (int)v;
            else
                c->count = (int)v;
            i++;
        } else if (strcmp(a, "--recursive") == 0) {
            c->recursive = 1;
        } else if (strcmp(a, "--verbose") == 0) {
            c->verbose = 1;
        } else if (strcmp(a, "--repair") == 0) {
            c->repair = 1;
        } else if (strcmp(a, "--wait") == 0) {
            c->wait = 1;
        } else if (strcmp(a, "--bytes") == 0) {
            c->bytes = 1;
        } else if (a[1] != '-' && strspn(a + 1, "rvhb") == strlen(a + 1)) {
            c->recursive |= strchr(a, 'r') != NULL;
            c->verbose |= strchr(a, 'v') != NULL;
            c->bytes |= strchr(a, 'b') != NULL;
            if (strchr(a, 'h')) c->cmd = "help";
        } else if (strcmp(a, "--help") == 0) {
            c->cmd = "help";
        } else {
            cli_err("unknown option %s (see cairn help)", a);
            return CLI_USAGE;
        }
    }
    if (c->cmd) return CLI_OK; /* help */
    if (npos == 0) {
        usage(stderr);
        return CLI_USAGE;
    }
    c->cmd = pos[0];
    c->argc = npos - 1;
    c->argv = pos + 1;
    if ((c->recursive || c->verbose) && strcmp(c->cmd, "copies") != 0) {
        cli_err("-r and -v are options of copies only");
        return CLI_USAGE;
    }
    if (c->bytes && strcmp(c->cmd, "du") != 0) {
        cli_err("-b is an option of du only");
        return CLI_USAGE;
    }
    if (c->repair && strcmp(c->cmd, "fsck") != 0) {
        cli_err("--repair is an option of fsck only");
        return CLI_USAGE;
    }
    if (c->wait && strcmp(c->cmd, "cs") != 0) {
        cli_err("--wait is an option of cs drain only");
        return CLI_USAGE;
    }
    return CLI_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "local") == 0) return cli_exec_local(argc, argv);
    if (strcmp(first, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    /* mount.fuse3 runs "cairn SOURCE MNT -o OPTS": anything else that is not a command */
    if (first[0] != '-' && !is_command(first)) {
        if (argc < 3) {
            cli_err("unknown command '%s' (see cairn help)", first);
            return CLI_USAGE;
        }
        return cli_exec_mount_helper(argc, argv);
    }
    struct cli c = {0};
    char **pos = calloc((size_t)argc, sizeof(*pos));
    if (!pos) {
        cli_err("out of memory");
        return CLI_FAIL;
    }
    int rc = parse(argc, argv, &c, pos);
    if (rc == CLI_OK && strcmp(c.cmd, "help") == 0) {
        usage(stdout);
    } else if (rc == CLI_OK) {
        rc = CLI_USAGE;
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (strcmp(c.cmd, commands[i].name) == 0) rc = commands[i].run(&c);
        if (rc == CLI_USAGE && !is_command(c.cmd))
            cli_err("unknown command '%s' (see cairn help)", c.cmd);
    }
    if (fflush(stdout) != 0 && rc == CLI_OK) {
        cli_err("writing the output failed");
        rc = CLI_FAIL;
    }
    cli_meta_close_all();
    free(pos);
    return rc;
}
