//! The stdio transport: one MCP session over the process's stdin and stdout (nothing but protocol goes to stdout; logs go to stderr).

use rmcp::ServiceExt;
use rmcp::transport::async_rw::AsyncRwTransport;

use crate::error::ServeError;
use crate::server::ToolServer;

/// Serves `server` on stdin/stdout until the client closes stdin or
/// `shutdown` is cancelled. A line longer than the request limit is
/// dropped (and logged), the session goes on; so does a line that is not
/// JSON.
pub async fn serve(
    server: ToolServer,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    let limit = server.config().max_request_bytes();
    // Through tokio's non-blocking pipe driver when stdin and stdout are
    // pipes (as MCP clients start servers): no hand-off to a blocking
    // thread for every message.
    let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
    // rmcp waits up to 5 s on EOF for handlers to finish; an open
    // subscription stream never does, so EOF ends them first.
    let stdin = EndOnEof {
        inner: stdin,
        server: server.clone(),
    };
    let transport = AsyncRwTransport::new_server(stdin, stdout).with_max_line_length(limit);
    let running = server
        .serve_with_ct(transport, shutdown)
        .await
        .map_err(|err| ServeError::Stdio(err.to_string()))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|err| ServeError::Stdio(err.to_string()))
}

/// Stdin that tells the server when the client closed it.
struct EndOnEof<R> {
    inner: R,
    server: ToolServer,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for EndOnEof<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            self.server.end_subscriptions();
        }
        polled
    }
}
