//! test-plugin-ext-probe: an extension on all 11 hook points whose outcome at each is set by its configuration, for the host's tests.
//!
//! Configuration (host `config()`):
//! `{"tag": "a", "priority": 0, "actions": {"<hook point>": {"kind": "...", "value": <json>, "record": bool}}}`.
//! Points without an action continue. Kinds: `continue`, `record` (record
//! and continue), `patch` (value is the patch), `block` and `inject` (value
//! is the text), `append-output` (after-tool-call: output + value),
//! `append-system` (before-llm-call: system + value), `trap` (panic),
//! `loop` (spin forever), `eat-memory` (allocate until the limit traps),
//! `sleep` (busy-wait value milliseconds). With `"record": true` the event
//! is first appended to kv as `events/<20-digit index>`:
//! `{"tag", "point", "turn", "session_id", "payload"}`.
//!
//! Nothing is validated or recovered from beyond logging: the host's tests
//! assert on exactly what happens.

use std::hint::black_box;

use agent_plugin_sdk::prelude::*;

const MIB: usize = 1 << 20;
const RECORD_PREFIX: &str = "events/";

struct Probe;

impl Extension for Probe {
    fn describe() -> ExtensionInfo {
        // `priority` lets a test order two copies of the probe; 0 otherwise.
        let priority = host::config()
            .get("priority")
            .and_then(Value::as_i64)
            .and_then(|priority| i32::try_from(priority).ok())
            .unwrap_or(0);
        HookPoint::ALL
            .into_iter()
            .fold(ExtensionInfo::new(priority), |info, point| {
                info.subscribe(Subscription::sync(point))
            })
    }

    fn on_event(event: Event) -> Outcome {
        let config = host::config();
        let Some(action) = config
            .get("actions")
            .and_then(|actions| actions.get(event.point.as_str()))
        else {
            return Outcome::Continue;
        };
        let kind = action
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("continue");
        let value = action.get("value").cloned().unwrap_or(Value::Null);
        let record = kind == "record" || action.get("record") == Some(&Value::Bool(true));
        if record {
            record_event(config.get("tag").cloned().unwrap_or(Value::Null), &event);
        }
        act(kind, value, &event)
    }
}

export_extension!(Probe);

fn act(kind: &str, value: Value, event: &Event) -> Outcome {
    let point = event.point;
    match kind {
        "continue" | "record" => Outcome::Continue,
        "patch" => Outcome::Patch(value),
        "block" => Outcome::Block(text(&value, point, kind)),
        "inject" => Outcome::Inject(text(&value, point, kind)),
        "append-output" => {
            let output = event.str_field("output").unwrap_or_default();
            Outcome::patch(json!({ "output": format!("{output}{}", text(&value, point, kind)) }))
        }
        "append-system" => {
            let system = event.str_field("system").unwrap_or_default();
            Outcome::patch(json!({ "system": format!("{system}{}", text(&value, point, kind)) }))
        }
        "trap" => panic!("probe trap at {point}"),
        "loop" => spin(),
        "eat-memory" => eat_memory(),
        "sleep" => {
            let ms = value.as_u64().unwrap_or(0);
            let until = host::now().saturating_add(ms.saturating_mul(1_000_000));
            while host::now() < until {
                std::hint::spin_loop();
            }
            Outcome::Continue
        }
        other => {
            host::warn(&format!(
                "probe: unknown action kind `{other}` at {point}; continuing"
            ));
            Outcome::Continue
        }
    }
}

/// A string value as is, anything else as its JSON text; a missing value
/// as a text naming the action, so a test can still match on it.
fn text(value: &Value, point: HookPoint, kind: &str) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => format!("probe {kind} at {point}"),
        other => other.to_string(),
    }
}

fn record_event(tag: Value, event: &Event) {
    let index = kv::list(RECORD_PREFIX).len();
    let key = format!("{RECORD_PREFIX}{index:020}");
    let entry = json!({
        "tag": tag,
        "point": event.point.as_str(),
        "turn": event.turn,
        "session_id": event.session_id,
        "payload": event.payload,
    });
    if let Err(err) = kv::set_json(&key, &entry) {
        host::warn(&format!(
            "probe: could not record the {} event: {err}",
            event.point
        ));
    }
}

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        // black_box keeps the optimizer from proving the loop useless.
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Touches one byte per page of every MiB so the memory is really used;
/// the allocation that crosses the limit aborts (traps) the instance.
fn eat_memory() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; MIB];
        for i in (0..MIB).step_by(4096) {
            chunk[i] = 1;
        }
        chunks.push(black_box(chunk));
    }
}
