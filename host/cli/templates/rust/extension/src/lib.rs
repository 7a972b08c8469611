//! {{name}}: an agent-host extension plugin. It counts tool calls, cuts long tool outputs, and logs a summary when the session ends.

wit_bindgen::generate!({ path: "wit", world: "extension-plugin" });

use agent::plugin::host;
use agent::plugin::types::LogLevel;
use exports::agent::plugin::extension::{
    Delivery, Event, ExtensionInfo, Guest, HookPoint, Outcome, Subscription, Throttle,
};
use serde_json::{Value, json};

struct Extension;

/// No throttling: the host may still apply its own from its config.
const EVERY_TIME: Throttle = Throttle {
    min_interval_ms: None,
    every_n_turns: None,
    coalesce_chunks: None,
    coalesce_ms: None,
};

impl Guest for Extension {
    /// Called once per plugin version; the host calls `on_event` only for
    /// the points subscribed here.
    fn describe_extension() -> ExtensionInfo {
        ExtensionInfo {
            priority: 0,
            subscriptions: vec![
                // The turn waits for this one (within the host's budget).
                Subscription { point: HookPoint::AfterToolCall, delivery: Delivery::Sync, throttle: EVERY_TIME },
                // Fire and forget: nothing waits for it.
                Subscription { point: HookPoint::SessionEnd, delivery: Delivery::Background, throttle: EVERY_TIME },
            ],
        }
    }

    fn on_event(event: Event) -> Outcome {
        let payload: Value = serde_json::from_str(&event.payload).unwrap_or_default();
        match event.point {
            HookPoint::AfterToolCall => after_tool_call(&payload),
            HookPoint::SessionEnd => {
                let calls = count("calls");
                host::log(LogLevel::Info, &format!("session ended; {calls} tool call(s) seen so far"));
                Outcome::Continue
            }
            _ => Outcome::Continue,
        }
    }
}

/// Counts the call and cuts an output longer than `max_output_chars` (the
/// manifest's [config]) with a patch of the payload's `output` field.
fn after_tool_call(payload: &Value) -> Outcome {
    let calls = count("calls") + 1;
    if let Err(err) = host::kv_set("calls", calls.to_string().as_bytes()) {
        host::log(LogLevel::Warn, &format!("cannot count the call: {err}"));
    }
    let config: Value = serde_json::from_str(&host::config()).unwrap_or_default();
    let max = config["max_output_chars"].as_u64().unwrap_or(4000) as usize;
    match payload["output"].as_str() {
        Some(output) if output.chars().count() > max => {
            let cut: String = output.chars().take(max).collect();
            Outcome::Patch(json!({ "output": format!("{cut}... [cut by {{name}}]") }).to_string())
        }
        _ => Outcome::Continue,
    }
}

fn count(key: &str) -> u64 {
    host::kv_get(key)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

export!(Extension);
