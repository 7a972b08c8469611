//! An MCP server's answers in the host's shapes: its tools as [`ToolSpec`]s (hints from the annotations, text bounded, schemas compiled under the host's limits) and a `CallToolResult` as a [`ToolOutput`] or the tool's error.

use agent_host_runtime::config::{DescribeLimits, SchemaConfig};
use agent_host_runtime::schema::ArgsValidator;
use agent_host_runtime::{ContentPart, ToolHints, ToolOutput, ToolSpec};
use base64::Engine as _;
use serde_json::Value;

/// One tool of a server, as the agent sees it.
#[derive(Debug, Clone)]
pub struct RemoteTool {
    /// The server's name for it (what `tools/call` is sent).
    pub original: String,
    /// What the model sees: `spec.name` is the exposed name.
    pub spec: ToolSpec,
    /// The compiled input schema.
    pub validator: ArgsValidator,
}

/// A server's tool (its `tools/list` JSON) under `exposed`, or why the host
/// will not use it. `parallel` is the server entry's `parallel` setting.
pub fn remote_tool(
    tool: &Value,
    exposed: String,
    parallel: bool,
    describe: &DescribeLimits,
    schemas: &SchemaConfig,
) -> Result<RemoteTool, String> {
    let original = tool
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a tool without a name")?
        .to_owned();
    let annotations = tool.get("annotations");
    let hint = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
    };
    let read_only = hint("readOnlyHint").unwrap_or(false);
    // MCP's defaults are the careful ones: a tool that says nothing may
    // destroy data and reach the outside world.
    let hints = ToolHints {
        read_only,
        destructive: !read_only && hint("destructiveHint").unwrap_or(true),
        idempotent: hint("idempotentHint").unwrap_or(false),
        open_world: hint("openWorldHint").unwrap_or(true),
        parallel_safe: parallel && read_only,
    };
    let title = tool
        .get("title")
        .and_then(Value::as_str)
        .or_else(|| {
            annotations
                .and_then(|a| a.get("title"))
                .and_then(Value::as_str)
        })
        .map(|title| bounded(title, describe.max_title_bytes));
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .map(|text| bounded(text, describe.max_description_bytes))
        .filter(|text| !text.trim().is_empty())
        .unwrap_or_else(|| format!("{original} (the MCP server gave no description)"));
    let input_schema = match tool.get("inputSchema") {
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => return Err("its inputSchema is not a JSON object".to_owned()),
        None => serde_json::json!({ "type": "object" }),
    };
    let output_schema = tool
        .get("outputSchema")
        .filter(|schema| schema.is_object())
        .cloned();
    let spec = ToolSpec {
        name: exposed,
        title,
        description,
        input_schema,
        output_schema,
        hints,
    };
    // The output schema is the server's business: the host checks what
    // it sends to the server, not what the server promises back.
    let validator = ArgsValidator::compile_input(&spec.input_schema, schemas)
        .map_err(|err| format!("its input schema is refused: {err}"))?;
    Ok(RemoteTool {
        original,
        spec,
        validator,
    })
}

/// `text` cut to at most `limit` bytes on a character boundary, marked
/// when cut.
fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit.saturating_sub(3);
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// What a `tools/call` result comes to: the output, or the tool's error
/// text when the server flagged it `isError`. `None`: not a CallToolResult.
pub fn call_result(result: &Value) -> Option<Result<ToolOutput, String>> {
    let object = result.as_object()?;
    let content = match object.get("content") {
        Some(Value::Array(parts)) => parts.as_slice(),
        None => &[],
        Some(_) => return None,
    };
    let is_error = match object.get("isError") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return None,
    };
    let mut parts = Vec::with_capacity(content.len());
    for part in content {
        parts.push(content_part(part)?);
    }
    let structured = object
        .get("structuredContent")
        .filter(|value| !value.is_null())
        .cloned();
    if parts.is_empty()
        && let Some(value) = &structured
    {
        parts.push(ContentPart::Json {
            json: value.clone(),
        });
    }
    let output = ToolOutput {
        content: parts,
        structured,
    };
    Some(if is_error {
        let text = output.to_text();
        Err(if text.trim().is_empty() {
            "the tool reported an error without a message".to_owned()
        } else {
            text
        })
    } else {
        Ok(output)
    })
}

fn content_part(part: &Value) -> Option<ContentPart> {
    let text_of = |key: &str| part.get(key).and_then(Value::as_str);
    let binary = |data: &str, mime_type: &str| {
        // Undecodable base64 is shown as what it claims to be, empty,
        // rather than failing the whole result.
        let data = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_default();
        ContentPart::Binary {
            mime_type: mime_type.to_owned(),
            size: data.len(),
            data,
        }
    };
    Some(match part.get("type").and_then(Value::as_str)? {
        "text" => ContentPart::Text {
            text: text_of("text")?.to_owned(),
        },
        "image" | "audio" => binary(
            text_of("data")?,
            text_of("mimeType").unwrap_or("application/octet-stream"),
        ),
        "resource" => {
            let resource = part.get("resource")?;
            let mime_type = resource
                .get("mimeType")
                .and_then(Value::as_str)
                .unwrap_or("application/octet-stream");
            if let Some(text) = resource.get("text").and_then(Value::as_str) {
                ContentPart::Text {
                    text: text.to_owned(),
                }
            } else {
                binary(resource.get("blob")?.as_str()?, mime_type)
            }
        }
        "resource_link" => ContentPart::Text {
            text: format!("[resource: {}]", text_of("uri").unwrap_or("(no uri)")),
        },
        _ => return None,
    })
}

/// Bytes of output a result carries, as the output cap counts them.
pub fn output_bytes(output: &ToolOutput) -> usize {
    let parts: usize = output
        .content
        .iter()
        .map(|part| match part {
            ContentPart::Text { text } => text.len(),
            ContentPart::Json { json } => json.to_string().len(),
            ContentPart::Binary { size, .. } => *size,
        })
        .sum();
    parts
        + output
            .structured
            .as_ref()
            .map_or(0, |value| value.to_string().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> (DescribeLimits, SchemaConfig) {
        (DescribeLimits::default(), SchemaConfig::default())
    }

    #[test]
    fn annotations_become_hints_with_mcp_defaults() {
        let (describe, schemas) = limits();
        let silent = remote_tool(
            &json!({"name": "t"}),
            "s__t".into(),
            true,
            &describe,
            &schemas,
        )
        .unwrap();
        assert!(silent.spec.hints.destructive && silent.spec.hints.open_world);
        assert!(!silent.spec.hints.parallel_safe);
        let reader = json!({"name": "r", "description": "reads",
            "annotations": {"readOnlyHint": true, "openWorldHint": false}});
        let tool = remote_tool(&reader, "s__r".into(), true, &describe, &schemas).unwrap();
        assert!(tool.spec.hints.read_only && tool.spec.hints.parallel_safe);
        assert!(!tool.spec.hints.destructive && !tool.spec.hints.open_world);
        let serial = remote_tool(&reader, "s__r".into(), false, &describe, &schemas).unwrap();
        assert!(!serial.spec.hints.parallel_safe);
        assert_eq!(tool.original, "r");
    }

    #[test]
    fn hostile_declarations_are_bounded_or_refused() {
        let (describe, schemas) = limits();
        let long =
            json!({"name": "t", "description": "é".repeat(20_000), "title": "x".repeat(1000)});
        let tool = remote_tool(&long, "s__t".into(), true, &describe, &schemas).unwrap();
        assert!(tool.spec.description.len() <= describe.max_description_bytes);
        assert!(tool.spec.title.unwrap().len() <= describe.max_title_bytes);
        let bad_schema = json!({"name": "t", "inputSchema": "not a schema"});
        assert!(remote_tool(&bad_schema, "s__t".into(), true, &describe, &schemas).is_err());
        let deep = (0..120).fold(
            json!({"type": "object"}),
            |inner, _| json!({"type": "object", "properties": {"a": inner}}),
        );
        let deep = json!({"name": "t", "inputSchema": deep});
        assert!(remote_tool(&deep, "s__t".into(), true, &describe, &schemas).is_err());
        assert!(
            remote_tool(
                &json!({"description": "nameless"}),
                "x".into(),
                true,
                &describe,
                &schemas
            )
            .is_err()
        );
    }

    #[test]
    fn results_map_to_output_or_the_tools_error() {
        let result = json!({"content": [
            {"type": "text", "text": "hi"},
            {"type": "image", "data": "AQID", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "x:/a", "text": "inline"}},
            {"type": "resource_link", "uri": "file:///tmp/x", "name": "x"}
        ], "structuredContent": {"n": 1}});
        let output = call_result(&result).unwrap().unwrap();
        assert_eq!(output.content.len(), 4);
        assert!(matches!(
            &output.content[1],
            ContentPart::Binary { size: 3, .. }
        ));
        assert_eq!(output.structured, Some(json!({"n": 1})));
        assert!(output.to_text().contains("[resource: file:///tmp/x]"));
        let failed =
            json!({"content": [{"type": "text", "text": "no such repo"}], "isError": true});
        assert_eq!(call_result(&failed).unwrap().unwrap_err(), "no such repo");
        let only_structured = json!({"structuredContent": {"sum": 3}});
        let output = call_result(&only_structured).unwrap().unwrap();
        assert!(output.to_text().contains("\"sum\": 3"));
        assert!(call_result(&json!({"content": "not a list", "isError": "maybe"})).is_none());
        assert!(call_result(&json!([1, 2])).is_none());
        assert!(call_result(&json!({"content": [{"type": "video"}]})).is_none());
    }
}
