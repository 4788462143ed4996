//! Who may talk to `hume serve`, as middleware in front of every route.
//!
//! A local server is reachable by every web page the user opens: a page can
//! send "simple" requests (form or `text/plain` bodies, `no-cors`) to
//! `127.0.0.1` without asking, and with DNS rebinding it can even read the
//! answers, as its own name now points at `127.0.0.1`. The layers here
//! refuse all of that, outermost first:
//!
//! 1. **Host** ([`check_host`]): the `Host` must be `localhost`, a loopback
//!    address, the address the server listens on (any address when it listens
//!    on `0.0.0.0` / `[::]`), or a name given with `--allow-host`; otherwise
//!    403. This is what defeats DNS rebinding, for reads too.
//! 2. **CORS preflight** ([`preflight`]): granted only to origins given with
//!    `--allow-origin`; refused (403) otherwise. Allowed origins also get
//!    `Access-Control-Allow-Origin` on their answers.
//! 3. **Token** ([`check_token`]): with a token configured, every endpoint but
//!    `/health` and the web UI's files needs `Authorization: Bearer TOKEN`
//!    (401 otherwise).
//! 4. **Browser-borne writes** ([`check_state_change`]): a state-changing
//!    request (anything but GET/HEAD/OPTIONS) must say `Content-Type:
//!    application/json` (415 otherwise; no browser sends that cross-site
//!    without a preflight) and must not come from a foreign `Origin` (403).
//! 5. **Body deadline** ([`DeadlineBody`]): a request body must arrive whole
//!    within `--body-read-timeout` (408 otherwise), so a client trickling a
//!    body byte by byte cannot hold a connection forever.
//!
//! The decisions are pure functions of the request's parts and the
//! [`SecurityConfig`], unit-tested in `tests.rs`; the middleware only applies them.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::ApiError;

mod origin;
mod request;
#[cfg(test)]
mod tests;
mod token;

use origin::allowed_origin;
pub use origin::{
    check_host, host_allowed, normalize_host_name, normalize_origin, origin_allowed, preflight,
    split_authority,
};
pub use request::{
    body_timeout_in, check_state_change, is_json_content_type, is_state_changing, BodyReadTimeout,
    DeadlineBody,
};
pub use token::{check_token, Token, MIN_TOKEN_LEN};

/// What the guard layers allow. The default trusts loopback only, grants
/// no cross-origin access and needs no token.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// The address the server listens on (its IP is an allowed `Host`).
    pub listen: Option<SocketAddr>,
    /// Extra allowed `Host` names (`--allow-host`), normalised with
    /// [`normalize_host_name`].
    pub allow_hosts: Vec<String>,
    /// Origins granted CORS (`--allow-origin`), normalised with
    /// [`normalize_origin`].
    pub allow_origins: Vec<String>,
    /// The bearer token every endpoint but `/health` needs.
    pub token: Option<Token>,
    /// How long a request body may take to arrive, whole.
    pub body_read_timeout: Duration,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            listen: None,
            allow_hosts: Vec::new(),
            allow_origins: Vec::new(),
            token: None,
            body_read_timeout: Duration::from_secs(60),
        }
    }
}
/// Wrap `app` in the guard layers (see the module docs).
pub fn protect(app: Router, config: Arc<SecurityConfig>) -> Router {
    // `layer` wraps what is there: the last one added runs first.
    app.layer(middleware::from_fn_with_state(
        config.clone(),
        body_deadline,
    ))
    .layer(middleware::from_fn_with_state(
        config.clone(),
        state_change_guard,
    ))
    .layer(middleware::from_fn_with_state(config.clone(), token_guard))
    .layer(middleware::from_fn_with_state(config.clone(), cors_guard))
    .layer(middleware::from_fn_with_state(config, host_guard))
}

async fn host_guard(
    State(config): State<Arc<SecurityConfig>>,
    request: Request,
    next: Next,
) -> Response {
    match check_host(request.headers(), request.uri(), &config) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

async fn cors_guard(
    State(config): State<Arc<SecurityConfig>>,
    request: Request,
    next: Next,
) -> Response {
    match preflight(request.method(), request.headers(), &config) {
        Some(Ok(origin)) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            h.insert(header::VARY, HeaderValue::from_static("origin"));
            return response;
        }
        Some(Err(err)) => return err.into_response(),
        None => {}
    }
    let allowed = allowed_origin(request.headers(), &config);
    let mut response = next.run(request).await;
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-hume-offset"),
        );
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

async fn token_guard(
    State(config): State<Arc<SecurityConfig>>,
    request: Request,
    next: Next,
) -> Response {
    match check_token(
        request.uri().path(),
        request.headers(),
        config.token.as_ref(),
    ) {
        Ok(()) => next.run(request).await,
        Err(err) => {
            let mut response = err.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hume\""),
            );
            response
        }
    }
}

async fn state_change_guard(
    State(config): State<Arc<SecurityConfig>>,
    request: Request,
    next: Next,
) -> Response {
    match check_state_change(request.method(), request.headers(), &config) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

async fn body_deadline(
    State(config): State<Arc<SecurityConfig>>,
    request: Request,
    next: Next,
) -> Response {
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(request).await;
    }
    let timeout = config.body_read_timeout;
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        })
    });
    next.run(request).await
}
