//! Per-call sandbox: a fresh Store with WASI limited to the granted capabilities, memory limits, fuel and a deadline; WASI contexts kept for a plugin's next calls.
//!
//! A Store lives for exactly one call. After a trap, a timeout or a
//! cancelled future the instance is poisoned, so it is never reused.
//!
//! Also the filesystem guards linked over WASI ([`add_fs_guards`]): preopens
//! come from the directories opened once at load, guests cannot create
//! symbolic links unless the host allows it, and one call holds at most
//! `sandbox.max_open_files` open files, within a process-wide budget that
//! keeps the host's own descriptors free ([`open_file_cap`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi::filesystem::{Descriptor, Dir, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs_types, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::capabilities::{Capabilities, NetworkPolicy};
use crate::config::SandboxConfig;
use crate::host_api::HostContext;
use crate::output_capture::CapturedStreams;

/// Raised from the epoch callback when a call passes its wall-clock deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub(crate) struct DeadlineExceeded;

/// Caps linear memory and table growth, and remembers the largest size it
/// refused so a resulting trap (or a failed instantiation: a memory whose
/// minimum is over the cap) can be reported as a memory-limit failure
/// that says how much the guest wanted.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    memory_bytes: usize,
    refused: Arc<AtomicUsize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused.fetch_max(desired, Ordering::Relaxed);
            // Refuse the grow: the guest sees -1 and decides (Rust guests abort).
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Lets outbound HTTP through only to granted hosts.
pub(crate) struct HttpPolicy {
    network: NetworkPolicy,
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        let uri = request.uri();
        let host = uri.host().unwrap_or("").to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        if !self.network.allows_host(&host, port) {
            tracing::warn!(%host, port, "plugin HTTP request denied: host not granted");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io)
                    as Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
            ))
        })
    }
}

/// Everything a Store holds for one call.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    limiter: MemoryLimiter,
    /// The granted directories (shared with the plugin's load-time
    /// handles) and their guest paths, handed out by `get-directories`.
    preopens: Vec<(Dir, String)>,
    open_files: OpenFiles,
    guest_symlinks: bool,
    /// When the running call's time is up (set by [`arm_budget`], checked
    /// at every epoch tick). Kept here rather than in the tick callback, so
    /// the callback captures nothing and arming a call allocates nothing.
    deadline: Option<Instant>,
    pub host: HostContext,
}

impl CallState {
    /// When the running call's time is up, once armed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// The files and directories a call opened, to cap how many it holds.
///
/// Tracked through the `Arc` each descriptor's OS handle lives in: streams
/// made from a descriptor share it, so a file counts as open until its last
/// descriptor and stream are gone, exactly as long as its OS descriptor.
struct OpenFiles {
    limit: usize,
    held: Vec<Weak<std::fs::File>>,
}

impl OpenFiles {
    /// Forgets the closed ones; whether one more may be opened.
    fn has_room(&mut self) -> bool {
        self.held.retain(|file| file.strong_count() > 0);
        self.held.len() < self.limit
    }

    fn track(&mut self, descriptor: &Descriptor) {
        let file = match descriptor {
            Descriptor::File(file) => &file.file,
            Descriptor::Dir(dir) => &dir.dir,
        };
        self.held.push(Arc::downgrade(file));
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// What the caller keeps to interpret how a call ended.
#[derive(Debug, Clone)]
pub(crate) struct CallProbe {
    /// What the guest printed.
    pub output: CapturedStreams,
    /// The largest memory size the limiter refused, in bytes (0: none).
    pub memory_refused: Arc<AtomicUsize>,
}

impl CallProbe {
    pub(crate) fn memory_limit_hit(&self) -> bool {
        self.refused_memory_bytes() > 0
    }

    pub(crate) fn refused_memory_bytes(&self) -> usize {
        self.memory_refused.load(Ordering::Relaxed)
    }
}

/// A call's WASI context and the handles that read what it captured.
struct CallWasi {
    wasi: WasiCtx,
    probe: CallProbe,
}

/// Contexts kept by one [`WasiPool`] at most: about the calls one engine
/// runs at once.
const WASI_POOL_KEEP: usize = 8;

/// WASI contexts of finished calls of one plugin version, for its next
/// calls on the same engine: building one (random generators seeded,
/// capture streams made and boxed) is a good share of what a call costs
/// the host. A context keeps nothing of a call: resources live in the
/// call's own table, its capture streams are emptied and its memory probe
/// reset before it is kept. What carries over is its random generators'
/// state and its insecure seed, which stay the plugin's own, and its grants,
/// which are the plugin version's anyway.
#[derive(Default)]
pub(crate) struct WasiPool {
    kept: std::sync::Mutex<Vec<CallWasi>>,
}

impl WasiPool {
    fn take(&self) -> Option<CallWasi> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps the WASI context of a call that has ended (its Store is
    /// consumed), if the pool has room.
    pub(crate) fn keep(&self, store: Store<CallState>, probe: CallProbe) {
        let CallState { wasi, .. } = store.into_data();
        probe.output.clear();
        probe.memory_refused.store(0, Ordering::Relaxed);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < WASI_POOL_KEEP {
            kept.push(CallWasi { wasi, probe });
        }
    }
}

/// A WASI context with only what `caps` grants: no files (the preopens
/// are shadowed, see [`add_fs_guards`]), the granted environment, sockets
/// only to granted hosts, stdout and stderr captured.
fn build_wasi(caps: &Capabilities) -> CallWasi {
    let output = CapturedStreams::new(caps.limits.log_capture_bytes);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(output.stdout()).stderr(output.stderr());
    for (name, value) in &caps.env {
        wasi.env(name, value);
    }
    if !caps.network.is_empty() {
        let policy = caps.network.clone();
        wasi.allow_tcp(true);
        wasi.socket_addr_check(move |addr, usage| {
            let allowed = match usage {
                SocketAddrUse::TcpConnect => policy.allows_addr(addr.ip(), addr.port()),
                // A connect first binds implicitly to an ephemeral local port;
                // that bind is allowed, binding a chosen port is not.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                // Listening, accepting and UDP are never granted.
                _ => false,
            };
            if !allowed {
                tracing::warn!(%addr, ?usage, "plugin socket use denied: not granted");
            }
            Box::pin(async move { allowed })
        });
    }
    CallWasi {
        wasi: wasi.build(),
        probe: CallProbe {
            output,
            memory_refused: Arc::new(AtomicUsize::new(0)),
        },
    }
}

/// Builds the Store for one call of a plugin with these capabilities,
/// with a WASI context from `pool` when it has one (it must hold only
/// contexts built for the same capabilities).
pub(crate) fn new_store(
    engine: &Engine,
    caps: &Capabilities,
    host: HostContext,
    pool: Option<&WasiPool>,
) -> Result<(Store<CallState>, CallProbe), wasmtime::Error> {
    let limits = &caps.limits;
    let CallWasi { wasi, probe } = pool
        .and_then(WasiPool::take)
        .unwrap_or_else(|| build_wasi(caps));
    // No `preopened_dir`: that would open the host path again for every
    // call. The shadowed `get-directories` hands out the load-time handles.
    let preopens = caps
        .dirs
        .iter()
        .map(|dir| (dir.handle.preopen(), dir.guest.clone()))
        .collect();
    let state = CallState {
        wasi,
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        http_policy: HttpPolicy {
            network: caps.network.clone(),
        },
        limiter: MemoryLimiter {
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            refused: probe.memory_refused.clone(),
        },
        preopens,
        open_files: OpenFiles {
            limit: limits.max_open_files,
            held: Vec::new(),
        },
        guest_symlinks: caps.guest_symlinks,
        deadline: None,
        host,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    arm_budget(&mut store, limits)?;
    Ok((store, probe))
}

/// Gives the next call on `store` a full budget: fuel refilled and a new
/// wall-clock deadline. Called for every call, including calls on a reused
/// instance.
pub(crate) fn arm_budget(
    store: &mut Store<CallState>,
    limits: &crate::capabilities::Limits,
) -> Result<(), wasmtime::Error> {
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel)?;
    }
    store.data_mut().deadline = Some(Instant::now() + limits.timeout);
    // Every tick the guest yields to the executor (so cancellation and the
    // outer timer get a chance to run) and the deadline is re-checked.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| match store.data().deadline {
        Some(deadline) if Instant::now() >= deadline => Err(wasmtime::Error::new(DeadlineExceeded)),
        _ => Ok(UpdateDeadline::Yield(1)),
    });
    Ok(())
}

/// The `wasi:filesystem` version wasmtime-wasi 48 links; guests importing
/// any 0.2.x are served by it, and so by the guards below.
const WASI_FS: &str = "0.2.12";

/// Links the filesystem guards over WASI's own functions (call it after
/// WASI is linked):
/// - `preopens.get-directories` hands out the directories opened once at
///   load instead of re-opening host paths per call;
/// - `descriptor.open-at` fails with `quota` once the call holds
///   `max_open_files` open files (the guest sees an error, nothing traps);
/// - `descriptor.symlink-at` fails with `not-permitted` unless
///   `sandbox.allow_guest_symlinks` is set.
///
/// Everything else, including path resolution inside a preopen (which
/// never leaves it, links or not), stays wasmtime-wasi's.
pub(crate) fn add_fs_guards(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut preopens = linker.instance(&format!("wasi:filesystem/preopens@{WASI_FS}"))?;
    preopens.func_wrap(
        "get-directories",
        |mut store: StoreContextMut<'_, CallState>, (): ()| {
            let state = store.data_mut();
            let mut result = Vec::with_capacity(state.preopens.len());
            for (dir, guest) in state.preopens.clone() {
                result.push((state.table.push(Descriptor::Dir(dir))?, guest));
            }
            Ok((result,))
        },
    )?;
    let mut types = linker.instance(&format!("wasi:filesystem/types@{WASI_FS}"))?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, CallState>,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.open_files.has_room() {
                    tracing::debug!(
                        limit = state.open_files.limit,
                        "plugin open refused: sandbox.max_open_files reached"
                    );
                    return Ok((Err(ErrorCode::Quota),));
                }
                let mut view = state.filesystem();
                let opened =
                    HostDescriptor::open_at(&mut view, fd, path_flags, path, open_flags, flags)
                        .await;
                match opened {
                    Ok(new) => {
                        let descriptor = state.table.get(&new)?;
                        state.open_files.track(descriptor);
                        Ok((Ok(new),))
                    }
                    Err(err) => Ok((Err(fs_types::Host::convert_error_code(&mut view, err)?),)),
                }
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, CallState>,
         (fd, old_path, new_path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.guest_symlinks {
                    tracing::debug!("plugin symlink refused: sandbox.allow_guest_symlinks is off");
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let mut view = state.filesystem();
                match HostDescriptor::symlink_at(&mut view, fd, old_path, new_path).await {
                    Ok(()) => Ok((Ok(()),)),
                    Err(err) => Ok((Err(fs_types::Host::convert_error_code(&mut view, err)?),)),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Descriptors the host keeps for itself whatever plugins do: the store,
/// sockets, plugin files, watchers, logs. A quarter of the limit, at least
/// this many.
const HOST_RESERVED_FDS: u64 = 256;

/// The soft descriptor limit, raised once per process toward the hard limit.
static FD_LIMIT: OnceLock<u64> = OnceLock::new();

/// Raises the process's soft `RLIMIT_NOFILE` to its hard limit (at most
/// 2^20) once, and returns the soft limit now in force. Called when a
/// runtime starts; cheap after the first time.
pub(crate) fn raise_fd_limit() -> u64 {
    *FD_LIMIT.get_or_init(|| {
        use rustix::process::{Resource as Limit, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Limit::Nofile);
        let wanted = limit.maximum.unwrap_or(u64::MAX).min(1 << 20);
        let current = limit.current.unwrap_or(u64::MAX);
        if current >= wanted {
            return current;
        }
        match setrlimit(
            Limit::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => wanted,
            Err(err) => {
                tracing::debug!("cannot raise RLIMIT_NOFILE to {wanted}: {err}");
                current
            }
        }
    })
}

/// How many files one call may hold open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenFileCap {
    pub per_call: usize,
    /// Why `per_call` is below `sandbox.max_open_files`, if it is.
    pub capped: Option<String>,
}

/// `sandbox.max_open_files`, lowered if needed so that every instance the
/// pool allows (`sandbox.max_instances`) holding its full share still
/// leaves the host its reserved descriptors: plugins together can never
/// run the host out.
pub(crate) fn open_file_cap(sandbox: &SandboxConfig) -> OpenFileCap {
    let limit = raise_fd_limit();
    let reserved = (limit / 4).max(HOST_RESERVED_FDS);
    let for_plugins = limit.saturating_sub(reserved);
    let instances = u64::from(sandbox.max_instances.max(1));
    let share = usize::try_from(for_plugins / instances).unwrap_or(usize::MAX);
    if share >= sandbox.max_open_files {
        return OpenFileCap {
            per_call: sandbox.max_open_files,
            capped: None,
        };
    }
    OpenFileCap {
        per_call: share,
        capped: Some(format!(
            "sandbox.max_open_files ({}) is lowered to {share} per call: {instances} instances \
             (sandbox.max_instances) may run at once and this process may open {limit} \
             descriptors (RLIMIT_NOFILE), {reserved} of them kept for the host; raise the hard \
             limit (ulimit -Hn) or lower sandbox.max_instances",
            sandbox.max_open_files
        )),
    }
}
