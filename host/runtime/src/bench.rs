//! Side-by-side benchmarks of tool calls: bare wasmtime versus the full agent-host call path, one call at a time and across concurrent callers.
//!
//! Both paths use the same engine (pooling allocator, epoch interruption) and
//! the same compiled component. Rounds alternate between the two so that
//! machine noise hits both alike; the figure that matters is the ratio.

use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{
    CallContext, HostImports, LogLevel, ToolPlugin, ToolPluginPre, TypesImports,
};
use crate::error::{CallError, LoadError};
use crate::runtime::{CallOptions, Runtime};
use crate::watcher::WatchError;

/// Why a benchmark could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// What it should measure is missing: a tool or plugin not loaded, an
    /// artifact not written, a plugin the bare path cannot link.
    #[error("{0}")]
    Unavailable(String),
    /// The bare wasmtime path failed.
    #[error("{0}")]
    Wasm(String),
    /// The host call path failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Preparing the plugin failed.
    #[error(transparent)]
    Load(Box<LoadError>),
    /// Reading or replacing a plugin file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The watcher the hot-reload benchmark needs did not start.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The host did not do its part in time (a reload not picked up, an
    /// artifact refused).
    #[error("{0}")]
    Stalled(String),
}

/// Timing summary of one measured path.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// "us" or "ms".
    pub unit: &'static str,
    /// Median sample.
    pub median: f64,
    /// Mean of the samples.
    pub mean: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Fastest sample.
    pub min: f64,
}

impl Stats {
    /// Summarises samples (in microseconds; see [`Stats::in_millis`]).
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let n = samples.len().max(1);
        let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64;
        Self {
            unit: "us",
            median: us(samples[n / 2]),
            mean,
            p90: us(samples[(n * 9 / 10).min(n - 1)]),
            min: us(samples[0]),
        }
    }
}

/// The result of [`compare_call_paths`].
#[derive(Debug, Clone, Serialize)]
pub struct CallBenchReport {
    /// The tool called.
    pub tool: String,
    /// Its plugin.
    pub plugin: String,
    /// Calls measured on each path.
    pub iterations: usize,
    /// InstancePre (pooling) + instantiate + call, nothing else.
    pub bare: Stats,
    /// Registry lookup, schema validation, sandbox setup, call, limits.
    pub host: Stats,
    /// host median / bare median.
    pub ratio: f64,
}

/// Minimal store data for the bare path: WASI with nothing granted, and
/// host imports that do nothing.
struct BareState {
    wasi: WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
    table: ResourceTable,
}

impl BareState {
    fn new() -> Self {
        Self {
            wasi: WasiCtx::builder().build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: ResourceTable::new(),
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for BareState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

/// The bare path's linker: what the host links (WASI, WASI HTTP for
/// plugins that import it, the contract's host imports), with none of the
/// host's work behind it.
fn bare_linker(engine: &wasmtime::Engine) -> Result<Linker<BareState>, BenchError> {
    let wasm = |e: wasmtime::Error| BenchError::Wasm(e.to_string());
    let mut linker: Linker<BareState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(wasm)?;
    ToolPlugin::add_to_linker::<BareState, HasSelf<BareState>>(&mut linker, |s| s).map_err(wasm)?;
    Ok(linker)
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl TypesImports for BareState {}

impl HostImports for BareState {
    fn log(&mut self, _level: LogLevel, _message: String) {}
    fn progress(&mut self, _done: u64, _total: Option<u64>, _message: Option<String>) {}
    fn kv_get(&mut self, _key: String) -> Option<Vec<u8>> {
        None
    }
    fn kv_set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
    fn kv_delete(&mut self, _key: String) -> bool {
        false
    }
    fn kv_list(&mut self, _prefix: String) -> Vec<String> {
        Vec::new()
    }
    fn session_get(&mut self, _key: String) -> Option<Vec<u8>> {
        None
    }
    fn session_set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), String> {
        Ok(())
    }
    fn session_delete(&mut self, _key: String) -> bool {
        false
    }
    fn session_list(&mut self, _prefix: String) -> Vec<String> {
        Vec::new()
    }
    fn monotonic_now(&mut self) -> u64 {
        0
    }
    fn config(&mut self) -> String {
        "{}".to_owned()
    }
}

/// Samples per alternation round, and the warm-up rounds a benchmark drops.
pub const ROUND: usize = 20;

/// Measures `iterations` calls of `tool` with `args` on both paths.
pub async fn compare_call_paths(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    iterations: usize,
) -> Result<CallBenchReport, BenchError> {
    let info = runtime.tool(tool).ok_or_else(|| {
        BenchError::Unavailable(format!(
            "no tool named '{tool}' is loaded; pass --plugins with a directory that has it"
        ))
    })?;
    let plugin = runtime
        .plugins()
        .into_iter()
        .find(|p| p.name() == info.plugin)
        .ok_or_else(|| BenchError::Unavailable("plugin disappeared".to_owned()))?;
    let engine = runtime.engine().clone();
    let linker = bare_linker(&engine)?;
    let component = runtime
        .prepared_component(&plugin)
        .await
        .map_err(|err| BenchError::Load(Box::new(err)))?;
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        BenchError::Unavailable(format!("the bare path cannot link this plugin: {e}"))
    })?;
    let pre = ToolPluginPre::new(pre).map_err(|e| BenchError::Wasm(e.to_string()))?;
    let args_json = args.to_string();
    let context = CallContext {
        call_id: "bench".into(),
        session_id: None,
        timeout_ms: 10_000,
    };

    let bare_call = || async {
        let mut store = Store::new(&engine, BareState::new());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| BenchError::Wasm(e.to_string()))?;
        instance
            .agent_plugin_tool()
            .call_invoke(&mut store, tool, &args_json, &context)
            .await
            .map_err(|e| BenchError::Wasm(e.to_string()))?
            .map_err(|e| BenchError::Wasm(format!("tool error: {e:?}")))?;
        Ok::<_, BenchError>(())
    };
    let host_call = || async {
        runtime
            .call_tool(tool, args, CallOptions::default())
            .await
            .map(|_| ())
            .map_err(BenchError::from)
    };

    // Warm up both paths (page faults, pool slots, caches).
    for _ in 0..ROUND {
        bare_call().await?;
        host_call().await?;
    }
    let mut bare = Vec::with_capacity(iterations);
    let mut host = Vec::with_capacity(iterations);
    while bare.len() < iterations {
        for _ in 0..ROUND.min(iterations - bare.len()) {
            let started = Instant::now();
            bare_call().await?;
            bare.push(started.elapsed());
            let started = Instant::now();
            host_call().await?;
            host.push(started.elapsed());
        }
    }
    let bare = Stats::from_samples(bare);
    let host = Stats::from_samples(host);
    Ok(CallBenchReport {
        tool: tool.to_owned(),
        plugin: plugin.name().to_owned(),
        iterations,
        ratio: host.median / bare.median,
        bare,
        host,
    })
}

/// The result of [`compare_cached_load`].
#[derive(Debug, Clone, Serialize)]
pub struct CacheBenchReport {
    /// The plugin measured.
    pub plugin: String,
    /// Size of its .wasm.
    pub wasm_bytes: u64,
    /// Size of its serialized artifact.
    pub artifact_bytes: u64,
    /// `Component::new` from the .wasm bytes (Cranelift).
    pub compile: Stats,
    /// `Component::deserialize_file` of the artifact, nothing else.
    pub bare_deserialize: Stats,
    /// The disk level of the cache: record lookup, integrity check, deserialize.
    pub host_disk_load: Stats,
    /// host_disk_load median / bare_deserialize median.
    pub ratio_to_bare: f64,
    /// compile median / host_disk_load median.
    pub speedup_over_compile: f64,
}

/// Compares loading a plugin's cached artifact through the host against a
/// bare `deserialize_file` of the same file, and against compiling.
pub fn compare_cached_load(
    runtime: &Runtime,
    plugin: &str,
    iterations: usize,
) -> Result<CacheBenchReport, BenchError> {
    let plugin = runtime
        .plugins()
        .into_iter()
        .find(|p| p.name() == plugin)
        .ok_or_else(|| BenchError::Unavailable(format!("no plugin named '{plugin}' is loaded")))?;
    let engine = runtime.engine().clone();
    let bytes = std::fs::read(&plugin.wasm_path)?;
    let artifact = runtime.artifact_path(&plugin.content_hash);
    let artifact_bytes = std::fs::metadata(&artifact)
        .map_err(|e| {
            BenchError::Unavailable(format!("no artifact at {}: {e}", artifact.display()))
        })?
        .len();
    let disk = runtime.component_cache().disk();

    let mut compile = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        wasmtime::component::Component::new(&engine, &bytes)
            .map_err(|e| BenchError::Wasm(e.to_string()))?;
        compile.push(started.elapsed());
    }
    let mut bare = Vec::with_capacity(iterations);
    let mut host = Vec::with_capacity(iterations);
    for round in 0..iterations + ROUND {
        let started = Instant::now();
        // SAFETY: the artifact was written by this host's cache for this engine.
        let loaded =
            unsafe { wasmtime::component::Component::deserialize_file(&engine, &artifact) };
        let bare_time = started.elapsed();
        loaded.map_err(|e| BenchError::Wasm(e.to_string()))?;
        let started = Instant::now();
        let loaded = disk.load(&plugin.content_hash);
        let host_time = started.elapsed();
        loaded.ok_or_else(|| {
            BenchError::Stalled("the disk cache refused its own artifact".to_owned())
        })?;
        if round >= ROUND {
            bare.push(bare_time);
            host.push(host_time);
        }
    }
    let compile = Stats::from_samples(compile);
    let bare = Stats::from_samples(bare);
    let host = Stats::from_samples(host);
    Ok(CacheBenchReport {
        plugin: plugin.name().to_owned(),
        wasm_bytes: bytes.len() as u64,
        artifact_bytes,
        ratio_to_bare: host.median / bare.median,
        speedup_over_compile: compile.median / host.median,
        compile,
        bare_deserialize: bare,
        host_disk_load: host,
    })
}

/// The result of [`measure_hot_reload`].
#[derive(Debug, Clone, Serialize)]
pub struct ReloadBenchReport {
    /// The plugin measured.
    pub plugin: String,
    /// Replacements measured (each a new version and a revert).
    pub rounds: usize,
    /// The watcher's debounce, part of every figure.
    pub debounce_ms: u64,
    /// Median compile time of the new versions (measured by the cache).
    pub compile_ms: f64,
    /// File replaced -> first call answered by a never-seen version.
    pub new_version_ms: Stats,
    /// File replaced -> first call answered by a version already in the cache.
    pub revert_ms: Stats,
}

/// Appends a custom section to a component: same behaviour, new content hash.
fn with_nonce(bytes: &[u8], nonce: u64) -> Vec<u8> {
    let name = b"agent-host-bench";
    let payload = nonce.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push(section.len() as u8); // fits one LEB128 byte
    out.extend_from_slice(&section);
    out
}

async fn replaced_until_answered(
    runtime: &Runtime,
    target: &std::path::Path,
    bytes: &[u8],
    tool: &str,
    args: &serde_json::Value,
) -> Result<Duration, BenchError> {
    let hash = crate::cache::content_hash(bytes);
    let name = runtime
        .tool(tool)
        .ok_or_else(|| BenchError::Unavailable(format!("tool '{tool}' is not loaded")))?
        .plugin;
    let tmp = target.with_file_name(".bench-incoming.tmp");
    std::fs::write(&tmp, bytes)?;
    let started = Instant::now();
    std::fs::rename(&tmp, target)?;
    loop {
        let current = runtime
            .plugins()
            .into_iter()
            .find(|p| p.name() == name)
            .map(|p| p.content_hash.clone());
        if current.as_deref() == Some(hash.as_str()) {
            runtime
                .call_tool(tool, args, CallOptions::default())
                .await?;
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(BenchError::Stalled(
                "the new version was not picked up within 30 s".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Measures hot reload through the real watcher: replace the plugin file
/// (write to a temp file, rename into place) and time until a call is
/// answered by the new version. New versions carry a fresh custom section so
/// each one really compiles; reverts go back to a version already cached.
pub async fn measure_hot_reload(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    rounds: usize,
) -> Result<ReloadBenchReport, BenchError> {
    let info = runtime
        .tool(tool)
        .ok_or_else(|| BenchError::Unavailable(format!("tool '{tool}' is not loaded")))?;
    let plugin = runtime
        .plugins()
        .into_iter()
        .find(|p| p.name() == info.plugin)
        .ok_or_else(|| BenchError::Unavailable("plugin disappeared".to_owned()))?;
    let target = plugin.wasm_path.clone();
    let original = std::fs::read(&target)?;
    let _watcher = runtime.watch()?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let compiles_before = runtime.cache_stats();
    let mut fresh = Vec::new();
    let mut revert = Vec::new();
    for round in 0..rounds {
        let nonce = std::process::id() as u64 * 1_000_000 + round as u64 + 1;
        fresh.push(
            replaced_until_answered(runtime, &target, &with_nonce(&original, nonce), tool, args)
                .await?,
        );
        revert.push(replaced_until_answered(runtime, &target, &original, tool, args).await?);
    }
    let after = runtime.cache_stats();
    let compiles = (after.compiles - compiles_before.compiles).max(1);
    Ok(ReloadBenchReport {
        plugin: plugin.name().to_owned(),
        rounds,
        debounce_ms: runtime.config().watch.debounce_ms,
        compile_ms: (after.compile_ms - compiles_before.compile_ms) / compiles as f64,
        new_version_ms: Stats::from_samples(fresh).in_millis(),
        revert_ms: Stats::from_samples(revert).in_millis(),
    })
}

impl Stats {
    /// The same figures in milliseconds.
    pub fn in_millis(mut self) -> Self {
        self.unit = "ms";
        self.median /= 1e3;
        self.mean /= 1e3;
        self.p90 /= 1e3;
        self.min /= 1e3;
        self
    }
}

/// Resident set size of this process in KiB (Linux only; 0 elsewhere), for
/// the benchmarks that watch memory over a long run.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One concurrency level of [`compare_scaling`]: calls per second, the
/// median of the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingRow {
    /// Concurrent callers (tokio tasks).
    pub callers: usize,
    /// The host path (`Runtime::call_tool`).
    pub host: f64,
    /// Bare wasmtime on the runtime's own engine (the same pool tuning).
    pub bare_same_tuning: f64,
    /// Bare wasmtime with the same tuning and as many engines as the
    /// runtime calls through, one per calling thread as the host does.
    pub bare_same_engines: f64,
    /// Bare wasmtime on an engine with wasmtime's default pooling settings.
    pub bare_default_pooling: f64,
}

/// Bare paths on several engines of one configuration; each thread calls
/// through the one it was given first, as the runtime's calls do.
struct ShardedBare {
    paths: Vec<std::sync::Arc<BarePath>>,
    picker: crate::engine::ShardPicker,
}

impl ShardedBare {
    /// `first` (the runtime's own engine) and as many more engines of the
    /// same configuration as the runtime calls through, each with the
    /// plugin `bytes` compiled for it.
    fn new(
        runtime: &Runtime,
        first: std::sync::Arc<BarePath>,
        bytes: &[u8],
    ) -> Result<Self, BenchError> {
        let mut paths = vec![first];
        for _ in 1..runtime.config().sandbox.engine_shard_count() {
            let engine = crate::engine::tier_engine(
                &runtime.config().sandbox,
                crate::engine::Tier::Optimized,
            )
            .map_err(|e| BenchError::Wasm(e.to_string()))?;
            let component = wasmtime::component::Component::new(&engine, bytes)
                .map_err(|e| BenchError::Wasm(e.to_string()))?;
            paths.push(std::sync::Arc::new(BarePath::new(engine, &component)?));
        }
        Ok(Self {
            picker: crate::engine::ShardPicker::new(paths.len()),
            paths,
        })
    }

    fn path_for_this_thread(&self) -> &BarePath {
        &self.paths[self.picker.for_this_thread()]
    }
}

/// A bare call path: an engine, the tool's pre-instantiated component on
/// it, nothing of the host around the call.
struct BarePath {
    engine: wasmtime::Engine,
    pre: ToolPluginPre<BareState>,
}

impl BarePath {
    fn new(
        engine: wasmtime::Engine,
        component: &wasmtime::component::Component,
    ) -> Result<Self, BenchError> {
        let linker = bare_linker(&engine)?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            BenchError::Unavailable(format!("the bare path cannot link this plugin: {e}"))
        })?;
        let pre = ToolPluginPre::new(pre).map_err(|e| BenchError::Wasm(e.to_string()))?;
        Ok(Self { engine, pre })
    }

    async fn call(&self, tool: &str, args_json: &str) -> Result<(), BenchError> {
        let context = CallContext {
            call_id: "bench".into(),
            session_id: None,
            timeout_ms: 10_000,
        };
        let mut store = Store::new(&self.engine, BareState::new());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| BenchError::Wasm(e.to_string()))?;
        instance
            .agent_plugin_tool()
            .call_invoke(&mut store, tool, args_json, &context)
            .await
            .map_err(|e| BenchError::Wasm(e.to_string()))?
            .map_err(|e| BenchError::Wasm(format!("tool error: {e:?}")))?;
        Ok(())
    }
}

/// `n` calls made one after another by one caller.
type Calls = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BenchError>> + Send>>;

/// Calls per second of `callers` tasks making `calls` calls each, the
/// calls of each task made by `calls_of(calls)`. A task takes its own
/// handles on what it calls through once, so what is measured is the
/// calls, not handles cloned and dropped on every call by threads that
/// share them.
async fn rate<F>(callers: usize, calls: usize, calls_of: F) -> Result<f64, BenchError>
where
    F: Fn(usize) -> Calls,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| tokio::spawn(calls_of(calls)))
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| BenchError::Stalled(format!("a caller died: {e}")))??;
    }
    Ok((callers * calls) as f64 / started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The plugin that serves `tool`, and its prepared component.
async fn tool_component(
    runtime: &Runtime,
    tool: &str,
) -> Result<
    (
        std::sync::Arc<crate::loader::LoadedPlugin>,
        wasmtime::component::Component,
    ),
    BenchError,
> {
    let info = runtime
        .tool(tool)
        .ok_or_else(|| BenchError::Unavailable(format!("no tool named '{tool}' is loaded")))?;
    let plugin = runtime
        .plugins()
        .into_iter()
        .find(|p| p.name() == info.plugin)
        .ok_or_else(|| BenchError::Unavailable("plugin disappeared".to_owned()))?;
    let component = runtime
        .prepared_component(&plugin)
        .await
        .map_err(|err| BenchError::Load(Box::new(err)))?;
    Ok((plugin, component))
}

/// Host-path calls of `tool` (`Runtime::call_tool`), `n` at a time. The
/// arguments are shared, like the bare paths' argument text: copying a
/// JSON value per call would be the harness's cost, not the host's.
fn host_calls(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
) -> impl Fn(usize) -> Calls + use<> {
    let (runtime, tool) = (runtime.clone(), std::sync::Arc::<str>::from(tool));
    let args = std::sync::Arc::new(args.clone());
    move |calls| {
        let (runtime, tool, args) = (runtime.clone(), tool.clone(), args.clone());
        Box::pin(async move {
            for _ in 0..calls {
                runtime
                    .call_tool(&tool, &args, CallOptions::default())
                    .await
                    .map_err(BenchError::from)?;
            }
            Ok(())
        })
    }
}

/// Bare calls of `tool`, `n` at a time, each through the path `pick`
/// gives the calling thread.
fn bare_calls<P>(
    paths: P,
    pick: fn(&P) -> &BarePath,
    tool: &str,
    args_json: &str,
) -> impl Fn(usize) -> Calls + use<P>
where
    P: Clone + Send + Sync + 'static,
{
    let (tool, args_json): (std::sync::Arc<str>, std::sync::Arc<str>) =
        (tool.into(), args_json.into());
    move |calls| {
        let (paths, tool, args_json) = (paths.clone(), tool.clone(), args_json.clone());
        Box::pin(async move {
            for _ in 0..calls {
                pick(&paths).call(&tool, &args_json).await?;
            }
            Ok(())
        })
    }
}

/// Bare calls through one path.
fn one_path(path: &std::sync::Arc<BarePath>) -> &BarePath {
    path
}

/// Bare calls through the calling thread's engine of several.
fn thread_path(sharded: &std::sync::Arc<ShardedBare>) -> &BarePath {
    sharded.path_for_this_thread()
}

/// Throughput of `tool` from 1..N concurrent callers, three paths side by
/// side in the same process, taking turns round by round: the host path,
/// bare wasmtime on the runtime's engine (the same pooling tuning), and
/// bare wasmtime on an engine with wasmtime's default pooling settings
/// (the component compiled for it here).
pub async fn compare_scaling(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    concurrency: &[usize],
    calls_per_caller: usize,
    rounds: usize,
) -> Result<Vec<ScalingRow>, BenchError> {
    let (plugin, component) = tool_component(runtime, tool).await?;
    let bytes = std::fs::read(&plugin.wasm_path)?;
    let same = std::sync::Arc::new(BarePath::new(runtime.engine().clone(), &component)?);
    let sharded = std::sync::Arc::new(ShardedBare::new(runtime, same.clone(), &bytes)?);
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    let default_engine =
        wasmtime::Engine::new(&config).map_err(|e| BenchError::Wasm(e.to_string()))?;
    let default_component = wasmtime::component::Component::new(&default_engine, &bytes)
        .map_err(|e| BenchError::Wasm(e.to_string()))?;
    let default = std::sync::Arc::new(BarePath::new(default_engine, &default_component)?);
    let args_json = args.to_string();
    let host_call = host_calls(runtime, tool, args);
    let bare_call =
        |path: &std::sync::Arc<BarePath>| bare_calls(path.clone(), one_path, tool, &args_json);
    let sharded_call = bare_calls(sharded, thread_path, tool, &args_json);
    // The four paths in a fixed order of their own (host, same tuning,
    // default pooling, shards); each round starts one further along, so no
    // path always runs first or right after another.
    let paths: [Box<dyn Fn(usize) -> Calls>; 4] = [
        Box::new(host_call),
        Box::new(bare_call(&same)),
        Box::new(bare_call(&default)),
        Box::new(sharded_call),
    ];
    // Warm-up: pool slots, page faults, every path at the top concurrency.
    let top = concurrency.iter().copied().max().unwrap_or(1);
    for path in &paths {
        rate(top, 20, path).await?;
    }
    let mut samples = vec![[const { Vec::new() }; 4]; concurrency.len()];
    for round in 0..rounds.max(1) {
        for (index, &callers) in concurrency.iter().enumerate() {
            let calls = (calls_per_caller / callers).max(20);
            for turn in 0..paths.len() {
                let path = (round + turn) % paths.len();
                samples[index][path].push(rate(callers, calls, &paths[path]).await?);
            }
        }
    }
    Ok(concurrency
        .iter()
        .zip(samples)
        .map(|(&callers, [host, same, default, sharded])| ScalingRow {
            callers,
            host: median(host),
            bare_same_tuning: median(same),
            bare_same_engines: median(sharded),
            bare_default_pooling: median(default),
        })
        .collect())
}

/// Which call path [`run_one_path`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnePath {
    /// `Runtime::call_tool`.
    Host,
    /// Bare wasmtime on the runtime's own engine.
    Bare,
    /// Bare wasmtime on as many engines as the runtime calls through, one
    /// per calling thread.
    BareShards,
}

/// Makes `calls` calls of `tool` from `callers` callers through one path
/// alone, and returns the calls per second: for a profiler, which would
/// otherwise see every path of [`compare_scaling`] mixed together.
pub async fn run_one_path(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    path: OnePath,
    callers: usize,
    calls: usize,
) -> Result<f64, BenchError> {
    let callers = callers.max(1);
    let per_caller = (calls / callers).max(1);
    let args_json = args.to_string();
    match path {
        OnePath::Host => rate(callers, per_caller, host_calls(runtime, tool, args)).await,
        OnePath::Bare => {
            let (_, component) = tool_component(runtime, tool).await?;
            let bare = std::sync::Arc::new(BarePath::new(runtime.engine().clone(), &component)?);
            rate(
                callers,
                per_caller,
                bare_calls(bare, one_path, tool, &args_json),
            )
            .await
        }
        OnePath::BareShards => {
            let (plugin, component) = tool_component(runtime, tool).await?;
            let bytes = std::fs::read(&plugin.wasm_path)?;
            let first = std::sync::Arc::new(BarePath::new(runtime.engine().clone(), &component)?);
            let sharded = std::sync::Arc::new(ShardedBare::new(runtime, first, &bytes)?);
            rate(
                callers,
                per_caller,
                bare_calls(sharded, thread_path, tool, &args_json),
            )
            .await
        }
    }
}
