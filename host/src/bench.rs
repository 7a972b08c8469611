//! Side-by-side benchmark of one tool call: bare wasmtime versus the full agent-host call path.
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
use crate::runtime::{CallOptions, Runtime};

/// Timing summary of one path, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub median_us: f64,
    pub mean_us: f64,
    pub p90_us: f64,
    pub min_us: f64,
}

impl Stats {
    fn from(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let n = samples.len().max(1);
        let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64;
        Self {
            median_us: us(samples[n / 2]),
            mean_us: mean,
            p90_us: us(samples[(n * 9 / 10).min(n - 1)]),
            min_us: us(samples[0]),
        }
    }
}

/// The result of [`compare_call_paths`].
#[derive(Debug, Clone, Serialize)]
pub struct CallBenchReport {
    pub tool: String,
    pub plugin: String,
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
    table: ResourceTable,
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
    fn monotonic_now(&mut self) -> u64 {
        0
    }
}

const ROUND: usize = 20;

/// Measures `iterations` calls of `tool` with `args` on both paths.
pub async fn compare_call_paths(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    iterations: usize,
) -> Result<CallBenchReport, String> {
    let info = runtime.tool(tool).ok_or_else(|| {
        format!("no tool named '{tool}' is loaded; pass --plugins with a directory that has it")
    })?;
    let plugin = runtime
        .plugins()
        .into_iter()
        .find(|p| p.name() == info.plugin)
        .ok_or("plugin disappeared")?;
    let engine = runtime.engine().clone();
    let mut linker: Linker<BareState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
    ToolPlugin::add_to_linker::<BareState, HasSelf<BareState>>(&mut linker, |s| s)
        .map_err(|e| e.to_string())?;
    let component = plugin.pre.instance_pre().component().clone();
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        format!("the bare path cannot link this plugin (it may need wasi:http): {e}")
    })?;
    let pre = ToolPluginPre::new(pre).map_err(|e| e.to_string())?;
    let args_json = args.to_string();
    let context = CallContext {
        call_id: "bench".into(),
        session_id: None,
        timeout_ms: 10_000,
    };

    let bare_call = || async {
        let mut store = Store::new(
            &engine,
            BareState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| e.to_string())?;
        instance
            .agent_plugin_tool()
            .call_invoke(&mut store, tool, &args_json, &context)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("tool error: {e:?}"))?;
        Ok::<_, String>(())
    };
    let host_call = || async {
        runtime
            .call_tool(tool, args, CallOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
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
    let bare = Stats::from(bare);
    let host = Stats::from(host);
    Ok(CallBenchReport {
        tool: tool.to_owned(),
        plugin: plugin.name().to_owned(),
        iterations,
        ratio: host.median_us / bare.median_us,
        bare,
        host,
    })
}
