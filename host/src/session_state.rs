//! Per-session plugin state, loaded from the store once per (plugin, session) and kept in memory while live.
//!
//! Reads are served from memory; writes go to memory and through to the
//! store, so a session's state is scanned once, not on every message.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::store::{PluginKv, Store};

/// One plugin's state in one session.
pub struct SessionState {
    values: Mutex<BTreeMap<String, Vec<u8>>>,
    backing: PluginKv,
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState").finish_non_exhaustive()
    }
}

impl SessionState {
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Writes through to the store first (which checks the limits), so
    /// memory never holds what the store refused.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.backing.set(key, value)?;
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    pub fn delete(&self, key: &str) -> bool {
        let existed = self
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .is_some();
        if existed && let Err(err) = self.backing.delete(key) {
            tracing::error!("session state delete failed: {err}");
        }
        existed
    }

    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// The live per-session states, bounded (least recently used dropped; they
/// reload from the store on next use).
pub struct SessionStates {
    store: Store,
    live: Mutex<LruCache<(String, String), Arc<SessionState>>>,
    loads: AtomicU64,
}

impl std::fmt::Debug for SessionStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStates").finish_non_exhaustive()
    }
}

impl SessionStates {
    pub fn new(store: &Store, capacity: usize) -> Self {
        Self {
            store: store.clone(),
            live: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            loads: AtomicU64::new(0),
        }
    }

    /// How many times a state was read from the store.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The state of `plugin` in `session`, loading it on first use.
    pub fn state(&self, plugin: &str, session: &str) -> Arc<SessionState> {
        let key = (plugin.to_owned(), session.to_owned());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = live.get(&key) {
            return state.clone();
        }
        let backing = self.store.session_kv(plugin, session);
        let mut values = BTreeMap::new();
        for key in backing.list("").unwrap_or_default() {
            if let Ok(Some(value)) = backing.get(&key) {
                values.insert(key, value);
            }
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(SessionState {
            values: Mutex::new(values),
            backing,
        });
        live.put(key, state.clone());
        state
    }
}
