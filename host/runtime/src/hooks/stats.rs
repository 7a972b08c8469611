//! Per-hook counters (calls, throttled, coalesced, time, failures, disabled), live and summed over runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HookPoint;

/// What happened at one hook of one extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookCounters {
    /// Calls made (sync and async).
    pub calls: u64,
    /// Events not delivered because of a throttle (min interval, every N turns).
    pub skipped: u64,
    /// Events not delivered because the fan-out cap or the async in-flight
    /// cap was reached.
    pub dropped: u64,
    /// Stream chunks delivered inside a batch beyond its first (chunks minus
    /// batches).
    pub coalesced: u64,
    /// Time spent in calls, in microseconds.
    pub time_us: u64,
    /// Calls that trapped or ran out of budget.
    pub failures: u64,
    /// Times the hook was switched off for a session.
    pub disabled: u64,
}

impl HookCounters {
    /// Adds `other` to these counters.
    pub fn accumulate(&mut self, other: &HookCounters) {
        self.calls += other.calls;
        self.skipped += other.skipped;
        self.dropped += other.dropped;
        self.coalesced += other.coalesced;
        self.time_us += other.time_us;
        self.failures += other.failures;
        self.disabled += other.disabled;
    }

    /// What was counted since `before` (an earlier reading of the same
    /// counters).
    pub fn since(&self, before: &HookCounters) -> HookCounters {
        HookCounters {
            calls: self.calls - before.calls,
            skipped: self.skipped - before.skipped,
            dropped: self.dropped - before.dropped,
            coalesced: self.coalesced - before.coalesced,
            time_us: self.time_us - before.time_us,
            failures: self.failures - before.failures,
            disabled: self.disabled - before.disabled,
        }
    }

    /// Whether nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == HookCounters::default()
    }
}

/// One row of `agent-host stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookStatsRow {
    /// The extension.
    pub extension: String,
    /// The hook point.
    pub point: HookPoint,
    /// What was counted.
    #[serde(flatten)]
    pub counters: HookCounters,
}

/// Counters of this process by (extension, hook point), and what part of
/// them has already been added to the persisted totals.
#[derive(Debug, Default)]
pub struct HookStats {
    live: Mutex<BTreeMap<(String, HookPoint), HookCounters>>,
    persisted: Mutex<BTreeMap<(String, HookPoint), HookCounters>>,
}

impl HookStats {
    /// Applies `change` to the counters of one hook.
    pub fn record(
        &self,
        extension: &str,
        point: HookPoint,
        change: impl FnOnce(&mut HookCounters),
    ) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get_mut(&(extension.to_owned(), point)) {
            Some(counters) => change(counters),
            None => {
                let mut counters = HookCounters::default();
                change(&mut counters);
                live.insert((extension.to_owned(), point), counters);
            }
        }
    }

    /// Counts one call of a hook that took `took` (and failed, if `failed`).
    pub fn call(&self, extension: &str, point: HookPoint, took: Duration, failed: bool) {
        self.record(extension, point, |c| {
            c.calls += 1;
            c.time_us += u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            if failed {
                c.failures += 1;
            }
        });
    }

    /// This process's counters, sorted by extension then point.
    pub fn rows(&self) -> Vec<HookStatsRow> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        to_rows(&live)
    }

    /// The counters gained since the last call, which the caller adds to
    /// the persisted totals.
    pub fn take_unpersisted(&self) -> Vec<HookStatsRow> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut persisted = self.persisted.lock().unwrap_or_else(|e| e.into_inner());
        let mut delta = BTreeMap::new();
        for (key, now) in &live {
            let diff = now.since(&persisted.get(key).copied().unwrap_or_default());
            if !diff.is_zero() {
                delta.insert(key.clone(), diff);
            }
        }
        *persisted = live;
        to_rows(&delta)
    }
}

fn to_rows(map: &BTreeMap<(String, HookPoint), HookCounters>) -> Vec<HookStatsRow> {
    map.iter()
        .map(|((extension, point), counters)| HookStatsRow {
            extension: extension.clone(),
            point: *point,
            counters: *counters,
        })
        .collect()
}

/// Adds `delta` rows into `totals` rows (both sorted or not; the result is sorted).
pub fn merge_rows(totals: Vec<HookStatsRow>, delta: &[HookStatsRow]) -> Vec<HookStatsRow> {
    let mut map: BTreeMap<(String, HookPoint), HookCounters> = totals
        .into_iter()
        .map(|row| ((row.extension, row.point), row.counters))
        .collect();
    for row in delta {
        map.entry((row.extension.clone(), row.point))
            .or_default()
            .accumulate(&row.counters);
    }
    to_rows(&map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpersisted_counters_are_handed_out_once() {
        let stats = HookStats::default();
        stats.call("a", HookPoint::TurnStart, Duration::from_micros(5), false);
        stats.call("a", HookPoint::TurnStart, Duration::from_micros(5), true);
        let first = stats.take_unpersisted();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].counters.calls, 2);
        assert_eq!(first[0].counters.failures, 1);
        assert!(stats.take_unpersisted().is_empty());
        stats.record("a", HookPoint::TurnStart, |c| c.skipped += 1);
        let second = stats.take_unpersisted();
        assert_eq!(second[0].counters.skipped, 1);
        assert_eq!(second[0].counters.calls, 0);
        let merged = merge_rows(first, &second);
        assert_eq!(merged[0].counters.calls, 2);
        assert_eq!(merged[0].counters.skipped, 1);
    }
}
