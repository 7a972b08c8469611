//! One turn of a session: the agent run on the session's history, its events forwarded to the client through a bounded buffer, the deadline, cancellation (by the client, by a hang-up, at shutdown), and the result appended to the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_host_agent::{Agent, AgentEvent, Outcome};
use agent_host_llm::Usage;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::state::{AppState, TurnClaim};

/// A tool call of the turn, as its result was given to the model.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ToolCallSummary {
    /// The model's id for the call.
    pub id: String,
    /// The tool.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// From its start to its result, hooks included.
    pub duration_ms: f64,
}

/// How a turn ended, as the client gets it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TurnResult {
    /// The turn.
    pub turn_id: String,
    /// The session.
    pub session_id: String,
    /// finished, cancelled, turn_limit, failed or blocked.
    #[schema(value_type = String)]
    pub outcome: &'static str,
    /// The model's answer, when it gave one.
    pub answer: Option<String>,
    /// Why it failed or was blocked, or what cancelled it.
    pub detail: Option<String>,
    /// The tool calls, in the order they finished.
    pub tool_calls: Vec<ToolCallSummary>,
    /// Tokens over the turn's model calls: `{"input_tokens", "output_tokens"}`.
    #[schema(value_type = Object)]
    pub usage: Usage,
}

/// The events of a running turn, then its result.
pub(crate) struct Turn {
    /// The agent's events, each as its JSON (`type` names it); the last
    /// item is the `done` event with the [`TurnResult`].
    pub(crate) events: mpsc::Receiver<Value>,
    /// Cancels the turn.
    pub(crate) cancel: CancellationToken,
    /// The turn's result once it has ended.
    pub(crate) result: tokio::sync::oneshot::Receiver<TurnResult>,
}

/// Starts a turn of the claimed session with the user's `content`. The turn
/// runs on its own task: it ends as the agent run ends, whatever the client
/// does (a hang-up cancels it only when the server is configured to).
pub(crate) async fn start(
    state: &AppState,
    claim: TurnClaim,
    live: Arc<tokio::sync::Mutex<agent_host_agent::sessions::LiveSession>>,
    content: String,
) -> Result<Turn, ApiError> {
    let model = live.lock().await.record.model.clone();
    let provider = state.models().pick(Some(&model))?;
    let (client_tx, client_rx) = mpsc::channel(state.config().stream_buffer.max(1));
    let (result_tx, result_rx) = tokio::sync::oneshot::channel();
    let cancel = claim.turn.cancel.clone();
    let turn_cancel = cancel.clone();
    let state = state.clone();
    tokio::spawn(async move {
        let mut session = live.lock().await;
        let agent = state.session_agent(&claim.session, || {
            let runtime = state.runtime().clone();
            let mut config = state.agent_config().clone();
            if let Some(system) = &session.record.system {
                config.system_prompt = Some(system.clone());
            }
            Agent::new(state.tools(), provider, config)
                .with_extensions(runtime)
                .with_session(claim.session.clone())
        });
        let history = session.history.clone();
        let before = history.len();
        let ran = run_agent(&state, agent, history, content, &cancel, &client_tx).await;
        let (label, answer, detail) = describe(&ran.outcome, ran.timed_out);
        let (history, usage, tool_calls) = (ran.history, ran.usage, ran.tool_calls);
        let added = &history[before..];
        state.live().append(&mut session, added, usage, Some(label));
        drop(session);
        let result = TurnResult {
            turn_id: claim.turn.turn_id.clone(),
            session_id: claim.session.clone(),
            outcome: label,
            answer,
            detail,
            tool_calls,
            usage,
        };
        let mut done = serde_json::to_value(&result).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut done {
            fields.insert("type".to_owned(), Value::from("done"));
        }
        let _ = client_tx.send(done).await;
        let _ = result_tx.send(result);
        // The claim (the session's turn slot and the server-wide permit)
        // is released only now, once the result is stored.
        drop(claim);
    });
    Ok(Turn {
        events: client_rx,
        cancel: turn_cancel,
        result: result_rx,
    })
}

/// What one agent run came to.
pub(crate) struct Ran {
    pub(crate) outcome: Outcome,
    /// The history with the run's messages added.
    pub(crate) history: Vec<agent_host_llm::Message>,
    pub(crate) usage: Usage,
    pub(crate) tool_calls: Vec<ToolCallSummary>,
    /// Whether the turn deadline cancelled it.
    pub(crate) timed_out: bool,
}

/// Runs `agent` on `history` + `content` under the turn deadline, passing
/// its events to `client` as JSON while it runs.
pub(crate) async fn run_agent(
    state: &AppState,
    agent: Agent,
    mut history: Vec<agent_host_llm::Message>,
    content: String,
    cancel: &CancellationToken,
    client: &mpsc::Sender<Value>,
) -> Ran {
    let started = std::time::Instant::now();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let deadline = Duration::from_secs(state.config().turn_timeout_secs.max(1));
    let timed_out = Arc::new(AtomicBool::new(false));
    let timer = {
        let (cancel, timed_out) = (cancel.clone(), timed_out.clone());
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            timed_out.store(true, Ordering::Relaxed);
            cancel.cancel();
        })
    };
    let run = async move {
        let outcome = agent
            .run(&mut history, content, &events_tx, cancel, None)
            .await;
        drop(events_tx);
        (outcome, history)
    };
    let forward = forward(state, events_rx, client.clone(), cancel.clone());
    let ((outcome, history), (usage, tool_calls)) = tokio::join!(run, forward);
    timer.abort();
    let timed_out = timed_out.load(Ordering::Relaxed);
    state
        .metrics()
        .turn(describe(&outcome, timed_out).0, started);
    Ran {
        outcome,
        history,
        usage,
        tool_calls,
        timed_out,
    }
}

/// Passes the agent's events on to the client and sums up what the result
/// needs. A client slower than the turn makes this wait (the buffer is
/// bounded); one that has gone cancels the turn when configured to.
async fn forward(
    state: &AppState,
    mut events: mpsc::UnboundedReceiver<AgentEvent>,
    client: mpsc::Sender<Value>,
    cancel: CancellationToken,
) -> (Usage, Vec<ToolCallSummary>) {
    let cancel_on_disconnect = state.config().cancel_on_disconnect;
    let mut usage = Usage::default();
    let mut tool_calls = Vec::new();
    let mut client_gone = false;
    while let Some(event) = events.recv().await {
        match &event {
            AgentEvent::Usage { usage: more } => {
                usage.input_tokens += more.input_tokens;
                usage.output_tokens += more.output_tokens;
            }
            AgentEvent::ToolCallFinished {
                id,
                name,
                ok,
                duration_ms,
                ..
            } => {
                state.metrics().tool_call(name, *ok, *duration_ms);
                tool_calls.push(ToolCallSummary {
                    id: id.clone(),
                    name: name.clone(),
                    ok: *ok,
                    duration_ms: *duration_ms,
                });
            }
            _ => {}
        }
        if client_gone {
            continue;
        }
        let value = serde_json::to_value(&event).unwrap_or(Value::Null);
        if client.send(value).await.is_err() {
            client_gone = true;
            if cancel_on_disconnect {
                cancel.cancel();
            }
        }
    }
    (usage, tool_calls)
}

pub(crate) fn describe(
    outcome: &Outcome,
    timed_out: bool,
) -> (&'static str, Option<String>, Option<String>) {
    match outcome {
        Outcome::Finished { text } => ("finished", Some(text.clone()), None),
        Outcome::TurnLimit => (
            "turn_limit",
            None,
            Some("the turn used all its model calls".to_owned()),
        ),
        Outcome::Cancelled if timed_out => (
            "cancelled",
            None,
            Some("the turn ran past [server] turn_timeout_secs".to_owned()),
        ),
        Outcome::Cancelled => ("cancelled", None, None),
        Outcome::Failed(message) => ("failed", None, Some(message.clone())),
        Outcome::Blocked { extension, reason } => (
            "blocked",
            None,
            Some(format!("blocked by extension {extension}: {reason}")),
        ),
    }
}
