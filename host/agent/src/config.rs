//! The agent's configuration sections: the loop (`[agent]`) and session storage (`[sessions]`).

use serde::{Deserialize, Serialize};

/// The agent loop's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Replaces the built-in system prompt when set.
    pub system_prompt: Option<String>,
    /// Model calls per user message.
    pub max_turns: usize,
    /// Parallel-safe tool calls run at most this many at a time.
    pub max_parallel_tools: usize,
    /// Summarise older turns past this many estimated tokens (off when unset).
    pub context_budget_tokens: Option<usize>,
    /// User turns kept verbatim when compressing.
    pub keep_recent_turns: usize,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            system_prompt: None,
            max_turns: 16,
            max_parallel_tools: 4,
            context_budget_tokens: None,
            keep_recent_turns: 2,
        }
    }
}

/// How sessions are written and kept in memory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Writes per batch.
    pub batch_size: usize,
    /// Longest a write waits before its batch is applied and flushed; also
    /// the most a kill -9 can lose.
    pub flush_interval_ms: u64,
    /// Sessions kept in memory by long-running hosts.
    pub live_capacity: usize,
    /// An idle live session is dropped from memory after this long.
    pub live_ttl_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            batch_size: 64,
            flush_interval_ms: 100,
            live_capacity: 256,
            live_ttl_secs: 1800,
        }
    }
}

impl SessionSettings {
    /// The session writer's batching, with zeros raised to the smallest
    /// workable values.
    pub fn writer(&self) -> crate::sessions::WriterConfig {
        crate::sessions::WriterConfig {
            batch_size: self.batch_size.max(1),
            interval: std::time::Duration::from_millis(self.flush_interval_ms.max(1)),
        }
    }
}
