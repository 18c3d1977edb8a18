//! The server over real sockets on loopback: keep-alive, the idle, header, body and cap rules,
//! the refusal when every connection is busy, and shutdown.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use imza_http::{
    read_body, BodyRefused, ClientCertificate, ConnectionLimits, Server, ServerStats, Shutdown,
    TlsConfig,
};

struct Running {
    address: SocketAddr,
    stats: Arc<ServerStats>,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn echo(headers: HeaderMap, body: Body) -> (StatusCode, String) {
    match read_body(body, &headers, 1 << 20, None).await {
        Ok(body) => (StatusCode::OK, format!("{} bytes", body.bytes.len())),
        Err(BodyRefused::TimedOut) => (StatusCode::REQUEST_TIMEOUT, "too slow".into()),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn start(limits: ConnectionLimits) -> Running {
    start_with(limits, None)
}

/// [`start`], serving HTTPS with `tls` when given.
fn start_with(limits: ConnectionLimits, tls: Option<TlsConfig>) -> Running {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), limits)
                .await
                .unwrap();
            if let Some(tls) = tls {
                server = server.with_tls(tls);
            }
            let router = Router::new()
                .route("/hello", get(|| async { "hello" }))
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        "slow"
                    }),
                )
                .route("/echo", post(echo))
                .route(
                    "/who",
                    get(|client: Option<Extension<ClientCertificate>>| async move {
                        match client {
                            Some(Extension(ClientCertificate(der))) => {
                                format!("client certificate, {} bytes", der.len())
                            }
                            None => "no client certificate".to_string(),
                        }
                    }),
                );
            tx.send((
                server.local_addr().unwrap(),
                server.stats(),
                server.shutdown(),
            ))
            .unwrap();
            server.serve(router).await.unwrap();
        });
    });
    let (address, stats, shutdown) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Running {
        address,
        stats,
        shutdown,
        thread: Some(thread),
    }
}

fn quick_limits() -> ConnectionLimits {
    ConnectionLimits {
        idle_timeout_seconds: 1,
        header_timeout_seconds: 1,
        body_timeout_seconds: 1,
        body_min_bytes_per_second: 1_000_000,
        ..ConnectionLimits::default()
    }
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads one response (head and a Content-Length body).
fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return String::from_utf8_lossy(&got).into_owned(),
        }
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// True when the server closed the connection (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

const HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = start(ConnectionLimits::default());
    let mut stream = connect(server.address);
    for _ in 0..3 {
        stream.write_all(HELLO).unwrap();
        let answer = read_response(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
    }
}

#[test]
fn a_silent_connection_and_an_idle_keep_alive_one_are_closed_after_the_idle_timeout() {
    let server = start(quick_limits());
    let mut silent = connect(server.address);
    let mut used = connect(server.address);
    used.write_all(HELLO).unwrap();
    assert!(read_response(&mut used).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(5)));
    assert!(closed_within(&mut used, Duration::from_secs(5)));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(server.stats.idle_closed.load(Ordering::Relaxed) >= 2);
}

#[test]
fn a_head_sent_byte_by_byte_is_cut_at_the_header_timeout() {
    let server = start(ConnectionLimits {
        idle_timeout_seconds: 30,
        ..quick_limits()
    });
    let mut stream = connect(server.address);
    let started = Instant::now();
    let mut cut = false;
    for byte in
        b"GET /hello HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter()
    {
        if stream.write_all(&[*byte]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cut || closed_within(&mut stream, Duration::from_secs(5)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats.header_timeouts.load(Ordering::Relaxed), 1);
}

#[test]
fn a_body_that_never_comes_gets_408_and_the_connection_closes() {
    let server = start(quick_limits());
    let mut stream = connect(server.address);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nsome")
        .unwrap();
    let started = Instant::now();
    let answer = read_response(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(closed_within(&mut stream, Duration::from_secs(5)));
    assert_eq!(server.stats.body_timeouts.load(Ordering::Relaxed), 1);
    // A body that keeps the pace is read.
    let mut stream = connect(server.address);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let answer = read_response(&mut stream);
    assert!(answer.ends_with("5 bytes"), "{answer}");
}

#[test]
fn at_the_cap_a_new_connection_closes_the_oldest_idle_one() {
    let server = start(ConnectionLimits {
        max_connections: 4,
        ..ConnectionLimits::default()
    });
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| {
            let stream = connect(server.address);
            std::thread::sleep(Duration::from_millis(20));
            stream
        })
        .collect();
    while server.stats.open.load(Ordering::Relaxed) < 4 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut newcomer = connect(server.address);
    newcomer.write_all(HELLO).unwrap();
    assert!(read_response(&mut newcomer).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(5)),
        "the oldest idle one"
    );
    assert!(
        !closed_within(&mut idle[3], Duration::from_millis(200)),
        "a newer one stays"
    );
    assert_eq!(server.stats.evicted.load(Ordering::Relaxed), 1);
}

#[test]
fn at_the_cap_with_every_connection_busy_a_newcomer_gets_503() {
    let server = start(ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    });
    let mut busy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(server.address);
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut newcomer = connect(server.address);
    let answer = read_response(&mut newcomer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    for stream in &mut busy {
        assert!(read_response(stream).ends_with("slow"));
    }
    assert_eq!(server.stats.refused_full.load(Ordering::Relaxed), 1);
}

#[test]
fn shutdown_stops_accepting_and_ends_serve() {
    let mut server = start(ConnectionLimits::default());
    let mut stream = connect(server.address);
    stream.write_all(HELLO).unwrap();
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200"));
    server.shutdown.cancel();
    let thread = server.thread.take().unwrap();
    let started = Instant::now();
    thread.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(server.address).is_err());
}

/// Runs `openssl` with `args` in `dir`, insisting on success.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name` in `dir` (name.pem, name.key) and a certificate it issues (leaf.pem,
/// leaf.key) for `subject` with `extensions` (an openssl -extfile line).
fn ca_and_leaf(dir: &std::path::Path, name: &str, leaf: &str, subject: &str, extension: &str) {
    let key = |file: &str| {
        [
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            file,
        ]
        .map(String::from)
    };
    let run =
        |args: Vec<String>| openssl(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    run(key(&format!("{name}.key")).to_vec());
    run([
        "req",
        "-x509",
        "-new",
        "-key",
        &format!("{name}.key"),
        "-subj",
        &format!("/CN={name}"),
        "-days",
        "2",
        "-out",
        &format!("{name}.pem"),
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]
    .map(String::from)
    .to_vec());
    run(key(&format!("{leaf}.key")).to_vec());
    run([
        "req",
        "-new",
        "-key",
        &format!("{leaf}.key"),
        "-subj",
        subject,
        "-out",
        &format!("{leaf}.csr"),
    ]
    .map(String::from)
    .to_vec());
    std::fs::write(dir.join(format!("{leaf}.ext")), extension).unwrap();
    run([
        "x509",
        "-req",
        "-in",
        &format!("{leaf}.csr"),
        "-CA",
        &format!("{name}.pem"),
        "-CAkey",
        &format!("{name}.key"),
        "-set_serial",
        "2",
        "-days",
        "1",
        "-extfile",
        &format!("{leaf}.ext"),
        "-out",
        &format!("{leaf}.pem"),
    ]
    .map(String::from)
    .to_vec());
}

/// curl against `url` with `extra` arguments: (exit status, body).
fn curl(dir: &std::path::Path, url: &str, extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .current_dir(dir)
        .args(["-s", "--max-time", "5"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn https_with_an_optional_client_certificate_checked_against_its_cas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca_and_leaf(
        d,
        "server-ca",
        "server",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    ca_and_leaf(
        d,
        "client-ca",
        "client",
        "/CN=Gunay Aliyeva",
        "extendedKeyUsage=clientAuth\n",
    );
    ca_and_leaf(
        d,
        "other-ca",
        "stranger",
        "/CN=Stranger",
        "extendedKeyUsage=clientAuth\n",
    );
    let read = |f: &str| std::fs::read(d.join(f)).unwrap();
    let mut chain = read("server.pem");
    chain.extend(read("server-ca.pem"));
    let tls = TlsConfig::new(&chain, &read("server.key"), Some(&read("client-ca.pem"))).unwrap();
    let server = start_with(ConnectionLimits::default(), Some(tls));
    let url = format!("https://127.0.0.1:{}/who", server.address.port());

    assert_eq!(
        curl(d, &url, &["--cacert", "server-ca.pem"]),
        (0, "no client certificate".into())
    );
    let (status, body) = curl(
        d,
        &url,
        &[
            "--cacert",
            "server-ca.pem",
            "--cert",
            "client.pem",
            "--key",
            "client.key",
        ],
    );
    assert_eq!(status, 0);
    assert!(body.starts_with("client certificate, "), "{body}");
    // A client certificate from another CA fails the handshake.
    let (status, _) = curl(
        d,
        &url,
        &[
            "--cacert",
            "server-ca.pem",
            "--cert",
            "stranger.pem",
            "--key",
            "stranger.key",
        ],
    );
    assert_ne!(status, 0);
    // A client certificate of the right CA but expired reaches the route, which decides (the
    // portal says "expired" in words; a TLS alert would not).
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "client-ca.pem",
            "-CAkey",
            "client-ca.key",
            "-set_serial",
            "3",
            "-days",
            "-1",
            "-out",
            "expired.pem",
        ],
    );
    let (status, body) = curl(
        d,
        &url,
        &[
            "--cacert",
            "server-ca.pem",
            "--cert",
            "expired.pem",
            "--key",
            "client.key",
        ],
    );
    assert_eq!(status, 0);
    assert!(body.starts_with("client certificate, "), "{body}");
    // A client that does not trust the server's CA stops; plain HTTP gets no answer.
    assert_ne!(curl(d, &url, &[]).0, 0);
    let plain = format!("http://127.0.0.1:{}/who", server.address.port());
    assert_ne!(curl(d, &plain, &[]).1, "no client certificate");
    // TLS 1.1 is refused; 1.3 is spoken.
    assert_ne!(
        curl(
            d,
            &url,
            &["--cacert", "server-ca.pem", "--tlsv1.1", "--tls-max", "1.1"]
        )
        .0,
        0
    );
    assert_eq!(
        curl(d, &url, &["--cacert", "server-ca.pem", "--tlsv1.3"]).0,
        0
    );
    // The server goes on.
    assert_eq!(
        curl(d, &url, &["--cacert", "server-ca.pem"]).1,
        "no client certificate"
    );
    // A key that is not the certificate's is refused at set-up.
    assert!(TlsConfig::new(&chain, &read("client.key"), None)
        .unwrap_err()
        .contains("does not match"));
}
