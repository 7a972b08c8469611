//! The in-memory level: an LRU of compiled components by content hash, bounded by entries and bytes.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lru::LruCache;
use wasmtime::component::Component;

use crate::error::CacheError;

/// Identifies a file version cheaply: canonical path, mtime in ns, size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// The canonical path.
    pub path: PathBuf,
    /// Modification time in nanoseconds since the epoch (0 if unknown).
    pub mtime_ns: u128,
    /// Size in bytes.
    pub size: u64,
}

impl FileKey {
    /// The key of the file at `path` now.
    pub fn of(path: &Path) -> Result<Self, CacheError> {
        let path = path.canonicalize().map_err(|source| CacheError::File {
            action: "resolve",
            path: path.to_owned(),
            source,
        })?;
        let meta = std::fs::metadata(&path).map_err(|source| CacheError::File {
            action: "stat",
            path: path.clone(),
            source,
        })?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Self {
            path,
            mtime_ns,
            size: meta.len(),
        })
    }
}

struct Entry {
    component: Component,
    bytes: usize,
    compile_time: Duration,
}

/// Compiled components by content hash, least recently used evicted first.
pub struct MemoryCache {
    entries: LruCache<String, Entry>,
    max_bytes: u64,
    bytes: u64,
    keys: HashMap<PathBuf, (FileKey, String)>,
}

impl MemoryCache {
    /// An empty cache bounded by entries and approximate bytes of compiled code.
    pub fn new(max_entries: usize, max_bytes: u64) -> Self {
        let cap = NonZeroUsize::new(max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: LruCache::new(cap),
            max_bytes,
            bytes: 0,
            keys: HashMap::new(),
        }
    }

    /// Components held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate bytes of compiled code held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The content hash last seen for this exact file version.
    pub fn hash_for_key(&self, key: &FileKey) -> Option<&str> {
        self.keys
            .get(&key.path)
            .filter(|(known, _)| known == key)
            .map(|(_, hash)| hash.as_str())
    }

    /// Remembers that this file version has this content hash.
    pub fn remember_key(&mut self, key: FileKey, hash: &str) {
        self.keys.insert(key.path.clone(), (key, hash.to_owned()));
    }

    /// The component with this content hash and what compiling it cost, marking it recently used.
    pub fn get(&mut self, hash: &str) -> Option<(Component, Duration)> {
        self.entries
            .get(hash)
            .map(|entry| (entry.component.clone(), entry.compile_time))
    }

    /// Inserts and returns how many entries were evicted to make room.
    pub fn insert(
        &mut self,
        hash: &str,
        component: Component,
        bytes: usize,
        compile_time: Duration,
    ) -> u64 {
        let mut evicted = 0;
        if let Some(old) = self.entries.pop(hash) {
            self.bytes -= old.bytes as u64;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.entries.cap().get()
                || self.bytes + bytes as u64 > self.max_bytes)
        {
            if let Some((_, old)) = self.entries.pop_lru() {
                self.bytes -= old.bytes as u64;
                evicted += 1;
            }
        }
        self.bytes += bytes as u64;
        self.entries.put(
            hash.to_owned(),
            Entry {
                component,
                bytes,
                compile_time,
            },
        );
        let entries = &self.entries;
        self.keys.retain(|_, (_, hash)| entries.contains(hash));
        evicted
    }

    /// Drops every component and key.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.keys.clear();
        self.bytes = 0;
    }
}
