//! Extensions: hooks into the agent loop (hook points, subscriptions, events, outcomes) and the adapter to the generated `extension` export.
//!
//! An extension implements [`Extension`] and invokes
//! [`export_extension!`](crate::export_extension). The host calls
//! [`Extension::describe`] once per plugin version, then
//! [`Extension::on_event`] for every event at a point the extension
//! subscribed to.
//!
//! ```ignore
//! use agent_plugin_sdk::prelude::*;
//!
//! /// Tells the model how long each tool output was.
//! struct Lengths;
//!
//! impl Extension for Lengths {
//!     fn describe() -> ExtensionInfo {
//!         ExtensionInfo::new(0).subscribe(Subscription::sync(HookPoint::AfterToolCall))
//!     }
//!
//!     fn on_event(event: Event) -> Outcome {
//!         match event.payload["output"].as_str() {
//!             Some(output) => Outcome::patch(json!({
//!                 "output": format!("{output}\n({} bytes)", output.len())
//!             })),
//!             None => Outcome::Continue,
//!         }
//!     }
//! }
//!
//! export_extension!(Lengths);
//! ```
//!
//! An event runs in a fresh instance or in one the host kept from an earlier
//! event of the same session; do not rely on either. Keep state in
//! [`kv`](crate::kv) (persistent, per plugin) or [`session`](crate::session)
//! (per agent session; absent outside one).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde_json::Value;

use crate::extension_bindings::exports::agent::plugin::extension as wit;

/// Places in the agent loop an extension can subscribe to. Each event's
/// payload is a JSON object; the host's documentation (docs/extensions.md)
/// lists its fields and which of them a patch may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    /// A session (one `run`, or one `chat`) begins.
    SessionStart,
    /// The session ends.
    SessionEnd,
    /// A model call is about to be prepared (turn = model call).
    TurnStart,
    /// The turn's tool calls have all finished, or the model answered.
    TurnEnd,
    /// The request is about to go to the model; patch `system` or
    /// `messages` to edit what the model sees.
    BeforeLlmCall,
    /// The model's full reply (text and tool calls) has arrived.
    AfterLlmResponse,
    /// Text streamed from the model, delivered in batches.
    StreamChunk,
    /// A tool call is about to run; patch `arguments` or block it.
    BeforeToolCall,
    /// A tool call has finished; patch `output` to rewrite the result.
    AfterToolCall,
    /// A running tool reported progress.
    ToolProgress,
    /// Something failed: a tool, the model, or another extension.
    Error,
}

impl HookPoint {
    /// Every hook point, in the contract's order.
    pub const ALL: [HookPoint; 11] = [
        HookPoint::SessionStart,
        HookPoint::SessionEnd,
        HookPoint::TurnStart,
        HookPoint::TurnEnd,
        HookPoint::BeforeLlmCall,
        HookPoint::AfterLlmResponse,
        HookPoint::StreamChunk,
        HookPoint::BeforeToolCall,
        HookPoint::AfterToolCall,
        HookPoint::ToolProgress,
        HookPoint::Error,
    ];

    /// The contract's (kebab-case) name: `"before-tool-call"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::SessionStart => "session-start",
            HookPoint::SessionEnd => "session-end",
            HookPoint::TurnStart => "turn-start",
            HookPoint::TurnEnd => "turn-end",
            HookPoint::BeforeLlmCall => "before-llm-call",
            HookPoint::AfterLlmResponse => "after-llm-response",
            HookPoint::StreamChunk => "stream-chunk",
            HookPoint::BeforeToolCall => "before-tool-call",
            HookPoint::AfterToolCall => "after-tool-call",
            HookPoint::ToolProgress => "tool-progress",
            HookPoint::Error => "error",
        }
    }

    /// The hook point with this kebab-case name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|point| point.as_str() == name)
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HookPoint {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|point| point.as_str()).collect();
            format!(
                "unknown hook point `{name}`; the hook points are {}",
                known.join(", ")
            )
        })
    }
}

/// How the agent loop waits for a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The turn waits for the outcome (within the budget).
    Sync,
    /// Fire and forget: the turn never waits and the outcome is ignored.
    Background,
}

/// Hints that limit how often a hook is called; every field is optional and
/// the host configuration can override each one.
///
/// ```ignore
/// Throttle::none().min_interval_ms(500).every_n_turns(2)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Throttle {
    /// At most one call per this many milliseconds; events in between are
    /// skipped.
    pub min_interval_ms: Option<u64>,
    /// Only on every n-th turn of a session (turns 1, n+1, 2n+1, ...).
    pub every_n_turns: Option<u32>,
    /// For `stream-chunk`: deliver chunks in batches of up to this many.
    pub coalesce_chunks: Option<u32>,
    /// For `stream-chunk`: deliver a batch once its first chunk is this old,
    /// even if it is not full.
    pub coalesce_ms: Option<u64>,
}

impl Throttle {
    /// No limits: every event is delivered.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn min_interval_ms(mut self, ms: u64) -> Self {
        self.min_interval_ms = Some(ms);
        self
    }

    pub fn every_n_turns(mut self, n: u32) -> Self {
        self.every_n_turns = Some(n);
        self
    }

    pub fn coalesce_chunks(mut self, chunks: u32) -> Self {
        self.coalesce_chunks = Some(chunks);
        self
    }

    pub fn coalesce_ms(mut self, ms: u64) -> Self {
        self.coalesce_ms = Some(ms);
        self
    }
}

/// One hook point the extension wants to be called at, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subscription {
    pub point: HookPoint,
    pub delivery: Delivery,
    pub throttle: Throttle,
}

impl Subscription {
    /// The turn waits for this hook's outcome.
    pub fn sync(point: HookPoint) -> Self {
        Self {
            point,
            delivery: Delivery::Sync,
            throttle: Throttle::none(),
        }
    }

    /// The turn does not wait; the outcome is ignored.
    pub fn background(point: HookPoint) -> Self {
        Self {
            delivery: Delivery::Background,
            ..Self::sync(point)
        }
    }

    /// Replaces all throttle hints at once.
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }

    pub fn min_interval_ms(mut self, ms: u64) -> Self {
        self.throttle = self.throttle.min_interval_ms(ms);
        self
    }

    pub fn every_n_turns(mut self, n: u32) -> Self {
        self.throttle = self.throttle.every_n_turns(n);
        self
    }

    pub fn coalesce_chunks(mut self, chunks: u32) -> Self {
        self.throttle = self.throttle.coalesce_chunks(chunks);
        self
    }

    pub fn coalesce_ms(mut self, ms: u64) -> Self {
        self.throttle = self.throttle.coalesce_ms(ms);
        self
    }
}

/// What an extension says about itself. The host asks once per plugin
/// version and caches the answer, so it must not depend on state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionInfo {
    /// Lower runs first; ties are broken by plugin name.
    pub priority: i32,
    pub subscriptions: Vec<Subscription>,
}

impl ExtensionInfo {
    /// No subscriptions yet.
    pub fn new(priority: i32) -> Self {
        Self {
            priority,
            subscriptions: Vec::new(),
        }
    }

    /// Adds a subscription.
    pub fn subscribe(mut self, subscription: Subscription) -> Self {
        self.subscriptions.push(subscription);
        self
    }
}

/// One event at a hook point.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub point: HookPoint,
    /// The agent session, when there is one.
    pub session_id: Option<String>,
    /// Turn number within the session (1-based; 0 before the first).
    pub turn: u32,
    /// The event's data: a JSON object, or `Value::Null` in the (host bug)
    /// case that the payload text was not JSON.
    pub payload: Value,
}

impl Event {
    /// The payload field `name` as a string, if it is one.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }
}

/// What the agent loop should do after a hook.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Go on unchanged.
    Continue,
    /// Replace fields of the payload: a JSON object whose top-level fields
    /// replace the payload's fields of the same name. Which fields may be
    /// patched depends on the hook point; anything that is not an object is
    /// passed on as is and refused by the host.
    Patch(Value),
    /// Stop what the event is about; the reason is shown to the model (a
    /// blocked tool call is answered with it) and to the user.
    Block(String),
    /// Add a user message to the conversation before the next model call.
    Inject(String),
}

impl Outcome {
    pub fn patch(fields: Value) -> Self {
        Outcome::Patch(fields)
    }

    pub fn block(reason: impl Into<String>) -> Self {
        Outcome::Block(reason.into())
    }

    pub fn inject(message: impl Into<String>) -> Self {
        Outcome::Inject(message.into())
    }
}

/// An extension. Both functions are associated functions, not methods: an
/// event may run in a fresh instance, so there is no state to rely on
/// between calls except what goes through [`kv`](crate::kv) and
/// [`session`](crate::session).
///
/// A panic traps: the host discards the instance and reports the failure.
/// Return [`Outcome::Continue`] rather than panicking on input you do not
/// understand.
pub trait Extension {
    /// Priority and subscriptions. Called once per plugin version and
    /// cached, so it must not depend on state.
    fn describe() -> ExtensionInfo;

    /// Handles one event at a subscribed point. For background deliveries
    /// the outcome is ignored.
    fn on_event(event: Event) -> Outcome;
}

/// The generated bindings need one concrete type implementing `Guest`;
/// [`export_extension!`](crate::export_extension) names
/// `ExtensionAdapter<YourExtension>`.
pub struct ExtensionAdapter<E>(PhantomData<E>);

impl<E: Extension> wit::Guest for ExtensionAdapter<E> {
    fn describe_extension() -> wit::ExtensionInfo {
        info_to_wit(E::describe())
    }

    fn on_event(event: wit::Event) -> wit::Outcome {
        outcome_to_wit(E::on_event(event_from_wit(event)))
    }
}

fn point_to_wit(point: HookPoint) -> wit::HookPoint {
    match point {
        HookPoint::SessionStart => wit::HookPoint::SessionStart,
        HookPoint::SessionEnd => wit::HookPoint::SessionEnd,
        HookPoint::TurnStart => wit::HookPoint::TurnStart,
        HookPoint::TurnEnd => wit::HookPoint::TurnEnd,
        HookPoint::BeforeLlmCall => wit::HookPoint::BeforeLlmCall,
        HookPoint::AfterLlmResponse => wit::HookPoint::AfterLlmResponse,
        HookPoint::StreamChunk => wit::HookPoint::StreamChunk,
        HookPoint::BeforeToolCall => wit::HookPoint::BeforeToolCall,
        HookPoint::AfterToolCall => wit::HookPoint::AfterToolCall,
        HookPoint::ToolProgress => wit::HookPoint::ToolProgress,
        HookPoint::Error => wit::HookPoint::Error,
    }
}

fn point_from_wit(point: wit::HookPoint) -> HookPoint {
    match point {
        wit::HookPoint::SessionStart => HookPoint::SessionStart,
        wit::HookPoint::SessionEnd => HookPoint::SessionEnd,
        wit::HookPoint::TurnStart => HookPoint::TurnStart,
        wit::HookPoint::TurnEnd => HookPoint::TurnEnd,
        wit::HookPoint::BeforeLlmCall => HookPoint::BeforeLlmCall,
        wit::HookPoint::AfterLlmResponse => HookPoint::AfterLlmResponse,
        wit::HookPoint::StreamChunk => HookPoint::StreamChunk,
        wit::HookPoint::BeforeToolCall => HookPoint::BeforeToolCall,
        wit::HookPoint::AfterToolCall => HookPoint::AfterToolCall,
        wit::HookPoint::ToolProgress => HookPoint::ToolProgress,
        wit::HookPoint::Error => HookPoint::Error,
    }
}

fn info_to_wit(info: ExtensionInfo) -> wit::ExtensionInfo {
    let subscriptions = info
        .subscriptions
        .into_iter()
        .map(|subscription| wit::Subscription {
            point: point_to_wit(subscription.point),
            delivery: match subscription.delivery {
                Delivery::Sync => wit::Delivery::Sync,
                Delivery::Background => wit::Delivery::Background,
            },
            throttle: wit::Throttle {
                min_interval_ms: subscription.throttle.min_interval_ms,
                every_n_turns: subscription.throttle.every_n_turns,
                coalesce_chunks: subscription.throttle.coalesce_chunks,
                coalesce_ms: subscription.throttle.coalesce_ms,
            },
        })
        .collect();
    wit::ExtensionInfo {
        priority: info.priority,
        subscriptions,
    }
}

fn event_from_wit(event: wit::Event) -> Event {
    Event {
        point: point_from_wit(event.point),
        session_id: event.session_id,
        turn: event.turn,
        payload: parse_payload(&event.payload),
    }
}

fn parse_payload(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn outcome_to_wit(outcome: Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Continue => wit::Outcome::Continue,
        Outcome::Patch(fields) => wit::Outcome::Patch(fields.to_string()),
        Outcome::Block(reason) => wit::Outcome::Block(reason),
        Outcome::Inject(message) => wit::Outcome::Inject(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_point_names_round_trip_and_match_the_wit_order() {
        let names: Vec<&str> = HookPoint::ALL.iter().map(|point| point.as_str()).collect();
        assert_eq!(
            names,
            [
                "session-start",
                "session-end",
                "turn-start",
                "turn-end",
                "before-llm-call",
                "after-llm-response",
                "stream-chunk",
                "before-tool-call",
                "after-tool-call",
                "tool-progress",
                "error",
            ]
        );
        for point in HookPoint::ALL {
            assert_eq!(point.as_str().parse::<HookPoint>(), Ok(point));
            assert_eq!(point.to_string(), point.as_str());
            assert_eq!(point_from_wit(point_to_wit(point)), point);
        }
        let err = "before_tool_call".parse::<HookPoint>().unwrap_err();
        assert!(err.contains("`before_tool_call`") && err.contains("before-tool-call"));
    }

    #[test]
    fn builders_fill_subscriptions() {
        let info = ExtensionInfo::new(-5)
            .subscribe(Subscription::sync(HookPoint::BeforeToolCall))
            .subscribe(
                Subscription::background(HookPoint::StreamChunk)
                    .coalesce_chunks(8)
                    .coalesce_ms(250)
                    .min_interval_ms(100)
                    .every_n_turns(2),
            );
        let wit = info_to_wit(info);
        assert_eq!(wit.priority, -5);
        assert_eq!(wit.subscriptions.len(), 2);
        let first = &wit.subscriptions[0];
        assert!(matches!(first.point, wit::HookPoint::BeforeToolCall));
        assert!(matches!(first.delivery, wit::Delivery::Sync));
        assert_eq!(first.throttle.min_interval_ms, None);
        let second = &wit.subscriptions[1];
        assert!(matches!(second.delivery, wit::Delivery::Background));
        assert_eq!(second.throttle.coalesce_chunks, Some(8));
        assert_eq!(second.throttle.coalesce_ms, Some(250));
        assert_eq!(second.throttle.min_interval_ms, Some(100));
        assert_eq!(second.throttle.every_n_turns, Some(2));
    }

    #[test]
    fn events_and_outcomes_convert() {
        let event = event_from_wit(wit::Event {
            point: wit::HookPoint::AfterToolCall,
            session_id: Some("s1".into()),
            turn: 3,
            payload: r#"{"name": "echo", "ok": true}"#.into(),
        });
        assert_eq!(event.point, HookPoint::AfterToolCall);
        assert_eq!(event.str_field("name"), Some("echo"));
        assert_eq!(event.str_field("ok"), None);
        assert_eq!(parse_payload("not json"), Value::Null);

        let patch = outcome_to_wit(Outcome::patch(json!({"output": "x"})));
        assert!(matches!(patch, wit::Outcome::Patch(text) if text == r#"{"output":"x"}"#));
        assert!(matches!(
            outcome_to_wit(Outcome::block("no")),
            wit::Outcome::Block(reason) if reason == "no"
        ));
        assert!(matches!(
            outcome_to_wit(Outcome::inject("hi")),
            wit::Outcome::Inject(message) if message == "hi"
        ));
        assert!(matches!(
            outcome_to_wit(Outcome::Continue),
            wit::Outcome::Continue
        ));
    }
}
