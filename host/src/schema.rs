//! Validates tool arguments against the tool's JSON Schema before the guest runs.

use serde_json::Value;

/// At most this many problems are reported for one call; the rest are elided.
const MAX_REPORTED: usize = 10;

/// A compiled input schema.
pub struct ArgsValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ArgsValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgsValidator")
    }
}

impl ArgsValidator {
    /// Compiles a schema; the error explains what is wrong with the schema.
    /// Remote `$ref`s are never fetched.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err("the input schema must be a JSON object".to_owned());
        }
        jsonschema::validator_for(schema)
            .map(|validator| Self { validator })
            .map_err(|err| format!("the input schema is not a valid JSON Schema: {err}"))
    }

    /// Checks arguments. Each problem names the field (as a JSON pointer) and
    /// the rule it breaks.
    pub fn check(&self, args: &Value) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut total = 0;
        for error in self.validator.iter_errors(args) {
            total += 1;
            if problems.len() < MAX_REPORTED {
                let path = error.instance_path().to_string();
                let at = if path.is_empty() {
                    "arguments".to_owned()
                } else {
                    format!("field {path}")
                };
                problems.push(format!("{at}: {error}"));
            }
        }
        if total > MAX_REPORTED {
            problems.push(format!("and {} more", total - MAX_REPORTED));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> ArgsValidator {
        ArgsValidator::compile(&json!({
            "type": "object",
            "properties": {
                "text": { "type": "string", "maxLength": 5 },
                "repeat": { "type": "integer", "minimum": 1 }
            },
            "required": ["text"],
            "additionalProperties": false
        }))
        .unwrap()
    }

    #[test]
    fn valid_arguments_pass() {
        assert!(
            validator()
                .check(&json!({"text": "hi", "repeat": 2}))
                .is_ok()
        );
    }

    #[test]
    fn problems_name_the_field_and_rule() {
        let problems = validator()
            .check(&json!({"text": 5, "repeat": 0}))
            .unwrap_err();
        let all = problems.join("\n");
        assert!(
            all.contains("field /text") && all.contains("string"),
            "{all}"
        );
        assert!(
            all.contains("field /repeat") && all.contains("minimum"),
            "{all}"
        );

        let problems = validator().check(&json!({})).unwrap_err();
        assert!(
            problems[0].contains("\"text\" is a required property"),
            "{problems:?}"
        );

        let problems = validator().check(&json!({"text": "toolong"})).unwrap_err();
        assert!(problems[0].contains("longer than 5"), "{problems:?}");

        let problems = validator()
            .check(&json!({"text": "a", "extra": 1}))
            .unwrap_err();
        assert!(problems[0].contains("extra"), "{problems:?}");
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(ArgsValidator::compile(&json!("nope")).is_err());
        assert!(ArgsValidator::compile(&json!({"type": 12})).is_err());
    }
}
