//! test-plugin-attacker: a tool plugin written straight against the WIT, whose `describe` answer is whatever its `[config]` asks for.
//!
//! The host must treat everything a plugin declares as untrusted input. This
//! plugin does not use the SDK, so nothing on the guest side cleans up what
//! it declares: the tests rewrite its manifest `[config]` to pick an attack
//! and the host's loader is what must contain it.
//!
//! `[config]` keys:
//! - `describe`: `ok` (one tool per name in `names`, default `["ok"]`),
//!   `many-tools` (`count` tools), `huge-description` (`bytes`),
//!   `huge-title` (`bytes`), `duplicate-names` (`count` tools all named
//!   `twin`), `slow-fail` (spins `spin_ms`, then declares an invalid tool name)
//! - `names`: tool names for `ok`; a tool named `spin` busy-waits `ms`
//!   milliseconds and one named `kv_dump` lists the plugin's key-value state.

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    world: "tool-plugin",
});

use agent::plugin::host;
use agent::plugin::types::{CallContext, ContentPart, ToolError, ToolHints, ToolOutput, ToolSpec};
use serde_json::Value;

struct Attacker;

fn config() -> Value {
    serde_json::from_str(&host::config()).unwrap_or(Value::Null)
}

fn number(config: &Value, key: &str, default: u64) -> u64 {
    config.get(key).and_then(Value::as_u64).unwrap_or(default)
}

fn spec(name: String, description: String) -> ToolSpec {
    ToolSpec {
        name,
        title: None,
        description,
        input_schema: r#"{"type":"object"}"#.to_owned(),
        output_schema: None,
        hints: ToolHints::empty(),
    }
}

impl exports::agent::plugin::tool::Guest for Attacker {
    fn describe() -> Vec<ToolSpec> {
        let config = config();
        let kind = config
            .get("describe")
            .and_then(Value::as_str)
            .unwrap_or("ok");
        match kind {
            "many-tools" => (0..number(&config, "count", 100_000))
                .map(|i| spec(format!("t{i}"), "one of very many".to_owned()))
                .collect(),
            "huge-description" => vec![spec(
                "ok".to_owned(),
                "d".repeat(number(&config, "bytes", 1 << 20) as usize),
            )],
            "huge-title" => {
                let mut tool = spec("ok".to_owned(), "Answers ok.".to_owned());
                tool.title = Some("t".repeat(number(&config, "bytes", 1 << 20) as usize));
                vec![tool]
            }
            "duplicate-names" => (0..number(&config, "count", 300_000))
                .map(|_| spec("twin".to_owned(), "the same name again".to_owned()))
                .collect(),
            "slow-fail" => {
                let started = host::monotonic_now();
                let spin_ns = number(&config, "spin_ms", 500) * 1_000_000;
                while host::monotonic_now().saturating_sub(started) < spin_ns {
                    std::hint::spin_loop();
                }
                vec![spec(
                    "not a valid name!".to_owned(),
                    "slow and wrong".to_owned(),
                )]
            }
            _ => {
                let names: Vec<String> = config
                    .get("names")
                    .and_then(Value::as_array)
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(|n| n.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_else(|| vec!["ok".to_owned()]);
                names
                    .into_iter()
                    .map(|name| spec(name, "Answers ok.".to_owned()))
                    .collect()
            }
        }
    }

    fn invoke(name: String, args: String, _ctx: CallContext) -> Result<ToolOutput, ToolError> {
        let args: Value = serde_json::from_str(&args).unwrap_or(Value::Null);
        match name.as_str() {
            // Holds its instance for `ms` milliseconds of wall-clock time.
            "spin" => {
                let started = host::monotonic_now();
                let spin_ns = number(&args, "ms", 50) * 1_000_000;
                while host::monotonic_now().saturating_sub(started) < spin_ns {
                    std::hint::spin_loop();
                }
                Ok(text("spun".to_owned()))
            }
            // Reads the plugin's key-value state, to show whose state it got.
            "kv_dump" => {
                let keys = host::kv_list("");
                let mut lines = Vec::new();
                for key in keys {
                    let value = host::kv_get(&key).unwrap_or_default();
                    lines.push(format!("{key}={}", String::from_utf8_lossy(&value)));
                }
                Ok(text(lines.join("\n")))
            }
            _ => Ok(text(format!("ok from {name}"))),
        }
    }
}

fn text(text: String) -> ToolOutput {
    ToolOutput {
        content: vec![ContentPart::Text(text)],
        structured: None,
    }
}

export!(Attacker);
