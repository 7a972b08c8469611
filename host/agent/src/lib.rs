//! The agent loop: prompt -> model -> tool calls through a [`ToolHost`] -> results -> model, until an answer or the turn limit.
//!
//! The caller sends a user message and receives [`AgentEvent`]s on a
//! channel; nothing calls back into the caller. Cancellation is a token:
//! cancelling it aborts the model request and the running tools at once.
//!
//! The loop reaches its tools only through the [`ToolHost`] trait: the wasm
//! [`Runtime`] implements it, tests use fakes, other kinds of tools can
//! join. Extension hooks are separate: an agent runs them when it was given
//! a runtime's extensions ([`Agent::with_extensions`]).
//!
//! Three tiers of tool failure ([`ToolCallError`]): a tool error (the
//! tool's own error, an unknown tool, arguments the model got wrong) and a
//! failed call (a trap or a limit ended it) go back to the model as tool
//! results flagged as errors, and the turn goes on; a host error (the host
//! could not run the call) is answered in the history too, then ends the
//! run with [`Outcome::Failed`], as a provider failure does.

#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod compress;
pub mod config;
mod hooked;
pub mod sessions;
mod tool_host;
mod tools;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use serde_json::json;

use agent_host_llm::{
    ChatRequest, FinishReason, Message, ProviderEvent, SharedProvider, ToolCall, ToolDef, Usage,
};
use agent_host_runtime::hooks::{Blocked, HookPoint, Hooks};
use agent_host_runtime::runtime::Runtime;

pub use tool_host::{ToolCallError, ToolCallFuture, ToolHost, ToolHosts};

/// How the loop behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Sent with every model call; `None` sends none.
    pub system_prompt: Option<String>,
    /// Model calls per user message; reaching it is reported, not silent.
    pub max_turns: usize,
    /// Parallel-safe tool calls run at most this many at a time.
    pub max_parallel_tools: usize,
    /// The most tokens the model may answer with in one call.
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
        /// 1 for the first model call of this user message.
        turn: usize,
    },
    /// Streamed answer text.
    TextDelta {
        /// The next piece of the answer.
        text: String,
    },
    /// A tool call the model asked for starts.
    ToolCallStarted {
        /// The model's id for the call.
        id: String,
        /// The tool called.
        name: String,
        /// The arguments as the model wrote them.
        arguments: String,
    },
    /// A tool call ended, with whatever result the model will see.
    ToolCallFinished {
        /// The model's id for the call.
        id: String,
        /// The tool called.
        name: String,
        /// False when the result is flagged to the model as an error.
        ok: bool,
        /// From the start of the call to its result, hooks included.
        duration_ms: f64,
        /// The result as the model sees it.
        output: String,
    },
    /// Tokens the provider reported for a model call.
    Usage {
        /// The provider's counts.
        usage: Usage,
    },
    /// A message the user sent while the turn ran, delivered at a checkpoint.
    UserMessageDelivered {
        /// The message.
        text: String,
    },
    /// Older turns were replaced by a summary; the originals stay in the
    /// caller's store.
    Compressed {
        /// How many messages the summary replaced.
        removed_messages: usize,
        /// The model's summary of them.
        summary: String,
    },
    /// The model answered without asking for tools.
    Finished {
        /// The answer.
        text: String,
        /// Model calls it took.
        turns: usize,
    },
    /// An extension stopped something: a tool call (the model is told),
    /// or the whole run.
    HookBlocked {
        /// The extension that blocked.
        extension: String,
        /// Where it blocked.
        point: HookPoint,
        /// Its reason.
        reason: String,
    },
    /// An extension added a message to the conversation.
    HookInjected {
        /// The extension that added it.
        extension: String,
        /// The hook point that added it.
        point: HookPoint,
        /// The message.
        text: String,
    },
    /// A hook kept failing and is switched off for the rest of the session.
    HookDisabled {
        /// The extension whose hook is off.
        extension: String,
        /// The point it no longer hears.
        point: HookPoint,
        /// Why it was switched off.
        reason: String,
    },
    /// The run used all its model calls without a final answer.
    TurnLimitReached {
        /// The limit it reached.
        max_turns: usize,
    },
    /// The caller's token stopped the run.
    Cancelled,
    /// The provider or the host failed; the run is over.
    Failed {
        /// What failed, for the user.
        message: String,
    },
}

/// How a user message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The model gave its answer.
    Finished {
        /// The answer.
        text: String,
    },
    /// The model used all its turns.
    TurnLimit,
    /// The caller's token stopped the run.
    Cancelled,
    /// The provider failed, or the host could not run a tool call.
    Failed(String),
    /// An extension stopped the run.
    Blocked {
        /// The extension that stopped it.
        extension: String,
        /// Its reason.
        reason: String,
    },
}

impl Outcome {
    /// Short name for records and `session-end` payloads.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Finished { .. } => "finished",
            Outcome::TurnLimit => "turn_limit",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed(_) => "failed",
            Outcome::Blocked { .. } => "blocked",
        }
    }
}

/// Marker text recorded in history for a turn that was cancelled.
pub const CANCELLED_NOTE: &str = "[cancelled by the user]";

/// An agent: its tools, a model, and optionally the hooks of extensions.
#[derive(Clone)]
pub struct Agent {
    tools: Arc<dyn ToolHost>,
    provider: SharedProvider,
    config: AgentConfig,
    /// Passed to tool calls so plugins can keep per-session state.
    session_id: Option<String>,
    /// `None`: no extension hooks run.
    extensions: Option<Extensions>,
}

/// The extensions an agent runs: a runtime's extension set (read afresh
/// for every event, so hot reload applies), and this session's hooks on it.
#[derive(Clone)]
struct Extensions {
    runtime: Runtime,
    hooks: Hooks,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("provider", &self.provider.name())
            .field("config", &self.config)
            .field("session_id", &self.session_id)
            .field("extensions", &self.extensions.is_some())
            .finish()
    }
}

impl Agent {
    /// An agent that calls `tools` and runs no extension hooks.
    pub fn new(tools: Arc<dyn ToolHost>, provider: SharedProvider, config: AgentConfig) -> Self {
        Self {
            tools,
            provider,
            config,
            session_id: None,
            extensions: None,
        }
    }

    /// An agent on a runtime: its tools, and its extensions' hooks.
    pub fn for_runtime(runtime: Runtime, provider: SharedProvider, config: AgentConfig) -> Self {
        Self::new(Arc::new(runtime.clone()), provider, config).with_extensions(runtime)
    }

    /// The same agent, running the hooks of `runtime`'s extensions (with
    /// fresh hook state: throttles, failure streaks, the turn count).
    pub fn with_extensions(mut self, runtime: Runtime) -> Self {
        let hooks = Hooks::new(runtime.clone(), self.session_id.clone());
        self.extensions = Some(Extensions { runtime, hooks });
        self
    }

    /// The same agent, with tool calls attributed to a stored session and
    /// hooks of its own for that session.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        let session_id = session_id.into();
        if let Some(extensions) = &mut self.extensions {
            extensions.hooks = Hooks::new(extensions.runtime.clone(), Some(session_id.clone()));
        }
        self.session_id = Some(session_id);
        self
    }

    /// This session's extension hooks; `None` for an agent without
    /// extensions.
    pub fn hooks(&self) -> Option<&Hooks> {
        self.extensions.as_ref().map(|extensions| &extensions.hooks)
    }

    /// Model turns of this session so far, as its hooks count them (an
    /// agent without extensions has nobody to count them for: 0).
    pub fn session_turns(&self) -> u32 {
        self.hooks().map_or(0, Hooks::turn)
    }

    /// Ends the session for the extensions: delivers `session-end`, waits
    /// for async hook calls in flight, and saves the hook counters.
    pub async fn end_session(&self, outcome: &Outcome, turns: u32) {
        let Some(Extensions { runtime, hooks }) = &self.extensions else {
            return;
        };
        if hooks.session_started() {
            let (events, _) = mpsc::unbounded_channel();
            hooked::dispatch(
                Some(hooks),
                HookPoint::SessionEnd,
                || {
                    json!({
                        "session_id": self.session_id,
                        "outcome": outcome.label(),
                        "turns": turns,
                    })
                },
                &events,
            )
            .await;
        }
        hooks.drain().await;
        runtime.persist_hook_stats();
    }

    /// The model.
    pub fn provider(&self) -> &SharedProvider {
        &self.provider
    }

    /// Where the tools come from.
    pub fn tools(&self) -> &Arc<dyn ToolHost> {
        &self.tools
    }

    /// The tools offered to the model: every tool of the tool host, as it is
    /// now (hot reload can change them between turns).
    pub fn tool_defs(&self) -> Vec<ToolDef> {
        self.tools
            .list_tools()
            .into_iter()
            .map(|tool| ToolDef {
                name: tool.name,
                description: tool.description,
                parameters: tool.input_schema,
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
        let hooks = self.hooks();
        if hooks.is_some_and(Hooks::start_session) {
            hooked::dispatch(
                hooks,
                HookPoint::SessionStart,
                || {
                    json!({
                        "session_id": self.session_id,
                        "provider": self.provider.name(),
                        "model": self.provider.model(),
                    })
                },
                events,
            )
            .await;
        }
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
            let session_turn = hooks.map_or(0, Hooks::begin_turn);
            emit(AgentEvent::TurnStarted { turn });
            let dispatched = hooked::dispatch(
                hooks,
                HookPoint::TurnStart,
                || json!({ "turn": session_turn }),
                events,
            )
            .await;
            if let Some(blocked) = dispatched.blocked {
                return stop_blocked(history, blocked, &emit);
            }
            hooked::deliver_injections(hooks, history, events);
            let mut request = ChatRequest {
                model: self.provider.model().to_owned(),
                system: self.config.system_prompt.clone(),
                messages: history.clone(),
                tools: self.tool_defs(),
                max_tokens: self.config.max_tokens,
            };
            if let Some(blocked) = self.before_llm_call(&mut request, events).await {
                return stop_blocked(history, blocked, &emit);
            }
            let mut reply = match self.model_call(request, cancel, &emit).await {
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
                    hooked::report_error(
                        hooks,
                        "model",
                        Some(self.provider.name()),
                        &message,
                        events,
                    )
                    .await;
                    emit(AgentEvent::Failed {
                        message: message.clone(),
                    });
                    return Outcome::Failed(message);
                }
            };
            if let Some(mut streamed) = reply.stream_hooks.take()
                && let Some(hooks) = hooks
            {
                hooked::settle(hooks, HookPoint::StreamChunk, &mut streamed, events).await;
                if let Some(blocked) = streamed.blocked {
                    history.push(Message::assistant(reply.text.clone(), Vec::new()));
                    return stop_blocked(history, blocked, &emit);
                }
            }
            if let Some(blocked) = self.after_llm_response(&mut reply, events).await {
                history.push(Message::assistant(reply.text.clone(), Vec::new()));
                return stop_blocked(history, blocked, &emit);
            }
            history.push(Message::assistant(
                reply.text.clone(),
                reply.tool_calls.clone(),
            ));
            if reply.tool_calls.is_empty() {
                self.turn_end(session_turn, 0, true, events).await;
                // An extension that injects after the final answer gets
                // the model to answer again (within the turn limit).
                if hooks.is_some_and(Hooks::has_injections) {
                    continue;
                }
                emit(AgentEvent::Finished {
                    text: reply.text.clone(),
                    turns: turn,
                });
                return Outcome::Finished { text: reply.text };
            }
            let ran = tools::run_calls(
                &self.tools,
                hooks,
                &reply.tool_calls,
                self.config.max_parallel_tools,
                self.session_id.as_deref(),
                cancel,
                events,
            )
            .await;
            history.extend(ran.results);
            self.turn_end(session_turn, reply.tool_calls.len(), false, events)
                .await;
            if cancel.is_cancelled() {
                emit(AgentEvent::Cancelled);
                return Outcome::Cancelled;
            }
            if let Some(message) = ran.host_failure {
                emit(AgentEvent::Failed {
                    message: message.clone(),
                });
                return Outcome::Failed(message);
            }
        }
        emit(AgentEvent::TurnLimitReached {
            max_turns: self.config.max_turns,
        });
        Outcome::TurnLimit
    }

    /// Lets extensions edit the request (system prompt and messages as the
    /// model sees them; the stored history is not changed) or stop the run.
    async fn before_llm_call(
        &self,
        request: &mut ChatRequest,
        events: &mpsc::UnboundedSender<AgentEvent>,
    ) -> Option<Blocked> {
        let mut dispatched = hooked::dispatch(
            self.hooks(),
            HookPoint::BeforeLlmCall,
            || {
                let tools: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
                json!({
                    "system": request.system,
                    "messages": request.messages,
                    "tools": tools,
                })
            },
            events,
        )
        .await;
        if let Some(patched) = dispatched.patched.take() {
            if let Some(system) = patched.get("system") {
                request.system = system.as_str().map(str::to_owned);
            }
            if let Some(messages) = patched.get("messages") {
                match serde_json::from_value::<Vec<Message>>(messages.clone()) {
                    Ok(messages) => request.messages = messages,
                    Err(err) => tracing::warn!(
                        "an extension's patched messages were ignored: they are not messages ({err})"
                    ),
                }
            }
        }
        dispatched.blocked
    }

    /// Lets extensions rewrite the model's reply before it enters the
    /// history, or stop the run.
    async fn after_llm_response(
        &self,
        reply: &mut ModelReply,
        events: &mpsc::UnboundedSender<AgentEvent>,
    ) -> Option<Blocked> {
        let mut dispatched = hooked::dispatch(
            self.hooks(),
            HookPoint::AfterLlmResponse,
            || {
                json!({
                    "text": reply.text,
                    "tool_calls": hooked::tool_calls_json(&reply.tool_calls),
                })
            },
            events,
        )
        .await;
        if let Some(patched) = dispatched.patched.take() {
            if let Some(text) = patched.get("text").and_then(|t| t.as_str()) {
                reply.text = text.to_owned();
            }
            if let Some(calls) = patched.get("tool_calls") {
                match serde_json::from_value::<Vec<ToolCall>>(calls.clone()) {
                    Ok(calls) => reply.tool_calls = calls,
                    Err(err) => tracing::warn!(
                        "an extension's patched tool calls were ignored: they are not tool calls ({err})"
                    ),
                }
            }
        }
        dispatched.blocked
    }

    async fn turn_end(
        &self,
        turn: u32,
        tool_calls: usize,
        finished: bool,
        events: &mpsc::UnboundedSender<AgentEvent>,
    ) {
        hooked::dispatch(
            self.hooks(),
            HookPoint::TurnEnd,
            || json!({ "turn": turn, "tool_calls": tool_calls, "finished": finished }),
            events,
        )
        .await;
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
        // Its own token, so a stream-chunk block can stop the model without
        // cancelling the run.
        let model_cancel = cancel.child_token();
        let mut receiver = self.provider.start(request, model_cancel.clone());
        let mut reply = ModelReply::default();
        let mut tap = self.hooks().and_then(Hooks::stream_tap);
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
                    let Some(open_tap) = &mut tap else {
                        emit(AgentEvent::TextDelta { text });
                        continue;
                    };
                    open_tap.push(&text).await;
                    emit(AgentEvent::TextDelta { text });
                    if open_tap.is_blocked() {
                        // A sync subscriber blocked the stream: stop the
                        // model now rather than at the end of its answer.
                        model_cancel.cancel();
                        reply.stream_hooks = tap_finish(tap.take()).await;
                        return Ok(reply);
                    }
                }
                Some(Ok(ProviderEvent::ToolCall { call })) => reply.tool_calls.push(call),
                Some(Ok(ProviderEvent::Usage { usage })) => emit(AgentEvent::Usage { usage }),
                Some(Ok(ProviderEvent::Finish { reason })) => {
                    reply.finish = Some(reason);
                    reply.stream_hooks = tap_finish(tap).await;
                    return Ok(reply);
                }
                Some(Err(agent_host_llm::ProviderError::Cancelled)) => {
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
                None => {
                    reply.stream_hooks = tap_finish(tap).await;
                    return Ok(reply);
                }
            }
        }
    }
}

/// The stream-chunk subscribers' outcomes, once the stream is over.
async fn tap_finish(
    tap: Option<agent_host_runtime::hooks::StreamTap>,
) -> Option<agent_host_runtime::hooks::Dispatched> {
    match tap {
        Some(tap) => Some(tap.finish().await),
        None => None,
    }
}

#[derive(Debug, Default)]
struct ModelReply {
    text: String,
    tool_calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
    /// What the stream-chunk hooks decided, when there are any.
    stream_hooks: Option<agent_host_runtime::hooks::Dispatched>,
}

/// Ends the run because an extension blocked it; the reason is recorded in
/// the history so the model sees it next time.
fn stop_blocked(
    history: &mut Vec<Message>,
    blocked: Blocked,
    emit: &impl Fn(AgentEvent),
) -> Outcome {
    let note = format!(
        "[stopped by extension {} at {}: {}]",
        blocked.extension, blocked.point, blocked.reason
    );
    match history.last_mut() {
        Some(last)
            if last.role == agent_host_llm::Role::Assistant && last.tool_calls.is_empty() =>
        {
            if !last.content.is_empty() {
                last.content.push('\n');
            }
            last.content.push_str(&note);
        }
        _ => history.push(Message::assistant(note, Vec::new())),
    }
    emit(AgentEvent::HookBlocked {
        extension: blocked.extension.clone(),
        point: blocked.point,
        reason: blocked.reason.clone(),
    });
    Outcome::Blocked {
        extension: blocked.extension,
        reason: blocked.reason,
    }
}

enum ModelStop {
    Cancelled { partial_text: String },
    Failed(String),
}

/// Milliseconds since `started`, for event payloads.
fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
