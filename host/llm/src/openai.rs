//! OpenAI-compatible chat completions (OpenAI, Ollama, llama.cpp, vLLM) as a wire format of the HTTP shell: the request body, streamed and whole answers, tool-call fragment assembly.
//!
//! Streamed tool calls arrive as fragments keyed by `index` (the id and
//! name usually only in the first); they are joined here and emitted, in
//! index order, when the choice finishes. Text deltas are passed on as they
//! arrive. A stream that ends before `finish_reason` or `[DONE]` is an
//! error, not a short answer.

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
    ProviderEvent, Role, Usage,
};

const PROVIDER: &str = "openai";

/// How much of a malformed chunk is quoted in the error.
const QUOTE_CHARS: usize = 200;

/// Where and how to reach an OpenAI-compatible API.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// For example `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// Sent as a bearer token when set; local servers need none.
    pub api_key: Option<String>,
    /// The model requests name when they name none themselves.
    pub model: String,
    /// Stream the answer (SSE) or wait for the whole JSON response.
    pub stream: bool,
    /// Timeouts and retries.
    pub http: HttpSettings,
}

impl OpenAiConfig {
    /// A streaming configuration with default HTTP settings and no key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            stream: true,
            http: HttpSettings::default(),
        }
    }

    /// The chat-completions URL, `{base_url}/chat/completions` (a base
    /// URL that already names the endpoint is used as is).
    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        if base.ends_with("/chat/completions") {
            base.to_owned()
        } else {
            join_url(base, "chat/completions")
        }
    }
}

/// A [`Provider`] speaking the chat-completions API.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    shell: HttpProvider<ChatCompletions>,
}

impl OpenAiProvider {
    /// Checks the configuration and takes the shared HTTP client.
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
        let target = HttpTarget {
            url: config.endpoint(),
            base_url: config.base_url,
            api_key: config.api_key,
            model: config.model,
            http: config.http,
        };
        let wire = ChatCompletions {
            stream: config.stream,
        };
        Ok(Self {
            shell: HttpProvider::new(wire, target)?,
        })
    }
}

impl Provider for OpenAiProvider {
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

/// The chat-completions wire format.
#[derive(Debug, Clone)]
pub(crate) struct ChatCompletions {
    /// Ask for an event stream (else one JSON document).
    pub(crate) stream: bool,
}

impl WireFormat for ChatCompletions {
    const NAME: &'static str = PROVIDER;
    type Stream = StreamState;

    fn request_body(&self, request: &ChatRequest, default_model: &str) -> Value {
        request_body(request, default_model, self.stream)
    }

    fn headers(&self, post: RequestBuilder, api_key: Option<&str>) -> RequestBuilder {
        let accept = if self.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let post = post.header(ACCEPT, accept);
        match api_key {
            Some(key) => post.bearer_auth(key),
            None => post,
        }
    }

    fn is_whole_answer(&self, content_type: Option<&str>) -> bool {
        // Some servers ignore `stream` and answer with one JSON document.
        !self.stream || content_type.is_some_and(|value| value.starts_with("application/json"))
    }

    fn decode_whole(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, ProviderError> {
        parse_completion(body).map_err(protocol)
    }

    fn decode_event(
        &self,
        stream: &mut StreamState,
        event: &SseEvent,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        stream.on_data(&event.data).map_err(protocol)
    }

    fn is_complete(stream: &StreamState) -> bool {
        stream.done
    }

    fn decode_end(&self, stream: &mut StreamState) -> Result<Vec<ProviderEvent>, ProviderError> {
        stream.at_end().map_err(protocol)
    }
}

fn protocol(message: String) -> ProviderError {
    ProviderError::protocol(PROVIDER, message)
}

/// The chat-completions request body.
fn request_body(request: &ChatRequest, default_model: &str, stream: bool) -> Value {
    let model = request.model_or(default_model);
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request
        .system
        .as_deref()
        .filter(|system| !system.is_empty())
    {
        messages.push(json!({ "role": "system", "content": system }));
    }
    messages.extend(request.messages.iter().map(wire_message));
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "stream": stream,
    });
    if stream {
        body["stream_options"] = json!({ "include_usage": true });
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
    }
    body
}

fn wire_message(message: &Message) -> Value {
    match message.role {
        Role::User => json!({ "role": "user", "content": message.content }),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({ "role": "assistant", "content": message.content })
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments },
                    })
                })
                .collect();
            // The API wants null, not "", beside tool calls.
            let content = if message.content.is_empty() {
                Value::Null
            } else {
                json!(message.content)
            };
            json!({ "role": "assistant", "content": content, "tool_calls": calls })
        }
        Role::Tool => {
            // The API has no error flag on tool results: say it in the text,
            // or the model takes an error message for a result.
            let content = if message.is_error {
                format!("Error: {}", message.content)
            } else {
                message.content.clone()
            };
            json!({
                "role": "tool",
                "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
                "content": content,
            })
        }
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// Some servers report a failure inside a 200 stream.
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallFragment>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallFragment {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[derive(Debug, Deserialize)]
struct FunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Self {
            input_tokens: usage.prompt_tokens.unwrap_or(0),
            output_tokens: usage.completion_tokens.unwrap_or(0),
        }
    }
}

/// A tool call being assembled from fragments.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// What a streamed answer has said so far. Errors are plain messages; the
/// caller turns them into `ProviderError::Protocol`.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    calls: BTreeMap<usize, PartialCall>,
    /// Calls already emitted (for ids of calls that came without one).
    emitted_calls: usize,
    made_calls: bool,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// `[DONE]` was seen: the answer is complete.
    done: bool,
}

impl StreamState {
    /// One `data:` payload.
    fn on_data(&mut self, data: &str) -> Result<Vec<ProviderEvent>, String> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return self.finish_events();
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|err| {
            format!(
                "malformed stream chunk ({err}): `{}`",
                truncate_chars(data, QUOTE_CHARS)
            )
        })?;
        if let Some(error) = chunk.error.filter(|error| !error.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(format!("the stream reported an error: {message}"));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        let mut events = Vec::new();
        // Only one choice is asked for; others (n > 1) are not ours.
        for choice in chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .filter(|choice| choice.index == 0)
        {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    events.push(ProviderEvent::TextDelta { text });
                }
                for fragment in delta.tool_calls.unwrap_or_default() {
                    self.add_fragment(fragment)?;
                }
            }
            if let Some(reason) = choice.finish_reason {
                // No per-call "complete" signal exists: the calls are whole
                // once the choice finishes.
                events.extend(self.flush_calls()?);
                self.finish = Some(finish_reason(&reason));
            }
        }
        Ok(events)
    }

    fn add_fragment(&mut self, fragment: ToolCallFragment) -> Result<(), String> {
        let index = match fragment.index {
            Some(index) => index,
            None => {
                // Servers that omit `index` send one call at a time: a new id
                // starts the next call, anything else continues the last one.
                let last = self.calls.keys().next_back().copied();
                match (last, fragment.id.as_deref()) {
                    (Some(last), Some(id))
                        if self.calls.get(&last).is_some_and(|call| call.id != id) =>
                    {
                        // The index comes from the server: after an index
                        // of usize::MAX there is no next one (found by
                        // fuzzing, docs/fuzzing.md).
                        last.checked_add(1).ok_or_else(|| {
                            format!(
                                "tool call index {last} has no successor; the stream is malformed"
                            )
                        })?
                    }
                    (Some(last), _) => last,
                    (None, _) => self.emitted_calls,
                }
            }
        };
        self.made_calls = true;
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.filter(|name| !name.is_empty())
                && call.name.is_empty()
            {
                call.name = name;
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
        Ok(())
    }

    /// The assembled calls, in index order.
    fn flush_calls(&mut self) -> Result<Vec<ProviderEvent>, String> {
        let mut events = Vec::with_capacity(self.calls.len());
        for (index, call) in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                return Err(format!("tool call #{index} came without a function name"));
            }
            self.emitted_calls += 1;
            let id = if call.id.is_empty() {
                format!("call_{}", self.emitted_calls)
            } else {
                call.id
            };
            events.push(ProviderEvent::ToolCall {
                call: super::ToolCall {
                    id,
                    name: call.name,
                    arguments: call.arguments,
                },
            });
        }
        Ok(events)
    }

    /// The answer is complete: pending calls, usage, and `Finish`.
    fn finish_events(&mut self) -> Result<Vec<ProviderEvent>, String> {
        let mut events = self.flush_calls()?;
        if let Some(usage) = self.usage.take() {
            events.push(ProviderEvent::Usage { usage });
        }
        let reason = match self.finish.take() {
            // Some servers say "stop" after calling tools.
            Some(FinishReason::Stop) | None if self.made_calls => FinishReason::ToolCalls,
            Some(reason) => reason,
            None => FinishReason::Stop,
        };
        events.push(ProviderEvent::Finish { reason });
        Ok(events)
    }

    /// The body ended. Without `[DONE]`, a finished choice is still a whole
    /// answer; anything less is a broken stream.
    fn at_end(&mut self) -> Result<Vec<ProviderEvent>, String> {
        if self.done {
            Ok(Vec::new())
        } else if self.finish.is_some() {
            self.done = true;
            self.finish_events()
        } else {
            Err(concat!(
                "the stream ended before the model finished (no finish_reason or [DONE]); ",
                "the connection may have dropped"
            )
            .to_owned())
        }
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "length" => FinishReason::Length,
        other => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Option<Vec<CompletionChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CompletionToolCall>>,
}

#[derive(Debug, Deserialize)]
struct CompletionToolCall {
    #[serde(default)]
    id: Option<String>,
    function: CompletionFunction,
}

#[derive(Debug, Deserialize)]
struct CompletionFunction {
    name: String,
    /// A JSON string per the API; some servers send the object itself.
    #[serde(default)]
    arguments: Option<Value>,
}

/// A whole (non-streamed) answer, as the same events a stream gives.
pub(crate) fn parse_completion(body: &[u8]) -> Result<Vec<ProviderEvent>, String> {
    let completion: Completion = serde_json::from_slice(body).map_err(|err| {
        format!(
            "malformed response ({err}): `{}`",
            truncate_chars(&String::from_utf8_lossy(body), QUOTE_CHARS)
        )
    })?;
    let Some(choice) = completion
        .choices
        .and_then(|choices| choices.into_iter().next())
    else {
        return Err("the response has no choices".to_owned());
    };
    let mut state = StreamState::default();
    let mut events = Vec::new();
    if let Some(text) = choice.message.content.filter(|text| !text.is_empty()) {
        events.push(ProviderEvent::TextDelta { text });
    }
    for (index, call) in choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let arguments = match call.function.arguments {
            Some(Value::String(text)) => text,
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        state.add_fragment(ToolCallFragment {
            index: Some(index),
            id: call.id,
            function: Some(FunctionFragment {
                name: Some(call.function.name),
                arguments: Some(arguments),
            }),
        })?;
    }
    state.finish = choice.finish_reason.as_deref().map(finish_reason);
    state.usage = completion.usage.map(Usage::from);
    events.extend(state.finish_events()?);
    Ok(events)
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
