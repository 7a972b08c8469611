//! Context compression: when the history passes a token budget, older turns are summarised by the model.
//!
//! The history is cut only at the start of a user turn, so an assistant's
//! tool calls are never separated from their results. The summary is put in
//! front of the first kept user message (not as a message of its own) so the
//! roles still alternate, which some APIs require.

use tokio_util::sync::CancellationToken;

use agent_host_llm::{ChatRequest, Message, ProviderError, ProviderEvent, Role, SharedProvider};

/// Rough token count: about four characters a token, as most tokenizers do
/// on English text and JSON.
pub fn estimate_tokens(messages: &[Message]) -> usize {
    messages
        .iter()
        .map(|m| {
            let calls: usize = m
                .tool_calls
                .iter()
                .map(|c| c.name.len() + c.arguments.len())
                .sum();
            (m.content.len() + calls) / 4 + 4
        })
        .sum()
}

/// Where to cut: the start of the `keep_turns`-th user turn from the end.
/// `None` when there is nothing old enough to summarise.
pub fn split_point(history: &[Message], keep_turns: usize) -> Option<usize> {
    let user_turns: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::User)
        .map(|(i, _)| i)
        .collect();
    let keep = keep_turns.max(1);
    if user_turns.len() <= keep {
        return None;
    }
    let split = user_turns[user_turns.len() - keep];
    (split > 0).then_some(split)
}

/// The older part as plain text for the summarising request.
fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for message in messages {
        let who = match message.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::Tool => "Tool result",
        };
        if !message.content.is_empty() {
            out.push_str(&format!("{who}: {}\n", message.content));
        }
        for call in &message.tool_calls {
            out.push_str(&format!(
                "Assistant called {} with {}\n",
                call.name, call.arguments
            ));
        }
    }
    out
}

/// Why no summary came back; the caller reports it and goes on uncompressed.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The model call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The model answered with nothing but whitespace.
    #[error("the model returned an empty summary")]
    Empty,
}

/// Asks the model for a summary of `older`.
pub async fn summarise(
    provider: &SharedProvider,
    older: &[Message],
    cancel: &CancellationToken,
) -> Result<String, SummaryError> {
    let request = ChatRequest {
        model: provider.model().to_owned(),
        system: Some(
            "Summarise the conversation below for your own later use: keep facts, numbers, decisions, \
             tool results that matter and open questions. Be concise."
                .to_owned(),
        ),
        messages: vec![Message::user(transcript(older))],
        tools: Vec::new(),
        max_tokens: 1024,
    };
    let mut receiver = provider.start(request, cancel.child_token());
    let mut summary = String::new();
    while let Some(event) = receiver.recv().await {
        match event {
            Ok(ProviderEvent::TextDelta { text }) => summary.push_str(&text),
            Ok(ProviderEvent::Finish { .. }) => break,
            Ok(_) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if summary.trim().is_empty() {
        return Err(SummaryError::Empty);
    }
    Ok(summary)
}

/// Replaces `history` by the summary plus the kept turns.
pub fn apply(history: &mut Vec<Message>, split: usize, summary: &str) {
    let mut kept = history.split_off(split);
    if let Some(first) = kept.first_mut() {
        first.content = format!(
            "(Summary of the earlier conversation: {summary})\n\n{}",
            first.content
        );
    }
    *history = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_host_llm::ToolCall;

    fn turn(i: usize) -> Vec<Message> {
        vec![
            Message::user(format!("question {i}")),
            Message::assistant(
                "",
                vec![ToolCall {
                    id: format!("c{i}"),
                    name: "calc".into(),
                    arguments: "{}".into(),
                }],
            ),
            Message::tool_result(format!("c{i}"), "42", false),
            Message::assistant(format!("answer {i}"), vec![]),
        ]
    }

    #[test]
    fn cuts_only_at_user_turns_and_keeps_tool_results_with_their_calls() {
        let history: Vec<Message> = (0..4).flat_map(turn).collect();
        let split = split_point(&history, 2).unwrap();
        assert_eq!(history[split].content, "question 2");
        let mut compressed = history.clone();
        apply(&mut compressed, split, "earlier: two questions");
        assert_eq!(compressed.len(), 8);
        assert!(
            compressed[0]
                .content
                .starts_with("(Summary of the earlier conversation: earlier: two questions)")
        );
        assert!(compressed[0].content.ends_with("question 2"));
        // Every tool result still follows its call.
        for (i, m) in compressed.iter().enumerate() {
            if m.role == Role::Tool {
                assert!(!compressed[i - 1].tool_calls.is_empty());
            }
        }
        assert_eq!(split_point(&history[..4], 1), None);
        assert!(estimate_tokens(&history) > estimate_tokens(&compressed));
    }
}
