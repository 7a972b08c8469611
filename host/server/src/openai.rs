//! `POST /v1/chat/completions`: agent-host answers as if it were a model, running its own tools between model calls; plain JSON or OpenAI chat-completion chunks ending in `[DONE]`.
//!
//! The request carries the whole conversation (as OpenAI's API does), so
//! nothing is stored: the earlier messages are the history, the last user
//! message is the turn. The tools are agent-host's; a request that brings
//! tools of its own (or tool results) is refused, since they would never be
//! called.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use agent_host_agent::{Agent, Outcome};
use agent_host_llm::{Message, Usage};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::state::AppState;
use crate::turn;

#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

/// A message's content: a string, or parts of which only text is taken.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn text(self) -> Result<String, ApiError> {
        match self {
            Content::Text(text) => Ok(text),
            Content::Parts(parts) => {
                let mut text = Vec::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(piece)) => text.push(piece),
                        (kind, _) => {
                            return Err(ApiError::bad_request(format!(
                                "content parts of type {kind:?} are not supported; send text"
                            )));
                        }
                    }
                }
                Ok(text.join("\n"))
            }
        }
    }
}

/// The conversation as the agent takes it: a system prompt, the history,
/// and the message that starts the turn.
struct Conversation {
    system: Option<String>,
    history: Vec<Message>,
    prompt: String,
}

fn conversation(messages: Vec<ChatMessage>) -> Result<Conversation, ApiError> {
    let mut system = Vec::new();
    let mut history = Vec::new();
    for message in messages {
        if message.tool_calls.is_some() || message.role == "tool" {
            return Err(ApiError::bad_request(
                "tool calls and tool results in `messages` are not supported: agent-host runs its own tools (GET /v1/tools) and keeps their results to itself",
            ));
        }
        let text = message
            .content
            .map(Content::text)
            .transpose()?
            .unwrap_or_default();
        match message.role.as_str() {
            "system" | "developer" => system.push(text),
            "user" => history.push(Message::user(text)),
            "assistant" => history.push(Message::assistant(text, Vec::new())),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown message role {other:?}; use system, developer, user or assistant"
                )));
            }
        }
    }
    let Some(last) = history.pop() else {
        return Err(ApiError::bad_request(
            "`messages` has no user message to answer",
        ));
    };
    if last.role != agent_host_llm::Role::User {
        return Err(ApiError::bad_request(
            "the last message must be the user's: it is the one agent-host answers",
        ));
    }
    Ok(Conversation {
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        history,
        prompt: last.content,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    })
}

/// OpenAI's finish reasons for how the turn ended.
fn finish_reason(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Finished { .. } => "stop",
        Outcome::TurnLimit => "length",
        Outcome::Blocked { .. } => "content_filter",
        Outcome::Cancelled | Outcome::Failed(_) => "stop",
    }
}

pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: ChatRequest = crate::api::read_json(&state, body).await?;
    if request.tools.as_ref().is_some_and(|tools| !tools.is_null()) {
        return Err(ApiError::bad_request(
            "`tools` is not supported: agent-host calls its own tools (GET /v1/tools); leave it out",
        ));
    }
    let provider = state.models().pick(Some(&request.model)).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "the model {:?} is not served here; GET /v1/models lists {:?}",
                request.model,
                state.models().names()
            ),
        )
    })?;
    let conversation = conversation(request.messages)?;
    if conversation.prompt.len() > state.config().max_message_bytes() {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!(
                "the last message is {} bytes, over {} ([server] max_message_kb)",
                conversation.prompt.len(),
                state.config().max_message_bytes()
            ),
        ));
    }
    let claim = state.begin_stateless_turn()?;
    let mut config = state.agent_config().clone();
    if conversation.system.is_some() {
        config.system_prompt = conversation.system;
    }
    let runtime = state.runtime().clone();
    let agent = Agent::new(state.tools(), provider, config).with_extensions(runtime);
    let id = format!("chatcmpl-{}", uuid_like());
    let model = request.model.clone();
    let (client_tx, client_rx) = mpsc::channel(state.config().stream_buffer.max(1));
    let cancel = claim.cancel.clone();
    let hang_up = crate::api::HangUp::new(cancel.clone(), state.config().cancel_on_disconnect);
    let run = {
        let state = state.clone();
        tokio::spawn(async move {
            let ran = turn::run_agent(
                &state,
                agent,
                conversation.history,
                conversation.prompt,
                &claim.cancel,
                &client_tx,
            )
            .await;
            drop(claim);
            ran
        })
    };
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        let chunks = stream_chunks(client_rx, run, id, model, include_usage, hang_up);
        return Ok(Sse::new(chunks).into_response());
    }
    let mut events = client_rx;
    while events.recv().await.is_some() {}
    let ran = run.await.map_err(|_| ApiError::turn_lost())?;
    hang_up.disarm();
    if let Outcome::Failed(message) = &ran.outcome {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "turn_failed",
            message.clone(),
        ));
    }
    let text = answer_text(&ran.outcome);
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json!({
            "id": id,
            "object": "chat.completion",
            "created": unix_now(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "finish_reason": finish_reason(&ran.outcome),
            }],
            "usage": usage_json(ran.usage),
        })
        .to_string(),
    )
        .into_response())
}

/// The answer, or what stopped the turn from giving one.
fn answer_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Finished { text } => text.clone(),
        Outcome::TurnLimit => {
            "[agent-host: the turn used all its model calls without an answer]".to_owned()
        }
        Outcome::Cancelled => "[agent-host: the turn was cancelled]".to_owned(),
        Outcome::Blocked { extension, reason } => {
            format!("[agent-host: blocked by extension {extension}: {reason}]")
        }
        Outcome::Failed(message) => format!("[agent-host: the turn failed: {message}]"),
    }
}

/// A process-unique id for a completion.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:x}{:08x}",
        unix_now(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The turn as chat-completion chunks: a role chunk, a content chunk per
/// text delta, a finish chunk, the usage chunk when asked for, `[DONE]`.
/// Tool calls stay inside agent-host: the client sees their effect in the
/// answer, never a call it would have to make.
fn stream_chunks(
    mut events: mpsc::Receiver<Value>,
    run: tokio::task::JoinHandle<turn::Ran>,
    id: String,
    model: String,
    include_usage: bool,
    hang_up: crate::api::HangUp,
) -> impl Stream<Item = Result<Event, Infallible>> {
    crate::api::task_stream(move |sender| async move {
        let created = unix_now();
        let chunk = |delta: Value, finish: Option<&str>| {
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
            })
        };
        let send = |value: Value| {
            let sender = sender.clone();
            async move {
                sender
                    .send(Ok(Event::default().data(value.to_string())))
                    .await
                    .is_ok()
            }
        };
        if !send(chunk(json!({ "role": "assistant", "content": "" }), None)).await {
            return;
        }
        while let Some(event) = events.recv().await {
            if event["type"] == "text_delta"
                && let Some(text) = event["text"].as_str()
                && !send(chunk(json!({ "content": text }), None)).await
            {
                return;
            }
        }
        let Ok(ran) = run.await else {
            return;
        };
        hang_up.disarm();
        match &ran.outcome {
            Outcome::Finished { .. } => {}
            Outcome::Failed(message) => {
                let error = json!({ "error": { "code": "turn_failed", "message": message } });
                let _ = send(error).await;
            }
            other => {
                let note = answer_text(other);
                if !send(chunk(json!({ "content": note }), None)).await {
                    return;
                }
            }
        }
        if !send(chunk(json!({}), Some(finish_reason(&ran.outcome)))).await {
            return;
        }
        if include_usage {
            let mut last = chunk(json!({}), None);
            last["choices"] = json!([]);
            last["usage"] = usage_json(ran.usage);
            if !send(last).await {
                return;
            }
        }
        let _ = sender.send(Ok(Event::default().data("[DONE]"))).await;
    })
}
