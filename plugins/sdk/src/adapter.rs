//! Adapter: implements the generated `tool` export for any `Plugin`, converting between SDK and WIT types.

use std::marker::PhantomData;

use crate::bindings::agent::plugin::types as wit;
use crate::bindings::exports::agent::plugin::tool::Guest;
use crate::{CallContext, Output, Part, Plugin, ToolError, ToolErrorKind, ToolSpec};

/// The generated bindings need one concrete type implementing `Guest`;
/// [`export_plugin!`](crate::export_plugin) names `Adapter<YourPlugin>`.
pub struct Adapter<P>(PhantomData<P>);

impl<P: Plugin> Guest for Adapter<P> {
    fn describe() -> Vec<wit::ToolSpec> {
        P::tools().into_iter().map(spec_to_wit).collect()
    }

    fn invoke(
        name: String,
        args_json: String,
        ctx: wit::CallContext,
    ) -> Result<wit::ToolOutput, wit::ToolError> {
        let args: serde_json::Value = serde_json::from_str(&args_json).map_err(|err| {
            wit::ToolError::InvalidArguments(format!("the arguments are not valid JSON: {err}"))
        })?;
        let ctx = CallContext::from(ctx);
        match P::call(&name, args, &ctx) {
            Ok(output) => Ok(output_to_wit(output)),
            Err(err) if err.is_unknown_tool() => {
                // Only built on this error path, so ordinary calls never pay
                // for constructing every tool's schema.
                let known: Vec<String> = P::tools()
                    .into_iter()
                    .map(|spec| format!("`{}`", spec.name))
                    .collect();
                Err(error_to_wit(err.append(&format!(
                    "; this plugin provides {}",
                    known.join(", ")
                ))))
            }
            Err(err) => Err(error_to_wit(err)),
        }
    }
}

fn spec_to_wit(spec: ToolSpec) -> wit::ToolSpec {
    let mut hints = wit::ToolHints::empty();
    hints.set(wit::ToolHints::READ_ONLY, spec.hints.read_only);
    hints.set(wit::ToolHints::DESTRUCTIVE, spec.hints.destructive);
    hints.set(wit::ToolHints::IDEMPOTENT, spec.hints.idempotent);
    hints.set(wit::ToolHints::OPEN_WORLD, spec.hints.open_world);
    hints.set(wit::ToolHints::PARALLEL_SAFE, spec.hints.parallel_safe);
    wit::ToolSpec {
        name: spec.name,
        title: spec.title,
        description: spec.description,
        input_schema: spec.input_schema.to_string(),
        output_schema: spec.output_schema.map(|schema| schema.to_string()),
        hints,
    }
}

fn output_to_wit(output: Output) -> wit::ToolOutput {
    let content = output
        .parts
        .into_iter()
        .map(|part| match part {
            Part::Text(text) => wit::ContentPart::Text(text),
            Part::Json(value) => wit::ContentPart::Json(value.to_string()),
            Part::Binary { mime_type, data } => {
                wit::ContentPart::Binary(wit::Blob { mime_type, data })
            }
        })
        .collect();
    wit::ToolOutput {
        content,
        structured: output.structured.map(|value| value.to_string()),
    }
}

fn error_to_wit(err: ToolError) -> wit::ToolError {
    let message = err.message().to_owned();
    match err.kind() {
        ToolErrorKind::InvalidArguments => wit::ToolError::InvalidArguments(message),
        ToolErrorKind::Failed => wit::ToolError::Failed(message),
        ToolErrorKind::Denied => wit::ToolError::Denied(message),
    }
}
