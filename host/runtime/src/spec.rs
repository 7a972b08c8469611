//! Plain Rust types for tool descriptions and results, independent of the generated bindings.

use serde::{Deserialize, Serialize};

/// Behaviour hints a tool declares about itself (MCP annotations plus `parallel_safe`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolHints {
    /// Does not change its environment (MCP `readOnlyHint`).
    pub read_only: bool,
    /// May destroy or overwrite data (MCP `destructiveHint`).
    pub destructive: bool,
    /// Calling it twice with the same arguments has no further effect (MCP `idempotentHint`).
    pub idempotent: bool,
    /// Reaches outside the host: the network, other systems (MCP `openWorldHint`).
    pub open_world: bool,
    /// Several calls of it may run at the same time.
    pub parallel_safe: bool,
}

impl ToolHints {
    /// Names of the hints that are set, for compact display.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (set, name) in [
            (self.read_only, "read-only"),
            (self.destructive, "destructive"),
            (self.idempotent, "idempotent"),
            (self.open_world, "open-world"),
            (self.parallel_safe, "parallel-safe"),
        ] {
            if set {
                names.push(name);
            }
        }
        names
    }
}

/// What a tool says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique across all loaded plugins; what the model calls.
    pub name: String,
    /// A human-readable name for displays.
    pub title: Option<String>,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the structured output, if the tool promises one.
    pub output_schema: Option<serde_json::Value>,
    /// Behaviour hints.
    pub hints: ToolHints,
}

/// One piece of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// A JSON value.
    Json {
        /// The value.
        json: serde_json::Value,
    },
    /// Bytes with a MIME type (kept out of JSON renderings).
    Binary {
        /// The MIME type, such as `image/png`.
        mime_type: String,
        /// Length of `data` in bytes.
        size: usize,
        /// The bytes.
        #[serde(skip)]
        data: Vec<u8>,
    },
}

/// A successful tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    /// What the model sees, in order.
    pub content: Vec<ContentPart>,
    /// Structured output for programs (checked against the output schema, if any).
    pub structured: Option<serde_json::Value>,
}

impl ToolOutput {
    /// The content rendered as text for a terminal or a model: text parts as they
    /// are, JSON parts pretty-printed, binary parts as a placeholder.
    pub fn to_text(&self) -> String {
        let mut parts = Vec::new();
        for part in &self.content {
            match part {
                ContentPart::Text { text } => parts.push(text.clone()),
                ContentPart::Json { json } => {
                    parts.push(serde_json::to_string_pretty(json).unwrap_or_default())
                }
                ContentPart::Binary {
                    mime_type, size, ..
                } => parts.push(format!("[{mime_type}, {size} bytes]")),
            }
        }
        parts.join("\n")
    }
}

/// An error the tool itself returned: data for the model, not a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum ToolError {
    /// The arguments were wrong in a way the schema did not catch.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool tried and failed.
    #[error("failed: {0}")]
    Failed(String),
    /// The tool refused (not permitted).
    #[error("denied: {0}")]
    Denied(String),
}
