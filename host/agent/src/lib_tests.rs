//! The loop against a fake [`ToolHost`] and the scripted model: no wasm, no runtime; what the model asked for reaches the tools, and what they answer (or how they fail) reaches the model.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use agent_host_llm::scripted::{Script, ScriptToolCall, ScriptTurn, ScriptedProvider};
use agent_host_llm::{ChatRequest, EventReceiver, Message, Provider, Role};
use agent_host_runtime::runtime::CallOptions;
use agent_host_runtime::spec::{ContentPart, ToolHints, ToolOutput, ToolSpec};

use super::*;

/// What a fake tool does when called.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers `{"sum": a + b}` as text.
    Add,
    /// Reports a tool error.
    Reject,
    /// Reports a host error.
    HostFault,
    /// Parallel-safe; answers its `n` argument, an even `n` only once
    /// `n + 1` has answered.
    Together,
    /// Runs until cancelled (at most ten seconds).
    Wait,
}

/// One call as the fake received it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    tool: String,
    args: Value,
    call_id: Option<String>,
    session_id: Option<String>,
}

/// A tool host of canned behaviours that records what it was asked.
struct FakeTools {
    tools: BTreeMap<String, Behaviour>,
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Calls expected in the turn, so the last lone call does not wait.
    calls_in_turn: usize,
    finished_order: Mutex<Vec<u64>>,
    changed: Notify,
    stopped_by_cancel: AtomicUsize,
}

impl FakeTools {
    fn new(tools: &[(&str, Behaviour)]) -> Self {
        Self {
            tools: tools
                .iter()
                .map(|(name, behaviour)| ((*name).to_owned(), *behaviour))
                .collect(),
            received: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            calls_in_turn: 0,
            finished_order: Mutex::default(),
            changed: Notify::new(),
            stopped_by_cancel: AtomicUsize::new(0),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (five seconds at most) until `ready` holds.
    async fn wait_until(&self, ready: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            // Created before the check, so a change in between still wakes it.
            let changed = self.changed.notified();
            if ready(self) || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }

    async fn run(
        &self,
        behaviour: Behaviour,
        args: &Value,
        cancel: CancellationToken,
    ) -> Result<ToolOutput, ToolCallError> {
        match behaviour {
            Behaviour::Add => {
                let sum = args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0);
                Ok(text_output(&json!({ "sum": sum }).to_string()))
            }
            Behaviour::Reject => Err(ToolCallError::Tool(
                "tool 'reject' returned an error: invalid arguments: b must be positive".into(),
            )),
            Behaviour::HostFault => Err(ToolCallError::Host(
                "host error while calling tool 'fault': the store is gone".into(),
            )),
            Behaviour::Together => {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let n = args["n"].as_u64().unwrap_or(0);
                // An even call waits for the next call to finish: run
                // together, each pair completes out of call order; run one
                // by one, the wait runs out and the order gives it away.
                if n.is_multiple_of(2) && (n as usize + 1) < self.calls_in_turn {
                    self.wait_until(|fake| fake.finished_order.lock().unwrap().contains(&(n + 1)))
                        .await;
                }
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.finished_order.lock().unwrap().push(n);
                self.changed.notify_waiters();
                Ok(text_output(&format!("result {n}")))
            }
            Behaviour::Wait => {
                tokio::select! {
                    () = cancel.cancelled() => {
                        self.stopped_by_cancel.fetch_add(1, Ordering::SeqCst);
                        Err(ToolCallError::Cancelled)
                    }
                    () = tokio::time::sleep(Duration::from_secs(10)) => Ok(text_output("finished")),
                }
            }
        }
    }
}

fn text_output(text: &str) -> ToolOutput {
    ToolOutput {
        content: vec![ContentPart::Text {
            text: text.to_owned(),
        }],
        structured: None,
    }
}

impl ToolHost for FakeTools {
    fn list_tools(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|(name, behaviour)| ToolSpec {
                name: name.clone(),
                title: None,
                description: format!("the fake {name} tool"),
                input_schema: json!({ "type": "object" }),
                output_schema: None,
                hints: hints_of(*behaviour),
            })
            .collect()
    }

    fn hints(&self, tool: &str) -> Option<ToolHints> {
        self.tools.get(tool).map(|behaviour| hints_of(*behaviour))
    }

    fn output_limit(&self, _tool: &str) -> usize {
        64 * 1024
    }

    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        options: CallOptions,
    ) -> ToolCallFuture<'a> {
        Box::pin(async move {
            self.received.lock().unwrap().push(Received {
                tool: tool.to_owned(),
                args: args.clone(),
                call_id: options.call_id.clone(),
                session_id: options.session_id.clone(),
            });
            let Some(behaviour) = self.tools.get(tool).copied() else {
                return Err(ToolCallError::Tool(format!("no tool named '{tool}'")));
            };
            self.run(behaviour, args, options.cancel.unwrap_or_default())
                .await
        })
    }
}

fn hints_of(behaviour: Behaviour) -> ToolHints {
    ToolHints {
        parallel_safe: matches!(behaviour, Behaviour::Together),
        read_only: matches!(behaviour, Behaviour::Together),
        ..ToolHints::default()
    }
}

/// The scripted model, keeping every request it was sent.
struct RecordingModel {
    script: ScriptedProvider,
    requests: Mutex<Vec<ChatRequest>>,
}

impl RecordingModel {
    fn new(turns: Vec<ScriptTurn>) -> Arc<Self> {
        Arc::new(Self {
            script: ScriptedProvider::new(Script { turns }),
            requests: Mutex::default(),
        })
    }

    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Provider for RecordingModel {
    fn name(&self) -> &str {
        self.script.name()
    }

    fn model(&self) -> &str {
        self.script.model()
    }

    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        self.requests.lock().unwrap().push(request.clone());
        self.script.start(request, cancel)
    }
}

fn calls(tool_calls: &[(&str, Value)]) -> ScriptTurn {
    ScriptTurn {
        say: String::new(),
        tool_calls: tool_calls
            .iter()
            .map(|(name, arguments)| ScriptToolCall {
                name: (*name).to_owned(),
                arguments: arguments.clone(),
            })
            .collect(),
        when_result_contains: None,
    }
}

fn say(text: &str) -> ScriptTurn {
    ScriptTurn {
        say: text.to_owned(),
        tool_calls: Vec::new(),
        when_result_contains: None,
    }
}

struct Ran {
    outcome: Outcome,
    history: Vec<Message>,
    events: Vec<AgentEvent>,
}

async fn run(agent: &Agent, cancel: &CancellationToken) -> Ran {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut history = Vec::new();
    let outcome = agent
        .run(&mut history, "go".to_owned(), &sender, cancel, None)
        .await;
    drop(sender);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    Ran {
        outcome,
        history,
        events,
    }
}

fn tool_results(messages: &[Message]) -> Vec<&Message> {
    messages.iter().filter(|m| m.role == Role::Tool).collect()
}

#[tokio::test]
async fn a_call_reaches_the_tool_host_with_the_models_arguments_and_its_result_reaches_the_model() {
    let tools = Arc::new(FakeTools::new(&[("add", Behaviour::Add)]));
    let model = RecordingModel::new(vec![
        calls(&[("add", json!({"a": 2, "b": 40}))]),
        say("The sum is 42."),
    ]);
    let agent =
        Agent::new(tools.clone(), model.clone(), AgentConfig::default()).with_session("s-1");
    let ran = run(&agent, &CancellationToken::new()).await;

    assert_eq!(
        ran.outcome,
        Outcome::Finished {
            text: "The sum is 42.".into()
        }
    );
    assert_eq!(
        tools.received(),
        vec![Received {
            tool: "add".into(),
            args: json!({"a": 2, "b": 40}),
            call_id: Some("call_1".into()),
            session_id: Some("s-1".into()),
        }]
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    // The model was offered the host's tools, and saw the result.
    assert_eq!(requests[0].tools[0].name, "add");
    assert_eq!(requests[0].tools[0].description, "the fake add tool");
    let seen = tool_results(&requests[1].messages);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(seen[0].content, r#"{"sum":42}"#);
    assert!(!seen[0].is_error);
    assert!(ran.events.iter().any(|e| matches!(
        e,
        AgentEvent::ToolCallFinished { ok: true, output, .. } if output == r#"{"sum":42}"#
    )));
    // No extensions: nothing counts session turns.
    assert!(agent.hooks().is_none());
    assert_eq!(agent.session_turns(), 0);
}

#[tokio::test]
async fn a_tool_error_comes_back_to_the_model_flagged_as_an_error_and_the_turn_goes_on() {
    let tools = Arc::new(FakeTools::new(&[("reject", Behaviour::Reject)]));
    let model = RecordingModel::new(vec![
        calls(&[("reject", json!({"b": -1})), ("missing", json!({}))]),
        say("I will fix b."),
    ]);
    let agent = Agent::new(tools.clone(), model.clone(), AgentConfig::default());
    let ran = run(&agent, &CancellationToken::new()).await;

    assert!(
        matches!(ran.outcome, Outcome::Finished { .. }),
        "{:?}",
        ran.outcome
    );
    let requests = model.requests();
    let seen = tool_results(&requests[1].messages);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|m| m.is_error));
    assert!(
        seen[0].content.contains("b must be positive"),
        "{}",
        seen[0].content
    );
    assert!(
        seen[1].content.contains("no tool named 'missing'"),
        "{}",
        seen[1].content
    );
    let failed = ran
        .events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolCallFinished { ok: false, .. }))
        .count();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn a_host_error_is_answered_in_the_history_then_ends_the_run() {
    let tools = Arc::new(FakeTools::new(&[
        ("add", Behaviour::Add),
        ("fault", Behaviour::HostFault),
    ]));
    let model = RecordingModel::new(vec![
        calls(&[("fault", json!({})), ("add", json!({"a": 1, "b": 1}))]),
        say("never asked"),
    ]);
    let agent = Agent::new(tools.clone(), model.clone(), AgentConfig::default());
    let ran = run(&agent, &CancellationToken::new()).await;

    match &ran.outcome {
        Outcome::Failed(message) => assert!(message.contains("the store is gone"), "{message}"),
        other => panic!("expected a failed run, got {other:?}"),
    }
    assert!(matches!(ran.events.last(), Some(AgentEvent::Failed { .. })));
    // The model is not asked again, but every call of the turn has its
    // result, so the history stays valid for the next message.
    assert_eq!(model.requests().len(), 1);
    assert_eq!(tools.received().len(), 2);
    let results = tool_results(&ran.history);
    assert_eq!(results.len(), 2);
    assert!(results[0].is_error);
    assert!(!results[1].is_error);
}

#[tokio::test]
async fn parallel_safe_calls_run_together_up_to_the_limit_and_results_keep_the_call_order() {
    let mut fake = FakeTools::new(&[("together", Behaviour::Together)]);
    fake.calls_in_turn = 5;
    let tools = Arc::new(fake);
    let model = RecordingModel::new(vec![
        calls(
            &(0..5)
                .map(|n| ("together", json!({ "n": n })))
                .collect::<Vec<_>>(),
        ),
        say("done"),
    ]);
    let config = AgentConfig {
        max_parallel_tools: 2,
        ..AgentConfig::default()
    };
    let agent = Agent::new(tools.clone(), model.clone(), config);
    let ran = run(&agent, &CancellationToken::new()).await;

    assert!(
        matches!(ran.outcome, Outcome::Finished { .. }),
        "{:?}",
        ran.outcome
    );
    assert_eq!(tools.most_in_flight.load(Ordering::SeqCst), 2);
    // Within each pair the later call finished first...
    let finished = tools.finished_order.lock().unwrap().clone();
    assert_eq!(finished, vec![1, 0, 3, 2, 4]);
    // ...and the results are still in the model's order.
    let contents: Vec<&str> = tool_results(&ran.history)
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(
        contents,
        vec!["result 0", "result 1", "result 2", "result 3", "result 4"]
    );
    let ids: Vec<String> = tool_results(&ran.history)
        .iter()
        .filter_map(|m| m.tool_call_id.clone())
        .collect();
    assert_eq!(
        ids,
        (1..=5).map(|i| format!("call_{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn cancelling_stops_a_running_call_and_the_run() {
    let tools = Arc::new(FakeTools::new(&[("wait", Behaviour::Wait)]));
    let model = RecordingModel::new(vec![calls(&[("wait", json!({}))]), say("never asked")]);
    let agent = Agent::new(tools.clone(), model.clone(), AgentConfig::default());
    let cancel = CancellationToken::new();
    let task = {
        let (agent, cancel) = (agent.clone(), cancel.clone());
        tokio::spawn(async move { run(&agent, &cancel).await })
    };
    // Cancel once the call is running.
    tokio::time::timeout(Duration::from_secs(5), async {
        while tools.received().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the call never started");
    let cancelled_at = std::time::Instant::now();
    cancel.cancel();
    let ran = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the run did not stop")
        .unwrap();

    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(ran.outcome, Outcome::Cancelled);
    assert_eq!(tools.stopped_by_cancel.load(Ordering::SeqCst), 1);
    let results = tool_results(&ran.history);
    assert_eq!(results.len(), 1);
    assert!(results[0].is_error);
    assert_eq!(results[0].content, "cancelled");
    assert_eq!(model.requests().len(), 1);
}
