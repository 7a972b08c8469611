/*
 * c-checksum: checksums of a text or hex input (CRC-32, Adler-32, FNV-1a 32/64),
 * written in C against the bindings that `wit-bindgen c` generates from the
 * agent:plugin@0.1.0 contract (world tool-plugin).
 *
 * Ownership rules of the generated C bindings (wit-bindgen 0.61), which this
 * file follows everywhere:
 *
 *  - Everything an export RETURNS (describe's list of specs, invoke's output
 *    or error) is freed by the generated `cabi_post_*` function with free()
 *    once the host has copied it. So every string and list you return must
 *    be malloc'd: use tool_plugin_string_dup(), never tool_plugin_string_set()
 *    on a literal (free() of a literal corrupts the heap). Zero-length
 *    strings/lists are not freed and may point anywhere.
 *  - The ARGUMENTS of an export (name, args_json, ctx) were allocated by the
 *    host through cabi_realloc and now belong to you: free them (the
 *    *_free helpers) before returning, or every call leaks.
 *  - Arguments you pass to an IMPORT (log, kv_set, ...) are only borrowed:
 *    they can be literals (tool_plugin_string_set) and stay yours.
 *  - What an import RETURNS (config's string, kv_get's bytes, kv_set's error
 *    message, kv_list's strings) is allocated in your memory through
 *    cabi_realloc and is yours to free with the matching *_free helper.
 *
 * Strings are UTF-8 (ptr, len) pairs, not NUL-terminated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashes.h"
#include "json.h"
#include "tool_plugin.h"

typedef tool_plugin_string_t str_t;

#define DEFAULT_MAX_INPUT_BYTES (1024u * 1024u)
#define PROGRESS_CHUNK (64u * 1024u)
#define CALLS_KEY "calls"

/* ---- small helpers ------------------------------------------------------ */

/* A malloc'd copy of a C string, as the bindings want for returned data. */
static str_t dup_str(const char *s) {
    str_t out;
    tool_plugin_string_dup(&out, s);
    return out;
}

/* Borrowed view of a C string, for arguments of imports only. */
static str_t view(const char *s) {
    str_t out;
    tool_plugin_string_set(&out, s);
    return out;
}

static void host_log(agent_plugin_host_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void host_log(agent_plugin_host_log_level_t level, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    str_t msg = view(line);
    agent_plugin_host_log(level, &msg);
}

/* Fills *err with a tool-error (data for the model) and returns false, so
 * that `return tool_error(err, ..., "...")` reads naturally in invoke. */
static bool tool_error(exports_agent_plugin_tool_tool_error_t *err, uint8_t tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool tool_error(exports_agent_plugin_tool_tool_error_t *err, uint8_t tag, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *msg = malloc((size_t)n + 1); /* freed by the post-return */
    if (!msg) abort();
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    err->tag = tag;
    /* All three variants hold one string at the same place in the union. */
    err->val.failed.ptr = (uint8_t *)msg;
    err->val.failed.len = (size_t)n;
    if (n == 0) { /* a zero-length string is not freed for us */
        free(msg);
        err->val.failed.ptr = NULL;
    }
    return false;
}

/* Hands a builder's buffer to a returned string (the post-return frees it). */
static str_t take_str(sbuf *sb) {
    size_t len;
    str_t out;
    out.ptr = (uint8_t *)sb_take(sb, &len);
    out.len = len;
    return out;
}

/* ---- configuration (the [config] table of the manifest) ----------------- */

typedef struct {
    char default_algorithm[16];
    uint64_t max_input_bytes;
} config_t;

static void load_config(config_t *cfg) {
    strcpy(cfg->default_algorithm, "all");
    cfg->max_input_bytes = DEFAULT_MAX_INPUT_BYTES;

    str_t text;
    agent_plugin_host_config(&text); /* ours to free */
    json_object obj;
    char err[128];
    if (!json_parse_object((const char *)text.ptr, text.len, &obj, err, sizeof err)) {
        host_log(AGENT_PLUGIN_TYPES_LOG_LEVEL_WARN, "ignoring config: %s", err);
    } else {
        const json_value *v = json_get(&obj, "default_algorithm");
        char *alg = json_string_dup(v, NULL);
        if (alg && strlen(alg) < sizeof cfg->default_algorithm) strcpy(cfg->default_algorithm, alg);
        else if (v) host_log(AGENT_PLUGIN_TYPES_LOG_LEVEL_WARN, "config default_algorithm must be a short string");
        free(alg);
        v = json_get(&obj, "max_input_bytes");
        uint64_t n;
        if (v && json_u64(v, &n) && n > 0) cfg->max_input_bytes = n;
        else if (v) host_log(AGENT_PLUGIN_TYPES_LOG_LEVEL_WARN, "config max_input_bytes must be a positive integer");
    }
    tool_plugin_string_free(&text);
}

/* ---- the call counter in the plugin's key-value state ------------------- */

static uint64_t read_calls(void) {
    str_t key = view(CALLS_KEY);
    tool_plugin_list_u8_t value;
    uint64_t calls = 0;
    if (agent_plugin_host_kv_get(&key, &value)) { /* value is ours to free */
        /* Stored as decimal text, so `agent-host` users can read it. */
        for (size_t i = 0; i < value.len && value.ptr[i] >= '0' && value.ptr[i] <= '9'; i++)
            calls = calls * 10 + (uint64_t)(value.ptr[i] - '0');
        tool_plugin_list_u8_free(&value);
    }
    return calls;
}

/* Not atomic: two calls running at once may count as one. Good enough for a
 * statistic; use a key per call id if every call must be counted. */
static uint64_t count_call(void) {
    uint64_t calls = read_calls() + 1;
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)calls);
    str_t key = view(CALLS_KEY);
    tool_plugin_list_u8_t value = {(uint8_t *)digits, (size_t)n}; /* borrowed */
    str_t err;
    if (!agent_plugin_host_kv_set(&key, &value, &err)) { /* err is ours to free */
        host_log(AGENT_PLUGIN_TYPES_LOG_LEVEL_WARN, "cannot store the call count: %.*s", (int)err.len,
                 (const char *)err.ptr);
        tool_plugin_string_free(&err);
    }
    return calls;
}

/* ---- describe ----------------------------------------------------------- */

static const char CHECKSUM_SCHEMA[] =
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"input\":{\"type\":\"string\",\"maxLength\":1048576,"
    "\"description\":\"The data: UTF-8 text, or hex digits when encoding is hex (spaces, colons and a 0x prefix are ignored)\"},"
    "\"encoding\":{\"enum\":[\"text\",\"hex\"],\"default\":\"text\"},"
    "\"algorithm\":{\"enum\":[\"crc32\",\"adler32\",\"fnv1a32\",\"fnv1a64\",\"all\"],"
    "\"description\":\"Which checksum; default from the plugin config (all)\"}},"
    "\"required\":[\"input\"],\"additionalProperties\":false}";

static const char CHECKSUM_OUTPUT_SCHEMA[] =
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"bytes\":{\"type\":\"integer\"},"
    "\"encoding\":{\"enum\":[\"text\",\"hex\"]},"
    "\"checksums\":{\"type\":\"object\",\"additionalProperties\":{"
    "\"type\":\"object\",\"properties\":{"
    "\"hex\":{\"type\":\"string\"},"
    "\"decimal\":{\"type\":\"string\",\"description\":\"exact, also for 64-bit values\"}},"
    "\"required\":[\"hex\",\"decimal\"]}}},"
    "\"required\":[\"bytes\",\"encoding\",\"checksums\"]}";

static const char STATS_SCHEMA[] = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";

void exports_agent_plugin_tool_describe(exports_agent_plugin_tool_list_tool_spec_t *ret) {
    size_t n = 2;
    exports_agent_plugin_tool_tool_spec_t *specs = calloc(n, sizeof *specs); /* freed by the post-return */
    if (!specs) abort();

    specs[0].name = dup_str("c_checksum");
    specs[0].title.is_some = true;
    specs[0].title.val = dup_str("Checksums (C)");
    specs[0].description = dup_str(
        "Compute checksums of a text or of bytes given as hex: CRC-32 (zlib/PNG), Adler-32, "
        "FNV-1a 32-bit and 64-bit. Returns each value in hex and in exact decimal.");
    specs[0].input_schema = dup_str(CHECKSUM_SCHEMA);
    specs[0].output_schema.is_some = true;
    specs[0].output_schema.val = dup_str(CHECKSUM_OUTPUT_SCHEMA);
    /* flags are a bit set: OR the constants together. */
    specs[0].hints = AGENT_PLUGIN_TYPES_TOOL_HINTS_READ_ONLY | AGENT_PLUGIN_TYPES_TOOL_HINTS_IDEMPOTENT |
                     AGENT_PLUGIN_TYPES_TOOL_HINTS_PARALLEL_SAFE;

    specs[1].name = dup_str("c_checksum_stats");
    specs[1].title.is_some = false; /* option<string> none: nothing to free */
    specs[1].description = dup_str("How many times c_checksum has been called (kept in the plugin's state).");
    specs[1].input_schema = dup_str(STATS_SCHEMA);
    specs[1].output_schema.is_some = false;
    specs[1].hints = AGENT_PLUGIN_TYPES_TOOL_HINTS_READ_ONLY;

    ret->ptr = specs;
    ret->len = n;
}

/* The result: `text` as the one text part and `json` as the structured
 * output; both buffers are handed over (freed by the post-return). */
static bool answer(exports_agent_plugin_tool_tool_output_t *ret, sbuf *text, sbuf *json) {
    agent_plugin_types_content_part_t *parts = malloc(sizeof *parts);
    if (!parts) abort();
    parts[0].tag = AGENT_PLUGIN_TYPES_CONTENT_PART_TEXT;
    parts[0].val.text = take_str(text);
    ret->content.ptr = parts;
    ret->content.len = 1;
    ret->structured.is_some = true;
    ret->structured.val = take_str(json);
    return true;
}

/* ---- c_checksum --------------------------------------------------------- */

enum { ALG_CRC32 = 1, ALG_ADLER32 = 2, ALG_FNV32 = 4, ALG_FNV64 = 8, ALG_ALL = 15 };

static int parse_algorithm(const char *s) {
    if (strcmp(s, "crc32") == 0) return ALG_CRC32;
    if (strcmp(s, "adler32") == 0) return ALG_ADLER32;
    if (strcmp(s, "fnv1a32") == 0) return ALG_FNV32;
    if (strcmp(s, "fnv1a64") == 0) return ALG_FNV64;
    if (strcmp(s, "all") == 0) return ALG_ALL;
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex digits in place (output is never longer than input). Returns
 * the byte count, or -1 with a message in err. */
static long decode_hex(char *s, size_t len, char *err, size_t err_len) {
    size_t i = 0, out = 0, digits = 0;
    int high = -1;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) i = 2;
    for (; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':') continue;
        int v = hex_value(c);
        if (v < 0) {
            unsigned char b = (unsigned char)c;
            if (b >= 0x20 && b < 0x7f)
                snprintf(err, err_len, "input: character %zu ('%c') is not a hex digit", i + 1, c);
            else
                snprintf(err, err_len, "input: byte %zu (0x%02x) is not a hex digit", i + 1, b);
            return -1;
        }
        digits++;
        if (high < 0) {
            high = v;
        } else {
            s[out++] = (char)(high << 4 | v);
            high = -1;
        }
    }
    if (high >= 0) {
        snprintf(err, err_len, "input: odd number of hex digits (%zu); every byte needs two", digits);
        return -1;
    }
    return (long)out;
}

static bool run_checksum(const json_object *args, exports_agent_plugin_tool_tool_output_t *ret,
                         exports_agent_plugin_tool_tool_error_t *err) {
    config_t cfg;
    load_config(&cfg);

    /* Arguments were validated against CHECKSUM_SCHEMA by the host; the
     * checks below are for what a schema cannot say. */
    size_t len;
    char *input = json_string_dup(json_get(args, "input"), &len);
    if (!input) return tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, "input: required string");

    bool hex = false;
    char *encoding = json_string_dup(json_get(args, "encoding"), NULL);
    if (encoding) {
        hex = strcmp(encoding, "hex") == 0;
        free(encoding);
    }

    char *alg_name = json_string_dup(json_get(args, "algorithm"), NULL);
    int algs = parse_algorithm(alg_name ? alg_name : cfg.default_algorithm);
    if (!algs) {
        bool from_config = alg_name == NULL;
        free(alg_name);
        free(input);
        if (from_config)
            return tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_FAILED,
                              "the plugin config default_algorithm '%s' is not one of crc32, adler32, "
                              "fnv1a32, fnv1a64, all",
                              cfg.default_algorithm);
        return tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS,
                          "algorithm: must be one of crc32, adler32, fnv1a32, fnv1a64, all");
    }
    free(alg_name);

    if (hex) {
        char msg[160];
        long n = decode_hex(input, len, msg, sizeof msg);
        if (n < 0) {
            free(input);
            return tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, "%s", msg);
        }
        len = (size_t)n;
    }
    if (len > cfg.max_input_bytes) {
        free(input);
        return tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS,
                          "input: %zu bytes is over this plugin's limit of %llu bytes (config max_input_bytes)",
                          len, (unsigned long long)cfg.max_input_bytes);
    }

    /* Hash in chunks and report progress, as a long job would. */
    const uint8_t *data = (const uint8_t *)input;
    uint32_t crc = 0, adler = 1, f32 = FNV1A32_INIT;
    uint64_t f64 = FNV1A64_INIT;
    uint64_t total = len;
    size_t done = 0;
    do {
        size_t n = len - done < PROGRESS_CHUNK ? len - done : PROGRESS_CHUNK;
        if (algs & ALG_CRC32) crc = crc32_update(crc, data + done, n);
        if (algs & ALG_ADLER32) adler = adler32_update(adler, data + done, n);
        if (algs & ALG_FNV32) f32 = fnv1a32_update(f32, data + done, n);
        if (algs & ALG_FNV64) f64 = fnv1a64_update(f64, data + done, n);
        done += n;
        /* option<u64> and option<string> arguments are pointers: NULL = none. */
        str_t msg = view("hashing");
        agent_plugin_host_progress(done, &total, done == len ? NULL : &msg);
    } while (done < len);
    free(input);

    uint64_t calls = count_call();
    host_log(AGENT_PLUGIN_TYPES_LOG_LEVEL_INFO, "hashed %zu bytes (%s), call #%llu", len, hex ? "hex" : "text",
             (unsigned long long)calls);

    /* The answer: readable text for the model, and the same as structured JSON. */
    sbuf text = {0}, json = {0};
    sb_printf(&json, "{\"bytes\":%zu,\"encoding\":\"%s\",\"checksums\":{", len, hex ? "hex" : "text");
    struct {
        int flag;
        const char *name;
        uint64_t value;
        int hex_digits;
    } rows[] = {
        {ALG_CRC32, "crc32", crc, 8},
        {ALG_ADLER32, "adler32", adler, 8},
        {ALG_FNV32, "fnv1a32", f32, 8},
        {ALG_FNV64, "fnv1a64", f64, 16},
    };
    bool first = true;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!(algs & rows[i].flag)) continue;
        unsigned long long v = (unsigned long long)rows[i].value;
        sb_printf(&text, "%-8s %0*llx  (%llu)\n", rows[i].name, rows[i].hex_digits, v, v);
        sb_printf(&json, "%s\"%s\":{\"hex\":\"%0*llx\",\"decimal\":\"%llu\"}", first ? "" : ",", rows[i].name,
                  rows[i].hex_digits, v, v);
        first = false;
    }
    sb_printf(&text, "of %zu bytes (%s)", len, hex ? "decoded from hex" : "UTF-8 text");
    sb_puts(&json, "}}");

    return answer(ret, &text, &json);
}

static bool run_stats(exports_agent_plugin_tool_tool_output_t *ret) {
    uint64_t calls = read_calls();
    sbuf text = {0}, json = {0};
    sb_printf(&text, "c_checksum has been called %llu time%s", (unsigned long long)calls, calls == 1 ? "" : "s");
    sb_printf(&json, "{\"calls\":%llu}", (unsigned long long)calls);
    return answer(ret, &text, &json);
}

/* ---- invoke ------------------------------------------------------------- */

/* Returns true with *ret filled (result ok), or false with *err filled
 * (result err: a tool-error the model sees). */
bool exports_agent_plugin_tool_invoke(str_t *name, str_t *args_json, exports_agent_plugin_tool_call_context_t *ctx,
                                      exports_agent_plugin_tool_tool_output_t *ret,
                                      exports_agent_plugin_tool_tool_error_t *err) {
    bool ok;
    json_object args;
    char msg[160];
    if (!json_parse_object((const char *)args_json->ptr, args_json->len, &args, msg, sizeof msg)) {
        ok = tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, "arguments: %s", msg);
    } else if (name->len == strlen("c_checksum") && memcmp(name->ptr, "c_checksum", name->len) == 0) {
        ok = run_checksum(&args, ret, err);
    } else if (name->len == strlen("c_checksum_stats") && memcmp(name->ptr, "c_checksum_stats", name->len) == 0) {
        ok = run_stats(ret);
    } else {
        ok = tool_error(err, AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS, "unknown tool `%.*s`", (int)name->len,
                        (const char *)name->ptr);
    }
    /* The arguments are ours: free them (args' json_values pointed into
     * args_json, so only now). */
    tool_plugin_string_free(name);
    tool_plugin_string_free(args_json);
    exports_agent_plugin_tool_call_context_free(ctx);
    return ok;
}
