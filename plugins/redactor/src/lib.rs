//! plugin-redactor: an extension that masks API keys, tokens and passwords in tool output before the model sees it.
//!
//! It runs at `after-tool-call` with priority -100; lower runs first, so
//! every later extension, and the model, only ever sees the masked text.
//!
//! The scanner is hand-written rather than a regex, to keep the component
//! small; it makes one pass over the text and only starts a match at a word
//! boundary, so `skill` or `task-sk-...` never look like an `sk-` key.

use agent_plugin_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Shortest token body (after a known prefix such as `sk-`) or
    /// `password=` value that is masked. Shorter ones are too likely to be
    /// ordinary words or placeholders.
    min_secret_length: usize,
    /// More literal prefixes of secrets used where this runs, such as
    /// `"acme_live_"`; a prefix followed by at least `min_secret_length`
    /// characters of `[A-Za-z0-9_-]` is masked as `[REDACTED:token]`.
    extra_prefixes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_secret_length: 16,
            extra_prefixes: Vec::new(),
        }
    }
}

struct Redactor;

impl Extension for Redactor {
    fn describe() -> ExtensionInfo {
        // Before every other after-tool-call hook, so none of them (nor the
        // model) sees the secret.
        ExtensionInfo::new(-100).subscribe(Subscription::sync(HookPoint::AfterToolCall))
    }

    fn on_event(event: Event) -> Outcome {
        let Some(output) = event.str_field("output") else {
            return Outcome::Continue;
        };
        let config: Config = host::config_or_default();
        match redact(output, &config) {
            Some(masked) => Outcome::patch(json!({ "output": masked })),
            None => Outcome::Continue,
        }
    }
}

export_extension!(Redactor);

/// A span of the text to replace with `[REDACTED:<kind>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    start: usize,
    end: usize,
    kind: &'static str,
}

/// The text with every secret masked, or `None` when there was none.
fn redact(text: &str, config: &Config) -> Option<String> {
    let bytes = text.as_bytes();
    let min = config.min_secret_length.max(1);
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let found = if at_boundary(bytes, i) {
            find_at(bytes, i, min, &config.extra_prefixes)
        } else {
            None
        };
        match found {
            Some(found) => {
                // Every match starts and ends next to an ASCII byte, so these
                // are char boundaries.
                out.push_str(&text[copied..found.start]);
                out.push_str("[REDACTED:");
                out.push_str(found.kind);
                out.push(']');
                copied = found.end;
                i = found.end;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// Matches only start where a word does: `ask-...` and `task-sk-...` must
/// not be read as `sk-...`. Non-ASCII bytes count as letters.
fn at_boundary(bytes: &[u8], i: usize) -> bool {
    i == 0 || !(is_word(&bytes[i - 1]) || bytes[i - 1] == b'-' || !bytes[i - 1].is_ascii())
}

fn find_at(bytes: &[u8], i: usize, min: usize, extra_prefixes: &[String]) -> Option<Found> {
    let rest = &bytes[i..];
    let whole = |end: usize, kind| {
        Some(Found {
            start: i,
            end,
            kind,
        })
    };
    if rest.starts_with(b"-----BEGIN ") {
        return private_key(bytes, i);
    }
    if let Some(end) = prefixed(rest, b"sk-ant-", min, is_dash_token) {
        return whole(i + end, "anthropic-key");
    }
    // `sk-proj-...`, `sk-svcacct-...` and plain `sk-...`; real keys always
    // carry digits, `sk-learn-style-words` do not.
    if let Some(end) = prefixed(rest, b"sk-", min, is_dash_token)
        && rest[3..end].iter().any(u8::is_ascii_digit)
    {
        return whole(i + end, "openai-key");
    }
    if let Some(end) = aws_access_key(rest) {
        return whole(i + end, "aws-access-key");
    }
    if let Some(end) = prefixed(rest, b"github_pat_", min, is_word) {
        return whole(i + end, "github-token");
    }
    for prefix in [b"ghp_", b"gho_", b"ghs_", b"ghu_", b"ghr_"] {
        if let Some(end) = prefixed(rest, prefix, min, u8::is_ascii_alphanumeric) {
            return whole(i + end, "github-token");
        }
    }
    if rest.len() > 5
        && rest.starts_with(b"xox")
        && b"abprs".contains(&rest[3])
        && rest[4] == b'-'
        && let Some(end) = prefixed(rest, &rest[..5], min, is_dash_token)
    {
        return whole(i + end, "slack-token");
    }
    if let Some(found) = bearer(bytes, i, min) {
        return Some(found);
    }
    for prefix in extra_prefixes.iter().filter(|prefix| !prefix.is_empty()) {
        if let Some(end) = prefixed(rest, prefix.as_bytes(), min, is_dash_token) {
            return whole(i + end, "token");
        }
    }
    assignment(bytes, i, min)
}

fn is_word(byte: &u8) -> bool {
    byte.is_ascii_alphanumeric() || *byte == b'_'
}

fn is_dash_token(byte: &u8) -> bool {
    is_word(byte) || *byte == b'-'
}

/// The length of `prefix` plus a body of at least `min` bytes of `body`
/// characters, if `text` starts with that.
fn prefixed(text: &[u8], prefix: &[u8], min: usize, body: fn(&u8) -> bool) -> Option<usize> {
    let after = text.strip_prefix(prefix)?;
    let len = after.iter().take_while(|byte| body(byte)).count();
    (len >= min).then_some(prefix.len() + len)
}

/// `AKIA` (long-term) or `ASIA` (temporary) and exactly 16 upper-case
/// letters or digits.
fn aws_access_key(text: &[u8]) -> Option<usize> {
    if !(text.starts_with(b"AKIA") || text.starts_with(b"ASIA")) {
        return None;
    }
    let len = text[4..]
        .iter()
        .take_while(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
        .count();
    let followed_by_word = text.get(4 + len).is_some_and(is_word);
    (len == 16 && !followed_by_word).then_some(20)
}

/// `Bearer <token>` (any case): only the token is masked, so the reader can
/// still see what kind of header it was.
fn bearer(bytes: &[u8], i: usize, min: usize) -> Option<Found> {
    let word = bytes.get(i..i + 6)?;
    if !word.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let spaces = bytes[i + 6..]
        .iter()
        .take_while(|byte| matches!(byte, b' ' | b'\t'))
        .count();
    if spaces == 0 {
        return None;
    }
    let start = i + 6 + spaces;
    let len = bytes[start..]
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || b"-._~+/=".contains(byte))
        .count();
    (len >= min).then_some(Found {
        start,
        end: start + len,
        kind: "bearer-token",
    })
}

/// A PEM private key block, through its `-----END ...-----` line (or to the
/// end of the text when that was cut off: half a key is still a leak).
fn private_key(bytes: &[u8], i: usize) -> Option<Found> {
    let header_end = find(bytes, i + 11, b"-----")?;
    if header_end - i > 80 || find(&bytes[..header_end], i, b"PRIVATE KEY").is_none() {
        return None;
    }
    let end = find(bytes, header_end + 5, b"-----END ")
        .and_then(|footer| find(bytes, footer + 9, b"-----"))
        .map_or(bytes.len(), |close| close + 5);
    Some(Found {
        start: i,
        end,
        kind: "private-key",
    })
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| from + at)
}

/// Names whose value is a secret, and the kind each is reported as.
const SECRET_NAMES: [(&str, &str); 6] = [
    ("password", "password"),
    ("passwd", "password"),
    ("secret", "secret"),
    ("token", "token"),
    ("apikey", "key"),
    ("key", "key"),
];

/// `<name>=value`, `<name>: value`, `"<name>": "value"` and the like, where
/// the name ends in one of [`SECRET_NAMES`] as a separate part (`api_key`,
/// `X-Api-Key`, `accessToken`, not `monkey`). Only the value is masked.
fn assignment(bytes: &[u8], i: usize, min: usize) -> Option<Found> {
    let name_len = bytes[i..]
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
        .count();
    let name = &bytes[i..i + name_len];
    let keyword = secret_name_kind(name)?;

    let mut at = i + name_len;
    at = skip_quote(bytes, at);
    at += count_spaces(&bytes[at..]);
    match bytes.get(at) {
        Some(b'=') => at += 1,
        Some(b':') => {
            at += if bytes.get(at + 1) == Some(&b'=') {
                2
            } else {
                1
            }
        }
        _ => return None,
    }
    at += count_spaces(&bytes[at..]);
    let start = skip_quote(bytes, at);
    let len = bytes[start..]
        .iter()
        .take_while(|byte| !byte.is_ascii_whitespace() && !b"\"'`\\,;&)]}<>".contains(byte))
        .count();
    let value = &bytes[start..start + len];
    // `$VAR`, `${VAR}` and `%VAR%` are references, not secrets; the model
    // may need to see which variable a file uses.
    if len < min || value.starts_with(b"[REDACTED") || matches!(value[0], b'$' | b'%') {
        return None;
    }
    // A `password` is any long value, but keys and tokens without a digit
    // are more often identifiers (`sort_key: created_at_descending`).
    if keyword != "password" && keyword != "secret" && !value.iter().any(u8::is_ascii_digit) {
        return None;
    }
    // A value that is itself a recognisable key is reported as that kind.
    let kind = find_at(bytes, start, min, &[])
        .filter(|found| found.start == start && found.end == start + len)
        .map_or(keyword, |found| found.kind);
    Some(Found {
        start,
        end: start + len,
        kind,
    })
}

/// The kind of secret `name` holds, if its last part is one of
/// [`SECRET_NAMES`].
fn secret_name_kind(name: &[u8]) -> Option<&'static str> {
    SECRET_NAMES.iter().find_map(|&(word, kind)| {
        let word = word.as_bytes();
        if name.len() < word.len() {
            return None;
        }
        let at = name.len() - word.len();
        if !name[at..].eq_ignore_ascii_case(word) {
            return None;
        }
        let separate = at == 0
            || matches!(name[at - 1], b'_' | b'-' | b'.')
            // camelCase: `apiKey`, `accessToken`.
            || (name[at].is_ascii_uppercase()
                && (name[at - 1].is_ascii_lowercase() || name[at - 1].is_ascii_digit()));
        separate.then_some(kind)
    })
}

/// Past one quote, also a JSON-escaped one (`\"`), if there is one at `at`.
fn skip_quote(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at..) {
        Some([b'"' | b'\'', ..]) => at + 1,
        Some([b'\\', b'"', ..]) => at + 2,
        _ => at,
    }
}

fn count_spaces(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|byte| matches!(byte, b' ' | b'\t'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        redact(text, &Config::default()).unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn masks_known_key_formats() {
        let cases = [
            (
                "key sk-abcdefghijklmnop1234567890 end",
                "key [REDACTED:openai-key] end",
            ),
            (
                "sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx_yz-0123",
                "[REDACTED:openai-key]",
            ),
            (
                "use sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv-wxyz",
                "use [REDACTED:anthropic-key]",
            ),
            (
                "aws AKIAIOSFODNN7EXAMPLE.",
                "aws [REDACTED:aws-access-key].",
            ),
            (
                "ghp_0123456789abcdefghijABCDEFGHIJklmnop",
                "[REDACTED:github-token]",
            ),
            (
                "(github_pat_11ABCDEFG0123456789_abcdefghij)",
                "([REDACTED:github-token])",
            ),
            (
                "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
                "[REDACTED:slack-token]",
            ),
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                "Authorization: Bearer [REDACTED:bearer-token]",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(masked(text), want, "for {text:?}");
        }
    }

    #[test]
    fn masks_assigned_secrets_but_keeps_the_name() {
        let cases = [
            (
                "password=correcthorsebattery",
                "password=[REDACTED:password]",
            ),
            (
                r#"{"api_key": "abcd1234efgh5678ijkl", "n": 1}"#,
                r#"{"api_key": "[REDACTED:key]", "n": 1}"#,
            ),
            (
                "DB_PASSWORD: 'hunter2hunter2hunter2'",
                "DB_PASSWORD: '[REDACTED:password]'",
            ),
            (
                "accessToken=0a1b2c3d4e5f6a7b8c9d&x=1",
                "accessToken=[REDACTED:token]&x=1",
            ),
            (
                "X-Api-Key: 9f8e7d6c5b4a39281706",
                "X-Api-Key: [REDACTED:key]",
            ),
            (
                r#"{\"client_secret\":\"AbCdEfGhIjKlMnOpQr\"}"#,
                r#"{\"client_secret\":\"[REDACTED:secret]\"}"#,
            ),
            (
                "OPENAI_API_KEY=sk-proj-0123456789abcdefghij",
                "OPENAI_API_KEY=[REDACTED:openai-key]",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(masked(text), want, "for {text:?}");
        }
    }

    #[test]
    fn masks_private_key_blocks() {
        let pem = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\nafter";
        assert_eq!(masked(pem), "before\n[REDACTED:private-key]\nafter");
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIE";
        assert_eq!(masked(cut), "[REDACTED:private-key]");
        let public = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----";
        assert_eq!(redact(public, &Config::default()), None);
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let texts = [
            "skill task-force ask-me-anything-about-everything-here",
            "sk-learn-pipelines-are-described-here",
            "task-sk-abcdefghijklmnop1234567890",
            "sk-short1",
            "AKIA123 and AKIAIOSFODNN7EXAMPLEX",
            "ghp_short and ghpX_0123456789abcdefghij",
            "the key is important; keyboard: qwertyuiopasdfghjkl",
            "monkey: bananabananabanana1234",
            "max_tokens: 4096, tokens=12345678901234567890",
            "sort_key: created_at_descending_order",
            "password: short",
            "api_key=${OPENAI_API_KEY_FROM_THE_ENVIRONMENT}",
            "Bearer token",
            "Bearer: abc",
            "ünïcödé sk- téxt with password and = signs",
            "",
        ];
        for text in texts {
            assert_eq!(redact(text, &Config::default()), None, "for {text:?}");
        }
    }

    #[test]
    fn honours_config() {
        let config = Config {
            min_secret_length: 8,
            extra_prefixes: vec!["acme_live_".into(), String::new()],
        };
        assert_eq!(
            redact("k=acme_live_abcdefgh", &config).as_deref(),
            Some("k=[REDACTED:token]")
        );
        assert_eq!(
            redact("password=abcdefgh", &config).as_deref(),
            Some("password=[REDACTED:password]")
        );
        assert_eq!(redact("password=abcdefgh", &Config::default()), None);
        let parsed: Config = serde_json::from_value(json!({"min_secret_length": 20})).unwrap();
        assert_eq!(parsed.min_secret_length, 20);
        assert!(parsed.extra_prefixes.is_empty());
        assert!(serde_json::from_value::<Config>(json!({"min_length": 2})).is_err());
    }

    #[test]
    fn keeps_surrounding_unicode_intact() {
        assert_eq!(
            masked("« sk-abcdefghijklmnop1234567890 » ✓"),
            "« [REDACTED:openai-key] » ✓"
        );
        assert_eq!(
            masked("pässword=abcdefghijklmnopq1 and password=ünïcödé-sëcrët-välüé"),
            "pässword=abcdefghijklmnopq1 and password=[REDACTED:password]"
        );
    }
}
