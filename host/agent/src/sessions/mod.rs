//! Persistent sessions: records and messages in the runtime's session store, written through one batching writer, and exports.
//!
//! Each [`SessionRecord`] and each [`Message`] is stored as one JSON
//! document through [`SessionStore`], messages numbered by their position in
//! the session; which database holds them is the store's business.

mod live;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use live::{LiveSession, LiveSessions, LiveStats};
pub use writer::{WriterConfig, WriterStats};

use agent_host_llm::{Message, Role, Usage};
use agent_host_runtime::store::{DataStore, SessionStore, SessionWrite};
use writer::Writer;

/// What is known about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Unique id: time, process and a per-process counter.
    pub id: String,
    /// The first prompt, cut to 80 characters.
    pub title: String,
    /// The provider the session talks to.
    pub provider: String,
    /// The model the session talks to.
    pub model: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    /// Unix milliseconds of the last append.
    pub updated_ms: u64,
    /// Input tokens summed over the session's turns.
    pub input_tokens: u64,
    /// Output tokens summed over the session's turns.
    pub output_tokens: u64,
    /// The session this one continues (compressed lineages).
    #[serde(default)]
    pub parent: Option<String>,
    /// Messages stored (or queued) so far; the next message's position.
    pub message_count: u64,
    /// How the last turn ended: finished, cancelled, turn_limit, failed: ...
    #[serde(default)]
    pub last_outcome: Option<String>,
    /// The session's own system prompt, replacing the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A new session id: time, process and a per-process counter, so ids made
/// in the same millisecond (by one process or two) never collide.
fn new_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{:x}-{n:x}", now.as_millis(), std::process::id())
}

/// A stored JSON document, or `None` (logged) when it does not parse: one
/// bad record must not hide the other sessions.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Option<T> {
    serde_json::from_slice(bytes)
        .inspect_err(|err| tracing::error!("unreadable {what} in the session store: {err}"))
        .ok()
}

/// What a failed session read returns, after logging it.
fn read_failed<T>(fallback: T) -> impl FnOnce(agent_host_runtime::StoreError) -> T {
    move |err| {
        tracing::error!("session store read failed: {err}");
        fallback
    }
}

/// Export formats of `sessions export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A header line with the session record, then one message per line.
    Jsonl,
    /// `{"id", "conversations": [{"from", "value"}]}` with human / gpt /
    /// function_call / observation turns.
    ShareGpt,
}

/// The sessions of a runtime's data dir (or of any [`SessionStore`]).
pub struct Sessions {
    backend: Arc<dyn SessionStore>,
    writer: Writer,
    /// Records changed by this process, so reads see writes still queued.
    touched: Mutex<HashMap<String, SessionRecord>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("writer", &self.writer.stats())
            .finish()
    }
}

impl Sessions {
    /// Opens the sessions of `store`'s data dir and starts their writer
    /// (needs a tokio runtime).
    pub fn open(store: &DataStore, config: WriterConfig) -> Self {
        Self::with_backend(store.session_store(), config)
    }

    /// The sessions kept in `backend`, written through a writer started
    /// now (needs a tokio runtime).
    pub fn with_backend(backend: Arc<dyn SessionStore>, config: WriterConfig) -> Self {
        Self {
            writer: Writer::start(backend.clone(), config),
            backend,
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a new session (queued; visible to `get` at once).
    pub fn create(&self, title: &str, provider: &str, model: &str) -> SessionRecord {
        let now = now_ms();
        let record = SessionRecord {
            id: new_id(),
            title: title.chars().take(80).collect(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            created_ms: now,
            updated_ms: now,
            input_tokens: 0,
            output_tokens: 0,
            parent: None,
            message_count: 0,
            last_outcome: None,
            system: None,
        };
        self.put_record(&record);
        record
    }

    /// Gives a session its own system prompt (`None`: the configured one).
    pub fn set_system(&self, record: &mut SessionRecord, system: Option<String>) {
        record.system = system;
        self.put_record(record);
    }

    /// Starts a session that continues `parent` (after context compression):
    /// the parent keeps its original messages, the lineage is recorded.
    pub fn create_child(&self, parent: &SessionRecord) -> SessionRecord {
        let mut record = self.create(&parent.title, &parent.provider, &parent.model);
        record.parent = Some(parent.id.clone());
        self.put_record(&record);
        record
    }

    fn put_record(&self, record: &SessionRecord) {
        self.writer.send(SessionWrite::PutRecord {
            session: record.id.clone(),
            record: serde_json::to_vec(record).unwrap_or_default(),
        });
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id.clone(), record.clone());
    }

    /// The record of session `id`, including changes still queued.
    pub fn get(&self, id: &str) -> Option<SessionRecord> {
        if let Some(record) = self
            .touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Some(record.clone());
        }
        let bytes = self.backend.record(id).unwrap_or_else(read_failed(None))?;
        decode(&bytes, "session record")
    }

    /// Every session, most recently updated first.
    pub fn list(&self) -> Vec<SessionRecord> {
        let mut records: HashMap<String, SessionRecord> = self
            .backend
            .records()
            .unwrap_or_else(read_failed(Vec::new()))
            .iter()
            .filter_map(|bytes| decode::<SessionRecord>(bytes, "session record"))
            .map(|record| (record.id.clone(), record))
            .collect();
        for (id, record) in self
            .touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            records.insert(id.clone(), record.clone());
        }
        let mut records: Vec<SessionRecord> = records.into_values().collect();
        records.sort_by_key(|record| std::cmp::Reverse(record.updated_ms));
        records
    }

    /// The stored messages of a session, in order (what has been written;
    /// call [`Sessions::flush`] first to include queued ones).
    pub fn messages(&self, id: &str) -> Vec<Message> {
        self.backend
            .messages(id)
            .unwrap_or_else(read_failed(Vec::new()))
            .iter()
            .filter_map(|bytes| decode(bytes, "session message"))
            .collect()
    }

    /// Queues messages for a session and updates its record.
    pub fn append(
        &self,
        record: &mut SessionRecord,
        messages: &[Message],
        usage: Usage,
        outcome: Option<&str>,
    ) {
        for message in messages {
            self.writer.send(SessionWrite::PutMessage {
                session: record.id.clone(),
                seq: record.message_count,
                message: serde_json::to_vec(message).unwrap_or_default(),
            });
            record.message_count += 1;
        }
        record.updated_ms = now_ms();
        record.input_tokens += usage.input_tokens;
        record.output_tokens += usage.output_tokens;
        if let Some(outcome) = outcome {
            record.last_outcome = Some(outcome.to_owned());
        }
        self.put_record(record);
    }

    /// Deletes a session and its messages; returns whether it existed.
    pub fn delete(&self, id: &str) -> bool {
        let existed = self.get(id).is_some();
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.writer.send(SessionWrite::Delete {
            session: id.to_owned(),
        });
        existed
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Writes everything queued and flushes it to disk.
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Flushes and stops the writer (clean exit).
    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// The session in an export format.
    pub fn export(&self, id: &str, format: ExportFormat) -> Option<String> {
        let record = self.get(id)?;
        let messages = self.messages(id);
        Some(match format {
            ExportFormat::Jsonl => {
                let mut out = serde_json::to_string(&serde_json::json!({ "session": record }))
                    .unwrap_or_default();
                for message in &messages {
                    out.push('\n');
                    out.push_str(&serde_json::to_string(message).unwrap_or_default());
                }
                out.push('\n');
                out
            }
            ExportFormat::ShareGpt => {
                let mut turns = Vec::new();
                for message in &messages {
                    match message.role {
                        Role::User => turns
                            .push(serde_json::json!({"from": "human", "value": message.content})),
                        Role::Assistant => {
                            if !message.content.is_empty() {
                                turns.push(
                                    serde_json::json!({"from": "gpt", "value": message.content}),
                                );
                            }
                            for call in &message.tool_calls {
                                let arguments: serde_json::Value = serde_json::from_str(
                                    &call.arguments,
                                )
                                .unwrap_or(serde_json::Value::String(call.arguments.clone()));
                                let value =
                                    serde_json::json!({"name": call.name, "arguments": arguments})
                                        .to_string();
                                turns.push(
                                    serde_json::json!({"from": "function_call", "value": value}),
                                );
                            }
                        }
                        Role::Tool => turns.push(
                            serde_json::json!({"from": "observation", "value": message.content}),
                        ),
                    }
                }
                let mut out = serde_json::to_string_pretty(&serde_json::json!({
                    "id": record.id, "title": record.title, "model": record.model, "conversations": turns
                }))
                .unwrap_or_default();
                out.push('\n');
                out
            }
        })
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
