//! Revocation checking of each certificate on a path (RFC 5280 §6.3 for CRLs, RFC 6960 for
//! OCSP): what was found, and the evidence it came from (kept so a signer can embed it, B-LT).

use std::sync::Arc;

use time::OffsetDateTime;

/// The revocation finding for one certificate on a validated path.
#[derive(Clone, Debug)]
pub struct RevocationStatus {
    /// The certificate's subject, one line.
    pub subject: String,
    /// Its serial number, hex.
    pub serial_hex: String,
    pub state: RevocationState,
    /// Where the finding came from; `None` when not checked.
    pub evidence: Option<RevocationEvidence>,
}

/// Revocation state at the validation time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationState {
    /// Covered by usable information, and not revoked at the validation time (it may have
    /// been revoked later: `revoked_later` says when).
    Good {
        revoked_later: Option<OffsetDateTime>,
    },
    /// Not checked (revocation off, best effort without information, or `id-pkix-ocsp-nocheck`).
    NotChecked { why: String },
}

/// The CRL or OCSP response a finding rests on, as DER (to embed in a B-LT signature).
#[derive(Clone, Debug)]
pub enum RevocationEvidence {
    Crl {
        der: Arc<Vec<u8>>,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
    },
    Ocsp {
        /// The whole OCSPResponse.
        der: Arc<Vec<u8>>,
        produced_at: OffsetDateTime,
        this_update: OffsetDateTime,
        next_update: Option<OffsetDateTime>,
    },
}

impl RevocationEvidence {
    pub fn der(&self) -> &[u8] {
        match self {
            RevocationEvidence::Crl { der, .. } | RevocationEvidence::Ocsp { der, .. } => der,
        }
    }
}
