//! The HTTP JSON API served by `hume serve`.
//!
//! [`router`] assembles every group of routes over one shared [`AppState`].
//! Every error is a JSON body `{"error": "..."}` (plus `field` for a 400
//! about one field, `current_revision` for a 409) whose message says what
//! went wrong and what to do; malformed JSON and wrong types are 400s that
//! name the field, never axum's plain-text defaults.
//!
//! [`guard`] puts the security layers (host, CORS, token, browser-borne
//! writes, body deadline) in front of every route; [`server`] accepts the
//! connections, with header timeouts and a connection limit; [`ui`] serves
//! the operator web UI at `/ui/` (embedded files over this same API).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use base64::Engine as _;

use crate::log::{EventLog, LogError};
use crate::projection::Manager;
use crate::storage::StorageErrorKind;

mod deploy_limits;
pub mod events;
pub mod forward;
pub mod guard;
pub mod history;
mod listing;
pub mod logs;
mod partitions;
pub mod plugins;
mod projection_errors;
pub mod projections;
pub mod server;
#[cfg(test)]
mod tests;
pub mod ui;

/// Limits of the HTTP surface.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body in bytes; larger is a 413.
    pub max_body_bytes: usize,
    /// Page size when the client gives no `limit`.
    pub default_page: usize,
    /// Largest page; a larger `limit` is clamped (follow `next`).
    pub max_page: usize,
    /// Longest a read may wait for new events (`wait_ms`).
    pub max_wait: Duration,
    /// The most a deploy may ask for in each per-projection limit.
    pub deploy: projections::DeployMaximums,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body_bytes: 40 * 1024 * 1024,
            default_page: 1000,
            max_page: 10_000,
            max_wait: Duration::from_secs(60),
            deploy: projections::DeployMaximums::default(),
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// Limits of the HTTP surface.
    pub limits: ApiLimits,
    /// Set to `true` when the server starts shutting down, so long-polling
    /// requests (`wait_ms`) return at once instead of holding the shutdown.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// The live projection runtime (`None`: the projection routes answer 503).
    pub projections: Option<Arc<crate::projection::Manager>>,
    /// Who may talk to the API (hosts, origins, token, body deadline).
    pub security: guard::SecurityConfig,
    /// Each projection's recent log lines (`hume logs`).
    pub journals: Arc<crate::journal::Journals>,
    /// Cluster mode: who runs what, to pass requests to the node that runs
    /// the projection (see [`forward`]). `None`: embedded, one node.
    pub cluster: Option<forward::Cluster>,
}

impl AppState {
    /// State over `log` with default limits.
    pub fn new(log: Arc<dyn EventLog>) -> AppState {
        AppState {
            log,
            limits: ApiLimits::default(),
            shutdown: Arc::new(tokio::sync::watch::channel(false).0),
            projections: None,
            security: guard::SecurityConfig::default(),
            journals: crate::journal::Journals::new(),
            cluster: None,
        }
    }
}

/// The whole API: events and projection routes, `/health`, JSON 404s,
/// behind the [`guard`] layers.
pub fn router(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    let security = Arc::new(state.security.clone());
    let app = Router::new()
        .merge(events::routes())
        .merge(projections::routes())
        .merge(partitions::routes())
        .merge(history::routes())
        .merge(logs::routes())
        .merge(plugins::routes())
        .merge(listing::routes())
        .merge(ui::routes())
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::forward,
        ))
        .with_state(state);
    guard::protect(app, security)
}

/// `/health`: `status` is `ok`, `disk_full` (appends refused until space is
/// freed; still 200, since reads work and a restart would not help) or
/// `failed` (a write or fsync failed: 503, restart the server), with the
/// details under `log`.
async fn health(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let log = state.log.writability();
    let (code, status) = match &log {
        crate::log::Writability::Writable => (StatusCode::OK, "ok"),
        crate::log::Writability::DiskFull { .. } => (StatusCode::OK, "disk_full"),
        crate::log::Writability::Failed { .. } => (StatusCode::SERVICE_UNAVAILABLE, "failed"),
    };
    let body = serde_json::json!({
        "status": status,
        "head": state.log.head(),
        "writable": log.is_writable(),
        "log": log,
    });
    (code, Json(body)).into_response()
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {method} {}. Endpoints: POST/GET /streams/{{stream}}, GET /streams, \
             /all, /categories/{{prefix}}, /projections[/{{name}}[/...]], /nodes, \
             /plugins/validate, /metrics, /health; the web UI is at /ui/",
            uri.path()
        ),
    )
}

/// An error response: status + JSON `{"error", "field"?, "current_revision"?}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human message: what went wrong and what to do.
    pub message: String,
    /// The request field at fault, for 400s.
    pub field: Option<String>,
    /// The stream's current revision, for 409s.
    pub current_revision: Option<u64>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            current_revision: None,
        }
    }

    /// A 400 about one field.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, message)
        }
    }
}

impl From<LogError> for ApiError {
    fn from(err: LogError) -> ApiError {
        let status = match &err {
            LogError::InvalidStream { .. }
            | LogError::InvalidSelector { .. }
            | LogError::EmptyBatch
            | LogError::InvalidEvent { .. } => StatusCode::BAD_REQUEST,
            LogError::EventTooLarge { .. } | LogError::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            LogError::WrongExpectedRevision { .. } => StatusCode::CONFLICT,
            LogError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            // The log reported these once, when they began.
            LogError::Storage(e) if e.kind == StorageErrorKind::NoSpace => {
                tracing::debug!(error = %err, "append refused: the disk is full");
                StatusCode::INSUFFICIENT_STORAGE
            }
            LogError::Storage(e) if e.kind == StorageErrorKind::WritesStopped => {
                tracing::debug!(error = %err, "append refused after an earlier write failure");
                StatusCode::SERVICE_UNAVAILABLE
            }
            LogError::Storage(e) if e.kind == StorageErrorKind::Unavailable => {
                tracing::warn!(error = %err, "the log cannot serve this right now");
                StatusCode::SERVICE_UNAVAILABLE
            }
            LogError::Storage(e) if e.kind == StorageErrorKind::OutcomeUnknown => {
                tracing::warn!(error = %err, "an append was not acknowledged");
                StatusCode::GATEWAY_TIMEOUT
            }
            LogError::Storage(_) | LogError::Corrupt { .. } => {
                tracing::error!(error = %err, "event log failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let current_revision = match &err {
            LogError::WrongExpectedRevision { current, .. } => Some(*current),
            _ => None,
        };
        let message = match &err {
            LogError::Storage(e) if e.kind == StorageErrorKind::NoSpace => {
                format!("the disk is full; nothing was written: {err}")
            }
            LogError::Storage(e) if e.kind == StorageErrorKind::Unavailable => format!(
                "{err}. The log cannot serve this right now (no leader for it, e.g. during \
                 an election, or no server answering); nothing was written: retry in a moment"
            ),
            LogError::Storage(e) if e.kind == StorageErrorKind::OutcomeUnknown => format!(
                "{err}. The append was sent but not acknowledged: it may or may not be in the \
                 log. Read the stream to find out, or retry with expected_revision so that it \
                 cannot land twice"
            ),
            _ => err.to_string(),
        };
        ApiError {
            status,
            field: err.field(),
            message,
            current_revision,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.message.into());
        if let Some(f) = self.field {
            body.insert("field".into(), f.into());
        }
        if let Some(r) = self.current_revision {
            body.insert("current_revision".into(), r.into());
        }
        let mut response = (self.status, Json(serde_json::Value::Object(body))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 here is passing (shutting down, an election, a
            // store refusing writes until restarted): say when to ask again.
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 1.into());
        }
        response
    }
}

/// A JSON request body extractor whose failures are [`ApiError`]s: 413 for
/// an oversize body, 400 naming the field (`events[0].kind`) for malformed
/// JSON, wrong types, missing or unknown fields.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let BodyBytes(bytes) = BodyBytes::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The raw request body, with the failures of [`JsonBody`] as
/// [`ApiError`]s: 413 for an oversize body, 408 for one that did not arrive
/// within the server's `--body-read-timeout`.
#[derive(Debug, Clone)]
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(BodyBytes)
            .map_err(|rej| {
                if let Some(timeout) = guard::body_timeout_in(&rej) {
                    ApiError::new(StatusCode::REQUEST_TIMEOUT, timeout.to_string())
                } else if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the request body is larger than the server accepts: split the batch \
                         into several appends (e.g. `hume append --file F --batch-size N`)",
                    )
                } else {
                    ApiError::new(
                        rej.status(),
                        format!("cannot read the request body: {}", rej.body_text()),
                    )
                }
            })
    }
}

/// Parse a JSON document, naming the path of the first problem.
/// The plugin bytes of a deploy or validate request (base64 in JSON).
pub(super) fn plugin_bytes(base64_text: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(base64_text.as_bytes())
        .map_err(|e| {
            ApiError::bad_field(
                "plugin",
                format!("`plugin` must be the component's bytes in base64: {e}"),
            )
        })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_field(
            "body",
            "the request body is empty: send a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        // serde_path_to_error writes `?` for a segment it could not name
        // (e.g. a syntax error before a key was read): drop those.
        let full = err.path().to_string();
        let mut path = full.as_str();
        while let Some(p) = path.strip_suffix(".?") {
            path = p;
        }
        let path = if path == "?" {
            ".".to_string()
        } else {
            path.to_string()
        };
        let inner = err.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            "is not valid JSON"
        } else {
            "is invalid"
        };
        if path == "." {
            ApiError::bad_field("body", format!("the request body {what}: {inner}"))
        } else {
            ApiError::bad_field(path.clone(), format!("`{path}` {what}: {inner}"))
        }
    })?;
    de.end().map_err(|err| {
        ApiError::bad_field(
            "body",
            format!("the request body has trailing characters after the JSON object: {err}"),
        )
    })?;
    Ok(value)
}

/// A `200 OK` response with an already-encoded JSON body.
pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Parse a log position given as `field`: a non-negative integer.
pub(crate) fn position(field: &str, text: &str) -> Result<u64, ApiError> {
    text.trim().parse::<u64>().map_err(|_| {
        ApiError::bad_field(
            field,
            format!(
                "`{field}` must be a log position (a non-negative integer, e.g. {field}=1200), \
                 not `{text}`"
            ),
        )
    })
}

pub(crate) fn manager(state: &AppState) -> Result<&Manager, ApiError> {
    state.projections.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server runs no projection runtime",
        )
    })
}

/// State bytes as JSON: parsed when `json`, else a base64 string.
pub(crate) fn state_value(state: &[u8], json: bool) -> Result<serde_json::Value, ApiError> {
    if json {
        serde_json::from_slice(state).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the plugin declares JSON state but its snapshot is not valid JSON: {e}"),
            )
        })
    } else {
        Ok(serde_json::Value::String(
            base64::engine::general_purpose::STANDARD.encode(state),
        ))
    }
}
