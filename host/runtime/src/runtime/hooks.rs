//! Extension hooks: the active hook set, one hook call under its budget, and warm-instance slots.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Runtime;
use crate::error::{FailureKind, HookError};
use crate::hooks::{ActiveHook, ExtensionSet, HookOutcome};
use crate::instance_slots::warm_instance_limit;
use crate::loader::Bound;

impl Runtime {
    /// The active hooks of the registered extensions (a snapshot).
    pub fn extension_set(&self) -> Arc<ExtensionSet> {
        self.inner
            .extensions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds the hook table from the registry. Called once after each
    /// change of the registry (a start-up load, a reload, a removal), not
    /// per plugin.
    pub(super) fn refresh_extensions(&self) {
        let set = {
            let registry = self.registry();
            ExtensionSet::build(registry.plugins(), &self.inner.config)
        };
        *self
            .inner
            .extensions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// Runs one hook call of an extension under the hook budget, on `warm`
    /// (an instance this session kept) or a fresh instance. Returns the
    /// instance to keep when the call succeeded.
    pub(crate) async fn run_hook(
        &self,
        hook: &ActiveHook,
        session_id: Option<String>,
        turn: u32,
        payload: String,
        warm: Option<crate::hooks::WarmInstance>,
    ) -> (
        Result<HookOutcome, HookError>,
        Option<crate::hooks::WarmInstance>,
    ) {
        let plugin = &hook.plugin;
        let failed = |message: String| HookError {
            extension: plugin.name().to_owned(),
            point: hook.point,
            kind: FailureKind::Instantiate { message },
            detail: None,
        };
        let prepared = match plugin.prepare(&self.load_context()).await {
            Ok(prepared) => prepared,
            Err(err) => return (Err(failed(err.to_string())), None),
        };
        let Bound::Extension(pre) = &prepared.bound else {
            return (
                Err(failed("the plugin is not an extension".to_owned())),
                None,
            );
        };
        // A warm instance holds a warm slot of its own; a fresh one waits
        // for a call slot (within the hook budget).
        let _slot = match &warm {
            Some(_) => None,
            None => match self
                .inner
                .instance_slots
                .acquire(0, &self.inner.config.sandbox, hook.caps.limits.timeout)
                .await
            {
                Ok(permit) => Some(permit),
                Err(kind) => {
                    let err = HookError {
                        extension: plugin.name().to_owned(),
                        point: hook.point,
                        kind,
                        detail: None,
                    };
                    return (Err(err), None);
                }
            },
        };
        let session_state = match (&warm, session_id.as_deref()) {
            // A warm instance already holds its session state.
            (None, Some(session)) => Some(self.inner.session_states.state(plugin.name(), session)),
            _ => None,
        };
        crate::hooks::call_hook(crate::hooks::HookCall {
            engine: prepared.engine(),
            plugin,
            pre,
            caps: &hook.caps,
            point: hook.point,
            session_id,
            turn,
            payload,
            kv: self.inner.store.plugin_kv(plugin.name()),
            session_state,
            warm,
        })
        .await
    }

    /// Reserves room for one more warm extension instance; `None` when the
    /// share of the instance pool they may hold is used up.
    pub(crate) fn reserve_warm_slot(&self) -> Option<WarmSlot> {
        let limit = warm_instance_limit(&self.inner.config.sandbox);
        let count = &self.inner.warm_instances;
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(WarmSlot {
            count: self.inner.warm_instances.clone(),
        })
    }
}

/// A place held by one warm extension instance; released when dropped.
pub(crate) struct WarmSlot {
    count: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for WarmSlot {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}
