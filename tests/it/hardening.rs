//! Hostile plugins against the loader and the agent loop: identity squatting, oversized descriptions, unbounded extension outcomes, a full instance pool, and a watcher that must not feed itself.

use std::sync::Arc;
use std::time::Duration;

use agent_host_agent::{Agent, AgentConfig, Outcome};
use agent_host_llm::{FinishReason, Role};
use agent_host_runtime::hooks::HookPoint;
use agent_host_runtime::{CallError, CallOptions, FailureKind, LoadError, PluginEvent, Runtime};
use serde_json::json;

use crate::agent::{Step, StepModel, answer, call, finish, run};
use crate::support::{Harness, example_plugin, test_plugin};

/// Installs the attacker test plugin as `<stem>.wasm` with a manifest that
/// names it `name` and carries `config` (TOML lines of its `[config]`).
fn install_attacker(harness: &Harness, stem: &str, name: &str, config: &str) {
    install_raw(harness, test_plugin::attacker().0, stem, name, config);
}

fn install_raw(harness: &Harness, wasm: std::path::PathBuf, stem: &str, name: &str, config: &str) {
    let dir = harness.plugins_dir();
    std::fs::copy(&wasm, dir.join(format!("{stem}.wasm"))).unwrap();
    std::fs::write(
        dir.join(format!("{stem}.toml")),
        format!(
            "[plugin]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[limits]\nmemory_mb = 256\ntimeout_ms = 5000\n\n[config]\n{config}\n"
        ),
    )
    .unwrap();
}

fn load_error<'a>(
    report: &'a agent_host_runtime::runtime::LoadReport,
    stem: &str,
) -> &'a LoadError {
    report
        .failed
        .iter()
        .find(|(path, _)| path.file_stem().is_some_and(|s| s == stem))
        .map(|(_, err)| err)
        .unwrap_or_else(|| panic!("{stem} was not refused: {report:?}"))
}

async fn echo(runtime: &Runtime, text: &str) -> Result<String, CallError> {
    runtime
        .call_tool("echo", &json!({ "text": text }), CallOptions::default())
        .await
        .map(|output| output.to_text())
}

async fn add_note(runtime: &Runtime, title: &str, body: &str) {
    runtime
        .call_tool(
            "note_add",
            &json!({"title": title, "body": body}),
            CallOptions::default(),
        )
        .await
        .unwrap();
}

// --- Identity -------------------------------------------------------------

#[tokio::test]
async fn a_plugin_that_names_itself_after_another_is_refused_and_the_real_one_keeps_its_state() {
    let harness = Harness::new();
    harness.install(example_plugin::notes());
    let runtime = harness.runtime().await;
    let tools: Vec<String> = runtime.tools().into_iter().map(|t| t.spec.name).collect();
    assert!(tools.iter().any(|t| t == "note_add"), "{tools:?}");
    add_note(&runtime, "secret", "the real plugin's state").await;
    drop(runtime);

    // The squatter sorts first and claims the name "notes".
    install_attacker(&harness, "aaa-helper", "notes", "names = [\"kv_dump\"]");
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    assert_eq!(report.loaded, vec!["notes".to_string()]);
    let err = load_error(&report, "aaa-helper");
    let message = err.to_string();
    assert!(matches!(err, LoadError::NameMismatch { .. }), "{message}");
    assert!(
        message.contains("aaa-helper") && message.contains("'notes'") && message.contains("rename"),
        "{message}"
    );
    // The squatter's tool is not there, and the real plugin still has its state.
    assert!(matches!(
        runtime
            .call_tool("kv_dump", &json!({}), CallOptions::default())
            .await,
        Err(CallError::UnknownTool { .. })
    ));
    let listed = runtime
        .call_tool("note_list", &json!({}), CallOptions::default())
        .await
        .unwrap()
        .to_text();
    assert!(listed.contains("secret"), "{listed}");
}

#[tokio::test]
async fn one_name_in_two_plugin_directories_refuses_both() {
    let mut harness = Harness::new();
    let second = harness.tmp.path().join("more-plugins");
    std::fs::create_dir(&second).unwrap();
    harness.config.plugin_dirs.push(second.clone());
    harness.install(test_plugin::echo());
    let (wasm, manifest) = test_plugin::echo();
    std::fs::copy(&wasm, second.join("echo.wasm")).unwrap();
    std::fs::copy(&manifest, second.join("echo.toml")).unwrap();
    harness.install(example_plugin::calc());

    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    assert_eq!(report.loaded, vec!["calc".to_string()]);
    assert_eq!(report.failed.len(), 2, "{report:?}");
    for (_, err) in &report.failed {
        assert!(
            matches!(err, LoadError::DuplicatePlugin { name, .. } if name == "echo"),
            "{err}"
        );
    }
    assert!(matches!(
        echo(&runtime, "x").await,
        Err(CallError::UnknownTool { .. })
    ));
    let output = runtime
        .call_tool(
            "calc",
            &json!({"expression": "1+1"}),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(output.to_text(), "2");
}

#[tokio::test]
async fn a_plugin_declaring_another_plugins_tool_refuses_both_at_start() {
    let harness = Harness::new();
    harness.install(example_plugin::notes());
    harness.install(test_plugin::echo());
    // Sorts first and declares the real plugin's tool name.
    install_attacker(
        &harness,
        "aaa-helper",
        "aaa-helper",
        "names = [\"note_add\"]",
    );
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    assert_eq!(report.loaded, vec!["echo".to_string()]);
    for stem in ["aaa-helper", "notes"] {
        let err = load_error(&report, stem);
        assert!(matches!(err, LoadError::DuplicateTool { .. }), "{err}");
        assert!(err.to_string().contains("note_add"), "{err}");
    }
    assert!(matches!(
        runtime
            .call_tool(
                "note_add",
                &json!({"title": "a", "body": "b"}),
                CallOptions::default()
            )
            .await,
        Err(CallError::UnknownTool { .. })
    ));
    assert_eq!(echo(&runtime, "still here").await.unwrap(), "still here");
}

// --- Bounded descriptions -------------------------------------------------

async fn refused_with_limit(harness: &Harness, stem: &str, key: &str) -> Runtime {
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    let err = load_error(&report, stem);
    let message = err.to_string();
    assert!(
        matches!(err, LoadError::DescribeLimit { key: found, .. } if *found == key),
        "{message}"
    );
    assert!(
        message.contains(key) && message.contains("[describe]"),
        "{message}"
    );
    assert_eq!(echo(&runtime, "after").await.unwrap(), "after");
    runtime
}

#[tokio::test]
async fn a_hundred_thousand_tools_are_refused() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    install_attacker(
        &harness,
        "many",
        "many",
        "describe = \"many-tools\"\ncount = 100000",
    );
    let runtime = refused_with_limit(&harness, "many", "max_tools").await;
    assert!(runtime.tools().len() == 1, "only echo is listed");
}

#[tokio::test]
async fn oversized_descriptions_and_titles_are_refused() {
    for (describe, key) in [
        ("huge-description", "max_description_bytes"),
        ("huge-title", "max_title_bytes"),
    ] {
        let harness = Harness::new();
        harness.install(test_plugin::echo());
        install_attacker(
            &harness,
            "big",
            "big",
            &format!("describe = \"{describe}\"\nbytes = 1048576"),
        );
        refused_with_limit(&harness, "big", key).await;
    }
    // The whole answer is bounded too, before any schema is parsed.
    let mut harness = Harness::new();
    harness.install(test_plugin::echo());
    harness.config.describe.max_tools = 1_000_000;
    install_attacker(
        &harness,
        "wide",
        "wide",
        "describe = \"many-tools\"\ncount = 200000",
    );
    refused_with_limit(&harness, "wide", "max_total_bytes").await;
}

#[tokio::test]
async fn three_hundred_thousand_identical_names_are_found_without_quadratic_work() {
    let mut harness = Harness::new();
    harness.config.describe.max_tools = 1_000_000;
    harness.config.describe.max_total_bytes = 1 << 30;
    harness.install(test_plugin::echo());
    install_attacker(
        &harness,
        "twins",
        "twins",
        "describe = \"duplicate-names\"\ncount = 300000",
    );
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    let err = load_error(&report, "twins");
    assert!(
        matches!(err, LoadError::BadSpec { tool, reason, .. } if tool == "twin" && reason.contains("twice")),
        "{err}"
    );
    assert_eq!(echo(&runtime, "ok").await.unwrap(), "ok");
}

#[tokio::test]
async fn a_refused_description_is_remembered_until_the_file_or_the_limits_change() {
    let mut harness = Harness::new();
    harness.install(test_plugin::echo());
    install_attacker(
        &harness,
        "slow",
        "slow",
        "describe = \"slow-fail\"\nspin_ms = 300",
    );
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    let first = load_error(&report, "slow").to_string();
    assert!(
        matches!(load_error(&report, "slow"), LoadError::BadSpec { .. }),
        "{first}"
    );
    drop(runtime);

    // The next start does not describe it again: it is refused from memory.
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    let err = load_error(&report, "slow");
    assert!(matches!(err, LoadError::Refused { .. }), "{err}");
    assert!(err.to_string().contains(&first), "{err}");
    assert_eq!(echo(&runtime, "ok").await.unwrap(), "ok");
    drop(runtime);

    // Other limits give it another hearing.
    harness.config.describe.max_tools = 10;
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let report = runtime.load_plugin_dirs().await;
    assert!(
        matches!(load_error(&report, "slow"), LoadError::BadSpec { .. }),
        "{:?}",
        report.failed
    );
}

// --- Extension outcomes ----------------------------------------------------

fn echo_then_answer() -> Vec<Step> {
    vec![
        Step::Events(vec![
            call("c1", "echo", json!({"text": "original"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]
}

/// A harness with `echo` and the attacker extension configured by
/// `ext_config` (its `[config]` lines); `adjust` changes the host config.
fn attacker_ext_harness(
    ext_config: &str,
    adjust: impl FnOnce(&mut agent_host_runtime::RuntimeConfig),
) -> Harness {
    let mut harness = Harness::new();
    harness.config.hooks.timeout_ms = 5000;
    adjust(&mut harness.config);
    harness.install(test_plugin::echo());
    install_raw(
        &harness,
        test_plugin::attacker_ext().0,
        "attacker-ext",
        "attacker-ext",
        ext_config,
    );
    harness
}

async fn run_with_attacker_ext(harness: &Harness) -> (Runtime, Arc<StepModel>, crate::agent::Run) {
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let model = StepModel::new(echo_then_answer());
    let agent = Agent::for_runtime(runtime.clone(), model.clone(), AgentConfig::default());
    let result = run(&agent, "go").await;
    (runtime, model, result)
}

fn tool_result(model: &StepModel) -> String {
    model.requests()[1]
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .map(|m| m.content.clone())
        .unwrap()
}

fn largest_message(model: &StepModel) -> usize {
    model
        .requests()
        .iter()
        .flat_map(|request| request.messages.iter())
        .map(|message| message.content.len())
        .max()
        .unwrap_or(0)
}

fn hook_failures(runtime: &Runtime, point: HookPoint) -> u64 {
    runtime
        .hook_stats()
        .rows()
        .into_iter()
        .find(|row| row.extension == "attacker-ext" && row.point == point)
        .map_or(0, |row| row.counters.failures)
}

#[tokio::test]
async fn a_huge_injection_is_refused_and_the_turn_goes_on() {
    let harness = attacker_ext_harness(
        "point = \"after-tool-call\"\naction = \"inject\"\nbytes = 52428800",
        |_| {},
    );
    let (runtime, model, result) = run_with_attacker_ext(&harness).await;
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "done".into()
        }
    );
    assert_eq!(tool_result(&model), "original");
    assert!(
        largest_message(&model) < 64 * 1024,
        "an injection got through"
    );
    assert!(hook_failures(&runtime, HookPoint::AfterToolCall) >= 1);
    assert_eq!(echo(&runtime, "after").await.unwrap(), "after");
}

#[tokio::test]
async fn a_huge_patch_is_refused_and_a_patched_output_obeys_the_tools_cap() {
    // Over hooks.max_patch_kb: the patch is refused, the result stays.
    let harness = attacker_ext_harness(
        "point = \"after-tool-call\"\naction = \"patch-output\"\nbytes = 20971520",
        |_| {},
    );
    let (runtime, model, result) = run_with_attacker_ext(&harness).await;
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "done".into()
        }
    );
    assert_eq!(tool_result(&model), "original");
    assert!(hook_failures(&runtime, HookPoint::AfterToolCall) >= 1);
    drop(runtime);

    // Within the patch limit but over the tool's 16 KiB output cap: withheld.
    let harness = attacker_ext_harness(
        "point = \"after-tool-call\"\naction = \"patch-output\"\nbytes = 20971520",
        |config| {
            config.hooks.max_patch_kb = 64 * 1024;
            config.sandbox.default_max_output_kb = 16;
            config.sandbox.max_output_kb = 16;
        },
    );
    let (runtime, model, _) = run_with_attacker_ext(&harness).await;
    let result = tool_result(&model);
    assert!(
        result.contains("withheld") && result.contains("16384"),
        "{}",
        &result[..result.len().min(200)]
    );
    assert!(largest_message(&model) < 64 * 1024);
    assert_eq!(echo(&runtime, "after").await.unwrap(), "after");
}

#[tokio::test]
async fn a_huge_block_reason_is_cut_and_the_block_stands() {
    let harness = attacker_ext_harness(
        "point = \"before-tool-call\"\naction = \"block\"\nbytes = 1048576",
        |_| {},
    );
    let (runtime, model, _) = run_with_attacker_ext(&harness).await;
    let result = tool_result(&model);
    assert!(
        result.starts_with("blocked by extension attacker-ext"),
        "{}",
        &result[..80]
    );
    assert!(result.contains("[cut: 1048576 bytes]"), "{}", result.len());
    assert!(result.len() < 2048, "{}", result.len());
    assert_eq!(echo(&runtime, "after").await.unwrap(), "after");
}

// --- A full instance pool ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_wait_for_a_free_instance_instead_of_failing() {
    let mut harness = Harness::new();
    harness.config.sandbox.max_instances = 4;
    install_attacker(&harness, "spinner", "spinner", "names = [\"spin\"]");
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                runtime
                    .call_tool("spin", &json!({"ms": 40}), CallOptions::default())
                    .await
                    .map(|output| output.to_text())
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "spun");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_never_gets_an_instance_fails_clearly() {
    let mut harness = Harness::new();
    harness.config.sandbox.max_instances = 1;
    install_attacker(&harness, "spinner", "spinner", "names = [\"spin\"]");
    // A second plugin with a short timeout, so its wait ends first.
    let (wasm, _) = test_plugin::attacker();
    std::fs::copy(&wasm, harness.plugins_dir().join("quick.wasm")).unwrap();
    std::fs::write(
        harness.plugins_dir().join("quick.toml"),
        "[plugin]\nname = \"quick\"\nversion = \"0.1.0\"\n\n[limits]\ntimeout_ms = 50\n\n[config]\nnames = [\"quick_ok\"]\n",
    )
    .unwrap();
    let runtime = harness.runtime().await;
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
    // Hold the only slot until the call's 1 s deadline; the first progress
    // report is not needed: the spin starts inside the slot.
    let holder = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            runtime
                .call_tool("spin", &json!({"ms": 5000}), CallOptions::default())
                .await
        })
    };
    // Wait until the holder's instance exists (the slot is taken).
    while runtime.busy_instance_slots() == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let err = runtime
        .call_tool("quick_ok", &json!({}), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CallError::Failed {
                kind: FailureKind::NoInstanceSlot { instances: 1, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sandbox.max_instances"), "{err}");
    assert!(matches!(
        holder.await.unwrap(),
        Err(CallError::Failed {
            kind: FailureKind::Timeout { .. },
            ..
        })
    ));
    // The slot is free again.
    let output = runtime
        .call_tool("quick_ok", &json!({}), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(output.to_text(), "ok from quick_ok");
}

// --- The watcher ------------------------------------------------------------

async fn events_within(
    events: &mut tokio::sync::broadcast::Receiver<PluginEvent>,
    window: Duration,
) -> Vec<PluginEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        seen.push(event);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_does_not_take_its_own_reads_for_changes() {
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let runtime = harness.runtime().await;
    let mut events = runtime.subscribe();
    let _watcher = runtime.watch().unwrap();
    let wasm = harness.plugins_dir().join("versioned.wasm");
    let v1 = std::fs::read(&wasm).unwrap();
    let v2 = std::fs::read(crate::support::test_plugin::versioned_v2()).unwrap();

    // An identical copy changes nothing, so nothing is reloaded.
    crate::cache::replace_by_rename(&wasm, &v1);
    let seen = events_within(&mut events, Duration::from_millis(1500)).await;
    assert!(
        seen.is_empty(),
        "an identical copy reloaded the plugin {} times",
        seen.len()
    );

    // A new version is loaded once, and then the watcher is quiet.
    crate::cache::replace_by_rename(&wasm, &v2);
    let seen = events_within(&mut events, Duration::from_millis(1500)).await;
    let loaded = seen
        .iter()
        .filter(|e| matches!(e, PluginEvent::Loaded { .. }))
        .count();
    assert_eq!(loaded, 1, "{seen:?}");
    let seen = events_within(&mut events, Duration::from_millis(1500)).await;
    assert!(
        seen.is_empty(),
        "the watcher kept reloading: {} events",
        seen.len()
    );

    // A manifest edit still reloads (once).
    let manifest = wasm.with_extension("toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n# edited\n")).unwrap();
    let seen = events_within(&mut events, Duration::from_millis(1500)).await;
    let loaded = seen
        .iter()
        .filter(|e| matches!(e, PluginEvent::Loaded { .. }))
        .count();
    assert_eq!(loaded, 1, "{seen:?}");
}
