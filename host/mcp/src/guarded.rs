//! One MCP tool call between the extensions' before- and after-tool-call hooks: a block or a rewrite by an extension protects MCP clients as it protects the agent's model.
//!
//! An MCP call has no conversation around it, so what the agent loop does
//! with an extension's injected message (add it to the next model call)
//! has no place here: injections are dropped and logged. Each call counts
//! as one hook turn, so per-turn throttles mean per-call ones.

use agent_host_runtime::hooks::{Dispatched, HookPoint, Hooks};
use agent_host_runtime::{CallError, CallOptions, Runtime, ToolOutput};
use serde_json::{Value, json};

/// How a guarded call ended.
#[derive(Debug)]
pub enum Outcome {
    /// The tool's result, untouched by any extension.
    Output(ToolOutput),
    /// An extension rewrote the result: only its text is kept (the tool's
    /// structured output could carry what was rewritten away).
    Rewritten {
        /// The result's text after the rewrite.
        text: String,
        /// Whether it still counts as a success.
        ok: bool,
    },
    /// An extension blocked the call or withheld its result.
    Blocked(String),
    /// The call failed (its message is for the model).
    Failed(CallError),
}

/// Runs `name` with `args`, through `hooks` when there are any.
pub async fn call(
    runtime: &Runtime,
    hooks: Option<&Hooks>,
    name: &str,
    args: Value,
    options: CallOptions,
) -> Outcome {
    let Some(hooks) = hooks else {
        return match runtime.call_tool(name, &args, options).await {
            Ok(output) => Outcome::Output(output),
            Err(err) => Outcome::Failed(err),
        };
    };
    hooks.begin_turn();
    let call_id = options.call_id.clone().unwrap_or_default();
    let mut args = args;
    let before = hooks
        .dispatch(
            HookPoint::BeforeToolCall,
            || json!({ "call_id": call_id, "name": name, "arguments": args }),
        )
        .await;
    let before = settle(hooks, name, before);
    if let Some(blocked) = before.blocked {
        let message = format!(
            "blocked by extension {}: {}",
            blocked.extension, blocked.reason
        );
        report_failure(hooks, name, &message);
        return Outcome::Blocked(message);
    }
    if let Some(patched) = before
        .patched
        .and_then(|mut fields| fields.remove("arguments"))
    {
        args = patched;
    }
    let result = runtime.call_tool(name, &args, options).await;
    if let Err(err @ CallError::UnknownTool { .. }) = result {
        // Not a call that happened: the caller's protocol error.
        return Outcome::Failed(err);
    }
    let (ok, text) = match &result {
        Ok(output) => (true, output.to_text()),
        Err(err) => (false, err.to_string()),
    };
    let after = hooks
        .dispatch(HookPoint::AfterToolCall, || {
            let mut payload = json!({
                "call_id": call_id, "name": name, "arguments": args, "ok": ok, "output": text,
            });
            if let Ok(ToolOutput {
                structured: Some(structured),
                ..
            }) = &result
            {
                payload["structured"] = structured.clone();
            }
            payload
        })
        .await;
    let after = settle(hooks, name, after);
    if let Some(blocked) = after.blocked {
        let message = format!(
            "result withheld by extension {}: {}",
            blocked.extension, blocked.reason
        );
        report_failure(hooks, name, &message);
        return Outcome::Blocked(message);
    }
    let outcome = match after.patched {
        None => match result {
            Ok(output) => Outcome::Output(output),
            Err(err) => Outcome::Failed(err),
        },
        Some(patched) => rewritten(runtime, name, ok, text, &patched),
    };
    match &outcome {
        Outcome::Failed(err) => report_failure(hooks, name, &err.to_string()),
        Outcome::Rewritten { ok: false, text } => report_failure(hooks, name, text),
        _ => {}
    }
    outcome
}

/// The result as an after-tool-call patch left it, held to the tool's own
/// output cap.
fn rewritten(
    runtime: &Runtime,
    name: &str,
    ok: bool,
    text: String,
    patched: &serde_json::Map<String, Value>,
) -> Outcome {
    let text = patched
        .get("output")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or(text);
    let ok = patched.get("ok").and_then(Value::as_bool).unwrap_or(ok);
    let limit = runtime.tool_output_limit(name).unwrap_or(usize::MAX);
    match agent_host_runtime::hooks::capped_rewrite(name, text, limit) {
        Ok(text) => Outcome::Rewritten { text, ok },
        Err(withheld) => Outcome::Blocked(withheld),
    }
}

/// Logs what the hooks did beyond the payload: failures, hooks switched
/// off, and injections (which an MCP call has nowhere to put).
fn settle(hooks: &Hooks, tool: &str, mut dispatched: Dispatched) -> Dispatched {
    for failure in dispatched.failures.drain(..) {
        tracing::warn!(tool = %tool, error = %failure, "an extension hook failed; the call went on without it");
    }
    for disabled in dispatched.disabled.drain(..) {
        tracing::warn!(extension = %disabled.extension, point = %disabled.point.as_str(), reason = %disabled.reason, "an extension hook was switched off");
    }
    for injection in dispatched.injections.drain(..) {
        tracing::debug!(extension = %injection.extension, "an extension's injected message was dropped: an MCP call has no conversation to add it to");
    }
    // Anything the hooks queued elsewhere has nowhere to go either.
    let _ = hooks.take_injections();
    dispatched
}

/// Tells `error` subscribers about a failed call, without waiting for them.
fn report_failure(hooks: &Hooks, tool: &str, message: &str) {
    hooks.notify(
        HookPoint::Error,
        || json!({ "source": "tool", "name": tool, "message": message }),
    );
}
