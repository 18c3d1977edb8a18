//! Where time-stamps come from: a [`Timestamper`] turns a digest into an RFC 3161 token.
//! [`HttpTimestamper`] asks a TSA over HTTP (RFC 3161 §3.4) with a fresh nonce and certReq,
//! and keeps the answer only when it is granted and answers that very request (same imprint,
//! same nonce, the policy asked for).

use std::time::Duration;

use der::asn1::ObjectIdentifier;
use imza_core::alg::DigestAlgorithm;
use imza_http::client::MAX_ANSWER_BYTES;
use imza_tsa::http::{TIMESTAMP_QUERY, TIMESTAMP_REPLY};
use imza_tsa::{
    build_request, check_answers_request, parse_response, random_nonce, ParsedToken,
    TimeStampRequest,
};

use imza_http::HttpClient;

use crate::signed_data::{CmsSignedData, RawAttribute};
use crate::{attributes, SignerError, TimestampError};
use imza_core::oids;

/// A source of RFC 3161 time-stamp tokens.
pub trait Timestamper: Send + Sync {
    /// A token whose message imprint is `digest`, made with `algorithm`.
    fn timestamp(
        &self,
        digest: &[u8],
        algorithm: DigestAlgorithm,
    ) -> Result<ParsedToken, SignerError>;

    /// Which TSA this is, for messages.
    fn describe(&self) -> String;
}

/// A TSA reached over HTTP(S) with POST `application/timestamp-query`.
#[derive(Clone, Debug)]
pub struct HttpTimestamper {
    url: String,
    timeout: Duration,
    policy: Option<ObjectIdentifier>,
}

impl HttpTimestamper {
    /// The TSA at `url` (`http://` or `https://`, checked against the system's roots), giving
    /// up after 30 seconds.
    pub fn new(url: impl Into<String>) -> HttpTimestamper {
        HttpTimestamper {
            url: url.into(),
            timeout: Duration::from_secs(30),
            policy: None,
        }
    }

    /// How long one exchange (connect, send, read) may take.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpTimestamper {
        self.timeout = timeout;
        self
    }

    /// Ask for this TSA policy; a token under another policy is refused.
    pub fn with_policy(mut self, policy: ObjectIdentifier) -> HttpTimestamper {
        self.policy = Some(policy);
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `query` and returns the body of a 200 answer, read up to [`MAX_ANSWER_BYTES`].
    fn post(&self, query: &[u8]) -> Result<Vec<u8>, SignerError> {
        let http = HttpClient {
            timeout: self.timeout,
            max_bytes: MAX_ANSWER_BYTES as u64,
        };
        http.post(&self.url, TIMESTAMP_QUERY, TIMESTAMP_REPLY, query)
            .map_err(|source| SignerError::Network {
                service: "time-stamping authority",
                source,
            })
    }
}

impl Timestamper for HttpTimestamper {
    fn timestamp(
        &self,
        digest: &[u8],
        algorithm: DigestAlgorithm,
    ) -> Result<ParsedToken, SignerError> {
        let refused = |source: TimestampError| SignerError::Timestamp {
            tsa: self.describe(),
            source,
        };
        let tsa = |e: imza_tsa::TsaError| refused(TimestampError::Tsa(e));
        let nonce = random_nonce().map_err(tsa)?;
        let query =
            build_request(digest, algorithm, Some(&nonce), true, self.policy).map_err(tsa)?;
        let sent = TimeStampRequest::from_der(&query).map_err(tsa)?;
        let reply = self.post(&query)?;
        let token = parse_response(&reply)
            .and_then(|response| response.into_token())
            .map_err(tsa)?;
        check_answers_request(&token, &sent)
            .map_err(|e| refused(TimestampError::NotTheRequest(e)))?;
        if token.certificates().is_empty() {
            return Err(refused(TimestampError::NoCertificate));
        }
        Ok(token)
    }

    fn describe(&self) -> String {
        format!("the TSA at {}", self.url)
    }
}

/// Adds a signature time-stamp (B-T, EN 319 122-1 §5.3): an unsigned
/// id-aa-signatureTimeStampToken whose token stamps the hash of the signature value, made
/// with the signer's digest algorithm (SHA-256 when that is not one a TSA takes).
pub(crate) fn add_signature_timestamp(
    signed_data: &mut CmsSignedData,
    timestamper: &dyn Timestamper,
) -> Result<(), SignerError> {
    let signer = signed_data.only_signer_mut()?;
    let algorithm = DigestAlgorithm::from_oid(&signer.digest_algorithm().oid)
        .unwrap_or(DigestAlgorithm::Sha256);
    let imprint = attributes::signature_timestamp_imprint(signer, algorithm);
    let token = timestamper.timestamp(&imprint, algorithm)?;
    signer
        .add_unsigned(RawAttribute::new(
            oids::ATTR_TIME_STAMP_TOKEN,
            vec![token.der().to_vec()],
        )?)
        .map_err(SignerError::from)
}

#[cfg(test)]
mod tests {
    use imza_http::HttpError;

    use super::*;

    #[test]
    fn a_tsa_answering_an_http_error_keeps_the_status_and_the_url() {
        let answer = imza_testenv::http::answer_once(
            "/tsa",
            "HTTP/1.1 503 Service Unavailable",
            "clock not synchronised",
        );
        let url = answer.url.clone();
        let tsa = HttpTimestamper::new(url.clone()).with_timeout(Duration::from_secs(5));
        let err = tsa
            .timestamp(&[7; 32], DigestAlgorithm::Sha256)
            .unwrap_err();
        assert!(
            matches!(
                &err,
                SignerError::Network {
                    service: "time-stamping authority",
                    source: HttpError::Status { url: u, status: 503, said, .. },
                } if *u == url && said == "clock not synchronised"
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("network: time-stamping authority: {url} answered HTTP 503 Service Unavailable: clock not synchronised")
        );
        answer.server.join().unwrap();
    }

    #[test]
    fn a_tsa_answering_garbage_keeps_the_tsa_error_as_the_source() {
        let answer = imza_testenv::http::answer_once(
            "/tsa",
            "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply",
            "not DER",
        );
        let url = answer.url.clone();
        let tsa = HttpTimestamper::new(url.clone()).with_timeout(Duration::from_secs(5));
        let err = tsa
            .timestamp(&[7; 32], DigestAlgorithm::Sha256)
            .unwrap_err();
        let SignerError::Timestamp {
            tsa: described,
            source: TimestampError::Tsa(imza_tsa::TsaError::MalformedResponse { .. }),
        } = &err
        else {
            panic!("expected the TSA's malformed answer kept, got {err:?}");
        };
        assert_eq!(*described, format!("the TSA at {url}"));
        let kept = std::error::Error::source(&err)
            .and_then(std::error::Error::source)
            .and_then(|e| e.downcast_ref::<imza_tsa::TsaError>());
        assert!(
            matches!(kept, Some(imza_tsa::TsaError::MalformedResponse { .. })),
            "{kept:?}"
        );
        answer.server.join().unwrap();
    }
}
