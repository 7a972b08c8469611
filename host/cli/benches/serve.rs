//! A load generator for `agent-host serve` (issue 14): N simulated users on loopback, each turn one tool call, against a mock model with no latency and with 200 ms; turns/s, turn latency minus model time, server RSS, live-session memory, and many turns in flight at once.
//!
//! `cargo bench -p agent-host --bench serve` (SERVE_BENCH_USERS,
//! SERVE_BENCH_SECS, SERVE_BENCH_SESSIONS, SERVE_BENCH_IN_FLIGHT,
//! SERVE_BENCH_TURNS_PER_SESSION change the sizes). The server is the real
//! binary; the model is a small in-process server speaking the OpenAI
//! streaming wire format: the first call of a turn asks for `echo`, the
//! second answers.

mod support;
use support::{percentile, setting};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

fn main() {
    support::block_on(run());
}

/// The mock model: its latency, how many calls it answered and the time
/// it spent answering them (its sleep included), so the host's share of a
/// turn is measured rather than assumed.
#[derive(Clone)]
struct Model {
    latency: Duration,
    calls: Arc<AtomicU64>,
    busy_ns: Arc<AtomicU64>,
}

fn sse(events: &[Value]) -> String {
    let mut body: String = events
        .iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    body.push_str("data: [DONE]\n\n");
    body
}

async fn chat(State(model): State<Model>, body: Bytes) -> impl IntoResponse {
    let started = Instant::now();
    model.calls.fetch_add(1, Ordering::Relaxed);
    if !model.latency.is_zero() {
        tokio::time::sleep(model.latency).await;
    }
    let answer = answer(&body);
    let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    model.busy_ns.fetch_add(took, Ordering::Relaxed);
    answer
}

fn answer(body: &[u8]) -> ([(&'static str, &'static str); 1], String) {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let answered_tool = request["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .is_some_and(|last| last["role"] == "tool");
    let chunk = |delta: Value, finish: Value| {
        json!({ "id": "c", "object": "chat.completion.chunk",
                "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    let usage = json!({ "id": "c", "object": "chat.completion.chunk", "choices": [],
                        "usage": { "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12 } });
    let events = if answered_tool {
        vec![
            chunk(json!({ "content": "done" }), Value::Null),
            chunk(json!({}), json!("stop")),
            usage,
        ]
    } else {
        vec![
            chunk(
                json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function",
                        "function": { "name": "echo", "arguments": "{\"text\": \"hi\"}" } }] }),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            usage,
        ]
    };
    ([("content-type", "text/event-stream")], sse(&events))
}

async fn start_model(latency: Duration) -> (SocketAddr, Model) {
    let model = Model {
        latency,
        calls: Arc::default(),
        busy_ns: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(model.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the model");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, model)
}

/// `agent-host serve` as a child, and its URL.
struct ServeProcess {
    child: std::process::Child,
    url: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    fn start(dir: &std::path::Path, model: SocketAddr, config: &str) -> Self {
        use std::io::BufRead;
        let config_file = dir.join(format!("config-{}.toml", model.port()));
        std::fs::write(&config_file, config).expect("write the config");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agent-host"))
            .arg("--plugins")
            .arg(dir.join("plugins"))
            .arg("--data-dir")
            .arg(dir.join(format!("data-{}", model.port())))
            .arg("--config")
            .arg(&config_file)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--provider",
                "openai",
                "--model",
                "bench",
            ])
            .arg("--base-url")
            .arg(format!("http://{model}/v1"))
            .env("OPENAI_API_KEY", "unused")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn agent-host serve");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("the listening line");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        // Keep reading so the server never blocks on a full stderr pipe.
        std::thread::spawn(move || for _ in stderr.lines() {});
        Self { child, url }
    }

    /// Resident memory of the server, in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

async fn new_session(http: &reqwest::Client, url: &str) -> String {
    let text = http
        .post(format!("{url}/v1/sessions"))
        .body("{}")
        .send()
        .await
        .expect("create a session")
        .text()
        .await
        .expect("its body");
    let record: Value = serde_json::from_str(&text).expect("a session record");
    record["id"].as_str().expect("an id").to_owned()
}

/// One turn; its latency, or what went wrong.
async fn turn(http: &reqwest::Client, url: &str, id: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let response = http
        .post(format!("{url}/v1/sessions/{id}/messages"))
        .body(r#"{"content": "echo hi"}"#)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|err| err.to_string())?;
    if !status.is_success() || !text.contains("\"outcome\":\"finished\"") {
        return Err(format!("{status}: {text}"));
    }
    Ok(started.elapsed())
}

/// `users` simulated users, each turn after turn for `secs`, starting a new
/// session every `turns_per_session` turns. Every model request carries the
/// whole history, so a session that grew to hundreds of turns would make
/// the run measure history encoding rather than the host; a person's
/// session is a handful of turns.
/// With a `pace`, each user starts a turn every `pace` (when the last one
/// is done): the rate is then fixed (users / pace) instead of as fast as
/// the server goes, and latency is measured at that rate.
async fn load(
    url: &str,
    users: usize,
    secs: u64,
    turns_per_session: usize,
    pace: Duration,
) -> (Vec<Duration>, usize, f64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(users)
        .build()
        .expect("a client");
    let mut ids = Vec::with_capacity(users);
    for _ in 0..users {
        ids.push(new_session(&http, url).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = ids
        .into_iter()
        .enumerate()
        .map(|(user, id)| {
            let (http, url) = (http.clone(), url.to_owned());
            // Paced users start spread over one pace, not all at once: a
            // burst every pace would measure queueing within the burst.
            let offset = pace.mul_f64(user as f64 / users.max(1) as f64);
            tokio::spawn(async move {
                let mut id = id;
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                let mut turns = 0usize;
                let mut next = Instant::now() + offset;
                while Instant::now() < deadline {
                    if !pace.is_zero() {
                        tokio::time::sleep_until(next.into()).await;
                        next += pace;
                    }
                    if turns == turns_per_session.max(1) {
                        id = new_session(&http, &url).await;
                        turns = 0;
                    }
                    match turn(&http, &url, &id).await {
                        Ok(latency) => latencies.push(latency),
                        Err(_) => errors += 1,
                    }
                    turns += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, failed) = task.await.expect("a user");
        all.extend(latencies);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    (all, errors, elapsed)
}

/// One row of the load table: how the users behave.
struct Row {
    users: usize,
    secs: u64,
    turns_per_session: usize,
    pace: Duration,
}

impl Row {
    /// Runs the users against a fresh server and a model answering after
    /// `latency`, and prints the row.
    async fn measure(&self, name: &str, latency: Duration, dir: &std::path::Path, config: &str) {
        let (model_addr, model) = start_model(latency).await;
        let server = ServeProcess::start(dir, model_addr, config);
        // Warm-up: compile, connections.
        let _ = load(
            &server.url,
            self.users.min(4),
            1,
            self.turns_per_session,
            Duration::ZERO,
        )
        .await;
        let calls_before = model.calls.load(Ordering::Relaxed);
        let busy_before = model.busy_ns.load(Ordering::Relaxed);
        let (latencies, errors, elapsed) = load(
            &server.url,
            self.users,
            self.secs,
            self.turns_per_session,
            self.pace,
        )
        .await;
        // The model's own time per turn, as it measured it (two calls a
        // turn): what is left of a turn is the host's and the wire's.
        let calls = model.calls.load(Ordering::Relaxed) - calls_before;
        let busy = model.busy_ns.load(Ordering::Relaxed) - busy_before;
        let model_time = Duration::from_nanos(busy / calls.max(1) * 2);
        let host = |fraction: f64| {
            percentile(&latencies, fraction)
                .saturating_sub(model_time)
                .as_secs_f64()
                * 1e3
        };
        println!(
            "{:22} {:>9.0} {:>7} {:>14.2} {:>12.2} {:>12.2} {:>9.1}",
            name,
            latencies.len() as f64 / elapsed,
            errors,
            model_time.as_secs_f64() * 1e3,
            host(0.5),
            host(0.99),
            server.rss_mib()
        );
        // Two model calls a turn: anything else means turns failed.
        assert!(calls >= 2 * latencies.len() as u64);
    }
}

async fn run() {
    let users = setting("SERVE_BENCH_USERS", 32);
    let secs = setting("SERVE_BENCH_SECS", 10) as u64;
    let sessions = setting("SERVE_BENCH_SESSIONS", 10_000);
    let in_flight = setting("SERVE_BENCH_IN_FLIGHT", 2_000);
    let turns_per_session = setting("SERVE_BENCH_TURNS_PER_SESSION", 10);
    // 32 users each starting a turn every 32 ms: about 1,000 turns/s.
    let pace = Duration::from_millis(setting("SERVE_BENCH_PACE_MS", 32) as u64);
    let tmp = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir(tmp.path().join("plugins")).expect("the plugin dir");
    let (wasm, manifest) = agent_host_test_artifacts::test_plugins::ECHO.files();
    std::fs::copy(wasm, tmp.path().join("plugins/echo.wasm")).expect("copy echo.wasm");
    std::fs::copy(manifest, tmp.path().join("plugins/echo.toml")).expect("copy echo.toml");
    let config = format!(
        "[server]\nmax_turns_in_flight = {}\n[sessions]\nlive_capacity = {}\n",
        in_flight.max(users) + 16,
        sessions.max(in_flight) + 16
    );

    println!(
        "agent-host serve load: {users} users, {secs} s, each turn = 2 model calls + 1 echo call, a new session every {turns_per_session} turns"
    );
    println!(
        "{:22} {:>9} {:>7} {:>14} {:>12} {:>12} {:>9}",
        "model latency",
        "turns/s",
        "errors",
        "model ms/turn",
        "p50 host ms",
        "p99 host ms",
        "RSS MiB"
    );
    let mut rows = vec![
        ("0 ms".to_owned(), Duration::ZERO, Duration::ZERO),
        (
            "200 ms".to_owned(),
            Duration::from_millis(200),
            Duration::ZERO,
        ),
    ];
    if !pace.is_zero() {
        // The zero-latency model at a fixed rate (users / pace): the
        // host's time a turn at that rate, not at saturation.
        let name = format!("0 ms, paced {} ms", pace.as_millis());
        rows.push((name, Duration::ZERO, pace));
    }
    for (name, latency, pace) in rows {
        let row = Row {
            users,
            secs,
            turns_per_session,
            pace,
        };
        row.measure(&name, latency, tmp.path(), &config).await;
    }

    // Live sessions: RSS before and after creating `sessions` of them.
    let (model_addr, _model) = start_model(Duration::ZERO).await;
    let server = ServeProcess::start(tmp.path(), model_addr, &config);
    let http = reqwest::Client::new();
    let _ = new_session(&http, &server.url).await;
    let before = server.rss_mib();
    let mut ids = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        ids.push(new_session(&http, &server.url).await);
    }
    // Each holds a short history once it has had a turn.
    for id in ids.iter().take(sessions.min(1000)) {
        let _ = turn(&http, &server.url, id).await;
    }
    let after = server.rss_mib();
    println!(
        "\n{sessions} live sessions ({} of them after a turn): server RSS {after:.1} MiB, {:+.1} MiB over one session",
        sessions.min(1000),
        after - before
    );
    drop(server);

    // Many turns in flight with the slow model.
    let (model_addr, _model) = start_model(Duration::from_millis(200)).await;
    let server = ServeProcess::start(tmp.path(), model_addr, &config);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .build()
        .expect("a client");
    let mut ids = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        ids.push(new_session(&http, &server.url).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (http, url) = (http.clone(), server.url.clone());
            tokio::spawn(async move { turn(&http, &url, &id).await })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        if let Err(err) = task.await.expect("a user") {
            errors.push(err);
        }
    }
    println!(
        "{in_flight} turns in flight at once (200 ms model): {} errors, all done in {:.2} s, server RSS {:.1} MiB",
        errors.len(),
        started.elapsed().as_secs_f64(),
        server.rss_mib()
    );
    if let Some(first) = errors.first() {
        println!("  first error: {first}");
    }
}
