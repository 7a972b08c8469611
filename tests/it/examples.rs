//! The example plugins do real work through the host: calc, text, fs, http, notes.

use agent_host_runtime::config::{DirGrant, Grant};
use agent_host_runtime::manifest::Access;
use agent_host_runtime::{CallError, CallOptions, Runtime};
use serde_json::{Value, json};

use crate::support::{Harness, assert_tool_error, example_plugin, http_server};

async fn call(runtime: &Runtime, tool: &str, args: Value) -> Result<String, CallError> {
    runtime
        .call_tool(tool, &args, CallOptions::default())
        .await
        .map(|output| output.to_text())
}

#[tokio::test]
async fn calc_evaluates_and_reports_errors_to_the_model() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    let runtime = harness.runtime().await;
    let output = runtime
        .call_tool(
            "calc",
            &json!({"expression": "2^10 + sqrt(16) * (3 - 1)"}),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(output.to_text().contains("1032"), "{}", output.to_text());
    assert_eq!(output.structured, Some(json!({"value": 1032.0})));
    let err = call(&runtime, "calc", json!({"expression": "1 / 0"}))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Tool { .. }), "{err}");
    let err = call(&runtime, "calc", json!({"expression": "2 +* 3"}))
        .await
        .unwrap_err();
    assert_tool_error(&err, "invalid_arguments");
}

#[tokio::test]
async fn text_tools_count_search_and_slugify() {
    let harness = Harness::new();
    harness.install(example_plugin::text());
    let runtime = harness.runtime().await;
    let counted = runtime
        .call_tool(
            "word_count",
            &json!({"text": "one two three\nfour"}),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let structured = counted.structured.clone().unwrap_or_else(|| {
        serde_json::from_str(&counted.to_text()).expect("word_count returns JSON")
    });
    assert_eq!(structured["words"], 4);
    assert_eq!(structured["lines"], 2);
    let found = call(
        &runtime,
        "regex_search",
        json!({"pattern": "t\\w+", "text": "two three four"}),
    )
    .await
    .unwrap();
    assert!(found.contains("two") && found.contains("three"), "{found}");
    let err = call(
        &runtime,
        "regex_search",
        json!({"pattern": "(", "text": "x"}),
    )
    .await
    .unwrap_err();
    assert_tool_error(&err, "invalid_arguments");
    let slug = call(
        &runtime,
        "slugify",
        json!({"text": "Hello, World! Ünïcode"}),
    )
    .await
    .unwrap();
    assert!(slug.contains("hello-world"), "{slug}");
}

#[tokio::test]
async fn fs_works_inside_its_grant_only() {
    let mut harness = Harness::new();
    harness.install(example_plugin::fs());
    let work = harness.tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    harness.grant(
        "fs",
        Grant {
            dirs: vec![DirGrant {
                host: work.clone(),
                guest: "/workspace".into(),
                access: Access::ReadWrite,
                follow_symlinks: false,
            }],
            ..Default::default()
        },
    );
    let runtime = harness.runtime().await;
    call(
        &runtime,
        "fs_write",
        json!({"path": "/workspace/note.txt", "content": "written by a plugin"}),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(work.join("note.txt")).unwrap(),
        "written by a plugin"
    );
    let read = call(&runtime, "fs_read", json!({"path": "/workspace/note.txt"}))
        .await
        .unwrap();
    assert!(read.contains("written by a plugin"), "{read}");
    let listing = call(&runtime, "fs_list", json!({"path": "/workspace"}))
        .await
        .unwrap();
    assert!(listing.contains("note.txt"), "{listing}");
    let err = call(&runtime, "fs_read", json!({"path": "/etc/passwd"}))
        .await
        .unwrap_err();
    assert_tool_error(&err, "denied");
}

#[tokio::test]
async fn fs_without_a_grant_is_denied() {
    let harness = Harness::new();
    harness.install(example_plugin::fs());
    let runtime = harness.runtime().await;
    let err = call(&runtime, "fs_list", json!({"path": "/workspace"}))
        .await
        .unwrap_err();
    assert_tool_error(&err, "denied");
}

#[tokio::test]
async fn http_reaches_granted_hosts_only() {
    let port = http_server("hello over loopback", 4);
    let mut harness = Harness::new();
    harness.install(example_plugin::http());
    harness.grant(
        "http",
        Grant {
            network: vec![format!("127.0.0.1:{port}")],
            ..Default::default()
        },
    );
    let runtime = harness.runtime().await;
    let body = call(
        &runtime,
        "http_get",
        json!({"url": format!("http://127.0.0.1:{port}/x")}),
    )
    .await
    .unwrap();
    assert!(
        body.contains("200") && body.contains("hello over loopback"),
        "{body}"
    );
    let err = call(&runtime, "http_get", json!({"url": "http://127.0.0.1:1/"}))
        .await
        .unwrap_err();
    assert_tool_error(&err, "denied");
}

#[tokio::test]
async fn notes_persist_in_host_state_across_calls_and_restarts() {
    let harness = Harness::new();
    harness.install(example_plugin::notes());
    {
        let runtime = harness.runtime().await;
        call(
            &runtime,
            "note_add",
            json!({"title": "shopping", "body": "milk, eggs"}),
        )
        .await
        .unwrap();
        call(
            &runtime,
            "note_add",
            json!({"title": "ideas", "body": "wasm everywhere"}),
        )
        .await
        .unwrap();
        let listed = call(&runtime, "note_list", json!({})).await.unwrap();
        assert!(
            listed.contains("shopping") && listed.contains("ideas"),
            "{listed}"
        );
        runtime.store().flush().unwrap();
    }
    let runtime = harness.runtime().await;
    let got = call(&runtime, "note_get", json!({"title": "shopping"}))
        .await
        .unwrap();
    assert!(got.contains("milk, eggs"), "{got}");
    call(&runtime, "note_delete", json!({"title": "shopping"}))
        .await
        .unwrap();
    assert!(
        call(&runtime, "note_get", json!({"title": "shopping"}))
            .await
            .is_err()
    );
}
