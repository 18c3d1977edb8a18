//! Revocation checking of each certificate on a path (RFC 5280 §6.3 for CRLs, RFC 6960 for
//! OCSP): what was found, and the evidence it came from (kept so a signer can embed it, B-LT).

use std::sync::Arc;

use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

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

/// What a finding rests on: a CRL or an OCSP response as DER (to embed in a B-LT signature),
/// or the issuer's own records read by a [`crate::LocalRevocationSource`] (nothing to embed).
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
    /// The issuer's records, current when the validation read them.
    Local {
        /// [`crate::LocalRevocationSource::name`].
        source: String,
    },
}

impl RevocationEvidence {
    /// The DER of a CRL or OCSP response; `None` for the issuer's records.
    pub fn der(&self) -> Option<&[u8]> {
        match self {
            RevocationEvidence::Crl { der, .. } | RevocationEvidence::Ocsp { der, .. } => Some(der),
            RevocationEvidence::Local { .. } => None,
        }
    }
}

use crate::crl_check::CrlOutcome;
use crate::ocsp::{OcspFinding, WeakResponder};
use crate::path_builder::Session;
use crate::path_validation::PathFailure;
use crate::{Certificate, LocalStatus, RevocationPolicy, ValidationError, ValidationOptions};

/// The revocation findings of a path, and everything they rest on.
pub(crate) struct CheckedRevocation {
    pub statuses: Vec<RevocationStatus>,
    pub evidence: Vec<RevocationEvidence>,
    pub certificates: Vec<Arc<Certificate>>,
}

/// What the sources say about one certificate, short of "revoked" (which ends the path).
enum Finding {
    Good {
        revoked_later: Option<OffsetDateTime>,
        /// What the finding rests on.
        evidence: RevocationEvidence,
        /// Everything to embed for it: the CRLs and responses, those of CRL-signer paths.
        supporting: Vec<RevocationEvidence>,
        certificates: Vec<Arc<Certificate>>,
    },
    Unknown {
        notes: Vec<String>,
        /// An OCSP response refused only for its delegated responder's short RSA key.
        weak_responder: Option<WeakResponder>,
    },
}

impl Session<'_> {
    /// §6.1.3 (a)(3) for every certificate of `chain` below the anchor, from the top.
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
            let Some(cert) = chain.get(index) else {
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
            let not_checked =
                |why: &str| status(RevocationState::NotChecked { why: why.into() }, None);
            if options.revocation == RevocationPolicy::Off {
                statuses[index] = Some(not_checked("revocation checking is off"));
                continue;
            }
            if cert.ext.ocsp_no_check {
                statuses[index] = Some(not_checked(
                    "id-pkix-ocsp-nocheck: trusted for its lifetime (RFC 6960 §4.2.2.2.1)",
                ));
                continue;
            }
            let found =
                self.certificate_status(chain, index, working_keys, anchor, options, progress)?;
            match found {
                Finding::Good {
                    revoked_later,
                    evidence: found,
                    supporting,
                    certificates: signer_certs,
                } => {
                    evidence.extend(supporting);
                    certificates.extend(signer_certs);
                    statuses[index] =
                        Some(status(RevocationState::Good { revoked_later }, Some(found)));
                }
                Finding::Unknown {
                    notes,
                    weak_responder,
                } => {
                    let detail = notes.join("; ");
                    if options.revocation == RevocationPolicy::Require {
                        // The weak responder key is why the status is unknown: say that.
                        let error = match weak_responder {
                            Some(weak) => ValidationError::WeakOcspResponderKey {
                                subject: cert.subject_text(),
                                responder: weak.responder,
                                bits: weak.bits,
                                minimum: weak.minimum,
                            },
                            None => ValidationError::RevocationUnknown {
                                subject: cert.subject_text(),
                                detail,
                            },
                        };
                        return Err(PathFailure { error, progress });
                    }
                    statuses[index] = Some(not_checked(&detail));
                }
            }
        }
        Ok(CheckedRevocation {
            statuses: statuses.into_iter().flatten().collect(),
            evidence,
            certificates,
        })
    }

    /// The status of `chain[index]` (issued by `chain[index + 1]`), from the sources in this
    /// order, the first that settles it winning: the issuer's own records (a
    /// [`crate::LocalRevocationSource`]); the OCSP responses given, then the CRLs given; and
    /// only then, when the network is allowed, the OCSP responder and the CRL distribution
    /// points. What the caller already holds (a B-LT signature's own data) never costs a
    /// fetch. A revocation at or before the validation time is the error ending the path, at
    /// `progress`.
    fn certificate_status(
        &mut self,
        chain: &[Arc<Certificate>],
        index: usize,
        working_keys: &[Vec<u8>],
        anchor: &Arc<Certificate>,
        options: &ValidationOptions,
        progress: u32,
    ) -> Result<Finding, PathFailure> {
        let (Some(cert), Some(issuer)) = (chain.get(index), chain.get(index + 1)) else {
            return Ok(Finding::Unknown {
                notes: vec!["no issuer on the path".into()],
                weak_responder: None,
            });
        };
        let revoked = |at: OffsetDateTime, reason: Option<CrlReason>| PathFailure {
            error: ValidationError::Revoked {
                subject: cert.subject_text(),
                revoked_at: at,
                reason,
            },
            progress,
        };
        let v = self.v;
        let time = options.time;
        if let Some(local) = v.local_revocation.as_deref() {
            let evidence = RevocationEvidence::Local {
                source: local.name(),
            };
            let good = |revoked_later| Finding::Good {
                revoked_later,
                evidence: evidence.clone(),
                supporting: Vec::new(),
                certificates: Vec::new(),
            };
            let serial = imza_core::cert::serial_hex(cert.serial());
            match local.status(cert, issuer) {
                LocalStatus::NotMine => {}
                LocalStatus::Good => return Ok(good(None)),
                LocalStatus::Revoked { at, reason } if at <= time => {
                    return Err(revoked(at, reason))
                }
                LocalStatus::Revoked { at, .. } => return Ok(good(Some(at))),
                LocalStatus::NoRecord => {
                    return Ok(Finding::Unknown {
                        notes: vec![format!(
                            "{}: {} has no record of serial {serial}",
                            local.name(),
                            issuer.subject_text()
                        )],
                        weak_responder: None,
                    })
                }
                LocalStatus::Unavailable { reason } => {
                    return Ok(Finding::Unknown {
                        notes: vec![format!("{}: cannot be read: {reason}", local.name())],
                        weak_responder: None,
                    })
                }
            }
        }
        let mut notes: Vec<String> = Vec::new();
        let mut weak_responder: Option<WeakResponder> = None;
        let ocsp_good = |found: RevocationEvidence, revoked_later| Finding::Good {
            revoked_later,
            evidence: found.clone(),
            supporting: vec![found],
            certificates: Vec::new(),
        };
        // A usable OCSP answer settles the status; anything else adds to the notes.
        let settled =
            |answer: Result<OcspFinding, ValidationError>,
             notes: &mut Vec<String>,
             weak_responder: &mut Option<WeakResponder>| match answer {
                Ok(OcspFinding::Good {
                    revoked_later,
                    evidence: found,
                }) => Some(Ok(ocsp_good(found, revoked_later))),
                Ok(OcspFinding::Revoked { at, reason, .. }) => Some(Err(revoked(at, reason))),
                Ok(OcspFinding::None {
                    notes: found,
                    weak_responder: weak,
                }) => {
                    notes.extend(found);
                    if weak_responder.is_none() {
                        *weak_responder = weak;
                    }
                    None
                }
                Err(e) => {
                    notes.push(format!("OCSP: {e}"));
                    None
                }
            };
        let strictness = &options.strictness;
        let given =
            crate::ocsp::ocsp_status(cert, issuer, &v.ocsp_responses, None, time, strictness);
        if let Some(result) = settled(given, &mut notes, &mut weak_responder) {
            return result;
        }
        let mut crl = self.crl_status(chain, index, working_keys, anchor, options, &[])?;
        let fetcher = if options.network {
            v.fetcher.as_deref()
        } else {
            None
        };
        if let (CrlOutcome::Unknown { .. }, Some(fetcher)) = (&crl, fetcher) {
            let asked =
                crate::ocsp::ocsp_status(cert, issuer, &[], Some(fetcher), time, strictness);
            if let Some(result) = settled(asked, &mut notes, &mut weak_responder) {
                return result;
            }
            let (fetched, fetch_notes) = crate::fetch::fetch_crls(cert, fetcher);
            notes.extend(fetch_notes);
            if !fetched.is_empty() {
                crl = self.crl_status(chain, index, working_keys, anchor, options, &fetched)?;
            }
        }
        match crl {
            CrlOutcome::Good {
                revoked_later,
                evidence: found,
                all_evidence,
                certificates,
            } => Ok(Finding::Good {
                revoked_later,
                evidence: found,
                supporting: all_evidence,
                certificates,
            }),
            CrlOutcome::Revoked { at, reason } => Err(revoked(at, reason)),
            CrlOutcome::NonConforming { issuer, violation } => Err(PathFailure {
                error: ValidationError::NonConformingCrl { issuer, violation },
                progress,
            }),
            CrlOutcome::Unknown { notes: crl_notes } => {
                for note in crl_notes {
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                Ok(Finding::Unknown {
                    notes,
                    weak_responder,
                })
            }
        }
    }
}
