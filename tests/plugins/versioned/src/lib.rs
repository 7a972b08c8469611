//! test-plugin-versioned: the `version` tool, whose answer is fixed at build time so tests can tell builds apart.

use agent_plugin_sdk::prelude::*;

/// `TEST_PLUGIN_VERSION=v2 cargo build ...` makes a second, different build
/// (for reload and cache-invalidation tests); cargo rebuilds when it changes.
const VERSION: &str = match option_env!("TEST_PLUGIN_VERSION") {
    Some(version) => version,
    None => "v1",
};

struct Versioned;

impl Plugin for Versioned {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new("version", "Return the build version of this plugin.")
                .schema(
                    json!({ "type": "object", "properties": {}, "additionalProperties": false }),
                )
                .read_only()
                .idempotent()
                .parallel_safe(),
        ]
    }

    fn call(name: &str, _args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "version" => Ok(Output::text(VERSION)),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Versioned);
