//! `GET /projections` and `GET /nodes`, which in cluster mode cover every
//! node.
//!
//! - `GET /projections?summary=true` → counts over this node's projections
//!   only (`total`, `at_head`, `behind`, `by_state`, live instances): cheap
//!   to poll on a server with 100,000 projections.
//! - `GET /projections[?local=true]` → `{"projections": [status + "node"],
//!   "unavailable": [{"name", "node", "reason"}]}`. Embedded: this server's
//!   projections (no `node`). Cluster mode: every deployed projection, each
//!   with the id of the node that runs it under `node`; the figures of
//!   those run elsewhere are asked of their nodes (`local=true`: what this
//!   node runs only). A deployed projection no node answered for (moving
//!   between nodes, its node unreachable) is under `unavailable`, with why.
//! - `GET /nodes` → `{"cluster": true, "node": THIS, "nodes": [{"id",
//!   "url", "projections", "live_instances", "events_per_sec"}]}`: the
//!   live nodes as they last reported in the registry (every third of the
//!   lease TTL). Embedded: `{"cluster": false, "nodes": []}`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::forward::{Cluster, FORWARDED_BY};
use super::{manager, ApiError, AppState};

/// How long a listing waits for another node's figures.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// `/nodes`, to merge into the main router (`/projections` is routed with
/// the other projection routes).
pub fn routes() -> Router<AppState> {
    Router::new().route("/nodes", get(nodes))
}

/// Query of `GET /projections`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only what this node runs.
    #[serde(default)]
    local: bool,
    /// Only counts over what this node runs, not every status.
    #[serde(default)]
    summary: bool,
}

/// The embedded listing, serialised straight from the statuses (no JSON
/// tree in between: the listing of 100,000 projections is tens of MB).
#[derive(serde::Serialize)]
struct Listing {
    projections: Vec<crate::projection::ProjectionStatus>,
}

fn store_down(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("cannot list {what}: the cluster's store did not answer ({e}); retry"),
    )
}

pub(super) async fn list(
    State(app): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::bad_field(
            "query",
            format!(
                "{}; the flags are local=true and summary=true",
                e.body_text()
            ),
        )
    })?;
    let manager = manager(&app)?;
    if q.summary {
        return Ok(Json(manager.summary()).into_response());
    }
    let Some(cluster) = &app.cluster else {
        let projections = manager.list();
        return Ok(Json(Listing { projections }).into_response());
    };
    let me = cluster.node().to_string();
    let here: Vec<Value> = manager
        .list()
        .into_iter()
        .filter_map(|s| {
            let mut v = serde_json::to_value(s).ok()?;
            v["node"] = me.clone().into();
            Some(v)
        })
        .collect();
    if q.local || headers.contains_key(FORWARDED_BY) {
        return Ok(Json(json!({ "projections": here, "unavailable": [] })).into_response());
    }
    let deployed = manager
        .deployed()
        .await
        .map_err(|e| store_down("the deployed projections", e))?;
    let owners = cluster
        .directory
        .owners()
        .await
        .map_err(|e| store_down("the leases", e))?;
    let nodes = cluster
        .directory
        .nodes()
        .await
        .map_err(|e| store_down("the nodes", e))?;
    // Every other node that owns something, asked at once.
    let asked = nodes
        .iter()
        .filter(|n| n.id != me && owners.values().any(|o| *o == n.id))
        .map(|n| async {
            let answer = ask(cluster, &n.url, &headers).await;
            (n.id.clone(), answer)
        });
    let answers: BTreeMap<String, Result<Vec<Value>, String>> =
        futures::future::join_all(asked).await.into_iter().collect();
    let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
    for v in here {
        by_name.insert(v["name"].as_str().unwrap_or_default().to_string(), v);
    }
    for list in answers.values().flatten() {
        for v in list {
            let name = v["name"].as_str().unwrap_or_default().to_string();
            if owners.get(&name) == v["node"].as_str().map(str::to_string).as_ref() {
                by_name.insert(name, v.clone());
            }
        }
    }
    let mut projections = Vec::new();
    let mut unavailable = Vec::new();
    for record in &deployed {
        let name = &record.name;
        let owner = owners.get(name);
        let row = by_name
            .get(name)
            .filter(|v| owner.is_none() || v["node"].as_str() == owner.map(String::as_str));
        if let Some(row) = row {
            projections.push(row.clone());
            continue;
        }
        let reason = match owner {
            None => "moving: no node holds its lease now; retry shortly".to_string(),
            Some(o) => match answers.get(o) {
                Some(Err(e)) => format!("node `{o}` runs it but did not answer: {e}"),
                Some(Ok(_)) => format!("starting on node `{o}`"),
                None if nodes.iter().any(|n| n.id == *o) => format!("starting on node `{o}`"),
                None => format!("moving: node `{o}` left the cluster"),
            },
        };
        unavailable.push(json!({ "name": name, "node": owner, "reason": reason }));
    }
    Ok(Json(json!({ "projections": projections, "unavailable": unavailable })).into_response())
}

/// What the node at `url` runs (its `/projections?local=true`).
async fn ask(cluster: &Cluster, url: &str, headers: &HeaderMap) -> Result<Vec<Value>, String> {
    let mut request = cluster
        .client()
        .get(format!(
            "{}/projections?local=true",
            url.trim_end_matches('/')
        ))
        .header(FORWARDED_BY, cluster.node())
        .timeout(ASK_TIMEOUT);
    if let Some(token) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, token);
    }
    let answer = request.send().await.map_err(|e| e.to_string())?;
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", body["error"]));
    }
    Ok(body["projections"].as_array().cloned().unwrap_or_default())
}

async fn nodes(State(app): State<AppState>) -> Result<Response, ApiError> {
    let Some(cluster) = &app.cluster else {
        return Ok(Json(json!({ "cluster": false, "nodes": [] })).into_response());
    };
    let nodes = cluster
        .directory
        .nodes()
        .await
        .map_err(|e| store_down("the nodes", e))?;
    Ok(Json(json!({ "cluster": true, "node": cluster.node(), "nodes": nodes })).into_response())
}
