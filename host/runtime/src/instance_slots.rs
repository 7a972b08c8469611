//! The instance pool's slots: how many instances calls may hold, how many stay warm for extensions, and waiting for a free one.
//!
//! Shared by calls, hook runs and plugin checks (the loader), so it sits
//! below all of them.

use std::sync::Arc;

use crate::config::SandboxConfig;
use crate::error::FailureKind;

/// Instances kept warm for extensions: a quarter of the pool.
pub(crate) fn warm_instance_limit(sandbox: &SandboxConfig) -> usize {
    sandbox.max_instances as usize / 4
}

/// Instances that calls may hold at once: the pool less the warm share.
pub(crate) fn instance_slot_count(sandbox: &SandboxConfig) -> usize {
    (sandbox.max_instances as usize - warm_instance_limit(sandbox)).max(1)
}

/// Waits for a free instance slot, at most `wait` (a call's own timeout):
/// with every slot busy a caller queues rather than failing at once, and
/// fails clearly if none frees up in time.
pub(crate) async fn acquire_instance_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    sandbox: &SandboxConfig,
    wait: std::time::Duration,
) -> Result<tokio::sync::OwnedSemaphorePermit, FailureKind> {
    let busy = || FailureKind::NoInstanceSlot {
        instances: sandbox.max_instances,
        waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
    };
    match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(_)) | Err(_) => Err(busy()),
    }
}
