//! The server: accepts TCP connections and serves an [`axum::Router`] on each over HTTP/1.1
//! (hyper 1), within [`ConnectionLimits`]:
//!
//! - **a cap on open connections** below the process's open-file limit (the soft limit is
//!   raised to the hard one at start, and a reserve is kept for the store, keys and outbound
//!   fetches); at the cap a new connection closes the one idle the longest, and when every
//!   connection is busy it gets a one-line 503 and is closed — the accept loop never stops,
//!   so the listen queue never fills with clients nobody answers;
//! - **timeouts**: a connection that sends nothing (fresh, or between keep-alive requests) is
//!   closed after `idle_timeout_seconds`; a request head must be complete within
//!   `header_timeout_seconds` of its first byte; a body must keep the minimum pace (see
//!   [`crate::body`]); an answer the client stops reading is dropped after
//!   `send_timeout_seconds`;
//! - **graceful shutdown** on [`Shutdown`]: no new connections, idle ones closed, requests in
//!   flight given `shutdown_grace_seconds` to finish.
//!
//! Each request carries `axum::extract::ConnectInfo<SocketAddr>` (the peer) in its extensions.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Request, Response};
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tower::ServiceExt;

use crate::body::{Pace, TimedBody};
use crate::connection::{Deadlines, RequestGuard, TrackedIo, Tracker};
use crate::tls::{ClientCertificate, TlsConfig};

/// Cancels a running [`Server`] (and whatever else listens for it, such as long polls that
/// should answer at once when the server stops).
pub type Shutdown = tokio_util::sync::CancellationToken;

/// How connections are bounded; `[server]` in `imza serve`'s configuration. Every field has a
/// safe default.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Most open connections; lowered at start to what the open-file limit allows.
    pub max_connections: usize,
    /// Pending connections the kernel queues before the server accepts them (the kernel caps
    /// it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// A connection with no request under way (fresh, or between keep-alive requests) is
    /// closed after this long.
    pub idle_timeout_seconds: u64,
    /// A request head must be complete this long after its first byte.
    pub header_timeout_seconds: u64,
    /// A request body may take this long, plus a second per `body_min_bytes_per_second`
    /// bytes received.
    pub body_timeout_seconds: u64,
    pub body_min_bytes_per_second: u64,
    /// An answer the client does not read for this long is dropped with its connection.
    pub send_timeout_seconds: u64,
    /// Longest request head (request line and headers), in bytes.
    pub max_head_bytes: usize,
    /// How long requests in flight may finish after a shutdown is asked.
    pub shutdown_grace_seconds: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 16_384,
            listen_backlog: 1_024,
            idle_timeout_seconds: 30,
            header_timeout_seconds: 10,
            body_timeout_seconds: 10,
            body_min_bytes_per_second: 4_096,
            send_timeout_seconds: 30,
            max_head_bytes: 64 * 1024,
            shutdown_grace_seconds: 2,
        }
    }
}

impl ConnectionLimits {
    /// Refuses values that would disable a protection or cannot work.
    pub fn check(&self) -> Result<(), String> {
        let seconds = [
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("header_timeout_seconds", self.header_timeout_seconds),
            ("body_timeout_seconds", self.body_timeout_seconds),
            ("send_timeout_seconds", self.send_timeout_seconds),
        ];
        for (name, value) in seconds {
            if !(1..=3600).contains(&value) {
                return Err(format!("{name} must be between 1 and 3600"));
            }
        }
        if self.shutdown_grace_seconds > 600 {
            return Err("shutdown_grace_seconds must be at most 600".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if !(1..=65_535).contains(&self.listen_backlog) {
            return Err("listen_backlog must be between 1 and 65535".into());
        }
        if self.body_min_bytes_per_second == 0 {
            return Err("body_min_bytes_per_second must be at least 1".into());
        }
        if !(8 * 1024..=1024 * 1024).contains(&self.max_head_bytes) {
            return Err("max_head_bytes must be between 8192 and 1048576".into());
        }
        Ok(())
    }

    fn deadlines(&self) -> Deadlines {
        Deadlines {
            idle: Duration::from_secs(self.idle_timeout_seconds),
            header: Duration::from_secs(self.header_timeout_seconds),
            send: Duration::from_secs(self.send_timeout_seconds),
        }
    }

    fn pace(&self) -> Pace {
        Pace {
            timeout: Duration::from_secs(self.body_timeout_seconds),
            min_bytes_per_second: self.body_min_bytes_per_second,
        }
    }
}

/// Counters of what the server did with connections, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections open now.
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Refused with a 503 at accept: at the cap with every connection busy.
    pub refused_full: AtomicU64,
    /// Closed to make room for a new one (the oldest idle first).
    pub evicted: AtomicU64,
    pub idle_closed: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub send_timeouts: AtomicU64,
    /// accept() failures (out of file descriptors, say).
    pub accept_errors: AtomicU64,
}

impl ServerStats {
    /// Every counter with its name, for rendering.
    pub fn counters(&self) -> [(&'static str, u64); 9] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("open", get(&self.open)),
            ("accepted", get(&self.accepted)),
            ("refused_full", get(&self.refused_full)),
            ("evicted", get(&self.evicted)),
            ("idle_closed", get(&self.idle_closed)),
            ("header_timeouts", get(&self.header_timeouts)),
            ("body_timeouts", get(&self.body_timeouts)),
            ("send_timeouts", get(&self.send_timeouts)),
            ("accept_errors", get(&self.accept_errors)),
        ]
    }
}

/// A bound listener with its limits; [`Server::serve`] runs it.
pub struct Server {
    listener: TcpListener,
    limits: ConnectionLimits,
    max_connections: usize,
    open_file_limit: Option<u64>,
    stats: Arc<ServerStats>,
    shutdown: Shutdown,
    tls: Option<TlsConfig>,
}

/// Evictions still closing at which the accept loop waits for them.
const PENDING_CLOSES: usize = 32;
/// The longest the accept loop waits for them.
const MAX_CLOSE_WAIT: Duration = Duration::from_millis(50);

/// The answer to a connection refused at the cap (every connection busy).
const FULL_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Type: text/plain\r\nContent-Length: 33\r\nConnection: close\r\n\r\n\
the server is at its connection cap\n";

impl Server {
    /// Raises the open-file limit, binds `address` with the configured backlog and works out
    /// the connection cap. Needs a Tokio runtime.
    pub async fn bind(address: SocketAddr, limits: ConnectionLimits) -> io::Result<Server> {
        limits
            .check()
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
        let open_file_limit = raise_open_file_limit();
        let max_connections = connection_cap(limits.max_connections, open_file_limit);
        let socket = match address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        let listener = socket.listen(limits.listen_backlog)?;
        Ok(Server {
            listener,
            limits,
            max_connections,
            open_file_limit,
            stats: Arc::new(ServerStats::default()),
            shutdown: Shutdown::new(),
            tls: None,
        })
    }

    /// Serves HTTPS with `tls` instead of plain HTTP: every connection's handshake first,
    /// within the connection's deadlines; a client certificate, when one was presented, goes to
    /// every request of the connection as a [`ClientCertificate`] extension.
    pub fn with_tls(mut self, tls: TlsConfig) -> Server {
        self.tls = Some(tls);
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The cap in force (the configured one, lowered to fit the open-file limit).
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The soft open-file limit after raising it, when it could be read.
    pub fn open_file_limit(&self) -> Option<u64> {
        self.open_file_limit
    }

    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.stats)
    }

    /// Cancelling it stops the server; clones go to whatever should stop with it.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves `router` until [`Server::shutdown`] is cancelled, then lets requests in flight
    /// finish for the grace period.
    pub async fn serve(self, router: Router) -> io::Result<()> {
        let tracker = Arc::new(Tracker::new(Arc::clone(&self.stats)));
        let deadlines = self.limits.deadlines();
        let reaper = tokio::spawn(enforce_deadlines(
            Arc::clone(&tracker),
            deadlines,
            self.shutdown.clone(),
        ));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .keep_alive(true)
            .max_buf_size(self.limits.max_head_bytes)
            // A backstop under the tracker's own idle and header deadlines.
            .header_read_timeout(deadlines.idle + deadlines.header + Duration::from_secs(1));
        let connection = Arc::new(ConnectionContext {
            http,
            router,
            pace: self.limits.pace(),
            grace: Duration::from_secs(self.limits.shutdown_grace_seconds),
            shutdown: self.shutdown.clone(),
            tls: self.tls.clone(),
        });
        loop {
            // At the cap with many evictions not yet done, let their tasks close their
            // sockets before accepting more (each eviction frees its descriptor only when its
            // task runs); bounded, so a stuck close cannot stop the accept loop.
            let mut waited = Duration::ZERO;
            while tracker.open() >= self.max_connections
                && tracker.closing() >= PENDING_CLOSES
                && waited < MAX_CLOSE_WAIT
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += Duration::from_millis(1);
            }
            let accepted = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    self.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    // Out of descriptors or memory: make room and breathe instead of
                    // spinning; anything else (a client that reset) is the client's.
                    if is_resource_error(&e) {
                        tracker.evict_oldest_idle();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
            };
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            if tracker.open() >= self.max_connections && !tracker.evict_oldest_idle() {
                self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                // Best effort, never waiting: the socket buffer takes these few bytes.
                let _ = stream.try_write(FULL_ANSWER);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let registration = tracker.register();
            let context = Arc::clone(&connection);
            tokio::spawn(async move {
                let _registration = &registration;
                context.serve(stream, peer, &registration.state).await;
            });
        }
        drop(self.listener);
        // Connections see the same cancellation and wind down; wait for them, bounded.
        let grace =
            Duration::from_secs(self.limits.shutdown_grace_seconds) + Duration::from_secs(1);
        let _ = tokio::time::timeout(grace, async {
            while tracker.open() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        reaper.abort();
        Ok(())
    }
}

/// What every connection task shares.
struct ConnectionContext {
    http: hyper::server::conn::http1::Builder,
    router: Router,
    pace: Pace,
    grace: Duration,
    shutdown: Shutdown,
    tls: Option<TlsConfig>,
}

impl ConnectionContext {
    async fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        state: &Arc<crate::connection::ConnectionState>,
    ) {
        let tracked = TrackedIo::new(stream, Arc::clone(state));
        let Some(tls) = &self.tls else {
            return self.serve_http(tracked, peer, None, state).await;
        };
        let Ok(ssl) = openssl::ssl::Ssl::new(tls.acceptor.context()) else {
            return;
        };
        let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tracked) else {
            return;
        };
        // The handshake within the connection's deadlines (the tracker closes a connection
        // that stalls) and before shutdown; a failed one just closes the connection.
        let handshake = tokio::select! {
            biased;
            _ = state.closed() => return,
            _ = self.shutdown.cancelled() => return,
            done = Pin::new(&mut stream).accept() => done,
        };
        if handshake.is_err() {
            return;
        }
        let client = stream
            .ssl()
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
            .map(ClientCertificate);
        self.serve_http(stream, peer, client, state).await
    }

    async fn serve_http<I>(
        &self,
        io: I,
        peer: SocketAddr,
        client: Option<ClientCertificate>,
        state: &Arc<crate::connection::ConnectionState>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let router = self.router.clone();
        let pace = self.pace;
        let service_state = Arc::clone(state);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let guard = service_state.begin_request();
            let connection = Arc::clone(&service_state);
            let mut request =
                request.map(|body| Body::new(TimedBody::new(body, pace, Arc::clone(&connection))));
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(client) = &client {
                request.extensions_mut().insert(client.clone());
            }
            let router = router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let (mut parts, body) = response.into_parts();
                if connection.closes_after_response() {
                    parts
                        .headers
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(Response::from_parts(
                    parts,
                    GuardedBody {
                        body,
                        _guard: guard,
                    },
                ))
            }
        });
        let conn = self.http.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            biased;
            // Evicted or past a deadline: dropping the connection closes the socket.
            _ = state.closed() => {}
            _ = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(self.grace, conn).await;
            }
            _ = &mut conn => {}
        }
    }
}

/// A response body that ends its request (the connection goes back to idle) when it is done
/// or dropped.
struct GuardedBody {
    body: Body,
    /// Held, never read: dropping it ends the request.
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Checks the deadlines of every connection a few times per shortest deadline.
async fn enforce_deadlines(tracker: Arc<Tracker>, deadlines: Deadlines, shutdown: Shutdown) {
    let shortest = deadlines.idle.min(deadlines.header).min(deadlines.send);
    let period = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => tracker.enforce(&deadlines),
        }
    }
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
            || code == rustix::io::Errno::NOBUFS.raw_os_error()
            || code == rustix::io::Errno::NOMEM.raw_os_error()
    )
}

/// Raises the soft open-file limit to the hard one; the soft limit now in force, if it can
/// be read.
fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = raised;
        }
    }
    limit.current
}

/// The configured cap, lowered to leave a reserve of descriptors below the open-file limit
/// for everything else the process opens (the store, keys, outbound fetches, logs).
fn connection_cap(configured: usize, open_file_limit: Option<u64>) -> usize {
    let Some(limit) = open_file_limit else {
        return configured;
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let reserve = (limit / 8).clamp(64, 1024);
    configured.min(limit.saturating_sub(reserve)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_below_the_file_limit() {
        assert_eq!(connection_cap(16_384, Some(1024)), 896);
        assert_eq!(connection_cap(16_384, Some(20_000)), 16_384);
        assert_eq!(connection_cap(100, Some(1024)), 100);
        assert_eq!(connection_cap(16_384, Some(100_000)), 16_384);
        assert_eq!(connection_cap(16_384, Some(1_048_576)), 16_384);
        assert_eq!(connection_cap(500, None), 500);
        assert_eq!(connection_cap(16_384, Some(10)), 1);
    }

    #[test]
    fn limits_that_disable_a_protection_are_refused() {
        assert_eq!(ConnectionLimits::default().check(), Ok(()));
        let zero_idle = ConnectionLimits {
            idle_timeout_seconds: 0,
            ..ConnectionLimits::default()
        };
        assert!(zero_idle
            .check()
            .unwrap_err()
            .contains("idle_timeout_seconds"));
        let no_rate = ConnectionLimits {
            body_min_bytes_per_second: 0,
            ..ConnectionLimits::default()
        };
        assert!(no_rate.check().is_err());
        let parsed: ConnectionLimits = serde_json::from_str(r#"{"max_connections": 10}"#).unwrap();
        assert_eq!(parsed.max_connections, 10);
        assert_eq!(parsed.idle_timeout_seconds, 30);
        assert!(serde_json::from_str::<ConnectionLimits>(r#"{"max_conns": 10}"#).is_err());
    }
}
