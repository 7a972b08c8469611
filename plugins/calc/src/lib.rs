//! plugin-calc: the `calc` tool, wiring the expression evaluator to the plugin contract.

mod eval;

use agent_plugin_sdk::prelude::*;

struct Calc;

impl Plugin for Calc {
    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "calc",
                "Evaluate an arithmetic expression and return its value. Supports + - * / % ^ \
                 (power, right-associative), parentheses, unary minus, the functions sqrt, abs, \
                 ln, log10, sin, cos, tan (radians), min, max (one or more arguments), \
                 round(x) or round(x, digits), floor, ceil, and the constants pi and e. \
                 Use it instead of doing arithmetic in your head.",
            )
            .title("Calculator")
            .schema(json!({
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "For example `2 * (3 + 4) ^ 2 / sqrt(16)`",
                        "minLength": 1,
                        "maxLength": 1000
                    }
                },
                "required": ["expression"],
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "properties": { "value": { "type": "number" } },
                "required": ["value"]
            }))
            .read_only()
            .idempotent()
            .parallel_safe(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "calc" => {
                let expression = args.str_field("expression")?;
                // A malformed expression is an argument to fix; a well-formed
                // one with no value (division by zero) is a failed evaluation.
                let value = eval::evaluate(expression).map_err(|err| match err.kind {
                    eval::ErrorKind::Syntax => ToolError::invalid_arguments(err),
                    eval::ErrorKind::Math => ToolError::failed(err),
                })?;
                Ok(Output::text(eval::format_number(value))
                    .with_structured(json!({ "value": value })))
            }
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Calc);
