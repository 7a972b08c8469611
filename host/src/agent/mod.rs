//! The agent loop: prompt -> model -> tool calls in the sandbox -> results -> model, until an answer or the turn limit.
//!
//! The caller sends a user message and receives [`AgentEvent`]s on a
//! channel; nothing calls back into the caller. Cancellation is a token:
//! cancelling it aborts the model request and the running tools at once.
//! Three tiers of failure: a tool error (or a trap, or arguments the model
//! got wrong) goes back to the model as a tool result flagged as an error; a
//! provider failure ends the turn with [`Outcome::Failed`].

pub mod compress;
mod tools;

use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::provider::{
    ChatRequest, FinishReason, Message, ProviderEvent, SharedProvider, ToolCall, ToolDef, Usage,
};
use crate::runtime::Runtime;

/// How the loop behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub system_prompt: Option<String>,
    /// Model calls per user message; reaching it is reported, not silent.
    pub max_turns: usize,
    /// Parallel-safe tool calls run at most this many at a time.
    pub max_parallel_tools: usize,
    pub max_tokens: u32,
    /// Summarise older turns when the history passes this many (estimated)
    /// tokens; `None` keeps everything.
    pub context_budget_tokens: Option<usize>,
    /// User turns kept verbatim when compressing.
    pub keep_recent_turns: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: Some(
                "You are a helpful assistant. Use the tools when they help; tool results flagged as errors explain what to fix."
                    .to_owned(),
            ),
            max_turns: 16,
            max_parallel_tools: 4,
            max_tokens: 4096,
            context_budget_tokens: None,
            keep_recent_turns: 2,
        }
    }
}

/// What the loop reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// A model call begins (turn counts model calls within this user message).
    TurnStarted {
        turn: usize,
    },
    TextDelta {
        text: String,
    },
    ToolCallStarted {
        id: String,
        name: String,
        arguments: String,
    },
    ToolCallFinished {
        id: String,
        name: String,
        ok: bool,
        duration_ms: f64,
        /// The result as the model sees it.
        output: String,
    },
    Usage {
        usage: Usage,
    },
    /// A message the user sent while the turn ran, delivered at a checkpoint.
    UserMessageDelivered {
        text: String,
    },
    /// Older turns were replaced by a summary; the originals stay in the
    /// caller's store.
    Compressed {
        removed_messages: usize,
        summary: String,
    },
    Finished {
        text: String,
        turns: usize,
    },
    TurnLimitReached {
        max_turns: usize,
    },
    Cancelled,
    Failed {
        message: String,
    },
}

/// How a user message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished { text: String },
    TurnLimit,
    Cancelled,
    Failed(String),
}

/// Marker text recorded in history for a turn that was cancelled.
pub const CANCELLED_NOTE: &str = "[cancelled by the user]";

/// An agent: a runtime with its tools, and a model.
#[derive(Clone)]
pub struct Agent {
    runtime: Runtime,
    provider: SharedProvider,
    config: AgentConfig,
    /// Passed to tool calls so plugins can keep per-session state.
    session_id: Option<String>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("provider", &self.provider.name())
            .field("config", &self.config)
            .finish()
    }
}

impl Agent {
    pub fn new(runtime: Runtime, provider: SharedProvider, config: AgentConfig) -> Self {
        Self {
            runtime,
            provider,
            config,
            session_id: None,
        }
    }

    /// The same agent, with tool calls attributed to a stored session.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    pub fn provider(&self) -> &SharedProvider {
        &self.provider
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The tools offered to the model: every registered tool, as it is now
    /// (hot reload can change them between turns).
    pub fn tool_defs(&self) -> Vec<ToolDef> {
        self.runtime
            .tools()
            .into_iter()
            .map(|tool| ToolDef {
                name: tool.spec.name,
                description: tool.spec.description,
                parameters: tool.spec.input_schema,
            })
            .collect()
    }

    /// Runs one user message to its end. `history` is extended in place and
    /// stays valid for every provider whatever happens: each tool call gets
    /// a result, and a cancelled turn is recorded as cancelled.
    ///
    /// `inbox` carries messages the user sends while the turn runs; they are
    /// delivered before the next model call.
    pub async fn run(
        &self,
        history: &mut Vec<Message>,
        user_message: String,
        events: &mpsc::UnboundedSender<AgentEvent>,
        cancel: &CancellationToken,
        mut inbox: Option<&mut mpsc::UnboundedReceiver<String>>,
    ) -> Outcome {
        let emit = |event: AgentEvent| {
            let _ = events.send(event);
        };
        // Compress only what earlier runs produced: those messages are
        // already in the caller's store, so nothing summarised is lost.
        self.compress_if_needed(history, cancel, &emit).await;
        history.push(Message::user(user_message));
        for turn in 1..=self.config.max_turns.max(1) {
            if let Some(inbox) = inbox.as_deref_mut() {
                while let Ok(text) = inbox.try_recv() {
                    emit(AgentEvent::UserMessageDelivered { text: text.clone() });
                    history.push(Message::user(text));
                }
            }
            emit(AgentEvent::TurnStarted { turn });
            let request = ChatRequest {
                model: self.provider.model().to_owned(),
                system: self.config.system_prompt.clone(),
                messages: history.clone(),
                tools: self.tool_defs(),
                max_tokens: self.config.max_tokens,
            };
            let reply = match self.model_call(request, cancel, &emit).await {
                Ok(reply) => reply,
                Err(ModelStop::Cancelled { partial_text }) => {
                    history.push(Message::assistant(
                        format!("{partial_text}{CANCELLED_NOTE}"),
                        Vec::new(),
                    ));
                    emit(AgentEvent::Cancelled);
                    return Outcome::Cancelled;
                }
                Err(ModelStop::Failed(message)) => {
                    emit(AgentEvent::Failed {
                        message: message.clone(),
                    });
                    return Outcome::Failed(message);
                }
            };
            history.push(Message::assistant(
                reply.text.clone(),
                reply.tool_calls.clone(),
            ));
            if reply.tool_calls.is_empty() {
                emit(AgentEvent::Finished {
                    text: reply.text.clone(),
                    turns: turn,
                });
                return Outcome::Finished { text: reply.text };
            }
            let results = tools::run_calls(
                &self.runtime,
                &reply.tool_calls,
                self.config.max_parallel_tools,
                self.session_id.as_deref(),
                cancel,
                events,
            )
            .await;
            history.extend(results);
            if cancel.is_cancelled() {
                emit(AgentEvent::Cancelled);
                return Outcome::Cancelled;
            }
        }
        emit(AgentEvent::TurnLimitReached {
            max_turns: self.config.max_turns,
        });
        Outcome::TurnLimit
    }

    /// Summarises older turns when the history is over budget. A failed
    /// summary is reported and the turn goes on with the full history.
    async fn compress_if_needed(
        &self,
        history: &mut Vec<Message>,
        cancel: &CancellationToken,
        emit: &impl Fn(AgentEvent),
    ) {
        let Some(budget) = self.config.context_budget_tokens else {
            return;
        };
        if compress::estimate_tokens(history) <= budget {
            return;
        }
        let Some(split) = compress::split_point(history, self.config.keep_recent_turns) else {
            return;
        };
        match compress::summarise(&self.provider, &history[..split], cancel).await {
            Ok(summary) => {
                compress::apply(history, split, &summary);
                emit(AgentEvent::Compressed {
                    removed_messages: split,
                    summary,
                });
            }
            Err(err) => tracing::warn!("context compression skipped: {err}"),
        }
    }

    async fn model_call(
        &self,
        request: ChatRequest,
        cancel: &CancellationToken,
        emit: &impl Fn(AgentEvent),
    ) -> Result<ModelReply, ModelStop> {
        let mut receiver = self.provider.start(request, cancel.child_token());
        let mut reply = ModelReply::default();
        loop {
            let event = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    return Err(ModelStop::Cancelled { partial_text: reply.text });
                }
                event = receiver.recv() => event,
            };
            match event {
                Some(Ok(ProviderEvent::TextDelta { text })) => {
                    reply.text.push_str(&text);
                    emit(AgentEvent::TextDelta { text });
                }
                Some(Ok(ProviderEvent::ToolCall { call })) => reply.tool_calls.push(call),
                Some(Ok(ProviderEvent::Usage { usage })) => emit(AgentEvent::Usage { usage }),
                Some(Ok(ProviderEvent::Finish { reason })) => {
                    reply.finish = Some(reason);
                    return Ok(reply);
                }
                Some(Err(crate::provider::ProviderError::Cancelled)) => {
                    return Err(ModelStop::Cancelled {
                        partial_text: reply.text,
                    });
                }
                Some(Err(err)) => return Err(ModelStop::Failed(err.to_string())),
                None if reply.finish.is_none()
                    && reply.text.is_empty()
                    && reply.tool_calls.is_empty() =>
                {
                    return Err(ModelStop::Failed(format!(
                        "{} ended the answer without a single event",
                        self.provider.name()
                    )));
                }
                None => return Ok(reply),
            }
        }
    }
}

#[derive(Debug, Default)]
struct ModelReply {
    text: String,
    tool_calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
}

enum ModelStop {
    Cancelled { partial_text: String },
    Failed(String),
}

/// Milliseconds since `started`, for event payloads.
fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}
