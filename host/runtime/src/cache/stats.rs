//! Cache counters: hits and misses per level, evictions, compile time spent and saved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The live counters of one cache, updated without locks.
#[derive(Debug, Default)]
pub struct CacheStats {
    memory_hits: AtomicU64,
    memory_misses: AtomicU64,
    disk_hits: AtomicU64,
    disk_misses: AtomicU64,
    compiles: AtomicU64,
    evictions: AtomicU64,
    compile_ns: AtomicU64,
    saved_ns: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl CacheStats {
    /// Counts a memory hit that saved `saved` of compiling.
    pub fn memory_hit(&self, saved: Duration) {
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
        self.saved_ns.fetch_add(nanos(saved), Ordering::Relaxed);
    }
    /// Counts a memory miss.
    pub fn memory_miss(&self) {
        self.memory_misses.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a disk hit that saved `saved` of compiling.
    pub fn disk_hit(&self, saved: Duration) {
        self.disk_hits.fetch_add(1, Ordering::Relaxed);
        self.saved_ns.fetch_add(nanos(saved), Ordering::Relaxed);
    }
    /// Counts a disk miss.
    pub fn disk_miss(&self) {
        self.disk_misses.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a compilation that took `took`.
    pub fn compiled(&self, took: Duration) {
        self.compiles.fetch_add(1, Ordering::Relaxed);
        self.compile_ns.fetch_add(nanos(took), Ordering::Relaxed);
    }
    /// Counts `count` memory evictions.
    pub fn evicted(&self, count: u64) {
        self.evictions.fetch_add(count, Ordering::Relaxed);
    }

    /// The counters now, with the sizes the caller measured (`disk` is entries and bytes).
    pub fn snapshot(
        &self,
        memory_entries: usize,
        memory_bytes: u64,
        disk: (usize, u64),
    ) -> CacheStatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStatsSnapshot {
            memory_entries,
            memory_bytes,
            disk_entries: disk.0,
            disk_bytes: disk.1,
            memory_hits: get(&self.memory_hits),
            memory_misses: get(&self.memory_misses),
            disk_hits: get(&self.disk_hits),
            disk_misses: get(&self.disk_misses),
            compiles: get(&self.compiles),
            evictions: get(&self.evictions),
            compile_ms: get(&self.compile_ns) as f64 / 1e6,
            saved_ms: get(&self.saved_ns) as f64 / 1e6,
        }
    }
}

/// A point-in-time copy of the counters plus current sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStatsSnapshot {
    /// Components held in memory.
    pub memory_entries: usize,
    /// Approximate bytes of compiled code held in memory.
    pub memory_bytes: u64,
    /// Artifacts on disk.
    pub disk_entries: usize,
    /// Bytes of artifacts on disk.
    pub disk_bytes: u64,
    /// Lookups answered from memory.
    pub memory_hits: u64,
    /// Lookups memory could not answer.
    pub memory_misses: u64,
    /// Lookups answered from disk.
    pub disk_hits: u64,
    /// Lookups disk could not answer.
    pub disk_misses: u64,
    /// Real compilations.
    pub compiles: u64,
    /// Components dropped from memory to stay within its bounds.
    pub evictions: u64,
    /// Time spent compiling.
    pub compile_ms: f64,
    /// Compile time avoided by hits (each hit saves what its compile cost).
    pub saved_ms: f64,
}

impl CacheStatsSnapshot {
    /// Fraction of lookups answered without compiling.
    pub fn hit_rate(&self) -> f64 {
        let hits = self.memory_hits + self.disk_hits;
        let lookups = hits + self.compiles;
        if lookups == 0 {
            0.0
        } else {
            hits as f64 / lookups as f64
        }
    }

    /// Whether no counter moved (sizes aside).
    pub fn counts_nothing(&self) -> bool {
        self.memory_hits == 0
            && self.memory_misses == 0
            && self.disk_hits == 0
            && self.disk_misses == 0
            && self.compiles == 0
            && self.evictions == 0
    }

    /// Counters gained since `earlier` (sizes are the current ones).
    pub fn since(&self, earlier: &CacheStatsSnapshot) -> CacheStatsSnapshot {
        CacheStatsSnapshot {
            memory_hits: self.memory_hits - earlier.memory_hits,
            memory_misses: self.memory_misses - earlier.memory_misses,
            disk_hits: self.disk_hits - earlier.disk_hits,
            disk_misses: self.disk_misses - earlier.disk_misses,
            compiles: self.compiles - earlier.compiles,
            evictions: self.evictions - earlier.evictions,
            compile_ms: self.compile_ms - earlier.compile_ms,
            saved_ms: self.saved_ms - earlier.saved_ms,
            ..self.clone()
        }
    }

    /// Adds another run's counters (sizes are taken from `other`).
    pub fn accumulate(&mut self, other: &CacheStatsSnapshot) {
        self.memory_entries = other.memory_entries;
        self.memory_bytes = other.memory_bytes;
        self.disk_entries = other.disk_entries;
        self.disk_bytes = other.disk_bytes;
        self.memory_hits += other.memory_hits;
        self.memory_misses += other.memory_misses;
        self.disk_hits += other.disk_hits;
        self.disk_misses += other.disk_misses;
        self.compiles += other.compiles;
        self.evictions += other.evictions;
        self.compile_ms += other.compile_ms;
        self.saved_ms += other.saved_ms;
    }
}
