//! A Rocket server on a real socket for tests: 127.0.0.1, a port the OS chooses, its own thread
//! and Tokio runtime, and a shutdown when the test is done with it. Each service crate passes
//! its stage (`imza_ocsp::http::stage`, `imza_tsa::http::stage`), so what is tested is what
//! `imza serve` mounts.

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rocket::fairing::{AdHoc, Fairing};

/// How long [`LoopbackServer::launch`] waits for the server to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; dropping it (or [`LoopbackServer::stop`]) shuts it down.
pub struct LoopbackServer {
    port: u16,
    shutdown: rocket::Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Launches Rocket with `stage` attached, on a runtime of `worker_threads` threads, and
    /// returns once it listens. Logging and the Ctrl-C handler are off; a shutdown waits at
    /// most a second for requests in flight.
    ///
    /// Panics if the server has not started within a minute.
    pub fn launch(stage: impl Fairing, worker_threads: usize) -> LoopbackServer {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads)
                .enable_all()
                .build()
                .expect("a Tokio runtime for the test server");
            runtime.block_on(async move {
                let config = rocket::Config {
                    address: Ipv4Addr::LOCALHOST.into(),
                    port: 0,
                    log_level: rocket::config::LogLevel::Off,
                    cli_colors: false,
                    shutdown: rocket::config::Shutdown {
                        ctrlc: false,
                        grace: 1,
                        mercy: 1,
                        ..Default::default()
                    },
                    ..rocket::Config::release_default()
                };
                let rocket = rocket::custom(config)
                    .attach(stage)
                    .attach(AdHoc::on_liftoff("tell the test", move |rocket| {
                        Box::pin(async move {
                            let _ = tx.send((rocket.config().port, rocket.shutdown()));
                        })
                    }));
                let _ = rocket.launch().await;
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
        self.shutdown.clone().notify();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the test server's thread panicked");
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    #[rocket::get("/hello")]
    fn hello() -> &'static str {
        "hello"
    }

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
        let stage = AdHoc::on_ignite("hello", |rocket| async {
            rocket.mount("/", rocket::routes![hello])
        });
        let server = LoopbackServer::launch(stage, 1);
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
