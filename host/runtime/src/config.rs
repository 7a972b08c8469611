//! The tool runtime's configuration sections (sandbox, cache, watch, grants, hooks, extensions, limits) and their validation.
//!
//! Each section is a serde type that refuses unknown keys; the front end
//! composes them into its config file and resolves flags, environment and
//! defaults before building a [`RuntimeConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::manifest::Access;

/// Bounds of the compiled-component caches (`[cache]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Components kept compiled in memory.
    pub memory_entries: usize,
    /// Approximate bytes of compiled code kept in memory.
    pub memory_mb: u64,
    /// Serialized artifacts kept on disk; the least recently used go first.
    pub disk_mb: u64,
    /// Which compilers a plugin without a cached build goes through.
    pub tiering: Tiering,
}

/// Tiered compilation: how a plugin without a cached optimized build is
/// compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tiering {
    /// Baseline (Winch) at once so the plugin answers in milliseconds,
    /// optimized (Cranelift) in the background, swapped in when ready.
    /// With fuel metering on, optimized only (Winch cannot meter fuel).
    #[default]
    Auto,
    /// Baseline only (for tests and for hosts that value start-up above
    /// call speed).
    Baseline,
    /// Cranelift only: the first use waits for the optimized build.
    Optimized,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_entries: 64,
            memory_mb: 512,
            disk_mb: 1024,
            tiering: Tiering::Auto,
        }
    }
}

/// The plugin-directory watcher of long-running hosts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Quiet time after the last file event before a plugin is reloaded, so
    /// a file still being written is not loaded half-written.
    pub debounce_ms: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self { debounce_ms: 20 }
    }
}

/// Limits applied to every call; a plugin's manifest may ask for less or
/// more, but never more than the `max_*` values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Memory cap of a call when the manifest asks for none, in MiB.
    pub default_memory_mb: u64,
    /// The most memory a manifest may ask for, in MiB.
    pub max_memory_mb: u64,
    /// Deadline of a call when the manifest asks for none, in ms.
    pub default_timeout_ms: u64,
    /// The longest deadline a manifest may ask for, in ms.
    pub max_timeout_ms: u64,
    /// Output cap of a call when the manifest asks for none, in KiB.
    pub default_max_output_kb: u64,
    /// The largest output cap a manifest may ask for, in KiB.
    pub max_output_kb: u64,
    /// Turn on fuel metering engine-wide. It costs about half the speed of
    /// CPU-bound guests, so it is off unless asked for; the wall-clock
    /// deadline stops runaway plugins either way.
    pub fuel: bool,
    /// How much of a call's stdout and stderr is kept for the log.
    pub log_capture_kb: u64,
    /// Instances that can be alive at once (size of the pooling allocator).
    pub max_instances: u32,
    /// Most fuel a call may get when metering is on; a manifest asking for
    /// more (or for none) gets this.
    pub max_fuel: u64,
    /// Files and directories one call (one instance) may hold open at once;
    /// the next open fails inside the guest with `quota`. Capped further at
    /// start so that `max_open_files` x `max_instances` always fits in the
    /// process's descriptor limit.
    pub max_open_files: usize,
    /// Let guests create symbolic links (`symlink-at`) in writable grants.
    /// Off by default: a planted link is how one grant was redirected into
    /// another directory (issue 11).
    pub allow_guest_symlinks: bool,
    /// KiB at the start of each pooled linear-memory slot that a freed
    /// instance's slot resets with `memset` and keeps resident, rather than
    /// handing back to the kernel (whose TLB shootdowns grow with every core
    /// the process runs on). 0: every reset is an `madvise`.
    pub pool_memory_keep_resident_kb: u64,
    /// The same for each pooled table slot.
    pub pool_table_keep_resident_kb: u64,
    /// Freed memory slots whose decommits are batched into one round of
    /// system calls (wasmtime's `decommit_batch_size`); 1 decommits at once.
    pub pool_decommit_batch: usize,
    /// Engines that serve tool calls, each with its own instance pool; a
    /// thread keeps calling through one of them. An engine's pool is shared
    /// state every instantiation touches, so two threads on one engine
    /// contend for it. 0: one per core, at most
    /// [`MAX_ENGINE_SHARDS`]; 1: a single engine.
    pub engine_shards: usize,
}

/// The most engines [`SandboxConfig::engine_shards`] may ask for.
pub const MAX_ENGINE_SHARDS: usize = 8;

impl SandboxConfig {
    /// The number of call engines these settings give on this machine.
    pub fn engine_shard_count(&self) -> usize {
        match self.engine_shards {
            0 => std::thread::available_parallelism()
                .map_or(1, |cores| cores.get())
                .min(MAX_ENGINE_SHARDS),
            shards => shards.min(MAX_ENGINE_SHARDS),
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            default_memory_mb: 64,
            max_memory_mb: 1024,
            default_timeout_ms: 10_000,
            max_timeout_ms: 300_000,
            default_max_output_kb: 1024,
            max_output_kb: 16 * 1024,
            fuel: false,
            log_capture_kb: 64,
            max_instances: 100,
            max_fuel: 10_000_000_000,
            max_open_files: 128,
            allow_guest_symlinks: false,
            pool_memory_keep_resident_kb: 2048,
            pool_table_keep_resident_kb: 64,
            pool_decommit_batch: 1,
            engine_shards: 0,
        }
    }
}

/// Bounds on what a plugin may declare about itself (`describe`). Its answer
/// is untrusted input: the host refuses an oversized one before it spends
/// memory or time on it, and remembers the refusal by content hash so a
/// plugin that fails slowly does not cost every start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DescribeLimits {
    /// Tools one plugin may declare.
    pub max_tools: usize,
    /// Bytes of one tool's description.
    pub max_description_bytes: usize,
    /// Bytes of one tool's title.
    pub max_title_bytes: usize,
    /// Bytes of one plugin's whole answer (names, titles, descriptions and
    /// schemas of all its tools).
    pub max_total_bytes: usize,
    /// Subscriptions one extension may declare.
    pub max_subscriptions: usize,
}

impl Default for DescribeLimits {
    fn default() -> Self {
        Self {
            max_tools: 256,
            max_description_bytes: 16 * 1024,
            max_title_bytes: 256,
            max_total_bytes: 4 * 1024 * 1024,
            max_subscriptions: 64,
        }
    }
}

/// Storage quotas of plugin state: what one plugin may keep in its
/// key-value state and in each session's state, how much one list call
/// returns, and how much session state the host keeps in memory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Bytes (keys plus values) one plugin may keep in its key-value state.
    pub kv_max_mb: u64,
    /// Keys one plugin may keep in its key-value state.
    pub kv_max_keys: u64,
    /// Bytes (keys plus values) one plugin may keep in one session's state.
    pub session_max_mb: u64,
    /// Keys one plugin may keep in one session's state.
    pub session_max_keys: u64,
    /// Most keys one `kv-list` or `session-list` call returns.
    pub list_max_keys: usize,
    /// Most bytes of keys one `kv-list` or `session-list` call returns.
    pub list_max_kb: usize,
    /// Memory for the values of all live session states together; past it,
    /// states are served from the database instead of memory.
    pub session_memory_mb: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            kv_max_mb: 64,
            kv_max_keys: 100_000,
            session_max_mb: 16,
            session_max_keys: 10_000,
            list_max_keys: 1000,
            list_max_kb: 256,
            session_memory_mb: 64,
        }
    }
}

/// Limits on the JSON Schemas plugins declare, checked at load before the
/// schema is compiled, and on the host's work to validate against them.
/// Schemas are untrusted input: these bound the host's memory, stack and
/// time per tool (see docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaConfig {
    /// Largest input or output schema of one tool, as JSON text.
    pub max_schema_bytes: usize,
    /// Most subschemas (schema objects and booleans) in one schema.
    pub max_subschemas: usize,
    /// Most `$ref`s (and `$dynamicRef`s) in one schema.
    pub max_refs: usize,
    /// Deepest nesting of subschemas once every `$ref` is inlined.
    pub max_depth: usize,
    /// Most branches of one `allOf`, `anyOf` or `oneOf`.
    pub max_fan_out: usize,
    /// Most subschemas applied to one value of the arguments, with refs
    /// inlined across the applicators that stay on that value (`allOf`,
    /// `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `$ref`, ...).
    pub max_expanded: usize,
    /// Most distinct regular expressions (`pattern`, `patternProperties`).
    pub max_patterns: usize,
    /// Longest regular expression, in bytes.
    pub max_pattern_bytes: usize,
    /// Size limit of one compiled regular expression and of its lazy DFA
    /// cache, in bytes.
    pub max_regex_bytes: usize,
    /// Most validation problems reported for one call.
    pub max_reported_errors: usize,
    /// Costly validations (run on their own thread) alive at once, counting
    /// those abandoned after their call's deadline; calls beyond it fail.
    pub max_running_validations: usize,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            max_schema_bytes: 256 * 1024,
            max_subschemas: 10_000,
            max_refs: 1_000,
            max_depth: 64,
            max_fan_out: 256,
            max_expanded: 10_000,
            max_patterns: 256,
            max_pattern_bytes: 1024,
            max_regex_bytes: 1024 * 1024,
            max_reported_errors: 10,
            max_running_validations: 16,
        }
    }
}

/// Budgets and limits every extension hook runs under.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Wall-clock budget of one hook call; a plugin's manifest can only
    /// lower it.
    pub timeout_ms: u64,
    /// Fuel budget of one hook call (needs `sandbox.fuel = true`).
    pub fuel: Option<u64>,
    /// Most extensions one event is delivered to; the rest are skipped
    /// (and counted).
    pub max_fanout: usize,
    /// A hook that fails this many times in a row is switched off for the
    /// session.
    pub max_failures: u32,
    /// Asynchronous hook calls of one extension that may be in flight at
    /// once; events beyond it are dropped (and counted).
    pub max_in_flight: usize,
    /// Stream chunks per batch when a stream-chunk subscriber gives no hint.
    pub default_coalesce_chunks: u32,
    /// Age at which a partial batch is delivered when no hint is given.
    pub default_coalesce_ms: u64,
    /// Largest text one `inject` may add to the conversation; a larger one
    /// is refused (counted as a failure of the hook).
    pub max_inject_kb: u64,
    /// Largest `patch` answer; a larger one is refused the same way. A
    /// patched tool output also obeys the tool's own output cap.
    pub max_patch_kb: u64,
    /// Longest block reason kept; a longer one is cut (the block stands).
    pub max_reason_bytes: usize,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 100,
            fuel: None,
            max_fanout: 8,
            max_failures: 3,
            max_in_flight: 16,
            default_coalesce_chunks: 256,
            default_coalesce_ms: 250,
            max_inject_kb: 16,
            max_patch_kb: 1024,
            max_reason_bytes: 1024,
        }
    }
}

/// Per-hook settings that replace what the extension declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookOverride {
    /// `false` unsubscribes the extension from this point.
    pub enabled: Option<bool>,
    /// `sync` or `async`.
    pub delivery: Option<crate::hooks::Delivery>,
    /// Replaces the extension's `min-interval-ms` throttle hint.
    pub min_interval_ms: Option<u64>,
    /// Replaces its `every-n-turns` hint.
    pub every_n_turns: Option<u32>,
    /// Replaces its `coalesce-chunks` hint.
    pub coalesce_chunks: Option<u32>,
    /// Replaces its `coalesce-ms` hint.
    pub coalesce_ms: Option<u64>,
}

impl HookOverride {
    /// The throttle values this override sets.
    pub fn throttle(&self) -> crate::hooks::Throttle {
        crate::hooks::Throttle {
            min_interval_ms: self.min_interval_ms,
            every_n_turns: self.every_n_turns,
            coalesce_chunks: self.coalesce_chunks,
            coalesce_ms: self.coalesce_ms,
        }
    }
}

/// What the host configuration says about one extension.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtensionSettings {
    /// `false` loads the extension but never calls it.
    pub enabled: bool,
    /// When one of its hooks fails (trap, budget, unusable answer) at a
    /// point that can be blocked, block instead of going on as if it had
    /// answered `continue`. Such a hook is never switched off. For policy
    /// extensions that must not be bypassed by crashing them.
    pub fail_closed: bool,
    /// Replaces the priority the extension declared.
    pub priority: Option<i32>,
    /// Replaces the `[config]` table of the extension's manifest.
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// Per hook point (`before-tool-call`, ...): overrides of the declared
    /// subscription.
    pub hooks: BTreeMap<String, HookOverride>,
}

impl Default for ExtensionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            fail_closed: false,
            priority: None,
            config: None,
            hooks: BTreeMap::new(),
        }
    }
}

/// A host directory made visible to a plugin at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The host directory.
    pub host: PathBuf,
    /// The absolute guest path it appears at (must match the manifest's request).
    pub guest: String,
    /// The most access granted; the manifest may ask for less.
    pub access: Access,
    /// Allow `host` to be or pass through a symbolic link. Off by default:
    /// the host path is opened component by component without following
    /// links, so a link a plugin planted cannot redirect the grant. Set it
    /// only for links the host owner controls and no plugin can replace.
    #[serde(default)]
    pub follow_symlinks: bool,
}

/// What the host grants one plugin. Only what the manifest requests AND the
/// grant allows is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grant {
    /// Directories the plugin may be given.
    pub dirs: Vec<DirGrant>,
    /// Environment variables it may read (names; values come from the host's environment).
    pub env: Vec<String>,
    /// Network destinations it may reach (`*`, `host`, `host:port`, `*:port`).
    pub network: Vec<String>,
}

/// The validated configuration of the tool runtime: where plugins and data
/// live, the sandbox, cache, watcher, grants, hooks and limits on what
/// plugins declare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeConfig {
    /// Directories searched for `<name>.wasm` plugins (with `<name>.toml` manifests).
    pub plugin_dirs: Vec<PathBuf>,
    /// Where the store and the compiled-component cache live.
    pub data_dir: PathBuf,
    /// Limits applied to every call.
    pub sandbox: SandboxConfig,
    /// Bounds of the compiled-component cache.
    pub cache: CacheConfig,
    /// Hot reload.
    pub watch: WatchConfig,
    /// What each plugin is granted, by plugin name.
    pub grants: BTreeMap<String, Grant>,
    /// Budgets and throttles of extension hooks.
    pub hooks: HooksConfig,
    /// Per-extension settings, by plugin name.
    pub extensions: BTreeMap<String, ExtensionSettings>,
    /// Bounds on what plugins declare about themselves.
    pub describe: DescribeLimits,
    /// Quotas of what plugins may keep in the store.
    pub quotas: QuotaConfig,
    /// Limits on plugin-declared JSON Schemas.
    pub schema: SchemaConfig,
}

impl RuntimeConfig {
    /// A configuration with default limits, no grants, and the given directories.
    pub fn new(plugin_dirs: Vec<PathBuf>, data_dir: PathBuf) -> Self {
        Self {
            plugin_dirs,
            data_dir,
            sandbox: SandboxConfig::default(),
            cache: CacheConfig::default(),
            watch: WatchConfig::default(),
            grants: BTreeMap::new(),
            hooks: HooksConfig::default(),
            extensions: BTreeMap::new(),
            describe: DescribeLimits::default(),
            quotas: QuotaConfig::default(),
            schema: SchemaConfig::default(),
        }
    }

    /// Checks the values that would otherwise fail later and far from here.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sandbox = &self.sandbox;
        let pairs = [
            ("memory", sandbox.default_memory_mb, sandbox.max_memory_mb),
            (
                "timeout",
                sandbox.default_timeout_ms,
                sandbox.max_timeout_ms,
            ),
            (
                "output",
                sandbox.default_max_output_kb,
                sandbox.max_output_kb,
            ),
        ];
        for (what, default, max) in pairs {
            if default == 0 || max == 0 {
                return Err(ConfigError::Invalid(format!(
                    "sandbox {what} limits must be greater than 0"
                )));
            }
            if default > max {
                return Err(ConfigError::Invalid(format!(
                    "sandbox default {what} limit ({default}) is above its maximum ({max})"
                )));
            }
        }
        if sandbox.pool_memory_keep_resident_kb > sandbox.max_memory_mb.saturating_mul(1024) {
            return Err(ConfigError::Invalid(format!(
                "sandbox.pool_memory_keep_resident_kb ({}) is more than a memory slot holds (sandbox.max_memory_mb = {} MiB)",
                sandbox.pool_memory_keep_resident_kb, sandbox.max_memory_mb
            )));
        }
        if self.cache.tiering == Tiering::Baseline && sandbox.fuel {
            return Err(ConfigError::Invalid(
                "cache.tiering = \"baseline\" cannot meter fuel (sandbox.fuel = true): the baseline compiler (Winch) has no fuel support; use \"auto\" or \"optimized\"".into(),
            ));
        }
        if sandbox.max_memory_mb > 4096 {
            return Err(ConfigError::Invalid(
                "sandbox.max_memory_mb can be at most 4096 (32-bit guest memories)".into(),
            ));
        }
        // These become byte counts (`capabilities::grant`, the cache):
        // a value whose bytes do not fit in 64 bits overflowed there (found
        // by fuzzing, docs/fuzzing.md).
        for (key, value, unit, shift) in [
            ("sandbox.max_output_kb", sandbox.max_output_kb, "KiB", 10),
            ("sandbox.log_capture_kb", sandbox.log_capture_kb, "KiB", 10),
            ("cache.memory_mb", self.cache.memory_mb, "MiB", 20),
            ("cache.disk_mb", self.cache.disk_mb, "MiB", 20),
            ("hooks.max_inject_kb", self.hooks.max_inject_kb, "KiB", 10),
            ("hooks.max_patch_kb", self.hooks.max_patch_kb, "KiB", 10),
        ] {
            let most = u64::MAX >> shift;
            if value > most {
                return Err(ConfigError::Invalid(format!(
                    "{key} = {value} is too large: at most {most} ({unit})"
                )));
            }
        }
        if sandbox.max_instances == 0 {
            return Err(ConfigError::Invalid(
                "sandbox.max_instances must be greater than 0".into(),
            ));
        }
        if sandbox.engine_shards > MAX_ENGINE_SHARDS {
            return Err(ConfigError::Invalid(format!(
                "sandbox.engine_shards = {} is too many: at most {MAX_ENGINE_SHARDS} (0 is one per core)",
                sandbox.engine_shards
            )));
        }
        if sandbox.max_open_files == 0 {
            return Err(ConfigError::Invalid(
                "sandbox.max_open_files must be greater than 0 (a call needs descriptors to use a granted directory)".into(),
            ));
        }
        for (plugin, grant) in &self.grants {
            for dir in &grant.dirs {
                if !dir.guest.starts_with('/') {
                    return Err(ConfigError::Invalid(format!(
                        "grants.{plugin}: guest path '{}' must be absolute, such as /workspace",
                        dir.guest
                    )));
                }
            }
        }
        let hooks = &self.hooks;
        if hooks.timeout_ms == 0 || hooks.max_fanout == 0 || hooks.max_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "hooks.timeout_ms, hooks.max_fanout and hooks.max_in_flight must be greater than 0"
                    .into(),
            ));
        }
        if hooks.fuel.is_some() && !sandbox.fuel {
            return Err(ConfigError::Invalid(
                "hooks.fuel needs fuel metering: set sandbox.fuel = true as well".into(),
            ));
        }
        let quotas = &self.quotas;
        let quota_values = [
            ("kv_max_mb", quotas.kv_max_mb),
            ("kv_max_keys", quotas.kv_max_keys),
            ("session_max_mb", quotas.session_max_mb),
            ("session_max_keys", quotas.session_max_keys),
            ("list_max_keys", quotas.list_max_keys as u64),
            ("list_max_kb", quotas.list_max_kb as u64),
            ("session_memory_mb", quotas.session_memory_mb),
        ];
        for (key, value) in quota_values {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "quotas.{key} must be greater than 0"
                )));
            }
        }
        for (name, settings) in &self.extensions {
            for point in settings.hooks.keys() {
                if crate::hooks::HookPoint::parse(point).is_none() {
                    let known: Vec<&str> = crate::hooks::HookPoint::ALL
                        .iter()
                        .map(|p| p.as_str())
                        .collect();
                    return Err(ConfigError::Invalid(format!(
                        "extensions.{name}.hooks.{point}: unknown hook point; use one of {}",
                        known.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// The settings for an extension (defaults when the config says nothing).
    pub fn extension_settings(&self, plugin: &str) -> ExtensionSettings {
        self.extensions.get(plugin).cloned().unwrap_or_default()
    }

    /// The grant for a plugin, or the empty grant (deny everything).
    pub fn grant_for(&self, plugin: &str) -> Grant {
        self.grants.get(plugin).cloned().unwrap_or_default()
    }
}
