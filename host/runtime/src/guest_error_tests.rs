//! Unit tests of the guest-error finder, on stderr as each language's runtime writes it.

use super::{MAX_GUEST_ERROR, guest_error, trap_text};

#[test]
fn a_rust_panic_gives_its_message_and_place() {
    let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
    assert_eq!(
        guest_error(stderr).unwrap(),
        "boom (thread '<unnamed>' panicked at src/lib.rs:3:5)"
    );
}

#[test]
fn a_python_traceback_gives_the_exception_and_the_innermost_frame() {
    let stderr = r#"Traceback (most recent call last):
  File "/app/app.py", line 40, in invoke
    return run(args)
           ^^^^^^^^^
  File "/app/stats.py", line 12, in mean
    return total / count
           ~~~~~~^~~~~~~
ZeroDivisionError: division by zero
"#;
    assert_eq!(
        guest_error(stderr).unwrap(),
        "ZeroDivisionError: division by zero (at stats.py:12 in mean: return total / count)"
    );
}

#[test]
fn componentize_py_traceback_beats_its_runtime_panic() {
    // componentize-py 0.25.1 (CPython 3.14): frames without source lines,
    // then its runtime's own panic.
    let stderr = [
        "Traceback (most recent call last):",
        "  File \"/0/app.py\", line 105, in invoke",
        "  File \"/0/app.py\", line 61, in divide",
        "ZeroDivisionError: division by zero",
        "",
        "thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:",
        "Python function threw an unexpected exception",
        "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
    ]
    .join("\n");
    assert_eq!(
        guest_error(&stderr).unwrap(),
        "ZeroDivisionError: division by zero (at app.py:61 in divide)"
    );
    let recursion = [
        "Traceback (most recent call last):",
        "  File \"/0/app.py\", line 90, in depth",
        "  File \"/0/app.py\", line 90, in depth",
        "  [Previous line repeated 996 more times]",
        "RecursionError: maximum recursion depth exceeded",
    ]
    .join("\n");
    assert_eq!(
        guest_error(&recursion).unwrap(),
        "RecursionError: maximum recursion depth exceeded (at app.py:90 in depth)"
    );
}

#[test]
fn a_trap_loses_its_wasm_backtrace() {
    let described = "error while executing at wasm backtrace:\n    0: 0xac527f - libc.so!exit_exit\n    1: 0xabaa05 - libc.so!_Exit\n\nCaused by:\n    Exited with i32 exit status 1";
    assert_eq!(
        trap_text(described),
        "error while executing at wasm backtrace: Caused by: Exited with i32 exit status 1"
    );
}

#[test]
fn the_last_of_several_tracebacks_wins() {
    let stderr = [
        "Traceback (most recent call last):",
        "  File \"a.py\", line 1, in f",
        "ValueError: first",
        "Traceback (most recent call last):",
        "  File \"b.py\", line 2, in g",
        "KeyError: 'x'",
    ]
    .join("\n");
    assert_eq!(
        guest_error(&stderr).unwrap(),
        "KeyError: 'x' (at b.py:2 in g)"
    );
}

#[test]
fn a_js_exception_escaping_an_export_is_unwrapped_from_the_glue() {
    // componentize-js 0.23 (jco 1.35), a TypeError thrown from invoke.
    let stderr = "invalid variant tag value `undefined` (received `TypeError: can't access property \"retries\", doc.settings is undefined`) specified for `ToolError`\n\
                  Stack:\n  export_tool_0_1_0$invoke@/tmp/27d294c23f2a/sources/initializer.js:865:17\n\n\
                  Redirecting call to abort() to mozalloc_abort\n";
    assert_eq!(
        guest_error(stderr).unwrap(),
        "TypeError: can't access property \"retries\", doc.settings is undefined (at export_tool_0_1_0$invoke@initializer.js:865:17)"
    );
}

#[test]
fn a_js_stack_the_plugin_printed_itself_wins_over_the_glue_frame() {
    let stderr = "js-wordfreq: unexpected TypeError: x is undefined\ncount@app.js:40:11\ninvoke@app.js:90:5\n\
                  invalid variant tag value `undefined` (received `TypeError: x is undefined`) specified for `ToolError`\n\
                  Stack:\n  export_tool_0_1_0$invoke@/tmp/a/sources/initializer.js:865:17\n";
    assert_eq!(
        guest_error(stderr).unwrap(),
        "TypeError: x is undefined (at count@app.js:40:11)"
    );
}

#[test]
fn a_plain_js_error_line_with_a_stack() {
    let stderr = "Error: out of cheese\n  parse@app.js:3:9\n  invoke@app.js:10:3\n";
    assert_eq!(
        guest_error(stderr).unwrap(),
        "Error: out of cheese (at parse@app.js:3:9)"
    );
}

#[test]
fn a_c_assert_or_abort_message_is_the_last_line() {
    let assert = "Assertion failed: len < sizeof buf (checksum.c: parse: 42)\n";
    assert_eq!(
        guest_error(assert).unwrap(),
        "Assertion failed: len < sizeof buf (checksum.c: parse: 42)"
    );
    assert_eq!(
        guest_error("c-crash: table corrupt, aborting\n").unwrap(),
        "c-crash: table corrupt, aborting"
    );
}

#[test]
fn noise_and_silence_give_nothing_useful() {
    assert_eq!(guest_error(""), None);
    assert_eq!(guest_error("\n  \n"), None);
    assert_eq!(
        guest_error("Redirecting call to abort() to mozalloc_abort\n"),
        None
    );
}

#[test]
fn a_huge_message_is_cut_on_a_character_boundary() {
    let stderr = format!("{}\n", "é".repeat(10_000));
    let found = guest_error(&stderr).unwrap();
    assert!(found.len() <= MAX_GUEST_ERROR, "{} bytes", found.len());
    assert!(found.ends_with('…'));
}

#[test]
fn hostile_lookalikes_do_not_confuse_it() {
    // A traceback header with nothing after it, an error line with no name.
    assert_eq!(
        guest_error("Traceback (most recent call last):\n").unwrap(),
        "Traceback (most recent call last):"
    );
    assert_eq!(guest_error(": nothing\n").unwrap(), ": nothing");
    assert_eq!(guest_error("(received `x`)\n").unwrap(), "(received `x`)");
}
