//! Tool-call throughput across concurrent callers (issue 16): the host path against bare wasmtime with the same pool tuning and with wasmtime's default pooling settings, side by side in one process.
//!
//! `make plugins && cargo bench -p agent-host-runtime --features bench --bench scaling`
//! (SCALING_CALLS: calls per concurrency level per round, SCALING_ROUNDS;
//! SCALING_LEVELS: callers to measure, like `1,2`; SCALING_ONE_PATH=host|bare|shards
//! runs that path alone, from SCALING_ONE_CALLERS callers (1), for a profiler).

use std::path::{Path, PathBuf};

use agent_host_runtime::bench::{OnePath, compare_scaling, run_one_path};
use agent_host_runtime::{Runtime, RuntimeConfig};
use serde_json::json;

fn build_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../build")
        .join(kind)
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for ext in ["wasm", "toml"] {
        let source = build_dir("test-plugins").join(format!("echo.{ext}"));
        std::fs::copy(&source, plugins.join(format!("echo.{ext}")))
            .unwrap_or_else(|err| panic!("{}: {err}; run `make plugins` first", source.display()));
    }
    let mut config = RuntimeConfig::new(vec![plugins], tmp.path().join("data"));
    config.cache.tiering = agent_host_runtime::config::Tiering::Optimized;
    if let Ok(shards) = std::env::var("SCALING_ENGINE_SHARDS") {
        config.sandbox.engine_shards = shards.parse().expect("SCALING_ENGINE_SHARDS: a number");
    }
    let runtime = Runtime::new(config).unwrap();
    runtime
        .load_plugin_dirs_with(agent_host_runtime::LoadMode::Eager)
        .await;
    // SCALING_ONE_PATH=host|bare|shards: that path alone, for a profiler.
    if let Ok(path) = std::env::var("SCALING_ONE_PATH") {
        let path = match path.as_str() {
            "host" => OnePath::Host,
            "bare" => OnePath::Bare,
            "shards" => OnePath::BareShards,
            other => panic!("SCALING_ONE_PATH is host, bare or shards, not '{other}'"),
        };
        let args = json!({ "text": "hi" });
        let calls = setting("SCALING_CALLS", 200_000);
        let callers = setting("SCALING_ONE_CALLERS", 1);
        let per_second = run_one_path(&runtime, "echo", &args, path, callers, calls)
            .await
            .unwrap();
        println!("{path:?}: {per_second:.0} calls/s");
        return;
    }
    let levels: Vec<usize> = std::env::var("SCALING_LEVELS")
        .ok()
        .map(|list| {
            list.split(',')
                .map(|level| {
                    level
                        .trim()
                        .parse()
                        .expect("SCALING_LEVELS: numbers, like 1,2,8")
                })
                .collect()
        })
        .unwrap_or_else(|| vec![1, 2, 8, 32, 100]);
    let rows = compare_scaling(
        &runtime,
        "echo",
        &json!({ "text": "hi" }),
        &levels,
        setting("SCALING_CALLS", 20_000),
        setting("SCALING_ROUNDS", 5),
    )
    .await
    .unwrap();
    println!(
        "{:>8} {:>10} {:>12} {:>13} {:>14} {:>7} {:>11} {:>9} {:>12}",
        "callers",
        "host/s",
        "bare same/s",
        "bare shards/s",
        "bare default/s",
        "vs 1",
        "vs default",
        "vs same",
        "vs shards"
    );
    let one = rows[0].host;
    for row in &rows {
        println!(
            "{:>8} {:>10.0} {:>12.0} {:>13.0} {:>14.0} {:>6.2}x {:>10.2}x {:>8.2}x {:>11.2}x",
            row.callers,
            row.host,
            row.bare_same_tuning,
            row.bare_same_engines,
            row.bare_default_pooling,
            row.host / one,
            row.host / row.bare_default_pooling,
            row.host / row.bare_same_tuning,
            row.host / row.bare_same_engines,
        );
    }
}
