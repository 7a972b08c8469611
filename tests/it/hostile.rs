//! Hostile plugins: every escape attempt and resource attack is contained, and the next call works.

use agent_host_runtime::config::{DirGrant, Grant, Tiering};
use agent_host_runtime::manifest::Access;
use agent_host_runtime::{CallError, CallOptions, FailureKind, Runtime, Tier, ToolError};
use serde_json::json;

use crate::support::{Harness, tcp_listener, test_plugin};

/// Every attack runs on both compilers' builds (issue 16: the baseline tier
/// must enforce every limit the optimized one does).
const BOTH_TIERS: [Tiering; 2] = [Tiering::Baseline, Tiering::Optimized];

async fn hostile_runtime(extra_network: Vec<String>, tiering: Tiering) -> (Harness, Runtime) {
    let mut harness = Harness::new();
    harness.config.cache.tiering = tiering;
    harness.install(test_plugin::hostile());
    let sandbox = harness.tmp.path().join("sandbox");
    std::fs::create_dir(&sandbox).unwrap();
    std::fs::write(sandbox.join("hello.txt"), "hello from the sandbox").unwrap();
    let secret = harness.tmp.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    std::os::unix::fs::symlink(&secret, sandbox.join("link-to-secret")).unwrap();
    std::os::unix::fs::symlink(harness.tmp.path(), sandbox.join("link-to-parent")).unwrap();
    harness.grant(
        "hostile",
        Grant {
            dirs: vec![DirGrant {
                host: sandbox,
                guest: "/sandbox".into(),
                access: Access::Read,
                follow_symlinks: false,
            }],
            env: vec!["GRANTED_VAR".into()],
            network: extra_network,
        },
    );
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let expected = match tiering {
        Tiering::Baseline => Tier::Baseline,
        _ => Tier::Optimized,
    };
    assert_eq!(runtime.plugins()[0].tier(), Some(expected));
    (harness, runtime)
}

async fn call(runtime: &Runtime, tool: &str, args: serde_json::Value) -> Result<String, CallError> {
    runtime
        .call_tool(tool, &args, CallOptions::default())
        .await
        .map(|output| output.to_text())
}

/// After any attack, the host must still serve a normal call.
async fn assert_still_serving(runtime: &Runtime) {
    assert_eq!(call(runtime, "ok", json!({})).await.unwrap(), "ok");
}

fn assert_tool_failed(result: Result<String, CallError>, what: &str) -> String {
    match result {
        Err(CallError::Tool {
            error: ToolError::Failed(message) | ToolError::Denied(message),
            ..
        }) => message,
        other => panic!("{what}: expected the sandbox to refuse, got {other:?}"),
    }
}

fn assert_failed(result: Result<String, CallError>, what: &str) -> (FailureKind, String) {
    match result {
        Err(err @ CallError::Failed { .. }) => {
            let message = err.to_string();
            let CallError::Failed { kind, plugin, .. } = err else {
                unreachable!()
            };
            assert_eq!(plugin, "hostile");
            assert!(message.contains("hostile"), "{message}");
            (kind, message)
        }
        other => panic!("{what}: expected a failed call, got {other:?}"),
    }
}

#[tokio::test]
async fn files_outside_the_granted_directory_cannot_be_read() {
    for tiering in BOTH_TIERS {
        let (harness, runtime) = hostile_runtime(vec![], tiering).await;
        assert_eq!(
            call(&runtime, "read_file", json!({"path": "/sandbox/hello.txt"}))
                .await
                .unwrap(),
            "hello from the sandbox"
        );
        let secret = harness.tmp.path().join("secret.txt");
        for path in [
            "/sandbox/../secret.txt".to_owned(),
            "/sandbox/../../../../etc/passwd".to_owned(),
            "/etc/passwd".to_owned(),
            secret.display().to_string(),
            "/sandbox/link-to-secret".to_owned(),
            "/sandbox/link-to-parent/secret.txt".to_owned(),
            "../secret.txt".to_owned(),
        ] {
            let result = call(&runtime, "read_file", json!({ "path": path })).await;
            if let Ok(text) = &result {
                assert!(
                    !text.contains("top secret") && !text.contains("root:"),
                    "{path} leaked: {text}"
                );
            }
            assert_tool_failed(result, &path);
            assert_still_serving(&runtime).await;
        }
    }
}

#[tokio::test]
async fn a_read_only_grant_cannot_be_written() {
    for tiering in BOTH_TIERS {
        let (harness, runtime) = hostile_runtime(vec![], tiering).await;
        let result = call(
            &runtime,
            "write_file",
            json!({"path": "/sandbox/new.txt", "content": "x"}),
        )
        .await;
        assert_tool_failed(result, "write to read-only dir");
        assert!(!harness.tmp.path().join("sandbox/new.txt").exists());
        let listing = call(&runtime, "list_dir", json!({"path": "/sandbox"}))
            .await
            .unwrap();
        assert!(listing.contains("hello.txt"), "{listing}");
        assert_still_serving(&runtime).await;
    }
}

#[tokio::test]
async fn network_is_denied_unless_granted() {
    for tiering in BOTH_TIERS {
        let port = tcp_listener();
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let result = call(
            &runtime,
            "tcp_connect",
            json!({"addr": format!("127.0.0.1:{port}")}),
        )
        .await;
        assert_tool_failed(result, "tcp connect without grant");
        let result = call(
            &runtime,
            "fetch_url",
            json!({"url": format!("http://127.0.0.1:{port}/")}),
        )
        .await;
        assert_tool_failed(result, "http without grant");
        assert_still_serving(&runtime).await;

        // Granted to one port: that port works, another is still refused.
        let (_harness, runtime) = hostile_runtime(vec![format!("127.0.0.1:{port}")], tiering).await;
        let connected = call(
            &runtime,
            "tcp_connect",
            json!({"addr": format!("127.0.0.1:{port}")}),
        )
        .await
        .unwrap();
        assert_eq!(connected, "connected");
        let other = tcp_listener();
        let result = call(
            &runtime,
            "tcp_connect",
            json!({"addr": format!("127.0.0.1:{other}")}),
        )
        .await;
        assert_tool_failed(result, "tcp connect to a port not granted");
        let result = call(
            &runtime,
            "fetch_url",
            json!({"url": format!("http://127.0.0.1:{other}/")}),
        )
        .await;
        assert_tool_failed(result, "http to a port not granted");
        assert_still_serving(&runtime).await;
    }
}

#[tokio::test]
async fn memory_past_the_cap_fails_the_call_with_the_limit_named() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let (kind, message) =
            assert_failed(call(&runtime, "alloc", json!({"mb": 256})).await, "alloc");
        let FailureKind::MemoryLimit {
            limit_mb: 32,
            wanted_bytes,
            ..
        } = kind
        else {
            panic!("not a memory-limit failure: {message}");
        };
        // In MiB, with what the guest asked for and the key that raises it.
        assert!(wanted_bytes > 32 << 20, "{message}");
        assert!(message.contains("over its limit of 32 MiB"), "{message}");
        assert!(message.contains("`memory_mb` under [limits]"), "{message}");
        assert_still_serving(&runtime).await;
        // Within the cap, allocation works.
        assert_eq!(
            call(&runtime, "alloc", json!({"mb": 4})).await.unwrap(),
            "allocated"
        );
    }
}

#[tokio::test]
async fn an_infinite_loop_hits_the_deadline() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let (kind, message) = assert_failed(call(&runtime, "spin", json!({})).await, "spin");
        assert_eq!(kind, FailureKind::Timeout { ms: 1000 }, "{message}");
        assert!(message.contains("time limit of 1000 ms"), "{message}");
        assert_still_serving(&runtime).await;
    }
}

#[tokio::test]
async fn stack_overflow_is_contained() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let (kind, message) = assert_failed(
            call(&runtime, "recurse", json!({"depth": 100_000_000u64})).await,
            "recurse",
        );
        assert_eq!(kind, FailureKind::StackOverflow, "{message}");
        assert_still_serving(&runtime).await;
    }
}

#[tokio::test]
async fn flooding_stdout_and_stderr_never_reaches_the_terminal() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        for tool in ["flood_stdout", "flood_stderr"] {
            // Either the flood finishes (output dropped past the capture cap) or
            // the deadline stops it; both are contained.
            match call(&runtime, tool, json!({"mb": 4096})).await {
                Ok(_) => {}
                Err(CallError::Failed {
                    kind: FailureKind::Timeout { .. },
                    ..
                }) => {}
                other => panic!("{tool}: unexpected {other:?}"),
            }
            assert_still_serving(&runtime).await;
        }
        // A small flood completes.
        assert!(
            call(&runtime, "flood_stdout", json!({"mb": 1}))
                .await
                .is_ok()
        );
    }
}

#[tokio::test]
async fn a_huge_result_is_refused_by_the_output_cap() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let (kind, message) = assert_failed(
            call(&runtime, "huge_result", json!({"mb": 4})).await,
            "huge_result",
        );
        assert!(
            matches!(kind, FailureKind::OutputTooLarge { .. }),
            "{message}"
        );
        assert_still_serving(&runtime).await;
    }
}

#[tokio::test]
async fn a_panic_is_a_failed_call_with_the_panic_message() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let (kind, message) = assert_failed(
            call(&runtime, "panic", json!({"message": "boom-123"})).await,
            "panic",
        );
        assert!(matches!(kind, FailureKind::Trap { .. }), "{message}");
        assert!(message.contains("boom-123"), "{message}");
        assert_still_serving(&runtime).await;
    }
}

/// A tool's calls share the host's WASI context one after another (kept
/// between calls); what one call printed or how it failed must never show
/// in the next one's result.
#[tokio::test]
async fn a_call_inherits_nothing_from_the_call_before() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        for round in 0..3 {
            let first = format!("first-boom-{round}");
            let (_, message) = assert_failed(
                call(&runtime, "panic", json!({ "message": first })).await,
                "panic",
            );
            assert!(message.contains(&first), "{message}");
            let second = format!("second-boom-{round}");
            let (_, message) = assert_failed(
                call(&runtime, "panic", json!({ "message": second })).await,
                "panic",
            );
            assert!(message.contains(&second), "{message}");
            assert!(
                !message.contains(&first),
                "the previous call's stderr leaked into this one: {message}"
            );
        }
        // Another tool of the plugin fills the stderr capture; a panic right
        // after still shows its own message (the capture starts empty).
        assert!(
            call(&runtime, "flood_stderr", json!({"mb": 1}))
                .await
                .is_ok()
        );
        let (_, message) = assert_failed(
            call(&runtime, "panic", json!({"message": "after-the-flood"})).await,
            "panic",
        );
        assert!(message.contains("after-the-flood"), "{message}");
        // A memory-limit failure is not remembered: the next failure of the
        // same tool is reported as what it is.
        let (kind, message) =
            assert_failed(call(&runtime, "alloc", json!({"mb": 256})).await, "alloc");
        assert!(matches!(kind, FailureKind::MemoryLimit { .. }), "{message}");
        assert_eq!(
            call(&runtime, "alloc", json!({"mb": 4})).await.unwrap(),
            "allocated"
        );
        let (kind, message) = assert_failed(
            call(&runtime, "panic", json!({"message": "after-the-hog"})).await,
            "panic",
        );
        assert!(matches!(kind, FailureKind::Trap { .. }), "{message}");
    }
}

/// Threads calling at once are spread over several engines (one instance
/// pool each, `sandbox.engine_shards`); each of them enforces every limit.
#[test]
fn every_call_engine_enforces_the_limits() {
    let setup = tokio::runtime::Runtime::new().unwrap();
    let (_harness, runtime) = setup.block_on(async {
        let (mut harness, _) = hostile_runtime(vec![], Tiering::Optimized).await;
        harness.config.sandbox.engine_shards = 2;
        let runtime = harness.runtime().await;
        (harness, runtime)
    });
    assert_eq!(runtime.call_engines_serving("hostile"), 0);
    // One thread after the other, so each is given the next engine.
    for thread in 0..2 {
        let runtime = runtime.clone();
        std::thread::spawn(move || {
            let own = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            own.block_on(async {
                let (kind, message) =
                    assert_failed(call(&runtime, "alloc", json!({"mb": 256})).await, "alloc");
                assert!(
                    matches!(kind, FailureKind::MemoryLimit { limit_mb: 32, .. }),
                    "thread {thread}: {message}"
                );
                let (kind, message) =
                    assert_failed(call(&runtime, "spin", json!({})).await, "spin");
                assert_eq!(
                    kind,
                    FailureKind::Timeout { ms: 1000 },
                    "thread {thread}: {message}"
                );
                let (kind, message) = assert_failed(
                    call(&runtime, "recurse", json!({"depth": 100_000_000u64})).await,
                    "recurse",
                );
                assert_eq!(
                    kind,
                    FailureKind::StackOverflow,
                    "thread {thread}: {message}"
                );
                let (kind, message) = assert_failed(
                    call(&runtime, "panic", json!({"message": "boom-9"})).await,
                    "panic",
                );
                assert!(
                    matches!(kind, FailureKind::Trap { .. }),
                    "thread {thread}: {message}"
                );
                let denied = assert_tool_failed(
                    call(&runtime, "read_file", json!({"path": "/etc/passwd"})).await,
                    "read outside the grant",
                );
                assert!(!denied.contains("root:"), "thread {thread}: {denied}");
                assert_still_serving(&runtime).await;
            });
            assert_eq!(runtime.call_engines_serving("hostile"), thread + 1);
        })
        .join()
        .expect("the calling thread");
    }
}

#[tokio::test]
async fn many_failures_in_a_row_leave_the_pool_usable() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        // More failed calls than pool slots: slots must be returned every time.
        for _ in 0..40 {
            let _ = call(&runtime, "panic", json!({"message": "again"})).await;
            let _ = call(&runtime, "alloc", json!({"mb": 256})).await;
        }
        assert_still_serving(&runtime).await;
    }
}

#[tokio::test]
async fn concurrent_calls_are_isolated() {
    for tiering in BOTH_TIERS {
        let (_harness, runtime) = hostile_runtime(vec![], tiering).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let runtime = runtime.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    call(&runtime, "panic", json!({"message": "x"}))
                        .await
                        .is_err()
                } else {
                    call(&runtime, "ok", json!({})).await.is_ok()
                }
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap());
        }
    }
}
