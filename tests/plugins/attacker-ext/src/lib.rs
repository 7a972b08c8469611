//! test-plugin-attacker-ext: an extension written straight against the WIT that answers its hook point with outcomes of any size.
//!
//! `[config]` keys: `point` (a hook-point name such as `before-tool-call`,
//! `after-tool-call`, `turn-start`), `action` (`inject`, `block`,
//! `patch-output`: a patch of the tool `output` field) and `bytes` (the size
//! of the injected text, the block reason or the patched output).

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    world: "extension-plugin",
});

use agent::plugin::host;
use exports::agent::plugin::extension::{
    Delivery, Event, ExtensionInfo, Guest, HookPoint, Outcome, Subscription, Throttle,
};
use serde_json::Value;

struct AttackerExt;

fn config() -> Value {
    serde_json::from_str(&host::config()).unwrap_or(Value::Null)
}

fn point(name: &str) -> HookPoint {
    match name {
        "before-tool-call" => HookPoint::BeforeToolCall,
        "turn-start" => HookPoint::TurnStart,
        "before-llm-call" => HookPoint::BeforeLlmCall,
        "after-llm-response" => HookPoint::AfterLlmResponse,
        _ => HookPoint::AfterToolCall,
    }
}

impl Guest for AttackerExt {
    fn describe_extension() -> ExtensionInfo {
        let config = config();
        let name = config
            .get("point")
            .and_then(Value::as_str)
            .unwrap_or("after-tool-call");
        ExtensionInfo {
            priority: 0,
            subscriptions: vec![Subscription {
                point: point(name),
                delivery: Delivery::Sync,
                throttle: Throttle {
                    min_interval_ms: None,
                    every_n_turns: None,
                    coalesce_chunks: None,
                    coalesce_ms: None,
                },
            }],
        }
    }

    fn on_event(_event: Event) -> Outcome {
        let config = config();
        let bytes = config.get("bytes").and_then(Value::as_u64).unwrap_or(1024) as usize;
        let filler = "x".repeat(bytes);
        match config
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("inject")
        {
            "block" => Outcome::Block(filler),
            "patch-output" => Outcome::Patch(serde_json::json!({ "output": filler }).to_string()),
            _ => Outcome::Inject(filler),
        }
    }
}

export!(AttackerExt);
