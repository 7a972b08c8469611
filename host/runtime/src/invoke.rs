//! One tool call in a fresh sandbox: instantiate, invoke, enforce the deadline and output cap, classify failures.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::{Engine, Trap};

use crate::bindings::{self, CallContext, ToolPluginPre};
use crate::capabilities::Limits;
use crate::error::{CallError, FailureKind};
use crate::host_api::{CallSite, HostContext, ProgressSink};
use crate::loader::LoadedPlugin;
use crate::sandbox::{self, CallProbe, CallState, DeadlineExceeded};
use crate::schema::ArgsValidator;
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
    /// The tool's schemas: its structured result is checked against the
    /// output schema, when it declares one.
    pub validator: &'a ArgsValidator,
    /// The plugin, tool, state and configuration the host imports serve.
    pub site: std::sync::Arc<CallSite>,
    /// Where the call's WASI context comes from and goes back to: contexts
    /// of this plugin version's earlier calls on this engine.
    pub wasi_pool: Option<&'a sandbox::WasiPool>,
    pub args_json: String,
    pub call_id: String,
    pub session_id: Option<String>,
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
    let host = HostContext::new(call.site, call.progress).with_session(call.session_state);
    let (mut store, probe) =
        sandbox::new_store(call.engine, &plugin.capabilities, host, call.wasi_pool).map_err(
            |err| CallError::Host {
                tool: call.tool.to_owned(),
                message: err.to_string(),
            },
        )?;
    let context = CallContext {
        call_id: call.call_id,
        session_id: call.session_id,
        timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    // The outer timer counts from the clock reading the guest deadline was
    // set from: one reading per call.
    let guest_deadline = store
        .data()
        .deadline()
        .unwrap_or_else(|| std::time::Instant::now() + limits.timeout);
    let deadline = tokio::time::Instant::from_std(guest_deadline + TIMER_GRACE);
    let ended = {
        // Pinned where it is made: the call's future holds both wasmtime
        // futures, and moving it into `until_done` by value copied it twice.
        let run = std::pin::pin!(async {
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
        });
        until_done(run, call.cancel.as_ref(), deadline).await
    };
    // Everything the call left behind is read before its WASI context may
    // serve another call.
    let stderr = log_output(plugin.name(), call.tool, &probe);
    let timeout_kind = FailureKind::Timeout {
        ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let verdict = match ended {
        Ended::Cancelled => Err(failed(FailureKind::Cancelled, None)),
        Ended::TimedOut => Err(failed(timeout_kind, None)),
        Ended::Done(Err(Stage::Instantiate(err))) => {
            let kind = if probe.memory_limit_hit() {
                memory_limit(limits, &probe)
            } else {
                FailureKind::Instantiate {
                    message: crate::guest_error::trap_text(&format!("{err:#}")),
                }
            };
            Err(failed(kind, None))
        }
        Ended::Done(Err(Stage::Run(err))) => {
            let kind = classify(&err, &probe, limits, timeout_kind);
            Err(failed(kind, crate::guest_error::guest_error(&stderr)))
        }
        Ended::Done(Ok(result)) => Ok(result),
    };
    if let Some(pool) = call.wasi_pool {
        pool.keep(store, probe);
    }
    let result = verdict?;
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
        && call.validator.has_output_schema()
    {
        call.validator
            .check_output_within(structured, limits.timeout)
            .await
            .map_err(|err| err.for_output(plugin.name(), call.tool))?;
    }
    Ok(output)
}

/// How [`until_done`] ended.
enum Ended<T> {
    Done(T),
    TimedOut,
    Cancelled,
}

/// Runs `run` until it finishes, `cancel` fires or `deadline` passes. A
/// call that finishes on its first poll (most calls: the guest rarely
/// waits on the host) never arms a timer or registers with the token; both
/// are set up only once it waits.
async fn until_done<F: Future>(
    mut run: std::pin::Pin<&mut F>,
    cancel: Option<&CancellationToken>,
    deadline: tokio::time::Instant,
) -> Ended<F::Output> {
    use std::task::Poll;
    if cancel.is_some_and(CancellationToken::is_cancelled) {
        return Ended::Cancelled;
    }
    let mut cancelled = std::pin::pin!(async {
        match cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    });
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = run.as_mut().poll(cx) {
            return Poll::Ready(Ended::Done(output));
        }
        if cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ended::Cancelled);
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ended::TimedOut);
        }
        Poll::Pending
    })
    .await
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
    let printed = probe.output.take();
    let ((stdout, stdout_dropped), (stderr, stderr_dropped)) = (printed.stdout, printed.stderr);
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
