//! test-plugin-hoarder: fills, lists and deletes key-value and session state through the raw WIT imports, to test the host's storage quotas.
//!
//! Like a hostile author it calls the host directly and keeps going after a
//! refusal, then reports what got through.

use agent_plugin_sdk::bindings::agent::plugin::host as wit;
use agent_plugin_sdk::prelude::*;

struct Hoarder;

/// Which state a tool works on.
#[derive(Clone, Copy)]
enum Scope {
    Kv,
    Session,
}

impl Scope {
    fn from_args(args: &Value) -> Result<Self, ToolError> {
        match args.str_field("scope")? {
            "kv" => Ok(Self::Kv),
            "session" => Ok(Self::Session),
            other => Err(ToolError::invalid_arguments(format!(
                "scope must be kv or session, got {other}"
            ))),
        }
    }

    fn set(self, key: &str, value: &[u8]) -> Result<(), String> {
        match self {
            Self::Kv => wit::kv_set(key, value),
            Self::Session => wit::session_set(key, value),
        }
    }

    fn delete(self, key: &str) -> bool {
        match self {
            Self::Kv => wit::kv_delete(key),
            Self::Session => wit::session_delete(key),
        }
    }

    fn list(self, prefix: &str) -> Vec<String> {
        match self {
            Self::Kv => wit::kv_list(prefix),
            Self::Session => wit::session_list(prefix),
        }
    }
}

fn key(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:07}")
}

fn schema(fields: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": fields,
        "required": required,
        "additionalProperties": false
    })
}

impl Plugin for Hoarder {
    fn tools() -> Vec<ToolSpec> {
        let scope = json!({ "type": "string", "enum": ["kv", "session"] });
        let prefix = json!({ "type": "string" });
        let count = json!({ "type": "integer", "minimum": 0 });
        vec![
            ToolSpec::new(
                "fill",
                "Store `count` values of `size` bytes under fresh keys `<prefix><n>`, going on after refusals; reports how many were stored and the first refusal.",
            )
            .schema(schema(
                json!({ "scope": scope, "prefix": prefix, "count": count, "size": count }),
                &["scope", "prefix", "count", "size"],
            )),
            ToolSpec::new("list", "How many keys one list call returns for `prefix`.")
                .schema(schema(
                    json!({ "scope": scope, "prefix": prefix }),
                    &["scope", "prefix"],
                ))
                .read_only(),
            ToolSpec::new("drop", "Delete keys `<prefix><n>` for n below `count`.").schema(
                schema(
                    json!({ "scope": scope, "prefix": prefix, "count": count }),
                    &["scope", "prefix", "count"],
                ),
            ),
            ToolSpec::new("ok", "A normal call: answers ok.")
                .schema(json!({ "type": "object", "properties": {}, "additionalProperties": false }))
                .read_only(),
        ]
    }

    fn call(name: &str, args: Value, _ctx: &CallContext) -> Result<Output, ToolError> {
        match name {
            "fill" => {
                let scope = Scope::from_args(&args)?;
                let prefix = args.str_field("prefix")?;
                let size = usize::try_from(args.u64_field("size")?)
                    .map_err(ToolError::invalid_arguments)?;
                let value = vec![0x5a; size];
                let mut stored = 0u64;
                let mut first_error: Option<String> = None;
                for i in 0..args.u64_field("count")? {
                    match scope.set(&key(prefix, i), &value) {
                        Ok(()) => stored += 1,
                        Err(why) => {
                            first_error.get_or_insert(why);
                        }
                    }
                }
                let report = json!({ "stored": stored, "first_error": first_error });
                Ok(Output::text(report.to_string()))
            }
            "list" => {
                let scope = Scope::from_args(&args)?;
                let keys = scope.list(args.str_field("prefix")?);
                let bytes: usize = keys.iter().map(String::len).sum();
                let report = json!({
                    "count": keys.len(),
                    "bytes": bytes,
                    "first": keys.first(),
                    "last": keys.last(),
                });
                Ok(Output::text(report.to_string()))
            }
            "drop" => {
                let scope = Scope::from_args(&args)?;
                let prefix = args.str_field("prefix")?;
                let deleted = (0..args.u64_field("count")?)
                    .filter(|i| scope.delete(&key(prefix, *i)))
                    .count();
                Ok(Output::text(json!({ "deleted": deleted }).to_string()))
            }
            "ok" => Ok(Output::text("ok")),
            _ => Err(ToolError::unknown_tool(name)),
        }
    }
}

export_plugin!(Hoarder);
