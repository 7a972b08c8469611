//! The one `bindgen!` site: generated component bindings, one module per contract version, and their conversion to plain types.
//!
//! Each contract minor the host serves has its own WIT directory and its own
//! generated module: `wit/v0.1/` is bound in [`v0_1`]. A future 0.2 gets
//! `wit/v0.2/` and a `v0_2` module beside it, with its own conversions, and
//! 0.1 plugins keep loading (see Zed's `extension_api/wit/since_vX`).
//! `bindgen!` takes one world, so each version module generates the tool
//! world and, inside it, the extension world reusing the shared `types` and
//! `host` interfaces.
//!
//! The rest of the host uses plain types from [`crate::spec`] and
//! [`crate::hooks`]. The modules that must touch the generated ones name them
//! through the re-exports below: the sandbox, loader, invoke and hook-call
//! modules (instantiating worlds), `host_api` (implementing the imports),
//! and the `bench` and `fuzzing` features (a bare call path, guest values).

use crate::hooks::{Delivery, ExtensionSpec, HookOutcome, HookPoint, Subscription, Throttle};
use crate::spec::{ContentPart, ToolError, ToolHints, ToolOutput, ToolSpec};

/// Bindings of contract 0.1 (`wit/v0.1/`, package `agent:plugin@0.1.x`).
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1",
        world: "tool-plugin",
        exports: { default: async },
    });

    /// The extension world of the same package.
    pub(crate) mod extension_world {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1",
            world: "extension-plugin",
            exports: { default: async },
            with: {
                "agent:plugin/types": super::agent::plugin::types,
                "agent:plugin/host": super::agent::plugin::host,
            },
        });
    }
}

// The version this host implements today ([`crate::CONTRACT_VERSION`]); the
// rest of the host names these and not a version module.
pub(crate) use v0_1::agent;
pub(crate) use v0_1::{ToolPlugin, ToolPluginPre};

pub(crate) use ext::Event as HookEvent;
use v0_1::extension_world::exports::agent::plugin::extension as ext;
/// The extension types, for building guest values in `crate::fuzzing`.
#[cfg(feature = "fuzzing")]
pub(crate) use v0_1::extension_world::exports::agent::plugin::extension as ext_types;
pub(crate) use v0_1::extension_world::{ExtensionPlugin, ExtensionPluginPre};

pub(crate) use agent::plugin::host::Host as HostImports;
pub(crate) use agent::plugin::types::Host as TypesImports;
pub(crate) use agent::plugin::types::{CallContext, LogLevel};

use agent::plugin::types as wit;

/// Why a plugin's self-description could not be accepted.
#[derive(Debug)]
pub(crate) struct BadSpec {
    /// The tool whose spec is bad (as the guest named it).
    pub(crate) tool: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

/// Structured output a guest returned that is not JSON: the call fails.
#[derive(Debug, thiserror::Error)]
#[error("its structured output is not valid JSON: {0}")]
pub(crate) struct BadStructuredOutput(serde_json::Error);

/// Bytes of text a guest tool spec carries, to bound a description before
/// anything in it is parsed.
pub(crate) fn spec_size(spec: &wit::ToolSpec) -> usize {
    spec.name.len()
        + spec.title.as_ref().map_or(0, String::len)
        + spec.description.len()
        + spec.input_schema.len()
        + spec.output_schema.as_ref().map_or(0, String::len)
}

/// Converts a guest tool spec into the host's type, parsing its JSON schemas.
pub(crate) fn spec_from_wit(spec: wit::ToolSpec) -> Result<ToolSpec, BadSpec> {
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
pub(crate) fn result_from_wit(
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
pub(crate) fn result_size(result: &Result<wit::ToolOutput, wit::ToolError>) -> usize {
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
pub(crate) fn extension_spec_from_wit(info: ext::ExtensionInfo) -> ExtensionSpec {
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
pub(crate) fn hook_event(
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
pub(crate) fn outcome_from_wit(outcome: ext::Outcome) -> HookOutcome {
    match outcome {
        ext::Outcome::Continue => HookOutcome::Continue,
        ext::Outcome::Patch(patch) => HookOutcome::Patch(patch),
        ext::Outcome::Block(reason) => HookOutcome::Block(reason),
        ext::Outcome::Inject(text) => HookOutcome::Inject(text),
    }
}
