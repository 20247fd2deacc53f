/* conf.h - `key = value` configuration driven by one option table per daemon.
 *
 * Each daemon describes its options once (name, type, default, help, where the value goes in
 * its config struct); the same table parses the config file, parses `--name=value` /
 * `--name value` command-line overrides, prints --help, and is what the man page documents, so
 * they cannot drift apart. Unknown keys and malformed values are errors naming the file and
 * line. */
#ifndef CAIRN_CONF_H
#define CAIRN_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum conf_type {
    CONF_STR,  /* char[CONF_STR_MAX] */
    CONF_INT,  /* int */
    CONF_U64,  /* uint64_t; accepts K, M, G, T suffixes (powers of 1024) */
    CONF_BOOL, /* int 0/1; true/false/yes/no/on/off/1/0 */
    CONF_FLAG, /* command-line only switch with no value (int set to 1) */
};

#define CONF_STR_MAX 512

struct conf_opt {
    const char *name;
    enum conf_type type;
    const char *def; /* default as text; NULL for an empty string / 0 */
    size_t offset;   /* offsetof(struct cfg, field) */
    const char *help;
};

/* Set every option of the table (terminated by a NULL name) to its default. */
int conf_defaults(const struct conf_opt *tab, void *cfg);
/* Set one option from text. Returns 0, -ENOENT (unknown name) or -EINVAL (bad value). */
int conf_set(const struct conf_opt *tab, void *cfg, const char *name, const char *value);
/* Parse a config file. On error returns a negative errno and writes a message into err. */
int conf_load_file(const struct conf_opt *tab, void *cfg, const char *path, char *err,
                   size_t errlen);
/* Parse argv: --config FILE is loaded first, then each --name=value/--name value applies on
 * top. Non-option arguments are left in argv (compacted), their count returned in *argc.
 * Returns 0 or negative errno with a message in err. --help sets *help. */
int conf_parse_args(const struct conf_opt *tab, void *cfg, int *argc, char **argv, int *help,
                    char *err, size_t errlen);
void conf_print_help(const struct conf_opt *tab, FILE *out);
/* Parse "64M" style sizes. Returns 0 or -EINVAL. */
int conf_parse_size(const char *s, uint64_t *out);

#endif
