//! `agent-host run [PROMPT]`: one agent session from a prompt to the final answer, streamed.

use std::io::Read;

use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use agent_host_agent::sessions::Sessions;
use agent_host_agent::{Agent, AgentEvent, Outcome};
use agent_host_llm::Usage;

use super::agent::{ModelArgs, Renderer, agent_config, cancel_on_ctrl_c, choose_provider};
use super::{Cli, EXIT_OK, EXIT_TOOL, Failure, StoreOpen, config_from, start};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt; read from stdin when absent.
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Continue a stored session (see `agent-host sessions list`).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// One JSON event per line instead of a transcript.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, args: &RunArgs) -> Result<u8, Failure> {
    let prompt = match &args.prompt {
        Some(prompt) => prompt.clone(),
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|err| {
                Failure::usage(anyhow::anyhow!("cannot read the prompt from stdin: {err}"))
            })?;
            text
        }
    };
    if prompt.trim().is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "no prompt: pass it as an argument (agent-host run \"...\") or on stdin"
        )));
    }
    // The provider is checked before any plugin is loaded: a bad flag or a
    // missing key fails at once.
    let settings = config_from(cli)?;
    let chosen = choose_provider(&args.model, &settings.provider)?;
    let runtime = start(&settings, args.json, StoreOpen::Now).await?;
    // MCP servers start together; the first turn waits for each at most
    // its connect timeout (a slow one's tools join when it is ready).
    let mcp = super::mcp::client(&settings, &runtime)?;
    if let Some(mcp) = &mcp {
        mcp.wait_ready().await;
    }
    let agent = Agent::new(
        super::mcp::agent_tools(&runtime, mcp.as_ref()),
        chosen.provider,
        agent_config(&args.model, &settings.agent),
    )
    .with_extensions(runtime.clone());
    let sessions = Sessions::open(runtime.store(), settings.sessions.writer());
    let (mut record, mut history) = match &args.session {
        Some(id) => super::sessions::resume(&sessions, id)?,
        None => (
            sessions.create(&prompt, agent.provider().name(), agent.provider().model()),
            Vec::new(),
        ),
    };
    let agent = agent.with_session(record.id.clone());
    let mut renderer = Renderer::new(args.json);
    if args.json {
        renderer.raw(&format!(
            "{}\n",
            serde_json::json!({"type": "session", "session_id": record.id, "provider": agent.provider().name(), "model": agent.provider().model(), "scripted": chosen.scripted, "tools": agent.tool_defs().len(), "resumed_messages": history.len()})
        ));
    } else {
        renderer.raw(&format!(
            "{} | {} tools | session {}\n",
            chosen.banner,
            agent.tool_defs().len(),
            record.id
        ));
    }
    let already_stored = history.len();

    let cancel = CancellationToken::new();
    let ctrl_c = cancel_on_ctrl_c(cancel.clone());
    let (sender, mut receiver) = mpsc::unbounded_channel::<AgentEvent>();
    let session = {
        let agent = agent.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let outcome = agent
                .run(&mut history, prompt, &sender, &cancel, None)
                .await;
            // Extensions see the session end; async hooks still running
            // finish before the process exits.
            agent.end_session(&outcome, agent.session_turns()).await;
            (outcome, history)
        })
    };
    let mut usage = Usage::default();
    let mut compressed = false;
    while let Some(event) = receiver.recv().await {
        compressed |= matches!(event, AgentEvent::Compressed { .. });
        if let AgentEvent::Usage { usage: more } = &event {
            usage.input_tokens += more.input_tokens;
            usage.output_tokens += more.output_tokens;
        }
        renderer.show(&event);
    }
    ctrl_c.abort();
    let (outcome, history) = session
        .await
        .map_err(|err| Failure::usage(anyhow::anyhow!("the agent task failed: {err}")))?;
    let label = outcome_label(&outcome);
    if compressed {
        // The stored session keeps its original messages; the compressed
        // history continues in a child session that names it as parent.
        let mut child = sessions.create_child(&record);
        sessions.append(&mut child, &history, usage, Some(&label));
        renderer.raw(&format!(
            "(continued in session {} after summarising)\n",
            child.id
        ));
    } else {
        // Everything new in this run, including a cancelled or failed turn.
        sessions.append(&mut record, &history[already_stored..], usage, Some(&label));
    }
    sessions.close().await;
    if let Some(mcp) = &mcp {
        mcp.shut_down().await;
    }
    Ok(match outcome {
        Outcome::Finished { .. } => EXIT_OK,
        Outcome::Cancelled => 130,
        Outcome::TurnLimit | Outcome::Failed(_) | Outcome::Blocked { .. } => EXIT_TOOL,
    })
}

/// How a turn ended, as recorded on the session: the outcome's label, with
/// the reason when there is one.
pub fn outcome_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Failed(message) => format!("failed: {message}"),
        Outcome::Blocked { extension, reason } => {
            format!("blocked by extension {extension}: {reason}")
        }
        other => other.label().to_owned(),
    }
}
