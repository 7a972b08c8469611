//! Live sessions kept in memory: an LRU with a time-to-live, reloaded from the store when evicted or expired.
//!
//! A long-running host (a chat server, many users) keeps only the sessions in
//! use; memory stays bounded by `capacity` whatever the number of sessions in
//! the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use serde::Serialize;

use super::{SessionRecord, Sessions};
use agent_host_llm::{Message, Usage};

/// A session's record and full history, in memory.
#[derive(Debug)]
pub struct LiveSession {
    /// What is known about the session (updated by every append).
    pub record: SessionRecord,
    /// Every message of the session, in order.
    pub history: Vec<Message>,
}

struct Entry {
    session: Arc<tokio::sync::Mutex<LiveSession>>,
    last_used: Instant,
}

/// Counters of the live-session cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LiveStats {
    /// Gets served from memory.
    pub hits: u64,
    /// Gets that read the session from the store.
    pub loads: u64,
    /// Sessions dropped from memory to stay within the capacity.
    pub evictions: u64,
    /// Sessions dropped from memory after idling past the time-to-live.
    pub expirations: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    loads: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

/// The bounded set of sessions in memory.
pub struct LiveSessions {
    store: Arc<Sessions>,
    cache: Mutex<LruCache<String, Entry>>,
    ttl: Duration,
    counters: Counters,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LiveSessions {
    /// Keeps at most `capacity` sessions of `store` in memory, each for at
    /// most `ttl` after its last use.
    pub fn new(store: Arc<Sessions>, capacity: usize, ttl: Duration) -> Self {
        let capacity =
            std::num::NonZeroUsize::new(capacity.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            store,
            cache: Mutex::new(LruCache::new(capacity)),
            ttl,
            counters: Counters::default(),
        }
    }

    /// Sized and timed by the `[sessions]` config (`live_capacity`,
    /// `live_ttl_secs`).
    pub fn from_settings(store: Arc<Sessions>, settings: &crate::config::SessionSettings) -> Self {
        Self::new(
            store,
            settings.live_capacity,
            Duration::from_secs(settings.live_ttl_secs),
        )
    }

    /// The cache's counters so far.
    pub fn stats(&self) -> LiveStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LiveStats {
            hits: get(&self.counters.hits),
            loads: get(&self.counters.loads),
            evictions: get(&self.counters.evictions),
            expirations: get(&self.counters.expirations),
        }
    }

    /// The most sessions kept in memory.
    pub fn capacity(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cap()
            .get()
    }

    /// Sessions in memory now.
    pub fn len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no session is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cached(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<LiveSession>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get_mut(id)?;
        if entry.last_used.elapsed() > self.ttl {
            cache.pop(id);
            self.counters.expirations.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        entry.last_used = Instant::now();
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.session.clone())
    }

    fn insert(&self, id: &str, session: Arc<tokio::sync::Mutex<LiveSession>>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Entry {
            session,
            last_used: Instant::now(),
        };
        if let Some((evicted, _)) = cache.push(id.to_owned(), entry)
            && evicted != id
        {
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The live session `id`, loading it from the store if it is not in
    /// memory (or has expired). `None` when no such session exists.
    pub async fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<LiveSession>>> {
        if let Some(session) = self.cached(id) {
            return Some(session);
        }
        // Writes of this session may still be queued in the writer.
        self.store.flush().await;
        let record = self.store.get(id)?;
        let history = self.store.messages(id);
        self.counters.loads.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(tokio::sync::Mutex::new(LiveSession { record, history }));
        self.insert(id, session.clone());
        Some(session)
    }

    /// Starts a session and keeps it live.
    pub fn create(
        &self,
        title: &str,
        provider: &str,
        model: &str,
    ) -> Arc<tokio::sync::Mutex<LiveSession>> {
        self.create_with_system(title, provider, model, None)
    }

    /// Starts a session with its own system prompt and keeps it live.
    pub fn create_with_system(
        &self,
        title: &str,
        provider: &str,
        model: &str,
        system: Option<String>,
    ) -> Arc<tokio::sync::Mutex<LiveSession>> {
        let mut record = self.store.create(title, provider, model);
        if system.is_some() {
            self.store.set_system(&mut record, system);
        }
        let id = record.id.clone();
        let session = Arc::new(tokio::sync::Mutex::new(LiveSession {
            record,
            history: Vec::new(),
        }));
        self.insert(&id, session.clone());
        session
    }

    /// Drops `id` from memory (the stored copy is untouched); whether it
    /// was there.
    pub fn remove(&self, id: &str) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop(id)
            .is_some()
    }

    /// Appends to a live session's history and queues the write.
    pub fn append(
        &self,
        session: &mut LiveSession,
        messages: &[Message],
        usage: Usage,
        outcome: Option<&str>,
    ) {
        session.history.extend_from_slice(messages);
        self.store
            .append(&mut session.record, messages, usage, outcome);
    }
}
