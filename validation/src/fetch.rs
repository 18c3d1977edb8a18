//! Fetching revocation information over the network when the caller allows it: CRLs from
//! CRL distribution points (RFC 5280 §4.2.1.13) and OCSP responses from the AIA OCSP URL
//! (RFC 5280 §4.2.2.1, RFC 6960 Appendix A.1).
//!
//! Only `http://` (and `https://`) URLs are followed; LDAP and other schemes in a
//! distribution point are skipped. Every answer is read up to a size limit within a timeout,
//! and a certificate makes at most [`MAX_CRL_URLS`] CRL fetches.

use std::sync::Arc;

use der::Decode;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlDistributionPoints, FreshestCrl};

use imza_core::oids;
use imza_http::client::check_scheme;
use imza_http::HttpClient;

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

/// Gets bytes from URLs taken from certificates. Implemented over HTTP by [`HttpClient`],
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

/// One fetcher shared by several validators (each owns the fetcher it is given): the signer's
/// validation data sources, the validators made per authentication.
///
/// It forwards [`Fetcher::fetch_crl`] and [`Fetcher::post_ocsp`] only, so the shared
/// fetcher's own [`Fetcher::crls`] and [`Fetcher::ocsp_nonce`] are not used: behind it a
/// [`crate::FetchCache`] parses each CRL per validation and its OCSP requests carry a nonce.
pub struct SharedFetcher(pub Arc<dyn Fetcher>);

impl Fetcher for SharedFetcher {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        self.0.fetch_crl(url)
    }

    fn post_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.0.post_ocsp(url, request)
    }
}

/// Revocation data over imza's one HTTP client.
impl Fetcher for HttpClient {
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
    use imza_testpki::{leaf_extensions, TestCa};

    use super::*;
    use crate::NetworkFailure;

    struct CountingFetcher {
        crl: Vec<u8>,
        asked: Mutex<Vec<String>>,
    }

    impl Fetcher for CountingFetcher {
        fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
            self.asked.lock().unwrap().push(url.to_string());
            if url.contains("down") {
                Err(ValidationError::network(
                    url,
                    NetworkFailure::unreachable(std::io::ErrorKind::ConnectionRefused.into()),
                ))
            } else {
                Ok(self.crl.clone())
            }
        }

        fn post_ocsp(&self, url: &str, _: &[u8]) -> Result<Vec<u8>, ValidationError> {
            Err(ValidationError::network(url, NetworkFailure::status(404)))
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
            notes
                .iter()
                .any(|n| n.contains("http://down")
                    && n.contains("cannot reach it: connection refused")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_certificate_without_distribution_points_fetches_nothing() {
        let (_, leaf) = leaf_with(vec![]);
        assert_eq!(crl_urls(&leaf), (Vec::new(), Vec::new()));
    }

    /// A loopback server answering one request for `/ca.crl` with `head` and `body`; its URL.
    fn answer_once(head: &'static str, body: &'static str) -> String {
        imza_testenv::http::answer_once("/ca.crl", head, body).url
    }

    #[test]
    fn an_http_status_is_kept_as_a_number_with_the_url() {
        let url = answer_once("HTTP/1.1 503 Service Unavailable", "down for repair\nmore");
        let err = HttpClient::default().fetch_crl(&url).unwrap_err();
        let ValidationError::Network {
            url: failed,
            failure:
                NetworkFailure::Status {
                    status,
                    redirect,
                    said,
                },
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (failed, *status, redirect, said.as_str()),
            (&url, 503, &None, "down for repair")
        );
        assert_eq!(
            err.to_string(),
            format!("network: {url}: answered HTTP 503 Service Unavailable: down for repair")
        );
    }

    #[test]
    fn an_answer_over_the_limit_keeps_the_limit() {
        let url = answer_once("HTTP/1.1 200 OK", "0123456789abcdef");
        let client = HttpClient {
            max_bytes: 8,
            ..HttpClient::default()
        };
        let err = client.fetch_crl(&url).unwrap_err();
        assert!(
            matches!(&err, ValidationError::Network { url: u, failure: NetworkFailure::TooLarge { max_bytes: 8 } } if *u == url),
            "{err:?}"
        );
    }

    #[test]
    fn an_unreachable_server_keeps_the_url_and_the_io_error() {
        // A port nothing listens on any more: the connection is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ocsp", listener.local_addr().unwrap());
        drop(listener);
        let err = HttpClient::default().post_ocsp(&url, b"query").unwrap_err();
        assert!(
            matches!(&err, ValidationError::Network { url: u, failure: NetworkFailure::Unreachable { .. } } if *u == url),
            "{err:?}"
        );
        let failure = std::error::Error::source(&err).unwrap();
        let io = failure
            .source()
            .and_then(|cause| cause.downcast_ref::<std::io::Error>())
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{io:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("network: {url}: cannot reach it: ")),
            "{err}"
        );
        // Cloned (as a cache remembers it), the cause is the same.
        let again = err.clone();
        assert_eq!(again.to_string(), err.to_string());
    }

    #[test]
    fn other_schemes_are_refused_by_the_http_client_fetcher() {
        let fetcher = HttpClient::default();
        let err = fetcher.fetch_crl("file:///etc/passwd").unwrap_err();
        assert!(
            matches!(&err, ValidationError::Network { url, failure: NetworkFailure::Scheme } if url == "file:///etc/passwd"),
            "{err:?}"
        );
        assert!(err.to_string().contains("only http"), "{err}");
        let err = fetcher.post_ocsp("ldap://x", b"").unwrap_err();
        assert!(err.to_string().contains("only http"), "{err}");
    }
}
