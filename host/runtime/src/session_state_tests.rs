//! Unit tests of per-session plugin state: the session quota, the shared memory budget, spilling to the store.

use super::SessionStates;
use crate::config::QuotaConfig;
use crate::store::DataStore;

fn store(tmp: &tempfile::TempDir, quotas: QuotaConfig) -> DataStore {
    DataStore::open(tmp.path()).unwrap().with_quotas(&quotas)
}

#[test]
fn one_session_is_refused_at_its_quota_and_memory_follows_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let quotas = QuotaConfig {
        session_max_mb: 1,
        session_max_keys: 1000,
        ..QuotaConfig::default()
    };
    let states = SessionStates::new(&store(&tmp, quotas), 16);
    let state = states.state("p", "s");
    let value = vec![7u8; 100 * 1024];
    let mut stored = 0;
    let mut first_error = None;
    for i in 0..900 {
        match state.set(&format!("k{i:03}"), &value) {
            Ok(()) => stored += 1,
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    assert_eq!(stored, 10);
    let err = first_error.unwrap();
    assert!(
        err.contains("session state quota") && err.contains("quotas.session_max_mb"),
        "{err}"
    );
    // Memory holds exactly what the store accepted.
    assert_eq!(states.resident_bytes(), 10 * (4 + 100 * 1024));
    assert!(state.delete("k000"));
    assert!(state.set("again", &value).is_ok());
    assert_eq!(state.list("k").len(), 9);
}

#[test]
fn live_states_share_one_memory_budget_and_spill_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let quotas = QuotaConfig {
        session_max_mb: 1,
        session_memory_mb: 2,
        ..QuotaConfig::default()
    };
    let store = store(&tmp, quotas);
    let states = SessionStates::new(&store, 64);
    let value = vec![1u8; 200 * 1024];
    let mut held = Vec::new();
    for session in 0..8 {
        let state = states.state("p", &format!("s{session}"));
        for i in 0..4 {
            state.set(&format!("k{i}"), &value).unwrap();
        }
        held.push(state);
    }
    // Eight sessions of 800 KiB each: only what fits in 2 MiB is in
    // memory, the rest is served from the store, and every value reads
    // back whichever way it is held.
    assert!(
        states.resident_bytes() <= 2 << 20,
        "{}",
        states.resident_bytes()
    );
    assert!(held.iter().any(|state| state.is_spilled()));
    for state in &held {
        assert_eq!(state.get("k3").as_deref(), Some(&value[..]));
        assert_eq!(state.list("k").len(), 4);
    }
    let spilled = held.iter().find(|state| state.is_spilled()).unwrap();
    assert!(spilled.delete("k0"));
    assert_eq!(spilled.get("k0"), None);
    // Dropped states give their memory back.
    drop(held);
    drop(states);
    let states = SessionStates::new(&store, 64);
    let state = states.state("p", "s0");
    assert!(!state.is_spilled());
    assert_eq!(states.resident_bytes(), 4 * (2 + 200 * 1024));
}

#[test]
fn a_reloaded_state_over_the_budget_is_not_kept_in_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(
        &tmp,
        QuotaConfig {
            session_memory_mb: 1,
            ..QuotaConfig::default()
        },
    );
    {
        let backing = store.session_kv("p", "big");
        for i in 0..3 {
            backing
                .set(&format!("k{i}"), &vec![0u8; 512 * 1024])
                .unwrap();
        }
    }
    let states = SessionStates::new(&store, 4);
    let state = states.state("p", "big");
    assert!(state.is_spilled());
    assert_eq!(states.resident_bytes(), 0);
    assert_eq!(state.list("").len(), 3);
}
