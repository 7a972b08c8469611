//! Benchmark for issue 6 (extensions): the cost of 5 sync hooks in a turn, and of a coalescing stream-chunk subscriber on a 1,000-chunk stream.
//!
//! Run after `make plugins`: `cargo bench -p agent-host-agent --bench hooks`.
//! Two runtimes run side by side in one process, one with the extensions
//! and one without; rounds alternate between them so machine noise hits
//! both alike. The model is in-process and answers at once, so what is
//! measured is the host alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host_agent::{Agent, AgentConfig, Outcome};
use agent_host_llm::{ChatRequest, EventReceiver, FinishReason, Provider, ProviderEvent, ToolCall};
use agent_host_runtime::Runtime;
use agent_host_runtime::RuntimeConfig;
use agent_host_runtime::config::{ExtensionSettings, HookOverride};
use agent_host_runtime::hooks::HookPoint;
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 2_000;
const STREAM_ROUNDS: usize = 600;
const WARMUP: usize = 50;
const CHUNKS: usize = 1_000;

/// The five points a tool-calling turn passes through.
const TURN_POINTS: [HookPoint; 5] = [
    HookPoint::TurnStart,
    HookPoint::BeforeLlmCall,
    HookPoint::AfterLlmResponse,
    HookPoint::BeforeToolCall,
    HookPoint::AfterToolCall,
];

/// A model that answers at once: one `echo` call, or a text stream of
/// `CHUNKS` deltas.
struct InstantModel {
    stream: bool,
}

impl Provider for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }

    fn model(&self) -> &str {
        "instant"
    }

    fn start(&self, _request: ChatRequest, _cancel: CancellationToken) -> EventReceiver {
        let events: Vec<ProviderEvent> = if self.stream {
            let mut events: Vec<ProviderEvent> = (0..CHUNKS)
                .map(|i| ProviderEvent::TextDelta {
                    text: format!("tok{i} "),
                })
                .collect();
            events.push(ProviderEvent::Finish {
                reason: FinishReason::Stop,
            });
            events
        } else {
            vec![
                ProviderEvent::ToolCall {
                    call: ToolCall {
                        id: "call-1".into(),
                        name: "echo".into(),
                        arguments: r#"{"text":"hi"}"#.into(),
                    },
                },
                ProviderEvent::Finish {
                    reason: FinishReason::ToolCalls,
                },
            ]
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(events.len() + 1);
        for event in events {
            let _ = sender.try_send(Ok(event));
        }
        receiver
    }
}

/// Serves every request on 127.0.0.1 with an OpenAI-compatible SSE answer
/// of `CHUNKS` text chunks (the real wire format), as fast as the socket
/// takes it. Returns the base URL.
async fn sse_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut body = String::new();
    for i in 0..CHUNKS {
        let chunk = serde_json::json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": format!("tok{i} ")}, "finish_reason": null}],
        });
        body.push_str(&format!("data: {chunk}\n\n"));
    }
    let last = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    });
    body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    let response: Arc<[u8]> = Arc::from(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                // Read the request head and its body, then answer.
                let mut request = Vec::new();
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let length = text[..head_end]
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= head_end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

fn build_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../build")
        .join(kind)
}

fn copy_plugin(from: &Path, stem: &str, to: &Path, name: &str) {
    std::fs::copy(
        from.join(format!("{stem}.wasm")),
        to.join(format!("{name}.wasm")),
    )
    .unwrap_or_else(|err| panic!("{stem}.wasm missing ({err}); run `make plugins` first"));
    let manifest = std::fs::read_to_string(from.join(format!("{stem}.toml"))).unwrap();
    let manifest = manifest.replacen(
        &format!("name = \"{}\"", manifest_name(&manifest)),
        &format!("name = \"{name}\""),
        1,
    );
    std::fs::write(to.join(format!("{name}.toml")), manifest).unwrap();
}

fn manifest_name(manifest: &str) -> String {
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("name = \""))
        .map(|rest| rest.trim_end_matches('"').to_owned())
        .unwrap()
}

/// Only `point` of the probe's subscriptions stays on, answering continue.
fn only(point: HookPoint, over: HookOverride) -> ExtensionSettings {
    let mut settings = ExtensionSettings::default();
    for other in HookPoint::ALL {
        let value = if other == point {
            over.clone()
        } else {
            HookOverride {
                enabled: Some(false),
                ..HookOverride::default()
            }
        };
        settings.hooks.insert(other.as_str().to_owned(), value);
    }
    settings
}

async fn runtime(dir: &Path, probes: &[(String, ExtensionSettings)]) -> Runtime {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    copy_plugin(&build_dir("test-plugins"), "echo", &plugins, "echo");
    let mut config = RuntimeConfig::new(vec![plugins.clone()], dir.join("data"));
    // The optimized tier from the first call: no tier-up mid-measurement.
    config.cache.tiering = agent_host_runtime::config::Tiering::Optimized;
    for (name, settings) in probes {
        copy_plugin(&build_dir("test-plugins"), "ext-probe", &plugins, name);
        config.extensions.insert(name.clone(), settings.clone());
    }
    let runtime = Runtime::new(config).unwrap();
    let report = runtime
        .load_plugin_dirs_with(agent_host_runtime::LoadMode::Eager)
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    runtime
}

async fn one_run(agent: &Agent) -> Duration {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut history = Vec::new();
    let started = Instant::now();
    let outcome = agent
        .run(
            &mut history,
            "go".into(),
            &sender,
            &CancellationToken::new(),
            None,
        )
        .await;
    let took = started.elapsed();
    drop(receiver);
    assert!(
        matches!(outcome, Outcome::TurnLimit | Outcome::Finished { .. }),
        "{outcome:?}"
    );
    took
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Medians of two alternating series, and the median of their per-round
/// differences (robust to the machine getting slower or faster mid-run).
struct Pair {
    base: Duration,
    with: Duration,
    added_us: f64,
}

impl Pair {
    fn added_percent(&self) -> f64 {
        self.added_us / us(self.base) * 100.0
    }

    fn print(&self, base: &str, with: &str) {
        println!("  {base:<50} {:>9.1} us", us(self.base));
        println!("  {with:<50} {:>9.1} us", us(self.with));
        println!(
            "  {:<50} {:>9.1} us = {:.1} % (median of per-round differences)",
            "added:",
            self.added_us,
            self.added_percent()
        );
    }
}

/// Alternates runs of `a` and `b` (which goes first alternates too).
async fn side_by_side(a: &Agent, b: &Agent, rounds: usize) -> Pair {
    let (mut xs, mut ys, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + WARMUP {
        let (x, y) = if round % 2 == 0 {
            let x = one_run(a).await;
            (x, one_run(b).await)
        } else {
            let y = one_run(b).await;
            (one_run(a).await, y)
        };
        if round >= WARMUP {
            xs.push(x);
            ys.push(y);
            diffs.push(us(y) - us(x));
        }
    }
    diffs.sort_by(f64::total_cmp);
    Pair {
        base: median(xs),
        with: median(ys),
        added_us: diffs[diffs.len() / 2],
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let turn_config = AgentConfig {
        // One turn: model -> one tool call -> results; the run then stops
        // at the turn limit, so exactly one turn is measured.
        max_turns: 1,
        ..AgentConfig::default()
    };

    // 1. A tool-calling turn with five sync hooks (one extension per point).
    let probes: Vec<(String, ExtensionSettings)> = TURN_POINTS
        .iter()
        .enumerate()
        .map(|(i, point)| (format!("probe-{i}"), only(*point, HookOverride::default())))
        .collect();
    let bare = runtime(&tmp.path().join("bare"), &[]).await;
    let hooked = runtime(&tmp.path().join("hooked"), &probes).await;
    let model: Arc<dyn Provider> = Arc::new(InstantModel { stream: false });
    let without = Agent::for_runtime(bare.clone(), model.clone(), turn_config.clone());
    let with = Agent::for_runtime(hooked.clone(), model, turn_config.clone());
    let turn = side_by_side(&without, &with, ROUNDS).await;
    let calls: u64 = hooked
        .hook_stats()
        .rows()
        .iter()
        .map(|r| r.counters.calls)
        .sum();
    let failures: u64 = hooked
        .hook_stats()
        .rows()
        .iter()
        .map(|r| r.counters.failures)
        .sum();
    assert_eq!(failures, 0);

    // 2. A 1,000-chunk answer with a coalescing stream-chunk subscriber.
    let streamer = runtime(
        &tmp.path().join("stream"),
        &[(
            "probe-stream".to_owned(),
            only(HookPoint::StreamChunk, HookOverride::default()),
        )],
    )
    .await;
    let model: Arc<dyn Provider> = Arc::new(InstantModel { stream: true });
    let plain = Agent::for_runtime(bare.clone(), model.clone(), AgentConfig::default());
    let tapped = Agent::for_runtime(streamer.clone(), model, AgentConfig::default());
    let in_process = side_by_side(&plain, &tapped, STREAM_ROUNDS).await;
    let batches_before: u64 = streamer
        .hook_stats()
        .rows()
        .iter()
        .map(|r| r.counters.calls)
        .sum();

    // 3. The same 1,000 chunks from a loopback OpenAI-compatible server.
    let base_url = sse_server().await;
    let openai: Arc<dyn Provider> = Arc::new(
        agent_host_llm::openai::OpenAiProvider::new(agent_host_llm::openai::OpenAiConfig::new(
            base_url, "bench",
        ))
        .unwrap(),
    );
    let plain_http = Agent::for_runtime(bare.clone(), openai.clone(), AgentConfig::default());
    let tapped_http = Agent::for_runtime(streamer.clone(), openai.clone(), AgentConfig::default());
    let http = side_by_side(&plain_http, &tapped_http, STREAM_ROUNDS).await;
    let failures: u64 = streamer
        .hook_stats()
        .rows()
        .iter()
        .map(|r| r.counters.failures)
        .sum();
    assert_eq!(failures, 0);

    // 4. The same, with the subscriber delivered async (fire and forget).
    let async_streamer = runtime(
        &tmp.path().join("stream-async"),
        &[(
            "probe-stream".to_owned(),
            only(
                HookPoint::StreamChunk,
                HookOverride {
                    delivery: Some(agent_host_runtime::hooks::Delivery::Async),
                    ..HookOverride::default()
                },
            ),
        )],
    )
    .await;
    let plain_async = Agent::for_runtime(bare.clone(), openai.clone(), AgentConfig::default());
    let tapped_async = Agent::for_runtime(async_streamer.clone(), openai, AgentConfig::default());
    let http_async = side_by_side(&plain_async, &tapped_async, STREAM_ROUNDS).await;
    tapped_async.end_session(&Outcome::TurnLimit, 0).await;

    let per_call = |runtime: &Runtime| {
        let rows = runtime.hook_stats().rows();
        let time: u64 = rows.iter().map(|r| r.counters.time_us).sum();
        let calls: u64 = rows.iter().map(|r| r.counters.calls).sum();
        time as f64 / calls.max(1) as f64
    };
    println!("extension hooks: medians of {ROUNDS} alternating rounds");
    println!("one tool-calling turn (model -> echo -> results):");
    turn.print("no extensions:", "5 sync hooks (5 extensions, 5 points):");
    println!(
        "  {:<50} {:>9.1} us inside each hook call ({calls} calls)",
        "",
        per_call(&hooked)
    );
    println!(
        "{CHUNKS}-chunk answer from the in-process model ({STREAM_ROUNDS} rounds; worst case: the stream itself costs ~0.2 us per chunk):"
    );
    in_process.print("no subscriber:", "coalescing sync stream-chunk subscriber:");
    println!(
        "  {:<50} {:>9.1} batches per stream, {:.1} us inside each batch call",
        "",
        batches_before as f64 / (STREAM_ROUNDS + WARMUP) as f64,
        per_call(&streamer)
    );
    println!("{CHUNKS}-chunk answer over loopback HTTP (OpenAI SSE wire format):");
    http.print("no subscriber:", "coalescing sync stream-chunk subscriber:");
    http_async.print("no subscriber:", "the same subscriber, delivered async:");
}
