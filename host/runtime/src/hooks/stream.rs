//! The stream-chunk tap: one stream's text kept once, cut into batches per subscriber, sync batches delivered inline.

use std::sync::Arc;
use std::time::Duration;

use super::Delivery;
use super::dispatch::{Dispatched, Hooks};
use super::set::ActiveHook;
use super::throttle::{Batch, ChunkBatcher};

/// Batches one model stream's text for the stream-chunk subscribers. A
/// sync subscriber's batch is delivered in the stream as soon as it is
/// ready (the stream waits for that call, within the hook budget); an async
/// subscriber's batch never makes the stream wait.
pub struct StreamTap {
    hooks: Hooks,
    turn: u32,
    /// The stream's text so far, kept once for every subscriber; a batch is
    /// a range of it.
    text: String,
    batchers: Vec<(Arc<ActiveHook>, ChunkBatcher)>,
    /// What the sync subscribers decided so far.
    result: Dispatched,
    /// Chunks pushed so far, and the clock as last read.
    pushed: u32,
    now: Duration,
}

/// The clock is read at the first chunk and then every this many chunks.
const CLOCK_EVERY: u32 = 16;

impl StreamTap {
    pub(super) fn new(
        hooks: Hooks,
        turn: u32,
        batchers: Vec<(Arc<ActiveHook>, ChunkBatcher)>,
    ) -> Self {
        Self {
            hooks,
            turn,
            text: String::new(),
            batchers,
            result: Dispatched::default(),
            pushed: 0,
            now: Duration::ZERO,
        }
    }

    /// Adds one chunk of streamed text; returns at once unless a sync
    /// subscriber's batch is ready.
    pub async fn push(&mut self, chunk: &str) {
        // Per chunk this is meant to be a copy and a few comparisons, so
        // the clock (for batch ages) is read only every few chunks.
        if self.pushed.is_multiple_of(CLOCK_EVERY) {
            self.now = self.hooks.now();
        }
        self.pushed += 1;
        let now = self.now;
        let start = self.text.len();
        self.text.push_str(chunk);
        let end = self.text.len();
        for index in 0..self.batchers.len() {
            if let Some(batch) = self.batchers[index].1.push(start, end, now) {
                let hook = self.batchers[index].0.clone();
                self.deliver(&hook, batch).await;
            }
        }
    }

    /// Whether a sync subscriber blocked the stream; nothing more is
    /// delivered after that.
    pub fn is_blocked(&self) -> bool {
        self.result.blocked.is_some()
    }

    /// Delivers what is left (unless blocked) and returns the sync
    /// subscribers' outcomes.
    pub async fn finish(mut self) -> Dispatched {
        if self.is_blocked() {
            return self.result;
        }
        let end = self.text.len();
        for index in 0..self.batchers.len() {
            if let Some(batch) = self.batchers[index].1.flush(end) {
                let hook = self.batchers[index].0.clone();
                self.deliver(&hook, batch).await;
            }
        }
        self.result
    }

    async fn deliver(&mut self, hook: &Arc<ActiveHook>, batch: Batch) {
        let hooks = &self.hooks;
        if hooks.admit(std::iter::once(hook), self.turn).is_empty() {
            return;
        }
        let merged = batch.count.saturating_sub(1) as u64;
        hooks.stats_record(hook, |c| c.coalesced += merged);
        let payload = batch_payload(&self.text[batch.start..batch.end], batch.count);
        if hook.delivery == Delivery::Async {
            hooks.spawn_async(hook.clone(), self.turn, Arc::from(payload.as_str()));
            return;
        }
        // After a block the stream's outcome is decided; later batches are
        // not delivered.
        if self.result.blocked.is_none() {
            deliver_batch(hooks, hook, self.turn, payload, &mut self.result).await;
        }
    }
}

/// The stream-chunk payload: the batch's text and how many chunks it joins.
fn batch_payload(text: &str, count: usize) -> String {
    serde_json::json!({ "text": text, "chunks": count }).to_string()
}

/// Calls a sync subscriber with one batch and adds its outcome to `result`
/// (a patch is refused: the text was already shown).
async fn deliver_batch(
    hooks: &Hooks,
    hook: &ActiveHook,
    turn: u32,
    payload: String,
    result: &mut Dispatched,
) {
    if let Some(outcome) = hooks.call_one(hook, turn, payload, result).await {
        hooks.apply_outcome(hook, outcome, &mut serde_json::Map::new(), result);
    }
}
