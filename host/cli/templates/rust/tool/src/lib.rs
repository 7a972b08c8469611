//! {{name}}: an agent-host tool plugin. `describe` says what the tools are; `invoke` runs one.

wit_bindgen::generate!({ path: "wit", world: "tool-plugin" });

use agent::plugin::host;
use agent::plugin::types::{ContentPart, LogLevel, ToolHints};
use exports::agent::plugin::tool::{CallContext, Guest, ToolError, ToolOutput, ToolSpec};
use serde_json::{Value, json};

struct Plugin;

impl Guest for Plugin {
    /// Called once per plugin version; the host caches the answer.
    fn describe() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "{{snake}}".to_owned(),
            title: Some("Greet".to_owned()),
            description: "Greet someone by name, and say how many greetings came before.".to_owned(),
            // The host checks every call's arguments against this JSON
            // Schema before the plugin runs.
            input_schema: json!({
                "type": "object",
                "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 100 } },
                "required": ["name"],
                "additionalProperties": false
            })
            .to_string(),
            output_schema: None,
            hints: ToolHints::IDEMPOTENT | ToolHints::PARALLEL_SAFE,
        }]
    }

    fn invoke(name: String, args_json: String, ctx: CallContext) -> Result<ToolOutput, ToolError> {
        match name.as_str() {
            "{{snake}}" => greet(&args_json, &ctx),
            // A tool error is data for the model: it can correct itself.
            other => Err(ToolError::InvalidArguments(format!("no tool named {other}"))),
        }
    }
}

fn greet(args_json: &str, ctx: &CallContext) -> Result<ToolOutput, ToolError> {
    let args: Value = serde_json::from_str(args_json)
        .map_err(|err| ToolError::InvalidArguments(format!("arguments are not JSON: {err}")))?;
    let name = args["name"].as_str().unwrap_or("you");

    // The manifest's [config] table (or the host owner's replacement).
    let config: Value = serde_json::from_str(&host::config()).unwrap_or_default();
    let greeting = config["greeting"].as_str().unwrap_or("Hello");

    // Each call runs in a fresh instance: the key-value store is the only
    // state that survives between calls.
    let count = host::kv_get("greetings")
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    host::kv_set("greetings", count.to_string().as_bytes()).map_err(ToolError::Failed)?;

    // Progress shows on the caller's terminal during long calls; log lines
    // go to the host's log (`agent-host -v` shows them).
    host::progress(1, Some(1), Some("greeting"));
    host::log(
        LogLevel::Info,
        &format!("greeting #{count} (call {}, {} ms allowed)", ctx.call_id, ctx.timeout_ms),
    );

    let text = format!("{greeting}, {name}! (greeting number {count})");
    Ok(ToolOutput {
        content: vec![ContentPart::Text(text)],
        structured: Some(json!({ "greeting": greeting, "name": name, "count": count }).to_string()),
    })
}

export!(Plugin);
