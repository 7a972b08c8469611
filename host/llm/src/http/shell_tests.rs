//! Unit tests of the HTTP shell against a one-file HTTP server: each failure a call can meet, and the kind its error reports.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::openai::{OpenAiConfig, OpenAiProvider};
use crate::{Message, Provider, ProviderErrorKind};

/// Answers every connection with `response` (raw HTTP), after reading the
/// request; `None` accepts and never answers. Returns the base URL.
async fn serve(response: Option<&str>) -> String {
    let response: Option<std::sync::Arc<str>> = response.map(Into::into);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                match response {
                    Some(response) => {
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    url
}

/// Reads one request: headers, then `content-length` bytes of body.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let Ok(read) = socket.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        seen.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return;
            }
        }
    }
}

fn provider(base_url: &str) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiConfig {
        http: HttpSettings {
            connect_timeout: Duration::from_secs(2),
            deadline: Duration::from_millis(500),
            max_retries: 0,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        },
        ..OpenAiConfig::new(base_url, "m")
    })
    .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: String::new(),
        system: None,
        messages: vec![Message::user("hi")],
        tools: Vec::new(),
        max_tokens: 8,
    }
}

/// The error that ends a call.
async fn failure(provider: &OpenAiProvider, cancel: CancellationToken) -> ProviderError {
    let mut events = provider.start(request(), cancel);
    loop {
        match events.recv().await {
            Some(Ok(_)) => {}
            Some(Err(err)) => return err,
            None => panic!("the call ended without an error"),
        }
    }
}

async fn kind_of_answer(response: &str) -> ProviderErrorKind {
    let url = serve(Some(response)).await;
    failure(&provider(&url), CancellationToken::new())
        .await
        .kind()
}

/// An error answer with an OpenAI-style body.
fn status(line: &str) -> String {
    let body = r#"{"error":{"message":"no"}}"#;
    format!(
        "HTTP/1.1 {line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn error_statuses_have_their_kinds() {
    for (line, kind) in [
        ("429 Too Many Requests", ProviderErrorKind::RateLimited),
        ("401 Unauthorized", ProviderErrorKind::Auth),
        ("403 Forbidden", ProviderErrorKind::Auth),
        ("400 Bad Request", ProviderErrorKind::Rejected),
        ("500 Internal Server Error", ProviderErrorKind::Server),
        ("503 Service Unavailable", ProviderErrorKind::Server),
    ] {
        assert_eq!(kind_of_answer(&status(line)).await, kind, "{line}");
    }
}

#[tokio::test]
async fn broken_answers_are_protocol_errors() {
    let cut_stream = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\n";
    assert_eq!(
        kind_of_answer(cut_stream).await,
        ProviderErrorKind::Protocol
    );
    let malformed = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {oops\n\n";
    assert_eq!(kind_of_answer(malformed).await, ProviderErrorKind::Protocol);
}

#[tokio::test]
async fn a_silent_server_is_a_timeout_and_cancelling_is_cancelled() {
    let url = serve(None).await;
    let provider = provider(&url);
    let err = failure(&provider, CancellationToken::new()).await;
    assert_eq!(err.kind(), ProviderErrorKind::Timeout, "{err}");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = failure(&provider, cancel).await;
    assert_eq!(err, ProviderError::Cancelled);
    assert_eq!(err.kind(), ProviderErrorKind::Cancelled);
}

#[tokio::test]
async fn nobody_listening_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = failure(
        &provider(&format!("http://127.0.0.1:{port}/v1")),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(err.kind(), ProviderErrorKind::Connection, "{err}");
}

#[test]
fn a_bad_target_is_a_config_error() {
    let err = OpenAiProvider::new(OpenAiConfig::new("ftp://x/v1", "m")).unwrap_err();
    assert_eq!(err.kind(), ProviderErrorKind::Config);
    assert_eq!(
        err.to_string(),
        "provider configuration: openai base URL `ftp://x/v1` must start with http:// or https://"
    );
}
