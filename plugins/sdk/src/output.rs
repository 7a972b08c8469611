//! Output: a successful tool result (content parts plus optional structured JSON).

use serde_json::Value;

/// One piece of a tool result.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Plain text for the model.
    Text(String),
    /// A JSON document.
    Json(Value),
    /// Binary data with its MIME type (an image, a PDF, ...).
    Binary { mime_type: String, data: Vec<u8> },
}

/// A successful tool result: content parts for the model and, optionally, a
/// structured JSON value that matches the tool's output schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    pub parts: Vec<Part>,
    pub structured: Option<Value>,
}

impl Output {
    /// A result with no content parts yet.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A result of one text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::empty().with_text(text)
    }

    /// A result of one JSON part.
    pub fn json(value: Value) -> Self {
        Self::empty().with_json(value)
    }

    /// A result of one binary part.
    pub fn binary(mime_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self::empty().with_binary(mime_type, data)
    }

    /// Appends a text part.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// Appends a JSON part.
    pub fn with_json(mut self, value: Value) -> Self {
        self.parts.push(Part::Json(value));
        self
    }

    /// Appends a binary part.
    pub fn with_binary(mut self, mime_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.parts.push(Part::Binary {
            mime_type: mime_type.into(),
            data: data.into(),
        });
        self
    }

    /// Sets the structured result (should match the tool's output schema).
    pub fn with_structured(mut self, value: Value) -> Self {
        self.structured = Some(value);
        self
    }
}

impl From<String> for Output {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for Output {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}
