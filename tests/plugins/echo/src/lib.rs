//! test-plugin-echo: the trivial `echo` tool; kept minimal because benchmarks measure the host around it.

use agent_plugin_sdk::prelude::*;

struct Echo;

impl Plugin for Echo {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "echo",
                "Return `text`, repeated `repeat` times (default once).",
            )
            .schema(json!({
                "type": "object",
                "properties": {
                    "text": { "type": "string", "maxLength": 10000 },
                    "repeat": { "type": "integer", "minimum": 1, "maximum": 10 }
                },
                "required": ["text"],
                "additionalProperties": false
            }))
            .read_only()
            .idempotent()
            .parallel_safe(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "echo" => {
                let text = args.str_field("text")?;
                let repeat = args.opt_u64_field("repeat")?.unwrap_or(1);
                Ok(Output::text(text.repeat(repeat as usize)))
            }
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Echo);
