//! Fetching revocation information over the network when the caller allows it: CRLs from
//! CRL distribution points (RFC 5280 §4.2.1.13) and OCSP responses from the AIA OCSP URL
//! (RFC 5280 §4.2.2.1, RFC 6960 Appendix A.1).
//!
//! Only `http://` (and `https://`) URLs are followed; LDAP and other schemes in a
//! distribution point are skipped. Every answer is read up to a size limit within a timeout,
//! and a certificate makes at most [`MAX_CRL_URLS`] CRL fetches.

use std::sync::Arc;
use std::time::Duration;

use der::Decode;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlDistributionPoints, FreshestCrl};

use imza_core::oids;

use crate::{Certificate, Crl, ValidationError};

/// Most distinct CRL URLs fetched for one certificate (distribution points and
/// freshest-CRL pointers together).
pub(crate) const MAX_CRL_URLS: usize = 8;

/// `Content-Type` of an OCSP request (RFC 6960 Appendix A.1).
const OCSP_REQUEST: &str = "application/ocsp-request";
/// `Content-Type` of an OCSP response.
const OCSP_RESPONSE: &str = "application/ocsp-response";
/// `Content-Type` of a DER CRL (RFC 2585 §4.2).
const PKIX_CRL: &str = "application/pkix-crl";

/// Gets bytes from URLs taken from certificates. Implemented over HTTP by [`HttpFetcher`],
/// and with a shared cache, coalescing and caps by [`crate::RequestFetcher`]; tests can count
/// or refuse calls.
pub trait Fetcher: Send + Sync {
    /// GET a DER CRL from an `http://` distribution point.
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError>;
    /// POST a DER OCSPRequest (`application/ocsp-request`) and return the DER OCSPResponse.
    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError>;

    /// The CRLs at `url`, parsed. The default parses what [`Fetcher::fetch_crl`] answers; a
    /// cache hands out the CRLs it parsed once, so a large CRL is not parsed per validation.
    fn crls(&self, url: &str) -> Result<Vec<Arc<Crl>>, ValidationError> {
        let bytes = self.fetch_crl(url)?;
        Ok(crate::read_crls(&bytes)?
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    /// Whether OCSP requests sent through this fetcher carry a fresh nonce (RFC 9654). Yes by
    /// default: the answer serves this one validation, and the nonce proves it is not a
    /// replay. A fetcher whose answers are shared by many validations says no: a nonce would
    /// make every answer unique, and a shared answer's freshness comes from its thisUpdate and
    /// nextUpdate, which every response check judges anyway (the RFC 5019 model).
    fn ocsp_nonce(&self) -> bool {
        true
    }
}

/// HTTP with a timeout and a size limit per answer: the one HTTP client of imza's libraries
/// and CLI ([`HttpFetcher::get`], [`HttpFetcher::post`]), and the [`Fetcher`] of revocation
/// data. `https://` URLs are fetched with the platform's TLS and trusted roots. Redirects are
/// not followed: a certificate's or a TSA's URL that redirects is misconfigured, and a POST
/// must not turn into a GET somewhere else.
#[derive(Clone, Debug)]
pub struct HttpFetcher {
    /// For the whole exchange: connecting, sending and reading the answer.
    pub timeout: Duration,
    /// Largest answer read; a longer one is an error.
    pub max_bytes: u64,
}

impl Default for HttpFetcher {
    fn default() -> HttpFetcher {
        HttpFetcher {
            timeout: Duration::from_secs(10),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The methods [`HttpFetcher::send`] speaks.
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
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
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
    #[error("cannot read the answer of {url}: {reason}")]
    Read { url: String, reason: String },
}

impl From<HttpError> for ValidationError {
    fn from(e: HttpError) -> ValidationError {
        ValidationError::Network(e.to_string())
    }
}

/// How much of a non-200 answer is read to say what the server said.
const ERROR_BODY_BYTES: u64 = 4096;

impl HttpFetcher {
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
    /// read up to `max_bytes`, as [`HttpFetcher::get`] and [`HttpFetcher::post`].
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
        let mut response = response.map_err(|e| HttpError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
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
                e => HttpError::Read {
                    url: url.to_string(),
                    reason: e.to_string(),
                },
            })
    }
}

/// `404 Not Found (redirected to …): what the server said`, the parts it has.
fn status_line(status: u16, redirect: Option<&str>, said: &str) -> String {
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
fn check_scheme(url: &str) -> Result<(), HttpError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(HttpError::Scheme {
            url: url.to_string(),
        })
    }
}

impl Fetcher for HttpFetcher {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        Ok(self.get(url, PKIX_CRL)?)
    }

    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
        Ok(self.post(url, OCSP_REQUEST, OCSP_RESPONSE, request)?)
    }
}

/// The CRLs at `cert`'s http:// CRL distribution points (and freshest-CRL pointers, for
/// delta CRLs), fetched with `fetcher` and parsed. Failures are returned as notes, not errors:
/// other revocation sources may still cover the certificate.
pub(crate) fn fetch_crls(
    cert: &Certificate,
    fetcher: &dyn Fetcher,
) -> (Vec<Arc<Crl>>, Vec<String>) {
    let (urls, mut notes) = crl_urls(cert);
    let mut crls = Vec::new();
    for url in &urls {
        match fetcher.crls(url) {
            Ok(found) if found.is_empty() => notes.push(format!("{url}: no CRL in the answer")),
            Ok(found) => crls.extend(found.into_iter().take(MAX_CRL_URLS)),
            Err(e) => notes.push(format!("CRL {url}: {e}")),
        }
    }
    (crls, notes)
}

/// The distinct http(s) URIs among the fullNames of `cert`'s CRLDistributionPoints and
/// FreshestCRL extensions (at most [`MAX_CRL_URLS`]), and notes on what was skipped.
pub(crate) fn crl_urls(cert: &Certificate) -> (Vec<String>, Vec<String>) {
    let mut urls: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let mut skipped = 0usize;
    let extensions = cert.inner().tbs_certificate.extensions.iter().flatten();
    for extension in extensions {
        let points: Vec<DistributionPoint> = match extension.extn_id {
            oids::EXT_CRL_DISTRIBUTION_POINTS => {
                match CrlDistributionPoints::from_der(extension.extn_value.as_bytes()) {
                    Ok(points) => points.0,
                    Err(e) => {
                        notes.push(format!("undecodable CRL distribution points: {e}"));
                        continue;
                    }
                }
            }
            oids::EXT_FRESHEST_CRL => {
                match FreshestCrl::from_der(extension.extn_value.as_bytes()) {
                    Ok(points) => points.0,
                    Err(e) => {
                        notes.push(format!("undecodable freshest CRL pointer: {e}"));
                        continue;
                    }
                }
            }
            _ => continue,
        };
        for point in &points {
            let Some(DistributionPointName::FullName(names)) = &point.distribution_point else {
                continue;
            };
            for name in names {
                let GeneralName::UniformResourceIdentifier(uri) = name else {
                    continue;
                };
                let uri = uri.as_str();
                if check_scheme(uri).is_err() {
                    skipped += 1;
                } else if !urls.iter().any(|u| u == uri) {
                    if urls.len() < MAX_CRL_URLS {
                        urls.push(uri.to_string());
                    } else {
                        skipped += 1;
                    }
                }
            }
        }
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} CRL URL(s) not fetched (not http, or more than {MAX_CRL_URLS})"
        ));
    }
    (urls, notes)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use imza_core::ext;
    use imza_core::key::software::SoftwareKey;
    use imza_core::KeyAlgorithm;
    use imza_testdata::pki::{leaf_extensions, TestCa};

    use super::*;

    struct CountingFetcher {
        crl: Vec<u8>,
        asked: Mutex<Vec<String>>,
    }

    impl Fetcher for CountingFetcher {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
            self.asked.lock().unwrap().push(url.to_string());
            if url.contains("down") {
                Err(ValidationError::Network(format!("cannot reach {url}")))
            } else {
                Ok(self.crl.clone())
            }
        }

        fn post_ocsp(&self, url: &str, _: &[u8]) -> Result<Vec<u8>, ValidationError> {
            Err(ValidationError::Network(format!("no OCSP at {url}")))
        }
    }

    fn leaf_with(extra: Vec<x509_cert::ext::Extension>) -> (TestCa, Certificate) {
        let ca = TestCa::root("CN=Fetch Test CA", KeyAlgorithm::EcP256);
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let mut extensions = leaf_extensions();
        extensions.extend(extra);
        let der = ca.issue("CN=leaf", &[0x05], &key, extensions);
        (ca, Certificate::from_der(der).unwrap())
    }

    fn empty_crl(ca: &TestCa) -> Vec<u8> {
        let now = time::OffsetDateTime::now_utc();
        ca.crl(&[], now, now + time::Duration::days(1))
    }

    #[test]
    fn each_http_distribution_point_is_fetched_once_and_failures_become_notes() {
        // An LDAP URI next to the http one: skipped.
        let ldap =
            ext::crl_distribution_points("ldap://dir.example.az/cn=CA?certificateRevocationList")
                .unwrap();
        let (ca, leaf) = leaf_with(vec![
            ext::crl_distribution_points("http://crl.example.az/ca.crl").unwrap(),
            ldap,
        ]);
        let (urls, notes) = crl_urls(&leaf);
        assert_eq!(urls, vec!["http://crl.example.az/ca.crl".to_string()]);
        assert!(notes.iter().any(|n| n.contains("not http")), "{notes:?}");

        let fetcher = CountingFetcher {
            crl: empty_crl(&ca),
            asked: Mutex::new(Vec::new()),
        };
        let (crls, _) = fetch_crls(&leaf, &fetcher);
        assert_eq!(crls.len(), 1);
        assert_eq!(*fetcher.asked.lock().unwrap(), urls);

        let (_, down) = leaf_with(vec![ext::crl_distribution_points(
            "http://down.example.az/ca.crl",
        )
        .unwrap()]);
        let (crls, notes) = fetch_crls(&down, &fetcher);
        assert!(crls.is_empty());
        assert!(
            notes.iter().any(|n| n.contains("cannot reach http://down")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_certificate_without_distribution_points_fetches_nothing() {
        let (_, leaf) = leaf_with(vec![]);
        assert_eq!(crl_urls(&leaf), (Vec::new(), Vec::new()));
    }

    #[test]
    fn other_schemes_are_refused_by_the_http_fetcher() {
        let fetcher = HttpFetcher::default();
        let err = fetcher.fetch_crl("file:///etc/passwd").unwrap_err();
        assert!(err.to_string().contains("only http"), "{err}");
        let err = fetcher.post_ocsp("ldap://x", b"").unwrap_err();
        assert!(err.to_string().contains("only http"), "{err}");
    }

    #[test]
    fn the_http_fetcher_gets_posts_and_bounds_answers_on_loopback() {
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
        let fetcher = HttpFetcher {
            timeout: Duration::from_secs(5),
            max_bytes: 1024,
        };
        let base = format!("http://127.0.0.1:{port}");
        assert_eq!(
            fetcher.fetch_crl(&format!("{base}/ca.crl")).unwrap(),
            b"answer"
        );
        assert_eq!(
            fetcher
                .post_ocsp(&format!("{base}/ocsp"), b"query")
                .unwrap(),
            b"answer"
        );
        let err = fetcher.fetch_crl(&format!("{base}/big.crl")).unwrap_err();
        assert!(err.to_string().contains("more than 1024 bytes"), "{err}");
        // A redirect is not followed; the error says where to and what the server said.
        let err = fetcher
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
