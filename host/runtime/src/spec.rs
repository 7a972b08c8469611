//! Plain Rust types for tool descriptions and results, independent of the generated bindings.

use serde::{Deserialize, Serialize};

/// Behaviour hints a tool declares about itself (MCP annotations plus `parallel_safe`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolHints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
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
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub hints: ToolHints,
}

/// One piece of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    Json {
        json: serde_json::Value,
    },
    Binary {
        mime_type: String,
        size: usize,
        #[serde(skip)]
        data: Vec<u8>,
    },
}

/// A successful tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    pub content: Vec<ContentPart>,
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
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("failed: {0}")]
    Failed(String),
    #[error("denied: {0}")]
    Denied(String),
}
