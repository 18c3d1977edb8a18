//! The basic path validation algorithm of RFC 5280 §6.1 over one candidate path, trust
//! anchor to target: signatures with the working public key (DSA parameters inherited,
//! §6.1.4 (e)-(f)), validity at the given time, name chaining, name constraints, policies
//! (the RFC 9618 graph) with mappings and the explicit_policy / policy_mapping /
//! inhibit_anyPolicy counters, basic constraints and path length, keyCertSign, and critical
//! extensions this validator does not understand.
//!
//! Around it, the strict checks [`ValidationOptions`] turns on by default: the trust anchor's
//! own certificate (fit to be a CA, valid, no unknown critical extension — judged after the
//! certificates below it; its pathLenConstraint and policy extensions initialising the
//! counters and the user-initial-policy-set, RFC 5937 §2; its name constraints always apply,
//! RFC 5937 §2), extendedKeyUsage in CA certificates nesting the target's purpose,
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
    AnchorProblem, Certificate, ConstraintViolation, NameConstraintViolation, Strictness,
    ValidationError, ValidationOptions,
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
    // §6.1.2 initialisation; RFC 5937 (§2 names them, §3.2 applies them): an anchor
    // certificate's constraints, when the caller takes its content, narrow the
    // user-initial-policy-set, set max_path_length to its pathLenConstraint when smaller, and
    // its requireExplicitPolicy, inhibitPolicyMapping and inhibitAnyPolicy, when present, set
    // the matching initial input whatever their skip counts.
    let inputs = options
        .strictness
        .check_anchor_certificate
        .then(|| AnchorInputs::of(anchor));
    let inputs = inputs.as_ref();
    let initial = |inhibit: bool| if inhibit { 0 } else { n + 1 };
    let mut explicit_policy = Counter::set_by_anchor(
        initial(options.initial_explicit_policy),
        inputs.and_then(|a| a.require_explicit_policy),
    );
    let mut inhibit_any_policy = Counter::set_by_anchor(
        initial(options.initial_any_policy_inhibit),
        inputs.and_then(|a| a.inhibit_any_policy),
    );
    let mut policy_mapping = Counter::set_by_anchor(
        initial(options.initial_policy_mapping_inhibit),
        inputs.and_then(|a| a.inhibit_policy_mapping),
    );
    let mut max_path_length = Counter::start(n, inputs.and_then(|a| a.path_len_constraint));
    let mut graph = PolicyGraph::new();
    // What the anchor's inhibitAnyPolicy or inhibitPolicyMapping took from the path's
    // policies, to name it when the path ends up without one.
    let mut anchor_took_policies: Option<AnchorProblem> = None;
    let anchor_failure = |problem: AnchorProblem, progress: u32| PathFailure {
        error: ValidationError::TrustAnchor {
            anchor: anchor.subject_text(),
            problem,
        },
        progress,
    };
    let mut name_constraints = NameConstraintState::default();
    // RFC 5937 §2: the anchor's name constraints initialise the path's (§6.1.1 (d) would
    // drop them). Kept apart to name the anchor when they refuse a name.
    let mut anchor_constraints = NameConstraintState::default();
    if let Some(nc) = &anchor.ext.name_constraints {
        anchor_constraints.add(nc).map_err(|detail| PathFailure {
            error: ValidationError::Constraint {
                subject: anchor.subject_text(),
                violation: ConstraintViolation::UnusableNameConstraints(detail),
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
        let constraint = |violation: ConstraintViolation, stage: u32| PathFailure {
            error: ValidationError::Constraint {
                subject: cert.subject_text(),
                violation,
            },
            progress: base + stage,
        };

        if !cert.ext.errors.is_empty() {
            return Err(constraint(
                ConstraintViolation::UnusableExtensions {
                    errors: cert.ext.errors.clone(),
                },
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
                ConstraintViolation::IssuerMismatch {
                    issuer: cert.issuer_text(),
                },
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
                    other => constraint(ConstraintViolation::Name(other), 5),
                })?;
        }
        // (d)-(e): policies.
        match &cert.ext.policies {
            Some(policies) => {
                let any_policy_applies = inhibit_any_policy.value > 0 || (!last && self_issued);
                // Only the anchor's inhibitAnyPolicy holds it at 0: would anyPolicy have kept
                // the path's policies?
                let kept_by_any_policy = match inhibit_any_policy.by_anchor {
                    Some(skip) if !any_policy_applies && policies.contains(&ANY_POLICY) => {
                        let mut allowed = graph.clone();
                        allowed.process_certificate(policies, true);
                        (!allowed.is_null()).then_some(skip)
                    }
                    _ => None,
                };
                graph.process_certificate(policies, any_policy_applies);
                if let (Some(skip), true) = (kept_by_any_policy, graph.is_null()) {
                    anchor_took_policies.get_or_insert(AnchorProblem::AnyPolicyInhibited {
                        inhibit_any_policy: skip,
                        position: index,
                        subject: cert.subject_text(),
                    });
                }
            }
            None => graph.set_null(),
        }
        // (f)
        if explicit_policy.value == 0 && graph.is_null() {
            if let Some(problem) =
                anchor_policy_problem(&anchor_took_policies, &explicit_policy, index, cert)
            {
                return Err(anchor_failure(problem, base + 6));
            }
            return Err(constraint(ConstraintViolation::ExplicitPolicyRequired, 6));
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
                    return Err(constraint(ConstraintViolation::MapsAnyPolicy, 7));
                }
                let allowed = policy_mapping.value > 0;
                if let (false, Some(skip)) = (allowed, policy_mapping.by_anchor) {
                    if mappings.iter().any(|(from, _)| graph.has_policy(from)) {
                        anchor_took_policies.get_or_insert(AnchorProblem::PolicyMappingInhibited {
                            inhibit_policy_mapping: skip,
                            position: index,
                            subject: cert.subject_text(),
                        });
                    }
                }
                graph.apply_mappings(mappings, allowed);
            }
            // (g): name constraints for the certificates below.
            if let Some(nc) = &cert.ext.name_constraints {
                name_constraints.add(nc).map_err(|detail| {
                    constraint(ConstraintViolation::UnusableNameConstraints(detail), 8)
                })?;
            }
            // (h)
            if !self_issued {
                explicit_policy.decrement();
                policy_mapping.decrement();
                inhibit_any_policy.decrement();
            }
            // (i)
            if let Some(pc) = &cert.ext.policy_constraints {
                if let Some(r) = pc.require_explicit_policy {
                    explicit_policy.limit(r);
                }
                if let Some(m) = pc.inhibit_policy_mapping {
                    policy_mapping.limit(m);
                }
            }
            // (j)
            if let Some(skip) = cert.ext.inhibit_any_policy {
                inhibit_any_policy.limit(skip);
            }
            // (k): a CA.
            if cert.inner().tbs_certificate.version != Version::V3 {
                return Err(constraint(ConstraintViolation::V1Intermediate, 9));
            }
            if !cert.is_ca() {
                return Err(constraint(ConstraintViolation::NotCa, 9));
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
                if max_path_length.value == 0 {
                    if let Some(path_len_constraint) = max_path_length.by_anchor {
                        return Err(anchor_failure(
                            AnchorProblem::PathLength {
                                path_len_constraint,
                                position: index,
                                subject: cert.subject_text(),
                            },
                            base + 10,
                        ));
                    }
                    return Err(constraint(ConstraintViolation::PathLength, 10));
                }
                max_path_length.decrement();
            }
            // (m)
            if let Some(len) = cert
                .ext
                .basic_constraints
                .as_ref()
                .and_then(|bc| bc.path_len_constraint)
            {
                max_path_length.limit(u32::from(len));
            }
            // (n)
            if cert
                .ext
                .key_usage
                .is_some_and(|ku| !ku.contains(KeyUsages::KeyCertSign))
            {
                return Err(constraint(ConstraintViolation::NoKeyCertSign, 11));
            }
        } else {
            // §6.1.5 (a)-(b).
            explicit_policy.decrement();
            if cert
                .ext
                .policy_constraints
                .as_ref()
                .and_then(|pc| pc.require_explicit_policy)
                == Some(0)
            {
                explicit_policy.limit(0);
            }
        }
        // §6.1.4 (o), §6.1.5 (f): critical extensions not understood.
        if !cert.ext.unknown_critical.is_empty() {
            return Err(constraint(
                ConstraintViolation::UnknownCriticalExtensions {
                    oids: cert.ext.unknown_critical.clone(),
                },
                12,
            ));
        }
    }

    // The anchor's own certificate, after the path below it: what is wrong with a
    // certificate on the path (a leaf not yet valid at the time asked) is the more telling
    // reason when both are.
    let anchor_progress = (n as u32 + 1) * 32 - 1;
    let anchor_certificate_failure = |error: ValidationError| PathFailure {
        error,
        progress: anchor_progress,
    };
    if options.strictness.check_anchor_certificate {
        if let Some(problem) = anchor_problem(anchor, options) {
            return Err(anchor_failure(problem, anchor_progress));
        }
        if options.strictness.ca_extended_key_usage_constrains_path {
            ca_eku_allows(anchor, n, options).map_err(anchor_certificate_failure)?;
        }
    }
    rsa_key_long_enough(anchor, n, options).map_err(anchor_certificate_failure)?;

    // §6.1.5 (g) as RFC 9618 gives it, and the final test; the user-initial-policy-set
    // narrowed to the anchor's certificatePolicies (RFC 5937 §2) when it asserts no
    // anyPolicy.
    let callers_set = graph.user_constrained_policy_set(&options.initial_policy_set);
    let anchor_policies = inputs.and_then(|a| a.policies.as_deref());
    let user_constrained_policy_set = match anchor_policies {
        None => callers_set.clone(),
        Some(allowed) => match narrowed_policy_set(&options.initial_policy_set, allowed) {
            narrowed if narrowed.is_empty() => Vec::new(),
            narrowed => graph.user_constrained_policy_set(&narrowed),
        },
    };
    if explicit_policy.value == 0 && user_constrained_policy_set.is_empty() {
        let progress = (n as u32 + 1) * 32;
        let target = certs.first().map(|c| c.subject_text()).unwrap_or_default();
        if let (Some(allowed), false) = (anchor_policies, callers_set.is_empty()) {
            return Err(anchor_failure(
                AnchorProblem::PolicyNotAsserted {
                    anchor_policies: allowed.to_vec(),
                    path_policies: callers_set,
                },
                progress,
            ));
        }
        if let Some(problem) = certs.first().and_then(|leaf| {
            anchor_policy_problem(&anchor_took_policies, &explicit_policy, 0, leaf)
        }) {
            return Err(anchor_failure(problem, progress));
        }
        return Err(PathFailure {
            error: ValidationError::Constraint {
                subject: target,
                violation: ConstraintViolation::NoAcceptablePolicy {
                    initial_policy_set: options.initial_policy_set.clone(),
                },
            },
            progress,
        });
    }
    Ok(ProcessedPath {
        working_keys,
        user_constrained_policy_set,
    })
}

/// A counter of §6.1.2 (explicit_policy, policy_mapping, inhibit_anyPolicy,
/// max_path_length), with the trust anchor's value while that is the one it holds: what names
/// the anchor when the counter refuses the path.
#[derive(Clone, Copy, Debug)]
struct Counter {
    value: usize,
    /// The anchor certificate's skip count (or pathLenConstraint), while it sets the value.
    by_anchor: Option<u32>,
}

impl Counter {
    /// The caller's initial value, or the anchor's pathLenConstraint when it is smaller (RFC
    /// 5937 §3.2).
    fn start(callers: usize, anchors: Option<u32>) -> Counter {
        match anchors {
            Some(skip) if (skip as usize) < callers => Counter {
                value: skip as usize,
                by_anchor: Some(skip),
            },
            _ => Counter {
                value: callers,
                by_anchor: None,
            },
        }
    }

    /// The caller's initial value, or 0 when the anchor carries the constraint at all: RFC
    /// 5937 §2 has a requireExplicitPolicy, inhibitPolicyMapping or inhibitAnyPolicy in the
    /// anchor set the matching initial input (initial-explicit-policy and the others) to true,
    /// its skip count not used. The skip count is kept to name it.
    fn set_by_anchor(callers: usize, anchors: Option<u32>) -> Counter {
        match anchors {
            Some(skip) => Counter {
                value: 0,
                by_anchor: Some(skip),
            },
            None => Counter {
                value: callers,
                by_anchor: None,
            },
        }
    }

    /// §6.1.4 (h), (l), §6.1.5 (a).
    fn decrement(&mut self) {
        self.value = self.value.saturating_sub(1);
    }

    /// §6.1.4 (i), (j), (m): a certificate's value, when smaller, takes the counter over.
    fn limit(&mut self, skip: u32) {
        if (skip as usize) < self.value {
            self.value = skip as usize;
            self.by_anchor = None;
        }
    }
}

/// The constraints of the trust anchor's certificate that initialise the path validation
/// inputs (RFC 5937 §2), taken when the caller takes the certificate's content
/// ([`crate::Strictness::check_anchor_certificate`]).
#[derive(Debug)]
struct AnchorInputs {
    /// basicConstraints pathLenConstraint: max_path_length.
    path_len_constraint: Option<u32>,
    /// certificatePolicies, when they do not include anyPolicy: they bound the
    /// user-initial-policy-set.
    policies: Option<Vec<ObjectIdentifier>>,
    /// policyConstraints requireExplicitPolicy: explicit_policy.
    require_explicit_policy: Option<u32>,
    /// policyConstraints inhibitPolicyMapping: policy_mapping.
    inhibit_policy_mapping: Option<u32>,
    /// inhibitAnyPolicy: inhibit_anyPolicy.
    inhibit_any_policy: Option<u32>,
}

impl AnchorInputs {
    fn of(anchor: &Certificate) -> AnchorInputs {
        let ext = &anchor.ext;
        let constraints = ext.policy_constraints.as_ref();
        AnchorInputs {
            path_len_constraint: ext
                .basic_constraints
                .as_ref()
                .and_then(|bc| bc.path_len_constraint)
                .map(u32::from),
            policies: ext
                .policies
                .clone()
                .filter(|policies| !policies.contains(&ANY_POLICY)),
            require_explicit_policy: constraints.and_then(|pc| pc.require_explicit_policy),
            inhibit_policy_mapping: constraints.and_then(|pc| pc.inhibit_policy_mapping),
            inhibit_any_policy: ext.inhibit_any_policy,
        }
    }
}

/// The user-initial-policy-set `callers` (empty or with anyPolicy: any) narrowed to the
/// anchor's certificatePolicies `anchors` (RFC 5937 §2): empty when they share none.
fn narrowed_policy_set(
    callers: &[ObjectIdentifier],
    anchors: &[ObjectIdentifier],
) -> Vec<ObjectIdentifier> {
    if callers.is_empty() || callers.contains(&ANY_POLICY) {
        return anchors.to_vec();
    }
    callers
        .iter()
        .filter(|p| anchors.contains(p))
        .copied()
        .collect()
}

/// The anchor's part in a path left without an acceptable policy at `cert` (at `position`):
/// what its inhibitAnyPolicy or inhibitPolicyMapping took, or else its requireExplicitPolicy
/// when that is what requires a policy here.
fn anchor_policy_problem(
    took: &Option<AnchorProblem>,
    explicit_policy: &Counter,
    position: usize,
    cert: &Certificate,
) -> Option<AnchorProblem> {
    took.clone().or_else(|| {
        explicit_policy.by_anchor.map(|require_explicit_policy| {
            AnchorProblem::ExplicitPolicyRequired {
                require_explicit_policy,
                position,
                subject: cert.subject_text(),
            }
        })
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

/// An RSA key on the path shorter than [`Strictness::min_rsa_modulus_bits`] is refused.
fn rsa_key_long_enough(
    cert: &Certificate,
    position: usize,
    options: &ValidationOptions,
) -> Result<(), ValidationError> {
    match short_rsa_key(cert, &options.strictness) {
        Some(bits) => Err(ValidationError::WeakRsaKey {
            position,
            subject: cert.subject_text(),
            bits,
            minimum: options.strictness.min_rsa_modulus_bits,
        }),
        None => Ok(()),
    }
}

/// The modulus length of `cert`'s RSA key when it is shorter than
/// [`Strictness::min_rsa_modulus_bits`]: the one rule for keys on the path and for a delegated
/// OCSP responder's, judged outside it.
pub(crate) fn short_rsa_key(cert: &Certificate, strictness: &Strictness) -> Option<usize> {
    cert.rsa_modulus_bits()
        .filter(|bits| *bits < strictness.min_rsa_modulus_bits)
}
