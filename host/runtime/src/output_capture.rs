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

/// A cloneable handle to one captured stream.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    cap: usize,
    inner: Arc<Mutex<Captured>>,
}

impl CapturedOutput {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Arc::new(Mutex::new(Captured::default())),
        }
    }

    fn accept(&self, bytes: &[u8]) {
        let mut captured = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(captured.kept.len());
        let keep = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..keep]);
        captured.dropped += (bytes.len() - keep) as u64;
    }

    /// What was kept, as lossy UTF-8, and how many bytes were dropped.
    pub(crate) fn take(&self) -> (String, u64) {
        let mut captured = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&captured.kept).into_owned();
        let dropped = captured.dropped;
        captured.kept.clear();
        captured.dropped = 0;
        (text, dropped)
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
        let out = CapturedOutput::new(4);
        out.accept(b"ab");
        out.accept(b"cdef");
        assert_eq!(out.take(), ("abcd".to_string(), 2));
        assert_eq!(out.take(), (String::new(), 0));
    }
}
