//! The HTTP shell every HTTP provider runs in: checking its target, the shared client, one task per call, sending with retries, reading the answer; a [`WireFormat`] supplies all that differs between APIs.
//!
//! The shell decides *how* an answer is read (whole, or event by event
//! until the wire format says it is complete, then what the end of the body
//! means); the wire format decides what the bytes say.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::RequestBuilder;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::HttpSettings;
use super::call::{Call, SseBody};
use super::client::{check_base_url, shared_client};
use crate::sse::SseEvent;
use crate::{ChatRequest, EventReceiver, ProviderError, ProviderEvent};

/// One API's wire format: the request it wants and how to read its answers.
pub(crate) trait WireFormat: Send + Sync + 'static {
    /// The provider's short name in messages and logs (`openai`).
    const NAME: &'static str;
    /// What a streamed answer has said so far; a fresh one per call.
    type Stream: Default + Send;

    /// The JSON request body; `default_model` answers a request that names
    /// no model.
    fn request_body(&self, request: &ChatRequest, default_model: &str) -> Value;

    /// Adds this API's headers (accept, authentication, version) to a POST
    /// that already carries the JSON body.
    fn headers(&self, post: RequestBuilder, api_key: Option<&str>) -> RequestBuilder;

    /// Whether a successful answer with this `Content-Type` is one whole
    /// JSON document rather than an event stream. By default every answer
    /// is read as a stream.
    fn is_whole_answer(&self, content_type: Option<&str>) -> bool {
        let _ = content_type;
        false
    }

    /// A whole answer, as the same events a stream gives. Only called when
    /// [`WireFormat::is_whole_answer`] said so; a format that never does
    /// keeps this default.
    fn decode_whole(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, ProviderError> {
        let _ = body;
        Err(ProviderError::protocol(
            Self::NAME,
            "a whole JSON answer, where only streamed ones are read",
        ))
    }

    /// One server-sent event of a streamed answer.
    fn decode_event(
        &self,
        stream: &mut Self::Stream,
        event: &SseEvent,
    ) -> Result<Vec<ProviderEvent>, ProviderError>;

    /// The answer said it is complete: nothing after this is read.
    fn is_complete(stream: &Self::Stream) -> bool;

    /// The body ended before [`WireFormat::is_complete`]: the last events,
    /// or why the answer is broken.
    fn decode_end(&self, stream: &mut Self::Stream) -> Result<Vec<ProviderEvent>, ProviderError>;
}

/// Where an HTTP provider sends its calls, and with what.
#[derive(Clone)]
pub(crate) struct HttpTarget {
    /// The base URL as configured (checked, and named in errors).
    pub(crate) base_url: String,
    /// The endpoint the requests go to.
    pub(crate) url: String,
    pub(crate) api_key: Option<String>,
    pub(crate) model: String,
    pub(crate) http: HttpSettings,
}

impl std::fmt::Debug for HttpTarget {
    // The API key stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("model", &self.model)
            .field("http", &self.http)
            .finish()
    }
}

/// A provider made of the shell and a wire format.
#[derive(Debug)]
pub(crate) struct HttpProvider<W> {
    inner: Arc<Shared<W>>,
}

impl<W> Clone for HttpProvider<W> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Shared<W> {
    wire: W,
    target: HttpTarget,
    client: reqwest::Client,
    retries: Arc<std::sync::atomic::AtomicU64>,
}

impl<W: WireFormat> HttpProvider<W> {
    /// Checks the target (a usable base URL, a model name) and takes the
    /// shared HTTP client.
    pub(crate) fn new(wire: W, target: HttpTarget) -> Result<Self, ProviderError> {
        let provider = W::NAME;
        check_base_url(&target.base_url).map_err(|reason| {
            ProviderError::Config(format!(
                "{provider} base URL `{}` {reason}",
                target.base_url
            ))
        })?;
        if target.model.trim().is_empty() {
            return Err(ProviderError::Config(format!(
                "the {provider} provider needs a model name"
            )));
        }
        let client = shared_client(&target.http)?;
        Ok(Self {
            inner: Arc::new(Shared {
                wire,
                target,
                client,
                retries: Arc::default(),
            }),
        })
    }

    /// Requests sent again after a failure, over all calls so far.
    pub(crate) fn retries(&self) -> u64 {
        self.inner
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The configured model.
    pub(crate) fn model(&self) -> &str {
        &self.inner.target.model
    }

    /// Starts a call on its own task (see [`crate::Provider::start`]).
    pub(crate) fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        let (call, receiver) = Call::new(
            W::NAME,
            Arc::clone(&self.inner.retries),
            &self.inner.target.http,
            cancel,
        );
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let outcome = call.guard(inner.run(&call, request)).await;
            call.end(outcome).await;
        });
        receiver
    }
}

impl<W: WireFormat> Shared<W> {
    async fn run(&self, call: &Call, request: ChatRequest) -> Result<(), ProviderError> {
        let body = self.wire.request_body(&request, &self.target.model);
        let body = Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|err| call.protocol(format!("cannot encode the request: {err}")))?,
        );
        let url = &self.target.url;
        let response = call
            .send_with_retries(url, || {
                let post = self
                    .client
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
                self.wire.headers(post, self.target.api_key.as_deref())
            })
            .await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        if self.wire.is_whole_answer(content_type) {
            let bytes = call.read_body(response).await?;
            for event in self.wire.decode_whole(&bytes)? {
                call.emit(event).await?;
            }
            return Ok(());
        }
        let mut body = SseBody::new(response);
        let mut stream = W::Stream::default();
        while let Some(event) = body.next(call).await? {
            for event in self.wire.decode_event(&mut stream, &event)? {
                call.emit(event).await?;
            }
            if W::is_complete(&stream) {
                return Ok(());
            }
        }
        for event in self.wire.decode_end(&mut stream)? {
            call.emit(event).await?;
        }
        Ok(())
    }
}

/// The streamed decoding `run` does, on events already parsed (or the
/// parser's error), for the fuzz targets (docs/fuzzing.md).
#[cfg(feature = "fuzzing")]
pub(crate) fn decode_stream_for_fuzzing<W: WireFormat>(
    wire: &W,
    events: impl Iterator<Item = Result<SseEvent, String>>,
) -> Result<Vec<ProviderEvent>, String> {
    let mut stream = W::Stream::default();
    let mut out = Vec::new();
    for event in events {
        let decoded = wire.decode_event(&mut stream, &event?);
        out.extend(decoded.map_err(|err| err.to_string())?);
        if W::is_complete(&stream) {
            return Ok(out);
        }
    }
    out.extend(
        wire.decode_end(&mut stream)
            .map_err(|err| err.to_string())?,
    );
    Ok(out)
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
