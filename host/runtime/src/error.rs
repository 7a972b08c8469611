//! Typed errors of the library: configuration, store, plugin loading, and tool calls.
//!
//! Every message says what was wrong and, where it helps, what to do next.
//! Calls have three tiers: a tool error is data for the model
//! ([`CallError::Tool`]), a failed call is a plugin that trapped or hit a limit
//! ([`CallError::Failed`]; the instance is discarded and the host keeps
//! serving), and a host error is something wrong on our side
//! ([`CallError::Host`]).

use std::path::PathBuf;

use crate::spec::ToolError;

/// A problem with the host configuration (file, environment, or flags).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "config file {path} is not valid: {message}\n  fix the file, or see docs/configuration.md"
    )]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A problem with the embedded database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data dir {path} is in use by another agent-host process{holder}; stop that process or pass a different --data-dir",
        holder = match pid { Some(pid) => format!(" (pid {pid})"), None => String::new() }
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error(
        "cannot open the database in {path}: {message}\n  if it is corrupt, move the directory away and start again"
    )]
    Open { path: PathBuf, message: String },
    #[error("cannot create data dir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database in {path} was written by a newer agent-host (schema {found}; this build reads up to {supported}); upgrade agent-host or use another --data-dir"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("database error: {0}")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a plugin could not be loaded. The plugin is not registered; other
/// plugins are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a WebAssembly file (no \\0asm header); a plugin must be a component built for wasm32-wasip2"
    )]
    NotWasm { path: PathBuf },
    #[error(
        "{path} is a core WebAssembly module, not a component; build it for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule { path: PathBuf },
    #[error("{path} failed to compile: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("{wasm} has no manifest; create {manifest} (see docs/plugin-guide.md)")]
    MissingManifest { wasm: PathBuf, manifest: PathBuf },
    #[error("manifest {path} is not valid: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error(
        "{path} targets {package}@{found}, but this host supports {package}@{supported}; rebuild the plugin against wit/ of this host version"
    )]
    UnsupportedContract {
        path: PathBuf,
        package: String,
        found: String,
        supported: String,
    },
    #[error(
        "{path} is a component for another world: it exports [{exports}] but a plugin must export {expected}"
    )]
    WrongWorld {
        path: PathBuf,
        exports: String,
        expected: String,
    },
    #[error("plugin '{plugin}' imports something this host does not provide: {message}")]
    Link { plugin: String, message: String },
    #[error("plugin '{plugin}' failed to describe its tools: {message}")]
    Describe { plugin: String, message: String },
    #[error("plugin '{plugin}' declares tool '{tool}' badly: {reason}")]
    BadSpec {
        plugin: String,
        tool: String,
        reason: String,
    },
    #[error(
        "tool '{tool}' of plugin '{plugin}' clashes with the tool of the same name in plugin '{existing_plugin}'; remove or rename one of the plugins"
    )]
    DuplicateTool {
        tool: String,
        plugin: String,
        existing_plugin: String,
    },
    #[error("two plugins are named '{name}': {first} and {second}; plugin names must be unique")]
    DuplicatePlugin {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("grant for plugin '{plugin}' is not usable: {message}")]
    Grant { plugin: String, message: String },
    #[error(
        "{path} names itself '{name}' in its manifest, but a plugin's name is its file name ('{stem}'); rename the files to {name}.wasm and {name}.toml, or set name = \"{stem}\" in the manifest"
    )]
    NameMismatch {
        path: PathBuf,
        name: String,
        stem: String,
    },
    #[error(
        "{message} (remembered from an earlier load of this same file; replace the file or change the limits)"
    )]
    Refused { message: String },
    #[error(
        "plugin '{plugin}' declares too much: {what} is {size}, over the limit of {limit} ([describe] {key} in the host config raises it)"
    )]
    DescribeLimit {
        plugin: String,
        what: String,
        size: usize,
        limit: usize,
        key: &'static str,
    },
}

/// Which limit or fault ended a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureKind {
    #[error("exceeded its time limit of {ms} ms")]
    Timeout { ms: u64 },
    #[error("exceeded its memory limit of {limit_mb} MiB")]
    MemoryLimit { limit_mb: u64 },
    #[error("ran out of fuel ({fuel} units)")]
    FuelExhausted { fuel: u64 },
    #[error("overflowed its stack")]
    StackOverflow,
    #[error("returned {size} bytes, over the output limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("trapped: {message}")]
    Trap { message: String },
    #[error("could not be instantiated: {message}")]
    Instantiate { message: String },
    #[error("was cancelled")]
    Cancelled,
    #[error("gave an answer the host cannot use: {message}")]
    BadAnswer { message: String },
    #[error(
        "could not start: all {instances} sandbox instances stayed busy for {waited_ms} ms (raise sandbox.max_instances or lower the load)"
    )]
    NoInstanceSlot { instances: u32, waited_ms: u64 },
    /// Checking a value against the tool's schema ran out of time (the
    /// schema is too costly for the value); `stage` is "argument" or "output".
    #[error(
        "declares a schema too costly to check: {stage} validation exceeded the tool's time limit of {ms} ms; simplify the tool's schema, or raise its timeout"
    )]
    ValidationTimeout { stage: String, ms: u64 },
}

/// Why an extension hook produced no usable outcome. The event goes on as
/// if the hook had answered `continue`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("extension '{extension}' at {point} {kind}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct HookError {
    pub extension: String,
    pub point: crate::hooks::HookPoint,
    pub kind: FailureKind,
    /// The last line the extension wrote to stderr, often a panic message.
    pub detail: Option<String>,
}

/// Why a tool call did not produce output.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no tool named '{name}'; known tools: {}", known.join(", "))]
    UnknownTool { name: String, known: Vec<String> },
    #[error("arguments for tool '{tool}' are not valid: {}", problems.join("; "))]
    InvalidArguments { tool: String, problems: Vec<String> },
    #[error("tool '{tool}' returned an error: {error}")]
    Tool { tool: String, error: ToolError },
    #[error("call to tool '{tool}' failed: plugin '{plugin}' {kind}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failed {
        plugin: String,
        tool: String,
        kind: FailureKind,
        /// The last line the plugin wrote to stderr, often a panic message.
        detail: Option<String>,
    },
    #[error("host error while calling tool '{tool}': {message}")]
    Host { tool: String, message: String },
}

impl CallError {
    /// Short machine-readable name of the error class, for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::UnknownTool { .. } => "unknown_tool",
            CallError::InvalidArguments { .. } => "invalid_arguments",
            CallError::Tool { .. } => "tool_error",
            CallError::Failed { .. } => "failed",
            CallError::Host { .. } => "host_error",
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
}
