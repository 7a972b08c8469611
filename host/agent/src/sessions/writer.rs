//! The one writer task of the sessions: batches writes by count or interval, applies each batch atomically through the session store, flushes.
//!
//! Callers never wait for the disk: they queue a write and go on. The task
//! applies a batch when `batch_size` writes are queued or `interval` has
//! passed, and flushes at every interval that wrote something, so a crash
//! (kill -9) loses at most one interval. `close` drains and flushes. The
//! store's calls block, so they run on tokio's blocking pool, one at a time
//! and in queue order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent_host_runtime::StoreError;
use agent_host_runtime::store::{SessionStore, SessionWrite};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// When the writer applies and flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Queued writes that make a batch be applied at once.
    pub batch_size: usize,
    /// Longest a write waits before its batch is applied and flushed.
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

enum WriteOp {
    Write(SessionWrite),
    Flush(oneshot::Sender<()>),
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Writes applied.
    pub operations: u64,
    /// Batches applied.
    pub batches: u64,
    /// Flushes that made applied writes durable.
    pub flushes: u64,
    /// Time spent in those flushes, in microseconds.
    pub flush_us: u64,
}

#[derive(Default)]
struct Counters {
    operations: AtomicU64,
    batches: AtomicU64,
    flushes: AtomicU64,
    flush_us: AtomicU64,
}

/// Handle to the writer task.
pub(crate) struct Writer {
    /// Taken (dropped) by `close`, which is how the task learns to stop.
    sender: std::sync::Mutex<Option<mpsc::UnboundedSender<WriteOp>>>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the task; must be called inside a tokio runtime.
    pub(crate) fn start(backend: Arc<dyn SessionStore>, config: WriterConfig) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(backend, config, receiver, counters.clone()));
        Self {
            sender: std::sync::Mutex::new(Some(sender)),
            task: std::sync::Mutex::new(Some(task)),
            counters,
        }
    }

    /// Queues one write.
    pub(crate) fn send(&self, write: SessionWrite) {
        self.queue(WriteOp::Write(write));
    }

    fn queue(&self, op: WriteOp) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let sent = sender
            .as_ref()
            .is_some_and(|sender| sender.send(op).is_ok());
        if !sent {
            tracing::error!("session writer has stopped; a write was lost");
        }
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            operations: self.counters.operations.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            flush_us: self.counters.flush_us.load(Ordering::Relaxed),
        }
    }

    /// Applies everything queued so far and flushes it.
    pub(crate) async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        self.queue(WriteOp::Flush(ack));
        let _ = done.await;
    }

    /// Drains the queue, flushes, and waits for the task to end (it lets
    /// go of the store with it).
    pub(crate) async fn close(&self) {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The task's side: the store, the batch being gathered, the counters.
struct Pending {
    backend: Arc<dyn SessionStore>,
    batch: Vec<SessionWrite>,
    written_since_flush: bool,
    counters: Arc<Counters>,
}

/// Runs one blocking call of the store off the async threads.
async fn blocking<T: Send + 'static>(
    backend: &Arc<dyn SessionStore>,
    call: impl FnOnce(&dyn SessionStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let backend = backend.clone();
    match tokio::task::spawn_blocking(move || call(backend.as_ref())).await {
        Ok(result) => result.map_err(|err| err.to_string()),
        Err(join) => Err(format!("the store call did not finish: {join}")),
    }
}

impl Pending {
    async fn apply(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let count = batch.len() as u64;
        match blocking(&self.backend, move |backend| backend.apply(&batch)).await {
            Ok(()) => {
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                self.counters.operations.fetch_add(count, Ordering::Relaxed);
                self.written_since_flush = true;
            }
            Err(err) => {
                tracing::error!("session store write failed ({count} operations lost): {err}")
            }
        }
    }

    async fn flush(&mut self) {
        if !self.written_since_flush {
            return;
        }
        let started = std::time::Instant::now();
        match blocking(&self.backend, |backend| backend.flush()).await {
            Ok(()) => {
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.counters.flush_us.fetch_add(took, Ordering::Relaxed);
                self.written_since_flush = false;
            }
            Err(err) => tracing::error!("session store flush failed: {err}"),
        }
    }

    async fn apply_and_flush(&mut self) {
        self.apply().await;
        self.flush().await;
    }
}

async fn run(
    backend: Arc<dyn SessionStore>,
    config: WriterConfig,
    mut receiver: mpsc::UnboundedReceiver<WriteOp>,
    counters: Arc<Counters>,
) {
    let mut pending = Pending {
        backend,
        batch: Vec::new(),
        written_since_flush: false,
        counters,
    };
    // The first tick is one interval from now, not at once: an immediate
    // tick would apply whatever few writes are queued when the timer
    // driver first runs, cutting a batch short at a moment that depends on
    // scheduling.
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + config.interval,
        config.interval,
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            op = receiver.recv() => match op {
                Some(WriteOp::Write(write)) => {
                    pending.batch.push(write);
                    if pending.batch.len() >= config.batch_size.max(1) {
                        pending.apply().await;
                    }
                }
                Some(WriteOp::Flush(ack)) => {
                    pending.apply_and_flush().await;
                    let _ = ack.send(());
                }
                None => {
                    pending.apply_and_flush().await;
                    return;
                }
            },
            _ = ticker.tick() => pending.apply_and_flush().await,
        }
    }
}
