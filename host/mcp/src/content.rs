//! Tool results in MCP's shapes: content parts (text, JSON as text, binary by MIME type as image, audio or an embedded resource), structured output, and every failure as a result flagged `isError` with the message the model would see.

use agent_host_runtime::{CallError, ContentPart, ToolOutput};
use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// A successful result. `call_id` names the embedded resources of this
/// call, so a client can tell the parts of different calls apart.
pub fn success(output: ToolOutput, call_id: &str) -> CallToolResult {
    let content = output
        .content
        .into_iter()
        .enumerate()
        .map(|(index, part)| content_block(part, call_id, index))
        .collect();
    let mut result = CallToolResult::success(content);
    result.structured_content = output.structured;
    result
}

/// A successful result of text only (one an extension rewrote).
pub fn text_success(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// A result flagged as an error, carrying `message` for the model.
pub fn error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// A failed call as a result: the tool's own error, arguments that broke
/// the schema (naming the field and the rule), a denied capability, a
/// trap, a timeout or the memory cap are all the tool's outcome, for the
/// model to read and react to. Only a tool that does not exist is the
/// caller's protocol error, and the server answers that before calling.
pub fn failure(err: &CallError) -> CallToolResult {
    error(err.to_string())
}

fn content_block(part: ContentPart, call_id: &str, index: usize) -> ContentBlock {
    match part {
        ContentPart::Text { text } => ContentBlock::text(text),
        // Compact JSON: it is for programs as much as for the model, and
        // the structured output (when the tool gives one) is beside it.
        ContentPart::Json { json } => ContentBlock::text(json.to_string()),
        ContentPart::Binary {
            mime_type, data, ..
        } => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
            let kind = mime_type.split('/').next().unwrap_or_default();
            match kind.to_ascii_lowercase().as_str() {
                "image" => ContentBlock::image(encoded, mime_type),
                "audio" => ContentBlock::audio(encoded, mime_type),
                _ => ContentBlock::resource(
                    ResourceContents::blob(
                        encoded,
                        format!("agent-host://results/{call_id}/{index}"),
                    )
                    .with_mime_type(mime_type),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binary(mime_type: &str) -> ContentPart {
        ContentPart::Binary {
            mime_type: mime_type.to_owned(),
            size: 3,
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn each_part_takes_the_mcp_shape_of_its_kind() {
        let output = ToolOutput {
            content: vec![
                ContentPart::Text {
                    text: "hi".to_owned(),
                },
                ContentPart::Json {
                    json: json!({ "a": 1 }),
                },
                binary("image/png"),
                binary("audio/wav"),
                binary("application/pdf"),
            ],
            structured: Some(json!({ "count": 3 })),
        };
        let result = success(output, "call-1");
        assert_eq!(result.is_error, Some(false));
        assert_eq!(result.structured_content, Some(json!({ "count": 3 })));
        let value = serde_json::to_value(&result.content).unwrap();
        assert_eq!(value[0]["type"], "text");
        assert_eq!(value[1]["text"], "{\"a\":1}");
        assert_eq!(value[2]["type"], "image");
        assert_eq!(value[2]["data"], "AQID");
        assert_eq!(value[3]["type"], "audio");
        assert_eq!(value[4]["type"], "resource");
        assert_eq!(value[4]["resource"]["mimeType"], "application/pdf");
        assert_eq!(value[4]["resource"]["uri"], "agent-host://results/call-1/4");
        assert!(matches!(&result.content[0], ContentBlock::Text(_)));
    }
}
