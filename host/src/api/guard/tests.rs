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
