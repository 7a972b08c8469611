//! Delivers events to one session's hooks: throttle, fan-out cap, sync chain with patches, async fire-and-forget, failure streaks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::clock::{Clock, SystemClock};
use super::payload::apply_patch;
use super::set::ActiveHook;
use super::stream::StreamTap;
use super::throttle::{ChunkBatcher, HookState};
use super::{Delivery, HookOutcome, HookPoint, WarmInstance};
use crate::error::{FailureKind, HookError};
use crate::runtime::Runtime;
use crate::runtime::WarmSlot;

/// A message an extension asked to add to the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Injection {
    /// The extension that asked.
    pub extension: String,
    /// The hook point it answered.
    pub point: HookPoint,
    /// The message text.
    pub text: String,
}

/// An extension stopped what an event was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// The extension that blocked.
    pub extension: String,
    /// The hook point.
    pub point: HookPoint,
    /// Its reason, cut to the reason cap.
    pub reason: String,
}

/// A hook switched off for the rest of the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disabled {
    /// The extension.
    pub extension: String,
    /// The hook point.
    pub point: HookPoint,
    /// Why it was switched off.
    pub reason: String,
}

/// What the synchronous hooks of one event decided.
#[derive(Debug, Default)]
pub struct Dispatched {
    /// The payload after every patch; `None` when nobody patched it.
    pub patched: Option<Map<String, Value>>,
    /// The first block; hooks after it were not called.
    pub blocked: Option<Blocked>,
    /// Messages extensions asked to add.
    pub injections: Vec<Injection>,
    /// Hooks that failed (the event went on without them).
    pub failures: Vec<HookError>,
    /// Hooks switched off by this event's failures.
    pub disabled: Vec<Disabled>,
}

/// The hooks of one agent session. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("session_id", &self.inner.session_id)
            .finish()
    }
}

struct Inner {
    runtime: Runtime,
    session_id: Option<String>,
    clock: Arc<dyn Clock>,
    /// Per (plugin version, point): throttle and failure state. Keyed by
    /// content hash, so a hot-reloaded fix starts with a clean slate.
    states: Mutex<HashMap<(String, HookPoint), HookState>>,
    turn: AtomicU32,
    started: AtomicBool,
    /// Async calls in flight, per extension.
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    background: TaskTracker,
    /// Messages extensions asked to add, waiting for the next model call.
    injections: Mutex<Vec<Injection>>,
    /// Instances kept between events, by extension name.
    warm: Mutex<HashMap<String, (WarmInstance, WarmSlot)>>,
}

fn state_key(hook: &ActiveHook) -> (String, HookPoint) {
    (hook.plugin.content_hash.clone(), hook.point)
}

impl Hooks {
    /// The hooks of one session, throttled on the system clock.
    pub fn new(runtime: Runtime, session_id: Option<String>) -> Self {
        Self::with_clock(runtime, session_id, Arc::new(SystemClock::default()))
    }

    /// Hooks whose throttles read `clock` (tests drive a manual one).
    pub fn with_clock(runtime: Runtime, session_id: Option<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                runtime,
                session_id,
                clock,
                states: Mutex::new(HashMap::new()),
                turn: AtomicU32::new(0),
                started: AtomicBool::new(false),
                in_flight: Mutex::new(HashMap::new()),
                background: TaskTracker::new(),
                injections: Mutex::new(Vec::new()),
                warm: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The session these hooks belong to.
    pub fn session_id(&self) -> Option<&str> {
        self.inner.session_id.as_deref()
    }

    /// The throttle clock's reading.
    pub(super) fn now(&self) -> std::time::Duration {
        self.inner.clock.now()
    }

    /// Whether any extension listens at `point` (nothing else is done for
    /// a point without listeners).
    pub fn is_subscribed(&self, point: HookPoint) -> bool {
        !self.inner.runtime.extension_set().hooks(point).is_empty()
    }

    /// The current session turn (0 before the first).
    pub fn turn(&self) -> u32 {
        self.inner.turn.load(Ordering::Relaxed)
    }

    /// Starts the next session turn and returns its number.
    pub fn begin_turn(&self) -> u32 {
        self.inner.turn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Keeps injections until the next model call.
    pub fn queue_injections(&self, injections: Vec<Injection>) {
        if injections.is_empty() {
            return;
        }
        self.inner
            .injections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(injections);
    }

    /// The injections waiting for the next model call, in arrival order.
    pub fn take_injections(&self) -> Vec<Injection> {
        std::mem::take(
            &mut *self
                .inner
                .injections
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Whether messages are waiting to be taken by the loop.
    pub fn has_injections(&self) -> bool {
        !self
            .inner
            .injections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Marks the session as started; true only the first time.
    pub fn start_session(&self) -> bool {
        !self.inner.started.swap(true, Ordering::Relaxed)
    }

    /// Whether `start_session` was called.
    pub fn session_started(&self) -> bool {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Delivers an event at `point`. `payload` is built only if some hook
    /// is subscribed and passes its throttle. Sync hooks run in order, each
    /// seeing the payload as patched by the ones before it; a block stops
    /// the chain. Async hooks get the final payload and are not waited for.
    pub async fn dispatch(&self, point: HookPoint, payload: impl FnOnce() -> Value) -> Dispatched {
        let set = self.inner.runtime.extension_set();
        let hooks = set.hooks(point);
        if hooks.is_empty() {
            return Dispatched::default();
        }
        let turn = self.turn();
        let admitted = self.admit(hooks.iter(), turn);
        if admitted.is_empty() {
            return Dispatched::default();
        }
        let mut fields = match payload() {
            Value::Object(fields) => fields,
            other => {
                let mut fields = Map::new();
                fields.insert("value".to_owned(), other);
                fields
            }
        };
        let mut text = Value::Object(fields.clone()).to_string();
        let mut result = Dispatched::default();
        let mut patched = false;
        for hook in admitted.iter().filter(|h| h.delivery == Delivery::Sync) {
            let Some(outcome) = self.call_one(hook, turn, text.clone(), &mut result).await else {
                if result.blocked.is_some() {
                    break;
                }
                continue;
            };
            if self.apply_outcome(hook, outcome, &mut fields, &mut result) {
                patched = true;
                text = Value::Object(fields.clone()).to_string();
            }
            if result.blocked.is_some() {
                break;
            }
        }
        if patched {
            result.patched = Some(fields);
        }
        let text: Arc<str> = Arc::from(text);
        for hook in admitted.iter().filter(|h| h.delivery == Delivery::Async) {
            self.spawn_async(hook.clone(), turn, text.clone());
        }
        result
    }

    /// Delivers an event without waiting for any hook (sync subscribers
    /// are treated as async). For events raised where the loop cannot
    /// wait, such as tool progress reported from inside a running call.
    pub fn notify(&self, point: HookPoint, payload: impl FnOnce() -> Value) {
        let set = self.inner.runtime.extension_set();
        let hooks = set.hooks(point);
        if hooks.is_empty() {
            return;
        }
        let turn = self.turn();
        let admitted = self.admit(hooks.iter(), turn);
        if admitted.is_empty() {
            return;
        }
        let text: Arc<str> = Arc::from(payload().to_string());
        for hook in admitted {
            self.spawn_async(hook, turn, text.clone());
        }
    }

    /// A tap on the model's text stream that batches chunks for the
    /// stream-chunk subscribers; `None` (and no cost) when there are none.
    pub fn stream_tap(&self) -> Option<StreamTap> {
        let set = self.inner.runtime.extension_set();
        let hooks = set.hooks(HookPoint::StreamChunk);
        if hooks.is_empty() {
            return None;
        }
        let max_fanout = self.inner.runtime.config().hooks.max_fanout;
        let batchers = hooks
            .iter()
            .enumerate()
            .filter_map(|(index, hook)| {
                if index >= max_fanout {
                    self.stats_record(hook, |c| c.dropped += 1);
                    return None;
                }
                Some((hook.clone(), ChunkBatcher::new(&hook.throttle)))
            })
            .collect();
        Some(StreamTap::new(self.clone(), self.turn(), batchers))
    }

    /// Waits for the async hook calls in flight (each is bounded by the
    /// hook budget), so nothing they record is lost at a clean exit.
    pub async fn drain(&self) {
        let tracker = &self.inner.background;
        tracker.close();
        tracker.wait().await;
        tracker.reopen();
    }

    /// Filters `hooks` through their throttles and the fan-out cap.
    pub(super) fn admit<'a>(
        &self,
        hooks: impl Iterator<Item = &'a Arc<ActiveHook>>,
        turn: u32,
    ) -> Vec<Arc<ActiveHook>> {
        let now = self.inner.clock.now();
        let max_fanout = self.inner.runtime.config().hooks.max_fanout;
        let mut admitted = Vec::new();
        let mut states = self.inner.states.lock().unwrap_or_else(|e| e.into_inner());
        for hook in hooks {
            let state = states.entry(state_key(hook)).or_default();
            if state.disabled {
                continue;
            }
            if !state.admit(&hook.throttle, now, turn) {
                self.stats_record(hook, |c| c.skipped += 1);
                continue;
            }
            if admitted.len() >= max_fanout {
                self.stats_record(hook, |c| c.dropped += 1);
                continue;
            }
            admitted.push(hook.clone());
        }
        admitted
    }

    pub(super) fn stats_record(
        &self,
        hook: &ActiveHook,
        change: impl FnOnce(&mut super::HookCounters),
    ) {
        self.inner
            .runtime
            .hook_stats()
            .record(hook.extension(), hook.point, change);
    }

    /// Calls one hook, counting it; `None` when it failed (the failure and
    /// a resulting switch-off are added to `result`).
    pub(super) async fn call_one(
        &self,
        hook: &ActiveHook,
        turn: u32,
        payload: String,
        result: &mut Dispatched,
    ) -> Option<HookOutcome> {
        let outcome = self.inner.call(hook, turn, payload).await;
        match outcome {
            Ok(outcome) => Some(outcome),
            Err((err, disabled)) => {
                close_on_failure(hook, &err, result);
                result.failures.push(err);
                result.disabled.extend(disabled);
                None
            }
        }
    }

    /// Applies one sync hook's answer: a patch to `fields` (returns true
    /// when they changed), a block or an injection to `result`.
    pub(super) fn apply_outcome(
        &self,
        hook: &ActiveHook,
        outcome: HookOutcome,
        fields: &mut Map<String, Value>,
        result: &mut Dispatched,
    ) -> bool {
        let point = hook.point;
        let limits = &self.inner.runtime.config().hooks;
        let max_patch = (limits.max_patch_kb as usize).saturating_mul(1024);
        let max_inject = (limits.max_inject_kb as usize).saturating_mul(1024);
        match outcome {
            HookOutcome::Continue => false,
            HookOutcome::Patch(patch) if patch.len() > max_patch => {
                let message = format!(
                    "a patch of {} bytes is over the limit of {} KiB (hooks.max_patch_kb)",
                    patch.len(),
                    limits.max_patch_kb
                );
                self.count_bad_answer(hook, message, result);
                false
            }
            HookOutcome::Inject(text) if text.len() > max_inject => {
                let message = format!(
                    "an injected message of {} bytes is over the limit of {} KiB (hooks.max_inject_kb)",
                    text.len(),
                    limits.max_inject_kb
                );
                self.count_bad_answer(hook, message, result);
                false
            }
            HookOutcome::Patch(patch) => match apply_patch(point, fields, &patch) {
                Ok(()) => true,
                Err(err) => {
                    self.count_bad_answer(hook, err.to_string(), result);
                    false
                }
            },
            HookOutcome::Block(reason) => {
                if point.can_block() {
                    // The block stands however long its reason; only the
                    // reason is cut.
                    result.blocked = Some(Blocked {
                        extension: hook.extension().to_owned(),
                        point,
                        reason: cut_reason(reason, limits.max_reason_bytes),
                    });
                } else {
                    tracing::debug!(extension = %hook.extension(), %point, "block ignored: this point cannot be blocked");
                }
                false
            }
            HookOutcome::Inject(text) => {
                result.injections.push(Injection {
                    extension: hook.extension().to_owned(),
                    point,
                    text,
                });
                false
            }
        }
    }

    /// An answer that could not be used counts as a failure of the hook.
    pub(super) fn count_bad_answer(
        &self,
        hook: &ActiveHook,
        message: String,
        result: &mut Dispatched,
    ) {
        tracing::warn!(extension = %hook.extension(), point = %hook.point, "hook answer ignored: {message}");
        self.stats_record(hook, |c| c.failures += 1);
        let err = HookError {
            extension: hook.extension().to_owned(),
            point: hook.point,
            kind: FailureKind::BadAnswer { message },
            detail: None,
        };
        if let Some(disabled) = self.inner.record_result(hook, Some(&err)) {
            result.disabled.push(disabled);
        }
        close_on_failure(hook, &err, result);
        result.failures.push(err);
    }

    pub(super) fn spawn_async(&self, hook: Arc<ActiveHook>, turn: u32, payload: Arc<str>) {
        let permits = {
            let limit = self.inner.runtime.config().hooks.max_in_flight;
            let mut in_flight = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            in_flight
                .entry(hook.extension().to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone()
        };
        let Ok(permit) = permits.try_acquire_owned() else {
            self.stats_record(&hook, |c| c.dropped += 1);
            return;
        };
        let inner = self.inner.clone();
        self.inner.background.spawn(async move {
            let _permit = permit;
            let _ = inner.call(&hook, turn, payload.to_string()).await;
        });
    }
}

impl Inner {
    /// Runs one hook call, counts it and keeps the failure streak.
    async fn call(
        &self,
        hook: &ActiveHook,
        turn: u32,
        payload: String,
    ) -> Result<HookOutcome, (HookError, Option<Disabled>)> {
        let started = Instant::now();
        // Taken out while in use: a concurrent event of the same extension
        // (parallel tool calls) gets a fresh instance instead.
        let warm = self
            .warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hook.extension());
        let (warm, slot) = match warm {
            Some((instance, slot)) => (Some(instance), Some(slot)),
            None => (None, None),
        };
        let (result, keep) = self
            .runtime
            .run_hook(hook, self.session_id.clone(), turn, payload, warm)
            .await;
        if let Some(instance) = keep
            && let Some(slot) = slot.or_else(|| self.runtime.reserve_warm_slot())
        {
            self.warm
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(hook.extension().to_owned())
                .or_insert((instance, slot));
        }
        self.runtime.hook_stats().call(
            hook.extension(),
            hook.point,
            started.elapsed(),
            result.is_err(),
        );
        match result {
            Ok(outcome) => {
                self.record_result(hook, None);
                Ok(outcome)
            }
            Err(err) => {
                tracing::warn!("{err}; the event goes on without it");
                let disabled = self.record_result(hook, Some(&err));
                Err((err, disabled))
            }
        }
    }

    /// Updates the failure streak; returns the switch-off it caused, if any.
    fn record_result(&self, hook: &ActiveHook, failure: Option<&HookError>) -> Option<Disabled> {
        // A fail-closed hook stays on: switching it off would open what it
        // guards.
        let max_failures = if hook.fail_closed {
            u32::MAX
        } else {
            self.runtime.config().hooks.max_failures
        };
        let just_disabled = {
            let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
            states
                .entry(state_key(hook))
                .or_default()
                .record(failure.is_some(), max_failures)
        };
        if !just_disabled {
            return None;
        }
        self.runtime
            .hook_stats()
            .record(hook.extension(), hook.point, |c| c.disabled += 1);
        let reason = format!(
            "failed {max_failures} times in a row (last: {})",
            failure.map(ToString::to_string).unwrap_or_default()
        );
        tracing::warn!(extension = %hook.extension(), point = %hook.point, "hook switched off for this session: {reason}");
        Some(Disabled {
            extension: hook.extension().to_owned(),
            point: hook.point,
            reason,
        })
    }
}

/// For a fail-closed hook at a point that can be blocked, turns its failure
/// into a block.
fn close_on_failure(hook: &ActiveHook, err: &HookError, result: &mut Dispatched) {
    if hook.fail_closed && hook.point.can_block() && result.blocked.is_none() {
        result.blocked = Some(Blocked {
            extension: hook.extension().to_owned(),
            point: hook.point,
            reason: format!(
                "{err}; this extension is set to fail closed, so the action is refused"
            ),
        });
    }
}

/// A block reason cut to `max` bytes (on a character boundary), saying how
/// long it was.
fn cut_reason(mut reason: String, max: usize) -> String {
    if reason.len() <= max {
        return reason;
    }
    let full = reason.len();
    let mut cut = max;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason.truncate(cut);
    reason.push_str(&format!(" [cut: {full} bytes]"));
    reason
}
