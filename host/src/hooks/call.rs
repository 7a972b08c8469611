//! One hook call in a fresh sandbox under the hook budget: instantiate, `on-event`, classify failures.

use std::sync::Arc;

use wasmtime::Engine;

use super::{HookOutcome, HookPoint};
use crate::bindings::{self, ExtensionPluginPre};
use crate::capabilities::Capabilities;
use crate::error::{FailureKind, HookError};
use crate::host_api::HostContext;
use crate::invoke::{TIMER_GRACE, classify, log_output, panic_message};
use crate::loader::LoadedPlugin;
use crate::sandbox::{self, CallState};
use crate::session_state::SessionState;
use crate::store::PluginKv;

/// Everything one hook call needs.
pub struct HookCall<'a> {
    pub engine: &'a Engine,
    pub plugin: &'a LoadedPlugin,
    pub pre: &'a ExtensionPluginPre<CallState>,
    /// The plugin's capabilities with the hook budget applied.
    pub caps: &'a Capabilities,
    pub point: HookPoint,
    pub session_id: Option<String>,
    pub turn: u32,
    pub payload: String,
    pub kv: PluginKv,
    pub session_state: Option<Arc<SessionState>>,
}

/// Runs the hook. The Store is dropped at the end whatever happened, so a
/// trapped instance is never entered again.
pub async fn call_hook(call: HookCall<'_>) -> Result<HookOutcome, HookError> {
    let plugin = call.plugin;
    let limits = &call.caps.limits;
    let point = call.point;
    let failed = |kind: FailureKind, detail: Option<String>| HookError {
        extension: plugin.name().to_owned(),
        point,
        kind,
        detail,
    };
    let host = HostContext::new(plugin.name(), point.as_str(), call.kv, None)
        .with_session(call.session_state)
        .with_config(plugin.config.clone());
    let (mut store, probe) = sandbox::new_store(call.engine, call.caps, host)
        .map_err(|message| failed(FailureKind::Instantiate { message }, None))?;
    let event = bindings::hook_event(point, call.session_id, call.turn, call.payload);
    let run = async {
        let instance = call.pre.instantiate_async(&mut store).await?;
        instance
            .agent_plugin_extension()
            .call_on_event(&mut store, &event)
            .await
    };
    let timeout_kind = FailureKind::Timeout {
        ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match tokio::time::timeout(limits.timeout + TIMER_GRACE, run).await {
        Err(_elapsed) => {
            log_output(plugin.name(), point.as_str(), &probe);
            Err(failed(timeout_kind, None))
        }
        Ok(Err(err)) => {
            let stderr = log_output(plugin.name(), point.as_str(), &probe);
            let kind = classify(&err, &probe, limits.memory_bytes, limits.fuel, timeout_kind);
            Err(failed(kind, panic_message(&stderr)))
        }
        Ok(Ok(outcome)) => {
            log_output(plugin.name(), point.as_str(), &probe);
            Ok(bindings::outcome_from_wit(outcome))
        }
    }
}
