//! The readable message of an HTTP error answer, from the body shapes OpenAI, Anthropic and Ollama-style servers send.

use reqwest::StatusCode;

/// How much of a non-JSON error body ends up in an error message.
const MAX_ERROR_BODY_CHARS: usize = 300;

/// The readable message of an error answer: the `error.message` of OpenAI
/// and Anthropic bodies, the `error` string of Ollama-style bodies, else
/// the start of the raw body.
pub(crate) fn error_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let found = value
            .pointer("/error/message")
            .and_then(serde_json::Value::as_str)
            .or_else(|| value.get("error").and_then(serde_json::Value::as_str))
            .or_else(|| value.get("message").and_then(serde_json::Value::as_str));
        if let Some(message) = found.map(str::trim)
            && !message.is_empty()
        {
            return message.to_owned();
        }
    }
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no error message")
            .to_owned();
    }
    truncate_chars(text, MAX_ERROR_BODY_CHARS)
}

/// At most `max` characters of `text`, marked when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_from_known_bodies() {
        let status = StatusCode::BAD_REQUEST;
        assert_eq!(
            error_message(
                status,
                br#"{"error":{"message":"Invalid model","type":"invalid_request_error"}}"#
            ),
            "Invalid model"
        );
        assert_eq!(
            error_message(
                status,
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(
            error_message(status, br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message(status, b"  plain text  "), "plain text");
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
        let long = "é".repeat(400);
        let message = error_message(status, long.as_bytes());
        assert_eq!(message.chars().count(), MAX_ERROR_BODY_CHARS + 3);
        assert!(message.ends_with("..."));
        assert_eq!(error_message(status, &[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }
}
