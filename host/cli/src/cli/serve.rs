//! `agent-host serve`: the HTTP API for many agent sessions, over the loaded plugins, with hot reload.

use std::net::SocketAddr;
use std::sync::Arc;

use agent_host_agent::sessions::{LiveSessions, Sessions};
use agent_host_auth::BearerToken;
use agent_host_server::{AppState, FRONT_END, Models, Server};
use clap::Args;

use super::agent::{ModelArgs, agent_config, choose_provider};
use super::{Cli, EXIT_OK, Failure, StoreOpen, config_from, escape, start};

#[derive(Debug, Args)]
#[command(
    long_about = "Serve an HTTP API that many users and programs drive at once: create sessions, send \
messages (each runs one agent turn: model calls and sandboxed tool calls), get the answer as JSON or \
the turn's events as server-sent events (Accept: text/event-stream), cancel a running turn, list and \
delete sessions. Sessions persist in the data directory and are kept in memory in a bounded LRU+TTL \
cache ([sessions] live_capacity, live_ttl_secs).\n\nOne turn at a time per session (a second gets 409); \
at most [server] max_turns_in_flight turns at once (then 503 with Retry-After); bodies and messages are \
capped (413); a turn past [server] turn_timeout_secs is cancelled; a client that hangs up cancels its \
turn ([server] cancel_on_disconnect).\n\nIt listens on loopback unless a bearer token is set (--token-file FILE or AGENT_HOST_SERVE_TOKEN): \
without one, a non-loopback address is refused; with one, every request but /healthz needs \
`Authorization: Bearer <token>`. \
The plugin directories are watched and hot-reloaded while it serves. API: docs/server.md.",
    after_help = "Examples:\n  agent-host --plugins build/plugins serve\n  curl -s -X POST localhost:8787/v1/sessions -d '{\"title\": \"demo\"}'\n  curl -s -N -H 'accept: text/event-stream' -X POST localhost:8787/v1/sessions/ID/messages -d '{\"content\": \"What is 2^10?\"}'"
)]
pub struct ServeArgs {
    /// Address to listen on. Default: [server] listen, else 127.0.0.1:8787; a non-loopback one needs a token.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// File holding the bearer token clients must send (or set AGENT_HOST_SERVE_TOKEN); required off loopback.
    #[arg(long, value_name = "FILE")]
    token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

/// SIGTERM (a service manager stopping it) or Ctrl-C. The SIGTERM handler
/// is installed at once, when this is called, not when it is awaited.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(cli: &Cli, args: &ServeArgs) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    let mut config = settings.server.clone();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let token = BearerToken::from_file_or_env(args.token_file.as_deref(), FRONT_END.token_env)
        .map_err(Failure::usage)?;
    FRONT_END
        .check_listen(config.listen, token.as_ref())
        .map_err(Failure::usage)?;
    // The provider is checked before anything is loaded.
    let chosen = choose_provider(&args.model, &settings.provider)?;
    let mut models = Models::new(chosen.provider);
    for name in &config.models {
        let model = ModelArgs {
            model: Some(name.clone()),
            ..args.model.clone()
        };
        models = models.with(choose_provider(&model, &settings.provider)?.provider);
    }
    let runtime = start(&settings, false, StoreOpen::Now).await?;
    let _watcher = runtime
        .watch()
        .map_err(|err| Failure::usage(anyhow::anyhow!(err)))?;
    let store = Arc::new(Sessions::open(runtime.store(), settings.sessions.writer()));
    let live = LiveSessions::from_settings(store.clone(), &settings.sessions);
    // MCP servers' tools join the plugins' for every session.
    let mcp = super::mcp::client(&settings, &runtime)?;
    if let Some(mcp) = &mcp {
        mcp.wait_ready().await;
    }
    let state = AppState::new(
        runtime.clone(),
        store.clone(),
        live,
        models,
        agent_config(&args.model, &settings.agent),
        config,
    )
    .with_tools(super::mcp::agent_tools(&runtime, mcp.as_ref()));
    let state_grace = state.config().shutdown_grace_secs;
    let state_tools = state.tools().list_tools().len();
    let stop_requested = shutdown_signal();
    let has_token = token.is_some();
    let server = Server::bind(state, token).await.map_err(Failure::usage)?;
    eprintln!(
        "agent-host serve: listening on {} ({} tools, {}{}); Ctrl-C to stop",
        escape::line(&server.url()),
        state_tools,
        escape::line(&chosen.banner),
        if has_token {
            ", bearer token required"
        } else {
            ""
        }
    );
    let grace = std::time::Duration::from_secs(state_grace);
    stop_requested.await;
    eprintln!("agent-host serve: stopping; running turns get {grace:?} to finish");
    let result = server.shutdown(grace).await.map_err(Failure::usage);
    // Every acknowledged turn is in the writer's queue: flush it to disk.
    store.close().await;
    if let Some(mcp) = &mcp {
        mcp.shut_down().await;
    }
    runtime.persist_cache_stats();
    result.map(|()| EXIT_OK)
}
