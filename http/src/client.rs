//! The one HTTP client of imza's libraries and CLI ([`HttpClient`]: a timeout and a size
//! limit on every answer, redirects not followed, the platform's TLS and roots), and the
//! bound on what imza reads from the OCSP responders and TSAs it asks ([`MAX_ANSWER_BYTES`]).

use std::time::Duration;

/// The largest OCSP response or time-stamp reply read: one with a few certificates is a few
/// KiB. A client reads no more of an HTTP answer, and the parsers refuse more whether the
/// bytes came over HTTP or from a file, so both stop at the same bound.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// HTTP with a timeout and a size limit per answer: the one HTTP client of imza's libraries
/// and CLI ([`HttpClient::get`], [`HttpClient::post`], [`HttpClient::send`]). `https://` URLs are fetched with the platform's TLS and trusted roots. Redirects are
/// not followed: a certificate's or a TSA's URL that redirects is misconfigured, and a POST
/// must not turn into a GET somewhere else.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// For the whole exchange: connecting, sending and reading the answer.
    pub timeout: Duration,
    /// Largest answer read; a longer one is an error.
    pub max_bytes: u64,
}

impl Default for HttpClient {
    fn default() -> HttpClient {
        HttpClient {
            timeout: Duration::from_secs(10),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The methods [`HttpClient::send`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

/// Why an HTTP exchange gave no answer to use; each variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A scheme other than http:// or https://.
    #[error("{url}: only http:// and https:// URLs are fetched")]
    Scheme { url: String },
    /// No connection, a timeout, or a failure before the status line.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// A status other than 200, with where it redirects to and the first line the server
    /// said (at most 200 printable characters of each).
    #[error("{url} answered HTTP {}", status_line(*.status, .redirect.as_deref(), .said))]
    Status {
        url: String,
        status: u16,
        redirect: Option<String>,
        said: String,
    },
    /// A 200 answer longer than the limit.
    #[error("{url} answered more than {max_bytes} bytes")]
    TooLarge { url: String, max_bytes: u64 },
    /// The answer's body broke off or could not be decoded.
    #[error("cannot read the answer of {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: ureq::Error,
    },
}

/// How much of a non-200 answer is read to say what the server said.
const ERROR_BODY_BYTES: u64 = 4096;

impl HttpClient {
    /// GET `url`, asking for `accept`: the body of a 200 answer, read up to `max_bytes`.
    pub fn get(&self, url: &str, accept: &str) -> Result<Vec<u8>, HttpError> {
        check_scheme(url)?;
        let response = self.agent().get(url).header("Accept", accept).call();
        self.body(url, response)
    }

    /// POST `body` of `content_type` to `url`, asking for `accept`: the body of a 200
    /// answer, read up to `max_bytes`.
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        accept: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, HttpError> {
        check_scheme(url)?;
        let response = self
            .agent()
            .post(url)
            .header("Content-Type", content_type)
            .header("Accept", accept)
            .send(body);
        self.body(url, response)
    }

    /// `method` (GET or POST) `url` with extra `headers` (an `Authorization`, say) and, for a
    /// POST, `body` of the given content type; asking for `accept`. The body of a 200 answer,
    /// read up to `max_bytes`, as [`HttpClient::get`] and [`HttpClient::post`].
    pub fn send(
        &self,
        method: HttpMethod,
        url: &str,
        headers: &[(&str, &str)],
        accept: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Vec<u8>, HttpError> {
        check_scheme(url)?;
        let agent = self.agent();
        let response = match method {
            HttpMethod::Get => {
                let mut request = agent.get(url).header("Accept", accept);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            HttpMethod::Post => {
                let (content_type, bytes) = body.unwrap_or(("application/octet-stream", &[]));
                let mut request = agent
                    .post(url)
                    .header("Accept", accept)
                    .header("Content-Type", content_type);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(bytes)
            }
        };
        self.body(url, response)
    }

    fn agent(&self) -> ureq::Agent {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("imza/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    }

    /// The body of a 200 answer, read up to `max_bytes`; for any other status, what the
    /// server said in the first [`ERROR_BODY_BYTES`] of its answer.
    fn body(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, HttpError> {
        let mut response = response.map_err(|source| HttpError::Unreachable {
            url: url.to_string(),
            source,
        })?;
        let status = response.status();
        if status != 200 {
            let redirect = response
                .headers()
                .get("Location")
                .and_then(|l| l.to_str().ok())
                .map(printable);
            let mut start = Vec::new();
            // What the server said is only decoration on the error: a body that breaks off
            // leaves it shorter, not the error different.
            let _ = std::io::Read::read_to_end(
                &mut std::io::Read::take(response.body_mut().as_reader(), ERROR_BODY_BYTES),
                &mut start,
            );
            let said = String::from_utf8_lossy(&start);
            return Err(HttpError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                redirect,
                said: said.lines().next().map(printable).unwrap_or_default(),
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(self.max_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge {
                    url: url.to_string(),
                    max_bytes: self.max_bytes,
                },
                source => HttpError::Read {
                    url: url.to_string(),
                    source,
                },
            })
    }
}

/// `404 Not Found (redirected to …): what the server said`, the parts it has (for
/// [`HttpError::Status`] and the errors that keep its facts).
pub fn status_line(status: u16, redirect: Option<&str>, said: &str) -> String {
    let mut line = match ureq::http::StatusCode::from_u16(status) {
        Ok(code) => code.to_string(),
        Err(_) => status.to_string(),
    };
    if let Some(to) = redirect {
        line.push_str(&format!(" (redirected to {to})"));
    }
    if !said.is_empty() {
        line.push_str(&format!(": {said}"));
    }
    line
}

/// At most 200 characters of a server's text, without control characters.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Refuses URLs other than http:// and https://.
pub fn check_scheme(url: &str) -> Result<(), HttpError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(HttpError::Scheme {
            url: url.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_schemes_are_refused() {
        let client = HttpClient::default();
        let err = client.get("file:///etc/passwd", "a/b").unwrap_err();
        assert!(matches!(err, HttpError::Scheme { .. }), "{err:?}");
        assert!(err.to_string().contains("only http"), "{err}");
        let err = client.post("ldap://x", "a/b", "c/d", b"").unwrap_err();
        assert!(err.to_string().contains("only http"), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_reported_with_its_url_and_the_cause_kept() {
        // A port nothing listens on any more: the connection is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        drop(listener);
        let err = HttpClient::default().get(&url, "a/b").unwrap_err();
        assert!(
            matches!(&err, HttpError::Unreachable { url: u, .. } if *u == url),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach {url}: ")),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }

    #[test]
    fn the_client_gets_posts_and_bounds_answers_on_loopback() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (i, stream) in listener.incoming().take(4).enumerate() {
                let mut stream = stream.unwrap();
                let mut buf = vec![0; 65536];
                let mut got = Vec::new();
                // Read the head and, for a POST, its 5-byte body.
                loop {
                    let n = stream.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(end) = text.find("\r\n\r\n") {
                        if !text.starts_with("POST") || got.len() >= end + 4 + 5 {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                seen.push(String::from_utf8_lossy(&got).into_owned());
                let body: Vec<u8> = if i == 2 {
                    vec![b'x'; 4096]
                } else {
                    b"answer".to_vec()
                };
                let (status, location) = if i == 3 {
                    ("302 Found", "Location: http://elsewhere.example.az/x\r\n")
                } else {
                    ("200 OK", "")
                };
                let body = if i == 3 {
                    b"moved\nmore".to_vec()
                } else {
                    body
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(&body).unwrap();
            }
            seen
        });
        let client = HttpClient {
            timeout: Duration::from_secs(5),
            max_bytes: 1024,
        };
        let base = format!("http://127.0.0.1:{port}");
        assert_eq!(
            client
                .get(&format!("{base}/ca.crl"), "application/pkix-crl")
                .unwrap(),
            b"answer"
        );
        assert_eq!(
            client
                .post(
                    &format!("{base}/ocsp"),
                    "application/ocsp-request",
                    "application/ocsp-response",
                    b"query"
                )
                .unwrap(),
            b"answer"
        );
        let err = client
            .get(&format!("{base}/big.crl"), "application/pkix-crl")
            .unwrap_err();
        assert!(err.to_string().contains("more than 1024 bytes"), "{err}");
        // A redirect is not followed; the error says where to and what the server said.
        let err = client
            .post(&format!("{base}/tsa"), "a/b", "c/d", b"query")
            .unwrap_err();
        assert!(
            matches!(err, HttpError::Status { status: 302, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{base}/tsa answered HTTP 302 Found (redirected to http://elsewhere.example.az/x): moved")
        );
        let seen = server.join().unwrap();
        assert!(seen[0].starts_with("GET /ca.crl"), "{}", seen[0]);
        assert!(seen[1].starts_with("POST /ocsp"), "{}", seen[1]);
        assert!(
            seen[1]
                .to_ascii_lowercase()
                .contains("content-type: application/ocsp-request"),
            "{}",
            seen[1]
        );
        assert!(seen[1].ends_with("query"), "{}", seen[1]);
    }
}
