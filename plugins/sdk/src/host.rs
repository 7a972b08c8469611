//! Host services as plain functions: logging, progress and the monotonic clock (state lives in `kv`).

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
