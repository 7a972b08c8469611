//! Tool-list changes: the runtime's plugin events (a plugin loaded, replaced or removed) counted on one watch channel that every client session follows, so a burst of reloads reaches a slow client as one `list_changed`.

use agent_host_runtime::{PluginEvent, Runtime};
use rmcp::service::{Peer, RoleServer, SubscriptionContext};
use tokio::sync::{broadcast, watch};

/// Follows the runtime's plugin events for as long as it lives.
pub struct ToolListChanges {
    receiver: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ToolListChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolListChanges")
            .field("changes", &*self.receiver.borrow())
            .finish()
    }
}

impl Drop for ToolListChanges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ToolListChanges {
    /// Starts counting the changes of `runtime`'s tool list. Must be called
    /// inside a tokio runtime.
    pub fn follow(runtime: &Runtime) -> Self {
        let mut events = runtime.subscribe();
        let (sender, receiver) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(PluginEvent::Loaded { .. } | PluginEvent::Removed { .. }) => {
                        sender.send_modify(|count| *count += 1);
                    }
                    // A refused update changes nothing: the old version
                    // serves; a tier-up changes only the code behind it.
                    Ok(PluginEvent::Failed { .. } | PluginEvent::TieredUp { .. }) => {}
                    // Missed events may have been changes.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        sender.send_modify(|count| *count += 1);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Self { receiver, task }
    }

    /// A receiver that sees the changes from now on.
    fn watch(&self) -> watch::Receiver<u64> {
        let mut receiver = self.receiver.clone();
        receiver.mark_unchanged();
        receiver
    }

    /// Tells a handshake-era session (stdio, or an HTTP session with an
    /// `Mcp-Session-Id`) of every change until it goes away.
    pub fn notify_session(&self, peer: Peer<RoleServer>) {
        let mut changes = self.watch();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if peer.notify_tool_list_changed().await.is_err() {
                    // The session is gone: nothing left to tell.
                    break;
                }
            }
        });
    }

    /// Serves one 2026-07-28 `subscriptions/listen` stream: a change becomes
    /// `notifications/tools/list_changed` on it, until the client closes it.
    pub async fn serve_subscription(&self, subscription: &SubscriptionContext) {
        if subscription.accepted().tools_list_changed != Some(true) {
            subscription.cancelled().await;
            return;
        }
        let mut changes = self.watch();
        loop {
            tokio::select! {
                () = subscription.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() || subscription.sink().notify_tool_list_changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
