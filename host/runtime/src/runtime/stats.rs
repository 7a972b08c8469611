//! Cache and hook counters of this process, their persisted totals, and clearing the cache.

use super::Runtime;
use crate::cache::CacheStatsSnapshot;
use crate::error::CacheError;
use crate::hooks::{HookStats, HookStatsRow};

impl Runtime {
    /// Counters of this process's cache use, with current sizes.
    pub fn cache_stats(&self) -> CacheStatsSnapshot {
        self.inner.cache.stats()
    }

    /// Counters summed over every run that saved them, including this one's
    /// saved so far.
    pub fn cache_totals(&self) -> CacheStatsSnapshot {
        self.inner.store.cache_totals()
    }

    /// Adds the counters gained since the last call to the persisted totals
    /// (sled writes them out in the background and on close). Also done
    /// when the last handle to the runtime goes, so a command that loads a
    /// plugin lazily (`tools call`) or compiles one (`plugins check`)
    /// counts in the "all runs" totals too.
    pub fn persist_cache_stats(&self) {
        self.inner.persist_cache_stats();
    }

    /// The best build a plugin version has: the one it runs, once prepared,
    /// else the best tier with an artifact on disk; `None`: it would
    /// compile on first use.
    pub fn best_tier(&self, plugin: &crate::loader::LoadedPlugin) -> Option<crate::Tier> {
        if let Some(tier) = plugin.tier() {
            return Some(tier);
        }
        if self.inner.cache.disk().has(&plugin.content_hash) {
            return Some(crate::Tier::Optimized);
        }
        self.inner
            .baseline
            .as_ref()
            .filter(|baseline| baseline.cache.disk().has(&plugin.content_hash))
            .map(|_| crate::Tier::Baseline)
    }

    /// Hashes every compiled artifact on disk against its record and deletes
    /// the ones that fail (loads trust an unchanged file identity; this
    /// finds what the identity cannot see). Returns (checked, deleted names).
    pub fn verify_cache(&self) -> (usize, Vec<String>) {
        self.inner.cache.disk().verify_all()
    }

    /// Empties the memory and disk caches and the persisted tool specs.
    pub fn clear_cache(&self) -> Result<(), CacheError> {
        if let Some(baseline) = &self.inner.baseline {
            baseline.cache.clear()?;
        }
        self.inner.cache.clear()
    }

    /// Counters of this process's hook calls.
    pub fn hook_stats(&self) -> &HookStats {
        &self.inner.hook_stats
    }

    /// Hook counters summed over every run that saved them.
    pub fn hook_totals(&self) -> Vec<HookStatsRow> {
        self.inner.store.hook_totals()
    }

    /// Adds the hook counters gained since the last call to the persisted
    /// totals.
    pub fn persist_hook_stats(&self) {
        let delta = self.inner.hook_stats.take_unpersisted();
        if delta.is_empty() {
            return;
        }
        let totals = crate::hooks::merge_rows(self.inner.store.hook_totals(), &delta);
        if let Err(err) = self.inner.store.put_hook_totals(&totals) {
            tracing::warn!("cannot save hook statistics: {err}");
        }
    }

    /// How many times per-session plugin state was read from the store
    /// (each (plugin, session) once while it stays live).
    pub fn session_state_loads(&self) -> u64 {
        self.inner.session_states.loads()
    }
}

impl super::Inner {
    pub(super) fn persist_cache_stats(&self) {
        let mut persisted = self.persisted.lock().unwrap_or_else(|e| e.into_inner());
        // A run that counted nothing (a `tools list` on a warm cache) writes
        // nothing, and so never opens the database for it.
        if self.cache.counters().since(&persisted).counts_nothing() {
            return;
        }
        let current = self.cache.stats();
        let mut totals = self.store.cache_totals();
        totals.accumulate(&current.since(&persisted));
        *persisted = current;
        if let Err(err) = self.store.put_cache_totals(&totals) {
            tracing::warn!("cannot save cache statistics: {err}");
        }
    }
}

impl Drop for super::Inner {
    fn drop(&mut self) {
        self.persist_cache_stats();
    }
}
