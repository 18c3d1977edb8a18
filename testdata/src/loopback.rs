//! A server on a real socket for tests: 127.0.0.1, a port the OS chooses, its own thread and
//! Tokio runtime, and a shutdown when the test is done with it. It is imza-http's [`Server`]
//! (the one `imza serve` runs) with its default limits, and each service crate passes its
//! routes (`imza_ocsp::http::routes`, `imza_tsa::http::routes` …), so what is tested is what
//! `imza serve` mounts. [`RouterClient`] sends requests to the same routes in process, for
//! what a socket adds nothing to (bodies of 48 MiB, headers a client library would fix).
//! [`CountingServer`] stands in for someone else's responder or CRL server: it counts what
//! it is asked, path by path, and answers what the test says — or never answers.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::Router;
use http_body_util::BodyExt;
use imza_http::{ConnectionLimits, Server, Shutdown};
use tower::ServiceExt;

/// How long [`LoopbackServer::launch`] waits for the server to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; dropping it (or [`LoopbackServer::stop`]) shuts it down.
pub struct LoopbackServer {
    port: u16,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves `router` on a runtime of `worker_threads` threads and returns once it listens.
    /// A shutdown waits at most a second for requests in flight.
    ///
    /// Panics if the server has not started within a minute.
    pub fn launch(router: Router, worker_threads: usize) -> LoopbackServer {
        LoopbackServer::launch_with(move |_| router, worker_threads)
    }

    /// Like [`LoopbackServer::launch`], for routes that stop with the server (long polls that
    /// answer at once on shutdown, background upkeep): `make` gets the server's [`Shutdown`]
    /// and is called on the server's runtime.
    pub fn launch_with<F>(make: F, worker_threads: usize) -> LoopbackServer
    where
        F: FnOnce(&Shutdown) -> Router + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads)
                .enable_all()
                .build()
                .expect("a Tokio runtime for the test server");
            runtime.block_on(async move {
                let limits = ConnectionLimits {
                    shutdown_grace_seconds: 1,
                    ..ConnectionLimits::default()
                };
                let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                let server = Server::bind(address, limits)
                    .await
                    .expect("a loopback port for the test server");
                let shutdown = server.shutdown();
                let router = make(&shutdown);
                let port = server.local_addr().map(|a| a.port()).unwrap_or(0);
                let _ = tx.send((port, shutdown));
                let _ = server.serve(router).await;
            });
        });
        let (port, shutdown) = rx
            .recv_timeout(START_TIMEOUT)
            .expect("the test server did not start");
        LoopbackServer {
            port,
            shutdown,
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` followed by `path` (`/ocsp`, `/tsa`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Shuts the server down and waits for its thread; panics if that thread panicked.
    pub fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the test server's thread panicked");
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a [`CountingServer`] answers one request with.
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status, no body.
    Status(u16),
    /// Nothing at all: the request is held, never answered, until the server stops.
    Hold,
}

/// A loopback server that counts requests by path (with the query) and keeps every request
/// body, answering each with what `handler` (path, body) says.
pub struct CountingServer {
    server: LoopbackServer,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CountingServer {
    pub fn start(handler: impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static) -> CountingServer {
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let handler = Arc::new(handler);
        let (seen, kept) = (Arc::clone(&counts), Arc::clone(&bodies));
        let answer = move |uri: Uri, body: Bytes| {
            let path = uri
                .path_and_query()
                .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
            *seen.lock().unwrap().entry(path.clone()).or_default() += 1;
            kept.lock().unwrap().push(body.to_vec());
            let reply = handler(&path, &body);
            async move {
                match reply {
                    Reply::Body(body) => (StatusCode::OK, body),
                    Reply::Status(status) => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        Vec::new(),
                    ),
                    Reply::Hold => std::future::pending().await,
                }
            }
        };
        CountingServer {
            server: LoopbackServer::launch(Router::new().fallback(answer), 2),
            counts,
            bodies,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Requests for `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests so far, every path together.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }

    /// Every request body so far, in the order they came.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Routes driven in process: each request goes through the router as the server would pass
/// it (without the server's connection rules).
pub struct RouterClient {
    router: Router,
    runtime: tokio::runtime::Runtime,
}

/// What [`RouterClient`] got back.
#[derive(Debug)]
pub struct RouterReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RouterReply {
    /// The value of header `name`, when it is there and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl RouterClient {
    pub fn new(router: Router) -> RouterClient {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the in-process client");
        RouterClient { router, runtime }
    }

    /// `method path` with `headers` (name, value) and `body`.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> RouterReply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Body::from(body.into()))
            .expect("a well-formed test request");
        self.runtime.block_on(async {
            let response = match self.router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .expect("the response body")
                .to_bytes()
                .to_vec();
            RouterReply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> RouterReply {
        self.send(Method::GET, path, headers, Vec::new())
    }

    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> RouterReply {
        self.send(Method::POST, path, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    fn get(port: u16) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn serves_on_its_port_until_stopped() {
        let router = Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
        let server = LoopbackServer::launch(router, 1);
        assert_eq!(
            server.url("/hello"),
            format!("http://127.0.0.1:{}/hello", server.port())
        );
        let answer = get(server.port()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        let port = server.port();
        server.stop();
        assert!(get(port).is_err(), "still listening after stop");
    }
}
