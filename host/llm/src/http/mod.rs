//! The HTTP side of the providers, one job per file: the shared client, a call with its deadline and retries, Retry-After, error bodies, and the shell that runs a wire format.
//!
//! Every model call runs inside a `Call`: its `guard` races the
//! work against the cancellation token and the call's deadline, so dropping
//! the in-flight future is what aborts a request (no polling). The deadline
//! covers the retries *and* reading the whole answer.

mod call;
mod client;
mod error_body;
mod retry_after;
mod shell;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) use client::{check_base_url, join_url};
pub(crate) use error_body::truncate_chars;
#[cfg(feature = "fuzzing")]
pub(crate) use shell::decode_stream_for_fuzzing;
pub(crate) use shell::{HttpProvider, HttpTarget, WireFormat};

/// Overall deadline of one model call when nothing else is configured.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// Timeouts and retry policy of provider HTTP calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// How long opening a connection (TCP and TLS) may take.
    pub connect_timeout: Duration,
    /// Overall deadline of one model call, retries included.
    pub deadline: Duration,
    /// Retries after the first try, on 429, 5xx and connection failures.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles with every retry.
    pub initial_backoff: Duration,
    /// The longest wait between tries, also for a server's Retry-After.
    pub max_backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            deadline: DEFAULT_DEADLINE,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
