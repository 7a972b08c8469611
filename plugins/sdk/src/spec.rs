//! ToolSpec: the builder a plugin uses to describe each tool (name, schemas, hints).

use serde_json::Value;

/// Behaviour hints; see the builder methods on [`ToolSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
    pub parallel_safe: bool,
}

/// What a tool says about itself.
///
/// Without [`schema`](Self::schema) the tool takes an object with no declared
/// properties.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Unique across all loaded plugins; 1-64 characters of `[A-Za-z0-9_-]`.
    pub name: String,
    pub title: Option<String>,
    /// What the tool does, written for the model.
    pub description: String,
    /// JSON Schema (draft 2020-12) of the arguments object.
    pub input_schema: Value,
    /// JSON Schema of [`Output::structured`](crate::Output::structured).
    pub output_schema: Option<Value>,
    pub hints: Hints,
}

impl ToolSpec {
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: serde_json::json!({ "type": "object" }),
            output_schema: None,
            hints: Hints::default(),
        }
    }

    /// Short human-readable title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// JSON Schema of the arguments object. The host validates every call
    /// against it before the plugin runs.
    pub fn schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    /// JSON Schema of the structured result.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// The tool does not change its environment.
    pub fn read_only(mut self) -> Self {
        self.hints.read_only = true;
        self
    }

    /// The tool may destroy or overwrite data.
    pub fn destructive(mut self) -> Self {
        self.hints.destructive = true;
        self
    }

    /// Calling it twice with the same arguments has no further effect.
    pub fn idempotent(mut self) -> Self {
        self.hints.idempotent = true;
        self
    }

    /// The tool talks to things outside the host (the network, say).
    pub fn open_world(mut self) -> Self {
        self.hints.open_world = true;
        self
    }

    /// The agent loop may run several calls of this tool at the same time.
    pub fn parallel_safe(mut self) -> Self {
        self.hints.parallel_safe = true;
        self
    }
}
