/* cli.h - what the cairn command's files share: the parsed command line, exit codes, error
 * messages, number formatting, and each command's entry point.
 *
 * Every command returns an exit status: CLI_OK (0) when everything it was asked worked,
 * CLI_FAIL (1) when an operation failed (each failure was reported on stderr as
 * "cairn: COMMAND: WHAT: WHY"), CLI_USAGE (2) for a bad command line. */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* The command line after the options were taken out (cairn_main.c fills it). */
struct cli {
    const char *meta; /* --meta ADDR[,ADDR...], or NULL */
    int json;         /* --json */
    int recursive;    /* -r (copies) */
    int verbose;      /* -v (copies) */
    int bytes;        /* -b, --bytes (du): exact byte counts */
    int interval;     /* --interval S (top) */
    int count;        /* --count N (top) */
    int repair;       /* --repair (fsck) */
    int wait;         /* --wait (cs drain) */
    const char *cmd;  /* "copies", "fileinfo", ... */
    int argc;         /* the arguments after the command */
    char **argv;
};

/* "cairn: " + message + "\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A human size ("1.5 GiB", "512 B") in buf. */
const char *cli_size(uint64_t bytes, char *buf, size_t len);
/* Text of a negative errno for messages, with the protocol's own meanings spelled out
 * (-EOPNOTSUPP: the meta service is older than this command). */
const char *cli_strerror(int rc);

const char *cli_copy_state_name(uint8_t state); /* COPY_*: "valid", ... "?" */
const char *cli_cs_state_name(uint8_t state);   /* CS_STATE_*: "up", "down", "draining" */
/* META_ST_*: "unavailable", "follower", "candidate", "leader"; META_ROLE_*: "standby",
 * "voter", "spare"; "?" for others. */
const char *cli_meta_state_name(uint8_t state);
const char *cli_meta_role_name(uint8_t role);

/* cli_paths.c: one path of a PATH... command. On success it printed its result (text, or
 * one element of the JSON array when j is not NULL) and returns 0; on failure it prints
 * nothing, puts the reason in why and returns a negative errno. */
struct json;
#define CLI_WHY_LEN 612
typedef int (*cli_path_fn)(const struct cli *c, const char *path, struct json *j, char *why,
                           size_t len);
/* Run fn on every path of c->argv, reporting failures as "cairn: NAME: PATH: WHY"; with --json
 * the output is { KEY: [...], "errors": N }. CLI_OK, CLI_FAIL if any path failed, CLI_USAGE
 * without a path. */
int cli_for_each_path(const struct cli *c, const char *name, const char *key, cli_path_fn fn);

int cmd_copies(const struct cli *c);
int cmd_du(const struct cli *c);
int cmd_fileinfo(const struct cli *c);
int cmd_health(const struct cli *c);
int cmd_cs(const struct cli *c);
int cmd_meta(const struct cli *c);
int cmd_warmup(const struct cli *c);
int cmd_status(const struct cli *c);
int cmd_top(const struct cli *c);
int cmd_fsck(const struct cli *c);

#endif
