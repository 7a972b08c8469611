//! Why an MCP server could not be used: typed, each naming the server and saying what to do.

/// A server that cannot be configured, started or reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The `[mcp.servers.NAME]` entry is wrong.
    #[error("[mcp.servers.{server}]: {problem}")]
    Config {
        /// The server's name.
        server: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The server could not be started or did not complete the handshake.
    #[error("MCP server '{server}' could not start: {reason}")]
    Start {
        /// The server's name.
        server: String,
        /// Why, with the server's last stderr lines when it wrote any.
        reason: String,
    },
    /// Two tools would be exposed under one name.
    #[error("{0}")]
    Clash(String),
}
