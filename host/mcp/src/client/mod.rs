//! MCP servers as tool sources for the agent: `[mcp.servers.NAME]` entries, one session per server kept open for the process, tool lists cached (in memory and in the store) and refreshed on change, and failures kept to the server that had them.
//!
//! - [`config`]: one server entry; [`names`]: the exposed names.
//! - [`connection`]: one server's session, restarts, tool list and calls.
//! - [`tools`]: all servers as one `ToolHost` ([`McpTools`]).
//! - [`convert`]: MCP's tool and result shapes to the host's.
//! - [`persist`]: the tool lists kept between processes.

mod child;
pub mod config;
pub mod connection;
pub mod convert;
pub mod error;
pub mod names;
pub mod persist;
pub mod tls;
pub mod tools;

use agent_host_runtime::config::{DescribeLimits, RuntimeConfig, SchemaConfig};
use agent_host_runtime::store::DataStore;

pub use config::ServerConfig;
pub use error::ClientError;
pub use tools::{ClientOptions, McpTools, ServerReport};

/// The bounds a server's declarations are held to (the plugins' own), and
/// where tool lists are persisted.
#[derive(Clone)]
pub struct Limits {
    /// Title and description sizes.
    pub describe: DescribeLimits,
    /// Input schema size and complexity.
    pub schemas: SchemaConfig,
    /// The host's store, for persisted tool lists.
    pub store: Option<DataStore>,
}

impl Limits {
    /// The runtime's limits, persisting into `store`.
    pub fn from_runtime(config: &RuntimeConfig, store: Option<DataStore>) -> Self {
        Self {
            describe: config.describe.clone(),
            schemas: config.schema.clone(),
            store,
        }
    }
}
