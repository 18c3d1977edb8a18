//! Path building (RFC 4158 in spirit, RFC 5280 §6 for the checks): from the target up through
//! the unordered pool to a trust anchor, depth first. Issuers are found by name (§7.1
//! comparison); among several, those whose subjectKeyIdentifier matches the child's
//! authorityKeyIdentifier and that are valid at the validation time come first. Each step
//! checks the child's signature with the candidate's key, so a pool of look-alike
//! certificates is cut down at once; the same certificate, or the same subject and key, never
//! appears twice on a path (cross-certificate loops). Every signature check and every
//! complete candidate counts against the [`crate::Budget`].

use std::sync::Arc;

use crate::budget::Work;
use crate::path_validation::{process_path, PathFailure};
use crate::purpose::check_purpose;
use crate::signature::{needs_inherited_parameters, SignatureFailure};
use crate::{
    BudgetLimit, Certificate, ConstraintViolation, RevocationEvidence, ValidatedPath,
    ValidationError, ValidationOptions, Validator,
};

/// Most look-alike issuer candidates considered for one certificate.
const MAX_CANDIDATES_PER_STEP: usize = 4096;

/// A validated path and what revocation checking of CRL signers needs from it.
#[derive(Debug)]
pub(crate) struct Found {
    pub path: ValidatedPath,
}

/// One validation in progress: the validator, the work done so far, and the CRLs whose
/// signer's path is being validated, with that signer's key (to stop circular CRL-signer
/// paths).
pub(crate) struct Session<'v> {
    pub v: &'v Validator,
    pub work: Work,
    pub crl_stack: Vec<([u8; 32], Vec<u8>)>,
    pub signer_depth: usize,
}

/// What the depth-first search learned about failures.
#[derive(Default)]
struct SearchState {
    best: Option<PathFailure>,
    signature_failures: Vec<String>,
    missing_issuers: Vec<String>,
    depth_limited: bool,
}

impl SearchState {
    fn record(&mut self, failure: PathFailure) {
        if self
            .best
            .as_ref()
            .is_none_or(|best| failure.progress > best.progress)
        {
            self.best = Some(failure);
        }
    }
}

impl Session<'_> {
    /// Builds and validates a path from `target` to a trust anchor (only `anchor` when
    /// given: a CRL signer's path must end at the anchor of the path it serves, §6.3.3 (f)).
    pub fn find_path(
        &mut self,
        target: &Arc<Certificate>,
        options: &ValidationOptions,
        anchor: Option<&Arc<Certificate>>,
    ) -> Result<Found, ValidationError> {
        // A target that is itself a trust anchor needs no path.
        if self.anchors_matching(target, anchor).next().is_some() {
            check_purpose(target, options.purpose)?;
            return Ok(Found {
                path: ValidatedPath {
                    chain: vec![Arc::clone(target)],
                    revocation: Vec::new(),
                    user_constrained_policy_set: if options.initial_policy_set.is_empty() {
                        vec![imza_core::oids::ANY_POLICY]
                    } else {
                        options.initial_policy_set.clone()
                    },
                    supporting_evidence: Vec::new(),
                    supporting_certificates: Vec::new(),
                },
            });
        }
        let mut state = SearchState::default();
        let mut chain = vec![Arc::clone(target)];
        match self.search(&mut chain, options, anchor, &mut state) {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(ValidationError::BudgetExceeded {
                limit,
                signature_checks,
                candidate_paths,
                best_failure,
            }) => {
                // Say what the most promising candidate had run into before the budget ended.
                return Err(ValidationError::BudgetExceeded {
                    limit,
                    signature_checks,
                    candidate_paths,
                    best_failure: best_failure
                        .or_else(|| state.best.map(|best| Box::new(best.error))),
                });
            }
            Err(other) => return Err(other),
        }
        if let Some(best) = state.best {
            return Err(best.error);
        }
        if state.depth_limited {
            let limit = self.depth_limit(options);
            return Err(match options.max_intermediates {
                Some(max) if max + 1 < options.budget.max_depth => ValidationError::Constraint {
                    subject: target.subject_text(),
                    violation: ConstraintViolation::TooManyIntermediates { max },
                },
                _ => self.work.exceeded(BudgetLimit::Depth {
                    limit,
                    target: target.subject_text(),
                }),
            });
        }
        let mut detail = Vec::new();
        if !state.signature_failures.is_empty() {
            detail.push(state.signature_failures.join("; "));
        }
        if !state.missing_issuers.is_empty() {
            detail.push(state.missing_issuers.join("; "));
        }
        Err(ValidationError::NoPathFound {
            detail: detail.join("; "),
        })
    }

    fn depth_limit(&self, options: &ValidationOptions) -> usize {
        let by_budget = options.budget.max_depth;
        match options.max_intermediates {
            Some(max) => by_budget.min(max.saturating_add(1)),
            None => by_budget,
        }
    }

    /// Whether `candidate` may follow the intermediates on `chain` under
    /// [`ValidationOptions::max_intermediates`]. Self-issued intermediates (a key rollover) do
    /// not count, as RFC 5280 §6.1.4(l) has it for pathLenConstraint; the budget's depth limit
    /// still bounds the whole chain.
    fn within_max_intermediates(
        chain: &[Arc<Certificate>],
        candidate: &Certificate,
        options: &ValidationOptions,
    ) -> bool {
        let Some(max) = options.max_intermediates else {
            return true;
        };
        let counted = chain
            .iter()
            .skip(1)
            .map(|c| &**c)
            .chain(std::iter::once(candidate))
            .filter(|c| !c.is_self_issued())
            .count();
        counted <= max
    }

    /// Anchors that are `cert` itself (same subject and key), restricted to `only`.
    fn anchors_matching<'a>(
        &'a self,
        cert: &'a Certificate,
        only: Option<&'a Arc<Certificate>>,
    ) -> impl Iterator<Item = &'a Arc<Certificate>> + 'a {
        self.v
            .anchors_named(cert.subject_key())
            .filter(move |a| a.same_subject_and_key(cert))
            .filter(move |a| only.is_none_or(|o| o.same_subject_and_key(a)))
    }

    fn search(
        &mut self,
        chain: &mut Vec<Arc<Certificate>>,
        options: &ValidationOptions,
        only_anchor: Option<&Arc<Certificate>>,
        state: &mut SearchState,
    ) -> Result<Option<Found>, ValidationError> {
        let Some(child) = chain.last().cloned() else {
            return Ok(None);
        };
        let v = self.v;
        // Trust anchors first: they end the path.
        let anchors: Vec<Arc<Certificate>> = v
            .anchors_named(child.issuer_key())
            .filter(|a| only_anchor.is_none_or(|o| o.same_subject_and_key(a)))
            .cloned()
            .collect();
        let mut any_issuer = !anchors.is_empty();
        for anchor in anchors {
            let outcome = self
                .work
                .verify(&v.signatures, anchor.spki_bytes(), &*child)?;
            if let Err(failure) = outcome {
                state.record(PathFailure {
                    error: failure.into_error(
                        child.subject_text(),
                        &format!(
                            " (checked with the key of trust anchor {})",
                            anchor.subject_text()
                        ),
                    ),
                    progress: 1,
                });
                continue;
            }
            chain.push(anchor);
            self.work.charge_path()?;
            let outcome = self.check_candidate(chain, options, only_anchor);
            chain.pop();
            match outcome {
                Ok(found) => return Ok(Some(found)),
                Err(failure) if failure.is_budget() => return Err(failure.error),
                Err(failure) => state.record(failure),
            }
        }

        // Then intermediates from the pool, best candidates first.
        let mut candidates: Vec<&Arc<Certificate>> = v
            .pool_named(child.issuer_key())
            .filter(|c| {
                !chain
                    .iter()
                    .any(|on| on.same_as(c) || on.same_subject_and_key(c))
            })
            .filter(|c| !v.is_anchor(c))
            .take(MAX_CANDIDATES_PER_STEP)
            .collect();
        any_issuer |= !candidates.is_empty();
        if !any_issuer {
            state.missing_issuers.push(format!(
                "no certificate in the pool or among the trust anchors is named {} (the issuer of {})",
                child.issuer_text(),
                child.subject_text()
            ));
            return Ok(None);
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        // chain holds the target and the intermediates so far: one more must fit.
        if chain.len() >= options.budget.max_depth {
            state.depth_limited = true;
            return Ok(None);
        }
        let time = options.time;
        candidates.sort_by_key(|c| {
            let key_match = match (child.authority_key_id(), c.subject_key_id()) {
                (Some(aki), Some(ski)) if aki == ski => 0,
                (Some(_), Some(_)) => 2,
                _ => 1,
            };
            let current = u8::from(!(c.not_before() <= time && time <= c.not_after()));
            (key_match, current)
        });
        for candidate in candidates {
            if !Self::within_max_intermediates(chain, candidate, options) {
                state.depth_limited = true;
                continue;
            }
            // A DSA key without parameters takes them from its own issuer: the signature it
            // made is checked during §6.1 processing with the inherited parameters.
            if needs_inherited_parameters(candidate.spki()) {
                self.work.charge_signature()?;
            } else {
                let outcome = self
                    .work
                    .verify(&v.signatures, candidate.spki_bytes(), &*child)?;
                if let Err(SignatureFailure::Unsupported(detail)) = outcome {
                    // A refused algorithm is a reason of its own, not a signature that fails.
                    state.record(PathFailure {
                        error: SignatureFailure::Unsupported(detail).into_error(
                            child.subject_text(),
                            &format!(" (issued by {})", candidate.subject_text()),
                        ),
                        progress: 1,
                    });
                    continue;
                }
                if let Err(detail) = outcome {
                    state.signature_failures.push(format!(
                        "the signature on {} does not verify with the key of {} ({detail})",
                        child.subject_text(),
                        candidate.subject_text()
                    ));
                    continue;
                }
            }
            chain.push(Arc::clone(candidate));
            let found = self.search(chain, options, only_anchor, state);
            chain.pop();
            if let Some(found) = found? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// §6.1 over a complete candidate, then the purpose of the target, then revocation.
    fn check_candidate(
        &mut self,
        chain: &[Arc<Certificate>],
        options: &ValidationOptions,
        only_anchor: Option<&Arc<Certificate>>,
    ) -> Result<Found, PathFailure> {
        let processed = process_path(chain, options, &self.v.signatures, &mut self.work)?;
        let after = (chain.len() as u32 + 1) * 32;
        let target = chain.first().ok_or_else(|| PathFailure {
            error: ValidationError::NoPathFound {
                detail: "empty path".into(),
            },
            progress: 0,
        })?;
        check_purpose(target, options.purpose).map_err(|error| PathFailure {
            error,
            progress: after + 1,
        })?;
        let anchor = match only_anchor {
            Some(a) => Arc::clone(a),
            None => chain.last().cloned().ok_or_else(|| PathFailure {
                error: ValidationError::NoPathFound {
                    detail: "empty path".into(),
                },
                progress: 0,
            })?,
        };
        let checked = self.check_revocation(chain, &processed.working_keys, &anchor, options)?;
        Ok(Found {
            path: ValidatedPath {
                chain: chain.to_vec(),
                revocation: checked.statuses,
                user_constrained_policy_set: processed.user_constrained_policy_set,
                supporting_evidence: dedup_evidence(checked.evidence),
                supporting_certificates: checked.certificates,
            },
        })
    }
}

fn dedup_evidence(evidence: Vec<RevocationEvidence>) -> Vec<RevocationEvidence> {
    let mut out: Vec<RevocationEvidence> = Vec::new();
    for e in evidence {
        if !out.iter().any(|o| o.der() == e.der()) {
            out.push(e);
        }
    }
    out
}
