//! Unit tests of the Anthropic wire format: request bodies, endpoints, the named stream events and their errors.

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
