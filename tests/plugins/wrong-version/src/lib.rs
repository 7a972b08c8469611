//! test-plugin-wrong-version: a well-formed tool plugin for contract version 9.0.0, which the host must refuse.
//!
//! `wit/plugin.wit` is the real contract with only the package version
//! changed, so the version is the one thing wrong with this plugin.

wit_bindgen::generate!({
    path: "wit",
    world: "tool-plugin",
});

use agent::plugin::types::{CallContext, ContentPart, ToolError, ToolHints, ToolOutput, ToolSpec};

struct WrongVersion;

impl exports::agent::plugin::tool::Guest for WrongVersion {
    fn describe() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "wrong_version".into(),
            title: None,
            description: "Would answer if the host ever loaded it.".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: None,
            hints: ToolHints::READ_ONLY,
        }]
    }

    fn invoke(
        _name: String,
        _args_json: String,
        _ctx: CallContext,
    ) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput {
            content: vec![ContentPart::Text("a 9.0.0 plugin ran".into())],
            structured: None,
        })
    }
}

export!(WrongVersion);
