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

use crate::store::{DataStore, PluginKv};

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

    /// The value under `key`; a failed store read (of a spilled state) is
    /// logged and reads as missing.
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

    /// Removes `key` from the store and from memory; returns whether it
    /// existed (a failed store delete is logged and reads as `false`).
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
    store: DataStore,
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
    pub fn new(store: &DataStore, capacity: usize) -> Self {
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
#[path = "session_state_tests.rs"]
mod tests;
