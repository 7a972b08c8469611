//! What a dying guest said: its language runtime's own error (a Rust panic, a Python traceback, a JS exception, a C assert or abort message), found in its captured stderr and cut to a bounded size.
//!
//! The text is the plugin's and untrusted: the host only searches it
//! (linear in its length, which the capture already bounds) and cuts the
//! result; whoever shows it on a terminal escapes it.

/// The longest guest error kept, in bytes (cut on a character boundary).
pub(crate) const MAX_GUEST_ERROR: usize = 600;

/// Lines runtimes print on the way down that say nothing about the error.
const NOISE: &[&str] = &[
    "Redirecting call to abort() to mozalloc_abort",
    "note: run with `RUST_BACKTRACE=1`",
    "stack backtrace:",
];

/// The guest's own account of why it died, one line, at most
/// [`MAX_GUEST_ERROR`] bytes; `None` when it wrote nothing useful.
pub(crate) fn guest_error(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .filter(|line| !NOISE.iter().any(|noise| line.trim().starts_with(noise)))
        .collect();
    // Python first: componentize-py reports an uncaught exception with a
    // traceback, then a Rust panic of its own runtime that says only
    // "Python function threw an unexpected exception".
    let found = python_traceback(&lines)
        .or_else(|| rust_panic(&lines))
        .or_else(|| js_exception(&lines))
        .or_else(|| lines.last().map(|line| line.trim().to_owned()))?;
    Some(cut(&found, MAX_GUEST_ERROR))
}

/// `thread '…' panicked at src/lib.rs:3:5:` and the message lines after it.
fn rust_panic(lines: &[&str]) -> Option<String> {
    let at = lines
        .iter()
        .rposition(|line| line.contains("panicked at"))?;
    let message: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|line| !line.starts_with("note:") && !line.trim_start().starts_with("0:"))
        .take(4)
        .map(|line| line.trim())
        .collect();
    let place = lines[at].trim().trim_end_matches(':');
    Some(if message.is_empty() {
        place.to_owned()
    } else {
        format!("{} ({place})", message.join(" "))
    })
}

/// The exception line of the last traceback and its innermost frame:
/// `ZeroDivisionError: division by zero (at app.py:12 in mean: return a / b)`.
fn python_traceback(lines: &[&str]) -> Option<String> {
    let start = lines.iter().rposition(|line| {
        line.trim_start()
            .starts_with("Traceback (most recent call last):")
    })?;
    let block = &lines[start + 1..];
    // The exception line is the first unindented line after the frames
    // (later lines belong to it: a multi-line message).
    let exception_at = block.iter().position(|line| !line.starts_with(' '))?;
    let exception = block[exception_at].trim();
    let frames = &block[..exception_at];
    let frame_at = frames
        .iter()
        .rposition(|line| line.trim_start().starts_with("File \""));
    let Some(frame_at) = frame_at else {
        return Some(exception.to_owned());
    };
    let frame = python_frame(frames[frame_at].trim());
    let source = frames
        .get(frame_at + 1)
        .map(|line| line.trim())
        .filter(|line| {
            !line.starts_with("File \"")
                && !line.starts_with("[Previous line repeated")
                && !line.chars().all(|c| "^~ ".contains(c))
        });
    Some(match source {
        Some(source) => format!("{exception} (at {frame}: {source})"),
        None => format!("{exception} (at {frame})"),
    })
}

/// `File "/app/app.py", line 12, in mean` as `app.py:12 in mean`.
fn python_frame(frame: &str) -> String {
    let rest = frame.trim_start_matches("File \"");
    let Some((path, rest)) = rest.split_once('"') else {
        return frame.to_owned();
    };
    let file = path.rsplit('/').next().unwrap_or(path);
    let line = rest
        .trim_start_matches(", line ")
        .split(',')
        .next()
        .unwrap_or("")
        .trim();
    match rest.split_once(", in ") {
        Some((_, function)) => format!("{file}:{line} in {}", function.trim()),
        None => format!("{file}:{line}"),
    }
}

/// A JS error line (`TypeError: x is undefined`, `Error: …`, `Uncaught …`)
/// and the top of the stack after it (`fn@app.js:3:7` or `at fn (app.js:3:7)`).
///
/// componentize-js reports an exception that escaped an export as "invalid
/// variant tag value `undefined` (received `TypeError: …`) specified for
/// `ToolError`": the exception is the part in the backquotes after
/// "received".
fn js_exception(lines: &[&str]) -> Option<String> {
    let at = lines
        .iter()
        .rposition(|line| is_js_error_line(line.trim()) || received_js_error(line).is_some())?;
    let message = received_js_error(lines[at]).unwrap_or_else(|| lines[at].trim());
    // A plugin that printed the exception and its own stack before the
    // glue's report (the templates do) has the user's frames after the
    // first line that quotes the message.
    let first = lines
        .iter()
        .position(|line| line.contains(message))
        .unwrap_or(at);
    let top = lines[first + 1..]
        .iter()
        .map(|line| line.trim())
        .find(|line| is_js_stack_line(line));
    Some(match top {
        Some(top) => format!("{message} (at {})", short_js_place(top)),
        None => message.to_owned(),
    })
}

/// The thrown value in componentize-js's "(received `…`)" report, when it
/// is an error (not just any value the glue could not convert).
fn received_js_error(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("(received `")?;
    let end = rest.rfind("`)")?;
    let thrown = &rest[..end];
    is_js_error_line(thrown).then_some(thrown)
}

fn is_js_error_line(line: &str) -> bool {
    let line = line
        .strip_prefix("Uncaught ")
        .or_else(|| line.strip_prefix("Error: Uncaught "))
        .unwrap_or(line);
    let Some((name, _)) = line.split_once(": ") else {
        return false;
    };
    name.ends_with("Error")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn is_js_stack_line(line: &str) -> bool {
    (line.starts_with("at ") && line.contains(':'))
        || line
            .split_once('@')
            .is_some_and(|(function, place)| !function.contains(' ') && place.contains(':'))
}

/// A stack line without its directory: `f@/tmp/x/sources/app.js:3:7` as
/// `f@app.js:3:7`, `at f (/a/app.js:3:7)` as `f (app.js:3:7)`.
fn short_js_place(line: &str) -> String {
    let line = line.trim_start_matches("at ");
    let (head, place) = match line.split_once('@') {
        Some((function, place)) => (format!("{function}@"), place),
        None => match line.split_once('(') {
            Some((function, place)) => (format!("{function}("), place),
            None => (String::new(), line),
        },
    };
    let file = place.rsplit('/').next().unwrap_or(place);
    format!("{head}{file}")
}

/// wasmtime's description of a trap without the wasm backtrace it may
/// carry (a frame per line: `0: 0xac527f - libc.so!exit`), one line.
pub(crate) fn trap_text(described: &str) -> String {
    let kept: Vec<&str> = described
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .filter(|line| {
            let frame = line
                .split_once(": ")
                .is_some_and(|(index, _)| index.chars().all(|c| c.is_ascii_digit()));
            !frame && !line.starts_with("note: using the `WASMTIME_BACKTRACE_DETAILS")
        })
        .collect();
    cut(&kept.join(" "), MAX_GUEST_ERROR)
}

/// At most `max` bytes of `text`, cut on a character boundary and marked.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
#[path = "guest_error_tests.rs"]
mod tests;
