//! A lean NATS client connection for one job: pulling a JetStream
//! consumer's messages as fast as the server sends them, for reading the
//! log ahead of a scan ([`super::ahead`]).
//!
//! Everything else goes through `async-nats`. Its messages, though, cost
//! the node about 2.8 µs each (a header map, a subject and a reply string
//! per message, a channel hop or two, the reply subject parsed again):
//! measured on 1,000,000 log messages on a 2-core machine, an `async-nats`
//! ordered consumer that does nothing with them receives 290,000 a second
//! with 2.8 s of client CPU, while the same server sends them at
//! 760,000–860,000 a second to a reader that only frames them (0.3 s of
//! client CPU). Here a message is sliced out of the read buffer (no copy,
//! no header map): its subject for filtering, its reply subject for the
//! stream and consumer sequences and what is pending, its payload.
//!
//! Plain TCP only: a server or URL that wants TLS gets no reader here
//! ([`Endpoint::for_urls`]), and scans read page by page.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the lean connection goes, with the credentials of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
}

impl Endpoint {
    /// The endpoints of the cluster URLs, or none at all when any of them
    /// (or the server) needs TLS or a WebSocket.
    pub(super) fn for_urls(
        addrs: &[async_nats::ServerAddr],
        server_wants_tls: bool,
    ) -> Vec<Endpoint> {
        if server_wants_tls || addrs.iter().any(|a| a.tls_required() || a.is_websocket()) {
            return Vec::new();
        }
        addrs
            .iter()
            .map(|a| Endpoint {
                host: a.host().to_string(),
                port: a.port(),
                user: a.username().map(str::to_string),
                pass: a.password().map(str::to_string),
            })
            .collect()
    }
}

/// Why the lean connection stopped; the scan then reads page by page.
#[derive(Debug, thiserror::Error)]
pub(super) enum WireError {
    #[error("connecting to {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the NATS server")]
    Io(#[from] std::io::Error),
    #[error("the NATS server closed the connection")]
    Closed,
    #[error("the NATS server answered -ERR {0}")]
    Server(String),
    #[error("unexpected from the NATS server: {0}")]
    Protocol(&'static str),
}

/// One protocol message from the server.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame {
    Msg {
        subject: Bytes,
        reply: Bytes,
        /// The header block (empty for `MSG`); a status like
        /// `NATS/1.0 408 Request Timeout` is on its first line.
        headers: Bytes,
        payload: Bytes,
    },
    Ping,
    Pong,
    /// `+OK`, `INFO`: nothing to do.
    Other,
    Err(String),
}

/// Longest control line taken (an `INFO` with many cluster URLs fits).
const MAX_LINE: usize = 64 * 1024;

/// Take one whole frame off the front of `buf` (`None`: not all of it
/// has arrived yet).
pub(super) fn parse(buf: &mut BytesMut) -> Result<Option<Frame>, WireError> {
    let Some(eol) = memchr::memchr(b'\n', buf) else {
        return match buf.len() > MAX_LINE {
            true => Err(WireError::Protocol("a control line too long")),
            false => Ok(None),
        };
    };
    let line = &buf[..eol];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (op, rest) = match line.iter().position(|b| *b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[line.len()..]),
    };
    let (with_headers, args) = match op {
        b"MSG" | b"msg" => (false, rest),
        b"HMSG" | b"hmsg" => (true, rest),
        b"PING" | b"ping" => {
            buf.advance(eol + 1);
            return Ok(Some(Frame::Ping));
        }
        b"PONG" | b"pong" => {
            buf.advance(eol + 1);
            return Ok(Some(Frame::Pong));
        }
        b"-ERR" | b"-err" => {
            let text = String::from_utf8_lossy(rest).trim_matches('\'').to_string();
            buf.advance(eol + 1);
            return Ok(Some(Frame::Err(text)));
        }
        _ => {
            buf.advance(eol + 1);
            return Ok(Some(Frame::Other));
        }
    };
    // MSG <subject> <sid> [reply] <bytes>
    // HMSG <subject> <sid> [reply] <header bytes> <total bytes>
    let mut fields = [&b""[..]; 5];
    let mut n = 0;
    for f in args.split(|b| *b == b' ').filter(|f| !f.is_empty()) {
        if n == fields.len() {
            return Err(WireError::Protocol("a message line with the wrong fields"));
        }
        fields[n] = f;
        n += 1;
    }
    let sizes = if with_headers { 2 } else { 1 };
    if n < 2 + sizes || n > 3 + sizes {
        return Err(WireError::Protocol("a message line with the wrong fields"));
    }
    let size = |f: &[u8]| -> Result<usize, WireError> {
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(WireError::Protocol("a message size that is not a number"))
    };
    let total = size(fields[n - 1])?;
    let header_len = match with_headers {
        true => size(fields[n - 2])?,
        false => 0,
    };
    if header_len > total {
        return Err(WireError::Protocol("headers longer than the message"));
    }
    let has_reply = n == 3 + sizes;
    let subject_range = span(buf, fields[0]);
    let reply_range = has_reply.then(|| span(buf, fields[2]));
    let body_start = eol + 1;
    if buf.len() < body_start + total + 2 {
        return Ok(None);
    }
    let head = buf.split_to(body_start).freeze();
    let mut body = buf.split_to(total + 2).freeze();
    body.truncate(total);
    Ok(Some(Frame::Msg {
        subject: head.slice(subject_range),
        reply: reply_range.map_or_else(Bytes::new, |r| head.slice(r)),
        headers: body.slice(..header_len),
        payload: body.slice(header_len..),
    }))
}

/// Where `part` (a slice of `buf`) lies in it.
fn span(buf: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// The status code of a header block (`NATS/1.0 408 ...` gives 408).
pub(super) fn status(headers: &[u8]) -> Option<u16> {
    let first = headers.split(|b| *b == b'\r').next()?;
    let code = first.strip_prefix(b"NATS/1.0 ")?.get(..3)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// A status that ended a pull before its batch (`409` for its bytes, or
/// the like): how many of its messages the server will not send
/// (`Nats-Pending-Messages`). `None` when the consumer itself is gone or
/// the count is missing.
pub(super) fn pull_ended(headers: &[u8]) -> Option<usize> {
    let mut lines = headers
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    if memchr::memmem::find(first, b"Consumer Deleted").is_some() {
        return None;
    }
    lines.find_map(|line| {
        let value = line.strip_prefix(b"Nats-Pending-Messages:")?;
        let value = std::str::from_utf8(value).ok()?.trim();
        value.parse().ok()
    })
}

/// What a JetStream reply subject says of the message it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Delivery {
    pub stream_sequence: u64,
    pub consumer_sequence: u64,
    pub pending: u64,
}

/// Parse `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`
/// or its newer form with a domain and an account hash after `$JS.ACK.`
/// (and a random token at the end).
pub(super) fn delivery(reply: &[u8]) -> Option<Delivery> {
    let rest = reply.strip_prefix(b"$JS.ACK.")?;
    let mut tokens = [&b""[..]; 10];
    let mut n = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'.', rest).chain([rest.len()]) {
        if n == tokens.len() {
            break;
        }
        tokens[n] = &rest[start..end];
        n += 1;
        start = end + 1;
    }
    let at = match n {
        7 => 0,
        9 | 10 => 2,
        _ => return None,
    };
    Some(Delivery {
        stream_sequence: number(tokens[at + 3])?,
        consumer_sequence: number(tokens[at + 4])?,
        pending: number(tokens[at + 6])?,
    })
}

/// A decimal number of ASCII digits (none, or any other byte: `None`).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| match d {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(d - b'0')),
        _ => None,
    })
}

/// A connection subscribed to one inbox.
pub(super) struct Wire {
    socket: TcpStream,
    buf: BytesMut,
    inbox: String,
}

impl Wire {
    /// Connect to the first endpoint that answers and subscribe to
    /// `inbox`; the server has answered a `PING` when this returns.
    pub(super) async fn connect(
        endpoints: &[Endpoint],
        name: &str,
        inbox: String,
    ) -> Result<Wire, WireError> {
        let mut last = None;
        for e in endpoints {
            let endpoint = format!("{}:{}", e.host, e.port);
            match TcpStream::connect((e.host.as_str(), e.port)).await {
                Ok(socket) => return Wire::start(socket, e, name, inbox).await,
                Err(source) => last = Some(WireError::Connect { endpoint, source }),
            }
        }
        Err(last.unwrap_or(WireError::Protocol("no endpoint to connect to")))
    }

    async fn start(
        socket: TcpStream,
        e: &Endpoint,
        name: &str,
        inbox: String,
    ) -> Result<Wire, WireError> {
        socket.set_nodelay(true)?;
        let mut wire = Wire {
            socket,
            buf: BytesMut::with_capacity(1 << 20),
            inbox,
        };
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true, "no_responders": true,
            "protocol": 1, "lang": "rust", "version": env!("CARGO_PKG_VERSION"), "name": name,
        });
        if let (Some(user), Some(pass)) = (&e.user, &e.pass) {
            connect["user"] = user.as_str().into();
            connect["pass"] = pass.as_str().into();
        } else if let Some(token) = &e.user {
            connect["auth_token"] = token.as_str().into();
        }
        let hello = format!("CONNECT {connect}\r\nSUB {} 1\r\nPING\r\n", wire.inbox);
        wire.socket.write_all(hello.as_bytes()).await?;
        // INFO, then (after CONNECT) PONG or -ERR.
        loop {
            match wire.next().await? {
                Frame::Err(e) => return Err(WireError::Server(e)),
                Frame::Pong => return Ok(wire),
                _ => {}
            }
        }
    }

    async fn pong(&mut self) -> Result<(), WireError> {
        Ok(self.socket.write_all(b"PONG\r\n").await?)
    }

    /// Ask `subject` for something, answers to this connection's inbox.
    pub(super) async fn request(&mut self, subject: &str, body: &[u8]) -> Result<(), WireError> {
        let line = format!("PUB {subject} {} {}\r\n", self.inbox, body.len());
        let mut out = Vec::with_capacity(line.len() + body.len() + 2);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        Ok(self.socket.write_all(&out).await?)
    }

    /// The next frame (answering the server's `PING`s on the way).
    pub(super) async fn next(&mut self) -> Result<Frame, WireError> {
        loop {
            match parse(&mut self.buf)? {
                Some(Frame::Ping) => self.pong().await?,
                Some(frame) => return Ok(frame),
                None => {
                    if self.buf.capacity() - self.buf.len() < 64 * 1024 {
                        self.buf.reserve(1 << 20);
                    }
                    if self.socket.read_buf(&mut self.buf).await? == 0 {
                        return Err(WireError::Closed);
                    }
                }
            }
        }
    }

    /// The next frame if all of it is already here (`None`: the next
    /// [`Wire::next`] would wait for the server).
    pub(super) fn ready(&mut self) -> Result<Option<Frame>, WireError> {
        parse(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = parse(&mut buf).unwrap() {
            out.push(f);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn messages_with_and_without_headers_and_control_lines() {
        let mut got = frames(
            b"INFO {\"a\":1}\r\nPING\r\nPONG\r\nMSG a.b 1 5\r\nhello\r\n\
              HMSG a.c 1 $JS.ACK.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Permissions'\r\n",
        );
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], Frame::Other);
        assert_eq!(got[1], Frame::Ping);
        assert_eq!(got.remove(2), Frame::Pong);
        assert_eq!(
            got[2],
            Frame::Msg {
                subject: Bytes::from_static(b"a.b"),
                reply: Bytes::new(),
                headers: Bytes::new(),
                payload: Bytes::from_static(b"hello"),
            }
        );
        assert_eq!(
            got[3],
            Frame::Msg {
                subject: Bytes::from_static(b"a.c"),
                reply: Bytes::from_static(b"$JS.ACK.x"),
                headers: Bytes::from_static(b"NATS/1.0\r\n\r\n"),
                payload: Bytes::from_static(b"hi"),
            }
        );
        assert_eq!(got[4], Frame::Err("Permissions".into()));
    }

    #[test]
    fn a_message_split_anywhere_waits_for_the_rest() {
        let whole = b"HMSG s 1 r 12 17\r\nNATS/1.0\r\n\r\nhello\r\n";
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(parse(&mut buf).unwrap(), None, "cut at {cut}");
            buf.extend_from_slice(&whole[cut..]);
            let Some(Frame::Msg { payload, .. }) = parse(&mut buf).unwrap() else {
                panic!("no message after the rest arrived (cut at {cut})");
            };
            assert_eq!(&payload[..], b"hello");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn payloads_may_hold_protocol_text() {
        let got = frames(b"MSG s 1 13\r\nPING\r\nMSG x\r\n\r\nPING\r\n");
        assert_eq!(got.len(), 2);
        let Frame::Msg { payload, .. } = &got[0] else {
            panic!()
        };
        assert_eq!(&payload[..], b"PING\r\nMSG x\r\n");
    }

    #[test]
    fn bad_message_lines_are_refused() {
        for bad in [
            &b"MSG s 1 r x y z\r\n"[..],
            b"MSG s 1 nope\r\n",
            b"HMSG s 1 20 10\r\n",
        ] {
            assert!(parse(&mut BytesMut::from(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_are_read_from_the_first_header_line() {
        assert_eq!(status(b"NATS/1.0 408 Request Timeout\r\n\r\n"), Some(408));
        assert_eq!(status(b"NATS/1.0 100 Idle Heartbeat\r\n"), Some(100));
        assert_eq!(status(b"NATS/1.0\r\nNats-Batch-Id: x\r\n\r\n"), None);
        assert_eq!(status(b""), None);
    }

    #[test]
    fn a_pull_ended_early_says_what_it_did_not_send() {
        let h = b"NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 12\r\nNats-Pending-Bytes: 0\r\n\r\n";
        assert_eq!(pull_ended(h), Some(12));
        let gone = b"NATS/1.0 409 Consumer Deleted\r\nNats-Pending-Messages: 12\r\n\r\n";
        assert_eq!(pull_ended(gone), None);
        assert_eq!(pull_ended(b"NATS/1.0 409 Leadership Change\r\n\r\n"), None);
    }

    #[test]
    fn reply_subjects_in_both_forms() {
        let old = delivery(b"$JS.ACK.HUME_LOG.c1.1.42.7.1733000000000000000.99").unwrap();
        assert_eq!(
            old,
            Delivery {
                stream_sequence: 42,
                consumer_sequence: 7,
                pending: 99
            }
        );
        let new =
            delivery(b"$JS.ACK._.ACCHASH.HUME_LOG.c1.1.43.8.1733000000000000000.0.tok").unwrap();
        assert_eq!(
            new,
            Delivery {
                stream_sequence: 43,
                consumer_sequence: 8,
                pending: 0
            }
        );
        assert_eq!(delivery(b"_INBOX.x"), None);
        assert_eq!(delivery(b"$JS.ACK.a.b.c"), None);
        assert_eq!(delivery(b"$JS.ACK.S.C.1.x.7.1.0"), None);
        assert_eq!(delivery(b"$JS.ACK.S.C.1.2..1.0"), None);
        assert_eq!(delivery(b"$JS.ACK.S.C.1.99999999999999999999.7.1.0"), None);
    }
}
