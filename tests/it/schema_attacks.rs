//! Hostile JSON Schemas (issue 11 findings 2, 3, 4, 10): refused at load or checked under a budget, and the host keeps serving.
//!
//! Every case copies the schema-bomb test plugin under its own name with a
//! manifest whose [config] picks the schema it declares.

use agent_host_runtime::{CallError, CallOptions, Runtime};
use serde_json::{Value, json};

use crate::support::{Harness, run_command, test_plugin};

/// Installs a copy of schema-bomb as `name` (its tool is named `name` too).
fn install_bomb(harness: &Harness, name: &str, timeout_ms: u64, config: &str) {
    let (wasm, _) = test_plugin::schema_bomb();
    let dir = harness.plugins_dir();
    // Descriptions are cached by content hash, and each copy describes a
    // different schema: a custom section (id 0) naming the copy makes each
    // one a distinct component.
    let mut bytes = std::fs::read(&wasm).unwrap();
    let section_name = b"copy";
    let payload = name.as_bytes();
    let size = 1 + section_name.len() + payload.len();
    assert!(
        size < 128 && section_name.len() < 128,
        "one-byte LEB128 sizes"
    );
    bytes.push(0);
    bytes.push(size as u8);
    bytes.push(section_name.len() as u8);
    bytes.extend_from_slice(section_name);
    bytes.extend_from_slice(payload);
    std::fs::write(dir.join(format!("{name}.wasm")), bytes).unwrap();
    let tool = name.replace('-', "_");
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[plugin]\nname = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"schema bomb\"\n\n\
             [capabilities]\n\n[limits]\nmemory_mb = 256\ntimeout_ms = {timeout_ms}\nmax_output_kb = 1024\n\n\
             [config]\ntool = \"{tool}\"\n{config}\n"
        ),
    )
    .unwrap();
}

fn harness_with_echo() -> Harness {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    harness
}

/// The load problem of plugin `name`, which must exist.
fn problem(runtime: &Runtime, name: &str) -> String {
    let problems = runtime.problems();
    problems
        .iter()
        .find(|p| p.plugin.as_deref() == Some(name))
        .map(|p| p.error.clone())
        .unwrap_or_else(|| panic!("{name} was not refused; problems: {problems:?}"))
}

/// A refusal names the tool, the limit's config key and how to raise it.
fn assert_refused(runtime: &Runtime, name: &str, key: &str) -> String {
    let error = problem(runtime, name);
    let tool = name.replace('-', "_");
    assert!(error.contains(&format!("tool '{tool}'")), "{error}");
    assert!(error.contains(key), "expected the limit {key}: {error}");
    assert!(
        runtime.tools().iter().all(|t| t.spec.name != tool),
        "a refused tool must not be registered"
    );
    error
}

async fn call(runtime: &Runtime, tool: &str, args: Value) -> Result<String, CallError> {
    runtime
        .call_tool(tool, &args, CallOptions::default())
        .await
        .map(|output| output.to_text())
}

/// After any attack, the host must still serve a normal call.
async fn assert_still_serving(runtime: &Runtime) {
    assert_eq!(
        call(runtime, "echo", json!({"text": "still here"}))
            .await
            .unwrap(),
        "still here"
    );
}

#[tokio::test]
async fn long_ref_chains_are_refused_at_load() {
    let harness = harness_with_echo();
    install_bomb(
        &harness,
        "chain-20k",
        1000,
        "mode = \"ref-chain\"\nn = 20000",
    );
    install_bomb(
        &harness,
        "chain-50k",
        1000,
        "mode = \"ref-chain\"\nn = 50000",
    );
    // Small enough in bytes and refs: the depth limit refuses it.
    install_bomb(&harness, "chain-500", 1000, "mode = \"ref-chain\"\nn = 500");
    let runtime = harness.runtime().await;
    assert_refused(&runtime, "chain-20k", "max_schema_bytes");
    assert_refused(&runtime, "chain-50k", "max_schema_bytes");
    let error = assert_refused(&runtime, "chain-500", "max_depth");
    assert!(error.contains("501") || error.contains("502"), "{error}");
    let err = call(&runtime, "chain_20k", json!({})).await.unwrap_err();
    assert!(matches!(err, CallError::UnknownTool { .. }), "{err}");
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn ref_chains_with_raised_byte_limits_still_hit_the_ref_and_depth_limits() {
    let mut harness = harness_with_echo();
    harness.config.schema.max_schema_bytes = 8 << 20;
    harness.config.schema.max_subschemas = 1_000_000;
    install_bomb(
        &harness,
        "chain-20k",
        1000,
        "mode = \"ref-chain\"\nn = 20000",
    );
    let runtime = harness.runtime().await;
    assert_refused(&runtime, "chain-20k", "max_refs");
    assert_still_serving(&runtime).await;

    let mut harness = harness_with_echo();
    harness.config.schema.max_schema_bytes = 8 << 20;
    harness.config.schema.max_subschemas = 1_000_000;
    harness.config.schema.max_refs = 1_000_000;
    install_bomb(
        &harness,
        "chain-20k",
        1000,
        "mode = \"ref-chain\"\nn = 20000",
    );
    let runtime = harness.runtime().await;
    assert_refused(&runtime, "chain-20k", "max_depth");
    assert_still_serving(&runtime).await;
}

#[test]
fn a_ref_chain_through_the_cli_fails_cleanly() {
    let harness = harness_with_echo();
    install_bomb(
        &harness,
        "chain-50k",
        1000,
        "mode = \"ref-chain\"\nn = 50000",
    );
    let (code, _, stderr) =
        run_command(
            harness
                .command()
                .args(["tools", "call", "chain_50k", "--args", "{}"]),
        );
    assert_eq!(code, 2, "a usage error, not an abort: {stderr}");
    assert!(
        stderr.contains("no tool named 'chain_50k'") && stderr.contains("could not be loaded"),
        "{stderr}"
    );
    let (_, stdout, stderr) = run_command(harness.command().args(["plugins", "list"]));
    let listed = format!("{stdout}{stderr}");
    assert!(
        listed.contains("chain_50k") && listed.contains("max_schema_bytes"),
        "{listed}"
    );
    let (code, stdout, stderr) = run_command(harness.command().args([
        "tools",
        "call",
        "echo",
        "--args",
        r#"{"text":"after"}"#,
    ]));
    assert_eq!((code, stdout.trim()), (0, "after"), "{stderr}");
}

#[tokio::test]
async fn an_exponential_anyof_tree_is_refused() {
    let harness = harness_with_echo();
    install_bomb(
        &harness,
        "anyof-22",
        1000,
        "mode = \"anyof-tree\"\ndepth = 22",
    );
    let runtime = harness.runtime().await;
    let error = assert_refused(&runtime, "anyof-22", "max_expanded");
    assert!(error.contains("anyOf"), "{error}");
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn a_ref_cycle_on_one_value_is_refused() {
    let harness = harness_with_echo();
    install_bomb(&harness, "cycle", 1000, "mode = \"cycle\"");
    let runtime = harness.runtime().await;
    let error = problem(&runtime, "cycle");
    assert!(
        error.contains("cycle") && error.contains("never descends"),
        "{error}"
    );
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn a_backtracking_pattern_is_refused() {
    let harness = harness_with_echo();
    install_bomb(&harness, "redos", 1000, "mode = \"redos\"");
    let runtime = harness.runtime().await;
    let error = problem(&runtime, "redos");
    assert!(
        error.contains("tool 'redos'")
            && error.contains("^((?=a)a+)+$")
            && error.contains("look-around"),
        "{error}"
    );
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn a_thousand_strings_against_a_nested_quantifier_are_checked_correctly() {
    let harness = harness_with_echo();
    install_bomb(&harness, "words", 1000, "mode = \"ok\"");
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let good = "a".repeat(40);
    let mut words = vec![Value::from(good.clone()); 1000];
    assert_eq!(
        call(&runtime, "words", json!({ "words": words }))
            .await
            .unwrap(),
        "1000 words"
    );
    // The near miss a backtracking engine takes exponential time on.
    words[999] = Value::from(format!("{good}b"));
    match call(&runtime, "words", json!({ "words": words })).await {
        Err(CallError::InvalidArguments { problems, .. }) => {
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("/words/999"), "{problems:?}");
        }
        other => panic!("expected invalid arguments, got {other:?}"),
    }
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn a_50_mb_schema_is_refused() {
    let harness = harness_with_echo();
    install_bomb(&harness, "big", 5000, "mode = \"big\"\nbytes = 50000000");
    let runtime = harness.runtime().await;
    // The whole describe answer is bounded before any schema is parsed.
    let error = problem(&runtime, "big");
    assert!(
        error.contains("[describe] max_total_bytes") && error.contains("4194304"),
        "{error}"
    );
    assert!(runtime.tools().iter().all(|t| t.spec.name != "big"));
    assert_still_serving(&runtime).await;

    // Past that bound, the schema's own byte limit refuses it.
    let mut harness = harness_with_echo();
    harness.config.describe.max_total_bytes = 1 << 30;
    install_bomb(&harness, "big", 5000, "mode = \"big\"\nbytes = 50000000");
    let runtime = harness.runtime().await;
    let error = assert_refused(&runtime, "big", "max_schema_bytes");
    assert!(error.contains("262144"), "{error}");
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn a_hundred_thousand_patterns_are_refused() {
    let harness = harness_with_echo();
    install_bomb(
        &harness,
        "patterns",
        1000,
        "mode = \"many-patterns\"\nn = 100000",
    );
    let runtime = harness.runtime().await;
    assert_refused(&runtime, "patterns", "max_schema_bytes");
    assert_still_serving(&runtime).await;

    // Past the byte limit, the pattern count limit refuses it before a
    // single pattern is compiled.
    let mut harness = harness_with_echo();
    install_bomb(
        &harness,
        "patterns",
        1000,
        "mode = \"many-patterns\"\nn = 100000",
    );
    harness.config.schema.max_schema_bytes = 16 << 20;
    harness.config.schema.max_subschemas = 1_000_000;
    let runtime = harness.runtime().await;
    let error = assert_refused(&runtime, "patterns", "max_patterns");
    assert!(error.contains("100000 distinct patterns"), "{error}");
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn validation_that_runs_out_of_time_fails_the_call() {
    let harness = harness_with_echo();
    // An allOf tree just under the expansion limit (about 6,000 subschemas
    // per value), over 50,000 values that pass every branch: hundreds of
    // millions of checks, far more work than 50 ms.
    install_bomb(&harness, "slow", 50, "mode = \"slow\"\ndepth = 11");
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let items = vec![Value::from(1); 50_000];
    let err = call(&runtime, "slow", json!({ "items": items }))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("argument validation exceeded") && message.contains("50 ms"),
        "{message}"
    );
    assert!(matches!(err, CallError::Failed { .. }), "{err:?}");
    // The same tool with small arguments, and another tool, still work.
    assert_eq!(
        call(&runtime, "slow", json!({ "items": [] }))
            .await
            .unwrap(),
        "0 items"
    );
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn structured_output_must_match_the_output_schema_and_be_json() {
    let harness = harness_with_echo();
    install_bomb(&harness, "shaped", 1000, "mode = \"output\"");
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let answer = |what: &str| {
        let runtime = &runtime;
        let args = json!({ "answer": what });
        async move {
            runtime
                .call_tool("shaped", &args, CallOptions::default())
                .await
        }
    };
    let good = answer("good").await.unwrap();
    assert_eq!(good.structured, Some(json!({ "value": 42 })));
    assert!(answer("none").await.unwrap().structured.is_none());

    for (what, expected) in [
        ("bad", "does not match the tool's output schema"),
        ("not-json", "structured output is not valid JSON"),
    ] {
        let err = answer(what).await.unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, CallError::Failed { .. })
                && message.contains("tool 'shaped'")
                && message.contains(expected),
            "{what}: {message}"
        );
        if what == "bad" {
            assert!(message.contains("/value"), "{message}");
        }
        assert_eq!(
            answer("good").await.unwrap().structured,
            Some(json!({ "value": 42 }))
        );
    }
    assert_still_serving(&runtime).await;
}

#[tokio::test]
async fn every_example_plugin_schema_passes_the_default_limits() {
    let harness = Harness::new();
    for plugin in [
        crate::support::example_plugin::calc(),
        crate::support::example_plugin::text(),
        crate::support::example_plugin::fs(),
        crate::support::example_plugin::http(),
        crate::support::example_plugin::notes(),
    ] {
        harness.install(plugin);
    }
    let runtime = harness.runtime().await;
    let schema_problems: Vec<_> = runtime
        .problems()
        .into_iter()
        .filter(|p| p.error.contains("schema"))
        .collect();
    assert!(schema_problems.is_empty(), "{schema_problems:?}");
    assert!(runtime.tools().len() >= 5);
}
