//! `POST /plugins/validate` `{"plugin": "<base64 wasm>"}` → `{"name",
//! "version", "kinds", "state_encoding", "world", "hash"}`: what `hume
//! validate` says about a plugin, without deploying it (the web UI shows it
//! before a deploy). An invalid plugin is a 422 naming what is wrong.

use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{manager, plugin_bytes, ApiError, AppState, JsonBody};

/// The plugin routes, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/plugins/validate",
        post(validate).layer(DefaultBodyLimit::max(super::projections::MAX_DEPLOY_BYTES)),
    )
}

/// Body of `POST /plugins/validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    /// The plugin component, base64 (standard alphabet, padded).
    plugin: String,
}

async fn validate(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<ValidateBody>,
) -> Result<Response, ApiError> {
    let wasm = plugin_bytes(&body.plugin)?;
    let plugin = manager(&app)?.validate(wasm).await?;
    Ok(Json(plugin.description()).into_response())
}
