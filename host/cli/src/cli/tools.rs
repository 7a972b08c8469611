//! `agent-host tools list | describe | call`.

use clap::Subcommand;
use serde_json::json;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agent_host_runtime::runtime::ProgressUpdate;
use agent_host_runtime::{CallError, CallOptions};

use super::escape;
use super::render::{print_json, shorten};
use super::{Cli, EXIT_OK, EXIT_TOOL, Failure, config_from, start};

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List every tool of every loaded plugin.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
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
        /// Arguments as a JSON object, checked against the tool's schema.
        #[arg(long, default_value = "{}", value_name = "JSON")]
        args: String,
        /// Print the result (or the error) as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, command: &ToolsCommand) -> Result<u8, Failure> {
    match command {
        ToolsCommand::List { json } => list(cli, *json).await,
        ToolsCommand::Describe { name, json } => describe(cli, name, *json).await,
        ToolsCommand::Call { name, args, json } => call(cli, name, args, *json).await,
    }
}

async fn list(cli: &Cli, json: bool) -> Result<u8, Failure> {
    let runtime = start(&config_from(cli)?, json).await?;
    let tools = runtime.tools();
    if json {
        print_json(&tools);
        return Ok(EXIT_OK);
    }
    if tools.is_empty() {
        let dirs: Vec<String> = runtime
            .config()
            .plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        println!(
            "no tools loaded from {}; put <name>.wasm + <name>.toml there, or pass --plugins DIR",
            dirs.join(", ")
        );
        return Ok(EXIT_OK);
    }
    let width = tools
        .iter()
        .map(|t| t.spec.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let plugin_width = tools
        .iter()
        .map(|t| t.plugin.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!("{:width$}  {:plugin_width$}  DESCRIPTION", "TOOL", "PLUGIN");
    for tool in &tools {
        println!(
            "{:width$}  {:plugin_width$}  {}",
            tool.spec.name,
            tool.plugin,
            shorten(&tool.spec.description, 70)
        );
    }
    Ok(EXIT_OK)
}

async fn describe(cli: &Cli, name: &str, json: bool) -> Result<u8, Failure> {
    let runtime = start(&config_from(cli)?, json).await?;
    let Some(tool) = runtime.tool(name) else {
        let known: Vec<String> = runtime.tools().into_iter().map(|t| t.spec.name).collect();
        return Err(Failure::usage(anyhow::anyhow!(
            "no tool named '{name}'; known tools: {} (see `agent-host tools list`)",
            known.join(", ")
        )));
    };
    if json {
        print_json(&tool);
        return Ok(EXIT_OK);
    }
    let spec = &tool.spec;
    println!(
        "{}{}",
        escape::line(&spec.name),
        spec.title
            .as_ref()
            .map(|t| format!(" — {}", escape::line(t)))
            .unwrap_or_default()
    );
    println!("plugin: {}", tool.plugin);
    let hints = spec.hints.names();
    println!(
        "hints:  {}",
        if hints.is_empty() {
            "none".to_owned()
        } else {
            hints.join(", ")
        }
    );
    println!("\n{}\n", escape::text(&spec.description));
    // JSON escapes C0 controls in strings but leaves DEL, C1 and bidi
    // controls raw: the schema text is escaped like any other.
    println!("arguments (JSON Schema):");
    let schema = serde_json::to_string_pretty(&spec.input_schema).unwrap_or_default();
    println!("{}", escape::text(&schema));
    if let Some(output) = &spec.output_schema {
        println!("output (JSON Schema):");
        let schema = serde_json::to_string_pretty(output).unwrap_or_default();
        println!("{}", escape::text(&schema));
    }
    Ok(EXIT_OK)
}

async fn call(cli: &Cli, name: &str, args: &str, json: bool) -> Result<u8, Failure> {
    let args: serde_json::Value = serde_json::from_str(args).map_err(|err| {
        Failure::usage(anyhow::anyhow!(
            "--args is not valid JSON ({err}); pass an object such as --args '{{\"text\": \"hi\"}}'"
        ))
    })?;
    let runtime = start(&config_from(cli)?, json).await?;
    let started = std::time::Instant::now();
    let options = CallOptions {
        progress: progress_printer(),
        ..CallOptions::default()
    };
    let result = runtime.call_tool(name, &args, options).await;
    if options_printed_progress() {
        eprintln!();
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok(output) => {
            if json {
                print_json(
                    &json!({ "ok": true, "tool": name, "elapsed_ms": elapsed_ms, "output": output }),
                );
            } else {
                println!("{}", escape::text(&output.to_text()));
            }
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
