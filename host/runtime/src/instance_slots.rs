//! The instance pools' slots: how many instances calls may hold (in one share per call engine), how many stay warm for extensions, and waiting for a free one.
//!
//! Shared by calls, hook runs and plugin checks (the loader), so it sits
//! below all of them.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// The call slots, split into one share per call engine: a thread takes
/// from its own engine's share, so threads on different engines do not
/// update one counter on every call, and the total stays
/// [`instance_slot_count`] however the shares are used.
pub(crate) struct InstanceSlots {
    shares: Box<[Arc<Semaphore>]>,
    total: usize,
}

impl InstanceSlots {
    /// [`instance_slot_count`] slots in `shares` shares (at least one).
    pub(crate) fn new(sandbox: &SandboxConfig, shares: usize) -> Self {
        let total = instance_slot_count(sandbox);
        let shares = shares.clamp(1, total);
        Self {
            shares: (0..shares)
                .map(|share| {
                    let extra = usize::from(share < total % shares);
                    Arc::new(Semaphore::new(total / shares + extra))
                })
                .collect(),
            total,
        }
    }

    /// Slots taken right now.
    pub(crate) fn busy(&self) -> usize {
        let free: usize = self
            .shares
            .iter()
            .map(|share| share.available_permits())
            .sum();
        self.total - free
    }

    /// Takes a free slot, from share `preferred` first (a thread's engine),
    /// else from any share with one free; with every slot busy it waits
    /// for one of `preferred`'s, at most `wait` (a call's own timeout), so
    /// a caller queues rather than failing at once, and fails clearly if
    /// none frees up in time.
    pub(crate) async fn acquire(
        &self,
        preferred: usize,
        sandbox: &SandboxConfig,
        wait: std::time::Duration,
    ) -> Result<OwnedSemaphorePermit, FailureKind> {
        let count = self.shares.len();
        let own = &self.shares[preferred % count];
        // A free slot is taken at once, without arming a timer for the
        // wait: the own share's first, then the others' in turn.
        for share in (0..count).map(|step| &self.shares[(preferred + step) % count]) {
            if let Ok(permit) = share.clone().try_acquire_owned() {
                return Ok(permit);
            }
        }
        match tokio::time::timeout(wait, own.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(FailureKind::NoInstanceSlot {
                instances: sandbox.max_instances,
                waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_call_slots() {
        let sandbox = SandboxConfig {
            max_instances: 11,
            ..SandboxConfig::default()
        };
        let slots = InstanceSlots::new(&sandbox, 3);
        let sizes: Vec<usize> = slots.shares.iter().map(|s| s.available_permits()).collect();
        assert_eq!(sizes, [3, 3, 3]);
        assert_eq!(slots.total, instance_slot_count(&sandbox));
        // More shares than slots: one slot each.
        let tiny = SandboxConfig {
            max_instances: 2,
            ..SandboxConfig::default()
        };
        assert_eq!(InstanceSlots::new(&tiny, 8).shares.len(), 2);
    }

    #[tokio::test]
    async fn a_full_share_borrows_a_free_one_and_the_total_holds() {
        let sandbox = SandboxConfig {
            max_instances: 4,
            ..SandboxConfig::default()
        };
        let slots = InstanceSlots::new(&sandbox, 3);
        let wait = std::time::Duration::from_millis(20);
        let mut held = Vec::new();
        for _ in 0..slots.total {
            held.push(slots.acquire(0, &sandbox, wait).await.unwrap());
        }
        assert_eq!(slots.busy(), slots.total);
        let refused = slots.acquire(1, &sandbox, wait).await.unwrap_err();
        assert!(matches!(
            refused,
            FailureKind::NoInstanceSlot { instances: 4, .. }
        ));
        held.pop();
        assert!(slots.acquire(0, &sandbox, wait).await.is_ok());
    }
}
