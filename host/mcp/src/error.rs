//! Why the MCP server could not start or stopped: typed, each with what to do.

use std::net::SocketAddr;

/// An MCP server that cannot start, or a transport that failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without a token would hand the sandbox to
    /// anyone who can reach the port.
    #[error(transparent)]
    TokenRequired(#[from] agent_host_auth::TokenRequired),
    /// The bearer token cannot be used.
    #[error(transparent)]
    Token(#[from] agent_host_auth::TokenError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server stopped with an error.
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
    /// The stdio transport could not start or ended with an error.
    #[error("the stdio MCP session failed: {0}")]
    Stdio(String),
    /// Plugin watching could not start.
    #[error(transparent)]
    Watch(#[from] agent_host_runtime::watcher::WatchError),
}
