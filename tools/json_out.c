/* json_out.c - the streaming JSON writer behind --json (see json_out.h). */
#include "json_out.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

void json_init(struct json *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    int n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return 0; /* surrogates are not characters */
    return n;
}

void json_write_escaped(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
        } else if (c == '\n') {
            fputs("\\n", f), p++;
        } else if (c == '\t') {
            fputs("\\t", f), p++;
        } else if (c == '\r') {
            fputs("\\r", f), p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c), p++;
        } else {
            int n = utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            }
        }
    }
    fputc('"', f);
}

/* Comma, newline and indentation before a value, then its key. */
static void value_start(struct json *j, const char *key)
{
    if (j->depth > 0) {
        if (j->has_items[j->depth]) fputc(',', j->f);
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    j->has_items[j->depth] = 1;
    if (key) {
        json_write_escaped(j->f, key);
        fputs(": ", j->f);
    }
}

static void open_level(struct json *j, const char *key, char c)
{
    value_start(j, key);
    fputc(c, j->f);
    assert(j->depth < JSON_DEPTH_MAX);
    j->depth++;
    j->has_items[j->depth] = 0;
}

static void close_level(struct json *j, char c)
{
    assert(j->depth > 0);
    int had = j->has_items[j->depth];
    j->depth--;
    if (had) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    fputc(c, j->f);
}

void json_obj_begin(struct json *j, const char *key)
{
    open_level(j, key, '{');
}

void json_obj_end(struct json *j)
{
    close_level(j, '}');
}

void json_arr_begin(struct json *j, const char *key)
{
    open_level(j, key, '[');
}

void json_arr_end(struct json *j)
{
    close_level(j, ']');
}

void json_str(struct json *j, const char *key, const char *v)
{
    value_start(j, key);
    json_write_escaped(j->f, v);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
    value_start(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
    value_start(j, key);
    fprintf(j->f, "%" PRId64, v);
}

void json_bool(struct json *j, const char *key, int v)
{
    value_start(j, key);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
    value_start(j, key);
    fputs("null", j->f);
}

void json_fixed(struct json *j, const char *key, double v, int decimals)
{
    value_start(j, key);
    if (!(v == v) || v > 1e300 || v < -1e300) v = 0; /* JSON has no NaN or infinity */
    fprintf(j->f, "%.*f", decimals, v);
}

void json_hex64(struct json *j, const char *key, uint64_t v)
{
    value_start(j, key);
    fprintf(j->f, "\"%016" PRIx64 "\"", v);
}

void json_finish(struct json *j)
{
    assert(j->depth == 0);
    fputc('\n', j->f);
}
