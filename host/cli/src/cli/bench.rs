//! `agent-host bench`: side-by-side measurements of the call path, the cache, hot reload, and `tools list`.
//!
//! Each figure is paired with its baseline in the same run (bare wasmtime,
//! bare deserialize, process start-up), because these machines are noisy:
//! the ratios are what to compare across runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::json;

use agent_host_runtime::bench::{self, Stats};
use agent_host_runtime::{Runtime, RuntimeConfig};

use super::render::print_json;
use super::{Cli, EXIT_OK, Failure, StoreOpen, config_from, start};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// One trivial tool call: bare wasmtime vs the host path.
    Call,
    /// Cached load after restart vs bare deserialize_file, and vs compiling.
    Cache,
    /// Hot reload: file replaced -> next call answered by the new version.
    Reload,
    /// `agent-host tools list` as a whole process, cached plugins.
    List,
    /// The agent loop: overhead of a turn with one tool call, and interrupt latency.
    Agent,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which measurements to run (repeatable; default: all).
    #[arg(long, value_enum)]
    pub only: Vec<Suite>,
    /// Tool for the call and reload measurements (a trivial one measures host overhead best).
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Arguments for each call.
    #[arg(long, default_value = r#"{"text":"hello"}"#, value_name = "JSON")]
    pub args: String,
    /// Calls per path in the call measurement.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    /// Rounds of the reload and list measurements.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    #[arg(long)]
    pub json: bool,
}

fn row(name: &str, stats: &Stats) {
    outln!(
        "  {:46} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {}",
        name,
        stats.median,
        stats.mean,
        stats.p90,
        stats.min,
        stats.unit
    );
}

fn header(title: &str) {
    outln!("\n{title}");
    outln!(
        "  {:46} {:>9} {:>9} {:>9} {:>9}",
        "",
        "median",
        "mean",
        "p90",
        "min"
    );
}

pub async fn run(cli: &Cli, args: &BenchArgs) -> Result<u8, Failure> {
    let call_args: serde_json::Value = serde_json::from_str(&args.args)
        .map_err(|err| Failure::usage(anyhow::anyhow!("--args is not valid JSON: {err}")))?;
    if args.iterations == 0 || args.rounds == 0 {
        return Err(Failure::usage(anyhow::anyhow!(
            "--iterations and --rounds must be at least 1"
        )));
    }
    let wants = |suite| args.only.is_empty() || args.only.contains(&suite);
    // The suites compare the host with bare wasmtime on the optimized
    // (Cranelift) engine: the plugins must run that tier from the start.
    let mut settings = config_from(cli)?;
    settings.runtime.cache.tiering = agent_host_runtime::config::Tiering::Optimized;
    let runtime = start(&settings, args.json, StoreOpen::Now).await?;
    let plugin_name = runtime
        .tool(&args.tool)
        .ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "no tool named '{}' in the plugin directories; pass --plugins with a directory that has it (e.g. build/test-plugins)",
                args.tool
            ))
        })?
        .plugin;
    let mut report = serde_json::Map::new();
    let bench_error = |err: bench::BenchError| Failure::usage(anyhow::anyhow!(err));

    if wants(Suite::Call) {
        let r = bench::compare_call_paths(&runtime, &args.tool, &call_args, args.iterations)
            .await
            .map_err(bench_error)?;
        if !args.json {
            header(&format!(
                "tool call '{}' ({} calls per path, fresh sandboxed instance each)",
                r.tool, r.iterations
            ));
            row("bare wasmtime (InstancePre+pooling+call)", &r.bare);
            row("agent-host (lookup+schema+sandbox+call)", &r.host);
            outln!(
                "  ratio host/bare (median): {:.2}x   target <= 1.5x",
                r.ratio
            );
        }
        report.insert("call".into(), json!(r));
    }
    if wants(Suite::Cache) {
        let r = bench::compare_cached_load(&runtime, &plugin_name, 500).map_err(bench_error)?;
        if !args.json {
            header(&format!(
                "cached load of plugin '{}' ({} B wasm, {} B artifact)",
                r.plugin, r.wasm_bytes, r.artifact_bytes
            ));
            row("compile (Component::new)", &r.compile);
            row("bare Component::deserialize_file", &r.bare_deserialize);
            row(
                "agent-host disk cache (lookup+integrity+load)",
                &r.host_disk_load,
            );
            outln!(
                "  ratio host/bare (median): {:.2}x   target <= 2x;  compile/host: {:.0}x",
                r.ratio_to_bare,
                r.speedup_over_compile
            );
        }
        report.insert("cache".into(), json!(r));
    }
    if wants(Suite::Reload) {
        let r = reload(&runtime, &args.tool, &call_args, args.rounds).await?;
        if !args.json {
            header(&format!(
                "hot reload of plugin '{}' ({} rounds, debounce {} ms, compile {:.1} ms)",
                r.plugin, r.rounds, r.debounce_ms, r.compile_ms
            ));
            row("replace -> answered by a new version", &r.new_version_ms);
            row("replace -> answered by a cached version", &r.revert_ms);
            outln!(
                "  new: median - compile = {:.1} ms (target <= 50); revert median {:.1} ms (target <= 50)",
                r.new_version_ms.median - r.compile_ms,
                r.revert_ms.median
            );
        }
        report.insert("reload".into(), json!(r));
    }
    if wants(Suite::Agent) {
        let r = agent_host_agent::bench::measure_agent_loop(
            &runtime,
            &args.tool,
            &call_args,
            args.iterations.min(1000),
        )
        .await
        .map_err(|err| Failure::usage(anyhow::anyhow!(err)))?;
        if !args.json {
            header(&format!(
                "agent loop, zero-latency in-process model, 1 call of '{}' per turn ({} runs)",
                r.tool, r.iterations
            ));
            row("user message -> tool call -> answer", &r.run);
            row("  of which the tool call (host path)", &r.tool_call);
            row("  loop overhead (run - tool call)", &r.overhead);
            row(
                "interrupt while waiting on the model",
                &r.interrupt_model.clone().in_millis(),
            );
            if let Some(tool) = &r.interrupt_tool {
                row("interrupt while a tool spins", &tool.clone().in_millis());
            }
            outln!(
                "  overhead median {:.0} us (target <= 300 us); interrupt median {:.2} ms (target <= 5 ms)",
                r.overhead.median,
                r.interrupt_model.median / 1e3
            );
        }
        report.insert("agent".into(), json!(r));
    }
    if wants(Suite::List) {
        let r = list_process(&runtime, args.rounds.max(5))?;
        if !args.json {
            header(&format!(
                "whole process, {} plugins cached ({} runs)",
                r.0,
                args.rounds.max(5)
            ));
            row("agent-host --version (process start-up)", &r.1);
            row("agent-host tools list", &r.2);
            outln!("  tools list median {:.1} ms (target <= 25 ms)", r.2.median);
        }
        report.insert(
            "list".into(),
            json!({ "plugins": r.0, "startup": r.1, "tools_list": r.2 }),
        );
    }
    if args.json {
        print_json(&report);
    }
    Ok(EXIT_OK)
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Result<Self, Failure> {
        let dir =
            std::env::temp_dir().join(format!("agent-host-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("plugins")).map_err(|err| {
            Failure::usage(anyhow::anyhow!("cannot create {}: {err}", dir.display()))
        })?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_plugin(wasm: &Path, into: &Path) -> Result<(), Failure> {
    let copy = |from: &Path| {
        let name = from.file_name().unwrap_or_default();
        std::fs::copy(from, into.join(name))
            .map_err(|err| Failure::usage(anyhow::anyhow!("cannot copy {}: {err}", from.display())))
    };
    copy(wasm)?;
    copy(&wasm.with_extension("toml"))?;
    Ok(())
}

/// Runs the reload measurement on a copy of the plugin, so the user's plugin
/// files are never modified.
async fn reload(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    rounds: usize,
) -> Result<bench::ReloadBenchReport, Failure> {
    let plugin = runtime
        .plugins()
        .into_iter()
        .find(|p| p.tool(tool).is_some())
        .ok_or_else(|| Failure::usage(anyhow::anyhow!("tool '{tool}' is not loaded")))?;
    let scratch = Scratch::new("reload")?;
    copy_plugin(&plugin.wasm_path, &scratch.0.join("plugins"))?;
    let mut config = RuntimeConfig::new(vec![scratch.0.join("plugins")], scratch.0.join("data"));
    config.sandbox = runtime.config().sandbox.clone();
    config.watch = runtime.config().watch.clone();
    let copy = Runtime::new(config).map_err(Failure::usage)?;
    copy.load_plugin_dirs().await;
    bench::measure_hot_reload(&copy, tool, args, rounds)
        .await
        .map_err(|err| Failure::usage(anyhow::anyhow!(err)))
}

fn time_process(command: &mut std::process::Command) -> Result<Duration, Failure> {
    let started = Instant::now();
    let status = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|err| Failure::usage(anyhow::anyhow!("cannot run agent-host: {err}")))?;
    let took = started.elapsed();
    if !status.success() {
        return Err(Failure::usage(anyhow::anyhow!(
            "agent-host exited with {status}"
        )));
    }
    Ok(took)
}

/// `tools list` as a whole process over a copy of every loaded plugin, with a
/// warm cache, next to bare process start-up.
fn list_process(runtime: &Runtime, runs: usize) -> Result<(usize, Stats, Stats), Failure> {
    let scratch = Scratch::new("list")?;
    let plugins = runtime.plugins();
    for plugin in &plugins {
        copy_plugin(&plugin.wasm_path, &scratch.0.join("plugins"))?;
    }
    let exe = std::env::current_exe().map_err(|err| Failure::usage(anyhow::anyhow!(err)))?;
    let list = || {
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--plugins")
            .arg(scratch.0.join("plugins"))
            .arg("--data-dir")
            .arg(scratch.0.join("data"))
            .args(["tools", "list"])
            .env("AGENT_HOST_CONFIG", "/dev/null");
        command
    };
    time_process(&mut list())?; // fills the cache
    let mut startup = Vec::new();
    let mut listed = Vec::new();
    for _ in 0..runs {
        startup.push(time_process(
            std::process::Command::new(&exe).arg("--version"),
        )?);
        listed.push(time_process(&mut list())?);
    }
    Ok((plugins.len(), stats_ms(startup), stats_ms(listed)))
}

fn stats_ms(samples: Vec<Duration>) -> Stats {
    bench::Stats::from_samples(samples).in_millis()
}
