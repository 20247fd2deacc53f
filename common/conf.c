/* conf.c - option-table driven config parsing (see conf.h). */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct conf_opt *find(const struct conf_opt *tab, const char *name)
{
    for (; tab->name; tab++)
        if (strcmp(tab->name, name) == 0) return tab;
    return NULL;
}

int conf_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s)) return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -EINVAL;
    int shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    case 't':
    case 'T':
        shift = 40;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'i' || *end == 'B') end++;
    if (*end == 'B') end++;
    if (*end) return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift)) return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

static int set_opt(const struct conf_opt *o, void *cfg, const char *value)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case CONF_STR:
        if (strlen(value) >= CONF_STR_MAX) return -EINVAL;
        strcpy(field, value);
        return 0;
    case CONF_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || end == value || v < -2147483647L || v > 2147483647L) return -EINVAL;
        *(int *)field = (int)v;
        return 0;
    }
    case CONF_U64:
        return conf_parse_size(value, (uint64_t *)field);
    case CONF_BOOL:
    case CONF_FLAG:
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
            !strcasecmp(value, "on"))
            *(int *)field = 1;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no") ||
                 !strcasecmp(value, "off"))
            *(int *)field = 0;
        else
            return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

int conf_defaults(const struct conf_opt *tab, void *cfg)
{
    for (; tab->name; tab++) {
        int rc = set_opt(tab, cfg, tab->def ? tab->def : (tab->type == CONF_STR ? "" : "0"));
        if (rc) return rc;
    }
    return 0;
}

int conf_set(const struct conf_opt *tab, void *cfg, const char *name, const char *value)
{
    const struct conf_opt *o = find(tab, name);
    if (!o) return -ENOENT;
    return set_opt(o, cfg, value);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int conf_load_file(const struct conf_opt *tab, void *cfg, const char *path, char *err,
                   size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const struct conf_opt *o = find(tab, key);
        if (!o || o->type == CONF_FLAG) {
            snprintf(err, errlen, "%s:%d: unknown option '%s'", path, lineno, key);
            rc = -ENOENT;
            break;
        }
        if (set_opt(o, cfg, val)) {
            snprintf(err, errlen, "%s:%d: bad value '%s' for '%s'", path, lineno, val, key);
            rc = -EINVAL;
            break;
        }
    }
    fclose(f);
    return rc;
}

int conf_parse_args(const struct conf_opt *tab, void *cfg, int *argc, char **argv, int *help,
                    char *err, size_t errlen)
{
    *help = 0;
    /* First pass: --config. */
    for (int i = 1; i < *argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < *argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
        if (path) {
            int rc = conf_load_file(tab, cfg, path, err, errlen);
            if (rc) return rc;
        }
    }
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            continue;
        }
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            argv[out++] = a;
            continue;
        }
        char name[128];
        const char *val = NULL;
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) nl = sizeof(name) - 1;
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        for (char *p = name; *p; p++)
            if (*p == '-') *p = '_';
        const struct conf_opt *o = find(tab, name);
        if (!o) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return -ENOENT;
        }
        if (eq)
            val = eq + 1;
        else if (o->type == CONF_FLAG || o->type == CONF_BOOL)
            val = "1";
        else if (i + 1 < *argc)
            val = argv[++i];
        else {
            snprintf(err, errlen, "option '%s' needs a value", a);
            return -EINVAL;
        }
        if (set_opt(o, cfg, val)) {
            snprintf(err, errlen, "bad value '%s' for option '--%s'", val, o->name);
            return -EINVAL;
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

void conf_print_help(const struct conf_opt *tab, FILE *out)
{
    static const char *const tn[] = {"TEXT", "N", "SIZE", "BOOL", ""};
    fprintf(out, "Options (config file: 'name = value'; command line: --name=value):\n");
    fprintf(out, "  --config FILE            read options from FILE first\n");
    fprintf(out, "  --help                   show this help\n");
    for (; tab->name; tab++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", tab->name, tab->type == CONF_FLAG ? "" : "=",
                 tn[tab->type]);
        fprintf(out, "  %-24s %s", left, tab->help);
        if (tab->def && tab->def[0] && tab->type != CONF_FLAG)
            fprintf(out, " (default: %s)", tab->def);
        fputc('\n', out);
    }
}
