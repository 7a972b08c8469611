//! A stdio MCP server's process: started with only the environment it is given, its stderr kept (the last lines, escaped) for error messages, and its stdout watched for messages the transport will drop (over the size cap, or not JSON).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt as _, ReadBuf};
use tokio::sync::Notify;

/// Lines of a child's stderr kept for error messages.
const STDERR_LINES: usize = 12;
/// Longest stderr line kept, in characters.
const STDERR_LINE_CHARS: usize = 300;

/// The last lines a child wrote to stderr, escaped, for error messages.
#[derive(Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    pub(crate) fn push(&self, line: &str) {
        let shown: String = line
            .chars()
            .take(STDERR_LINE_CHARS)
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect();
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(shown);
    }

    /// `"; its stderr ended with: ..."`, or nothing when it wrote nothing.
    pub(crate) fn suffix(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.is_empty() {
            return String::new();
        }
        let tail: Vec<&str> = lines
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(String::as_str)
            .collect();
        format!("; its stderr ended with: {}", tail.join(" | "))
    }
}

/// What the stdout watch saw: messages the transport drops without a
/// word to the call waiting on them.
#[derive(Default)]
pub(crate) struct Framing {
    /// Signalled for each message over the size cap.
    pub(crate) oversized: Notify,
    /// Messages over the cap so far.
    pub(crate) oversized_count: AtomicU64,
    /// Lines that cannot be JSON-RPC (they do not start with `{` or `[`).
    pub(crate) malformed: AtomicU64,
}

/// The child's stdout as the transport reads it, with each line measured on
/// the way: a line growing past `max` is reported once (the transport
/// drops it, so the call it answers would otherwise wait for its
/// deadline), and a line that cannot be JSON is counted.
pub(crate) struct MeteredStdout<R> {
    inner: R,
    max: usize,
    line: usize,
    first_byte_seen: bool,
    framing: Arc<Framing>,
}

impl<R> MeteredStdout<R> {
    pub(crate) fn new(inner: R, max: usize, framing: Arc<Framing>) -> Self {
        Self {
            inner,
            max,
            line: 0,
            first_byte_seen: false,
            framing,
        }
    }

    fn measure(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.line = 0;
                self.first_byte_seen = false;
                continue;
            }
            self.line += 1;
            if self.line == self.max + 1 {
                self.framing.oversized_count.fetch_add(1, Ordering::Relaxed);
                self.framing.oversized.notify_waiters();
            }
            if !self.first_byte_seen && !byte.is_ascii_whitespace() {
                self.first_byte_seen = true;
                if byte != b'{' && byte != b'[' {
                    self.framing.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for MeteredStdout<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = buf.filled()[before..].to_vec();
            self.measure(&fresh);
        }
        polled
    }
}

/// Starts the child with exactly `env` as its environment. The program is
/// looked up on the host's PATH (the child's own PATH is only what `env`
/// gives it).
pub(crate) fn spawn(
    program: &str,
    args: &[String],
    env: &std::collections::BTreeMap<String, String>,
) -> Result<tokio::process::Child, String> {
    let resolved = resolve_program(program).ok_or_else(|| {
        format!("the command `{program}` was not found on the host's PATH; check `command` in the config")
    })?;
    let mut command = tokio::process::Command::new(&resolved);
    command
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
        .spawn()
        .map_err(|err| format!("cannot run `{}`: {err}", resolved.display()))
}

fn resolve_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(program);
    if program.contains('/') {
        return path.is_file().then(|| path.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Keeps the last lines of the child's stderr (bounded per line: a line
/// without an end is cut, not buffered) and logs them at debug level.
pub(crate) async fn read_stderr(
    stderr: tokio::process::ChildStderr,
    tail: StderrTail,
    server: String,
) {
    let mut reader = tokio::io::BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take((STDERR_LINE_CHARS * 4) as u64);
        match tokio::io::AsyncBufReadExt::read_until(&mut limited, b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if !text.is_empty() {
                    tracing::debug!(server = %server, line = %text, "MCP server stderr");
                    tail.push(text);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_kept_short_and_escaped() {
        let tail = StderrTail::default();
        for i in 0..20 {
            tail.push(&format!("line {i}"));
        }
        tail.push("\x1b[2Jboom");
        let suffix = tail.suffix();
        assert!(
            suffix.contains("line 19") && suffix.contains("\\u{1b}[2Jboom"),
            "{suffix}"
        );
        assert!(!suffix.contains("line 1 "));
        assert!(!suffix.contains('\x1b'));
    }

    #[test]
    fn programs_are_found_on_the_path_or_refused() {
        assert!(resolve_program("sh").is_some());
        assert!(resolve_program("no-such-program-agent-host").is_none());
        assert!(resolve_program("/no/such/file").is_none());
    }

    #[tokio::test]
    async fn the_meter_reports_oversized_and_malformed_lines() {
        let framing = Arc::new(Framing::default());
        let input: &[u8] = b"{\"ok\":1}\nnot json\n{\"big\":\"xxxxxxxxxxxxxxxxxxxx\"}\n  [1]\n";
        let mut metered = MeteredStdout::new(input, 16, framing.clone());
        let mut out = Vec::new();
        metered.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, input);
        assert_eq!(framing.oversized_count.load(Ordering::Relaxed), 1);
        assert_eq!(framing.malformed.load(Ordering::Relaxed), 1);
    }
}
