//! The one writer task of the session store: batches writes by count or interval, applies each batch atomically, flushes.
//!
//! Callers never wait for the disk: they queue an operation and go on. The
//! task applies a sled batch when `batch_size` operations are queued or
//! `interval` has passed, and flushes to disk at every interval that wrote
//! something, so a crash (kill -9) loses at most one interval. `close`
//! drains and flushes synchronously.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// When the writer applies and flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    pub batch_size: usize,
    pub interval: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            interval: Duration::from_millis(100),
        }
    }
}

pub(crate) enum WriteOp {
    Put(Vec<u8>, Vec<u8>),
    DeletePrefix(Vec<u8>),
    Flush(oneshot::Sender<()>),
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    pub operations: u64,
    pub batches: u64,
    pub flushes: u64,
}

#[derive(Default)]
struct Counters {
    operations: AtomicU64,
    batches: AtomicU64,
    flushes: AtomicU64,
}

/// Handle to the writer task.
pub struct Writer {
    /// Taken (dropped) by `close`, which is how the task learns to stop.
    sender: std::sync::Mutex<Option<mpsc::UnboundedSender<WriteOp>>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the task; must be called inside a tokio runtime.
    pub fn start(tree: sled::Tree, config: WriterConfig) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(tree, config, receiver, counters.clone()));
        Self {
            sender: std::sync::Mutex::new(Some(sender)),
            task: std::sync::Mutex::new(Some(task)),
            counters,
        }
    }

    pub(crate) fn send(&self, op: WriteOp) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let sent = sender
            .as_ref()
            .is_some_and(|sender| sender.send(op).is_ok());
        if !sent {
            tracing::error!("session writer has stopped; a write was lost");
        }
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            operations: self.counters.operations.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
        }
    }

    /// Applies everything queued so far and flushes it to disk.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        self.send(WriteOp::Flush(ack));
        let _ = done.await;
    }

    /// Drains the queue, flushes, and waits for the task to end (it lets
    /// go of the database with it).
    pub async fn close(&self) {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

struct Pending {
    batch: sled::Batch,
    count: usize,
    written_since_flush: bool,
}

fn apply(tree: &sled::Tree, pending: &mut Pending, counters: &Counters) {
    if pending.count == 0 {
        return;
    }
    let batch = std::mem::take(&mut pending.batch);
    match tree.apply_batch(batch) {
        Ok(()) => {
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters
                .operations
                .fetch_add(pending.count as u64, Ordering::Relaxed);
            pending.written_since_flush = true;
        }
        Err(err) => tracing::error!(
            "session store write failed ({} operations lost): {err}",
            pending.count
        ),
    }
    pending.count = 0;
}

/// Flushes without blocking a runtime thread on the fsync.
async fn flush(tree: &sled::Tree, pending: &mut Pending, counters: &Counters) {
    if !pending.written_since_flush {
        return;
    }
    match tree.flush_async().await {
        Ok(_) => {
            counters.flushes.fetch_add(1, Ordering::Relaxed);
            pending.written_since_flush = false;
        }
        Err(err) => tracing::error!("session store flush failed: {err}"),
    }
}

async fn run(
    tree: sled::Tree,
    config: WriterConfig,
    mut receiver: mpsc::UnboundedReceiver<WriteOp>,
    counters: Arc<Counters>,
) {
    let mut pending = Pending {
        batch: sled::Batch::default(),
        count: 0,
        written_since_flush: false,
    };
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            op = receiver.recv() => match op {
                Some(WriteOp::Put(key, value)) => {
                    pending.batch.insert(key, value);
                    pending.count += 1;
                    if pending.count >= config.batch_size.max(1) {
                        apply(&tree, &mut pending, &counters);
                    }
                }
                Some(WriteOp::DeletePrefix(prefix)) => {
                    for key in tree.scan_prefix(&prefix).keys().flatten() {
                        pending.batch.remove(key);
                        pending.count += 1;
                    }
                    apply(&tree, &mut pending, &counters);
                }
                Some(WriteOp::Flush(ack)) => {
                    apply(&tree, &mut pending, &counters);
                    flush(&tree, &mut pending, &counters).await;
                    let _ = ack.send(());
                }
                None => {
                    apply(&tree, &mut pending, &counters);
                    flush(&tree, &mut pending, &counters).await;
                    return;
                }
            },
            _ = ticker.tick() => {
                apply(&tree, &mut pending, &counters);
                flush(&tree, &mut pending, &counters).await;
            }
        }
    }
}
