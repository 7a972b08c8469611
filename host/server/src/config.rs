//! The server's config section (`[server]`): where it listens, which models a session may pick, and the bounds on turns, bodies and messages.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// How `agent-host serve` serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to listen on; anything but loopback needs a bearer token.
    pub listen: SocketAddr,
    /// Models a session may name, besides the configured provider's own
    /// (which is the default).
    pub models: Vec<String>,
    /// Turns running at once across the server; one more gets 503 with
    /// `Retry-After`.
    pub max_turns_in_flight: usize,
    /// The largest request body, in KiB (413 beyond).
    pub max_body_kb: usize,
    /// The longest user message, in KiB (413 beyond).
    pub max_message_kb: usize,
    /// A turn still running after this long is cancelled.
    pub turn_timeout_secs: u64,
    /// A client that hangs up on a running turn cancels it.
    pub cancel_on_disconnect: bool,
    /// Events of a streamed turn the server holds for a slow reader before
    /// it waits for it; text deltas beyond are merged, never dropped.
    pub stream_buffer: usize,
    /// On SIGTERM or Ctrl-C, running turns get this long to finish before
    /// they are cancelled.
    pub shutdown_grace_secs: u64,
    /// Browser origins allowed to call the API (CORS), such as
    /// `https://app.example.com`; empty (the default) sends no CORS headers,
    /// so no page of another origin can read an answer.
    pub cors_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            models: Vec::new(),
            max_turns_in_flight: 256,
            max_body_kb: 1024,
            max_message_kb: 256,
            turn_timeout_secs: 600,
            cancel_on_disconnect: true,
            stream_buffer: 256,
            shutdown_grace_secs: 10,
            cors_origins: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// The body limit in bytes (at least 1 KiB).
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_kb.max(1).saturating_mul(1024)
    }

    /// The message limit in bytes (at least 1 KiB).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_kb.max(1).saturating_mul(1024)
    }
}
