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

use crate::crl_check::CrlOutcome;
use crate::ocsp::OcspFinding;
use crate::path_builder::Session;
use crate::path_validation::PathFailure;
use crate::{Certificate, RevocationPolicy, ValidationError, ValidationOptions};

/// The revocation findings of a path, and everything they rest on.
pub(crate) struct CheckedRevocation {
    pub statuses: Vec<RevocationStatus>,
    pub evidence: Vec<RevocationEvidence>,
    pub certificates: Vec<Arc<Certificate>>,
}

impl Session<'_> {
    /// §6.1.3 (a)(3) for every certificate of `chain` below the anchor, from the top: OCSP
    /// first (the responses given, and the responder when the network is allowed), then CRLs.
    pub(crate) fn check_revocation(
        &mut self,
        chain: &[Arc<Certificate>],
        working_keys: &[Vec<u8>],
        anchor: &Arc<Certificate>,
        options: &ValidationOptions,
    ) -> Result<CheckedRevocation, PathFailure> {
        let n = chain.len().saturating_sub(1);
        let base = (chain.len() as u32 + 2) * 32;
        let mut statuses: Vec<Option<RevocationStatus>> = vec![None; n];
        let mut evidence: Vec<RevocationEvidence> = Vec::new();
        let mut certificates: Vec<Arc<Certificate>> = Vec::new();
        for index in (0..n).rev() {
            let (Some(cert), Some(issuer)) = (chain.get(index), chain.get(index + 1)) else {
                continue;
            };
            let progress = base + (n - index) as u32;
            let status =
                |state: RevocationState, evidence: Option<RevocationEvidence>| RevocationStatus {
                    subject: cert.subject_text(),
                    serial_hex: imza_core::cert::serial_hex(cert.serial()),
                    state,
                    evidence,
                };
            let revoked = |at: OffsetDateTime, reason: Option<String>| PathFailure {
                error: ValidationError::Revoked {
                    subject: cert.subject_text(),
                    revoked_at: at,
                    reason,
                },
                progress,
            };
            if options.revocation == RevocationPolicy::Off {
                statuses[index] = Some(status(
                    RevocationState::NotChecked {
                        why: "revocation checking is off".into(),
                    },
                    None,
                ));
                continue;
            }
            if cert.ext.ocsp_no_check {
                statuses[index] = Some(status(
                    RevocationState::NotChecked {
                        why: "id-pkix-ocsp-nocheck: trusted for its lifetime (RFC 6960 §4.2.2.2.1)"
                            .into(),
                    },
                    None,
                ));
                continue;
            }
            let v = self.v;
            let fetcher = if options.network {
                v.fetcher.as_deref()
            } else {
                None
            };
            let mut notes: Vec<String> = Vec::new();
            match crate::ocsp::ocsp_status(cert, issuer, &v.ocsp_responses, fetcher, options.time) {
                Ok(OcspFinding::Good {
                    revoked_later,
                    evidence: found,
                }) => {
                    evidence.push(found.clone());
                    statuses[index] =
                        Some(status(RevocationState::Good { revoked_later }, Some(found)));
                    continue;
                }
                Ok(OcspFinding::Revoked {
                    at,
                    reason,
                    evidence: _evidence,
                }) => return Err(revoked(at, reason)),
                Ok(OcspFinding::None { notes: found }) => notes.extend(found),
                Err(e) => notes.push(format!("OCSP: {e}")),
            }
            match self.crl_status(chain, index, working_keys, anchor, options)? {
                CrlOutcome::Good {
                    revoked_later,
                    evidence: found,
                    all_evidence,
                    certificates: signer_certs,
                } => {
                    evidence.extend(all_evidence);
                    certificates.extend(signer_certs);
                    statuses[index] =
                        Some(status(RevocationState::Good { revoked_later }, Some(found)));
                }
                CrlOutcome::Revoked { at, reason } => return Err(revoked(at, reason)),
                CrlOutcome::Unknown { notes: crl_notes } => {
                    for note in crl_notes {
                        if !notes.contains(&note) {
                            notes.push(note);
                        }
                    }
                    let detail = notes.join("; ");
                    if options.revocation == RevocationPolicy::Require {
                        return Err(PathFailure {
                            error: ValidationError::RevocationUnknown {
                                subject: cert.subject_text(),
                                detail,
                            },
                            progress,
                        });
                    }
                    statuses[index] =
                        Some(status(RevocationState::NotChecked { why: detail }, None));
                }
            }
        }
        Ok(CheckedRevocation {
            statuses: statuses.into_iter().flatten().collect(),
            evidence,
            certificates,
        })
    }
}
