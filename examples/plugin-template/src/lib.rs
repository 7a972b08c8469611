//! plugin-template: a minimal tool plugin (`greet`) to copy when writing a new plugin.

use agent_plugin_sdk::prelude::*;

struct Template;

impl Plugin for Template {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "greet",
                "Greet someone by name. Counts how many greetings it has made.",
            )
            .title("Greet")
            // The host validates every call against this schema, so
            // `call` can rely on it.
            .schema(json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": 100 },
                    "excited": { "type": "boolean", "default": false }
                },
                "required": ["name"],
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "properties": { "greeting": { "type": "string" }, "count": { "type": "integer" } },
                "required": ["greeting", "count"]
            }))
            .idempotent(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "greet" => greet(&args),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Template);

fn greet(args: &Value) -> Result<Output, ToolError> {
    let name = args.str_field("name")?;
    let excited = args.opt_bool_field("excited")?.unwrap_or(false);
    // Each call runs in a fresh instance; the host's key-value store is the
    // only state that survives between calls.
    let count = kv::get_json::<u64>("greetings")?.unwrap_or(0) + 1;
    kv::set_json("greetings", &count)?;
    host::log(Level::Debug, &format!("greeting #{count}"));
    let greeting = format!("Hello, {name}{}", if excited { "!" } else { "." });
    Ok(Output::text(greeting.clone())
        .with_structured(json!({ "greeting": greeting, "count": count })))
}
