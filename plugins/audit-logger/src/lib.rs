//! plugin-audit-logger: an extension that records a one-line summary of every session and tool event in the plugin's kv state.
//!
//! Delivery is background, so the agent loop never waits for it. Each event
//! is one kv entry, `audit/<session>/<monotonic ns, 20 digits>-<point>`, so
//! a prefix listing of a session is its events in order. Entries hold
//! summaries (tool name, ok, output length, error message), never the tool
//! arguments or output themselves, which may hold secrets. Past
//! `max_entries` for a session, its oldest entries are deleted.

use agent_plugin_sdk::prelude::*;
use serde::Deserialize;

const PREFIX: &str = "audit/";
/// Stands in for the session id outside a session.
const NO_SESSION: &str = "none";
/// Keeps the key well under the host's 256-byte limit.
const MAX_SESSION_BYTES: usize = 128;
/// Error messages are summarised, not archived.
const MAX_MESSAGE_CHARS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Entries kept per session; the oldest go first.
    max_entries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
        }
    }
}

struct AuditLogger;

impl Extension for AuditLogger {
    fn describe() -> ExtensionInfo {
        [
            HookPoint::SessionStart,
            HookPoint::SessionEnd,
            HookPoint::BeforeToolCall,
            HookPoint::AfterToolCall,
            HookPoint::Error,
        ]
        .into_iter()
        .fold(ExtensionInfo::new(100), |info, point| {
            info.subscribe(Subscription::background(point))
        })
    }

    fn on_event(event: Event) -> Outcome {
        let config: Config = host::config_or_default();
        let session = session_part(event.session_id.as_deref());
        let entry = summary(&event, unix_ms()).to_string();
        let mut now = host::now();
        let mut key = entry_key(&session, now, event.point);
        // Two events of one point in the same nanosecond (background calls
        // may overlap) must not overwrite each other.
        while kv::get(&key).is_some() {
            now = now.wrapping_add(1);
            key = entry_key(&session, now, event.point);
        }
        if let Err(err) = kv::set_string(&key, &entry) {
            host::warn(&format!("could not record {} event: {err}", event.point));
            return Outcome::Continue;
        }
        let keys = kv::list(&format!("{PREFIX}{session}/"));
        for old in &keys[..excess(keys.len(), config.max_entries)] {
            kv::delete(old);
        }
        // Background: the host ignores the outcome.
        Outcome::Continue
    }
}

export_extension!(AuditLogger);

/// The session's part of the key: the id with anything but
/// `[A-Za-z0-9._-]` replaced, so it cannot add a `/` level, and shortened.
fn session_part(session_id: Option<&str>) -> String {
    let Some(id) = session_id.filter(|id| !id.is_empty()) else {
        return NO_SESSION.to_owned();
    };
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_SESSION_BYTES)
        .collect()
}

/// Zero-padded so byte order (kv-list order) is time order.
fn entry_key(session: &str, now_ns: u64, point: HookPoint) -> String {
    format!("{PREFIX}{session}/{now_ns:020}-{point}")
}

/// How many of a session's `count` entries (oldest first) to delete.
fn excess(count: usize, max_entries: usize) -> usize {
    count.saturating_sub(max_entries.max(1))
}

/// The recorded line: where and when, plus the few fields worth auditing.
fn summary(event: &Event, unix_ms: u64) -> Value {
    let payload = &event.payload;
    let mut entry = json!({
        "point": event.point.as_str(),
        "turn": event.turn,
        "session_id": event.session_id,
        "unix_ms": unix_ms,
    });
    let fields: &[&str] = match event.point {
        HookPoint::SessionStart => &["provider", "model"],
        HookPoint::SessionEnd => &["outcome", "turns"],
        HookPoint::BeforeToolCall => &["call_id", "name"],
        HookPoint::AfterToolCall => &["call_id", "name", "ok"],
        HookPoint::Error => &["source", "name"],
        _ => &[],
    };
    for &field in fields {
        if let Some(value) = payload.get(field) {
            entry[field] = value.clone();
        }
    }
    if event.point == HookPoint::AfterToolCall
        && let Some(output) = payload.get("output").and_then(Value::as_str)
    {
        entry["output_len"] = json!(output.len());
    }
    if event.point == HookPoint::Error
        && let Some(message) = payload.get("message").and_then(Value::as_str)
    {
        entry["message"] = json!(shorten(message));
    }
    entry
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Wall-clock time from WASI, for readers who need dates; the monotonic
/// reading in the key only orders entries.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(point: HookPoint, payload: Value) -> Event {
        Event {
            point,
            session_id: Some("s-1".into()),
            turn: 2,
            payload,
        }
    }

    #[test]
    fn keys_sort_by_time_within_a_session() {
        let early = entry_key("s-1", 999, HookPoint::SessionStart);
        let late = entry_key("s-1", 1_000, HookPoint::AfterToolCall);
        assert_eq!(early, "audit/s-1/00000000000000000999-session-start");
        assert!(early < late);
        assert_eq!(
            entry_key("s-1", u64::MAX, HookPoint::Error),
            "audit/s-1/18446744073709551615-error"
        );
    }

    #[test]
    fn session_ids_cannot_escape_their_prefix() {
        assert_eq!(session_part(None), "none");
        assert_eq!(session_part(Some("")), "none");
        assert_eq!(session_part(Some("20240101-ab.C_9")), "20240101-ab.C_9");
        assert_eq!(session_part(Some("a/b c")), "a_b_c");
        assert_eq!(
            session_part(Some(&"x".repeat(500))).len(),
            MAX_SESSION_BYTES
        );
    }

    #[test]
    fn summaries_hold_no_arguments_or_output() {
        let after = summary(
            &event(
                HookPoint::AfterToolCall,
                json!({"call_id": "c1", "name": "fs_read", "arguments": {"path": "/secret"},
                       "ok": true, "output": "sk-very-secret"}),
            ),
            7,
        );
        assert_eq!(
            after,
            json!({"point": "after-tool-call", "turn": 2, "session_id": "s-1", "unix_ms": 7,
                   "call_id": "c1", "name": "fs_read", "ok": true, "output_len": 14})
        );
        let text = after.to_string();
        assert!(!text.contains("secret") && !text.contains("arguments"));

        let before = summary(
            &event(
                HookPoint::BeforeToolCall,
                json!({"call_id": "c1", "name": "fs_read", "arguments": {"path": "/secret"}}),
            ),
            7,
        );
        assert!(before.get("arguments").is_none());
        assert_eq!(before["name"], "fs_read");
    }

    #[test]
    fn summaries_of_sessions_and_errors() {
        let start = summary(
            &event(
                HookPoint::SessionStart,
                json!({"session_id": "s-1", "provider": "mock", "model": "m"}),
            ),
            0,
        );
        assert_eq!(start["provider"], "mock");
        assert_eq!(start["model"], "m");
        let end = summary(
            &event(
                HookPoint::SessionEnd,
                json!({"session_id": "s-1", "outcome": "finished", "turns": 3}),
            ),
            0,
        );
        assert_eq!(end["outcome"], "finished");
        assert_eq!(end["turns"], 3);
        let error = summary(
            &event(
                HookPoint::Error,
                json!({"source": "tool", "name": null, "message": "é".repeat(600)}),
            ),
            0,
        );
        assert_eq!(error["source"], "tool");
        assert!(error["name"].is_null());
        let message = error["message"].as_str().unwrap();
        assert!(message.ends_with("...") && message.chars().count() == MAX_MESSAGE_CHARS + 3);
    }

    #[test]
    fn pruning_keeps_the_newest() {
        assert_eq!(excess(10, 10), 0);
        assert_eq!(excess(12, 10), 2);
        assert_eq!(excess(3, 0), 2);
        let config: Config = serde_json::from_value(json!({})).unwrap();
        assert_eq!(config.max_entries, 10_000);
    }
}
