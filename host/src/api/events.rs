//! Event routes: append, read a stream / all / a category, list streams.
//!
//! - `POST /streams/{stream}` `{"events": [{"kind", "data", "metadata"?}],
//!   "expected_revision": "any" | "no_stream" | n}` → `{"stream",
//!   "first_position", "last_position", "revision"}`
//! - `GET /streams/{stream}?from_revision=&limit=&wait_ms=`
//! - `GET /all?from_position=&limit=&wait_ms=`
//! - `GET /categories/{prefix}?from_position=&limit=&wait_ms=`
//!   → `{"events": [...], "next": n | null, "last_scanned": n}`
//! - `GET /streams` → `{"streams": [{"stream", "revision"}]}`
//!
//! `wait_ms` (optional, capped by the server) lets a follower long-poll:
//! when nothing is there yet, the server waits that long for new events.

use std::fmt;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{json_bytes, ApiError, AppState, JsonBody};
use crate::log::{ExpectedRevision, NewEvent, Page, RecordedEvent, Selector};

/// The event routes, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/streams", get(list_streams))
        .route("/streams/{stream}", get(read_stream).post(append))
        .route("/all", get(read_all))
        .route("/categories/{prefix}", get(read_category))
}

/// Body of `POST /streams/{stream}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendBody {
    /// The batch, appended atomically.
    pub events: Vec<EventBody>,
    /// Optimistic concurrency check (default `any`).
    #[serde(default)]
    pub expected_revision: ExpectedRevisionBody,
}

/// One event of an [`AppendBody`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The event kind.
    pub kind: String,
    /// Any JSON value, stored as sent.
    pub data: Box<RawValue>,
    /// Optional JSON metadata.
    #[serde(default)]
    pub metadata: Option<Box<RawValue>>,
}

/// `"any"`, `"no_stream"` or a non-negative integer.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpectedRevisionBody(pub ExpectedRevision);

impl<'de> Deserialize<'de> for ExpectedRevisionBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ExpectedRevisionBody;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "\"any\", \"no_stream\" or the stream's current revision (a non-negative integer)",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ExpectedRevisionBody(ExpectedRevision::Exact(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|v| ExpectedRevisionBody(ExpectedRevision::Exact(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "any" => Ok(ExpectedRevisionBody(ExpectedRevision::Any)),
                    "no_stream" => Ok(ExpectedRevisionBody(ExpectedRevision::NoStream)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

async fn append(
    State(state): State<AppState>,
    stream: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<AppendBody>,
) -> Result<Json<crate::log::AppendOutcome>, ApiError> {
    let Path(stream) = stream.map_err(path_error)?;
    let events = body
        .events
        .into_iter()
        .map(|e| NewEvent {
            kind: e.kind,
            data: e.data,
            metadata: e.metadata,
        })
        .collect();
    let outcome = state
        .log
        .append(&stream, events, body.expected_revision.0)
        .await?;
    Ok(Json(outcome))
}

fn path_error(rej: PathRejection) -> ApiError {
    ApiError::bad_field("stream", format!("invalid path: {}", rej.body_text()))
}

fn query_error(rej: QueryRejection) -> ApiError {
    let text = rej.body_text();
    // serde_urlencoded reports "Failed to deserialize query string: FIELD: why".
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text)
        .to_string();
    let field = detail
        .split_once(':')
        .map(|(f, _)| f.trim().to_string())
        .filter(|f| !f.contains(' '))
        .unwrap_or_else(|| "query".into());
    ApiError::bad_field(
        field,
        format!(
            "invalid query string: {detail}. Parameters are non-negative integers: \
             from_position / from_revision, limit, wait_ms"
        ),
    )
}

/// Query of `GET /all` and `GET /categories/{prefix}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionQuery {
    from_position: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
}

/// Query of `GET /streams/{stream}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisionQuery {
    from_revision: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
}

fn page_limit(state: &AppState, limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(state.limits.default_page),
        Some(0) => Err(ApiError::bad_field(
            "limit",
            "`limit` must be at least 1 (omit it for the default page size)",
        )),
        Some(n) => Ok(n.min(state.limits.max_page)),
    }
}

/// Which read a request asks for.
#[derive(Clone)]
enum ReadKind {
    Position(Selector),
    Stream(String),
}

/// Read a page on a blocking thread; when it is empty and `wait_ms` is set,
/// wait for the head to move (or the time to pass) and read once more.
async fn read_page(
    state: &AppState,
    kind: ReadKind,
    from: u64,
    limit: usize,
    wait_ms: Option<u64>,
) -> Result<Page, ApiError> {
    let mut watch = state.log.watch_head();
    let run = |kind: ReadKind| {
        let log = state.log.clone();
        async move {
            match kind {
                ReadKind::Position(sel) => log.read(from, &sel, limit).await,
                ReadKind::Stream(s) => log.read_stream(&s, from, limit).await,
            }
            .map_err(ApiError::from)
        }
    };
    let head_before = *watch.borrow_and_update();
    let page = run(kind.clone()).await?;
    let wait = wait_ms
        .map(|ms| Duration::from_millis(ms).min(state.limits.max_wait))
        .unwrap_or_default();
    if !page.events.is_empty() || page.next.is_some() || wait.is_zero() {
        return Ok(page);
    }
    let mut shutdown = state.shutdown.subscribe();
    let moved = tokio::time::timeout(wait, async {
        if *watch.borrow() != head_before || *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = watch.changed() => {}
            _ = shutdown.wait_for(|down| *down) => {}
        }
    })
    .await;
    if moved.is_err() {
        return Ok(page);
    }
    run(kind).await
}

async fn read_stream(
    State(state): State<AppState>,
    stream: Result<Path<String>, PathRejection>,
    query: Result<Query<RevisionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(stream) = stream.map_err(path_error)?;
    let Query(q) = query.map_err(query_error)?;
    let limit = page_limit(&state, q.limit)?;
    let page = read_page(
        &state,
        ReadKind::Stream(stream),
        q.from_revision.unwrap_or(0),
        limit,
        q.wait_ms,
    )
    .await?;
    Ok(json_bytes(page_json(&page)))
}

async fn read_all(
    State(state): State<AppState>,
    query: Result<Query<PositionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(query_error)?;
    let limit = page_limit(&state, q.limit)?;
    let page = read_page(
        &state,
        ReadKind::Position(Selector::all()),
        q.from_position.unwrap_or(0),
        limit,
        q.wait_ms,
    )
    .await?;
    Ok(json_bytes(page_json(&page)))
}

async fn read_category(
    State(state): State<AppState>,
    prefix: Result<Path<String>, PathRejection>,
    query: Result<Query<PositionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(prefix) = prefix.map_err(|rej| {
        ApiError::bad_field("prefix", format!("invalid path: {}", rej.body_text()))
    })?;
    let Query(q) = query.map_err(query_error)?;
    let limit = page_limit(&state, q.limit)?;
    let selector = Selector::category(&prefix)
        .map_err(|e| ApiError::bad_field("prefix", format!("invalid category prefix: {e}")))?;
    let page = read_page(
        &state,
        ReadKind::Position(selector),
        q.from_position.unwrap_or(0),
        limit,
        q.wait_ms,
    )
    .await?;
    Ok(json_bytes(page_json(&page)))
}

async fn list_streams(State(state): State<AppState>) -> Result<Response, ApiError> {
    let streams = state.log.streams().await?;
    let list: Vec<_> = streams
        .into_iter()
        .map(|(stream, revision)| serde_json::json!({"stream": stream, "revision": revision}))
        .collect();
    Ok(json_bytes(
        serde_json::to_vec(&serde_json::json!({ "streams": list })).unwrap_or_default(),
    ))
}

/// Encode a page as `{"events": [...], "next": n|null, "last_scanned": n}`,
/// writing each event's stored JSON data and metadata through untouched.
pub fn page_json(page: &Page) -> Vec<u8> {
    let size: usize = page
        .events
        .iter()
        .map(|e| 128 + e.stream.len() + e.kind.len() + e.data.len())
        .sum();
    let mut out = Vec::with_capacity(64 + size);
    out.extend_from_slice(b"{\"events\":[");
    for (i, e) in page.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event(&mut out, e);
    }
    out.extend_from_slice(b"],\"next\":");
    match page.next {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"last_scanned\":");
    out.extend_from_slice(page.last_scanned.to_string().as_bytes());
    out.push(b'}');
    out
}

/// Encode one event as a JSON object (data and metadata written raw: they
/// were validated as JSON when appended).
pub fn write_event(out: &mut Vec<u8>, e: &RecordedEvent) {
    use std::io::Write;
    let _ = write!(out, "{{\"position\":{},\"stream\":", e.position);
    let _ = serde_json::to_writer(&mut *out, &e.stream);
    let _ = write!(out, ",\"revision\":{},\"kind\":", e.revision);
    let _ = serde_json::to_writer(&mut *out, &e.kind);
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(&e.data);
    out.extend_from_slice(b",\"metadata\":");
    match &e.metadata {
        Some(m) => out.extend_from_slice(m),
        None => out.extend_from_slice(b"null"),
    }
    let _ = write!(out, ",\"timestamp\":{}}}", e.timestamp);
}

/// One event as a JSON value (the same shape as in a page).
pub fn event_json(e: &RecordedEvent) -> serde_json::Value {
    let mut out = Vec::with_capacity(128 + e.data.len());
    write_event(&mut out, e);
    serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null)
}
