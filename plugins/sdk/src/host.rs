//! Host services as plain functions: logging, progress, the monotonic clock and the plugin's configuration (state lives in `kv`).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::bindings::agent::plugin::{host as wit, types::LogLevel};

pub use crate::kv;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

/// Writes a line to the host's log (never to the user's terminal).
pub fn log(level: Level, message: &str) {
    wit::log(level.into(), message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Reports progress of a long call: `progress(3, 10, "parsing")`,
/// `progress(3, None, None)`.
pub fn progress<'a>(done: u64, total: impl Into<Option<u64>>, message: impl Into<Option<&'a str>>) {
    wit::progress(done, total.into(), message.into());
}

/// Monotonic clock in nanoseconds, for measuring elapsed time within a call.
/// It has no fixed origin: compare two readings, never store one.
pub fn now() -> u64 {
    wit::monotonic_now()
}

/// This plugin's configuration: the `[config]` table of its manifest, or
/// `[extensions.<name>] config` from the host configuration when that is
/// set. Always a JSON object; `{}` when there is none. The host promises an
/// object, so anything else is logged as a warning and read as `{}`.
pub fn config() -> Value {
    parse_config(&wit::config()).unwrap_or_else(|why| {
        warn(&format!("{why}; using {{}}"));
        Value::Object(Map::new())
    })
}

/// The configuration decoded as `T` (typically a `#[derive(Deserialize)]`
/// struct with `#[serde(default)]`). When it does not decode, a warning
/// naming the problem goes to the host log and `T::default()` is used, so a
/// typo in a manifest degrades to the defaults instead of trapping every
/// call. Plugins for which the defaults are not a safe fallback should
/// decode [`config`] themselves.
pub fn config_or_default<T: DeserializeOwned + Default>() -> T {
    match serde_json::from_value(config()) {
        Ok(config) => config,
        Err(err) => {
            warn(&format!(
                "invalid [config]: {err}; using the default configuration instead"
            ));
            T::default()
        }
    }
}

/// Kept apart from [`config`] so it can be tested without a host.
fn parse_config(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(format!(
            "the host passed a configuration that is not a JSON object but {}",
            kind_of(&other)
        )),
        Err(err) => Err(format!(
            "the host passed a configuration that is not valid JSON ({err})"
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_must_be_an_object() {
        assert_eq!(parse_config("{}").unwrap(), json!({}));
        assert_eq!(
            parse_config(r#"{"a": [1, {"b": null}]}"#).unwrap(),
            json!({"a": [1, {"b": null}]})
        );
        assert!(parse_config("[1]").unwrap_err().contains("an array"));
        assert!(parse_config("").unwrap_err().contains("not valid JSON"));
        assert!(parse_config("{").unwrap_err().contains("not valid JSON"));
    }
}
