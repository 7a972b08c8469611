//! The MCP server (`agent-host mcp serve`, issue 13) driven by rmcp's client over stdio and Streamable HTTP, in both protocol eras: lists, calls, every isError kind, pagination, list_changed, progress, cancellation, and the HTTP listener's guards.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host_mcp::auth::BearerToken;
use agent_host_mcp::{HttpOptions, HttpServer, McpConfig, ServeError, ToolServer};
use agent_host_runtime::Runtime;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, ErrorCode,
    ProgressNotificationParam, ProtocolVersion, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ServiceError};
use serde_json::{Value, json};

use crate::support::{Harness, example_plugin, run_command, test_plugin};

/// Long enough for any step on a loaded CI machine; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

async fn patiently<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

/// A client that records what the server tells it unasked.
#[derive(Clone, Default)]
struct Observer {
    list_changes: Arc<AtomicUsize>,
    changed: Arc<tokio::sync::Notify>,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    progressed: Arc<tokio::sync::Notify>,
}

impl ClientHandler for Observer {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changes.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
        self.progressed.notify_one();
    }
}

type Client = RunningService<RoleClient, Observer>;

fn era_2026() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

fn args(value: Value) -> rmcp::model::JsonObject {
    value.as_object().cloned().unwrap()
}

async fn call(client: &Client, name: &str, arguments: Value) -> CallToolResult {
    patiently(
        name,
        client
            .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args(arguments))),
    )
    .await
    .unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn text_of(result: &CallToolResult) -> String {
    let value = serde_json::to_value(&result.content).unwrap();
    value
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|part| part["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A harness with the plugins the MCP tests call.
fn harness() -> Harness {
    let h = Harness::new();
    h.install(test_plugin::echo())
        .install(test_plugin::shapes())
        .install(test_plugin::hostile());
    h
}

/// An in-process HTTP server over `h`'s plugins, watching them.
struct Served {
    runtime: Runtime,
    http: HttpServer,
    _watcher: agent_host_runtime::watcher::PluginWatcher,
}

async fn serve_http(h: &Harness, config: McpConfig, token: Option<BearerToken>) -> Served {
    let runtime = h.runtime().await;
    let watcher = runtime.watch().unwrap();
    let server = ToolServer::new(runtime.clone(), config);
    let http = HttpServer::bind(
        server,
        HttpOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            token,
        },
    )
    .await
    .unwrap();
    Served {
        runtime,
        http,
        _watcher: watcher,
    }
}

async fn http_client(url: &str, lifecycle: ClientLifecycleMode) -> (Client, Observer) {
    http_client_with(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
        lifecycle,
    )
    .await
    .unwrap()
}

async fn http_client_with(
    config: StreamableHttpClientTransportConfig,
    lifecycle: ClientLifecycleMode,
) -> Result<(Client, Observer), String> {
    let observer = Observer::default();
    // rmcp's HTTP client is built on rustls without a bundled provider.
    agent_host_mcp::client::tls::install_crypto_provider();
    let transport = StreamableHttpClientTransport::from_config(config);
    let client = patiently(
        "connect",
        observer.clone().serve_with_lifecycle(transport, lifecycle),
    )
    .await
    .map_err(|err| err.to_string())?;
    Ok((client, observer))
}

/// `agent-host mcp serve` on stdio, as an MCP client starts it.
async fn stdio_client(h: &Harness, lifecycle: ClientLifecycleMode) -> (Client, Observer) {
    stdio_client_with(h, lifecycle, &[]).await
}

async fn stdio_client_with(
    h: &Harness,
    lifecycle: ClientLifecycleMode,
    extra_args: &[&str],
) -> (Client, Observer) {
    let mut command = tokio::process::Command::from(h.command());
    command.args(extra_args).args(["mcp", "serve"]);
    let transport = TokioChildProcess::new(command).unwrap();
    let observer = Observer::default();
    let client = patiently(
        "start the stdio server",
        observer.clone().serve_with_lifecycle(transport, lifecycle),
    )
    .await
    .unwrap();
    (client, observer)
}

/// Lists, calls and every kind of failed call, the same over any
/// transport and era.
async fn exercise_tools(client: &Client) {
    let tools = patiently("list", client.list_all_tools()).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "tools/list is in a stable order");
    for expected in ["echo", "shapes_mixed", "shapes_fail", "spin", "read_file"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    let hints = echo.annotations.as_ref().unwrap();
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.idempotent_hint, Some(true));
    assert_eq!(hints.destructive_hint, Some(false));
    assert_eq!(echo.input_schema["required"], json!(["text"]));
    let mixed = tools.iter().find(|t| t.name == "shapes_mixed").unwrap();
    assert_eq!(mixed.title.as_deref(), Some("Mixed shapes"));
    assert_eq!(
        mixed.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
    assert_eq!(
        mixed.annotations.as_ref().unwrap().open_world_hint,
        Some(true)
    );
    assert!(mixed.output_schema.is_some());

    let echoed = call(client, "echo", json!({ "text": "hi", "repeat": 2 })).await;
    assert_eq!(echoed.is_error, Some(false));
    assert_eq!(text_of(&echoed), "hihi");

    let shapes = call(client, "shapes_mixed", json!({})).await;
    assert_eq!(shapes.is_error, Some(false));
    let content = serde_json::to_value(&shapes.content).unwrap();
    let kinds: Vec<&str> = content
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["text", "text", "image", "audio", "resource"]);
    assert_eq!(content[1]["text"], "{\"a\":1}");
    assert_eq!(content[2]["mimeType"], "image/png");
    assert_eq!(content[3]["mimeType"], "audio/wav");
    assert_eq!(content[4]["resource"]["mimeType"], "application/pdf");
    assert_eq!(shapes.structured_content, Some(json!({ "count": 3 })));

    // Each failure is a result for the model, flagged, with a clear message.
    let failures = [
        (
            "shapes_fail",
            json!({ "kind": "failed" }),
            "the disk is full",
        ),
        (
            "shapes_fail",
            json!({ "kind": "denied" }),
            "denied: not allowed",
        ),
        (
            "shapes_fail",
            json!({ "kind": "invalid" }),
            "invalid arguments",
        ),
        ("echo", json!({ "text": 5 }), "field /text"),
        ("echo", json!({ "text": "x", "extra": 1 }), "extra"),
        ("read_file", json!({ "path": "/etc/passwd" }), "read_file"),
        ("panic", json!({ "message": "boom" }), "trapped"),
        ("spin", json!({}), "time"),
        ("alloc", json!({ "mb": 512 }), "memory"),
    ];
    for (tool, arguments, expected) in failures {
        let result = call(client, tool, arguments.clone()).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} {arguments}: {result:?}"
        );
        let text = text_of(&result);
        assert!(
            text.contains(expected),
            "{tool} {arguments}: {text:?} should mention {expected:?}"
        );
    }
    // A tool that does not exist is the caller's protocol error.
    let err = patiently(
        "unknown tool",
        client.call_tool(CallToolRequestParams::new("no_such_tool")),
    )
    .await
    .unwrap_err();
    match err {
        ServiceError::McpError(error) => {
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
            assert!(error.message.contains("no_such_tool"), "{}", error.message);
            assert!(error.message.contains("echo"), "{}", error.message);
        }
        other => panic!("expected a protocol error, got {other}"),
    }
    // And the server goes on serving.
    assert_eq!(
        text_of(&call(client, "echo", json!({ "text": "after" })).await),
        "after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_the_tools_in_the_handshake_era() {
    let h = harness();
    let (client, _) = stdio_client(&h, ClientLifecycleMode::Initialize).await;
    let info = client.peer_info().unwrap();
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    assert_eq!(info.server_info.as_ref().unwrap().name, "agent-host");
    exercise_tools(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_the_tools_in_the_2026_era() {
    let h = harness();
    let (client, _) = stdio_client(&h, era_2026()).await;
    exercise_tools(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_the_tools_in_both_eras() {
    let h = harness();
    let served = serve_http(&h, McpConfig::default(), None).await;
    let url = served.http.url();
    let (legacy, _) = http_client(&url, ClientLifecycleMode::Initialize).await;
    assert!(
        legacy
            .peer_info()
            .unwrap()
            .protocol_version
            .has_initialize()
    );
    exercise_tools(&legacy).await;
    let (stateless, _) = http_client(&url, era_2026()).await;
    exercise_tools(&stateless).await;
    legacy.cancel().await.unwrap();
    stateless.cancel().await.unwrap();
    served.http.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_is_paged_with_a_cursor() {
    let h = harness();
    let config = McpConfig {
        page_size: 3,
        ..McpConfig::default()
    };
    let served = serve_http(&h, config, None).await;
    let (client, _) = http_client(&served.http.url(), era_2026()).await;
    let first = patiently("first page", client.list_tools(None))
        .await
        .unwrap();
    assert_eq!(first.tools.len(), 3);
    assert!(first.next_cursor.is_some());
    assert!(first.ttl_ms.is_some(), "2026 lists carry ttlMs");
    assert!(first.cache_scope.is_some(), "2026 lists carry cacheScope");
    let all = patiently("all pages", client.list_all_tools())
        .await
        .unwrap();
    assert_eq!(all.len(), served.runtime.tools().len());
    let names: Vec<String> = all.iter().map(|t| t.name.to_string()).collect();
    let expected: Vec<String> = served
        .runtime
        .tools()
        .into_iter()
        .map(|t| t.spec.name)
        .collect();
    assert_eq!(names, expected, "every tool once, in order");
    let err = patiently(
        "bad cursor",
        client.list_tools(Some(
            rmcp::model::PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
        )),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cursor"), "{err}");
    client.cancel().await.unwrap();
}

/// Replaces `versioned` with its v2 build and waits until a client heard.
async fn replace_versioned(h: &Harness) {
    let target = h.plugins_dir().join("versioned.wasm");
    let staged = h.plugins_dir().join(".versioned.wasm.new");
    std::fs::copy(test_plugin::versioned_v2(), &staged).unwrap();
    std::fs::rename(&staged, &target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_plugin_is_announced_in_both_eras_and_answers_at_once() {
    let h = harness();
    h.install(test_plugin::versioned());
    let served = serve_http(&h, McpConfig::default(), None).await;
    let url = served.http.url();
    let (legacy, observer) = http_client(&url, ClientLifecycleMode::Initialize).await;
    let (stateless, _) = http_client(&url, era_2026()).await;
    let mut subscription = patiently(
        "subscribe",
        stateless
            .peer()
            .listen(SubscriptionFilter::builder().tools_list_changed().build()),
    )
    .await
    .unwrap();
    assert_eq!(text_of(&call(&legacy, "version", json!({})).await), "v1");

    replace_versioned(&h).await;
    patiently("list_changed (handshake era)", observer.changed.notified()).await;
    let notification = patiently("list_changed (2026 subscription)", subscription.next())
        .await
        .unwrap()
        .expect("a notification on the subscription stream");
    assert!(
        matches!(
            notification,
            rmcp::model::ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
    assert_eq!(text_of(&call(&legacy, "version", json!({})).await), "v2");
    assert_eq!(text_of(&call(&stateless, "version", json!({})).await), "v2");

    // A broken update keeps v2 serving, and is not announced as a change.
    let before = observer.list_changes.load(Ordering::SeqCst);
    let staged = h.plugins_dir().join(".versioned.wasm.new");
    std::fs::write(&staged, b"\0asm broken").unwrap();
    std::fs::rename(&staged, h.plugins_dir().join("versioned.wasm")).unwrap();
    let mut events = served.runtime.subscribe();
    patiently("the broken update is refused", async {
        loop {
            if let Ok(agent_host_runtime::PluginEvent::Failed { .. }) = events.recv().await {
                break;
            }
        }
    })
    .await;
    assert_eq!(text_of(&call(&legacy, "version", json!({})).await), "v2");
    assert_eq!(observer.list_changes.load(Ordering::SeqCst), before);

    // A removed plugin leaves the list at once.
    std::fs::remove_file(h.plugins_dir().join("versioned.wasm")).unwrap();
    patiently("list_changed after removal", observer.changed.notified()).await;
    let tools = patiently("list", legacy.list_all_tools()).await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "version"));
    legacy.cancel().await.unwrap();
    stateless.cancel().await.unwrap();
}

/// Starts `shapes_wait`, waits for its first progress report, cancels it.
async fn start_and_cancel(client: &Client, observer: &Observer) {
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
        "shapes_wait",
    )));
    let handle = patiently(
        "send shapes_wait",
        client
            .peer()
            .send_request_with_option(request, PeerRequestOptions::no_options()),
    )
    .await
    .unwrap();
    patiently("first progress", observer.progressed.notified()).await;
    let progress = observer.progress.lock().unwrap().clone();
    assert_eq!(progress[0].progress, 1.0);
    assert_eq!(progress[0].message.as_deref(), Some("started"));
    assert_eq!(progress[0].progress_token, handle.progress_token);
    handle.cancel(Some("test".to_owned())).await.unwrap();
}

/// The cancelled guest stops and gives its instance slot back.
async fn slots_freed(runtime: &Runtime) {
    patiently("the cancelled call's instance slot is freed", async {
        while runtime.busy_instance_slots() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_client_and_cancel_stops_the_guest() {
    let h = harness();
    let served = serve_http(&h, McpConfig::default(), None).await;
    for lifecycle in [ClientLifecycleMode::Initialize, era_2026()] {
        let (client, observer) = http_client(&served.http.url(), lifecycle).await;
        start_and_cancel(&client, &observer).await;
        slots_freed(&served.runtime).await;
        assert_eq!(
            text_of(&call(&client, "echo", json!({ "text": "next" })).await),
            "next"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stdio_call_stops_and_the_next_one_works() {
    let h = harness();
    // One instance slot: were the cancelled guest still spinning, the next
    // call would wait for it and fail when its own timeout ran out.
    let config = h.tmp.path().join("one-slot.toml");
    std::fs::write(&config, "[sandbox]\nmax_instances = 1\n").unwrap();
    let config = config.to_str().unwrap().to_owned();
    let (client, observer) =
        stdio_client_with(&h, ClientLifecycleMode::Initialize, &["--config", &config]).await;
    start_and_cancel(&client, &observer).await;
    assert_eq!(
        text_of(&call(&client, "echo", json!({ "text": "next" })).await),
        "next"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_one_connection_and_many_clients_run_at_once() {
    let h = harness();
    let served = serve_http(&h, McpConfig::default(), None).await;
    let url = served.http.url();
    let (client, _) = http_client(&url, ClientLifecycleMode::Initialize).await;
    let client = Arc::new(client);
    let calls = (0..16).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            text_of(&call(&client, "echo", json!({ "text": format!("{i}") })).await)
        })
    });
    for (i, joined) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(joined.unwrap(), i.to_string());
    }
    let clients = (0..8).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            let lifecycle = if i % 2 == 0 {
                ClientLifecycleMode::Initialize
            } else {
                era_2026()
            };
            let (client, _) = http_client(&url, lifecycle).await;
            let text = text_of(&call(&client, "echo", json!({ "text": format!("c{i}") })).await);
            client.cancel().await.unwrap();
            text
        })
    });
    for (i, joined) in futures_util::future::join_all(clients)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(joined.unwrap(), format!("c{i}"));
    }
}

/// One raw HTTP/1.1 exchange: the status and the whole response.
fn raw_http(addr: SocketAddr, request: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    (status, response)
}

fn initialize_post(addr: SocketAddr, extra_headers: &str, body: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n",
        body.len()
    )
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_foreign_origins_hosts_and_huge_bodies_and_keeps_serving() {
    let h = harness();
    let config = McpConfig {
        max_request_kb: 64,
        ..McpConfig::default()
    };
    let served = serve_http(&h, config, None).await;
    let addr = served.http.local_addr();
    let ok = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        let send = |headers: &str, body: &str| {
            raw_http(addr, &initialize_post(addr, headers, body), body.as_bytes())
        };
        results.push(("loopback origin", send("Origin: http://localhost:3000\r\n", INITIALIZE), 200));
        results.push(("foreign origin", send("Origin: https://evil.example\r\n", INITIALIZE), 403));
        let rebinding = format!(
            "POST /mcp HTTP/1.1\r\nHost: evil.example:{}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            addr.port(),
            INITIALIZE.len()
        );
        results.push(("foreign host", raw_http(addr, &rebinding, INITIALIZE.as_bytes()), 403));
        let huge = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
            "x".repeat(200 * 1024)
        );
        results.push(("huge body", send("", &huge), 413));
        results.push(("not JSON", send("", "{not json"), 400));
        let batch = format!("[{INITIALIZE}]");
        results.push(("a batch", send("", &batch), 400));
        results
    })
    .await
    .unwrap();
    for (what, (status, response), expected) in ok {
        assert_eq!(status, expected, "{what}: {response}");
        if expected == 400 {
            assert!(
                response.contains("-32700") || response.contains("-32600"),
                "{what}: {response}"
            );
        }
    }
    // Still serving.
    let (client, _) = http_client(&served.http.url(), era_2026()).await;
    assert_eq!(
        text_of(&call(&client, "echo", json!({ "text": "alive" })).await),
        "alive"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_off_loopback_and_checked_when_set() {
    let h = harness();
    let runtime = h.runtime().await;
    let server = ToolServer::new(runtime, McpConfig::default());
    let refused = HttpServer::bind(
        server,
        HttpOptions {
            addr: "0.0.0.0:0".parse().unwrap(),
            token: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, ServeError::TokenRequired { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("--token-file"), "{refused}");

    let secret = "a-test-token-of-enough-length";
    let token = BearerToken::new(secret, "test").unwrap();
    let served = serve_http(&h, McpConfig::default(), Some(token)).await;
    let url = served.http.url();
    let addr = served.http.local_addr();
    let statuses = tokio::task::spawn_blocking(move || {
        let send = |headers: &str| {
            raw_http(
                addr,
                &initialize_post(addr, headers, INITIALIZE),
                INITIALIZE.as_bytes(),
            )
            .0
        };
        [
            send(""),
            send("Authorization: Bearer wrong-token-of-enough-length\r\n"),
            send(&format!("Authorization: Bearer {secret}\r\n")),
        ]
    })
    .await
    .unwrap();
    assert_eq!(statuses, [401, 401, 200]);
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    config.auth_header = Some(secret.to_owned());
    let (client, _) = http_client_with(config, era_2026()).await.unwrap();
    assert_eq!(
        text_of(&call(&client, "echo", json!({ "text": "authorized" })).await),
        "authorized"
    );
    client.cancel().await.unwrap();

    // The binary refuses before loading anything.
    let (code, _, stderr) = run_command(h.command().args(["mcp", "serve", "--http", "0.0.0.0:0"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("AGENT_HOST_MCP_TOKEN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_hooks_guard_mcp_calls_unless_switched_off() {
    let h = harness();
    h.install(example_plugin::redactor());
    let secret = "key sk-abcdefghijklmnopqrstuvwxyz0123";
    let served = serve_http(&h, McpConfig::default(), None).await;
    let (client, _) = http_client(&served.http.url(), era_2026()).await;
    let masked = text_of(&call(&client, "echo", json!({ "text": secret })).await);
    assert!(!masked.contains("sk-abcdefghijklmnop"), "{masked}");
    assert!(masked.contains("REDACTED"), "{masked}");
    client.cancel().await.unwrap();

    let h = harness();
    h.install(example_plugin::redactor());
    let unguarded = McpConfig {
        hooks: false,
        ..McpConfig::default()
    };
    let served = serve_http(&h, unguarded, None).await;
    let (client, _) = http_client(&served.http.url(), era_2026()).await;
    assert_eq!(
        text_of(&call(&client, "echo", json!({ "text": secret })).await),
        secret
    );
    client.cancel().await.unwrap();
}

#[test]
fn the_help_explains_both_transports() {
    let h = Harness::new();
    let (code, stdout, _) = run_command(h.command().args(["mcp", "serve", "--help"]));
    assert_eq!(code, 0);
    for needle in [
        "stdio",
        "--http",
        "/mcp",
        "--token-file",
        "AGENT_HOST_MCP_TOKEN",
        "list_changed",
    ] {
        assert!(
            stdout.contains(needle),
            "--help should mention {needle}:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_response_stream_of_a_2026_call_stops_the_guest() {
    let h = harness();
    let served = serve_http(&h, McpConfig::default(), None).await;
    let addr = served.http.local_addr();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": {},
        "progressToken": "p1",
    });
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "shapes_wait", "arguments": {}, "_meta": meta },
    })
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: shapes_wait\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let seen = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read the stream until the guest's progress report arrives: the
        // call is running in the guest now. Then hang up.
        while !String::from_utf8_lossy(&seen).contains("started") {
            let read = stream.read(&mut chunk).unwrap();
            assert!(
                read > 0,
                "the stream ended early: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&chunk[..read]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    })
    .await
    .unwrap();
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("notifications/progress"), "{seen}");
    slots_freed(&served.runtime).await;
    let (client, _) = http_client(&served.http.url(), era_2026()).await;
    assert_eq!(
        text_of(&call(&client, "echo", json!({ "text": "next" })).await),
        "next"
    );
    client.cancel().await.unwrap();
}
