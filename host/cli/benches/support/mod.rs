//! What the binary's benchmarks share: the binary's allocator, their sizes from the environment, a two-worker tokio runtime, the runtime config they measure (the optimized tier from the first call), and timing helpers (sequential latencies, percentiles).

// Each bench uses its own subset.
#![allow(dead_code)]

use std::time::{Duration, Instant};

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

/// Latencies of `count` runs of `work`, one after another.
pub async fn sequential<F, Fut>(count: usize, mut work: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        work().await;
        latencies.push(started.elapsed());
    }
    latencies
}

/// The value at `fraction` (0.5: the median) of sorted samples; zero for none.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Sorts the samples and returns their median.
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    percentile(samples, 0.5)
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
