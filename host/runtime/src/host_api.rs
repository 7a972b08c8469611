//! The `host` interface plugins import: logging, progress, per-plugin key-value state, and a clock.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::bindings::{HostImports, LogLevel, TypesImports};
use crate::sandbox::CallState;
use crate::session_state::SessionState;
use crate::store::PluginKv;

/// Longest log line kept from a plugin; the rest is cut.
const MAX_LOG_LINE: usize = 4096;
/// Log lines accepted per call; a plugin that logs more is muted for the rest
/// of the call so it cannot flood the host's log.
const MAX_LOG_LINES_PER_CALL: u32 = 1000;

/// A progress report from a long-running call.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressUpdate {
    /// The plugin reporting.
    pub plugin: String,
    /// The tool (or hook point) it is running.
    pub tool: String,
    /// Units done so far.
    pub done: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
    /// What it is doing now.
    pub message: Option<String>,
}

/// Receives progress reports; called on the thread running the call, so it
/// must be quick (send to a channel, update a bar).
pub type ProgressSink = Arc<dyn Fn(&ProgressUpdate) + Send + Sync>;

/// Who a call's host imports serve, and their plugin-wide services: the
/// plugin, the tool (or hook point), its key-value state and its
/// configuration. Made once per tool route and shared by the route's
/// calls, so a call takes one reference instead of copying each part.
pub(crate) struct CallSite {
    pub plugin: String,
    pub label: String,
    kv: PluginKv,
    /// The plugin's configuration as JSON object text.
    config: Arc<str>,
}

impl CallSite {
    pub(crate) fn new(plugin: &str, label: &str, kv: PluginKv, config: Arc<str>) -> Self {
        Self {
            plugin: plugin.to_owned(),
            label: label.to_owned(),
            kv,
            config,
        }
    }
}

/// Who is calling the host, and the services it may use.
pub(crate) struct HostContext {
    site: Arc<CallSite>,
    /// This plugin's state in the current session, when there is one.
    session: Option<Arc<SessionState>>,
    progress: Option<ProgressSink>,
    log_lines: u32,
}

/// The origin of `monotonic-now`: shared by every call in the process, so
/// readings from different calls can be compared.
fn clock_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl HostContext {
    pub(crate) fn new(site: Arc<CallSite>, progress: Option<ProgressSink>) -> Self {
        Self {
            site,
            session: None,
            progress,
            log_lines: 0,
        }
    }

    /// The plugin the call belongs to.
    pub(crate) fn plugin(&self) -> &str {
        &self.site.plugin
    }

    /// Gives the call access to the plugin's state in its session.
    pub(crate) fn with_session(mut self, state: Option<Arc<SessionState>>) -> Self {
        self.session = state;
        self
    }

    /// Starts another call on the same instance (a reused extension
    /// instance): the label and the per-call log allowance are reset.
    pub(crate) fn begin_call(&mut self, label: &str) {
        if self.site.label != label {
            let site = &self.site;
            self.site = Arc::new(CallSite::new(
                &site.plugin,
                label,
                site.kv.clone(),
                site.config.clone(),
            ));
        }
        self.log_lines = 0;
    }
}

impl TypesImports for CallState {}

impl HostImports for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        let host = &mut self.host;
        host.log_lines += 1;
        if host.log_lines > MAX_LOG_LINES_PER_CALL {
            if host.log_lines == MAX_LOG_LINES_PER_CALL + 1 {
                tracing::warn!(target: "plugin", plugin = %host.site.plugin, "plugin logged more than {MAX_LOG_LINES_PER_CALL} lines in one call; muting it for the rest of the call");
            }
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let (plugin, tool) = (&host.site.plugin, &host.site.label);
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", %plugin, %tool, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", %plugin, %tool, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", %plugin, %tool, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", %plugin, %tool, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", %plugin, %tool, "{message}"),
        }
    }

    fn progress(&mut self, done: u64, total: Option<u64>, message: Option<String>) {
        let host = &self.host;
        tracing::debug!(target: "plugin", plugin = %host.site.plugin, done, ?total, ?message, "progress");
        if let Some(sink) = &host.progress {
            sink(&ProgressUpdate {
                plugin: host.site.plugin.clone(),
                tool: host.site.label.clone(),
                done,
                total,
                message,
            });
        }
    }

    fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        match self.host.site.kv.get(&key) {
            Ok(value) => value,
            Err(err) => {
                tracing::error!(plugin = %self.host.site.plugin, "kv-get failed: {err}");
                None
            }
        }
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        // Refusals (limits, quotas) go back to the guest; the host log only
        // notes them at debug level, so a plugin retrying in a loop cannot
        // flood it.
        self.host.site.kv.set(&key, &value).inspect_err(|why| {
            tracing::debug!(plugin = %self.host.site.plugin, "kv-set refused: {why}");
        })
    }

    fn kv_delete(&mut self, key: String) -> bool {
        self.host.site.kv.delete(&key).unwrap_or_else(|err| {
            tracing::error!(plugin = %self.host.site.plugin, "kv-delete failed: {err}");
            false
        })
    }

    /// At most one page (`quotas.list_max_keys` / `list_max_kb`): the store
    /// stops reading there.
    fn kv_list(&mut self, prefix: String) -> Vec<String> {
        self.host.site.kv.list(&prefix).unwrap_or_else(|err| {
            tracing::error!(plugin = %self.host.site.plugin, "kv-list failed: {err}");
            Vec::new()
        })
    }

    fn session_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.host.session.as_ref()?.get(&key)
    }

    fn session_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        match &self.host.session {
            Some(state) => state.set(&key, &value).inspect_err(|why| {
                tracing::debug!(plugin = %self.host.site.plugin, "session-set refused: {why}");
            }),
            None => Err(
                "this call is not part of an agent session, so there is no session state"
                    .to_owned(),
            ),
        }
    }

    fn session_delete(&mut self, key: String) -> bool {
        self.host
            .session
            .as_ref()
            .is_some_and(|state| state.delete(&key))
    }

    fn session_list(&mut self, prefix: String) -> Vec<String> {
        self.host
            .session
            .as_ref()
            .map(|state| state.list(&prefix))
            .unwrap_or_default()
    }

    fn monotonic_now(&mut self) -> u64 {
        u64::try_from(clock_origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn config(&mut self) -> String {
        self.host.site.config.to_string()
    }
}
