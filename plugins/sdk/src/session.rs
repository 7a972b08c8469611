//! Per-session key-value state: what this plugin remembers for the current agent session only.
//!
//! Same limits as [`crate::kv`]. Outside a session (a direct
//! `agent-host tools call`) there is no session state: `get` finds nothing
//! and `set` fails with a message saying so.

use crate::ToolError;
use crate::bindings::agent::plugin::host as wit;

/// The stored value for this session, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::session_get(key)
}

/// Stores a value for this session.
pub fn set(key: &str, value: &[u8]) -> Result<(), ToolError> {
    wit::session_set(key, value).map_err(|why| {
        ToolError::failed(format!("could not store `{key}` for this session: {why}"))
    })
}

/// Removes a key; returns whether it existed.
pub fn delete(key: &str) -> bool {
    wit::session_delete(key)
}

/// This session's keys that start with `prefix`, in byte order.
pub fn list(prefix: &str) -> Vec<String> {
    wit::session_list(prefix)
}
