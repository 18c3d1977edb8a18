//! The strict checks of the validator, each from the text that motivates it: the trust anchor's
//! own certificate (RFC 5937), extendedKeyUsage in CA certificates (the WebPKI reading),
//! RFC 5280's rules for conforming CAs and CRL issuers, wildcard and e-mail names under name
//! constraints (§4.2.1.10), self-issued certificates and the path length (§6.1.4 (l)), and the
//! minimum RSA key size. Each refusal names its rule and facts; each policy has its opt-out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use std::sync::Arc;

use common::{
    ca_extensions, drop_extension, issue, leaf_extensions, p256, resign, resign_crl, set_critical,
    Party, RsaPssKey, Shape, ThreeChain,
};
use der::asn1::{Ia5String, ObjectIdentifier};
use der::Decode;
use imza_core::{ext, oids, SigningKey};
use imza_validation::{
    AnchorProblem, Certificate, ConstraintViolation, CrlViolation, NameConstraintViolation,
    Purpose, RevocationPolicy, Rfc5280Violation, ValidatedPath, ValidationError, ValidationOptions,
    Validator,
};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    ExtendedKeyUsage, KeyUsages, NameConstraints, PolicyConstraints, SubjectAltName,
};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;

const ROOT: &str = "CN=Strict Root,O=imza,C=AZ";
const CA: &str = "CN=Strict Issuing CA,O=imza,C=AZ";
const LEAF: &str = "CN=Strict Leaf,O=imza,C=AZ";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn root_with(extensions: Vec<Extension>) -> Party {
    issue(None, ROOT, p256(), Shape::current(&[1], extensions))
}

fn ca_under(issuer: &Party, subject: &str, extensions: Vec<Extension>) -> Party {
    issue(
        Some(issuer),
        subject,
        p256(),
        Shape::current(&[2], extensions),
    )
}

/// A root with the usual CA extensions and a CA under it with `extensions`.
fn root_and_ca(extensions: Vec<Extension>) -> (Party, Party) {
    let root = root_with(ca_extensions());
    let ca = ca_under(&root, CA, extensions);
    (root, ca)
}

fn leaf_under(issuer: &Party, mut extra: Vec<Extension>) -> Party {
    let mut extensions = leaf_extensions();
    extensions.append(&mut extra);
    issue(Some(issuer), LEAF, p256(), Shape::current(&[3], extensions))
}

/// Validates `leaf` against `anchor` with `pool`, revocation off, after `tweak`.
fn validate(
    anchor: &[u8],
    pool: &[&[u8]],
    leaf: &[u8],
    tweak: impl FnOnce(&mut ValidationOptions),
) -> Result<ValidatedPath, ValidationError> {
    let mut validator = Validator::new(vec![Certificate::from_der(anchor.to_vec()).unwrap()]);
    for der in pool {
        validator.add_certificate(Certificate::from_der(der.to_vec()).unwrap());
    }
    let mut options = ValidationOptions::at(now());
    options.revocation = RevocationPolicy::Off;
    tweak(&mut options);
    validator.validate(&Certificate::from_der(leaf.to_vec()).unwrap(), &options)
}

fn dns(name: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(name).unwrap())
}

fn email(address: &str) -> GeneralName {
    GeneralName::Rfc822Name(Ia5String::new(address).unwrap())
}

fn san(names: &[GeneralName], critical: bool) -> Extension {
    ext::extension(
        oids::EXT_SUBJECT_ALT_NAME,
        critical,
        &SubjectAltName(names.to_vec()),
    )
    .unwrap()
}

fn name_constraints(permitted: &[GeneralName], excluded: &[GeneralName]) -> Extension {
    let subtrees = |names: &[GeneralName]| {
        (!names.is_empty()).then(|| {
            names
                .iter()
                .map(|base| GeneralSubtree {
                    base: base.clone(),
                    minimum: 0,
                    maximum: None,
                })
                .collect()
        })
    };
    ext::extension(
        oids::EXT_NAME_CONSTRAINTS,
        true,
        &NameConstraints {
            permitted_subtrees: subtrees(permitted),
            excluded_subtrees: subtrees(excluded),
        },
    )
    .unwrap()
}

/// A CA under `root` whose certificate carries these name constraints.
fn constrained_ca(root: &Party, permitted: &[GeneralName], excluded: &[GeneralName]) -> Party {
    let mut extensions = ca_extensions();
    extensions.push(name_constraints(permitted, excluded));
    ca_under(root, CA, extensions)
}

fn eku(purposes: &[ObjectIdentifier]) -> Extension {
    ext::extended_key_usage(purposes, false).unwrap()
}

/// A CA's extensions with an extendedKeyUsage of `purposes`.
fn ca_extensions_with_eku(purposes: &[ObjectIdentifier]) -> Vec<Extension> {
    let mut extensions = ca_extensions();
    extensions.push(eku(purposes));
    extensions
}

// --- the trust anchor's certificate (RFC 5937) ---------------------------------------------

#[test]
fn the_anchor_certificates_name_constraints_apply_to_the_path() {
    let mut extensions = ca_extensions();
    extensions.push(name_constraints(&[dns("example.az")], &[]));
    let root = root_with(extensions);
    let inside = leaf_under(&root, vec![san(&[dns("www.example.az")], false)]);
    validate(&root.der, &[], &inside.der, |_| {}).expect("www.example.az is permitted");

    let outside = leaf_under(&root, vec![san(&[dns("www.example.com")], false)]);
    match validate(&root.der, &[], &outside.der, |_| {}) {
        Err(ValidationError::AnchorNameConstraints {
            anchor,
            position,
            subject,
            violation: NameConstraintViolation::NotPermitted { name },
        }) => {
            assert!(anchor.contains("Strict Root"), "{anchor}");
            assert_eq!(position, 0);
            assert!(subject.contains("Strict Leaf"), "{subject}");
            assert!(name.contains("www.example.com"), "{name}");
        }
        other => panic!("expected AnchorNameConstraints, got {other:?}"),
    }
    // They apply whatever the anchor-certificate option says: RFC 5937 §2 makes them inputs.
    assert!(matches!(
        validate(&root.der, &[], &outside.der, |o| {
            o.strictness.check_anchor_certificate = false
        }),
        Err(ValidationError::AnchorNameConstraints { .. })
    ));
}

#[test]
fn an_issuing_ca_trusted_as_anchor_brings_its_name_constraints() {
    let root = root_with(ca_extensions());
    let ca = constrained_ca(&root, &[], &[email("example.com")]);
    let leaf = leaf_under(&ca, vec![san(&[email("someone@example.com")], false)]);
    match validate(&ca.der, &[], &leaf.der, |_| {}) {
        Err(ValidationError::AnchorNameConstraints {
            violation: NameConstraintViolation::Excluded { name },
            ..
        }) => assert!(name.contains("someone@example.com"), "{name}"),
        other => panic!("expected AnchorNameConstraints, got {other:?}"),
    }
}

/// Why the anchor's certificate is refused for `leaf`, after checking that a caller who takes
/// the anchor as a name and a key (RFC 5280 §6.1.1 (d)) accepts the path.
fn anchor_refused(root: &Party, leaf: &Party) -> AnchorProblem {
    validate(&root.der, &[], &leaf.der, |o| {
        o.strictness.check_anchor_certificate = false
    })
    .expect("not checked when the caller opts out");
    match validate(&root.der, &[], &leaf.der, |_| {}) {
        Err(ValidationError::TrustAnchor { anchor, problem }) => {
            assert!(anchor.contains("Strict Root"), "{anchor}");
            problem
        }
        other => panic!("expected TrustAnchor, got {other:?}"),
    }
}

#[test]
fn an_expired_anchor_certificate_is_refused_unless_the_caller_opts_out() {
    let past = Shape {
        serial: vec![1],
        not_before: now() - Duration::days(30),
        not_after: now() - Duration::days(1),
        extensions: ca_extensions(),
    };
    let root = issue(None, ROOT, p256(), past);
    let leaf = leaf_under(&root, Vec::new());
    match anchor_refused(&root, &leaf) {
        AnchorProblem::Expired { not_after, time } => assert!(not_after < time),
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn a_certificate_on_the_path_is_reported_before_its_anchor() {
    // Three days ago neither the root nor the leaf (both valid from yesterday) was valid: the
    // leaf's state is what a signature verifier maps to its verdict.
    let root = root_with(ca_extensions());
    let leaf = leaf_under(&root, Vec::new());
    match validate(&root.der, &[], &leaf.der, |o| {
        o.time = now() - Duration::days(3)
    }) {
        Err(ValidationError::NotYetValid { subject, .. }) => {
            assert!(subject.contains("Strict Leaf"), "{subject}")
        }
        other => panic!("expected the leaf NotYetValid, got {other:?}"),
    }
}

#[test]
fn an_anchor_that_is_not_a_ca_or_may_not_sign_certificates_is_refused() {
    let not_ca = root_with(vec![
        ext::basic_constraints(false, None).unwrap(),
        ext::key_usage(KeyUsages::KeyCertSign.into()).unwrap(),
    ]);
    let no_key_cert_sign = root_with(vec![
        ext::basic_constraints(true, None).unwrap(),
        ext::key_usage(KeyUsages::DigitalSignature.into()).unwrap(),
    ]);
    for (root, expected) in [
        (&not_ca, AnchorProblem::NotCa),
        (&no_key_cert_sign, AnchorProblem::NoKeyCertSign),
    ] {
        let leaf = leaf_under(root, Vec::new());
        assert_eq!(anchor_refused(root, &leaf), expected);
    }
}

#[test]
fn an_anchor_with_an_unknown_critical_extension_is_refused() {
    let unknown = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.17.1");
    let mut extensions = ca_extensions();
    extensions.push(ext::extension(unknown, true, &der::asn1::Null).unwrap());
    let root = root_with(extensions);
    let leaf = leaf_under(&root, Vec::new());
    assert_eq!(
        anchor_refused(&root, &leaf),
        AnchorProblem::UnknownCriticalExtension {
            extensions: vec![unknown]
        }
    );
}

#[test]
fn a_version_1_root_without_extensions_is_still_an_anchor() {
    // Old roots carry no basicConstraints at all: nothing in them says they are no CA.
    let root = root_with(ca_extensions());
    let v1 = resign(&root.der, root.key.as_ref(), |tbs| {
        tbs.version = x509_cert::certificate::Version::V1;
        tbs.extensions = None;
    });
    let leaf = leaf_under(&root, Vec::new());
    validate(&v1, &[], &leaf.der, |_| {}).expect("a v1 root");
}

/// The CA EKU refusal of `leaf` for a TLS server, after checking that the path passes when
/// CA EKUs do not constrain it: (the CA's position, its subject, its EKU, the EKU wanted).
fn refused_for_server(
    anchor: &[u8],
    pool: &[&[u8]],
    leaf: &[u8],
) -> (usize, String, Vec<ObjectIdentifier>, Vec<ObjectIdentifier>) {
    validate(anchor, pool, leaf, |o| {
        o.purpose = Purpose::Server;
        o.strictness.ca_extended_key_usage_constrains_path = false;
    })
    .expect("RFC 5280 alone leaves EKU to the end entity");
    match validate(anchor, pool, leaf, |o| o.purpose = Purpose::Server) {
        Err(ValidationError::CaExtendedKeyUsage {
            position,
            ca,
            ca_usages,
            wanted,
            ..
        }) => (position, ca, ca_usages, wanted),
        other => panic!("expected CaExtendedKeyUsage, got {other:?}"),
    }
}

#[test]
fn the_anchor_certificates_extended_key_usage_constrains_the_path_too() {
    let root = root_with(ca_extensions_with_eku(&[oids::KP_EMAIL_PROTECTION]));
    let leaf = leaf_under(&root, vec![eku(&[oids::KP_SERVER_AUTH])]);
    let (position, ca, _, _) = refused_for_server(&root.der, &[], &leaf.der);
    assert_eq!(position, 1);
    assert!(ca.contains("Strict Root"), "{ca}");
    validate(&root.der, &[], &leaf.der, |o| {
        o.purpose = Purpose::Server;
        o.strictness.check_anchor_certificate = false;
    })
    .expect("an anchor taken as a name and a key has no EKU");
}

// --- the trust anchor's pathLenConstraint and policy extensions (RFC 5937 §2) ---------------

const POLICY_P: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.17.10");
const POLICY_Q: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.17.11");

/// A CA's extensions with basicConstraints pathLenConstraint `path_len`.
fn ca_extensions_with_path_len(path_len: u8) -> Vec<Extension> {
    vec![
        ext::basic_constraints(true, Some(path_len)).unwrap(),
        ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
    ]
}

/// A CA's extensions with `extra` added.
fn ca_extensions_and(extra: Vec<Extension>) -> Vec<Extension> {
    let mut extensions = ca_extensions();
    extensions.extend(extra);
    extensions
}

fn policies(oids: &[ObjectIdentifier]) -> Extension {
    ext::certificate_policies(oids).unwrap()
}

fn policy_constraints(require: Option<u32>, inhibit_mapping: Option<u32>) -> Extension {
    ext::extension(
        oids::EXT_POLICY_CONSTRAINTS,
        true,
        &PolicyConstraints {
            require_explicit_policy: require,
            inhibit_policy_mapping: inhibit_mapping,
        },
    )
    .unwrap()
}

fn inhibit_any_policy(skip: u32) -> Extension {
    ext::extension(oids::EXT_INHIBIT_ANY_POLICY, true, &skip).unwrap()
}

/// The anchor's refusal of the path (after checking that the path passes when the anchor is
/// taken as a name and a key, RFC 5280 §6.1.1 (d)).
fn refused_by_anchor(
    anchor: &Party,
    pool: &[&[u8]],
    leaf: &Party,
    tweak: impl Fn(&mut ValidationOptions),
) -> AnchorProblem {
    validate(&anchor.der, pool, &leaf.der, |o| {
        tweak(o);
        o.strictness.check_anchor_certificate = false;
    })
    .expect("the anchor's constraints do not apply when the caller opts out");
    match validate(&anchor.der, pool, &leaf.der, tweak) {
        Err(ValidationError::TrustAnchor { anchor, problem }) => {
            assert!(anchor.contains("Strict Root"), "{anchor}");
            problem
        }
        other => panic!("expected the anchor's constraint, got {other:?}"),
    }
}

#[test]
fn an_anchor_with_path_len_zero_refuses_an_intermediate_ca() {
    let root = root_with(ca_extensions_with_path_len(0));
    let ca = ca_under(&root, CA, ca_extensions());
    let leaf = leaf_under(&ca, Vec::new());
    match refused_by_anchor(&root, &[&ca.der], &leaf, |_| {}) {
        AnchorProblem::PathLength {
            path_len_constraint,
            position,
            subject,
        } => {
            assert_eq!((path_len_constraint, position), (0, 1));
            assert!(subject.contains("Strict Issuing CA"), "{subject}");
        }
        other => panic!("expected PathLength, got {other:?}"),
    }
    // It may issue end-entity certificates itself.
    let direct = leaf_under(&root, Vec::new());
    validate(&root.der, &[], &direct.der, |_| {}).expect("a leaf under the anchor");
}

#[test]
fn an_anchor_with_path_len_zero_allows_its_own_key_rollover() {
    let root = root_with(ca_extensions_with_path_len(0));
    // The root's new key certified by its old one: self-issued, so no place in the path
    // length (RFC 5280 §6.1.4 (l)).
    let rollover = issue(
        Some(&root),
        ROOT,
        p256(),
        Shape::current(&[4], ca_extensions()),
    );
    let leaf = leaf_under(&rollover, Vec::new());
    let path = validate(&root.der, &[&rollover.der], &leaf.der, |_| {})
        .expect("a self-issued certificate under pathLenConstraint 0");
    assert_eq!(path.chain.len(), 3);
}

#[test]
fn an_anchor_with_path_len_one_allows_one_intermediate_ca_and_no_more() {
    let root = root_with(ca_extensions_with_path_len(1));
    let ca = ca_under(&root, CA, ca_extensions());
    let leaf = leaf_under(&ca, Vec::new());
    validate(&root.der, &[&ca.der], &leaf.der, |_| {}).expect("one intermediate CA");

    let sub = issue(
        Some(&ca),
        "CN=Strict Sub CA,O=imza,C=AZ",
        p256(),
        Shape::current(&[5], ca_extensions()),
    );
    let deep = leaf_under(&sub, Vec::new());
    match refused_by_anchor(&root, &[&ca.der, &sub.der], &deep, |_| {}) {
        AnchorProblem::PathLength {
            path_len_constraint: 1,
            position: 1,
            subject,
        } => assert!(subject.contains("Strict Sub CA"), "{subject}"),
        other => panic!("expected PathLength 1 at the sub CA, got {other:?}"),
    }
}

/// A root asserting `root_policies`, a CA and a leaf asserting P and Q.
fn policy_chain(root_policies: &[ObjectIdentifier]) -> (Party, Party, Party) {
    let root = root_with(ca_extensions_and(vec![policies(root_policies)]));
    let ca = ca_under(
        &root,
        CA,
        ca_extensions_and(vec![policies(&[POLICY_P, POLICY_Q])]),
    );
    let leaf = leaf_under(&ca, vec![policies(&[POLICY_P, POLICY_Q])]);
    (root, ca, leaf)
}

fn explicitly_for(policy: ObjectIdentifier) -> impl Fn(&mut ValidationOptions) {
    move |o: &mut ValidationOptions| {
        o.initial_policy_set = vec![policy];
        o.initial_explicit_policy = true;
    }
}

#[test]
fn an_anchor_asserting_only_policy_p_cannot_validate_a_path_for_policy_q() {
    let (root, ca, leaf) = policy_chain(&[POLICY_P]);
    match refused_by_anchor(&root, &[&ca.der], &leaf, explicitly_for(POLICY_Q)) {
        AnchorProblem::PolicyNotAsserted {
            anchor_policies,
            path_policies,
        } => {
            assert_eq!(anchor_policies, vec![POLICY_P]);
            assert_eq!(path_policies, vec![POLICY_Q]);
        }
        other => panic!("expected PolicyNotAsserted, got {other:?}"),
    }
    let path =
        validate(&root.der, &[&ca.der], &leaf.der, explicitly_for(POLICY_P)).expect("valid for P");
    assert_eq!(path.user_constrained_policy_set, vec![POLICY_P]);
    // Any policy acceptable to the caller: the anchor's set is what the path is valid for.
    let path = validate(&root.der, &[&ca.der], &leaf.der, |_| {}).expect("no policy required");
    assert_eq!(path.user_constrained_policy_set, vec![POLICY_P]);
}

#[test]
fn an_anchor_asserting_any_policy_does_not_narrow_the_policies() {
    let (root, ca, leaf) = policy_chain(&[oids::ANY_POLICY]);
    let path = validate(&root.der, &[&ca.der], &leaf.der, explicitly_for(POLICY_Q))
        .expect("anyPolicy in the anchor changes nothing");
    assert_eq!(path.user_constrained_policy_set, vec![POLICY_Q]);
}

#[test]
fn an_anchor_requiring_explicit_policy_refuses_a_path_without_policies() {
    let root = root_with(ca_extensions_and(vec![policy_constraints(Some(0), None)]));
    let ca = ca_under(&root, CA, ca_extensions());
    let leaf = leaf_under(&ca, Vec::new());
    match refused_by_anchor(&root, &[&ca.der], &leaf, |_| {}) {
        AnchorProblem::ExplicitPolicyRequired {
            require_explicit_policy: 0,
            position: 1,
            subject,
        } => assert!(subject.contains("Strict Issuing CA"), "{subject}"),
        other => panic!("expected ExplicitPolicyRequired at the CA, got {other:?}"),
    }
    // The anchor's skip count is not used (RFC 5937 §2: present, it sets
    // initial-explicit-policy): a skip count of 5 refuses the same path at the same place.
    let root = root_with(ca_extensions_and(vec![policy_constraints(Some(5), None)]));
    let ca = ca_under(&root, CA, ca_extensions());
    let leaf = leaf_under(&ca, Vec::new());
    match refused_by_anchor(&root, &[&ca.der], &leaf, |_| {}) {
        AnchorProblem::ExplicitPolicyRequired {
            require_explicit_policy: 5,
            position: 1,
            ..
        } => {}
        other => panic!("expected ExplicitPolicyRequired at the CA, got {other:?}"),
    }
    // With policies on the path it passes.
    let ca = ca_under(&root, CA, ca_extensions_and(vec![policies(&[POLICY_P])]));
    let leaf = leaf_under(&ca, vec![policies(&[POLICY_P])]);
    validate(&root.der, &[&ca.der], &leaf.der, |_| {}).expect("a policy all the way");
}

#[test]
fn an_anchor_inhibiting_any_policy_refuses_a_path_of_any_policy_when_one_is_required() {
    let root = root_with(ca_extensions_and(vec![inhibit_any_policy(0)]));
    let ca = ca_under(
        &root,
        CA,
        ca_extensions_and(vec![policies(&[oids::ANY_POLICY])]),
    );
    let leaf = leaf_under(&ca, vec![policies(&[oids::ANY_POLICY])]);
    let explicit = |o: &mut ValidationOptions| o.initial_explicit_policy = true;
    match refused_by_anchor(&root, &[&ca.der], &leaf, explicit) {
        AnchorProblem::AnyPolicyInhibited {
            inhibit_any_policy: 0,
            position: 1,
            subject,
        } => assert!(subject.contains("Strict Issuing CA"), "{subject}"),
        other => panic!("expected AnyPolicyInhibited at the CA, got {other:?}"),
    }
    // Without an explicit policy required, a path without a policy is valid.
    let path = validate(&root.der, &[&ca.der], &leaf.der, |_| {}).expect("no policy required");
    assert!(path.user_constrained_policy_set.is_empty());
}

#[test]
fn an_anchor_inhibiting_policy_mapping_refuses_a_path_that_needs_one() {
    let root = root_with(ca_extensions_and(vec![policy_constraints(None, Some(0))]));
    let mapping = ext::extension(
        oids::EXT_POLICY_MAPPINGS,
        true,
        &x509_cert::ext::pkix::PolicyMappings(vec![x509_cert::ext::pkix::PolicyMapping {
            issuer_domain_policy: POLICY_P,
            subject_domain_policy: POLICY_Q,
        }]),
    )
    .unwrap();
    let ca = ca_under(
        &root,
        CA,
        ca_extensions_and(vec![policies(&[POLICY_P]), mapping]),
    );
    let sub = issue(
        Some(&ca),
        "CN=Strict Sub CA,O=imza,C=AZ",
        p256(),
        Shape::current(&[5], ca_extensions_and(vec![policies(&[POLICY_Q])])),
    );
    let leaf = leaf_under(&sub, vec![policies(&[POLICY_Q])]);
    let explicit = |o: &mut ValidationOptions| o.initial_explicit_policy = true;
    match refused_by_anchor(&root, &[&ca.der, &sub.der], &leaf, explicit) {
        AnchorProblem::PolicyMappingInhibited {
            inhibit_policy_mapping: 0,
            position: 2,
            subject,
        } => assert!(subject.contains("Strict Issuing CA"), "{subject}"),
        other => panic!("expected PolicyMappingInhibited at the CA, got {other:?}"),
    }
}

// --- extendedKeyUsage on CA certificates ---------------------------------------------------

#[test]
fn a_ca_limited_to_email_protection_cannot_issue_a_tls_server_certificate() {
    let (root, ca) = root_and_ca(ca_extensions_with_eku(&[oids::KP_EMAIL_PROTECTION]));
    let leaf = leaf_under(
        &ca,
        vec![eku(&[oids::KP_SERVER_AUTH, oids::KP_EMAIL_PROTECTION])],
    );
    let refused = refused_for_server(&root.der, &[&ca.der], &leaf.der);
    assert_eq!(refused.0, 1);
    assert!(refused.1.contains("Strict Issuing CA"), "{}", refused.1);
    assert_eq!(refused.2, vec![oids::KP_EMAIL_PROTECTION]);
    assert_eq!(refused.3, vec![oids::KP_SERVER_AUTH]);
    // What the CA may certify, it may: e-mail protection serves signing.
    validate(&root.der, &[&ca.der], &leaf.der, |o| {
        o.purpose = Purpose::Sign
    })
    .expect("the CA's EKU allows signing");
}

#[test]
fn any_extended_key_usage_or_none_on_the_ca_does_not_constrain_the_path() {
    for extensions in [ca_extensions_with_eku(&[oids::KP_ANY]), ca_extensions()] {
        let (root, ca) = root_and_ca(extensions);
        let leaf = leaf_under(&ca, vec![eku(&[oids::KP_SERVER_AUTH])]);
        validate(&root.der, &[&ca.der], &leaf.der, |o| {
            o.purpose = Purpose::Server
        })
        .expect("no constraint from the CA");
    }
}

// --- RFC 5280's rules for conforming CAs -----------------------------------------------------

#[test]
fn certificates_a_conforming_ca_could_not_issue_are_refused_with_the_rule() {
    let (root, ca) = root_and_ca(ca_extensions());
    let leaf = leaf_under(&ca, Vec::new());
    let by_ca = |edit: &dyn Fn(&mut x509_cert::TbsCertificate)| {
        resign(&leaf.der, ca.key.as_ref(), |tbs| edit(tbs))
    };
    let by_root = |edit: &dyn Fn(&mut x509_cert::TbsCertificate)| {
        resign(&ca.der, root.key.as_ref(), |tbs| edit(tbs))
    };
    let push = |tbs: &mut x509_cert::TbsCertificate, extension: Extension| {
        tbs.extensions.get_or_insert_with(Vec::new).push(extension)
    };
    let serial = |bytes: &[u8]| {
        let mut encoded = vec![0x02, bytes.len() as u8];
        encoded.extend_from_slice(bytes);
        SerialNumber::from_der(&encoded).unwrap()
    };
    // (the altered certificate, which of the two it is, the rule it breaks)
    let cases: Vec<(&str, Vec<u8>, bool, Rfc5280Violation)> = vec![
        (
            "a leaf without authorityKeyIdentifier",
            by_ca(&|tbs| drop_extension(tbs, oids::EXT_AUTHORITY_KEY_ID)),
            true,
            Rfc5280Violation::MissingAuthorityKeyIdentifier,
        ),
        (
            "a CA without subjectKeyIdentifier",
            by_root(&|tbs| drop_extension(tbs, oids::EXT_SUBJECT_KEY_ID)),
            false,
            Rfc5280Violation::MissingSubjectKeyIdentifier,
        ),
        (
            "a critical authorityKeyIdentifier",
            by_ca(&|tbs| set_critical(tbs, oids::EXT_AUTHORITY_KEY_ID, true)),
            true,
            Rfc5280Violation::MustNotBeCritical {
                extension: oids::EXT_AUTHORITY_KEY_ID,
            },
        ),
        (
            "a critical subjectKeyIdentifier",
            by_root(&|tbs| set_critical(tbs, oids::EXT_SUBJECT_KEY_ID, true)),
            false,
            Rfc5280Violation::MustNotBeCritical {
                extension: oids::EXT_SUBJECT_KEY_ID,
            },
        ),
        (
            "a critical authorityInfoAccess",
            by_ca(&|tbs| {
                let mut aia =
                    ext::authority_info_access(Some("http://ocsp.example.az"), None).unwrap();
                aia.critical = true;
                push(tbs, aia)
            }),
            true,
            Rfc5280Violation::MustNotBeCritical {
                extension: oids::EXT_AUTHORITY_INFO_ACCESS,
            },
        ),
        (
            "an empty extendedKeyUsage",
            by_ca(&|tbs| {
                push(
                    tbs,
                    ext::extension(
                        oids::EXT_EXTENDED_KEY_USAGE,
                        false,
                        &ExtendedKeyUsage(Vec::new()),
                    )
                    .unwrap(),
                )
            }),
            true,
            Rfc5280Violation::EmptyExtendedKeyUsage,
        ),
        (
            "name constraints in an end-entity certificate",
            by_ca(&|tbs| push(tbs, name_constraints(&[dns("example.az")], &[]))),
            true,
            Rfc5280Violation::NameConstraintsInEndEntity,
        ),
        (
            "a non-critical policyConstraints",
            by_root(&|tbs| {
                push(
                    tbs,
                    ext::extension(
                        oids::EXT_POLICY_CONSTRAINTS,
                        false,
                        &PolicyConstraints {
                            require_explicit_policy: Some(4),
                            inhibit_policy_mapping: None,
                        },
                    )
                    .unwrap(),
                )
            }),
            false,
            Rfc5280Violation::NonCriticalPolicyConstraints,
        ),
        (
            "an empty subject with a non-critical subjectAltName",
            by_ca(&|tbs| {
                tbs.subject = x509_cert::name::RdnSequence(Vec::new());
                push(tbs, san(&[dns("leaf.example.az")], false))
            }),
            true,
            Rfc5280Violation::NonCriticalSanWithEmptySubject,
        ),
        (
            "a leaf asserting keyCertSign",
            by_ca(&|tbs| {
                drop_extension(tbs, oids::EXT_KEY_USAGE);
                push(
                    tbs,
                    ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign).unwrap(),
                )
            }),
            true,
            Rfc5280Violation::KeyCertSignWithoutCa,
        ),
        (
            "serial number zero",
            by_ca(&|tbs| tbs.serial_number = serial(&[0x00])),
            true,
            Rfc5280Violation::NonPositiveSerial { serial: vec![0x00] },
        ),
        (
            "a negative serial number",
            by_ca(&|tbs| tbs.serial_number = serial(&[0xff, 0x10])),
            true,
            Rfc5280Violation::NonPositiveSerial {
                serial: vec![0xff, 0x10],
            },
        ),
    ];
    for (what, altered, is_leaf, expected) in cases {
        let (ca_der, leaf_der) = if is_leaf {
            (ca.der.clone(), altered)
        } else {
            (altered, leaf.der.clone())
        };
        match validate(&root.der, &[&ca_der], &leaf_der, |_| {}) {
            Err(ValidationError::NonConforming {
                position,
                subject,
                violation,
            }) => {
                assert_eq!(violation, expected, "{what}");
                assert_eq!(position, if is_leaf { 0 } else { 1 }, "{what}");
                let named = if is_leaf { "" } else { "Strict Issuing CA" };
                assert!(subject.contains(named), "{what}: {subject}");
            }
            other => panic!("{what}: expected NonConforming {expected:?}, got {other:?}"),
        }
        validate(&root.der, &[&ca_der], &leaf_der, |o| {
            o.strictness.require_rfc5280_conformance = false
        })
        .unwrap_or_else(|e| panic!("{what}: accepted as legacy, but: {e}"));
    }
}

#[test]
fn an_empty_subject_with_a_critical_subject_alt_name_conforms() {
    let root = root_with(ca_extensions());
    let leaf = leaf_under(&root, Vec::new());
    let altered = resign(&leaf.der, root.key.as_ref(), |tbs| {
        tbs.subject = x509_cert::name::RdnSequence(Vec::new());
        tbs.extensions
            .get_or_insert_with(Vec::new)
            .push(san(&[dns("leaf.example.az")], true));
    });
    validate(&root.der, &[], &altered, |_| {}).expect("RFC 5280 §4.2.1.6 followed");
}

#[test]
fn a_self_signed_anchor_needs_no_authority_key_identifier() {
    let root = root_with(ca_extensions());
    let bare = resign(&root.der, root.key.as_ref(), |tbs| {
        drop_extension(tbs, oids::EXT_AUTHORITY_KEY_ID)
    });
    let leaf = leaf_under(&root, Vec::new());
    validate(&bare, &[], &leaf.der, |_| {}).expect("§4.2.1.1: a self-signed CA may omit it");
}

#[test]
fn a_crl_without_a_number_or_with_a_critical_one_is_refused() {
    let chain = ThreeChain::new(p256);
    let number_less = resign_crl(chain.ca_crl.der(), chain.ca.key.as_ref(), |tbs| {
        if let Some(extensions) = tbs.crl_extensions.as_mut() {
            extensions.retain(|e| e.extn_id != oids::EXT_CRL_NUMBER);
        }
    });
    let critical_number = resign_crl(chain.ca_crl.der(), chain.ca.key.as_ref(), |tbs| {
        for e in tbs.crl_extensions.iter_mut().flatten() {
            if e.extn_id == oids::EXT_CRL_NUMBER {
                e.critical = true;
            }
        }
    });
    for (der, expected) in [
        (number_less, CrlViolation::MissingCrlNumber),
        (critical_number, CrlViolation::CriticalCrlNumber),
    ] {
        let mut validator = Validator::new(vec![chain.root.certificate()]);
        validator.add_certificate(chain.ca.certificate());
        validator.add_crl(chain.root_crl.clone());
        validator.add_crl(imza_validation::Crl::from_der(der).unwrap());
        let mut options = ValidationOptions::at(now());
        match validator.validate(&chain.leaf.certificate(), &options) {
            Err(ValidationError::NonConformingCrl { issuer, violation }) => {
                assert_eq!(violation, expected);
                assert!(issuer.contains("Test Issuing CA"), "{issuer}");
            }
            other => panic!("expected NonConformingCrl {expected:?}, got {other:?}"),
        }
        options.strictness.require_rfc5280_conformance = false;
        validator
            .validate(&chain.leaf.certificate(), &options)
            .expect("a legacy CRL accepted when asked");
    }
}

#[test]
fn a_crl_that_does_not_verify_is_skipped_before_its_conformance_is_judged() {
    // Anyone can put a CRL in the pool: only one its issuer signed can fail the path.
    let chain = ThreeChain::new(p256);
    let forged = resign_crl(chain.ca_crl.der(), p256().as_ref(), |tbs| {
        if let Some(extensions) = tbs.crl_extensions.as_mut() {
            extensions.retain(|e| e.extn_id != oids::EXT_CRL_NUMBER);
        }
    });
    let mut validator = chain.validator();
    validator.add_crl(imza_validation::Crl::from_der(forged).unwrap());
    validator
        .validate(&chain.leaf.certificate(), &ValidationOptions::at(now()))
        .expect("the good CRL answers; the forged one is not the issuer's");
}

// --- wildcards and e-mail addresses under name constraints ----------------------------------

#[test]
fn a_wildcard_is_checked_against_excluded_subtrees_as_the_names_it_stands_for() {
    let root = root_with(ca_extensions());
    let ca = constrained_ca(&root, &[], &[dns("a.example.com")]);
    let wildcard = leaf_under(&ca, vec![san(&[dns("*.example.com")], false)]);
    match validate(&root.der, &[&ca.der], &wildcard.der, |_| {}) {
        Err(ValidationError::NameConstraint {
            position,
            violation: NameConstraintViolation::WildcardExcluded { name, excluded },
            ..
        }) => {
            assert_eq!(position, 0);
            assert_eq!(name, "*.example.com");
            assert_eq!(excluded, "a.example.com");
        }
        other => panic!("expected NameConstraint WildcardExcluded, got {other:?}"),
    }
    // A wildcard one level deeper, or elsewhere, stands for no excluded name.
    for name in ["*.b.example.com", "*.example.org", "b.example.com"] {
        let leaf = leaf_under(&ca, vec![san(&[dns(name)], false)]);
        validate(&root.der, &[&ca.der], &leaf.der, |_| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_wildcard_is_permitted_only_when_every_name_it_stands_for_is() {
    let root = root_with(ca_extensions());
    let ca = constrained_ca(&root, &[dns("a.example.com")], &[]);
    let wildcard = leaf_under(&ca, vec![san(&[dns("*.example.com")], false)]);
    assert!(matches!(
        validate(&root.der, &[&ca.der], &wildcard.der, |_| {}),
        Err(ValidationError::Constraint {
            violation: ConstraintViolation::Name(NameConstraintViolation::NotPermitted { .. }),
            ..
        })
    ));
    let below = leaf_under(&ca, vec![san(&[dns("*.a.example.com")], false)]);
    validate(&root.der, &[&ca.der], &below.der, |_| {}).expect("within a.example.com");
}

#[test]
fn malformed_email_addresses_are_refused_under_rfc822_constraints() {
    let root = root_with(ca_extensions());
    let excluding = constrained_ca(&root, &[], &[email("example.com")]);
    let permitting = constrained_ca(&root, &[email("example.com")], &[]);
    for (ca, address) in [
        (&excluding, "nobody"),
        (&excluding, "user@example.com@other.org"),
        (&permitting, "a b@example.com"),
        (&permitting, "user@"),
    ] {
        let leaf = leaf_under(ca, vec![san(&[email(address)], false)]);
        match validate(&root.der, &[&ca.der], &leaf.der, |_| {}) {
            Err(ValidationError::NameConstraint {
                violation: NameConstraintViolation::MalformedEmail { address: got },
                ..
            }) => assert_eq!(got, address),
            other => panic!("{address:?}: expected MalformedEmail, got {other:?}"),
        }
    }
    let fine = leaf_under(&excluding, vec![san(&[email("user@other.org")], false)]);
    validate(&root.der, &[&excluding.der], &fine.der, |_| {}).expect("a mailbox outside");
    // Without rfc822Name constraints an address is not judged here.
    let unconstrained = leaf_under(&root, vec![san(&[email("nobody")], false)]);
    validate(&root.der, &[], &unconstrained.der, |_| {}).expect("no constraint applies");
}

// --- self-issued certificates and the path length (§6.1.4 (l)) ------------------------------

#[test]
fn a_self_issued_intermediate_takes_no_place_in_the_path_length() {
    let root = root_with(ca_extensions());
    let path_len_zero = || {
        vec![
            ext::basic_constraints(true, Some(0)).unwrap(),
            ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
        ]
    };
    let ca = ca_under(&root, CA, path_len_zero());
    // The CA's new key, certified by its old one (a key rollover): subject = issuer.
    let rollover = issue(Some(&ca), CA, p256(), Shape::current(&[4], ca_extensions()));
    let leaf = leaf_under(&rollover, Vec::new());
    let path = validate(&root.der, &[&ca.der, &rollover.der], &leaf.der, |_| {})
        .expect("pathLenConstraint 0 allows a self-issued certificate below");
    assert_eq!(path.chain.len(), 4);
    // A caller's maximum number of intermediates does not count it either.
    validate(&root.der, &[&ca.der, &rollover.der], &leaf.der, |o| {
        o.max_intermediates = Some(1)
    })
    .expect("one intermediate beside the self-issued one");
    match validate(&root.der, &[&ca.der, &rollover.der], &leaf.der, |o| {
        o.max_intermediates = Some(0)
    }) {
        Err(ValidationError::Constraint {
            violation: ConstraintViolation::TooManyIntermediates { max: 0 },
            ..
        }) => {}
        other => panic!("expected the maximum number of intermediates, got {other:?}"),
    }

    // Another CA in its place is one intermediate too many.
    let other = issue(
        Some(&ca),
        "CN=Strict Sub CA,O=imza,C=AZ",
        p256(),
        Shape::current(&[5], ca_extensions()),
    );
    let leaf = leaf_under(&other, Vec::new());
    match validate(&root.der, &[&ca.der, &other.der], &leaf.der, |_| {}) {
        Err(ValidationError::Constraint {
            violation: ConstraintViolation::PathLength,
            subject,
        }) => assert!(subject.contains("Strict Sub CA"), "{subject}"),
        other => panic!("expected the path length constraint, got {other:?}"),
    }
}

// --- RSA key size -----------------------------------------------------------------------------

fn rsa(bits: u32) -> Arc<dyn SigningKey> {
    Arc::new(RsaPssKey::with_modulus_bits(bits))
}

#[test]
fn rsa_keys_below_2048_bits_are_refused_by_default_wherever_they_are() {
    let root = root_with(ca_extensions());
    let ca = ca_under(&root, CA, ca_extensions());
    let weak_leaf = issue(
        Some(&ca),
        LEAF,
        rsa(1024),
        Shape::current(&[3], leaf_extensions()),
    );
    let weak_ca = issue(
        Some(&root),
        CA,
        rsa(1024),
        Shape::current(&[2], ca_extensions()),
    );
    let under_weak_ca = leaf_under(&weak_ca, Vec::new());
    let weak_root = issue(None, ROOT, rsa(1024), Shape::current(&[1], ca_extensions()));
    let under_weak_root = leaf_under(&weak_root, Vec::new());
    // (anchor, the intermediate if any, leaf, where the weak key is)
    let cases = [
        (&root.der, Some(&ca.der), &weak_leaf.der, 0),
        (&root.der, Some(&weak_ca.der), &under_weak_ca.der, 1),
        (&weak_root.der, None, &under_weak_root.der, 1),
    ];
    for (anchor, ca, leaf, weak_at) in cases {
        let pool: Vec<&[u8]> = ca.map(Vec::as_slice).into_iter().collect();
        match validate(anchor, &pool, leaf, |_| {}) {
            Err(ValidationError::WeakRsaKey {
                position,
                bits,
                minimum,
                ..
            }) => {
                assert_eq!((position, bits, minimum), (weak_at, 1024, 2048));
            }
            other => panic!("expected WeakRsaKey at {weak_at}, got {other:?}"),
        }
        validate(anchor, &pool, leaf, |o| {
            o.strictness.min_rsa_modulus_bits = 1024
        })
        .expect("1024 bits allowed when asked");
    }
    // 2048 bits pass.
    let leaf = issue(
        Some(&ca),
        LEAF,
        rsa(2048),
        Shape::current(&[3], leaf_extensions()),
    );
    validate(&root.der, &[&ca.der], &leaf.der, |_| {}).expect("RSA-2048");
}

/// A good OCSP response for `chain`'s leaf from imza's responder, signed by a delegated
/// responder (issued by the leaf's CA, id-kp-OCSPSigning) with `responder_key`.
fn delegated_ocsp_response(chain: &ThreeChain, responder_key: Arc<dyn SigningKey>) -> Vec<u8> {
    use der::Encode;
    use x509_ocsp::{OcspRequest, Request, TbsRequest};
    let responder = issue(
        Some(&chain.ca),
        "CN=Strict OCSP Responder,O=imza,C=AZ",
        Arc::clone(&responder_key),
        Shape::current(&[0x7e], imza_testdata::pki::ocsp_responder_extensions()),
    );
    let served = imza_ocsp::ServedCa {
        issuer: imza_ocsp::IssuerId::new("strict"),
        ca_certificate: chain.ca.der.clone(),
        responder_certificate: responder.der,
        responder_key,
    };
    let service =
        imza_ocsp::Responder::new(vec![served], imza_ocsp::ResponderConfig::default()).unwrap();
    let leaf = chain.leaf.certificate();
    let ca = x509_cert::Certificate::from_der(&chain.ca.der).unwrap();
    let cert_id = imza_ocsp::cert_id::cert_id(
        &ca,
        &leaf.inner().tbs_certificate.serial_number,
        imza_ocsp::CertIdHash::Sha1,
    )
    .unwrap();
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    let statuses = imza_testdata::ocsp::Statuses::default();
    statuses.set(leaf.serial(), imza_ocsp::CertStatusInfo::Good);
    let answer = service.respond(&request.to_der().unwrap(), now(), &statuses);
    assert_eq!(answer.status, imza_ocsp::ResponseStatus::Successful);
    answer.der
}

#[test]
fn a_delegated_ocsp_responder_with_a_short_rsa_key_settles_nothing_by_default() {
    let chain = ThreeChain::new(p256);
    let validator = |response: Vec<u8>| {
        // The CA's status from the root's CRL; the leaf's from the OCSP response only.
        let mut validator = Validator::new(vec![chain.root.certificate()]);
        validator.add_certificate(chain.ca.certificate());
        validator.add_crl(chain.root_crl.clone());
        validator.add_ocsp_response(response);
        validator
    };
    let options = ValidationOptions::at(now());
    let weak = validator(delegated_ocsp_response(&chain, rsa(1024)));
    match weak.validate(&chain.leaf.certificate(), &options) {
        Err(ValidationError::WeakOcspResponderKey {
            subject,
            responder,
            bits,
            minimum,
        }) => {
            assert!(subject.contains("Test Signer"), "{subject}");
            assert!(responder.contains("Strict OCSP Responder"), "{responder}");
            assert_eq!((bits, minimum), (1024, 2048));
        }
        other => panic!("expected WeakOcspResponderKey, got {other:?}"),
    }
    let mut lowered = options.clone();
    lowered.strictness.min_rsa_modulus_bits = 1024;
    let path = weak
        .validate(&chain.leaf.certificate(), &lowered)
        .expect("1024 bits allowed when asked");
    assert!(matches!(
        path.revocation.first().map(|r| &r.evidence),
        Some(Some(imza_validation::RevocationEvidence::Ocsp { .. }))
    ));
    // Another source settles the status: the weak response is only a note.
    let mut with_crl = validator(delegated_ocsp_response(&chain, rsa(1024)));
    with_crl.add_crl(chain.ca_crl.clone());
    with_crl
        .validate(&chain.leaf.certificate(), &options)
        .expect("the CA's CRL settles it");
    validator(delegated_ocsp_response(&chain, rsa(2048)))
        .validate(&chain.leaf.certificate(), &options)
        .expect("an RSA-2048 responder");
}

#[test]
fn the_strict_checks_are_the_default() {
    let options = ValidationOptions::at(now());
    assert!(options.strictness.check_anchor_certificate);
    assert!(options.strictness.ca_extended_key_usage_constrains_path);
    assert!(options.strictness.require_rfc5280_conformance);
    assert_eq!(options.strictness.min_rsa_modulus_bits, 2048);
    // The project's own test PKI passes them all.
    let chain = ThreeChain::new(p256);
    chain
        .validator()
        .validate(&chain.leaf.certificate(), &options)
        .expect("imza's test PKI conforms");
}
