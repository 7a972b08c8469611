//! LLM providers: one trait that turns a chat request into a stream of events, and its implementations.
//!
//! A provider call runs on its own task and sends [`ProviderEvent`]s through
//! a channel; cancelling the token aborts the HTTP request at once (no
//! polling). Tool-call argument fragments are assembled by the provider:
//! the agent loop only ever sees complete tool calls.

pub mod anthropic;
pub mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http;
pub mod openai;
pub mod scripted;
mod sse;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use http::HttpSettings;
#[cfg(feature = "fuzzing")]
pub(crate) use sse::SseParser;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    /// The result of one tool call, answering `tool_call_id`.
    Tool,
}

/// A tool call the model made. `arguments` is the raw JSON text the model
/// produced (it may be invalid JSON; the agent loop reports that back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One message of the conversation, in a provider-neutral shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// Text content (may be empty for an assistant message with only tool calls).
    #[serde(default)]
    pub content: String,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For `Role::Tool`: the result is an error the model should see as such.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }

    pub fn assistant(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: Role::Assistant,
            content: text.into(),
            tool_calls,
            tool_call_id: None,
            is_error: false,
        }
    }

    pub fn tool_result(
        call_id: impl Into<String>,
        content: impl Into<String>,
        is_error: bool,
    ) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
            is_error,
        }
    }
}

/// A tool as offered to the model (name, description, JSON Schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// Everything one model call needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDef>,
    /// Upper bound on the answer length, where the API wants one.
    pub max_tokens: u32,
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    ToolCalls,
    Length,
    Other(String),
}

/// What a provider call produces, in order. A stream ends after `Finish`
/// (or an error).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderEvent {
    TextDelta {
        text: String,
    },
    /// A complete tool call (fragments already joined).
    ToolCall {
        call: ToolCall,
    },
    Usage {
        usage: Usage,
    },
    Finish {
        reason: FinishReason,
    },
}

/// Why a provider call failed. Messages name the provider and say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} answered HTTP {status}: {message}{}", if *retried > 0 { format!(" (after {retried} retries)") } else { String::new() })]
    Http {
        provider: String,
        status: u16,
        message: String,
        retried: u32,
    },
    #[error(
        "cannot reach {provider} at {url}: {message}; check --base-url and that the server is running"
    )]
    Connect {
        provider: String,
        url: String,
        message: String,
    },
    #[error("{provider} did not finish within {after_ms} ms (the per-call deadline)")]
    Timeout { provider: String, after_ms: u64 },
    #[error("{provider} sent something this client cannot read: {message}")]
    Protocol { provider: String, message: String },
    #[error("the request was cancelled")]
    Cancelled,
    #[error("provider configuration: {0}")]
    Config(String),
}

/// Receives the events of one provider call.
pub type EventReceiver = mpsc::Receiver<Result<ProviderEvent, ProviderError>>;

/// An LLM behind some API. Implementations are cheap to share (`Arc`).
pub trait Provider: Send + Sync {
    /// Short name for messages and logs ("openai", "anthropic", "scripted").
    fn name(&self) -> &str;

    /// The model name requests are sent with.
    fn model(&self) -> &str;

    /// Starts a call on its own task. Events arrive on the receiver; the
    /// stream ends after `Finish` or one `Err`. Cancelling `cancel` aborts
    /// the request and ends the stream with `ProviderError::Cancelled`.
    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver;
}

/// Shared handle to a provider.
pub type SharedProvider = Arc<dyn Provider>;

/// Default per-call deadline for model requests.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
