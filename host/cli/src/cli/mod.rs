//! Command-line flags, shared setup (config, logging, runtime) and dispatch to one file per subcommand.

#[macro_use]
mod render;
mod agent;
mod bench;
mod cache;
mod chat;
mod config;
pub mod escape;
mod mcp;
mod new;
mod plugins;
mod progress;
mod run;
mod serve;
mod sessions;
mod stats;
mod tools;
mod watch;

use std::path::PathBuf;

use agent_host_runtime::Runtime;
use clap::{Parser, Subcommand};
use config::{ConfigSources, Settings};

/// Success.
pub const EXIT_OK: u8 = 0;
/// A tool returned an error or its call failed (trap, limit).
pub const EXIT_TOOL: u8 = 1;
/// Bad usage, bad configuration, or a plugin that cannot be loaded.
pub const EXIT_USAGE: u8 = 2;

/// An error on its way to the user, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "agent-host",
    version,
    about = "Run sandboxed WebAssembly tool and extension plugins for an AI agent",
    long_about = "agent-host loads tool plugins (WebAssembly components built against the agent:plugin WIT \
contract) from plugin directories and runs every call in a deny-by-default sandbox with memory, time and \
output limits.\n\nA plugin is <name>.wasm next to its manifest <name>.toml. What a plugin may touch (directories, \
environment variables, network hosts) is what its manifest requests AND the host config grants.\n\nExtensions \
(plugins of the extension-plugin world) hook into the agent loop: they can patch, block or add to what the model \
and the tools see, under a per-call time budget and throttles; `agent-host stats` shows what they cost.",
    after_help = "Examples:\n  agent-host --plugins build/plugins tools list\n  agent-host --plugins build/plugins tools call calc --args '{\"expression\": \"2^10\"}'\n  agent-host plugins check build/plugins/fs.wasm\n\nExit codes: 0 ok, 1 tool error or failed call, 2 usage or configuration error.\nLogging: -v shows plugin log lines (target 'plugin', off by default), -vv debug; RUST_LOG=debug replaces the filter."
)]
pub struct Cli {
    /// Plugin directory (repeatable). Default: from the config file, else $XDG_DATA_HOME/agent-host/plugins.
    #[arg(
        long = "plugins",
        value_name = "DIR",
        global = true,
        env = "AGENT_HOST_PLUGINS",
        value_delimiter = ':'
    )]
    pub plugins: Vec<PathBuf>,
    /// Config file. Default: $XDG_CONFIG_HOME/agent-host/config.toml if it exists.
    #[arg(long, value_name = "FILE", global = true, env = "AGENT_HOST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (database, plugin state). Default: $XDG_DATA_HOME/agent-host.
    #[arg(
        long = "data-dir",
        value_name = "DIR",
        global = true,
        env = "AGENT_HOST_DATA_DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent on one prompt: the model calls tools, the answer streams.
    Run(run::RunArgs),
    /// Interactive agent session (line editing, history, /tools, /clear, /exit).
    Chat(chat::ChatArgs),
    /// List, describe and call tools.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),
    /// List loaded plugins or check a plugin file.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// List, show, export and delete stored sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Inspect or clear the compiled-component cache.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Extension hook counters (calls, throttled, coalesced, time, failures) over all runs.
    Stats(stats::StatsArgs),
    /// Measure a trivial tool call: bare wasmtime versus the full host path.
    Bench(bench::BenchArgs),
    /// Serve an HTTP API for many agent sessions (JSON and server-sent events).
    Serve(serve::ServeArgs),
    /// Serve the tools to MCP clients (Claude, Cursor, VS Code, goose, ...).
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
}

/// Logs go to stderr so stdout stays clean for output and `--json`.
///
/// Plugin log lines (target `plugin`: the guest's `log` calls and its
/// captured stdout/stderr) are off at the default level, as the WIT
/// promises; `-v` shows them from info up, `-vv` from debug, and RUST_LOG
/// replaces the whole filter. Every field of every line is escaped
/// ([`escape::line`]): messages and fields carry plugin- and model-controlled
/// text, and one event stays one line.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,plugin=off",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // The formatter's own colours only on a terminal; a pipe or a file
        // gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .fmt_fields(escaped_fields())
        .try_init();
}

/// Formats log fields like the default formatter (`message` bare, others
/// `name=value`, space-separated), with each value escaped.
fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(
        |writer: &mut tracing_subscriber::fmt::format::Writer<'_>,
         field: &tracing::field::Field,
         value: &dyn std::fmt::Debug| {
            let value = format!("{value:?}");
            let value = escape::line(&value);
            match field.name() {
                "message" => write!(writer, "{value}"),
                name => write!(writer, "{name}={value}"),
            }
        },
    )
    .delimited(" ")
}

/// Resolves flags, environment, the config file and defaults into one value,
/// before any command acts on it.
fn config_from(cli: &Cli) -> Result<Settings, Failure> {
    Settings::resolve(ConfigSources {
        config_file: cli.config.clone(),
        plugin_dirs: cli.plugins.clone(),
        data_dir: cli.data_dir.clone(),
    })
    .map_err(Failure::usage)
}

/// When a command opens the database of the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreOpen {
    /// At start, so a data dir held by another process is reported before
    /// the command does any work (commands that call tools or keep sessions).
    Now,
    /// Only if the command comes to need it: listing cached plugins reads
    /// the description records beside the database and never opens it, so
    /// it is fast and works while `serve` or `chat` holds the data dir.
    OnFirstUse,
}

/// Starts a runtime and loads the plugin directories; load problems are
/// printed as warnings (they are also shown by `plugins list`).
async fn start(
    settings: &Settings,
    quiet_problems: bool,
    store: StoreOpen,
) -> Result<Runtime, Failure> {
    match &settings.config_file {
        Some(path) => tracing::debug!(file = %path.display(), "config file read"),
        None => tracing::debug!("no config file: defaults, environment and flags"),
    }
    let runtime = match store {
        StoreOpen::Now => Runtime::new(settings.runtime.clone()),
        StoreOpen::OnFirstUse => Runtime::with_store_opened_on_first_use(settings.runtime.clone()),
    }
    .map_err(Failure::usage)?;
    if let Some(spinners) = progress::CompileSpinners::for_terminal() {
        runtime.set_compile_observer(spinners);
    }
    let report = runtime.load_plugin_dirs().await;
    runtime.persist_cache_stats();
    if !quiet_problems && !report.failed.is_empty() {
        eprintln!(
            "warning: {} plugin file(s) could not be loaded; `agent-host plugins list` shows why",
            report.failed.len()
        );
    }
    Ok(runtime)
}

pub async fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Run(args) => run::run(&cli, args).await,
        Command::Chat(args) => chat::run(&cli, args).await,
        Command::Tools(command) => tools::run(&cli, command).await,
        Command::Plugins(command) => plugins::run(&cli, command).await,
        Command::Cache(command) => cache::run(&cli, command).await,
        Command::Sessions(command) => sessions::run(&cli, command).await,
        Command::Stats(args) => stats::run(&cli, args),
        Command::Bench(args) => bench::run(&cli, args).await,
        Command::Mcp(command) => mcp::run(&cli, command).await,
        Command::Serve(args) => serve::run(&cli, args).await,
    }
}
