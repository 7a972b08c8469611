//! The instance pools' slots: how many instances calls may hold (in one share per call engine), how many stay warm for extensions, and waiting for a free one.
//!
//! Shared by calls, hook runs and plugin checks (the loader), so it sits
//! below all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

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
    shares: Box<[Arc<Share>]>,
    total: usize,
}

/// One engine's slots: a count taken and given back with one atomic
/// operation each (a call takes and frees one every time), and a wake-up
/// for callers waiting while none is free. A semaphore would lock its
/// waiter list on every release, waiters or not. Aligned to cache lines of
/// its own: shares made one after another would sit side by side, and the
/// cores taking from them would bounce one line between them.
#[derive(Debug)]
#[repr(align(128))]
struct Share {
    free: AtomicUsize,
    /// Callers between "none free" and getting one.
    waiting: AtomicUsize,
    freed: Notify,
}

/// A taken instance slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct SlotPermit {
    share: Arc<Share>,
}

impl Share {
    fn new(slots: usize) -> Self {
        Self {
            free: AtomicUsize::new(slots),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    fn try_take(self: &Arc<Self>) -> Option<SlotPermit> {
        // SeqCst here and in `Drop for SlotPermit`: a release either sees
        // a waiter's count (and wakes it) or the waiter's next try sees
        // the freed slot.
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |free| {
                free.checked_sub(1)
            })
            .ok()
            .map(|_| SlotPermit {
                share: self.clone(),
            })
    }

    /// Waits until a slot of this share is free and takes it.
    async fn take(self: &Arc<Self>) -> SlotPermit {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _done = WaitingGuard(&self.waiting);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the next try, so a release after the try
            // wakes this waiter.
            freed.as_mut().enable();
            if let Some(permit) = self.try_take() {
                return permit;
            }
            freed.await;
        }
    }
}

/// Takes a caller off a share's waiting count however its wait ends
/// (a slot, or the caller's timeout dropping the wait).
struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        self.share.free.fetch_add(1, Ordering::SeqCst);
        if self.share.waiting.load(Ordering::SeqCst) > 0 {
            self.share.freed.notify_one();
        }
    }
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
                    Arc::new(Share::new(total / shares + extra))
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
            .map(|share| share.free.load(Ordering::Relaxed))
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
    ) -> Result<SlotPermit, FailureKind> {
        let count = self.shares.len();
        let own = &self.shares[preferred % count];
        // A free slot is taken at once, without arming a timer for the
        // wait: the own share's first, then the others' in turn.
        for share in (0..count).map(|step| &self.shares[(preferred + step) % count]) {
            if let Some(permit) = share.try_take() {
                return Ok(permit);
            }
        }
        match tokio::time::timeout(wait, own.take()).await {
            Ok(permit) => Ok(permit),
            Err(_) => Err(FailureKind::NoInstanceSlot {
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
        let sizes: Vec<usize> = slots
            .shares
            .iter()
            .map(|s| s.free.load(Ordering::Relaxed))
            .collect();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_caller_gets_the_slot_another_frees() {
        let sandbox = SandboxConfig {
            max_instances: 2,
            ..SandboxConfig::default()
        };
        let slots = Arc::new(InstanceSlots::new(&sandbox, 1));
        let wait = std::time::Duration::from_secs(30);
        for _round in 0..200 {
            let mut held = Vec::new();
            for _ in 0..slots.total {
                held.push(slots.acquire(0, &sandbox, wait).await.unwrap());
            }
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let slots = slots.clone();
                    let sandbox = sandbox.clone();
                    tokio::spawn(async move { slots.acquire(0, &sandbox, wait).await.is_ok() })
                })
                .collect();
            while slots.shares[0].waiting.load(Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
            }
            // Each freed slot goes to a waiter; none is lost between a
            // waiter's last try and its wait.
            held.clear();
            for waiter in waiters {
                assert!(waiter.await.unwrap());
            }
            assert_eq!(slots.busy(), 0);
        }
    }
}
