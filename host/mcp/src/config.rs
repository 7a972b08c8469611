//! The MCP config section (`[mcp]`): for the server, list paging and freshness, hooks, request size, progress buffering and the extra hosts and origins an HTTP listener accepts; for the client, the servers whose tools the agent uses (`[mcp.servers.NAME]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::ServerConfig;

/// How `agent-host mcp serve` serves the tools.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Tools per `tools/list` page; a longer list is paged with a cursor.
    pub page_size: usize,
    /// How long a 2026-07-28 client may treat a `tools/list` page as fresh
    /// (`ttlMs`). Subscribed clients hear of every change at once anyway.
    pub list_ttl_ms: u64,
    /// Run the extensions' before- and after-tool-call hooks around MCP
    /// calls (the redactor and the policy guard protect MCP clients too).
    pub hooks: bool,
    /// The largest request accepted, in KiB: an HTTP body over it gets 413,
    /// a stdio line over it is dropped with an error in the log.
    pub max_request_kb: usize,
    /// Progress notifications a call may have waiting to be sent; a client
    /// slower than its tool misses intermediate ones, never the call.
    pub progress_buffer: usize,
    /// Browser origins allowed besides the loopback ones, such as
    /// `https://app.example.com:443` (`:*` for any port).
    pub allowed_origins: Vec<String>,
    /// `Host` names (or `host:port`) allowed besides the address bound and
    /// the loopback names; needed behind a proxy or a DNS name.
    pub allowed_hosts: Vec<String>,
    /// MCP servers whose tools the agent uses beside the plugins', by name
    /// (`[mcp.servers.NAME]`).
    pub servers: BTreeMap<String, ServerConfig>,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            page_size: 100,
            list_ttl_ms: 10_000,
            hooks: true,
            max_request_kb: 4096,
            progress_buffer: 64,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            servers: BTreeMap::new(),
        }
    }
}

impl McpConfig {
    /// The page size, never zero.
    pub fn page_size(&self) -> usize {
        self.page_size.max(1)
    }

    /// The request limit in bytes, never below 1 KiB.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_kb.max(1).saturating_mul(1024)
    }
}
