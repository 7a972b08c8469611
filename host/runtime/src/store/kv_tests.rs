//! Unit tests of plugin and session key-value state: namespaces, byte and key quotas, the usage record, bounded lists.

use super::super::DataStore;
use super::*;

#[test]
fn plugin_state_is_namespaced_and_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path()).unwrap();
    let a = store.plugin_kv("a");
    let b = store.plugin_kv("b");
    a.set("k1", b"one").unwrap();
    a.set("k2", b"two").unwrap();
    b.set("k1", b"other").unwrap();
    assert_eq!(a.get("k1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(b.get("k1").unwrap().as_deref(), Some(&b"other"[..]));
    assert_eq!(a.list("k").unwrap(), vec!["k1", "k2"]);
    assert!(a.delete("k1").unwrap());
    assert!(!a.delete("k1").unwrap());
    assert!(a.set("", b"x").is_err());
    assert!(a.set(&"x".repeat(MAX_KEY_BYTES + 1), b"x").is_err());
    assert!(
        a.set("big", &vec![0; MAX_VALUE_BYTES + 1])
            .unwrap_err()
            .contains("at most")
    );
}

fn quotas(kv_max_mb: u64, kv_max_keys: u64) -> QuotaConfig {
    QuotaConfig {
        kv_max_mb,
        kv_max_keys,
        ..QuotaConfig::default()
    }
}

/// Usage by a full scan, to check the record against.
fn scanned(kv: &PluginKv) -> StateUsage {
    let mut usage = StateUsage::default();
    for entry in kv.entries() {
        let (key, value) = entry.unwrap();
        usage.bytes += entry_size(key.len(), value.len());
        usage.keys += 1;
    }
    usage
}

#[test]
fn the_byte_quota_refuses_and_deletes_and_overwrites_free_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path())
        .unwrap()
        .with_quotas(&quotas(1, 1000));
    let kv = store.plugin_kv("p");
    let value = vec![0u8; 300 * 1024];
    for i in 0..3 {
        kv.set(&format!("k{i}"), &value).unwrap();
    }
    let err = kv.set("k3", &value).unwrap_err();
    assert!(
        err.contains("key-value state quota exceeded")
            && err.contains("1048576 bytes")
            && err.contains("quotas.kv_max_mb"),
        "{err}"
    );
    assert_eq!(kv.get("k3").unwrap(), None);
    assert_eq!(kv.usage().unwrap(), scanned(&kv));
    assert_eq!(kv.usage().unwrap().keys, 3);
    // Overwriting with a smaller value frees room; so does a delete.
    kv.set("k0", b"small").unwrap();
    kv.set("k3", &value[..200 * 1024]).unwrap();
    assert!(kv.delete("k1").unwrap());
    kv.set("k4", &value).unwrap();
    assert_eq!(kv.usage().unwrap(), scanned(&kv));
    // Another plugin has its own quota.
    store.plugin_kv("q").set("k", &value).unwrap();
}

#[test]
fn the_key_quota_counts_new_keys_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path())
        .unwrap()
        .with_quotas(&quotas(64, 3));
    let kv = store.plugin_kv("p");
    for key in ["a", "b", "c"] {
        kv.set(key, b"v").unwrap();
    }
    let err = kv.set("d", b"v").unwrap_err();
    assert!(
        err.contains("already has 3 keys") && err.contains("quotas.kv_max_keys"),
        "{err}"
    );
    kv.set("a", b"overwrite is fine").unwrap();
    assert!(kv.delete("b").unwrap());
    kv.set("d", b"v").unwrap();
    assert_eq!(kv.usage().unwrap(), scanned(&kv));
}

#[test]
fn usage_survives_reopen_and_a_lost_record_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = DataStore::open(tmp.path()).unwrap();
        let kv = store.plugin_kv("p");
        kv.set("k1", b"one").unwrap();
        kv.set("k2", b"two!").unwrap();
        store.flush().unwrap();
    }
    let store = DataStore::open(tmp.path()).unwrap();
    let kv = store.plugin_kv("p");
    let usage = StateUsage {
        bytes: 2 + 3 + 2 + 4,
        keys: 2,
    };
    assert_eq!(kv.usage().unwrap(), usage);
    // A database from before quotas has no record: one scan rebuilds it.
    let tree = &store.db.get().unwrap().kv;
    tree.remove(&kv.inner.usage_key).unwrap();
    assert_eq!(kv.usage().unwrap(), usage);
    assert!(tree.get(&kv.inner.usage_key).unwrap().is_some());
    // The record is not one of the plugin's keys.
    assert_eq!(kv.list("").unwrap(), vec!["k1", "k2"]);
}

#[test]
fn concurrent_writers_of_one_plugin_cannot_overshoot() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path())
        .unwrap()
        .with_quotas(&quotas(1, 100_000));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let kv = store.plugin_kv("p");
            std::thread::spawn(move || {
                let value = vec![0u8; 16 * 1024];
                (0..40)
                    .filter(|i| kv.set(&format!("t{t}-{i}"), &value).is_ok())
                    .count()
            })
        })
        .collect();
    let stored: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let kv = store.plugin_kv("p");
    let usage = kv.usage().unwrap();
    assert_eq!(usage, scanned(&kv));
    assert_eq!(usage.keys as usize, stored);
    assert!(usage.bytes <= 1 << 20, "{usage:?}");
    assert!(usage.bytes + 16 * 1024 + 8 > 1 << 20, "{usage:?}");
}

#[test]
fn a_list_stops_at_its_key_and_byte_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DataStore::open(tmp.path())
        .unwrap()
        .with_quotas(&QuotaConfig {
            list_max_keys: 10,
            list_max_kb: 1,
            ..QuotaConfig::default()
        });
    let kv = store.plugin_kv("p");
    for i in 0..50 {
        kv.set(&format!("k{i:02}"), b"v").unwrap();
        kv.set(&format!("long{i:02}{}", "x".repeat(194)), b"v")
            .unwrap();
    }
    let keys = kv.list("k").unwrap();
    assert_eq!(keys.len(), 10);
    assert_eq!(keys[0], "k00");
    // 200-byte keys: the sixth would pass 1 KiB.
    assert_eq!(kv.list("long").unwrap().len(), 5);
    // A narrower prefix reaches the rest.
    assert_eq!(kv.list("k4").unwrap().len(), 10);
    assert_eq!(kv.list("k49").unwrap(), vec!["k49"]);
}

#[test]
fn state_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = DataStore::open(tmp.path()).unwrap();
        store.plugin_kv("p").set("k", b"v").unwrap();
        store.flush().unwrap();
    }
    let store = DataStore::open(tmp.path()).unwrap();
    assert_eq!(
        store.plugin_kv("p").get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
