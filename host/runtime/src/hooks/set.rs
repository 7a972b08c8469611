//! The active hooks of the loaded extensions, per point and in call order, with the host's overrides applied.

use std::sync::Arc;

use super::{Delivery, HookPoint, Throttle};
use crate::capabilities::Capabilities;
use crate::config::RuntimeConfig;
use crate::loader::LoadedPlugin;

/// One extension subscribed to one point, as the host will call it.
#[derive(Debug)]
pub struct ActiveHook {
    /// The extension.
    pub plugin: Arc<LoadedPlugin>,
    /// The point it is called at.
    pub point: HookPoint,
    /// Lower runs first (the config may override the declared one).
    pub priority: i32,
    /// Whether the loop waits for the answer.
    pub delivery: Delivery,
    /// Declared hints with the configuration's overrides applied (and, for
    /// stream-chunk, the default batch size and age filled in).
    pub throttle: Throttle,
    /// The plugin's capabilities with the hook budget (time, fuel) applied.
    pub caps: Capabilities,
    /// A failure blocks instead of passing (see `ExtensionSettings`).
    pub fail_closed: bool,
}

impl ActiveHook {
    /// The extension's name.
    pub fn extension(&self) -> &str {
        self.plugin.name()
    }
}

/// Every active hook, by point. Rebuilt whenever the set of loaded plugins
/// changes; read on every event, so a point nobody subscribes to costs one
/// empty-slice check.
#[derive(Debug, Default)]
pub struct ExtensionSet {
    by_point: [Vec<Arc<ActiveHook>>; HookPoint::ALL.len()],
}

impl ExtensionSet {
    /// The hooks of `plugins` (tool plugins are ignored), ordered by
    /// priority and then by name.
    pub fn build<'a>(
        plugins: impl Iterator<Item = &'a Arc<LoadedPlugin>>,
        config: &RuntimeConfig,
    ) -> Self {
        let mut set = ExtensionSet::default();
        for plugin in plugins {
            let Some(spec) = &plugin.extension else {
                continue;
            };
            let settings = config.extension_settings(plugin.name());
            if !settings.enabled {
                continue;
            }
            let priority = settings.priority.unwrap_or(spec.priority);
            let mut caps = plugin.capabilities.clone();
            caps.limits.timeout = caps
                .limits
                .timeout
                .min(std::time::Duration::from_millis(config.hooks.timeout_ms));
            if config.sandbox.fuel {
                caps.limits.fuel = match (config.hooks.fuel, caps.limits.fuel) {
                    (Some(budget), Some(manifest)) => Some(budget.min(manifest)),
                    (budget, manifest) => budget.or(manifest),
                };
            }
            for subscription in &spec.subscriptions {
                let point = subscription.point;
                let over = settings.hooks.get(point.as_str());
                if over.and_then(|o| o.enabled) == Some(false) {
                    continue;
                }
                let mut throttle = over.map_or(subscription.throttle, |o| {
                    subscription.throttle.overridden_by(&o.throttle())
                });
                if point == HookPoint::StreamChunk {
                    throttle.coalesce_chunks = Some(
                        throttle
                            .coalesce_chunks
                            .unwrap_or(config.hooks.default_coalesce_chunks)
                            .max(1),
                    );
                    throttle.coalesce_ms = Some(
                        throttle
                            .coalesce_ms
                            .unwrap_or(config.hooks.default_coalesce_ms),
                    );
                }
                let hooks = &mut set.by_point[point.index()];
                // An extension that lists a point twice is called once.
                if hooks.iter().any(|h| h.extension() == plugin.name()) {
                    continue;
                }
                hooks.push(Arc::new(ActiveHook {
                    plugin: plugin.clone(),
                    point,
                    priority,
                    delivery: over
                        .and_then(|o| o.delivery)
                        .unwrap_or(subscription.delivery),
                    throttle,
                    caps: caps.clone(),
                    fail_closed: settings.fail_closed,
                }));
            }
        }
        for hooks in &mut set.by_point {
            hooks.sort_by(|a, b| (a.priority, a.extension()).cmp(&(b.priority, b.extension())));
        }
        set
    }

    /// The hooks at `point`, in call order.
    pub fn hooks(&self, point: HookPoint) -> &[Arc<ActiveHook>] {
        &self.by_point[point.index()]
    }

    /// Whether no extension subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.by_point.iter().all(Vec::is_empty)
    }
}
