//! Hosts (against DNS rebinding) and origins (CORS, foreign writes).

use super::*;

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
pub(super) fn allowed_origin(headers: &HeaderMap, config: &SecurityConfig) -> Option<HeaderValue> {
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
