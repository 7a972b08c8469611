//! Unit tests of sessions over a second, in-memory [`SessionStore`]: the agent needs nothing of sled, and the writer batches by count and by interval.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host_llm::{Message, Usage};
use agent_host_runtime::StoreError;
use agent_host_runtime::store::{SessionStore, SessionWrite};

use super::{Sessions, WriterConfig};

#[derive(Debug, Default)]
struct Memory {
    records: HashMap<String, Vec<u8>>,
    messages: BTreeMap<(String, u64), Vec<u8>>,
    /// The size of every batch applied, in order.
    batches: Vec<usize>,
    flushes: usize,
}

/// A backend in a map, as simple as the contract allows.
#[derive(Debug, Default)]
struct MemoryStore(Mutex<Memory>);

impl MemoryStore {
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.0.lock().unwrap()
    }
}

impl SessionStore for MemoryStore {
    fn apply(&self, writes: &[SessionWrite]) -> Result<(), StoreError> {
        let mut memory = self.memory();
        for write in writes {
            match write {
                SessionWrite::PutRecord { session, record } => {
                    memory.records.insert(session.clone(), record.clone());
                }
                SessionWrite::PutMessage {
                    session,
                    seq,
                    message,
                } => {
                    memory
                        .messages
                        .insert((session.clone(), *seq), message.clone());
                }
                SessionWrite::Delete { session } => {
                    memory.records.remove(session);
                    memory.messages.retain(|(owner, _), _| owner != session);
                }
            }
        }
        memory.batches.push(writes.len());
        Ok(())
    }

    fn record(&self, session: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.memory().records.get(session).cloned())
    }

    fn records(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.memory().records.values().cloned().collect())
    }

    fn messages(&self, session: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .memory()
            .messages
            .iter()
            .filter(|((owner, _), _)| owner == session)
            .map(|(_, body)| body.clone())
            .collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.memory().flushes += 1;
        Ok(())
    }
}

#[tokio::test]
async fn another_backend_serves_sessions_and_gets_batches_by_count() {
    let backend = Arc::new(MemoryStore::default());
    let config = WriterConfig {
        batch_size: 10,
        interval: Duration::from_secs(3600),
    };
    let sessions = Sessions::with_backend(backend.clone(), config);
    let mut record = sessions.create("elsewhere", "test", "model");
    for i in 0..19 {
        sessions.append(
            &mut record,
            &[Message::user(format!("m{i}"))],
            Usage::default(),
            None,
        );
    }
    sessions.flush().await;
    // 1 record, then 19 messages each followed by its record update.
    assert_eq!(backend.memory().batches, vec![10, 10, 10, 9]);
    assert_eq!(backend.memory().flushes, 1);
    assert_eq!(sessions.stats().operations, 39);

    // A fresh handle reads it all back from the backend alone.
    let reopened = Sessions::with_backend(backend.clone(), config);
    let stored = reopened.get(&record.id).unwrap();
    assert_eq!(stored.message_count, 19);
    let messages = reopened.messages(&record.id);
    assert_eq!(messages.len(), 19);
    assert_eq!(messages[18].content, "m18");
    assert_eq!(reopened.list().len(), 1);

    assert!(reopened.delete(&record.id));
    reopened.close().await;
    assert!(backend.memory().records.is_empty());
    assert!(backend.memory().messages.is_empty());
    sessions.close().await;
}

#[tokio::test]
async fn a_partial_batch_is_applied_and_flushed_after_the_interval() {
    let backend = Arc::new(MemoryStore::default());
    let sessions = Sessions::with_backend(
        backend.clone(),
        WriterConfig {
            batch_size: 1000,
            interval: Duration::from_millis(20),
        },
    );
    let record = sessions.create("tick", "test", "model");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Nobody flushed: the interval did.
    assert_eq!(backend.memory().batches, vec![1]);
    assert_eq!(backend.memory().flushes, 1);
    assert!(backend.record(&record.id).unwrap().is_some());
    sessions.close().await;
}
