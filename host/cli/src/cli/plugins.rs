//! `agent-host plugins list | check | watch | new`; the list shows the MCP servers' kept tool lists too.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use agent_host_runtime::cache::CacheLevel;
use agent_host_runtime::hooks::Throttle;
use agent_host_runtime::runtime::Plugin;
use agent_host_runtime::{PluginKind, Runtime};

use super::escape;
use super::render::print_json;
use super::{Cli, EXIT_OK, Failure, StoreOpen, config_from, start};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List plugins in the plugin directories, with their status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Load the plugin directories, then reload plugins as their files change (a plugin author's loop).
    Watch {
        /// Print one JSON event per line.
        #[arg(long)]
        json: bool,
    },
    /// Create a new plugin project in Rust, Python, JavaScript or C: it builds with `make` and passes `plugins check` as it is.
    New(super::new::NewArgs),
    /// Validate a plugin file and its manifest; print what it exports and requests.
    Check {
        /// Path to the plugin's .wasm (its manifest is the .toml next to it).
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, command: &PluginsCommand) -> Result<u8, Failure> {
    match command {
        PluginsCommand::List { json } => list(cli, *json).await,
        PluginsCommand::Check { path, json } => check(cli, path, *json).await,
        PluginsCommand::Watch { json } => super::watch::run(cli, *json).await,
        PluginsCommand::New(args) => super::new::run(args),
    }
}

async fn list(cli: &Cli, json: bool) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    let runtime = start(&settings, true, StoreOpen::OnFirstUse).await?;
    // MCP servers are listed from their kept tool lists; nothing starts.
    let mcp = super::mcp::client(&settings, &runtime)?;
    let mcp_rows: Vec<(agent_host_mcp::client::ServerReport, Vec<String>)> = mcp
        .as_ref()
        .map(|mcp| {
            let tools = mcp.tool_infos();
            mcp.reports()
                .into_iter()
                .map(|report| {
                    let source = format!("mcp:{}", report.name);
                    let names = tools
                        .iter()
                        .filter(|tool| tool.source == source)
                        .map(|tool| tool.spec.name.clone())
                        .collect();
                    (report, names)
                })
                .collect()
        })
        .unwrap_or_default();
    let plugins = runtime.plugins();
    let problems = runtime.problems();
    // A problem at the path of a loaded plugin is a failed update: the
    // previous version keeps serving.
    let update_error = |path: &std::path::Path| {
        problems
            .iter()
            .find(|p| p.path == path)
            .map(|p| p.error.clone())
    };
    let problems: Vec<_> = problems
        .iter()
        .filter(|problem| !plugins.iter().any(|p| p.wasm_path == problem.path))
        .cloned()
        .collect();
    if json {
        let mut rows: Vec<serde_json::Value> = plugins
            .iter()
            .map(|p| {
                let error = update_error(&p.wasm_path);
                json!({
                    "name": p.name(), "version": p.manifest.plugin.version,
                    "status": if error.is_some() { "stale" } else { "ok" }, "update_error": error,
                    "path": p.wasm_path, "kind": kind_name(p),
                    "tools": p.tools.iter().map(|t| &t.spec.name).collect::<Vec<_>>(),
                    "extension": p.extension,
                    "content_hash": p.content_hash, "size": p.size,
                    "tier": runtime.best_tier(p),
                })
            })
            .collect();
        rows.extend(problems.iter().map(|problem| {
            json!({ "name": problem.plugin, "status": "error", "path": problem.path, "error": problem.error })
        }));
        rows.extend(mcp_rows.iter().map(|(report, tools)| {
            json!({
                "name": format!("mcp:{}", report.name), "kind": "mcp",
                "status": if report.status == "disabled" { "disabled" } else if report.fetched_at.is_some() { "kept" } else { "unlisted" },
                "tools": tools, "fetched_at": report.fetched_at,
            })
        }));
        print_json(&rows);
        return Ok(EXIT_OK);
    }
    if plugins.is_empty() && problems.is_empty() && mcp_rows.is_empty() {
        outln!(
            "no plugins found; put <name>.wasm + <name>.toml in a plugin directory, or pass --plugins DIR"
        );
        return Ok(EXIT_OK);
    }
    outln!(
        "{:16} {:9} {:7} {:9} TOOLS / HOOKS / ERROR",
        "PLUGIN",
        "VERSION",
        "STATUS",
        "TIER"
    );
    for plugin in &plugins {
        let provides = provides(plugin);
        // The build it runs (or would load): baseline until the optimized
        // one is ready; "-" when it would compile on first use.
        let tier = runtime.best_tier(plugin).map_or("-", |tier| tier.label());
        match update_error(&plugin.wasm_path) {
            None => outln!(
                "{:16} {:9} {:7} {tier:9} {provides}",
                escape::line(plugin.name()),
                escape::line(&plugin.manifest.plugin.version),
                "ok",
            ),
            Some(error) => outln!(
                "{:16} {:9} {:7} {tier:9} {provides} (update failed, this version keeps serving: {})",
                escape::line(plugin.name()),
                escape::line(&plugin.manifest.plugin.version),
                "stale",
                escape::line(&error),
            ),
        }
    }
    for problem in &problems {
        let name = problem
            .plugin
            .clone()
            .unwrap_or_else(|| problem.path.display().to_string());
        outln!(
            "{:16} {:9} {:7} {:9} {}",
            escape::line(&name),
            "-",
            "error",
            "-",
            escape::line(&problem.error)
        );
    }
    for (report, tools) in &mcp_rows {
        let status = match (report.status, report.fetched_at) {
            ("disabled", _) => "disabled".to_owned(),
            (_, Some(_)) => format!("{} tools (kept list)", tools.len()),
            (_, None) => "not listed yet (`agent-host mcp list` connects)".to_owned(),
        };
        outln!(
            "{:16} {:9} {:7} {:9} {status}: {}",
            format!("mcp:{}", report.name),
            "-",
            "mcp",
            "-",
            tools.join(", ")
        );
    }
    Ok(EXIT_OK)
}

/// The contract version the component's tool chain wrote into it (a check
/// loads eagerly, so the component is always prepared here).
fn built_contract(plugin: &agent_host_runtime::runtime::Plugin) -> String {
    plugin
        .built_contract()
        .map(|version| escape::line(&version).into_owned())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

async fn check(cli: &Cli, path: &Path, json: bool) -> Result<u8, Failure> {
    let config = config_from(cli)?;
    let runtime = Runtime::new(config.runtime).map_err(Failure::usage)?;
    let plugin = runtime.check_plugin(path).await.map_err(Failure::usage)?;
    let caps = &plugin.capabilities;
    if json {
        print_json(&json!({
            "ok": true, "name": plugin.name(), "version": plugin.manifest.plugin.version,
            "contract": format!("{}@{}", agent_host_runtime::CONTRACT_PACKAGE, built_contract(&plugin)),
            "host_contract": format!("{}@{}", agent_host_runtime::CONTRACT_PACKAGE, agent_host_runtime::CONTRACT_VERSION),
            "kind": kind_name(&plugin),
            "tools": plugin.tools.iter().map(|t| &t.spec).collect::<Vec<_>>(),
            "extension": plugin.extension,
            "requested": plugin.manifest.capabilities, "granted": caps,
            "compile_ms": plugin.compile_time().as_secs_f64() * 1e3,
            "from_cache": plugin.cache_level().is_some_and(|level| level != CacheLevel::Compiled),
        }));
        return Ok(EXIT_OK);
    }
    let info = &plugin.manifest.plugin;
    let origin = match plugin.cache_level() {
        Some(CacheLevel::Compiled) => format!(
            "compiled in {:.0} ms",
            plugin.compile_time().as_secs_f64() * 1e3
        ),
        Some(CacheLevel::Disk) => "loaded from the artifact cache".to_owned(),
        _ => "loaded from the memory cache".to_owned(),
    };
    outln!(
        "ok: {} {} ({} bytes, {origin})",
        escape::line(&info.name),
        escape::line(&info.version),
        plugin.size
    );
    outln!(
        "contract: built against {}@{} (this host serves {}@{})",
        agent_host_runtime::CONTRACT_PACKAGE,
        built_contract(&plugin),
        agent_host_runtime::CONTRACT_PACKAGE,
        agent_host_runtime::CONTRACT_VERSION
    );
    if let Some(extension) = &plugin.extension {
        outln!("extension, priority {}; hooks:", extension.priority);
        for sub in &extension.subscriptions {
            outln!(
                "  {:20} {:?}{}",
                sub.point.as_str(),
                sub.delivery,
                throttle_text(&sub.throttle)
            );
        }
    } else {
        outln!("tools:");
    }
    for tool in &plugin.tools {
        let hints = tool.spec.hints.names();
        outln!(
            "  {:20} {}{}",
            escape::line(&tool.spec.name),
            super::render::shorten(&tool.spec.description, 60),
            if hints.is_empty() {
                String::new()
            } else {
                format!(" [{}]", hints.join(", "))
            }
        );
    }
    let requested = &plugin.manifest.capabilities;
    outln!("requests:");
    // Everything below comes from the manifest (the plugin author) or
    // repeats it: escaped.
    for dir in &requested.dirs {
        outln!("  dir {} ({})", escape::line(&dir.path), dir.access);
    }
    for var in &requested.env {
        outln!("  env {}", escape::line(var));
    }
    for host in &requested.network {
        outln!("  network {}", escape::line(host));
    }
    if requested.dirs.is_empty() && requested.env.is_empty() && requested.network.is_empty() {
        outln!("  nothing");
    }
    outln!("granted by this host's config:");
    for dir in &caps.dirs {
        outln!(
            "  dir {} -> {} ({})",
            escape::line(&dir.guest),
            escape::line(&dir.host.display().to_string()),
            dir.access
        );
    }
    for (var, _) in &caps.env {
        outln!("  env {}", escape::line(var));
    }
    for host in &caps.network.allowed {
        outln!("  network {}", escape::line(&host.to_string()));
    }
    for denied in &caps.not_granted {
        outln!("  NOT granted: {}", escape::line(denied));
    }
    for warning in &caps.warnings {
        outln!("  WARNING: {warning}");
    }
    let limits = &caps.limits;
    outln!(
        "limits: memory {} MiB, timeout {} ms, output {} KiB, fuel {}",
        limits.memory_bytes >> 20,
        limits.timeout.as_millis(),
        limits.max_output_bytes >> 10,
        limits.fuel.map_or("off".to_owned(), |f| f.to_string())
    );
    Ok(EXIT_OK)
}

fn kind_name(plugin: &Plugin) -> &'static str {
    match plugin.kind {
        PluginKind::Tool => "tool",
        PluginKind::Extension => "extension",
    }
}

/// What a plugin offers, for one line of `plugins list`: its tools, or an
/// extension's hook points.
fn provides(plugin: &Plugin) -> String {
    match &plugin.extension {
        Some(extension) => {
            let hooks: Vec<&str> = extension
                .subscriptions
                .iter()
                .map(|sub| sub.point.as_str())
                .collect();
            format!("extension: {}", hooks.join(", "))
        }
        None => {
            let tools: Vec<&str> = plugin.tools.iter().map(|t| t.spec.name.as_str()).collect();
            escape::line(&tools.join(", ")).into_owned()
        }
    }
}

fn throttle_text(throttle: &Throttle) -> String {
    let mut parts = Vec::new();
    if let Some(ms) = throttle.min_interval_ms {
        parts.push(format!("at most every {ms} ms"));
    }
    if let Some(n) = throttle.every_n_turns {
        parts.push(format!("every {n} turns"));
    }
    if let Some(n) = throttle.coalesce_chunks {
        parts.push(format!("batches of {n} chunks"));
    }
    if let Some(ms) = throttle.coalesce_ms {
        parts.push(format!("or {ms} ms"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}
