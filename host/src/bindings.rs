//! The one `bindgen!` site: generated component bindings and their conversion to plain types.
//!
//! Nothing outside this module names a generated type except the sandbox and
//! host-API modules, which must implement the generated traits.

use crate::spec::{ContentPart, ToolError, ToolHints, ToolOutput, ToolSpec};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "tool-plugin",
    exports: { default: async },
});

pub use agent::plugin::host::Host as HostImports;
pub use agent::plugin::types::Host as TypesImports;
pub use agent::plugin::types::{CallContext, LogLevel};

use agent::plugin::types as wit;

/// Why a plugin's self-description could not be accepted.
#[derive(Debug)]
pub struct BadSpec {
    pub tool: String,
    pub reason: String,
}

/// Converts a guest tool spec into the host's type, parsing its JSON schemas.
pub fn spec_from_wit(spec: wit::ToolSpec) -> Result<ToolSpec, BadSpec> {
    let parse = |what: &str, text: &str| {
        serde_json::from_str::<serde_json::Value>(text).map_err(|err| BadSpec {
            tool: spec.name.clone(),
            reason: format!("its {what} is not valid JSON: {err}"),
        })
    };
    let input_schema = parse("input schema", &spec.input_schema)?;
    let output_schema = match &spec.output_schema {
        Some(text) => Some(parse("output schema", text)?),
        None => None,
    };
    let hints = ToolHints {
        read_only: spec.hints.contains(wit::ToolHints::READ_ONLY),
        destructive: spec.hints.contains(wit::ToolHints::DESTRUCTIVE),
        idempotent: spec.hints.contains(wit::ToolHints::IDEMPOTENT),
        open_world: spec.hints.contains(wit::ToolHints::OPEN_WORLD),
        parallel_safe: spec.hints.contains(wit::ToolHints::PARALLEL_SAFE),
    };
    Ok(ToolSpec {
        name: spec.name,
        title: spec.title,
        description: spec.description,
        input_schema,
        output_schema,
        hints,
    })
}

/// Converts a guest result into the host's types. JSON text that does not
/// parse is kept as text rather than dropped, so the model still sees it.
pub fn result_from_wit(
    result: Result<wit::ToolOutput, wit::ToolError>,
) -> Result<ToolOutput, ToolError> {
    match result {
        Ok(output) => {
            let content = output
                .content
                .into_iter()
                .map(|part| match part {
                    wit::ContentPart::Text(text) => ContentPart::Text { text },
                    wit::ContentPart::Json(text) => match serde_json::from_str(&text) {
                        Ok(json) => ContentPart::Json { json },
                        Err(_) => ContentPart::Text { text },
                    },
                    wit::ContentPart::Binary(blob) => ContentPart::Binary {
                        mime_type: blob.mime_type,
                        size: blob.data.len(),
                        data: blob.data,
                    },
                })
                .collect();
            let structured = output
                .structured
                .and_then(|text| serde_json::from_str(&text).ok());
            Ok(ToolOutput {
                content,
                structured,
            })
        }
        Err(wit::ToolError::InvalidArguments(msg)) => Err(ToolError::InvalidArguments(msg)),
        Err(wit::ToolError::Failed(msg)) => Err(ToolError::Failed(msg)),
        Err(wit::ToolError::Denied(msg)) => Err(ToolError::Denied(msg)),
    }
}

/// Size in bytes of a guest result as the host holds it, for the output cap.
pub fn result_size(result: &Result<wit::ToolOutput, wit::ToolError>) -> usize {
    match result {
        Ok(output) => {
            let parts: usize = output
                .content
                .iter()
                .map(|part| match part {
                    wit::ContentPart::Text(text) | wit::ContentPart::Json(text) => text.len(),
                    wit::ContentPart::Binary(blob) => blob.data.len() + blob.mime_type.len(),
                })
                .sum();
            parts + output.structured.as_ref().map_or(0, String::len)
        }
        Err(wit::ToolError::InvalidArguments(msg))
        | Err(wit::ToolError::Failed(msg))
        | Err(wit::ToolError::Denied(msg)) => msg.len(),
    }
}
