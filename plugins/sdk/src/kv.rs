//! Per-plugin key-value state persisted by the host (raw bytes, strings and JSON helpers).
//!
//! Keys are at most 256 bytes and values at most 1 MiB; other plugins cannot
//! see this plugin's keys. Every call runs in a fresh instance, so this is the
//! only state that outlives a call.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ToolError;
use crate::bindings::agent::plugin::host as wit;

/// The stored value, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::kv_get(key)
}

/// Stores a value. The error (a `failed` tool error) says which limit was
/// broken.
pub fn set(key: &str, value: &[u8]) -> Result<(), ToolError> {
    wit::kv_set(key, value)
        .map_err(|why| ToolError::failed(format!("could not store `{key}`: {why}")))
}

/// Removes a key; returns whether it existed.
pub fn delete(key: &str) -> bool {
    wit::kv_delete(key)
}

/// Keys that start with `prefix`, in byte order.
pub fn list(prefix: &str) -> Vec<String> {
    wit::kv_list(prefix)
}

/// The stored value as UTF-8 text; `failed` if it is not UTF-8.
pub fn get_string(key: &str) -> Result<Option<String>, ToolError> {
    get(key)
        .map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| ToolError::failed(format!("stored value `{key}` is not UTF-8 text")))
        })
        .transpose()
}

/// Stores UTF-8 text.
pub fn set_string(key: &str, value: &str) -> Result<(), ToolError> {
    set(key, value.as_bytes())
}

/// The stored value decoded from JSON; `failed` if it does not decode as `T`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, ToolError> {
    get(key)
        .map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|err| {
                ToolError::failed(format!(
                    "stored value `{key}` is not the expected JSON: {err}"
                ))
            })
        })
        .transpose()
}

/// Stores a value encoded as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), ToolError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|err| ToolError::failed(format!("could not encode `{key}`: {err}")))?;
    set(key, &bytes)
}
