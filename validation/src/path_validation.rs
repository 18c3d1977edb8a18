//! The basic path validation algorithm of RFC 5280 §6.1 over one candidate path, trust
//! anchor to target: signatures with the working public key (DSA parameters inherited,
//! §6.1.4 (e)-(f)), validity at the given time, name chaining, name constraints, policies
//! (the RFC 9618 graph) with mappings and the explicit_policy / policy_mapping /
//! inhibit_anyPolicy counters, basic constraints and path length, keyCertSign, and critical
//! extensions this validator does not understand.

use std::sync::Arc;

use der::asn1::ObjectIdentifier;
use imza_core::oids::ANY_POLICY;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::KeyUsages;

use crate::budget::Work;
use crate::name_constraints::NameConstraintState;
use crate::policy::PolicyGraph;
use crate::signature::{with_inherited_dsa_parameters, SignatureCache};
use crate::{Certificate, ValidationError, ValidationOptions};

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
            name_constraints
                .check(cert)
                .map_err(|detail| constraint(detail, 5))?;
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
            // (l)
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
