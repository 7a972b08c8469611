//! Captures a guest's stdout or stderr in memory, keeping the first bytes and counting the rest.
//!
//! A plugin must never write onto the user's terminal, and a plugin that
//! prints gigabytes must neither fill the host's memory nor fail for it:
//! writes past the cap are accepted and dropped.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Largest write the guest is told it may make at once.
const WRITE_BUDGET: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: u64,
}

/// A call's two captured streams (stdout, stderr), in one allocation and
/// behind one lock: the host reads both at once. This handle reads them;
/// [`CapturedStreams::stdout`] and [`CapturedStreams::stderr`] make the
/// handles the guest writes through.
#[derive(Debug, Clone)]
pub(crate) struct CapturedStreams {
    shared: Arc<Streams>,
}

#[derive(Debug)]
struct Streams {
    cap: usize,
    streams: Mutex<[Captured; 2]>,
}

/// What a call printed: each stream's kept text (lossy UTF-8) and how many
/// bytes it dropped.
pub(crate) struct Printed {
    pub stdout: (String, u64),
    pub stderr: (String, u64),
}

/// The handle one of the streams is written through.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    shared: Arc<Streams>,
    which: usize,
}

impl CapturedStreams {
    /// Two streams keeping up to `cap` bytes each.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            shared: Arc::new(Streams {
                cap,
                streams: Default::default(),
            }),
        }
    }

    pub(crate) fn stdout(&self) -> CapturedOutput {
        CapturedOutput {
            shared: self.shared.clone(),
            which: 0,
        }
    }

    pub(crate) fn stderr(&self) -> CapturedOutput {
        CapturedOutput {
            shared: self.shared.clone(),
            which: 1,
        }
    }

    /// What both streams kept; both are emptied.
    pub(crate) fn take(&self) -> Printed {
        let mut streams = self.shared.lock();
        let [stdout, stderr] = &mut *streams;
        Printed {
            stdout: stdout.take(),
            stderr: stderr.take(),
        }
    }

    /// Forgets what both streams captured.
    pub(crate) fn clear(&self) {
        for captured in self.shared.lock().iter_mut() {
            captured.reset();
            // Streams kept for later calls keep no large buffer.
            if captured.kept.capacity() > 4096 {
                captured.kept = Vec::new();
            }
        }
    }
}

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, [Captured; 2]> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Captured {
    fn take(&mut self) -> (String, u64) {
        // Most calls print nothing: no scan and no allocation then.
        let text = if self.kept.is_empty() {
            String::new()
        } else {
            String::from_utf8_lossy(&self.kept).into_owned()
        };
        (text, self.reset())
    }

    /// Empties the stream; returns how many bytes it had dropped.
    fn reset(&mut self) -> u64 {
        self.kept.clear();
        std::mem::take(&mut self.dropped)
    }
}

impl CapturedOutput {
    fn accept(&self, bytes: &[u8]) {
        let mut streams = self.shared.lock();
        let captured = &mut streams[self.which];
        let room = self.shared.cap.saturating_sub(captured.kept.len());
        let keep = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..keep]);
        captured.dropped += (bytes.len() - keep) as u64;
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_counts_the_rest() {
        let streams = CapturedStreams::new(4);
        let (out, err) = (streams.stdout(), streams.stderr());
        out.accept(b"ab");
        out.accept(b"cdef");
        err.accept(b"e");
        let printed = streams.take();
        assert_eq!(
            (printed.stdout, printed.stderr),
            (("abcd".to_string(), 2), ("e".to_string(), 0))
        );
        let printed = streams.take();
        assert_eq!(
            (printed.stdout, printed.stderr),
            ((String::new(), 0), (String::new(), 0))
        );
        err.accept(b"xyz");
        streams.clear();
        let printed = streams.take();
        assert_eq!(
            (printed.stdout, printed.stderr),
            ((String::new(), 0), (String::new(), 0))
        );
    }
}
