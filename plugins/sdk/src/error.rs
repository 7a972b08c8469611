//! ToolError: the three ways a tool can fail as data the model sees (as opposed to a trap).

use std::fmt;

/// Which of the contract's `tool-error` cases an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorKind {
    /// The arguments were wrong; the message says which field and why.
    InvalidArguments,
    /// The tool ran and could not do the job.
    Failed,
    /// The tool needed a capability the host did not grant.
    Denied,
}

/// A tool error is returned to the model as a result flagged as an error, so
/// the model can correct itself. Panics are not tool errors: they trap, and
/// the host reports the call as failed and discards the instance.
///
/// The constructors take anything `Display`, so `map_err(ToolError::failed)`
/// works on any error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    kind: ToolErrorKind,
    message: String,
    // Set by `unknown_tool`: the adapter completes the message with the
    // plugin's tool names, which only it can list.
    unknown_tool: bool,
}

impl ToolError {
    fn new(kind: ToolErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
            unknown_tool: false,
        }
    }

    /// The arguments were wrong; say which field and why.
    pub fn invalid_arguments(message: impl fmt::Display) -> Self {
        Self::new(ToolErrorKind::InvalidArguments, message)
    }

    /// The tool ran and could not do the job.
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::new(ToolErrorKind::Failed, message)
    }

    /// The tool needed a capability the host did not grant.
    pub fn denied(message: impl fmt::Display) -> Self {
        Self::new(ToolErrorKind::Denied, message)
    }

    /// `call` was asked for a tool this plugin does not have. Becomes an
    /// `invalid-arguments` error listing the plugin's tools.
    pub fn unknown_tool(name: &str) -> Self {
        Self {
            kind: ToolErrorKind::InvalidArguments,
            message: format!("unknown tool `{name}`"),
            unknown_tool: true,
        }
    }

    pub fn kind(&self) -> ToolErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn is_unknown_tool(&self) -> bool {
        self.unknown_tool
    }

    pub(crate) fn append(mut self, more: &str) -> Self {
        self.message.push_str(more);
        self
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ToolErrorKind::InvalidArguments => "invalid arguments",
            ToolErrorKind::Failed => "failed",
            ToolErrorKind::Denied => "denied",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for ToolError {}
