//! Projection routes: deploy, inspect, read and command live projections,
//! plus Prometheus `GET /metrics`.
//!
//! - `POST /projections` `{"name", "plugin": "<base64 wasm>", "streams":
//!   [...], "options"?: {"snapshot_every", "snapshot_after_ms",
//!   "catch_up_after_ms", "strict", "snapshot_store": "durable"|"memory",
//!   "start_from": "beginning"|"end", "call_timeout_ms", "max_memory_bytes",
//!   "max_snapshot_bytes", "batch_size"}, "keep_state"?: bool}` → `201`
//!   `{"name", "plugin_hash", "plugin_name", "plugin_version", "status":
//!   "deployed"|"building", "replaces", "follows": {"entries": [{"entry",
//!   "kind": "stream"|"category"|"all", "streams", "events"}], "streams",
//!   "events", "warnings": [...]}}` (`building`: a new version is being
//!   built beside the running one and swaps in when it has caught up;
//!   `follows`: what the streams match in the log today, with warnings for
//!   entries that match nothing or look like a shell-expanded pattern).
//!   A `*` other than at the end of an entry, `[` or `]` is a 400 naming
//!   `streams`.
//! - `GET /projections` → `{"projections": [status...]}` (in cluster mode
//!   every node's, see [`super::listing`]); `?summary=true` → counts only
//! - `GET /projections/{name}` → status; `DELETE /projections/{name}` undeploys
//! - `GET /projections/{name}/state?dirty=&pointer=&timeout_ms=` → the state
//!   (partitioned projections: `partition=KEY` or `all=true`, see
//!   [`super::partitions`])
//! - `GET /projections/{name}/snapshot?dirty=&timeout_ms=` → `{"offset", "state"}`
//! - `POST /projections/{name}/query?dirty=&timeout_ms=` (body: the request,
//!   JSON by convention) → the plugin's answer
//! - `POST /projections/{name}/catch-up?sync=&timeout_ms=` → `{}` or, with
//!   `sync=true`, `{"offset", "state"}` once caught up with the head at the
//!   time of the request
//! - `POST /projections/{name}/take-snapshot` → `{"offset"}`
//! - `POST /projections/{name}/{stop|start|reset|resume|skip}` → `{"ok": true}`
//!   (`reset?keep_skips=true` keeps the positions stepped over with `skip`)
//!   (`skip` also answers `{"skipped": position}`)
//! - time travel (see [`super::history`]): `state`, `snapshot` and `query`
//!   take `at=N` (and `no_wait=true`); `GET /projections/{name}/snapshots`,
//!   `GET /projections/{name}/diff?from=&to=&events=`
//!
//! A deploy asking for more than the server's maximum in any per-projection
//! limit ([`DeployMaximums`]: `hume serve --max-call-timeout`, `--max-memory`,
//! `--max-snapshot`, `--max-batch-size`) is a 400 naming the option and the
//! maximum, and deploys nothing.
//!
//! Reads are consistent unless `dirty=true`: they wait (up to `timeout_ms`,
//! default 5000) until the projection has examined every event that was in
//! the log when the request arrived (in cluster mode: the head JetStream
//! reports at that moment, so every append any node acknowledged before).
//!
//! In cluster mode a request for a projection another node runs is passed
//! to that node (see [`super::forward`]).

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub use super::deploy_limits::DeployMaximums;
use super::{manager, plugin_bytes, position, state_value, ApiError, AppState, BodyBytes};
use crate::log::coverage::Coverage;
use crate::projection::{
    telemetry, DeployRequest, ProjectionOptions, StateView, Wait, DEFAULT_READ_TIMEOUT,
};

/// Largest deploy request (a base64 plugin of up to ~96 MiB).
pub(super) const MAX_DEPLOY_BYTES: usize = 128 * 1024 * 1024;

/// The projection routes and `/metrics`, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/projections",
            get(super::listing::list)
                .post(deploy)
                .layer(DefaultBodyLimit::max(MAX_DEPLOY_BYTES)),
        )
        .route("/projections/{name}", get(status).delete(undeploy))
        .route("/projections/{name}/state", get(state))
        .route("/projections/{name}/snapshot", get(snapshot))
        .route("/projections/{name}/query", post(query))
        .route("/projections/{name}/catch-up", post(catch_up))
        .route("/projections/{name}/take-snapshot", post(take_snapshot))
        .route("/projections/{name}/{command}", post(command))
        .route("/metrics", get(metrics))
}

/// Body of `POST /projections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployBody {
    /// Projection name.
    pub name: String,
    /// The plugin component, base64 (standard alphabet, padded).
    pub plugin: String,
    /// Streams and categories (`account-*`) to follow.
    pub streams: Vec<String>,
    /// Options; missing ones take the seed's defaults.
    #[serde(default)]
    pub options: ProjectionOptions,
    /// New version only: start from the running version's snapshot.
    #[serde(default)]
    pub keep_state: bool,
    /// New version only: keep the running version's skipped positions.
    #[serde(default)]
    pub keep_skips: bool,
}

async fn deploy(
    State(app): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    BodyBytes(bytes): BodyBytes,
) -> Result<Response, ApiError> {
    let manager = manager(&app)?;
    let mut body: DeployBody = super::parse_json(&bytes)?;
    // Cluster mode: a new version or new options go to the node that runs
    // the projection.
    match super::forward::owner_of_deploy(&app, &body.name, &headers).await {
        Ok(None) => {}
        Ok(Some((node, url))) => {
            let cluster = app
                .cluster
                .as_ref()
                .expect("an owner elsewhere: cluster mode");
            return Ok(
                super::forward::proxy(cluster, &node, &url, &method, &uri, &headers, bytes).await,
            );
        }
        Err(response) => return Ok(response),
    }
    app.limits.deploy.fit_defaults(&mut body.options);
    app.limits.deploy.check(&body.options)?;
    let wasm = plugin_bytes(&body.plugin)?;
    let streams_given = body.streams.clone();
    let outcome = manager
        .deploy(DeployRequest {
            name: body.name,
            wasm,
            streams: body.streams,
            options: body.options,
            keep_state: body.keep_state,
            keep_skips: body.keep_skips,
        })
        .await?;
    // What the selector follows today (the deploy stands even if the log
    // cannot list its streams now).
    let follows = match app.log.streams().await {
        Ok(streams) => Some(Coverage::of(&streams_given, &streams)),
        Err(err) => {
            tracing::warn!(error = %err, "cannot list the streams to report what a deploy follows");
            None
        }
    };
    // Options changed in place create nothing.
    let code = if outcome.status == "updated" {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(DeployReply { outcome, follows })).into_response())
}

/// Answer of `POST /projections`: the outcome and what it follows today.
#[derive(Debug, serde::Serialize)]
struct DeployReply {
    #[serde(flatten)]
    outcome: crate::projection::DeployOutcome,
    follows: Option<Coverage>,
}

async fn status(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let status = manager(&app)?.status(&name)?;
    let Some(cluster) = &app.cluster else {
        return Ok(Json(status).into_response());
    };
    // Cluster mode: which node runs it (this one: elsewhere it was passed on).
    let mut value = serde_json::to_value(status)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    value["node"] = cluster.node().into();
    Ok(Json(value).into_response())
}

async fn undeploy(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    manager(&app)?.undeploy(&name).await?;
    app.journals.remove(&name);
    Ok(Json(serde_json::json!({ "ok": true, "undeployed": name })).into_response())
}

/// Query of the read endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Answer at once with the current state instead of catching up first.
    #[serde(default)]
    pub dirty: bool,
    /// A JSON pointer (`/accounts/42`) into a JSON state.
    #[serde(default)]
    pub pointer: Option<String>,
    /// How long a consistent read may wait, ms (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// `catch-up` only: wait until caught up and answer the snapshot.
    #[serde(default)]
    pub sync: bool,
    /// Time travel: the state after every event up to this position.
    #[serde(default)]
    pub at: Option<String>,
    /// Time travel: answer 409 at once when the projection has not
    /// examined `at` yet, instead of waiting.
    #[serde(default)]
    pub no_wait: bool,
    /// Partitioned projections: read this partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// Partitioned projections, `state` only: every partition as NDJSON.
    #[serde(default)]
    pub all: bool,
}

impl ReadQuery {
    pub(super) fn timeout(&self) -> Duration {
        self.timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_READ_TIMEOUT)
    }

    /// How a history read waits.
    pub(super) fn wait(&self) -> Wait {
        if self.no_wait {
            Wait::No
        } else {
            Wait::UpTo(self.timeout())
        }
    }

    /// `at`, when given: a position (a non-negative integer).
    fn at(&self) -> Result<Option<u64>, ApiError> {
        self.at
            .as_deref()
            .map(|text| position("at", text))
            .transpose()
    }
}

pub(super) fn parse_query(
    q: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<ReadQuery, ApiError> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError::bad_field(
            "query",
            format!(
                "{}; use dirty=true|false, pointer=/json/pointer, timeout_ms=N, sync=true|false, \
                 at=POSITION, no_wait=true|false, partition=KEY, all=true|false",
                e.body_text()
            ),
        )
    })
}

/// The state as JSON: parsed when the plugin says JSON, else a base64 string.
fn state_json(view: &StateView) -> Result<serde_json::Value, ApiError> {
    state_value(&view.state, view.json)
}

/// A read at `at` (time travel) or of the live state.
async fn read_view(app: &AppState, name: &str, q: &ReadQuery) -> Result<StateView, ApiError> {
    let manager = manager(app)?;
    if let Some(key) = &q.partition {
        if let Some(at) = q.at()? {
            return Ok(manager
                .read_partition_at(name, key, at, q.timeout())
                .await?);
        }
        return Ok(manager
            .read_partition(name, key, !q.dirty, q.timeout())
            .await?);
    }
    Ok(match q.at()? {
        Some(at) => {
            let view = manager.state_at(name, at, q.wait()).await?;
            StateView {
                offset: view.offset,
                state: view.state,
                json: view.json,
            }
        }
        None => manager.read(name, !q.dirty, q.timeout()).await?,
    })
}

/// A query of one partition at a position is not there yet: say so.
fn no_at_with_partition(q: &ReadQuery) -> Result<(), ApiError> {
    match &q.at {
        Some(_) => Err(ApiError::bad_field(
            "at",
            "a query (at=N) of one partition at a position is not available yet: read its \
             state at N with GET .../state?partition=KEY&at=N, or query it without at",
        )),
        None => Ok(()),
    }
}

async fn state(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    if q.all {
        if q.partition.is_some() || q.pointer.is_some() || q.at.is_some() {
            return Err(ApiError::bad_field(
                "all",
                "all=true reads every partition whole: drop partition, pointer and at",
            ));
        }
        return super::partitions::all_states(&app, &name, !q.dirty, q.timeout()).await;
    }
    let view = read_view(&app, &name, &q).await?;
    let value = state_json(&view)?;
    let value = match &q.pointer {
        None => value,
        Some(p) => value.pointer(p).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("nothing at JSON pointer `{p}` in the state of `{name}` (pointers look like /accounts/42)"),
            )
        })?,
    };
    Ok((
        [(
            header::HeaderName::from_static("x-hume-offset"),
            view.offset.to_string(),
        )],
        Json(value),
    )
        .into_response())
}

async fn snapshot(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    if let (Some(at), None) = (q.at()?, &q.partition) {
        // Time travel also says how the state was reached.
        let view = manager(&app)?.state_at(&name, at, q.wait()).await?;
        let state = state_value(&view.state, view.json)?;
        return Ok(Json(serde_json::json!({
            "offset": view.offset,
            "at": view.at,
            "state": state,
            "from_snapshot": view.from_snapshot,
            "replayed": view.replayed,
        }))
        .into_response());
    }
    let view = read_view(&app, &name, &q).await?;
    let state = state_json(&view)?;
    Ok(Json(serde_json::json!({ "offset": view.offset, "state": state })).into_response())
}

async fn query(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
    BodyBytes(body): BodyBytes,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    let manager = manager(&app)?;
    if let Some(key) = &q.partition {
        no_at_with_partition(&q)?;
        let answer = manager
            .query_partition(&name, key, body.to_vec(), !q.dirty, q.timeout())
            .await?;
        return Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response());
    }
    let answer = match q.at()? {
        Some(at) => {
            manager
                .query_at(&name, at, body.to_vec(), q.wait())
                .await?
                .0
        }
        None => {
            manager
                .query(&name, body.to_vec(), !q.dirty, q.timeout())
                .await?
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}

async fn catch_up(
    State(app): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = parse_query(q)?;
    let manager = manager(&app)?;
    manager.catch_up(&name).await?;
    if !q.sync {
        return Ok(Json(serde_json::json!({})).into_response());
    }
    let view = manager.read(&name, true, q.timeout()).await?;
    let state = state_json(&view)?;
    Ok(Json(serde_json::json!({ "offset": view.offset, "state": state })).into_response())
}

async fn take_snapshot(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let offset = manager(&app)?.take_snapshot(&name).await?;
    Ok(Json(serde_json::json!({ "offset": offset })).into_response())
}

/// Flags of the lifecycle commands.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandQuery {
    /// `reset` only: keep the positions stepped over with `skip`.
    #[serde(default)]
    keep_skips: bool,
    /// `reset`, `resume`, `skip` of one partition of a partitioned projection.
    #[serde(default)]
    partition: Option<String>,
}

async fn command(
    State(app): State<AppState>,
    Path((name, command)): Path<(String, String)>,
    q: Result<Query<CommandQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "bad query string: {e}; the flags are `keep_skips=true` (reset) and \
                 `partition=KEY` (reset, resume, skip of one partition)"
            ),
        )
    })?;
    let manager = manager(&app)?;
    if let Some(key) = &q.partition {
        return super::partitions::command(manager, &name, &command, key, q.keep_skips).await;
    }
    match command.as_str() {
        "stop" => manager.stop(&name).await?,
        "start" => manager.start_projection(&name).await?,
        "reset" => manager.reset(&name, q.keep_skips).await?,
        "resume" => manager.resume(&name).await?,
        "skip" => {
            let position = manager.skip(&name).await?;
            return Ok(Json(serde_json::json!({ "ok": true, "skipped": position })).into_response());
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown projection command `{other}`: use state, snapshot, query, catch-up, \
                     take-snapshot, stop, start, reset, resume or skip"
                ),
            ))
        }
    }
    Ok(Json(serde_json::json!({ "ok": true })).into_response())
}

async fn metrics(State(app): State<AppState>) -> Response {
    // The log's state, sampled now: 0 when appends are refused (disk full
    // or a failed write; `/health` says which and why).
    let log = app.log.writability();
    metrics::gauge!("hume_log_writable").set(if log.is_writable() { 1.0 } else { 0.0 });
    metrics::gauge!("hume_log_failed").set(
        if matches!(log, crate::log::Writability::Failed { .. }) {
            1.0
        } else {
            0.0
        },
    );
    match telemetry::render_metrics() {
        Some(text) => {
            // An undeployed projection's series go with it.
            let text = match &app.projections {
                Some(manager) => {
                    let names: std::collections::HashSet<String> =
                        manager.list().into_iter().map(|s| s.name).collect();
                    telemetry::without_undeployed(&text, |n| names.contains(n))
                }
                None => text,
            };
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not enabled in this process (no Prometheus recorder installed)",
        )
        .into_response(),
    }
}
