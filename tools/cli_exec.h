/* cli_exec.h - the forms of `cairn` that hand over to another program: `cairn local ...` (the
 * tools/cairn-local launcher script) and the mount helper `cairn SOURCE MNT -o OPTS`
 * (cairn-mount). Programs are looked for next to the running cairn (symlinks followed), then
 * in PATH. These functions return only on failure, with the exit status to use. */
#ifndef CAIRN_CLI_EXEC_H
#define CAIRN_CLI_EXEC_H

/* exec cairn-local with argv[1..] (argv[1] is "local"), CAIRN_SELF set to this program. */
int cli_exec_local(int argc, char **argv);
/* The mount helper: argv[1] = SOURCE (HOST:PORT, an optional "cairn#" prefix is dropped),
 * argv[2] = MNT, then -o OPTS (repeatable, also -oOPTS) and the flags -f -d -n -s -v, which
 * are passed on: exec cairn-mount MNT [flags] -o meta=SOURCE[,OPTS]. */
int cli_exec_mount_helper(int argc, char **argv);

#endif
