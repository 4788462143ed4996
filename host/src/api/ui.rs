//! The operator web UI at `/ui`: plain HTML, CSS and JavaScript embedded in
//! the binary (no build step, no CDN, works offline). The pages talk to the
//! same public HTTP API as the CLI; this module only serves the files.
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles
//! and connections to this server only; no inline script, no framing), and
//! `Cache-Control: no-cache` with an `ETag`, so a browser revalidates
//! cheaply and never runs a stale UI after an upgrade.
//!
//! The files are public (no token needed): they hold no data. The API calls
//! they make need the token when the server has one; the UI asks for it.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// Where the UI is served.
pub const PREFIX: &str = "/ui";

/// The policy every UI answer carries.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The embedded files: name under `/ui/`, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../ui/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/dom.js"),
    ),
    (
        "json.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/json.js"),
    ),
    (
        "overview.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/overview.js"),
    ),
    (
        "projection.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/projection.js"),
    ),
    (
        "log.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/log.js"),
    ),
    (
        "deploy.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../ui/deploy.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../ui/favicon.svg"),
    ),
];

/// Is `path` one of the UI's (public) paths?
pub fn is_ui_path(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The UI routes, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PREFIX, get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { file("index.html", &headers) }),
        )
        .route(
            "/ui/{file}",
            get(
                |Path(name): Path<String>, headers: HeaderMap| async move { file(&name, &headers) },
            ),
        )
}

/// The ETag of each file (a hash of its bytes), computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, bytes)| format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..16]))
            .collect()
    })
}

fn file(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no such file in the web UI: /ui/{name}; open /ui/"),
        )
        .into_response();
    };
    let (_, content_type, bytes) = FILES[index];
    let etag = &etags()[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    let mut response = if fresh {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, bytes).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_paths() {
        for yes in ["/ui", "/ui/", "/ui/app.js"] {
            assert!(is_ui_path(yes), "{yes}");
        }
        for no in ["/uix", "/u", "/streams", "/projections/ui"] {
            assert!(!is_ui_path(no), "{no}");
        }
    }

    #[test]
    fn files_have_types_and_revalidate() {
        let r = file("app.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let etag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(file("app.js", &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            file("nope.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
