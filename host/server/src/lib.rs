//! agent-host-server: `agent-host serve`, an HTTP API that many users and programs drive at once: sessions, turns streamed as server-sent events or answered as JSON, cancellation, and bounds on everything a client can make the server hold.
//!
//! - [`config`]: the `[server]` config section.
//! - [`state`]: what every request shares (runtime, live sessions, models,
//!   running turns, the cap on turns in flight).
//! - [`turn`]: one turn of a session, from the request to its stored result.
//! - [`api`]: the routes and their handlers; [`error`]: errors as JSON;
//!   `openai`: the OpenAI-compatible `/v1/chat/completions`; [`metrics`]:
//!   `/metrics`; [`openapi`]: `/openapi.json`.

pub mod api;
pub mod config;
pub mod error;
pub mod metrics;
mod openai;
pub mod openapi;
pub mod state;
pub mod turn;

pub use config::ServerConfig;
pub use error::{ApiError, ServerError};
pub use state::{AppState, Models};

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

/// What `serve` puts behind its bearer token.
pub const FRONT_END: agent_host_auth::FrontEnd = agent_host_auth::FrontEnd {
    exposes: "run sessions",
    token_env: "AGENT_HOST_SERVE_TOKEN",
};

/// A listening server.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Server {
    /// Binds `state.config().listen` and starts serving. A non-loopback
    /// address without a `token` is refused before anything is bound:
    /// anyone who could reach the port could run sessions on the host's
    /// tools and model account.
    pub async fn bind(
        state: AppState,
        token: Option<agent_host_auth::BearerToken>,
    ) -> Result<Self, ServerError> {
        let addr = state.config().listen;
        FRONT_END.check_listen(addr, token.as_ref())?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let shutdown = state.shutdown_token();
        let router = api::router(state.clone(), token);
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .map_err(ServerError::Serve)
        });
        Ok(Self {
            local_addr,
            state,
            shutdown,
            task,
        })
    }

    /// The address it listens on (with the port chosen for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL, such as `http://127.0.0.1:8787`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// A token that stops the server when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops gracefully: no new requests; running turns get up to `grace`
    /// to finish, then the rest are cancelled (and recorded as cancelled);
    /// returns once every response is done.
    pub async fn shutdown(self, grace: std::time::Duration) -> Result<(), ServerError> {
        self.shutdown.cancel();
        let drained = async {
            while self.state.turns_in_flight() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!(
                running = self.state.turns_in_flight(),
                "the shutdown grace period is over; cancelling the turns still running"
            );
        }
        self.state.cancel_all_turns();
        self.wait().await
    }

    /// Waits until the server stops.
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(result) => result,
            Err(err) => Err(ServerError::Serve(std::io::Error::other(err))),
        }
    }
}
