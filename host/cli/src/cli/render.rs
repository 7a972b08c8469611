//! Small helpers for terminal and JSON output: every line a command prints goes through [`stdout`].

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::escape;

/// `println!` for command output, through [`stdout`].
macro_rules! outln {
    () => { $crate::cli::render::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::render::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for command output, through [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::render::stdout(format_args!($($arg)*)) };
}

/// Set once stdout could not be written to; later output is dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes command output to stdout. A reader that went away
/// (`agent-host tools list | head -1`) is not an error: the rest of the
/// output is dropped without a word and the command finishes its work
/// (a call's state and a session are still saved), where `println!` would
/// panic. Any other write error (a full disk behind a redirect) is said
/// once on stderr.
pub fn stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {err}");
        }
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(err) => eprintln!("error: cannot encode JSON output: {err}"),
    }
}

/// Cuts `text` to one line of at most `max` characters, marking the cut,
/// with control characters escaped (so the result may be a little longer):
/// everything shortened is text a plugin, a model or a user wrote.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return escape::line(&one_line).into_owned();
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", escape::line(&cut))
}
