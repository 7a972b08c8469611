//! Soak benchmark (issue 11): a million calls through the host path with a hostile call every hundred; RSS and open descriptors sampled as it goes.
//!
//! Run: `make plugins && cargo bench -p agent-host --bench soak` (set
//! `SOAK_CALLS` for a shorter run). Two callers share one runtime. Every
//! 100th call is hostile, in turn a trap (panic), a timeout (an endless
//! loop against a 20 ms deadline) and a memory-limit hit (64 MiB against a
//! 32 MiB cap); the rest are `echo` calls. It prints one table: memory and
//! descriptors must stay flat after warm-up, and every hostile call must
//! fail the way it should while every normal call succeeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use agent_host_runtime::bench::rss_kib;
use agent_host_runtime::{CallError, CallOptions, FailureKind, Runtime, RuntimeConfig};
use serde_json::json;

const HOSTILE_EVERY: u64 = 100;
const CALLERS: u64 = 2;
const SAMPLES: u64 = 20;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fn build_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../build")
        .join(kind)
}

fn copy_plugin(name: &str, to: &Path) {
    let from = build_dir("test-plugins");
    for ext in ["wasm", "toml"] {
        let source = from.join(format!("{name}.{ext}"));
        std::fs::copy(&source, to.join(format!("{name}.{ext}")))
            .unwrap_or_else(|err| panic!("{}: {err}; run `make plugins` first", source.display()));
    }
}

/// What a hostile call must end with.
#[derive(Clone, Copy)]
enum Attack {
    Trap,
    Timeout,
    Memory,
}

impl Attack {
    fn nth(n: u64) -> Self {
        match (n / HOSTILE_EVERY) % 3 {
            0 => Attack::Trap,
            1 => Attack::Timeout,
            _ => Attack::Memory,
        }
    }

    async fn run(self, runtime: &Runtime) -> bool {
        let (tool, args) = match self {
            Attack::Trap => ("panic", json!({"message": "soak"})),
            Attack::Timeout => ("spin", json!({})),
            Attack::Memory => ("alloc", json!({"mb": 64})),
        };
        let result = runtime.call_tool(tool, &args, CallOptions::default()).await;
        matches!(
            (self, result),
            (
                Attack::Trap,
                Err(CallError::Failed {
                    kind: FailureKind::Trap { .. },
                    ..
                })
            ) | (
                Attack::Timeout,
                Err(CallError::Failed {
                    kind: FailureKind::Timeout { .. },
                    ..
                })
            ) | (
                Attack::Memory,
                Err(CallError::Failed {
                    kind: FailureKind::MemoryLimit { .. } | FailureKind::Trap { .. },
                    ..
                })
            )
        )
    }
}

#[derive(Default)]
struct Tally {
    normal_ok: AtomicU64,
    normal_failed: AtomicU64,
    hostile_contained: AtomicU64,
    hostile_unexpected: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: u64 = std::env::var("SOAK_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    copy_plugin("echo", &plugins);
    copy_plugin("hostile", &plugins);
    // Only the hostile plugin gets the short deadline, so a normal call on
    // a busy machine is not mistaken for a timeout.
    let manifest = plugins.join("hostile.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("timeout_ms = 2000", "timeout_ms = 20"),
    )
    .unwrap();
    let mut config = RuntimeConfig::new(vec![plugins], tmp.path().join("data"));
    // The optimized tier from the first call: no tier-up mid-measurement.
    config.cache.tiering = agent_host_runtime::config::Tiering::Optimized;
    let runtime = Runtime::new(config).unwrap();
    let report = runtime
        .load_plugin_dirs_with(agent_host_runtime::LoadMode::Eager)
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let every = (total / SAMPLES).max(1);
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (runtime, tally, next, samples) = (
                runtime.clone(),
                tally.clone(),
                next.clone(),
                samples.clone(),
            );
            tokio::spawn(async move {
                let args = json!({"text": "soak"});
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        return;
                    }
                    if n % HOSTILE_EVERY == HOSTILE_EVERY - 1 {
                        let counter = if Attack::nth(n).run(&runtime).await {
                            &tally.hostile_contained
                        } else {
                            &tally.hostile_unexpected
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let result = runtime
                            .call_tool("echo", &args, CallOptions::default())
                            .await;
                        let ok = match result {
                            Ok(output) => output.to_text() == "soak",
                            Err(err) => {
                                eprintln!("call {n} failed: {err}");
                                false
                            }
                        };
                        let counter = if ok {
                            &tally.normal_ok
                        } else {
                            &tally.normal_failed
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    if n % every == 0 {
                        samples.lock().unwrap().push((n, rss_kib(), open_fds()));
                    }
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut samples = samples.lock().unwrap().clone();
    samples.sort();
    samples.push((total, rss_kib(), open_fds()));

    // Warm-up: the first tenth of the run (pools fill, caches settle).
    let warm: Vec<_> = samples.iter().filter(|(n, ..)| *n >= total / 10).collect();
    let rss_min = warm.iter().map(|s| s.1).min().unwrap_or(0);
    let rss_max = warm.iter().map(|s| s.1).max().unwrap_or(0);
    let fd_min = warm.iter().map(|s| s.2).min().unwrap_or(0);
    let fd_max = warm.iter().map(|s| s.2).max().unwrap_or(0);
    println!("soak: {total} calls, {CALLERS} callers, a hostile call every {HOSTILE_EVERY}");
    println!("{:>10} {:>10} {:>6}", "call", "RSS KiB", "fds");
    for (n, rss, fds) in &samples {
        println!("{n:>10} {rss:>10} {fds:>6}");
    }
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| wall time / calls per second | {:.1} s / {:.0} |",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| normal calls ok / failed | {} / {} |",
        tally.normal_ok.load(Ordering::Relaxed),
        tally.normal_failed.load(Ordering::Relaxed)
    );
    println!(
        "| hostile calls contained as expected / otherwise | {} / {} |",
        tally.hostile_contained.load(Ordering::Relaxed),
        tally.hostile_unexpected.load(Ordering::Relaxed)
    );
    println!(
        "| RSS after warm-up: min / max / spread | {rss_min} / {rss_max} KiB / {:.1} % |",
        (rss_max.saturating_sub(rss_min)) as f64 * 100.0 / rss_min.max(1) as f64
    );
    println!("| open descriptors after warm-up: min / max | {fd_min} / {fd_max} |");
}
