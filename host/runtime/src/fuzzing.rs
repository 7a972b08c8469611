//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md): thin wrappers over the host's parsers, built only with the `fuzzing` feature.
//!
//! Each function runs the same code the host runs on untrusted input
//! (manifest text, the runtime's config sections, a plugin's schema and
//! arguments, the values a guest returns), with plain
//! inputs a fuzz target can build from bytes. Nothing here is used by the
//! normal build.

use serde_json::Value;

use crate::bindings::{self, agent::plugin::types as wit};
use crate::capabilities::Capabilities;
use crate::config::RuntimeConfig;
use crate::error::{FailureKind, GrantError, LoadError, ManifestError, PatchError, SchemaError};
use crate::hooks::{ExtensionSpec, HookOutcome, HookPoint};
use crate::manifest::Manifest;
use crate::schema::ArgsValidator;
use crate::spec::{ToolError, ToolOutput, ToolSpec};

/// `Manifest::parse`, as the loader runs it on `<plugin>.toml`.
pub fn parse_manifest(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text)
}

/// What a resolved config turns into when a plugin is loaded: its grant and
/// the sandbox limits intersected with the manifest's requests
/// (`capabilities::grant`), which is where config values become byte counts
/// and durations.
pub fn plugin_capabilities(
    config: &RuntimeConfig,
    manifest: &Manifest,
) -> Result<Capabilities, GrantError> {
    crate::capabilities::grant(
        manifest,
        &config.grant_for(&manifest.plugin.name),
        &config.sandbox,
    )
}

/// Compiles a plugin-supplied input schema and checks arguments against it,
/// as the loader and the call path do. `Err` is a refused schema.
pub fn validate_args(schema: &Value, args: &Value) -> Result<Result<(), Vec<String>>, SchemaError> {
    let validator = ArgsValidator::compile_input(schema, &crate::config::SchemaConfig::default())?;
    Ok(validator.check(args))
}

// The guest-value mirrors below copy the WIT records field for field; each
// field is what `wit/v0.1/plugin.wit` documents.

/// A `tool-spec` record as a guest returns it from `describe`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default)]
pub struct GuestToolSpec {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: String,
    pub output_schema: Option<String>,
    /// Bit i set = the i-th flag of `tool-hints`.
    pub hints: u8,
}

/// A `content-part` variant.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub enum GuestPart {
    Text(String),
    Json(String),
    Binary { mime_type: String, data: Vec<u8> },
}

/// The `result<tool-output, tool-error>` a guest returns from `invoke`.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub enum GuestResult {
    Ok {
        content: Vec<GuestPart>,
        structured: Option<String>,
    },
    InvalidArguments(String),
    Failed(String),
    Denied(String),
}

/// A `subscription` record; `point` is taken modulo the number of points.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default)]
pub struct GuestSubscription {
    pub point: u8,
    pub background: bool,
    pub min_interval_ms: Option<u64>,
    pub every_n_turns: Option<u32>,
    pub coalesce_chunks: Option<u32>,
    pub coalesce_ms: Option<u64>,
}

/// The `outcome` variant an extension returns from `on-event`.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub enum GuestOutcome {
    Continue,
    Patch(String),
    Block(String),
    Inject(String),
}

/// `spec_from_wit`, as the loader runs it on each described tool.
pub fn tool_spec(spec: GuestToolSpec) -> Result<ToolSpec, LoadError> {
    let flags = [
        wit::ToolHints::READ_ONLY,
        wit::ToolHints::DESTRUCTIVE,
        wit::ToolHints::IDEMPOTENT,
        wit::ToolHints::OPEN_WORLD,
        wit::ToolHints::PARALLEL_SAFE,
    ];
    let hints = flags
        .iter()
        .enumerate()
        .filter(|(bit, _)| spec.hints & (1 << bit) != 0)
        .fold(wit::ToolHints::empty(), |all, (_, flag)| all | *flag);
    bindings::spec_from_wit(wit::ToolSpec {
        name: spec.name,
        title: spec.title,
        description: spec.description,
        input_schema: spec.input_schema,
        output_schema: spec.output_schema,
        hints,
    })
    .map_err(|bad| LoadError::BadSpec {
        plugin: "(fuzzed)".to_owned(),
        tool: bad.tool,
        reason: bad.reason,
    })
}

/// A converted guest result: the outer `Err` is structured output that is
/// not JSON (the failure the call would end with), the inner one a tool error.
pub type ConvertedResult = Result<Result<ToolOutput, ToolError>, FailureKind>;

/// What `invoke` does with a guest's result: the size for the output cap,
/// then the conversion. `None` when the result is over `max_output_bytes`.
pub fn tool_result(
    result: GuestResult,
    max_output_bytes: usize,
) -> Option<(usize, ConvertedResult)> {
    let result = match result {
        GuestResult::Ok {
            content,
            structured,
        } => Ok(wit::ToolOutput {
            content: content
                .into_iter()
                .map(|part| match part {
                    GuestPart::Text(text) => wit::ContentPart::Text(text),
                    GuestPart::Json(text) => wit::ContentPart::Json(text),
                    GuestPart::Binary { mime_type, data } => {
                        wit::ContentPart::Binary(wit::Blob { mime_type, data })
                    }
                })
                .collect(),
            structured,
        }),
        GuestResult::InvalidArguments(msg) => Err(wit::ToolError::InvalidArguments(msg)),
        GuestResult::Failed(msg) => Err(wit::ToolError::Failed(msg)),
        GuestResult::Denied(msg) => Err(wit::ToolError::Denied(msg)),
    };
    let size = bindings::result_size(&result);
    if size > max_output_bytes {
        return None;
    }
    let converted = bindings::result_from_wit(result).map_err(|err| FailureKind::BadAnswer {
        message: err.to_string(),
    });
    Some((size, converted))
}

/// `extension_spec_from_wit`, as the loader runs it on `describe-extension`.
pub fn extension_spec(priority: i32, subscriptions: Vec<GuestSubscription>) -> ExtensionSpec {
    use bindings::ext_types as ext;
    const POINTS: [ext::HookPoint; 11] = [
        ext::HookPoint::SessionStart,
        ext::HookPoint::SessionEnd,
        ext::HookPoint::TurnStart,
        ext::HookPoint::TurnEnd,
        ext::HookPoint::BeforeLlmCall,
        ext::HookPoint::AfterLlmResponse,
        ext::HookPoint::StreamChunk,
        ext::HookPoint::BeforeToolCall,
        ext::HookPoint::AfterToolCall,
        ext::HookPoint::ToolProgress,
        ext::HookPoint::Error,
    ];
    bindings::extension_spec_from_wit(ext::ExtensionInfo {
        priority,
        subscriptions: subscriptions
            .into_iter()
            .map(|sub| ext::Subscription {
                point: POINTS[usize::from(sub.point) % POINTS.len()],
                delivery: if sub.background {
                    ext::Delivery::Background
                } else {
                    ext::Delivery::Sync
                },
                throttle: ext::Throttle {
                    min_interval_ms: sub.min_interval_ms,
                    every_n_turns: sub.every_n_turns,
                    coalesce_chunks: sub.coalesce_chunks,
                    coalesce_ms: sub.coalesce_ms,
                },
            })
            .collect(),
    })
}

/// `outcome_from_wit`, then what the dispatcher does with a patch: apply it
/// to `payload` at `point`.
pub fn hook_outcome(
    outcome: GuestOutcome,
    point: HookPoint,
    payload: &mut serde_json::Map<String, Value>,
) -> (HookOutcome, Option<Result<(), PatchError>>) {
    use bindings::ext_types as ext;
    let outcome = bindings::outcome_from_wit(match outcome {
        GuestOutcome::Continue => ext::Outcome::Continue,
        GuestOutcome::Patch(text) => ext::Outcome::Patch(text),
        GuestOutcome::Block(text) => ext::Outcome::Block(text),
        GuestOutcome::Inject(text) => ext::Outcome::Inject(text),
    });
    let patched = match &outcome {
        HookOutcome::Patch(patch) => Some(crate::hooks::apply_patch(point, payload, patch)),
        _ => None,
    };
    (outcome, patched)
}
