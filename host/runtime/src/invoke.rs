//! One tool call in a fresh sandbox: instantiate, invoke, enforce the deadline and output cap, classify failures.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::{Engine, Trap};

use crate::bindings::{self, CallContext, ToolPluginPre};
use crate::capabilities::Limits;
use crate::error::{CallError, FailureKind};
use crate::host_api::{HostContext, ProgressSink};
use crate::loader::LoadedPlugin;
use crate::sandbox::{self, CallProbe, CallState, DeadlineExceeded};
use crate::spec::ToolOutput;

/// Extra time the outer timer allows beyond the guest deadline, so the epoch
/// check (which reports the precise cause) normally fires first.
pub(crate) const TIMER_GRACE: Duration = Duration::from_millis(50);

/// Per-call inputs beyond the tool and its arguments.
pub(crate) struct Invocation<'a> {
    pub engine: &'a Engine,
    pub plugin: &'a LoadedPlugin,
    pub pre: &'a ToolPluginPre<CallState>,
    pub tool: &'a str,
    pub args_json: String,
    pub call_id: String,
    pub session_id: Option<String>,
    /// The plugin's key-value state.
    pub kv: crate::store::PluginKv,
    /// Its configuration as JSON object text.
    pub config: std::sync::Arc<str>,
    pub progress: Option<ProgressSink>,
    pub cancel: Option<CancellationToken>,
    pub session_state: Option<std::sync::Arc<crate::session_state::SessionState>>,
}

/// Runs the call. The Store is dropped at the end whatever happened, so a
/// trapped or cancelled instance is never entered again.
pub(crate) async fn invoke(call: Invocation<'_>) -> Result<ToolOutput, CallError> {
    let plugin = call.plugin;
    let limits = &plugin.capabilities.limits;
    let failed = |kind: FailureKind, detail: Option<String>| CallError::Failed {
        plugin: plugin.name().to_owned(),
        tool: call.tool.to_owned(),
        kind,
        detail,
    };
    let host = HostContext::new(plugin.name(), call.tool, call.kv, call.progress)
        .with_session(call.session_state)
        .with_config(call.config);
    let (mut store, probe) =
        sandbox::new_store(call.engine, &plugin.capabilities, host).map_err(|err| {
            CallError::Host {
                tool: call.tool.to_owned(),
                message: err.to_string(),
            }
        })?;
    let context = CallContext {
        call_id: call.call_id,
        session_id: call.session_id,
        timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let run = async {
        let instance = call
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(Stage::Instantiate)?;
        let result = instance
            .agent_plugin_tool()
            .call_invoke(&mut store, call.tool, &call.args_json, &context)
            .await
            .map_err(Stage::Run)?;
        Ok::<_, Stage>(result)
    };
    let cancelled = async {
        match &call.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(limits.timeout + TIMER_GRACE, run) => outcome,
        () = cancelled => {
            log_output(plugin.name(), call.tool, &probe);
            return Err(failed(FailureKind::Cancelled, None));
        }
    };
    let timeout_kind = FailureKind::Timeout {
        ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let result = match outcome {
        Err(_elapsed) => {
            log_output(plugin.name(), call.tool, &probe);
            return Err(failed(timeout_kind, None));
        }
        Ok(Err(Stage::Instantiate(err))) => {
            log_output(plugin.name(), call.tool, &probe);
            let kind = if probe.memory_limit_hit() {
                memory_limit(limits, &probe)
            } else {
                FailureKind::Instantiate {
                    message: crate::guest_error::trap_text(&format!("{err:#}")),
                }
            };
            return Err(failed(kind, None));
        }
        Ok(Err(Stage::Run(err))) => {
            let stderr = log_output(plugin.name(), call.tool, &probe);
            let kind = classify(&err, &probe, limits, timeout_kind);
            return Err(failed(kind, crate::guest_error::guest_error(&stderr)));
        }
        Ok(Ok(result)) => {
            log_output(plugin.name(), call.tool, &probe);
            result
        }
    };
    let size = bindings::result_size(&result);
    if size > limits.max_output_bytes {
        return Err(failed(
            FailureKind::OutputTooLarge {
                size,
                limit: limits.max_output_bytes,
            },
            None,
        ));
    }
    let output = bindings::result_from_wit(result)
        .map_err(|err| {
            let message = err.to_string();
            failed(FailureKind::BadAnswer { message }, None)
        })?
        .map_err(|error| CallError::Tool {
            tool: call.tool.to_owned(),
            error,
        })?;
    // A declared output schema is a promise to the caller; a result that
    // breaks it fails the call (checked like arguments, under the deadline).
    if let Some(structured) = &output.structured
        && let Some(tool) = plugin.tool(call.tool)
        && tool.validator.has_output_schema()
    {
        tool.validator
            .check_output_within(structured, limits.timeout)
            .await
            .map_err(|err| err.for_output(plugin.name(), call.tool))?;
    }
    Ok(output)
}

enum Stage {
    Instantiate(wasmtime::Error),
    Run(wasmtime::Error),
}

/// A memory-limit failure, with what the guest asked for.
pub(crate) fn memory_limit(limits: &Limits, probe: &CallProbe) -> FailureKind {
    FailureKind::MemoryLimit {
        limit_mb: limits.memory_bytes >> 20,
        wanted_bytes: probe.refused_memory_bytes() as u64,
        host_max_mb: limits.host_max_memory_mb,
    }
}

pub(crate) fn classify(
    err: &wasmtime::Error,
    probe: &CallProbe,
    limits: &Limits,
    timeout: FailureKind,
) -> FailureKind {
    if err.is::<DeadlineExceeded>() {
        return timeout;
    }
    if probe.memory_limit_hit() {
        return memory_limit(limits, probe);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => FailureKind::StackOverflow,
        Some(Trap::OutOfFuel) => FailureKind::FuelExhausted {
            fuel: limits.fuel.unwrap_or(0),
        },
        Some(Trap::Interrupt) => timeout,
        Some(trap) => FailureKind::Trap {
            message: trap.to_string(),
        },
        None => FailureKind::Trap {
            message: crate::guest_error::trap_text(&format!("{err:#}")),
        },
    }
}

/// Sends what the guest printed to the log and returns its stderr.
pub(crate) fn log_output(plugin: &str, tool: &str, probe: &CallProbe) -> String {
    let (stdout, stdout_dropped) = probe.stdout.take();
    let (stderr, stderr_dropped) = probe.stderr.take();
    for (stream, text, dropped) in [
        ("stdout", &stdout, stdout_dropped),
        ("stderr", &stderr, stderr_dropped),
    ] {
        if !text.is_empty() {
            tracing::debug!(target: "plugin", %plugin, %tool, stream, "{}", text.trim_end());
        }
        if dropped > 0 {
            tracing::warn!(target: "plugin", %plugin, %tool, stream, dropped, "plugin output beyond the capture limit was dropped");
        }
    }
    stderr
}
