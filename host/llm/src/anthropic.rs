//! Anthropic messages API as a wire format of the HTTP shell: the request body (content blocks, merged tool results), and the named SSE events of a streamed answer.
//!
//! A `tool_use` block's input arrives as `input_json_delta` fragments; the
//! block is emitted as one complete tool call at its `content_block_stop`.
//! Text deltas are passed on as they arrive.

use std::collections::BTreeMap;

use reqwest::RequestBuilder;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::http::{HttpProvider, HttpTarget, WireFormat, join_url, truncate_chars};
use crate::sse::SseEvent;
use crate::{
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
    /// The model requests name when they name none themselves.
    pub model: String,
    /// Timeouts and retries.
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
    shell: HttpProvider<Messages>,
}

impl AnthropicProvider {
    /// Checks the configuration and takes the shared HTTP client.
    pub fn new(config: AnthropicConfig) -> Result<Self, ProviderError> {
        let target = HttpTarget {
            url: config.endpoint(),
            base_url: config.base_url,
            api_key: config.api_key,
            model: config.model,
            http: config.http,
        };
        Ok(Self {
            shell: HttpProvider::new(Messages, target)?,
        })
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        self.shell.model()
    }

    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        self.shell.start(request, cancel)
    }

    fn retries(&self) -> u64 {
        self.shell.retries()
    }
}

/// The messages wire format. Every request asks for a stream, so it keeps
/// the shell's default of reading every answer as one: a body that is not
/// a stream fails as one that ended before the model finished.
#[derive(Debug, Clone)]
pub(crate) struct Messages;

impl WireFormat for Messages {
    const NAME: &'static str = PROVIDER;
    type Stream = StreamState;

    fn request_body(&self, request: &ChatRequest, default_model: &str) -> Value {
        request_body(request, default_model)
    }

    fn headers(&self, post: RequestBuilder, api_key: Option<&str>) -> RequestBuilder {
        let post = post
            .header(ACCEPT, "text/event-stream")
            .header("anthropic-version", API_VERSION);
        match api_key {
            Some(key) => post.header("x-api-key", key),
            None => post,
        }
    }

    fn decode_event(
        &self,
        stream: &mut StreamState,
        event: &SseEvent,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        stream.on_event(&event.event, &event.data)
    }

    fn is_complete(stream: &StreamState) -> bool {
        stream.done
    }

    fn decode_end(&self, stream: &mut StreamState) -> Result<Vec<ProviderEvent>, ProviderError> {
        stream.at_end()
    }
}

/// The messages request body.
fn request_body(request: &ChatRequest, default_model: &str) -> Value {
    let model = request.model_or(default_model);
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
pub(crate) struct StreamState {
    blocks: BTreeMap<usize, Block>,
    usage: Usage,
    saw_usage: bool,
    stop_reason: Option<String>,
    /// `message_stop` was seen: the answer is complete.
    done: bool,
}

fn protocol(message: impl Into<String>) -> ProviderError {
    ProviderError::protocol(PROVIDER, message)
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

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
