//! Per-session plugin state, loaded from the store once per (plugin, session) and kept in memory while live, within a memory budget.
//!
//! Reads are served from memory; writes go through to the store first (which
//! enforces the session quota), then to memory, so a session's state is
//! scanned once, not on every message. The values of all live states share
//! one memory budget (`quotas.session_memory_mb`): a state that does not fit
//! is "spilled", served from the store instead of memory while it stays
//! live. So what the host holds for session state is bounded by that budget,
//! whatever the number of live sessions and the per-session quota.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::store::{PluginKv, Store};

/// Bytes of session-state keys and values held in memory, shared by every
/// live state.
#[derive(Debug)]
struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    fn try_reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back bytes reserved before (never more).
    fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

fn size(key: &str, value: &[u8]) -> u64 {
    (key.len() as u64).saturating_add(value.len() as u64)
}

/// Where a live state's values are.
enum Cache {
    /// In memory, `bytes` of them reserved in the budget.
    Resident {
        values: BTreeMap<String, Vec<u8>>,
        bytes: u64,
    },
    /// Only in the store: the budget had no room for them.
    Spilled,
}

/// One plugin's state in one session.
pub struct SessionState {
    cache: Mutex<Cache>,
    backing: PluginKv,
    budget: Arc<MemoryBudget>,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState").finish_non_exhaustive()
    }
}

impl Drop for SessionState {
    fn drop(&mut self) {
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Cache::Resident { bytes, .. } = cache {
            self.budget.release(*bytes);
        }
    }
}

impl SessionState {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the values are served from the store instead of memory.
    pub fn is_spilled(&self) -> bool {
        matches!(*self.cache(), Cache::Spilled)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        match &*self.cache() {
            Cache::Resident { values, .. } => values.get(key).cloned(),
            Cache::Spilled => self.backing.get(key).unwrap_or_else(|err| {
                tracing::error!("session state read failed: {err}");
                None
            }),
        }
    }

    /// Writes through to the store first (which checks the limits and the
    /// session quota), so memory never holds what the store refused.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let mut cache = self.cache();
        self.backing.set(key, value)?;
        if let Cache::Resident { values, bytes } = &mut *cache {
            let new = size(key, value);
            let old = values.get(key).map_or(0, |old| size(key, old));
            if new > old && !self.budget.try_reserve(new - old) {
                // No room in memory: from now on this state is read from
                // the store, and its memory goes back to the budget.
                self.budget.release(*bytes);
                *cache = Cache::Spilled;
                tracing::debug!(
                    "session state memory budget reached; serving a state from the store"
                );
                return Ok(());
            }
            self.budget.release(old.saturating_sub(new));
            *bytes = bytes.saturating_sub(old).saturating_add(new);
            values.insert(key.to_owned(), value.to_vec());
        }
        Ok(())
    }

    pub fn delete(&self, key: &str) -> bool {
        let mut cache = self.cache();
        let existed = self.backing.delete(key).unwrap_or_else(|err| {
            tracing::error!("session state delete failed: {err}");
            false
        });
        if let Cache::Resident { values, bytes } = &mut *cache
            && let Some(old) = values.remove(key)
        {
            let freed = size(key, &old);
            self.budget.release(freed);
            *bytes = bytes.saturating_sub(freed);
        }
        existed
    }

    /// Keys that start with `prefix`, bounded like `kv-list`.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        match &*self.cache() {
            Cache::Resident { values, .. } => self.backing.bound_list(
                values
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .map(|(key, _)| key)
                    .take_while(|key| key.starts_with(prefix)),
            ),
            Cache::Spilled => self.backing.list(prefix).unwrap_or_else(|err| {
                tracing::error!("session state list failed: {err}");
                Vec::new()
            }),
        }
    }
}

/// The live per-session states, bounded (least recently used dropped; they
/// reload from the store on next use).
pub struct SessionStates {
    store: Store,
    live: Mutex<LruCache<(String, String), Arc<SessionState>>>,
    loads: AtomicU64,
    budget: Arc<MemoryBudget>,
}

impl std::fmt::Debug for SessionStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStates").finish_non_exhaustive()
    }
}

impl SessionStates {
    /// Keeps at most `capacity` states live, their values within the
    /// store's `quotas.session_memory_mb`.
    pub fn new(store: &Store, capacity: usize) -> Self {
        Self {
            store: store.clone(),
            live: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            loads: AtomicU64::new(0),
            budget: Arc::new(MemoryBudget {
                limit: store.quotas().session_memory_mb.saturating_mul(1 << 20),
                used: AtomicU64::new(0),
            }),
        }
    }

    /// How many times a state was read from the store.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// Bytes of session state held in memory now, over all live states.
    pub fn resident_bytes(&self) -> u64 {
        self.budget.used.load(Ordering::Acquire)
    }

    /// The state of `plugin` in `session`, loading it on first use.
    pub fn state(&self, plugin: &str, session: &str) -> Arc<SessionState> {
        let key = (plugin.to_owned(), session.to_owned());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = live.get(&key) {
            return state.clone();
        }
        let backing = self.store.session_kv(plugin, session);
        let cache = self.load(&backing);
        self.loads.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(SessionState {
            cache: Mutex::new(cache),
            backing,
            budget: self.budget.clone(),
        });
        live.put(key, state.clone());
        state
    }

    /// Reads a state into memory as far as the budget allows; a state that
    /// does not fit is left in the store (spilled) and nothing of it is kept.
    fn load(&self, backing: &PluginKv) -> Cache {
        let mut values = BTreeMap::new();
        let mut bytes = 0u64;
        for entry in backing.entries() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::error!("session state load failed: {err}");
                    continue;
                }
            };
            let entry_size = size(&key, &value);
            if !self.budget.try_reserve(entry_size) {
                self.budget.release(bytes);
                return Cache::Spilled;
            }
            bytes += entry_size;
            values.insert(key, value);
        }
        Cache::Resident { values, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuotaConfig;

    fn store(tmp: &tempfile::TempDir, quotas: QuotaConfig) -> Store {
        Store::open(tmp.path()).unwrap().with_quotas(&quotas)
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
}
