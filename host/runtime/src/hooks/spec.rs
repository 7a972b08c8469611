//! What an extension subscribes to: hook points, delivery, throttle hints and priority, as the host holds them.

use serde::{Deserialize, Serialize};

/// A place in the agent loop where extensions are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookPoint {
    /// A session begins.
    SessionStart,
    /// A session ends.
    SessionEnd,
    /// A turn begins (a user message arrived).
    TurnStart,
    /// A turn ends.
    TurnEnd,
    /// Before each request to the model.
    BeforeLlmCall,
    /// After each complete model response.
    AfterLlmResponse,
    /// Streamed chunks of a model response (coalesced by throttles).
    StreamChunk,
    /// Before a tool call runs; may patch the arguments or block the call.
    BeforeToolCall,
    /// After a tool call; may patch the result.
    AfterToolCall,
    /// A progress update of a running tool call.
    ToolProgress,
    /// An error in the loop.
    Error,
}

impl HookPoint {
    /// Every point, in the order of the enum (and of the WIT contract).
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

    /// The kebab-case name used in WIT, config files and output.
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

    /// The point named `name` (kebab-case, as [`HookPoint::as_str`] gives it).
    pub fn parse(name: &str) -> Option<HookPoint> {
        HookPoint::ALL
            .into_iter()
            .find(|point| point.as_str() == name)
    }

    /// Position in [`HookPoint::ALL`], for per-point tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Payload fields a `patch` may replace at this point.
    pub fn patchable_fields(self) -> &'static [&'static str] {
        match self {
            HookPoint::BeforeLlmCall => &["system", "messages"],
            HookPoint::AfterLlmResponse => &["text", "tool_calls"],
            HookPoint::BeforeToolCall => &["arguments"],
            HookPoint::AfterToolCall => &["output", "ok"],
            _ => &[],
        }
    }

    /// Whether a `block` outcome means something here (elsewhere it is
    /// logged and ignored).
    pub fn can_block(self) -> bool {
        matches!(
            self,
            HookPoint::TurnStart
                | HookPoint::BeforeLlmCall
                | HookPoint::AfterLlmResponse
                | HookPoint::StreamChunk
                | HookPoint::BeforeToolCall
                | HookPoint::AfterToolCall
        )
    }
}

impl std::fmt::Display for HookPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the turn waits for a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The turn waits for the outcome, within the hook budget.
    Sync,
    /// Fire and forget: the turn never waits; the outcome is ignored.
    #[serde(alias = "background")]
    Async,
}

/// Limits on how often a hook is called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Throttle {
    /// At most one call per this many milliseconds.
    pub min_interval_ms: Option<u64>,
    /// Only on turns 1, n+1, 2n+1, ... of the session.
    pub every_n_turns: Option<u32>,
    /// Stream chunks per batch (stream-chunk only).
    pub coalesce_chunks: Option<u32>,
    /// A batch is delivered once its first chunk is this old (stream-chunk only).
    pub coalesce_ms: Option<u64>,
}

impl Throttle {
    /// `self` with every value set in `over` replacing ours.
    pub fn overridden_by(self, over: &Throttle) -> Throttle {
        Throttle {
            min_interval_ms: over.min_interval_ms.or(self.min_interval_ms),
            every_n_turns: over.every_n_turns.or(self.every_n_turns),
            coalesce_chunks: over.coalesce_chunks.or(self.coalesce_chunks),
            coalesce_ms: over.coalesce_ms.or(self.coalesce_ms),
        }
    }
}

/// One hook point an extension wants, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Where.
    pub point: HookPoint,
    /// Whether the loop waits for the answer.
    pub delivery: Delivery,
    /// How often, at most.
    pub throttle: Throttle,
}

/// What an extension declared about itself (cached per version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionSpec {
    /// Lower runs first; ties go by plugin name.
    pub priority: i32,
    /// The points it wants, each with its delivery and throttle.
    pub subscriptions: Vec<Subscription>,
}

/// What an extension asked the loop to do after one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Go on unchanged.
    Continue,
    /// JSON object text whose fields replace the payload's.
    Patch(String),
    /// Stop what was about to happen (a tool call, a turn), with the reason.
    Block(String),
    /// Add a message to the conversation.
    Inject(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for point in HookPoint::ALL {
            assert_eq!(HookPoint::parse(point.as_str()), Some(point));
            assert_eq!(HookPoint::ALL[point.index()], point);
        }
        assert_eq!(HookPoint::parse("before_tool_call"), None);
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let hint = Throttle {
            min_interval_ms: Some(10),
            every_n_turns: Some(2),
            ..Throttle::default()
        };
        let over = Throttle {
            every_n_turns: Some(5),
            coalesce_chunks: Some(8),
            ..Throttle::default()
        };
        let merged = hint.overridden_by(&over);
        assert_eq!(merged.min_interval_ms, Some(10));
        assert_eq!(merged.every_n_turns, Some(5));
        assert_eq!(merged.coalesce_chunks, Some(8));
    }
}
