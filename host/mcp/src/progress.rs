//! A running tool's progress reports as `notifications/progress` to the client that asked for them (its request carried a `progressToken`), through a bounded buffer that never makes the tool wait.

use std::sync::Arc;
use std::time::Duration;

use agent_host_runtime::runtime::{Progress, ProgressUpdate};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};
use tokio::sync::mpsc;

/// Longest the reply to a call waits for its last progress reports to go
/// out: they belong before the result, but a client that does not read
/// must not hold the result back for long.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// Sends one call's progress reports; [`Forwarder::finish`] once the call
/// is over.
pub struct Forwarder {
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("progress::Forwarder")
    }
}

/// A progress sink for one call and the task that sends what it receives.
/// Reports beyond `buffer` waiting are dropped (the newest one that fits
/// is sent): progress is a hint, the call is what matters.
pub fn forward(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    buffer: usize,
) -> (Progress, Forwarder) {
    let (sender, mut receiver) = mpsc::channel::<ProgressNotificationParam>(buffer.max(1));
    let sink: Progress = Arc::new(move |update: &ProgressUpdate| {
        let mut param = ProgressNotificationParam::new(token.clone(), update.done as f64);
        param.total = update.total.map(|total| total as f64);
        param.message = update.message.clone();
        if sender.try_send(param).is_err() {
            tracing::debug!(
                "a progress report was dropped: the client reads slower than the tool reports"
            );
        }
    });
    let task = tokio::spawn(async move {
        while let Some(param) = receiver.recv().await {
            if peer.notify_progress(param).await.is_err() {
                break;
            }
        }
    });
    (sink, Forwarder { task })
}

impl Forwarder {
    /// Waits (briefly) until the reports sent before the call ended are
    /// out. The sink must be gone by now, which it is once the call is.
    pub async fn finish(self) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(FLUSH_WAIT, self.task).await.is_err() {
            abort.abort();
        }
    }
}
