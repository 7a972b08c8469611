//! An offline, deterministic provider that replays a script file: demos and tests without an LLM.
//!
//! A script is a list of turns, each saying some text and/or making tool
//! calls:
//!
//! ```json
//! { "turns": [
//!     { "say": "Let me add that up.", "tool_calls": [ { "name": "calc", "arguments": { "expression": "2+2" } } ] },
//!     { "say": "That did not work.", "when_result_contains": "error" },
//!     { "say": "The answer is 4." }
//! ] }
//! ```
//!
//! Which turn answers is decided from the request alone, so the same
//! conversation always gets the same answer:
//!
//! * Only the messages after the last user message count: every user
//!   message starts the script over from its first turn.
//! * The model calls since that message are replayed in order, keeping a
//!   cursor into the script. Each call takes the first turn at or after the
//!   cursor whose `when_result_contains` (if it has one) occurs in the tool
//!   results that call saw (the results after the previous assistant
//!   message; none for the first call, so a conditional turn can never
//!   come first), and the cursor moves past it.
//! * The turn taken for the current request is the answer. Turns skipped
//!   because their condition failed are never used later, which makes
//!   alternatives easy: put the "error" turn before the "success" turn.
//! * With no turn left, the answer is "(the script has no more turns)".
//!
//! The text is streamed word by word, then the tool calls (ids `call_N`,
//! numbered across the whole conversation), then usage (words counted as
//! tokens) and `Finish`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::EVENT_BUFFER;
use super::{
    ChatRequest, EventReceiver, FinishReason, Message, Provider, ProviderError, ProviderEvent,
    Role, ToolCall, Usage,
};

const NAME: &str = "scripted";
/// What an exhausted script says.
pub const NO_MORE_TURNS: &str = "(the script has no more turns)";

/// A script: the turns the "model" plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The answers, in the order they may be played.
    pub turns: Vec<ScriptTurn>,
}

/// One model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptTurn {
    /// Text the model says (streamed word by word).
    #[serde(default)]
    pub say: String,
    /// Tool calls it makes after saying it, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ScriptToolCall>,
    /// Only play this turn if the latest tool results contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_result_contains: Option<String>,
}

/// A tool call of a scripted turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptToolCall {
    /// The tool to call.
    pub name: String,
    /// Any JSON; sent to the tool as written. Absent means `{}`.
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ScriptTurn {
    fn plays_after(&self, results: &str) -> bool {
        self.when_result_contains
            .as_deref()
            .is_none_or(|needle| !results.is_empty() && results.contains(needle))
    }
}

/// The scripted [`Provider`].
#[derive(Debug, Clone)]
pub struct ScriptedProvider {
    script: Script,
    chunk_delay: Duration,
}

impl ScriptedProvider {
    /// A provider playing `script`, without delay between words.
    pub fn new(script: Script) -> Self {
        Self {
            script,
            chunk_delay: Duration::ZERO,
        }
    }

    /// Reads a script file; errors name the file and the JSON problem.
    pub fn from_file(path: &Path) -> Result<Self, ProviderError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            ProviderError::Config(format!("cannot read the script {}: {err}", path.display()))
        })?;
        let script: Script = serde_json::from_str(&text).map_err(|err| {
            ProviderError::Config(format!(
                "the script {} is not valid: {err} (expected {{\"turns\": [{{\"say\": ..., \"tool_calls\": [{{\"name\": ..., \"arguments\": {{...}}}}], \"when_result_contains\": ...}}]}})",
                path.display()
            ))
        })?;
        if let Some((turn, _)) = script.turns.iter().enumerate().find(|(_, turn)| {
            turn.tool_calls
                .iter()
                .any(|call| call.name.trim().is_empty())
        }) {
            return Err(ProviderError::Config(format!(
                "the script {}: turn {} has a tool call without a name",
                path.display(),
                turn + 1
            )));
        }
        Ok(Self::new(script))
    }

    /// Waits this long between streamed words, so a terminal shows the text
    /// arriving like a real model's (zero by default: tests want speed).
    #[must_use]
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// The script it plays.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// The turn that answers `messages` (see the module docs), if any.
    pub fn choose_turn(&self, messages: &[Message]) -> Option<&ScriptTurn> {
        let since_user = messages
            .iter()
            .rposition(|message| message.role == Role::User)
            .map_or(0, |last| last + 1);
        // results[j] = the tool results model call j saw.
        let mut results = vec![String::new()];
        for message in &messages[since_user..] {
            match message.role {
                Role::Assistant => results.push(String::new()),
                Role::Tool => {
                    if let Some(seen) = results.last_mut() {
                        seen.push_str(&message.content);
                        seen.push('\n');
                    }
                }
                Role::User => {}
            }
        }
        let turns = &self.script.turns;
        let mut cursor = 0;
        let mut chosen = None;
        for seen in &results {
            chosen = (cursor..turns.len()).find(|&index| turns[index].plays_after(seen));
            cursor = chosen.map_or(turns.len(), |index| index + 1);
        }
        chosen.map(|index| &turns[index])
    }

    /// The events answering `request`, in order.
    pub fn answer(&self, request: &ChatRequest) -> Vec<ProviderEvent> {
        let fallback = ScriptTurn {
            say: NO_MORE_TURNS.to_owned(),
            tool_calls: Vec::new(),
            when_result_contains: None,
        };
        let turn = self.choose_turn(&request.messages).unwrap_or(&fallback);
        let mut events: Vec<ProviderEvent> = turn
            .say
            .split_inclusive(char::is_whitespace)
            .map(|word| ProviderEvent::TextDelta {
                text: word.to_owned(),
            })
            .collect();
        let earlier_calls: usize = request
            .messages
            .iter()
            .map(|message| message.tool_calls.len())
            .sum();
        let calls: Vec<ToolCall> = turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(offset, call)| ToolCall {
                id: format!("call_{}", earlier_calls + offset + 1),
                name: call.name.clone(),
                arguments: call.arguments.to_string(),
            })
            .collect();
        let input_tokens = request.system.as_deref().map_or(0, count_words)
            + request
                .messages
                .iter()
                .map(|message| {
                    count_words(&message.content)
                        + message
                            .tool_calls
                            .iter()
                            .map(|call| count_words(&call.arguments))
                            .sum::<u64>()
                })
                .sum::<u64>();
        let output_tokens = count_words(&turn.say)
            + calls
                .iter()
                .map(|call| count_words(&call.arguments))
                .sum::<u64>();
        let reason = if calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        events.extend(
            calls
                .into_iter()
                .map(|call| ProviderEvent::ToolCall { call }),
        );
        events.push(ProviderEvent::Usage {
            usage: Usage {
                input_tokens,
                output_tokens,
            },
        });
        events.push(ProviderEvent::Finish { reason });
        events
    }
}

fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        NAME
    }

    fn model(&self) -> &str {
        NAME
    }

    fn start(&self, request: ChatRequest, cancel: CancellationToken) -> EventReceiver {
        let (sender, receiver) = mpsc::channel(EVENT_BUFFER);
        let events = self.answer(&request);
        let delay = self.chunk_delay;
        tokio::spawn(async move {
            let play = async {
                for event in events {
                    if !delay.is_zero() && matches!(event, ProviderEvent::TextDelta { .. }) {
                        tokio::time::sleep(delay).await;
                    }
                    if sender.send(Ok(event)).await.is_err() {
                        return; // nobody is listening any more
                    }
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    let _ = sender.send(Err(ProviderError::Cancelled)).await;
                }
                () = play => {}
            }
        });
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script(value: Value) -> ScriptedProvider {
        ScriptedProvider::new(serde_json::from_value(value).unwrap())
    }

    fn says(provider: &ScriptedProvider, messages: &[Message]) -> Option<String> {
        provider.choose_turn(messages).map(|turn| turn.say.clone())
    }

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.to_owned(),
            name: "calc".to_owned(),
            arguments: "{}".to_owned(),
        }
    }

    #[test]
    fn turns_follow_the_results() {
        let provider = script(json!({"turns": [
            {"say": "one", "tool_calls": [{"name": "calc", "arguments": {"expression": "1/0"}}]},
            {"say": "oops", "when_result_contains": "error"},
            {"say": "fine", "when_result_contains": "2"},
            {"say": "last"},
        ]}));
        let mut messages = vec![Message::user("go")];
        assert_eq!(says(&provider, &messages).as_deref(), Some("one"));
        messages.push(Message::assistant("one", vec![call("call_1")]));
        messages.push(Message::tool_result("call_1", "2", false));
        // "oops" is skipped for good: its condition failed at this step.
        assert_eq!(says(&provider, &messages).as_deref(), Some("fine"));
        messages.push(Message::assistant("fine", Vec::new()));
        assert_eq!(says(&provider, &messages).as_deref(), Some("last"));
        messages.push(Message::assistant("last", Vec::new()));
        assert_eq!(says(&provider, &messages), None);

        let mut failing = vec![
            Message::user("go"),
            Message::assistant("one", vec![call("call_1")]),
        ];
        failing.push(Message::tool_result(
            "call_1",
            "error: division by zero",
            true,
        ));
        assert_eq!(says(&provider, &failing).as_deref(), Some("oops"));
        // A new user message starts over.
        failing.push(Message::assistant("oops", Vec::new()));
        failing.push(Message::user("again"));
        assert_eq!(says(&provider, &failing).as_deref(), Some("one"));
    }

    #[test]
    fn conditional_first_turn_waits_for_results() {
        let provider =
            script(json!({"turns": [{"say": "x", "when_result_contains": ""}, {"say": "y"}]}));
        assert_eq!(
            says(&provider, &[Message::user("hi")]).as_deref(),
            Some("y")
        );
    }

    #[test]
    fn answer_streams_words_then_calls_usage_and_finish() {
        let provider = script(json!({"turns": [
            {"say": "Two  tools,\nplease.", "tool_calls": [{"name": "calc", "arguments": {"expression": "6*7"}}, {"name": "note_list"}]},
        ]}));
        let request = ChatRequest {
            model: "scripted".to_owned(),
            system: Some("be nice".to_owned()),
            messages: vec![
                Message::user("earlier"),
                Message::assistant("", vec![call("call_1")]),
                Message::tool_result("call_1", "ok", false),
                Message::user("now do it"),
            ],
            tools: Vec::new(),
            max_tokens: 10,
        };
        let events = provider.answer(&request);
        let text: Vec<&str> = events
            .iter()
            .filter_map(|event| match event {
                ProviderEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, ["Two ", " ", "tools,\n", "please."]);
        let calls: Vec<&ToolCall> = events
            .iter()
            .filter_map(|event| match event {
                ProviderEvent::ToolCall { call } => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].id.as_str(), calls[0].arguments.as_str()),
            ("call_2", r#"{"expression":"6*7"}"#)
        );
        assert_eq!(
            (calls[1].id.as_str(), calls[1].arguments.as_str()),
            ("call_3", "{}")
        );
        assert_eq!(
            events[events.len() - 2..],
            [
                ProviderEvent::Usage {
                    usage: Usage {
                        input_tokens: 2 + 1 + 1 + 1 + 3,
                        output_tokens: 3 + 1 + 1
                    }
                },
                ProviderEvent::Finish {
                    reason: FinishReason::ToolCalls
                },
            ]
        );
    }

    #[test]
    fn exhausted_script_says_so() {
        let provider = script(json!({"turns": []}));
        let events = provider.answer(&ChatRequest {
            model: String::new(),
            system: None,
            messages: vec![Message::user("hi")],
            tools: Vec::new(),
            max_tokens: 1,
        });
        let text: String = events
            .iter()
            .filter_map(|event| match event {
                ProviderEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, NO_MORE_TURNS);
        assert_eq!(
            events.last(),
            Some(&ProviderEvent::Finish {
                reason: FinishReason::Stop
            })
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("scripted-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.json");
        std::fs::write(&path, r#"{"turns": [{"say": "hi", "tool_call": []}]}"#).unwrap();
        let err = ScriptedProvider::from_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.json") && err.contains("tool_call"),
            "{err}"
        );
        let err = ScriptedProvider::from_file(&dir.join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
