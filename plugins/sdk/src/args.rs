//! Argument helpers: typed field access on the arguments object, failing with errors that name the field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ToolError;

/// Deserializes the whole arguments object into `T` (for example a
/// `#[derive(Deserialize)]` struct).
pub fn from_args<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    serde_json::from_value(args).map_err(ToolError::invalid_arguments)
}

/// Typed access to fields of the arguments object.
///
/// The host has already validated the arguments against the tool's schema,
/// so these errors only fire when the schema and the code disagree; they
/// still name the field so the model (or the author) can see which.
pub trait ArgsExt {
    /// The raw field, if present and not `null`.
    fn field(&self, name: &str) -> Option<&Value>;

    fn str_field(&self, name: &str) -> Result<&str, ToolError> {
        let value = self.field(name).ok_or_else(|| missing(name))?;
        value.as_str().ok_or_else(|| wrong_type(name, "a string"))
    }

    fn opt_str_field(&self, name: &str) -> Result<Option<&str>, ToolError> {
        self.field(name)
            .map(|value| value.as_str().ok_or_else(|| wrong_type(name, "a string")))
            .transpose()
    }

    fn u64_field(&self, name: &str) -> Result<u64, ToolError> {
        let value = self.field(name).ok_or_else(|| missing(name))?;
        value
            .as_u64()
            .ok_or_else(|| wrong_type(name, "a non-negative integer"))
    }

    fn opt_u64_field(&self, name: &str) -> Result<Option<u64>, ToolError> {
        self.field(name)
            .map(|value| {
                value
                    .as_u64()
                    .ok_or_else(|| wrong_type(name, "a non-negative integer"))
            })
            .transpose()
    }

    fn i64_field(&self, name: &str) -> Result<i64, ToolError> {
        let value = self.field(name).ok_or_else(|| missing(name))?;
        value.as_i64().ok_or_else(|| wrong_type(name, "an integer"))
    }

    fn f64_field(&self, name: &str) -> Result<f64, ToolError> {
        let value = self.field(name).ok_or_else(|| missing(name))?;
        value.as_f64().ok_or_else(|| wrong_type(name, "a number"))
    }

    fn bool_field(&self, name: &str) -> Result<bool, ToolError> {
        let value = self.field(name).ok_or_else(|| missing(name))?;
        value.as_bool().ok_or_else(|| wrong_type(name, "a boolean"))
    }

    fn opt_bool_field(&self, name: &str) -> Result<Option<bool>, ToolError> {
        self.field(name)
            .map(|value| value.as_bool().ok_or_else(|| wrong_type(name, "a boolean")))
            .transpose()
    }

    fn object_field(&self, name: &str) -> Result<&Map<String, Value>, ToolError> {
        let value = self.field(name).ok_or_else(|| missing(name))?;
        value
            .as_object()
            .ok_or_else(|| wrong_type(name, "an object"))
    }

    fn opt_object_field(&self, name: &str) -> Result<Option<&Map<String, Value>>, ToolError> {
        self.field(name)
            .map(|value| {
                value
                    .as_object()
                    .ok_or_else(|| wrong_type(name, "an object"))
            })
            .transpose()
    }
}

impl ArgsExt for Value {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name).filter(|value| !value.is_null())
    }
}

fn missing(name: &str) -> ToolError {
    ToolError::invalid_arguments(format!("missing required field `{name}`"))
}

fn wrong_type(name: &str, expected: &str) -> ToolError {
    ToolError::invalid_arguments(format!("field `{name}` must be {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_name_themselves_in_errors() {
        let args = json!({"a": "x", "n": 3, "neg": -1, "b": true, "null": null});
        assert_eq!(args.str_field("a").unwrap(), "x");
        assert_eq!(args.u64_field("n").unwrap(), 3);
        assert_eq!(args.i64_field("neg").unwrap(), -1);
        assert!(args.bool_field("b").unwrap());
        assert_eq!(args.opt_str_field("null").unwrap(), None);
        assert!(
            args.str_field("missing")
                .unwrap_err()
                .message()
                .contains("`missing`")
        );
        assert!(
            args.u64_field("neg")
                .unwrap_err()
                .message()
                .contains("`neg`")
        );
        assert!(
            args.str_field("n")
                .unwrap_err()
                .message()
                .contains("`n` must be a string")
        );
    }
}
