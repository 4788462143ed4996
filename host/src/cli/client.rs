//! The HTTP client every client command uses to talk to `hume serve`.
//!
//! Errors come out ready to print: a server error carries the server's own
//! message ([`ServerError`], which callers can `downcast_ref` to look at the
//! status or `current_revision`); a server that cannot be reached gives
//! "cannot reach hume at URL — is `hume serve` running?".

use std::fmt;

use anyhow::{anyhow, Context as _};
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Context;

/// An error answer from the server.
#[derive(Debug, Clone)]
#[allow(dead_code)] // fields read by callers that downcast (projection commands)
pub struct ServerError {
    /// HTTP status.
    pub status: reqwest::StatusCode,
    /// The server's message (`error` of its JSON body).
    pub message: String,
    /// The field at fault, for 400s.
    pub field: Option<String>,
    /// The stream's current revision, for 409s.
    pub current_revision: Option<u64>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.message, self.status.as_u16())
    }
}

impl std::error::Error for ServerError {}

/// A client of one `hume serve`.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
}

impl Client {
    /// A client for the server at `ctx.url`.
    pub fn new(ctx: &Context) -> anyhow::Result<Client> {
        let base = Url::parse(&ctx.url).with_context(|| {
            format!(
                "`{}` is not a valid server URL: pass e.g. --url http://127.0.0.1:7171",
                ctx.url
            )
        })?;
        if base.cannot_be_a_base() {
            anyhow::bail!(
                "`{}` is not a valid server URL: pass e.g. --url http://127.0.0.1:7171",
                ctx.url
            );
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &ctx.token {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| {
                        anyhow!("the token (--token / HUME_TOKEN) must be visible ASCII characters")
                    })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .context("creating the HTTP client")?;
        Ok(Client { http, base })
    }

    /// The server's base URL.
    #[allow(dead_code)] // for other command groups
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of an endpoint from path segments, each percent-encoded
    /// (so a stream name with `/` or spaces is one segment).
    pub fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in Client::new: the URL can be a base");
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    /// A request to an endpoint, to add a query or body to and [`Client::send`].
    /// State-changing requests (anything but GET/HEAD) carry `Content-Type:
    /// application/json`, body or not: the server refuses them otherwise.
    pub fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        self.request_url(method, self.endpoint(segments))
    }

    /// Like [`Client::request`], to a full URL (e.g. with a query).
    pub fn request_url(&self, method: Method, url: Url) -> RequestBuilder {
        let changes_state = !matches!(method, Method::GET | Method::HEAD);
        let request = self.http.request(method, url);
        if changes_state {
            request.header(reqwest::header::CONTENT_TYPE, "application/json")
        } else {
            request
        }
    }

    /// Send a request: a successful response, or a ready-to-print error
    /// (unreachable server, or the server's own message).
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let get = |k: &str| parsed.as_ref().and_then(|v| v.get(k));
        let message = get("error")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&body);
                if text.trim().is_empty() {
                    format!("the server answered {status}")
                } else {
                    format!("the server answered {status}: {}", text.trim())
                }
            });
        Err(anyhow!(ServerError {
            status,
            message,
            field: get("field").and_then(|f| f.as_str()).map(str::to_string),
            current_revision: get("current_revision").and_then(|r| r.as_u64()),
        }))
    }

    fn transport_error(&self, err: reqwest::Error) -> anyhow::Error {
        let url = self.base.as_str().trim_end_matches('/');
        if err.is_connect() || err.is_timeout() {
            anyhow!("cannot reach hume at {url} — is `hume serve` running? ({err})")
        } else {
            anyhow!("request to hume at {url} failed: {err}")
        }
    }

    /// `GET` an endpoint with a query and decode its JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let mut url = self.endpoint(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let response = self.send(self.request_url(Method::GET, url)).await?;
        self.decode(response).await
    }

    /// `POST` a JSON body to an endpoint and decode its JSON answer.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> anyhow::Result<T> {
        let bytes = serde_json::to_vec(body).context("encoding the request")?;
        self.post_bytes(segments, bytes).await
    }

    /// `POST` an already-encoded JSON body and decode the JSON answer.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let response = self
            .send(self.request(Method::POST, segments).body(body))
            .await?;
        self.decode(response).await
    }

    /// Decode a successful response's JSON body.
    pub async fn decode<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> anyhow::Result<T> {
        let url = response.url().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("unexpected answer from {url} (is it a hume server?)"))
    }
}
