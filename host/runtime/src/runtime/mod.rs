//! The runtime: its engines (one per call engine shard, given out to threads) and linkers, the plugin registry and the store; construction and accessors.
//!
//! The work is split by job: [`loading`] (discover, load, reload, check,
//! name and tool clashes), [`calls`] (tool calls, their options, progress,
//! instance slots and per-engine routes), [`hooks`] (extension hooks and warm instances) and
//! [`stats`] (cache and hook counters and their persistence).

mod calls;
mod hooks;
mod loading;
mod stats;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::ToolPlugin;
use crate::cache::{CacheStatsSnapshot, ComponentCache};
use crate::config::RuntimeConfig;
use crate::engine;
use crate::error::{EngineError, HostError, LoadError};
use crate::hooks::{ExtensionSet, HookStats};
use crate::loader::{CompileObserver, LoadContext, LoadedPlugin};
use crate::registry::Registry;
use crate::sandbox::CallState;
use crate::store::DataStore;

pub use crate::host_api::{ProgressSink as Progress, ProgressUpdate};
pub use crate::loader::LoadedPlugin as Plugin;
pub use calls::{CallOptions, ToolInfo};
pub(crate) use hooks::WarmSlot;
pub use loading::{LoadReport, PluginEvent};

/// Aligned so that its fields, which every call reads, sit on cache lines
/// apart from the `Arc`'s reference count, which every clone of the
/// runtime writes (an embedder may clone it into every task it spawns).
#[repr(align(128))]
struct Inner {
    /// Tells this runtime apart from every other of the process (for the
    /// per-thread state of [`Runtime::call_shard`] and call numbers; an
    /// address could be reused by a later runtime).
    id: u64,
    engine: Engine,
    linker: Linker<CallState>,
    /// The other call engines' linkers (shard `i + 1`), each made on its
    /// first call; see [`Runtime::call_shard`].
    shard_linkers: Box<[std::sync::OnceLock<Option<Linker<CallState>>>]>,
    /// Per call engine, what serves each tool; invalidated by every
    /// registry change and every tier-up swap.
    routes: Arc<calls::RouteTable>,
    /// Hands out call engines to threads, in turn.
    shards: engine::ShardPicker,
    ticker: engine::EpochTicker,
    /// The baseline compiler (Winch) when tiering can use it.
    baseline: Option<crate::loader::Toolchain>,
    /// Optimized builds running behind baseline ones: one at a time.
    tier_ups: Arc<tokio::sync::Semaphore>,
    /// Foreground compiles in flight, which optimized builds wait out.
    compile_gate: Arc<crate::loader::CompileGate>,
    /// Turns a tier-up into a [`PluginEvent::TieredUp`] (built once: every
    /// call makes a load context).
    tier_up_notice: crate::loader::TierUpNotice,
    config: RuntimeConfig,
    store: DataStore,
    cache: Arc<ComponentCache>,
    session_states: crate::session_state::SessionStates,
    observer: RwLock<Option<Arc<dyn CompileObserver>>>,
    /// Counters already added to the persisted totals.
    persisted: std::sync::Mutex<CacheStatsSnapshot>,
    registry: RwLock<Registry>,
    /// The active hooks of the registered extensions, rebuilt whenever the
    /// registry changes.
    extensions: RwLock<Arc<ExtensionSet>>,
    hook_stats: HookStats,
    /// Warm extension instances alive (each holds an instance-pool slot).
    warm_instances: Arc<std::sync::atomic::AtomicUsize>,
    /// One permit per instance that may be alive at once besides the warm
    /// ones, so a full pool makes callers wait instead of failing.
    instance_slots: crate::instance_slots::InstanceSlots,
    next_call: AtomicU64,
    events: tokio::sync::broadcast::Sender<PluginEvent>,
}

/// The agent-host runtime. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Runtime {
    /// Starts a runtime: validates the config, opens the store, builds the
    /// engine. Loads no plugins; call [`Runtime::load_plugin_dirs`].
    pub fn new(config: RuntimeConfig) -> Result<Self, HostError> {
        let runtime = Self::with_store_opened_on_first_use(config)?;
        runtime.inner.store.open_now()?;
        Ok(runtime)
    }

    /// [`Runtime::new`], but the store's database is opened by whatever
    /// first needs it (a plugin's state, a session, an artifact, a counter)
    /// rather than now: a short command that only lists cached plugins
    /// never opens it, and so also runs beside a process holding the data
    /// dir. Errors opening it come from that first use instead.
    pub fn with_store_opened_on_first_use(config: RuntimeConfig) -> Result<Self, HostError> {
        config.validate()?;
        let started = std::time::Instant::now();
        let config_sandbox = config.sandbox.clone();
        let store = DataStore::open_on_first_use(&config.data_dir)?.with_quotas(&config.quotas);
        let engine = engine::tier_engine(&config.sandbox, engine::Tier::Optimized)
            .map_err(HostError::Engine)?;
        let linker = build_linker(&engine).map_err(HostError::Engine)?;
        let stats = Arc::new(crate::cache::CacheStats::default());
        let cache = ComponentCache::new(&engine, &store, &config.cache, stats.clone())
            .map_err(HostError::Cache)?;
        let baseline = if config.cache.tiering != crate::config::Tiering::Optimized
            && engine::baseline_supported(&config.sandbox)
        {
            let engine = engine::tier_engine(&config.sandbox, engine::Tier::Baseline)
                .map_err(HostError::Engine)?;
            let linker = build_linker(&engine).map_err(HostError::Engine)?;
            // Baseline builds are short-lived: a small memory level.
            let mut small = config.cache.clone();
            small.memory_entries = (small.memory_entries / 4).max(4);
            small.memory_mb = (small.memory_mb / 4).max(32);
            let cache =
                ComponentCache::new(&engine, &store, &small, stats).map_err(HostError::Cache)?;
            Some(crate::loader::Toolchain {
                linker,
                cache: Arc::new(cache),
            })
        } else {
            None
        };
        // One ticker thread for every engine's deadlines.
        let ticker = match &baseline {
            Some(baseline) => engine::EpochTicker::start(&[&engine, baseline.linker.engine()]),
            None => engine::EpochTicker::start(&[&engine]),
        };
        let shards = config.sandbox.engine_shard_count();
        tracing::debug!(
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "engines and linkers ready"
        );
        let (events, _) = tokio::sync::broadcast::channel(256);
        let routes = Arc::new(calls::RouteTable::new(shards));
        let tier_up_notice: crate::loader::TierUpNotice = {
            let events = events.clone();
            let routes = routes.clone();
            Arc::new(move |plugin: &str| {
                // The swap is done: calls route to the optimized build.
                routes.invalidate();
                let _ = events.send(PluginEvent::TieredUp {
                    plugin: plugin.to_owned(),
                });
            })
        };
        Ok(Self {
            inner: Arc::new(Inner {
                id: engine::unique_owner_id(),
                engine,
                linker,
                shard_linkers: (1..shards).map(|_| std::sync::OnceLock::new()).collect(),
                routes,
                shards: engine::ShardPicker::new(shards),
                ticker,
                baseline,
                tier_ups: Arc::new(tokio::sync::Semaphore::new(1)),
                compile_gate: Arc::default(),
                tier_up_notice,
                config,
                store: store.clone(),
                cache: Arc::new(cache),
                session_states: crate::session_state::SessionStates::new(&store, 1024),
                observer: RwLock::new(None),
                persisted: std::sync::Mutex::new(CacheStatsSnapshot::default()),
                registry: RwLock::new(Registry::default()),
                extensions: RwLock::new(Arc::new(ExtensionSet::default())),
                hook_stats: HookStats::default(),
                warm_instances: Arc::default(),
                instance_slots: crate::instance_slots::InstanceSlots::new(&config_sandbox, shards),
                next_call: AtomicU64::new(1),
                events,
            }),
        })
    }

    /// The validated configuration it runs with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The process's wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The store (plugin state, sessions, persisted cache metadata and statistics).
    pub fn store(&self) -> &DataStore {
        &self.inner.store
    }

    /// The registry for reading. A poisoned lock is taken over, as
    /// everywhere in the runtime: one panicking thread must not stop every
    /// later tool call.
    fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The registry for a change. Every change moves the routes'
    /// generation while the write lock is held, so a route built from the
    /// registry before the change is never taken for a current one.
    fn registry_mut(&self) -> RegistryWrite<'_> {
        RegistryWrite {
            guard: self
                .inner
                .registry
                .write()
                .unwrap_or_else(|e| e.into_inner()),
            routes: &self.inner.routes,
        }
    }

    fn load_context(&self) -> LoadContext<'_> {
        LoadContext {
            linker: &self.inner.linker,
            config: &self.inner.config,
            store: &self.inner.store,
            cache: &self.inner.cache,
            baseline: self.inner.baseline.as_ref(),
            tier_ups: &self.inner.tier_ups,
            gate: &self.inner.compile_gate,
            on_tier_up: Some(self.inner.tier_up_notice.clone()),
            instance_slots: &self.inner.instance_slots,
            observer: self
                .inner
                .observer
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Reports real compilations (not cache hits) to `observer`.
    pub fn set_compile_observer(&self, observer: Arc<dyn CompileObserver>) {
        *self
            .inner
            .observer
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }

    /// Subscribes to plugin load, reload, removal and failure events.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<PluginEvent> {
        self.inner.events.subscribe()
    }

    /// The compiled component of a loaded plugin, preparing it if needed.
    pub async fn prepared_component(
        &self,
        plugin: &LoadedPlugin,
    ) -> Result<wasmtime::component::Component, LoadError> {
        let prepared = plugin.prepare(&self.load_context()).await?;
        Ok(prepared.component().clone())
    }

    /// The call engine this thread calls through: each thread is given one
    /// in turn on its first call and keeps it, so threads serving calls at
    /// once do not contend for one engine's instance pool (the engines
    /// share their configuration; shard 0 is [`Runtime::engine`]).
    pub(crate) fn call_shard(&self) -> usize {
        self.inner.shards.for_this_thread()
    }

    /// The linker of call engine `shard` (> 0), made with its engine on
    /// first use; `None` if that engine cannot be made (shard 0 serves).
    pub(crate) fn shard_linker(&self, shard: usize) -> Option<Linker<CallState>> {
        let slot = self.inner.shard_linkers.get(shard.checked_sub(1)?)?;
        slot.get_or_init(|| {
            let made = engine::tier_engine(&self.inner.config.sandbox, engine::Tier::Optimized)
                .and_then(|engine| build_linker(&engine));
            match made {
                Ok(linker) => {
                    self.inner.ticker.add(linker.engine());
                    Some(linker)
                }
                Err(err) => {
                    tracing::warn!("call engine {shard} unavailable, engine 0 serves: {err}");
                    None
                }
            }
        })
        .clone()
    }

    /// How many call engines hold a build of `plugin`'s current version
    /// (1 until a second thread calls it; 0 before its first call).
    pub fn call_engines_serving(&self, plugin: &str) -> usize {
        let Some(plugin) = self.registry().plugin(plugin) else {
            return 0;
        };
        plugin.prepared_on_engines()
    }

    /// The compiled-component cache (for benchmarks and tooling).
    pub fn component_cache(&self) -> &ComponentCache {
        &self.inner.cache
    }

    /// The on-disk artifact for a content hash (for tests and tooling).
    pub fn artifact_path(&self, content_hash: &str) -> PathBuf {
        self.inner.cache.disk().artifact_path(content_hash)
    }
}

/// A write to the registry; the routes' generation moves when it ends
/// (before the lock is let go).
struct RegistryWrite<'a> {
    guard: RwLockWriteGuard<'a, Registry>,
    routes: &'a calls::RouteTable,
}

impl std::ops::Deref for RegistryWrite<'_> {
    type Target = Registry;

    fn deref(&self) -> &Registry {
        &self.guard
    }
}

impl std::ops::DerefMut for RegistryWrite<'_> {
    fn deref_mut(&mut self) -> &mut Registry {
        &mut self.guard
    }
}

impl Drop for RegistryWrite<'_> {
    fn drop(&mut self) {
        self.routes.invalidate();
    }
}

fn build_linker(engine: &Engine) -> Result<Linker<CallState>, EngineError> {
    let link = |interface: &'static str| {
        move |err: wasmtime::Error| EngineError::Link {
            interface,
            message: err.to_string(),
        }
    };
    let mut linker = Linker::new(engine);
    // Rust guests import wasi:cli, io and clocks even when unused, so WASI is
    // always linked; what a plugin can reach is decided per call by its
    // capabilities, not by what is linked.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link("WASI"))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(link("WASI HTTP"))?;
    ToolPlugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
        .map_err(link("the contract's host imports"))?;
    // Over WASI's own: preopens from the directories opened at load, the
    // per-call open-file cap, and no guest-made symlinks unless allowed.
    crate::sandbox::add_fs_guards(&mut linker).map_err(link("the filesystem guards"))?;
    // Runs once per runtime start: lift the soft descriptor limit so the
    // per-call caps (see sandbox::open_file_cap) have room.
    crate::sandbox::raise_fd_limit();
    Ok(linker)
}
