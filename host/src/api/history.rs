//! History routes: the retained snapshots of a projection and the change
//! between two positions. (`state`, `snapshot` and `query` take `at=N` in
//! [`super::projections`].)
//!
//! - `GET /projections/{name}/snapshots` → `{"snapshots": [{"offset",
//!   "scanned", "plugin_hash", "size", "taken_at"}...], "retention",
//!   "replay_bound"}`
//! - `GET /projections/{name}/diff?from=P1&to=P2&events=true&no_wait=&timeout_ms=`
//!   → `{"from", "to", "patch": [RFC 6902 operations], "events"?: [...],
//!   "truncated"?}`

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde::Deserialize;

use super::events::event_json;
use super::{manager, position, state_value, ApiError, AppState};
use crate::projection::{Wait, DEFAULT_READ_TIMEOUT};

/// The history routes, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projections/{name}/snapshots", get(snapshots))
        .route("/projections/{name}/diff", get(diff))
}

async fn snapshots(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let manager = manager(&app)?;
    let list = manager.snapshots(&name).await?;
    let options = manager.status(&name)?.options;
    Ok(Json(serde_json::json!({
        "snapshots": list,
        "retention": options.snapshot_history.to_string(),
        "replay_bound": options.snapshot_history.replay_bound(),
    }))
    .into_response())
}

/// Query of `GET /projections/{name}/diff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// First position.
    pub from: Option<String>,
    /// Second position.
    pub to: Option<String>,
    /// List the events in between.
    #[serde(default)]
    pub events: bool,
    /// Answer 409 at once when a position is not examined yet.
    #[serde(default)]
    pub no_wait: bool,
    /// How long to wait for a position, ms.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

async fn diff(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::bad_field(
            "query",
            format!(
                "{}; use from=P1, to=P2, events=true|false, no_wait=true|false, timeout_ms=N",
                e.body_text()
            ),
        )
    })?;
    let required = |field: &str, v: &Option<String>| match v {
        Some(text) => position(field, text),
        None => Err(ApiError::bad_field(
            field,
            format!("`{field}` is missing: give both positions, e.g. from=100&to=200"),
        )),
    };
    let from = required("from", &q.from)?;
    let to = required("to", &q.to)?;
    let wait = if q.no_wait {
        Wait::No
    } else {
        Wait::UpTo(
            q.timeout_ms
                .map(std::time::Duration::from_millis)
                .unwrap_or(DEFAULT_READ_TIMEOUT),
        )
    };
    let view = manager(&app)?.diff(&name, from, to, q.events, wait).await?;
    let side = |v: &crate::projection::TravelView| -> Result<serde_json::Value, ApiError> {
        Ok(serde_json::json!({
            "at": v.at,
            "offset": v.offset,
            "state": state_value(&v.state, v.json)?,
        }))
    };
    let mut body = serde_json::json!({
        "from": side(&view.from)?,
        "to": side(&view.to)?,
        "patch": view.patch,
    });
    if let Some(events) = &view.events {
        body["events"] = events.iter().map(event_json).collect();
        body["truncated"] = view.truncated.into();
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}
