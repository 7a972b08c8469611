//! plugin-loop-breaker: an extension that stops a run when the model keeps making the same tool call with the same arguments.
//!
//! Every `before-tool-call` counts its call (tool name plus the arguments
//! as canonical JSON, keys sorted, so key order does not make two calls
//! differ) in the session's state. The `max_repeats`-th identical call is
//! blocked, and a flag makes the next `before-llm-call` block too, which
//! ends the run: a model that repeats itself that often is not going to
//! stop on its own, and each further turn costs tokens.
//!
//! Counting needs session state, so outside a session this does nothing.

use agent_plugin_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// Set (to the reason) when a call was blocked; the next model call is
/// blocked with the same reason and the flag cleared.
const STOPPED_KEY: &str = "stopped";
/// Prefix of one counter per distinct call.
const CALLS_PREFIX: &str = "calls/";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// The identical call that would run for this many times is blocked.
    max_repeats: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_repeats: 3 }
    }
}

/// What is stored per distinct call; the name is there for whoever
/// inspects the session state.
#[derive(Debug, Serialize, Deserialize)]
struct Counter {
    name: String,
    count: u32,
}

struct LoopBreaker;

impl Extension for LoopBreaker {
    fn describe() -> ExtensionInfo {
        ExtensionInfo::new(0)
            .subscribe(Subscription::sync(HookPoint::BeforeToolCall))
            .subscribe(Subscription::sync(HookPoint::BeforeLlmCall))
    }

    fn on_event(event: Event) -> Outcome {
        if event.session_id.is_none() {
            host::debug("no agent session, so no session state to count calls in; not checking");
            return Outcome::Continue;
        }
        match event.point {
            HookPoint::BeforeToolCall => before_tool_call(&event),
            HookPoint::BeforeLlmCall => before_llm_call(),
            _ => Outcome::Continue,
        }
    }
}

export_extension!(LoopBreaker);

fn before_tool_call(event: &Event) -> Outcome {
    let Some(name) = event.str_field("name") else {
        return Outcome::Continue;
    };
    // Another call of this turn already tripped the breaker.
    if let Some(reason) = stopped_reason() {
        return Outcome::Block(reason);
    }
    let arguments = event.payload.get("arguments").unwrap_or(&Value::Null);
    let key = call_key(name, arguments);
    let previous = session::get(&key)
        .and_then(|bytes| serde_json::from_slice::<Counter>(&bytes).ok())
        .map_or(0, |counter| counter.count);
    let count = previous.saturating_add(1);
    let counter = Counter {
        name: name.to_owned(),
        count,
    };
    let stored = serde_json::to_vec(&counter)
        .map_err(|err| err.to_string())
        .and_then(|bytes| session::set(&key, &bytes).map_err(|err| err.to_string()));
    if let Err(why) = stored {
        // Without a count there is no evidence of a loop; never block on a
        // guess.
        host::warn(&format!("could not count the call to `{name}`: {why}"));
        return Outcome::Continue;
    }
    if count < max_repeats() {
        return Outcome::Continue;
    }
    let reason = format!(
        "the same call `{name}` with the same arguments was made {count} times; \
         the run is stopped to break the loop"
    );
    if let Err(err) = session::set(STOPPED_KEY, reason.as_bytes()) {
        host::warn(&format!(
            "could not flag the session as stopped ({err}); only the call is blocked"
        ));
    }
    Outcome::Block(reason)
}

fn before_llm_call() -> Outcome {
    let Some(reason) = stopped_reason() else {
        return Outcome::Continue;
    };
    // This block ends the run. In a chat the session goes on with the
    // user's next message, which deserves a fresh start.
    session::delete(STOPPED_KEY);
    for key in session::list(CALLS_PREFIX) {
        session::delete(&key);
    }
    Outcome::Block(reason)
}

fn stopped_reason() -> Option<String> {
    session::get(STOPPED_KEY).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn max_repeats() -> u32 {
    let config: Config = host::config_or_default();
    if config.max_repeats < 2 {
        host::warn(&format!(
            "max_repeats = {} would block every call; using 2",
            config.max_repeats
        ));
    }
    config.max_repeats.max(2)
}

/// The session key of a call: a hash, because canonical arguments can be
/// far longer than the 256-byte key limit.
fn call_key(name: &str, arguments: &Value) -> String {
    // `\0` is not valid in a tool name, so `a` + `{"b"...}` can never read
    // the same as `a{` + ....
    let text = format!("{name}\0{}", canonical_json(arguments));
    format!("{CALLS_PREFIX}{:016x}", fnv1a64(text.as_bytes()))
}

/// JSON text with every object's keys sorted and no whitespace, whatever
/// order the keys arrived in.
fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// 64-bit FNV-1a: tiny, and collisions among one session's calls are not a
/// practical concern.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [3, {"k": null, "j": true}], "x": "s"}}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":"s","y":[3,{"j":true,"k":null}]},"b":1}"#
        );
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": "s", "y": [3, {"j": true, "k": null}]}, "b": 1}"#)
                .unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
    }

    #[test]
    fn canonical_json_escapes_and_keeps_scalars() {
        assert_eq!(
            canonical_json(&json!({"q\"uote": "line\nbreak", "n": -1.5, "e": []})),
            r#"{"e":[],"n":-1.5,"q\"uote":"line\nbreak"}"#
        );
        assert_eq!(canonical_json(&Value::Null), "null");
        // Array order is meaning, not presentation.
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
    }

    #[test]
    fn call_keys_differ_by_name_and_arguments_only() {
        let args = json!({"path": "/a", "depth": 2});
        let same: Value = serde_json::from_str(r#"{"depth": 2, "path": "/a"}"#).unwrap();
        assert_eq!(call_key("fs_list", &args), call_key("fs_list", &same));
        assert_ne!(call_key("fs_list", &args), call_key("fs_read", &args));
        assert_ne!(
            call_key("fs_list", &args),
            call_key("fs_list", &json!({"path": "/a", "depth": 3}))
        );
        let key = call_key("fs_list", &args);
        assert!(key.starts_with(CALLS_PREFIX) && key.len() == CALLS_PREFIX.len() + 16);
    }

    #[test]
    fn fnv_matches_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn config_defaults_to_three() {
        let config: Config = serde_json::from_value(json!({})).unwrap();
        assert_eq!(config.max_repeats, 3);
        assert!(serde_json::from_value::<Config>(json!({"max_repeat": 2})).is_err());
    }
}
