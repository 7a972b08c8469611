//! Tool calls: looking a tool up (through the calling engine's own routes), its options and progress, call numbers, and running the call in a fresh instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Runtime;
use crate::error::CallError;
use crate::host_api::{CallSite, ProgressSink};
use crate::invoke::{self, Invocation};
use crate::loader::{LoadedPlugin, Prepared};
use crate::sandbox::WasiPool;
use crate::schema::ArgsValidator;
use crate::spec::{ToolOutput, ToolSpec};

/// Options for one call.
#[derive(Default, Clone)]
pub struct CallOptions {
    /// Identifier passed to the plugin; generated when absent.
    pub call_id: Option<String>,
    /// The session the call belongs to: gives the plugin its per-session state.
    pub session_id: Option<String>,
    /// Receives the plugin's progress updates.
    pub progress: Option<ProgressSink>,
    /// Cancelling the token stops the call at once.
    pub cancel: Option<CancellationToken>,
}

/// The argument checker of `plugin`'s tool `name`.
fn validator_of<'a>(plugin: &'a LoadedPlugin, name: &str) -> Result<&'a ArgsValidator, CallError> {
    plugin
        .tool(name)
        .map(|tool| &tool.validator)
        .ok_or_else(|| CallError::Host {
            tool: name.to_owned(),
            message: "registry and plugin disagree about this tool".to_owned(),
        })
}

/// Checks a call's arguments against the tool's schema: off the async
/// threads and under the tool's deadline (a schema is the plugin's, so
/// checking against it is the plugin's time).
async fn check_args(
    plugin: &LoadedPlugin,
    validator: &ArgsValidator,
    name: &str,
    args: &serde_json::Value,
) -> Result<(), CallError> {
    validator
        .check_args_within(args, plugin.capabilities.limits.timeout)
        .await
        .map_err(|err| err.for_arguments(plugin.name(), name))
}

/// What serves a tool: its plugin version, that version's build, and the
/// state and configuration handles a call is given. Kept per call engine
/// (one of each per engine), so a call takes no reference and no lock that
/// threads on other engines also take.
pub(crate) struct Route {
    plugin: Arc<LoadedPlugin>,
    /// The tool's schemas (shared, not copied): a call checks its arguments
    /// and its structured result without searching the plugin's tools.
    validator: ArgsValidator,
    prepared: Arc<Prepared>,
    /// What the call's host imports serve (its state and configuration
    /// handles among them): one per engine, for the same reason.
    site: Arc<CallSite>,
    /// WASI contexts of finished calls of this plugin version on this
    /// engine (shared by the routes of its tools), for the next ones.
    wasi_pool: Arc<WasiPool>,
}

/// Every call engine's routes, and the generation they were built in:
/// every registry change and tier-up moves it ([`RouteTable::invalidate`]),
/// and a route of an older generation is never used.
pub(crate) struct RouteTable {
    generation: AtomicU64,
    engines: Box<[Mutex<Routes>]>,
}

/// One call engine's routes, of one generation. Aligned to cache lines
/// of its own (its lock with it): every call locks its engine's routes, and
/// two engines' side by side would bounce one line between the cores
/// calling through them.
#[derive(Default)]
#[repr(align(128))]
struct Routes {
    generation: u64,
    by_tool: HashMap<String, Arc<Route>>,
}

impl Routes {
    /// Forgets the routes of generations before `generation`.
    fn advance_to(&mut self, generation: u64) {
        if self.generation < generation {
            self.by_tool.clear();
            self.generation = generation;
        }
    }
}

impl RouteTable {
    pub(crate) fn new(engines: usize) -> Self {
        Self {
            generation: AtomicU64::new(1),
            engines: (0..engines).map(|_| Mutex::default()).collect(),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Moves the generation and forgets every engine's routes at once, so
    /// no engine keeps an old version, its build or its grants alive until
    /// its next call.
    pub(crate) fn invalidate(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        for routes in &self.engines {
            lock(routes).advance_to(generation);
        }
    }

    /// Engine `shard`'s routes, if they are of `generation`.
    fn current(&self, shard: usize, generation: u64) -> Option<MutexGuard<'_, Routes>> {
        let routes = lock(self.engines.get(shard)?);
        (routes.generation == generation).then_some(routes)
    }

    /// The route of `name` engine `shard` kept, if it is still current.
    fn get(&self, shard: usize, generation: u64, name: &str) -> Option<Arc<Route>> {
        self.current(shard, generation)?.by_tool.get(name).cloned()
    }

    /// The WASI contexts kept for `plugin`'s calls on engine `shard`: those
    /// of a route of another of its tools, if there is one.
    fn wasi_pool_of(
        &self,
        shard: usize,
        generation: u64,
        plugin: &Arc<LoadedPlugin>,
    ) -> Arc<WasiPool> {
        self.current(shard, generation)
            .and_then(|routes| {
                routes
                    .by_tool
                    .values()
                    .find(|route| Arc::ptr_eq(&route.plugin, plugin))
                    .map(|route| route.wasi_pool.clone())
            })
            .unwrap_or_default()
    }

    /// Keeps the route of `name` for engine `shard`'s next calls, as of
    /// `generation` (read before the route was looked up).
    fn keep(&self, shard: usize, generation: u64, name: &str, route: &Arc<Route>) {
        let Some(routes) = self.engines.get(shard) else {
            return;
        };
        let mut routes = lock(routes);
        if routes.generation > generation {
            return;
        }
        routes.advance_to(generation);
        routes.by_tool.insert(name.to_owned(), route.clone());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The id of a call that brought none: `call-<number>`, written without
/// the formatting machinery (every call makes one).
fn call_id_for(number: u64) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = number;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(5 + digits.len() - start);
    id.push_str("call-");
    for &digit in &digits[start..] {
        id.push(char::from(digit));
    }
    id
}

/// A call's arguments as the JSON text the guest reads. Written through
/// serde_json's byte writer, which is quicker than its `Display`.
fn args_text(args: &serde_json::Value) -> String {
    serde_json::to_string(args).unwrap_or_else(|_| args.to_string())
}

/// A tool and the plugin that provides it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    /// The plugin's name.
    pub plugin: String,
    /// The tool's spec.
    #[serde(flatten)]
    pub spec: ToolSpec,
}

impl Runtime {
    /// Every registered tool, sorted by name.
    pub fn tools(&self) -> Vec<ToolInfo> {
        let mut tools: Vec<ToolInfo> = self
            .plugins()
            .iter()
            .flat_map(|plugin| {
                plugin.tools.iter().map(|tool| ToolInfo {
                    plugin: plugin.name().to_owned(),
                    spec: tool.spec.clone(),
                })
            })
            .collect();
        tools.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        tools
    }

    /// The tool called `name`, if registered.
    pub fn tool(&self, name: &str) -> Option<ToolInfo> {
        self.with_tool(name, |plugin, tool| ToolInfo {
            plugin: plugin.name().to_owned(),
            spec: tool.spec.clone(),
        })
    }

    /// The hints of a tool, without copying its spec (the agent loop asks
    /// for every call).
    pub fn tool_hints(&self, name: &str) -> Option<crate::spec::ToolHints> {
        self.with_tool(name, |_, tool| tool.spec.hints)
    }

    /// The most output a tool may return (its plugin's output cap); a patch
    /// of its result by an extension obeys the same cap.
    pub fn tool_output_limit(&self, name: &str) -> Option<usize> {
        self.with_tool(name, |plugin, _| {
            plugin.capabilities.limits.max_output_bytes
        })
    }

    fn with_tool<R>(
        &self,
        name: &str,
        read: impl FnOnce(&LoadedPlugin, &crate::loader::LoadedTool) -> R,
    ) -> Option<R> {
        let plugin = self.registry().plugin_for_tool(name)?;
        let tool = plugin.tool(name)?;
        Some(read(&plugin, tool))
    }

    fn lookup(&self, name: &str) -> Result<Arc<LoadedPlugin>, CallError> {
        let registry = self.registry();
        registry
            .plugin_for_tool(name)
            .ok_or_else(|| CallError::UnknownTool {
                name: name.to_owned(),
                known: registry.tool_names(),
            })
    }

    /// Calls a tool: looks it up, validates the arguments against its schema,
    /// and runs it in a fresh sandbox under its plugin's limits.
    pub async fn call_tool(
        &self,
        name: &str,
        args: &serde_json::Value,
        options: CallOptions,
    ) -> Result<ToolOutput, CallError> {
        let shard = self.call_shard();
        let routes = &self.inner.routes;
        let generation = routes.generation();
        let route = match routes.get(shard, generation, name) {
            Some(route) => {
                check_args(&route.plugin, &route.validator, name, args).await?;
                route
            }
            None => {
                let plugin = self.lookup(name)?;
                let validator = validator_of(&plugin, name)?.clone();
                // Before preparing: bad arguments never cost a compile.
                check_args(&plugin, &validator, name, args).await?;
                // Prepared already (the common case): no load context to build.
                let prepared = match plugin.current() {
                    Some(prepared) => Ok(prepared),
                    None => plugin.prepare(&self.load_context()).await,
                }
                .map_err(|err| CallError::Failed {
                    plugin: plugin.name().to_owned(),
                    tool: name.to_owned(),
                    kind: crate::error::FailureKind::Instantiate {
                        message: err.to_string(),
                    },
                    detail: None,
                })?;
                let route = Arc::new(Route {
                    site: Arc::new(CallSite::new(
                        plugin.name(),
                        name,
                        self.inner.store.plugin_kv(plugin.name()),
                        Arc::from(&*plugin.config),
                    )),
                    wasi_pool: routes.wasi_pool_of(shard, generation, &plugin),
                    plugin,
                    validator,
                    prepared,
                });
                routes.keep(shard, generation, name, &route);
                route
            }
        };
        let (plugin, prepared) = (&route.plugin, &route.prepared);
        let Some((pre, pool)) = prepared.tool_on_shard(shard, || self.shard_linker(shard)) else {
            return Err(CallError::Host {
                tool: name.to_owned(),
                message: format!("plugin '{}' is an extension, not a tool", plugin.name()),
            });
        };
        let call_id = options
            .call_id
            .unwrap_or_else(|| call_id_for(self.next_call_number()));
        let session_state = options
            .session_id
            .as_deref()
            .map(|session| self.inner.session_states.state(plugin.name(), session));
        let _slot = self
            .inner
            .instance_slots
            .acquire(
                pool,
                &self.inner.config.sandbox,
                plugin.capabilities.limits.timeout,
            )
            .await
            .map_err(|kind| CallError::Failed {
                plugin: plugin.name().to_owned(),
                tool: name.to_owned(),
                kind,
                detail: None,
            })?;
        invoke::invoke(Invocation {
            engine: pre.engine(),
            plugin,
            pre,
            tool: name,
            validator: &route.validator,
            site: route.site.clone(),
            wasi_pool: Some(&route.wasi_pool),
            args_json: args_text(args),
            call_id,
            session_id: options.session_id,
            progress: options.progress,
            cancel: options.cancel,
            session_state,
        })
        .await
    }

    /// A call number no other call of this runtime gets. Each thread takes
    /// a block of numbers at a time, so threads calling at once do not
    /// update one counter on every call.
    fn next_call_number(&self) -> u64 {
        const BLOCK: u64 = 1024;
        thread_local! {
            /// (runtime, next number, end of the block) of this thread.
            static BLOCK_LEFT: std::cell::Cell<(u64, u64, u64)> = const { std::cell::Cell::new((0, 0, 0)) };
        }
        let runtime = self.inner.id;
        BLOCK_LEFT.with(|left| {
            let (owner, next, end) = left.get();
            let (next, end) = if owner == runtime && next < end {
                (next, end)
            } else {
                let start = self.inner.next_call.fetch_add(BLOCK, Ordering::Relaxed);
                (start, start + BLOCK)
            };
            left.set((runtime, next + 1, end));
            next
        })
    }

    /// Instance slots held by calls right now (warm extension instances not
    /// counted).
    pub fn busy_instance_slots(&self) -> usize {
        self.inner.instance_slots.busy()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_ids_read_as_the_number() {
        for number in [0, 7, 10, 99, 1_234_567, u64::MAX] {
            assert_eq!(super::call_id_for(number), format!("call-{number}"));
        }
    }

    #[test]
    fn argument_text_is_the_json() {
        let args = serde_json::json!({ "text": "a \"quoted\" line\n", "n": [1, 2.5, null] });
        let text = super::args_text(&args);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            args
        );
        assert_eq!(text, args.to_string());
    }
}
