//! The MCP handler: what the server says about itself, the protocol versions it speaks, `tools/list`, `tools/call` and the tool-list subscriptions of both eras.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agent_host_runtime::hooks::Hooks;
use agent_host_runtime::{CallError, CallOptions, Runtime};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult,
    Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities,
    ServerConfig, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData, ServerHandler};
use serde_json::Value;

use crate::changes::ToolListChanges;
use crate::config::McpConfig;
use crate::content;
use crate::guarded::{self, Outcome};

/// The revisions this server implements: the stateless 2026-07-28 one and
/// the two before it with an `initialize` handshake. Older clients are told
/// these in the spec's unsupported-version error.
const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// Tools named in an unknown-tool error before the list is cut.
const KNOWN_TOOLS_SHOWN: usize = 20;

/// The runtime's tools as an MCP server. Cheap to clone; clones share
/// everything (the HTTP transport makes one per session).
#[derive(Clone)]
pub struct ToolServer {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: Runtime,
    config: McpConfig,
    /// The extension hooks MCP calls go through; `None` when switched off.
    hooks: Option<Hooks>,
    changes: ToolListChanges,
    next_call: AtomicU64,
    /// Cancelled when the only client is gone (stdin closed): the open
    /// subscription streams end, so the process can exit at once.
    closing: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for ToolServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolServer")
            .field("config", &self.shared.config)
            .field("hooks", &self.shared.hooks.is_some())
            .finish()
    }
}

impl ToolServer {
    /// A server over `runtime`'s tools (loaded or not: the list is read at
    /// each request). Must be called inside a tokio runtime: it starts
    /// following the runtime's plugin events.
    pub fn new(runtime: Runtime, config: McpConfig) -> Self {
        let hooks = config.hooks.then(|| Hooks::new(runtime.clone(), None));
        let changes = ToolListChanges::follow(&runtime);
        Self {
            shared: Arc::new(Shared {
                runtime,
                config,
                hooks,
                changes,
                next_call: AtomicU64::new(1),
                closing: tokio_util::sync::CancellationToken::new(),
            }),
        }
    }

    /// Ends every open `subscriptions/listen` stream: the client is gone.
    pub fn end_subscriptions(&self) {
        self.shared.closing.cancel();
    }

    /// The runtime it serves.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// The configuration it serves with.
    pub fn config(&self) -> &McpConfig {
        &self.shared.config
    }

    fn unknown_tool(&self, name: &str) -> ErrorData {
        let known: Vec<String> = self
            .shared
            .runtime
            .tools()
            .into_iter()
            .map(|tool| tool.spec.name)
            .collect();
        let mut shown = known
            .iter()
            .take(KNOWN_TOOLS_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if known.len() > KNOWN_TOOLS_SHOWN {
            shown.push_str(&format!(", ... ({} in all)", known.len()));
        }
        ErrorData::invalid_params(
            format!("no tool named {name:?}; known tools: {shown} (see tools/list)"),
            None,
        )
    }
}

impl ServerHandler for ToolServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("agent-host", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools of agent-host: each call runs in a fresh WebAssembly sandbox with its \
             plugin's limits; a failed call comes back as a result with isError set.",
        )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_VERSIONS)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.shared.runtime.tools();
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let page = crate::catalog::page(&tools, cursor, self.shared.config.page_size())
            .map_err(|err| ErrorData::invalid_params(err.to_string(), None))?;
        let mut result = ListToolsResult::with_all_items(page.tools);
        result.next_cursor = page.next_cursor;
        // Caching hints are fields of the 2026-07-28 revision only.
        if context
            .protocol_version()
            .is_some_and(|version| !version.has_initialize())
        {
            result.ttl_ms = Some(self.shared.config.list_ttl_ms);
            result.cache_scope = Some(CacheScope::Private);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        // The hints are the cheapest thing to look up: no spec is copied.
        if self.shared.runtime.tool_hints(name).is_none() {
            return Err(self.unknown_tool(name));
        }
        let args = Value::Object(request.arguments.unwrap_or_default());
        let call_id = format!(
            "mcp-{}",
            self.shared.next_call.fetch_add(1, Ordering::Relaxed)
        );
        let (progress, forwarder) = match context.meta.get_progress_token() {
            Some(token) => {
                let (sink, forwarder) = crate::progress::forward(
                    context.peer.clone(),
                    token,
                    self.shared.config.progress_buffer,
                );
                (Some(sink), Some(forwarder))
            }
            None => (None, None),
        };
        let options = CallOptions {
            call_id: Some(call_id.clone()),
            session_id: None,
            progress,
            // Cancelled by `notifications/cancelled`, or when the HTTP
            // response stream of the call closes: the guest stops at its
            // next epoch tick and its instance slot is freed.
            cancel: Some(context.ct.clone()),
        };
        let outcome = guarded::call(
            &self.shared.runtime,
            self.shared.hooks.as_ref(),
            name,
            args,
            options,
        )
        .await;
        if let Some(forwarder) = forwarder {
            forwarder.finish().await;
        }
        let result = match outcome {
            Outcome::Output(output) => content::success(output, &call_id),
            Outcome::Rewritten { text, ok } => {
                if ok {
                    content::text_success(text)
                } else {
                    content::error(text)
                }
            }
            Outcome::Blocked(message) => content::error(message),
            // Removed between the check above and the call.
            Outcome::Failed(CallError::UnknownTool { name, .. }) => {
                return Err(self.unknown_tool(&name));
            }
            Outcome::Failed(err) => content::failure(&err),
        };
        Ok(result.into())
    }

    /// rmcp hands over, as a custom request, a known method whose params
    /// did not parse (`arguments` that are not an object, a `name` that is
    /// not a string): that is the caller's invalid params, not an unknown
    /// method.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let expected = match request.method.as_str() {
            "tools/call" => {
                "tools/call takes params {\"name\": string, \"arguments\": object}; \
                 `arguments` must be a JSON object matching the tool's inputSchema"
            }
            "tools/list" => "tools/list takes params {\"cursor\"?: string} or none",
            _ => {
                return Err(ErrorData::new(
                    rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                    format!("method {:?} is not served here", request.method),
                    None,
                ));
            }
        };
        Err(ErrorData::invalid_params(expected, None))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.shared.changes.notify_session(context.peer);
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        tokio::select! {
            () = self.shared.changes.serve_subscription(&subscription) => {}
            () = self.shared.closing.cancelled() => {}
        }
        Ok(())
    }
}
