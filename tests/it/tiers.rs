//! Tiered compilation (issue 16): a plugin without an optimized build answers from its baseline (Winch) build at once, the optimized (Cranelift) build is swapped in behind it without failing a call, a restart loads the best tier cached, and fuel keeps everything on the optimized tier.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agent_host_runtime::cache::CacheLevel;
use agent_host_runtime::config::Tiering;
use agent_host_runtime::{CallOptions, PluginEvent, Runtime, Tier};
use serde_json::json;

use crate::support::{Harness, test_plugin};

const PATIENCE: Duration = Duration::from_secs(120);

async fn echo(runtime: &Runtime) -> String {
    runtime
        .call_tool("echo", &json!({"text": "hi"}), CallOptions::default())
        .await
        .expect("echo answers")
        .to_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_build_answers_first_and_the_optimized_one_takes_over_without_a_failed_call() {
    let mut h = Harness::new();
    h.config.cache.tiering = Tiering::Auto;
    h.install(test_plugin::echo());
    let runtime = Runtime::new(h.config.clone()).unwrap();
    let mut events = runtime.subscribe();
    runtime.load_plugin_dirs().await;
    let plugin = runtime.plugins().into_iter().next().unwrap();
    assert_eq!(plugin.tier(), Some(Tier::Baseline));
    assert_eq!(plugin.cache_level(), Some(CacheLevel::Compiled));

    // Calls keep going while the optimized build is made and swapped in.
    let calls = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (runtime, calls, stop) = (runtime.clone(), calls.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    assert_eq!(echo(&runtime).await, "hi");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(PluginEvent::TieredUp { plugin }) if plugin == "echo" => break,
                Ok(_) => {}
                Err(err) => panic!("event stream: {err}"),
            }
        }
    })
    .await
    .expect("the optimized build is swapped in");
    // A few more calls on the new build, then stop.
    let at_swap = calls.load(Ordering::Relaxed);
    while calls.load(Ordering::Relaxed) < at_swap + 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    for caller in callers {
        caller.await.expect("no call failed");
    }
    let plugin = runtime.plugins().into_iter().next().unwrap();
    assert_eq!(plugin.tier(), Some(Tier::Optimized));
    drop(runtime);

    // A restart loads the optimized build from disk: no compile at all.
    let runtime = Runtime::new(h.config.clone()).unwrap();
    runtime
        .load_plugin_dirs_with(agent_host_runtime::LoadMode::Eager)
        .await;
    let plugin = runtime.plugins().into_iter().next().unwrap();
    assert_eq!(plugin.tier(), Some(Tier::Optimized));
    assert_eq!(plugin.cache_level(), Some(CacheLevel::Disk));
    assert_eq!(runtime.cache_stats().compiles, 0);
    assert_eq!(echo(&runtime).await, "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chosen_tier_is_the_one_that_runs() {
    for (tiering, expected) in [
        (Tiering::Baseline, Tier::Baseline),
        (Tiering::Optimized, Tier::Optimized),
    ] {
        let mut h = Harness::new();
        h.config.cache.tiering = tiering;
        h.install(test_plugin::echo());
        let runtime = h.runtime().await;
        assert_eq!(echo(&runtime).await, "hi");
        assert_eq!(runtime.plugins()[0].tier(), Some(expected), "{tiering:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_keeps_every_plugin_on_the_optimized_tier() {
    let mut h = Harness::new();
    h.config.cache.tiering = Tiering::Auto;
    h.config.sandbox.fuel = true;
    h.install(test_plugin::echo());
    let runtime = h.runtime().await;
    assert_eq!(echo(&runtime).await, "hi");
    assert_eq!(runtime.plugins()[0].tier(), Some(Tier::Optimized));
    // Asking for the baseline tier with fuel is refused, saying why.
    h.config.cache.tiering = Tiering::Baseline;
    let err = Runtime::new(h.config.clone()).unwrap_err().to_string();
    assert!(err.contains("fuel") && err.contains("tiering"), "{err}");
}
