//! Runs one model turn's tool calls through the [`ToolHost`]: parallel-safe ones concurrently (bounded), others in order, results in call order, each wrapped in the tool-call hooks.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use serde_json::{Value, json};

use super::{AgentEvent, elapsed_ms, hooked};
use crate::tool_host::{ToolCallError, ToolHost};
use agent_host_llm::{Message, ToolCall};
use agent_host_runtime::hooks::{HookPoint, Hooks};
use agent_host_runtime::runtime::CallOptions;

/// What one model turn's calls came to.
pub(crate) struct CallsRan {
    /// One tool-result message per call, in the model's order.
    pub(crate) results: Vec<Message>,
    /// The first host error among the calls: the turn cannot go on.
    pub(crate) host_failure: Option<String>,
}

/// Executes the calls and answers every one of them, so the history stays
/// valid whatever happened. Tool errors and failed calls become results
/// flagged as errors, for the model to react to; a cancelled call is
/// answered as cancelled; a host error is answered too, and reported in
/// [`CallsRan::host_failure`] so the caller can end the turn.
pub(crate) async fn run_calls(
    tools: &Arc<dyn ToolHost>,
    hooks: Option<&Hooks>,
    calls: &[ToolCall],
    max_parallel: usize,
    session_id: Option<&str>,
    cancel: &CancellationToken,
    events: &mpsc::UnboundedSender<AgentEvent>,
) -> CallsRan {
    let mut results: Vec<Option<Message>> = vec![None; calls.len()];
    let mut host_failure = None;
    let mut index = 0;
    while index < calls.len() {
        // A run of consecutive parallel-safe calls goes together; any other
        // call runs alone, so side effects keep the model's order.
        let mut end = index + 1;
        if is_parallel_safe(tools.as_ref(), &calls[index]) {
            while end < calls.len()
                && end - index < max_parallel.max(1)
                && is_parallel_safe(tools.as_ref(), &calls[end])
            {
                end += 1;
            }
        }
        // Each call of a batch runs as its own task so they really run at
        // the same time on the runtime's worker threads.
        let batch = calls[index..end].iter().map(|call| {
            let _ = events.send(AgentEvent::ToolCallStarted {
                id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            });
            let (tools, hooks, call, cancel, events) = (
                tools.clone(),
                hooks.cloned(),
                call.clone(),
                cancel.clone(),
                events.clone(),
            );
            let session_id = session_id.map(str::to_owned);
            tokio::spawn(async move {
                run_one(
                    tools.as_ref(),
                    hooks.as_ref(),
                    &call,
                    session_id,
                    &cancel,
                    &events,
                )
                .await
            })
        });
        let batch: Vec<_> = batch.collect();
        for (offset, joined) in join_all(batch).await.into_iter().enumerate() {
            let call = &calls[index + offset];
            let (message, failure) = joined.unwrap_or_else(|err| {
                let lost = format!("the host lost the call to '{}': {err}", call.name);
                (
                    Message::tool_result(call.id.clone(), lost.clone(), true),
                    Some(lost),
                )
            });
            results[index + offset] = Some(message);
            host_failure = host_failure.or(failure);
        }
        index = end;
    }
    CallsRan {
        results: results.into_iter().flatten().collect(),
        host_failure,
    }
}

fn is_parallel_safe(tools: &dyn ToolHost, call: &ToolCall) -> bool {
    tools
        .hints(&call.name)
        .is_some_and(|hints| hints.parallel_safe)
}

/// Runs one call between its before and after hooks. Returns the result
/// for the model, and the host error when there was one.
async fn run_one(
    tools: &dyn ToolHost,
    hooks: Option<&Hooks>,
    call: &ToolCall,
    session_id: Option<String>,
    cancel: &CancellationToken,
    events: &mpsc::UnboundedSender<AgentEvent>,
) -> (Message, Option<String>) {
    let started = Instant::now();
    let mut arguments = parse_arguments(&call.arguments);
    let mut blocked = None;
    // `dispatch` builds no payload and calls nothing when no hook listens.
    if !cancel.is_cancelled() {
        let mut dispatched = hooked::dispatch(
            hooks,
            HookPoint::BeforeToolCall,
            || {
                json!({
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": shown_arguments(&arguments, &call.arguments),
                })
            },
            events,
        )
        .await;
        if let Some(patched) = dispatched.patched.take()
            && let Some(args) = patched.get("arguments")
        {
            arguments = Ok(args.clone());
        }
        blocked = dispatched.blocked;
    }
    let mut host_failure = None;
    let (mut ok, mut output) = if cancel.is_cancelled() {
        (false, "cancelled before it started".to_owned())
    } else if let Some(blocked) = blocked {
        let _ = events.send(AgentEvent::HookBlocked {
            extension: blocked.extension.clone(),
            point: blocked.point,
            reason: blocked.reason.clone(),
        });
        (
            false,
            format!(
                "blocked by extension {}: {}",
                blocked.extension, blocked.reason
            ),
        )
    } else {
        match &arguments {
            Err(problem) => (false, problem.clone()),
            Ok(args) => {
                let options = CallOptions {
                    call_id: Some(call.id.clone()),
                    session_id,
                    cancel: Some(cancel.clone()),
                    progress: hooks.and_then(|hooks| progress_to_hooks(hooks, call)),
                };
                match tools.call(&call.name, args, options).await {
                    Ok(output) => (true, output.to_text()),
                    Err(ToolCallError::Host(message)) => {
                        host_failure = Some(message.clone());
                        (false, message)
                    }
                    Err(err) => (false, err.to_string()),
                }
            }
        }
    };
    let mut dispatched = hooked::dispatch(
        hooks,
        HookPoint::AfterToolCall,
        || {
            json!({
                "call_id": call.id,
                "name": call.name,
                "arguments": shown_arguments(&arguments, &call.arguments),
                "ok": ok,
                "output": output,
            })
        },
        events,
    )
    .await;
    if let Some(patched) = dispatched.patched.take() {
        if let Some(text) = patched.get("output").and_then(Value::as_str) {
            output = text.to_owned();
        }
        if let Some(flag) = patched.get("ok").and_then(Value::as_bool) {
            ok = flag;
        }
        let limit = tools.output_limit(&call.name);
        match agent_host_runtime::hooks::capped_rewrite(&call.name, output, limit) {
            Ok(text) => output = text,
            Err(withheld) => {
                ok = false;
                output = withheld;
            }
        }
    }
    if let Some(blocked) = dispatched.blocked {
        let _ = events.send(AgentEvent::HookBlocked {
            extension: blocked.extension.clone(),
            point: blocked.point,
            reason: blocked.reason.clone(),
        });
        ok = false;
        output = format!(
            "result withheld by extension {}: {}",
            blocked.extension, blocked.reason
        );
    }
    if !ok {
        hooked::report_error(hooks, "tool", Some(&call.name), &output, events).await;
    }
    let _ = events.send(AgentEvent::ToolCallFinished {
        id: call.id.clone(),
        name: call.name.clone(),
        ok,
        duration_ms: elapsed_ms(started),
        output: output.clone(),
    });
    (
        Message::tool_result(call.id.clone(), output, !ok),
        host_failure,
    )
}

/// The arguments as extensions see them: the parsed object, or the raw
/// text when it is not valid JSON.
fn shown_arguments(parsed: &Result<Value, String>, raw: &str) -> Value {
    match parsed {
        Ok(args) => args.clone(),
        Err(_) => Value::String(raw.to_owned()),
    }
}

/// Forwards a running tool's progress to tool-progress subscribers, without
/// ever making the tool wait.
fn progress_to_hooks(
    hooks: &Hooks,
    call: &ToolCall,
) -> Option<agent_host_runtime::runtime::Progress> {
    if !hooks.is_subscribed(HookPoint::ToolProgress) {
        return None;
    }
    let (hooks, call_id, name) = (hooks.clone(), call.id.clone(), call.name.clone());
    Some(std::sync::Arc::new(
        move |update: &agent_host_runtime::runtime::ProgressUpdate| {
            hooks.notify(HookPoint::ToolProgress, || {
                json!({
                    "call_id": call_id,
                    "name": name,
                    "done": update.done,
                    "total": update.total,
                    "message": update.message,
                })
            });
        },
    ))
}

/// The model's argument text as a JSON value; empty means no arguments.
fn parse_arguments(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_str(text).map_err(|err| {
        format!("the arguments are not valid JSON ({err}); send a JSON object that matches the tool's schema")
    })
}

#[cfg(test)]
mod tests {
    use super::parse_arguments;

    #[test]
    fn arguments_parse_or_explain() {
        assert_eq!(parse_arguments("").unwrap(), serde_json::json!({}));
        assert_eq!(parse_arguments("{\"a\":1}").unwrap()["a"], 1);
        assert!(
            parse_arguments("{\"a\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
