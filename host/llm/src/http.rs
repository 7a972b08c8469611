//! Shared HTTP machinery of the providers: one pooled client, retries with backoff and jitter, the per-call deadline, cancellation, and reading SSE bodies.
//!
//! Every model call runs inside a [`Call`]: its [`Call::guard`] races the
//! work against the cancellation token and the call's deadline, so dropping
//! the in-flight future is what aborts a request (no polling). The deadline
//! covers the retries *and* reading the whole answer.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sse::{SseEvent, SseParser};
use super::{EventReceiver, ProviderError, ProviderEvent};

/// Timeouts and retry policy of provider HTTP calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Overall deadline of one model call, retries included.
    pub deadline: Duration,
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            deadline: super::DEFAULT_DEADLINE,
            max_retries: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl HttpSettings {
    /// The wait before retry number `retry` (0-based) when the server gave
    /// no Retry-After: exponential, capped by `max_backoff`, with "equal
    /// jitter" (half fixed, half random) so many clients hitting the same
    /// overloaded server do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(jitter_unit())
    }
}

/// Idle connections kept per host: a chat makes one call at a time, an
/// agent with sub-tasks a few; more would only hold sockets open.
const POOL_MAX_IDLE_PER_HOST: usize = 8;
/// Providers close idle keep-alive connections after about a minute or two.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Events buffered between a provider task and its consumer.
pub(crate) const EVENT_BUFFER: usize = 64;
/// How much of a non-JSON error body ends up in an error message.
const MAX_ERROR_BODY_CHARS: usize = 300;

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
        .tcp_keepalive(Duration::from_secs(30))
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
/// What every HTTP provider checks before its first call: a usable base
/// URL and a model name; returns the shared client.
pub(crate) fn client_for(
    provider: &str,
    base_url: &str,
    model: &str,
    settings: &HttpSettings,
) -> Result<reqwest::Client, ProviderError> {
    check_base_url(provider, base_url)?;
    if model.trim().is_empty() {
        return Err(ProviderError::Config(format!(
            "the {provider} provider needs a model name"
        )));
    }
    shared_client(settings)
}

pub(crate) fn check_base_url(provider: &str, base_url: &str) -> Result<(), ProviderError> {
    let url = reqwest::Url::parse(base_url).map_err(|err| {
        ProviderError::Config(format!(
            "{provider} base URL `{base_url}` is not a valid URL: {err}"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::Config(format!(
            "{provider} base URL `{base_url}` must start with http:// or https://"
        )));
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

/// One model call in flight: who is called, its deadline, how to stop it,
/// and where its events go.
pub(crate) struct Call {
    provider: &'static str,
    settings: HttpSettings,
    cancel: CancellationToken,
    deadline: Instant,
    events: mpsc::Sender<Result<ProviderEvent, ProviderError>>,
}

impl Call {
    /// A call whose deadline starts now, and the receiver of its events.
    pub(crate) fn new(
        provider: &'static str,
        settings: &HttpSettings,
        cancel: CancellationToken,
    ) -> (Self, EventReceiver) {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let call = Self {
            provider,
            settings: settings.clone(),
            cancel,
            deadline: far_or(Instant::now(), settings.deadline),
            events,
        };
        (call, receiver)
    }

    /// Runs `work` until it ends, the token is cancelled, or the deadline
    /// passes, whichever comes first. Losing the race drops `work`, which
    /// aborts its HTTP request or sleep on the spot.
    pub(crate) async fn guard<T>(
        &self,
        work: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(ProviderError::Cancelled),
            () = tokio::time::sleep_until(self.deadline) => Err(self.timeout()),
            result = work => result,
        }
    }

    /// Hands one event to the consumer. A consumer that went away wants
    /// nothing more, so that ends the call like a cancellation.
    pub(crate) async fn emit(&self, event: ProviderEvent) -> Result<(), ProviderError> {
        self.events
            .send(Ok(event))
            .await
            .map_err(|_| ProviderError::Cancelled)
    }

    /// Ends the call: an error becomes the stream's last item.
    pub(crate) async fn end(self, outcome: Result<(), ProviderError>) {
        if let Err(err) = outcome {
            tracing::debug!(provider = self.provider, error = %err, "model call failed");
            // The consumer may be gone already; then nobody needs the error.
            let _ = self.events.send(Err(err)).await;
        }
    }

    pub(crate) fn protocol(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Protocol {
            provider: self.provider.to_owned(),
            message: message.into(),
        }
    }

    fn timeout(&self) -> ProviderError {
        ProviderError::Timeout {
            provider: self.provider.to_owned(),
            after_ms: u64::try_from(self.settings.deadline.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Sends a request built by `build` (called once per attempt), retrying
    /// 429, 5xx and connection failures with exponential backoff and jitter.
    ///
    /// A Retry-After (or Retry-After-Ms) header replaces the computed
    /// backoff, capped by `max_backoff`; a wait that would not end before
    /// the call's deadline is not started: the last error is returned at
    /// once, which says more than a timeout would. Other 4xx answers are
    /// final. Returns the first successful (2xx) response, headers only:
    /// the body is the caller's to read.
    pub(crate) async fn send_with_retries(
        &self,
        url: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        self.guard(async {
            let mut retried = 0;
            loop {
                let (err, wait) = match build().send().await {
                    Ok(response) if response.status().is_success() => return Ok(response),
                    Ok(response) => {
                        let status = response.status();
                        let retry_after = retry_after(response.headers(), SystemTime::now());
                        // A body that breaks off still leaves the status to report.
                        let body = response.bytes().await.unwrap_or_default();
                        let err = ProviderError::Http {
                            provider: self.provider.to_owned(),
                            status: status.as_u16(),
                            message: error_message(status, &body),
                            retried,
                        };
                        if !is_retryable(status) {
                            return Err(err);
                        }
                        let wait = match retry_after {
                            Some(after) => after.min(self.settings.max_backoff),
                            None => self.settings.backoff(retried),
                        };
                        (err, wait)
                    }
                    Err(err) if err.is_builder() => {
                        return Err(ProviderError::Config(format!(
                            "cannot build the request to {url}: {}",
                            error_chain(&err)
                        )));
                    }
                    Err(err) => {
                        let err = ProviderError::Connect {
                            provider: self.provider.to_owned(),
                            url: url.to_owned(),
                            message: connect_message(&err),
                        };
                        (err, self.settings.backoff(retried))
                    }
                };
                if retried >= self.settings.max_retries
                    || Instant::now()
                        .checked_add(wait)
                        .is_none_or(|end| end >= self.deadline)
                {
                    return Err(err);
                }
                let wait_ms = wait.as_millis();
                tracing::debug!(provider = self.provider, error = %err, wait_ms, "retrying");
                tokio::time::sleep(wait).await;
                retried += 1;
            }
        })
        .await
    }

    /// Reads a whole (non-streamed) body.
    pub(crate) async fn read_body(
        &self,
        response: reqwest::Response,
    ) -> Result<Bytes, ProviderError> {
        self.guard(async { response.bytes().await.map_err(|err| self.broken(&err)) })
            .await
    }

    /// The error for a body that broke off after the answer had started.
    fn broken(&self, err: &reqwest::Error) -> ProviderError {
        self.protocol(format!(
            "the connection broke before the answer was complete ({})",
            connect_message(err)
        ))
    }
}

/// `start + after`, or a moment decades away when a configured deadline is
/// too large to represent (which means "no deadline").
fn far_or(start: Instant, after: Duration) -> Instant {
    start
        .checked_add(after)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(start)
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A streamed `text/event-stream` body, read event by event.
pub(crate) struct SseBody {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    ended: bool,
}

impl SseBody {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            parser: SseParser::new(),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// The next event, or `None` once the body has ended. Reads are raced
    /// against the call's cancellation and deadline.
    pub(crate) async fn next(&mut self, call: &Call) -> Result<Option<SseEvent>, ProviderError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match call.guard(async { Ok(self.body.next().await) }).await? {
                Some(Ok(chunk)) => {
                    let events = self
                        .parser
                        .push(&chunk)
                        .map_err(|err| call.protocol(err.to_string()))?;
                    self.ready.extend(events);
                }
                Some(Err(err)) => return Err(call.broken(&err)),
                None => {
                    self.ended = true;
                    self.ready.extend(self.parser.finish());
                }
            }
        }
    }
}

/// The readable message of an error answer: the `error.message` of OpenAI
/// and Anthropic bodies, the `error` string of Ollama-style bodies, else
/// the start of the raw body.
pub(crate) fn error_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let found = value
            .pointer("/error/message")
            .and_then(serde_json::Value::as_str)
            .or_else(|| value.get("error").and_then(serde_json::Value::as_str))
            .or_else(|| value.get("message").and_then(serde_json::Value::as_str));
        if let Some(message) = found.map(str::trim)
            && !message.is_empty()
        {
            return message.to_owned();
        }
    }
    let text = text.trim();
    if text.is_empty() {
        return status
            .canonical_reason()
            .unwrap_or("no error message")
            .to_owned();
    }
    truncate_chars(text, MAX_ERROR_BODY_CHARS)
}

/// At most `max` characters of `text`, marked when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The server's requested wait: `retry-after-ms` (OpenAI), else
/// `Retry-After` as seconds or an HTTP date. A date in the past means
/// "now"; an unreadable value is ignored (the backoff applies).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|value| value.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        // An absurd value is no reason to panic: it is capped like any other.
        return Some(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP
/// date form servers may send today.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|name| name == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let mut clock = time.split(':').map(|part| part.parse::<u64>().ok());
    let (Some(Some(hour)), Some(Some(minute)), Some(Some(second)), None) =
        (clock.next(), clock.next(), clock.next(), clock.next())
    else {
        return None;
    };
    // The year bound also keeps the day arithmetic far from overflow.
    if !(1970..=9999).contains(&year)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A number in [0, 1) for backoff jitter. Not cryptographic: a xorshift
/// over the clock and a per-process counter is plenty to spread retries.
fn jitter_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut x = (nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// What went wrong on the wire, without reqwest's generic outer message
/// (the URL is reported separately).
fn connect_message(err: &reqwest::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => error_chain(source),
        None => err.to_string(),
    }
}

/// An error and its causes, joined with ": ", skipping causes that the
/// previous message already includes.
fn error_chain(err: &dyn std::error::Error) -> String {
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
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_seconds_ms_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")]),
                now
            ),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn absurd_settings_and_headers_do_not_panic() {
        let now = SystemTime::now();
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1e300")]), now),
            Some(Duration::MAX)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "99999999999999999999")]), now),
            None
        );
        let settings = HttpSettings {
            deadline: Duration::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..HttpSettings::default()
        };
        let _ = settings.backoff(u32::MAX);
        let (call, _receiver) = Call::new("test", &settings, CancellationToken::new());
        assert!(call.deadline > Instant::now());
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_825_600))
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49 GMT"), None);
        assert_eq!(parse_http_date(""), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 99999999999999999 08:49:37 GMT"),
            None
        );
    }

    #[test]
    fn error_messages_from_known_bodies() {
        let status = StatusCode::BAD_REQUEST;
        assert_eq!(
            error_message(
                status,
                br#"{"error":{"message":"Invalid model","type":"invalid_request_error"}}"#
            ),
            "Invalid model"
        );
        assert_eq!(
            error_message(
                status,
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(
            error_message(status, br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message(status, b"  plain text  "), "plain text");
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, b""), "Bad Gateway");
        let long = "é".repeat(400);
        let message = error_message(status, long.as_bytes());
        assert_eq!(message.chars().count(), MAX_ERROR_BODY_CHARS + 3);
        assert!(message.ends_with("..."));
        assert_eq!(error_message(status, &[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let settings = HttpSettings {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..HttpSettings::default()
        };
        for retry in 0..40 {
            let base = Duration::from_millis(100 * 2u64.saturating_pow(retry.min(20)))
                .min(Duration::from_millis(1000));
            let wait = settings.backoff(retry);
            assert!(
                wait >= base / 2 && wait <= base,
                "retry {retry}: {wait:?} not in [{:?}, {base:?}]",
                base / 2
            );
        }
    }

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
        assert!(check_base_url("openai", "http://localhost:11434/v1").is_ok());
        assert!(matches!(
            check_base_url("openai", "localhost:11434"),
            Err(ProviderError::Config(_))
        ));
        assert!(matches!(
            check_base_url("openai", "not a url"),
            Err(ProviderError::Config(_))
        ));
    }
}
