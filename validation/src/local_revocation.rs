//! Revocation status from the issuer's own records, for a validator that runs beside them:
//! `imza serve` validating this PKI's own certificates against the CA store it already has.
//! Such a source is consulted before OCSP and CRLs for the certificates it covers, so they are
//! checked without any HTTP request (none to the server itself), and a revocation recorded a
//! moment ago counts at once — no CRL or cached OCSP answer has to catch up first.

use time::OffsetDateTime;

use crate::Certificate;

/// The records of one or more issuers, answering for the certificates they issued.
pub trait LocalRevocationSource: Send + Sync {
    /// What the records say about `cert`, which `issuer` signed (revocation is checked only
    /// on a path whose signatures verified). [`LocalStatus::NotMine`] when `issuer` is not a CA
    /// whose records this source holds: the ordinary sources (OCSP, CRLs) then decide. Which
    /// issuers are "not mine" must not change while the source is in use (a verifier may keep
    /// results that did not rest on it); every other answer may change at any moment.
    fn status(&self, cert: &Certificate, issuer: &Certificate) -> LocalStatus;

    /// Names the source in findings and notes (e.g. "the CA store of imza serve").
    fn name(&self) -> String;
}

/// One answer of a [`LocalRevocationSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalStatus {
    /// The issuer is not one this source answers for.
    NotMine,
    /// Issued and not revoked.
    Good,
    /// Revoked at `at` (a path validated at an earlier time stays good, with the revocation
    /// reported as later).
    Revoked {
        at: OffsetDateTime,
        reason: Option<x509_cert::ext::pkix::CrlReason>,
    },
    /// The issuer's records have no certificate with this serial number: one the CA does not
    /// know it issued. Not taken as good (RFC 6960 §2.2 lets a responder say "revoked" for a
    /// serial never issued); the status is unknown.
    NoRecord,
    /// The records could not be read; the status is unknown (asking the network would only
    /// reach the same records).
    Unavailable { reason: String },
}
