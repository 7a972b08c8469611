//! One call to a server's tool: the arguments checked against its schema, the session (started or restarted when due), the request with its deadline, progress routed to the caller, cancellation sent on, and the answer mapped (or the failure named).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotification, CancelledNotificationParam,
    ClientNotification, ClientRequest,
};
use rmcp::service::PeerRequestOptions;
use serde_json::Value;

use agent_host_agent::ToolCallError;
use agent_host_runtime::ToolOutput;
use agent_host_runtime::runtime::CallOptions;

use super::super::convert::{self, RemoteTool};
use super::{Connection, Session, Shared, Status, shorten};

/// How waiting for a call's answer ended.
enum Waited {
    Answer(Box<Result<rmcp::model::ServerResult, ServiceError>>),
    Cancelled,
    Oversized,
}

impl Connection {
    /// Calls the server's tool `tool` (whose exposed name is `exposed`).
    pub async fn call(
        &self,
        tool: &RemoteTool,
        args: &Value,
        options: CallOptions,
        output_limit: usize,
    ) -> Result<ToolOutput, ToolCallError> {
        let shared = &self.shared;
        let name = &shared.name;
        let exposed = &tool.spec.name;
        let call_timeout = shared.config.call_timeout();
        tool.validator
            .check_args_within(args, call_timeout.min(Duration::from_secs(5)))
            .await
            .map_err(|err| {
                ToolCallError::Tool(format!(
                    "invalid arguments for '{exposed}': {}",
                    describe_check_error(err)
                ))
            })?;
        let arguments = match args {
            Value::Object(object) => object.clone(),
            _ => {
                return Err(ToolCallError::Tool(format!(
                    "the arguments of '{exposed}' must be a JSON object"
                )));
            }
        };
        let cancel = options.cancel.clone().unwrap_or_default();
        let session = tokio::select! {
            session = self.session_for_call() => session?,
            () = cancel.cancelled() => return Err(ToolCallError::Cancelled),
        };
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new(tool.original.clone()).with_arguments(arguments),
        ));
        let mut request_options = PeerRequestOptions::no_options();
        request_options.timeout = Some(call_timeout);
        let handle = match session
            .client
            .peer()
            .send_request_with_option(request, request_options)
            .await
        {
            Ok(handle) => handle,
            Err(err) => {
                return Err(
                    self.session_failed(&session, &format!("could not send the call: {err}"))
                );
            }
        };
        let token = handle.progress_token.clone();
        if let Some(sink) = options.progress.clone() {
            shared
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token.clone(), (exposed.clone(), sink));
        }
        let (peer, id) = (handle.peer.clone(), handle.id.clone());
        let waited = tokio::select! {
            answer = handle.await_response() => Waited::Answer(Box::new(answer)),
            () = cancel.cancelled() => Waited::Cancelled,
            // The transport dropped a message over the cap: it may have
            // been this call's answer, which would then never come.
            () = session.framing.oversized.notified() => Waited::Oversized,
        };
        shared
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
        let answer = match waited {
            Waited::Answer(answer) => *answer,
            Waited::Cancelled => {
                // Tell the server, without waiting on it: the model's turn
                // goes on whatever the server does with the notice.
                let notice = ClientNotification::CancelledNotification(CancelledNotification::new(
                    CancelledNotificationParam::new(Some(id), Some("cancelled by the user".into())),
                ));
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        peer.send_notification(notice),
                    )
                    .await;
                });
                return Err(ToolCallError::Cancelled);
            }
            Waited::Oversized => {
                return Err(ToolCallError::Failed(format!(
                    "MCP server '{name}' sent a message over {} KiB (max_message_kb) while '{}' ran; the host dropped it, so this call failed",
                    shared.config.max_message_kb, tool.original
                )));
            }
        };
        let result = match answer {
            Ok(result) => serde_json::to_value(&result).unwrap_or(Value::Null),
            Err(ServiceError::McpError(error)) => {
                shared.succeeded();
                return Err(ToolCallError::Tool(format!(
                    "MCP server '{name}' refused the call to '{}': {}",
                    tool.original, error.message
                )));
            }
            Err(ServiceError::Timeout { .. }) => {
                let malformed = session.framing.malformed.load(Ordering::Relaxed);
                return Err(ToolCallError::Failed(format!(
                    "MCP server '{name}' did not answer '{}' within {} ms (call_timeout_ms); the call was cancelled on the server{}",
                    tool.original,
                    call_timeout.as_millis(),
                    if malformed > 0 {
                        format!(
                            "; the server has sent {malformed} line(s) that are not JSON-RPC, so its answer may have been garbled"
                        )
                    } else {
                        String::new()
                    }
                )));
            }
            Err(err) => {
                return Err(self.session_failed(
                    &session,
                    &format!("failed during the call to '{}': {err}", tool.original),
                ));
            }
        };
        shared.succeeded();
        match convert::call_result(&result) {
            Some(Ok(output)) => {
                let size = convert::output_bytes(&output);
                if size > output_limit {
                    return Err(ToolCallError::Failed(format!(
                        "MCP server '{name}' tool '{}' returned {size} bytes, over the output limit of {output_limit} bytes",
                        tool.original
                    )));
                }
                Ok(output)
            }
            Some(Err(message)) => Err(ToolCallError::Tool(message)),
            None => Err(ToolCallError::Failed(format!(
                "MCP server '{name}' answered the call to '{}' with something that is not a CallToolResult: {}",
                tool.original,
                shorten(&result.to_string(), 200)
            ))),
        }
    }

    /// The open session, starting or restarting the server when that is
    /// due and waiting for it up to its start timeout.
    async fn session_for_call(&self) -> Result<Arc<Session>, ToolCallError> {
        let shared = &self.shared;
        if let Some(session) = shared.lock().session.clone()
            && !session.client.is_transport_closed()
        {
            return Ok(session);
        }
        match self.wait_ready(shared.config.start_timeout()).await {
            Status::Ready => shared.lock().session.clone().ok_or_else(|| {
                ToolCallError::Failed(format!("MCP server '{}' closed its session", shared.name))
            }),
            Status::Failed { reason, retry_at } => {
                let wait = retry_at.saturating_duration_since(Instant::now());
                Err(ToolCallError::Failed(format!(
                    "MCP server '{}' is unavailable: {reason}{}",
                    shared.name,
                    if wait.is_zero() {
                        String::new()
                    } else {
                        format!(" (next try in {} ms)", wait.as_millis())
                    }
                )))
            }
            Status::Disabled => Err(ToolCallError::Failed(format!(
                "MCP server '{}' is disabled in the config",
                shared.name
            ))),
            Status::Idle | Status::Starting => Err(ToolCallError::Failed(format!(
                "MCP server '{}' is still starting after {} ms (start_timeout_ms)",
                shared.name,
                shared.config.start_timeout().as_millis()
            ))),
        }
    }

    /// Marks `session` failed (if it is still the current one) and says so.
    fn session_failed(&self, session: &Session, what: &str) -> ToolCallError {
        let reason = format!("{what}{}", session.stderr.suffix());
        Shared::fail_session(&self.shared, session.generation, reason.clone());
        ToolCallError::Failed(format!("MCP server '{}' {reason}", self.shared.name))
    }
}

fn describe_check_error(err: agent_host_runtime::schema::CheckError) -> String {
    use agent_host_runtime::schema::CheckError;
    match err {
        CheckError::Invalid(problems) => problems.join("; "),
        CheckError::OutOfTime { ms } => format!("checking them took over {ms} ms"),
        CheckError::Crashed(message) => format!("the check failed: {message}"),
        CheckError::Busy { running } => {
            format!("{running} costly checks are still running; try again shortly")
        }
    }
}
