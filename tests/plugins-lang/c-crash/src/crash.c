/*
 * c-crash: tools that fail in C's typical ways. Each writes to stderr first
 * (the host keeps a call's stderr for its debug log and quotes the last line
 * in the error it reports), then fails:
 *
 *   c_crash_abort        fprintf(stderr, ...) then abort()  -> wasm `unreachable` trap
 *   c_crash_assert       a failed assert()                  -> wasi-libc prints "Assertion failed: ..." and aborts
 *   c_crash_oom          malloc until it returns NULL, then abort() -> memory limit
 *   c_crash_stack        unbounded recursion with a buffer on the C stack -> the C stack
 *                        (in linear memory, below the data) runs out: out-of-bounds trap
 *   c_crash_deep         unbounded recursion without C-stack use -> wasmtime's native
 *                        stack limit: stack-overflow trap
 *   c_crash_null_write   a store through a NULL pointer: does NOT trap in wasm
 *                        (address 0 is ordinary memory); the tool returns normally
 *   c_crash_tool_error   returns a tool-error: data for the model, not a crash
 *
 * Ownership as in plugins/c/checksum/src/plugin.c: returned strings are
 * malloc'd (freed by the generated post-return), arguments are ours to free.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_plugin.h"

typedef tool_plugin_string_t str_t;

static const char *const TOOLS[][2] = {
    {"c_crash_abort", "Writes a message to stderr and calls abort()."},
    {"c_crash_assert", "Fails a plain assert()."},
    {"c_crash_oom", "Allocates until malloc() returns NULL, then aborts."},
    {"c_crash_stack", "Recurses forever with a 4 KiB buffer on the C stack."},
    {"c_crash_deep", "Recurses forever without using the C stack (native stack overflow)."},
    {"c_crash_null_write", "Writes through a NULL pointer, which wasm does not catch."},
    {"c_crash_tool_error", "Returns a tool-error (failed) instead of crashing."},
};
#define NTOOLS (sizeof TOOLS / sizeof TOOLS[0])

void exports_agent_plugin_tool_describe(exports_agent_plugin_tool_list_tool_spec_t *ret) {
    exports_agent_plugin_tool_tool_spec_t *specs = calloc(NTOOLS, sizeof *specs);
    if (!specs) abort();
    for (size_t i = 0; i < NTOOLS; i++) {
        tool_plugin_string_dup(&specs[i].name, TOOLS[i][0]);
        tool_plugin_string_dup(&specs[i].description, TOOLS[i][1]);
        tool_plugin_string_dup(&specs[i].input_schema, "{\"type\":\"object\",\"additionalProperties\":false}");
        specs[i].title.is_some = false;
        specs[i].output_schema.is_some = false;
        specs[i].hints = AGENT_PLUGIN_TYPES_TOOL_HINTS_IDEMPOTENT;
    }
    ret->ptr = specs;
    ret->len = NTOOLS;
}

static bool is(const str_t *name, const char *s) {
    return name->len == strlen(s) && memcmp(name->ptr, s, name->len) == 0;
}

static const char *config_file; /* never set: what the assert below checks */

/* The compiler must not shrink these frames or turn the recursion into a
 * loop: the buffer is filled with memset() and read at an index it cannot
 * know, the plain recursion goes through a volatile function pointer, and
 * stop_depth (never reached) keeps clang from calling the recursion infinite. */
static volatile int stop_depth = -1;
static void *volatile kept; /* c_crash_oom's blocks */
static volatile int sink;

static int recurse_with_buffer(int depth) {
    if (depth == stop_depth) return 0;
    char buf[4096];
    memset(buf, depth, sizeof buf);
    return recurse_with_buffer(depth + 1) + buf[(unsigned)sink % sizeof buf];
}

static int recurse_plain(int depth);
static int (*volatile plain_next)(int) = recurse_plain;
static int recurse_plain(int depth) {
    if (depth == stop_depth) return 0;
    return plain_next(depth + 1) + 1;
}

static void text_output(exports_agent_plugin_tool_tool_output_t *ret, const char *text) {
    agent_plugin_types_content_part_t *part = malloc(sizeof *part);
    if (!part) abort();
    part->tag = AGENT_PLUGIN_TYPES_CONTENT_PART_TEXT;
    tool_plugin_string_dup(&part->val.text, text);
    ret->content.ptr = part;
    ret->content.len = 1;
    ret->structured.is_some = false;
}

bool exports_agent_plugin_tool_invoke(str_t *name, str_t *args_json, exports_agent_plugin_tool_call_context_t *ctx,
                                      exports_agent_plugin_tool_tool_output_t *ret,
                                      exports_agent_plugin_tool_tool_error_t *err) {
    bool ok = true;
    if (is(name, "c_crash_abort")) {
        fprintf(stderr, "c-crash: cannot open /data/input.csv: giving up\n");
        abort();
    } else if (is(name, "c_crash_assert")) {
        fprintf(stderr, "c-crash: checking the configuration\n");
        assert(config_file != NULL);
        text_output(ret, "unreachable unless built with -DNDEBUG");
    } else if (is(name, "c_crash_oom")) {
        /* Chain the blocks into a list the compiler must keep: a malloc()
         * whose block is never used may be removed by the optimizer, and
         * the loop would then spin until the time limit instead. */
        size_t total = 0;
        for (;;) {
            void **block = malloc(1 << 20);
            if (!block) {
                fprintf(stderr, "c-crash: out of memory after %zu MiB\n", total >> 20);
                abort();
            }
            *block = kept;
            kept = block;
            total += 1 << 20;
        }
    } else if (is(name, "c_crash_stack")) {
        fprintf(stderr, "c-crash: recursing with 4 KiB per frame\n");
        sink = recurse_with_buffer(0);
    } else if (is(name, "c_crash_deep")) {
        fprintf(stderr, "c-crash: recursing without a C stack frame\n");
        sink = recurse_plain(0);
    } else if (is(name, "c_crash_null_write")) {
        volatile int *p = NULL;
        int before = p[0];
        p[0] = 42;
        char text[160];
        snprintf(text, sizeof text,
                 "wrote 42 through a NULL pointer and read back %d (was %d): no fault, "
                 "address 0 is ordinary wasm memory",
                 p[0], before);
        p[0] = before;
        fprintf(stderr, "c-crash: %s\n", text);
        text_output(ret, text);
    } else if (is(name, "c_crash_tool_error")) {
        fprintf(stderr, "c-crash: returning a tool-error\n");
        err->tag = AGENT_PLUGIN_TYPES_TOOL_ERROR_FAILED;
        tool_plugin_string_dup(&err->val.failed, "the input file /data/input.csv does not exist");
        ok = false;
    } else {
        err->tag = AGENT_PLUGIN_TYPES_TOOL_ERROR_INVALID_ARGUMENTS;
        tool_plugin_string_dup(&err->val.invalid_arguments, "unknown tool");
        ok = false;
    }
    tool_plugin_string_free(name);
    tool_plugin_string_free(args_json);
    exports_agent_plugin_tool_call_context_free(ctx);
    return ok;
}
