//! CRL processing for one certificate (RFC 5280 §6.3.3): for each of its distribution points
//! (and the implicit one of its issuer), the complete CRLs whose issuer and scope fit —
//! issuing distribution point names, onlyContainsUserCerts/CACerts/AttributeCerts,
//! onlySomeReasons, indirect CRLs and cRLIssuer — are checked until the reasons they cover add
//! up to all reasons. Each CRL's signer is validated: the certificate's own issuer on the
//! path, or another certificate (a separate CRL key, an indirect CRL issuer) whose own path is
//! built to the same trust anchor and checked for revocation in turn. A delta CRL of the same
//! issuer and scope is applied on top (§5.2.4, removeFromCRL).

use std::sync::Arc;

use time::OffsetDateTime;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, Reasons};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlReason, KeyUsages};
use x509_cert::name::Name;

use crate::crl::{cmp_number, CrlEntry};
use crate::extensions::MAX_ITEMS;
use crate::name::NameKey;
use crate::path_builder::Session;
use crate::path_validation::PathFailure;
use crate::signature::{needs_inherited_parameters, Signed};
use crate::{Certificate, Crl, RevocationEvidence, ValidationError, ValidationOptions};

/// keyCompromise .. aACompromise (bit 0, "unused", is no reason).
const ALL_REASONS: u16 = 0x1FE;

/// Most nested CRL-signer path validations (a CRL signer's CRL signer's ...).
const MAX_SIGNER_DEPTH: usize = 3;

/// Most CRLs examined for one distribution point.
const MAX_CRLS_PER_POINT: usize = 64;

/// Most CRLs whose scope is compared (names only, no signature) to pick those examined for one
/// distribution point: the shards of a partitioned CRL, all given at once.
const MAX_CRLS_SCANNED_PER_POINT: usize = 4096;

/// What the CRLs say about one certificate.
pub(crate) enum CrlOutcome {
    Good {
        revoked_later: Option<OffsetDateTime>,
        /// The complete CRL the finding rests on first.
        evidence: RevocationEvidence,
        /// Every CRL used (complete, delta, and those of CRL-signer paths).
        all_evidence: Vec<RevocationEvidence>,
        /// Certificates of CRL-signer paths.
        certificates: Vec<Arc<Certificate>>,
    },
    Revoked {
        at: OffsetDateTime,
        reason: Option<CrlReason>,
    },
    Unknown {
        notes: Vec<String>,
    },
    /// A CRL signed by a validated signer breaks RFC 5280 §5 (with
    /// [`Strictness::require_rfc5280_conformance`]): the issuer's own statement is
    /// not one a conforming CA makes, so the path is refused rather than the CRL skipped.
    NonConforming {
        issuer: String,
        violation: crate::CrlViolation,
    },
}

/// A distribution point as §6.3.3 uses it.
struct Point {
    /// The distribution point's names, nameRelativeToCRLIssuer resolved.
    names: Option<Vec<GeneralName>>,
    reasons: u16,
    /// cRLIssuer's directory names; `None`: the certificate's issuer.
    crl_issuers: Option<Vec<Name>>,
}

/// A validated CRL signer: the key, and what its path brought.
struct Signer {
    spki: Vec<u8>,
    certificates: Vec<Arc<Certificate>>,
    evidence: Vec<RevocationEvidence>,
}

fn crl_evidence(crl: &Crl) -> RevocationEvidence {
    RevocationEvidence::Crl {
        der: crl.shared_der(),
        this_update: crl.this_update,
        next_update: crl.next_update,
    }
}

fn reason_bits(flags: Option<der::flagset::FlagSet<Reasons>>) -> u16 {
    flags.map_or(ALL_REASONS, |f| f.bits() & ALL_REASONS)
}

/// `name` followed by one more RDN.
fn extend_name(name: &Name, rdn: &x509_cert::name::RelativeDistinguishedName) -> Name {
    let mut rdns = name.0.clone();
    rdns.push(rdn.clone());
    x509_cert::name::RdnSequence(rdns)
}

fn full_names(name: &DistributionPointName, issuer: &Name) -> Vec<GeneralName> {
    match name {
        DistributionPointName::FullName(names) => names.clone(),
        DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
            vec![GeneralName::DirectoryName(extend_name(issuer, rdn))]
        }
    }
}

fn same_general_name(a: &GeneralName, b: &GeneralName) -> bool {
    match (a, b) {
        (GeneralName::DirectoryName(x), GeneralName::DirectoryName(y)) => {
            NameKey::new(x) == NameKey::new(y)
        }
        _ => a == b,
    }
}

fn any_common(a: &[GeneralName], b: &[GeneralName]) -> bool {
    a.iter().any(|x| b.iter().any(|y| same_general_name(x, y)))
}

/// Whether `crl`'s issuingDistributionPoint names a point other than `point`'s names: a CRL
/// that §6.3.3 (b)(2)(i) sets aside for this point.
fn for_another_point(crl: &Crl, point: &Point) -> bool {
    match (
        crl.idp
            .as_ref()
            .and_then(|idp| idp.distribution_point.as_ref()),
        &point.names,
    ) {
        (Some(idp_name), Some(names)) => !any_common(
            &full_names(idp_name, &crl.inner().tbs_cert_list.issuer),
            names,
        ),
        _ => false,
    }
}

fn points_of(cert: &Certificate) -> Vec<Point> {
    let mut points: Vec<Point> = cert
        .ext
        .crl_distribution_points
        .iter()
        .flatten()
        .take(MAX_ITEMS)
        .map(|dp: &DistributionPoint| {
            let crl_issuers = dp.crl_issuer.as_ref().map(|names| {
                names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DirectoryName(name) => Some(name.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            });
            let base = crl_issuers
                .as_ref()
                .and_then(|i| i.first())
                .unwrap_or(cert.issuer());
            Point {
                names: dp.distribution_point.as_ref().map(|n| full_names(n, base)),
                reasons: reason_bits(dp.reasons),
                crl_issuers,
            }
        })
        .collect();
    // §6.3.3, last paragraph: CRLs of the certificate's issuer outside any distribution
    // point, as if from a point named after the issuer, for all reasons.
    points.push(Point {
        names: Some(vec![GeneralName::DirectoryName(cert.issuer().clone())]),
        reasons: ALL_REASONS,
        crl_issuers: None,
    });
    points
}

/// `notes` without repeats, in their first order.
fn unique(notes: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for note in notes {
        if !out.contains(&note) {
            out.push(note);
        }
    }
    out
}

impl Session<'_> {
    /// §6.3.3 for `chain[index]`, whose issuer is `chain[index + 1]`, with the validator's
    /// CRLs and those `fetched` for this certificate.
    pub(crate) fn crl_status(
        &mut self,
        chain: &[Arc<Certificate>],
        index: usize,
        working_keys: &[Vec<u8>],
        anchor: &Arc<Certificate>,
        options: &ValidationOptions,
        fetched: &[Arc<Crl>],
    ) -> Result<CrlOutcome, PathFailure> {
        let (Some(cert), Some(issuer)) = (chain.get(index), chain.get(index + 1)) else {
            return Ok(CrlOutcome::Unknown {
                notes: vec!["no issuer on the path".into()],
            });
        };
        let v = self.v;
        let mut notes: Vec<String> = Vec::new();
        let time = options.time;
        let mut reasons_mask: u16 = 0;
        let mut revoked_later: Option<OffsetDateTime> = None;
        let mut first_evidence: Option<RevocationEvidence> = None;
        let mut all_evidence: Vec<RevocationEvidence> = Vec::new();
        let mut certificates: Vec<Arc<Certificate>> = Vec::new();

        for point in points_of(cert) {
            if reasons_mask == ALL_REASONS {
                break;
            }
            let issuer_names: Vec<NameKey> = match &point.crl_issuers {
                Some(names) => names.iter().map(NameKey::new).collect(),
                None => vec![cert.issuer_key().clone()],
            };
            // CRLs scoped to another distribution point (the other shards of a partitioned
            // CRL, RFC 5280 §5.2.5) go last, so that the cap is spent on CRLs that can answer.
            let (in_scope, elsewhere): (Vec<&Arc<Crl>>, Vec<&Arc<Crl>>) = issuer_names
                .iter()
                .flat_map(|name| {
                    v.crls_named(name)
                        .chain(fetched.iter().filter(move |c| &c.issuer_key == name))
                })
                .filter(|crl| !crl.is_delta())
                .take(MAX_CRLS_SCANNED_PER_POINT)
                .partition(|crl| !for_another_point(crl, &point));
            let candidates: Vec<Arc<Crl>> = in_scope
                .into_iter()
                .chain(elsewhere)
                .take(MAX_CRLS_PER_POINT)
                .cloned()
                .collect();
            for crl in candidates {
                if reasons_mask == ALL_REASONS {
                    break;
                }
                let issuer_text = crl.issuer_text();
                // Usable at the validation time: not past nextUpdate, unless issued after it
                // (newer information speaks about that time too).
                let stale = crl.this_update <= time && crl.next_update.is_some_and(|nu| nu < time);
                if !crl.unknown_critical.is_empty() {
                    notes.push(format!(
                        "CRL of {issuer_text} has an unrecognised critical extension {}",
                        crl.unknown_critical
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    continue;
                }
                if let Some(oid) = crl.has_unknown_critical_entry_extension() {
                    notes.push(format!(
                        "CRL of {issuer_text} has an entry with an unrecognised critical extension {oid}"
                    ));
                    continue;
                }
                if !crl.errors.is_empty() {
                    notes.push(format!(
                        "CRL of {issuer_text} is malformed: {}",
                        crl.errors.join("; ")
                    ));
                    continue;
                }
                // (b)(1): a CRL from a cRLIssuer must say it is indirect.
                let indirect = crl.idp.as_ref().is_some_and(|idp| idp.indirect_crl);
                if point.crl_issuers.is_some() && !indirect {
                    notes.push(format!(
                        "CRL of {issuer_text} is named as cRLIssuer but is not an indirect CRL"
                    ));
                    continue;
                }
                // (b)(2): the CRL's scope covers this certificate.
                let mut only_some_reasons = ALL_REASONS;
                if let Some(idp) = &crl.idp {
                    if let Some(idp_name) = &idp.distribution_point {
                        let idp_names = full_names(idp_name, &crl.inner().tbs_cert_list.issuer);
                        let matched = match &point.names {
                            Some(names) => any_common(&idp_names, names),
                            None => {
                                let issuers: Vec<GeneralName> = point
                                    .crl_issuers
                                    .iter()
                                    .flatten()
                                    .map(|n| GeneralName::DirectoryName(n.clone()))
                                    .collect();
                                any_common(&idp_names, &issuers)
                            }
                        };
                        if !matched {
                            notes.push(format!(
                                "CRL of {issuer_text} is for another distribution point"
                            ));
                            continue;
                        }
                    }
                    if idp.only_contains_user_certs && cert.is_ca() {
                        notes.push(format!(
                            "CRL of {issuer_text} covers only end-entity certificates"
                        ));
                        continue;
                    }
                    if idp.only_contains_ca_certs && !cert.is_ca() {
                        notes.push(format!("CRL of {issuer_text} covers only CA certificates"));
                        continue;
                    }
                    if idp.only_contains_attribute_certs {
                        notes.push(format!(
                            "CRL of {issuer_text} covers only attribute certificates"
                        ));
                        continue;
                    }
                    only_some_reasons = reason_bits(idp.only_some_reasons);
                }
                // (d)-(e)
                let interim = point.reasons & only_some_reasons;
                if interim & !reasons_mask == 0 {
                    continue;
                }
                // (f)-(g): the CRL issuer's key, validated.
                let signer =
                    match self.crl_signer(&crl, chain, index, working_keys, anchor, options)? {
                        Ok(signer) => signer,
                        Err(why) => {
                            notes.push(format!("CRL of {issuer_text} not usable: {why}"));
                            continue;
                        }
                    };
                if options.strictness.require_rfc5280_conformance {
                    if let Err(violation) = crate::conformance::check_crl(&crl) {
                        return Ok(CrlOutcome::NonConforming {
                            issuer: issuer_text,
                            violation,
                        });
                    }
                }
                // (h): a delta CRL of the same issuer and scope, signed by the same key.
                let delta = self.matching_delta(&crl, fetched, &signer, time, &mut notes)?;
                if stale && delta.is_none() {
                    notes.push(format!(
                        "CRL of {issuer_text} is out of date: nextUpdate {} is before the validation time {time}",
                        crl.next_update.map(|t| t.to_string()).unwrap_or_default()
                    ));
                    continue;
                }
                // (i)-(k)
                let serial = cert.serial();
                let mut entry: Option<&CrlEntry> = delta
                    .as_ref()
                    .and_then(|d| d.entry(serial, cert.issuer_key()));
                if entry.is_none() {
                    entry = crl.entry(serial, cert.issuer_key());
                }
                let entry = entry.filter(|e| e.reason != Some(CrlReason::RemoveFromCRL));
                if let Some(entry) = entry {
                    if entry.revoked_at <= time {
                        return Ok(CrlOutcome::Revoked {
                            at: entry.revoked_at,
                            reason: entry.reason,
                        });
                    }
                    revoked_later =
                        Some(revoked_later.map_or(entry.revoked_at, |t: OffsetDateTime| {
                            t.min(entry.revoked_at)
                        }));
                }
                // (l)
                reasons_mask |= interim;
                let evidence = crl_evidence(&crl);
                if first_evidence.is_none() {
                    first_evidence = Some(evidence.clone());
                }
                all_evidence.push(evidence);
                if let Some(delta) = &delta {
                    all_evidence.push(crl_evidence(delta));
                }
                all_evidence.extend(signer.evidence);
                certificates.extend(signer.certificates);
            }
        }
        let _ = issuer;
        match first_evidence {
            Some(evidence) if reasons_mask == ALL_REASONS => Ok(CrlOutcome::Good {
                revoked_later,
                evidence,
                all_evidence,
                certificates,
            }),
            Some(_) => {
                notes.push("the usable CRLs do not cover all revocation reasons".into());
                Ok(CrlOutcome::Unknown {
                    notes: unique(notes),
                })
            }
            None => {
                if notes.is_empty() {
                    notes.push(format!("no CRL from {} was given", cert.issuer_text()));
                }
                Ok(CrlOutcome::Unknown {
                    notes: unique(notes),
                })
            }
        }
    }

    /// The newest usable delta CRL for the complete CRL `base` (§5.2.4, §6.3.3 (c), (h)).
    fn matching_delta(
        &mut self,
        base: &Crl,
        fetched: &[Arc<Crl>],
        signer: &Signer,
        time: OffsetDateTime,
        notes: &mut Vec<String>,
    ) -> Result<Option<Arc<Crl>>, PathFailure> {
        let Some(base_number) = base.number.as_deref() else {
            return Ok(None);
        };
        let v = self.v;
        let mut deltas: Vec<Arc<Crl>> = v
            .crls_named(&base.issuer_key)
            .chain(fetched.iter().filter(|c| c.issuer_key == base.issuer_key))
            .filter(|d| {
                d.delta_base
                    .as_deref()
                    .is_some_and(|b| cmp_number(b, base_number).is_le())
                    && d.number
                        .as_deref()
                        .is_some_and(|n| cmp_number(n, base_number).is_gt())
                    && d.idp_der == base.idp_der
                    && match (&d.authority_key_id, &base.authority_key_id) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
                    && d.unknown_critical.is_empty()
                    && d.errors.is_empty()
                    && d.has_unknown_critical_entry_extension().is_none()
                    && !(d.this_update <= time && d.next_update.is_some_and(|nu| nu < time))
            })
            .take(MAX_CRLS_PER_POINT)
            .cloned()
            .collect();
        deltas.sort_by(|a, b| {
            cmp_number(
                b.number.as_deref().unwrap_or_default(),
                a.number.as_deref().unwrap_or_default(),
            )
        });
        for delta in deltas {
            let outcome = self
                .work
                .verify(&v.signatures, &signer.spki, &*delta)
                .map_err(|error| PathFailure { error, progress: 0 })?;
            match outcome {
                Ok(()) => return Ok(Some(delta)),
                Err(e) => notes.push(format!(
                    "delta CRL of {}: bad signature ({e})",
                    delta.issuer_text()
                )),
            }
        }
        Ok(None)
    }

    /// §6.3.3 (f)-(g): a validated key that signed `crl`, from the certificate's issuer on the
    /// path or from a certificate of the CRL issuer whose path leads to `anchor`.
    fn crl_signer(
        &mut self,
        crl: &Crl,
        chain: &[Arc<Certificate>],
        index: usize,
        working_keys: &[Vec<u8>],
        anchor: &Arc<Certificate>,
        options: &ValidationOptions,
    ) -> Result<Result<Signer, String>, PathFailure> {
        let v = self.v;
        let mut why: Vec<String> = Vec::new();
        let verify = |session: &mut Self, key: &[u8]| -> Result<Result<(), String>, PathFailure> {
            session
                .work
                .verify(&v.signatures, key, crl)
                .map(|outcome| outcome.map_err(|failure| failure.to_string()))
                .map_err(|error| PathFailure { error, progress: 0 })
        };
        // The certificate's issuer on the path (already validated, with its working key).
        let issuer = chain.get(index + 1);
        let issuer_is_anchor = index + 2 == chain.len();
        let mut tried_issuer = false;
        if let (Some(issuer), Some(key)) = (issuer, working_keys.get(index + 1)) {
            if issuer.subject_key() == &crl.issuer_key {
                tried_issuer = true;
                match verify(self, key)? {
                    Ok(()) => {
                        if issuer_is_anchor
                            || issuer
                                .ext
                                .key_usage
                                .is_none_or(|ku| ku.contains(KeyUsages::CRLSign))
                        {
                            return Ok(Ok(Signer {
                                spki: key.clone(),
                                certificates: Vec::new(),
                                evidence: Vec::new(),
                            }));
                        }
                        why.push(format!(
                            "{} signed it but its keyUsage lacks cRLSign",
                            issuer.subject_text()
                        ));
                    }
                    Err(e) => why.push(format!(
                        "the signature does not verify with the key of {} ({e})",
                        issuer.subject_text()
                    )),
                }
            }
        }
        // Another certificate of the CRL issuer, with its own path to the same anchor.
        if self.signer_depth >= MAX_SIGNER_DEPTH {
            why.push(format!(
                "CRL signer paths nested more than {MAX_SIGNER_DEPTH} deep"
            ));
            return Ok(Err(why.join("; ")));
        }
        let mut candidates: Vec<Arc<Certificate>> = v
            .anchors_named(&crl.issuer_key)
            .filter(|a| a.same_subject_and_key(anchor))
            .chain(v.pool_named(&crl.issuer_key))
            .filter(|c| !(tried_issuer && issuer.is_some_and(|i| i.same_as(c))))
            .take(crate::extensions::MAX_ITEMS)
            .cloned()
            .collect();
        candidates.sort_by_key(|c| match (&crl.authority_key_id, c.subject_key_id()) {
            (Some(aki), Some(ski)) if aki.as_slice() == ski => 0,
            (Some(_), Some(_)) => 2,
            _ => 1,
        });
        for candidate in candidates {
            if needs_inherited_parameters(candidate.spki()) {
                why.push(format!(
                    "{} has a DSA key without parameters (not supported for CRL signers)",
                    candidate.subject_text()
                ));
                continue;
            }
            if let Err(e) = verify(self, candidate.spki_bytes())? {
                why.push(format!(
                    "the signature does not verify with the key of {} ({e})",
                    candidate.subject_text()
                ));
                continue;
            }
            // The path of this very signer is being validated further up, and its own status
            // rests on this CRL (a CRL issuer whose CRL covers its own certificate, PKITS
            // 4.14.30): the key is taken as that validation's to decide, without recursing.
            if self.crl_stack.iter().any(|(hash, key)| {
                hash == crl.tbs_hash() && key.as_slice() == candidate.spki_bytes()
            }) {
                return Ok(Ok(Signer {
                    spki: candidate.spki_bytes().to_vec(),
                    certificates: Vec::new(),
                    evidence: Vec::new(),
                }));
            }
            if candidate.same_subject_and_key(anchor) {
                return Ok(Ok(Signer {
                    spki: candidate.spki_bytes().to_vec(),
                    certificates: Vec::new(),
                    evidence: Vec::new(),
                }));
            }
            if candidate
                .ext
                .key_usage
                .is_some_and(|ku| !ku.contains(KeyUsages::CRLSign))
            {
                why.push(format!(
                    "{} signed it but its keyUsage lacks cRLSign",
                    candidate.subject_text()
                ));
                continue;
            }
            let signer_options = ValidationOptions {
                initial_policy_set: Vec::new(),
                initial_explicit_policy: false,
                initial_policy_mapping_inhibit: false,
                initial_any_policy_inhibit: false,
                purpose: crate::Purpose::Any,
                max_intermediates: None,
                ..options.clone()
            };
            self.crl_stack
                .push((*crl.tbs_hash(), candidate.spki_bytes().to_vec()));
            self.signer_depth += 1;
            let found = self.find_path(&candidate, &signer_options, Some(anchor));
            self.signer_depth -= 1;
            self.crl_stack.pop();
            match found {
                Ok(found) => {
                    let path = found.path;
                    let mut certificates: Vec<Arc<Certificate>> = path
                        .chain
                        .iter()
                        .take(path.chain.len().saturating_sub(1))
                        .cloned()
                        .collect();
                    certificates.extend(path.supporting_certificates);
                    let mut evidence: Vec<RevocationEvidence> = path
                        .revocation
                        .iter()
                        .filter_map(|s| s.evidence.clone())
                        .filter(|e| e.der().is_some())
                        .collect();
                    evidence.extend(path.supporting_evidence);
                    return Ok(Ok(Signer {
                        spki: candidate.spki_bytes().to_vec(),
                        certificates,
                        evidence,
                    }));
                }
                Err(error @ ValidationError::BudgetExceeded { .. }) => {
                    return Err(PathFailure { error, progress: 0 })
                }
                Err(e) => why.push(format!("CRL signer {}: {e}", candidate.subject_text())),
            }
        }
        if why.is_empty() {
            why.push(format!(
                "no certificate of its issuer {} leads to the trust anchor",
                crl.issuer_text()
            ));
        }
        Ok(Err(why.join("; ")))
    }
}
