//! Turns a `.wasm` + manifest pair into a ready-to-call plugin: validate, compile (baseline first when tiering, optimized behind it), check the contract, pre-instantiate (and copy the optimized build to other call engines on their first call), describe.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::bindings::{self, ExtensionPluginPre, ToolPluginPre};
use crate::cache::{CacheLevel, ComponentCache};
use crate::capabilities::{self, Capabilities};
use crate::config::{DescribeLimits, RuntimeConfig, Tiering};
use crate::contract::{self, PluginKind};
use crate::engine::Tier;
use crate::error::LoadError;
use crate::hooks::ExtensionSpec;
use crate::host_api::{CallSite, HostContext};
use crate::manifest::{self, Manifest};
use crate::sandbox::{self, CallState};
use crate::schema::ArgsValidator;
use crate::spec::ToolSpec;
use crate::store::DataStore;

/// Longest a plugin may take to describe its tools.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A tool ready to call: its spec and compiled argument schema.
#[derive(Debug)]
pub struct LoadedTool {
    pub spec: ToolSpec,
    pub validator: ArgsValidator,
}

/// A plugin that passed every check and can be instantiated cheaply.
/// Aligned to cache lines of its own: calls on every thread read it, and
/// an allocation written on every call could otherwise share its first or
/// last line.
#[repr(align(128))]
pub struct LoadedPlugin {
    /// The validated manifest.
    pub manifest: Manifest,
    /// The component file.
    pub wasm_path: PathBuf,
    /// Its manifest file.
    pub manifest_path: PathBuf,
    /// What the plugin was granted.
    pub capabilities: Capabilities,
    /// blake3 of the component bytes, hex.
    pub content_hash: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// Total load time: read, verify, and (when eager) compile or fetch,
    /// link, describe.
    pub load_time: Duration,
    /// Which world the component implements.
    pub kind: PluginKind,
    /// The tools of a tool plugin (empty for an extension).
    pub tools: Vec<LoadedTool>,
    /// What an extension subscribes to (`None` for a tool plugin).
    pub extension: Option<ExtensionSpec>,
    /// The plugin's configuration as JSON object text, for its `config`
    /// import: the host configuration's, else the manifest's.
    pub config: Arc<str>,
    prepared: tokio::sync::OnceCell<PreparedSlot>,
}

/// The prepared component of a plugin version: set once, then replaced
/// once more when a baseline build is tiered up (calls in flight keep the
/// `Arc` they took).
type PreparedSlot = Arc<std::sync::RwLock<Arc<Prepared>>>;

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.manifest.plugin.name)
            .field("wasm_path", &self.wasm_path)
            .field("tools", &self.tools.len())
            .finish()
    }
}

impl LoadedPlugin {
    /// The plugin's name (its file stem, equal to the manifest's).
    pub fn name(&self) -> &str {
        &self.manifest.plugin.name
    }

    /// Its tool called `name`, if it has one.
    pub fn tool(&self, name: &str) -> Option<&LoadedTool> {
        self.tools.iter().find(|tool| tool.spec.name == name)
    }
}

/// Something that wants to know when a real compilation starts and ends
/// (the CLI shows a spinner for slow ones).
pub trait CompileObserver: Send + Sync {
    /// A compilation of `plugin` started.
    fn started(&self, plugin: &str);
    /// It finished, after `took`.
    fn finished(&self, plugin: &str, took: Duration);
}

/// Foreground compiles (a plugin someone is waiting for) in flight: an
/// optimized build waits until they are done and the host has been quiet
/// a moment, so it never slows a start-up down.
#[derive(Default)]
pub(crate) struct CompileGate {
    busy: std::sync::atomic::AtomicUsize,
    /// Bumped whenever a foreground compile starts.
    started: std::sync::atomic::AtomicU64,
    idle: tokio::sync::Notify,
}

/// How long the host must have been free of foreground compiles before an
/// optimized build starts.
const QUIET_BEFORE_TIER_UP: Duration = Duration::from_millis(150);

impl CompileGate {
    fn enter(self: &Arc<Self>) -> GateGuard {
        use std::sync::atomic::Ordering;
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
        GateGuard(self.clone())
    }

    /// Returns once no foreground compile has run for the quiet period.
    async fn wait_quiet(&self) {
        use std::sync::atomic::Ordering;
        loop {
            // Registered before the check, so a compile ending in between
            // still wakes it.
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.busy.load(Ordering::SeqCst) > 0 {
                idle.await;
                continue;
            }
            let seen = self.started.load(Ordering::SeqCst);
            tokio::time::sleep(QUIET_BEFORE_TIER_UP).await;
            if self.busy.load(Ordering::SeqCst) == 0 && self.started.load(Ordering::SeqCst) == seen
            {
                return;
            }
        }
    }
}

struct GateGuard(Arc<CompileGate>);

impl Drop for GateGuard {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Told the name of a plugin that moved to its optimized build.
pub(crate) type TierUpNotice = Arc<dyn Fn(&str) + Send + Sync>;

/// One compiler's side of the runtime: the linker for its engine and the
/// cache of what it compiled.
#[derive(Clone)]
pub(crate) struct Toolchain {
    pub linker: Linker<CallState>,
    pub cache: Arc<ComponentCache>,
}

/// Everything loading needs from the runtime.
pub(crate) struct LoadContext<'a> {
    pub linker: &'a Linker<CallState>,
    pub config: &'a RuntimeConfig,
    pub store: &'a DataStore,
    pub cache: &'a Arc<ComponentCache>,
    /// The baseline compiler, when tiering may use it.
    pub baseline: Option<&'a Toolchain>,
    /// Optimized builds running behind baseline ones (bounded).
    pub tier_ups: &'a Arc<tokio::sync::Semaphore>,
    /// Foreground compiles in flight, which optimized builds wait out.
    pub gate: &'a Arc<CompileGate>,
    /// Told when a plugin moved to its optimized build.
    pub on_tier_up: Option<TierUpNotice>,
    /// Instance slots shared with calls: describing waits for one too.
    pub instance_slots: &'a crate::instance_slots::InstanceSlots,
    pub observer: Option<Arc<dyn CompileObserver>>,
}

/// A tool name as it may appear in a message: a name that breaks the rules
/// can be of any length, so only its start is shown.
fn shown_name(name: &str) -> String {
    const SHOWN: usize = 80;
    if name.len() <= SHOWN {
        return name.to_owned();
    }
    let mut cut = SHOWN;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes)", &name[..cut], name.len())
}

/// Whether `name` is a legal tool name (the rule OpenAI and MCP clients share).
pub(crate) fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// How much of a plugin to prepare when loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Compile (or fetch from the cache), check and pre-instantiate now.
    /// Hot reload uses this so a broken update is caught before the swap.
    Eager,
    /// When the tool specs of this exact file are already known, stop
    /// there: the component is prepared on its first call. Listing tools on
    /// a warm cache then neither compiles nor instantiates anything.
    Lazy,
}

/// A pre-instantiated component, typed by the world it implements.
pub(crate) enum Bound {
    Tool(ToolPluginPre<CallState>),
    Extension(ExtensionPluginPre<CallState>),
}

/// Largest compiled tool whose code is copied to the other call engines
/// (see [`Prepared::tool_on_shard`]): a big interpreter's call is
/// dominated by restoring its snapshot, not by contention for the pool,
/// and each copy costs its code size in memory.
const MAX_REPLICATED_CODE_BYTES: usize = 16 << 20;

/// A component ready to instantiate, and where it came from.
pub(crate) struct Prepared {
    pub bound: Bound,
    pub level: CacheLevel,
    pub compile_time: Duration,
    pub tier: Tier,
    /// The same optimized tool build bound to call engine `i + 1`, made on
    /// that engine's first call (`None` inside: it could not be copied,
    /// the primary serves).
    replicas: Box<[std::sync::OnceLock<Option<ToolPluginPre<CallState>>>]>,
}

impl Prepared {
    /// The engine its stores must be made with.
    pub(crate) fn engine(&self) -> &Engine {
        self.component().engine()
    }

    pub(crate) fn component(&self) -> &wasmtime::component::Component {
        match &self.bound {
            Bound::Tool(pre) => pre.instance_pre().component(),
            Bound::Extension(pre) => pre.instance_pre().component(),
        }
    }

    /// The tool build to instantiate on call engine `shard`, whose linker
    /// `linker` gives (shard 0 is the engine this build was made on).
    /// Another engine gets a copy of the compiled code, made on its first
    /// call; a baseline build, or one too big to copy, serves every engine
    /// itself. `None`: this is an extension.
    ///
    /// Also says which engine's pool the instance will come from: `shard`,
    /// or 0 when this build serves for it.
    pub(crate) fn tool_on_shard(
        &self,
        shard: usize,
        linker: impl FnOnce() -> Option<Linker<CallState>>,
    ) -> Option<(&ToolPluginPre<CallState>, usize)> {
        let Bound::Tool(primary) = &self.bound else {
            return None;
        };
        if shard == 0 || self.tier != Tier::Optimized {
            return Some((primary, 0));
        }
        let Some(slot) = self.replicas.get(shard - 1) else {
            return Some((primary, 0));
        };
        match slot.get_or_init(|| replicate(primary, &linker()?)) {
            Some(replica) => Some((replica, shard)),
            None => Some((primary, 0)),
        }
    }

    fn kind(&self) -> PluginKind {
        match self.bound {
            Bound::Tool(_) => PluginKind::Tool,
            Bound::Extension(_) => PluginKind::Extension,
        }
    }
}

/// What a plugin version says about itself; a pure function of its bytes,
/// so it is stored by content hash.
enum Description {
    Tools(Vec<ToolSpec>),
    Extension(ExtensionSpec),
}

impl LoadedPlugin {
    /// The pre-instantiated component, preparing it on first use.
    pub(crate) async fn prepare(&self, cx: &LoadContext<'_>) -> Result<Arc<Prepared>, LoadError> {
        let slot = self
            .prepared
            .get_or_try_init(|| async {
                let (ready, tier_up) =
                    prepare_component(cx, &self.wasm_path, self.name(), None, &self.content_hash)
                        .await?;
                Ok::<_, LoadError>(start_slot(ready, tier_up))
            })
            .await?;
        Ok(slot.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// The prepared component if it is ready already.
    pub(crate) fn current(&self) -> Option<Arc<Prepared>> {
        self.prepared
            .get()
            .map(|slot| slot.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// How many call engines hold a build of this version (0: not
    /// prepared yet).
    pub fn prepared_on_engines(&self) -> usize {
        self.current().map_or(0, |prepared| {
            1 + prepared
                .replicas
                .iter()
                .filter(|replica| matches!(replica.get(), Some(Some(_))))
                .count()
        })
    }

    /// Where the compiled component came from, once it has been prepared.
    pub fn cache_level(&self) -> Option<CacheLevel> {
        self.current().map(|p| p.level)
    }

    /// Time this process spent compiling it (zero when a cache answered).
    pub fn compile_time(&self) -> Duration {
        self.current().map_or(Duration::ZERO, |p| p.compile_time)
    }

    /// Which compiler's build it runs now, once it has been prepared.
    pub fn tier(&self) -> Option<Tier> {
        self.current().map(|p| p.tier)
    }

    /// The contract version the component was built against (the version
    /// on the interface it exports), once it has been prepared.
    pub fn built_contract(&self) -> Option<String> {
        let prepared = self.current()?;
        contract::built_version(prepared.engine(), prepared.component())
    }
}

/// The slot for a freshly prepared component, with its tier-up started
/// when it is a baseline build.
fn start_slot(ready: Prepared, tier_up: Option<TierUp>) -> PreparedSlot {
    let slot = Arc::new(std::sync::RwLock::new(Arc::new(ready)));
    if let Some(tier_up) = tier_up {
        tier_up.start(Arc::downgrade(&slot));
    }
    slot
}

/// An optimized build to make behind a baseline one, then swap in.
struct TierUp {
    optimized: Toolchain,
    path: PathBuf,
    name: String,
    content_hash: String,
    kind: PluginKind,
    permits: Arc<tokio::sync::Semaphore>,
    gate: Arc<CompileGate>,
    on_tier_up: Option<TierUpNotice>,
}

impl TierUp {
    /// Compiles in the background, one build at a time, on a thread of its
    /// own at a lower scheduling priority than the threads serving calls;
    /// swaps the build into `slot` if the plugin is still loaded. A build
    /// that fails leaves the baseline one serving.
    fn start(self, slot: std::sync::Weak<std::sync::RwLock<Arc<Prepared>>>) {
        tokio::spawn(async move {
            let Ok(_permit) = self.permits.clone().acquire_owned().await else {
                return;
            };
            self.gate.wait_quiet().await;
            if slot.strong_count() == 0 {
                return;
            }
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let (cache, path, hash) = (
                self.optimized.cache.clone(),
                self.path.clone(),
                self.content_hash.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name("agent-host-tier-up".into())
                .spawn(move || {
                    lower_this_threads_priority();
                    let _ = sender.send(compile_file(&cache, &path, &hash, &|| {}));
                });
            if spawned.is_err() {
                return;
            }
            let compiled = match receiver.await {
                Ok(Ok(compiled)) => compiled,
                Ok(Err(message)) => {
                    tracing::warn!(plugin = %self.name, %message, "optimized build failed; the baseline build keeps serving");
                    return;
                }
                Err(_) => return,
            };
            let prepared = match bind(
                &self.optimized.linker,
                compiled,
                self.kind,
                &self.name,
                Tier::Optimized,
            ) {
                Ok(prepared) => prepared,
                Err(err) => {
                    tracing::warn!(plugin = %self.name, %err, "optimized build cannot be linked; the baseline build keeps serving");
                    return;
                }
            };
            if let Some(slot) = slot.upgrade() {
                *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(prepared);
                tracing::debug!(plugin = %self.name, "tiered up to the optimized build");
                if let Some(notify) = &self.on_tier_up {
                    notify(&self.name);
                }
            }
        });
    }
}

/// Asks the scheduler to run this thread after the others (nice 10; on
/// Linux `setpriority` with no pid applies to the calling thread only).
/// Best effort: a refusal changes nothing else.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(None, 10);
}

/// The compiled component for the file at `path` (read again, and checked
/// against `hash`) from `cache`, compiling it if needed.
fn compile_file(
    cache: &ComponentCache,
    path: &Path,
    hash: &str,
    on_compile: &dyn Fn(),
) -> Result<crate::cache::Compiled, String> {
    if let Some(compiled) = cache.get_cached(hash) {
        return Ok(compiled);
    }
    let bytes = std::fs::read(path).map_err(|err| format!("cannot read it again: {err}"))?;
    if crate::cache::content_hash(&bytes) != hash {
        return Err("the file changed since it was loaded; it will be reloaded".to_owned());
    }
    cache
        .get_or_compile(path, &bytes, hash, on_compile)
        .map_err(|err| err.to_string())
}

/// The key tool specs are stored under: the component's content, the
/// contract it was checked against, and the configuration its `config`
/// import returns (which `describe` may read).
fn spec_key(content_hash: &str, config: &str) -> String {
    let config_hash = blake3::hash(config.as_bytes()).to_hex();
    format!(
        "{content_hash}@{}:{}",
        crate::CONTRACT_VERSION,
        &config_hash[..16]
    )
}

/// The key an extension's declaration is stored under.
fn extension_key(spec_key: &str) -> String {
    format!("ext:{spec_key}")
}

/// The key a refused description is remembered under: the version and the
/// limits it was held to, so raising a limit gives it another chance.
fn failure_key(spec_key: &str, config: &RuntimeConfig) -> String {
    let limits = serde_json::to_string(&(&config.describe, &config.schema)).unwrap_or_default();
    let limits_hash = blake3::hash(limits.as_bytes()).to_hex();
    format!("{spec_key}:{}", &limits_hash[..16])
}

fn known_description(store: &DataStore, spec_key: &str) -> Option<Description> {
    if let Some(specs) = store.tool_specs(spec_key) {
        return Some(Description::Tools(specs));
    }
    store
        .extension_spec(&extension_key(spec_key))
        .map(Description::Extension)
}

/// Refuses a plugin whose manifest names it differently from its file: the
/// name is what state and grants belong to, so only the host owner (who
/// names the files) assigns it, and a clash can never be settled by which
/// file sorts first.
fn check_identity(wasm_path: &Path, name: &str) -> Result<(), LoadError> {
    let stem = wasm_path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == name {
        return Ok(());
    }
    Err(LoadError::NameMismatch {
        path: wasm_path.to_owned(),
        name: name.to_owned(),
        stem,
    })
}

/// Whether a load error is a verdict on the plugin's own description (a
/// pure function of its bytes, configuration and the limits), worth
/// remembering so the next start does not pay for it again.
fn is_description_verdict(err: &LoadError) -> bool {
    matches!(
        err,
        LoadError::Describe { .. } | LoadError::BadSpec { .. } | LoadError::DescribeLimit { .. }
    )
}

/// The configuration a plugin sees through its `config` import.
fn plugin_config(config: &RuntimeConfig, manifest: &Manifest) -> Arc<str> {
    let settings = config.extensions.get(&manifest.plugin.name);
    let table = settings
        .and_then(|s| s.config.as_ref())
        .unwrap_or(&manifest.config);
    Arc::from(serde_json::Value::Object(table.clone()).to_string())
}

/// Gets the compiled component (cache or compiler), checks its world, and
/// pre-instantiates it. Without `bytes`, a cached artifact is used if there
/// is one, else the file is read again and must still match `content_hash`.
///
/// Which compiler: an optimized build in either cache level wins; else,
/// when tiering allows, the baseline build (cached, or compiled now, which
/// is fast) serves and the returned [`TierUp`] makes the optimized one.
async fn prepare_component(
    cx: &LoadContext<'_>,
    wasm_path: &Path,
    name: &str,
    bytes: Option<Vec<u8>>,
    content_hash: &str,
) -> Result<(Prepared, Option<TierUp>), LoadError> {
    let compile_error = |message: String| LoadError::Compile {
        path: wasm_path.to_owned(),
        message,
    };
    let optimized = Toolchain {
        linker: cx.linker.clone(),
        cache: cx.cache.clone(),
    };
    let tiering = cx.config.cache.tiering;
    let baseline = cx
        .baseline
        .cloned()
        .filter(|_| tiering != Tiering::Optimized);
    let path = wasm_path.to_owned();
    let observer = cx.observer.clone();
    let plugin_name = name.to_owned();
    let hash = content_hash.to_owned();
    let optimized_cache = optimized.cache.clone();
    let baseline_cache = baseline.as_ref().map(|b| b.cache.clone());
    let foreground = cx.gate.enter();
    let (compiled, tier) = tokio::task::spawn_blocking(move || {
        let chosen = match (&baseline_cache, tiering) {
            (Some(cache), Tiering::Baseline) => (cache, Tier::Baseline),
            (Some(cache), Tiering::Auto) => {
                if let Some(compiled) = optimized_cache.get_cached(&hash) {
                    return Ok((compiled, Tier::Optimized));
                }
                (cache, Tier::Baseline)
            }
            _ => (&optimized_cache, Tier::Optimized),
        };
        let (cache, tier) = chosen;
        let on_compile = || {
            if let Some(observer) = &observer {
                observer.started(&plugin_name);
            }
        };
        let compile = |cache: &ComponentCache| match &bytes {
            Some(bytes) => cache
                .get_or_compile(&path, bytes, &hash, &on_compile)
                .map_err(|err| err.to_string()),
            None => compile_file(cache, &path, &hash, &on_compile),
        };
        let (result, tier) = match (compile(cache), tier) {
            // Winch does not take every module Cranelift does (some SIMD,
            // for one): such a plugin goes straight to the optimized tier.
            (Err(message), Tier::Baseline) if tiering == Tiering::Auto => {
                tracing::debug!(plugin = %plugin_name, %message, "baseline compiler refused it; compiling optimized");
                (compile(&optimized_cache), Tier::Optimized)
            }
            other => other,
        };
        if let (Some(observer), Ok(compiled)) = (&observer, &result)
            && compiled.level == CacheLevel::Compiled
        {
            observer.finished(&plugin_name, compiled.compile_time);
        }
        result.map(|compiled| (compiled, tier))
    })
    .await
    .map_err(|err| compile_error(format!("compiler thread failed: {err}")))?
    .map_err(compile_error)?;
    drop(foreground);
    tracing::debug!(plugin = %name, level = ?compiled.level, tier = tier.label(), ms = compiled.compile_time.as_secs_f64() * 1e3, "component ready");

    let kind = contract::check_world(compiled.component.engine(), &compiled.component, wasm_path)?;
    let linker = match (&baseline, tier) {
        (Some(baseline), Tier::Baseline) => &baseline.linker,
        _ => &optimized.linker,
    };
    let prepared = bind(linker, compiled, kind, name, tier)?;
    let tier_up = (tier == Tier::Baseline && tiering == Tiering::Auto).then(|| TierUp {
        optimized,
        path: wasm_path.to_owned(),
        name: name.to_owned(),
        content_hash: content_hash.to_owned(),
        kind,
        permits: cx.tier_ups.clone(),
        gate: cx.gate.clone(),
        on_tier_up: cx.on_tier_up.clone(),
    });
    Ok((prepared, tier_up))
}

/// Pre-instantiates a compiled component with the linker of its engine.
fn bind(
    linker: &Linker<CallState>,
    compiled: crate::cache::Compiled,
    kind: PluginKind,
    name: &str,
    tier: Tier,
) -> Result<Prepared, LoadError> {
    let link_error = |err: wasmtime::Error| LoadError::Link {
        plugin: name.to_owned(),
        message: format!("{err:#}"),
    };
    let instance_pre = linker
        .instantiate_pre(&compiled.component)
        .map_err(link_error)?;
    let bound = match kind {
        PluginKind::Tool => Bound::Tool(ToolPluginPre::new(instance_pre).map_err(link_error)?),
        PluginKind::Extension => {
            Bound::Extension(ExtensionPluginPre::new(instance_pre).map_err(link_error)?)
        }
    };
    Ok(Prepared {
        bound,
        level: compiled.level,
        compile_time: compiled.compile_time,
        tier,
        replicas: (1..crate::config::MAX_ENGINE_SHARDS)
            .map(|_| std::sync::OnceLock::new())
            .collect(),
    })
}

/// A copy of `primary`'s compiled code bound to `linker`'s engine, which
/// has the same configuration; `None` when it is too big or cannot be made
/// (the primary then serves that engine too).
fn replicate(
    primary: &ToolPluginPre<CallState>,
    linker: &Linker<CallState>,
) -> Option<ToolPluginPre<CallState>> {
    let component = primary.instance_pre().component();
    let image = component.image_range();
    if (image.end as usize).saturating_sub(image.start as usize) > MAX_REPLICATED_CODE_BYTES {
        return None;
    }
    let copied = component.serialize().and_then(|bytes| {
        // SAFETY: the bytes were serialized just now, in this process, by
        // an engine with the same configuration as the one they are loaded
        // into; wasmtime checks that compatibility again.
        unsafe { wasmtime::component::Component::deserialize(linker.engine(), &bytes) }
    });
    let result = copied
        .and_then(|copy| linker.instantiate_pre(&copy))
        .and_then(ToolPluginPre::new);
    match result {
        Ok(pre) => Some(pre),
        Err(err) => {
            tracing::debug!("a tool build stays on one engine: {err:#}");
            None
        }
    }
}

/// Whether the file was last written (or had its inode changed) long
/// enough ago that a later write cannot share its timestamps.
fn settled(meta: &std::fs::Metadata) -> bool {
    const SETTLE: Duration = Duration::from_secs(2);
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        std::time::UNIX_EPOCH
            + Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            )
    };
    #[cfg(not(unix))]
    let changed = std::time::UNIX_EPOCH;
    let newest = meta
        .modified()
        .map_or(changed, |modified| modified.max(changed));
    std::time::SystemTime::now()
        .duration_since(newest)
        .is_ok_and(|age| age >= SETTLE)
}

/// The first bytes of a file: enough for [`contract::check_header`].
fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut header = Vec::with_capacity(8);
    std::fs::File::open(path)?
        .take(8)
        .read_to_end(&mut header)?;
    Ok(header)
}

/// Loads the plugin at `wasm_path`: manifest, header, grants, then the
/// component (now or on first call, see [`LoadMode`]) and its tool specs.
pub(crate) async fn load(
    cx: &LoadContext<'_>,
    wasm_path: &Path,
    mode: LoadMode,
) -> Result<Arc<LoadedPlugin>, LoadError> {
    let started = Instant::now();
    let manifest_path = manifest::manifest_path_for(wasm_path);
    if !manifest_path.is_file() {
        return Err(LoadError::MissingManifest {
            wasm: wasm_path.to_owned(),
            manifest: manifest_path,
        });
    }
    let manifest = Manifest::load(&manifest_path)?;
    let name = manifest.plugin.name.clone();
    check_identity(wasm_path, &name)?;
    let io_error = |source| LoadError::Io {
        path: wasm_path.to_owned(),
        source,
    };
    // The content hash names everything cached about a version. Hashing
    // means reading the whole file, so it is remembered with the file's
    // identity (device, inode, size, mtime, ctime): while that is the same,
    // so are the bytes (ctime cannot be set back), and a start-up that
    // lists cached plugins reads only their headers.
    let meta = std::fs::metadata(wasm_path).map_err(io_error)?;
    let identity = crate::cache::identity_of(&meta);
    let (bytes, content_hash, size) = match cx.store.plugin_file_hash(wasm_path, &identity) {
        Some(content_hash) => {
            contract::check_header(wasm_path, &read_header(wasm_path).map_err(io_error)?)?;
            (None, content_hash, meta.len())
        }
        None => {
            let bytes = std::fs::read(wasm_path).map_err(io_error)?;
            contract::check_header(wasm_path, &bytes)?;
            let content_hash = crate::cache::content_hash(&bytes);
            // File times tick in coarse steps (a few ms): a file written
            // just now could be written again within the same tick with
            // the same size, and look unchanged. Only a settled file's
            // identity is trusted (git's "racily clean" rule).
            if settled(&meta)
                && let Err(err) = cx
                    .store
                    .put_plugin_file_hash(wasm_path, &identity, &content_hash)
            {
                tracing::debug!("cannot remember the hash of {}: {err}", wasm_path.display());
            }
            let size = bytes.len() as u64;
            (Some(bytes), content_hash, size)
        }
    };
    let capabilities =
        capabilities::grant_in(&manifest, &name, cx.config).map_err(|error| LoadError::Grant {
            plugin: name.clone(),
            error: Box::new(error),
        })?;

    // Descriptions are a pure function of the component and its
    // configuration, so a version described once is never instantiated just
    // to be listed again, and one refused once is not described again.
    let config = plugin_config(cx.config, &manifest);
    let key = spec_key(&content_hash, &config);
    let failed_key = failure_key(&key, cx.config);
    if let Some(message) = cx.store.describe_failure(&failed_key) {
        return Err(LoadError::Refused { message });
    }
    let known = known_description(cx.store, &key);
    let prepared = tokio::sync::OnceCell::new();
    let from_store = known.is_some() && mode == LoadMode::Lazy;
    let described = match known {
        Some(description) if mode == LoadMode::Lazy => Ok(description),
        known => {
            let (ready, tier_up) =
                prepare_component(cx, wasm_path, &name, bytes, &content_hash).await?;
            let description = match known {
                Some(description)
                    if matches!(
                        (&description, ready.kind()),
                        (Description::Tools(_), PluginKind::Tool)
                            | (Description::Extension(_), PluginKind::Extension)
                    ) =>
                {
                    Ok(description)
                }
                _ => {
                    let site =
                        CallSite::new(&name, "describe", cx.store.plugin_kv(&name), config.clone());
                    let host = HostContext::new(Arc::new(site), None);
                    describe(cx, &ready, &capabilities, host).await
                }
            };
            let _ = prepared.set(start_slot(ready, tier_up));
            description
        }
    };
    let checked = described.and_then(|description| match description {
        Description::Tools(specs) => {
            let tools = validate_specs(&name, specs, &cx.config.describe, &cx.config.schema)?;
            Ok((PluginKind::Tool, tools, None))
        }
        Description::Extension(spec) => {
            check_extension_spec(&name, &spec, &cx.config.describe)?;
            Ok((PluginKind::Extension, Vec::new(), Some(spec)))
        }
    });
    let (kind, tools, extension) = match checked {
        Ok(checked) => checked,
        Err(err) => {
            if is_description_verdict(&err)
                && let Err(store_err) = cx.store.put_describe_failure(&failed_key, &err.to_string())
            {
                tracing::warn!(plugin = %name, "cannot remember the refused description: {store_err}");
            }
            return Err(err);
        }
    };
    // Only a description that passed every check is stored.
    if !from_store {
        let stored = match &extension {
            None => {
                let specs: Vec<ToolSpec> = tools.iter().map(|tool| tool.spec.clone()).collect();
                cx.store.put_tool_specs(&key, &specs)
            }
            Some(spec) => cx.store.put_extension_spec(&extension_key(&key), spec),
        };
        if let Err(err) = stored {
            tracing::warn!(plugin = %name, "cannot persist the plugin's description: {err}");
        }
    }
    Ok(Arc::new(LoadedPlugin {
        manifest,
        wasm_path: wasm_path.to_owned(),
        manifest_path,
        capabilities,
        content_hash,
        size,
        load_time: started.elapsed(),
        kind,
        tools,
        extension,
        config,
        prepared,
    }))
}

/// Asks a freshly prepared plugin what it provides: its tools, or what an
/// extension subscribes to.
async fn describe(
    cx: &LoadContext<'_>,
    ready: &Prepared,
    capabilities: &Capabilities,
    host: HostContext,
) -> Result<Description, LoadError> {
    let name = host.plugin().to_owned();
    let describe_error = |message: String| LoadError::Describe {
        plugin: name.clone(),
        message,
    };
    let mut caps = capabilities.clone();
    caps.limits.timeout = caps.limits.timeout.min(DESCRIBE_TIMEOUT);
    let _slot = cx
        .instance_slots
        .acquire(0, &cx.config.sandbox, caps.limits.timeout)
        .await
        .map_err(|kind| describe_error(kind.to_string()))?;
    let (mut store, probe) = sandbox::new_store(ready.engine(), &caps, host, None)
        .map_err(|err| describe_error(err.to_string()))?;
    let run = async {
        match &ready.bound {
            Bound::Tool(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                let specs = instance
                    .agent_plugin_tool()
                    .call_describe(&mut store)
                    .await?;
                Ok::<_, wasmtime::Error>(Err(specs))
            }
            Bound::Extension(pre) => {
                let instance = pre.instantiate_async(&mut store).await?;
                let info = instance
                    .agent_plugin_extension()
                    .call_describe_extension(&mut store)
                    .await?;
                Ok(Ok(info))
            }
        }
    };
    let specs = match tokio::time::timeout(caps.limits.timeout, run).await {
        Ok(Ok(Ok(info))) => {
            return Ok(Description::Extension(bindings::extension_spec_from_wit(
                info,
            )));
        }
        Ok(Ok(Err(specs))) => specs,
        Ok(Err(err)) => {
            let (stderr, _) = probe.output.take().stderr;
            // A component whose initial memory is over its cap fails to
            // instantiate with wasmtime's words in wasm pages; say it in
            // MiB with the key that raises it.
            let why = if probe.memory_limit_hit() {
                crate::invoke::memory_limit(&caps.limits, &probe).to_string()
            } else {
                format!("{err:#}")
            };
            let said = crate::guest_error::guest_error(&stderr)
                .map(|said| format!(" ({said})"))
                .unwrap_or_default();
            return Err(describe_error(format!("{why}{said}")));
        }
        Err(_) => {
            return Err(describe_error(format!(
                "no answer within {:?}",
                caps.limits.timeout
            )));
        }
    };
    // Bounded before anything is parsed: the answer is untrusted input.
    let limits = &cx.config.describe;
    let over = |what: String, size: usize, limit: usize, key: &'static str| {
        Err(LoadError::DescribeLimit {
            plugin: name.clone(),
            what,
            size,
            limit,
            key,
        })
    };
    if specs.len() > limits.max_tools {
        return over(
            "the number of tools".to_owned(),
            specs.len(),
            limits.max_tools,
            "max_tools",
        );
    }
    let total: usize = specs.iter().map(bindings::spec_size).sum();
    if total > limits.max_total_bytes {
        return over(
            "the whole description (bytes)".to_owned(),
            total,
            limits.max_total_bytes,
            "max_total_bytes",
        );
    }
    specs
        .into_iter()
        .map(|spec| {
            bindings::spec_from_wit(spec).map_err(|bad| LoadError::BadSpec {
                plugin: name.clone(),
                tool: bad.tool,
                reason: bad.reason,
            })
        })
        .collect::<Result<_, _>>()
        .map(Description::Tools)
}

/// Checks what an extension declared against the limits.
fn check_extension_spec(
    plugin: &str,
    spec: &ExtensionSpec,
    limits: &DescribeLimits,
) -> Result<(), LoadError> {
    if spec.subscriptions.len() > limits.max_subscriptions {
        return Err(LoadError::DescribeLimit {
            plugin: plugin.to_owned(),
            what: "the number of subscriptions".to_owned(),
            size: spec.subscriptions.len(),
            limit: limits.max_subscriptions,
            key: "max_subscriptions",
        });
    }
    Ok(())
}

fn validate_specs(
    plugin: &str,
    specs: Vec<ToolSpec>,
    limits: &DescribeLimits,
    schema: &crate::config::SchemaConfig,
) -> Result<Vec<LoadedTool>, LoadError> {
    let bad = |tool: &str, reason: String| LoadError::BadSpec {
        plugin: plugin.to_owned(),
        tool: shown_name(tool),
        reason,
    };
    let over = |tool: &str, what: &str, size: usize, limit: usize, key: &'static str| {
        LoadError::DescribeLimit {
            plugin: plugin.to_owned(),
            what: format!("{what} of tool '{}'", shown_name(tool)),
            size,
            limit,
            key,
        }
    };
    if specs.is_empty() {
        return Err(bad("(none)", "the plugin describes no tools".to_owned()));
    }
    if specs.len() > limits.max_tools {
        return Err(LoadError::DescribeLimit {
            plugin: plugin.to_owned(),
            what: "the number of tools".to_owned(),
            size: specs.len(),
            limit: limits.max_tools,
            key: "max_tools",
        });
    }
    let mut names = std::collections::HashSet::with_capacity(specs.len());
    let mut tools: Vec<LoadedTool> = Vec::with_capacity(specs.len());
    for spec in specs {
        if !is_valid_tool_name(&spec.name) {
            return Err(bad(
                &spec.name,
                "a tool name must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'".to_owned(),
            ));
        }
        if !names.insert(spec.name.clone()) {
            return Err(bad(
                &spec.name,
                "the plugin declares this tool twice".to_owned(),
            ));
        }
        if spec.description.len() > limits.max_description_bytes {
            return Err(over(
                &spec.name,
                "the description (bytes)",
                spec.description.len(),
                limits.max_description_bytes,
                "max_description_bytes",
            ));
        }
        if let Some(title) = &spec.title
            && title.len() > limits.max_title_bytes
        {
            return Err(over(
                &spec.name,
                "the title (bytes)",
                title.len(),
                limits.max_title_bytes,
                "max_title_bytes",
            ));
        }
        if spec.description.trim().is_empty() {
            return Err(bad(
                &spec.name,
                "the description is empty; the model needs it to choose the tool".to_owned(),
            ));
        }
        let validator = ArgsValidator::compile(&spec, schema)
            .map_err(|reason| bad(&spec.name, reason.to_string()))?;
        tools.push(LoadedTool { spec, validator });
    }
    Ok(tools)
}
