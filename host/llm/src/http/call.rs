//! One model call in flight: its deadline and cancellation, sending with retries and backoff, and reading the answer (whole or as server-sent events).

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::HttpSettings;
use super::client::{connect_message, error_chain};
use super::error_body::error_message;
use super::retry_after::retry_after;
use crate::sse::{SseEvent, SseParser};
use crate::{EVENT_BUFFER, EventReceiver, ProviderError, ProviderEvent};

/// One model call in flight: who is called, its deadline, how to stop it,
/// and where its events go.
pub(crate) struct Call {
    provider: &'static str,
    /// The provider's count of retries, shared by all its calls.
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
    settings: HttpSettings,
    cancel: CancellationToken,
    deadline: Instant,
    events: mpsc::Sender<Result<ProviderEvent, ProviderError>>,
}

impl Call {
    /// A call whose deadline starts now, and the receiver of its events.
    pub(crate) fn new(
        provider: &'static str,
        retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
        settings: &HttpSettings,
        cancel: CancellationToken,
    ) -> (Self, EventReceiver) {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let call = Self {
            provider,
            retries,
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

    /// A protocol error of this call's provider.
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
                self.retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_settings_do_not_panic() {
        let settings = HttpSettings {
            deadline: Duration::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            ..HttpSettings::default()
        };
        let _ = settings.backoff(u32::MAX);
        let (call, _receiver) = Call::new(
            "test",
            Default::default(),
            &settings,
            CancellationToken::new(),
        );
        assert!(call.deadline > Instant::now());
    }

    #[test]
    fn only_rate_limits_and_server_errors_are_retried() {
        for status in [429, 500, 503, 529] {
            assert!(is_retryable(StatusCode::from_u16(status).unwrap()));
        }
        for status in [400, 401, 403, 404, 413] {
            assert!(!is_retryable(StatusCode::from_u16(status).unwrap()));
        }
    }
}
