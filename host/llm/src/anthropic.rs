//! Anthropic messages API: the request body (content blocks, merged tool results), and the named SSE events of a streamed answer.
//!
//! A `tool_use` block's input arrives as `input_json_delta` fragments; the
//! block is emitted as one complete tool call at its `content_block_stop`.
//! Text deltas are passed on as they arrive.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::http::{Call, SseBody, client_for, join_url, truncate_chars};
use super::{
    ChatRequest, EventReceiver, FinishReason, HttpSettings, Message, Provider, ProviderError,
    ProviderEvent, Role, ToolCall, Usage,
};

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";
/// How much of a malformed event is quoted in the error.
const QUOTE_CHARS: usize = 200;

/// Where and how to reach the Anthropic API.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// For example `https://api.anthropic.com` (a trailing `/v1` is accepted).
    pub base_url: String,
    /// Sent as `x-api-key` when set.
    pub api_key: Option<String>,
    pub model: String,
    pub http: HttpSettings,
}

impl AnthropicConfig {
    /// A configuration with default HTTP settings and no key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            http: HttpSettings::default(),
        }
    }

    /// The messages URL, `{base_url}/v1/messages`.
    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        if base.ends_with("/v1/messages") {
            base.to_owned()
        } else if base.ends_with("/v1") {
            join_url(base, "messages")
        } else {
            join_url(base, "v1/messages")
        }
    }
}

/// A [`Provider`] speaking the Anthropic messages API (always streamed).
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AnthropicConfig,
    client: reqwest::Client,
    url: String,
}

impl AnthropicProvider {
    /// Checks the configuration and takes the shared HTTP client.
    pub fn new(config: AnthropicConfig) -> Result<Self, ProviderError> {
        let client = client_for(PROVIDER, &config.base_url, &config.model, &config.http)?;
        let url = config.endpoint();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                url,
            }),
        })
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.inner.config.model
    }

    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        let (call, receiver) = Call::new(PROVIDER, &self.inner.config.http, cancel);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let outcome = call.guard(inner.run(&call, request)).await;
            call.end(outcome).await;
        });
        receiver
    }
}

impl Inner {
    async fn run(&self, call: &Call, request: ChatRequest) -> Result<(), ProviderError> {
        let body = request_body(&request, &self.config.model);
        let body = bytes::Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|err| call.protocol(format!("cannot encode the request: {err}")))?,
        );
        let response = call
            .send_with_retries(&self.url, || {
                let mut builder = self
                    .client
                    .post(&self.url)
                    .header(CONTENT_TYPE, "application/json")
                    .header(ACCEPT, "text/event-stream")
                    .header("anthropic-version", API_VERSION)
                    .body(body.clone());
                if let Some(key) = &self.config.api_key {
                    builder = builder.header("x-api-key", key);
                }
                builder
            })
            .await?;
        let mut body = SseBody::new(response);
        let mut state = StreamState::default();
        while let Some(event) = body.next(call).await? {
            for event in state.on_event(&event.event, &event.data)? {
                call.emit(event).await?;
            }
            if state.done {
                return Ok(());
            }
        }
        for event in state.at_end()? {
            call.emit(event).await?;
        }
        Ok(())
    }
}

/// The messages request body.
fn request_body(request: &ChatRequest, default_model: &str) -> Value {
    let model = if request.model.is_empty() {
        default_model
    } else {
        &request.model
    };
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": wire_messages(&request.messages),
        "stream": true,
    });
    if let Some(system) = request
        .system
        .as_deref()
        .filter(|system| !system.is_empty())
    {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
    }
    body
}

/// Messages as content blocks. Tool results travel in user messages, and
/// consecutive messages of one role are merged, since the API wants the
/// roles to alternate and all results of one turn in one message.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let mut wire: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::User => ("user", text_block(&message.content).into_iter().collect()),
            Role::Assistant => {
                let mut blocks: Vec<Value> = text_block(&message.content).into_iter().collect();
                blocks.extend(message.tool_calls.iter().map(|call| {
                    json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": tool_input(&call.arguments),
                    })
                }));
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
                    "content": message.content,
                    "is_error": message.is_error,
                })],
            ),
        };
        // The API rejects empty content; an empty message adds nothing.
        if blocks.is_empty() {
            continue;
        }
        match wire.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => wire.push((role, blocks)),
        }
    }
    wire.into_iter()
        .map(|(role, blocks)| json!({ "role": role, "content": blocks }))
        .collect()
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

/// A call's arguments as the `input` object the API requires. Arguments
/// that are not a JSON object (the model wrote something broken, which the
/// agent already reported back) are sent as `{}` so the history stays valid.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({}),
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageDeltaBody>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorBody,
    },
    /// Event types newer than this client: ignored.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    /// Thinking and other block kinds carry nothing the agent uses.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

impl WireUsage {
    /// All prompt tokens, cached or not: what the request really cost.
    fn input(self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        // Counts come from the server: a sum past u64::MAX saturates
        // instead of overflowing (found by fuzzing, docs/fuzzing.md).
        parts.iter().any(Option::is_some).then(|| {
            parts
                .iter()
                .flatten()
                .fold(0u64, |total, part| total.saturating_add(*part))
        })
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A content block being streamed.
#[derive(Debug)]
enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        input: String,
    },
    Other,
}

/// What a streamed answer has said so far.
#[derive(Debug, Default)]
struct StreamState {
    blocks: BTreeMap<usize, Block>,
    usage: Usage,
    saw_usage: bool,
    stop_reason: Option<String>,
    /// `message_stop` was seen: the answer is complete.
    done: bool,
}

fn protocol(message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol {
        provider: PROVIDER.to_owned(),
        message: message.into(),
    }
}

impl StreamState {
    /// One SSE event. The `type` inside the data is authoritative (the SSE
    /// event name repeats it); the name only fills in for data without one.
    fn on_event(&mut self, name: &str, data: &str) -> Result<Vec<ProviderEvent>, ProviderError> {
        let mut value: Value = serde_json::from_str(data).map_err(|err| {
            protocol(format!(
                "malformed `{name}` event ({err}): `{}`",
                truncate_chars(data, QUOTE_CHARS)
            ))
        })?;
        if let Some(object) = value.as_object_mut()
            && !object.contains_key("type")
        {
            object.insert("type".to_owned(), json!(name));
        }
        let event: StreamEvent = serde_json::from_value(value).map_err(|err| {
            protocol(format!(
                "malformed `{name}` event ({err}): `{}`",
                truncate_chars(data, QUOTE_CHARS)
            ))
        })?;
        let mut events = Vec::new();
        match event {
            StreamEvent::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.add_usage(usage);
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            events.push(ProviderEvent::TextDelta { text });
                        }
                        Block::Text
                    }
                    StartBlock::ToolUse { id, name } => Block::ToolUse {
                        id,
                        name,
                        input: String::new(),
                    },
                    StartBlock::Other => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                match (self.blocks.get_mut(&index), delta) {
                    (_, BlockDelta::TextDelta { text }) if !text.is_empty() => {
                        events.push(ProviderEvent::TextDelta { text });
                    }
                    (
                        Some(Block::ToolUse { input, .. }),
                        BlockDelta::InputJsonDelta { partial_json },
                    ) => {
                        input.push_str(&partial_json);
                    }
                    (None, BlockDelta::InputJsonDelta { .. }) => {
                        return Err(protocol(format!(
                            "input for content block {index}, which never started"
                        )));
                    }
                    _ => {}
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                if let Some(block) = self.blocks.remove(&index) {
                    events.extend(tool_call_event(block));
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.and_then(|delta| delta.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = usage {
                    self.add_usage(usage);
                }
            }
            StreamEvent::MessageStop => {
                self.done = true;
                events.extend(self.finish_events());
            }
            StreamEvent::Ping | StreamEvent::Unknown => {}
            StreamEvent::Error { error } => return Err(stream_error(error)),
        }
        Ok(events)
    }

    fn add_usage(&mut self, usage: WireUsage) {
        self.saw_usage = true;
        if let Some(input) = usage.input() {
            self.usage.input_tokens = input;
        }
        // Output counts are cumulative: the latest is the total.
        if let Some(output) = usage.output_tokens {
            self.usage.output_tokens = output;
        }
    }

    /// Unclosed tool calls, usage, and `Finish`.
    fn finish_events(&mut self) -> Vec<ProviderEvent> {
        let mut events: Vec<ProviderEvent> = std::mem::take(&mut self.blocks)
            .into_values()
            .filter_map(tool_call_event)
            .collect();
        if self.saw_usage {
            events.push(ProviderEvent::Usage { usage: self.usage });
        }
        let reason = match self.stop_reason.take().as_deref() {
            Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
            Some("tool_use") => FinishReason::ToolCalls,
            Some("max_tokens") => FinishReason::Length,
            Some(other) => FinishReason::Other(other.to_owned()),
        };
        events.push(ProviderEvent::Finish { reason });
        events
    }

    /// The body ended. Without `message_stop`, a stop reason still means
    /// the answer is whole; anything less is a broken stream.
    fn at_end(&mut self) -> Result<Vec<ProviderEvent>, ProviderError> {
        if self.done {
            Ok(Vec::new())
        } else if self.stop_reason.is_some() {
            self.done = true;
            Ok(self.finish_events())
        } else {
            Err(protocol(
                "the stream ended before the model finished (no message_stop); the connection may have dropped",
            ))
        }
    }
}

fn tool_call_event(block: Block) -> Option<ProviderEvent> {
    match block {
        Block::ToolUse { id, name, input } => Some(ProviderEvent::ToolCall {
            call: ToolCall {
                id,
                name,
                // A tool without parameters streams no input at all.
                arguments: if input.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    input
                },
            },
        }),
        Block::Text | Block::Other => None,
    }
}

/// An `error` event, as the HTTP error it stands for when its type names
/// one (so "overloaded" reads like the 529 it is), else a protocol error.
fn stream_error(error: ErrorBody) -> ProviderError {
    let status = match error.kind.as_str() {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "overloaded_error" => 529,
        _ => 0,
    };
    let message = if error.message.is_empty() {
        error.kind.clone()
    } else {
        error.message
    };
    if status == 0 {
        protocol(format!("the stream reported an error: {message}"))
    } else {
        ProviderError::Http {
            provider: PROVIDER.to_owned(),
            status,
            message,
            retried: 0,
        }
    }
}

/// The streamed decoder as `run` drives it, on each SSE event as
/// `(event, data)` (or the SSE error), for the fuzz targets
/// (docs/fuzzing.md).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_stream_for_fuzzing(
    events: impl Iterator<Item = Result<(String, String), String>>,
) -> Result<Vec<ProviderEvent>, String> {
    let mut state = StreamState::default();
    let mut out = Vec::new();
    for event in events {
        let (name, data) = event?;
        out.extend(
            state
                .on_event(&name, &data)
                .map_err(|err| err.to_string())?,
        );
        if state.done {
            return Ok(out);
        }
    }
    out.extend(state.at_end().map_err(|err| err.to_string())?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolDef;

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        }
    }

    #[test]
    fn body_merges_tool_results_into_one_user_message() {
        let request = ChatRequest {
            model: "claude".to_owned(),
            system: Some("sys".to_owned()),
            messages: vec![
                Message::user("go"),
                Message::assistant(
                    "Checking.",
                    vec![
                        call("t1", "calc", r#"{"expression":"1+1"}"#),
                        call("t2", "note_list", "not json"),
                    ],
                ),
                Message::tool_result("t1", "2", false),
                Message::tool_result("t2", "no notes", true),
                Message::user("and?"),
                Message::assistant("", Vec::new()),
            ],
            tools: vec![ToolDef {
                name: "calc".to_owned(),
                description: "math".to_owned(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 64,
        };
        assert_eq!(
            request_body(&request, "fallback"),
            json!({
                "model": "claude",
                "max_tokens": 64,
                "system": "sys",
                "stream": true,
                "tools": [{"name": "calc", "description": "math", "input_schema": {"type": "object"}}],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "go"}]},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "t1", "name": "calc", "input": {"expression": "1+1"}},
                        {"type": "tool_use", "id": "t2", "name": "note_list", "input": {}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "2", "is_error": false},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "no notes", "is_error": true},
                        {"type": "text", "text": "and?"},
                    ]},
                ],
            })
        );
    }

    #[test]
    fn endpoint_variants() {
        for base in [
            "https://api.anthropic.com",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1",
        ] {
            assert_eq!(
                AnthropicConfig::new(base, "m").endpoint(),
                "https://api.anthropic.com/v1/messages"
            );
        }
    }

    fn feed(
        state: &mut StreamState,
        events: &[(&str, Value)],
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        let mut out = Vec::new();
        for (name, data) in events {
            out.extend(state.on_event(name, &data.to_string())?);
        }
        Ok(out)
    }

    #[test]
    fn stream_assembles_tool_input_per_block() {
        let mut state = StreamState::default();
        let events = feed(
            &mut state,
            &[
                ("message_start", json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 20, "output_tokens": 1}}})),
                ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                ("ping", json!({"type": "ping"})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "On it."}})),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                ("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "calc", "input": {}}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"expr"}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ession\": \"1+"}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1\"}"}})),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
                ("content_block_start", json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t2", "name": "note_list", "input": {}}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}})),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 2})),
                ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}})),
                ("message_stop", json!({"type": "message_stop"})),
            ],
        )
        .unwrap();
        assert_eq!(
            events,
            vec![
                ProviderEvent::TextDelta {
                    text: "On it.".to_owned()
                },
                ProviderEvent::ToolCall {
                    call: call("t1", "calc", r#"{"expression": "1+1"}"#)
                },
                ProviderEvent::ToolCall {
                    call: call("t2", "note_list", "{}")
                },
                ProviderEvent::Usage {
                    usage: Usage {
                        input_tokens: 20,
                        output_tokens: 42
                    }
                },
                ProviderEvent::Finish {
                    reason: FinishReason::ToolCalls
                },
            ]
        );
        assert!(state.done);
    }

    #[test]
    fn errors_and_bad_events() {
        let err = StreamState::default()
            .on_event(
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Http { status: 529, message, .. } if message == "Overloaded"),
            "{err:?}"
        );
        let err = StreamState::default()
            .on_event(
                "error",
                r#"{"type":"error","error":{"type":"weird","message":"odd"}}"#,
            )
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Protocol { message, .. } if message.contains("odd")),
            "{err:?}"
        );
        for (name, data) in [
            ("content_block_delta", "{oops"),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":"x"}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use"}}"#,
            ),
            ("message_start", "[]"),
        ] {
            let err = StreamState::default().on_event(name, data).unwrap_err();
            assert!(
                matches!(&err, ProviderError::Protocol { message, .. } if message.contains("malformed")),
                "{data}: {err:?}"
            );
        }
        // Unknown events and deltas are skipped, a nameless type is filled in.
        let mut state = StreamState::default();
        assert!(
            state
                .on_event("brand_new", r#"{"type":"brand_new"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(state.on_event("ping", "{}").unwrap().is_empty());
        assert!(
            state
                .at_end()
                .unwrap_err()
                .to_string()
                .contains("ended before the model finished")
        );
    }

    /// Found by fuzzing (docs/fuzzing.md): input token counts whose sum
    /// passes u64::MAX overflowed (a panic in debug builds).
    #[test]
    fn huge_usage_counts_saturate() {
        let mut state = StreamState::default();
        let events = feed(
            &mut state,
            &[
                (
                    "message_start",
                    json!({"type": "message_start", "message": {"usage": {
                        "input_tokens": u64::MAX, "cache_read_input_tokens": 1,
                        "cache_creation_input_tokens": u64::MAX, "output_tokens": 1}}}),
                ),
                ("message_stop", json!({"type": "message_stop"})),
            ],
        )
        .unwrap();
        assert!(
            events.contains(&ProviderEvent::Usage {
                usage: Usage {
                    input_tokens: u64::MAX,
                    output_tokens: 1
                }
            }),
            "{events:?}"
        );
    }
}
