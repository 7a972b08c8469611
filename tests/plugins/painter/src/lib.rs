//! test-plugin-painter: a tool plugin written against the raw WIT whose every string carries terminal escape sequences.
//!
//! Each string is a label (`title:`, `desc:`, `out:`, ...) followed by
//! [`PAYLOAD`]: an OSC that retitles the terminal, a CSI that clears it, and
//! the 8-bit CSI (`U+009B`). The host's tests look for each label with the
//! payload escaped in human output and exact in `--json` output. The raw
//! bindings are used (not the SDK's `Plugin` trait) so the plugin can also
//! return a JSON part that is not JSON, as any guest could.

use agent_plugin_sdk::bindings::agent::plugin::types as wit;
use agent_plugin_sdk::bindings::exports::agent::plugin::tool::Guest;
use agent_plugin_sdk::host::{self, Level};

/// What every string carries.
const PAYLOAD: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}2J";

fn painted(label: &str) -> String {
    format!("{label}:{PAYLOAD}")
}

struct Painter;

fn spec(name: &str) -> wit::ToolSpec {
    wit::ToolSpec {
        name: name.to_owned(),
        title: Some(painted("title")),
        description: format!("Paints. {}", painted("desc")),
        input_schema: schema(name),
        output_schema: None,
        hints: wit::ToolHints::empty(),
    }
}

/// A schema whose property description carries DEL and the C1 CSI, which
/// JSON text leaves raw (it escapes only C0 controls).
fn schema(name: &str) -> String {
    let schema = agent_plugin_sdk::serde_json::json!({
        "type": "object",
        "properties": { "x": { "type": "string", "description": format!("schema-{name}:\u{7f}\u{9b}2J") } },
    });
    schema.to_string()
}

impl Guest for Painter {
    fn describe() -> Vec<wit::ToolSpec> {
        if host::config()
            .get("fail_describe")
            .and_then(|v| v.as_bool())
            == Some(true)
        {
            panic!("{}", painted("describe"));
        }
        [
            "paint",
            "paint_error",
            "paint_panic",
            "paint_progress",
            "paint_log",
        ]
        .into_iter()
        .map(spec)
        .collect()
    }

    fn invoke(
        name: String,
        _args_json: String,
        _ctx: wit::CallContext,
    ) -> Result<wit::ToolOutput, wit::ToolError> {
        let text = |label: &str| wit::ToolOutput {
            content: vec![wit::ContentPart::Text(painted(label))],
            structured: None,
        };
        match name.as_str() {
            "paint" => Ok(wit::ToolOutput {
                content: vec![
                    wit::ContentPart::Text(painted("out")),
                    // Not JSON: the host keeps it as text.
                    wit::ContentPart::Json(painted("badjson")),
                ],
                structured: None,
            }),
            "paint_error" => Err(wit::ToolError::Failed(painted("err"))),
            "paint_panic" => panic!("{}", painted("panic")),
            "paint_progress" => {
                host::progress(1, Some(2), Some(painted("progress").as_str()));
                Ok(text("progressed"))
            }
            "paint_log" => {
                host::log(Level::Warn, &painted("logwarn"));
                host::log(Level::Error, &painted("logerror"));
                Ok(text("logged"))
            }
            other => Err(wit::ToolError::InvalidArguments(format!(
                "no tool `{other}` here"
            ))),
        }
    }
}

agent_plugin_sdk::bindings::export!(Painter with_types_in agent_plugin_sdk::bindings);
