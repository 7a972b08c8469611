//! One MCP server as a tool source: a single session kept open (a child on stdio or Streamable HTTP), started in the background, its tool list fetched once per session and refreshed on `list_changed`, and restarted with backoff on the next use after it fails; its calls are in [`call`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rmcp::model::{
    ClientCapabilities, ClientConfig as ClientInfo, Implementation, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use agent_host_runtime::runtime::{Progress as ProgressSink, ProgressUpdate};

use super::Limits;
use super::child::{self, Framing, MeteredStdout, StderrTail};

mod call;
use super::config::{Endpoint, ProtocolChoice, ServerConfig};
use super::convert::{self, RemoteTool};
use super::error::ClientError;
use super::names::exposed_name;

/// Pages of `tools/list` read at most, whatever the cursors say: a server
/// that hands out cursors forever does not keep the host reading.
const MAX_LIST_PAGES: usize = 1_000;
/// Longest wait before a failing server is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where a server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `enabled = false`.
    Disabled,
    /// Not started yet in this process.
    Idle,
    /// Starting: spawning, handshaking, reading the tool list.
    Starting,
    /// The session is open and its tools can be called.
    Ready,
    /// The last attempt or the session failed; the next use after
    /// `retry_at` starts it again.
    Failed {
        /// Why, naming what happened.
        reason: String,
        /// When it may be started again.
        retry_at: Instant,
    },
}

impl Status {
    /// A short word for tables and JSON.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Idle => "idle",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Failed { .. } => "failed",
        }
    }
}

/// A server's tools and what the host made of its list.
#[derive(Debug, Clone, Default)]
pub struct ToolList {
    /// The tools used, by exposed name order of the server's list.
    pub tools: Vec<RemoteTool>,
    /// Tools left out, and why (refused schemas, a list over `max_tools`).
    pub problems: Vec<String>,
    /// When the list was fetched from the server (it may be a persisted
    /// copy from an earlier process).
    pub fetched_at: Option<SystemTime>,
    /// Whether it came from the persisted cache rather than this process's
    /// session.
    pub from_cache: bool,
}

/// One configured server.
pub struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    config: ServerConfig,
    limits: Limits,
    state: Mutex<State>,
    /// Carries the status to anyone waiting for a start to finish.
    status: watch::Sender<Status>,
    /// Called when the tool list or the status changed.
    on_change: Arc<dyn Fn() + Send + Sync>,
    /// Progress sinks of the calls in flight, by the token sent with each.
    progress: Mutex<HashMap<ProgressToken, (String, ProgressSink)>>,
}

#[derive(Default)]
struct State {
    session: Option<Arc<Session>>,
    tools: Arc<ToolList>,
    /// Consecutive failures (of starts and of sessions), for the backoff.
    failures: u32,
    last_error: Option<String>,
    protocol: Option<String>,
    server_version: Option<String>,
    /// Bumped for every session, so a late notice from an old session
    /// cannot touch a newer one.
    generation: u64,
    /// A refresh of the tool list is running; `refresh_again` asks it to
    /// run once more when it ends (coalesces bursts of `list_changed`).
    refreshing: bool,
    refresh_again: bool,
}

struct Session {
    client: RunningService<RoleClient, Handler>,
    generation: u64,
    stderr: StderrTail,
    /// What the stdout watch saw (stdio servers).
    framing: Arc<Framing>,
    /// Turns true when the child has exited (stdio servers).
    exited: Option<watch::Receiver<bool>>,
    /// Cancelled when the session is dropped: stops its helper tasks (and
    /// kills the child).
    stop: CancellationToken,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the client tells the server and hears from it unasked.
#[derive(Clone)]
struct Handler {
    shared: std::sync::Weak<Shared>,
    generation: u64,
    info: ClientInfo,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientInfo {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        if let Some(shared) = self.shared.upgrade() {
            Shared::refresh(shared, self.generation);
        }
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        // Progress for a token nobody is waiting on (a flood, a late
        // report) costs one map lookup and is dropped.
        let sink = shared
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&params.progress_token)
            .cloned();
        if let Some((tool, sink)) = sink {
            sink(&ProgressUpdate {
                plugin: format!("mcp:{}", shared.name),
                tool,
                done: params.progress.max(0.0) as u64,
                total: params.total.map(|total| total.max(0.0) as u64),
                message: params.message,
            });
        }
    }
}

impl Connection {
    /// A server from its config entry (nothing starts yet). `on_change`
    /// is called whenever its tools or status change.
    pub fn new(
        name: String,
        config: ServerConfig,
        limits: Limits,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let initial = if config.enabled {
            Status::Idle
        } else {
            Status::Disabled
        };
        let (status, _) = watch::channel(initial);
        Self {
            shared: Arc::new(Shared {
                name,
                config,
                limits,
                state: Mutex::new(State::default()),
                status,
                on_change,
                progress: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The server's name (the config key).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its config entry.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// Where it stands now.
    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    /// Its tools: the live session's list, else the last one known
    /// (possibly the persisted copy).
    pub fn tools(&self) -> Arc<ToolList> {
        self.shared.lock().tools.clone()
    }

    /// Uses a list from an earlier process until a session fetches one.
    pub fn seed_tools(&self, list: ToolList) {
        let mut state = self.shared.lock();
        if state.session.is_none() {
            state.tools = Arc::new(list);
        }
    }

    /// The protocol version of the open (or last) session.
    pub fn protocol(&self) -> Option<String> {
        self.shared.lock().protocol.clone()
    }

    /// The server's own name and version, as it gave them.
    pub fn server_version(&self) -> Option<String> {
        self.shared.lock().server_version.clone()
    }

    /// The last error, kept after a later success for `mcp list`.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }

    /// Starts the server in the background if it is idle, or failed and
    /// due for another try. Never waits.
    pub fn start_if_due(&self) {
        Shared::start_if_due(&self.shared);
    }

    /// Starts the server if due and waits until it is ready or failed, or
    /// `wait` has passed (it then keeps starting in the background).
    pub async fn wait_ready(&self, wait: Duration) -> Status {
        Shared::start_if_due(&self.shared);
        let mut status = self.shared.status.subscribe();
        let settled = tokio::time::timeout(wait, async {
            loop {
                let now = status.borrow_and_update().clone();
                if !matches!(now, Status::Starting | Status::Idle) {
                    return now;
                }
                if status.changed().await.is_err() {
                    return Status::Idle;
                }
            }
        })
        .await;
        settled.unwrap_or(Status::Starting)
    }

    /// Closes the session (the child is killed); the server can start again.
    pub async fn shut_down(&self) {
        let session = self.shared.lock().session.take();
        let Some(session) = session else {
            return;
        };
        // As MCP asks: close the child's input, give it a moment to exit,
        // then kill it.
        session.client.cancellation_token().cancel();
        if let Some(mut exited) = session.exited.clone() {
            let graceful = tokio::time::timeout(
                Duration::from_millis(500),
                exited.wait_for(|exited| *exited),
            )
            .await
            .is_ok();
            if !graceful {
                session.stop.cancel();
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), exited.wait_for(|exited| *exited))
                        .await;
            }
        }
        session.stop.cancel();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_status(&self, status: Status) {
        self.status.send_replace(status);
        (self.on_change)();
    }

    fn succeeded(&self) {
        self.lock().failures = 0;
    }

    fn start_if_due(this: &Arc<Self>) {
        let due = match &*this.status.borrow() {
            Status::Idle => true,
            Status::Failed { retry_at, .. } => Instant::now() >= *retry_at,
            Status::Ready => this
                .lock()
                .session
                .as_ref()
                .is_none_or(|session| session.client.is_transport_closed()),
            Status::Starting | Status::Disabled => false,
        };
        if !due {
            return;
        }
        // Only one start at a time: whoever flips the status starts it.
        let flipped = this.status.send_if_modified(|status| {
            if matches!(status, Status::Starting | Status::Disabled) {
                return false;
            }
            *status = Status::Starting;
            true
        });
        if !flipped {
            return;
        }
        (this.on_change)();
        let this = this.clone();
        tokio::spawn(async move {
            let generation = {
                let mut state = this.lock();
                state.generation += 1;
                state.session = None;
                state.generation
            };
            let started = tokio::time::timeout(
                this.config.start_timeout(),
                Self::open(&this, generation),
            )
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "it did not complete the handshake and the tool list within {} ms (start_timeout_ms)",
                    this.config.start_timeout().as_millis()
                ))
            });
            match started {
                Ok((session, tools)) => {
                    let info = session.client.peer().peer_info();
                    let protocol = info.as_ref().map(|info| info.protocol_version.to_string());
                    let server_version = info.as_ref().and_then(|info| {
                        let server = info.server_info.as_ref()?;
                        Some(format!("{} {}", server.name, server.version))
                    });
                    {
                        let mut state = this.lock();
                        state.session = Some(Arc::new(session));
                        state.tools = Arc::new(tools);
                        state.protocol = protocol;
                        state.server_version = server_version;
                    }
                    tracing::info!(server = %this.name, "MCP server ready");
                    this.set_status(Status::Ready);
                }
                Err(reason) => {
                    Self::record_failure(&this, reason);
                }
            }
        });
    }

    /// Counts a failure and schedules the next try.
    fn record_failure(this: &Arc<Self>, reason: String) {
        let retry_at = {
            let mut state = this.lock();
            state.failures = state.failures.saturating_add(1);
            // The first failure of a streak is worth a warning; the retries
            // after it (every 30 s at most, for as long as the host runs)
            // would only fill the terminal of a `chat`.
            if state.failures == 1 {
                tracing::warn!(server = %this.name, %reason, "MCP server failed");
            } else {
                tracing::debug!(server = %this.name, %reason, failures = state.failures, "MCP server failed again");
            }
            state.last_error = Some(reason.clone());
            state.session = None;
            Instant::now() + backoff(state.failures)
        };
        this.set_status(Status::Failed { reason, retry_at });
    }

    /// The session of `generation` ended or broke.
    fn fail_session(this: &Arc<Self>, generation: u64, reason: String) {
        let current = {
            let state = this.lock();
            state.generation == generation && state.session.is_some()
        };
        if current {
            Self::record_failure(this, reason);
        }
    }

    /// Spawns or connects, handshakes, and reads the tool list.
    async fn open(this: &Arc<Self>, generation: u64) -> Result<(Session, ToolList), String> {
        let endpoint = this
            .config
            .endpoint(&this.name, &|variable| std::env::var(variable).ok())
            .map_err(|err| match err {
                ClientError::Config { problem, .. } => problem,
                other => other.to_string(),
            })?;
        let handler = Handler {
            shared: Arc::downgrade(this),
            generation,
            info: client_info(this.config.protocol),
        };
        let lifecycle = lifecycle(this.config.protocol);
        let stop = CancellationToken::new();
        // Until the session stands, a failed or abandoned start (the start
        // timeout drops this future) kills the child it spawned.
        let kill_unless_started = stop.clone().drop_guard();
        let stderr = StderrTail::default();
        let framing = Arc::new(Framing::default());
        let mut exited = None;
        let max_message = this.config.max_message_bytes();
        let client = match endpoint {
            Endpoint::Command { program, args, env } => {
                let mut child = child::spawn(&program, &args, &env)?;
                let (Some(stdin), Some(stdout), Some(child_stderr)) =
                    (child.stdin.take(), child.stdout.take(), child.stderr.take())
                else {
                    return Err("its stdio pipes could not be opened".to_owned());
                };
                tokio::spawn(child::read_stderr(
                    child_stderr,
                    stderr.clone(),
                    this.name.clone(),
                ));
                let (exit_sender, exit_receiver) = watch::channel(false);
                exited = Some(exit_receiver);
                tokio::spawn(watch_child(
                    child,
                    Arc::downgrade(this),
                    generation,
                    stop.clone(),
                    stderr.clone(),
                    exit_sender,
                ));
                let stdout = MeteredStdout::new(stdout, max_message, framing.clone());
                let transport =
                    AsyncRwTransport::new(stdout, stdin).with_max_line_length(max_message);
                rmcp::serve_client_with_lifecycle(handler, transport, lifecycle).await
            }
            Endpoint::Url { url, headers } => {
                super::tls::install_crypto_provider();
                let mut config = StreamableHttpClientTransportConfig::with_uri(url);
                for (key, value) in &headers {
                    let name = http::HeaderName::from_bytes(key.as_bytes())
                        .map_err(|_| format!("the header name {key:?} is not valid"))?;
                    let value = http::HeaderValue::from_str(value)
                        .map_err(|_| format!("the value of header {key:?} is not valid"))?;
                    config.custom_headers.insert(name, value);
                }
                config.max_json_response_size = max_message;
                config.max_sse_event_size = max_message;
                config.allow_stateless = true;
                let transport = StreamableHttpClientTransport::from_config(config);
                rmcp::serve_client_with_lifecycle(handler, transport, lifecycle).await
            }
        }
        .map_err(|err| format!("the handshake failed: {err}{}", stderr.suffix()))?;
        kill_unless_started.disarm();
        let session = Session {
            client,
            generation,
            stderr,
            framing,
            exited,
            stop,
        };
        let tools = Self::fetch_tools(this, &session)
            .await
            .map_err(|err| format!("{err}{}", session.stderr.suffix()))?;
        if session
            .client
            .peer()
            .peer_info()
            .is_some_and(|info| info.protocol_version == ProtocolVersion::V_2026_07_28)
        {
            Self::listen_for_changes(this, &session);
        }
        Ok((session, tools))
    }

    /// Reads the whole tool list (paged), within `max_tools`.
    async fn fetch_tools(this: &Arc<Self>, session: &Session) -> Result<ToolList, String> {
        let mut raw = Vec::new();
        let mut problems = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = cursor
                .clone()
                .map(|cursor| PaginatedRequestParams::default().with_cursor(Some(cursor)));
            let page = session
                .client
                .peer()
                .list_tools(params)
                .await
                .map_err(|err| format!("tools/list failed: {err}"))?;
            raw.extend(page.tools);
            if raw.len() > this.config.max_tools {
                problems.push(format!(
                    "the server lists more than {} tools (max_tools); only the first {} are used",
                    this.config.max_tools, this.config.max_tools
                ));
                raw.truncate(this.config.max_tools);
                break;
            }
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => break,
            }
        }
        let raw: Vec<Value> = raw
            .iter()
            .filter_map(|tool| serde_json::to_value(tool).ok())
            .collect();
        let mut list = tool_list(&this.name, &this.config, &this.limits, &raw);
        list.problems.splice(0..0, problems);
        list.fetched_at = Some(SystemTime::now());
        if let Some(store) = &this.limits.store {
            super::persist::save(
                store,
                &this.name,
                &this.config,
                &raw,
                this.lock().protocol.as_deref(),
            );
        }
        Ok(list)
    }

    /// On 2026-07-28 change notices come on a `subscriptions/listen` stream.
    fn listen_for_changes(this: &Arc<Self>, session: &Session) {
        let peer = session.client.peer().clone();
        let (weak, generation, stop) = (
            Arc::downgrade(this),
            session.generation,
            session.stop.clone(),
        );
        tokio::spawn(async move {
            let filter = SubscriptionFilter::builder().tools_list_changed().build();
            let Ok(mut subscription) = peer.listen(filter).await else {
                return;
            };
            loop {
                let next = tokio::select! {
                    next = subscription.next() => next,
                    () = stop.cancelled() => return,
                };
                match (next, weak.upgrade()) {
                    (Ok(Some(_)), Some(shared)) => Self::refresh(shared, generation),
                    _ => return,
                }
            }
        });
    }

    /// Fetches the tool list again on the session of `generation`; a burst
    /// of notices runs one refresh, then one more.
    fn refresh(this: Arc<Self>, generation: u64) {
        {
            let mut state = this.lock();
            if state.generation != generation {
                return;
            }
            if state.refreshing {
                state.refresh_again = true;
                return;
            }
            state.refreshing = true;
        }
        tokio::spawn(async move {
            loop {
                let session = this.lock().session.clone();
                let Some(session) = session.filter(|s| s.generation == generation) else {
                    break;
                };
                match Self::fetch_tools(&this, &session).await {
                    Ok(list) => {
                        this.lock().tools = Arc::new(list);
                        tracing::info!(server = %this.name, "MCP server's tool list changed");
                        (this.on_change)();
                    }
                    Err(reason) => {
                        tracing::warn!(server = %this.name, %reason, "refreshing the tool list failed");
                    }
                }
                let mut state = this.lock();
                if !std::mem::take(&mut state.refresh_again) {
                    state.refreshing = false;
                    break;
                }
            }
        });
    }
}

/// The host's view of a raw `tools/list`: filtered, named, converted.
pub(crate) fn tool_list(
    name: &str,
    config: &ServerConfig,
    limits: &Limits,
    raw: &[Value],
) -> ToolList {
    let prefix = config.prefix_or(name);
    let mut list = ToolList::default();
    let mut seen = std::collections::HashSet::new();
    for tool in raw.iter().take(config.max_tools) {
        let Some(original) = tool.get("name").and_then(Value::as_str) else {
            list.problems
                .push("a tool without a name was left out".to_owned());
            continue;
        };
        if !config.tools.admits(original) {
            continue;
        }
        let exposed = exposed_name(prefix, original);
        if !seen.insert(exposed.clone()) {
            list.problems.push(format!(
                "tool '{original}' was left out: the server lists a tool named '{exposed}' twice"
            ));
            continue;
        }
        match convert::remote_tool(
            tool,
            exposed,
            config.parallel,
            &limits.describe,
            &limits.schemas,
        ) {
            Ok(remote) => list.tools.push(remote),
            Err(reason) => list.problems.push(format!(
                "tool '{}' was left out: {reason}",
                shorten(original, 80)
            )),
        }
    }
    list
}

fn client_info(protocol: ProtocolChoice) -> ClientInfo {
    let info = ClientInfo::new(
        ClientCapabilities::default(),
        Implementation::new("agent-host", env!("CARGO_PKG_VERSION")),
    );
    match protocol {
        ProtocolChoice::V2025_06_18 => info.with_protocol_version(ProtocolVersion::V_2025_06_18),
        _ => info.with_protocol_version(ProtocolVersion::V_2025_11_25),
    }
}

fn lifecycle(protocol: ProtocolChoice) -> ClientLifecycleMode {
    match protocol {
        ProtocolChoice::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
        ProtocolChoice::V2026_07_28 => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        ProtocolChoice::V2025_11_25 | ProtocolChoice::V2025_06_18 => {
            ClientLifecycleMode::Initialize
        }
    }
}

/// Waits for the child to exit (marking its session failed with the exit
/// status), or kills it when the session is dropped.
async fn watch_child(
    mut child: tokio::process::Child,
    shared: std::sync::Weak<Shared>,
    generation: u64,
    stop: CancellationToken,
    stderr: StderrTail,
    exited: watch::Sender<bool>,
) {
    tokio::select! {
        status = child.wait() => {
            // Let the stderr reader catch the last words.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(shared) = shared.upgrade() {
                let status = status.map_or_else(|err| err.to_string(), |s| s.to_string());
                Shared::fail_session(&shared, generation, format!("exited ({status}){}", stderr.suffix()));
            }
        }
        () = stop.cancelled() => {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    exited.send_replace(true);
}

/// The wait before try `failures + 1`: none after one failure (a crashed
/// child restarts on the next use), then doubling up to [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let millis = 250u64.saturating_mul(1u64 << (failures - 2).min(16));
    Duration::from_millis(millis).min(MAX_BACKOFF)
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max_chars).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_restarts_at_once_then_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
