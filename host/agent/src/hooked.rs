//! The agent loop's side of extension hooks: delivering an event and settling what the hooks decided (events, injections, errors); an agent without extensions skips all of it.

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AgentEvent;
use agent_host_llm::{Message, ToolCall};
use agent_host_runtime::hooks::{Dispatched, HookPoint, Hooks, Injection};

/// Delivers an event at `point` and settles what its hooks did; without
/// hooks nothing is delivered and nothing is decided.
pub(crate) async fn dispatch(
    hooks: Option<&Hooks>,
    point: HookPoint,
    payload: impl FnOnce() -> Value,
    events: &mpsc::UnboundedSender<AgentEvent>,
) -> Dispatched {
    let Some(hooks) = hooks else {
        return Dispatched::default();
    };
    let mut dispatched = hooks.dispatch(point, payload).await;
    settle(hooks, point, &mut dispatched, events).await;
    dispatched
}

/// Reports what the hooks of one event did beyond their payload: hooks
/// switched off become events, injections wait for the next model call,
/// failures are delivered to `error` subscribers.
pub(crate) async fn settle(
    hooks: &Hooks,
    point: HookPoint,
    dispatched: &mut Dispatched,
    events: &mpsc::UnboundedSender<AgentEvent>,
) {
    report(hooks, dispatched, events);
    if point == HookPoint::Error || dispatched.failures.is_empty() {
        return;
    }
    // Failures of error hooks are not reported to error hooks again, so
    // this never recurses.
    for failure in std::mem::take(&mut dispatched.failures) {
        let mut reported = hooks
            .dispatch(HookPoint::Error, || {
                error_payload("extension", Some(&failure.extension), &failure.to_string())
            })
            .await;
        report(hooks, &mut reported, events);
    }
}

fn report(hooks: &Hooks, dispatched: &mut Dispatched, events: &mpsc::UnboundedSender<AgentEvent>) {
    for disabled in dispatched.disabled.drain(..) {
        let _ = events.send(AgentEvent::HookDisabled {
            extension: disabled.extension,
            point: disabled.point,
            reason: disabled.reason,
        });
    }
    hooks.queue_injections(std::mem::take(&mut dispatched.injections));
}

/// Reports a failure (of a tool or the model) to `error` subscribers.
pub(crate) async fn report_error(
    hooks: Option<&Hooks>,
    source: &str,
    name: Option<&str>,
    message: &str,
    events: &mpsc::UnboundedSender<AgentEvent>,
) {
    let Some(hooks) = hooks else {
        return;
    };
    let mut dispatched = hooks
        .dispatch(HookPoint::Error, || error_payload(source, name, message))
        .await;
    report(hooks, &mut dispatched, events);
}

fn error_payload(source: &str, name: Option<&str>, message: &str) -> Value {
    json!({ "source": source, "name": name, "message": message })
}

/// Moves the injections waiting in `hooks` into the history, as user
/// messages naming their extension.
pub(crate) fn deliver_injections(
    hooks: Option<&Hooks>,
    history: &mut Vec<Message>,
    events: &mpsc::UnboundedSender<AgentEvent>,
) {
    let Some(hooks) = hooks else {
        return;
    };
    for Injection {
        extension,
        point,
        text,
    } in hooks.take_injections()
    {
        history.push(Message::user(format!("[extension {extension}] {text}")));
        let _ = events.send(AgentEvent::HookInjected {
            extension,
            point,
            text,
        });
    }
}

/// The tool calls as extensions see them.
pub(crate) fn tool_calls_json(calls: &[ToolCall]) -> Value {
    serde_json::to_value(calls).unwrap_or(Value::Null)
}
