//! Why a provider call (or setting one up) failed: [`ProviderError`] with its [`ProviderErrorKind`], and [`BaseUrlError`].

/// Why a provider call failed. Messages name the provider and say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error status (after any retries).
    #[error("{provider} answered HTTP {status}: {message}{}", if *retried > 0 { format!(" (after {retried} retries)") } else { String::new() })]
    Http {
        /// The provider's short name.
        provider: String,
        /// The HTTP status, or the one an error event in a stream stands for.
        status: u16,
        /// The message from the error body.
        message: String,
        /// How many retries were made before giving up.
        retried: u32,
    },
    /// The provider could not be reached at all.
    #[error(
        "cannot reach {provider} at {url}: {message}; check --base-url and that the server is running"
    )]
    Connect {
        /// The provider's short name.
        provider: String,
        /// The URL that was called.
        url: String,
        /// What went wrong on the wire.
        message: String,
    },
    /// The per-call deadline passed, retries and reading included.
    #[error("{provider} did not finish within {after_ms} ms (the per-call deadline)")]
    Timeout {
        /// The provider's short name.
        provider: String,
        /// The deadline that passed.
        after_ms: u64,
    },
    /// The provider sent something this client cannot read (malformed,
    /// cut short).
    #[error("{provider} sent something this client cannot read: {message}")]
    Protocol {
        /// The provider's short name.
        provider: String,
        /// What was wrong with it.
        message: String,
    },
    /// The caller cancelled the call (or stopped reading its events).
    #[error("the request was cancelled")]
    Cancelled,
    /// The provider is set up wrongly; nothing was sent.
    #[error("provider configuration: {0}")]
    Config(String),
}

/// What kind of failure a [`ProviderError`] is, for a caller that reacts
/// differently to each (wait and try again, ask for a key, give up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// HTTP 429: too many requests; trying again later may work.
    RateLimited,
    /// HTTP 401 or 403: the API key is missing, wrong, or not allowed this.
    Auth,
    /// Another 4xx: the provider refused this request (an unknown model,
    /// a request too large, a bad parameter).
    Rejected,
    /// A 5xx (Anthropic's 529 "overloaded" included): the provider failed.
    Server,
    /// The per-call deadline passed.
    Timeout,
    /// The provider could not be reached (refused, DNS, TLS, reset).
    Connection,
    /// The answer could not be read, or the provider answered with a
    /// status that is neither success nor an error.
    Protocol,
    /// The caller cancelled the call.
    Cancelled,
    /// The provider is set up wrongly.
    Config,
}

impl ProviderError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ProviderErrorKind {
        match self {
            Self::Http { status, .. } => match status {
                429 => ProviderErrorKind::RateLimited,
                401 | 403 => ProviderErrorKind::Auth,
                400..=499 => ProviderErrorKind::Rejected,
                500..=599 => ProviderErrorKind::Server,
                _ => ProviderErrorKind::Protocol,
            },
            Self::Connect { .. } => ProviderErrorKind::Connection,
            Self::Timeout { .. } => ProviderErrorKind::Timeout,
            Self::Protocol { .. } => ProviderErrorKind::Protocol,
            Self::Cancelled => ProviderErrorKind::Cancelled,
            Self::Config(_) => ProviderErrorKind::Config,
        }
    }

    /// A protocol error of `provider`.
    pub(crate) fn protocol(provider: &str, message: impl Into<String>) -> Self {
        Self::Protocol {
            provider: provider.to_owned(),
            message: message.into(),
        }
    }
}

/// Why a configured base URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// It does not parse as a URL.
    #[error("is not a valid URL: {0}")]
    Invalid(String),
    /// It is a URL, but not an http:// or https:// one.
    #[error("must start with http:// or https://")]
    NotHttp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> ProviderError {
        ProviderError::Http {
            provider: "openai".to_owned(),
            status,
            message: "m".to_owned(),
            retried: 0,
        }
    }

    #[test]
    fn http_statuses_have_their_kinds() {
        assert_eq!(http(429).kind(), ProviderErrorKind::RateLimited);
        assert_eq!(http(401).kind(), ProviderErrorKind::Auth);
        assert_eq!(http(403).kind(), ProviderErrorKind::Auth);
        assert_eq!(http(400).kind(), ProviderErrorKind::Rejected);
        assert_eq!(http(404).kind(), ProviderErrorKind::Rejected);
        assert_eq!(http(500).kind(), ProviderErrorKind::Server);
        assert_eq!(http(529).kind(), ProviderErrorKind::Server);
        assert_eq!(http(304).kind(), ProviderErrorKind::Protocol);
    }

    #[test]
    fn other_failures_have_their_kinds() {
        let connect = ProviderError::Connect {
            provider: "openai".to_owned(),
            url: "http://127.0.0.1:9/v1".to_owned(),
            message: "refused".to_owned(),
        };
        assert_eq!(connect.kind(), ProviderErrorKind::Connection);
        let timeout = ProviderError::Timeout {
            provider: "openai".to_owned(),
            after_ms: 5,
        };
        assert_eq!(timeout.kind(), ProviderErrorKind::Timeout);
        assert_eq!(
            ProviderError::protocol("anthropic", "cut").kind(),
            ProviderErrorKind::Protocol
        );
        assert_eq!(
            ProviderError::Cancelled.kind(),
            ProviderErrorKind::Cancelled
        );
        assert_eq!(
            ProviderError::Config("x".to_owned()).kind(),
            ProviderErrorKind::Config
        );
    }
}
