/*
 * json.h - a small, bounded JSON reader for flat objects, and a string builder.
 *
 * Written for plugin arguments and configuration: the host has already
 * validated the arguments against the tool's JSON Schema, but this reader
 * still checks the full JSON grammar and never reads past the given length
 * (the text it gets is not NUL-terminated). Only the top-level members of one
 * object are collected; nested arrays/objects are checked and skipped (their
 * raw text is kept), at most JSON_MAX_DEPTH levels deep.
 *
 * Memory: json_object lives wherever you put it (about 6 KiB); json_value.raw
 * points into the parsed text, so keep that text alive while you use it.
 * json_string_dup() and sbuf return malloc'd memory that the caller owns.
 */
#ifndef PLUGIN_JSON_H
#define PLUGIN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_MEMBERS 64 /* top-level members; more is an error */
#define JSON_MAX_KEY 64     /* bytes of a decoded key that are kept */
#define JSON_MAX_DEPTH 32   /* nesting of skipped arrays/objects */

typedef enum {
    JSON_ABSENT = 0, /* json_get found no such member */
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_kind;

typedef struct {
    json_kind kind;
    const char *raw; /* the value's text inside the parsed buffer (strings: with quotes) */
    size_t raw_len;
} json_value;

typedef struct {
    char key[JSON_MAX_KEY + 1]; /* decoded, NUL-terminated */
    bool key_too_long;          /* longer than JSON_MAX_KEY: never matches json_get */
    json_value value;
} json_member;

typedef struct {
    json_member members[JSON_MAX_MEMBERS];
    size_t count;
} json_object;

/* Parses `text` (`len` bytes, need not be NUL-terminated) as exactly one JSON
 * object. Returns false with a message in `err` when it is not one. */
bool json_parse_object(const char *text, size_t len, json_object *out, char *err, size_t err_len);

/* The member called `key`, or NULL. With duplicate keys the last one wins
 * (what most JSON libraries do). */
const json_value *json_get(const json_object *obj, const char *key);

/* A JSON_STRING value decoded to UTF-8: a new malloc'd, NUL-terminated buffer
 * (free() it); `*out_len` (if not NULL) gets its length, which counts any
 * embedded NUL from "\u0000". NULL when `v` is not a string. */
char *json_string_dup(const json_value *v, size_t *out_len);

/* A JSON_NUMBER that is a non-negative integer fitting in uint64_t
 * (no fraction, no exponent). */
bool json_u64(const json_value *v, uint64_t *out);

/* A growable byte buffer. `ptr` is malloc'd and always NUL-terminated after
 * the first append; hand it over with sb_take() or free() it. Out of memory
 * aborts, like the generated cabi_realloc does. */
typedef struct {
    char *ptr;
    size_t len, cap;
} sbuf;

void sb_append(sbuf *sb, const char *s, size_t n);
void sb_puts(sbuf *sb, const char *s);
void sb_printf(sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` (`n` bytes of UTF-8) as a quoted, escaped JSON string. */
void sb_json_string(sbuf *sb, const char *s, size_t n);
/* Gives up ownership of the buffer: returns it (NULL when empty) and resets sb. */
char *sb_take(sbuf *sb, size_t *len);

#endif
