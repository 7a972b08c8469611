//! The Streamable HTTP transport at `/mcp`: loopback by default, a bearer token required before anything else is bound, `Host` and `Origin` checked, request bodies capped (413).

use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::error::ServeError;
use crate::server::ToolServer;
use agent_host_auth::{self as auth, BearerToken};

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// What `mcp serve --http` puts behind its bearer token.
pub const FRONT_END: agent_host_auth::FrontEnd = agent_host_auth::FrontEnd {
    exposes: "call the tools",
    token_env: "AGENT_HOST_MCP_TOKEN",
};

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The address to bind; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The token every request must carry; required for a non-loopback
    /// address.
    pub token: Option<BearerToken>,
}

/// A listening MCP HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl HttpServer {
    /// Binds and starts serving `server`. Refuses a non-loopback address
    /// without a token before binding anything.
    pub async fn bind(server: ToolServer, options: HttpOptions) -> Result<Self, ServeError> {
        let addr = options.addr;
        FRONT_END.check_listen(addr, options.token.as_ref())?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let shutdown = CancellationToken::new();
        let transport_config = transport_config(&server, local_addr, shutdown.child_token());
        let service = StreamableHttpService::new(
            {
                let server = server.clone();
                move || Ok(server.clone())
            },
            Arc::new(LocalSessionManager::default()),
            transport_config,
        );
        let mut router = axum::Router::new()
            .route_service(MCP_PATH, service)
            .layer(axum::middleware::from_fn(parse_errors_as_json_rpc))
            .layer(axum::middleware::from_fn(session_end_answers_ok));
        if let Some(token) = options.token {
            router = router.layer(axum::middleware::from_fn_with_state(
                token,
                auth::require_token,
            ));
        }
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .map_err(ServeError::Http)
        });
        Ok(Self {
            local_addr,
            shutdown,
            task,
        })
    }

    /// The address it listens on (with the port chosen for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The endpoint's URL.
    pub fn url(&self) -> String {
        format!("http://{}{MCP_PATH}", self.local_addr)
    }

    /// A token that stops the server when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, ends the sessions and waits for the server task.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server stops (it stops on its own only on an error).
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(result) => result,
            Err(err) => Err(ServeError::Http(std::io::Error::other(err))),
        }
    }
}

/// rmcp answers a JSON body it cannot parse with 415; for a request that
/// did say `Content-Type: application/json` that reads as "wrong media
/// type", which it was not. Such a reply becomes what the spec suggests:
/// 400 with a JSON-RPC parse error (no id) that says what was wrong.
async fn parse_errors_as_json_rpc(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let said_json = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/json"));
    let response = next.run(request).await;
    if !said_json || response.status() != http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    // rmcp's reason is one short line; read at most a little of it.
    let reason = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => "the body is not valid JSON".to_owned(),
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {
            "code": -32700,
            "message": format!("parse error: {reason}; send one JSON-RPC message per request, as a JSON object (batches are not accepted)"),
        },
    });
    (
        http::StatusCode::BAD_REQUEST,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// rmcp answers a session's `DELETE` with 202 Accepted; the session is
/// gone by then, and clients (the Python SDK among them) expect 200 and
/// log a failed termination otherwise.
async fn session_end_answers_ok(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let deleting = request.method() == http::Method::DELETE;
    let mut response = next.run(request).await;
    if deleting && response.status() == http::StatusCode::ACCEPTED {
        *response.status_mut() = http::StatusCode::OK;
    }
    response
}

/// rmcp's transport settings. `Host` must name this server: the loopback
/// names and the address bound, plus what the config adds (a DNS name, a
/// proxy). A wildcard bind (0.0.0.0) cannot know its names: there the
/// token is the guard, and `Host` is checked only when the config lists
/// names. A browser `Origin` must be a loopback page or one the config
/// allows; requests without one (every non-browser client) pass.
fn transport_config(
    server: &ToolServer,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = server.config();
    // A call that sends nothing before its result (most) is answered with
    // a plain JSON body; one that reports progress falls back to a stream.
    let mut transport = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(config.max_request_bytes());
    let ip = local_addr.ip();
    if ip.is_unspecified() && config.allowed_hosts.is_empty() {
        transport = transport.disable_allowed_hosts();
    } else {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !ip.is_unspecified() {
            hosts.push(ip.to_string());
        }
        hosts.extend(config.allowed_hosts.iter().cloned());
        transport = transport.with_allowed_hosts(hosts);
    }
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    origins.extend(config.allowed_origins.iter().cloned());
    transport
        .with_allowed_origins(origins)
        .enforce_origin_validation()
}
