//! A loopback HTTP server that answers exactly one request with a canned answer, for tests of
//! how a client takes an HTTP error (a 503 and what the server said, an answer over a size
//! limit) without starting a real service.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

/// One request's answer: the server thread (join it to know the answer went out) and the URL
/// (`http://127.0.0.1:PORT{path}`).
pub struct AnswerOnce {
    pub url: String,
    pub server: JoinHandle<()>,
}

/// Listens on a free loopback port, reads one request's head and answers it with `head` (a
/// status line and any headers), a `Content-Length`, `Connection: close` and `body`.
pub fn answer_once(path: &str, head: &'static str, body: &'static str) -> AnswerOnce {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!(
        "http://{}{path}",
        listener.local_addr().expect("local address")
    );
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the request");
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).expect("read the request");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let reply = format!(
            "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // The client may have given up reading (an answer over its limit): not this
        // fixture's failure.
        let _ = stream.write_all(reply.as_bytes());
    });
    AnswerOnce { url, server }
}
