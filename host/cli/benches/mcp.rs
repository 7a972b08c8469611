//! MCP `tools/call` round trips against the direct `Runtime::call_tool` path, side by side in one run (issue 13): stdio (the real binary), Streamable HTTP with keep-alive in both protocol eras, and 32 concurrent HTTP clients against 32 concurrent direct callers.
//!
//! `cargo bench -p agent-host --bench mcp` (MCP_BENCH_CALLS, MCP_BENCH_ROUNDS
//! and MCP_BENCH_CLIENTS change the sizes). Modes take turns round by round,
//! so a slow patch of the machine hits them all alike.

mod support;
use support::{micros, optimized, percentile, sequential, setting};

use std::time::{Duration, Instant};

use agent_host_mcp::{HttpOptions, HttpServer, McpConfig, ToolServer};
use agent_host_runtime::{CallOptions, Runtime, RuntimeConfig};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::json;

type Client = RunningService<RoleClient, ()>;

fn main() {
    support::block_on(run());
}

fn echo_params() -> CallToolRequestParams {
    CallToolRequestParams::new("echo").with_arguments(
        json!({ "text": "hi" })
            .as_object()
            .cloned()
            .expect("an object"),
    )
}

async fn direct_call(runtime: &Runtime) {
    let output = runtime
        .call_tool("echo", &json!({ "text": "hi" }), CallOptions::default())
        .await
        .expect("echo answers");
    assert_eq!(output.to_text(), "hi");
}

/// A lean HTTP client: one keep-alive connection pool, a ready-made
/// 2026-07-28 request body, the JSON answer checked. It shows the server's
/// own cost apart from rmcp's client.
#[derive(Clone)]
struct RawClient {
    http: reqwest::Client,
    url: String,
    body: String,
    method: &'static str,
}

impl RawClient {
    fn new(url: &str) -> Self {
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {
                "name": "echo", "arguments": { "text": "hi" },
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": { "name": "bench", "version": "1" },
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        })
        .to_string();
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            body,
            method: "tools/call",
        }
    }

    /// The same client sending `tools/list`: the transport without a call.
    fn listing(url: &str) -> Self {
        let mut client = Self::new(url);
        client.body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientInfo": { "name": "bench", "version": "1" },
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            },
        })
        .to_string();
        client.method = "tools/list";
        client
    }

    async fn call(&self) {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", self.method);
        if self.method == "tools/call" {
            request = request.header("mcp-name", "echo");
        }
        let response = request
            .body(self.body.clone())
            .send()
            .await
            .expect("the server answers");
        let text = response.text().await.expect("a body");
        assert!(
            text.contains("\"isError\":false") || text.contains("\"tools\""),
            "{text}"
        );
    }
}

/// A lean stdio client: the binary's stdin and stdout, a handshake, then
/// one ready-made `tools/call` line out and one line back per call. It shows
/// the server's side of a stdio round trip apart from rmcp's client.
struct RawStdio {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    line: String,
    next_id: u64,
}

impl RawStdio {
    async fn start(mut command: tokio::process::Command) -> Self {
        use tokio::io::AsyncWriteExt;
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn agent-host mcp serve");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut raw = Self {
            _child: child,
            stdin,
            stdout,
            line: String::new(),
            next_id: 1,
        };
        raw.send(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "bench", "version": "1" },
            },
        }))
        .await;
        raw.read().await;
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        raw.stdin
            .write_all(format!("{initialized}\n").as_bytes())
            .await
            .expect("write");
        raw
    }

    async fn send(&mut self, message: &serde_json::Value) {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("write");
    }

    async fn read(&mut self) -> &str {
        use tokio::io::AsyncBufReadExt;
        self.line.clear();
        self.stdout.read_line(&mut self.line).await.expect("read");
        &self.line
    }

    async fn call(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": "echo", "arguments": { "text": "hi" } },
        }))
        .await;
        let line = self.read().await;
        assert!(line.contains("\"isError\":false"), "{line}");
    }
}

async fn list(client: &Client) {
    let tools = client.list_tools(None).await.expect("a tool list");
    assert_eq!(tools.tools.len(), 1);
}

async fn mcp_call(client: &Client) {
    let result = client.call_tool(echo_params()).await.expect("echo answers");
    assert_eq!(result.is_error, Some(false));
}

fn era_2026() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

async fn http_client(url: &str, lifecycle: ClientLifecycleMode) -> Client {
    agent_host_mcp::client::tls::install_crypto_provider();
    ().serve_with_lifecycle(
        StreamableHttpClientTransport::from_uri(url.to_owned()),
        lifecycle,
    )
    .await
    .expect("an HTTP client")
}

async fn run() {
    let calls = setting("MCP_BENCH_CALLS", 2000);
    let rounds = setting("MCP_BENCH_ROUNDS", 5);
    let clients = setting("MCP_BENCH_CLIENTS", 32);
    let tmp = tempfile::tempdir().expect("a temp dir");
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).expect("the plugin dir");
    let echo = agent_host_test_artifacts::test_plugins::ECHO;
    let (wasm, manifest) = echo.files();
    std::fs::copy(wasm, plugins.join("echo.wasm")).expect("copy echo.wasm");
    std::fs::copy(manifest, plugins.join("echo.toml")).expect("copy echo.toml");

    let runtime = Runtime::new(optimized(RuntimeConfig::new(
        vec![plugins.clone()],
        tmp.path().join("data"),
    )))
    .expect("a runtime");
    runtime.load_plugin_dirs().await;
    let http = HttpServer::bind(
        ToolServer::new(runtime.clone(), McpConfig::default()),
        HttpOptions {
            addr: "127.0.0.1:0".parse().expect("an address"),
            token: None,
        },
    )
    .await
    .expect("the HTTP server");
    let url = http.url();

    // The stdio servers are the real binary, each with its own data
    // directory (the store takes a lock).
    let stdio_command = |data: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-host"));
        command
            .arg("--plugins")
            .arg(&plugins)
            .arg("--data-dir")
            .arg(tmp.path().join(data))
            .env("XDG_CONFIG_HOME", tmp.path().join("no-config"))
            .args(["mcp", "serve"]);
        command
    };
    let stdio: Client = ()
        .serve_with_lifecycle(
            TokioChildProcess::new(stdio_command("stdio-data"))
                .expect("spawn agent-host mcp serve"),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("the stdio client");
    let mut raw_stdio = RawStdio::start(stdio_command("raw-stdio-data")).await;
    let http_legacy = http_client(&url, ClientLifecycleMode::Initialize).await;
    let http_2026 = http_client(&url, era_2026()).await;
    let raw = RawClient::new(&url);
    let raw_list = RawClient::listing(&url);

    // Warm-up: compiled component, pools, connections.
    for _ in 0..200 {
        direct_call(&runtime).await;
        mcp_call(&stdio).await;
        mcp_call(&http_legacy).await;
        mcp_call(&http_2026).await;
        raw.call().await;
        raw_stdio.call().await;
    }

    let names = [
        "direct Runtime::call_tool",
        "MCP stdio (2025-11-25)",
        "MCP stdio (2025-11-25), lean client",
        "MCP HTTP (2025-11-25, session)",
        "MCP HTTP (2026-07-28, stateless)",
        "MCP HTTP (2026-07-28), lean client",
        "  stdio tools/list (no tool call)",
        "  HTTP lean tools/list (no tool call)",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        samples[0].extend(sequential(calls, || direct_call(&runtime)).await);
        samples[1].extend(sequential(calls, || mcp_call(&stdio)).await);
        let mut lean_stdio = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            raw_stdio.call().await;
            lean_stdio.push(started.elapsed());
        }
        samples[2].extend(lean_stdio);
        samples[3].extend(sequential(calls, || mcp_call(&http_legacy)).await);
        samples[4].extend(sequential(calls, || mcp_call(&http_2026)).await);
        samples[5].extend(sequential(calls, || raw.call()).await);
        samples[6].extend(sequential(calls, || list(&stdio)).await);
        samples[7].extend(sequential(calls, || raw_list.call()).await);
    }
    for sample in &mut samples {
        sample.sort_unstable();
    }
    let direct_median = percentile(&samples[0], 0.5);
    println!("one caller, {calls} calls x {rounds} rounds each, echo {{\"text\": \"hi\"}}");
    println!(
        "{:36} {:>10} {:>10} {:>10} {:>14}",
        "path", "median us", "p99 us", "calls/s", "overhead us"
    );
    for (name, sample) in names.iter().zip(&samples) {
        let median = percentile(sample, 0.5);
        println!(
            "{name:36} {:>10.1} {:>10.1} {:>10.0} {:>14.1}",
            micros(median),
            micros(percentile(sample, 0.99)),
            1.0 / median.as_secs_f64(),
            micros(median) - micros(direct_median),
        );
    }

    // Throughput: `clients` HTTP clients (2026, one connection each)
    // against as many concurrent direct callers.
    let mut pool = Vec::with_capacity(clients);
    for _ in 0..clients {
        pool.push(std::sync::Arc::new(http_client(&url, era_2026()).await));
    }
    let per_caller = (calls / 4).max(50);
    let mut direct_rates = Vec::new();
    let mut http_rates = Vec::new();
    let mut raw_rates = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    for _ in 0..per_caller {
                        direct_call(&runtime).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a direct caller");
        }
        direct_rates.push((clients * per_caller) as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let tasks: Vec<_> = pool
            .iter()
            .map(|client| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..per_caller {
                        mcp_call(&client).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("an HTTP client");
        }
        http_rates.push((clients * per_caller) as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let raw = RawClient::new(&url);
                tokio::spawn(async move {
                    for _ in 0..per_caller {
                        raw.call().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a lean HTTP client");
        }
        raw_rates.push((clients * per_caller) as f64 / started.elapsed().as_secs_f64());
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let direct_rate = median(&mut direct_rates);
    let http_rate = median(&mut http_rates);
    let raw_rate = median(&mut raw_rates);
    println!(
        "\n{clients} concurrent callers, {per_caller} calls each x {rounds} rounds (median round)"
    );
    println!(
        "{:36} {:>10.0} calls/s",
        "direct Runtime::call_tool", direct_rate
    );
    println!(
        "{:36} {:>10.0} calls/s  ({:.2}x direct)",
        "MCP HTTP (2026-07-28), 1 conn each",
        http_rate,
        http_rate / direct_rate
    );
    println!(
        "{:36} {:>10.0} calls/s  ({:.2}x direct)",
        "MCP HTTP (2026-07-28), lean clients",
        raw_rate,
        raw_rate / direct_rate
    );

    for client in pool {
        if let Ok(client) = std::sync::Arc::try_unwrap(client) {
            let _ = client.cancel().await;
        }
    }
    let _ = stdio.cancel().await;
    let _ = http_legacy.cancel().await;
    let _ = http_2026.cancel().await;
    let _ = http.shutdown().await;
}
