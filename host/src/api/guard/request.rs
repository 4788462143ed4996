//! State-changing requests (JSON only, no foreign origin) and the body
//! read deadline.

use super::*;

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
    pub(super) inner: Body,
    pub(super) deadline: Pin<Box<tokio::time::Sleep>>,
    pub(super) timeout: Duration,
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
