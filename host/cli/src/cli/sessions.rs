//! `agent-host sessions list | show | export | delete`.

use clap::{Subcommand, ValueEnum};

use agent_host_agent::sessions::{ExportFormat, SessionRecord, Sessions};
use agent_host_llm::{Message, Role};
use agent_host_runtime::Runtime;

use super::escape;
use super::render::{print_json, shorten};
use super::{Cli, EXIT_OK, Failure, config_from};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Jsonl,
    Sharegpt,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sessions, most recent first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A session's messages.
    Show { id: String },
    /// Print a session as JSON lines or in ShareGPT format.
    Export {
        id: String,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
    },
    /// Delete a session and its messages.
    Delete { id: String },
}

/// A stored session and its history, for `run --session` and `chat --resume`.
pub fn resume(sessions: &Sessions, id: &str) -> Result<(SessionRecord, Vec<Message>), Failure> {
    let record = sessions.get(id).ok_or_else(|| unknown(id))?;
    let history = sessions.messages(id);
    Ok((record, history))
}

fn unknown(id: &str) -> Failure {
    Failure::usage(anyhow::anyhow!(
        "no session '{id}'; `agent-host sessions list` shows the sessions"
    ))
}

pub async fn run(cli: &Cli, command: &SessionsCommand) -> Result<u8, Failure> {
    let settings = config_from(cli)?;
    let runtime = Runtime::new(settings.runtime).map_err(Failure::usage)?;
    let sessions = Sessions::open(runtime.store(), settings.sessions.writer());
    let code = match command {
        SessionsCommand::List { json } => {
            let records = sessions.list();
            if *json {
                print_json(&records);
            } else if records.is_empty() {
                outln!("no sessions yet; `agent-host run` and `agent-host chat` create them");
            } else {
                outln!("{:20} {:>5} {:12} TITLE", "ID", "MSGS", "OUTCOME");
                for record in &records {
                    outln!(
                        "{:20} {:>5} {:12} {}",
                        escape::line(&record.id),
                        record.message_count,
                        record
                            .last_outcome
                            .as_deref()
                            .map(|o| shorten(o, 12))
                            .unwrap_or_default(),
                        shorten(&record.title, 60)
                    );
                }
            }
            EXIT_OK
        }
        SessionsCommand::Show { id } => {
            let record = sessions.get(id).ok_or_else(|| unknown(id))?;
            outln!(
                "session {} | {} {} | {} messages",
                escape::line(&record.id),
                escape::line(&record.provider),
                escape::line(&record.model),
                record.message_count
            );
            for message in sessions.messages(id) {
                let who = match message.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::Tool => "tool",
                };
                if !message.content.is_empty() {
                    // What the model, a tool or an extension said.
                    outln!("{who:>9}: {}", escape::text(&message.content));
                }
                for call in &message.tool_calls {
                    outln!(
                        "{:>9}  -> {} {}",
                        "",
                        escape::line(&call.name),
                        shorten(&call.arguments, 80)
                    );
                }
            }
            EXIT_OK
        }
        SessionsCommand::Export { id, format } => {
            let format = match format {
                Format::Jsonl => ExportFormat::Jsonl,
                Format::Sharegpt => ExportFormat::ShareGpt,
            };
            out!(
                "{}",
                sessions.export(id, format).ok_or_else(|| unknown(id))?
            );
            EXIT_OK
        }
        SessionsCommand::Delete { id } => {
            if !sessions.delete(id) {
                return Err(unknown(id));
            }
            outln!("deleted session {}", escape::line(id));
            EXIT_OK
        }
    };
    sessions.close().await;
    Ok(code)
}
