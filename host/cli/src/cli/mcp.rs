//! `agent-host mcp serve` (the loaded tools as an MCP server over stdio or Streamable HTTP, with hot reload) and `mcp list` (the configured MCP servers whose tools the agent uses); the MCP tool source `run`, `chat` and `tools` share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agent_host_agent::{ToolHost, ToolHosts};
use agent_host_mcp::auth::BearerToken;
use agent_host_mcp::client::{ClientOptions, Limits, ServerReport};
use agent_host_mcp::http::FRONT_END;
use agent_host_mcp::{HttpOptions, HttpServer, McpTools, ToolServer};
use agent_host_runtime::Runtime;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::config::Settings;
use super::render::print_json;
use super::{Cli, EXIT_OK, EXIT_TOOL, Failure, StoreOpen, config_from, escape, start};

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve every loaded tool to MCP clients: stdio by default, Streamable HTTP with --http.
    #[command(
        long_about = "Serve every loaded tool to MCP clients. Each call runs as `agent-host tools call` runs it: \
arguments checked against the tool's schema, a fresh sandbox, the plugin's limits and output cap, and the \
extensions' before- and after-tool-call hooks (--no-hooks or `[mcp] hooks = false` turns them off).\n\n\
stdio (default): the MCP client starts `agent-host mcp serve` and talks on its stdin/stdout; nothing but \
protocol goes to stdout, logs go to stderr.\n\n\
Streamable HTTP (--http ADDR): one endpoint at http://ADDR/mcp for many clients at once. It binds loopback \
only unless a bearer token is set (--token-file FILE or AGENT_HOST_MCP_TOKEN): without one, a non-loopback \
address is refused. `Host` must name the server and a browser `Origin` must be a loopback page (more in \
`[mcp] allowed_hosts` / `allowed_origins`). The URL is printed on stderr once it listens.\n\n\
Protocol revisions: 2026-07-28 (stateless) and 2025-11-25 / 2025-06-18 (initialize, Mcp-Session-Id). \
The plugin directories are watched: a changed, added or removed plugin changes tools/list at once and \
clients get notifications/tools/list_changed; a broken update keeps the old version serving.",
        after_help = "Examples:\n  agent-host --plugins build/plugins mcp serve\n  agent-host --plugins build/plugins mcp serve --http 127.0.0.1:8765\n  AGENT_HOST_MCP_TOKEN=$(openssl rand -hex 32) agent-host mcp serve --http 0.0.0.0:8765\n\nClient configuration (Claude Desktop/Code, Cursor, VS Code, goose): docs/mcp.md."
    )]
    Serve(ServeArgs),
    /// Connect to every server of `[mcp.servers]` and show its status, protocol, tools and last error.
    #[command(
        long_about = "Connect to every MCP server configured under [mcp.servers.NAME] (all at once, each up to its \
connect_timeout_ms) and show its status (ready, starting, failed, disabled), the protocol version it speaks, \
how many of its tools the agent gets, and the last error. Tools left out (filtered, refused schemas, name \
clashes) are listed under the server. Exit status 0 when every enabled server is ready, 1 otherwise.",
        after_help = "Example config (agent-host.toml):\n  [mcp.servers.everything]\n  command = \"npx\"\n  args = [\"-y\", \"@modelcontextprotocol/server-everything\"]\n  env = { PATH = \"${PATH}\" }\n\nMore: docs/mcp.md (\"Using MCP servers' tools\")."
    )]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// File holding the bearer token HTTP clients must send (or set AGENT_HOST_MCP_TOKEN); required for a non-loopback --http.
    #[arg(long, value_name = "FILE", requires = "http")]
    token_file: Option<PathBuf>,
    /// Do not run extension hooks around MCP calls.
    #[arg(long)]
    no_hooks: bool,
    /// Do not watch the plugin directories for changes.
    #[arg(long)]
    no_watch: bool,
}

pub async fn run(cli: &Cli, command: &McpCommand) -> Result<u8, Failure> {
    match command {
        McpCommand::Serve(args) => serve(cli, args).await,
        McpCommand::List { json } => list(cli, *json).await,
    }
}

/// The tools of `[mcp.servers]`, or `None` when none is configured. Nothing
/// starts yet; the tool lists persisted by earlier runs are loaded.
pub fn client(settings: &Settings, runtime: &Runtime) -> Result<Option<McpTools>, Failure> {
    if settings.mcp.servers.is_empty() {
        return Ok(None);
    }
    let options = ClientOptions {
        limits: Limits::from_runtime(runtime.config(), Some(runtime.store().clone())),
        output_limit: runtime.config().sandbox.default_max_output_kb as usize * 1024,
        runtime: Some(runtime.clone()),
    };
    McpTools::new(&settings.mcp.servers, options)
        .map(Some)
        .map_err(Failure::usage)
}

/// What the agent calls: the plugins' tools, then the MCP servers'.
pub fn agent_tools(runtime: &Runtime, mcp: Option<&McpTools>) -> Arc<dyn ToolHost> {
    match mcp {
        None => Arc::new(runtime.clone()),
        Some(mcp) => Arc::new(ToolHosts::new(vec![
            Arc::new(runtime.clone()),
            Arc::new(mcp.clone()),
        ])),
    }
}

async fn list(cli: &Cli, json: bool) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    let runtime = start(&settings, json, StoreOpen::Now).await?;
    let Some(mcp) = client(&settings, &runtime)? else {
        if json {
            print_json(&Vec::<ServerReport>::new());
        } else {
            outln!(
                "no MCP servers configured; add [mcp.servers.NAME] to the config file (docs/mcp.md)"
            );
        }
        return Ok(EXIT_OK);
    };
    mcp.wait_ready().await;
    let reports = mcp.reports();
    mcp.shut_down().await;
    let all_ready = reports
        .iter()
        .all(|report| matches!(report.status, "ready" | "disabled"));
    if json {
        print_json(&reports);
    } else {
        print_reports(&reports);
    }
    Ok(if all_ready { EXIT_OK } else { EXIT_TOOL })
}

fn print_reports(reports: &[ServerReport]) {
    let width = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    outln!(
        "{:width$}  {:9}  {:5}  {:10}  {:>5}  DETAIL",
        "SERVER",
        "STATUS",
        "VIA",
        "PROTOCOL",
        "TOOLS"
    );
    for report in reports {
        let detail = report
            .reason
            .clone()
            .or_else(|| report.server.clone())
            .unwrap_or_default();
        outln!(
            "{:width$}  {:9}  {:5}  {:10}  {:>5}  {}",
            report.name,
            report.status,
            report.transport,
            report
                .protocol
                .as_deref()
                .map(escape::line)
                .unwrap_or_else(|| "-".into()),
            report.tools,
            escape::line(&detail)
        );
        for problem in &report.problems {
            outln!("{:width$}  - {}", "", escape::line(problem));
        }
        if report.reason.is_none()
            && let Some(error) = &report.last_error
        {
            outln!("{:width$}  last error: {}", "", escape::line(error));
        }
    }
}

async fn serve(cli: &Cli, args: &ServeArgs) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    // The token is checked before anything is loaded: a refusal is quick.
    // stdio has no use for a token.
    let token = match args.http {
        Some(_) => BearerToken::from_file_or_env(args.token_file.as_deref(), FRONT_END.token_env)
            .map_err(Failure::usage)?,
        None => None,
    };
    if let Some(addr) = args.http {
        FRONT_END
            .check_listen(addr, token.as_ref())
            .map_err(Failure::usage)?;
    }
    let runtime = start(&settings, false, StoreOpen::Now).await?;
    let _watcher = if args.no_watch {
        None
    } else {
        Some(
            runtime
                .watch()
                .map_err(|err| Failure::usage(anyhow::anyhow!(err)))?,
        )
    };
    let mut config = settings.mcp.clone();
    if args.no_hooks {
        config.hooks = false;
    }
    let server = ToolServer::new(runtime.clone(), config);
    tracing::info!(tools = runtime.tools().len(), "serving MCP");
    let result = match args.http {
        None => serve_stdio(server).await,
        Some(addr) => serve_http(server, addr, token).await,
    };
    runtime.persist_cache_stats();
    result.map(|()| EXIT_OK)
}

async fn serve_stdio(server: ToolServer) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    agent_host_mcp::stdio::serve(server, shutdown)
        .await
        .map_err(Failure::usage)
}

async fn serve_http(
    server: ToolServer,
    addr: SocketAddr,
    token: Option<BearerToken>,
) -> Result<(), Failure> {
    let has_token = token.is_some();
    let http = HttpServer::bind(server, HttpOptions { addr, token })
        .await
        .map_err(Failure::usage)?;
    eprintln!(
        "agent-host mcp: listening on {}{}; Ctrl-C to stop",
        escape::line(&http.url()),
        if has_token {
            " (bearer token required)"
        } else {
            ""
        }
    );
    let stop = http.stopper();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    http.wait().await.map_err(Failure::usage)
}
