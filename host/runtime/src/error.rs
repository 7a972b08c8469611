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
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The config file is not TOML of the expected shape.
    #[error(
        "config file {path} is not valid: {message}\n  fix the file, or see docs/configuration.md"
    )]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's explanation, naming the key.
        message: String,
    },
    /// A value is out of range or contradicts another one.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A problem with the embedded database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data dir's lock.
    #[error(
        "data dir {path} is in use by another agent-host process{holder}; stop that process or pass a different --data-dir",
        holder = match pid { Some(pid) => format!(" (pid {pid})"), None => String::new() }
    )]
    Locked {
        /// The data dir.
        path: PathBuf,
        /// The holder's process id, when it could be read.
        pid: Option<u32>,
    },
    /// The database could not be opened (corrupt, or unreadable).
    #[error(
        "cannot open the database in {path}: {message}\n  if it is corrupt, move the directory away and start again"
    )]
    Open {
        /// The data dir.
        path: PathBuf,
        /// What the database said.
        message: String,
    },
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    CreateDir {
        /// The data dir.
        path: PathBuf,
        /// The file system's error.
        source: std::io::Error,
    },
    /// The database was written by a newer build, with a schema this one
    /// cannot read.
    #[error(
        "the database in {path} was written by a newer agent-host (schema {found}; this build reads up to {supported}); upgrade agent-host or use another --data-dir"
    )]
    NewerSchema {
        /// The data dir.
        path: PathBuf,
        /// The schema version found in the database.
        found: u32,
        /// The newest schema version this build reads.
        supported: u32,
    },
    /// A read or write failed in the database (its error is the source).
    #[error("database error: {0}")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A record file beside the database could not be written.
    #[error("cannot write {path}: {source}")]
    RecordFile {
        /// The file (or its directory).
        path: PathBuf,
        /// The file system's error.
        source: std::io::Error,
    },
}

/// Why a plugin could not be loaded. The plugin is not registered; other
/// plugins are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A plugin file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file does not start with the WebAssembly magic bytes.
    #[error(
        "{path} is not a WebAssembly file (no \\0asm header); a plugin must be a component built for wasm32-wasip2"
    )]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core module, not a component.
    #[error(
        "{path} is a core WebAssembly module, not a component; build it for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// wasmtime could not compile the component.
    #[error("{path} failed to compile: {message}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's (or the cache's) explanation.
        message: String,
    },
    /// The `.wasm` has no `.toml` beside it.
    #[error("{wasm} has no manifest; create {manifest} (see docs/plugin-guide.md)")]
    MissingManifest {
        /// The component file.
        wasm: PathBuf,
        /// Where its manifest should be.
        manifest: PathBuf,
    },
    /// The manifest was refused.
    #[error("manifest {path} is not valid: {error}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Which field is wrong.
        error: ManifestError,
    },
    /// The component targets a contract version this host does not serve.
    #[error(
        "{path} targets {package}@{found}, but this host supports {package}@{supported}; rebuild the plugin against wit/ of this host version"
    )]
    UnsupportedContract {
        /// The component file.
        path: PathBuf,
        /// The contract package (`agent:plugin`).
        package: String,
        /// The version the component uses.
        found: String,
        /// The version this host implements.
        supported: String,
    },
    /// The component exports neither or both of the contract's worlds.
    #[error(
        "{path} is a component for another world: it exports [{exports}] but a plugin must export {expected}"
    )]
    WrongWorld {
        /// The component file.
        path: PathBuf,
        /// What it exports, comma-separated.
        exports: String,
        /// What a plugin must export.
        expected: String,
    },
    /// The component imports something the host does not link.
    #[error("plugin '{plugin}' imports something this host does not provide: {message}")]
    Link {
        /// The plugin.
        plugin: String,
        /// wasmtime's explanation, naming the import.
        message: String,
    },
    /// `describe` (or `describe-extension`) failed.
    #[error("plugin '{plugin}' failed to describe its tools: {message}")]
    Describe {
        /// The plugin.
        plugin: String,
        /// Why (a trap, a limit, a refused answer).
        message: String,
    },
    /// A described tool is unusable (bad name, bad schema, declared twice).
    #[error("plugin '{plugin}' declares tool '{tool}' badly: {reason}")]
    BadSpec {
        /// The plugin.
        plugin: String,
        /// The tool as the plugin named it.
        tool: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two plugins declare a tool of the same name.
    #[error(
        "tool '{tool}' of plugin '{plugin}' clashes with the tool of the same name in plugin '{existing_plugin}'; remove or rename one of the plugins"
    )]
    DuplicateTool {
        /// The tool.
        tool: String,
        /// The plugin refused.
        plugin: String,
        /// The other plugin declaring it.
        existing_plugin: String,
    },
    /// Two plugin files have the same name (in different directories).
    #[error("two plugins are named '{name}': {first} and {second}; plugin names must be unique")]
    DuplicatePlugin {
        /// The shared name.
        name: String,
        /// One of the files.
        first: PathBuf,
        /// The other one.
        second: PathBuf,
    },
    /// The host's grant to the plugin cannot be used.
    #[error("grant for plugin '{plugin}' is not usable: {error}")]
    Grant {
        /// The plugin.
        plugin: String,
        /// What is wrong with the grant.
        error: Box<GrantError>,
    },
    /// The manifest's name is not the file's name.
    #[error(
        "{path} names itself '{name}' in its manifest, but a plugin's name is its file name ('{stem}'); rename the files to {name}.wasm and {name}.toml, or set name = \"{stem}\" in the manifest"
    )]
    NameMismatch {
        /// The component file.
        path: PathBuf,
        /// The name in the manifest.
        name: String,
        /// The file's stem, which is the plugin's name.
        stem: String,
    },
    /// An earlier load of these same bytes was refused; not retried.
    #[error(
        "{message} (remembered from an earlier load of this same file; replace the file or change the limits)"
    )]
    Refused {
        /// The earlier refusal.
        message: String,
    },
    /// The plugin's self-description is over a `[describe]` limit.
    #[error(
        "plugin '{plugin}' declares too much: {what} is {size}, over the limit of {limit} ([describe] {key} in the host config raises it)"
    )]
    DescribeLimit {
        /// The plugin.
        plugin: String,
        /// What was measured.
        what: String,
        /// Its size or count.
        size: usize,
        /// The configured limit.
        limit: usize,
        /// The config key that raises it.
        key: &'static str,
    },
}

/// A memory refusal in MiB, with the setting that raises the limit: the
/// manifest's `limits.memory_mb` while the host allows more, else the
/// host's `sandbox.max_memory_mb`.
fn memory_limit_text(limit_mb: u64, wanted_bytes: u64, host_max_mb: u64) -> String {
    let what = if wanted_bytes > 0 {
        format!(
            "needed {:.1} MiB of memory, over its limit of {limit_mb} MiB",
            wanted_bytes as f64 / f64::from(1u32 << 20)
        )
    } else {
        format!("exceeded its memory limit of {limit_mb} MiB")
    };
    let raise = if limit_mb < host_max_mb {
        format!(
            "raise `memory_mb` under [limits] in the plugin's manifest (.toml); this host allows up to {host_max_mb} MiB (`sandbox.max_memory_mb`)"
        )
    } else {
        format!(
            "{limit_mb} MiB is this host's cap for any plugin: raise `sandbox.max_memory_mb` in the host config"
        )
    };
    format!("{what}: {raise}")
}

/// Which limit or fault ended a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureKind {
    /// The wall-clock deadline passed.
    #[error("exceeded its time limit of {ms} ms")]
    Timeout {
        /// The limit.
        ms: u64,
    },
    /// The guest tried to grow its memory past the cap, or to start with
    /// more memory than it (a component's initial memory is its minimum).
    #[error("{}", memory_limit_text(*limit_mb, *wanted_bytes, *host_max_mb))]
    MemoryLimit {
        /// The cap (`limits.memory_mb` of the manifest, capped by the host).
        limit_mb: u64,
        /// The size the guest asked for, in bytes (0 when unknown).
        wanted_bytes: u64,
        /// The host's cap for every plugin (`sandbox.max_memory_mb`).
        host_max_mb: u64,
    },
    /// Fuel metering stopped the guest.
    #[error("ran out of fuel ({fuel} units)")]
    FuelExhausted {
        /// The fuel the call had.
        fuel: u64,
    },
    /// The guest overflowed its stack.
    #[error("overflowed its stack")]
    StackOverflow,
    /// The result is over the plugin's output cap.
    #[error("returned {size} bytes, over the output limit of {limit} bytes")]
    OutputTooLarge {
        /// Bytes returned.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    #[error("trapped: {message}")]
    Trap {
        /// wasmtime's description of the trap.
        message: String,
    },
    /// A fresh instance could not be created.
    #[error("could not be instantiated: {message}")]
    Instantiate {
        /// Why.
        message: String,
    },
    /// The caller cancelled the call.
    #[error("was cancelled")]
    Cancelled,
    /// The guest answered with something the host refuses.
    #[error("gave an answer the host cannot use: {message}")]
    BadAnswer {
        /// What is wrong with the answer.
        message: String,
    },
    /// Every instance slot stayed busy for the call's whole timeout.
    #[error(
        "could not start: all {instances} sandbox instances stayed busy for {waited_ms} ms (raise sandbox.max_instances or lower the load)"
    )]
    NoInstanceSlot {
        /// The size of the instance pool.
        instances: u32,
        /// How long the call waited.
        waited_ms: u64,
    },
    /// Checking a value against the tool's schema ran out of time (the
    /// schema is too costly for the value); `stage` is "argument" or "output".
    #[error(
        "declares a schema too costly to check: {stage} validation exceeded the tool's time limit of {ms} ms; simplify the tool's schema, or raise its timeout"
    )]
    ValidationTimeout {
        /// `argument` or `output`.
        stage: String,
        /// The tool's time limit.
        ms: u64,
    },
    /// Every place for a costly schema check was taken (by checks still
    /// running past their deadline), so this one was not started. A limit
    /// plugins' schemas ran into, not a fault of the host: the call fails
    /// and the model may try again.
    #[error(
        "could not start: {stage} validation was not started because {running} costly schema validations are still running (some past their deadline); try again shortly, or raise `max_running_validations` in the [schema] section of the host config"
    )]
    ValidationBusy {
        /// `argument` or `output`.
        stage: String,
        /// Checks running when this one was turned away.
        running: usize,
    },
}

/// Why an extension hook produced no usable outcome. The event goes on as
/// if the hook had answered `continue`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("extension '{extension}' at {point} {kind}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct HookError {
    /// The extension (plugin name).
    pub extension: String,
    /// The hook point it was called at.
    pub point: crate::hooks::HookPoint,
    /// What ended the hook call.
    pub kind: FailureKind,
    /// The last line the extension wrote to stderr, often a panic message.
    pub detail: Option<String>,
}

/// Why a tool call did not produce output.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No registered tool has this name.
    #[error("no tool named '{name}'; known tools: {}", known.join(", "))]
    UnknownTool {
        /// The name asked for.
        name: String,
        /// Every registered tool, sorted.
        known: Vec<String>,
    },
    /// The arguments do not match the tool's input schema.
    #[error("arguments for tool '{tool}' are not valid: {}", problems.join("; "))]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// One line per problem, naming the field.
        problems: Vec<String>,
    },
    /// The tool answered with an error: data for the model.
    #[error("tool '{tool}' returned an error: {error}")]
    Tool {
        /// The tool.
        tool: String,
        /// The tool's error.
        error: ToolError,
    },
    /// The plugin trapped or hit a limit; the instance was discarded.
    #[error("call to tool '{tool}' failed: plugin '{plugin}' {kind}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failed {
        /// The plugin.
        plugin: String,
        /// The tool.
        tool: String,
        /// What ended the call.
        kind: FailureKind,
        /// The guest's own account of its death, found in its stderr: a
        /// Rust panic, a Python exception and frame, a JS exception, a C
        /// assert or abort message (bounded; plugin text).
        detail: Option<String>,
    },
    /// Something went wrong on the host's side.
    #[error("host error while calling tool '{tool}': {message}")]
    Host {
        /// The tool.
        tool: String,
        /// What went wrong.
        message: String,
    },
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
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine or the host's linker could not be built.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(EngineError),
    /// The compiled-component cache could not be opened.
    #[error("cannot open the compiled-component cache: {0}")]
    Cache(CacheError),
}

/// Why the WebAssembly engine or the host's linker could not be built.
///
/// wasmtime's own error type is not a `std::error::Error`, so its message
/// (with its context chain) is kept as text.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the engine configuration.
    #[error("{message}")]
    Config {
        /// wasmtime's explanation.
        message: String,
    },
    /// An interface could not be added to the linker.
    #[error("cannot link {interface}: {message}")]
    Link {
        /// What was being linked (WASI, WASI HTTP, the contract's host imports, ...).
        interface: &'static str,
        /// wasmtime's explanation.
        message: String,
    },
}

/// Why the compiled-component cache could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A plugin file could not be resolved or inspected for its cache key.
    #[error("cannot {action} {path}: {source}")]
    File {
        /// `resolve` or `stat`.
        action: &'static str,
        /// The file as the caller named it.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// wasmtime could not compile the component.
    #[error("{message}")]
    Compile {
        /// wasmtime's explanation, with its context chain.
        message: String,
    },
    /// The on-disk level failed (its message comes from the disk cache).
    #[error("{0}")]
    Disk(String),
}

/// Why a plugin manifest was refused; each message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The text is not TOML of the manifest's shape (unknown or mistyped keys).
    #[error("{0}")]
    Toml(String),
    /// `plugin.name` is not a plugin name.
    #[error("plugin.name '{name}' must be 1-64 characters of a-z, 0-9 and '-'")]
    Name {
        /// The name as written.
        name: String,
    },
    /// `plugin.version` is not a full semantic version.
    #[error(
        "plugin.version '{version}' must be a full semantic version such as 0.1.0 or 1.2.0-beta.1+build.5 \
         (MAJOR.MINOR.PATCH without leading zeros, optional -prerelease and +build of dot-separated \
         [0-9A-Za-z-] identifiers, at most {max_len} characters)"
    )]
    Version {
        /// The version as written.
        version: String,
        /// The longest version accepted.
        max_len: usize,
    },
    /// A requested directory is not an absolute guest path.
    #[error("capabilities.dirs path '{path}' must be an absolute guest path such as /workspace")]
    RelativeDir {
        /// The path as written.
        path: String,
    },
    /// A requested directory climbs out with `..`.
    #[error("capabilities.dirs path '{path}' must not contain '..'")]
    ParentInDir {
        /// The path as written.
        path: String,
    },
    /// A requested environment variable is not a variable name.
    #[error("capabilities.env entry '{var}' is not a variable name")]
    EnvName {
        /// The entry as written.
        var: String,
    },
    /// A requested network destination is not `host`, `host:port` or `*`.
    #[error("capabilities.network entry '{host}' must be 'host', 'host:port' or '*', not a URL")]
    Network {
        /// The entry as written.
        host: String,
    },
    /// A limit was set to zero.
    #[error("{field} must be greater than 0 (omit it for the default)")]
    ZeroLimit {
        /// The limit's key, such as `limits.memory_mb`.
        field: &'static str,
    },
}

/// A network pattern (`*`, `host`, `host:port`, `*:port`, `[v6]:port`) that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{pattern}' {problem}")]
pub struct HostPatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it, such as `has no host`.
    pub problem: String,
}

/// Why the host's grant to a plugin cannot be used (what is merely not
/// granted is denied, not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// A network pattern of the manifest or the grant does not parse.
    #[error(transparent)]
    HostPattern(#[from] HostPatternError),
    /// A granted host directory cannot be opened.
    #[error("host directory {host} granted as {guest} cannot be opened: {at}: {reason}")]
    CannotOpen {
        /// The granted host directory.
        host: PathBuf,
        /// The guest path it is granted as.
        guest: String,
        /// How far the walk got: the path that failed.
        at: PathBuf,
        /// What the file system said.
        reason: String,
    },
    /// A granted host path is, or passes through, a symbolic link.
    #[error(
        "host path {host} granted as {guest} is or passes through the symbolic link {link}{target}; \
         grants never follow links, since a plugin with write access could plant one. \
         Point the grant at the real directory, or, if you own the link and no plugin \
         can replace it, set `follow_symlinks = true` on this entry of [[grants.{plugin}.dirs]]"
    )]
    Symlink {
        /// The granted host directory.
        host: PathBuf,
        /// The guest path it is granted as.
        guest: String,
        /// The link on the way.
        link: PathBuf,
        /// ` (-> target)` when the link could be read, else empty.
        target: String,
        /// The plugin whose grant it is (names the config table to edit).
        plugin: String,
    },
    /// A granted host path is not a directory.
    #[error("host path {host} granted as {guest} is not a directory ({at} is not one)")]
    NotDirectory {
        /// The granted host directory.
        host: PathBuf,
        /// The guest path it is granted as.
        guest: String,
        /// The part of the path that is not a directory.
        at: PathBuf,
    },
    /// Two grants of one plugin overlap and one of them is writable.
    #[error(
        "grants {first} (host {first_host}) and {second} (host {second_host}) overlap (one directory is inside or equal to \
         the other) and {writable} is writable: through it the plugin could change what {other} shows, \
         for example replace a directory with a link. Grant only the outer directory, or \
         make both grants read-only",
        writable = if *first_writable { first } else { second },
        other = if *first_writable { second } else { first }
    )]
    Overlap {
        /// The first grant's guest path.
        first: String,
        /// Its host directory.
        first_host: PathBuf,
        /// The second grant's guest path.
        second: String,
        /// Its host directory.
        second_host: PathBuf,
        /// Whether the first one is the writable one (else the second is).
        first_writable: bool,
    },
}

/// Why a plugin-declared JSON Schema was refused (before or by compiling it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema is neither an object nor a boolean.
    #[error("{which} must be a JSON object")]
    NotObject {
        /// Which schema ("its input schema").
        which: String,
    },
    /// A size or complexity limit of the `[schema]` config section.
    #[error(
        "{what} {value}, over the limit of {limit}; simplify the schema, or raise `{key}` in the [schema] section of the host config"
    )]
    OverLimit {
        /// What was measured, naming the schema ("its input schema has").
        what: String,
        /// The measure ("12 distinct patterns").
        value: String,
        /// The configured limit.
        limit: usize,
        /// The config key that raises it.
        key: &'static str,
    },
    /// A `$ref` (or `$dynamicRef`) that does not point into the schema.
    #[error(
        "{which} has a `{keyword}` to {reference} that does not point into the schema; the host resolves references only inside the schema and never fetches remote ones"
    )]
    UnresolvedRef {
        /// Which schema.
        which: String,
        /// The keyword (`$ref`, `$dynamicRef`).
        keyword: String,
        /// The reference, quoted.
        reference: String,
    },
    /// A `$ref` cycle that never descends into the value.
    #[error(
        "{which} has a `$ref` cycle that never descends into the value (it would be checked forever against the same value); every cycle must pass through a keyword such as `properties` or `items`"
    )]
    RefCycle {
        /// Which schema.
        which: String,
    },
    /// A pattern the linear-time regex engine cannot use.
    #[error("{which} has the pattern {pattern} that {why}")]
    Pattern {
        /// Which schema.
        which: String,
        /// The pattern, quoted and cut.
        pattern: String,
        /// Why it cannot be used.
        why: String,
    },
    /// jsonschema refused the schema.
    #[error("{message}")]
    Invalid {
        /// `<which> is not a valid JSON Schema: ...`, cut to a readable length.
        message: String,
    },
}

/// Why an extension's patch of an event payload was refused (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// This hook point allows no patches.
    #[error("{point} cannot be patched; answer continue instead")]
    NotPatchable {
        /// The hook point.
        point: crate::hooks::HookPoint,
    },
    /// The patch is not a JSON object.
    #[error("a patch must be a JSON object of fields to replace ({})", allowed.join(", "))]
    NotAnObject {
        /// The fields the point lets extensions change.
        allowed: &'static [&'static str],
    },
    /// The patch names a field the point does not let extensions change.
    #[error("a patch at {point} cannot change `{field}`; it may change {}", allowed.join(", "))]
    Field {
        /// The hook point.
        point: crate::hooks::HookPoint,
        /// The refused field.
        field: String,
        /// The fields the point lets extensions change.
        allowed: &'static [&'static str],
    },
}
