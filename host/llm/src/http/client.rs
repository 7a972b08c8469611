//! The one pooled reqwest client the HTTP providers share (pool limits, timeouts), and the base-URL checks made before it is used.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use super::HttpSettings;
use crate::{BaseUrlError, ProviderError};

/// Idle connections kept per host: a chat makes one call at a time, an
/// agent with sub-tasks a few; more would only hold sockets open.
const POOL_MAX_IDLE_PER_HOST: usize = 8;
/// Providers close idle keep-alive connections after about a minute or two.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Keep-alive probes notice a peer that vanished without closing.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// The process-wide client for these settings. Clients are cached by
/// connect timeout (the only setting baked into a client), so every
/// provider shares one connection pool per distinct timeout.
///
/// The pool's connections belong to the tokio runtime that opened them;
/// the host runs one runtime, which is what this sharing assumes.
pub(crate) fn shared_client(settings: &HttpSettings) -> Result<reqwest::Client, ProviderError> {
    static CLIENTS: OnceLock<Mutex<HashMap<Duration, reqwest::Client>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = clients.get(&settings.connect_timeout) {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .connect_timeout(settings.connect_timeout)
        .tcp_keepalive(TCP_KEEPALIVE)
        .user_agent(concat!("agent-host/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| {
            ProviderError::Config(format!(
                "cannot build the HTTP client: {}",
                error_chain(&err)
            ))
        })?;
    clients.insert(settings.connect_timeout, client.clone());
    Ok(client)
}

/// Checks a configured base URL early, so a typo fails at start-up with a
/// clear message instead of on the first request.
pub(crate) fn check_base_url(base_url: &str) -> Result<(), BaseUrlError> {
    let url =
        reqwest::Url::parse(base_url).map_err(|err| BaseUrlError::Invalid(err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BaseUrlError::NotHttp);
    }
    Ok(())
}

/// `base` and `path` joined by exactly one slash.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// What went wrong on the wire, without reqwest's generic outer message
/// (the URL is reported separately).
pub(crate) fn connect_message(err: &reqwest::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => error_chain(source),
        None => err.to_string(),
    }
}

/// An error and its causes, joined with ": ", skipping causes that the
/// previous message already includes.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_validate() {
        assert_eq!(
            join_url("http://h:1/v1/", "/chat/completions"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            join_url("http://h:1/v1", "chat/completions"),
            "http://h:1/v1/chat/completions"
        );
        assert!(check_base_url("http://localhost:11434/v1").is_ok());
        assert!(matches!(
            check_base_url("localhost:11434"),
            Err(BaseUrlError::NotHttp)
        ));
        assert!(matches!(
            check_base_url("not a url"),
            Err(BaseUrlError::Invalid(_))
        ));
    }
}
