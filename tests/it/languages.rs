//! Plugins in Python, JavaScript and C: the examples load and do their work, a crashing guest's own error reaches the failed call, memory refusals speak MiB, and `plugins new` scaffolds build and pass `plugins check` in every language.
//!
//! The plugins come from `make plugins` (plugins/toolchains/build-lang-plugins.sh),
//! which installs the pinned tool chains into build/toolchains.

use std::path::PathBuf;

use agent_host_runtime::config::Tiering;
use agent_host_runtime::{CallError, CallOptions, Runtime};
use serde_json::{Value, json};

use crate::support::{Harness, run_command, workspace_root};

/// A plugin `make plugins` built into build/<dir>: (wasm, manifest).
fn built(dir: &str, name: &str) -> (PathBuf, PathBuf) {
    let base = workspace_root().join("build").join(dir);
    let wasm = base.join(format!("{name}.wasm"));
    assert!(
        wasm.exists(),
        "{} is missing: run `make plugins` (it installs the Python, JavaScript and C tool chains and builds these plugins)",
        wasm.display()
    );
    (wasm, base.join(format!("{name}.toml")))
}

fn example(name: &str) -> (PathBuf, PathBuf) {
    built("plugins-lang", name)
}

fn crash_plugin(name: &str) -> (PathBuf, PathBuf) {
    built("test-plugins-lang", name)
}

/// A runtime over these plugins on the baseline tier (a 12-18 MB
/// interpreter component compiles in about 2 s there, 5-17 s optimized).
async fn runtime_with(plugins: &[(PathBuf, PathBuf)]) -> (Harness, Runtime) {
    let mut harness = Harness::new();
    harness.config.cache.tiering = Tiering::Baseline;
    harness.config.sandbox.max_timeout_ms = 20_000;
    harness.config.sandbox.default_timeout_ms = 20_000;
    for plugin in plugins {
        harness.install(plugin.clone());
    }
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    (harness, runtime)
}

async fn call(runtime: &Runtime, tool: &str, args: Value) -> Result<String, CallError> {
    runtime
        .call_tool(tool, &args, CallOptions::default())
        .await
        .map(|output| output.to_text())
}

/// The failed call's message, which must name the plugin.
async fn failure(runtime: &Runtime, plugin: &str, tool: &str) -> String {
    match call(runtime, tool, json!({})).await {
        Err(err @ CallError::Failed { .. }) => {
            let message = err.to_string();
            assert!(message.contains(plugin), "{message}");
            message
        }
        other => panic!("{tool}: expected a failed call, got {other:?}"),
    }
}

#[tokio::test]
async fn the_python_example_computes_statistics_and_keeps_datasets() {
    let (_harness, runtime) = runtime_with(&[example("py-stats")]).await;
    let text = call(
        &runtime,
        "py_stats",
        json!({"numbers": [2, 4, 4, 4, 5, 5, 7, 9], "percentiles": [50, 90], "save_as": "sample"}),
    )
    .await
    .unwrap();
    for expected in [
        "mean: 5",
        "median: 4.5",
        "stdev (population): 2",
        "p90: 7.6",
    ] {
        assert!(text.contains(expected), "no {expected:?} in {text}");
    }
    // The dataset went to the host's kv store; a new instance finds it.
    let datasets = call(&runtime, "py_stats_datasets", json!({}))
        .await
        .unwrap();
    assert!(datasets.contains("sample"), "{datasets}");
    // Bad input is a tool error for the model, not a crash.
    match call(&runtime, "py_stats", json!({"dataset": "nope"})).await {
        Err(CallError::Tool { .. }) => {}
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_js_example_counts_words_and_keeps_a_corpus() {
    let (_harness, runtime) = runtime_with(&[example("js-wordfreq")]).await;
    let text = "Äpfel und Birnen, Äpfel und Kirschen; äpfel!";
    let args = json!({"text": text, "top": 3, "corpus": "fruit", "exclude_stop_words": false});
    let first = call(&runtime, "js_word_frequencies", args.clone())
        .await
        .unwrap();
    assert!(first.contains("äpfel"), "{first}");
    assert!(first.contains("3"), "{first}");
    // The corpus adds up across calls (kv state in the host).
    let second = call(&runtime, "js_word_frequencies", args).await.unwrap();
    assert!(second.contains("after 2 call(s)"), "{second}");
}

#[tokio::test]
async fn the_c_example_computes_checksums_and_counts_its_calls() {
    let (_harness, runtime) = runtime_with(&[example("c-checksum")]).await;
    // The check values of each algorithm's specification.
    let crc = call(
        &runtime,
        "c_checksum",
        json!({"input": "123456789", "algorithm": "crc32"}),
    )
    .await
    .unwrap();
    assert!(crc.to_lowercase().contains("cbf43926"), "{crc}");
    let adler = call(
        &runtime,
        "c_checksum",
        json!({"input": "Wikipedia", "algorithm": "adler32"}),
    )
    .await
    .unwrap();
    assert!(adler.to_lowercase().contains("11e60398"), "{adler}");
    let hex = call(
        &runtime,
        "c_checksum",
        json!({"input": "0x31 32 33 34 35 36 37 38 39", "encoding": "hex", "algorithm": "crc32"}),
    )
    .await
    .unwrap();
    assert!(hex.to_lowercase().contains("cbf43926"), "{hex}");
    let stats = call(&runtime, "c_checksum_stats", json!({})).await.unwrap();
    assert!(stats.contains("3 times"), "{stats}");
}

#[tokio::test]
async fn a_c_abort_or_assert_message_reaches_the_failed_call() {
    let (_harness, runtime) = runtime_with(&[crash_plugin("c-crash")]).await;
    let message = failure(&runtime, "c-crash", "c_crash_abort").await;
    assert!(
        message.contains("(c-crash: cannot open /data/input.csv: giving up)"),
        "{message}"
    );
    let message = failure(&runtime, "c-crash", "c_crash_assert").await;
    assert!(
        message.contains("Assertion failed: config_file != NULL"),
        "{message}"
    );
    match call(&runtime, "c_crash_tool_error", json!({})).await {
        Err(CallError::Tool { .. }) => {}
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_python_exception_reaches_the_failed_call_with_its_frame() {
    let (_harness, runtime) = runtime_with(&[crash_plugin("python-crash")]).await;
    let message = failure(&runtime, "python-crash", "py_crash_raise").await;
    assert!(
        message.contains("ZeroDivisionError: division by zero (at app.py:")
            && message.contains("in divide"),
        "{message}"
    );
    assert!(!message.contains("unexpected exception"), "{message}");
    let message = failure(&runtime, "python-crash", "py_crash_key_error").await;
    assert!(message.contains("KeyError: 'temperature'"), "{message}");
    // A tool error stays data for the model.
    match call(&runtime, "py_crash_tool_error", json!({})).await {
        Err(CallError::Tool { .. }) => {}
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_js_exception_reaches_the_failed_call() {
    let (_harness, runtime) = runtime_with(&[crash_plugin("js-crash")]).await;
    let message = failure(&runtime, "js-crash", "js_crash_type_error").await;
    assert!(
        message.contains("TypeError: can't access property \"retries\", doc.settings is undefined"),
        "{message}"
    );
    assert!(!message.contains("mozalloc_abort"), "{message}");
    let message = failure(&runtime, "js-crash", "js_crash_throw").await;
    assert!(
        message.contains("Error: js-crash: something went wrong on purpose"),
        "{message}"
    );
    match call(&runtime, "js_crash_tool_error", json!({})).await {
        Err(CallError::Tool { .. }) => {}
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_initial_memory_over_the_cap_is_refused_in_mib_naming_the_key() {
    let mut harness = Harness::new();
    harness.config.cache.tiering = Tiering::Baseline;
    let (wasm, manifest) = example("py-stats");
    harness.install((wasm, manifest.clone()));
    // The Python interpreter starts with 12.4 MiB of linear memory.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let capped = text.replace("memory_mb = 64", "memory_mb = 8");
    assert_ne!(text, capped, "py-stats.toml no longer says memory_mb = 64");
    harness.write("py-stats.toml", capped.as_bytes());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    let message = report
        .failed
        .first()
        .map(|(_, err)| err.to_string())
        .expect("py-stats must be refused");
    assert!(
        message.contains("MiB of memory, over its limit of 8 MiB")
            && message.contains("`memory_mb` under [limits]"),
        "{message}"
    );
    assert!(!message.contains("pages"), "{message}");
}

/// `plugins new NAME --lang LANG --kind KIND` in a temp dir, `make check`
/// with the tool chains `make plugins` installed, then `tools list` (and a
/// call for a tool) through the built plugin.
fn scaffold_builds_and_checks(lang: &str, kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("new-{lang}-{kind}");
    let binary = env!("CARGO_BIN_EXE_agent-host");
    let env = |command: &mut std::process::Command| {
        command
            .env("AGENT_HOST_DATA_DIR", tmp.path().join("data"))
            .env_remove("AGENT_HOST_CONFIG")
            .env("XDG_CONFIG_HOME", tmp.path().join("no-config"));
    };
    let mut new = std::process::Command::new(binary);
    new.current_dir(tmp.path())
        .args(["plugins", "new", &name, "--lang", lang, "--kind", kind]);
    env(&mut new);
    let (code, stdout, stderr) = run_command(&mut new);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let dir = tmp.path().join(&name);
    assert!(dir.join("wit/plugin.wit").exists());

    let mut make = std::process::Command::new("make");
    make.current_dir(&dir)
        .arg("check")
        .arg(format!("AGENT_HOST={binary}"));
    make.args(toolchain_overrides(lang));
    env(&mut make);
    let (code, stdout, stderr) = run_command(&mut make);
    assert_eq!(
        code, 0,
        "make check of a new {lang} {kind}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("ok: {name} 0.1.0")),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("built against agent:plugin@0.1.0"),
        "{stdout}"
    );

    if kind == "tool" {
        // Each template names its tool its own way; the list says.
        let mut list = std::process::Command::new(binary);
        list.arg("--plugins")
            .arg(dir.join("build"))
            .args(["tools", "list", "--json"]);
        env(&mut list);
        let (code, stdout, stderr) = run_command(&mut list);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let tools: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        let tool = tools[0]["name"].as_str().unwrap().to_owned();
        let mut call = std::process::Command::new(binary);
        call.arg("--plugins").arg(dir.join("build")).args([
            "tools",
            "call",
            &tool,
            "--args",
            r#"{"name": "Ada"}"#,
        ]);
        env(&mut call);
        let (code, stdout, stderr) = run_command(&mut call);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("Ada"), "{stdout}");
    }
}

/// Make variables pointing a scaffold at the tool chains in build/toolchains.
fn toolchain_overrides(lang: &str) -> Vec<String> {
    let chains = workspace_root().join("build/toolchains");
    let existing = |path: PathBuf| {
        assert!(
            path.exists(),
            "{} is missing: run `make plugins`",
            path.display()
        );
        path.display().to_string()
    };
    match lang {
        "python" => vec![format!(
            "COMPONENTIZE_PY={}",
            existing(chains.join("python/bin/componentize-py"))
        )],
        "js" => vec![format!(
            "JCO={}",
            existing(chains.join("js/node_modules/.bin/jco"))
        )],
        "c" => vec![format!("TOOLCHAIN={}", existing(chains.join("c")))],
        "rust" => {
            // Reuse one target dir across runs so the bindings crate is
            // built once per machine.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"))
                .join("scaffold-rust");
            vec![format!("CARGO_TARGET_DIR={}", target.display())]
        }
        other => panic!("no tool chain for {other}"),
    }
}

#[test]
fn a_new_rust_tool_and_extension_build_and_check() {
    scaffold_builds_and_checks("rust", "tool");
    scaffold_builds_and_checks("rust", "extension");
}

#[test]
fn a_new_python_tool_and_extension_build_and_check() {
    scaffold_builds_and_checks("python", "tool");
    scaffold_builds_and_checks("python", "extension");
}

#[test]
fn a_new_js_tool_and_extension_build_and_check() {
    scaffold_builds_and_checks("js", "tool");
    scaffold_builds_and_checks("js", "extension");
}

#[test]
fn a_new_c_tool_and_extension_build_and_check() {
    scaffold_builds_and_checks("c", "tool");
    scaffold_builds_and_checks("c", "extension");
}

#[test]
fn a_new_plugin_refuses_a_bad_name_and_a_used_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_agent-host");
    let (code, _, stderr) = run_command(
        std::process::Command::new(binary)
            .current_dir(tmp.path())
            .args(["plugins", "new", "Bad_Name"]),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot name a plugin"), "{stderr}");
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "mine").unwrap();
    let (code, _, stderr) = run_command(
        std::process::Command::new(binary)
            .current_dir(tmp.path())
            .args(["plugins", "new", "fine", "taken"]),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
}
