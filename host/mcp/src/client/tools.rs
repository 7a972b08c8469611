//! Every configured MCP server as one [`ToolHost`]: their tools under their exposed names (clashes refused, naming both sides), a failing server's tools marked unavailable while the others keep working, and each call routed to its server by a map lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use agent_host_agent::{ToolCallError, ToolCallFuture, ToolHost};
use agent_host_runtime::runtime::{CallOptions, Runtime};
use agent_host_runtime::{ToolHints, ToolOutput, ToolSpec};

use super::Limits;
use super::config::ServerConfig;
use super::connection::{Connection, Status, ToolList};
use super::convert::RemoteTool;
use super::error::ClientError;
use super::persist;

/// What the host needs besides the server entries.
#[derive(Clone)]
pub struct ClientOptions {
    /// Bounds on what servers declare, and the store for persisted lists.
    pub limits: Limits,
    /// The most bytes of output one call may return.
    pub output_limit: usize,
    /// The plugins' tools win a name clash: an MCP tool under a plugin
    /// tool's name is refused.
    pub runtime: Option<Runtime>,
}

/// The MCP servers' tools. Cheap to clone.
#[derive(Clone)]
pub struct McpTools {
    inner: Arc<Inner>,
}

struct Inner {
    servers: Vec<Connection>,
    exposure: RwLock<Arc<Exposure>>,
    /// Set when a server's tools or status changed: the exposure is built
    /// again on the next look.
    stale: Arc<AtomicBool>,
    options: ClientOptions,
}

/// The tools as the model sees them now.
#[derive(Default)]
struct Exposure {
    specs: Vec<ToolSpec>,
    /// Exposed name -> (server index, the server's tool).
    routes: HashMap<String, (usize, RemoteTool)>,
    /// Per server: tools refused because another server exposes the name.
    clashes: Vec<Vec<String>>,
}

/// One server as `mcp list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// The config key.
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// `ready`, `starting`, `failed`, `idle` or `disabled`.
    pub status: &'static str,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The protocol version of the session.
    pub protocol: Option<String>,
    /// The server's own name and version.
    pub server: Option<String>,
    /// Tools exposed.
    pub tools: usize,
    /// Tools left out, and why.
    pub problems: Vec<String>,
    /// The last error seen, even after a later success.
    pub last_error: Option<String>,
    /// Unix seconds when the tool list was fetched.
    pub fetched_at: Option<u64>,
    /// The list is the persisted copy, not from a session of this process.
    pub cached: bool,
}

/// One MCP tool as `tools list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct McpToolInfo {
    /// `mcp:NAME`.
    pub source: String,
    /// The server's own name for the tool.
    pub original: String,
    /// The spec, under the exposed name.
    #[serde(flatten)]
    pub spec: ToolSpec,
}

impl McpTools {
    /// The servers of `[mcp.servers]` (checked; none started yet). Their
    /// persisted tool lists, when the store has them, stand in until a
    /// session fetches a fresh one.
    pub fn new(
        servers: &BTreeMap<String, ServerConfig>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let stale = Arc::new(AtomicBool::new(true));
        let mut connections = Vec::with_capacity(servers.len());
        for (name, config) in servers {
            config.validate(name)?;
            let on_change: Arc<dyn Fn() + Send + Sync> = {
                let stale = stale.clone();
                Arc::new(move || stale.store(true, Ordering::Release))
            };
            let connection = Connection::new(
                name.clone(),
                config.clone(),
                options.limits.clone(),
                on_change,
            );
            if let Some(store) = &options.limits.store
                && let Some(list) = persist::load(store, name, config, &options.limits)
            {
                connection.seed_tools(list);
            }
            connections.push(connection);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                servers: connections,
                exposure: RwLock::new(Arc::new(Exposure::default())),
                stale,
                options,
            }),
        })
    }

    /// Whether any server is configured.
    pub fn is_empty(&self) -> bool {
        self.inner.servers.is_empty()
    }

    /// Whether some enabled server has no tool list yet, not even a
    /// persisted one: listing its tools needs a connection.
    pub fn needs_listing(&self) -> bool {
        self.unlisted().next().is_some()
    }

    /// The enabled servers without a tool list yet.
    fn unlisted(&self) -> impl Iterator<Item = &Connection> {
        self.inner
            .servers
            .iter()
            .filter(|server| server.config().enabled && server.tools().fetched_at.is_none())
    }

    /// Starts every enabled server in the background.
    pub fn start_all(&self) {
        for server in &self.inner.servers {
            server.start_if_due();
        }
    }

    /// Starts every enabled server and waits, for all at once, until each
    /// is ready, failed, or past its `connect_timeout_ms` (a slow one keeps
    /// starting and its tools join when it is ready).
    pub async fn wait_ready(&self) {
        let waits = self
            .inner
            .servers
            .iter()
            .filter(|server| server.config().enabled)
            .map(|server| server.wait_ready(server.config().connect_timeout()));
        futures_util::future::join_all(waits).await;
    }

    /// Like [`Self::wait_ready`], for the servers without a tool list yet
    /// (not even a persisted one): the others are not started.
    pub async fn wait_unlisted(&self) {
        let waits = self
            .unlisted()
            .map(|server| server.wait_ready(server.config().connect_timeout()));
        futures_util::future::join_all(waits).await;
    }

    /// Waits for one server (by name) up to `wait`; `None`: no such server.
    pub async fn wait_for(&self, server: &str, wait: Duration) -> Option<()> {
        let connection = self.inner.servers.iter().find(|c| c.name() == server)?;
        connection.wait_ready(wait).await;
        Some(())
    }

    /// Closes every session (children are killed).
    pub async fn shut_down(&self) {
        let closing = self.inner.servers.iter().map(Connection::shut_down);
        futures_util::future::join_all(closing).await;
    }

    /// Each server's state, for `mcp list`.
    pub fn reports(&self) -> Vec<ServerReport> {
        let exposure = self.exposure();
        self.inner
            .servers
            .iter()
            .enumerate()
            .map(|(index, server)| {
                let list = server.tools();
                let status = server.status();
                let mut problems = list.problems.clone();
                problems.extend(exposure.clashes.get(index).cloned().unwrap_or_default());
                problems.extend(self.plugin_clashes(&list));
                let exposed = exposure
                    .routes
                    .values()
                    .filter(|(owner, _)| *owner == index)
                    .count();
                ServerReport {
                    name: server.name().to_owned(),
                    transport: if server.config().url.is_some() {
                        "http"
                    } else {
                        "stdio"
                    },
                    status: status.label(),
                    reason: match status {
                        Status::Failed { reason, .. } => Some(reason),
                        _ => None,
                    },
                    protocol: server.protocol(),
                    server: server.server_version(),
                    tools: exposed,
                    problems,
                    last_error: server.last_error(),
                    fetched_at: list.fetched_at.and_then(unix_secs),
                    cached: list.from_cache,
                }
            })
            .collect()
    }

    /// Every exposed tool with its source, for `tools list`.
    pub fn tool_infos(&self) -> Vec<McpToolInfo> {
        let exposure = self.exposure();
        let mut infos: Vec<McpToolInfo> = exposure
            .routes
            .values()
            .filter(|(_, tool)| !self.is_plugin_tool(&tool.spec.name))
            .map(|(index, tool)| McpToolInfo {
                source: format!("mcp:{}", self.inner.servers[*index].name()),
                original: tool.original.clone(),
                spec: tool.spec.clone(),
            })
            .collect();
        infos.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        infos
    }

    /// Calls an exposed tool, with the host's CallError-like tiers.
    pub async fn call_tool(
        &self,
        name: &str,
        args: &Value,
        options: CallOptions,
    ) -> Result<ToolOutput, ToolCallError> {
        let mut exposure = self.exposure();
        if !exposure.routes.contains_key(name)
            && let Some(server) = self.server_named_in(name)
        {
            // A tool of a server that has no list yet (still starting, or
            // failed): wait for that server as a call would, then say what
            // became of it.
            let status = server.wait_ready(server.config().start_timeout()).await;
            exposure = self.exposure();
            if !exposure.routes.contains_key(name) {
                return Err(match status {
                    Status::Failed { reason, .. } => ToolCallError::Failed(format!(
                        "MCP server '{}' is unavailable: {reason}",
                        server.name()
                    )),
                    Status::Ready => ToolCallError::Tool(format!(
                        "MCP server '{}' has no tool behind '{name}' (see `agent-host tools list`)",
                        server.name()
                    )),
                    other => ToolCallError::Failed(format!(
                        "MCP server '{}' is {}; '{name}' cannot be called yet",
                        server.name(),
                        other.label()
                    )),
                });
            }
        }
        let Some((index, tool)) = exposure.routes.get(name) else {
            return Err(ToolCallError::Tool(format!(
                "no MCP tool named '{name}' (see `agent-host tools list`)"
            )));
        };
        self.inner.servers[*index]
            .call(tool, args, options, self.inner.options.output_limit)
            .await
    }

    /// The current exposure, rebuilt first when a server changed. Servers
    /// due for a restart are started (in the background) on the way.
    fn exposure(&self) -> Arc<Exposure> {
        if self.inner.stale.swap(false, Ordering::AcqRel) {
            let built = Arc::new(self.build());
            *self
                .inner
                .exposure
                .write()
                .unwrap_or_else(|e| e.into_inner()) = built.clone();
            return built;
        }
        self.inner
            .exposure
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn build(&self) -> Exposure {
        let lists: Vec<(Arc<ToolList>, Status)> = self
            .inner
            .servers
            .iter()
            .map(|server| (server.tools(), server.status()))
            .collect();
        // A name two servers expose belongs to neither: which one the
        // model reached would depend on the order of the config.
        let mut owners: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, (list, status)) in lists.iter().enumerate() {
            if *status == Status::Disabled {
                continue;
            }
            for tool in &list.tools {
                owners.entry(&tool.spec.name).or_default().push(index);
            }
        }
        let mut exposure = Exposure {
            clashes: vec![Vec::new(); lists.len()],
            ..Exposure::default()
        };
        for (index, (list, status)) in lists.iter().enumerate() {
            if *status == Status::Disabled {
                continue;
            }
            let server = self.inner.servers[index].name();
            for tool in &list.tools {
                let owning = &owners[tool.spec.name.as_str()];
                if owning.len() > 1 {
                    let others: Vec<String> = owning
                        .iter()
                        .filter(|&&other| other != index)
                        .map(|&other| format!("mcp:{}", self.inner.servers[other].name()))
                        .collect();
                    exposure.clashes[index].push(format!(
                        "tool '{}' is refused: {} exposes the same name; set `prefix` on one of them",
                        tool.spec.name,
                        others.join(", ")
                    ));
                    continue;
                }
                let mut spec = tool.spec.clone();
                if let Status::Failed { reason, .. } = status {
                    spec.description = format!(
                        "[unavailable: MCP server '{server}' failed: {reason}] {}",
                        spec.description
                    );
                }
                exposure.specs.push(spec);
                exposure
                    .routes
                    .insert(tool.spec.name.clone(), (index, tool.clone()));
            }
        }
        exposure.specs.sort_by(|a, b| a.name.cmp(&b.name));
        exposure
    }

    /// The enabled server whose prefix `name` carries (`PREFIX__...`).
    fn server_named_in(&self, name: &str) -> Option<&Connection> {
        let (prefix, _) = name.split_once("__")?;
        self.inner.servers.iter().find(|server| {
            server.config().enabled && server.config().prefix_or(server.name()) == prefix
        })
    }

    fn is_plugin_tool(&self, name: &str) -> bool {
        self.inner
            .options
            .runtime
            .as_ref()
            .is_some_and(|runtime| runtime.tool_hints(name).is_some())
    }

    fn plugin_clashes(&self, list: &ToolList) -> Vec<String> {
        let Some(runtime) = &self.inner.options.runtime else {
            return Vec::new();
        };
        list.tools
            .iter()
            .filter_map(|tool| {
                let plugin = runtime.tool(&tool.spec.name)?.plugin;
                Some(format!(
                    "tool '{}' is refused: plugin '{plugin}' has a tool of that name; set `prefix`",
                    tool.spec.name
                ))
            })
            .collect()
    }
}

impl ToolHost for McpTools {
    fn list_tools(&self) -> Vec<ToolSpec> {
        // A failed server due for another try starts again now, so its
        // tools come back on a later turn without anyone asking.
        self.start_all();
        self.exposure()
            .specs
            .iter()
            .filter(|spec| !self.is_plugin_tool(&spec.name))
            .cloned()
            .collect()
    }

    fn hints(&self, tool: &str) -> Option<ToolHints> {
        if self.is_plugin_tool(tool) {
            return None;
        }
        self.exposure()
            .routes
            .get(tool)
            .map(|(_, remote)| remote.spec.hints)
    }

    fn output_limit(&self, _tool: &str) -> usize {
        self.inner.options.output_limit
    }

    fn source(&self, tool: &str) -> Option<String> {
        let exposure = self.exposure();
        let (index, _) = exposure.routes.get(tool)?;
        Some(format!("mcp:{}", self.inner.servers[*index].name()))
    }

    fn call<'a>(
        &'a self,
        tool: &'a str,
        args: &'a Value,
        options: CallOptions,
    ) -> ToolCallFuture<'a> {
        Box::pin(self.call_tool(tool, args, options))
    }
}

fn unix_secs(time: SystemTime) -> Option<u64> {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}
