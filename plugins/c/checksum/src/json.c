/* json.c - see json.h. No recursion deeper than JSON_MAX_DEPTH, no reads past `end`. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end, *start;
    char *err;
    size_t err_len;
} parser;

static bool fail(parser *ps, const char *what) {
    if (ps->err && ps->err_len)
        snprintf(ps->err, ps->err_len, "invalid JSON at byte %zu: %s", (size_t)(ps->p - ps->start), what);
    return false;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at s (caller checked that 4 bytes are there). */
static int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string whose opening quote is at `s` (already validated by
 * scan_string) into `out`, writing at most `cap` bytes; returns the full
 * decoded length (which may exceed cap). A lone surrogate becomes U+FFFD. */
static size_t decode_string(const char *s, const char *end, char *out, size_t cap) {
    size_t n = 0;
    const char *p = s + 1;
    while (p < end && *p != '"') {
        char buf[4];
        size_t k;
        if (*p != '\\') {
            buf[0] = *p++;
            k = 1;
        } else {
            char e = p[1];
            p += 2;
            switch (e) {
            case 'b': buf[0] = '\b'; k = 1; break;
            case 'f': buf[0] = '\f'; k = 1; break;
            case 'n': buf[0] = '\n'; k = 1; break;
            case 'r': buf[0] = '\r'; k = 1; break;
            case 't': buf[0] = '\t'; k = 1; break;
            case 'u': {
                uint32_t cp = (uint32_t)hex4(p);
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    int lo = hex4(p + 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                        p += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
                k = utf8_encode(cp, buf);
                break;
            }
            default: buf[0] = e; k = 1; break; /* \" \\ \/ */
            }
        }
        for (size_t i = 0; i < k; i++, n++)
            if (n < cap) out[n] = buf[i];
    }
    return n;
}

/* Checks a string token starting at the opening quote; leaves p after the closing quote. */
static bool scan_string(parser *ps) {
    ps->p++; /* opening quote */
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') { ps->p++; return true; }
        if (c < 0x20) return fail(ps, "control character in a string");
        if (c == '\\') {
            if (ps->end - ps->p < 2) break;
            char e = ps->p[1];
            if (e == 'u') {
                if (ps->end - ps->p < 6 || hex4(ps->p + 2) < 0) return fail(ps, "bad \\u escape");
                ps->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return fail(ps, "bad escape");
            ps->p += 2;
            continue;
        }
        ps->p++;
    }
    return fail(ps, "unterminated string");
}

static bool scan_number(parser *ps) {
    const char *p = ps->p;
#define DIGIT(q) ((q) < ps->end && *(q) >= '0' && *(q) <= '9')
    if (p < ps->end && *p == '-') p++;
    if (!DIGIT(p)) return fail(ps, "bad number");
    if (*p == '0') p++;
    else while (DIGIT(p)) p++;
    if (p < ps->end && *p == '.') {
        p++;
        if (!DIGIT(p)) return fail(ps, "bad number");
        while (DIGIT(p)) p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) p++;
        if (!DIGIT(p)) return fail(ps, "bad number");
        while (DIGIT(p)) p++;
    }
#undef DIGIT
    ps->p = p;
    return true;
}

static bool scan_literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return fail(ps, "unexpected character");
    ps->p += n;
    return true;
}

static bool scan_value(parser *ps, json_value *v, int depth);

/* Arrays and objects below the top level: checked, not collected. */
static bool scan_container(parser *ps, int depth) {
    char close = *ps->p == '[' ? ']' : '}';
    bool is_object = close == '}';
    if (depth >= JSON_MAX_DEPTH) return fail(ps, "nested too deeply");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return true; }
    for (;;) {
        json_value ignored;
        skip_ws(ps);
        if (is_object) {
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a key");
            if (!scan_string(ps)) return false;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':'");
            ps->p++;
        }
        if (!scan_value(ps, &ignored, depth + 1)) return false;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; return true; }
        return fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool scan_value(parser *ps, json_value *v, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end");
    const char *start = ps->p;
    bool ok;
    switch (*ps->p) {
    case '"': v->kind = JSON_STRING; ok = scan_string(ps); break;
    case '{': v->kind = JSON_OBJECT; ok = scan_container(ps, depth); break;
    case '[': v->kind = JSON_ARRAY; ok = scan_container(ps, depth); break;
    case 't': v->kind = JSON_TRUE; ok = scan_literal(ps, "true"); break;
    case 'f': v->kind = JSON_FALSE; ok = scan_literal(ps, "false"); break;
    case 'n': v->kind = JSON_NULL; ok = scan_literal(ps, "null"); break;
    default: v->kind = JSON_NUMBER; ok = scan_number(ps); break;
    }
    v->raw = start;
    v->raw_len = (size_t)(ps->p - start);
    return ok;
}

bool json_parse_object(const char *text, size_t len, json_object *out, char *err, size_t err_len) {
    parser ps = {text, text + len, text, err, err_len};
    out->count = 0;
    skip_ws(&ps);
    if (ps.p >= ps.end || *ps.p != '{') return fail(&ps, "expected an object");
    ps.p++;
    skip_ws(&ps);
    if (ps.p < ps.end && *ps.p == '}') {
        ps.p++;
    } else {
        for (;;) {
            skip_ws(&ps);
            if (ps.p >= ps.end || *ps.p != '"') return fail(&ps, "expected a key");
            if (out->count == JSON_MAX_MEMBERS) return fail(&ps, "too many members");
            json_member *m = &out->members[out->count];
            const char *key = ps.p;
            if (!scan_string(&ps)) return false;
            size_t n = decode_string(key, ps.p - 1, m->key, JSON_MAX_KEY);
            m->key_too_long = n > JSON_MAX_KEY;
            m->key[n > JSON_MAX_KEY ? JSON_MAX_KEY : n] = '\0';
            if (memchr(m->key, '\0', n > JSON_MAX_KEY ? JSON_MAX_KEY : n)) m->key_too_long = true; /* "\u0000" in a key */
            skip_ws(&ps);
            if (ps.p >= ps.end || *ps.p != ':') return fail(&ps, "expected ':'");
            ps.p++;
            if (!scan_value(&ps, &m->value, 1)) return false;
            out->count++;
            skip_ws(&ps);
            if (ps.p < ps.end && *ps.p == ',') { ps.p++; continue; }
            if (ps.p < ps.end && *ps.p == '}') { ps.p++; break; }
            return fail(&ps, "expected ',' or '}'");
        }
    }
    skip_ws(&ps);
    if (ps.p != ps.end) return fail(&ps, "text after the object");
    return true;
}

const json_value *json_get(const json_object *obj, const char *key) {
    for (size_t i = obj->count; i-- > 0;) {
        const json_member *m = &obj->members[i];
        if (!m->key_too_long && strcmp(m->key, key) == 0) return &m->value;
    }
    return NULL;
}

char *json_string_dup(const json_value *v, size_t *out_len) {
    if (!v || v->kind != JSON_STRING) return NULL;
    /* The decoded form is never longer than the escaped form. */
    char *buf = malloc(v->raw_len + 1);
    if (!buf) abort();
    size_t n = decode_string(v->raw, v->raw + v->raw_len - 1, buf, v->raw_len);
    buf[n] = '\0';
    if (out_len) *out_len = n;
    return buf;
}

bool json_u64(const json_value *v, uint64_t *out) {
    if (!v || v->kind != JSON_NUMBER) return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v->raw_len; i++) {
        char c = v->raw[i];
        if (c < '0' || c > '9') return false; /* sign, fraction or exponent */
        uint64_t d = (uint64_t)(c - '0');
        if (n > (UINT64_MAX - d) / 10) return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

static void sb_reserve(sbuf *sb, size_t extra) {
    if (sb->len + extra + 1 <= sb->cap) return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1) {
        if (cap > SIZE_MAX / 2) abort();
        cap *= 2;
    }
    char *p = realloc(sb->ptr, cap);
    if (!p) abort();
    sb->ptr = p;
    sb->cap = cap;
}

void sb_append(sbuf *sb, const char *s, size_t n) {
    sb_reserve(sb, n);
    memcpy(sb->ptr + sb->len, s, n);
    sb->len += n;
    sb->ptr[sb->len] = '\0';
}

void sb_puts(sbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_printf(sbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->ptr + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void sb_json_string(sbuf *sb, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_append(sb, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_append(sb, "\\\"", 2); break;
        case '\\': sb_append(sb, "\\\\", 2); break;
        case '\n': sb_append(sb, "\\n", 2); break;
        case '\r': sb_append(sb, "\\r", 2); break;
        case '\t': sb_append(sb, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                sb_append(sb, u, 6);
            } else {
                sb_append(sb, (const char *)&s[i], 1);
            }
        }
    }
    sb_append(sb, "\"", 1);
}

char *sb_take(sbuf *sb, size_t *len) {
    char *p = sb->ptr;
    if (len) *len = sb->len;
    if (sb->len == 0) {
        free(p);
        p = NULL;
    }
    sb->ptr = NULL;
    sb->len = sb->cap = 0;
    return p;
}
