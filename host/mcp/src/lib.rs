//! agent-host-mcp: the runtime's sandboxed tools served to any MCP client, over stdio or Streamable HTTP, in both protocol eras; and any MCP server's tools brought to the agent ([`client`]).
//!
//! The server is a thin mapping: `tools/list` is the runtime's tool list
//! (paged, annotated from the tool hints), `tools/call` is the same call
//! path as `agent-host tools call` (schema check, fresh sandboxed instance,
//! limits, output cap) wrapped in the extension hooks, and the runtime's
//! plugin events become `notifications/tools/list_changed`. The protocol
//! itself (both lifecycles, sessions, framing, Host and Origin checks, body
//! limits) is rmcp's; this crate decides what the tools look like, who may
//! connect, and how a call's failure reads.
//!
//! - [`config`]: the `[mcp]` config section.
//! - [`server`]: the MCP handler ([`ToolServer`]).
//! - [`catalog`], [`content`]: tools and results in MCP's shapes.
//! - [`guarded`]: a call between its before- and after-tool-call hooks.
//! - [`changes`], [`progress`]: what the server tells a client unasked.
//! - [`stdio`], [`http`]: the transports; bearer tokens come from
//!   `agent-host-auth`.
//! - [`client`]: MCP servers as tool sources (`[mcp.servers.NAME]`).

/// Bearer tokens (the shared front-end crate, re-exported).
pub use agent_host_auth as auth;
pub mod catalog;
pub mod changes;
pub mod client;
pub mod config;
pub mod content;
pub mod error;
pub mod guarded;
pub mod http;
pub mod progress;
pub mod server;
pub mod stdio;

pub use client::McpTools;
pub use config::McpConfig;
pub use error::ServeError;
pub use http::{HttpOptions, HttpServer};
pub use server::ToolServer;
