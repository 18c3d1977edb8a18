//! The basic path validation algorithm of RFC 5280 §6.1 over one candidate path, trust
//! anchor to target: signatures with the working public key (DSA parameters inherited,
//! §6.1.4 (e)-(f)), validity at the given time, name chaining, name constraints, policies
//! (the RFC 9618 graph) with mappings and the explicit_policy / policy_mapping /
//! inhibit_anyPolicy counters, basic constraints and path length, keyCertSign, and critical
//! extensions this validator does not understand.
//!
//! Around it, the strict checks [`ValidationOptions`] turns on by default: the trust anchor's
//! own certificate (fit to be a CA, valid, no unknown critical extension — judged after the
//! certificates below it; its name constraints always apply, RFC 5937 §2), extendedKeyUsage in CA certificates nesting the target's purpose,
//! RFC 5280's rules for conforming CAs, and a minimum RSA key size.

use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use imza_core::oids::ANY_POLICY;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::KeyUsages;

use crate::budget::Work;
use crate::name_constraints::NameConstraintState;
use crate::policy::PolicyGraph;
use crate::purpose::{eku_allows, key_purposes, purpose_name};
use crate::signature::{with_inherited_dsa_parameters, SignatureCache};
use crate::{
    AnchorProblem, Certificate, NameConstraintViolation, ValidationError, ValidationOptions,
};

/// Why a candidate path failed, and how far its checks got (to report the most telling
/// failure when every candidate fails).
#[derive(Debug)]
pub(crate) struct PathFailure {
    pub error: ValidationError,
    pub progress: u32,
}

impl PathFailure {
    pub fn is_budget(&self) -> bool {
        matches!(self.error, ValidationError::BudgetExceeded { .. })
    }
}

/// The outputs of §6.1.6 that imza uses.
#[derive(Debug)]
pub(crate) struct ProcessedPath {
    /// The working public key after each certificate (DSA parameters filled in), by the
    /// index of the certificate in the chain (target first, anchor last).
    pub working_keys: Vec<Vec<u8>>,
    pub user_constrained_policy_set: Vec<ObjectIdentifier>,
}

/// Runs §6.1.2-§6.1.5 over `chain` (target first, trust anchor last).
pub(crate) fn process_path(
    chain: &[Arc<Certificate>],
    options: &ValidationOptions,
    cache: &SignatureCache,
    work: &mut Work,
) -> Result<ProcessedPath, PathFailure> {
    let Some((anchor, certs)) = chain.split_last() else {
        return Err(PathFailure {
            error: ValidationError::NoPathFound {
                detail: "empty path".into(),
            },
            progress: 0,
        });
    };
    let n = certs.len();
    // §6.1.2 initialisation.
    let initial = |inhibit: bool| if inhibit { 0 } else { n + 1 };
    let mut explicit_policy = initial(options.initial_explicit_policy);
    let mut inhibit_any_policy = initial(options.initial_any_policy_inhibit);
    let mut policy_mapping = initial(options.initial_policy_mapping_inhibit);
    let mut max_path_length = n;
    let mut graph = PolicyGraph::new();
    let mut name_constraints = NameConstraintState::default();
    // RFC 5937 §2: the anchor's name constraints initialise the path's (§6.1.1 (d) would
    // drop them). Kept apart to name the anchor when they refuse a name.
    let mut anchor_constraints = NameConstraintState::default();
    if let Some(nc) = &anchor.ext.name_constraints {
        anchor_constraints.add(nc).map_err(|detail| PathFailure {
            error: ValidationError::Constraint {
                subject: anchor.subject_text(),
                detail,
            },
            progress: 16,
        })?;
    }
    let mut working_key = anchor.spki_bytes().to_vec();
    let mut working_issuer = anchor.subject_key().clone();
    let mut working_keys = vec![Vec::new(); chain.len()];
    if let Some(slot) = working_keys.last_mut() {
        *slot = working_key.clone();
    }

    for i in 1..=n {
        let index = n - i;
        let Some(cert) = certs.get(index) else {
            break;
        };
        let issuer = chain.get(index + 1).unwrap_or(anchor);
        let last = i == n;
        let self_issued = cert.is_self_issued();
        let base = (i as u32) * 32;
        let constraint = |detail: String, stage: u32| PathFailure {
            error: ValidationError::Constraint {
                subject: cert.subject_text(),
                detail,
            },
            progress: base + stage,
        };

        if !cert.ext.errors.is_empty() {
            return Err(constraint(
                format!("unusable extensions: {}", cert.ext.errors.join("; ")),
                1,
            ));
        }
        if options.strictness.require_rfc5280_conformance {
            let self_signed = self_issued && issuer.spki_bytes() == cert.spki_bytes();
            crate::conformance::check_certificate(cert, self_signed).map_err(|violation| {
                PathFailure {
                    error: ValidationError::NonConforming {
                        position: index,
                        subject: cert.subject_text(),
                        violation,
                    },
                    progress: base + 1,
                }
            })?;
        }
        rsa_key_long_enough(cert, index, options).map_err(|error| PathFailure {
            error,
            progress: base + 1,
        })?;
        // (a)(1): the signature, with the working public key. Path building checked it with
        // the issuer's own key; only a key that took inherited DSA parameters differs.
        if working_key.as_slice() != issuer.spki_bytes() {
            let outcome = work
                .verify(cache, &working_key, &**cert)
                .map_err(|error| PathFailure { error, progress: 0 })?;
            if let Err(failure) = outcome {
                return Err(PathFailure {
                    error: failure.into_error(cert.subject_text(), ""),
                    progress: base + 2,
                });
            }
        }
        // (a)(2): validity at the validation time.
        if options.time < cert.not_before() {
            return Err(PathFailure {
                error: ValidationError::NotYetValid {
                    subject: cert.subject_text(),
                    not_before: cert.not_before(),
                    time: options.time,
                },
                progress: base + 3,
            });
        }
        if options.time > cert.not_after() {
            return Err(PathFailure {
                error: ValidationError::Expired {
                    subject: cert.subject_text(),
                    not_after: cert.not_after(),
                    time: options.time,
                },
                progress: base + 3,
            });
        }
        // (a)(4): name chaining.
        if cert.issuer_key() != &working_issuer {
            return Err(constraint(
                format!(
                    "issuer {} is not the subject of the certificate above it",
                    cert.issuer_text()
                ),
                4,
            ));
        }
        // (b)-(c): name constraints, for certificates that are not self-issued
        // intermediates.
        if !self_issued || last {
            anchor_constraints
                .check(cert)
                .map_err(|violation| PathFailure {
                    error: ValidationError::AnchorNameConstraints {
                        anchor: anchor.subject_text(),
                        position: index,
                        subject: cert.subject_text(),
                        violation,
                    },
                    progress: base + 5,
                })?;
            name_constraints
                .check(cert)
                .map_err(|violation| match violation {
                    NameConstraintViolation::WildcardExcluded { .. }
                    | NameConstraintViolation::MalformedEmail { .. } => PathFailure {
                        error: ValidationError::NameConstraint {
                            position: index,
                            subject: cert.subject_text(),
                            violation,
                        },
                        progress: base + 5,
                    },
                    other => constraint(other.to_string(), 5),
                })?;
        }
        // (d)-(e): policies.
        match &cert.ext.policies {
            Some(policies) => graph
                .process_certificate(policies, inhibit_any_policy > 0 || (!last && self_issued)),
            None => graph.set_null(),
        }
        // (f)
        if explicit_policy == 0 && graph.is_null() {
            return Err(constraint(
                "no certificate policy valid for the path, and an explicit policy is required"
                    .into(),
                6,
            ));
        }
        // §6.1.4 (c)-(f): the next working public key and issuer name.
        working_key = with_inherited_dsa_parameters(cert.spki(), cert.spki_bytes(), &working_key);
        if let Some(slot) = working_keys.get_mut(index) {
            *slot = working_key.clone();
        }
        working_issuer = cert.subject_key().clone();

        if !last {
            // §6.1.4 (a)-(b): policy mappings.
            if let Some(mappings) = &cert.ext.policy_mappings {
                if mappings
                    .iter()
                    .any(|(from, to)| *from == ANY_POLICY || *to == ANY_POLICY)
                {
                    return Err(constraint("policyMappings maps anyPolicy".into(), 7));
                }
                graph.apply_mappings(mappings, policy_mapping > 0);
            }
            // (g): name constraints for the certificates below.
            if let Some(nc) = &cert.ext.name_constraints {
                name_constraints
                    .add(nc)
                    .map_err(|detail| constraint(detail, 8))?;
            }
            // (h)
            if !self_issued {
                explicit_policy = explicit_policy.saturating_sub(1);
                policy_mapping = policy_mapping.saturating_sub(1);
                inhibit_any_policy = inhibit_any_policy.saturating_sub(1);
            }
            // (i)
            if let Some(pc) = &cert.ext.policy_constraints {
                if let Some(r) = pc.require_explicit_policy {
                    explicit_policy = explicit_policy.min(r as usize);
                }
                if let Some(m) = pc.inhibit_policy_mapping {
                    policy_mapping = policy_mapping.min(m as usize);
                }
            }
            // (j)
            if let Some(skip) = cert.ext.inhibit_any_policy {
                inhibit_any_policy = inhibit_any_policy.min(skip as usize);
            }
            // (k): a CA.
            if cert.inner().tbs_certificate.version != Version::V3 {
                return Err(constraint(
                    "a version 1 or 2 certificate cannot be an intermediate CA".into(),
                    9,
                ));
            }
            if !cert.is_ca() {
                return Err(constraint(
                    "not a CA (basicConstraints cA is absent or false) but issued a certificate on the path"
                        .into(),
                    9,
                ));
            }
            if options.strictness.ca_extended_key_usage_constrains_path {
                ca_eku_allows(cert, index, options).map_err(|error| PathFailure {
                    error,
                    progress: base + 11,
                })?;
            }
            // (l): a self-issued certificate (a key rollover) takes no place of the path
            // length.
            if !self_issued {
                if max_path_length == 0 {
                    return Err(constraint(
                        "path length constraint exceeded: a CA above allows no more intermediate CAs"
                            .into(),
                        10,
                    ));
                }
                max_path_length -= 1;
            }
            // (m)
            if let Some(len) = cert
                .ext
                .basic_constraints
                .as_ref()
                .and_then(|bc| bc.path_len_constraint)
            {
                max_path_length = max_path_length.min(usize::from(len));
            }
            // (n)
            if cert
                .ext
                .key_usage
                .is_some_and(|ku| !ku.contains(KeyUsages::KeyCertSign))
            {
                return Err(constraint(
                    "keyUsage lacks keyCertSign but the key signed a certificate on the path"
                        .into(),
                    11,
                ));
            }
        } else {
            // §6.1.5 (a)-(b).
            explicit_policy = explicit_policy.saturating_sub(1);
            if cert
                .ext
                .policy_constraints
                .as_ref()
                .and_then(|pc| pc.require_explicit_policy)
                == Some(0)
            {
                explicit_policy = 0;
            }
        }
        // §6.1.4 (o), §6.1.5 (f): critical extensions not understood.
        if !cert.ext.unknown_critical.is_empty() {
            return Err(constraint(
                format!(
                    "unrecognised critical extension {}",
                    cert.ext
                        .unknown_critical
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                12,
            ));
        }
    }

    // The anchor's own certificate, after the path below it: what is wrong with a
    // certificate on the path (a leaf not yet valid at the time asked) is the more telling
    // reason when both are.
    let anchor_failure = |error: ValidationError| PathFailure {
        error,
        progress: (n as u32 + 1) * 32 - 1,
    };
    if options.strictness.check_anchor_certificate {
        if let Some(problem) = anchor_problem(anchor, options) {
            return Err(anchor_failure(ValidationError::TrustAnchor {
                anchor: anchor.subject_text(),
                problem,
            }));
        }
        if options.strictness.ca_extended_key_usage_constrains_path {
            ca_eku_allows(anchor, n, options).map_err(anchor_failure)?;
        }
    }
    rsa_key_long_enough(anchor, n, options).map_err(anchor_failure)?;

    // §6.1.5 (g) as RFC 9618 gives it, and the final test.
    let user_constrained_policy_set =
        graph.user_constrained_policy_set(&options.initial_policy_set);
    if explicit_policy == 0 && user_constrained_policy_set.is_empty() {
        let target = certs.first().map(|c| c.subject_text()).unwrap_or_default();
        return Err(PathFailure {
            error: ValidationError::Constraint {
                subject: target,
                detail: format!(
                    "no certificate policy of the path is acceptable (user-initial-policy-set: {})",
                    if options.initial_policy_set.is_empty() {
                        "anyPolicy".to_string()
                    } else {
                        options
                            .initial_policy_set
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            },
            progress: (n as u32 + 1) * 32,
        });
    }
    Ok(ProcessedPath {
        working_keys,
        user_constrained_policy_set,
    })
}

/// Why the trust anchor's certificate is not fit to be one at the validation time, if it is
/// not: what §6.1.4 (k), (n), (o) and §6.1.3 (a)(2) ask of a CA on the path, asked of the
/// anchor too (RFC 5937 §3 lets the relying party take the certificate's content).
fn anchor_problem(anchor: &Certificate, options: &ValidationOptions) -> Option<AnchorProblem> {
    let time = options.time;
    if !anchor.ext.errors.is_empty() {
        return Some(AnchorProblem::UnusableExtensions {
            errors: anchor.ext.errors.clone(),
        });
    }
    if time < anchor.not_before() {
        return Some(AnchorProblem::NotYetValid {
            not_before: anchor.not_before(),
            time,
        });
    }
    if time > anchor.not_after() {
        return Some(AnchorProblem::Expired {
            not_after: anchor.not_after(),
            time,
        });
    }
    // A version 1 root has no extensions: its certificate says nothing against its use.
    let v1 = anchor.inner().tbs_certificate.version != Version::V3
        && anchor.inner().tbs_certificate.extensions.is_none();
    if !v1 && !anchor.is_ca() {
        return Some(AnchorProblem::NotCa);
    }
    if anchor
        .ext
        .key_usage
        .is_some_and(|ku| !ku.contains(KeyUsages::KeyCertSign))
    {
        return Some(AnchorProblem::NoKeyCertSign);
    }
    if !anchor.ext.unknown_critical.is_empty() {
        return Some(AnchorProblem::UnknownCriticalExtension {
            extensions: anchor.ext.unknown_critical.clone(),
        });
    }
    None
}

/// A CA's extendedKeyUsage, when it has one, must allow the target's purpose (the WebPKI
/// reading: a CA limited to e-mail protection cannot certify a TLS server).
fn ca_eku_allows(
    ca: &Certificate,
    position: usize,
    options: &ValidationOptions,
) -> Result<(), ValidationError> {
    if eku_allows(ca, options.purpose) {
        return Ok(());
    }
    Err(ValidationError::CaExtendedKeyUsage {
        position,
        ca: ca.subject_text(),
        ca_usages: ca
            .ext
            .extended_key_usage
            .as_ref()
            .map(|(list, _)| list.clone())
            .unwrap_or_default(),
        purpose: purpose_name(options.purpose),
        wanted: key_purposes(options.purpose).to_vec(),
    })
}

/// An RSA key shorter than [`Strictness::min_rsa_modulus_bits`] is refused.
fn rsa_key_long_enough(
    cert: &Certificate,
    position: usize,
    options: &ValidationOptions,
) -> Result<(), ValidationError> {
    match cert.rsa_modulus_bits() {
        Some(bits) if bits < options.strictness.min_rsa_modulus_bits => {
            Err(ValidationError::WeakRsaKey {
                position,
                subject: cert.subject_text(),
                bits,
                minimum: options.strictness.min_rsa_modulus_bits,
            })
        }
        _ => Ok(()),
    }
}
