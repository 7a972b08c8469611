//! Bad plugin files and manifests are refused with clear errors, and never take other plugins down.

use agent_host_runtime::{CallError, CallOptions, LoadError};
use serde_json::json;

use crate::support::{Harness, test_plugin};

#[tokio::test]
async fn a_good_plugin_loads_and_answers() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let runtime = harness.runtime().await;
    let tools = runtime.tools();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].spec.name, "echo");
    assert!(tools[0].spec.hints.parallel_safe && tools[0].spec.hints.read_only);
    let output = runtime
        .call_tool(
            "echo",
            &json!({"text": "hi", "repeat": 2}),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(output.to_text(), "hihi");
}

#[tokio::test]
async fn bad_files_are_refused_with_what_to_do() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let manifest = std::fs::read_to_string(test_plugin::echo().1).unwrap();
    let named = |name: &str| manifest.replace("name = \"echo\"", &format!("name = \"{name}\""));

    let not_wasm = harness.write("notwasm.wasm", b"this is not wasm at all");
    harness.write("notwasm.toml", named("notwasm").as_bytes());
    let core = harness.write("core.wasm", b"\0asm\x01\0\0\0");
    harness.write("core.toml", named("core").as_bytes());
    let truncated_bytes = std::fs::read(test_plugin::echo().0).unwrap();
    let truncated = harness.write(
        "truncated.wasm",
        &truncated_bytes[..truncated_bytes.len() / 2],
    );
    harness.write("truncated.toml", named("truncated").as_bytes());
    let no_manifest = harness.write("orphan.wasm", &truncated_bytes);

    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    assert_eq!(
        report.loaded,
        vec!["echo".to_string()],
        "the good plugin still loads"
    );
    let error_for = |path: &std::path::Path| {
        report
            .failed
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("{} should have failed", path.display()))
    };
    let err = error_for(&not_wasm);
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
    let err = error_for(&core);
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");
    assert!(err.to_string().contains("not a component"), "{err}");
    let err = error_for(&truncated);
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    let err = error_for(&no_manifest);
    assert!(matches!(err, LoadError::MissingManifest { .. }), "{err}");
    assert!(err.to_string().contains("orphan.toml"), "{err}");
    assert_eq!(runtime.problems().len(), 4);
}

use agent_host_runtime::Runtime;

#[tokio::test]
async fn a_plugin_for_another_contract_version_is_refused_naming_both_versions() {
    let harness = Harness::new();
    harness.install(test_plugin::wrong_version());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let err = runtime
        .load_plugin(&harness.plugins_dir().join("wrong-version.wasm"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, LoadError::UnsupportedContract { .. }),
        "{message}"
    );
    assert!(
        message.contains("agent:plugin@9.0.0") && message.contains("agent:plugin@0.1.0"),
        "{message}"
    );
    assert!(runtime.tools().is_empty());
}

#[tokio::test]
async fn a_component_for_another_world_is_refused() {
    let harness = Harness::new();
    harness.install(test_plugin::other_world());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let err = runtime
        .load_plugin(&harness.plugins_dir().join("other-world.wasm"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{message}");
    assert!(
        message.contains("example:greeter/greet") && message.contains("agent:plugin/tool@0.1.0"),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_manifests_name_the_problem() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let wasm = harness.plugins_dir().join("echo.wasm");
    for (text, expected) in [
        ("[plugin\nname = ", "TOML"),
        ("[plugin]\nname = \"echo\"\n", "version"),
        (
            "[plugin]\nname = \"Echo!\"\nversion = \"0.1.0\"\n",
            "plugin.name",
        ),
        (
            "[plugin]\nname = \"echo\"\nversion = \"0.1.0\"\n[limits]\nmemory_mb = \"lots\"\n",
            "memory_mb",
        ),
        (
            "[plugin]\nname = \"echo\"\nversion = \"0.1.0\"\n[capabilities]\nnetworks = []\n",
            "networks",
        ),
    ] {
        harness.write("echo.toml", text.as_bytes());
        let err = runtime.load_plugin(&wasm).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, LoadError::Manifest { .. }), "{message}");
        assert!(message.contains("echo.toml"), "{message}");
        if expected != "TOML" {
            assert!(message.contains(expected), "manifest {text:?}: {message}");
        }
    }
}

#[tokio::test]
async fn a_tool_name_clash_is_reported_never_shadowed() {
    let harness = Harness::new();
    harness.install(test_plugin::dup_a());
    harness.install(test_plugin::dup_b());
    harness.install(test_plugin::echo());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    // Neither wins by sorting first: both are refused, the rest load.
    assert_eq!(report.loaded, vec!["echo".to_string()]);
    assert_eq!(report.failed.len(), 2, "{report:?}");
    for (_, err) in &report.failed {
        let message = err.to_string();
        assert!(matches!(err, LoadError::DuplicateTool { .. }), "{message}");
        assert!(
            message.contains("dup-a") && message.contains("dup-b") && message.contains("duplicate"),
            "{message}"
        );
    }
    assert!(matches!(
        runtime
            .call_tool("duplicate", &json!({}), CallOptions::default())
            .await,
        Err(CallError::UnknownTool { .. })
    ));
}

#[tokio::test]
async fn arguments_that_break_the_schema_never_reach_the_plugin() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let runtime = harness.runtime().await;
    for (args, expected) in [
        (json!({}), "\"text\" is a required property"),
        (json!({"text": 7}), "/text"),
        (json!({"text": "x", "repeat": 0}), "/repeat"),
        (json!({"text": "x", "repeat": "many"}), "/repeat"),
        (json!("not an object"), "object"),
    ] {
        let err = runtime
            .call_tool("echo", &args, CallOptions::default())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, CallError::InvalidArguments { .. }),
            "{message}"
        );
        assert!(message.contains(expected), "args {args}: {message}");
    }
    let err = runtime
        .call_tool("nope", &json!({}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::UnknownTool { .. }));
    assert!(err.to_string().contains("echo"), "{err}");
}

/// Once a tool has been called, its calls go through a kept route; each
/// route checks its own tool's schema. `{}` passes `shapes_mixed`'s schema
/// but not `shapes_fail`'s, and `{"kind": "failed"}` the other way round,
/// so a route holding the other tool's checker would let one through.
#[tokio::test]
async fn a_kept_route_checks_its_own_tools_schema() {
    let harness = Harness::new();
    harness.install(test_plugin::shapes());
    let runtime = harness.runtime().await;
    let call = |name: &'static str, args: serde_json::Value| {
        let runtime = runtime.clone();
        async move { runtime.call_tool(name, &args, CallOptions::default()).await }
    };
    // First calls: the routes are made and kept.
    call("shapes_mixed", json!({})).await.unwrap();
    assert!(matches!(
        call("shapes_fail", json!({"kind": "failed"})).await,
        Err(CallError::Tool { .. })
    ));
    for _ in 0..2 {
        let err = call("shapes_fail", json!({})).await.unwrap_err();
        assert!(
            matches!(err, CallError::InvalidArguments { .. }),
            "shapes_fail with no kind: {err}"
        );
        assert!(err.to_string().contains("kind"), "{err}");
        let err = call("shapes_mixed", json!({"kind": "failed"}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallError::InvalidArguments { .. }),
            "shapes_mixed with an extra property: {err}"
        );
        call("shapes_mixed", json!({})).await.unwrap();
    }
}

/// A settled plugin file's content hash is remembered with the file's
/// identity, so a start-up need not read it; any write gives the file a new
/// identity (its ctime moves), and the new bytes are hashed.
#[tokio::test]
async fn a_plugin_rewritten_in_place_is_hashed_again() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    let wasm = harness.plugins_dir().join("echo.wasm");
    let original = std::fs::read(&wasm).unwrap();
    // Only a file left alone for 2 s has its hash remembered.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let runtime = harness.runtime().await;
    let first = runtime.plugins()[0].content_hash.clone();
    assert_eq!(first, agent_host_runtime::cache::content_hash(&original));
    drop(runtime);
    let again = harness.runtime().await;
    assert_eq!(
        again.plugins()[0].content_hash,
        first,
        "same file, same hash"
    );
    drop(again);

    // Same size, same inode, other bytes.
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x20;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wasm)
        .and_then(|mut file| std::io::Write::write_all(&mut file, &changed))
        .unwrap();
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    let loaded = runtime.plugins();
    match loaded.first() {
        Some(plugin) => assert_eq!(
            plugin.content_hash,
            agent_host_runtime::cache::content_hash(&changed),
            "the rewritten bytes must be hashed, not the remembered hash used"
        ),
        // Bytes that no longer form a component are refused: also read anew.
        None => assert_eq!(report.failed.len(), 1, "{report:?}"),
    }
}
