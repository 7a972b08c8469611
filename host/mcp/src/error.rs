//! Why the MCP server could not start or stopped: typed, each with what to do.

use std::net::SocketAddr;
use std::path::PathBuf;

/// An MCP server that cannot start, or a transport that failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without a token would hand the sandbox to
    /// anyone who can reach the port.
    #[error(
        "refusing to listen on {addr} without a bearer token: it is not a loopback address, so anyone who can reach it could call the tools; pass --token-file FILE or set AGENT_HOST_MCP_TOKEN"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The token file could not be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty or too short to be a secret.
    #[error(
        "the bearer token from {origin} is {length} bytes; use at least 16 (for example `openssl rand -hex 32`)"
    )]
    WeakToken {
        /// Where it came from.
        origin: String,
        /// Its length after trimming.
        length: usize,
    },
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
