//! One hook call in a sandbox under the hook budget: a warm instance of this session or a fresh one, `on-event`, failures classified.
//!
//! An extension instance may serve several events of one session: after a
//! call that succeeded it is kept warm and reused, which saves setting up
//! WASI and instantiating (most of a hook's cost). After any failure it is
//! dropped, so a trapped or timed-out instance is never entered again.
//! Instances are never shared between sessions or plugin versions.

use std::sync::Arc;

use wasmtime::Engine;

use super::{HookOutcome, HookPoint};
use crate::bindings::{self, ExtensionPlugin, ExtensionPluginPre};
use crate::capabilities::Capabilities;
use crate::error::{FailureKind, HookError};
use crate::guest_error::guest_error;
use crate::host_api::{CallSite, HostContext};
use crate::invoke::{TIMER_GRACE, classify, log_output};
use crate::loader::LoadedPlugin;
use crate::sandbox::{self, CallProbe, CallState};
use crate::session_state::SessionState;
use crate::store::PluginKv;

/// An instance kept between events of one session.
pub(crate) struct WarmInstance {
    store: wasmtime::Store<CallState>,
    probe: CallProbe,
    instance: ExtensionPlugin,
    /// The plugin load it was made from: its code and its configuration
    /// (a reload makes a new one even when only the manifest changed).
    content_hash: String,
    config: Arc<str>,
}

impl WarmInstance {
    pub(crate) fn is_from(&self, plugin: &LoadedPlugin) -> bool {
        self.content_hash == plugin.content_hash && Arc::ptr_eq(&self.config, &plugin.config)
    }
}

/// Everything one hook call needs.
pub(crate) struct HookCall<'a> {
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
    /// An instance this session kept from an earlier event, if any.
    pub warm: Option<WarmInstance>,
}

/// Runs the hook. Returns the instance to keep warm when the call succeeded.
pub(crate) async fn call_hook(
    call: HookCall<'_>,
) -> (Result<HookOutcome, HookError>, Option<WarmInstance>) {
    let plugin = call.plugin;
    let limits = &call.caps.limits;
    let point = call.point;
    let failed = |kind: FailureKind, detail: Option<String>| HookError {
        extension: plugin.name().to_owned(),
        point,
        kind,
        detail,
    };
    let event = bindings::hook_event(point, call.session_id, call.turn, call.payload);
    let warm = call.warm.filter(|warm| warm.is_from(plugin));
    let (mut store, probe, instance) = match warm {
        Some(warm) => (warm.store, warm.probe, Some(warm.instance)),
        None => {
            let site = CallSite::new(
                plugin.name(),
                point.as_str(),
                call.kv,
                plugin.config.clone(),
            );
            let host = HostContext::new(Arc::new(site), None).with_session(call.session_state);
            match sandbox::new_store(call.engine, call.caps, host, None) {
                Ok((store, probe)) => (store, probe, None),
                Err(err) => {
                    let message = err.to_string();
                    return (
                        Err(failed(FailureKind::Instantiate { message }, None)),
                        None,
                    );
                }
            }
        }
    };
    if instance.is_some() {
        store.data_mut().host.begin_call(point.as_str());
        probe
            .memory_refused
            .store(0, std::sync::atomic::Ordering::Relaxed);
        if let Err(err) = sandbox::arm_budget(&mut store, limits) {
            let message = err.to_string();
            return (
                Err(failed(FailureKind::Instantiate { message }, None)),
                None,
            );
        }
    }
    let run = async {
        let instance = match instance {
            Some(instance) => instance,
            None => call.pre.instantiate_async(&mut store).await?,
        };
        let outcome = instance
            .agent_plugin_extension()
            .call_on_event(&mut store, &event)
            .await?;
        Ok::<_, wasmtime::Error>((outcome, instance))
    };
    let timeout_kind = FailureKind::Timeout {
        ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match tokio::time::timeout(limits.timeout + TIMER_GRACE, run).await {
        Err(_elapsed) => {
            log_output(plugin.name(), point.as_str(), &probe);
            (Err(failed(timeout_kind, None)), None)
        }
        Ok(Err(err)) => {
            let stderr = log_output(plugin.name(), point.as_str(), &probe);
            let kind = classify(&err, &probe, limits, timeout_kind);
            (Err(failed(kind, guest_error(&stderr))), None)
        }
        Ok(Ok((outcome, instance))) => {
            log_output(plugin.name(), point.as_str(), &probe);
            let warm = WarmInstance {
                store,
                probe,
                instance,
                content_hash: plugin.content_hash.clone(),
                config: plugin.config.clone(),
            };
            (Ok(bindings::outcome_from_wit(outcome)), Some(warm))
        }
    }
}
