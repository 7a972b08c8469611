//! Extensions: each outcome kind, ordering, throttles on a manual clock, budgets and switch-off, hot reload, contract version, the example extensions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_host_agent::{Agent, AgentConfig, AgentEvent, Outcome};
use agent_host_llm::{FinishReason, Role};
use agent_host_runtime::config::{ExtensionSettings, HookOverride};
use agent_host_runtime::hooks::{HookCounters, HookPoint, Hooks, ManualClock};
use agent_host_runtime::{FailureKind, LoadError, PluginKind, Runtime};
use serde_json::{Value, json};

use crate::agent::{Step, StepModel, answer, call, finish, run, text};
use crate::support::{Harness, example_plugin, run_command, test_plugin};

/// Installs the probe extension under `name` (its own manifest, same wasm).
fn install_probe(harness: &Harness, name: &str) {
    let (wasm, _) = test_plugin::ext_probe();
    let dir = harness.plugins_dir();
    std::fs::copy(&wasm, dir.join(format!("{name}.wasm"))).unwrap();
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[plugin]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[limits]\nmemory_mb = 16\ntimeout_ms = 2000\n\n[config]\ntag = \"{name}\"\n"
        ),
    )
    .unwrap();
}

/// Settings that keep only `points` of an extension's subscriptions and
/// give it `config`.
fn settings(points: &[(&str, HookOverride)], config: Value) -> ExtensionSettings {
    let mut hooks = BTreeMap::new();
    for point in HookPoint::ALL {
        let over = points
            .iter()
            .find(|(name, _)| *name == point.as_str())
            .map(|(_, over)| over.clone())
            .unwrap_or(HookOverride {
                enabled: Some(false),
                ..HookOverride::default()
            });
        hooks.insert(point.as_str().to_owned(), over);
    }
    ExtensionSettings {
        config: match config {
            Value::Object(map) => Some(map),
            _ => None,
        },
        hooks,
        ..ExtensionSettings::default()
    }
}

fn on(point: &str) -> (&str, HookOverride) {
    (point, HookOverride::default())
}

/// Installs the probe, keeps only `points` of its subscriptions, and sets
/// what it does at each point (`actions`, see `probe_config`).
fn set_probe(harness: &mut Harness, points: &[(&str, HookOverride)], actions: Value) {
    install_probe(harness, "probe");
    harness.config.extensions.insert(
        "probe".into(),
        settings(points, probe_config("probe", actions)),
    );
}

/// A probe config: `actions` maps hook points to what the probe does there.
fn probe_config(tag: &str, actions: Value) -> Value {
    json!({ "tag": tag, "actions": actions })
}

fn counters(runtime: &Runtime, extension: &str, point: HookPoint) -> HookCounters {
    runtime
        .hook_stats()
        .rows()
        .into_iter()
        .find(|row| row.extension == extension && row.point == point)
        .map(|row| row.counters)
        .unwrap_or_default()
}

/// Events the probe recorded in its kv state, in order.
fn recorded(runtime: &Runtime, extension: &str) -> Vec<Value> {
    let kv = runtime.store().plugin_kv(extension);
    kv.list("events/")
        .unwrap()
        .into_iter()
        .map(|key| serde_json::from_slice(&kv.get(&key).unwrap().unwrap()).unwrap())
        .collect()
}

/// The payload of a recorded event (kept as JSON or as JSON text).
fn payload_of(event: &Value) -> Value {
    match &event["payload"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    }
}

fn calc_then_answer() -> Vec<Step> {
    vec![
        Step::Events(vec![
            call("c1", "calc", json!({"expression": "6*7"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]
}

async fn agent_over(harness: &Harness, model: Arc<StepModel>) -> (Runtime, Agent) {
    let runtime = harness.runtime().await;
    let agent = Agent::for_runtime(runtime.clone(), model, AgentConfig::default());
    (runtime, agent)
}

fn tool_result(model: &StepModel, request: usize) -> String {
    model.requests()[request]
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .map(|m| m.content.clone())
        .unwrap()
}

#[tokio::test]
async fn an_extension_is_loaded_as_an_extension() {
    let harness = Harness::new();
    install_probe(&harness, "probe");
    harness.install(example_plugin::calc());
    let runtime = harness.runtime().await;
    let probe = runtime
        .plugins()
        .into_iter()
        .find(|p| p.name() == "probe")
        .unwrap();
    assert_eq!(probe.kind, PluginKind::Extension);
    assert!(probe.tools.is_empty());
    let spec = probe.extension.as_ref().unwrap();
    assert_eq!(spec.subscriptions.len(), HookPoint::ALL.len());
    // Extensions offer no tools to the model.
    assert_eq!(
        runtime
            .tools()
            .iter()
            .map(|t| t.spec.name.as_str())
            .collect::<Vec<_>>(),
        vec!["calc"]
    );
    // A second runtime lists it from the stored description, lazily.
    drop(runtime);
    let again = harness.runtime().await;
    let probe = again
        .plugins()
        .into_iter()
        .find(|p| p.name() == "probe")
        .unwrap();
    assert_eq!(probe.kind, PluginKind::Extension);
    assert!(probe.cache_level().is_none(), "listing must not prepare it");
}

#[tokio::test]
async fn continue_changes_nothing_and_is_counted() {
    let mut harness = Harness::new();
    harness.install(example_plugin::calc());
    set_probe(
        &mut harness,
        &[
            on("before-tool-call"),
            on("after-tool-call"),
            on("turn-start"),
        ],
        json!({}),
    );
    let model = StepModel::new(calc_then_answer());
    let (runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "compute").await;
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "done".into()
        }
    );
    assert_eq!(tool_result(&model, 1), "42");
    assert_eq!(counters(&runtime, "probe", HookPoint::TurnStart).calls, 2);
    assert_eq!(
        counters(&runtime, "probe", HookPoint::BeforeToolCall).calls,
        1
    );
    assert_eq!(
        counters(&runtime, "probe", HookPoint::AfterToolCall).calls,
        1
    );
    // Not subscribed (switched off by config): never called.
    assert_eq!(
        counters(&runtime, "probe", HookPoint::BeforeLlmCall).calls,
        0
    );
}

#[tokio::test]
async fn patches_change_arguments_results_and_the_system_prompt() {
    let mut harness = Harness::new();
    harness.install(example_plugin::calc());
    set_probe(
        &mut harness,
        &[
            on("before-tool-call"),
            on("after-tool-call"),
            on("before-llm-call"),
        ],
        json!({
            "before-tool-call": {"kind": "patch", "value": {"arguments": {"expression": "1+1"}}},
            "after-tool-call": {"kind": "append-output", "value": " (checked)"},
            "before-llm-call": {"kind": "append-system", "value": " Be brief."},
        }),
    );
    let model = StepModel::new(calc_then_answer());
    let (_runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "compute").await;
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    // The patched arguments ran, and the patched result reached the model.
    assert_eq!(tool_result(&model, 1), "2 (checked)");
    let requests = model.requests();
    assert!(
        requests[0]
            .system
            .as_deref()
            .unwrap()
            .ends_with(" Be brief."),
        "{:?}",
        requests[0].system
    );
    // The stored history has the patched result too (what the model saw).
    let stored = result
        .history
        .iter()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    assert_eq!(stored.content, "2 (checked)");
}

#[tokio::test]
async fn a_blocked_tool_call_is_not_run_and_the_model_gets_the_reason() {
    let mut harness = Harness::new();
    harness.install(example_plugin::calc());
    set_probe(
        &mut harness,
        &[on("before-tool-call"), on("after-tool-call")],
        json!({
            "before-tool-call": {"kind": "block", "value": "no maths today"},
            "after-tool-call": {"kind": "continue", "record": true},
        }),
    );
    let model = StepModel::new(calc_then_answer());
    let (runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "go").await;
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    let seen = tool_result(&model, 1);
    assert!(
        seen.contains("blocked by extension probe") && seen.contains("no maths today"),
        "{seen}"
    );
    assert!(result.events.iter().any(|e| matches!(
        e,
        AgentEvent::HookBlocked {
            point: HookPoint::BeforeToolCall,
            ..
        }
    )));
    // The tool never ran: the after-tool-call hook saw the refusal, not 42.
    let after = recorded(&runtime, "probe");
    assert_eq!(after.len(), 1);
    let payload = payload_of(&after[0]);
    assert_eq!(payload["ok"], false, "{payload}");
    assert!(!payload["output"].as_str().unwrap().contains("42"));
}

#[tokio::test]
async fn a_block_before_the_model_call_stops_the_run() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[on("before-llm-call")],
        json!({"before-llm-call": {"kind": "block", "value": "budget used up"}}),
    );
    let model = StepModel::new(vec![answer("never")]);
    let (_runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "hello").await;
    assert_eq!(
        result.outcome,
        Outcome::Blocked {
            extension: "probe".into(),
            reason: "budget used up".into()
        }
    );
    assert!(model.requests().is_empty(), "the model must not be called");
    let last = result.history.last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert!(last.content.contains("budget used up"), "{last:?}");
}

#[tokio::test]
async fn an_injected_message_reaches_the_model() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[on("turn-start")],
        json!({"turn-start": {"kind": "inject", "value": "The user prefers metric units."}}),
    );
    let model = StepModel::new(vec![answer("noted")]);
    let (_runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "hello").await;
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    let request = &model.requests()[0];
    let injected = request.messages.last().unwrap();
    assert_eq!(injected.role, Role::User);
    assert!(
        injected.content.contains("[extension probe]") && injected.content.contains("metric units"),
        "{injected:?}"
    );
    assert!(
        result
            .events
            .iter()
            .any(|e| matches!(e, AgentEvent::HookInjected { .. }))
    );
}

#[tokio::test]
async fn hooks_run_by_priority_then_name_and_see_earlier_patches() {
    let mut harness = Harness::new();
    harness.install(example_plugin::calc());
    for (name, priority) in [("probe-a", 5), ("probe-b", -5), ("probe-c", 5)] {
        install_probe(&harness, name);
        let mut s = settings(
            &[on("after-tool-call")],
            probe_config(
                name,
                json!({"after-tool-call": {"kind": "append-output", "value": format!("[{name}]")}}),
            ),
        );
        s.priority = Some(priority);
        harness.config.extensions.insert(name.into(), s);
    }
    let model = StepModel::new(calc_then_answer());
    let (_runtime, agent) = agent_over(&harness, model.clone()).await;
    run(&agent, "compute").await;
    assert_eq!(tool_result(&model, 1), "42[probe-b][probe-a][probe-c]");
}

#[tokio::test]
async fn min_interval_skips_events_until_the_clock_moves() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[(
            "turn-end",
            HookOverride {
                min_interval_ms: Some(1000),
                ..HookOverride::default()
            },
        )],
        json!({}),
    );
    let runtime = harness.runtime().await;
    let clock = ManualClock::new();
    let hooks = Hooks::with_clock(runtime.clone(), None, Arc::new(clock.clone()));
    for _ in 0..3 {
        hooks.dispatch(HookPoint::TurnEnd, || json!({})).await;
    }
    clock.advance(Duration::from_millis(999));
    hooks.dispatch(HookPoint::TurnEnd, || json!({})).await;
    clock.advance(Duration::from_millis(1));
    hooks.dispatch(HookPoint::TurnEnd, || json!({})).await;
    let c = counters(&runtime, "probe", HookPoint::TurnEnd);
    assert_eq!((c.calls, c.skipped), (2, 3));
}

#[tokio::test]
async fn every_n_turns_delivers_on_turns_1_n_plus_1_and_so_on() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[(
            "turn-start",
            HookOverride {
                every_n_turns: Some(3),
                ..HookOverride::default()
            },
        )],
        json!({"turn-start": {"kind": "continue", "record": true}}),
    );
    let runtime = harness.runtime().await;
    let hooks = Hooks::with_clock(runtime.clone(), None, Arc::new(ManualClock::new()));
    for _ in 0..7 {
        let turn = hooks.begin_turn();
        hooks
            .dispatch(HookPoint::TurnStart, || json!({ "turn": turn }))
            .await;
    }
    let turns: Vec<u64> = recorded(&runtime, "probe")
        .iter()
        .map(|event| event["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, vec![1, 4, 7]);
    assert_eq!(counters(&runtime, "probe", HookPoint::TurnStart).skipped, 4);
}

#[tokio::test]
async fn stream_chunks_are_delivered_in_batches() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[(
            "stream-chunk",
            HookOverride {
                coalesce_chunks: Some(20),
                coalesce_ms: Some(500),
                ..HookOverride::default()
            },
        )],
        json!({"stream-chunk": {"kind": "continue", "record": true}}),
    );
    let runtime = harness.runtime().await;
    let clock = ManualClock::new();
    let hooks = Hooks::with_clock(runtime.clone(), None, Arc::new(clock.clone()));

    // By count: 45 chunks -> 20 + 20 + the rest at the end of the stream.
    let mut tap = hooks.stream_tap().unwrap();
    for i in 0..45 {
        tap.push(&format!("t{i} ")).await;
    }
    tap.finish().await;
    // By age: the clock is read at the first chunk and every 16th; the
    // first reading after the batch is 500 ms old sends it.
    let mut tap = hooks.stream_tap().unwrap();
    tap.push("a").await;
    clock.advance(Duration::from_millis(600));
    for _ in 0..15 {
        tap.push("b").await;
    }
    tap.push("c").await;
    tap.push("d").await;
    tap.finish().await;

    let mut streamed = String::new();
    let batches: Vec<u64> = recorded(&runtime, "probe")
        .iter()
        .map(|event| {
            let payload = payload_of(event);
            streamed.push_str(payload["text"].as_str().unwrap());
            payload["chunks"].as_u64().unwrap()
        })
        .collect();
    let expected: String = (0..45).map(|i| format!("t{i} ")).collect();
    assert_eq!(streamed, format!("{expected}a{}cd", "b".repeat(15)));
    assert_eq!(batches, vec![20, 20, 5, 17, 1]);
    let c = counters(&runtime, "probe", HookPoint::StreamChunk);
    assert_eq!(c.calls, 5);
    assert_eq!(c.coalesced, 63 - 5);
}

#[tokio::test]
async fn a_stream_guard_stops_the_model_mid_answer() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[(
            "stream-chunk",
            HookOverride {
                coalesce_chunks: Some(10),
                ..HookOverride::default()
            },
        )],
        json!({"stream-chunk": {"kind": "block", "value": "the answer leaks a secret"}}),
    );
    let mut events: Vec<_> = (0..100).map(|i| text(&format!("w{i} "))).collect();
    events.push(finish(FinishReason::Stop));
    let model = StepModel::new(vec![Step::Events(events)]);
    let (runtime, agent) = agent_over(&harness, model).await;
    let result = run(&agent, "talk").await;
    assert_eq!(
        result.outcome,
        Outcome::Blocked {
            extension: "probe".into(),
            reason: "the answer leaks a secret".into()
        }
    );
    // The first batch was the last thing read: the rest was never taken.
    let streamed: usize = result
        .events
        .iter()
        .filter(|e| matches!(e, AgentEvent::TextDelta { .. }))
        .count();
    assert_eq!(streamed, 10);
    assert_eq!(counters(&runtime, "probe", HookPoint::StreamChunk).calls, 1);
    let last = result.history.last().unwrap();
    assert!(
        last.content.starts_with("w0 ") && last.content.contains("leaks a secret"),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_streamed_answer_reaches_a_subscriber_in_default_batches() {
    let mut harness = Harness::new();
    set_probe(&mut harness, &[on("stream-chunk")], json!({}));
    let mut events: Vec<_> = (0..1000).map(|i| text(&format!("w{i} "))).collect();
    events.push(finish(FinishReason::Stop));
    let model = StepModel::new(vec![Step::Events(events)]);
    let (runtime, agent) = agent_over(&harness, model).await;
    let result = run(&agent, "talk").await;
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    let c = counters(&runtime, "probe", HookPoint::StreamChunk);
    let per_batch = u64::from(harness.config.hooks.default_coalesce_chunks);
    // Batches by count, plus the ones the default age cut short.
    assert!(c.calls >= 1000u64.div_ceil(per_batch), "{c:?}");
    assert!(c.calls < 1000 / 4, "chunks must be batched: {c:?}");
    assert_eq!(c.calls + c.coalesced, 1000);
}

#[tokio::test]
async fn a_hook_that_keeps_running_out_of_budget_is_switched_off() {
    let mut harness = Harness::new();
    harness.install(example_plugin::calc());
    harness.config.hooks.timeout_ms = 50;
    harness.config.hooks.max_failures = 2;
    set_probe(
        &mut harness,
        &[on("turn-start")],
        json!({"turn-start": {"kind": "loop"}}),
    );
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("c1", "calc", json!({"expression": "1+1"})),
            finish(FinishReason::ToolCalls),
        ]),
        Step::Events(vec![
            call("c2", "calc", json!({"expression": "2+2"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]);
    let (runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "go").await;
    // The turn went on without the hook each time.
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "done".into()
        }
    );
    assert_eq!(model.requests().len(), 3);
    let c = counters(&runtime, "probe", HookPoint::TurnStart);
    assert_eq!((c.calls, c.failures, c.disabled), (2, 2, 1), "{c:?}");
    let disabled: Vec<_> = result
        .events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::HookDisabled {
                extension, reason, ..
            } => Some((extension, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(disabled.len(), 1);
    assert!(
        disabled[0].1.contains("time limit of 50 ms"),
        "{:?}",
        disabled[0]
    );
}

#[tokio::test]
async fn a_fail_closed_guard_that_fails_blocks_and_stays_on() {
    let mut harness = Harness::new();
    install_probe(&harness, "probe");
    harness.install(example_plugin::calc());
    harness.config.hooks.timeout_ms = 50;
    harness.config.hooks.max_failures = 1;
    let mut guard = settings(
        &[on("before-tool-call")],
        probe_config("probe", json!({"before-tool-call": {"kind": "loop"}})),
    );
    guard.fail_closed = true;
    harness.config.extensions.insert("probe".into(), guard);
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("c1", "calc", json!({"expression": "1+1"})),
            finish(FinishReason::ToolCalls),
        ]),
        Step::Events(vec![
            call("c2", "calc", json!({"expression": "2+2"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]);
    let (runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "go").await;
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    // Both calls were refused, not run unguarded.
    for request in 1..=2 {
        let seen = tool_result(&model, request);
        assert!(seen.contains("fail closed"), "{seen}");
    }
    let c = counters(&runtime, "probe", HookPoint::BeforeToolCall);
    assert_eq!((c.calls, c.failures, c.disabled), (2, 2, 0), "{c:?}");
}

#[tokio::test]
async fn observation_points_see_the_session_turns_progress_and_errors() {
    let mut harness = Harness::new();
    harness.install(example_plugin::calc());
    harness.install(test_plugin::hostile());
    let record = json!({"kind": "continue", "record": true});
    let points = [
        "session-start",
        "turn-start",
        "turn-end",
        "after-llm-response",
        "error",
        "session-end",
    ];
    let actions: serde_json::Map<String, Value> = points
        .iter()
        .map(|point| ((*point).to_owned(), record.clone()))
        .collect();
    let mut subscribed: Vec<(&str, HookOverride)> = points.iter().map(|p| on(p)).collect();
    // Progress arrives while the tool runs, so it is only counted here.
    subscribed.push(on("tool-progress"));
    set_probe(&mut harness, &subscribed, Value::Object(actions));
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("c1", "progress_steps", json!({"steps": 3})),
            call("c2", "calc", json!({"expression": "1/0"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]);
    let runtime = harness.runtime().await;
    let agent =
        Agent::for_runtime(runtime.clone(), model, AgentConfig::default()).with_session("obs-1");
    let result = run(&agent, "go").await;
    agent
        .end_session(&result.outcome, agent.session_turns())
        .await;

    let seen: Vec<(String, Value)> = recorded(&runtime, "probe")
        .iter()
        .map(|event| {
            (
                event["point"].as_str().unwrap().to_owned(),
                payload_of(event),
            )
        })
        .collect();
    let order: Vec<&str> = seen.iter().map(|(point, _)| point.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "session-start",
            "turn-start",
            "after-llm-response",
            "error",
            "turn-end",
            "turn-start",
            "after-llm-response",
            "turn-end",
            "session-end",
        ]
    );
    let payload = |point: &str| &seen.iter().find(|(p, _)| p == point).unwrap().1;
    assert_eq!(payload("session-start")["session_id"], "obs-1");
    assert_eq!(
        payload("after-llm-response")["tool_calls"][1]["name"],
        "calc"
    );
    assert_eq!(payload("error")["source"], "tool");
    assert_eq!(payload("error")["name"], "calc");
    assert_eq!(payload("turn-end")["tool_calls"], 2);
    assert_eq!(payload("session-end")["outcome"], "finished");
    assert_eq!(payload("session-end")["turns"], 2);
    assert_eq!(
        counters(&runtime, "probe", HookPoint::ToolProgress).calls,
        3
    );
}

#[tokio::test]
async fn a_hook_out_of_fuel_fails_with_its_fuel_budget() {
    let mut harness = Harness::new();
    harness.config.sandbox.fuel = true;
    harness.config.hooks.fuel = Some(2_000_000);
    set_probe(
        &mut harness,
        &[on("turn-start"), on("turn-end")],
        json!({"turn-start": {"kind": "loop"}}),
    );
    let runtime = harness.runtime().await;
    let hooks = Hooks::new(runtime.clone(), None);
    let spun = hooks.dispatch(HookPoint::TurnStart, || json!({})).await;
    let failure = &spun.failures[0];
    assert_eq!(
        failure.kind,
        FailureKind::FuelExhausted { fuel: 2_000_000 },
        "{failure}"
    );
    // The budget is per call: an ordinary hook still runs within it.
    let fine = hooks.dispatch(HookPoint::TurnEnd, || json!({})).await;
    assert!(fine.failures.is_empty(), "{:?}", fine.failures);
}

#[tokio::test]
async fn hooks_that_trap_or_eat_memory_fail_cleanly() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[on("turn-start"), on("turn-end")],
        json!({
            "turn-start": {"kind": "trap"},
            "turn-end": {"kind": "eat-memory"},
        }),
    );
    let runtime = harness.runtime().await;
    let hooks = Hooks::new(runtime.clone(), None);
    let trapped = hooks.dispatch(HookPoint::TurnStart, || json!({})).await;
    let failure = &trapped.failures[0];
    assert!(
        matches!(failure.kind, FailureKind::Trap { .. }),
        "{failure}"
    );
    assert!(
        failure
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("probe trap"),
        "{failure:?}"
    );
    let starved = hooks.dispatch(HookPoint::TurnEnd, || json!({})).await;
    let failure = &starved.failures[0];
    assert!(
        matches!(failure.kind, FailureKind::MemoryLimit { limit_mb: 16, .. }),
        "{failure}"
    );
    // The host is fine: the next event is delivered.
    let again = hooks.dispatch(HookPoint::TurnStart, || json!({})).await;
    assert_eq!(again.failures.len(), 1);
}

#[tokio::test]
async fn the_fan_out_cap_limits_how_many_extensions_see_one_event() {
    let mut harness = Harness::new();
    harness.config.hooks.max_fanout = 2;
    for name in ["probe-a", "probe-b", "probe-c"] {
        install_probe(&harness, name);
        harness.config.extensions.insert(
            name.into(),
            settings(&[on("turn-end")], probe_config(name, json!({}))),
        );
    }
    let runtime = harness.runtime().await;
    let hooks = Hooks::new(runtime.clone(), None);
    hooks.dispatch(HookPoint::TurnEnd, || json!({})).await;
    let calls: Vec<(u64, u64)> = ["probe-a", "probe-b", "probe-c"]
        .iter()
        .map(|name| {
            let c = counters(&runtime, name, HookPoint::TurnEnd);
            (c.calls, c.dropped)
        })
        .collect();
    assert_eq!(calls, vec![(1, 0), (1, 0), (0, 1)]);
}

#[tokio::test]
async fn async_hooks_never_hold_the_turn_and_finish_by_the_session_end() {
    let mut harness = Harness::new();
    set_probe(
        &mut harness,
        &[(
            "turn-start",
            HookOverride {
                delivery: Some(agent_host_runtime::hooks::Delivery::Async),
                ..HookOverride::default()
            },
        )],
        json!({"turn-start": {"kind": "block", "value": "ignored when async", "record": true}}),
    );
    let model = StepModel::new(vec![answer("fine")]);
    let (runtime, agent) = agent_over(&harness, model).await;
    let result = run(&agent, "hi").await;
    // An async hook's outcome is ignored: the block did not stop the run.
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    agent.end_session(&result.outcome, 1).await;
    assert_eq!(recorded(&runtime, "probe").len(), 1);
}

#[tokio::test]
async fn no_subscriber_means_no_call_and_no_payload() {
    let harness = Harness::new();
    harness.install(example_plugin::calc());
    let runtime = harness.runtime().await;
    let hooks = Hooks::new(runtime.clone(), None);
    assert!(!hooks.is_subscribed(HookPoint::BeforeToolCall));
    let dispatched = hooks
        .dispatch(HookPoint::BeforeToolCall, || {
            panic!("the payload must not be built without a subscriber")
        })
        .await;
    assert!(dispatched.failures.is_empty() && dispatched.patched.is_none());
    assert!(hooks.stream_tap().is_none());
    assert!(runtime.hook_stats().rows().is_empty());
}

#[tokio::test]
async fn an_extension_is_hot_reloaded_and_a_broken_update_keeps_the_old_one() {
    let harness = Harness::new();
    install_probe(&harness, "probe");
    let manifest = harness.plugins_dir().join("probe.toml");
    let write_manifest = |text: &str| {
        std::fs::write(
            &manifest,
            format!(
                "[plugin]\nname = \"probe\"\nversion = \"0.1.0\"\n[limits]\nmemory_mb = 16\n[config]\ntag = \"probe\"\n[config.actions.turn-start]\nkind = \"inject\"\nvalue = \"{text}\"\n"
            ),
        )
        .unwrap();
    };
    write_manifest("first");
    let runtime = harness.runtime().await;
    let hooks = Hooks::new(runtime.clone(), None);
    let injected = |d: &agent_host_runtime::hooks::Dispatched| d.injections[0].text.clone();
    assert_eq!(
        injected(&hooks.dispatch(HookPoint::TurnStart, || json!({})).await),
        "first"
    );

    write_manifest("second");
    let event = runtime.reload_path(&manifest).await.unwrap();
    assert!(
        matches!(event, agent_host_runtime::PluginEvent::Loaded { .. }),
        "{event:?}"
    );
    assert_eq!(
        injected(&hooks.dispatch(HookPoint::TurnStart, || json!({})).await),
        "second"
    );

    // A broken file: refused, and the working version keeps serving.
    let wasm = harness.write("probe.wasm", b"\0asm garbage");
    let event = runtime.reload_path(&wasm).await.unwrap();
    assert!(
        matches!(event, agent_host_runtime::PluginEvent::Failed { .. }),
        "{event:?}"
    );
    assert_eq!(
        injected(&hooks.dispatch(HookPoint::TurnStart, || json!({})).await),
        "second"
    );

    // Removed: the hook is gone.
    std::fs::remove_file(&wasm).unwrap();
    runtime.reload_path(&wasm).await;
    assert!(!hooks.is_subscribed(HookPoint::TurnStart));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_hot_reloads_an_extension() {
    let harness = Harness::new();
    install_probe(&harness, "probe");
    let manifest = harness.plugins_dir().join("probe.toml");
    let write_manifest = |text: &str| {
        std::fs::write(
            &manifest,
            format!(
                "[plugin]\nname = \"probe\"\nversion = \"0.1.0\"\n[limits]\nmemory_mb = 16\n[config]\ntag = \"probe\"\n[config.actions.turn-start]\nkind = \"inject\"\nvalue = \"{text}\"\n"
            ),
        )
        .unwrap();
    };
    write_manifest("before");
    let runtime = harness.runtime().await;
    let mut events = runtime.subscribe();
    let _watcher = runtime.watch().unwrap();
    let hooks = Hooks::new(runtime.clone(), None);
    let injected = |d: &agent_host_runtime::hooks::Dispatched| d.injections[0].text.clone();
    assert_eq!(
        injected(&hooks.dispatch(HookPoint::TurnStart, || json!({})).await),
        "before"
    );
    write_manifest("after");
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(agent_host_runtime::PluginEvent::Loaded { plugin, .. }) = events.recv().await
                && plugin == "probe"
            {
                return;
            }
        }
    })
    .await
    .expect("the watcher did not reload the extension within 20 s");
    // The same session's hooks now reach the new version.
    assert_eq!(
        injected(&hooks.dispatch(HookPoint::TurnStart, || json!({})).await),
        "after"
    );
}

#[tokio::test]
async fn an_extension_for_another_contract_version_is_refused() {
    let harness = Harness::new();
    harness.install(test_plugin::ext_wrong_version());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let err = runtime
        .load_plugin(&harness.plugins_dir().join("ext-wrong-version.wasm"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, LoadError::UnsupportedContract { .. }),
        "{message}"
    );
    assert!(
        message.contains("9.0.0") && message.contains("0.1.0"),
        "{message}"
    );
}

#[tokio::test]
async fn the_redactor_masks_keys_before_the_model_sees_them() {
    let harness = Harness::new();
    harness.install(example_plugin::redactor());
    harness.install(test_plugin::echo());
    let secret = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789";
    let model = StepModel::new(vec![
        Step::Events(vec![
            call(
                "c1",
                "echo",
                json!({"text": format!("config: OPENAI_API_KEY={secret} and more")}),
            ),
            finish(FinishReason::ToolCalls),
        ]),
        answer("ok"),
    ]);
    let (_runtime, agent) = agent_over(&harness, model.clone()).await;
    let result = run(&agent, "show config").await;
    assert!(matches!(result.outcome, Outcome::Finished { .. }));
    let seen = tool_result(&model, 1);
    assert!(!seen.contains(secret), "{seen}");
    assert!(
        seen.contains("REDACTED") && seen.contains("and more"),
        "{seen}"
    );
}

#[tokio::test]
async fn the_policy_guard_blocks_what_its_config_denies() {
    let mut harness = Harness::new();
    harness.install(example_plugin::policy_guard());
    harness.install(example_plugin::calc());
    harness.config.extensions.insert(
        "policy-guard".into(),
        ExtensionSettings {
            config: Some(json!({"deny_tools": ["ca*"]}).as_object().unwrap().clone()),
            ..ExtensionSettings::default()
        },
    );
    let model = StepModel::new(calc_then_answer());
    let (_runtime, agent) = agent_over(&harness, model.clone()).await;
    run(&agent, "compute").await;
    let seen = tool_result(&model, 1);
    assert!(seen.contains("blocked by extension policy-guard"), "{seen}");
}

#[tokio::test]
async fn the_loop_breaker_stops_a_run_that_repeats_a_call() {
    let harness = Harness::new();
    harness.install(example_plugin::loop_breaker());
    harness.install(example_plugin::calc());
    let same_call = || {
        Step::Events(vec![
            call("c", "calc", json!({"expression": "1+1"})),
            finish(FinishReason::ToolCalls),
        ])
    };
    let model = StepModel::new((0..6).map(|_| same_call()).collect());
    let runtime = harness.runtime().await;
    let agent =
        Agent::for_runtime(runtime, model.clone(), AgentConfig::default()).with_session("loop-1");
    let result = run(&agent, "go").await;
    assert!(
        matches!(&result.outcome, Outcome::Blocked { extension, .. } if extension == "loop-breaker"),
        "{:?}",
        result.outcome
    );
    // Two calls ran, the third identical one was blocked, then the run stopped.
    let ok_calls = result
        .events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolCallFinished { ok: true, .. }))
        .count();
    assert_eq!(ok_calls, 2);
    assert_eq!(model.requests().len(), 3);
}

#[tokio::test]
async fn the_audit_logger_records_tool_calls_in_the_background() {
    let harness = Harness::new();
    harness.install(example_plugin::audit_logger());
    harness.install(example_plugin::calc());
    let model = StepModel::new(calc_then_answer());
    let runtime = harness.runtime().await;
    let agent =
        Agent::for_runtime(runtime.clone(), model, AgentConfig::default()).with_session("audit-1");
    let result = run(&agent, "compute").await;
    agent.end_session(&result.outcome, 2).await;
    let kv = runtime.store().plugin_kv("audit-logger");
    let entries: Vec<Value> = kv
        .list("audit/audit-1/")
        .unwrap()
        .iter()
        .map(|key| serde_json::from_slice(&kv.get(key).unwrap().unwrap()).unwrap())
        .collect();
    let points: Vec<&str> = entries
        .iter()
        .map(|e| e["point"].as_str().unwrap())
        .collect();
    for wanted in [
        "session-start",
        "before-tool-call",
        "after-tool-call",
        "session-end",
    ] {
        assert!(points.contains(&wanted), "{points:?}");
    }
    // Its hooks are async: none of them is ever waited for.
    let stats = runtime.hook_stats().rows();
    assert!(
        stats.iter().all(|row| row.counters.failures == 0),
        "{stats:?}"
    );
}

#[test]
fn stats_and_plugins_list_show_extensions() {
    let harness = Harness::new();
    install_probe(&harness, "probe");
    let (code, _, stderr) = run_command(harness.command().args(["run", "hello"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = run_command(harness.command().args(["stats", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let rows = doc["hooks"].as_array().unwrap();
    let turn_start = rows
        .iter()
        .find(|row| row["extension"] == "probe" && row["point"] == "turn-start")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(turn_start["calls"].as_u64().unwrap() >= 1, "{stdout}");
    let session_end = rows
        .iter()
        .find(|row| row["extension"] == "probe" && row["point"] == "session-end");
    assert!(session_end.is_some(), "{stdout}");

    let (code, stdout, _) = run_command(harness.command().arg("stats"));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("probe") && stdout.contains("turn-start"),
        "{stdout}"
    );

    let (_, stdout, _) = run_command(harness.command().args(["plugins", "list", "--json"]));
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list[0]["kind"], "extension", "{stdout}");
}
