//! Routes of partitioned projections (see the README, "Partitioned
//! projections"):
//!
//! - `GET /projections/{name}/partitions?prefix=&after=&limit=&faulted=` →
//!   `{"partitions": [{"partition", "last_position", "events", "size",
//!   "fault"?}], "next": KEY|null}` (by key; pass `next` as `after` for the
//!   next page; `limit` defaults to 1000, at most 10000)
//! - `GET /projections/{name}/state?partition=KEY[&pointer=&dirty=]`,
//!   `GET /projections/{name}/snapshot?partition=KEY`,
//!   `POST /projections/{name}/query?partition=KEY`: one partition (see
//!   [`super::projections`]); an unknown key is a 404 naming it
//! - `GET /projections/{name}/state?all=true` → NDJSON, one line
//!   `{"partition": KEY, "state": ...}` per partition, by key
//! - `POST /projections/{name}/{resume|skip|reset}?partition=KEY` → `{"ok":
//!   true, "partition", "skipped"?}`: repair one partition (see the README)

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{manager, state_value, ApiError, AppState};
use crate::projection::{ListQuery, Manager};

/// Default and largest page of `GET .../partitions`.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;
/// Partitions per page of `state?all=true`.
const STATES_PAGE: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new().route("/projections/{name}/partitions", get(list))
}

/// Query of `GET .../partitions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    faulted: bool,
}

async fn list(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::bad_field(
            "query",
            format!(
                "{}; use prefix=P, after=KEY, limit=N (1-{MAX_PAGE}), faulted=true|false",
                e.body_text()
            ),
        )
    })?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_field(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}, got {limit}"),
        ));
    }
    let page = manager(&app)?
        .partitions(
            &name,
            ListQuery {
                prefix: q.prefix,
                after: q.after,
                limit,
                faulted: q.faulted,
            },
        )
        .await?;
    Ok(Json(page).into_response())
}

/// `state?all=true`: every partition's state as NDJSON, by key. The first
/// page is read consistently (unless `dirty`), so errors (not partitioned,
/// faulted, timeout) are answered with their status before streaming.
pub(super) async fn all_states(
    app: &AppState,
    name: &str,
    consistent: bool,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let manager = manager(app)?.clone();
    let first = manager
        .partition_states(name, None, STATES_PAGE, consistent, timeout)
        .await?;
    let name = name.to_string();
    let stream = futures::stream::unfold(
        (Some(first), manager, name, timeout),
        |(page, manager, name, timeout)| async move {
            let page = page?;
            let mut out = Vec::new();
            for (key, view) in &page {
                let state = state_value(&view.state, view.json)
                    .unwrap_or_else(|e| serde_json::json!({ "error": e.message }));
                let line = serde_json::json!({ "partition": key, "state": state });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
            let next = match page.last() {
                Some((last, _)) if page.len() == STATES_PAGE => {
                    next_page(&manager, &name, last.clone(), timeout).await
                }
                _ => None,
            };
            Some((Ok::<_, std::io::Error>(out), (next, manager, name, timeout)))
        },
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /projections/{name}/{resume|skip|reset}?partition=KEY`.
pub(super) async fn command(
    manager: &Manager,
    name: &str,
    command: &str,
    key: &str,
    keep_skips: bool,
) -> Result<Response, ApiError> {
    match command {
        "resume" => manager.resume_partition(name, key).await?,
        "reset" => manager.reset_partition(name, key, keep_skips).await?,
        "skip" => {
            let position = manager.skip_partition(name, key).await?;
            return Ok(Json(
                serde_json::json!({ "ok": true, "skipped": position, "partition": key }),
            )
            .into_response());
        }
        other => {
            return Err(ApiError::bad_field(
                "partition",
                format!("`{other}` does not take a partition: only resume, skip and reset do"),
            ))
        }
    }
    Ok(Json(serde_json::json!({ "ok": true, "partition": key })).into_response())
}

async fn next_page(
    manager: &Manager,
    name: &str,
    after: String,
    timeout: Duration,
) -> Option<Vec<(String, crate::projection::StateView)>> {
    match manager
        .partition_states(name, Some(after), STATES_PAGE, false, timeout)
        .await
    {
        Ok(page) => Some(page),
        Err(err) => {
            tracing::warn!(projection = %name, error = %err, "streaming partition states stopped");
            None
        }
    }
}
