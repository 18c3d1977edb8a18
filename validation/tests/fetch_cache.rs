//! The shared fetch layer against a real HTTP server on loopback that counts what it is
//! asked: a CRL made by the test PKI and imza's own OCSP responder behind it. Many validations
//! of one certificate make one fetch; an answer is kept until its nextUpdate (the cache's
//! clock is moved, nothing sleeps for minutes) and fetched again after; a server that never
//! answers is asked once, its waiters coalesced, then remembered; the per-request and
//! process-wide caps refuse at once, with a note naming the cap.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use der::Decode;
use imza_core::clock::Clock;
use imza_core::{ext, KeyAlgorithm};
use imza_ocsp::{
    CertStatusInfo, CertificateStatusSource, IssuerId, OcspError, Responder, ResponderConfig,
    ServedCa,
};
use imza_testdata::loopback::{CountingServer as Server, Reply};
use imza_testdata::pki::{leaf_extensions, ocsp_responder_extensions, TestCa};
use imza_validation::{
    Certificate, FetchCache, FetchCacheConfig, RevocationEvidence, RevocationPolicy, ValidatedPath,
    ValidationError, ValidationOptions, Validator,
};
use time::OffsetDateTime;

// --- a clock the test moves ------------------------------------------------------------------

struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn new() -> Arc<TestClock> {
        let now = imza_core::clock::whole_seconds(OffsetDateTime::now_utc());
        Arc::new(TestClock(Mutex::new(now)))
    }

    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

// --- the PKI: a root, its delegated OCSP responder, leaves naming the server ----------------

struct Pki {
    root: TestCa,
    responder: Responder,
}

/// Answers "good" for every serial.
struct AllGood;

impl CertificateStatusSource for AllGood {
    fn status(&self, _: &IssuerId, _: &[u8]) -> Result<CertStatusInfo, OcspError> {
        Ok(CertStatusInfo::Good)
    }

    fn revision(&self) -> Result<u64, OcspError> {
        Ok(0)
    }
}

impl Pki {
    fn new() -> Arc<Pki> {
        let root = TestCa::root("CN=Fetch Cache Test Root,C=AZ", KeyAlgorithm::EcP256);
        let service = root.issue_service(
            "CN=Fetch Cache Test OCSP",
            &[0x70],
            KeyAlgorithm::EcP256,
            ocsp_responder_extensions(),
        );
        let responder = Responder::new(
            vec![ServedCa {
                issuer: IssuerId::new("root"),
                ca_certificate: root.der.clone(),
                responder_certificate: service.der,
                responder_key: service.key,
            }],
            ResponderConfig::default(),
        )
        .unwrap();
        Arc::new(Pki { root, responder })
    }

    /// A leaf whose AIA names `ocsp` and whose CRL distribution point is `crl`, when given.
    fn leaf(&self, serial: &[u8], ocsp: Option<&str>, crl: Option<&str>) -> Certificate {
        let key = imza_core::key::software::SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let mut extensions = leaf_extensions();
        if ocsp.is_some() {
            extensions.push(ext::authority_info_access(ocsp, None).unwrap());
        }
        if let Some(crl) = crl {
            extensions.push(ext::crl_distribution_points(crl).unwrap());
        }
        let der = self.root.issue("CN=Citizen", serial, &key, extensions);
        Certificate::from_der(der).unwrap()
    }

    fn anchor(&self) -> Certificate {
        Certificate::from_der(self.root.der.clone()).unwrap()
    }

    /// The root's CRL, revoking nobody, from `this_update` for `valid`.
    fn crl(&self, this_update: OffsetDateTime, valid: time::Duration) -> Vec<u8> {
        self.root.crl(&[], this_update, this_update + valid)
    }
}

/// A server answering `/ocsp` with imza's responder at the clock's now and `/root.crl` with the
/// CRL in `crl`; other paths 404.
fn revocation_server(pki: &Arc<Pki>, clock: &Arc<TestClock>, crl: &Arc<Mutex<Vec<u8>>>) -> Server {
    let (pki, clock, crl) = (Arc::clone(pki), Arc::clone(clock), Arc::clone(crl));
    Server::start(move |path, body| match path {
        "/ocsp" => {
            // Long enough that the other callers arrive while this one is in flight.
            std::thread::sleep(Duration::from_millis(300));
            Reply::Body(pki.responder.respond(body, clock.now(), &AllGood).der)
        }
        "/root.crl" => {
            std::thread::sleep(Duration::from_millis(300));
            Reply::Body(crl.lock().unwrap().clone())
        }
        _ => Reply::Status(404),
    })
}

fn config() -> FetchCacheConfig {
    FetchCacheConfig {
        timeout: Duration::from_secs(2),
        ..FetchCacheConfig::default()
    }
}

/// One validation of `leaf` as a request of its own would make it: a fresh request fetcher
/// of `cache`, at the clock's now, network on, revocation required.
fn validate(
    pki: &Pki,
    cache: &Arc<FetchCache>,
    clock: &TestClock,
    leaf: &Certificate,
) -> Result<ValidatedPath, ValidationError> {
    let mut validator = Validator::new(vec![pki.anchor()]);
    validator.set_fetcher(Box::new(cache.request()));
    let mut options = ValidationOptions::at(clock.now());
    options.network = true;
    options.revocation = RevocationPolicy::Require;
    validator.validate(leaf, &options)
}

/// `threads` validations of `leaf` started together, each its own request.
fn validate_together(
    pki: &Arc<Pki>,
    cache: &Arc<FetchCache>,
    clock: &Arc<TestClock>,
    leaf: &Certificate,
    threads: usize,
) -> Vec<Result<ValidatedPath, ValidationError>> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pki, cache, clock, leaf, barrier) = (
                Arc::clone(pki),
                Arc::clone(cache),
                Arc::clone(clock),
                leaf.clone(),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                barrier.wait();
                validate(&pki, &cache, &clock, &leaf)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn is_ocsp(path: &ValidatedPath) -> bool {
    matches!(
        path.revocation[0].evidence,
        Some(RevocationEvidence::Ocsp { .. })
    )
}

fn is_crl(path: &ValidatedPath) -> bool {
    matches!(
        path.revocation[0].evidence,
        Some(RevocationEvidence::Crl { .. })
    )
}

fn unknown_detail(result: Result<ValidatedPath, ValidationError>) -> String {
    match result {
        Err(ValidationError::RevocationUnknown { detail, .. }) => detail,
        other => panic!("expected revocation unknown, got {other:?}"),
    }
}

// --- the tests -------------------------------------------------------------------------------

#[test]
fn thirty_two_validations_of_one_certificate_make_one_ocsp_request_without_a_nonce() {
    let (pki, clock) = (Pki::new(), TestClock::new());
    let crl = Arc::new(Mutex::new(pki.crl(clock.now(), time::Duration::days(1))));
    let server = revocation_server(&pki, &clock, &crl);
    let leaf = pki.leaf(&[0x11], Some(&server.url("/ocsp")), None);
    let cache = Arc::new(FetchCache::new(config(), clock.clone()));

    let results = validate_together(&pki, &cache, &clock, &leaf, 32);
    for result in &results {
        let path = result.as_ref().expect("valid with the responder's answer");
        assert!(is_ocsp(path), "{:?}", path.revocation);
    }
    assert_eq!(server.count("/ocsp"), 1);
    let stats = cache.stats();
    assert_eq!(stats.outbound, 1);
    assert_eq!(stats.hits + stats.coalesced, 31, "{stats:?}");
    assert!(stats.coalesced > 0, "{stats:?}");
    // The one request asked about the leaf and carried no nonce: its answer serves everyone.
    let request = x509_ocsp::OcspRequest::from_der(&server.bodies()[0]).unwrap();
    assert!(request.nonce().is_none());
    assert_eq!(
        request.tbs_request.request_list[0]
            .req_cert
            .serial_number
            .as_bytes(),
        &[0x11]
    );
}

#[test]
fn thirty_two_validations_of_one_certificate_make_one_crl_request() {
    let (pki, clock) = (Pki::new(), TestClock::new());
    let crl = Arc::new(Mutex::new(pki.crl(clock.now(), time::Duration::days(1))));
    let server = revocation_server(&pki, &clock, &crl);
    let leaf = pki.leaf(&[0x12], None, Some(&server.url("/root.crl")));
    let cache = Arc::new(FetchCache::new(config(), clock.clone()));

    for result in validate_together(&pki, &cache, &clock, &leaf, 32) {
        assert!(is_crl(&result.expect("valid with the fetched CRL")));
    }
    assert_eq!(server.count("/root.crl"), 1);
    assert_eq!(cache.stats().outbound, 1);
}

#[test]
fn answers_are_kept_until_their_next_update_then_fetched_again() {
    let (pki, clock) = (Pki::new(), TestClock::new());
    let start = clock.now();
    // The CRL holds for 10 minutes; the responder's answers for an hour.
    let crl = Arc::new(Mutex::new(pki.crl(start, time::Duration::minutes(10))));
    let server = revocation_server(&pki, &clock, &crl);
    let by_crl = pki.leaf(&[0x21], None, Some(&server.url("/root.crl")));
    let by_ocsp = pki.leaf(&[0x22], Some(&server.url("/ocsp")), None);
    let cache = Arc::new(FetchCache::new(config(), clock.clone()));

    assert!(is_crl(&validate(&pki, &cache, &clock, &by_crl).unwrap()));
    assert!(is_ocsp(&validate(&pki, &cache, &clock, &by_ocsp).unwrap()));
    clock.advance(time::Duration::minutes(9));
    assert!(is_crl(&validate(&pki, &cache, &clock, &by_crl).unwrap()));
    assert!(is_ocsp(&validate(&pki, &cache, &clock, &by_ocsp).unwrap()));
    assert_eq!((server.count("/root.crl"), server.count("/ocsp")), (1, 1));

    // Past the CRL's nextUpdate: fetched again (the CA has published a new one).
    clock.advance(time::Duration::minutes(2));
    *crl.lock().unwrap() = pki.crl(clock.now(), time::Duration::minutes(10));
    assert!(is_crl(&validate(&pki, &cache, &clock, &by_crl).unwrap()));
    assert!(is_ocsp(&validate(&pki, &cache, &clock, &by_ocsp).unwrap()));
    assert_eq!((server.count("/root.crl"), server.count("/ocsp")), (2, 1));

    // Past the OCSP answer's nextUpdate (an hour after it was made): asked again.
    clock.advance(time::Duration::minutes(50));
    assert!(is_ocsp(&validate(&pki, &cache, &clock, &by_ocsp).unwrap()));
    assert_eq!(server.count("/ocsp"), 2);
}

#[test]
fn no_answer_is_kept_longer_than_the_max_ttl() {
    let (pki, clock) = (Pki::new(), TestClock::new());
    let crl = Arc::new(Mutex::new(pki.crl(clock.now(), time::Duration::days(7))));
    let server = revocation_server(&pki, &clock, &crl);
    let leaf = pki.leaf(&[0x23], None, Some(&server.url("/root.crl")));
    let config = FetchCacheConfig {
        max_ttl: Duration::from_secs(15 * 60),
        ..config()
    };
    let cache = Arc::new(FetchCache::new(config, clock.clone()));
    validate(&pki, &cache, &clock, &leaf).unwrap();
    clock.advance(time::Duration::minutes(14));
    validate(&pki, &cache, &clock, &leaf).unwrap();
    assert_eq!(server.count("/root.crl"), 1);
    clock.advance(time::Duration::minutes(2));
    validate(&pki, &cache, &clock, &leaf).unwrap();
    assert_eq!(server.count("/root.crl"), 2);
}

#[test]
fn a_server_that_never_answers_is_asked_once_then_remembered_briefly() {
    let server = Server::start(|_, _| Reply::Hold);
    let (pki, clock) = (Pki::new(), TestClock::new());
    let leaf = pki.leaf(&[0x31], Some(&server.url("/ocsp")), None);
    let config = FetchCacheConfig {
        timeout: Duration::from_secs(1),
        ..FetchCacheConfig::default()
    };
    let cache = Arc::new(FetchCache::new(config, clock.clone()));

    let started = Instant::now();
    let results = validate_together(&pki, &cache, &clock, &leaf, 32);
    // One attempt within the timeout; everyone else waited for it (normal: 1 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count("/ocsp"), 1);
    for result in results {
        let detail = unknown_detail(result);
        assert!(detail.contains(&server.url("/ocsp")), "{detail}");
    }

    // Remembered: the next validation fails at once without asking (normal: microseconds).
    let started = Instant::now();
    let detail = unknown_detail(validate(&pki, &cache, &clock, &leaf));
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(detail.contains("remembered"), "{detail}");
    assert_eq!(server.count("/ocsp"), 1);

    // After the brief time (30 s by default) it is asked again.
    clock.advance(time::Duration::seconds(31));
    unknown_detail(validate(&pki, &cache, &clock, &leaf));
    assert_eq!(server.count("/ocsp"), 2);
}

#[test]
fn the_per_request_cap_refuses_further_fetches_of_that_request_only() {
    let (pki, clock) = (Pki::new(), TestClock::new());
    let crl = Arc::new(Mutex::new(pki.crl(clock.now(), time::Duration::days(1))));
    let server = revocation_server(&pki, &clock, &crl);
    // The responder URL answers 404; the CRL is there.
    let leaf = pki.leaf(
        &[0x41],
        Some(&server.url("/missing")),
        Some(&server.url("/root.crl")),
    );
    let config = FetchCacheConfig {
        per_request: 1,
        ..config()
    };
    let cache = Arc::new(FetchCache::new(config, clock.clone()));

    let detail = unknown_detail(validate(&pki, &cache, &clock, &leaf));
    assert!(detail.contains("404"), "{detail}");
    assert!(detail.contains("per-request cap"), "{detail}");
    assert_eq!(server.count("/root.crl"), 0);
    assert_eq!(cache.stats().refused_per_request, 1);

    // Another request: the 404 is remembered (no fetch), so its one fetch is the CRL.
    assert!(is_crl(&validate(&pki, &cache, &clock, &leaf).unwrap()));
    assert_eq!(
        (server.count("/missing"), server.count("/root.crl")),
        (1, 1)
    );
}

#[test]
fn the_process_wide_cap_refuses_at_once_while_others_are_in_flight() {
    let server = Server::start(|path, _| {
        if path == "/slow" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        Reply::Status(404)
    });
    let (pki, clock) = (Pki::new(), TestClock::new());
    let slow = pki.leaf(&[0x51], Some(&server.url("/slow")), None);
    let other = pki.leaf(&[0x52], Some(&server.url("/other")), None);
    let config = FetchCacheConfig {
        concurrent: 1,
        ..config()
    };
    let cache = Arc::new(FetchCache::new(config, clock.clone()));

    let in_flight = {
        let (pki, cache, clock) = (Arc::clone(&pki), Arc::clone(&cache), Arc::clone(&clock));
        std::thread::spawn(move || validate(&pki, &cache, &clock, &slow))
    };
    let waited = Instant::now();
    while server.count("/slow") == 0 {
        assert!(waited.elapsed() < Duration::from_secs(10), "never asked");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let detail = unknown_detail(validate(&pki, &cache, &clock, &other));
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert!(detail.contains("process-wide cap"), "{detail}");
    assert_eq!(server.count("/other"), 0);
    assert_eq!(cache.stats().refused_concurrent, 1);
    unknown_detail(in_flight.join().unwrap());
    // With the slow one done, the other goes out.
    unknown_detail(validate(&pki, &cache, &clock, &other));
    assert_eq!(server.count("/other"), 1);
}

#[test]
fn a_request_that_has_spent_its_fetching_time_starts_no_more_fetches() {
    let server = Server::start(|_, _| Reply::Hold);
    let (pki, clock) = (Pki::new(), TestClock::new());
    let leaf = pki.leaf(
        &[0x61],
        Some(&server.url("/ocsp")),
        Some(&server.url("/root.crl")),
    );
    let config = FetchCacheConfig {
        timeout: Duration::from_secs(1),
        per_request_time: Duration::from_millis(500),
        ..FetchCacheConfig::default()
    };
    let cache = Arc::new(FetchCache::new(config, clock.clone()));
    // The responder holds the request for the whole timeout; by then the request's half
    // second is spent, and its CRL is not fetched.
    let detail = unknown_detail(validate(&pki, &cache, &clock, &leaf));
    assert!(detail.contains("per-request time cap"), "{detail}");
    assert_eq!((server.count("/ocsp"), server.count("/root.crl")), (1, 0));
    assert_eq!(cache.stats().refused_request_time, 1);
}
