//! Accepting connections for the API: HTTP/1.1 over TCP, with the limits
//! that keep slow or idle clients from starving the others.
//!
//! - A connection must deliver a complete request head within
//!   [`ConnectionLimits::header_read_timeout`], counted from when it opens
//!   or from its previous response; so an idle keep-alive connection is also
//!   closed after that long, and a client sending its headers byte by byte
//!   (slowloris) is cut off. (Request bodies have their own deadline, see
//!   [`super::guard`].)
//! - At most [`ConnectionLimits::max_connections`] connections are served
//!   at once. One more is answered at once with a `503` JSON error naming
//!   the limit, and closed.
//! - Every connection is its own task: a slow one never delays another.
//!
//! On shutdown the listener closes, every connection finishes the request
//! it is serving (idle ones close at once), and [`serve`] returns when the
//! last one is gone.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Limits on connections (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a connection has to send a whole request head (also the idle
    /// keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Over-limit connections being answered at once; beyond this many, more
/// are closed without an answer.
const MAX_REFUSING: usize = 64;

/// Serve `app` on `listener` until `shutdown` resolves, then finish the
/// requests in flight and return once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let refused = Arc::new(AtomicU64::new(0));
    let (closing, closing_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Out of file descriptors (or a transient error): wait a
                // little instead of spinning; the connections that are
                // open will free some.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let n = refused.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    max_connections = max,
                    refused = n + 1,
                    "connection limit reached: refusing new connections (--max-connections)"
                );
            }
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream, max).await;
                    drop(permit);
                });
            }
            continue;
        };
        let app = app.clone();
        let builder = builder.clone();
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(app);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let closing = async move {
                let _ = closing.wait_for(|c| *c).await;
            };
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = closing => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(err) = outcome {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a slot until it is closed.
    let _ = slots.acquire_many(max as u32).await;
}

/// Answer a connection over the limit with a 503 and close it. The request
/// is read (briefly) first, so the client sees the answer rather than a reset.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = serde_json::json!({
        "error": format!(
            "hume serve is at its connection limit ({max} open connections, \
             `hume serve --max-connections`): retry shortly, close idle connections, or raise \
             the limit"
        )
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut buf = [0u8; 4096];
        // What arrived with the connection (usually the whole request).
        let _ = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf)).await;
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Drain what the client still sends until it closes, so closing
        // does not reset the connection under the answer.
        while stream.read(&mut buf).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
