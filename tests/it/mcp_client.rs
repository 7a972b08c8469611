//! MCP servers as tool sources (issue 15): our own `mcp serve` over stdio and HTTP, the reference server `@modelcontextprotocol/server-everything` from npm, and a misbehaving server (crash, hang, garbage, floods, a 100 MB answer, 10,000 tools); names, clashes, the persisted list, the agent loop with hooks, and the CLI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host_agent::{Agent, AgentConfig, Outcome, ToolCallError, ToolHost, ToolHosts};
use agent_host_llm::{FinishReason, Role};
use agent_host_mcp::client::{ClientOptions, Limits, ServerConfig};
use agent_host_mcp::{HttpOptions, HttpServer, McpConfig, McpTools, ToolServer};
use agent_host_runtime::runtime::{CallOptions, ProgressUpdate};
use agent_host_runtime::{ContentPart, Runtime};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::agent::{Step, StepModel, answer, call as model_call, finish, run};
use crate::support::{Harness, example_plugin, run_command, test_plugin, workspace_root};

const PATIENCE: Duration = Duration::from_secs(60);

async fn patiently<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

/// Waits until `check` holds (polling), or fails naming `what`.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    patiently(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

fn misbehaving(mode: &[&str]) -> ServerConfig {
    let script = workspace_root().join("tests/interop/misbehaving_mcp.py");
    let mut args = vec![script.display().to_string()];
    args.extend(mode.iter().map(|arg| (*arg).to_owned()));
    ServerConfig {
        command: Some("python3".into()),
        args,
        ..ServerConfig::default()
    }
}

/// The entry point `make npm-deps` installs.
fn everything_script() -> PathBuf {
    let script = workspace_root()
        .join("build/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "{} is missing: run `make npm-deps`",
        script.display()
    );
    script
}

fn everything() -> ServerConfig {
    ServerConfig {
        command: Some("node".into()),
        args: vec![everything_script().display().to_string(), "stdio".into()],
        ..ServerConfig::default()
    }
}

/// `agent-host mcp serve` over `plugins`, as a child on stdio (its own
/// data dir: a data dir belongs to one process).
fn our_stdio_server(h: &Harness) -> ServerConfig {
    ServerConfig {
        command: Some(env!("CARGO_BIN_EXE_agent-host").into()),
        args: vec![
            "--plugins".into(),
            h.plugins_dir().display().to_string(),
            "--data-dir".into(),
            h.tmp.path().join("server-data").display().to_string(),
            "mcp".into(),
            "serve".into(),
        ],
        ..ServerConfig::default()
    }
}

fn options(runtime: &Runtime) -> ClientOptions {
    ClientOptions {
        limits: Limits::from_runtime(runtime.config(), Some(runtime.store().clone())),
        output_limit: 1024 * 1024,
        runtime: Some(runtime.clone()),
    }
}

fn client(runtime: &Runtime, servers: Vec<(&str, ServerConfig)>) -> McpTools {
    let servers: BTreeMap<String, ServerConfig> = servers
        .into_iter()
        .map(|(name, config)| (name.to_owned(), config))
        .collect();
    McpTools::new(&servers, options(runtime)).unwrap()
}

async fn ready(tools: &McpTools) {
    patiently("servers ready", tools.wait_ready()).await;
}

fn names(tools: &McpTools) -> Vec<String> {
    tools
        .list_tools()
        .into_iter()
        .map(|spec| spec.name)
        .collect()
}

async fn call(tools: &McpTools, name: &str, args: Value) -> Result<String, ToolCallError> {
    patiently(name, tools.call_tool(name, &args, CallOptions::default()))
        .await
        .map(|output| output.to_text())
}

fn report<'a>(
    reports: &'a [agent_host_mcp::client::ServerReport],
    name: &str,
) -> &'a agent_host_mcp::client::ServerReport {
    reports.iter().find(|r| r.name == name).unwrap()
}

fn harness() -> Harness {
    let h = Harness::new();
    h.install(test_plugin::echo())
        .install(test_plugin::shapes())
        .install(test_plugin::versioned());
    h
}

/// Lists, calls and every kind of failure through our own server, the
/// same whichever transport and era carries them.
async fn exercise_our_server(tools: &McpTools, prefix: &str) {
    let listed = names(tools);
    for tool in ["echo", "shapes_mixed", "shapes_fail", "version"] {
        let name = format!("{prefix}__{tool}");
        assert!(listed.contains(&name), "{name} missing from {listed:?}");
    }
    let echo = format!("{prefix}__echo");
    let hints = tools.hints(&echo).unwrap();
    assert!(hints.read_only && hints.parallel_safe, "{hints:?}");
    assert_eq!(
        call(tools, &echo, json!({"text": "hi", "repeat": 2}))
            .await
            .unwrap(),
        "hihi"
    );
    let mixed = patiently(
        "mixed",
        tools.call_tool(
            &format!("{prefix}__shapes_mixed"),
            &json!({}),
            CallOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert!(
        matches!(&mixed.content[2], ContentPart::Binary { mime_type, .. } if mime_type == "image/png"),
        "{:?}",
        mixed.content
    );
    assert_eq!(mixed.structured, Some(json!({"count": 3})));
    // isError is the tool's error, for the model.
    let failed = call(
        tools,
        &format!("{prefix}__shapes_fail"),
        json!({"kind": "failed"}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&failed, ToolCallError::Tool(text) if text.contains("the disk is full")),
        "{failed:?}"
    );
    // Arguments are checked against the server's schema before sending.
    let invalid = call(tools, &echo, json!({"text": 5})).await.unwrap_err();
    assert!(
        matches!(&invalid, ToolCallError::Tool(text) if text.contains("invalid arguments") && text.contains("/text")),
        "{invalid:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_server_over_stdio_lists_calls_and_reports_errors() {
    let h = harness();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let tools = client(&runtime, vec![("ours", our_stdio_server(&h))]);
    ready(&tools).await;
    exercise_our_server(&tools, "ours").await;
    let reports = tools.reports();
    let ours = report(&reports, "ours");
    assert_eq!(ours.status, "ready");
    assert_eq!(ours.transport, "stdio");
    assert_eq!(ours.protocol.as_deref(), Some("2026-07-28"));
    tools.shut_down().await;
}

/// An in-process HTTP MCP server over `h`'s plugins, watching them.
async fn serve_http(
    h: &Harness,
) -> (
    Runtime,
    HttpServer,
    agent_host_runtime::watcher::PluginWatcher,
) {
    let mut config = h.config.clone();
    config.data_dir = h.tmp.path().join("http-server-data");
    // `shapes_wait` spins until cancelled: on a loaded machine the cancel
    // must not lose the race against a short deadline.
    config.sandbox.max_timeout_ms = 60_000;
    config.sandbox.default_timeout_ms = 60_000;
    let runtime = Runtime::new(config).unwrap();
    runtime.load_plugin_dirs().await;
    let watcher = runtime.watch().unwrap();
    let server = ToolServer::new(runtime.clone(), McpConfig::default());
    let http = HttpServer::bind(
        server,
        HttpOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: None,
        },
    )
    .await
    .unwrap();
    (runtime, http, watcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_server_over_http_in_both_eras_with_list_changed_and_cancel() {
    let h = harness();
    let (served, http, _watcher) = serve_http(&h).await;
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let url = |protocol| ServerConfig {
        url: Some(http.url()),
        protocol,
        ..ServerConfig::default()
    };
    use agent_host_mcp::client::config::ProtocolChoice;
    let tools = client(
        &runtime,
        vec![
            ("new", url(ProtocolChoice::Auto)),
            ("old", url(ProtocolChoice::V2025_11_25)),
        ],
    );
    ready(&tools).await;
    let reports = tools.reports();
    assert_eq!(
        report(&reports, "new").protocol.as_deref(),
        Some("2026-07-28")
    );
    assert_eq!(
        report(&reports, "old").protocol.as_deref(),
        Some("2025-11-25")
    );
    assert_eq!(report(&reports, "new").transport, "http");
    exercise_our_server(&tools, "new").await;
    exercise_our_server(&tools, "old").await;
    assert_eq!(call(&tools, "new__version", json!({})).await.unwrap(), "v1");

    // A swapped plugin reaches both sessions through list_changed (the
    // 2026 one through its subscription) and answers as v2.
    let staged = h.plugins_dir().join(".versioned.wasm.new");
    std::fs::copy(test_plugin::versioned_v2(), &staged).unwrap();
    std::fs::rename(&staged, h.plugins_dir().join("versioned.wasm")).unwrap();
    for prefix in ["new", "old"] {
        let name = format!("{prefix}__version");
        patiently(&format!("{name} answers v2"), async {
            loop {
                if call(&tools, &name, json!({})).await.as_deref() == Ok("v2") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    // A removed plugin's tool leaves the list without a restart.
    std::fs::remove_file(h.plugins_dir().join("versioned.wasm")).unwrap();
    until("version leaves both lists", || {
        let listed = names(&tools);
        !listed.contains(&"new__version".to_owned()) && !listed.contains(&"old__version".to_owned())
    })
    .await;

    // Progress reaches the caller; cancelling stops the guest on the server.
    for prefix in ["new", "old"] {
        let progress: Arc<Mutex<Vec<ProgressUpdate>>> = Arc::default();
        let cancel = CancellationToken::new();
        let sink = {
            let (progress, cancel) = (progress.clone(), cancel.clone());
            Arc::new(move |update: &ProgressUpdate| {
                progress.lock().unwrap().push(update.clone());
                cancel.cancel();
            })
        };
        let options = CallOptions {
            progress: Some(sink),
            cancel: Some(cancel.clone()),
            ..CallOptions::default()
        };
        let name = format!("{prefix}__shapes_wait");
        let result = patiently(&name, tools.call_tool(&name, &json!({}), options)).await;
        assert_eq!(result.unwrap_err(), ToolCallError::Cancelled);
        let seen = progress.lock().unwrap().clone();
        assert_eq!(seen[0].message.as_deref(), Some("started"), "{seen:?}");
        assert_eq!(seen[0].plugin, format!("mcp:{prefix}"));
        assert_eq!(seen[0].tool, name);
        until("the cancelled guest frees its slot", || {
            served.busy_instance_slots() == 0
        })
        .await;
    }
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_from_npm_answers_with_text_numbers_images_and_progress() {
    let h = Harness::new();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let tools = client(&runtime, vec![("everything", everything())]);
    ready(&tools).await;
    let listed = names(&tools);
    for tool in [
        "everything__echo",
        "everything__get-sum",
        "everything__trigger-long-running-operation",
        "everything__get-tiny-image",
    ] {
        assert!(
            listed.contains(&tool.to_owned()),
            "{tool} missing: {listed:?}"
        );
    }
    assert_eq!(
        call(&tools, "everything__echo", json!({"message": "hi"}))
            .await
            .unwrap(),
        "Echo: hi"
    );
    let sum = call(&tools, "everything__get-sum", json!({"a": 2, "b": 3.5}))
        .await
        .unwrap();
    assert!(sum.contains("5.5"), "{sum}");
    let invalid = call(&tools, "everything__get-sum", json!({"a": "two"}))
        .await
        .unwrap_err();
    assert!(matches!(invalid, ToolCallError::Tool(_)), "{invalid:?}");
    let image = patiently(
        "image",
        tools.call_tool(
            "everything__get-tiny-image",
            &json!({}),
            CallOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert!(
        image.content.iter().any(|part| matches!(part,
            ContentPart::Binary { mime_type, size, .. } if mime_type == "image/png" && *size > 100)),
        "{:?}",
        image.content
    );
    // The child gets only the environment it is given.
    let env = call(&tools, "everything__get-env", json!({}))
        .await
        .unwrap();
    let env: Value = serde_json::from_str(&env).unwrap();
    assert!(
        env.as_object().unwrap().is_empty(),
        "the child saw the host's environment: {env}"
    );
    let progress: Arc<Mutex<Vec<ProgressUpdate>>> = Arc::default();
    let sink = {
        let progress = progress.clone();
        Arc::new(move |update: &ProgressUpdate| progress.lock().unwrap().push(update.clone()))
    };
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    let done = patiently(
        "long-running",
        tools.call_tool(
            "everything__trigger-long-running-operation",
            &json!({"duration": 1, "steps": 3}),
            options,
        ),
    )
    .await
    .unwrap();
    assert!(done.to_text().contains("completed"), "{}", done.to_text());
    let seen = progress.lock().unwrap().clone();
    let done: Vec<u64> = seen.iter().map(|update| update.done).collect();
    // The last report and the result leave the server together; the
    // result may win the race, so the last report is not required.
    assert!(done.len() >= 2 && done[..2] == [1, 2], "{seen:?}");
    assert!(done.windows(2).all(|pair| pair[0] < pair[1]), "{seen:?}");
    assert_eq!(seen[0].total, Some(3));
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_server_fails_its_own_calls_and_nothing_else() {
    let h = Harness::new();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let bad = ServerConfig {
        max_message_kb: 4096,
        ..misbehaving(&["normal"])
    };
    // The same server with a short deadline, for the calls that never end
    // (the other calls keep the default one: a loaded machine is slow).
    let deaf = ServerConfig {
        call_timeout_ms: 1_000,
        prefix: Some("bad".into()),
        tools: agent_host_mcp::client::config::ToolFilter {
            allow: vec!["hang".into(), "garbage".into()],
            deny: Vec::new(),
        },
        ..misbehaving(&["normal"])
    };
    let bad = ServerConfig {
        tools: agent_host_mcp::client::config::ToolFilter {
            allow: Vec::new(),
            deny: vec!["hang".into(), "garbage".into()],
        },
        ..bad
    };
    let good = misbehaving(&["normal"]);
    let tools = client(&runtime, vec![("bad", bad), ("deaf", deaf), ("good", good)]);
    ready(&tools).await;
    assert_eq!(call(&tools, "bad__ok", json!({})).await.unwrap(), "ok");

    let failed = |result: Result<String, ToolCallError>, needles: &[&str]| {
        let err = result.unwrap_err();
        let ToolCallError::Failed(text) = &err else {
            panic!("expected a failed call, got {err:?}");
        };
        for needle in needles {
            assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        }
        assert!(
            text.contains("'bad'") || text.contains("'deaf'"),
            "{text:?} should name the server"
        );
    };
    failed(
        call(&tools, "bad__hang", json!({})).await,
        &["did not answer", "call_timeout_ms"],
    );
    failed(
        call(&tools, "bad__garbage", json!({})).await,
        &["did not answer"],
    );
    failed(
        call(&tools, "bad__not_result", json!({})).await,
        &["not a CallToolResult"],
    );
    // 100 MB: dropped at the message cap without buffering it, and the
    // call says so at once rather than at its deadline.
    failed(
        call(&tools, "bad__huge", json!({})).await,
        &["max_message_kb"],
    );
    // Under the message cap but over the output cap (1 MiB here).
    failed(
        call(&tools, "bad__huge", json!({"bytes": 2_000_000})).await,
        &["output limit"],
    );
    assert_eq!(
        call(&tools, "bad__flood", json!({})).await.unwrap(),
        "flooded"
    );
    // A crash mid-call names the server and its last words; the next use
    // restarts it.
    failed(call(&tools, "bad__crash", json!({})).await, &["crashing"]);
    let reports = tools.reports();
    assert_eq!(report(&reports, "bad").status, "failed");
    assert!(
        report(&reports, "bad")
            .last_error
            .as_deref()
            .unwrap()
            .contains("crashing")
    );
    let listed = tools.list_tools();
    let ok = listed.iter().find(|spec| spec.name == "bad__ok").unwrap();
    assert!(
        ok.description.starts_with("[unavailable: MCP server 'bad'")
            || report(&tools.reports(), "bad").status != "failed",
        "{}",
        ok.description
    );
    assert_eq!(call(&tools, "bad__ok", json!({})).await.unwrap(), "ok");
    assert_eq!(report(&tools.reports(), "bad").status, "ready");
    // The other server never noticed.
    assert_eq!(call(&tools, "good__ok", json!({})).await.unwrap(), "ok");
    assert_eq!(
        call(&tools, "good__slow", json!({"ms": 10})).await.unwrap(),
        "slept"
    );
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_is_cancelled_on_a_stdio_server_too() {
    let h = Harness::new();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let tools = client(&runtime, vec![("srv", misbehaving(&["cancellable"]))]);
    ready(&tools).await;
    let cancel = CancellationToken::new();
    let options = CallOptions {
        cancel: Some(cancel.clone()),
        ..CallOptions::default()
    };
    let no_args = json!({});
    let hanging = tools.call_tool("srv__hang", &no_args, options);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(hanging, stop);
    assert_eq!(result.unwrap_err(), ToolCallError::Cancelled);
    patiently("the server hears of the cancel", async {
        loop {
            let ids = call(&tools, "srv__cancelled_ids", json!({})).await.unwrap();
            let ids: Vec<Value> = serde_json::from_str(&ids).unwrap();
            if !ids.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_cannot_start_are_reported_by_name_and_the_rest_work() {
    let h = Harness::new();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let quick = |config: ServerConfig| ServerConfig {
        connect_timeout_ms: 500,
        start_timeout_ms: 1_500,
        ..config
    };
    let tools = client(
        &runtime,
        vec![
            ("silent", quick(misbehaving(&["no-init"]))),
            ("babbling", quick(misbehaving(&["garbage-init"]))),
            ("quitter", quick(misbehaving(&["exit-at-start"]))),
            (
                "missing",
                quick(ServerConfig {
                    command: Some("no-such-mcp-server-program".into()),
                    ..ServerConfig::default()
                }),
            ),
            (
                "off",
                ServerConfig {
                    enabled: false,
                    ..misbehaving(&["normal"])
                },
            ),
            ("fine", misbehaving(&["normal"])),
        ],
    );
    ready(&tools).await;
    assert_eq!(call(&tools, "fine__ok", json!({})).await.unwrap(), "ok");
    // The silent ones give up at their start timeout.
    until("every broken server has failed", || {
        tools
            .reports()
            .iter()
            .all(|r| r.name == "fine" || r.name == "off" || r.status == "failed")
    })
    .await;
    let reports = tools.reports();
    let reason = |name: &str| report(&reports, name).reason.clone().unwrap();
    assert!(
        reason("silent").contains("start_timeout_ms"),
        "{}",
        reason("silent")
    );
    assert!(
        reason("babbling").contains("start_timeout_ms") || reason("babbling").contains("handshake"),
        "{}",
        reason("babbling")
    );
    assert!(
        reason("quitter").contains("cannot start: missing config"),
        "{}",
        reason("quitter")
    );
    assert!(
        reason("missing").contains("no-such-mcp-server-program")
            && reason("missing").contains("PATH"),
        "{}",
        reason("missing")
    );
    assert_eq!(report(&reports, "off").status, "disabled");
    let err = call(&tools, "fine__nope", json!({})).await.unwrap_err();
    assert!(matches!(err, ToolCallError::Tool(_)));
    assert_eq!(call(&tools, "fine__ok", json!({})).await.unwrap(), "ok");
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_does_not_hold_up_the_first_turn_and_its_tools_join_later() {
    let h = Harness::new();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let script = workspace_root().join("tests/interop/misbehaving_mcp.py");
    let slow = ServerConfig {
        command: Some("sh".into()),
        args: vec![
            "-c".into(),
            format!("sleep 1; exec python3 {} normal", script.display()),
        ],
        env: BTreeMap::from([("PATH".to_owned(), "${PATH}".to_owned())]),
        connect_timeout_ms: 100,
        ..ServerConfig::default()
    };
    let tools = client(
        &runtime,
        vec![("slow", slow), ("quick", misbehaving(&["normal"]))],
    );
    ready(&tools).await;
    // The first turn goes ahead with the quick server's tools...
    let first = names(&tools);
    assert!(first.contains(&"quick__ok".to_owned()), "{first:?}");
    assert!(!first.iter().any(|n| n.starts_with("slow__")), "{first:?}");
    assert_eq!(report(&tools.reports(), "slow").status, "starting");
    // ...and the slow one's join once it is up, with no one asking.
    until("the slow server's tools join", || {
        names(&tools).contains(&"slow__ok".to_owned())
    })
    .await;
    assert_eq!(call(&tools, "slow__ok", json!({})).await.unwrap(), "ok");
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tools_are_paged_and_capped() {
    let h = Harness::new();
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let tools = client(
        &runtime,
        vec![(
            "many",
            ServerConfig {
                max_tools: 2_500,
                ..misbehaving(&["many-tools", "10000"])
            },
        )],
    );
    ready(&tools).await;
    let listed = names(&tools);
    assert_eq!(listed.len(), 2_500);
    assert!(listed.contains(&"many__t02499".to_owned()));
    let reports = tools.reports();
    assert!(
        report(&reports, "many")
            .problems
            .iter()
            .any(|p| p.contains("max_tools")),
        "{:?}",
        report(&reports, "many").problems
    );
    assert_eq!(
        call(&tools, "many__t00042", json!({})).await.unwrap(),
        "t00042"
    );
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_filtered_prefixed_and_clashes_refused_naming_both() {
    let h = Harness::new();
    h.install(test_plugin::echo());
    let runtime = h.runtime().await;
    let filtered = ServerConfig {
        prefix: Some("m".into()),
        tools: agent_host_mcp::client::config::ToolFilter {
            allow: vec!["ok".into(), "s*".into()],
            deny: vec!["slow".into()],
        },
        ..misbehaving(&["normal"])
    };
    let twin = |prefix: &str| ServerConfig {
        prefix: Some(prefix.into()),
        ..misbehaving(&["normal"])
    };
    let plugin_shadow = ServerConfig {
        prefix: Some(String::new()),
        ..misbehaving(&["normal"])
    };
    let tools = client(
        &runtime,
        vec![
            ("filtered", filtered),
            ("a", twin("same")),
            ("b", twin("same")),
            ("shadow", plugin_shadow),
        ],
    );
    ready(&tools).await;
    let listed = names(&tools);
    assert!(listed.contains(&"m__ok".to_owned()), "{listed:?}");
    assert!(
        !listed.iter().any(|n| n == "m__slow" || n == "m__crash"),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|n| n.starts_with("same__")),
        "{listed:?}"
    );
    let reports = tools.reports();
    let clash = report(&reports, "a").problems.join("\n");
    assert!(
        clash.contains("same__ok") && clash.contains("mcp:b"),
        "{clash}"
    );
    assert!(report(&reports, "b").problems.join("\n").contains("mcp:a"));
    // `ok` without a prefix is fine; the plugin's `echo` is not the
    // server's to take... the misbehaving server has no echo, so check
    // the plugin side through the combined host instead.
    assert!(listed.contains(&"ok".to_owned()), "{listed:?}");
    let both = ToolHosts::new(vec![Arc::new(runtime.clone()), Arc::new(tools.clone())]);
    let all: Vec<String> = both.list_tools().into_iter().map(|t| t.name).collect();
    assert_eq!(all.iter().filter(|n| *n == "echo").count(), 1);
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_tool_wins_its_name_and_the_mcp_tool_is_refused_naming_the_plugin() {
    let h = harness();
    let runtime = h.runtime().await;
    // Our own server serves `echo` too; without a prefix it would take the
    // plugin's name.
    let tools = client(
        &runtime,
        vec![(
            "ours",
            ServerConfig {
                prefix: Some(String::new()),
                ..our_stdio_server(&h)
            },
        )],
    );
    ready(&tools).await;
    assert!(!names(&tools).contains(&"echo".to_owned()));
    let reports = tools.reports();
    let problems = report(&reports, "ours").problems.join("\n");
    assert!(
        problems.contains("'echo'") && problems.contains("plugin 'echo'"),
        "{problems}"
    );
    tools.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_calls_mcp_tools_through_its_hooks() {
    let h = Harness::new();
    h.install(example_plugin::redactor());
    let runtime = h.runtime().await;
    let tools = client(&runtime, vec![("everything", everything())]);
    ready(&tools).await;
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
    let model = StepModel::new(vec![
        Step::Events(vec![
            model_call("c1", "everything__echo", json!({"message": secret})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]);
    let both: Arc<dyn ToolHost> = Arc::new(ToolHosts::new(vec![
        Arc::new(runtime.clone()),
        Arc::new(tools.clone()),
    ]));
    let agent = Agent::new(both, model.clone(), AgentConfig::default()).with_extensions(runtime);
    let ran = run(&agent, "echo my key").await;
    assert!(
        matches!(ran.outcome, Outcome::Finished { .. }),
        "{:?}",
        ran.outcome
    );
    let result = ran
        .history
        .iter()
        .find(|m| m.role == Role::Tool)
        .expect("a tool result");
    let text = serde_json::to_string(result).unwrap();
    assert!(text.contains("Echo: "), "{text}");
    assert!(!text.contains(secret), "the redactor did not run: {text}");
    // The model was offered the MCP tool beside the plugins'.
    let offered: Vec<String> = model.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(
        offered.contains(&"everything__echo".to_owned()),
        "{offered:?}"
    );
    tools.shut_down().await;
}

/// A config file for the CLI tests.
fn config_file(h: &Harness, body: &str) -> PathBuf {
    let path = h.tmp.path().join("agent-host.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn the_cli_lists_servers_and_tools_and_calls_them_from_the_kept_list() {
    let h = Harness::new();
    h.install(test_plugin::echo());
    // A copy of the script the test can take away, to show that a second
    // listing uses the kept list and starts nothing.
    let script = h.tmp.path().join("server.py");
    std::fs::copy(
        workspace_root().join("tests/interop/misbehaving_mcp.py"),
        &script,
    )
    .unwrap();
    let config = config_file(
        &h,
        &format!(
            "[mcp.servers.bad]\ncommand = \"python3\"\nargs = [{:?}, \"normal\"]\n\n[mcp.servers.gone]\ncommand = \"no-such-mcp-server-program\"\nconnect_timeout_ms = 200\n",
            script.display().to_string()
        ),
    );
    let cli = |args: &[&str]| {
        let mut command = h.command();
        command.arg("--config").arg(&config).args(args);
        run_command(&mut command)
    };
    let (code, stdout, stderr) = cli(&["mcp", "list", "--json"]);
    assert_eq!(code, 1, "a failed server makes `mcp list` exit 1: {stderr}");
    let reports: Value = serde_json::from_str(&stdout).unwrap();
    let by_name = |name: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("bad")["status"], "ready");
    assert_eq!(by_name("bad")["protocol"], "2025-11-25");
    assert_eq!(by_name("bad")["tools"], 8);
    assert_eq!(by_name("gone")["status"], "failed");
    assert!(
        by_name("gone")["reason"]
            .as_str()
            .unwrap()
            .contains("no-such-mcp-server-program")
    );

    let (code, stdout, stderr) = cli(&["mcp", "list"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("SERVER") && stdout.contains("ready"),
        "{stdout}{stderr}"
    );

    let (code, stdout, _) = cli(&["tools", "call", "bad__ok"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "ok");
    let (code, stdout, _) = cli(&["tools", "call", "bad__not_result", "--json"]);
    assert_eq!(code, 1);
    let failed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["source"], "mcp:bad");

    // Now the server cannot start at all, yet listing shows its tools
    // from the kept list, saying so.
    std::fs::remove_file(&script).unwrap();
    let (code, stdout, stderr) = cli(&["tools", "list"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("bad__ok") && stdout.contains("mcp:bad"),
        "{stdout}"
    );
    assert!(stdout.contains("echo"), "{stdout}");
    assert!(
        stdout.contains("mcp:bad: the tool list kept from"),
        "{stdout}"
    );
    let (_, stdout, _) = cli(&["tools", "list", "--json"]);
    let rows: Value = serde_json::from_str(&stdout).unwrap();
    let sources: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&"plugin") && sources.contains(&"mcp:bad"),
        "{sources:?}"
    );
    let (_, stdout, _) = cli(&["tools", "describe", "bad__slow"]);
    assert!(stdout.contains("source: mcp:bad"), "{stdout}");
    // `run` offers the MCP tools to the model (the kept list) and calls
    // them through the restarted server: put the script back.
    std::fs::copy(
        workspace_root().join("tests/interop/misbehaving_mcp.py"),
        &script,
    )
    .unwrap();
    let model_script = h.tmp.path().join("script.json");
    std::fs::write(
        &model_script,
        json!({"turns": [
            {"tool_calls": [{"name": "bad__ok"}]},
            {"say": "the server said ok", "when_result_contains": "ok"}
        ]})
        .to_string(),
    )
    .unwrap();
    let mut command = h.command();
    command
        .arg("--config")
        .arg(&config)
        .args(["run", "--provider", "scripted", "--script"]);
    command
        .arg(&model_script)
        .args(["--json", "call the server"]);
    let (code, stdout, stderr) = run_command(&mut command);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let finished: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["type"] == "tool_call_finished")
        .collect();
    assert_eq!(finished.len(), 1, "{stdout}");
    assert_eq!(finished[0]["name"], "bad__ok");
    assert_eq!(finished[0]["ok"], true, "{stdout}");
    std::fs::remove_file(&script).unwrap();

    // --refresh asks the servers: the vanished script is reported.
    let (_, stdout, _) = cli(&["tools", "list", "--refresh"]);
    assert!(stdout.contains("(mcp:bad:"), "{stdout}");
}

#[test]
fn a_bad_server_entry_is_refused_before_anything_starts() {
    let h = Harness::new();
    let config = config_file(
        &h,
        "[mcp.servers.both]\ncommand = \"x\"\nurl = \"http://127.0.0.1:1/mcp\"\n",
    );
    let mut command = h.command();
    command.arg("--config").arg(&config).args(["tools", "list"]);
    let (code, _, stderr) = run_command(&mut command);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("mcp.servers.both") && stderr.contains("not both"),
        "{stderr}"
    );
    let config = config_file(&h, "[mcp.servers.typo]\ncomand = \"x\"\n");
    let mut command = h.command();
    command.arg("--config").arg(&config).args(["tools", "list"]);
    let (code, _, stderr) = run_command(&mut command);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("comand"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_lists_mcp_tools_and_its_turns_call_them() {
    use agent_host_agent::sessions::{LiveSessions, Sessions, WriterConfig};
    use agent_host_server::{AppState, Models, Server, ServerConfig as HttpConfig};
    let h = Harness::new();
    h.install(test_plugin::echo());
    let runtime = h.runtime().await;
    let tools = client(&runtime, vec![("bad", misbehaving(&["normal"]))]);
    ready(&tools).await;
    let model = StepModel::new(vec![
        Step::Events(vec![
            model_call("c1", "bad__ok", json!({})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("the server said ok"),
    ]);
    let store = Arc::new(Sessions::open(runtime.store(), WriterConfig::default()));
    let live = LiveSessions::new(store.clone(), 16, Duration::from_secs(600));
    let both: Arc<dyn ToolHost> = Arc::new(ToolHosts::new(vec![
        Arc::new(runtime.clone()),
        Arc::new(tools.clone()),
    ]));
    let state = AppState::new(
        runtime.clone(),
        store,
        live,
        Models::new(model.clone()),
        AgentConfig::default(),
        HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..HttpConfig::default()
        },
    )
    .with_tools(both);
    let server = Server::bind(state, None).await.unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let read = |response: reqwest::Response| async move {
        serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap()
    };
    let post = |path: String, body: Value| {
        http.post(url(&path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let listed = read(http.get(url("/v1/tools")).send().await.unwrap()).await;
    let rows = listed["tools"].as_array().unwrap();
    let ok = rows
        .iter()
        .find(|t| t["name"] == "bad__ok")
        .expect("bad__ok listed");
    assert_eq!(ok["source"], "mcp:bad");
    let echo = rows
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo listed");
    assert_eq!(echo["plugin"], "echo");
    let created = read(
        post("/v1/sessions".into(), json!({ "title": "t" }))
            .await
            .unwrap(),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let body = read(
        post(
            format!("/v1/sessions/{id}/messages"),
            json!({ "content": "call the server" }),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(body["outcome"], "finished", "{body}");
    assert_eq!(body["tool_calls"][0]["name"], "bad__ok", "{body}");
    assert_eq!(body["tool_calls"][0]["ok"], true, "{body}");
    server.shutdown(Duration::from_secs(2)).await.unwrap();
    tools.shut_down().await;
}
