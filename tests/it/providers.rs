//! The OpenAI, Anthropic and scripted providers against a mock LLM server: streaming, tool use, retries, deadlines, broken streams, cancellation.

use std::path::Path;
use std::time::{Duration, Instant};

use agent_host_llm::anthropic::{AnthropicConfig, AnthropicProvider};
use agent_host_llm::openai::{OpenAiConfig, OpenAiProvider};
use agent_host_llm::scripted::{Script, ScriptedProvider};
use agent_host_llm::{
    ChatRequest, EventReceiver, FinishReason, HttpSettings, Message, Provider, ProviderError,
    ProviderEvent, ToolCall, ToolDef, Usage,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::mock_llm::*;

/// Fast retries and a deadline no healthy test gets near.
fn fast() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(20),
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

fn openai(server: &MockLlm, settings: HttpSettings) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiConfig {
        base_url: format!("{}/v1/", server.url()),
        api_key: None,
        model: "gpt-test".to_owned(),
        stream: true,
        http: settings,
    })
    .unwrap()
}

fn anthropic(server: &MockLlm, settings: HttpSettings) -> AnthropicProvider {
    AnthropicProvider::new(AnthropicConfig {
        base_url: server.url(),
        api_key: Some("sk-ant-test".to_owned()),
        model: "claude-test".to_owned(),
        http: settings,
    })
    .unwrap()
}

fn calc_tool() -> ToolDef {
    ToolDef {
        name: "calc".to_owned(),
        description: "Evaluate an arithmetic expression".to_owned(),
        parameters: json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
    }
}

fn request(provider: &dyn Provider, messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: provider.model().to_owned(),
        system: Some("You are terse.".to_owned()),
        messages,
        tools: vec![calc_tool()],
        max_tokens: 256,
    }
}

/// Everything a call produced: its events, and the error that ended it.
struct Outcome {
    events: Vec<ProviderEvent>,
    error: Option<ProviderError>,
}

impl Outcome {
    fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|event| match event {
                ProviderEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn calls(&self) -> Vec<ToolCall> {
        self.events
            .iter()
            .filter_map(|event| match event {
                ProviderEvent::ToolCall { call } => Some(call.clone()),
                _ => None,
            })
            .collect()
    }

    fn usage(&self) -> Option<Usage> {
        self.events.iter().find_map(|event| match event {
            ProviderEvent::Usage { usage } => Some(*usage),
            _ => None,
        })
    }

    /// The finish reason, which must be the last event of a good call.
    fn finished(&self) -> FinishReason {
        assert!(self.error.is_none(), "call failed: {:?}", self.error);
        match self.events.last() {
            Some(ProviderEvent::Finish { reason }) => reason.clone(),
            other => panic!(
                "the last event is not Finish: {other:?} (all: {:?})",
                self.events
            ),
        }
    }

    fn error(&self) -> ProviderError {
        self.error
            .clone()
            .unwrap_or_else(|| panic!("the call succeeded: {:?}", self.events))
    }
}

/// Reads a call to its end (bounded, so a hang fails instead of blocking).
async fn collect(mut receiver: EventReceiver) -> Outcome {
    let mut events = Vec::new();
    let mut error = None;
    let read = async {
        while let Some(item) = receiver.recv().await {
            match item {
                Ok(event) => {
                    assert!(error.is_none(), "event after an error: {event:?}");
                    let finish = matches!(event, ProviderEvent::Finish { .. });
                    events.push(event);
                    if finish {
                        assert!(
                            receiver.recv().await.is_none(),
                            "the stream went on after Finish"
                        );
                        break;
                    }
                }
                Err(err) => {
                    error = Some(err);
                    assert!(
                        receiver.recv().await.is_none(),
                        "the stream went on after an error"
                    );
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the provider call did not end within 30 s");
    Outcome { events, error }
}

async fn run(provider: &dyn Provider, request: ChatRequest) -> Outcome {
    collect(provider.start(request, CancellationToken::new())).await
}

fn parsed(arguments: &str) -> Value {
    serde_json::from_str(arguments)
        .unwrap_or_else(|err| panic!("arguments are not JSON ({err}): {arguments}"))
}

// ---- OpenAI ----

#[tokio::test]
async fn openai_streams_text() {
    let server = MockLlm::start(vec![
        MockResponse::sse(openai_text_stream(&["Hel", "lo, ", "wörld ✓"])).split_every(13),
    ])
    .await;
    let provider = openai(&server, fast());
    assert_eq!((provider.name(), provider.model()), ("openai", "gpt-test"));
    let outcome = run(
        &provider,
        request(&provider, vec![Message::user("Say hello")]),
    )
    .await;
    assert_eq!(outcome.finished(), FinishReason::Stop);
    assert_eq!(outcome.text(), "Hello, wörld ✓");
    assert_eq!(
        outcome.usage(),
        Some(Usage {
            input_tokens: 10,
            output_tokens: 3
        })
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        sent.header("authorization"),
        None,
        "no key, no Authorization header"
    );
    let body = sent.json();
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}])
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "calc",
            "description": "Evaluate an arithmetic expression",
            "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
        }}])
    );
}

#[tokio::test]
async fn openai_multi_turn_tool_use_sends_results_back() {
    let first = vec![
        openai_text_chunk("Let me compute."),
        openai_tool_call_fragment(0, Some("call_abc"), Some("calc"), ""),
        openai_tool_call_fragment(0, None, None, r#"{"expression": "#),
        openai_tool_call_fragment(0, None, None, r#""1+1"}"#),
        openai_finish_chunk("tool_calls"),
        openai_usage_chunk(30, 12),
        openai_done(),
    ];
    let server = MockLlm::start(vec![
        MockResponse::sse(first),
        MockResponse::sse(openai_text_stream(&["1 + 1 = 2."])),
    ])
    .await;
    let provider = OpenAiProvider::new(OpenAiConfig {
        api_key: Some("sk-test".to_owned()),
        http: fast(),
        ..OpenAiConfig::new(format!("{}/v1", server.url()), "gpt-test")
    })
    .unwrap();

    let mut history = vec![Message::user("What is 1+1?")];
    let outcome = run(&provider, request(&provider, history.clone())).await;
    assert_eq!(outcome.finished(), FinishReason::ToolCalls);
    assert_eq!(outcome.text(), "Let me compute.");
    let calls = outcome.calls();
    assert_eq!(
        calls,
        [ToolCall {
            id: "call_abc".to_owned(),
            name: "calc".to_owned(),
            arguments: r#"{"expression": "1+1"}"#.to_owned()
        }]
    );

    history.push(Message::assistant(outcome.text(), calls));
    history.push(Message::tool_result("call_abc", "2", false));
    let outcome = run(&provider, request(&provider, history)).await;
    assert_eq!(outcome.finished(), FinishReason::Stop);
    assert_eq!(outcome.text(), "1 + 1 = 2.");

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for sent in &requests {
        assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    }
    let messages = &requests[1].json()["messages"];
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "Let me compute.", "tool_calls": [
            {"id": "call_abc", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\": \"1+1\"}"}}
        ]})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "2"})
    );
    assert_eq!(messages.as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn openai_assembles_fragmented_and_interleaved_tool_calls() {
    let stream = vec![
        openai_tool_call_fragment(0, Some("call_1"), Some("calc"), ""),
        openai_tool_call_fragment(1, Some("call_2"), Some("word_count"), r#"{"te"#),
        openai_tool_call_fragment(0, None, None, r#"{"expr"#),
        openai_tool_call_fragment(0, None, None, r#"ession": "1+"#),
        openai_tool_call_fragment(1, None, None, r#"xt": "héllo wörld"#),
        openai_tool_call_fragment(0, None, None, r#"1"}"#),
        openai_tool_call_fragment(1, None, None, r#""}"#),
        openai_finish_chunk("tool_calls"),
        openai_usage_chunk(5, 9),
        openai_done(),
    ];
    // Cut the bytes too: SSE lines and UTF-8 characters split across reads.
    let server = MockLlm::start(vec![MockResponse::sse(stream).split_every(7)]).await;
    let provider = openai(&server, fast());
    let outcome = run(&provider, request(&provider, vec![Message::user("go")])).await;
    assert_eq!(outcome.finished(), FinishReason::ToolCalls);
    let calls = outcome.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_1", "calc")
    );
    assert_eq!(parsed(&calls[0].arguments), json!({"expression": "1+1"}));
    assert_eq!(
        (calls[1].id.as_str(), calls[1].name.as_str()),
        ("call_2", "word_count")
    );
    assert_eq!(parsed(&calls[1].arguments), json!({"text": "héllo wörld"}));
    // Calls come before usage and finish.
    assert!(matches!(
        outcome.events[..2],
        [
            ProviderEvent::ToolCall { .. },
            ProviderEvent::ToolCall { .. }
        ]
    ));
    assert_eq!(
        outcome.usage(),
        Some(Usage {
            input_tokens: 5,
            output_tokens: 9
        })
    );
}

#[tokio::test]
async fn openai_non_streaming() {
    let completion = json!({
        "id": "chatcmpl-9", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Adding up.",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "calc", "arguments": "{\"expression\":\"2*21\"}"}}],
        }}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48},
    });
    let server = MockLlm::start(vec![MockResponse::json(200, completion)]).await;
    let provider = OpenAiProvider::new(OpenAiConfig {
        stream: false,
        http: fast(),
        ..OpenAiConfig::new(format!("{}/v1", server.url()), "llama3.1")
    })
    .unwrap();
    let outcome = run(&provider, request(&provider, vec![Message::user("2*21?")])).await;
    assert_eq!(outcome.finished(), FinishReason::ToolCalls);
    assert_eq!(outcome.text(), "Adding up.");
    assert_eq!(
        outcome.calls(),
        [ToolCall {
            id: "call_9".to_owned(),
            name: "calc".to_owned(),
            arguments: r#"{"expression":"2*21"}"#.to_owned()
        }]
    );
    assert_eq!(
        outcome.usage(),
        Some(Usage {
            input_tokens: 40,
            output_tokens: 8
        })
    );
    let body = server.requests()[0].json();
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
}

#[tokio::test]
async fn openai_retries_429_honouring_retry_after() {
    let server = MockLlm::start(vec![
        MockResponse::json(
            429,
            json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
        )
        .header("Retry-After", "1"),
        MockResponse::sse(openai_text_stream(&["finally"])),
    ])
    .await;
    let settings = HttpSettings {
        max_backoff: Duration::from_secs(5),
        ..fast()
    };
    let provider = openai(&server, settings);
    let started = Instant::now();
    let outcome = run(&provider, request(&provider, vec![Message::user("hi")])).await;
    let took = started.elapsed();
    assert_eq!(outcome.finished(), FinishReason::Stop);
    assert_eq!(outcome.text(), "finally");
    assert_eq!(server.requests().len(), 2);
    assert!(
        took >= Duration::from_millis(900),
        "the retry did not wait for Retry-After: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test]
async fn openai_repeated_500_gives_http_error_after_retries() {
    let failure = || {
        MockResponse::json(
            500,
            json!({"error": {"message": "upstream exploded", "type": "server_error"}}),
        )
    };
    let server = MockLlm::start(vec![
        failure(),
        failure(),
        failure(),
        MockResponse::sse(openai_text_stream(&["never"])),
    ])
    .await;
    let provider = openai(&server, fast());
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert_eq!(
        err,
        ProviderError::Http {
            provider: "openai".to_owned(),
            status: 500,
            message: "upstream exploded".to_owned(),
            retried: 2
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("500") && text.contains("upstream exploded") && text.contains("2 retries"),
        "{text}"
    );
    assert_eq!(
        server.requests().len(),
        3,
        "one try and max_retries = 2 retries"
    );
}

#[tokio::test]
async fn openai_400_is_not_retried() {
    let server = MockLlm::start(vec![
        MockResponse::json(400, json!({"error": {"message": "model `nope` does not exist", "type": "invalid_request_error"}})),
        MockResponse::sse(openai_text_stream(&["never"])),
    ])
    .await;
    let provider = openai(&server, fast());
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert!(
        matches!(&err, ProviderError::Http { status: 400, retried: 0, message, .. } if message == "model `nope` does not exist"),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn openai_stalled_stream_hits_the_deadline() {
    let first = openai_text_chunk("Thinking");
    let stalled =
        MockResponse::sse(openai_text_stream(&["Thinking", " forever"])).stall_after(first.len());
    let server = MockLlm::start(vec![stalled]).await;
    let settings = HttpSettings {
        deadline: Duration::from_millis(500),
        ..fast()
    };
    let provider = openai(&server, settings);
    let started = Instant::now();
    let outcome = run(&provider, request(&provider, vec![Message::user("hi")])).await;
    assert_eq!(
        outcome.text(),
        "Thinking",
        "what came before the stall is delivered"
    );
    assert_eq!(
        outcome.error(),
        ProviderError::Timeout {
            provider: "openai".to_owned(),
            after_ms: 500
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn openai_malformed_chunk_is_a_protocol_error() {
    let server = MockLlm::start(vec![MockResponse::sse(vec![
        openai_text_chunk("fine so far"),
        "data: {\"choices\": [{\"delta\": {\"content\": \"cut\n\n".to_owned(),
        openai_done(),
    ])])
    .await;
    let provider = openai(&server, fast());
    let outcome = run(&provider, request(&provider, vec![Message::user("hi")])).await;
    assert_eq!(outcome.text(), "fine so far");
    let err = outcome.error();
    assert!(
        matches!(&err, ProviderError::Protocol { provider, message } if provider == "openai" && message.contains("malformed stream chunk")),
        "{err:?}"
    );
}

#[tokio::test]
async fn openai_dropped_connection_is_a_protocol_error() {
    // Dropped inside a chunked body.
    let first = openai_text_chunk("partial");
    let dropped =
        MockResponse::sse(openai_text_stream(&["partial", " answer"])).drop_after(first.len() + 10);
    // A body that ends cleanly, but before the model finished.
    let truncated = MockResponse::raw(200, "text/event-stream", first.clone().into_bytes());
    let server = MockLlm::start(vec![dropped, truncated]).await;
    let provider = openai(&server, fast());
    for case in ["mid-chunk drop", "clean end without [DONE]"] {
        let outcome = run(&provider, request(&provider, vec![Message::user("hi")])).await;
        assert_eq!(outcome.text(), "partial", "{case}");
        let err = outcome.error();
        assert!(
            matches!(err, ProviderError::Protocol { .. }),
            "{case}: {err:?}"
        );
        if case.starts_with("clean") {
            assert!(
                err.to_string().contains("ended before the model finished"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn openai_cancel_mid_stream_ends_promptly() {
    let first = openai_text_chunk("Once upon");
    let stalled =
        MockResponse::sse(openai_text_stream(&["Once upon", " a time"])).stall_after(first.len());
    let server = MockLlm::start(vec![stalled]).await;
    let provider = openai(
        &server,
        HttpSettings {
            deadline: Duration::from_secs(120),
            ..fast()
        },
    );
    let cancel = CancellationToken::new();
    let mut receiver = provider.start(
        request(&provider, vec![Message::user("story")]),
        cancel.clone(),
    );
    let first_event = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
        .await
        .unwrap();
    assert_eq!(
        first_event,
        Some(Ok(ProviderEvent::TextDelta {
            text: "Once upon".to_owned()
        }))
    );
    let started = Instant::now();
    cancel.cancel();
    let outcome = collect(receiver).await;
    assert_eq!(outcome.error(), ProviderError::Cancelled);
    // The stream would stall until its 120 s deadline; ending well before
    // it shows the cancel aborted the request.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "cancel took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn openai_connection_refused_names_the_url() {
    let port = unused_port();
    let provider = OpenAiProvider::new(OpenAiConfig {
        http: HttpSettings {
            max_retries: 1,
            ..fast()
        },
        ..OpenAiConfig::new(format!("http://127.0.0.1:{port}/v1"), "m")
    })
    .unwrap();
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    assert!(
        matches!(&err, ProviderError::Connect { provider, url: named, .. } if provider == "openai" && *named == url),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn bad_configuration_is_refused_up_front() {
    let err = OpenAiProvider::new(OpenAiConfig::new("localhost:11434/v1", "m")).unwrap_err();
    assert!(
        matches!(&err, ProviderError::Config(message) if message.contains("localhost:11434/v1")),
        "{err:?}"
    );
    let err =
        AnthropicProvider::new(AnthropicConfig::new("https://api.anthropic.com", " ")).unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err:?}");
}

// ---- Anthropic ----

#[tokio::test]
async fn anthropic_streams_text() {
    let server = MockLlm::start(vec![
        MockResponse::sse(anthropic_text_stream(&["Hi", " there", " ✓"])).split_every(17),
    ])
    .await;
    let provider = anthropic(&server, fast());
    assert_eq!(
        (provider.name(), provider.model()),
        ("anthropic", "claude-test")
    );
    let outcome = run(&provider, request(&provider, vec![Message::user("Say hi")])).await;
    assert_eq!(outcome.finished(), FinishReason::Stop);
    assert_eq!(outcome.text(), "Hi there ✓");
    assert_eq!(
        outcome.usage(),
        Some(Usage {
            input_tokens: 12,
            output_tokens: 3
        })
    );

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    let body = sent.json();
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["system"], "You are terse.");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}])
    );
    assert_eq!(body["tools"][0]["name"], "calc");
    assert_eq!(
        body["tools"][0]["input_schema"]["required"],
        json!(["expression"])
    );
}

#[tokio::test]
async fn anthropic_multi_turn_tool_use_merges_results_into_one_user_message() {
    let first = vec![
        anthropic_message_start(50),
        anthropic_text_start(0),
        anthropic_text_delta(0, "Let me check both."),
        anthropic_block_stop(0),
        anthropic_tool_use_start(1, "toolu_1", "calc"),
        anthropic_input_delta(1, ""),
        anthropic_input_delta(1, r#"{"expr"#),
        anthropic_input_delta(1, r#"ession": "1+"#),
        anthropic_tool_use_start(2, "toolu_2", "note_list"),
        anthropic_input_delta(1, r#"1"}"#),
        anthropic_block_stop(1),
        anthropic_block_stop(2),
        anthropic_message_delta("tool_use", 33),
        anthropic_message_stop(),
    ];
    let server = MockLlm::start(vec![
        MockResponse::sse(first).split_every(11),
        MockResponse::sse(anthropic_text_stream(&["1+1 is 2 and there are no notes."])),
    ])
    .await;
    let provider = anthropic(&server, fast());
    let mut history = vec![Message::user("Add 1+1 and list my notes")];
    let outcome = run(&provider, request(&provider, history.clone())).await;
    assert_eq!(outcome.finished(), FinishReason::ToolCalls);
    assert_eq!(outcome.text(), "Let me check both.");
    let calls = outcome.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("toolu_1", "calc")
    );
    assert_eq!(parsed(&calls[0].arguments), json!({"expression": "1+1"}));
    assert_eq!(
        (
            calls[1].id.as_str(),
            calls[1].name.as_str(),
            calls[1].arguments.as_str()
        ),
        ("toolu_2", "note_list", "{}")
    );
    assert_eq!(
        outcome.usage(),
        Some(Usage {
            input_tokens: 50,
            output_tokens: 33
        })
    );

    history.push(Message::assistant(outcome.text(), calls));
    history.push(Message::tool_result("toolu_1", "2", false));
    history.push(Message::tool_result("toolu_2", "no notes store", true));
    let outcome = run(&provider, request(&provider, history)).await;
    assert_eq!(outcome.finished(), FinishReason::Stop);

    let body = server.requests()[1].json();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Add 1+1 and list my notes"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check both."},
                {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"expression": "1+1"}},
                {"type": "tool_use", "id": "toolu_2", "name": "note_list", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "2", "is_error": false},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no notes store", "is_error": true},
            ]},
        ])
    );
}

#[tokio::test]
async fn anthropic_error_event_and_error_body() {
    let overloaded = anthropic_event(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    let server = MockLlm::start(vec![
        MockResponse::sse(vec![anthropic_message_start(3), anthropic_ping(), overloaded]),
        MockResponse::json(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: must be positive"}}),
        ),
    ])
    .await;
    let provider = anthropic(&server, fast());
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert!(
        matches!(&err, ProviderError::Http { status: 529, message, .. } if message == "Overloaded"),
        "{err:?}"
    );
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert_eq!(
        err,
        ProviderError::Http {
            provider: "anthropic".to_owned(),
            status: 400,
            message: "max_tokens: must be positive".to_owned(),
            retried: 0
        }
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn anthropic_broken_streams() {
    let start = anthropic_message_start(3);
    let server = MockLlm::start(vec![
        MockResponse::sse(anthropic_text_stream(&["never finished"])).drop_after(start.len() + 5),
        MockResponse::sse(vec![
            start.clone(),
            "event: content_block_delta\ndata: {\"index\": 0, \"delta\": \n\n".to_owned(),
        ]),
        MockResponse::sse(anthropic_text_stream(&["stalled"])).stall_after(start.len()),
    ])
    .await;
    let provider = anthropic(
        &server,
        HttpSettings {
            deadline: Duration::from_millis(500),
            ..fast()
        },
    );
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert!(
        matches!(err, ProviderError::Protocol { .. }),
        "drop: {err:?}"
    );
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert!(
        matches!(&err, ProviderError::Protocol { message, .. } if message.contains("malformed")),
        "bad event: {err:?}"
    );
    let err = run(&provider, request(&provider, vec![Message::user("hi")]))
        .await
        .error();
    assert!(
        matches!(err, ProviderError::Timeout { after_ms: 500, .. }),
        "stall: {err:?}"
    );
}

// ---- Scripted ----

fn script(value: Value) -> Script {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn scripted_replays_a_script_following_results() {
    let provider = ScriptedProvider::new(script(json!({"turns": [
        {"say": "Computing.", "tool_calls": [{"name": "calc", "arguments": {"expression": "1/0"}}, {"name": "calc", "arguments": {"expression": "2+2"}}]},
        {"say": "A tool failed.", "when_result_contains": "division by zero"},
        {"say": "Both worked: 4.", "when_result_contains": "4"},
    ]})));
    assert_eq!(
        (provider.name(), provider.model()),
        ("scripted", "scripted")
    );
    let mut history = vec![Message::user("go")];
    let outcome = run(&provider, request(&provider, history.clone())).await;
    assert_eq!(outcome.finished(), FinishReason::ToolCalls);
    assert_eq!(outcome.text(), "Computing.");
    let calls = outcome.calls();
    let ids: Vec<&str> = calls.iter().map(|call| call.id.as_str()).collect();
    assert_eq!(ids, ["call_1", "call_2"]);
    assert_eq!(parsed(&calls[1].arguments), json!({"expression": "2+2"}));
    assert!(outcome.usage().is_some_and(|usage| usage.output_tokens > 0));

    // Results without the error: the conditional "failed" turn is skipped.
    let mut ok = history.clone();
    ok.push(Message::assistant(outcome.text(), calls.clone()));
    ok.push(Message::tool_result("call_1", "0.5", false));
    ok.push(Message::tool_result("call_2", "4", false));
    let outcome_ok = run(&provider, request(&provider, ok.clone())).await;
    assert_eq!(outcome_ok.finished(), FinishReason::Stop);
    assert_eq!(outcome_ok.text(), "Both worked: 4.");

    // With it, the failure turn answers.
    history.push(Message::assistant(outcome.text(), calls));
    history.push(Message::tool_result(
        "call_1",
        "error: division by zero",
        true,
    ));
    history.push(Message::tool_result("call_2", "4", false));
    let outcome = run(&provider, request(&provider, history)).await;
    assert_eq!(outcome.text(), "A tool failed.");

    // Past the end, the script says so.
    ok.push(Message::assistant(outcome_ok.text(), Vec::new()));
    let outcome = run(&provider, request(&provider, ok)).await;
    assert_eq!(outcome.finished(), FinishReason::Stop);
    assert_eq!(outcome.text(), "(the script has no more turns)");
}

#[tokio::test]
async fn scripted_cancel_and_chunk_delay() {
    let provider = ScriptedProvider::new(script(
        json!({"turns": [{"say": "one two three four five six seven eight"}]}),
    ))
    .with_chunk_delay(Duration::from_millis(200));
    let cancel = CancellationToken::new();
    let mut receiver = provider.start(
        request(&provider, vec![Message::user("go")]),
        cancel.clone(),
    );
    let first = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
        .await
        .unwrap();
    assert_eq!(
        first,
        Some(Ok(ProviderEvent::TextDelta {
            text: "one ".to_owned()
        }))
    );
    cancel.cancel();
    assert_eq!(collect(receiver).await.error(), ProviderError::Cancelled);
}

#[tokio::test]
async fn demo_script_reads_and_plays_through() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-script.json");
    let provider = ScriptedProvider::from_file(&path).unwrap();
    let known = [
        "calc",
        "word_count",
        "slugify",
        "regex_search",
        "note_add",
        "note_list",
    ];
    for turn in &provider.script().turns {
        for call in &turn.tool_calls {
            assert!(
                known.contains(&call.name.as_str()),
                "unknown tool {}",
                call.name
            );
        }
    }

    let mut history = vec![Message::user(
        "What's the order total, and how long is our tagline? Keep a note.",
    )];
    let outcome = run(&provider, request(&provider, history.clone())).await;
    let calls = outcome.calls();
    let names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
    assert_eq!(
        names,
        ["calc", "word_count"],
        "turn 1 makes two parallel calls"
    );
    history.push(Message::assistant(outcome.text(), calls));
    // What the real tools answer (see examples/demo.sh).
    history.push(Message::tool_result("call_1", "5140", false));
    history.push(Message::tool_result(
        "call_2",
        "10 words, 1 lines, 70 characters, 70 bytes",
        false,
    ));

    let outcome = run(&provider, request(&provider, history.clone())).await;
    let calls = outcome.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_3", "note_add")
    );
    assert!(
        parsed(&calls[0].arguments)["body"]
            .as_str()
            .unwrap()
            .contains("5140")
    );
    history.push(Message::assistant(outcome.text(), calls));
    history.push(Message::tool_result(
        "call_3",
        "Saved note \"Order total and tagline\" (160 bytes).",
        false,
    ));

    let outcome = run(&provider, request(&provider, history)).await;
    assert_eq!(outcome.finished(), FinishReason::Stop);
    assert!(
        outcome.text().contains("5,140") && outcome.text().contains("10 words"),
        "{}",
        outcome.text()
    );

    // A failed calculation takes the script's fallback turn.
    let failed = vec![
        Message::user("again"),
        Message::assistant("", vec![]),
        Message::tool_result("call_1", "error: something broke", true),
    ];
    let outcome = run(&provider, request(&provider, failed)).await;
    assert!(
        outcome.text().starts_with("Something went wrong"),
        "{}",
        outcome.text()
    );
}

#[tokio::test]
async fn scripted_bad_file_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken-script.json");
    std::fs::write(&path, "{\"turns\": [ {\"say\": \"hi\",, } ] }").unwrap();
    let err = ScriptedProvider::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("broken-script.json") && err.contains("line 1"),
        "{err}"
    );
}
