//! test-plugin-dup-a: a tool named `duplicate`, clashing on purpose with test-plugin-dup-b.

use agent_plugin_sdk::prelude::*;

struct Dup;

impl Plugin for Dup {
    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec::new("duplicate", "Say which plugin answered (\"dup-a\").").read_only()]
    }

    fn call(name: &str, _args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "duplicate" => Ok(Output::text("dup-a")),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Dup);
