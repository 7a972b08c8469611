//! The persisted copy of each server's tool list, kept in the host's store by the server's identity (how it is reached, as configured), so listing tools needs no connection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_host_runtime::store::DataStore;
use serde_json::{Value, json};

use super::Limits;
use super::config::ServerConfig;
use super::connection::{ToolList, tool_list};

/// Records `raw` (the server's `tools/list` entries, as sent) for the
/// server. A store that cannot write only costs the next listing a
/// connection, so a failure is logged, not returned.
pub fn save(
    store: &DataStore,
    name: &str,
    config: &ServerConfig,
    raw: &[Value],
    protocol: Option<&str>,
) {
    let fetched = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let record = json!({ "fetched_at": fetched, "protocol": protocol, "tools": raw });
    if let Err(err) = store.put_remote_tool_list(&config.identity(name), &record) {
        tracing::warn!(server = %name, %err, "could not persist the MCP server's tool list");
    }
}

/// The persisted list of the server, converted as a live one would be
/// (filters and names from the current config), if there is one.
pub fn load(
    store: &DataStore,
    name: &str,
    config: &ServerConfig,
    limits: &Limits,
) -> Option<ToolList> {
    let record = store.remote_tool_list(&config.identity(name))?;
    let raw = record.get("tools")?.as_array()?;
    let mut list = tool_list(name, config, limits, raw);
    list.fetched_at = record
        .get("fetched_at")
        .and_then(Value::as_u64)
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
    list.from_cache = true;
    Some(list)
}
