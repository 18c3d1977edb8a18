//! Where certificate status comes from: a trait the CA's store implements (the `cli` wires it),
//! so the responder never depends on `imza-ca` and never holds a CA key (RFC 6960 §2.2).

use std::fmt;

use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

use crate::OcspError;

/// Which CA a question is about: the CA's name in the store (`root`, `citizens`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerId(String);

impl IssuerId {
    pub fn new(name: impl Into<String>) -> Self {
        IssuerId(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The status of one certificate, as RFC 6960 §2.2 defines the three answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatusInfo {
    /// Issued by the CA and not revoked.
    Good,
    /// Revoked at `at`; `reason` when the CA recorded one.
    Revoked {
        at: OffsetDateTime,
        reason: Option<CrlReason>,
    },
    /// The CA never issued this serial, or the source does not know it. Never `Good`.
    Unknown,
}

/// Answers "what is the status of serial S of CA I?".
///
/// `serial` is the certificate's serialNumber INTEGER content octets exactly as the CertID
/// carries them (for imza's positive serials, the unsigned big-endian bytes the store keys on).
/// A serial the CA never issued MUST come back [`CertStatusInfo::Unknown`], never `Good`
/// (RFC 6960 §2.2). When the store cannot be read, return
/// [`OcspError::StatusUnavailable`]: the responder then answers `tryLater`.
pub trait CertificateStatusSource: Send + Sync {
    fn status(&self, issuer: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError>;

    /// A number that changes whenever any answer of this source may have changed: an
    /// issuance, a revocation, in this process or in another one sharing the store (the CA
    /// store's latest audit sequence number does). The HTTP cache drops every cached response
    /// when it changes, so it is the one thing standing between a revocation and a stale
    /// `good`.
    ///
    /// It must be read-your-writes consistent with [`status`](Self::status): once `revision`
    /// has returned `r`, every `status` call that starts afterwards reflects at least every
    /// change up to `r`. It need not grow (any change is a change), but it must not return an
    /// old value again after a new one while the answers differ. When the store cannot be read,
    /// return [`OcspError::SourceUnavailable`]: the cache is then dropped too, since a
    /// revocation it cannot see may have happened.
    fn revision(&self) -> Result<u64, OcspError>;
}
