//! Counters summed over every run (cache and extension hooks), kept in the meta tree for `agent-host stats`.

use super::DataStore;
use super::db::backend;
use super::records::CACHE_TOTALS_KEY;
use crate::error::StoreError;

/// Key of the hook counters in the meta tree.
const HOOK_TOTALS_KEY: &str = "hook-totals";

impl DataStore {
    /// Cache counters summed over every run.
    pub fn cache_totals(&self) -> crate::cache::CacheStatsSnapshot {
        self.meta_json(CACHE_TOTALS_KEY).unwrap_or_default()
    }

    /// Replaces the cache counters summed over every run.
    pub fn put_cache_totals(
        &self,
        totals: &crate::cache::CacheStatsSnapshot,
    ) -> Result<(), StoreError> {
        self.put_meta_json(CACHE_TOTALS_KEY, totals)
    }

    /// Hook counters summed over every run.
    pub fn hook_totals(&self) -> Vec<crate::hooks::HookStatsRow> {
        self.meta_json(HOOK_TOTALS_KEY).unwrap_or_default()
    }

    /// Replaces the hook counters summed over every run.
    pub fn put_hook_totals(&self, totals: &[crate::hooks::HookStatsRow]) -> Result<(), StoreError> {
        self.put_meta_json(HOOK_TOTALS_KEY, totals)
    }

    /// A JSON value of the meta tree; `None` when missing or unreadable
    /// (counters start again from zero rather than fail a run).
    fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.db.get_or_warn("counters")?.meta.get(key).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    fn put_meta_json<T: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.db.get()?.meta.insert(key, bytes).map_err(backend)?;
        Ok(())
    }
}
