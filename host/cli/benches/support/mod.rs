//! What the binary's benchmarks share: the binary's allocator, their sizes from the environment, a two-worker tokio runtime, and the runtime config they measure (the optimized tier from the first call).

// Each bench uses its own subset.
#![allow(dead_code)]

use agent_host_runtime::RuntimeConfig;

/// The allocator the binary uses, so what runs in process runs as it
/// would in `agent-host`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A size from the environment variable `name`, else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Runs `bench` on a two-worker tokio runtime (the machines have 2 cores).
pub fn block_on<F: std::future::Future<Output = ()>>(bench: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench);
}

/// The config measured: the optimized tier from the first call, so a
/// background tier-up never lands in the middle of a measurement.
pub fn optimized(mut config: RuntimeConfig) -> RuntimeConfig {
    config.cache.tiering = agent_host_runtime::config::Tiering::Optimized;
    config
}
