//! Session storage: the [`SessionStore`] trait the agent's sessions write through, and its sled backend.
//!
//! Sled layout, in the `sessions` tree: `s/<id>` holds a session's record
//! and `m/<id>/<seq as 8 big-endian bytes>` each of its messages, so a
//! prefix scan returns the messages in order.

use std::sync::Arc;

use super::db::{LazyDb, backend};
use crate::error::StoreError;

/// One change to the session storage. The bodies are opaque to the store:
/// the agent writes one JSON document per record and per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionWrite {
    /// Creates or replaces the record of a session.
    PutRecord {
        /// The session's id.
        session: String,
        /// The serialized record.
        record: Vec<u8>,
    },
    /// Stores message `seq` of a session, replacing one with the same `seq`.
    PutMessage {
        /// The session's id.
        session: String,
        /// Position in the session, from 0; messages read back in this order.
        seq: u64,
        /// The serialized message.
        message: Vec<u8>,
    },
    /// Removes a session's record and every message of it, including those
    /// written earlier in the same batch.
    Delete {
        /// The session's id.
        session: String,
    },
}

/// Where sessions live: records and ordered messages, written in atomic
/// batches by the agent's one writer task and read when a session is
/// listed, resumed or reloaded.
///
/// The contract a backend keeps, and what a second one (say Postgres,
/// shared by several hosts) needs for it:
/// - **Keys.** A session is named by its id (a string made by the agent);
///   its messages by `(id, seq)`. In SQL: `sessions(id text primary key,
///   record bytea)` and `messages(session text, seq bigint, body bytea,
///   primary key (session, seq))`. Ids must not collide across the hosts
///   sharing the database.
/// - **Ordering.** [`SessionStore::messages`] returns messages by ascending
///   `seq` (sled: big-endian keys; SQL: `order by seq`), whatever order the
///   writes arrived in. The agent numbers a session's messages itself, so
///   one session must have one writer at a time: a shared backend keeps
///   that (a lease per session, or a plain insert on `(session, seq)` so a
///   second writer's append fails instead of replacing a message).
/// - **Atomic batches.** [`SessionStore::apply`] applies every write of a
///   batch, in order, or none (one sled batch; one SQL transaction). The
///   agent queues a session's messages before the record that counts them,
///   so a stored record never counts more messages than are stored.
/// - **Durability.** What [`SessionStore::flush`] returns from survives a
///   crash; the writer calls it at every interval that wrote something, so
///   the loss on a crash is bounded by that interval. A backend whose
///   commits are already durable (a SQL transaction) can make it a no-op.
///
/// Every method blocks: the writer task calls `apply` and `flush` on
/// tokio's blocking pool, so a slow backend (a network round trip, an
/// fsync) never stalls the async runtime.
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Applies `writes` in order, all or none.
    fn apply(&self, writes: &[SessionWrite]) -> Result<(), StoreError>;

    /// The record of one session, if it exists.
    fn record(&self, session: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every session's record, in no particular order.
    fn records(&self) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The messages of one session by ascending `seq` (empty when it has
    /// none or does not exist).
    fn messages(&self, session: &str) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Makes everything applied so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

const RECORD_PREFIX: &[u8] = b"s/";

fn record_key(session: &str) -> Vec<u8> {
    let mut key = RECORD_PREFIX.to_vec();
    key.extend_from_slice(session.as_bytes());
    key
}

/// The prefix of a session's message keys; the closing `/` keeps session
/// `a` from covering the messages of session `ab`.
fn message_prefix(session: &str) -> Vec<u8> {
    format!("m/{session}/").into_bytes()
}

fn message_key(session: &str, seq: u64) -> Vec<u8> {
    let mut key = message_prefix(session);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The sessions tree of a sled database (opened by its first use).
#[derive(Clone)]
pub(super) struct SledSessions {
    db: Arc<LazyDb>,
}

impl std::fmt::Debug for SledSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledSessions").finish_non_exhaustive()
    }
}

impl SledSessions {
    pub(super) fn new(db: &Arc<LazyDb>) -> Self {
        Self { db: db.clone() }
    }

    fn tree(&self) -> Result<&sled::Tree, StoreError> {
        Ok(&self.db.get()?.sessions)
    }

    /// The sled batch doing `writes` in order. A sled batch is a set of
    /// final values per key, so the writes are folded into one map first:
    /// a delete then drops what the same batch put before it, and finds
    /// what is already stored by a scan.
    fn batch(&self, writes: &[SessionWrite]) -> Result<sled::Batch, StoreError> {
        use std::collections::BTreeMap;
        let mut changes: BTreeMap<Vec<u8>, Option<&[u8]>> = BTreeMap::new();
        for write in writes {
            match write {
                SessionWrite::PutRecord { session, record } => {
                    changes.insert(record_key(session), Some(record));
                }
                SessionWrite::PutMessage {
                    session,
                    seq,
                    message,
                } => {
                    changes.insert(message_key(session, *seq), Some(message));
                }
                SessionWrite::Delete { session } => {
                    let prefix = message_prefix(session);
                    changes.retain(|key, _| !key.starts_with(&prefix));
                    for key in self.tree()?.scan_prefix(&prefix).keys() {
                        changes.insert(key.map_err(backend)?.to_vec(), None);
                    }
                    changes.insert(record_key(session), None);
                }
            }
        }
        let mut batch = sled::Batch::default();
        for (key, value) in changes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        Ok(batch)
    }
}

impl SessionStore for SledSessions {
    fn apply(&self, writes: &[SessionWrite]) -> Result<(), StoreError> {
        let batch = self.batch(writes)?;
        self.tree()?.apply_batch(batch).map_err(backend)
    }

    fn record(&self, session: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let record = self.tree()?.get(record_key(session)).map_err(backend)?;
        Ok(record.map(|bytes| bytes.to_vec()))
    }

    fn records(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tree()?
            .scan_prefix(RECORD_PREFIX)
            .values()
            .map(|value| value.map(|bytes| bytes.to_vec()).map_err(backend))
            .collect()
    }

    fn messages(&self, session: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tree()?
            .scan_prefix(message_prefix(session))
            .values()
            .map(|value| value.map(|bytes| bytes.to_vec()).map_err(backend))
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.tree()?.flush().map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
