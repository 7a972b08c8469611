//! `agent-host run [PROMPT]`: one agent session from a prompt to the final answer, streamed.

use std::io::Read;

use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use agent_host::agent::{Agent, AgentEvent, Outcome};

use super::agent::{ModelArgs, Renderer, agent_config, cancel_on_ctrl_c, choose_provider};
use super::{Cli, EXIT_OK, EXIT_TOOL, Failure, start};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt; read from stdin when absent.
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
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
    let runtime = start(cli, args.json).await?;
    let chosen = choose_provider(&args.model, runtime.config())?;
    let agent = Agent::new(
        runtime.clone(),
        chosen.provider,
        agent_config(&args.model, runtime.config()),
    );
    let mut renderer = Renderer::new(args.json);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"type": "session", "provider": agent.provider().name(), "model": agent.provider().model(), "scripted": chosen.scripted, "tools": agent.tool_defs().len()})
        );
    } else {
        println!("{} | {} tools", chosen.banner, agent.tool_defs().len());
    }

    let cancel = CancellationToken::new();
    let ctrl_c = cancel_on_ctrl_c(cancel.clone());
    let (sender, mut receiver) = mpsc::unbounded_channel::<AgentEvent>();
    let mut history = Vec::new();
    let session = {
        let agent = agent.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            agent
                .run(&mut history, prompt, &sender, &cancel, None)
                .await
        })
    };
    while let Some(event) = receiver.recv().await {
        renderer.show(&event);
    }
    ctrl_c.abort();
    let outcome = session
        .await
        .map_err(|err| Failure::usage(anyhow::anyhow!("the agent task failed: {err}")))?;
    Ok(match outcome {
        Outcome::Finished { .. } => EXIT_OK,
        Outcome::Cancelled => 130,
        Outcome::TurnLimit | Outcome::Failed(_) => EXIT_TOOL,
    })
}
