//! MCP servers as tool sources (issue 15), side by side in one run: a call through the session kept open against a session opened per call (the anti-pattern), over stdio (our own `agent-host mcp serve`, the real binary) and HTTP; and one agent turn with an MCP tool against the same turn with the plugin tool.
//!
//! `cargo bench -p agent-host --bench mcp_client` (MCP_CLIENT_BENCH_CALLS,
//! MCP_CLIENT_BENCH_FRESH and MCP_CLIENT_BENCH_ROUNDS change the sizes).
//! Modes take turns round by round, so a slow patch of the machine hits
//! them all alike.

mod support;
use support::{median, micros, optimized, sequential, setting};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_host_agent::{Agent, AgentConfig, AgentEvent, ToolHost, ToolHosts};
use agent_host_llm::scripted::{Script, ScriptToolCall, ScriptTurn, ScriptedProvider};
use agent_host_mcp::client::{ClientOptions, Limits, ServerConfig};
use agent_host_mcp::{HttpOptions, HttpServer, McpConfig, McpTools, ToolServer};
use agent_host_runtime::{CallOptions, Runtime, RuntimeConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn main() {
    support::block_on(run());
}

fn options(runtime: &Runtime) -> ClientOptions {
    ClientOptions {
        limits: Limits::from_runtime(runtime.config(), None),
        output_limit: 1024 * 1024,
        runtime: None,
    }
}

fn tools_of(runtime: &Runtime, name: &str, config: &ServerConfig) -> McpTools {
    let servers = BTreeMap::from([(name.to_owned(), config.clone())]);
    McpTools::new(&servers, options(runtime)).expect("a valid server entry")
}

async fn mcp_echo(tools: &McpTools, name: &str) {
    let output = tools
        .call_tool(name, &json!({ "text": "hi" }), CallOptions::default())
        .await
        .expect("echo answers");
    assert_eq!(output.to_text(), "hi");
}

/// The anti-pattern: a session opened (spawn or handshake, tool list) for
/// one call and closed after it.
async fn per_call_session(runtime: &Runtime, server: &str, config: &ServerConfig) {
    let tools = tools_of(runtime, server, config);
    tools.wait_ready().await;
    mcp_echo(&tools, &format!("{server}__echo")).await;
    tools.shut_down().await;
}

fn turn_script(tool: &str) -> Script {
    Script {
        turns: vec![
            ScriptTurn {
                say: String::new(),
                tool_calls: vec![ScriptToolCall {
                    name: tool.to_owned(),
                    arguments: json!({ "text": "hi" }),
                }],
                when_result_contains: None,
            },
            ScriptTurn {
                say: "done".to_owned(),
                tool_calls: Vec::new(),
                when_result_contains: Some("hi".to_owned()),
            },
        ],
    }
}

/// One user message: the model asks for `tool`, gets the result, answers.
async fn agent_turn(agent: &Agent) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut history = Vec::new();
    let outcome = agent
        .run(
            &mut history,
            "echo hi".to_owned(),
            &sender,
            &CancellationToken::new(),
            None,
        )
        .await;
    drop(sender);
    let mut ok = false;
    while let Ok(event) = receiver.try_recv() {
        if let AgentEvent::ToolCallFinished { ok: done, .. } = event {
            ok = done;
        }
    }
    assert!(ok, "the tool call failed: {outcome:?}");
}

async fn run() {
    let calls = setting("MCP_CLIENT_BENCH_CALLS", 2000);
    let fresh = setting("MCP_CLIENT_BENCH_FRESH", 20);
    let rounds = setting("MCP_CLIENT_BENCH_ROUNDS", 5);
    let tmp = tempfile::tempdir().expect("a temp dir");
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).expect("the plugin dir");
    let (wasm, manifest) = agent_host_test_artifacts::test_plugins::ECHO.files();
    std::fs::copy(wasm, plugins.join("echo.wasm")).expect("copy echo.wasm");
    std::fs::copy(manifest, plugins.join("echo.toml")).expect("copy echo.toml");

    let runtime = Runtime::new(optimized(RuntimeConfig::new(
        vec![plugins.clone()],
        tmp.path().join("data"),
    )))
    .expect("a runtime");
    runtime.load_plugin_dirs().await;
    // The HTTP server is in process (its own runtime and data dir).
    let served = Runtime::new(optimized(RuntimeConfig::new(
        vec![plugins.clone()],
        tmp.path().join("served-data"),
    )))
    .expect("the served runtime");
    served.load_plugin_dirs().await;
    let http = HttpServer::bind(
        ToolServer::new(served, McpConfig::default()),
        HttpOptions {
            addr: "127.0.0.1:0".parse().expect("an address"),
            token: None,
        },
    )
    .await
    .expect("the HTTP server");

    // Our own server, the real binary; a data dir belongs to one process,
    // so the kept session and the per-call ones each have theirs (the
    // per-call ones run one after another).
    let stdio_in = |data: &str| ServerConfig {
        command: Some(env!("CARGO_BIN_EXE_agent-host").to_owned()),
        args: vec![
            "--plugins".into(),
            plugins.display().to_string(),
            "--data-dir".into(),
            tmp.path().join(data).display().to_string(),
            "mcp".into(),
            "serve".into(),
        ],
        ..ServerConfig::default()
    };
    let stdio = stdio_in("stdio-data");
    let stdio_fresh = stdio_in("fresh-stdio-data");
    let over_http = ServerConfig {
        url: Some(http.url()),
        ..ServerConfig::default()
    };
    let kept_stdio = tools_of(&runtime, "stdio", &stdio);
    let kept_http = tools_of(&runtime, "http", &over_http);
    kept_stdio.wait_ready().await;
    kept_http.wait_ready().await;

    let plugin_agent = Agent::new(
        Arc::new(runtime.clone()),
        Arc::new(ScriptedProvider::new(turn_script("echo"))),
        AgentConfig::default(),
    );
    let both: Arc<dyn ToolHost> = Arc::new(ToolHosts::new(vec![
        Arc::new(runtime.clone()),
        Arc::new(kept_stdio.clone()),
    ]));
    let mcp_agent = Agent::new(
        both,
        Arc::new(ScriptedProvider::new(turn_script("stdio__echo"))),
        AgentConfig::default(),
    );

    // Warm-up: compiled component, pools, connections, the data dirs.
    for _ in 0..100 {
        mcp_echo(&kept_stdio, "stdio__echo").await;
        mcp_echo(&kept_http, "http__echo").await;
        agent_turn(&plugin_agent).await;
        agent_turn(&mcp_agent).await;
    }
    per_call_session(&runtime, "stdio", &stdio_fresh).await;
    per_call_session(&runtime, "http", &over_http).await;

    let names = [
        "stdio: session kept open",
        "stdio: session per call (spawn + handshake)",
        "HTTP: session kept open",
        "HTTP: session per call (handshake)",
        "agent turn, plugin tool (echo)",
        "agent turn, MCP tool (stdio__echo)",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        samples[0].extend(sequential(calls, || mcp_echo(&kept_stdio, "stdio__echo")).await);
        samples[1]
            .extend(sequential(fresh, || per_call_session(&runtime, "stdio", &stdio_fresh)).await);
        samples[2].extend(sequential(calls, || mcp_echo(&kept_http, "http__echo")).await);
        samples[3]
            .extend(sequential(fresh * 5, || per_call_session(&runtime, "http", &over_http)).await);
        samples[4].extend(sequential(calls, || agent_turn(&plugin_agent)).await);
        samples[5].extend(sequential(calls, || agent_turn(&mcp_agent)).await);
    }
    let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
    println!(
        "echo {{\"text\": \"hi\"}}; {calls} calls per round kept open, {fresh} (stdio) / {} (HTTP) per round with a fresh session, {rounds} rounds",
        fresh * 5
    );
    println!("{:46} {:>12} {:>10}", "path", "median us", "calls/s");
    for (name, median) in names.iter().zip(&medians) {
        println!(
            "{name:46} {:>12.1} {:>10.0}",
            micros(*median),
            1.0 / median.as_secs_f64()
        );
    }
    println!(
        "kept open vs per call: stdio {:.0}x, HTTP {:.0}x",
        medians[1].as_secs_f64() / medians[0].as_secs_f64(),
        medians[3].as_secs_f64() / medians[2].as_secs_f64()
    );
    println!(
        "agent turn with the MCP tool: {:.2}x the plugin tool's (+{:.1} us)",
        medians[5].as_secs_f64() / medians[4].as_secs_f64(),
        micros(medians[5]) - micros(medians[4])
    );
    kept_stdio.shut_down().await;
    kept_http.shut_down().await;
}
