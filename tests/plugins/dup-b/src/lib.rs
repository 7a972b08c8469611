//! test-plugin-dup-b: a tool named `duplicate`, clashing on purpose with test-plugin-dup-a.

use agent_plugin_sdk::prelude::*;

struct Dup;

impl Plugin for Dup {
    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec::new("duplicate", "Say which plugin answered (\"dup-b\").").read_only()]
    }

    fn call(name: &str, _args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "duplicate" => Ok(Output::text("dup-b")),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Dup);
