//! Terminal safety: text that a plugin, a model or a stored session controls is shown with its control characters made visible.
//!
//! A raw `ESC ] 0 ; ... BEL` retitles the user's terminal, `ESC [ 2 J`
//! clears it, and their 8-bit C1 forms (`U+009B` is a CSI of its own) do
//! the same on terminals that honour them; bidi overrides reorder what the
//! user reads. So every such character is replaced by a visible escape:
//!
//! | characters | shown as |
//! |---|---|
//! | `\n`, `\r`, `\t` | `\n`, `\r`, `\t` (only `\r` in [`text`], which keeps lines and tabs) |
//! | other C0 controls (`U+0000`-`U+001F`) and DEL (`U+007F`) | `\x1b`, `\x07`, `\x7f`, ... |
//! | C1 controls (`U+0080`-`U+009F`) | `\u{9b}`, ... |
//! | bidi embeddings, overrides, isolates (`U+202A`-`U+202E`, `U+2066`-`U+2069`) | `\u{202e}`, ... |
//!
//! A backslash is left as it is: the escapes only need to be visible, not
//! reversible (`--json` output is the exact form). Text with nothing to
//! escape is returned borrowed, without a copy.
//!
//! Which function at which site: [`line`] for anything shown on one line or
//! in a table cell (names, titles, errors, reasons, log fields), [`text`]
//! for multi-line bodies (tool output, descriptions, model text, stored
//! messages).

use std::borrow::Cow;
use std::fmt::Write;

/// For one-line output: every control character is escaped, `\n` and `\t` too.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// For multi-line output: like [`line`], but `\n` and `\t` stay as they are.
pub fn text(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn needs_escape(c: char, keep_lines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_lines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(input: &str, keep_lines: bool) -> Cow<'_, str> {
    let Some(first) = input.find(|c| needs_escape(c, keep_lines)) else {
        return Cow::Borrowed(input);
    };
    let mut out = String::with_capacity(input.len() + 8);
    out.push_str(&input[..first]);
    for c in input[first..].chars() {
        if !needs_escape(c, keep_lines) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        for sample in [
            "",
            "plain words",
            "naïve café ✓ 日本",
            "a\\x1b literal backslash",
        ] {
            assert!(matches!(line(sample), Cow::Borrowed(s) if s == sample));
            assert!(matches!(text(sample), Cow::Borrowed(s) if s == sample));
        }
        assert!(matches!(text("two\nlines\tand a tab"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_sequences_become_visible() {
        assert_eq!(line("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(line("\x1b[2Jgone"), "\\x1b[2Jgone");
        assert_eq!(line("nul\0 del\x7f"), "nul\\x00 del\\x7f");
        assert_eq!(
            line("\u{9b}2J and \u{9d}0;t\u{9c}"),
            "\\u{9b}2J and \\u{9d}0;t\\u{9c}"
        );
        assert_eq!(line("\u{80}\u{9f}"), "\\u{80}\\u{9f}");
        assert_eq!(
            line("abc\u{202e}fed\u{2066}x\u{2069}"),
            "abc\\u{202e}fed\\u{2066}x\\u{2069}"
        );
    }

    #[test]
    fn line_escapes_line_breaks_and_text_keeps_them() {
        assert_eq!(line("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(text("a\nb\tc\rd"), "a\nb\tc\\rd");
        assert_eq!(text("x\x1b[2J\ny"), "x\\x1b[2J\ny");
    }

    #[test]
    fn nothing_escaped_is_left_raw() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        for escaped in [line(&all), text(&all)] {
            assert!(
                !escaped
                    .chars()
                    .any(|c| needs_escape(c, true) && c != '\n' && c != '\t'),
                "a control character survived"
            );
            assert!(!escaped.bytes().any(|b| b == 0x1b || b == 0x07));
        }
        assert!(!line(&all).contains('\n'));
        // Neighbours of the escaped ranges are ordinary characters.
        assert_eq!(line("\u{a0}\u{2029}\u{206a}"), "\u{a0}\u{2029}\u{206a}");
    }
}
