//! The process's wasmtime engines: the optimized ones (Cranelift; one per call engine shard) and the baseline one (Winch, for tiered compilation), their configuration, the pooling allocator, and the epoch ticker.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::SandboxConfig;
use crate::error::EngineError;

/// How often the epoch advances. Each tick lets a running guest yield to the
/// executor and re-checks its deadline, so this bounds how late a deadline
/// or a cancellation can be noticed.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Deepest guest stack allowed; a runaway recursion traps instead of hurting
/// the host thread.
const MAX_WASM_STACK: usize = 1 << 20;

/// Builds the engine for the sandbox settings. Falls back to on-demand
/// allocation if the pooling allocator cannot reserve its address space (for
/// example under a tight `ulimit -v`).
pub(crate) fn build_engine(sandbox: &SandboxConfig, tier: Tier) -> Result<Engine, EngineError> {
    let pooled = engine_config(sandbox, true, tier);
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(err) => {
            tracing::warn!("pooling allocator unavailable ({err}); using on-demand allocation");
            Engine::new(&engine_config(sandbox, false, tier)).map_err(|err| EngineError::Config {
                message: format!("{err:#}"),
            })
        }
    }
}

/// Which compiler made a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Winch: compiles many times faster, runs slower. A plugin starts on
    /// it and is swapped to the optimized tier when that is ready.
    Baseline,
    /// Cranelift: the code every plugin ends up running.
    Optimized,
}

impl Tier {
    /// Its name for displays.
    pub fn label(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Optimized => "optimized",
        }
    }
}

/// Whether the baseline tier can enforce this sandbox's limits: Winch
/// cannot meter fuel, so with fuel on every plugin compiles optimized.
pub(crate) fn baseline_supported(sandbox: &SandboxConfig) -> bool {
    !sandbox.fuel && cfg!(target_arch = "x86_64")
}

fn engine_config(sandbox: &SandboxConfig, pooling: bool, tier: Tier) -> Config {
    let mut config = Config::new();
    config.strategy(match tier {
        Tier::Baseline => wasmtime::Strategy::Winch,
        Tier::Optimized => wasmtime::Strategy::Cranelift,
    });
    if tier == Tier::Baseline {
        // Winch hands a component's trampolines (every import and export
        // lifted and lowered) to Cranelift, and they were most of a baseline
        // compile's time. The baseline tier is for answering soon, so
        // Cranelift compiles them unoptimized with its one-pass allocator;
        // the optimized tier compiles them again in full.
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        config.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
    }
    // Both tiers compile a component's functions on every core: one big
    // plugin (an 18 MB Python interpreter) is the case a first call waits
    // on, and several small ones still finish sooner (docs/performance.md).
    config.parallel_compilation(true);
    config.epoch_interruption(true);
    config.consume_fuel(sandbox.fuel);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.async_stack_size(MAX_WASM_STACK + (512 << 10));
    if pooling {
        let instances = sandbox.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(instances);
        // A Rust component has one main module plus a few small adapter
        // modules; size the core pools to match.
        pool.total_core_instances(instances * 8);
        pool.max_core_instances_per_component(32);
        pool.total_memories(instances * 2);
        pool.max_memories_per_component(4);
        pool.total_tables(instances * 8);
        pool.max_tables_per_component(16);
        pool.total_stacks(instances);
        pool.max_memory_size((sandbox.max_memory_mb as usize) << 20);
        // Reset a freed slot with memset rather than madvise: an madvise
        // on a multi-threaded process flushes the TLB of every core it runs
        // on (an inter-processor interrupt, dear in a VM), once per call.
        // The memory is zeroed either way; this only keeps the first pages
        // of each slot resident.
        // A small Rust guest touches about 1 MiB per call: the default
        // 2 MiB keeps every reset of such a guest off the kernel.
        pool.linear_memory_keep_resident((sandbox.pool_memory_keep_resident_kb as usize) << 10);
        pool.table_keep_resident((sandbox.pool_table_keep_resident_kb as usize) << 10);
        pool.decommit_batch_size(sandbox.pool_decommit_batch.max(1));
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// The engines whose epoch one background thread advances every
/// [`EPOCH_TICK`], for as long as any of them is alive. Engines made later
/// (a call engine's first use) are added to it.
#[derive(Clone)]
pub(crate) struct EpochTicker {
    engines: std::sync::Arc<std::sync::Mutex<Vec<wasmtime::EngineWeak>>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engines`.
    pub(crate) fn start(engines: &[&Engine]) -> Self {
        let ticker = Self {
            engines: std::sync::Arc::new(std::sync::Mutex::new(
                engines.iter().map(|engine| engine.weak()).collect(),
            )),
        };
        let list = ticker.engines.clone();
        let spawned = std::thread::Builder::new()
            .name("agent-host-epoch".into())
            .spawn(move || {
                loop {
                    let mut alive = false;
                    for weak in list.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                        if let Some(engine) = weak.upgrade() {
                            engine.increment_epoch();
                            alive = true;
                        }
                    }
                    if !alive {
                        return;
                    }
                    std::thread::sleep(EPOCH_TICK);
                }
            });
        if let Err(err) = spawned {
            tracing::error!(
                "cannot start the epoch ticker thread ({err}); deadlines will rely on timers only"
            );
        }
        ticker
    }

    /// Advances `engine`'s epoch from now on too.
    pub(crate) fn add(&self, engine: &Engine) {
        self.engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(engine.weak());
    }
}

/// Hands out `count` call engines to threads in turn: a thread is given
/// one on its first pick and keeps it, so threads calling at once do not
/// contend for one engine's instance pool.
pub(crate) struct ShardPicker {
    /// Tells this picker apart from the others of the process (an address
    /// could be reused by a later one).
    owner: u64,
    next: std::sync::atomic::AtomicUsize,
    count: usize,
}

/// A number no other caller of this function in the process gets: it
/// names an owner of per-thread state (a picker, a runtime), where an
/// address could be reused by a later one.
pub(crate) fn unique_owner_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl ShardPicker {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            owner: unique_owner_id(),
            next: std::sync::atomic::AtomicUsize::new(0),
            count: count.max(1),
        }
    }

    /// The engine (0..count) this thread calls through. A thread remembers
    /// the pickers it used last (a few: a benchmark's bare engines beside
    /// a runtime's), so switching between them keeps each one's choice.
    pub(crate) fn for_this_thread(&self) -> usize {
        const REMEMBERED: usize = 4;
        thread_local! {
            /// (picker, engine) this thread was given, most recent first.
            static GIVEN: std::cell::Cell<[(u64, usize); REMEMBERED]> =
                const { std::cell::Cell::new([(0, 0); REMEMBERED]) };
        }
        if self.count == 1 {
            return 0;
        }
        GIVEN.with(|given| {
            let mut known = given.get();
            if let Some(&(_, shard)) = known.iter().find(|(owner, _)| *owner == self.owner) {
                return shard;
            }
            let shard = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.count;
            known.rotate_right(1);
            known[0] = (self.owner, shard);
            given.set(known);
            shard
        })
    }
}

/// The engine of `tier` for these sandbox settings (its epoch ticker is
/// started by the caller, one for all engines: [`start_epoch_ticker`]).
pub(crate) fn tier_engine(sandbox: &SandboxConfig, tier: Tier) -> Result<Engine, EngineError> {
    match tier {
        Tier::Optimized => build_engine(sandbox, tier),
        // A plugin runs on the baseline tier only until its optimized
        // build is ready: on-demand allocation spares the process a second
        // pool's address-space reservation for that short while.
        Tier::Baseline => {
            Engine::new(&engine_config(sandbox, false, tier)).map_err(|err| EngineError::Config {
                message: format!("{err:#}"),
            })
        }
    }
}
