//! The one `bindgen!` site: generated component bindings and their conversion to plain types.
//!
//! Nothing outside this module names a generated type except the sandbox and
//! host-API modules, which must implement the generated traits. `bindgen!`
//! takes one world, so the extension world is generated here too, reusing
//! the shared `types` and `host` interfaces of the tool world.

use crate::hooks::{Delivery, ExtensionSpec, HookOutcome, HookPoint, Subscription, Throttle};
use crate::spec::{ContentPart, ToolError, ToolHints, ToolOutput, ToolSpec};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "tool-plugin",
    exports: { default: async },
});

mod extension_world {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "extension-plugin",
        exports: { default: async },
        with: {
            "agent:plugin/types": super::agent::plugin::types,
            "agent:plugin/host": super::agent::plugin::host,
        },
    });
}

pub use ext::Event as HookEvent;
use extension_world::exports::agent::plugin::extension as ext;
/// The extension types, for building guest values in `crate::fuzzing`.
#[cfg(feature = "fuzzing")]
pub(crate) use extension_world::exports::agent::plugin::extension as ext_types;
pub use extension_world::{ExtensionPlugin, ExtensionPluginPre};

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

/// Structured output a guest returned that is not JSON: the call fails.
#[derive(Debug, thiserror::Error)]
#[error("its structured output is not valid JSON: {0}")]
pub(crate) struct BadStructuredOutput(serde_json::Error);

/// Bytes of text a guest tool spec carries, to bound a description before
/// anything in it is parsed.
pub fn spec_size(spec: &wit::ToolSpec) -> usize {
    spec.name.len()
        + spec.title.as_ref().map_or(0, String::len)
        + spec.description.len()
        + spec.input_schema.len()
        + spec.output_schema.as_ref().map_or(0, String::len)
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

/// Converts a guest result into the host's types. JSON content text that
/// does not parse is kept as text rather than dropped, so the model still
/// sees it. Structured output is for programs, not the model: when it is not
/// JSON the outer `Err` says why, and the call fails rather than pass on a
/// silent null.
pub fn result_from_wit(
    result: Result<wit::ToolOutput, wit::ToolError>,
) -> Result<Result<ToolOutput, ToolError>, BadStructuredOutput> {
    Ok(match result {
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
            let structured = match output.structured {
                Some(text) => Some(serde_json::from_str(&text).map_err(BadStructuredOutput)?),
                None => None,
            };
            Ok(ToolOutput {
                content,
                structured,
            })
        }
        Err(wit::ToolError::InvalidArguments(msg)) => Err(ToolError::InvalidArguments(msg)),
        Err(wit::ToolError::Failed(msg)) => Err(ToolError::Failed(msg)),
        Err(wit::ToolError::Denied(msg)) => Err(ToolError::Denied(msg)),
    })
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

/// Converts what an extension declared into the host's type.
pub fn extension_spec_from_wit(info: ext::ExtensionInfo) -> ExtensionSpec {
    ExtensionSpec {
        priority: info.priority,
        subscriptions: info
            .subscriptions
            .into_iter()
            .map(|sub| Subscription {
                point: point_from_wit(sub.point),
                delivery: match sub.delivery {
                    ext::Delivery::Sync => Delivery::Sync,
                    ext::Delivery::Background => Delivery::Async,
                },
                throttle: Throttle {
                    min_interval_ms: sub.throttle.min_interval_ms,
                    every_n_turns: sub.throttle.every_n_turns,
                    coalesce_chunks: sub.throttle.coalesce_chunks,
                    coalesce_ms: sub.throttle.coalesce_ms,
                },
            })
            .collect(),
    }
}

fn point_from_wit(point: ext::HookPoint) -> HookPoint {
    match point {
        ext::HookPoint::SessionStart => HookPoint::SessionStart,
        ext::HookPoint::SessionEnd => HookPoint::SessionEnd,
        ext::HookPoint::TurnStart => HookPoint::TurnStart,
        ext::HookPoint::TurnEnd => HookPoint::TurnEnd,
        ext::HookPoint::BeforeLlmCall => HookPoint::BeforeLlmCall,
        ext::HookPoint::AfterLlmResponse => HookPoint::AfterLlmResponse,
        ext::HookPoint::StreamChunk => HookPoint::StreamChunk,
        ext::HookPoint::BeforeToolCall => HookPoint::BeforeToolCall,
        ext::HookPoint::AfterToolCall => HookPoint::AfterToolCall,
        ext::HookPoint::ToolProgress => HookPoint::ToolProgress,
        ext::HookPoint::Error => HookPoint::Error,
    }
}

fn point_to_wit(point: HookPoint) -> ext::HookPoint {
    match point {
        HookPoint::SessionStart => ext::HookPoint::SessionStart,
        HookPoint::SessionEnd => ext::HookPoint::SessionEnd,
        HookPoint::TurnStart => ext::HookPoint::TurnStart,
        HookPoint::TurnEnd => ext::HookPoint::TurnEnd,
        HookPoint::BeforeLlmCall => ext::HookPoint::BeforeLlmCall,
        HookPoint::AfterLlmResponse => ext::HookPoint::AfterLlmResponse,
        HookPoint::StreamChunk => ext::HookPoint::StreamChunk,
        HookPoint::BeforeToolCall => ext::HookPoint::BeforeToolCall,
        HookPoint::AfterToolCall => ext::HookPoint::AfterToolCall,
        HookPoint::ToolProgress => ext::HookPoint::ToolProgress,
        HookPoint::Error => ext::HookPoint::Error,
    }
}

/// Builds the event record an extension receives.
pub fn hook_event(
    point: HookPoint,
    session_id: Option<String>,
    turn: u32,
    payload: String,
) -> HookEvent {
    HookEvent {
        point: point_to_wit(point),
        session_id,
        turn,
        payload,
    }
}

/// Converts an extension's answer into the host's type.
pub fn outcome_from_wit(outcome: ext::Outcome) -> HookOutcome {
    match outcome {
        ext::Outcome::Continue => HookOutcome::Continue,
        ext::Outcome::Patch(patch) => HookOutcome::Patch(patch),
        ext::Outcome::Block(reason) => HookOutcome::Block(reason),
        ext::Outcome::Inject(text) => HookOutcome::Inject(text),
    }
}
