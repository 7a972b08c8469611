//! Per-call sandbox: a fresh Store with WASI limited to the granted capabilities, memory limits, fuel and a deadline.
//!
//! A Store lives for exactly one call. After a trap, a timeout or a
//! cancelled future the instance is poisoned, so it is never reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::capabilities::{Capabilities, NetworkPolicy};
use crate::host_api::HostContext;
use crate::manifest::Access;
use crate::output_capture::CapturedOutput;

/// Raised from the epoch callback when a call passes its wall-clock deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

/// Caps linear memory and table growth, and remembers that the cap was hit
/// so a resulting trap can be reported as a memory-limit failure.
#[derive(Debug)]
pub struct MemoryLimiter {
    memory_bytes: usize,
    hit: Arc<AtomicBool>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit.store(true, Ordering::Relaxed);
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
pub struct HttpPolicy {
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
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    limiter: MemoryLimiter,
    pub host: HostContext,
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
pub struct CallProbe {
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    pub memory_hit: Arc<AtomicBool>,
}

impl CallProbe {
    pub fn memory_limit_hit(&self) -> bool {
        self.memory_hit.load(Ordering::Relaxed)
    }
}

/// Builds the Store for one call of a plugin with these capabilities.
pub fn new_store(
    engine: &Engine,
    caps: &Capabilities,
    host: HostContext,
) -> Result<(Store<CallState>, CallProbe), String> {
    let limits = &caps.limits;
    let stdout = CapturedOutput::new(limits.log_capture_bytes);
    let stderr = CapturedOutput::new(limits.log_capture_bytes);

    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone()).stderr(stderr.clone());
    for (name, value) in &caps.env {
        wasi.env(name, value);
    }
    for dir in &caps.dirs {
        let perms = match dir.access {
            Access::Read => FsPerms::ReadOnly,
            Access::ReadWrite => FsPerms::ReadWrite,
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|err| {
                format!(
                    "cannot open granted directory {}: {err}",
                    dir.host.display()
                )
            })?;
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

    let memory_hit = Arc::new(AtomicBool::new(false));
    let state = CallState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        http_policy: HttpPolicy {
            network: caps.network.clone(),
        },
        limiter: MemoryLimiter {
            memory_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
            hit: memory_hit.clone(),
        },
        host,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    arm_budget(&mut store, limits)?;
    let probe = CallProbe {
        stdout,
        stderr,
        memory_hit,
    };
    Ok((store, probe))
}

/// Gives the next call on `store` a full budget: fuel refilled and a new
/// wall-clock deadline. Called for every call, including calls on a reused
/// instance.
pub fn arm_budget(
    store: &mut Store<CallState>,
    limits: &crate::capabilities::Limits,
) -> Result<(), String> {
    if let Some(fuel) = limits.fuel {
        store.set_fuel(fuel).map_err(|err| err.to_string())?;
    }
    let deadline = Instant::now() + limits.timeout;
    // Every tick the guest yields to the executor (so cancellation and the
    // outer timer get a chance to run) and the deadline is re-checked.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(())
}
