//! A running tool's progress reports as `notifications/progress` to the client that asked for them (its request carried a `progressToken`), through a bounded buffer that never makes the tool wait.
//!
//! Most clients attach a progress token to every request (rmcp's does), and
//! most tools never report: the sending task is started by the first
//! report, so a call without any costs a channel and nothing else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_host_runtime::runtime::{Progress, ProgressUpdate};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};
use tokio::sync::mpsc;

/// Longest the reply to a call waits for its last progress reports to go
/// out: they belong before the result, but a client that does not read
/// must not hold the result back for long.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// The sending side of one call's reports: the receiver until the first
/// report, the task that sends them after.
enum Relay {
    Idle {
        receiver: mpsc::Receiver<ProgressNotificationParam>,
        peer: Peer<RoleServer>,
    },
    Sending(tokio::task::JoinHandle<()>),
    Done,
}

/// Sends one call's progress reports; [`Forwarder::finish`] once the call
/// is over.
pub struct Forwarder {
    relay: Arc<Mutex<Relay>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("progress::Forwarder")
    }
}

/// A progress sink for one call and what sends what it receives. Reports
/// beyond `buffer` waiting are dropped: progress is a hint, the call is
/// what matters.
pub fn forward(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    buffer: usize,
) -> (Progress, Forwarder) {
    let (sender, receiver) = mpsc::channel::<ProgressNotificationParam>(buffer.max(1));
    let relay = Arc::new(Mutex::new(Relay::Idle { receiver, peer }));
    let started = relay.clone();
    let sink: Progress = Arc::new(move |update: &ProgressUpdate| {
        let mut param = ProgressNotificationParam::new(token.clone(), update.done as f64);
        param.total = update.total.map(|total| total as f64);
        param.message = update.message.clone();
        if sender.try_send(param).is_err() {
            tracing::debug!(
                "a progress report was dropped: the client reads slower than the tool reports"
            );
        }
        start_sending(&started);
    });
    (sink, Forwarder { relay })
}

/// Starts the sending task if this is the first report.
fn start_sending(relay: &Mutex<Relay>) {
    let mut relay = relay.lock().unwrap_or_else(|e| e.into_inner());
    if !matches!(*relay, Relay::Idle { .. }) {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let Relay::Idle { mut receiver, peer } = std::mem::replace(&mut *relay, Relay::Done) else {
        return;
    };
    *relay = Relay::Sending(handle.spawn(async move {
        while let Some(param) = receiver.recv().await {
            if peer.notify_progress(param).await.is_err() {
                break;
            }
        }
    }));
}

impl Forwarder {
    /// Waits (briefly) until the reports sent before the call ended are
    /// out. The sink must be gone by now, which it is once the call is.
    pub async fn finish(self) {
        let relay = std::mem::replace(
            &mut *self.relay.lock().unwrap_or_else(|e| e.into_inner()),
            Relay::Done,
        );
        if let Relay::Sending(task) = relay {
            let abort = task.abort_handle();
            if tokio::time::timeout(FLUSH_WAIT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}
