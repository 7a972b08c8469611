//! Agent-loop benchmark: a zero-latency in-process model, the loop's own cost per turn and how fast a cancel stops it.

use std::time::{Duration, Instant};

use agent_host_runtime::Runtime;
use agent_host_runtime::bench::{BenchError, ROUND, Stats};
use serde::Serialize;

/// A zero-latency in-process model for measuring the loop itself: it asks
/// for one tool call, then answers once the result is in; or it stalls
/// until cancelled.
struct InstantModel {
    tool: String,
    args: String,
    stall: bool,
}

impl agent_host_llm::Provider for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }

    fn model(&self) -> &str {
        "instant"
    }

    fn start(
        &self,
        request: agent_host_llm::ChatRequest,
        cancel: tokio_util::sync::CancellationToken,
    ) -> agent_host_llm::EventReceiver {
        use agent_host_llm::{FinishReason, ProviderError, ProviderEvent, Role, ToolCall};
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let answered = request
            .messages
            .last()
            .is_some_and(|m| m.role == Role::Tool);
        let events = if answered {
            vec![
                ProviderEvent::TextDelta {
                    text: "done".into(),
                },
                ProviderEvent::Finish {
                    reason: FinishReason::Stop,
                },
            ]
        } else {
            vec![
                ProviderEvent::ToolCall {
                    call: ToolCall {
                        id: "call-1".into(),
                        name: self.tool.clone(),
                        arguments: self.args.clone(),
                    },
                },
                ProviderEvent::Finish {
                    reason: FinishReason::ToolCalls,
                },
            ]
        };
        let stall = self.stall;
        // Sent before returning: no task hop, so the loop sees the answer
        // as soon as it looks (a zero-latency model).
        if !stall {
            for event in events {
                let _ = sender.try_send(Ok(event));
            }
            return receiver;
        }
        tokio::spawn(async move {
            cancel.cancelled().await;
            let _ = sender.send(Err(ProviderError::Cancelled)).await;
        });
        receiver
    }
}

/// The result of [`measure_agent_loop`].
#[derive(Debug, Clone, Serialize)]
pub struct AgentBenchReport {
    /// The tool the model calls.
    pub tool: String,
    /// Measured runs (the warm-up runs before them not counted).
    pub iterations: usize,
    /// One user message: model call -> tool call -> model call -> answer.
    pub run: Stats,
    /// The tool call inside it (host path, fresh sandbox).
    pub tool_call: Stats,
    /// run - tool_call: what the loop itself costs per turn.
    pub overhead: Stats,
    /// Cancel -> `Agent::run` returned, while waiting on the model.
    pub interrupt_model: Stats,
    /// Cancel -> returned, while a tool spins (when a `spin` tool is loaded).
    pub interrupt_tool: Option<Stats>,
}

/// Measures the agent loop against a zero-latency in-process model: the
/// overhead of a turn with one tool call, and how fast a cancel stops it.
pub async fn measure_agent_loop(
    runtime: &Runtime,
    tool: &str,
    args: &serde_json::Value,
    iterations: usize,
) -> Result<AgentBenchReport, BenchError> {
    use std::sync::Arc;

    use crate::{Agent, AgentConfig, AgentEvent, Outcome};
    use tokio_util::sync::CancellationToken;

    runtime
        .tool(tool)
        .ok_or_else(|| BenchError::Unavailable(format!("tool '{tool}' is not loaded")))?;
    let model = |tool: &str, args: String, stall: bool| -> agent_host_llm::SharedProvider {
        Arc::new(InstantModel {
            tool: tool.to_owned(),
            args,
            stall,
        })
    };
    let agent = Agent::for_runtime(
        runtime.clone(),
        model(tool, args.to_string(), false),
        AgentConfig::default(),
    );
    let mut runs = Vec::with_capacity(iterations);
    let mut tool_calls = Vec::with_capacity(iterations);
    let mut overheads = Vec::with_capacity(iterations);
    for round in 0..iterations + ROUND {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut history = Vec::new();
        let started = Instant::now();
        let outcome = agent
            .run(
                &mut history,
                "go".into(),
                &sender,
                &CancellationToken::new(),
                None,
            )
            .await;
        let took = started.elapsed();
        if !matches!(outcome, Outcome::Finished { .. }) {
            return Err(BenchError::Stalled(format!(
                "the loop did not finish: {outcome:?}"
            )));
        }
        drop(sender);
        let mut tool_time = None;
        while let Some(event) = receiver.recv().await {
            if let AgentEvent::ToolCallFinished {
                ok,
                duration_ms,
                output,
                ..
            } = event
            {
                if !ok {
                    return Err(BenchError::Stalled(format!("the tool failed: {output}")));
                }
                tool_time = Some(Duration::from_secs_f64(duration_ms / 1e3));
            }
        }
        let tool_time = tool_time
            .ok_or_else(|| BenchError::Stalled("the model's tool call never ran".to_owned()))?;
        if round >= ROUND {
            runs.push(took);
            tool_calls.push(tool_time);
            overheads.push(took.saturating_sub(tool_time));
        }
    }

    let interrupt = |agent: Agent| async move {
        let mut samples = Vec::new();
        for _ in 0..20 {
            let cancel = CancellationToken::new();
            let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
            let task = {
                let cancel = cancel.clone();
                let agent = agent.clone();
                tokio::spawn(async move {
                    let mut history = Vec::new();
                    agent
                        .run(&mut history, "go".into(), &sender, &cancel, None)
                        .await;
                    Instant::now()
                })
            };
            tokio::time::sleep(Duration::from_millis(30)).await;
            let cancelled_at = Instant::now();
            cancel.cancel();
            let stopped = task
                .await
                .map_err(|e| BenchError::Stalled(format!("the cancelled run panicked: {e}")))?;
            samples.push(stopped.saturating_duration_since(cancelled_at));
        }
        Ok::<_, BenchError>(Stats::from_samples(samples))
    };
    let stalled = Agent::for_runtime(
        runtime.clone(),
        model(tool, "{}".into(), true),
        AgentConfig::default(),
    );
    let interrupt_model = interrupt(stalled).await?;
    let interrupt_tool = if runtime.tool("spin").is_some() {
        let spinning = Agent::for_runtime(
            runtime.clone(),
            model("spin", "{}".into(), false),
            AgentConfig::default(),
        );
        Some(interrupt(spinning).await?)
    } else {
        None
    };
    Ok(AgentBenchReport {
        tool: tool.to_owned(),
        iterations,
        run: Stats::from_samples(runs),
        tool_call: Stats::from_samples(tool_calls),
        overhead: Stats::from_samples(overheads),
        interrupt_model,
        interrupt_tool,
    })
}
