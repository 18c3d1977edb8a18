//! Errors from imza-ocsp, each saying what failed and carrying the facts, and the
//! OCSPResponseStatus (RFC 6960 §2.3) a responder answers for it.

use der::asn1::ObjectIdentifier;
use x509_ocsp::OcspResponseStatus;

/// Everything that can go wrong parsing, answering or checking OCSP messages.
/// A status source's own failure (a store error), kept as the error it is and shared so that
/// [`OcspError`] stays `Clone`. Two are equal when they say the same.
#[derive(Clone, Debug)]
pub struct SourceError(pub std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl SourceError {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> SourceError {
        SourceError(std::sync::Arc::new(error))
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl PartialEq for SourceError {
    fn eq(&self, other: &SourceError) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for SourceError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    // ----- requests (answered with malformedRequest) -----
    #[error("the OCSP request is {len} bytes; at most {limit} are accepted")]
    RequestTooLarge { len: usize, limit: usize },
    #[error("malformed OCSP {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("the OCSP request names no certificate")]
    NoCertIds,
    #[error(
        "the OCSP request names {count} certificates; at most {limit} are answered per request"
    )]
    TooManyCertIds { count: usize, limit: usize },
    #[error("the {location} carry {count} extensions; at most {limit} are accepted")]
    TooManyExtensions {
        location: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("the {location} carry extension {oid} more than once (RFC 5280 §4.2)")]
    DuplicateExtension {
        location: &'static str,
        oid: ObjectIdentifier,
    },
    #[error("the {location} carry critical extension {oid}, which imza does not understand (RFC 6960 §4.4)")]
    UnsupportedCriticalExtension {
        location: &'static str,
        oid: ObjectIdentifier,
    },
    #[error("the nonce is {len} octets; RFC 9654 §2.1 allows 1 to {max}")]
    NonceLength { len: usize, max: usize },

    // ----- which CA (answered with unauthorized) -----
    #[error(
        "CertID hash algorithm {oid} is not supported (use SHA-1, SHA-256, SHA-384 or SHA-512)"
    )]
    UnsupportedHashAlgorithm { oid: ObjectIdentifier },
    #[error("this responder does not serve the CA of CertID {hash} issuerNameHash {name_hash} issuerKeyHash {key_hash} (serial {serial})")]
    IssuerNotServed {
        hash: &'static str,
        name_hash: String,
        key_hash: String,
        serial: String,
    },
    #[error("the request names certificates of CA {first} and of CA {second}; one signed response answers for one CA")]
    MixedIssuers { first: String, second: String },

    // ----- the responder's own trouble (tryLater / internalError) -----
    /// The status source could not answer for serial `serial` of CA `issuer`, because of
    /// `source` (the store's error).
    #[error("the status of serial {serial} of CA {issuer} is unavailable: {source}")]
    StatusUnavailable {
        issuer: String,
        serial: String,
        source: SourceError,
    },
    /// The status source could not be read at all (its revision), because of the error kept.
    #[error("the certificate status source cannot be read: {0}")]
    SourceUnavailable(#[source] SourceError),
    #[error("the responder certificate of CA {issuer} is not valid at {at} (valid from {not_before} to {not_after})")]
    ResponderCertificateNotValid {
        issuer: String,
        at: String,
        not_before: String,
        not_after: String,
    },
    #[error("signing the response for CA {issuer} failed: {reason}")]
    Signing { issuer: String, reason: String },
    #[error("the responder panicked while answering (a bug): {0}")]
    Panic(String),

    // ----- responder configuration -----
    #[error("cannot serve CA {issuer}: {reason}")]
    Configuration { issuer: String, reason: String },

    // ----- responses (client side) -----
    #[error("the OCSP response is {len} bytes; at most {limit} are accepted")]
    ResponseTooLarge { len: usize, limit: usize },
    #[error("the response has status successful but no responseBytes (RFC 6960 §4.2.1)")]
    SuccessfulWithoutBody,
    #[error("the response has status {status:?} yet carries responseBytes (RFC 6960 §2.3: error responses are unsigned and bare)")]
    ErrorStatusWithBody { status: OcspResponseStatus },
    #[error("response type {oid} is not id-pkix-ocsp-basic")]
    UnsupportedResponseType { oid: ObjectIdentifier },
    #[error("the response has {count} {what}; at most {limit} are accepted")]
    TooManyInResponse {
        what: &'static str,
        count: usize,
        limit: usize,
    },

    // ----- response verification -----
    #[error("no certificate matches responder ID {responder}")]
    SignerNotFound { responder: String },
    #[error("signature algorithm {oid} is not accepted")]
    UnsupportedSignatureAlgorithm { oid: ObjectIdentifier },
    #[error("signature algorithm {oid} is not accepted with these parameters: {detail}")]
    UnsupportedSignatureParameters {
        oid: ObjectIdentifier,
        detail: String,
    },
    #[error("the response signature does not verify with the certificate of {signer}: {reason}")]
    BadSignature { signer: String, reason: String },
    #[error("responder {signer} does not chain to a trusted certificate: {reason}")]
    UntrustedSigner { signer: String, reason: String },
    #[error("responder {signer} may not answer for the CA of serial {serial} (RFC 6960 §4.2.2.2): {reason}")]
    UnauthorizedSigner {
        signer: String,
        serial: String,
        reason: String,
    },
}

impl OcspError {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        OcspError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    /// The OCSPResponseStatus a responder answers when a request fails with this error.
    ///
    /// RFC 6960 §2.3 has no status for "too many CertIDs", "duplicate extension" or "bad nonce":
    /// those requests are not ones the responder can accept, so they are `malformedRequest`.
    /// A CertID the responder cannot attribute to a CA it serves (unknown hash algorithm too)
    /// is `unauthorized`, the status the lightweight profile (RFC 9919, formerly RFC 5019
    /// §2.2.3) gives a responder that cannot answer authoritatively. A status store that is down is `tryLater`; everything else the
    /// responder itself got wrong is `internalError`.
    pub fn response_status(&self) -> OcspResponseStatus {
        use OcspError::*;
        match self {
            RequestTooLarge { .. }
            | Malformed { .. }
            | NoCertIds
            | TooManyCertIds { .. }
            | TooManyExtensions { .. }
            | DuplicateExtension { .. }
            | UnsupportedCriticalExtension { .. }
            | NonceLength { .. } => OcspResponseStatus::MalformedRequest,
            UnsupportedHashAlgorithm { .. } | IssuerNotServed { .. } | MixedIssuers { .. } => {
                OcspResponseStatus::Unauthorized
            }
            StatusUnavailable { .. } | SourceUnavailable(_) => OcspResponseStatus::TryLater,
            _ => OcspResponseStatus::InternalError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_source_failure_keeps_the_stores_error_and_answers_try_later() {
        let locked = std::io::Error::new(std::io::ErrorKind::WouldBlock, "database is locked");
        let error = OcspError::StatusUnavailable {
            issuer: "citizens".into(),
            serial: "0A".into(),
            source: SourceError::new(locked),
        };
        assert_eq!(error.response_status(), OcspResponseStatus::TryLater);
        let mut cause: &dyn std::error::Error = &error;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("the store's io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::WouldBlock);
        assert!(error.to_string().ends_with("database is locked"), "{error}");
    }
}
