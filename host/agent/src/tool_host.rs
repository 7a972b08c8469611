//! The boundary between the loop and its tools: the [`ToolHost`] trait, its three-tier [`ToolCallError`], the trait's implementation for the wasm [`Runtime`], and [`ToolHosts`], several hosts as one.
//!
//! The loop knows tools only through this trait, so its tests can use a
//! fake and other kinds of tools (MCP servers) can join as further
//! implementations. The runtime does not depend on the agent; the
//! implementation for it lives here.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use agent_host_runtime::error::{CallError, FailureKind};
use agent_host_runtime::runtime::{CallOptions, Runtime};
use agent_host_runtime::spec::{ToolHints, ToolOutput, ToolSpec};

/// What a call to a [`ToolHost`] resolves to. Boxed so the trait stays
/// object safe: the agent holds an `Arc<dyn ToolHost>`.
pub type ToolCallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ToolOutput, ToolCallError>> + Send + 'a>>;

/// Where the agent's tools come from, and how they are called.
pub trait ToolHost: Send + Sync {
    /// The tools the model may see, as they are now: a host may change
    /// them between turns (hot reload, a server's tool list changing).
    fn list_tools(&self) -> Vec<ToolSpec>;

    /// The hints of one tool, `None` for a tool this host does not have.
    /// The loop asks before every call (to batch parallel-safe calls), so
    /// this should not build the whole list.
    fn hints(&self, tool: &str) -> Option<ToolHints>;

    /// The most bytes of output `tool` may return. An extension that
    /// rewrites a result is held to the same cap.
    fn output_limit(&self, tool: &str) -> usize;

    /// Where `tool` comes from, for listings (`mcp:NAME` for an MCP
    /// server's tool); `None` for the plugins and for unknown tools.
    fn source(&self, _tool: &str) -> Option<String> {
        None
    }

    /// Runs one call with the model's arguments. Cancelling
    /// `options.cancel` must end the call promptly with
    /// [`ToolCallError::Cancelled`]; `options.progress`, when set, wants the
    /// tool's progress updates.
    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        options: CallOptions,
    ) -> ToolCallFuture<'a>;
}

/// Why a call produced no output. The tiers are treated differently by
/// the loop: the first two go back to the model, a host error ends the turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolCallError {
    /// The tool answered with an error, or the call itself was wrong (an
    /// unknown tool, arguments that break the schema): the model is told
    /// and can correct itself.
    #[error("{0}")]
    Tool(String),
    /// A fault or a limit ended the call (a trap, a timeout, memory, fuel,
    /// output over the cap): this call failed, the host is fine, and the
    /// model is told.
    #[error("{0}")]
    Failed(String),
    /// The caller's token cancelled the call.
    #[error("cancelled")]
    Cancelled,
    /// The host could not run the call at all; the turn cannot go on.
    #[error("{0}")]
    Host(String),
}

impl From<CallError> for ToolCallError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Failed {
                kind: FailureKind::Cancelled,
                ..
            } => Self::Cancelled,
            CallError::Failed { .. } => Self::Failed(err.to_string()),
            CallError::Host { .. } => Self::Host(err.to_string()),
            CallError::UnknownTool { .. }
            | CallError::InvalidArguments { .. }
            | CallError::Tool { .. } => Self::Tool(err.to_string()),
        }
    }
}

/// The wasm runtime's tools: every registered tool plugin's, each call in a
/// fresh sandbox.
impl ToolHost for Runtime {
    fn list_tools(&self) -> Vec<ToolSpec> {
        self.tools().into_iter().map(|tool| tool.spec).collect()
    }

    fn hints(&self, tool: &str) -> Option<ToolHints> {
        self.tool_hints(tool)
    }

    fn output_limit(&self, tool: &str) -> usize {
        self.tool_output_limit(tool)
            .unwrap_or(self.config().sandbox.default_max_output_kb as usize * 1024)
    }

    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        options: CallOptions,
    ) -> ToolCallFuture<'a> {
        Box::pin(async move {
            self.call_tool(tool, args, options)
                .await
                .map_err(ToolCallError::from)
        })
    }
}

/// Several tool hosts as one (the plugins, then MCP servers): the first
/// host that has a tool answers for it, so an earlier host's tool hides a
/// later host's tool of the same name (the later host is expected to
/// refuse and report such a clash itself). Routing a call is one
/// [`ToolHost::hints`] lookup per host.
#[derive(Clone)]
pub struct ToolHosts {
    hosts: Vec<std::sync::Arc<dyn ToolHost>>,
}

impl ToolHosts {
    /// `hosts` in order of precedence.
    pub fn new(hosts: Vec<std::sync::Arc<dyn ToolHost>>) -> Self {
        Self { hosts }
    }

    fn owner(&self, tool: &str) -> Option<&dyn ToolHost> {
        self.hosts
            .iter()
            .map(|host| host.as_ref())
            .find(|host| host.hints(tool).is_some())
    }
}

impl ToolHost for ToolHosts {
    fn list_tools(&self) -> Vec<ToolSpec> {
        let mut seen = std::collections::HashSet::new();
        let mut tools = Vec::new();
        for host in &self.hosts {
            for spec in host.list_tools() {
                if seen.insert(spec.name.clone()) {
                    tools.push(spec);
                }
            }
        }
        tools
    }

    fn hints(&self, tool: &str) -> Option<ToolHints> {
        self.hosts.iter().find_map(|host| host.hints(tool))
    }

    fn source(&self, tool: &str) -> Option<String> {
        self.owner(tool).and_then(|host| host.source(tool))
    }

    fn output_limit(&self, tool: &str) -> usize {
        match self.owner(tool) {
            Some(host) => host.output_limit(tool),
            None => self.hosts.first().map_or(0, |host| host.output_limit(tool)),
        }
    }

    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        options: CallOptions,
    ) -> ToolCallFuture<'a> {
        match self
            .owner(tool)
            .or(self.hosts.first().map(|host| host.as_ref()))
        {
            // The first host answers for unknown tools too: its error
            // lists the tools it knows.
            Some(host) => host.call(tool, args, options),
            None => {
                Box::pin(async move { Err(ToolCallError::Tool(format!("no tool named '{tool}'"))) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_host_runtime::spec::ToolError;

    #[test]
    fn runtime_errors_keep_their_tier_and_their_text() {
        let unknown = CallError::UnknownTool {
            name: "nope".into(),
            known: vec!["calc".into()],
        };
        let text = unknown.to_string();
        assert_eq!(ToolCallError::from(unknown), ToolCallError::Tool(text));
        let invalid = CallError::InvalidArguments {
            tool: "calc".into(),
            problems: vec!["missing expression".into()],
        };
        assert!(
            matches!(invalid.into(), ToolCallError::Tool(text) if text.contains("missing expression"))
        );
        let answered = CallError::Tool {
            tool: "calc".into(),
            error: ToolError::Failed("division by zero".into()),
        };
        assert!(matches!(answered.into(), ToolCallError::Tool(_)));
        let trapped = CallError::Failed {
            plugin: "calc".into(),
            tool: "calc".into(),
            kind: FailureKind::Trap {
                message: "unreachable".into(),
            },
            detail: None,
        };
        assert!(
            matches!(trapped.into(), ToolCallError::Failed(text) if text.contains("trapped: unreachable"))
        );
        let cancelled = CallError::Failed {
            plugin: "calc".into(),
            tool: "calc".into(),
            kind: FailureKind::Cancelled,
            detail: None,
        };
        assert_eq!(ToolCallError::from(cancelled), ToolCallError::Cancelled);
        let host = CallError::Host {
            tool: "calc".into(),
            message: "no store".into(),
        };
        assert!(matches!(host.into(), ToolCallError::Host(text) if text.contains("no store")));
    }
}
