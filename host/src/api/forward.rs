//! Cluster mode: a request for a projection another node runs is passed to
//! that node, so every node answers for every projection.
//!
//! [`forward`] sits in front of every `/projections/{name}[/...]` route
//! (the deploy route asks [`owner_of_deploy`] itself, since the name is in
//! its body). Per request, by the store's lease of `name`:
//!
//! - held by this node: answered here;
//! - held by another live node: the method, path, query, body and the
//!   `Authorization`, `Content-Type` and `Accept` headers go to its
//!   advertised URL with `x-hume-forwarded-by: THIS-NODE`, and its answer
//!   (status, headers, streamed body) comes back as is;
//! - held by nobody (or by a node gone from the registry) while the
//!   projection is deployed: `503` with `Retry-After`, the projection is
//!   moving between nodes; retry. Not deployed: answered here (a 404).
//!
//! A request that carries `x-hume-forwarded-by` is never forwarded again:
//! if it reached a node that does not hold the lease (it moved meanwhile)
//! it is a `503` with `Retry-After` too. Every answer for a projection
//! route names the node that produced it in `x-hume-node`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::cluster::directory::Owner;
use crate::cluster::Directory;

/// Set on a forwarded request: the node that forwarded it.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-hume-forwarded-by");
/// Set on every answer for a projection route in cluster mode: the node
/// that produced it.
pub const SERVED_BY: HeaderName = HeaderName::from_static("x-hume-node");

/// The request headers passed on to the owner.
const PASSED: [HeaderName; 3] = [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT];

/// This node's view of the cluster, and the HTTP client to reach the others.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Who runs what.
    pub directory: Arc<Directory>,
    client: reqwest::Client,
}

impl Cluster {
    /// The cluster view over `directory`.
    pub fn new(directory: Arc<Directory>) -> Cluster {
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .expect("an HTTP client without TLS or proxies builds");
        Cluster { directory, client }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        self.directory.node()
    }

    /// The client other nodes are asked with.
    pub(super) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Seconds a client should wait before retrying a moving projection:
    /// a third of the lease TTL (when the nodes next look at the leases).
    fn retry_after(&self) -> u64 {
        (self.directory.lease_ttl().as_millis() as u64 / 3).div_ceil(1000)
    }

    /// A 503 saying `name` is moving, with `Retry-After`.
    pub(super) fn moving(&self, name: &str, why: &str) -> Response {
        let message = format!(
            "projection `{name}` is moving between nodes ({why}); no node answers for it right \
             now: retry in a few seconds"
        );
        let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after()));
        response
    }
}

/// The projection a path is about: `NAME` of `/projections/NAME[/...]`.
fn projection_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/projections/")?;
    let name = rest.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// The middleware: answer here, forward to the owner, or say it is moving.
pub(super) async fn forward(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (Some(cluster), Some(name)) = (app.cluster.clone(), projection_of(request.uri().path()))
    else {
        return next.run(request).await;
    };
    let name = name.to_string();
    let here = HeaderValue::from_str(cluster.node()).ok();
    let mut response = route(&app, &cluster, &name, request, next).await;
    if let Some(here) = here {
        response.headers_mut().entry(SERVED_BY).or_insert(here);
    }
    response
}

async fn route(
    app: &AppState,
    cluster: &Cluster,
    name: &str,
    request: Request,
    next: Next,
) -> Response {
    if cluster.directory.holds(name) {
        return next.run(request).await;
    }
    let forwarded_by = request.headers().get(FORWARDED_BY).cloned();
    if let Some(by) = forwarded_by {
        let by = String::from_utf8_lossy(by.as_bytes()).into_owned();
        return cluster.moving(
            name,
            &format!(
                "node `{by}` passed the request to node `{}`, which no longer holds it",
                cluster.node()
            ),
        );
    }
    match cluster.directory.owner(name).await {
        Ok(Owner::Here) => next.run(request).await,
        Ok(Owner::Elsewhere(node)) => {
            let limit = app.limits.max_body_bytes;
            let (parts, body) = request.into_parts();
            let body = match axum::body::to_bytes(body, limit).await {
                Ok(body) => body,
                Err(e) => {
                    return ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "cannot read the request body to pass it to node `{}`: {e}",
                            node.id
                        ),
                    )
                    .into_response()
                }
            };
            proxy(
                cluster,
                &node.id,
                &node.url,
                &parts.method,
                &parts.uri,
                &parts.headers,
                body,
            )
            .await
        }
        Ok(Owner::Nobody { holder }) => {
            // Deployed through this node a moment ago: it runs here until
            // the lease is taken.
            if running_here(app, name) || !deployed(app, name).await {
                return next.run(request).await;
            }
            let why = match holder {
                Some(node) => format!("its lease is still held by node `{node}`, which left"),
                None => "no node holds its lease yet".to_string(),
            };
            cluster.moving(name, &why)
        }
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "cannot find which node runs projection `{name}`: the cluster's lease store did \
                 not answer ({e}); retry, and check the NATS servers if it persists"
            ),
        )
        .into_response(),
    }
}

/// Does `name` run on this node (without a lease: deployed through it a
/// moment ago)?
fn running_here(app: &AppState, name: &str) -> bool {
    app.projections.as_ref().is_some_and(|m| m.runs_here(name))
}

/// Is `name` deployed (by the shared deployment store)? A store that does
/// not answer counts as yes: the client is told to retry.
async fn deployed(app: &AppState, name: &str) -> bool {
    let Some(manager) = &app.projections else {
        return false;
    };
    match manager.deployed().await {
        Ok(records) => records.iter().any(|r| r.name == name),
        Err(_) => true,
    }
}

/// For a deploy of `name`: the node to pass it to (`None`: deploy here),
/// or the answer to give (moving, store down).
pub(super) async fn owner_of_deploy(
    app: &AppState,
    name: &str,
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, Response> {
    let Some(cluster) = &app.cluster else {
        return Ok(None);
    };
    if cluster.directory.holds(name) || headers.contains_key(FORWARDED_BY) {
        return Ok(None);
    }
    match cluster.directory.owner(name).await {
        Ok(Owner::Here) => Ok(None),
        Ok(Owner::Elsewhere(node)) => Ok(Some((node.id, node.url))),
        Ok(Owner::Nobody { .. }) => {
            // A first deploy, or one that already runs here: deployed here.
            if running_here(app, name) || !deployed(app, name).await {
                Ok(None)
            } else {
                Err(cluster.moving(name, "a new version needs the node that runs it"))
            }
        }
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot find which node runs projection `{name}`: {e}; retry"),
        )
        .into_response()),
    }
}

/// Pass the request to node `node` at `url` and answer what it answers.
pub(super) async fn proxy(
    cluster: &Cluster,
    node: &str,
    url: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let mut request = cluster
        .client
        .request(method.clone(), &target)
        .header(FORWARDED_BY, cluster.node())
        .body(body);
    for name in PASSED {
        for value in headers.get_all(&name) {
            request = request.header(&name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            let mut response = ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "node `{node}` runs this projection but did not answer at {url} ({e}); \
                     retry: if the node is gone, another takes the projection over within the \
                     lease TTL"
                ),
            )
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(cluster.retry_after()),
            );
            return response;
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !is_hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("node `{node}` answered with something this node cannot pass on: {e}"),
            )
            .into_response()
        })
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
    ]
    .contains(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_projection_of_a_path() {
        use super::projection_of;
        assert_eq!(projection_of("/projections/bank"), Some("bank"));
        assert_eq!(projection_of("/projections/bank/state"), Some("bank"));
        assert_eq!(projection_of("/projections/a.b-c/query"), Some("a.b-c"));
        assert_eq!(projection_of("/projections"), None);
        assert_eq!(projection_of("/projections/"), None);
        assert_eq!(projection_of("/streams/x"), None);
    }
}
