//! A scripted HTTP/1.1 server on 127.0.0.1 standing in for an LLM API: it records every request and answers from a queue (JSON, chunked SSE, stalls, drops).
//!
//! Responses are plain values built from small helpers
//! (`openai_text_chunk`, `anthropic_event`, ...), so a test reads like the
//! wire traffic it expects. Every response closes its connection, so no
//! test depends on the client's connection pool.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "request body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// How a streamed body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The terminating chunk, then close.
    Complete,
    /// Keep the connection open and send nothing more.
    Stall,
    /// Close the connection without the terminating chunk.
    Drop,
}

#[derive(Debug, Clone)]
enum Body {
    /// Sent at once with a Content-Length.
    Full(Vec<u8>),
    /// Sent with chunked encoding, one write per piece, `delay` apart.
    Chunked {
        pieces: Vec<Vec<u8>>,
        delay: Duration,
        end: End,
    },
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct MockResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl MockResponse {
    pub fn json(status: u16, body: Value) -> Self {
        Self::raw(status, "application/json", body.to_string().into_bytes())
    }

    pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: Body::Full(body),
        }
    }

    /// A `text/event-stream` body, one chunk per event, 5 ms apart.
    pub fn sse(events: impl IntoIterator<Item = String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
            body: Body::Chunked {
                pieces: events.into_iter().map(String::into_bytes).collect(),
                delay: Duration::from_millis(5),
                end: End::Complete,
            },
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Re-cuts the streamed body into `size`-byte pieces, so lines and
    /// UTF-8 characters are split across writes.
    pub fn split_every(mut self, size: usize) -> Self {
        if let Body::Chunked { pieces, .. } = &mut self.body {
            let all: Vec<u8> = pieces.concat();
            *pieces = all.chunks(size.max(1)).map(<[u8]>::to_vec).collect();
        }
        self
    }

    /// Sends the first `bytes` bytes of the streamed body, then stalls.
    pub fn stall_after(self, bytes: usize) -> Self {
        self.cut(bytes, End::Stall)
    }

    /// Sends the first `bytes` bytes of the streamed body, then drops the
    /// connection mid-body.
    pub fn drop_after(self, bytes: usize) -> Self {
        self.cut(bytes, End::Drop)
    }

    fn cut(mut self, bytes: usize, how: End) -> Self {
        if let Body::Chunked { pieces, end, .. } = &mut self.body {
            let mut left = bytes;
            let mut kept = Vec::new();
            for piece in pieces.drain(..) {
                if left == 0 {
                    break;
                }
                let take = piece.len().min(left);
                left -= take;
                kept.push(piece[..take].to_vec());
            }
            *pieces = kept;
            *end = how;
        }
        self
    }
}

#[derive(Default)]
struct State {
    responses: VecDeque<MockResponse>,
    requests: Vec<Recorded>,
}

/// The server; it stops when dropped.
pub struct MockLlm {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl MockLlm {
    /// Starts a server answering requests with `responses`, in order. A
    /// request beyond them gets a 500 saying so.
    pub async fn start(responses: Vec<MockResponse>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            responses: responses.into(),
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            // Connection tasks end with the test's runtime, stalls included.
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&shared)));
            }
        });
        Self {
            addr,
            state,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

/// A port nobody listens on (bound, then released).
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let response = {
        let mut state = state.lock().unwrap();
        state.requests.push(request);
        state.responses.pop_front()
    };
    let response = response.unwrap_or_else(|| {
        MockResponse::json(
            500,
            json!({"error": {"message": "mock server: no scripted response left"}}),
        )
    });
    let _ = write_response(&mut socket, response).await;
}

async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

async fn write_response(socket: &mut TcpStream, response: MockResponse) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} Mock\r\nconnection: close\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match response.body {
        Body::Full(body) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await?;
            socket.flush().await?;
        }
        Body::Chunked { pieces, delay, end } => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.flush().await?;
            for piece in pieces {
                tokio::time::sleep(delay).await;
                socket
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                socket.write_all(&piece).await?;
                socket.write_all(b"\r\n").await?;
                socket.flush().await?;
            }
            match end {
                End::Complete => {
                    socket.write_all(b"0\r\n\r\n").await?;
                    socket.flush().await?;
                }
                End::Stall => std::future::pending::<()>().await,
                End::Drop => {}
            }
        }
    }
    socket.shutdown().await
}

// ---- OpenAI chat-completions stream helpers ----

/// `data: {json}` and the blank line.
pub fn sse_data(data: &Value) -> String {
    format!("data: {data}\n\n")
}

pub fn openai_text_chunk(text: &str) -> String {
    sse_data(&json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}],
    }))
}

/// One tool-call fragment; the id and name usually come only first.
pub fn openai_tool_call_fragment(
    index: usize,
    id: Option<&str>,
    name: Option<&str>,
    arguments: &str,
) -> String {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    sse_data(&json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}],
    }))
}

pub fn openai_finish_chunk(reason: &str) -> String {
    sse_data(&json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
    }))
}

/// The final usage chunk (`include_usage`): no choices.
pub fn openai_usage_chunk(prompt: u64, completion: u64) -> String {
    sse_data(&json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }))
}

pub fn openai_done() -> String {
    "data: [DONE]\n\n".to_owned()
}

/// A whole streamed text answer.
pub fn openai_text_stream(pieces: &[&str]) -> Vec<String> {
    let mut events: Vec<String> = pieces
        .iter()
        .map(|piece| openai_text_chunk(piece))
        .collect();
    events.extend([
        openai_finish_chunk("stop"),
        openai_usage_chunk(10, pieces.len() as u64),
        openai_done(),
    ]);
    events
}

// ---- Anthropic messages stream helpers ----

/// `event: name` + `data: {json}` and the blank line.
pub fn anthropic_event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

pub fn anthropic_message_start(input_tokens: u64) -> String {
    anthropic_event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test",
            "stop_reason": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
    )
}

pub fn anthropic_text_start(index: usize) -> String {
    anthropic_event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
    )
}

pub fn anthropic_text_delta(index: usize, text: &str) -> String {
    anthropic_event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
    )
}

pub fn anthropic_tool_use_start(index: usize, id: &str, name: &str) -> String {
    anthropic_event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
    )
}

pub fn anthropic_input_delta(index: usize, partial_json: &str) -> String {
    anthropic_event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": partial_json}}),
    )
}

pub fn anthropic_block_stop(index: usize) -> String {
    anthropic_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

pub fn anthropic_message_delta(stop_reason: &str, output_tokens: u64) -> String {
    anthropic_event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens}}),
    )
}

pub fn anthropic_message_stop() -> String {
    anthropic_event("message_stop", &json!({"type": "message_stop"}))
}

pub fn anthropic_ping() -> String {
    anthropic_event("ping", &json!({"type": "ping"}))
}

/// A whole streamed text answer.
pub fn anthropic_text_stream(pieces: &[&str]) -> Vec<String> {
    let mut events = vec![anthropic_message_start(12), anthropic_text_start(0)];
    events.push(anthropic_ping());
    events.extend(pieces.iter().map(|piece| anthropic_text_delta(0, piece)));
    events.extend([
        anthropic_block_stop(0),
        anthropic_message_delta("end_turn", pieces.len() as u64),
        anthropic_message_stop(),
    ]);
    events
}
