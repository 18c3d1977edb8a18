//! The validator on PKIs made for the test: key types PKITS does not use (P-256, Ed25519,
//! RSA-PSS), revocation dated after the validation time, the error of the best candidate,
//! trust anchors that are not self-signed, shared signature caches, and hostile pools that
//! must end in a budget error.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{
    ca_extensions, crl, cross_signed_mesh, issue, leaf_extensions, p256, Ed25519Key, RsaPssKey,
    Shape, ThreeChain,
};
use imza_core::crl::RevokedEntry;
use imza_core::SigningKey;
use imza_validation::{
    Budget, BudgetLimit, Certificate, ConstraintViolation, Purpose, PurposeProblem,
    RevocationEvidence, RevocationPolicy, RevocationState, SignatureCache, ValidationError,
    ValidationOptions, Validator,
};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::CrlReason;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn assert_valid_chain_of_three(chain: &ThreeChain) {
    let path = chain
        .validator()
        .validate(&chain.leaf.certificate(), &ValidationOptions::at(now()))
        .unwrap_or_else(|e| panic!("the chain must validate: {e}"));
    assert_eq!(path.chain.len(), 3);
    assert_eq!(path.chain[0].der(), chain.leaf.der.as_slice());
    assert_eq!(path.chain[1].der(), chain.ca.der.as_slice());
    assert_eq!(path.chain[2].der(), chain.root.der.as_slice());
    assert_eq!(path.revocation.len(), 2);
    for status in &path.revocation {
        assert_eq!(
            status.state,
            RevocationState::Good {
                revoked_later: None
            },
            "{}",
            status.subject
        );
    }
    // The leaf's finding rests on the issuing CA's CRL, the CA's on the root's.
    assert_eq!(
        path.revocation[0]
            .evidence
            .as_ref()
            .and_then(|e| e.der().map(<[u8]>::to_vec)),
        Some(chain.ca_crl.der().to_vec())
    );
    assert_eq!(
        path.revocation[1]
            .evidence
            .as_ref()
            .and_then(|e| e.der().map(<[u8]>::to_vec)),
        Some(chain.root_crl.der().to_vec())
    );
    assert_eq!(path.supporting_evidence.len(), 2);
}

#[test]
fn validators_and_caches_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Validator>();
    assert_send_sync::<SignatureCache>();
    assert_send_sync::<imza_validation::ValidatedPath>();
}

#[test]
fn p256_chain_validates_with_crls_as_evidence() {
    assert_valid_chain_of_three(&ThreeChain::new(p256));
}

#[test]
fn ed25519_chain_validates_with_ed25519_signed_crls() {
    assert_valid_chain_of_three(&ThreeChain::new(|| {
        Arc::new(Ed25519Key::generate()) as Arc<dyn SigningKey>
    }));
}

#[test]
fn rsa_pss_chain_validates_with_pss_signed_crls() {
    assert_valid_chain_of_three(&ThreeChain::new(|| {
        Arc::new(RsaPssKey::generate()) as Arc<dyn SigningKey>
    }));
}

#[test]
fn a_flipped_byte_in_the_leaf_signature_finds_no_path() {
    let chain = ThreeChain::new(p256);
    let mut der = chain.leaf.der.clone();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let leaf = Certificate::from_der(der).unwrap();
    match chain
        .validator()
        .validate(&leaf, &ValidationOptions::at(now()))
    {
        Err(ValidationError::NoPathFound { detail }) => {
            assert!(detail.contains("does not verify"), "{detail}")
        }
        other => panic!("expected NoPathFound, got {other:?}"),
    }
}

#[test]
fn revocation_after_the_validation_time_is_good_with_the_date() {
    let chain = ThreeChain::new(p256);
    let revoked_at = now() - Duration::hours(1);
    let ca_crl = crl(
        &chain.ca,
        now() - Duration::minutes(1),
        &[RevokedEntry {
            serial: vec![3],
            revoked_at,
            reason: Some(CrlReason::KeyCompromise),
            invalidity_date: None,
        }],
    );
    let mut validator = Validator::new(vec![chain.root.certificate()]);
    validator.add_certificate(chain.ca.certificate());
    validator.add_crl(chain.root_crl.clone());
    validator.add_crl(ca_crl);
    let leaf = chain.leaf.certificate();

    // Proof of existence two hours ago: the CRL (issued later) speaks about that time too,
    // and the revocation came after it.
    let earlier = ValidationOptions::at(now() - Duration::hours(2));
    let path = validator
        .validate(&leaf, &earlier)
        .expect("valid before revocation");
    match &path.revocation[0].state {
        RevocationState::Good {
            revoked_later: Some(at),
        } => assert_eq!(at.unix_timestamp(), revoked_at.unix_timestamp()),
        other => panic!("expected Good with revoked_later, got {other:?}"),
    }

    // Now: revoked.
    match validator.validate(&leaf, &ValidationOptions::at(now())) {
        Err(ValidationError::Revoked {
            subject, reason, ..
        }) => {
            assert!(subject.contains("Test Signer"), "{subject}");
            assert_eq!(reason, Some(x509_cert::ext::pkix::CrlReason::KeyCompromise));
        }
        other => panic!("expected Revoked, got {other:?}"),
    }
}

#[test]
fn missing_crl_fails_when_required_and_is_reported_under_best_effort() {
    let chain = ThreeChain::new(p256);
    let mut validator = Validator::new(vec![chain.root.certificate()]);
    validator.add_certificate(chain.ca.certificate());
    validator.add_crl(chain.root_crl.clone());
    let leaf = chain.leaf.certificate();
    match validator.validate(&leaf, &ValidationOptions::at(now())) {
        Err(ValidationError::RevocationUnknown { subject, detail }) => {
            assert!(subject.contains("Test Signer"), "{subject}");
            assert!(detail.contains("no CRL"), "{detail}");
        }
        other => panic!("expected RevocationUnknown, got {other:?}"),
    }
    let mut best_effort = ValidationOptions::at(now());
    best_effort.revocation = RevocationPolicy::BestEffort;
    let path = validator
        .validate(&leaf, &best_effort)
        .expect("best effort passes");
    assert!(matches!(
        path.revocation[0].state,
        RevocationState::NotChecked { .. }
    ));
    assert!(matches!(
        path.revocation[1].state,
        RevocationState::Good { .. }
    ));
    assert!(matches!(
        path.revocation[1].evidence,
        Some(RevocationEvidence::Crl { .. })
    ));
}

#[test]
fn an_expired_intermediate_is_reported_as_expired_not_as_no_path() {
    let root = issue(
        None,
        "CN=Expiry Root,O=imza,C=AZ",
        p256(),
        Shape::current(&[1], ca_extensions()),
    );
    let expired = Shape {
        serial: vec![2],
        not_before: now() - Duration::days(30),
        not_after: now() - Duration::days(2),
        extensions: ca_extensions(),
    };
    let ca = issue(Some(&root), "CN=Expired CA,O=imza,C=AZ", p256(), expired);
    let leaf = issue(
        Some(&ca),
        "CN=Expiry Leaf,O=imza,C=AZ",
        p256(),
        Shape::current(&[3], leaf_extensions()),
    );
    let mut validator = Validator::new(vec![root.certificate()]);
    validator.add_certificate(ca.certificate());
    let mut options = ValidationOptions::at(now());
    options.revocation = RevocationPolicy::Off;
    match validator.validate(&leaf.certificate(), &options) {
        Err(ValidationError::Expired { subject, .. }) => {
            assert!(subject.contains("Expired CA"), "{subject}")
        }
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn any_certificate_can_be_the_trust_anchor() {
    let chain = ThreeChain::new(p256);
    let mut validator = Validator::new(vec![chain.ca.certificate()]);
    validator.add_crl(chain.ca_crl.clone());
    let path = validator
        .validate(&chain.leaf.certificate(), &ValidationOptions::at(now()))
        .expect("the issuing CA as anchor");
    assert_eq!(path.chain.len(), 2);
    // The anchor itself validates as a path of one.
    let path = validator
        .validate(&chain.ca.certificate(), &ValidationOptions::at(now()))
        .expect("the anchor itself");
    assert_eq!(path.chain.len(), 1);
    assert!(path.revocation.is_empty());
}

#[test]
fn purpose_is_checked_on_the_target() {
    let chain = ThreeChain::new(p256);
    let mut options = ValidationOptions::at(now());
    options.purpose = Purpose::TimeStamping;
    match chain
        .validator()
        .validate(&chain.leaf.certificate(), &options)
    {
        Err(
            e @ ValidationError::Purpose {
                problem:
                    PurposeProblem::NoExtendedKeyUsage { .. } | PurposeProblem::TimeStampingUsage { .. },
                ..
            },
        ) => assert!(e.to_string().contains("timeStamping"), "{e}"),
        other => panic!("expected Purpose, got {other:?}"),
    }
    options.purpose = Purpose::Sign;
    chain
        .validator()
        .validate(&chain.leaf.certificate(), &options)
        .expect("nonRepudiation serves signing");
}

#[test]
fn max_intermediates_limits_the_path() {
    let chain = ThreeChain::new(p256);
    let mut options = ValidationOptions::at(now());
    options.max_intermediates = Some(0);
    match chain
        .validator()
        .validate(&chain.leaf.certificate(), &options)
    {
        Err(
            e @ ValidationError::Constraint {
                violation: ConstraintViolation::TooManyIntermediates { max: 0 },
                ..
            },
        ) => assert!(e.to_string().contains("at most 0 intermediate"), "{e}"),
        other => panic!("expected Constraint, got {other:?}"),
    }
    options.max_intermediates = Some(1);
    chain
        .validator()
        .validate(&chain.leaf.certificate(), &options)
        .expect("one intermediate allowed");
}

#[test]
fn validators_share_one_signature_cache() {
    let chain = ThreeChain::new(p256);
    let cache = Arc::new(SignatureCache::new(1024));
    let first = chain.validator().with_signature_cache(Arc::clone(&cache));
    first
        .validate(&chain.leaf.certificate(), &ValidationOptions::at(now()))
        .unwrap();
    let after_first = cache.len();
    // Two certificate signatures and two CRL signatures.
    assert_eq!(after_first, 4);
    let second = chain.validator().with_signature_cache(Arc::clone(&cache));
    second
        .validate(&chain.leaf.certificate(), &ValidationOptions::at(now()))
        .unwrap();
    assert_eq!(
        cache.len(),
        after_first,
        "the second validator found them all cached"
    );
    // A bounded cache keeps no more than its capacity.
    let tiny = Arc::new(SignatureCache::new(1));
    chain
        .validator()
        .with_signature_cache(Arc::clone(&tiny))
        .validate(&chain.leaf.certificate(), &ValidationOptions::at(now()))
        .unwrap();
    assert_eq!(tiny.len(), 1);
}

#[test]
fn a_cross_signed_mesh_ends_in_budget_exceeded_with_the_reason() {
    // 32 CAs of one name, each certified by the 31 others: 992 certificates.
    let (pool, leaf) = cross_signed_mesh(32);
    let unrelated_root = issue(
        None,
        "CN=Mesh Root,O=imza,C=AZ",
        p256(),
        Shape::current(&[1], ca_extensions()),
    );
    let mut validator = Validator::new(vec![unrelated_root.certificate()]);
    for der in pool {
        validator.add_certificate(Certificate::from_der(der).unwrap());
    }
    let options = ValidationOptions::at(now());
    match validator.validate(&leaf.certificate(), &options) {
        Err(ValidationError::BudgetExceeded {
            limit: BudgetLimit::SignatureChecks { limit: 200 },
            signature_checks: 200,
            ..
        }) => {}
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    // A smaller budget stops sooner, with its own numbers.
    let mut small = options.clone();
    small.budget = Budget {
        signature_checks: 10,
        ..Budget::default()
    };
    match validator.validate(&leaf.certificate(), &small) {
        Err(
            e @ ValidationError::BudgetExceeded {
                limit: BudgetLimit::SignatureChecks { limit: 10 },
                signature_checks: 10,
                ..
            },
        ) => assert!(
            e.to_string().contains("limit of 10 signature checks"),
            "{e}"
        ),
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
}

#[test]
fn a_mesh_reaching_the_anchor_only_deep_down_hits_the_depth_limit() {
    // A chain of 15 CAs under a root: longer than the default depth of 10.
    let root = issue(
        None,
        "CN=Deep Root,O=imza,C=AZ",
        p256(),
        Shape::current(&[1], ca_extensions()),
    );
    let mut validator = Validator::new(vec![root.certificate()]);
    let mut issuer = root;
    for i in 0..15u8 {
        let ca = issue(
            Some(&issuer),
            &format!("CN=Deep CA {i},O=imza,C=AZ"),
            p256(),
            Shape::current(&[0x20 + i], ca_extensions()),
        );
        validator.add_certificate(ca.certificate());
        issuer = ca;
    }
    let leaf = issue(
        Some(&issuer),
        "CN=Deep Leaf,O=imza,C=AZ",
        p256(),
        Shape::current(&[0x7f], leaf_extensions()),
    );
    let mut options = ValidationOptions::at(now());
    options.revocation = RevocationPolicy::Off;
    match validator.validate(&leaf.certificate(), &options) {
        Err(ValidationError::BudgetExceeded {
            limit: BudgetLimit::Depth { limit: 10, target },
            ..
        }) => assert!(target.contains("Deep Leaf"), "{target}"),
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    options.budget.max_depth = 16;
    let path = validator
        .validate(&leaf.certificate(), &options)
        .expect("within a deeper budget");
    assert_eq!(path.chain.len(), 17);
}

#[test]
fn a_revoked_leaf_among_several_issuer_candidates_reports_revoked() {
    // Two certificates for the issuing CA (a re-issue with the same key): both paths reach
    // the anchor and both fail on the revoked leaf.
    let chain = ThreeChain::new(p256);
    let reissued = issue(
        Some(&chain.root),
        &chain.ca.subject,
        Arc::clone(&chain.ca.key),
        Shape::current(&[9], ca_extensions()),
    );
    let ca_crl = crl(
        &chain.ca,
        now() - Duration::minutes(1),
        &[RevokedEntry {
            serial: vec![3],
            revoked_at: now() - Duration::hours(1),
            reason: None,
            invalidity_date: None,
        }],
    );
    let mut validator = Validator::new(vec![chain.root.certificate()]);
    validator.add_certificate(chain.ca.certificate());
    validator.add_certificate(reissued.certificate());
    validator.add_crl(chain.root_crl.clone());
    validator.add_crl(ca_crl);
    match validator.validate(&chain.leaf.certificate(), &ValidationOptions::at(now())) {
        Err(ValidationError::Revoked { subject, .. }) => {
            assert!(subject.contains("Test Signer"), "{subject}")
        }
        other => panic!("expected Revoked, got {other:?}"),
    }
}

/// The shards of a partitioned CRL (RFC 5280 §5.2.5), more of them than the validator examines
/// for one distribution point, all given at once: the one whose issuingDistributionPoint names
/// the certificate's distribution point is found wherever it lies among them, and the others,
/// which do not cover the certificate, never pass it as good.
#[test]
fn the_matching_shard_is_found_among_more_shard_crls_than_are_examined() {
    const SHARDS: u32 = 100;
    let point = |shard: u32| format!("http://pki.example/crl/issuing/{shard}.crl");
    let chain = ThreeChain::new(p256);
    let leaf_in = |shard: u32, serial: u8| {
        let mut extensions = leaf_extensions();
        extensions.push(imza_core::ext::crl_distribution_points(&point(shard)).unwrap());
        issue(
            Some(&chain.ca),
            &format!("CN=Shard {shard} Holder,serialNumber=PNOAZ-1234567,C=AZ"),
            p256(),
            Shape::current(&[serial], extensions),
        )
        .certificate()
    };
    let (revoked, good) = (leaf_in(97, 0x61), leaf_in(97, 0x62));
    let elsewhere = leaf_in(5, 0x63);
    let this_update = now() - Duration::minutes(1);
    let shard_crl = |shard: u32| {
        let entries = [RevokedEntry {
            serial: vec![0x61],
            revoked_at: this_update - Duration::hours(1),
            reason: Some(CrlReason::KeyCompromise),
            invalidity_date: None,
        }];
        let der = imza_core::crl::sign_crl(
            imza_core::crl::CrlFields {
                issuer: &imza_core::name::parse_dn(&chain.ca.subject).unwrap(),
                issuer_key_id: &chain.ca.key_id(),
                number: u64::from(shard) + 1,
                this_update,
                next_update: this_update + Duration::days(1),
                distribution_point: Some(&point(shard)),
            },
            if shard == 97 { &entries } else { &[] },
            chain.ca.key.as_ref(),
            &mut |_, _| {},
        )
        .unwrap();
        imza_validation::Crl::from_der(der).unwrap()
    };
    let mut validator = Validator::new(vec![chain.root.certificate()]);
    validator.add_certificate(chain.ca.certificate());
    validator.add_crl(chain.root_crl.clone());
    for shard in 0..SHARDS {
        validator.add_crl(shard_crl(shard));
    }
    let at = ValidationOptions::at(now());
    match validator.validate(&revoked, &at) {
        Err(ValidationError::Revoked { reason, .. }) => {
            assert_eq!(reason, Some(x509_cert::ext::pkix::CrlReason::KeyCompromise))
        }
        other => panic!("expected Revoked, got {other:?}"),
    }
    validator
        .validate(&good, &at)
        .unwrap_or_else(|e| panic!("the good certificate of shard 97 must validate: {e}"));
    validator
        .validate(&elsewhere, &at)
        .unwrap_or_else(|e| panic!("the certificate of shard 5 must validate: {e}"));

    // Without its own shard's CRL a certificate's status is unknown, not good.
    let mut without = Validator::new(vec![chain.root.certificate()]);
    without.add_certificate(chain.ca.certificate());
    without.add_crl(chain.root_crl.clone());
    for shard in (0..SHARDS).filter(|s| *s != 97) {
        without.add_crl(shard_crl(shard));
    }
    match without.validate(&revoked, &at) {
        Err(ValidationError::RevocationUnknown { detail, .. }) => {
            assert!(detail.contains("another distribution point"), "{detail}")
        }
        other => panic!("expected RevocationUnknown, got {other:?}"),
    }
}

/// Runs `openssl` with `args` in `dir`, failing the test with its stderr.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    imza_testdata::tools::openssl_in(dir, args)
}

/// A root, with `intermediate` an issuing CA under it, and a leaf, RSA-2048 keys, made by
/// `openssl`: the CA certificates signed with `ca_sign`'s options, the leaf with `leaf_sign`'s.
/// Returns the root, the pool (the issuing CA, if any) and the leaf.
fn openssl_chain(
    intermediate: bool,
    ca_sign: &[&str],
    leaf_sign: &[&str],
) -> (Certificate, Vec<Certificate>, Certificate) {
    let dir = tempfile::tempdir().unwrap();
    let days = ["-days", "2"];
    openssl(
        dir.path(),
        &[
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key",
            ][..],
            &["-out", "root.pem", "-subj", "/CN=Root/O=imza/C=AZ"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ca_sign,
            &days,
        ]
        .concat(),
    );
    std::fs::write(
        dir.path().join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("leaf.ext"),
        "keyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let mut issuer = "root";
    let mut names = vec!["ca", "leaf"];
    if !intermediate {
        names.remove(0);
    }
    for name in names {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subject = format!("/CN={name}/O=imza/C=AZ");
        openssl(
            dir.path(),
            &[
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr,
                "-subj", &subject,
            ],
        );
        let (issuer_pem, issuer_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        let sign = if name == "leaf" { leaf_sign } else { ca_sign };
        openssl(
            dir.path(),
            &[
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &issuer_pem,
                    "-CAkey",
                    &issuer_key,
                ][..],
                &["-set_serial", "7", "-extfile", &ext, "-out", &pem],
                sign,
                &days,
            ]
            .concat(),
        );
        issuer = name;
    }
    let read = |name: &str| {
        let pem = std::fs::read(dir.path().join(name)).unwrap();
        Certificate::from_der(
            openssl::x509::X509::from_pem(&pem)
                .unwrap()
                .to_der()
                .unwrap(),
        )
        .unwrap()
    };
    let pool = if intermediate {
        vec![read("ca.pem")]
    } else {
        Vec::new()
    };
    (read("root.pem"), pool, read("leaf.pem"))
}

/// A root and a leaf, both certificates signed by `openssl` with RSASSA-PSS, SHA-256 and the
/// salt `-sigopt rsa_pss_saltlen:` reads from `salt`.
fn openssl_pss_chain(salt: &str) -> (Certificate, Certificate) {
    let salt = format!("rsa_pss_saltlen:{salt}");
    let pss = [
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        &salt,
    ];
    let (root, _, leaf) = openssl_chain(false, &pss, &pss);
    (root, leaf)
}

/// Validates `leaf` against `root` with `pool`, revocation off, now.
fn validate_openssl_chain(
    root: Certificate,
    pool: Vec<Certificate>,
    leaf: &Certificate,
) -> Result<imza_validation::ValidatedPath, ValidationError> {
    let mut options = ValidationOptions::at(now());
    options.revocation = RevocationPolicy::Off;
    let mut validator = Validator::new(vec![root]);
    for cert in pool {
        validator.add_certificate(cert);
    }
    validator.validate(leaf, &options)
}

#[test]
fn a_sha1_signature_refused_by_policy_is_an_unsupported_algorithm_not_a_bad_signature() {
    // Signed by the trust anchor, and by an issuing CA from the pool.
    for intermediate in [false, true] {
        let (root, pool, leaf) = openssl_chain(intermediate, &["-sha256"], &["-sha1"]);
        match validate_openssl_chain(root, pool, &leaf) {
            Err(ValidationError::Unsupported(detail)) => {
                assert!(detail.contains("1.2.840.113549.1.1.5"), "{detail}");
                assert!(detail.contains("CN=leaf"), "{detail}");
            }
            other => panic!("intermediate {intermediate}: {other:?}"),
        }
    }
    // RSASSA-PSS over SHA-1 (hashAlgorithm left out: its DEFAULT) is refused the same way.
    let pss_sha1 = ["-sha1", "-sigopt", "rsa_padding_mode:pss"];
    let (root, pool, leaf) = openssl_chain(true, &["-sha256"], &pss_sha1);
    match validate_openssl_chain(root, pool, &leaf) {
        Err(ValidationError::Unsupported(detail)) => {
            assert!(detail.contains("1.2.840.113549.1.1.10"), "{detail}");
            assert!(detail.contains("SHA-1"), "{detail}");
        }
        other => panic!("RSASSA-PSS with SHA-1: {other:?}"),
    }
    // The same chain signed with SHA-256 validates: the refusal is the algorithm's.
    let (root, pool, leaf) = openssl_chain(true, &["-sha256"], &["-sha256"]);
    validate_openssl_chain(root, pool, &leaf).unwrap();
}

#[test]
fn certificates_openssl_signs_with_rsa_pss_and_any_salt_validate() {
    // "max" is 222 bytes for RSA-2048 with SHA-256: what openssl, pyHanko and endesive write.
    for salt in ["max", "20", "digest"] {
        let (root, leaf) = openssl_pss_chain(salt);
        let path = validate_openssl_chain(root, Vec::new(), &leaf)
            .unwrap_or_else(|e| panic!("salt {salt}: {e}"));
        assert_eq!(path.chain.len(), 2);
    }
}
