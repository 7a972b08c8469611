//! plugin-http: the `http_get` and `http_post` tools (argument handling and result shaping).

mod client;
mod url;

use agent_plugin_sdk::prelude::*;

use client::{Request, Response};

/// Response bodies are cut here; the output says so.
pub const MAX_BODY_BYTES: usize = 64 << 10;
/// The response headers worth showing the model; the rest are noise.
const SHOWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "location",
    "last-modified",
    "etag",
    "retry-after",
];

struct Http;

impl Plugin for Http {
    fn tools() -> Vec<ToolSpec> {
        let url = json!({ "type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://", "description": "http:// or https:// URL" });
        let headers = json!({
            "type": "object",
            "additionalProperties": { "type": "string" },
            "description": "Extra request headers, name to value"
        });
        let output = json!({
            "type": "object",
            "properties": {
                "status": { "type": "integer" },
                "headers": { "type": "object", "additionalProperties": { "type": "string" } },
                "body_bytes": { "type": "integer" },
                "truncated": { "type": "boolean" }
            },
            "required": ["status", "headers", "body_bytes", "truncated"]
        });
        vec![
            ToolSpec::new(
                "http_get",
                "Fetch a URL with GET. Returns the status, a few response headers and the body as \
                 text (cut at 64 KiB, and the result says so). Only hosts the host grants are reachable.",
            )
            .title("HTTP GET")
            .schema(json!({
                "type": "object",
                "properties": { "url": url, "headers": headers },
                "required": ["url"],
                "additionalProperties": false
            }))
            .output_schema(output.clone())
            .read_only()
            .open_world()
            .parallel_safe(),
            ToolSpec::new(
                "http_post",
                "POST a body to a URL. `content_type` defaults to application/json when the body is \
                 valid JSON and text/plain otherwise. Returns the status, a few headers and the body \
                 (cut at 64 KiB). Only hosts the host grants are reachable.",
            )
            .title("HTTP POST")
            .schema(json!({
                "type": "object",
                "properties": {
                    "url": url,
                    "body": { "type": "string" },
                    "content_type": { "type": "string", "minLength": 1 },
                    "headers": headers
                },
                "required": ["url", "body"],
                "additionalProperties": false
            }))
            .output_schema(output)
            .open_world()
            .parallel_safe(),
        ]
    }

    fn call(name: &str, args: Value, ctx: &CallContext) -> Result<Output, ToolError> {
        let (method, body) = match name {
            "http_get" => (client::Method::Get, None),
            "http_post" => {
                let body = args.str_field("body")?;
                let content_type = match args.opt_str_field("content_type")? {
                    Some(content_type) => content_type,
                    None if serde_json::from_str::<Value>(body).is_ok() => "application/json",
                    None => "text/plain; charset=utf-8",
                };
                (client::Method::Post, Some((content_type, body.as_bytes())))
            }
            _ => return Err(ToolError::unknown_tool(name)),
        };
        let url = url::Url::parse(args.str_field("url")?)?;
        let mut headers = Vec::new();
        if let Some(extra) = args.opt_object_field("headers")? {
            for (name, value) in extra {
                let value = value.as_str().ok_or_else(|| {
                    ToolError::invalid_arguments(format!("header `{name}` must be a string"))
                })?;
                headers.push((name.to_ascii_lowercase(), value.to_owned()));
            }
        }
        let request = Request {
            method,
            url: &url,
            headers,
            body,
            timeout_ms: ctx.timeout_ms,
        };
        let response = client::send(&request, MAX_BODY_BYTES)?;
        Ok(shape(&url, response))
    }
}

export_plugin!(Http);

fn shape(url: &url::Url, response: Response) -> Output {
    let shown: Vec<(&str, String)> = SHOWN_HEADERS
        .iter()
        .filter_map(|name| response.header(name).map(|value| (*name, value)))
        .collect();
    let mut head = format!("HTTP {} from {}\n", response.status, url.authority);
    for (name, value) in &shown {
        head.push_str(&format!("{name}: {value}\n"));
    }
    let content_type = response.header("content-type");
    let body_bytes = response.body.len();
    let mut output = Output::text(head);
    match String::from_utf8(response.body) {
        Ok(text) => output = output.with_text(text),
        // A cut inside a multi-byte character is still text; anything else
        // that is not UTF-8 goes out as binary with its content type.
        Err(err) if response.truncated && err.utf8_error().error_len().is_none() => {
            let bytes = err.into_bytes();
            output = output.with_text(String::from_utf8_lossy(&bytes).into_owned());
        }
        Err(err) => {
            let mime = content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            output = output.with_binary(mime, err.into_bytes());
        }
    }
    if response.truncated {
        output = output.with_text(format!(
            "[truncated: the body is longer than {MAX_BODY_BYTES} bytes; only the first {MAX_BODY_BYTES} are shown]"
        ));
    }
    let headers: Map<String, Value> = shown
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect();
    output.with_structured(json!({
        "status": response.status,
        "headers": headers,
        "body_bytes": body_bytes,
        "truncated": response.truncated,
    }))
}
