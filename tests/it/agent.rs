//! The agent loop against an in-process model: tool use, parallel calls, errors back to the model, limits, cancel, intervention.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_host_agent::{Agent, AgentConfig, AgentEvent, CANCELLED_NOTE, Outcome};
use agent_host_llm::{
    ChatRequest, EventReceiver, FinishReason, Message, Provider, ProviderError, ProviderEvent,
    Role, ToolCall,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{Harness, example_plugin, test_plugin};

/// One model answer: events to send, or a stall until cancelled.
pub enum Step {
    Events(Vec<ProviderEvent>),
    Stall,
}

/// A model that answers from a queue of steps and records every request.
#[derive(Default)]
pub struct StepModel {
    steps: Mutex<VecDeque<Step>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl StepModel {
    pub fn new(steps: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            steps: Mutex::new(steps.into()),
            requests: Mutex::default(),
        })
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Provider for StepModel {
    fn name(&self) -> &str {
        "step-model"
    }

    fn model(&self) -> &str {
        "test"
    }

    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        self.requests.lock().unwrap().push(request);
        let step = self.steps.lock().unwrap().pop_front();
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            match step {
                Some(Step::Events(events)) => {
                    for event in events {
                        let _ = sender.send(Ok(event)).await;
                    }
                }
                Some(Step::Stall) => {
                    let _ = sender
                        .send(Ok(ProviderEvent::TextDelta {
                            text: "thinking".into(),
                        }))
                        .await;
                    cancel.cancelled().await;
                    let _ = sender.send(Err(ProviderError::Cancelled)).await;
                }
                None => {
                    let _ = sender
                        .send(Err(ProviderError::Protocol {
                            provider: "step-model".into(),
                            message: "no more steps".into(),
                        }))
                        .await;
                }
            }
        });
        receiver
    }
}

pub fn text(text: &str) -> ProviderEvent {
    ProviderEvent::TextDelta { text: text.into() }
}

pub fn call(id: &str, name: &str, args: serde_json::Value) -> ProviderEvent {
    ProviderEvent::ToolCall {
        call: ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.to_string(),
        },
    }
}

pub fn finish(reason: FinishReason) -> ProviderEvent {
    ProviderEvent::Finish { reason }
}

pub fn answer(words: &str) -> Step {
    Step::Events(vec![text(words), finish(FinishReason::Stop)])
}

async fn agent_with(
    model: Arc<StepModel>,
    plugins: &[(std::path::PathBuf, std::path::PathBuf)],
    config: AgentConfig,
) -> (Harness, Agent) {
    let harness = Harness::new();
    for plugin in plugins {
        harness.install(plugin.clone());
    }
    let runtime = harness.runtime().await;
    (harness, Agent::for_runtime(runtime, model, config))
}

pub struct Run {
    pub outcome: Outcome,
    pub history: Vec<Message>,
    pub events: Vec<AgentEvent>,
}

pub async fn run(agent: &Agent, prompt: &str) -> Run {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut history = Vec::new();
    let outcome = agent
        .run(
            &mut history,
            prompt.into(),
            &sender,
            &CancellationToken::new(),
            None,
        )
        .await;
    drop(sender);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    Run {
        outcome,
        history,
        events,
    }
}

#[tokio::test]
async fn multi_turn_tool_use_feeds_results_back() {
    let model = StepModel::new(vec![
        Step::Events(vec![
            text("Let me compute. "),
            call("c1", "calc", json!({"expression": "6*7"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("The answer is 42."),
    ]);
    let (_h, agent) = agent_with(
        model.clone(),
        &[example_plugin::calc()],
        AgentConfig::default(),
    )
    .await;
    let result = run(&agent, "what is 6*7?").await;
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "The answer is 42.".into()
        }
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].tools.iter().any(|t| t.name == "calc"));
    let tool_result = requests[1]
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    assert_eq!(tool_result.tool_call_id.as_deref(), Some("c1"));
    assert!(
        tool_result.content.contains("42") && !tool_result.is_error,
        "{tool_result:?}"
    );
    assert!(
        result
            .events
            .iter()
            .any(|e| matches!(e, AgentEvent::ToolCallFinished { ok: true, .. }))
    );
    // user, assistant(tool call), tool result, assistant(answer)
    assert_eq!(result.history.len(), 4);
}

#[tokio::test]
async fn parallel_safe_calls_run_together_and_results_keep_call_order() {
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("a", "echo", json!({"text": "first"})),
            call("b", "calc", json!({"expression": "1+1"})),
            call("c", "echo", json!({"text": "third"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("done"),
    ]);
    let (_h, agent) = agent_with(
        model.clone(),
        &[test_plugin::echo(), example_plugin::calc()],
        AgentConfig::default(),
    )
    .await;
    let result = run(&agent, "go").await;
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "done".into()
        }
    );
    let ids: Vec<_> = result
        .history
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.tool_call_id.clone().unwrap())
        .collect();
    assert_eq!(ids, vec!["a", "b", "c"]);
    // All three are parallel-safe: all start before any finishes.
    let first_finish = result
        .events
        .iter()
        .position(|e| matches!(e, AgentEvent::ToolCallFinished { .. }))
        .unwrap();
    let starts_before = result.events[..first_finish]
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolCallStarted { .. }))
        .count();
    assert_eq!(starts_before, 3);
}

#[tokio::test]
async fn calls_that_are_not_parallel_safe_run_in_order() {
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("1", "note_add", json!({"title": "a", "body": "x"})),
            call("2", "note_add", json!({"title": "b", "body": "y"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("saved"),
    ]);
    let (_h, agent) = agent_with(model, &[example_plugin::notes()], AgentConfig::default()).await;
    let result = run(&agent, "save two notes").await;
    let kinds: Vec<&str> = result
        .events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolCallStarted { .. } => Some("start"),
            AgentEvent::ToolCallFinished { .. } => Some("end"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["start", "end", "start", "end"]);
}

#[tokio::test]
async fn errors_go_back_to_the_model_as_flagged_results() {
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("u", "no_such_tool", json!({})),
            ProviderEvent::ToolCall {
                call: ToolCall {
                    id: "j".into(),
                    name: "calc".into(),
                    arguments: "{\"expression\": ".into(),
                },
            },
            call("s", "calc", json!({"expression": 5})),
            call("t", "calc", json!({"expression": "1/0"})),
            call("p", "panic", json!({"message": "boom"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("I see the errors."),
    ]);
    let (_h, agent) = agent_with(
        model.clone(),
        &[example_plugin::calc(), test_plugin::hostile()],
        AgentConfig::default(),
    )
    .await;
    let result = run(&agent, "try things").await;
    assert_eq!(
        result.outcome,
        Outcome::Finished {
            text: "I see the errors.".into()
        }
    );
    let results: Vec<&Message> = result
        .history
        .iter()
        .filter(|m| m.role == Role::Tool)
        .collect();
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|m| m.is_error), "{results:?}");
    assert!(
        results[0].content.contains("no tool named 'no_such_tool'"),
        "{}",
        results[0].content
    );
    assert!(
        results[1].content.contains("not valid JSON"),
        "{}",
        results[1].content
    );
    assert!(
        results[2].content.contains("/expression"),
        "{}",
        results[2].content
    );
    assert!(
        results[4].content.contains("boom"),
        "{}",
        results[4].content
    );
}

#[tokio::test]
async fn the_turn_limit_is_reported() {
    let looping = || {
        Step::Events(vec![
            call("x", "echo", json!({"text": "again"})),
            finish(FinishReason::ToolCalls),
        ])
    };
    let model = StepModel::new(vec![looping(), looping(), looping()]);
    let config = AgentConfig {
        max_turns: 2,
        ..AgentConfig::default()
    };
    let (_h, agent) = agent_with(model.clone(), &[test_plugin::echo()], config).await;
    let result = run(&agent, "loop").await;
    assert_eq!(result.outcome, Outcome::TurnLimit);
    assert!(
        result
            .events
            .iter()
            .any(|e| matches!(e, AgentEvent::TurnLimitReached { max_turns: 2 }))
    );
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn a_provider_failure_ends_the_turn_with_its_message() {
    let model = StepModel::new(vec![]);
    let (_h, agent) = agent_with(model, &[test_plugin::echo()], AgentConfig::default()).await;
    let result = run(&agent, "hi").await;
    match result.outcome {
        Outcome::Failed(message) => assert!(message.contains("no more steps"), "{message}"),
        other => panic!("{other:?}"),
    }
}

async fn cancel_after(
    delay: Duration,
    model: Arc<StepModel>,
    plugins: &[(std::path::PathBuf, std::path::PathBuf)],
) -> (Run, Duration) {
    let (_h, agent) = agent_with(model, plugins, AgentConfig::default()).await;
    let cancel = CancellationToken::new();
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let canceller = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let at = Instant::now();
            cancel.cancel();
            at
        })
    };
    let mut history = Vec::new();
    let outcome = agent
        .run(&mut history, "go".into(), &sender, &cancel, None)
        .await;
    let stopped = Instant::now();
    let cancelled_at = canceller.await.unwrap();
    drop(sender);
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    (
        Run {
            outcome,
            history,
            events,
        },
        stopped.saturating_duration_since(cancelled_at),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_stream_stops_and_records_the_turn_as_cancelled() {
    let model = StepModel::new(vec![Step::Stall]);
    let (result, took) =
        cancel_after(Duration::from_millis(100), model, &[test_plugin::echo()]).await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    // The model would stall forever; returning at all shows the cancel worked.
    assert!(took < Duration::from_secs(30), "cancel took {took:?}");
    let last = result.history.last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert!(last.content.ends_with(CANCELLED_NOTE), "{last:?}");
    assert!(result.events.contains(&AgentEvent::Cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_tool_stops_the_tool_and_answers_every_call() {
    let model = StepModel::new(vec![Step::Events(vec![
        call("s", "spin", json!({})),
        finish(FinishReason::ToolCalls),
    ])]);
    let (result, took) =
        cancel_after(Duration::from_millis(200), model, &[test_plugin::hostile()]).await;
    assert_eq!(result.outcome, Outcome::Cancelled);
    // The spin would run to its 1 s deadline; cancellation is much sooner.
    assert!(took < Duration::from_millis(900), "cancel took {took:?}");
    let answer = result
        .history
        .iter()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    assert!(
        answer.is_error && answer.content.contains("cancelled"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_message_sent_during_a_turn_is_delivered_at_the_next_checkpoint() {
    let model = StepModel::new(vec![
        Step::Events(vec![
            call("e", "echo", json!({"text": "x"})),
            finish(FinishReason::ToolCalls),
        ]),
        answer("noted"),
    ]);
    let (_h, agent) = agent_with(
        model.clone(),
        &[test_plugin::echo()],
        AgentConfig::default(),
    )
    .await;
    let (sender, _receiver) = mpsc::unbounded_channel();
    let (inbox_sender, mut inbox) = mpsc::unbounded_channel();
    inbox_sender.send("also, be brief".to_owned()).unwrap();
    let mut history = Vec::new();
    let outcome = agent
        .run(
            &mut history,
            "start".into(),
            &sender,
            &CancellationToken::new(),
            Some(&mut inbox),
        )
        .await;
    assert_eq!(
        outcome,
        Outcome::Finished {
            text: "noted".into()
        }
    );
    let first = &model.requests()[0].messages;
    assert!(first.iter().any(|m| m.content == "also, be brief"));
}

#[tokio::test]
async fn an_over_budget_history_is_summarised_before_the_next_message() {
    let model = StepModel::new(vec![
        answer("Earlier we computed 6*7 = 42."),
        answer("fine"),
    ]);
    let config = AgentConfig {
        context_budget_tokens: Some(50),
        keep_recent_turns: 1,
        ..AgentConfig::default()
    };
    let (_h, agent) = agent_with(model.clone(), &[test_plugin::echo()], config).await;
    let mut history = Vec::new();
    for i in 0..6 {
        history.push(Message::user(format!(
            "question {i} {}",
            "padding ".repeat(10)
        )));
        history.push(Message::assistant(format!("answer {i}"), vec![]));
    }
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let outcome = agent
        .run(
            &mut history,
            "and now?".into(),
            &sender,
            &CancellationToken::new(),
            None,
        )
        .await;
    assert_eq!(
        outcome,
        Outcome::Finished {
            text: "fine".into()
        }
    );
    drop(sender);
    let mut compressed = None;
    while let Some(event) = receiver.recv().await {
        if let AgentEvent::Compressed {
            removed_messages,
            summary,
        } = event
        {
            compressed = Some((removed_messages, summary));
        }
    }
    let (removed, summary) = compressed.expect("a Compressed event");
    assert_eq!(removed, 10);
    assert!(summary.contains("42"));
    // The summarising request saw the old turns and no tools.
    let requests = model.requests();
    assert!(requests[0].tools.is_empty());
    assert!(requests[0].messages[0].content.contains("question 0"));
    // The model then saw the summary in front of the kept turn.
    let seen = &requests[1].messages;
    assert!(
        seen[0]
            .content
            .starts_with("(Summary of the earlier conversation: Earlier we computed")
    );
    assert!(
        seen[0]
            .content
            .ends_with(&format!("question 5 {}", "padding ".repeat(10)))
    );
    assert_eq!(seen.last().unwrap().content, "and now?");
}
