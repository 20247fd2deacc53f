/* json_out.h - a tiny streaming JSON writer for the cairn command's --json output.
 *
 * Values are written in order; the writer puts the commas, the indentation (two spaces per
 * level) and the keys. Every value function takes a key: pass the member name inside an
 * object, NULL inside an array or for the top-level value. Strings are escaped (", \, control
 * characters); bytes that are not valid UTF-8 become U+FFFD, so the output is always valid
 * JSON. 64-bit identifiers go out as 16-digit hex strings (json_hex64): JSON readers lose
 * integer precision past 2^53. Nesting deeper than JSON_DEPTH_MAX is a programming error
 * (assert). Write errors are the FILE's (check ferror). */
#ifndef CAIRN_JSON_OUT_H
#define CAIRN_JSON_OUT_H

#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 16

struct json {
    FILE *f;
    int depth;
    uint8_t has_items[JSON_DEPTH_MAX + 1]; /* per open level: a member was written already */
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_bool(struct json *j, const char *key, int v);
void json_null(struct json *j, const char *key);
/* A number with a fixed number of decimals (e.g. a rate in MiB/s). */
void json_fixed(struct json *j, const char *key, double v, int decimals);
/* "%016x" of v, as a string. */
void json_hex64(struct json *j, const char *key, uint64_t v);
/* Ends the document with a newline (after the top-level value is closed). */
void json_finish(struct json *j);
/* Write s as a JSON string literal (quotes included). */
void json_write_escaped(FILE *f, const char *s);

#endif
