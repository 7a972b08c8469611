//! The runtime: one engine, one linker, the plugin registry and the store, and the tool-call entry point.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::ToolPlugin;
use crate::cache::{CacheStatsSnapshot, ComponentCache};
use crate::config::RuntimeConfig;
use crate::engine;
use crate::error::{CallError, FailureKind, HookError, HostError, LoadError};
use crate::hooks::{ActiveHook, ExtensionSet, HookOutcome, HookStats, HookStatsRow};
use crate::host_api::ProgressSink;
use crate::invoke::{self, Invocation};
use crate::loader::{self, Bound, CompileObserver, LoadContext, LoadMode, LoadedPlugin};
use crate::registry::{LoadProblem, Registry};
use crate::sandbox::CallState;
use crate::spec::{ToolOutput, ToolSpec};
use crate::store::Store;

pub use crate::host_api::{ProgressSink as Progress, ProgressUpdate};
pub use crate::loader::LoadedPlugin as Plugin;

/// Options for one call.
#[derive(Default, Clone)]
pub struct CallOptions {
    /// Identifier passed to the plugin; generated when absent.
    pub call_id: Option<String>,
    pub session_id: Option<String>,
    pub progress: Option<ProgressSink>,
    /// Cancelling the token stops the call at once.
    pub cancel: Option<CancellationToken>,
}

/// A tool and the plugin that provides it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub plugin: String,
    #[serde(flatten)]
    pub spec: ToolSpec,
}

/// What happened to each plugin file found at startup.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    pub failed: Vec<(PathBuf, LoadError)>,
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    config: RuntimeConfig,
    store: Store,
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
    instance_slots: Arc<tokio::sync::Semaphore>,
    next_call: AtomicU64,
    events: tokio::sync::broadcast::Sender<PluginEvent>,
}

/// What happened to a plugin while the runtime was running (hot reload).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PluginEvent {
    /// A plugin was loaded or replaced by a new version.
    Loaded {
        plugin: String,
        path: PathBuf,
        content_hash: String,
    },
    /// A plugin file was removed and its tools unregistered.
    Removed { plugin: String, path: PathBuf },
    /// A new version failed to load; the previous version (if any) keeps serving.
    Failed { path: PathBuf, error: String },
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
        config.validate()?;
        let config_sandbox = config.sandbox.clone();
        let store = Store::open(&config.data_dir)?.with_quotas(&config.quotas);
        let engine = engine::shared_engine(&config.sandbox).map_err(HostError::Engine)?;
        let linker = build_linker(&engine).map_err(HostError::Engine)?;
        let cache =
            ComponentCache::new(&engine, &store, &config.cache).map_err(HostError::Engine)?;
        let (events, _) = tokio::sync::broadcast::channel(256);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
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
                instance_slots: Arc::new(tokio::sync::Semaphore::new(instance_slot_count(
                    &config_sandbox,
                ))),
                next_call: AtomicU64::new(1),
                events,
            }),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    fn load_context(&self) -> LoadContext<'_> {
        LoadContext {
            engine: &self.inner.engine,
            linker: &self.inner.linker,
            config: &self.inner.config,
            store: &self.inner.store,
            cache: &self.inner.cache,
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

    /// Counters of this process's cache use, with current sizes.
    pub fn cache_stats(&self) -> CacheStatsSnapshot {
        self.inner.cache.stats()
    }

    /// Counters summed over every run that saved them, including this one's
    /// saved so far.
    pub fn cache_totals(&self) -> CacheStatsSnapshot {
        self.inner.store.cache_totals()
    }

    /// Adds the counters gained since the last call to the persisted totals
    /// (sled writes them out in the background and on close).
    pub fn persist_cache_stats(&self) {
        let current = self.cache_stats();
        let mut persisted = self
            .inner
            .persisted
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut totals = self.inner.store.cache_totals();
        totals.accumulate(&current.since(&persisted));
        *persisted = current;
        if let Err(err) = self.inner.store.put_cache_totals(&totals) {
            tracing::warn!("cannot save cache statistics: {err}");
        }
    }

    /// Empties the memory and disk caches and the persisted tool specs.
    pub fn clear_cache(&self) -> Result<(), String> {
        self.inner.cache.clear()
    }

    /// The compiled component of a loaded plugin, preparing it if needed.
    pub async fn prepared_component(
        &self,
        plugin: &LoadedPlugin,
    ) -> Result<wasmtime::component::Component, LoadError> {
        let prepared = plugin.prepare(&self.load_context()).await?;
        Ok(prepared.component().clone())
    }

    /// How many times per-session plugin state was read from the store
    /// (each (plugin, session) once while it stays live).
    pub fn session_state_loads(&self) -> u64 {
        self.inner.session_states.loads()
    }

    /// The compiled-component cache (for benchmarks and tooling).
    pub fn component_cache(&self) -> &ComponentCache {
        &self.inner.cache
    }

    /// The on-disk artifact for a content hash (for tests and tooling).
    pub fn artifact_path(&self, content_hash: &str) -> PathBuf {
        self.inner.cache.disk().artifact_path(content_hash)
    }

    /// Reloads whatever changed at `path` (a .wasm or its manifest): loads
    /// the new version and swaps it in atomically, unregisters a deleted
    /// plugin, or keeps the old version serving if the new one fails.
    /// Calls in flight finish on the version they started with.
    pub async fn reload_path(&self, path: &Path) -> Option<PluginEvent> {
        let wasm = if path.extension().is_some_and(|ext| ext == "toml") {
            path.with_extension("wasm")
        } else if path.extension().is_some_and(|ext| ext == "wasm") {
            path.to_owned()
        } else {
            return None;
        };
        let event = if wasm.is_file() {
            match loader::load(&self.load_context(), &wasm, LoadMode::Eager).await {
                Ok(plugin) => {
                    let hash = plugin.content_hash.clone();
                    match self.register(plugin) {
                        Ok(name) => {
                            self.clear_problem(&wasm);
                            tracing::info!(plugin = %name, "plugin loaded from {}", wasm.display());
                            PluginEvent::Loaded {
                                plugin: name,
                                path: wasm,
                                content_hash: hash,
                            }
                        }
                        Err(err) => PluginEvent::Failed {
                            path: wasm,
                            error: err.to_string(),
                        },
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        "update of {} not applied, previous version keeps serving: {err}",
                        wasm.display()
                    );
                    self.record_problem(&wasm, &err);
                    PluginEvent::Failed {
                        path: wasm,
                        error: err.to_string(),
                    }
                }
            }
        } else {
            let removed = {
                let mut registry = self
                    .inner
                    .registry
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                registry.clear_problem(&wasm);
                registry.remove_by_path(&wasm)
            };
            let plugin = removed?;
            tracing::info!(%plugin, "plugin removed");
            PluginEvent::Removed { plugin, path: wasm }
        };
        self.refresh_extensions();
        let _ = self.inner.events.send(event.clone());
        Some(event)
    }

    /// Instance slots held by calls right now (warm extension instances not
    /// counted).
    pub fn busy_instance_slots(&self) -> usize {
        instance_slot_count(&self.inner.config.sandbox)
            - self.inner.instance_slots.available_permits()
    }

    /// Whether the plugin file at `path` holds exactly the version that is
    /// loaded from it (same bytes), so a watcher event on it changes nothing.
    pub fn is_current(&self, path: &Path) -> bool {
        let loaded_hash = {
            let registry = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner());
            registry
                .plugins()
                .find(|plugin| plugin.wasm_path == path)
                .map(|plugin| plugin.content_hash.clone())
        };
        let Some(loaded_hash) = loaded_hash else {
            return false;
        };
        std::fs::read(path).is_ok_and(|bytes| crate::cache::content_hash(&bytes) == loaded_hash)
    }

    /// Starts hot reload: watches the plugin directories for as long as the
    /// returned handle lives.
    #[cfg(feature = "watch")]
    pub fn watch(&self) -> Result<crate::watcher::PluginWatcher, String> {
        crate::watcher::watch(self)
    }

    pub(crate) fn clear_problem(&self, path: &Path) {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        registry.clear_problem(path);
    }

    /// Every `.wasm` file in the configured plugin directories, sorted.
    pub fn discover(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for dir in &self.inner.config.plugin_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                tracing::warn!(dir = %dir.display(), "plugin directory cannot be read; skipping it");
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
                    found.push(path);
                }
            }
        }
        found.sort();
        found
    }

    /// Loads every plugin in the plugin directories, in parallel (bounded by
    /// the number of cores). Plugins whose specs are cached are prepared on
    /// their first call; see [`LoadMode`]. Failures are reported, recorded
    /// for `plugins list`, and never stop other plugins from loading.
    pub async fn load_plugin_dirs(&self) -> LoadReport {
        self.load_plugin_dirs_with(LoadMode::Lazy).await
    }

    /// [`Runtime::load_plugin_dirs`] with an explicit [`LoadMode`].
    pub async fn load_plugin_dirs_with(&self, mode: LoadMode) -> LoadReport {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
        let loads: Vec<_> = self
            .discover()
            .into_iter()
            .map(|path| {
                let runtime = self.clone();
                let permits = permits.clone();
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let result = loader::load(&runtime.load_context(), &path, mode).await;
                    (path, result)
                })
            })
            .collect();
        let mut results = Vec::with_capacity(loads.len());
        for load in loads {
            if let Ok(result) = load.await {
                results.push(result);
            }
        }
        let results = refuse_clashes(results);
        let mut report = LoadReport::default();
        for (path, result) in results {
            match result.and_then(|plugin| self.register(plugin)) {
                Ok(name) => report.loaded.push(name),
                Err(err) => {
                    tracing::debug!("{err}");
                    self.record_problem(&path, &err);
                    report.failed.push((path, err));
                }
            }
        }
        self.refresh_extensions();
        report
    }

    /// Loads one plugin and registers its tools.
    pub async fn load_plugin(&self, wasm_path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let result = loader::load(&self.load_context(), wasm_path, LoadMode::Eager).await;
        match result {
            Ok(plugin) => {
                self.register(plugin.clone())?;
                self.refresh_extensions();
                Ok(plugin)
            }
            Err(err) => {
                self.record_problem(wasm_path, &err);
                Err(err)
            }
        }
    }

    /// Loads a plugin without registering it, to inspect it.
    pub async fn check_plugin(&self, wasm_path: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        loader::load(&self.load_context(), wasm_path, LoadMode::Eager).await
    }

    fn register(&self, plugin: Arc<LoadedPlugin>) -> Result<String, LoadError> {
        let name = plugin.name().to_owned();
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match registry.insert(plugin.clone()) {
            Ok(()) => Ok(name),
            Err(err) => {
                registry.record_problem(LoadProblem {
                    path: plugin.wasm_path.clone(),
                    plugin: Some(name),
                    error: err.to_string(),
                });
                Err(err)
            }
        }
    }

    fn record_problem(&self, path: &Path, err: &LoadError) {
        let plugin = crate::manifest::Manifest::load(&crate::manifest::manifest_path_for(path))
            .ok()
            .map(|m| m.plugin.name);
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        registry.record_problem(LoadProblem {
            path: path.to_owned(),
            plugin,
            error: err.to_string(),
        });
    }

    /// Loaded plugins, by name.
    pub fn plugins(&self) -> Vec<Arc<LoadedPlugin>> {
        let registry = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner());
        registry.plugins().cloned().collect()
    }

    /// Plugin files that failed to load, with the reason.
    pub fn problems(&self) -> Vec<LoadProblem> {
        let registry = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner());
        registry.problems().to_vec()
    }

    /// Every registered tool, sorted by name.
    pub fn tools(&self) -> Vec<ToolInfo> {
        let mut tools: Vec<ToolInfo> = self
            .plugins()
            .iter()
            .flat_map(|plugin| {
                plugin.tools.iter().map(|tool| ToolInfo {
                    plugin: plugin.name().to_owned(),
                    spec: tool.spec.clone(),
                })
            })
            .collect();
        tools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        tools
    }

    /// The tool called `name`, if registered.
    pub fn tool(&self, name: &str) -> Option<ToolInfo> {
        self.with_tool(name, |plugin, tool| ToolInfo {
            plugin: plugin.name().to_owned(),
            spec: tool.spec.clone(),
        })
    }

    /// The hints of a tool, without copying its spec (the agent loop asks
    /// for every call).
    pub fn tool_hints(&self, name: &str) -> Option<crate::spec::ToolHints> {
        self.with_tool(name, |_, tool| tool.spec.hints)
    }

    /// The most output a tool may return (its plugin's output cap); a patch
    /// of its result by an extension obeys the same cap.
    pub fn tool_output_limit(&self, name: &str) -> Option<usize> {
        self.with_tool(name, |plugin, _| {
            plugin.capabilities.limits.max_output_bytes
        })
    }

    fn with_tool<R>(
        &self,
        name: &str,
        read: impl FnOnce(&LoadedPlugin, &crate::loader::LoadedTool) -> R,
    ) -> Option<R> {
        let plugin = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .plugin_for_tool(name)?;
        let tool = plugin.tool(name)?;
        Some(read(&plugin, tool))
    }

    fn lookup(&self, name: &str) -> Result<Arc<LoadedPlugin>, CallError> {
        let registry = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner());
        registry
            .plugin_for_tool(name)
            .ok_or_else(|| CallError::UnknownTool {
                name: name.to_owned(),
                known: registry.tool_names(),
            })
    }

    /// Calls a tool: looks it up, validates the arguments against its schema,
    /// and runs it in a fresh sandbox under its plugin's limits.
    pub async fn call_tool(
        &self,
        name: &str,
        args: &serde_json::Value,
        options: CallOptions,
    ) -> Result<ToolOutput, CallError> {
        let plugin = self.lookup(name)?;
        let tool = plugin.tool(name).ok_or_else(|| CallError::Host {
            tool: name.to_owned(),
            message: "registry and plugin disagree about this tool".to_owned(),
        })?;
        // Off the async threads and under the tool's deadline: a schema is
        // the plugin's, so checking against it is the plugin's time.
        tool.validator
            .check_args_within(args, plugin.capabilities.limits.timeout)
            .await
            .map_err(|err| err.for_arguments(plugin.name(), name))?;
        let prepared =
            plugin
                .prepare(&self.load_context())
                .await
                .map_err(|err| CallError::Failed {
                    plugin: plugin.name().to_owned(),
                    tool: name.to_owned(),
                    kind: crate::error::FailureKind::Instantiate {
                        message: err.to_string(),
                    },
                    detail: None,
                })?;
        let Bound::Tool(pre) = &prepared.bound else {
            return Err(CallError::Host {
                tool: name.to_owned(),
                message: format!("plugin '{}' is an extension, not a tool", plugin.name()),
            });
        };
        let call_id = options.call_id.unwrap_or_else(|| {
            format!(
                "call-{}",
                self.inner.next_call.fetch_add(1, Ordering::Relaxed)
            )
        });
        let session_state = options
            .session_id
            .as_deref()
            .map(|session| self.inner.session_states.state(plugin.name(), session));
        let _slot = acquire_instance_slot(
            &self.inner.instance_slots,
            &self.inner.config.sandbox,
            plugin.capabilities.limits.timeout,
        )
        .await
        .map_err(|kind| CallError::Failed {
            plugin: plugin.name().to_owned(),
            tool: name.to_owned(),
            kind,
            detail: None,
        })?;
        invoke::invoke(Invocation {
            engine: &self.inner.engine,
            plugin: &plugin,
            pre,
            tool: name,
            args_json: args.to_string(),
            call_id,
            session_id: options.session_id,
            kv: self.inner.store.plugin_kv(plugin.name()),
            progress: options.progress,
            cancel: options.cancel,
            session_state,
        })
        .await
    }
}

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
    fn refresh_extensions(&self) {
        let set = {
            let registry = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner());
            ExtensionSet::build(registry.plugins(), &self.inner.config)
        };
        *self
            .inner
            .extensions
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// Counters of this process's hook calls.
    pub fn hook_stats(&self) -> &HookStats {
        &self.inner.hook_stats
    }

    /// Hook counters summed over every run that saved them.
    pub fn hook_totals(&self) -> Vec<HookStatsRow> {
        self.inner.store.hook_totals()
    }

    /// Adds the hook counters gained since the last call to the persisted
    /// totals.
    pub fn persist_hook_stats(&self) {
        let delta = self.inner.hook_stats.take_unpersisted();
        if delta.is_empty() {
            return;
        }
        let totals = crate::hooks::merge_rows(self.inner.store.hook_totals(), &delta);
        if let Err(err) = self.inner.store.put_hook_totals(&totals) {
            tracing::warn!("cannot save hook statistics: {err}");
        }
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
            None => match acquire_instance_slot(
                &self.inner.instance_slots,
                &self.inner.config.sandbox,
                hook.caps.limits.timeout,
            )
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
            engine: &self.inner.engine,
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

/// Instances kept warm for extensions: a quarter of the pool.
fn warm_instance_limit(sandbox: &crate::config::SandboxConfig) -> usize {
    sandbox.max_instances as usize / 4
}

/// Instances that calls may hold at once: the pool less the warm share.
fn instance_slot_count(sandbox: &crate::config::SandboxConfig) -> usize {
    (sandbox.max_instances as usize - warm_instance_limit(sandbox)).max(1)
}

/// Waits for a free instance slot, at most `wait` (a call's own timeout):
/// with every slot busy a caller queues rather than failing at once, and
/// fails clearly if none frees up in time.
pub(crate) async fn acquire_instance_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    sandbox: &crate::config::SandboxConfig,
    wait: std::time::Duration,
) -> Result<tokio::sync::OwnedSemaphorePermit, FailureKind> {
    let busy = || FailureKind::NoInstanceSlot {
        instances: sandbox.max_instances,
        waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
    };
    match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(busy()),
    }
}

/// At start-up, plugins that share a name (the same file name in two plugin
/// directories) or declare the same tool are all refused: which one would
/// win must never depend on file order, or a plugin could take over another
/// one's name, state, grants or tools by sorting first.
fn refuse_clashes(
    results: Vec<(PathBuf, Result<Arc<LoadedPlugin>, LoadError>)>,
) -> Vec<(PathBuf, Result<Arc<LoadedPlugin>, LoadError>)> {
    use std::collections::HashMap;
    let mut by_name: HashMap<&str, Vec<&Path>> = HashMap::new();
    let mut by_tool: HashMap<&str, Vec<&str>> = HashMap::new();
    for (path, result) in &results {
        if let Ok(plugin) = result {
            by_name.entry(plugin.name()).or_default().push(path);
            for tool in &plugin.tools {
                by_tool
                    .entry(&tool.spec.name)
                    .or_default()
                    .push(plugin.name());
            }
        }
    }
    let verdicts: Vec<Option<LoadError>> = results
        .iter()
        .map(|(path, result)| {
            let plugin = result.as_ref().ok()?;
            let paths = &by_name[plugin.name()];
            if paths.len() > 1 {
                let other = paths.iter().find(|other| **other != path)?;
                return Some(LoadError::DuplicatePlugin {
                    name: plugin.name().to_owned(),
                    first: path.clone(),
                    second: other.to_path_buf(),
                });
            }
            plugin.tools.iter().find_map(|tool| {
                let owners = &by_tool[tool.spec.name.as_str()];
                let other = owners.iter().find(|owner| **owner != plugin.name())?;
                Some(LoadError::DuplicateTool {
                    tool: tool.spec.name.clone(),
                    plugin: plugin.name().to_owned(),
                    existing_plugin: (*other).to_owned(),
                })
            })
        })
        .collect();
    results
        .into_iter()
        .zip(verdicts)
        .map(|((path, result), verdict)| match verdict {
            Some(err) => (path, Err(err)),
            None => (path, result),
        })
        .collect()
}

fn build_linker(engine: &Engine) -> Result<Linker<CallState>, String> {
    let mut linker = Linker::new(engine);
    // Rust guests import wasi:cli, io and clocks even when unused, so WASI is
    // always linked; what a plugin can reach is decided per call by its
    // capabilities, not by what is linked.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|err| err.to_string())?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|err| err.to_string())?;
    ToolPlugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)
        .map_err(|err| err.to_string())?;
    // Over WASI's own: preopens from the directories opened at load, the
    // per-call open-file cap, and no guest-made symlinks unless allowed.
    crate::sandbox::add_fs_guards(&mut linker).map_err(|err| err.to_string())?;
    // Runs once per runtime start: lift the soft descriptor limit so the
    // per-call caps (see sandbox::open_file_cap) have room.
    crate::sandbox::raise_fd_limit();
    Ok(linker)
}
