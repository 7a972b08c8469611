//! Errors: an API error as `{"error": {"code", "message"}}` with its status, and why the server could not start.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error a client gets: a status, a stable code, and a message that
/// says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code such as `session_not_found`.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// Seconds a client should wait before trying again (503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A turn's task ended without handing back its result (it panicked or
    /// was aborted); the log has why.
    pub fn turn_lost() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "turn_lost",
            "the turn ended without a result; see the server log",
        )
    }

    /// An error with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 404 for a session id that names no session.
    pub fn session_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            format!("no session {id:?}; GET /v1/sessions lists them, POST /v1/sessions makes one"),
        )
    }

    /// 400 for a body that is not what the endpoint takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A non-loopback address without a token would hand the agent (its
    /// tools, its model account) to anyone who can reach the port.
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
    /// The server stopped with an error.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}
