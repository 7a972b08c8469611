//! LLM providers: one trait that turns a chat request into a stream of events, its implementations, and the factory that builds one from the config.
//!
//! A provider call runs on its own task and sends [`ProviderEvent`]s through
//! a channel; cancelling the token aborts the HTTP request at once (no
//! polling). Tool-call argument fragments are assembled by the provider:
//! the agent loop only ever sees complete tool calls.

#![warn(missing_docs, unreachable_pub)]

pub mod anthropic;
pub mod config;
mod error;
pub mod factory;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod http;
pub mod openai;
pub mod scripted;
mod sse;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use error::{BaseUrlError, ProviderError, ProviderErrorKind};
pub use http::HttpSettings;
#[cfg(feature = "fuzzing")]
pub(crate) use sse::SseParser;

/// Events buffered between a provider task and its consumer.
pub(crate) const EVENT_BUFFER: usize = 64;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person (or program) driving the agent.
    User,
    /// The model.
    Assistant,
    /// The result of one tool call, answering `tool_call_id`.
    Tool,
}

/// A tool call the model made. `arguments` is the raw JSON text the model
/// produced (it may be invalid JSON; the agent loop reports that back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The id the result must answer (the provider's, or `call_N`).
    pub id: String,
    /// The tool's name, as the model wrote it (it may name no tool).
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
}

/// One message of the conversation, in a provider-neutral shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
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
    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
        }
    }

    /// A model answer: its text and the tool calls it made.
    pub fn assistant(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: Role::Assistant,
            content: text.into(),
            tool_calls,
            tool_call_id: None,
            is_error: false,
        }
    }

    /// The result of the tool call `call_id`; `is_error` marks a failure
    /// the model should see as one.
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
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: serde_json::Value,
}

/// Everything one model call needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    /// The model to ask; empty means the provider's configured model.
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolDef>,
    /// Upper bound on the answer length, where the API wants one.
    pub max_tokens: u32,
}

impl ChatRequest {
    /// The model to send: the request's, else `configured`.
    pub(crate) fn model_or<'a>(&'a self, configured: &'a str) -> &'a str {
        if self.model.is_empty() {
            configured
        } else {
            &self.model
        }
    }
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Tokens the model wrote.
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The answer is complete.
    Stop,
    /// The model wants the results of its tool calls.
    ToolCalls,
    /// The answer hit the token limit.
    Length,
    /// A reason this client does not know, as the provider said it.
    Other(String),
}

/// What a provider call produces, in order. A stream ends after `Finish`
/// (or an error).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderEvent {
    /// The next piece of the answer's text.
    TextDelta {
        /// The text, in the order the model wrote it.
        text: String,
    },
    /// A complete tool call (fragments already joined).
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// What the call cost, when the provider says.
    Usage {
        /// The token counts.
        usage: Usage,
    },
    /// The answer is over.
    Finish {
        /// Why it ended.
        reason: FinishReason,
    },
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

    /// Requests sent again after a failure (429, 5xx, a lost connection)
    /// over this provider's life; for metrics.
    fn retries(&self) -> u64 {
        0
    }
}

/// Shared handle to a provider.
pub type SharedProvider = Arc<dyn Provider>;
