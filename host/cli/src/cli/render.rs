//! Small helpers for terminal and JSON output.

use serde::Serialize;

use super::escape;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
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
