//! The compiled-component cache (memory and disk) and hot reload through the directory watcher.

use std::path::Path;
use std::time::Duration;

use agent_host_runtime::cache::CacheStatsSnapshot;
use agent_host_runtime::{CallError, CallOptions, LoadMode, PluginEvent, Runtime};
use serde_json::json;

use crate::support::{Harness, test_plugin};

async fn version(runtime: &Runtime) -> Result<String, CallError> {
    runtime
        .call_tool("version", &json!({}), CallOptions::default())
        .await
        .map(|output| output.to_text())
}

fn counts(stats: &CacheStatsSnapshot) -> (u64, u64, u64) {
    (stats.memory_hits, stats.disk_hits, stats.compiles)
}

#[tokio::test]
async fn memory_hits_misses_and_evictions() {
    let mut harness = Harness::new();
    harness.config.cache.memory_entries = 1;
    harness.install(test_plugin::echo());
    harness.install(test_plugin::versioned());
    let runtime = harness.runtime().await;
    let stats = runtime.cache_stats();
    assert_eq!(counts(&stats), (0, 0, 2), "{stats:?}");
    assert_eq!(stats.memory_entries, 1);
    assert!(stats.evictions >= 1, "{stats:?}");

    // Only one fits in memory, so reloading both needs at least one disk
    // hit, and reloading the last one again is a memory hit. Nothing compiles.
    let echo = harness.plugins_dir().join("echo.wasm");
    let versioned = harness.plugins_dir().join("versioned.wasm");
    runtime.reload_path(&echo).await.unwrap();
    runtime.reload_path(&versioned).await.unwrap();
    let after = runtime.cache_stats();
    assert_eq!(after.compiles, 2, "a reload never recompiles: {after:?}");
    assert_eq!(after.memory_hits + after.disk_hits, 2, "{after:?}");
    assert!(after.disk_hits >= 1, "{after:?}");
    assert!(after.evictions >= 2, "{after:?}");
    runtime.reload_path(&versioned).await.unwrap();
    let last = runtime.cache_stats();
    assert_eq!(last.memory_hits, after.memory_hits + 1, "{last:?}");
    assert!(last.hit_rate() > 0.5);
    assert!(
        last.saved_ms > 0.0,
        "a hit saves the compile time: {last:?}"
    );
}

#[tokio::test]
async fn a_restart_loads_from_disk_with_zero_compiles() {
    let harness = Harness::new();
    harness.install(test_plugin::echo());
    harness.install(test_plugin::versioned());
    {
        let runtime = harness.runtime().await;
        assert_eq!(runtime.cache_stats().compiles, 2);
    }
    // Listing needs neither the compiler nor the artifacts: specs are stored.
    let runtime = harness.runtime().await;
    assert_eq!(runtime.tools().len(), 2);
    assert_eq!(counts(&runtime.cache_stats()), (0, 0, 0));
    // The first call loads the artifact from disk; nothing compiles.
    assert_eq!(version(&runtime).await.unwrap(), "v1");
    let stats = runtime.cache_stats();
    assert_eq!(counts(&stats), (0, 1, 0), "{stats:?}");
    assert_eq!(stats.disk_entries, 2);
    // Eager loading (hot reload, `plugins check`) also finds them on disk.
    drop(runtime);
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    runtime.load_plugin_dirs_with(LoadMode::Eager).await;
    assert_eq!(counts(&runtime.cache_stats()), (0, 2, 0));
}

#[tokio::test]
async fn a_compile_serves_even_when_its_artifact_cannot_be_kept() {
    // A disk cache with no room: each artifact is written, mapped, then
    // pruned at once; the mapped build serves on and nothing is left.
    let mut harness = Harness::new();
    harness.config.cache.disk_mb = 0;
    harness.install(test_plugin::echo());
    harness.install(test_plugin::versioned());
    let runtime = harness.runtime().await;
    assert_eq!(version(&runtime).await.unwrap(), "v1");
    let echoed = runtime
        .call_tool("echo", &json!({"text": "kept?"}), CallOptions::default())
        .await
        .unwrap();
    assert!(echoed.to_text().contains("kept?"), "{}", echoed.to_text());
    let stats = runtime.cache_stats();
    assert_eq!((stats.compiles, stats.disk_entries), (2, 0), "{stats:?}");

    // An artifact directory that cannot be written to (a file in its place):
    // the build made in memory serves, and the failure is only a warning.
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let runtime = Runtime::new(harness.config.clone()).unwrap();
    let artifacts = harness.config.data_dir.join("artifacts");
    std::fs::remove_dir_all(&artifacts).unwrap();
    std::fs::write(&artifacts, b"not a directory").unwrap();
    runtime.load_plugin_dirs_with(LoadMode::Eager).await;
    assert_eq!(version(&runtime).await.unwrap(), "v1");
    let stats = runtime.cache_stats();
    assert_eq!((stats.compiles, stats.disk_entries), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn a_corrupt_artifact_is_deleted_and_recompiled() {
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let artifact = {
        let runtime = harness.runtime().await;
        let hash = runtime.plugins()[0].content_hash.clone();
        runtime.artifact_path(&hash)
    };
    for corrupt in [
        |bytes: &mut Vec<u8>| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
        },
        |bytes: &mut Vec<u8>| bytes.truncate(bytes.len() / 3),
    ] {
        let mut bytes = std::fs::read(&artifact).unwrap();
        corrupt(&mut bytes);
        std::fs::write(&artifact, &bytes).unwrap();
        let runtime = harness.runtime().await;
        assert_eq!(version(&runtime).await.unwrap(), "v1");
        let stats = runtime.cache_stats();
        assert_eq!(counts(&stats), (0, 0, 1), "{stats:?}");
        assert_ne!(
            std::fs::read(&artifact).unwrap(),
            bytes,
            "the artifact was rewritten"
        );
    }
}

#[tokio::test]
async fn what_no_file_change_explains_is_found_by_cache_verify() {
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let (artifact, name) = {
        let runtime = harness.runtime().await;
        let hash = runtime.plugins()[0].content_hash.clone();
        let artifact = runtime.artifact_path(&hash);
        let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
        // Written and hashed once: loads trust the file while it is the
        // same file; any change to it (even a touch) means a full check.
        use agent_host_runtime::cache::Verified;
        let disk = runtime.component_cache().disk();
        assert_eq!(disk.load_checked(&hash).unwrap().2, Verified::ByIdentity);
        let file = std::fs::File::options()
            .write(true)
            .open(&artifact)
            .unwrap();
        file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        drop(file);
        assert_eq!(disk.load_checked(&hash).unwrap().2, Verified::ByContent);
        assert_eq!(disk.load_checked(&hash).unwrap().2, Verified::ByIdentity);
        assert_eq!(runtime.verify_cache(), (1, Vec::new()));
        (artifact, name)
    };
    // Bits that rot in place: the bytes change, the record still vouches
    // for the file as it is now (the identity the load trusts).
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();
    {
        let runtime = Runtime::new(harness.config.clone()).unwrap();
        let store = runtime.store();
        let mut record = store.artifact(&name).unwrap();
        record.verified_identity =
            Some(agent_host_runtime::cache::file_identity(&artifact).unwrap());
        store.put_artifact(&name, &record).unwrap();
        let (checked, deleted) = runtime.verify_cache();
        assert_eq!((checked, deleted), (1, vec![name.clone()]));
        assert!(!artifact.exists());
    }
    let runtime = harness.runtime().await;
    assert_eq!(version(&runtime).await.unwrap(), "v1");
    assert_eq!(counts(&runtime.cache_stats()), (0, 0, 1));
}

#[tokio::test]
async fn a_different_engine_configuration_never_loads_a_stale_artifact() {
    let mut harness = Harness::new();
    harness.install(test_plugin::versioned());
    {
        let runtime = harness.runtime().await;
        assert_eq!(runtime.cache_stats().compiles, 1);
    }
    // Fuel metering changes the generated code, so the compatibility hash.
    harness.config.sandbox.fuel = true;
    let runtime = harness.runtime().await;
    assert_eq!(version(&runtime).await.unwrap(), "v1");
    assert_eq!(counts(&runtime.cache_stats()), (0, 0, 1));
}

#[tokio::test]
async fn a_touch_without_a_change_is_a_hit_and_a_same_size_rewrite_is_not() {
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let runtime = harness.runtime().await;
    let wasm = harness.plugins_dir().join("versioned.wasm");
    let file = std::fs::File::options().write(true).open(&wasm).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    assert!(matches!(
        runtime.reload_path(&wasm).await,
        Some(PluginEvent::Loaded { .. })
    ));
    assert_eq!(counts(&runtime.cache_stats()), (1, 0, 1));

    // Same size, same mtime, different content: the hash catches it.
    let v2 = std::fs::read(test_plugin::versioned_v2()).unwrap();
    let v1 = std::fs::read(&wasm).unwrap();
    if v1.len() == v2.len() {
        let modified = std::fs::metadata(&wasm).unwrap().modified().unwrap();
        std::fs::write(&wasm, &v2).unwrap();
        let file = std::fs::File::options().write(true).open(&wasm).unwrap();
        file.set_modified(modified).unwrap();
        drop(file);
        runtime.reload_path(&wasm).await;
        assert_eq!(version(&runtime).await.unwrap(), "v2");
    }
}

async fn next_event(events: &mut tokio::sync::broadcast::Receiver<PluginEvent>) -> PluginEvent {
    tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("the watcher reported nothing within 20 s")
        .expect("event channel open")
}

pub fn replace_by_rename(target: &Path, bytes: &[u8]) {
    let tmp = target.with_file_name(".incoming.wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, target).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_versions_without_failing_a_call() {
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let runtime = harness.runtime().await;
    let mut events = runtime.subscribe();
    let _watcher = runtime.watch().unwrap();
    let wasm = harness.plugins_dir().join("versioned.wasm");
    let v1 = std::fs::read(&wasm).unwrap();
    let v2 = std::fs::read(test_plugin::versioned_v2()).unwrap();

    // Calls keep running on another task through every swap; it publishes
    // the versions it has seen so far.
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(Vec::<String>::new());
    let caller = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                match version(&runtime).await {
                    Ok(v) => {
                        if seen.last() != Some(&v) {
                            seen.push(v.clone());
                            let _ = seen_tx.send(seen.clone());
                        }
                        if seen.len() >= 3 {
                            return Ok(seen);
                        }
                    }
                    Err(err) => return Err(err.to_string()),
                }
                tokio::task::yield_now().await;
            }
        })
    };

    // Write-then-rename into place.
    replace_by_rename(&wasm, &v2);
    assert!(matches!(
        next_event(&mut events).await,
        PluginEvent::Loaded { .. }
    ));
    // Revert only once a call has been answered by v2, so a busy machine
    // cannot swap back before the caller gets a turn.
    tokio::time::timeout(
        Duration::from_secs(20),
        seen_rx.wait_for(|seen| seen.iter().any(|v| v == "v2")),
    )
    .await
    .expect("no call was answered by v2 within 20 s")
    .unwrap();
    // In-place overwrite back to v1 (a revert: answered from the cache).
    std::fs::write(&wasm, &v1).unwrap();
    loop {
        if let PluginEvent::Loaded { content_hash, .. } = next_event(&mut events).await
            && content_hash == blake3_hex(&v1)
        {
            break;
        }
    }
    let seen = tokio::time::timeout(Duration::from_secs(20), caller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        seen,
        Ok(vec!["v1".to_string(), "v2".to_string(), "v1".to_string()])
    );
}

fn blake3_hex(bytes: &[u8]) -> String {
    agent_host_runtime::cache::content_hash(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_update_keeps_the_old_version_and_a_delete_unregisters() {
    let harness = Harness::new();
    harness.install(test_plugin::versioned());
    let runtime = harness.runtime().await;
    let mut events = runtime.subscribe();
    let _watcher = runtime.watch().unwrap();
    let wasm = harness.plugins_dir().join("versioned.wasm");

    replace_by_rename(&wasm, b"\0asm\x0d\0\x01\0garbage that does not compile");
    match next_event(&mut events).await {
        PluginEvent::Failed { error, .. } => assert!(error.contains("compile"), "{error}"),
        other => panic!("expected a failed update, got {other:?}"),
    }
    assert_eq!(
        version(&runtime).await.unwrap(),
        "v1",
        "the old version keeps serving"
    );
    assert!(runtime.problems().iter().any(|p| p.path == wasm));

    std::fs::remove_file(&wasm).unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        PluginEvent::Removed { .. }
    ));
    assert!(matches!(
        version(&runtime).await,
        Err(CallError::UnknownTool { .. })
    ));
    assert!(runtime.problems().is_empty(), "{:?}", runtime.problems());
}
