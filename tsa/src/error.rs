//! Errors from imza-tsa, in words an operator or a client can act on.
//!
//! One enum serves the authority (why a request was refused, and so which RFC 3161
//! `PKIFailureInfo` bit goes back) and the client (why a response or token is not accepted).

use const_oid::ObjectIdentifier;
use imza_core::CoreError;

use crate::status::FailureInfo;

/// Everything that can go wrong while answering, parsing or verifying time-stamps.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    // --- configuration of the authority -------------------------------------------------
    #[error("the TSA certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error(
        "{subject} is not a time-stamping certificate: {reason} (RFC 3161 §2.3 requires a \
         critical extendedKeyUsage whose only purpose is timeStamping)"
    )]
    NotTimeStampingCertificate { subject: String, reason: String },
    #[error("the TSA key ({key}) does not match the public key of the TSA certificate")]
    KeyMismatch { key: String },
    #[error("the TSA certificate is not valid at {at} (valid from {not_before} to {not_after})")]
    CertificateNotValid {
        at: String,
        not_before: String,
        not_after: String,
    },

    // --- requests (the requester's fault) -----------------------------------------------
    #[error("the request is {size} bytes, more than the {limit} bytes accepted")]
    RequestTooLarge { size: usize, limit: usize },
    #[error("not a DER TimeStampReq (RFC 3161 §2.4.1): {0}")]
    MalformedRequest(String),
    #[error(
        "message imprint hash algorithm {oid} is not accepted (use SHA-256, SHA-384 or SHA-512)"
    )]
    UnsupportedHashAlgorithm { oid: ObjectIdentifier },
    #[error("hash algorithm {algorithm} must have absent or NULL parameters (RFC 5754 §2)")]
    HashParameters { algorithm: &'static str },
    #[error("the message imprint is {actual} bytes but a {algorithm} digest is {expected} bytes")]
    WrongImprintLength {
        algorithm: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("the request asks for policy {requested}; this TSA stamps under policy {served} only")]
    UnacceptedPolicy {
        requested: ObjectIdentifier,
        served: ObjectIdentifier,
    },
    #[error("the request carries extension {oid}, which this TSA does not support")]
    UnacceptedExtension { oid: ObjectIdentifier },

    // --- the authority itself ----------------------------------------------------------
    /// The clock check says the time source is lost or out of sync, in its own words (a
    /// time daemon's report).
    #[error("the TSA's time source is not available: {0}")]
    TimeNotAvailable(String),
    /// The TSA cannot stamp for a reason of its own, not the request's (answered with
    /// `systemFailure`).
    #[error("the TSA cannot stamp now: {0}")]
    SystemFailure(#[source] SystemFault),
    #[error("signing the time-stamp token failed: {0}")]
    Signing(#[source] CoreError),
    #[error("encoding the {what} failed: {detail}")]
    Encoding { what: &'static str, detail: String },
    /// The serial number source gave a serial of `significant_octets` octets after its
    /// leading zeros (0: all zero).
    #[error("the serial number source gave {significant_octets} significant octets; it must give 1 to 20 octets, not all zero")]
    BadSerialNumber { significant_octets: usize },

    // --- responses and tokens (client side) ---------------------------------------------
    #[error("the response is {size} bytes, more than the {limit} bytes accepted")]
    ResponseTooLarge { size: usize, limit: usize },
    #[error("malformed time-stamp response: {what}: {detail}")]
    MalformedResponse { what: &'static str, detail: String },
    #[error("the TSA did not grant the request: status {status}{failure}{text}")]
    NotGranted {
        status: String,
        failure: String,
        text: String,
    },
    #[error("the token stamps {found} but {expected} was expected (message imprint mismatch)")]
    ImprintMismatch { expected: String, found: String },
    #[error("the token's nonce is {found} but {expected} was expected")]
    NonceMismatch { expected: String, found: String },
    #[error("the token's policy is {found} but {expected} was expected")]
    PolicyMismatch {
        expected: String,
        found: ObjectIdentifier,
    },
    #[error("the token carries {count} signatures; RFC 3161 §2.4.2 allows only the TSA's one")]
    SignerCount { count: usize },
    #[error("the signer's certificate ({sid}) is neither in the token nor among those supplied")]
    SignerNotFound { sid: String },
    #[error("the token is signed by {found}, not by {expected}")]
    SignerNameMismatch { expected: String, found: String },
    #[error("the token's TSA name {tsa_name} is not the signer's name {signer}")]
    TsaNameMismatch { tsa_name: String, signer: String },
    #[error("signed attribute {attribute}: {problem}")]
    SignedAttribute {
        attribute: &'static str,
        problem: String,
    },
    #[error("the token's signature does not verify: {0}")]
    BadSignature(String),
    /// The [`crate::PathValidator`] found no valid path for the TSA certificate `subject` at
    /// `at`; `source` says why.
    #[error("the certificate path of {subject} does not validate at {at}: {source}")]
    CertificatePath {
        subject: String,
        at: String,
        #[source]
        source: PathError,
    },
}

/// Why a [`crate::PathValidator`] found no valid path from the TSA's certificate to an anchor.
/// Why the TSA cannot stamp now, whatever the request: a [`TsaError::SystemFailure`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemFault {
    /// The random generator gave no bytes for `purpose` (a serial number, a nonce).
    #[error("no random bytes for the {purpose}")]
    Randomness {
        purpose: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The clock check could not be carried out, as it says (its command failed to run or
    /// answered nothing readable).
    #[error("the clock check failed: {0}")]
    ClockCheckFailed(String),
    /// The clock check is configured so that it cannot run.
    #[error("the clock check is misconfigured: {problem}")]
    ClockCheckConfig { problem: &'static str },
    /// The clock check's background thread could not be started.
    #[error("cannot start the clock check thread")]
    ClockCheckThread(#[source] std::io::Error),
    /// A plugged-in part (clock check, serial source, signing key) panicked while stamping.
    #[error("a panic inside the clock check, serial source or signing key")]
    Panicked,
    /// No time-stamping unit has a usable certificate (all expired or not yet valid, or none
    /// configured).
    #[error("no time-stamping unit with a usable certificate")]
    NoUsableUnit,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// OpenSSL's verifier refused the path: `result` is its `X509_V_ERR_*` code (and text),
    /// `depth` the certificate it refused (0: the TSA's own).
    #[error("{result} (OpenSSL verify error {code}, certificate at depth {depth})", code = result.as_raw())]
    OpenSslRefused {
        #[source]
        result: openssl::x509::X509VerifyResult,
        depth: u32,
    },
    /// OpenSSL could not set up or run the verification (a certificate it cannot read, an
    /// allocation that failed).
    #[error("OpenSSL could not check the path: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// Another validator refused the path (imza's own RFC 5280 validation, in imza-signer): its
    /// error, kept whole and reachable through [`std::error::Error::source`].
    #[error("{source}")]
    Refused {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl TsaError {
    /// The `PKIFailureInfo` bit a refusal carries (RFC 3161 §2.4.2).
    ///
    /// Anything that is not a decodable `TimeStampReq` (garbage, truncated or trailing bytes,
    /// a version other than 1) is `badDataFormat`: "the data submitted has the wrong format".
    /// An oversized body is refused before it is read at all, as a transaction this TSA does
    /// not permit: `badRequest`. Faults on the TSA's side are `systemFailure`, except the time
    /// source, which has its own bit.
    pub fn failure_info(&self) -> FailureInfo {
        match self {
            TsaError::RequestTooLarge { .. } => FailureInfo::BadRequest,
            TsaError::MalformedRequest(_) | TsaError::WrongImprintLength { .. } => {
                FailureInfo::BadDataFormat
            }
            TsaError::UnsupportedHashAlgorithm { .. } | TsaError::HashParameters { .. } => {
                FailureInfo::BadAlg
            }
            TsaError::UnacceptedPolicy { .. } => FailureInfo::UnacceptedPolicy,
            TsaError::UnacceptedExtension { .. } => FailureInfo::UnacceptedExtension,
            TsaError::TimeNotAvailable(_) => FailureInfo::TimeNotAvailable,
            _ => FailureInfo::SystemFailure,
        }
    }

    /// Whether the reason may go back to the requester as the response's statusString.
    /// Faults inside the TSA (a signing device error, say) are answered with a generic text
    /// instead: their details are for the operator's log, not for the world.
    pub fn reason_is_public(&self) -> bool {
        !matches!(self.failure_info(), FailureInfo::SystemFailure)
    }

    pub(crate) fn der(what: &'static str, e: impl std::fmt::Display) -> TsaError {
        TsaError::Encoding {
            what,
            detail: e.to_string(),
        }
    }

    pub(crate) fn malformed(what: &'static str, e: impl std::fmt::Display) -> TsaError {
        TsaError::MalformedResponse {
            what,
            detail: e.to_string(),
        }
    }
}

/// A token whose SignedData does not read is a malformed response.
impl From<imza_core::cms::CmsError> for TsaError {
    fn from(e: imza_core::cms::CmsError) -> TsaError {
        match e {
            imza_core::cms::CmsError::Malformed { what, detail } => {
                TsaError::MalformedResponse { what, detail }
            }
            imza_core::cms::CmsError::Refused(why) => TsaError::malformed("SignedData", why),
        }
    }
}
