//! What `run` and `chat` share: the model flags handed to the provider factory; rendering agent events; Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use agent_host_agent::config::AgentSettings;
use agent_host_agent::{AgentConfig, AgentEvent};
use agent_host_llm::SharedProvider;
use agent_host_llm::config::{ProviderConfig, ProviderKind};
use agent_host_llm::factory::{ProviderEnv, ProviderOverrides, build_provider};

use super::Failure;
use super::escape;
use super::render::shorten;

/// `--provider`: the clap face of [`ProviderKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// OpenAI-compatible chat completions (OpenAI, Ollama, llama.cpp, vLLM).
    Openai,
    /// Anthropic messages API.
    Anthropic,
    /// Offline, deterministic replay of a script file (the default).
    Scripted,
}

impl From<ProviderArg> for ProviderKind {
    fn from(arg: ProviderArg) -> Self {
        match arg {
            ProviderArg::Openai => Self::Openai,
            ProviderArg::Anthropic => Self::Anthropic,
            ProviderArg::Scripted => Self::Scripted,
        }
    }
}

/// Flags that choose and tune the model.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Which API answers. Default: the config file's [provider] kind, else scripted.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Model name sent to the provider.
    #[arg(long)]
    pub model: Option<String>,
    /// API base URL, e.g. http://localhost:11434/v1 for Ollama. Env: OPENAI_BASE_URL.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Script for the scripted provider (see examples/demo-script.json).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Model calls per message before stopping (reported when reached).
    #[arg(long, value_name = "N")]
    pub max_turns: Option<usize>,
}

/// A provider and a line describing it for the user.
pub struct ChosenProvider {
    pub provider: SharedProvider,
    pub banner: String,
    pub scripted: bool,
}

/// Picks the provider: flags, then environment, then the config file (the
/// llm crate's factory decides; this hands it the flags and the
/// environment).
pub fn choose_provider(args: &ModelArgs, file: &ProviderConfig) -> Result<ChosenProvider, Failure> {
    // Streamed words are visible on a terminal; pipes get them at once.
    let scripted_chunk_delay = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        Duration::from_millis(15)
    } else {
        Duration::ZERO
    };
    let overrides = ProviderOverrides {
        kind: args.provider.map(ProviderKind::from),
        model: args.model.clone(),
        base_url: args.base_url.clone(),
        script: args.script.clone(),
        scripted_chunk_delay,
    };
    let built = build_provider(file, &overrides, &ProviderEnv::from_process(file))
        .map_err(Failure::usage)?;
    Ok(ChosenProvider {
        provider: built.provider,
        banner: built.banner,
        scripted: built.kind == ProviderKind::Scripted,
    })
}

/// The loop settings from the config file and flags.
pub fn agent_config(args: &ModelArgs, settings: &AgentSettings) -> AgentConfig {
    let defaults = AgentConfig::default();
    AgentConfig {
        system_prompt: settings.system_prompt.clone().or(defaults.system_prompt),
        max_turns: args.max_turns.unwrap_or(settings.max_turns).max(1),
        max_parallel_tools: settings.max_parallel_tools.max(1),
        max_tokens: defaults.max_tokens,
        context_budget_tokens: settings.context_budget_tokens,
        keep_recent_turns: settings.keep_recent_turns.max(1),
    }
}

/// Prints agent events as a readable transcript (or JSON lines).
pub struct Renderer {
    pub json: bool,
    at_line_start: bool,
}

impl Renderer {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            at_line_start: true,
        }
    }

    /// Writes to stdout; a closed pipe (`| head`) drops the rest, and the
    /// session is still saved after the reader went away.
    fn out(&self, text: &str) {
        out!("{text}");
    }

    /// Prints text as it is (banners).
    pub fn raw(&self, text: &str) {
        self.out(text);
    }

    fn line(&mut self, text: &str) {
        if !self.at_line_start {
            self.out("\n");
        }
        self.out(&format!("{text}\n"));
        self.at_line_start = true;
    }

    pub fn show(&mut self, event: &AgentEvent) {
        if self.json {
            self.out(&format!(
                "{}\n",
                serde_json::to_string(event).unwrap_or_default()
            ));
            return;
        }
        match event {
            AgentEvent::TextDelta { text } => {
                // Model text, chunk by chunk: escaping works per character,
                // so a sequence split across chunks is still caught.
                self.out(&escape::text(text));
                self.at_line_start = text.ends_with('\n');
            }
            AgentEvent::ToolCallStarted {
                name, arguments, ..
            } => {
                // The name is the model's: it may not be a tool at all.
                self.line(&format!(
                    "  -> {} {}",
                    escape::line(name),
                    shorten(arguments, 80)
                ));
            }
            AgentEvent::ToolCallFinished {
                name,
                ok,
                duration_ms,
                output,
                ..
            } => {
                let mark = if *ok { "ok" } else { "error" };
                self.line(&format!(
                    "  <- {} {mark} in {duration_ms:.1} ms: {}",
                    escape::line(name),
                    shorten(output, 100)
                ));
            }
            AgentEvent::UserMessageDelivered { text } => {
                self.line(&format!("(delivered your message: {})", shorten(text, 60)))
            }
            AgentEvent::TurnLimitReached { max_turns } => {
                self.line(&format!("(stopped: the model used all {max_turns} turns; raise --max-turns to let it continue)"));
            }
            AgentEvent::Cancelled => self.line("(cancelled)"),
            AgentEvent::Compressed {
                removed_messages, ..
            } => {
                self.line(&format!("(summarised {removed_messages} older messages to stay within the context budget)"));
            }
            AgentEvent::Failed { message } => {
                if !self.at_line_start {
                    self.out("\n");
                    self.at_line_start = true;
                }
                eprintln!("error: {}", escape::text(message));
            }
            AgentEvent::Finished { .. } => {
                if !self.at_line_start {
                    self.out("\n");
                    self.at_line_start = true;
                }
            }
            AgentEvent::HookBlocked {
                extension,
                point,
                reason,
            } => {
                self.line(&format!(
                    "(blocked by extension {} at {point}: {})",
                    escape::line(extension),
                    shorten(reason, 120)
                ));
            }
            AgentEvent::HookInjected {
                extension, text, ..
            } => {
                self.line(&format!(
                    "(extension {} added: {})",
                    escape::line(extension),
                    shorten(text, 80)
                ));
            }
            AgentEvent::HookDisabled {
                extension,
                point,
                reason,
            } => {
                eprintln!(
                    "warning: extension {} switched off at {point} for this session: {}",
                    escape::line(extension),
                    escape::line(reason)
                );
            }
            AgentEvent::TurnStarted { .. } | AgentEvent::Usage { .. } => {}
        }
    }
}

/// First Ctrl-C (or SIGTERM) cancels the current turn through the token, so
/// the session is recorded and flushed on the normal path; a second Ctrl-C
/// exits at once.
pub fn cancel_on_ctrl_c(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let terminate = terminated();
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                if result.is_err() {
                    return;
                }
            }
            () = terminate => {
                cancel.cancel();
                return;
            }
        }
        cancel.cancel();
        eprintln!("\n(cancelling; press Ctrl-C again to quit)");
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    })
}

/// Resolves when the process receives SIGTERM (never elsewhere).
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}
