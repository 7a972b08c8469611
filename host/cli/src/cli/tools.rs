//! `agent-host tools list | describe | call`: the plugins' tools and the MCP servers' (`mcp:NAME`).

use clap::Subcommand;
use serde_json::json;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_host_agent::ToolCallError;
use agent_host_mcp::client::tools::McpToolInfo;
use agent_host_runtime::runtime::ProgressUpdate;
use agent_host_runtime::{CallError, CallOptions};

use super::escape;
use super::render::{print_json, shorten};
use super::{Cli, EXIT_OK, EXIT_TOOL, Failure, StoreOpen, config_from, start};

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List every tool: the loaded plugins' and the MCP servers' (from [mcp.servers]).
    #[command(
        long_about = "List every tool the agent can call, with its source: a plugin's name, or mcp:NAME for a tool of \
the MCP server NAME. MCP tools come from the tool lists the servers gave last time (kept in the data dir), so \
listing starts no server; a server never listed before is connected to. --refresh connects to every server \
and lists afresh."
    )]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Ask the MCP servers for their tools now instead of using the lists kept from earlier runs.
        #[arg(long)]
        refresh: bool,
    },
    /// Show a tool's description, argument schema and hints.
    Describe {
        /// Tool name, as shown by `tools list`.
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Call a tool once in a fresh sandbox and print its result.
    Call {
        /// Tool name, as shown by `tools list`.
        name: String,
        /// Arguments as a JSON object, checked against the tool's schema; `@FILE` reads them from a file and `@-` from stdin (for inputs past the command line's size limit).
        #[arg(long, default_value = "{}", value_name = "JSON")]
        args: String,
        /// Print the result (or the error) as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, command: &ToolsCommand) -> Result<u8, Failure> {
    match command {
        ToolsCommand::List { json, refresh } => list(cli, *json, *refresh).await,
        ToolsCommand::Describe { name, json } => describe(cli, name, *json).await,
        ToolsCommand::Call { name, args, json } => call(cli, name, args, *json).await,
    }
}

async fn list(cli: &Cli, json: bool, refresh: bool) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    let runtime = start(&settings, json, StoreOpen::OnFirstUse).await?;
    let tools = runtime.tools();
    let mcp = super::mcp::client(&settings, &runtime)?;
    let (mcp_tools, reports) = match &mcp {
        Some(mcp) => {
            if refresh {
                mcp.wait_ready().await;
            } else {
                mcp.wait_unlisted().await;
            }
            let listed = (mcp.tool_infos(), mcp.reports());
            mcp.shut_down().await;
            listed
        }
        None => (Vec::new(), Vec::new()),
    };
    if json {
        let mut rows: Vec<serde_json::Value> = tools
            .iter()
            .map(|tool| {
                let mut row = serde_json::to_value(tool).unwrap_or_default();
                row["source"] = json!("plugin");
                row
            })
            .collect();
        rows.extend(
            mcp_tools
                .iter()
                .map(|tool| serde_json::to_value(tool).unwrap_or_default()),
        );
        print_json(&rows);
        return Ok(EXIT_OK);
    }
    if tools.is_empty() && mcp_tools.is_empty() {
        let dirs: Vec<String> = runtime
            .config()
            .plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        outln!(
            "no tools loaded from {}; put <name>.wasm + <name>.toml there, or pass --plugins DIR",
            dirs.join(", ")
        );
        return Ok(EXIT_OK);
    }
    let rows: Vec<(&str, &str, &str)> = tools
        .iter()
        .map(|t| {
            (
                t.spec.name.as_str(),
                t.plugin.as_str(),
                t.spec.description.as_str(),
            )
        })
        .chain(mcp_tools.iter().map(|t| {
            (
                t.spec.name.as_str(),
                t.source.as_str(),
                t.spec.description.as_str(),
            )
        }))
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let source_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(6).max(6);
    outln!("{:width$}  {:source_width$}  DESCRIPTION", "TOOL", "SOURCE");
    for (name, source, description) in rows {
        outln!(
            "{:width$}  {:source_width$}  {}",
            escape::line(name),
            source,
            shorten(description, 70)
        );
    }
    for report in reports.iter().filter(|r| r.cached) {
        let age = report
            .fetched_at
            .map(age_text)
            .unwrap_or_else(|| "an earlier run".to_owned());
        outln!(
            "(mcp:{}: the tool list kept from {age}; --refresh asks the server)",
            report.name
        );
    }
    for report in reports.iter().filter(|r| r.status == "failed") {
        outln!(
            "(mcp:{}: {})",
            report.name,
            escape::line(report.reason.as_deref().unwrap_or("failed"))
        );
    }
    Ok(EXIT_OK)
}

/// "5 min ago" for a Unix time in seconds.
fn age_text(unix_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = now.saturating_sub(unix_secs);
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The MCP tool `name`, from the kept lists (or the servers, when a server
/// was never listed), with the tool source it belongs to.
async fn find_mcp_tool(
    settings: &super::config::Settings,
    runtime: &agent_host_runtime::Runtime,
    name: &str,
) -> Result<Option<(agent_host_mcp::McpTools, McpToolInfo)>, Failure> {
    let Some(mcp) = super::mcp::client(settings, runtime)? else {
        return Ok(None);
    };
    let lookup =
        |mcp: &agent_host_mcp::McpTools| mcp.tool_infos().into_iter().find(|t| t.spec.name == name);
    let mut found = lookup(&mcp);
    if found.is_none() && mcp.needs_listing() {
        mcp.wait_unlisted().await;
        found = lookup(&mcp);
    }
    if found.is_none() {
        mcp.shut_down().await;
    }
    Ok(found.map(|info| (mcp, info)))
}

fn unknown_tool(runtime: &agent_host_runtime::Runtime, name: &str) -> Failure {
    let known: Vec<String> = runtime.tools().into_iter().map(|t| t.spec.name).collect();
    Failure::usage(anyhow::anyhow!(
        "no tool named '{}'; known tools: {} (see `agent-host tools list`)",
        escape::line(name),
        known.join(", ")
    ))
}

async fn describe(cli: &Cli, name: &str, json: bool) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    let runtime = start(&settings, json, StoreOpen::OnFirstUse).await?;
    let (spec, source) = match runtime.tool(name) {
        Some(tool) => {
            if json {
                print_json(&tool);
                return Ok(EXIT_OK);
            }
            (tool.spec, format!("plugin: {}", tool.plugin))
        }
        None => {
            let Some((mcp, info)) = find_mcp_tool(&settings, &runtime, name).await? else {
                return Err(unknown_tool(&runtime, name));
            };
            mcp.shut_down().await;
            if json {
                print_json(&info);
                return Ok(EXIT_OK);
            }
            let source = format!(
                "source: {} (the server calls it '{}')",
                info.source,
                escape::line(&info.original)
            );
            (info.spec, source)
        }
    };
    let spec = &spec;
    outln!(
        "{}{}",
        escape::line(&spec.name),
        spec.title
            .as_ref()
            .map(|t| format!(" — {}", escape::line(t)))
            .unwrap_or_default()
    );
    outln!("{source}");
    let hints = spec.hints.names();
    outln!(
        "hints:  {}",
        if hints.is_empty() {
            "none".to_owned()
        } else {
            hints.join(", ")
        }
    );
    outln!("\n{}\n", escape::text(&spec.description));
    // JSON escapes C0 controls in strings but leaves DEL, C1 and bidi
    // controls raw: the schema text is escaped like any other.
    outln!("arguments (JSON Schema):");
    let schema = serde_json::to_string_pretty(&spec.input_schema).unwrap_or_default();
    outln!("{}", escape::text(&schema));
    if let Some(output) = &spec.output_schema {
        outln!("output (JSON Schema):");
        let schema = serde_json::to_string_pretty(output).unwrap_or_default();
        outln!("{}", escape::text(&schema));
    }
    Ok(EXIT_OK)
}

/// The text of `--args`: as given, or read from `@FILE` / `@-` (stdin).
fn args_text(args: &str) -> Result<std::borrow::Cow<'_, str>, Failure> {
    let Some(source) = args.strip_prefix('@') else {
        return Ok(args.into());
    };
    let read = if source == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(source)
    };
    read.map(Into::into).map_err(|err| {
        Failure::usage(anyhow::anyhow!(
            "cannot read --args from {}: {err}",
            if source == "-" { "stdin" } else { source }
        ))
    })
}

async fn call(cli: &Cli, name: &str, args: &str, json: bool) -> Result<u8, Failure> {
    let args: serde_json::Value = serde_json::from_str(&args_text(args)?).map_err(|err| {
        Failure::usage(anyhow::anyhow!(
            "--args is not valid JSON ({err}); pass an object such as --args '{{\"text\": \"hi\"}}', or @FILE"
        ))
    })?;
    let settings = config_from(cli)?;
    let runtime = start(&settings, json, StoreOpen::Now).await?;
    if runtime.tool(name).is_none()
        && let Some((mcp, info)) = find_mcp_tool(&settings, &runtime, name).await?
    {
        let code = call_mcp(&mcp, &info, &args, json).await;
        mcp.shut_down().await;
        return code;
    }
    let (result, elapsed_ms) = timed(|options| runtime.call_tool(name, &args, options)).await;
    match result {
        Ok(output) => {
            print_output(
                json!({ "ok": true, "tool": name, "elapsed_ms": elapsed_ms }),
                &output,
                json,
            );
            Ok(EXIT_OK)
        }
        Err(err) => {
            let code = match &err {
                CallError::Tool { .. } | CallError::Failed { .. } | CallError::Host { .. } => {
                    EXIT_TOOL
                }
                CallError::UnknownTool { .. } | CallError::InvalidArguments { .. } => {
                    super::EXIT_USAGE
                }
            };
            if json {
                print_json(&json!({
                    "ok": false, "tool": name, "elapsed_ms": elapsed_ms,
                    "error": { "kind": err.kind(), "message": err.to_string() }
                }));
                return Ok(code);
            }
            let hint = match &err {
                CallError::UnknownTool { .. } => "\n  see `agent-host tools list`",
                CallError::InvalidArguments { .. } => {
                    "\n  see the schema with `agent-host tools describe NAME`"
                }
                _ => "",
            };
            Err(Failure {
                code,
                error: anyhow::anyhow!("{err}{hint}"),
            })
        }
    }
}

/// `tools call` of an MCP tool: the same output as a plugin tool's.
async fn call_mcp(
    mcp: &agent_host_mcp::McpTools,
    info: &McpToolInfo,
    args: &serde_json::Value,
    json: bool,
) -> Result<u8, Failure> {
    let name = info.spec.name.as_str();
    let (result, elapsed_ms) = timed(|options| mcp.call_tool(name, args, options)).await;
    match result {
        Ok(output) => {
            print_output(
                json!({ "ok": true, "tool": name, "source": info.source, "elapsed_ms": elapsed_ms }),
                &output,
                json,
            );
            Ok(EXIT_OK)
        }
        Err(err) => {
            let kind = match &err {
                ToolCallError::Tool(_) => "tool",
                ToolCallError::Failed(_) => "failed",
                ToolCallError::Cancelled => "cancelled",
                ToolCallError::Host(_) => "host",
            };
            if json {
                print_json(&json!({
                    "ok": false, "tool": name, "source": info.source, "elapsed_ms": elapsed_ms,
                    "error": { "kind": kind, "message": err.to_string() }
                }));
                return Ok(EXIT_TOOL);
            }
            Err(Failure {
                code: EXIT_TOOL,
                error: anyhow::anyhow!("{}", escape::text(&err.to_string())),
            })
        }
    }
}

/// Runs one call with the progress line on a terminal: its result and
/// how long it took, in milliseconds.
async fn timed<T, F: std::future::Future<Output = T>>(
    call: impl FnOnce(CallOptions) -> F,
) -> (T, f64) {
    let started = std::time::Instant::now();
    let result = call(CallOptions {
        progress: progress_printer(),
        ..CallOptions::default()
    })
    .await;
    if options_printed_progress() {
        eprintln!();
    }
    (result, started.elapsed().as_secs_f64() * 1e3)
}

/// A successful call's output: `row` with the output as JSON, or the
/// output's text, escaped.
fn print_output(mut row: serde_json::Value, output: &agent_host_runtime::ToolOutput, json: bool) {
    if json {
        row["output"] = serde_json::to_value(output).unwrap_or_default();
        print_json(&row);
    } else {
        outln!("{}", escape::text(&output.to_text()));
    }
}

static PRINTED_PROGRESS: AtomicBool = AtomicBool::new(false);

/// Shows a long call's progress reports on one stderr line, only when stderr
/// is a terminal (scripts and `--json` consumers never see it).
fn progress_printer() -> Option<agent_host_runtime::runtime::Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(|update: &ProgressUpdate| {
        PRINTED_PROGRESS.store(true, Ordering::Relaxed);
        eprint!("\r\x1b[2K{}", progress_line(update));
    }))
}

/// The text of the progress line (after the host's own "clear the line"
/// sequence). The message is the plugin's: escaped, on one line.
fn progress_line(update: &ProgressUpdate) -> String {
    let amount = match update.total {
        Some(total) => format!("{}/{}", update.done, total),
        None => update.done.to_string(),
    };
    let message = update.message.as_deref().unwrap_or("");
    format!(
        "[{} {}] {amount} {}",
        escape::line(&update.plugin),
        escape::line(&update.tool),
        escape::line(message)
    )
}

fn options_printed_progress() -> bool {
    PRINTED_PROGRESS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_escapes_the_plugins_message() {
        let update = ProgressUpdate {
            plugin: "painter".to_owned(),
            tool: "paint_progress".to_owned(),
            done: 1,
            total: Some(2),
            message: Some("\x1b]0;pwned\x07\x1b[2J\u{9b}2J\nnext".to_owned()),
        };
        let line = progress_line(&update);
        assert_eq!(
            line,
            "[painter paint_progress] 1/2 \\x1b]0;pwned\\x07\\x1b[2J\\u{9b}2J\\nnext"
        );
    }
}
