//! Unit tests of the OpenAI wire format: request bodies, endpoints, stream and whole-answer decoding.

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
