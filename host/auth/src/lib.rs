//! agent-host-auth: bearer tokens for the HTTP front ends (MCP over Streamable HTTP, `serve`): where a token comes from, what counts as one, and a check that takes the same time whatever the guess.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A token that cannot be used.
/// A front end that listens for remote callers: what its token guards
/// (for the refusal's wording) and the environment variable the token may
/// come from. Each front end declares one; the rule is here.
#[derive(Debug, Clone, Copy)]
pub struct FrontEnd {
    /// What a caller could do without a token ("call the tools").
    pub exposes: &'static str,
    /// The environment variable of its token.
    pub token_env: &'static str,
}

impl FrontEnd {
    /// Refuses a non-loopback `addr` without a token: anyone who can reach
    /// the port would get what the front end exposes. Checked before
    /// anything binds or loads.
    pub fn check_listen(
        &self,
        addr: std::net::SocketAddr,
        token: Option<&BearerToken>,
    ) -> Result<(), TokenRequired> {
        if addr.ip().is_loopback() || token.is_some() {
            return Ok(());
        }
        Err(TokenRequired {
            addr,
            exposes: self.exposes,
            token_env: self.token_env,
        })
    }
}

/// A non-loopback address without a bearer token.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without a bearer token: it is not a loopback address, so anyone who can reach it could {exposes}; pass --token-file FILE or set {token_env}"
)]
pub struct TokenRequired {
    /// The address asked for.
    pub addr: std::net::SocketAddr,
    /// What it would expose.
    pub exposes: &'static str,
    /// Where the token may come from.
    pub token_env: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty or too short to be a secret.
    #[error(
        "the bearer token from {origin} is {length} bytes; use at least 16 (for example `openssl rand -hex 32`)"
    )]
    Weak {
        /// Where it came from.
        origin: String,
        /// Its length after trimming.
        length: usize,
    },
}

/// Shorter than this is not a secret worth the name.
const MIN_TOKEN_BYTES: usize = 16;

/// A bearer token every HTTP request must carry.
#[derive(Clone)]
pub struct BearerToken {
    /// Kept as a hash: comparing two blake3 hashes takes the same time
    /// wherever they differ, and hides the token's length too.
    digest: Arc<blake3::Hash>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// A token from its text; `origin` names where it came from for the
    /// error. Surrounding whitespace (a file's newline) is not part of it.
    pub fn new(text: &str, origin: &str) -> Result<Self, TokenError> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(TokenError::Weak {
                origin: origin.to_owned(),
                length: token.len(),
            });
        }
        Ok(Self {
            digest: Arc::new(blake3::hash(token.as_bytes())),
        })
    }

    /// The token in `path`.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
            path: path.to_owned(),
            source,
        })?;
        Self::new(&text, &path.display().to_string())
    }

    /// The token from `file` when given, else from the environment
    /// variable `env` when set; `None` when neither is.
    pub fn from_file_or_env(file: Option<&Path>, env: &str) -> Result<Option<Self>, TokenError> {
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        match std::env::var(env) {
            Ok(text) => Self::new(&text, env).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Whether `presented` is the token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        // blake3::Hash's equality is constant-time.
        blake3::hash(presented.as_bytes()) == *self.digest
    }

    /// Whether an `Authorization` header value carries the token.
    fn authorizes(&self, header: Option<&HeaderValue>) -> bool {
        let Some(value) = header.and_then(|value| value.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.matches(token.trim())
    }
}

/// Middleware: a request without the token gets 401 and goes no further.
/// Use with `axum::middleware::from_fn_with_state(token, require_token)`.
pub async fn require_token(
    State(token): State<BearerToken>,
    request: Request,
    next: Next,
) -> Response {
    if token.authorizes(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "Unauthorized: send `Authorization: Bearer <token>` with the server's token\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let token = BearerToken::new("0123456789abcdef-secret\n", "test").unwrap();
        assert!(token.matches("0123456789abcdef-secret"));
        assert!(!token.matches("0123456789abcdef-secreT"));
        assert!(!token.matches(""));
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert!(token.authorizes(Some(&header("Bearer 0123456789abcdef-secret"))));
        assert!(token.authorizes(Some(&header("bearer 0123456789abcdef-secret"))));
        assert!(!token.authorizes(Some(&header("Basic 0123456789abcdef-secret"))));
        assert!(!token.authorizes(None));
    }

    #[test]
    fn a_short_token_is_refused_with_what_to_do() {
        let err = BearerToken::new("  short \n", "AGENT_HOST_MCP_TOKEN").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("AGENT_HOST_MCP_TOKEN"), "{message}");
        assert!(message.contains("at least 16"), "{message}");
    }
}
