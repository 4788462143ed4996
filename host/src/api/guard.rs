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
//! [`SecurityConfig`], unit-tested below; the middleware only applies them.

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
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;

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

/// The server's bearer token, kept only as its SHA-256 (never logged, and
/// compared in constant time).
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Fewest characters a token may have.
pub const MIN_TOKEN_LEN: usize = 16;

impl Token {
    /// A token from its text (surrounding whitespace ignored): at least
    /// [`MIN_TOKEN_LEN`] visible ASCII characters. The error says what is
    /// wrong, never the token.
    pub fn new(secret: &str) -> Result<Token, String> {
        let secret = secret.trim();
        if secret.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token has {} characters, fewer than {MIN_TOKEN_LEN}: use a long random one, \
                 e.g. `openssl rand -hex 32`",
                secret.len()
            ));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the token must be visible ASCII characters without spaces (it is sent \
                        in an HTTP header): e.g. `openssl rand -hex 32`"
                    .into(),
            );
        }
        Ok(Token {
            digest: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// Is `presented` this token? Constant time in the token's content.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        bool::from(self.digest.ct_eq(&digest))
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

// ---------------------------------------------------------------------------
// Host

/// Split an authority (`name`, `name:port`, `[v6]:port`) into its host
/// (lowercase, brackets and one trailing dot removed) and port. `None` when
/// it is not a well-formed authority.
pub fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    ok.then(|| (host.to_ascii_lowercase(), port))
}

/// A `--allow-host` value as it is compared: a host name or IP address,
/// without a port.
pub fn normalize_host_name(name: &str) -> Result<String, String> {
    match split_authority(name.trim()) {
        Some((host, None)) => Ok(host),
        Some((_, Some(_))) => Err(format!(
            "`{name}`: give the host name without a port (any port is accepted)"
        )),
        None => Err(format!("`{name}` is not a host name")),
    }
}

/// May a request with this `Host` be served? (see the module docs)
pub fn host_allowed(host: &str, config: &SecurityConfig) -> bool {
    let Some((name, _port)) = split_authority(host) else {
        return false;
    };
    if name == "localhost" {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        if ip.is_loopback() {
            return true;
        }
        if let Some(listen) = config.listen {
            if listen.ip().is_unspecified() || listen.ip() == ip {
                return true;
            }
        }
    }
    config.allow_hosts.contains(&name)
}

/// The host check: the `Host` header and an absolute request URI's
/// authority must both be allowed. A request without either (HTTP/1.0,
/// never a browser) passes.
pub fn check_host(headers: &HeaderMap, uri: &Uri, config: &SecurityConfig) -> Result<(), ApiError> {
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request has several `Host` headers: send exactly one",
        ));
    }
    let header = headers
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let absolute = uri.authority().map(|a| a.as_str());
    for host in header.into_iter().chain(absolute) {
        if !host_allowed(host, config) {
            let shown: String = host.chars().take(100).collect();
            return Err(ApiError {
                field: Some("Host".into()),
                ..ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this server does not answer to the host `{shown}` (`Host` header): it \
                         answers to localhost, loopback addresses and the address it listens on. \
                         If you reach it under this name on purpose (a proxy, a DNS name), start \
                         it with --allow-host {}",
                        split_authority(host).map_or(shown.clone(), |(name, _)| name)
                    ),
                )
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Origins and CORS

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// Parse an origin (`scheme://host[:port]`) into scheme, host and port
/// (the scheme's default when absent). `None` for `null` and anything else.
fn parse_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_authority(rest)?;
    let port = port.unwrap_or_else(|| default_port(&scheme));
    Some((scheme, host, port))
}

/// An origin as it is compared: `scheme://host:port`, lowercase, with the
/// port spelled out. Errors for anything that is not an http(s) origin.
pub fn normalize_origin(origin: &str) -> Result<String, String> {
    parse_origin(origin.trim())
        .map(|(scheme, host, port)| format_origin(&scheme, &host, port))
        .ok_or_else(|| {
            format!("`{origin}` is not an origin: give scheme, host and port, e.g. https://app.example:8443")
        })
}

fn format_origin(scheme: &str, host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// Is `origin` the server's own (the page was served under the very `Host`
/// this request is addressed to) or one given with `--allow-origin`?
pub fn origin_allowed(origin: &str, host: Option<&str>, config: &SecurityConfig) -> bool {
    let Some((scheme, name, port)) = parse_origin(origin) else {
        return false;
    };
    if let Some((host_name, host_port)) = host.and_then(split_authority) {
        if host_name == name && host_port.unwrap_or_else(|| default_port(&scheme)) == port {
            return true;
        }
    }
    let normal = format_origin(&scheme, &name, port);
    config.allow_origins.contains(&normal)
}

/// The request's `Origin` when it is one of `--allow-origin` (its answer
/// then carries `Access-Control-Allow-Origin`).
fn allowed_origin(headers: &HeaderMap, config: &SecurityConfig) -> Option<HeaderValue> {
    if config.allow_origins.is_empty() {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    let normal = normalize_origin(origin.to_str().ok()?).ok()?;
    config
        .allow_origins
        .contains(&normal)
        .then(|| origin.clone())
}

/// A CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`): `Some(Ok(origin))` to grant it (the
/// origin is one of `--allow-origin`), `Some(Err(..))` to refuse it, `None`
/// when the request is not a preflight.
pub fn preflight(
    method: &Method,
    headers: &HeaderMap,
    config: &SecurityConfig,
) -> Option<Result<HeaderValue, ApiError>> {
    if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    if let Some(allowed) = allowed_origin(headers, config) {
        return Some(Ok(allowed));
    }
    let shown = String::from_utf8_lossy(origin.as_bytes());
    Some(Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "cross-origin requests from `{shown}` are not allowed: start the server with \
             --allow-origin {shown} to let pages of that origin use the API"
        ),
    )))
}

// ---------------------------------------------------------------------------
// Token

/// The token check (see the module docs). `/health` and the web UI's
/// static files (`/ui/...`, which hold no data; the API calls they make need
/// the token) are always open.
pub fn check_token(path: &str, headers: &HeaderMap, token: Option<&Token>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    if path == "/health" || super::ui::is_ui_path(path) {
        return Ok(());
    }
    let unauthorized = |what: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "{what}: this server needs a token; send `Authorization: Bearer <token>` (with \
                 the `hume` CLI: set HUME_TOKEN or pass --token)"
            ),
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("no `Authorization` header"));
    };
    let value = value.as_bytes();
    let credentials = match value.iter().position(|&b| b == b' ') {
        Some(space) if value[..space].eq_ignore_ascii_case(b"bearer") => {
            value[space + 1..].trim_ascii()
        }
        _ => {
            return Err(unauthorized(
                "the `Authorization` header is not `Bearer <token>`",
            ))
        }
    };
    if token.matches(credentials) {
        Ok(())
    } else {
        Err(unauthorized("wrong token in the `Authorization` header"))
    }
}

// ---------------------------------------------------------------------------
// State-changing requests

/// Does this method change state (everything but GET, HEAD, OPTIONS)?
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Is this `Content-Type` `application/json` (parameters allowed)?
pub fn is_json_content_type(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The checks of a state-changing request: a foreign `Origin` (or, from a
/// browser that sends no `Origin`, `Sec-Fetch-Site: cross-site`) is refused
/// (403); the `Content-Type` must be `application/json` (415), body or not.
pub fn check_state_change(
    method: &Method,
    headers: &HeaderMap,
    config: &SecurityConfig,
) -> Result<(), ApiError> {
    if !is_state_changing(method) {
        return Ok(());
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let foreign = match headers.get(header::ORIGIN) {
        Some(origin) => {
            let text = origin.to_str().unwrap_or("null");
            (!origin_allowed(text, host, config)).then(|| text.to_string())
        }
        None => headers
            .get("sec-fetch-site")
            .filter(|site| matches!(site.as_bytes(), b"cross-site" | b"same-site"))
            .map(|_| "another site (Sec-Fetch-Site)".to_string()),
    };
    if let Some(origin) = foreign {
        let shown: String = origin.chars().take(100).collect();
        return Err(ApiError {
            field: Some("Origin".into()),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{method} refused: the request comes from a page of `{shown}` (`Origin` \
                     header), not from this server; to let pages of that origin change state, \
                     start the server with --allow-origin ORIGIN"
                ),
            )
        });
    }
    match headers.get(header::CONTENT_TYPE) {
        Some(ct) if is_json_content_type(ct) => Ok(()),
        other => {
            let got = match other {
                None => "none".to_string(),
                Some(v) => format!(
                    "`{}`",
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(100)
                        .collect::<String>()
                ),
            };
            Err(ApiError {
                field: Some("Content-Type".into()),
                ..ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "{method} needs the header `Content-Type: application/json` (got {got}), \
                         even without a body: state-changing requests are JSON only"
                    ),
                )
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Body deadline

/// The error of a request body that did not arrive in time.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

impl std::fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} ms (the server's --body-read-timeout)",
            self.0.as_millis()
        )
    }
}

impl std::error::Error for BodyReadTimeout {}

/// Was a body read error (anywhere in its chain of sources) a
/// [`BodyReadTimeout`]?
pub fn body_timeout_in(err: &(dyn std::error::Error + 'static)) -> Option<BodyReadTimeout> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<BodyReadTimeout>() {
            return Some(*t);
        }
        current = e.source();
    }
    None
}

/// A request body that fails with [`BodyReadTimeout`] once its deadline
/// (set when the request came in) has passed.
pub struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyReadTimeout(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SecurityConfig {
        SecurityConfig {
            listen: Some("127.0.0.1:7171".parse().unwrap()),
            ..SecurityConfig::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn authorities_split() {
        assert_eq!(
            split_authority("LocalHost:80"),
            Some(("localhost".into(), Some(80)))
        );
        assert_eq!(
            split_authority("example.com."),
            Some(("example.com".into(), None))
        );
        assert_eq!(
            split_authority("[::1]:7171"),
            Some(("::1".into(), Some(7171)))
        );
        assert_eq!(split_authority("[::1]"), Some(("::1".into(), None)));
        assert_eq!(split_authority("h:"), Some(("h".into(), None)));
        for bad in [
            "", ":80", "a:b", "a:99999", "[::1", "[zz]:1", "[::1]x", "a b", "a/b", "a@b",
        ] {
            assert_eq!(split_authority(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        let c = config();
        for ok in [
            "localhost",
            "localhost:7171",
            "LOCALHOST.:1",
            "127.0.0.1",
            "127.0.0.1:7171",
            "127.1.2.3:9",
            "[::1]",
            "[::1]:7171",
        ] {
            assert!(host_allowed(ok, &c), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7171",
            "localhost.evil.example",
            "192.168.1.5:7171",
            "2130706433",
            "",
            "[::2]:7171",
        ] {
            assert!(!host_allowed(bad, &c), "{bad}");
        }
        // The listen address; any address when listening on all of them.
        let lan = SecurityConfig {
            listen: Some("192.168.1.5:7171".parse().unwrap()),
            ..config()
        };
        assert!(host_allowed("192.168.1.5:7171", &lan));
        assert!(!host_allowed("192.168.1.6:7171", &lan));
        let any = SecurityConfig {
            listen: Some("0.0.0.0:7171".parse().unwrap()),
            ..config()
        };
        assert!(host_allowed("10.0.0.7:7171", &any));
        assert!(!host_allowed("hume.internal:7171", &any));
        let named = SecurityConfig {
            allow_hosts: vec![normalize_host_name("Hume.Internal").unwrap()],
            ..any
        };
        assert!(host_allowed("hume.internal:7171", &named));
        assert!(host_allowed("HUME.internal", &named));
        assert!(!host_allowed("x.hume.internal", &named));
        assert!(normalize_host_name("a:1").is_err());
        assert!(normalize_host_name("a b").is_err());
    }

    #[test]
    fn host_check_covers_the_header_and_absolute_uris() {
        let c = config();
        let uri: Uri = "/streams".parse().unwrap();
        assert!(check_host(&headers(&[("host", "127.0.0.1:7171")]), &uri, &c).is_ok());
        assert!(check_host(&headers(&[]), &uri, &c).is_ok());
        let err = check_host(&headers(&[("host", "evil.example")]), &uri, &c).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert!(
            err.message.contains("--allow-host evil.example"),
            "{}",
            err.message
        );
        let absolute: Uri = "http://evil.example/streams".parse().unwrap();
        assert!(check_host(&headers(&[("host", "localhost")]), &absolute, &c).is_err());
        let two = headers(&[("host", "localhost"), ("host", "evil.example")]);
        assert!(check_host(&two, &uri, &c).is_err());
    }

    #[test]
    fn origins() {
        let c = SecurityConfig {
            allow_origins: vec![normalize_origin("https://App.example/").unwrap()],
            ..config()
        };
        assert_eq!(
            normalize_origin("https://App.example").unwrap(),
            "https://app.example:443"
        );
        assert!(normalize_origin("null").is_err());
        assert!(normalize_origin("file:///x").is_err());
        assert!(normalize_origin("https://a.example/path").is_err());
        let host = Some("127.0.0.1:7171");
        assert!(origin_allowed("http://127.0.0.1:7171", host, &c));
        assert!(!origin_allowed("http://127.0.0.1:7172", host, &c));
        assert!(!origin_allowed("http://localhost:7171", host, &c));
        assert!(origin_allowed("http://localhost", Some("localhost:80"), &c));
        assert!(origin_allowed("https://app.example", host, &c));
        assert!(origin_allowed("https://app.example:443", host, &c));
        assert!(!origin_allowed("http://app.example", host, &c));
        assert!(!origin_allowed("https://evil.example", host, &c));
        assert!(!origin_allowed("null", host, &c));
        assert!(!origin_allowed("https://evil.example", None, &c));
    }

    #[test]
    fn preflights_are_granted_only_to_allowed_origins() {
        let c = SecurityConfig {
            allow_origins: vec![normalize_origin("https://app.example").unwrap()],
            ..config()
        };
        let ask = |origin: &str| {
            headers(&[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ])
        };
        assert!(preflight(&Method::OPTIONS, &ask("https://app.example"), &c)
            .unwrap()
            .is_ok());
        let refused = preflight(&Method::OPTIONS, &ask("https://evil.example"), &c).unwrap();
        assert_eq!(refused.unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(
            preflight(&Method::OPTIONS, &ask("https://app.example"), &config())
                .unwrap()
                .is_err()
        );
        assert!(preflight(&Method::GET, &ask("https://app.example"), &c).is_none());
        assert!(preflight(&Method::OPTIONS, &headers(&[]), &c).is_none());
    }

    #[test]
    fn tokens() {
        let token = Token::new("  0123456789abcdef0123\n").unwrap();
        assert!(token.matches(b"0123456789abcdef0123"));
        assert!(!token.matches(b"0123456789abcdef0124"));
        assert!(!token.matches(b""));
        assert!(Token::new("short").is_err());
        assert!(Token::new("0123456789abcdef 0123").is_err());
        assert!(Token::new("0123456789abcdéf0123").is_err());
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let t = Some(&token);
        let bearer = |v: &str| headers(&[("authorization", v)]);
        assert!(check_token("/streams", &bearer("Bearer 0123456789abcdef0123"), t).is_ok());
        assert!(check_token("/streams", &bearer("bearer  0123456789abcdef0123 "), t).is_ok());
        for bad in [
            "Bearer nope",
            "Basic 0123456789abcdef0123",
            "0123456789abcdef0123",
            "Bearer",
        ] {
            let err = check_token("/streams", &bearer(bad), t).unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED, "{bad}");
            assert!(
                err.message.contains("Authorization: Bearer"),
                "{}",
                err.message
            );
            assert!(!err.message.contains("0123456789"), "never echoes a token");
        }
        assert!(check_token("/streams", &headers(&[]), t).is_err());
        assert!(check_token("/health", &headers(&[]), t).is_ok());
        assert!(check_token("/health/", &headers(&[]), t).is_err());
        assert!(check_token("/ui/app.js", &headers(&[]), t).is_ok());
        assert!(check_token("/uix", &headers(&[]), t).is_err());
        assert!(check_token("/streams", &headers(&[]), None).is_ok());
    }

    #[test]
    fn state_changes_need_json_and_no_foreign_origin() {
        let c = config();
        let json = ("content-type", "application/json");
        let host = ("host", "127.0.0.1:7171");
        assert!(check_state_change(&Method::POST, &headers(&[json, host]), &c).is_ok());
        assert!(check_state_change(
            &Method::DELETE,
            &headers(&[("content-type", "Application/JSON; charset=utf-8")]),
            &c
        )
        .is_ok());
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/json-seq"),
            Some("text/plain; application/json"),
        ] {
            let mut h = headers(&[host]);
            if let Some(ct) = ct {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            }
            for method in [Method::POST, Method::DELETE, Method::PUT, Method::PATCH] {
                let err = check_state_change(&method, &h, &c).unwrap_err();
                assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
                assert!(
                    err.message.contains("Content-Type: application/json"),
                    "{}",
                    err.message
                );
            }
            // Reads need nothing.
            assert!(check_state_change(&Method::GET, &h, &c).is_ok());
        }
        // A foreign origin is refused even with the right type.
        for origin in ["https://evil.example", "null", "http://127.0.0.1:9999"] {
            let h = headers(&[json, host, ("origin", origin)]);
            let err = check_state_change(&Method::POST, &h, &c).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{origin}");
            assert!(err.message.contains("--allow-origin"), "{}", err.message);
        }
        let own = headers(&[json, host, ("origin", "http://127.0.0.1:7171")]);
        assert!(check_state_change(&Method::POST, &own, &c).is_ok());
        let cross = headers(&[json, host, ("sec-fetch-site", "cross-site")]);
        assert!(check_state_change(&Method::POST, &cross, &c).is_err());
        let same = headers(&[json, host, ("sec-fetch-site", "same-origin")]);
        assert!(check_state_change(&Method::POST, &same, &c).is_ok());
        // ... unless allowed.
        let allowed = SecurityConfig {
            allow_origins: vec![normalize_origin("https://evil.example").unwrap()],
            ..config()
        };
        let h = headers(&[json, host, ("origin", "https://evil.example")]);
        assert!(check_state_change(&Method::POST, &h, &allowed).is_ok());
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_fails() {
        let (mut tx, body) = {
            let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            (tx, Body::from_stream(rx))
        };
        let timeout = Duration::from_millis(50);
        let body = Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        });
        use futures::SinkExt;
        tx.send(Ok(Bytes::from_static(b"{\"a\""))).await.unwrap();
        let err = axum::body::to_bytes(body, 1 << 20).await.unwrap_err();
        let found = body_timeout_in(&err).expect("the timeout is in the chain");
        assert_eq!(found.0, timeout);
        drop(tx);
    }
}
