//! Compiled-component cache: memory LRU in front of serialized artifacts on disk, so each plugin version compiles once, ever.
//!
//! Lookup order: memory (by content hash, found through the file key
//! `(canonical path, mtime, size)` or by hashing the bytes) -> disk artifact
//! (verified against the integrity hash recorded in the store, then
//! deserialized from the file so wasmtime can map it) -> compile, then write
//! the artifact and remember it.

mod disk;
mod memory;
mod stats;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

pub use disk::{DiskCache, Verified, file_identity, identity_of};
pub use memory::{FileKey, MemoryCache};
pub use stats::{CacheStats, CacheStatsSnapshot};

use crate::config::CacheConfig;
use crate::error::CacheError;
use crate::store::DataStore;

/// The content hash used as the cache key: blake3 of the file, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLevel {
    /// Found compiled in memory.
    Memory,
    /// Deserialized from a verified artifact on disk.
    Disk,
    /// Compiled now.
    Compiled,
}

/// The compiled-component cache of one engine.
pub struct ComponentCache {
    engine: Engine,
    memory: Mutex<MemoryCache>,
    disk: DiskCache,
    /// Shared by the caches of both tiers: one set of counters per runtime.
    stats: std::sync::Arc<CacheStats>,
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache").finish_non_exhaustive()
    }
}

/// A component with its content hash.
#[derive(Clone)]
pub struct Compiled {
    /// The compiled component.
    pub component: Component,
    /// blake3 of its bytes, hex.
    pub content_hash: String,
    /// Which level served it.
    pub level: CacheLevel,
    /// Time spent compiling (zero when it came from a cache).
    pub compile_time: Duration,
}

impl ComponentCache {
    /// The cache of `engine`: an empty memory level in front of the disk level in the data dir.
    pub fn new(
        engine: &Engine,
        store: &DataStore,
        config: &CacheConfig,
        stats: std::sync::Arc<CacheStats>,
    ) -> Result<Self, CacheError> {
        let disk =
            DiskCache::open(engine, store, config.disk_mb << 20).map_err(CacheError::Disk)?;
        Ok(Self {
            engine: engine.clone(),
            memory: Mutex::new(MemoryCache::new(
                config.memory_entries,
                config.memory_mb << 20,
            )),
            disk,
            stats,
        })
    }

    /// The counters, with the current sizes of both levels.
    pub fn stats(&self) -> CacheStatsSnapshot {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        self.stats
            .snapshot(memory.len(), memory.bytes(), self.disk.usage())
    }

    /// The counters alone (sizes left at zero): reads no record.
    pub fn counters(&self) -> CacheStatsSnapshot {
        self.stats.snapshot(0, 0, (0, 0))
    }

    /// The on-disk level.
    pub fn disk(&self) -> &DiskCache {
        &self.disk
    }

    /// Empties both levels.
    pub fn clear(&self) -> Result<(), CacheError> {
        self.memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.disk.clear().map_err(CacheError::Disk)
    }

    /// The compiled component for the file at `path` whose bytes are `bytes`.
    /// `on_compile` is called just before a real compilation starts (for a
    /// progress display).
    /// `content_hash` is the blake3 of `bytes`, computed by the caller.
    pub fn get_or_compile(
        &self,
        path: &Path,
        bytes: &[u8],
        content_hash: &str,
        on_compile: &dyn Fn(),
    ) -> Result<Compiled, CacheError> {
        let key = FileKey::of(path)?;
        {
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            // The file key finds what this path held last time; the content
            // hash confirms it. A rewrite within the same mtime changes the
            // hash (a miss), a touch without a change keeps it (a hit).
            let known = memory.hash_for_key(&key).is_some_and(|h| h == content_hash);
            if let Some((component, compile_time)) = memory.get(content_hash) {
                memory.remember_key(key, content_hash);
                self.stats.memory_hit(compile_time);
                tracing::trace!(path = %path.display(), by_key = known, "memory cache hit");
                return Ok(Compiled {
                    component,
                    content_hash: content_hash.to_owned(),
                    level: CacheLevel::Memory,
                    compile_time: Duration::ZERO,
                });
            }
            memory.remember_key(key, content_hash);
        }
        self.stats.memory_miss();
        let content_hash = content_hash.to_owned();

        if let Some((component, saved)) = self.disk.load(&content_hash) {
            self.stats.disk_hit(saved);
            self.memory_insert(&content_hash, &component, saved);
            return Ok(Compiled {
                component,
                content_hash,
                level: CacheLevel::Disk,
                compile_time: Duration::ZERO,
            });
        }
        self.stats.disk_miss();

        on_compile();
        let started = Instant::now();
        let compile_error = |err: wasmtime::Error| CacheError::Compile {
            message: format!("{err:#}"),
        };
        let artifact = self
            .engine
            .precompile_component(bytes)
            .map_err(compile_error)?;
        let compile_time = started.elapsed();
        self.stats.compiled(compile_time);
        let component = match self
            .disk
            .save_and_map(&content_hash, &artifact, compile_time)
        {
            Ok(component) => component,
            Err(err) => {
                tracing::warn!(
                    "cannot write the compiled artifact for {}: {err}",
                    path.display()
                );
                // SAFETY: this engine produced these bytes just now.
                unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(compile_error)?
            }
        };
        self.memory_insert(&content_hash, &component, compile_time);
        Ok(Compiled {
            component,
            content_hash,
            level: CacheLevel::Compiled,
            compile_time,
        })
    }

    /// The compiled component for a content hash if either level has it;
    /// never compiles.
    pub fn get_cached(&self, content_hash: &str) -> Option<Compiled> {
        let from_memory = self
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(content_hash);
        if let Some((component, saved)) = from_memory {
            self.stats.memory_hit(saved);
            return Some(Compiled {
                component,
                content_hash: content_hash.to_owned(),
                level: CacheLevel::Memory,
                compile_time: Duration::ZERO,
            });
        }
        let (component, saved) = self.disk.load(content_hash)?;
        self.stats.memory_miss();
        self.stats.disk_hit(saved);
        self.memory_insert(content_hash, &component, saved);
        Some(Compiled {
            component,
            content_hash: content_hash.to_owned(),
            level: CacheLevel::Disk,
            compile_time: Duration::ZERO,
        })
    }

    fn memory_insert(&self, hash: &str, component: &Component, compile_time: Duration) {
        let range = component.image_range();
        let bytes = (range.end as usize).saturating_sub(range.start as usize);
        let evicted = self
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash, component.clone(), bytes, compile_time);
        self.stats.evicted(evicted);
    }
}
