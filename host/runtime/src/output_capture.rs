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

/// A call's two captured streams, in one allocation and behind one lock:
/// the host reads both at once.
#[derive(Debug)]
struct Streams {
    cap: usize,
    streams: Mutex<[Captured; 2]>,
}

/// A cloneable handle to one captured stream.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    shared: Arc<Streams>,
    which: usize,
}

impl CapturedOutput {
    /// Two streams (stdout, stderr) keeping up to `cap` bytes each.
    pub(crate) fn pair(cap: usize) -> (Self, Self) {
        let shared = Arc::new(Streams {
            cap,
            streams: Default::default(),
        });
        let stderr = Self {
            shared: shared.clone(),
            which: 1,
        };
        (Self { shared, which: 0 }, stderr)
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, [Captured; 2]> {
        self.shared
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn accept(&self, bytes: &[u8]) {
        let mut streams = self.streams();
        let captured = &mut streams[self.which];
        let room = self.shared.cap.saturating_sub(captured.kept.len());
        let keep = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..keep]);
        captured.dropped += (bytes.len() - keep) as u64;
    }

    /// Forgets what both streams captured.
    pub(crate) fn clear_both(&self) {
        for captured in self.streams().iter_mut() {
            captured.kept.clear();
            // A stream kept for later calls keeps no large buffer.
            if captured.kept.capacity() > 4096 {
                captured.kept = Vec::new();
            }
            captured.dropped = 0;
        }
    }

    /// What each of the two streams kept (this one's first), as lossy
    /// UTF-8, and how many bytes each dropped; both are emptied.
    pub(crate) fn take_both(&self) -> [(String, u64); 2] {
        let mut streams = self.streams();
        let mut take = |which: usize| {
            let captured = &mut streams[which];
            let text = String::from_utf8_lossy(&captured.kept).into_owned();
            let dropped = captured.dropped;
            captured.kept.clear();
            captured.dropped = 0;
            (text, dropped)
        };
        let own = take(self.which);
        let other = take(1 - self.which);
        [own, other]
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
        let (out, err) = CapturedOutput::pair(4);
        out.accept(b"ab");
        out.accept(b"cdef");
        err.accept(b"e");
        assert_eq!(
            out.take_both(),
            [("abcd".to_string(), 2), ("e".to_string(), 0)]
        );
        assert_eq!(out.take_both(), [(String::new(), 0), (String::new(), 0)]);
        err.accept(b"xyz");
        out.clear_both();
        assert_eq!(err.take_both(), [(String::new(), 0), (String::new(), 0)]);
    }
}
