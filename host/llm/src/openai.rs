//! OpenAI-compatible chat completions (OpenAI, Ollama, llama.cpp, vLLM): the request body, streamed and whole answers, tool-call fragment assembly.
//!
//! Streamed tool calls arrive as fragments keyed by `index` (the id and
//! name usually only in the first); they are joined here and emitted, in
//! index order, when the choice finishes. Text deltas are passed on as they
//! arrive. A stream that ends before `finish_reason` or `[DONE]` is an
//! error, not a short answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::http::{Call, SseBody, client_for, join_url, truncate_chars};
use super::{
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
    pub model: String,
    /// Stream the answer (SSE) or wait for the whole JSON response.
    pub stream: bool,
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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: OpenAiConfig,
    client: reqwest::Client,
    url: String,
}

impl OpenAiProvider {
    /// Checks the configuration and takes the shared HTTP client.
    pub fn new(config: OpenAiConfig) -> Result<Self, ProviderError> {
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

impl Provider for OpenAiProvider {
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
        let stream = self.config.stream;
        let body = request_body(&request, &self.config.model, stream);
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
                    .header(
                        ACCEPT,
                        if stream {
                            "text/event-stream"
                        } else {
                            "application/json"
                        },
                    )
                    .body(body.clone());
                if let Some(key) = &self.config.api_key {
                    builder = builder.bearer_auth(key);
                }
                builder
            })
            .await?;
        // Some servers ignore `stream` and answer with one JSON document.
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !stream || is_json {
            let bytes = call.read_body(response).await?;
            for event in parse_completion(&bytes).map_err(|message| call.protocol(message))? {
                call.emit(event).await?;
            }
            return Ok(());
        }
        let mut body = SseBody::new(response);
        let mut state = StreamState::default();
        while let Some(event) = body.next(call).await? {
            let events = state
                .on_data(&event.data)
                .map_err(|message| call.protocol(message))?;
            for event in events {
                call.emit(event).await?;
            }
            if state.done {
                return Ok(());
            }
        }
        for event in state.at_end().map_err(|message| call.protocol(message))? {
            call.emit(event).await?;
        }
        Ok(())
    }
}

/// The chat-completions request body.
fn request_body(request: &ChatRequest, default_model: &str, stream: bool) -> Value {
    let model = if request.model.is_empty() {
        default_model
    } else {
        &request.model
    };
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
struct StreamState {
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
fn parse_completion(body: &[u8]) -> Result<Vec<ProviderEvent>, String> {
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

/// The streamed decoder as `run` drives it, on the `data` of each SSE event
/// (or the SSE error), for the fuzz targets (docs/fuzzing.md).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_stream_for_fuzzing(
    events: impl Iterator<Item = Result<String, String>>,
) -> Result<Vec<ProviderEvent>, String> {
    let mut state = StreamState::default();
    let mut out = Vec::new();
    for data in events {
        out.extend(state.on_data(&data?)?);
        if state.done {
            return Ok(out);
        }
    }
    out.extend(state.at_end()?);
    Ok(out)
}

/// The whole-response decoder, for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_completion_for_fuzzing(body: &[u8]) -> Result<Vec<ProviderEvent>, String> {
    parse_completion(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolCall, ToolDef};

    fn tool_call(id: &str, name: &str, arguments: &str) -> ProviderEvent {
        ProviderEvent::ToolCall {
            call: ToolCall {
                id: id.to_owned(),
                name: name.to_owned(),
                arguments: arguments.to_owned(),
            },
        }
    }

    fn feed(state: &mut StreamState, chunks: &[&str]) -> Result<Vec<ProviderEvent>, String> {
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(state.on_data(chunk)?);
        }
        Ok(events)
    }

    #[test]
    fn body_has_system_first_tool_calls_and_results() {
        let request = ChatRequest {
            model: "m".to_owned(),
            system: Some("be brief".to_owned()),
            messages: vec![
                Message::user("add"),
                Message::assistant(
                    "",
                    vec![ToolCall {
                        id: "c1".to_owned(),
                        name: "calc".to_owned(),
                        arguments: r#"{"expression":"1+1"}"#.to_owned(),
                    }],
                ),
                Message::tool_result("c1", "2", false),
                Message::tool_result("c2", "boom", true),
            ],
            tools: vec![ToolDef {
                name: "calc".to_owned(),
                description: "math".to_owned(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 100,
        };
        let body = request_body(&request, "fallback", true);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "add"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\":\"1+1\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "2"},
                    {"role": "tool", "tool_call_id": "c2", "content": "Error: boom"},
                ],
                "max_tokens": 100,
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "calc", "description": "math", "parameters": {"type": "object"}}}],
            })
        );
        let plain = ChatRequest {
            model: String::new(),
            system: None,
            messages: vec![Message::user("hi")],
            tools: Vec::new(),
            max_tokens: 5,
        };
        let body = request_body(&plain, "fallback", false);
        assert_eq!(body["model"], "fallback");
        assert!(body.get("tools").is_none() && body.get("stream_options").is_none());
    }

    #[test]
    fn endpoint_tolerates_slashes() {
        let mut config = OpenAiConfig::new("http://localhost:11434/v1/", "m");
        assert_eq!(
            config.endpoint(),
            "http://localhost:11434/v1/chat/completions"
        );
        config.base_url = "https://x/v1/chat/completions".to_owned();
        assert_eq!(config.endpoint(), "https://x/v1/chat/completions");
    }

    #[test]
    fn fragments_join_by_index_in_index_order() {
        let mut state = StreamState::default();
        let events = feed(
            &mut state,
            &[
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Let me "}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"check."}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"word_count","arguments":""}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"calc","arguments":"{\"expr"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"text\":"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ession\": \"1+"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1\"}"}},{"index":1,"function":{"arguments":"\"a b\"}"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
                r#"{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7}}"#,
                "[DONE]",
            ],
        )
        .unwrap();
        assert_eq!(
            events,
            vec![
                ProviderEvent::TextDelta {
                    text: "Let me ".to_owned()
                },
                ProviderEvent::TextDelta {
                    text: "check.".to_owned()
                },
                tool_call("a", "calc", r#"{"expression": "1+1"}"#),
                tool_call("b", "word_count", r#"{"text":"a b"}"#),
                ProviderEvent::Usage {
                    usage: Usage {
                        input_tokens: 11,
                        output_tokens: 7
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
    fn calls_without_index_or_id_still_assemble() {
        let mut state = StreamState::default();
        let events = feed(
            &mut state,
            &[
                r#"{"choices":[{"delta":{"tool_calls":[{"id":"x","function":{"name":"calc","arguments":"{}"}}]}}]}"#,
                r#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"note_list","arguments":"{}"}}]}}]}"#,
                r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            ],
        )
        .unwrap();
        // The second fragment has no id, so it continues the first call.
        assert_eq!(events, vec![tool_call("x", "calc", "{}{}")]);
        assert_eq!(
            state.at_end().unwrap(),
            vec![ProviderEvent::Finish {
                reason: FinishReason::ToolCalls
            }]
        );
    }

    #[test]
    fn malformed_chunks_are_errors_not_panics() {
        for bad in [
            "{not json",
            r#"{"choices":"nope"}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":-1}]}}]}"#,
            r#"[1,2]"#,
            "",
        ] {
            let err = StreamState::default().on_data(bad).unwrap_err();
            assert!(err.contains("malformed stream chunk"), "{bad}: {err}");
        }
        let err = StreamState::default()
            .on_data(r#"{"error":{"message":"quota exceeded"}}"#)
            .unwrap_err();
        assert!(err.contains("quota exceeded"), "{err}");
        let err = feed(
            &mut StreamState::default(),
            &[
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
                r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
            ],
        )
        .unwrap_err();
        assert!(err.contains("without a function name"), "{err}");
    }

    #[test]
    fn end_without_finish_is_an_error() {
        let mut state = StreamState::default();
        state
            .on_data(r#"{"choices":[{"delta":{"content":"half"}}]}"#)
            .unwrap();
        assert!(
            state
                .at_end()
                .unwrap_err()
                .contains("ended before the model finished")
        );
    }

    #[test]
    fn whole_responses() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"c1","type":"function","function":{"name":"calc","arguments":"{\"expression\":\"2*3\"}"}},
            {"id":"c2","type":"function","function":{"name":"note_list","arguments":{}}}]},
            "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert_eq!(
            parse_completion(body).unwrap(),
            vec![
                tool_call("c1", "calc", r#"{"expression":"2*3"}"#),
                tool_call("c2", "note_list", "{}"),
                ProviderEvent::Usage {
                    usage: Usage {
                        input_tokens: 3,
                        output_tokens: 4
                    }
                },
                ProviderEvent::Finish {
                    reason: FinishReason::ToolCalls
                },
            ]
        );
        assert!(
            parse_completion(b"{\"choices\":[]}")
                .unwrap_err()
                .contains("no choices")
        );
        assert!(
            parse_completion(b"<html>")
                .unwrap_err()
                .contains("malformed response")
        );
    }

    /// Found by fuzzing (docs/fuzzing.md): a call at index usize::MAX
    /// followed by a fragment with a new id and no index overflowed the
    /// "next index" (a panic in debug builds, a wrap to call 0 in release).
    #[test]
    fn a_new_call_after_the_largest_index_is_an_error_not_an_overflow() {
        let mut state = StreamState::default();
        let err = feed(
            &mut state,
            &[
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":18446744073709551615,"id":"a","function":{"name":"f"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"name":"g"}}]}}]}"#,
            ],
        )
        .unwrap_err();
        assert!(
            err.contains("18446744073709551615") && err.contains("malformed"),
            "{err}"
        );
    }
}
