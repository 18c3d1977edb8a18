//! The issuer's own records ([`LocalRevocationSource`]) are asked before OCSP and CRLs for the
//! certificates they cover: no fetch at all (a counting fetcher proves it), a revocation
//! recorded between two validations is seen by the second, and a certificate the records
//! do not cover goes to the ordinary sources.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use imza_core::key::software::SoftwareKey;
use imza_core::{ext, KeyAlgorithm};
use imza_testdata::pki::{leaf_extensions, TestCa};
use imza_validation::{
    Certificate, Fetcher, LocalRevocationSource, LocalStatus, NetworkFailure, RevocationEvidence,
    RevocationPolicy, RevocationState, ValidatedPath, ValidationError, ValidationOptions,
    Validator,
};
use time::{Duration, OffsetDateTime};

/// The records of one CA: its certificate and what to answer.
struct Records {
    ca: Vec<u8>,
    answer: Mutex<LocalStatus>,
}

impl LocalRevocationSource for Records {
    fn status(&self, _cert: &Certificate, issuer: &Certificate) -> LocalStatus {
        if issuer.der() == self.ca.as_slice() {
            self.answer.lock().unwrap().clone()
        } else {
            LocalStatus::NotMine
        }
    }

    fn name(&self) -> String {
        "the test CA's records".into()
    }
}

/// Counts fetches and answers none.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl Fetcher for Counting {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(ValidationError::network(
            url,
            NetworkFailure::unreachable(std::io::Error::other("not in this test")),
        ))
    }

    fn post_ocsp(&self, url: &str, _: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(ValidationError::network(
            url,
            NetworkFailure::unreachable(std::io::Error::other("not in this test")),
        ))
    }
}

struct Setup {
    ours: TestCa,
    theirs: TestCa,
    records: Arc<Records>,
    fetches: Counting,
}

impl Setup {
    fn new() -> Setup {
        let ours = TestCa::root("CN=Our Root,C=AZ", KeyAlgorithm::EcP256);
        let theirs = TestCa::root("CN=Their Root,C=AZ", KeyAlgorithm::EcP256);
        let records = Arc::new(Records {
            ca: ours.der.clone(),
            answer: Mutex::new(LocalStatus::Good),
        });
        Setup {
            ours,
            theirs,
            records,
            fetches: Counting::default(),
        }
    }

    /// A leaf of `ca` naming an OCSP responder and a CRL distribution point.
    fn leaf(ca: &TestCa) -> Certificate {
        let key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let mut extensions = leaf_extensions();
        extensions
            .push(ext::authority_info_access(Some("http://ocsp.test.invalid/"), None).unwrap());
        extensions.push(ext::crl_distribution_points("http://crl.test.invalid/ca.crl").unwrap());
        Certificate::from_der(ca.issue("CN=Citizen", &[0x0c], &key, extensions)).unwrap()
    }

    fn validate(
        &self,
        leaf: &Certificate,
        time: OffsetDateTime,
        revocation: RevocationPolicy,
    ) -> Result<ValidatedPath, ValidationError> {
        let mut validator = Validator::new(vec![
            Certificate::from_der(self.ours.der.clone()).unwrap(),
            Certificate::from_der(self.theirs.der.clone()).unwrap(),
        ]);
        validator.set_fetcher(Box::new(self.fetches.clone()));
        validator.set_local_revocation(self.records.clone());
        let mut options = ValidationOptions::at(time);
        options.network = true;
        options.revocation = revocation;
        validator.validate(leaf, &options)
    }

    fn answer(&self, status: LocalStatus) {
        *self.records.answer.lock().unwrap() = status;
    }

    fn fetched(&self) -> usize {
        self.fetches.0.load(Ordering::SeqCst)
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn the_records_answer_for_their_certificates_without_any_fetch() {
    let setup = Setup::new();
    let leaf = Setup::leaf(&setup.ours);
    let path = setup
        .validate(&leaf, now(), RevocationPolicy::Require)
        .unwrap();
    assert_eq!(setup.fetched(), 0);
    let status = &path.revocation[0];
    assert_eq!(
        status.state,
        RevocationState::Good {
            revoked_later: None
        }
    );
    match &status.evidence {
        Some(RevocationEvidence::Local { source }) => {
            assert_eq!(source, "the test CA's records")
        }
        other => panic!("{other:?}"),
    }
    // Nothing to embed in a B-LT signature.
    assert!(path.supporting_evidence.is_empty());
}

#[test]
fn a_revocation_recorded_between_two_validations_is_seen_by_the_second() {
    let setup = Setup::new();
    let leaf = Setup::leaf(&setup.ours);
    let t = now();
    setup.validate(&leaf, t, RevocationPolicy::Require).unwrap();
    let revoked_at = t - Duration::minutes(1);
    setup.answer(LocalStatus::Revoked {
        at: revoked_at,
        reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
    });
    match setup.validate(&leaf, t, RevocationPolicy::Require) {
        Err(ValidationError::Revoked {
            revoked_at: at,
            reason,
            ..
        }) => {
            assert_eq!(at, revoked_at);
            assert_eq!(reason, Some(x509_cert::ext::pkix::CrlReason::KeyCompromise));
        }
        other => panic!("expected revoked, got {other:?}"),
    }
    // Validated at a time before the revocation: good, the revocation reported as later.
    let path = setup
        .validate(&leaf, t - Duration::hours(1), RevocationPolicy::Require)
        .unwrap();
    assert_eq!(
        path.revocation[0].state,
        RevocationState::Good {
            revoked_later: Some(revoked_at)
        }
    );
    assert_eq!(setup.fetched(), 0);
}

#[test]
fn a_certificate_of_another_ca_goes_to_the_ordinary_sources() {
    let setup = Setup::new();
    let leaf = Setup::leaf(&setup.theirs);
    match setup.validate(&leaf, now(), RevocationPolicy::Require) {
        Err(ValidationError::RevocationUnknown { detail, .. }) => {
            assert!(detail.contains("ocsp.test.invalid"), "{detail}");
            assert!(detail.contains("crl.test.invalid"), "{detail}");
        }
        other => panic!("expected revocation unknown, got {other:?}"),
    }
    assert_eq!(setup.fetched(), 2);
}

#[test]
fn no_record_or_unreadable_records_leave_the_status_unknown_without_fetching() {
    let setup = Setup::new();
    let leaf = Setup::leaf(&setup.ours);
    setup.answer(LocalStatus::NoRecord);
    match setup.validate(&leaf, now(), RevocationPolicy::Require) {
        Err(ValidationError::RevocationUnknown { detail, .. }) => {
            assert!(detail.contains("has no record of serial 0C"), "{detail}")
        }
        other => panic!("expected revocation unknown, got {other:?}"),
    }
    setup.answer(LocalStatus::Unavailable {
        reason: "database is locked".into(),
    });
    let path = setup
        .validate(&leaf, now(), RevocationPolicy::BestEffort)
        .unwrap();
    match &path.revocation[0].state {
        RevocationState::NotChecked { why } => assert!(why.contains("database is locked")),
        other => panic!("{other:?}"),
    }
    assert_eq!(setup.fetched(), 0);
}
