//! The routes: the native sessions API (`/v1/sessions...`), the tool list, health and readiness; every error as JSON with its status.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;
use crate::turn;

/// Every route of the server over `state`; with `token`, every route but
/// `/healthz` needs it; with `[server] cors_origins`, those origins may call.
pub fn router(state: AppState, token: Option<agent_host_auth::BearerToken>) -> Router {
    let cors = Cors(std::sync::Arc::new(state.config().cors_origins.clone()));
    let mut api = Router::new()
        .route("/v1/sessions", post(create_session).get(list_sessions))
        .route("/v1/sessions/{id}", get(get_session).delete(delete_session))
        .route("/v1/sessions/{id}/messages", post(post_message))
        .route("/v1/sessions/{id}/cancel", post(cancel_turn))
        .route("/v1/tools", get(list_tools))
        .route("/v1/models", get(list_models))
        .route(
            "/v1/chat/completions",
            post(crate::openai::chat_completions),
        )
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_document))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state);
    if let Some(token) = token {
        api = api.layer(axum::middleware::from_fn_with_state(
            token,
            agent_host_auth::require_token,
        ));
    }
    // A liveness probe tells nothing about the host: it needs no token.
    let router = Router::new().route("/healthz", get(healthz)).merge(api);
    if cors.0.is_empty() {
        return router;
    }
    // Outermost, so a preflight is answered before the token is asked for.
    router.layer(axum::middleware::from_fn_with_state(cors, allow_origins))
}

/// The browser origins allowed to call the API.
#[derive(Clone)]
struct Cors(std::sync::Arc<Vec<String>>);

/// CORS for the configured origins only: a preflight (`OPTIONS` with
/// `Access-Control-Request-Method`) from one of them is answered here, and
/// their other requests get `Access-Control-Allow-Origin`; every other
/// origin gets no CORS header at all.
async fn allow_origins(
    State(cors): State<Cors>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .filter(|origin| cors.0.iter().any(|allowed| allowed == origin))
        .map(str::to_owned);
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let preflight = request.method() == axum::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            axum::http::HeaderValue::from_static("GET, POST, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            axum::http::HeaderValue::from_static("authorization, content-type, accept"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            axum::http::HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, axum::http::HeaderValue::from_static("origin"));
    }
    response
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Reads a JSON body of at most the body limit: 413 beyond it, 400 for
/// anything that is not the endpoint's shape (saying what is).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: Body,
) -> Result<T, ApiError> {
    let limit = state.config().max_body_bytes();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {limit} bytes ([server] max_body_kb)"),
        )
    })?;
    let bytes = if bytes.is_empty() {
        axum::body::Bytes::from_static(b"{}")
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(format!("the body is not what this endpoint takes: {err}"))
    })
}

/// A new session.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSession {
    /// For lists; cut to 80 characters.
    title: Option<String>,
    /// Replaces the configured system prompt for this session.
    system: Option<String>,
    /// One of `GET /v1/models`; the configured model when absent.
    model: Option<String>,
}

/// Creates a session.
#[utoipa::path(post, path = "/v1/sessions", request_body = NewSession,
    responses(
        (status = 201, description = "The session record (id, title, provider, model, created_ms, ...)", body = Object),
        (status = 400, description = "A body that is not a NewSession, or a model not served", body = crate::openapi::ErrorBody),
        (status = 413, description = "A body or system prompt over the limits", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    body: Body,
) -> Result<Response, ApiError> {
    let request: NewSession = read_json(&state, body).await?;
    if let Some(system) = &request.system
        && system.len() > state.config().max_message_bytes()
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!(
                "`system` is {} bytes, over {} ([server] max_message_kb)",
                system.len(),
                state.config().max_message_bytes()
            ),
        ));
    }
    let provider = state.models().pick(request.model.as_deref())?;
    let title = request.title.unwrap_or_default();
    let live =
        state
            .live()
            .create_with_system(&title, provider.name(), provider.model(), request.system);
    let record = live.lock().await.record.clone();
    Ok(json_response(
        StatusCode::CREATED,
        serde_json::to_value(record).unwrap_or(Value::Null),
    ))
}

/// Lists the stored sessions.
#[utoipa::path(get, path = "/v1/sessions",
    responses((status = 200, description = "`{\"sessions\": [record, ...]}`", body = Object)))]
pub(crate) async fn list_sessions(State(state): State<AppState>) -> Response {
    state.store().flush().await;
    let sessions = state.store().list();
    json_response(StatusCode::OK, json!({ "sessions": sessions }))
}

/// A session's record, its messages, and whether a turn runs.
#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "`{\"session\", \"messages\", \"running\"}`", body = Object),
        (status = 404, description = "No such session", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let live = state
        .live()
        .get(&id)
        .await
        .ok_or_else(|| ApiError::session_not_found(&id))?;
    let session = live.lock().await;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "session": session.record,
            "messages": session.history,
            "running": state.is_running(&id),
        }),
    ))
}

/// Deletes a session.
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session", body = crate::openapi::ErrorBody),
        (status = 409, description = "A turn runs in it", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn delete_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state.is_running(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "turn_running",
            format!("session {id:?} is running a turn; POST /v1/sessions/{id}/cancel first"),
        ));
    }
    // Queued writes of the session land first, so none outlives it.
    state.store().flush().await;
    state.live().remove(&id);
    state.forget_agent(&id);
    if !state.store().delete(&id) {
        return Err(ApiError::session_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A user message: it runs one turn.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMessage {
    /// The user's message.
    content: String,
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Runs one turn: a JSON result, or (`Accept: text/event-stream`) the turn's events as SSE ending in `done`.
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", params(("id" = String, Path, description = "The session id")),
    request_body = NewMessage,
    responses(
        (status = 200, description = "The turn's result (or an SSE stream of its events)", body = crate::turn::TurnResult),
        (status = 400, description = "A body that is not a NewMessage", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such session", body = crate::openapi::ErrorBody),
        (status = 409, description = "A turn already runs in the session", body = crate::openapi::ErrorBody),
        (status = 413, description = "A body or message over the limits", body = crate::openapi::ErrorBody),
        (status = 503, description = "The server runs as many turns as it may; see Retry-After", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn post_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let message: NewMessage = read_json(&state, body).await?;
    let limit = state.config().max_message_bytes();
    if message.content.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!(
                "the message is {} bytes, over {limit} ([server] max_message_kb)",
                message.content.len()
            ),
        ));
    }
    if message.content.trim().is_empty() {
        return Err(ApiError::bad_request(
            "`content` is empty; send the user's message",
        ));
    }
    // 404 before 409/503: a wrong id is the first thing to hear about.
    let live = state
        .live()
        .get(&id)
        .await
        .ok_or_else(|| ApiError::session_not_found(&id))?;
    let claim = state.begin_turn(&id)?;
    let turn = turn::start(&state, claim, live, message.content).await?;
    let hang_up = HangUp::new(turn.cancel.clone(), state.config().cancel_on_disconnect);
    if wants_stream(&headers) {
        return Ok(Sse::new(event_stream(turn.events, hang_up))
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    // The answer as one JSON body. Dropping this future (the client hung
    // up) drops `hang_up`, which cancels the turn when configured to.
    let mut events = turn.events;
    while events.recv().await.is_some() {}
    let result = turn.result.await.map_err(|_| ApiError::turn_lost())?;
    hang_up.disarm();
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_value(result).unwrap_or(Value::Null),
    ))
}

/// Cancels a turn when the client goes away before it ended.
pub(crate) struct HangUp {
    cancel: tokio_util::sync::CancellationToken,
    armed: bool,
}

impl HangUp {
    /// Cancels `cancel` when dropped, if `armed`.
    pub(crate) fn new(cancel: tokio_util::sync::CancellationToken, armed: bool) -> Self {
        Self { cancel, armed }
    }

    /// The turn ended: dropping this cancels nothing.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        if self.armed {
            self.cancel.cancel();
        }
    }
}

/// The turn's events as server-sent events (`event:` is the type); the
/// stream ends after `done`. Dropped early (the client went away), it
/// cancels the turn when configured to.
fn event_stream(
    mut events: tokio::sync::mpsc::Receiver<Value>,
    hang_up: HangUp,
) -> impl Stream<Item = Result<Event, Infallible>> {
    task_stream(move |sender| async move {
        let mut hang_up = Some(hang_up);
        while let Some(event) = events.recv().await {
            let kind = event
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("event")
                .to_owned();
            let done = kind == "done";
            let sse = Event::default().event(kind).data(event.to_string());
            if sender.send(Ok(sse)).await.is_err() {
                return;
            }
            if done {
                if let Some(hang_up) = hang_up.take() {
                    hang_up.disarm();
                }
                return;
            }
        }
    })
}

/// A stream fed by a task: the task's sender is bounded to one item, so
/// nothing piles up between the turn's buffer and the socket.
pub(crate) fn task_stream<F, Fut>(produce: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(produce(sender));
    ReceiverStream {
        receiver,
        _task: AbortOnDrop(task),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct ReceiverStream {
    receiver: tokio::sync::mpsc::Receiver<Result<Event, Infallible>>,
    _task: AbortOnDrop,
}

impl Stream for ReceiverStream {
    type Item = Result<Event, Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

/// Cancels the turn running in a session.
#[utoipa::path(post, path = "/v1/sessions/{id}/cancel", params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 202, description = "`{\"cancelled\": turn id}`", body = Object),
        (status = 404, description = "No such session", body = crate::openapi::ErrorBody),
        (status = 409, description = "No turn runs in it", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn cancel_turn(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.cancel_turn(&id) {
        Some(turn_id) => Ok(json_response(
            StatusCode::ACCEPTED,
            json!({ "cancelled": turn_id }),
        )),
        None if state.live().get(&id).await.is_none() => Err(ApiError::session_not_found(&id)),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_turn_running",
            format!("session {id:?} is not running a turn"),
        )),
    }
}

/// The tools the agents call: the plugins' (with `plugin`) and any other
/// source's, such as an MCP server's (with `source`: `mcp:NAME`).
#[utoipa::path(get, path = "/v1/tools",
    responses((status = 200, description = "`{\"tools\": [...]}`: name, title, description, input_schema, output_schema, hints, and plugin (a plugin's tool) or source (`mcp:NAME`)", body = Object)))]
pub(crate) async fn list_tools(State(state): State<AppState>) -> Response {
    let plugins = state.runtime().tools();
    let tools = state.tools();
    let mut listed: Vec<Value> = plugins
        .iter()
        .map(|tool| serde_json::to_value(tool).unwrap_or_default())
        .collect();
    for spec in tools.list_tools() {
        if plugins.iter().any(|tool| tool.spec.name == spec.name) {
            continue;
        }
        let mut row = serde_json::to_value(&spec).unwrap_or_default();
        row["source"] = json!(tools.source(&spec.name));
        listed.push(row);
    }
    json_response(StatusCode::OK, json!({ "tools": listed }))
}

/// The models a session or a chat completion may name.
#[utoipa::path(get, path = "/v1/models",
    responses((status = 200, description = "`{\"object\": \"list\", \"data\": [{\"id\"}]}`", body = Object)))]
pub(crate) async fn list_models(State(state): State<AppState>) -> Response {
    let models: Vec<Value> = state
        .models()
        .names()
        .into_iter()
        .map(|name| json!({ "id": name, "object": "model", "owned_by": "agent-host" }))
        .collect();
    json_response(StatusCode::OK, json!({ "object": "list", "data": models }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .metrics()
        .render(crate::metrics::Snapshot::read(&state));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({ "status": "ok" }))
}

/// Ready once the server exists: its state is built only after the plugins
/// are loaded and the store is open.
/// Plugins loaded and the store open.
#[utoipa::path(get, path = "/readyz", responses((status = 200, description = "`{\"ready\", \"tools\", \"turns_in_flight\", \"live_sessions\"}`", body = Object)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "ready": true,
            "tools": state.runtime().tools().len(),
            "turns_in_flight": state.turns_in_flight(),
            "live_sessions": state.live().len(),
        }),
    )
}

async fn openapi_document() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API is under /v1 (docs/server.md)",
    )
}
