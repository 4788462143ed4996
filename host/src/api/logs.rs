//! A projection's log (see [`crate::journal`]):
//!
//! - `GET /projections/{name}/logs?after=SEQ&limit=N&wait_ms=MS` →
//!   `{"lines": [{"seq", "at", "level", "source", "message"}], "next",
//!   "dropped"}`: the lines after `after` (0: from the oldest kept), at
//!   most `limit` (default and maximum 1000). With `wait_ms` and nothing
//!   new, the answer waits (capped by the server) for the next line: `hume
//!   logs NAME --follow` asks again with `after=next`.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{manager, ApiError, AppState};

/// Most lines one answer carries.
const MAX_LINES: usize = 1000;

/// The log routes, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new().route("/projections/{name}/logs", get(logs))
}

/// Query of `GET /projections/{name}/logs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
    wait_ms: Option<u64>,
}

async fn logs(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<LogsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query string: {e}; expected after=SEQ, limit=N (1-1000), wait_ms=MS"),
        )
    })?;
    // A 404 naming the projection when it is not deployed.
    manager(&app)?.status(&name)?;
    let limit = q.limit.unwrap_or(MAX_LINES);
    if limit == 0 || limit > MAX_LINES {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit must be between 1 and {MAX_LINES}, got {limit}"),
        ));
    }
    let wait = q
        .wait_ms
        .map(|ms| Duration::from_millis(ms).min(app.limits.max_wait));
    let mut shutdown = app.shutdown.subscribe();
    let stop = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    let page = app.journals.read(&name, q.after, limit, wait, stop).await;
    Ok(Json(page).into_response())
}
