//! `agent-host chat`: an interactive session with line editing, history, streaming output, slash commands and hot reload.

use std::path::PathBuf;

use clap::Args;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use agent_host_agent::sessions::{SessionRecord, Sessions};
use agent_host_agent::{Agent, AgentEvent};
use agent_host_llm::{Message, Usage};

use super::agent::{ModelArgs, Renderer, agent_config, choose_provider, terminated};
use super::escape;
use super::render::shorten;
use super::{Cli, EXIT_OK, Failure, StoreOpen, config_from, start};

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Continue a stored session (see `agent-host sessions list`).
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
}

const HELP: &str = "commands: /tools (list tools), /stats (extension hook counters), /clear (forget the conversation), /help, /exit (or Ctrl-D). Ctrl-C cancels a running turn.";

enum Line {
    Text(String),
    Exit,
}

/// Reads one line on a blocking thread so the async runtime keeps running.
async fn read_line(
    editor: std::sync::Arc<std::sync::Mutex<DefaultEditor>>,
) -> Result<Line, Failure> {
    tokio::task::spawn_blocking(move || {
        let mut editor = editor.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match editor.readline("you> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    return Ok(Line::Text(line));
                }
                // Ctrl-C at the prompt clears the line, as shells do.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return Ok(Line::Exit),
                Err(err) => {
                    return Err(Failure::usage(anyhow::anyhow!("cannot read input: {err}")));
                }
            }
        }
    })
    .await
    .map_err(|err| Failure::usage(anyhow::anyhow!("input thread failed: {err}")))?
}

fn history_file(cli_data: &std::path::Path) -> PathBuf {
    cli_data.join("chat-history.txt")
}

pub async fn run(cli: &Cli, args: &ChatArgs) -> Result<u8, Failure> {
    // The provider is checked before any plugin is loaded.
    let settings = config_from(cli)?;
    let chosen = choose_provider(&args.model, &settings.provider)?;
    let runtime = start(&settings, false, StoreOpen::Now).await?;
    let _watcher = runtime
        .watch()
        .map_err(|err| Failure::usage(anyhow::anyhow!(err)))?;
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
    outln!(
        "{} | {} tools | {HELP}",
        chosen.banner,
        agent.tool_defs().len()
    );

    let editor = DefaultEditor::new()
        .map_err(|err| Failure::usage(anyhow::anyhow!("cannot start line editing: {err}")))?;
    let history_path = history_file(runtime.store().dir());
    let editor = std::sync::Arc::new(std::sync::Mutex::new(editor));
    {
        let mut editor = editor.lock().unwrap_or_else(|e| e.into_inner());
        let _ = editor.load_history(&history_path);
    }
    let sessions = Sessions::open(runtime.store(), settings.sessions.writer());
    let (mut record, mut history): (Option<SessionRecord>, Vec<Message>) = match &args.resume {
        Some(id) => {
            let (record, history) = super::sessions::resume(&sessions, id)?;
            outln!("(resumed session {id}: {} messages)", history.len());
            (Some(record), history)
        }
        None => (None, Vec::new()),
    };
    let mut renderer = Renderer::new(false);
    let mut bound_agent: Option<Agent> = None;
    let mut last_outcome = None;
    loop {
        let line = tokio::select! {
            line = read_line(editor.clone()) => line?,
            // SIGTERM at the prompt: leave through the normal path, which
            // flushes the session.
            () = terminated() => Line::Exit,
        };
        let line = match line {
            Line::Exit => break,
            Line::Text(line) => line,
        };
        let line = line.trim().to_owned();
        match line.as_str() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/help" => {
                outln!("{HELP}");
                continue;
            }
            "/clear" => {
                // The session ends for the extensions too; the next message
                // starts a new one.
                if let (Some(agent), Some(outcome)) = (bound_agent.take(), last_outcome.take()) {
                    agent.end_session(&outcome, agent.session_turns()).await;
                }
                history.clear();
                record = None;
                outln!("(conversation cleared; the next message starts a new session)");
                continue;
            }
            "/stats" => {
                super::stats::print_hooks(&runtime.hook_stats().rows());
                continue;
            }
            "/tools" => {
                for tool in agent.tool_defs() {
                    outln!(
                        "  {:20} {}",
                        escape::line(&tool.name),
                        shorten(&tool.description, 70)
                    );
                }
                continue;
            }
            command if command.starts_with('/') => {
                outln!("unknown command {}; {HELP}", escape::line(command));
                continue;
            }
            _ => {}
        }
        let session = record.get_or_insert_with(|| {
            sessions.create(&line, agent.provider().name(), agent.provider().model())
        });
        let already_stored = history.len();
        let cancel = CancellationToken::new();
        let (sender, mut receiver) = mpsc::unbounded_channel::<AgentEvent>();
        // One agent per session, so extensions see one session start and
        // their per-session throttles and state carry across messages.
        let session_agent = bound_agent
            .get_or_insert_with(|| agent.clone().with_session(session.id.clone()))
            .clone();
        let turn = {
            let agent = session_agent;
            let cancel = cancel.clone();
            let mut turn_history = std::mem::take(&mut history);
            tokio::spawn(async move {
                let outcome = agent
                    .run(&mut turn_history, line, &sender, &cancel, None)
                    .await;
                (outcome, turn_history)
            })
        };
        let mut compressed = false;
        let mut quit = false;
        loop {
            tokio::select! {
                event = receiver.recv() => match event {
                    Some(event) => {
                        compressed |= matches!(event, AgentEvent::Compressed { .. });
                        renderer.show(&event);
                    }
                    None => break,
                },
                () = terminated(), if !quit => {
                    quit = true;
                    cancel.cancel();
                }
                _ = tokio::signal::ctrl_c() => {
                    // First Ctrl-C cancels the turn; a second one quits.
                    if cancel.is_cancelled() {
                        std::process::exit(130);
                    }
                    cancel.cancel();
                    eprintln!("\n(cancelling; press Ctrl-C again to quit)");
                }
            }
        }
        let (outcome, turn_history) = turn
            .await
            .map_err(|err| Failure::usage(anyhow::anyhow!("the agent task failed: {err}")))?;
        history = turn_history;
        let label = super::run::outcome_label(&outcome);
        last_outcome = Some(outcome);
        if compressed {
            // The stored session keeps its originals; the summarised
            // conversation continues in a child session.
            let mut child = sessions.create_child(session);
            sessions.append(&mut child, &history, Usage::default(), Some(&label));
            outln!("(continued in session {} after summarising)", child.id);
            *session = child;
        } else {
            sessions.append(
                session,
                &history[already_stored..],
                Usage::default(),
                Some(&label),
            );
        }
        if quit {
            break;
        }
    }
    {
        let mut editor = editor.lock().unwrap_or_else(|e| e.into_inner());
        let _ = editor.save_history(&history_path);
    }
    if let (Some(agent), Some(outcome)) = (&bound_agent, &last_outcome) {
        agent.end_session(outcome, agent.session_turns()).await;
    }
    sessions.close().await;
    if let Some(mcp) = &mcp {
        mcp.shut_down().await;
    }
    if let Some(record) = &record {
        outln!(
            "(session {} saved; continue it with `agent-host chat --resume {}`)",
            record.id,
            record.id
        );
    }
    runtime.persist_cache_stats();
    Ok(EXIT_OK)
}
