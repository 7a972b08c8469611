//! What every request shares: the runtime, the live sessions in front of the store, the models a session may talk to, the turns running now, and the cap on turns in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agent_host_agent::AgentConfig;
use agent_host_agent::sessions::{LiveSessions, Sessions};
use agent_host_llm::SharedProvider;
use agent_host_runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::error::ApiError;

/// The models sessions may choose, by name, each with its provider.
#[derive(Clone)]
pub struct Models {
    default: String,
    providers: BTreeMap<String, SharedProvider>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("default", &self.default)
            .field("names", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Models {
    /// `default` answers sessions that name no model.
    pub fn new(default: SharedProvider) -> Self {
        let name = default.model().to_owned();
        let mut providers = BTreeMap::new();
        providers.insert(name.clone(), default);
        Self {
            default: name,
            providers,
        }
    }

    /// Adds a model sessions may name.
    pub fn with(mut self, provider: SharedProvider) -> Self {
        self.providers.insert(provider.model().to_owned(), provider);
        self
    }

    /// Every provider wrapped so its calls are counted in `metrics`.
    fn metered(self, metrics: &Arc<crate::metrics::Metrics>) -> Self {
        Self {
            default: self.default,
            providers: self
                .providers
                .into_iter()
                .map(|(name, provider)| (name, metrics.metered(provider)))
                .collect(),
        }
    }

    /// (provider, model, retries so far) of every model.
    pub(crate) fn retry_counts(&self) -> Vec<(String, String, u64)> {
        self.providers
            .values()
            .map(|p| (p.name().to_owned(), p.model().to_owned(), p.retries()))
            .collect()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    /// The provider of `name`, or of the default model.
    pub fn pick(&self, name: Option<&str>) -> Result<SharedProvider, ApiError> {
        let name = name.unwrap_or(&self.default);
        self.providers.get(name).cloned().ok_or_else(|| {
            ApiError::bad_request(format!(
                "model {name:?} is not served here; choose one of {:?} (GET /v1/models)",
                self.names()
            ))
        })
    }
}

/// A turn running now.
#[derive(Debug, Clone)]
pub(crate) struct RunningTurn {
    pub(crate) turn_id: String,
    pub(crate) cancel: CancellationToken,
}

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    /// What the agents call: the runtime's plugins unless the host set more
    /// sources (MCP servers) with [`AppState::with_tools`].
    tools: std::sync::OnceLock<Arc<dyn agent_host_agent::ToolHost>>,
    store: Arc<Sessions>,
    live: LiveSessions,
    models: Models,
    agent: AgentConfig,
    config: ServerConfig,
    metrics: Arc<crate::metrics::Metrics>,
    /// One agent per recently used session, so its extension hooks keep
    /// their session state (session start, turn counts, throttles) from
    /// turn to turn; as many as there are live sessions.
    agents: Mutex<lru::LruCache<String, agent_host_agent::Agent>>,
    running: Mutex<HashMap<String, RunningTurn>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    next_turn: AtomicU64,
    /// Stops accepting requests.
    shutdown: CancellationToken,
    /// The parent of every turn's token: cancels what still runs once the
    /// grace period after a shutdown is over.
    turns: CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("models", &self.inner.models)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of a server over `runtime` (plugins loaded) and `store`.
    pub fn new(
        runtime: Runtime,
        store: Arc<Sessions>,
        live: LiveSessions,
        models: Models,
        agent: AgentConfig,
        config: ServerConfig,
    ) -> Self {
        let in_flight = Arc::new(tokio::sync::Semaphore::new(
            config.max_turns_in_flight.max(1),
        ));
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let models = models.metered(&metrics);
        let agents = Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(live.capacity().max(1))
                .unwrap_or(std::num::NonZeroUsize::MIN),
        ));
        Self {
            inner: Arc::new(Inner {
                runtime,
                tools: std::sync::OnceLock::new(),
                store,
                live,
                models,
                agent,
                config,
                metrics,
                agents,
                running: Mutex::new(HashMap::new()),
                in_flight,
                next_turn: AtomicU64::new(1),
                shutdown: CancellationToken::new(),
                turns: CancellationToken::new(),
            }),
        }
    }

    /// The runtime whose plugins the agent calls (and whose extensions run).
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The same state with the agents calling `tools` (the plugins and,
    /// say, MCP servers through `ToolHosts`) instead of the runtime's
    /// plugins alone. Set once, before serving; a second call is ignored.
    pub fn with_tools(self, tools: Arc<dyn agent_host_agent::ToolHost>) -> Self {
        let _ = self.inner.tools.set(tools);
        self
    }

    /// What the agents call.
    pub fn tools(&self) -> Arc<dyn agent_host_agent::ToolHost> {
        self.inner
            .tools
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(self.inner.runtime.clone()))
    }

    /// The session store.
    pub fn store(&self) -> &Arc<Sessions> {
        &self.inner.store
    }

    /// The sessions in memory.
    pub fn live(&self) -> &LiveSessions {
        &self.inner.live
    }

    /// The models sessions may choose.
    pub fn models(&self) -> &Models {
        &self.inner.models
    }

    /// How the agent loop behaves.
    pub fn agent_config(&self) -> &AgentConfig {
        &self.inner.agent
    }

    /// The agent of session `id`, made by `make` the first time (or after
    /// it was evicted).
    pub(crate) fn session_agent(
        &self,
        id: &str,
        make: impl FnOnce() -> agent_host_agent::Agent,
    ) -> agent_host_agent::Agent {
        let mut agents = self.inner.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(agent) = agents.get(id) {
            return agent.clone();
        }
        let agent = make();
        agents.put(id.to_owned(), agent.clone());
        agent
    }

    /// Forgets the agent of a deleted session.
    pub(crate) fn forget_agent(&self, id: &str) {
        self.inner
            .agents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop(id);
    }

    /// What the server counts.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// The server's settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Cancelled when the server stops accepting requests.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Cancels every running turn.
    pub fn cancel_all_turns(&self) {
        self.inner.turns.cancel();
    }

    /// Turns running now.
    pub fn turns_in_flight(&self) -> usize {
        self.inner.config.max_turns_in_flight.max(1) - self.inner.in_flight.available_permits()
    }

    /// Claims `session` for a new turn: 409 when one is running there, 503
    /// when the server runs as many turns as it may.
    pub(crate) fn begin_turn(&self, session: &str) -> Result<TurnClaim, ApiError> {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(turn) = running.get(session) {
            return Err(ApiError::new(
                http::StatusCode::CONFLICT,
                "turn_running",
                format!(
                    "session {session:?} is running turn {}; wait for it to end or POST /v1/sessions/{session}/cancel",
                    turn.turn_id
                ),
            ));
        }
        let permit = self.in_flight_permit()?;
        let turn = RunningTurn {
            turn_id: format!(
                "turn-{}",
                self.inner.next_turn.fetch_add(1, Ordering::Relaxed)
            ),
            cancel: self.inner.turns.child_token(),
        };
        running.insert(session.to_owned(), turn.clone());
        Ok(TurnClaim {
            state: self.clone(),
            session: session.to_owned(),
            turn,
            _permit: permit,
        })
    }

    /// A place among the turns in flight for a turn outside any stored
    /// session (a chat completion): 503 when the server is full.
    pub(crate) fn begin_stateless_turn(&self) -> Result<StatelessClaim, ApiError> {
        let permit = self.in_flight_permit()?;
        Ok(StatelessClaim {
            cancel: self.inner.turns.child_token(),
            _permit: permit,
        })
    }

    /// A place among the turns in flight, or 503 when all are taken.
    fn in_flight_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.inner
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.busy())
    }

    fn busy(&self) -> ApiError {
        let mut err = ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            format!(
                "{} turns are running, the most this server runs at once; try again shortly",
                self.inner.config.max_turns_in_flight.max(1)
            ),
        );
        err.retry_after = Some(1);
        err
    }

    /// Cancels the turn running in `session`; its id, or `None` when none runs.
    pub(crate) fn cancel_turn(&self, session: &str) -> Option<String> {
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.get(session).map(|turn| {
            turn.cancel.cancel();
            turn.turn_id.clone()
        })
    }

    /// Whether a turn runs in `session`.
    pub(crate) fn is_running(&self, session: &str) -> bool {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(session)
    }
}

/// A session claimed for one turn and a place among the turns in flight;
/// both are given back when it is dropped, however the turn ended.
pub(crate) struct TurnClaim {
    state: AppState,
    pub(crate) session: String,
    pub(crate) turn: RunningTurn,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        self.state
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.session);
    }
}

/// A place among the turns in flight for a turn of no stored session.
pub(crate) struct StatelessClaim {
    pub(crate) cancel: CancellationToken,
    _permit: tokio::sync::OwnedSemaphorePermit,
}
