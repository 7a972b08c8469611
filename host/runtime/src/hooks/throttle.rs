//! Per-session hook state: throttle gates (minimum interval, every N turns), stream-chunk batching, and the failure streak.

use std::time::Duration;

use super::Throttle;

/// What one session remembers about one hook.
#[derive(Debug, Default)]
pub(super) struct HookState {
    last_call: Option<Duration>,
    failure_streak: u32,
    /// Switched off for the rest of the session after too many failures.
    pub disabled: bool,
}

impl HookState {
    /// Whether an event at `now` on session turn `turn` passes the throttle;
    /// a passing event is counted as the latest call.
    pub(super) fn admit(&mut self, throttle: &Throttle, now: Duration, turn: u32) -> bool {
        if let Some(n) = throttle.every_n_turns.filter(|n| *n > 1)
            && turn >= 1
            && !(turn - 1).is_multiple_of(n)
        {
            return false;
        }
        if let (Some(interval), Some(last)) = (throttle.min_interval_ms, self.last_call)
            && now.saturating_sub(last) < Duration::from_millis(interval)
        {
            return false;
        }
        self.last_call = Some(now);
        true
    }

    /// Records how a call ended. Returns true when this failure switches the
    /// hook off (`max_failures` in a row).
    pub(super) fn record(&mut self, failed: bool, max_failures: u32) -> bool {
        if !failed {
            self.failure_streak = 0;
            return false;
        }
        self.failure_streak += 1;
        if !self.disabled && self.failure_streak >= max_failures.max(1) {
            self.disabled = true;
            return true;
        }
        false
    }
}

/// Decides where one subscriber's batches of stream chunks begin and end.
/// The text itself is kept once per stream by the caller; a batch is a
/// byte range of it and a chunk count.
#[derive(Debug)]
pub(super) struct ChunkBatcher {
    start: usize,
    count: usize,
    first_at: Duration,
    max_chunks: usize,
    max_age: Duration,
}

/// A batch: `text[start..end]` holding `count` chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Batch {
    pub start: usize,
    pub end: usize,
    pub count: usize,
}

impl ChunkBatcher {
    pub(super) fn new(throttle: &Throttle) -> Self {
        Self {
            start: 0,
            count: 0,
            first_at: Duration::ZERO,
            max_chunks: throttle.coalesce_chunks.unwrap_or(1).max(1) as usize,
            max_age: Duration::from_millis(throttle.coalesce_ms.unwrap_or(u64::MAX / 4)),
        }
    }

    /// Notes a chunk that occupies `start..end` of the stream's text;
    /// returns a batch when it is full or its first chunk is old enough.
    pub(super) fn push(&mut self, start: usize, end: usize, now: Duration) -> Option<Batch> {
        if self.count == 0 {
            self.start = start;
            self.first_at = now;
        }
        self.count += 1;
        if self.count >= self.max_chunks || now.saturating_sub(self.first_at) >= self.max_age {
            return self.flush(end);
        }
        None
    }

    /// Whatever is left, at the end of the stream (`end` = text length).
    pub(super) fn flush(&mut self, end: usize) -> Option<Batch> {
        if self.count == 0 {
            return None;
        }
        let batch = Batch {
            start: self.start,
            end,
            count: self.count,
        };
        self.count = 0;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn min_interval_skips_events_in_between() {
        let throttle = Throttle {
            min_interval_ms: Some(100),
            ..Throttle::default()
        };
        let mut state = HookState::default();
        assert!(state.admit(&throttle, ms(0), 1));
        assert!(!state.admit(&throttle, ms(50), 1));
        assert!(!state.admit(&throttle, ms(99), 1));
        assert!(state.admit(&throttle, ms(100), 1));
        assert!(!state.admit(&throttle, ms(150), 1));
    }

    #[test]
    fn every_n_turns_counts_from_the_first_turn() {
        let throttle = Throttle {
            every_n_turns: Some(3),
            ..Throttle::default()
        };
        let mut state = HookState::default();
        let admitted: Vec<u32> = (0..=8)
            .filter(|turn| state.admit(&throttle, ms(0), *turn))
            .collect();
        assert_eq!(admitted, vec![0, 1, 4, 7]);
    }

    #[test]
    fn a_failure_streak_disables_once() {
        let mut state = HookState::default();
        assert!(!state.record(true, 3));
        assert!(!state.record(false, 3));
        assert!(!state.record(true, 3));
        assert!(!state.record(true, 3));
        assert!(state.record(true, 3));
        assert!(state.disabled);
        assert!(!state.record(true, 3));
    }

    #[test]
    fn chunks_are_batched_by_count_and_age() {
        let throttle = Throttle {
            coalesce_chunks: Some(3),
            coalesce_ms: Some(10),
            ..Throttle::default()
        };
        let mut batcher = ChunkBatcher::new(&throttle);
        let batch = |start, end, count| Some(Batch { start, end, count });
        assert_eq!(batcher.push(0, 1, ms(0)), None);
        assert_eq!(batcher.push(1, 2, ms(1)), None);
        assert_eq!(batcher.push(2, 3, ms(2)), batch(0, 3, 3));
        assert_eq!(batcher.push(3, 4, ms(3)), None);
        assert_eq!(batcher.push(4, 5, ms(13)), batch(3, 5, 2));
        assert_eq!(batcher.push(5, 6, ms(14)), None);
        assert_eq!(batcher.flush(6), batch(5, 6, 1));
        assert_eq!(batcher.flush(6), None);
    }
}
