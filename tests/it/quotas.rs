//! Storage quotas: a plugin hoarding key-value or session state is refused at its quota with a clear message, lists are bounded, and the next call works.

use agent_host_runtime::{CallOptions, Runtime};
use serde_json::{Value, json};

use crate::support::{Harness, test_plugin};

const KIB: u64 = 1024;

fn hoarder(configure: impl FnOnce(&mut agent_host_runtime::config::QuotaConfig)) -> Harness {
    let mut harness = Harness::new();
    harness.install(test_plugin::hoarder());
    // Filling thousands of keys through a debug host takes more than the
    // harness's usual second.
    harness.config.sandbox.max_timeout_ms = 20_000;
    configure(&mut harness.config.quotas);
    harness
}

async fn call_in(runtime: &Runtime, tool: &str, args: Value, session: Option<&str>) -> Value {
    let options = CallOptions {
        session_id: session.map(str::to_owned),
        ..CallOptions::default()
    };
    let text = runtime
        .call_tool(tool, &args, options)
        .await
        .unwrap_or_else(|err| panic!("{tool} {args}: {err}"))
        .to_text();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

async fn call(runtime: &Runtime, tool: &str, args: Value) -> Value {
    call_in(runtime, tool, args, None).await
}

async fn fill(runtime: &Runtime, prefix: &str, count: u64, size: u64) -> Value {
    let args = json!({ "scope": "kv", "prefix": prefix, "count": count, "size": size });
    call(runtime, "fill", args).await
}

/// After any attack, the host must still serve a normal call.
async fn assert_still_serving(runtime: &Runtime) {
    assert_eq!(call(runtime, "ok", json!({})).await, "ok");
}

fn first_error(report: &Value) -> String {
    report["first_error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a refusal: {report}"))
        .to_owned()
}

/// Bytes of values (and their keys) the store holds under `<prefix><n>`.
fn held_bytes(runtime: &Runtime, prefix: &str, count: u64) -> u64 {
    let kv = runtime.store().plugin_kv("hoarder");
    (0..count)
        .filter_map(|i| {
            let key = format!("{prefix}{i:07}");
            let value = kv.get(&key).unwrap()?;
            Some((key.len() + value.len()) as u64)
        })
        .sum()
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dir_size(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[tokio::test]
async fn kv_byte_quota_refuses_hoarding_with_a_clear_message() {
    let harness = hoarder(|quotas| quotas.kv_max_mb = 1);
    let runtime = harness.runtime().await;
    // 200 values of 64 KiB under fresh keys: 12.5 MiB asked, 1 MiB allowed.
    let report = fill(&runtime, "a", 200, 64 * KIB).await;
    assert_eq!(report["stored"], 15, "{report}");
    let error = first_error(&report);
    assert!(
        error.contains("key-value state quota exceeded")
            && error.contains("1048576 bytes")
            && error.contains("quotas.kv_max_mb"),
        "{error}"
    );
    assert!(held_bytes(&runtime, "a", 200) <= 1 << 20);
    runtime.store().flush().unwrap();
    let on_disk = dir_size(&harness.config.data_dir);
    assert!(on_disk < 8 << 20, "{on_disk} bytes on disk");
    // The refusal holds in the next call too, and a normal call works.
    let report = fill(&runtime, "b", 1, 64 * KIB).await;
    assert_eq!(report["stored"], 0, "{report}");
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn kv_key_quota_refuses_new_keys_but_not_overwrites() {
    let harness = hoarder(|quotas| quotas.kv_max_keys = 50);
    let runtime = harness.runtime().await;
    let report = fill(&runtime, "k", 80, 1).await;
    assert_eq!(report["stored"], 50, "{report}");
    let error = first_error(&report);
    assert!(
        error.contains("50 keys") && error.contains("quotas.kv_max_keys"),
        "{error}"
    );
    // Overwriting existing keys adds none.
    let report = fill(&runtime, "k", 50, 10).await;
    assert_eq!(report["stored"], 50, "{report}");
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn deletes_free_quota_and_usage_survives_a_restart() {
    let harness = hoarder(|quotas| quotas.kv_max_mb = 1);
    {
        let runtime = harness.runtime().await;
        assert_eq!(fill(&runtime, "a", 15, 64 * KIB).await["stored"], 15);
        runtime.store().flush().unwrap();
    }
    // A new process (runtime) over the same data dir knows the usage.
    let runtime = harness.runtime().await;
    let report = fill(&runtime, "b", 10, 64 * KIB).await;
    assert_eq!(report["stored"], 0, "{report}");
    assert!(first_error(&report).contains("quotas.kv_max_mb"));
    let dropped = call(
        &runtime,
        "drop",
        json!({ "scope": "kv", "prefix": "a", "count": 5 }),
    )
    .await;
    assert_eq!(dropped["deleted"], 5);
    let report = fill(&runtime, "b", 10, 64 * KIB).await;
    assert_eq!(report["stored"], 5, "{report}");
    assert!(held_bytes(&runtime, "a", 15) + held_bytes(&runtime, "b", 10) <= 1 << 20);
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn one_list_returns_a_bounded_page() {
    let harness = hoarder(|quotas| {
        quotas.list_max_keys = 100;
        quotas.list_max_kb = 1;
    });
    let runtime = harness.runtime().await;
    assert_eq!(fill(&runtime, "k", 5000, 1).await["stored"], 5000);
    let list = |prefix: &str| {
        let runtime = runtime.clone();
        let args = json!({ "scope": "kv", "prefix": prefix });
        async move { call(&runtime, "list", args).await }
    };
    let page = list("").await;
    assert_eq!(page["count"], 100, "{page}");
    assert_eq!(page["first"], "k0000000");
    assert_eq!(page["last"], "k0000099");
    // A narrower prefix reaches keys past the first page.
    let page = list("k000499").await;
    assert_eq!(page["count"], 10, "{page}");
    assert_eq!(page["last"], "k0004999");
    // Long keys: the byte bound (1 KiB) stops the page first.
    let long = format!("L{}", "x".repeat(200));
    assert_eq!(fill(&runtime, &long, 20, 1).await["stored"], 20);
    let page = list(&long).await;
    assert_eq!(page["count"], 4, "{page}");
    // Session lists are bounded the same way.
    let session = Some("s1");
    let args = json!({ "scope": "session", "prefix": "s", "count": 300, "size": 1 });
    assert_eq!(
        call_in(&runtime, "fill", args, session).await["stored"],
        300
    );
    let args = json!({ "scope": "session", "prefix": "" });
    assert_eq!(call_in(&runtime, "list", args, session).await["count"], 100);
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn session_quota_refuses_one_call_hoarding_session_state() {
    let harness = hoarder(|quotas| {
        quotas.session_max_mb = 1;
        quotas.session_max_keys = 20;
    });
    let runtime = harness.runtime().await;
    let fill_session = |session: &'static str, count: u64, size: u64| {
        let runtime = runtime.clone();
        let args = json!({ "scope": "session", "prefix": "v", "count": count, "size": size });
        async move { call_in(&runtime, "fill", args, Some(session)).await }
    };
    // 900 values of 64 KiB in one call: refused once the session holds 1 MiB.
    let report = fill_session("s1", 900, 64 * KIB).await;
    assert_eq!(report["stored"], 15, "{report}");
    let error = first_error(&report);
    assert!(
        error.contains("session state quota exceeded")
            && error.contains("in this session")
            && error.contains("quotas.session_max_mb"),
        "{error}"
    );
    // The key quota, in another session (each session has its own quota).
    let report = fill_session("s2", 50, 1).await;
    assert_eq!(report["stored"], 20, "{report}");
    assert!(first_error(&report).contains("quotas.session_max_keys"));
    // Deleting frees the session's quota.
    let args = json!({ "scope": "session", "prefix": "v", "count": 3 });
    let dropped = call_in(&runtime, "drop", args, Some("s1")).await;
    assert_eq!(dropped["deleted"], 3);
    let args = json!({ "scope": "session", "prefix": "w", "count": 10, "size": 64 * KIB });
    let report = call_in(&runtime, "fill", args, Some("s1")).await;
    assert_eq!(report["stored"], 3, "{report}");
    assert_still_serving(&runtime).await;
}
