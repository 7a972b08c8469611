//! test-plugin-memo: `remember` and `recall` text in the per-session state, to test session scoping.

use agent_plugin_sdk::prelude::*;
use agent_plugin_sdk::session;

struct Memo;

impl Plugin for Memo {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new("remember", "Remember `text` for the rest of this session.").schema(
                json!({
                    "type": "object",
                    "properties": { "text": { "type": "string" } },
                    "required": ["text"],
                    "additionalProperties": false
                }),
            ),
            ToolSpec::new(
                "recall",
                "What was remembered in this session, or `nothing`.",
            )
            .schema(json!({ "type": "object", "properties": {}, "additionalProperties": false }))
            .read_only(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "remember" => {
                session::set("memo", args.str_field("text")?.as_bytes())?;
                Ok(Output::text("remembered"))
            }
            "recall" => {
                let text = session::get("memo")
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_else(|| "nothing".to_owned());
                Ok(Output::text(text))
            }
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Memo);
