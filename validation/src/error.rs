//! Why a path, a certificate or a piece of revocation data was not accepted, with the facts
//! (which certificate, which time, which limit) a user needs to act on it.
//!
//! Callers (the signer's validation report, `imza cert verify`) match on the variants: the
//! variants below are a contract — add new ones freely, do not rename or remove these.

use imza_core::clock::rfc3339;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Input that does not parse (certificate, CRL, OCSP response, PEM).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },

    /// No chain from the target to any trust anchor could be built from the pool.
    #[error("no certification path to a trust anchor: {detail}")]
    NoPathFound { detail: String },

    /// Path building or checking stopped at a limit (signature checks, candidate paths, depth).
    #[error("path building budget exceeded: {detail}")]
    BudgetExceeded { detail: String },

    /// A signature on a certificate (or CRL, OCSP response) does not verify.
    #[error("bad signature on {subject}: {detail}")]
    BadSignature { subject: String, detail: String },

    /// A certificate on the path is expired at the validation time.
    #[error("{subject} expired at {} (validation time {})", rfc3339(*not_after), rfc3339(*time))]
    Expired {
        subject: String,
        not_after: OffsetDateTime,
        time: OffsetDateTime,
    },

    /// A certificate on the path is not yet valid at the validation time.
    #[error("{subject} is not valid before {} (validation time {})", rfc3339(*not_before), rfc3339(*time))]
    NotYetValid {
        subject: String,
        not_before: OffsetDateTime,
        time: OffsetDateTime,
    },

    /// A certificate on the path was revoked at or before the validation time.
    #[error("{subject} was revoked at {}{}", rfc3339(*revoked_at), reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Revoked {
        subject: String,
        revoked_at: OffsetDateTime,
        reason: Option<String>,
    },

    /// Revocation checking was required but no usable CRL or OCSP response covers a
    /// certificate (none found, stale, or its issuer could not be validated).
    #[error("revocation status of {subject} unknown: {detail}")]
    RevocationUnknown { subject: String, detail: String },

    /// A constraint of RFC 5280 §6.1 failed: basic constraints, path length, key usage, name
    /// constraints, policies, an unknown critical extension, a name chaining mismatch.
    #[error("{subject}: {detail}")]
    Constraint { subject: String, detail: String },

    /// The target certificate is not fit for the requested purpose (key usage, extended key
    /// usage) or the peer name.
    #[error("{subject} is not valid for {purpose}: {detail}")]
    Purpose {
        subject: String,
        purpose: String,
        detail: String,
    },

    /// An algorithm imza does not accept (e.g. DSA with SHA-1 when refused, MD5).
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),

    /// Fetching a CRL or OCSP response over the network failed.
    #[error("network: {0}")]
    Network(String),
}

impl ValidationError {
    pub fn malformed(what: &'static str, detail: impl std::fmt::Display) -> ValidationError {
        ValidationError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}
