//! The [`OcspService`] without HTTP: nonce-less requests are answered from the cache of signed
//! responses, nonce requests are signed live, and the cache never keeps a `good` past the next
//! revision poll after a revocation — including one that lands while a request is answered.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{live_service, ocsp_request, LiveSource, Pki, TestClock};
use imza_ocsp::{
    parse_response, CacheConfig, CertStatusInfo, OcspService, Responder, ResponderConfig,
    ResponseStatus,
};
use time::{Duration, OffsetDateTime};

struct Fixture {
    pki: Pki,
    source: Arc<LiveSource>,
    clock: Arc<TestClock>,
    service: Arc<OcspService>,
}

fn fixture_with(config: CacheConfig) -> Fixture {
    let pki = Pki::new();
    let clock = TestClock::at(imza_core::clock::whole_seconds(OffsetDateTime::now_utc()));
    let (source, service) = live_service(&pki, Arc::clone(&clock) as _, config);
    Fixture {
        pki,
        source,
        clock,
        service,
    }
}

fn fixture() -> Fixture {
    fixture_with(CacheConfig::default())
}

impl Fixture {
    fn request(&self, serial: &[u8]) -> Vec<u8> {
        ocsp_request(&self.pki.ca.der, &[serial], None)
    }

    fn status_in(&self, der: &[u8]) -> CertStatusInfo {
        let parsed = parse_response(der).unwrap();
        assert_eq!(parsed.status, ResponseStatus::Successful);
        parsed.basic.unwrap().responses[0].status
    }
}

#[test]
fn a_repeated_request_is_answered_from_the_cache_with_identical_bytes() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    let first = f.service.answer(&request);
    assert!(!first.from_cache());
    assert!(first.is_cacheable());
    assert_eq!(f.source.calls(), 1);
    f.clock.advance(Duration::seconds(5));
    let second = f.service.answer(&request);
    assert!(second.from_cache());
    assert_eq!(
        f.source.calls(),
        1,
        "a cache hit does not ask the status source"
    );
    assert_eq!(second.der(), first.der());
    assert_eq!(second.etag(), first.etag());
    assert!(second.etag().is_some());
    assert_eq!(second.next_update(), first.next_update());
    assert_eq!(f.status_in(second.der()), CertStatusInfo::Good);
    // max-age counts down from the time of the hit and stops at nextUpdate.
    let next_update = second.next_update().unwrap();
    assert_eq!(
        second.max_age().unwrap() as i64,
        (next_update - f.clock_now()).whole_seconds()
    );
    assert_eq!(f.service.cache().len(), 1);
}

impl Fixture {
    fn clock_now(&self) -> OffsetDateTime {
        imza_core::clock::Clock::now(self.clock.as_ref())
    }

    /// Inside the next status lookup, after the status was read: revokes `good` now and polls
    /// the revision, which must clear the cache.
    fn revoke_good_and_poll_during_the_next_lookup(&self) {
        let source = Arc::clone(&self.source);
        let service = Arc::clone(&self.service);
        let serial = self.pki.good.serial.clone();
        let at = self.clock_now();
        self.source.after_next_status(move || {
            source.revoke(&serial, at);
            assert!(
                service.poll_revision().unwrap(),
                "the poll clears the cache"
            );
        });
    }
}

#[test]
fn a_nonce_request_is_signed_afresh_each_time_and_echoes_its_nonce() {
    let f = fixture();
    let mut bodies = Vec::new();
    for n in 0u8..3 {
        let nonce = [n; 32];
        let request = ocsp_request(&f.pki.ca.der, &[&f.pki.good.serial], Some(&nonce));
        let answer = f.service.answer(&request);
        assert!(!answer.from_cache());
        assert!(!answer.is_cacheable());
        assert_eq!(answer.etag(), None);
        assert_eq!(answer.max_age(), None);
        let basic = parse_response(answer.der()).unwrap().basic.unwrap();
        assert_eq!(basic.nonce.as_deref(), Some(&nonce[..]));
        assert_eq!(basic.responses[0].status, CertStatusInfo::Good);
        bodies.push(answer.der().to_vec());
    }
    // The same nonce request again is not a cache hit either.
    let request = ocsp_request(&f.pki.ca.der, &[&f.pki.good.serial], Some(&[0; 32]));
    assert!(!f.service.answer(&request).from_cache());
    assert_eq!(f.source.calls(), 4);
    assert!(f.service.cache().is_empty());
    // ECDSA signatures are randomized: every body differs even at the same second.
    assert_ne!(bodies[0], bodies[1]);
    assert_ne!(bodies[1], bodies[2]);
}

#[test]
fn a_revocation_is_answered_after_the_next_revision_poll() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    assert_eq!(
        f.status_in(f.service.answer(&request).der()),
        CertStatusInfo::Good
    );
    let revoked_at = f.clock_now();
    f.source.revoke(&f.pki.good.serial, revoked_at);
    // Until the poll, the signed `good` is what the cache holds (the ≤ 250 ms window).
    assert!(f.service.answer(&request).from_cache());
    assert!(f.service.poll_revision().unwrap(), "the poll clears");
    assert!(f.service.cache().is_empty());
    let answer = f.service.answer(&request);
    assert!(!answer.from_cache());
    assert_eq!(
        f.status_in(answer.der()),
        CertStatusInfo::Revoked {
            at: revoked_at,
            reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
        }
    );
    assert!(
        !f.service.poll_revision().unwrap(),
        "an unchanged revision keeps the cache"
    );
    assert!(f.service.answer(&request).from_cache());
    assert_eq!(
        f.service.cache().source_revision(),
        Some(f.source.current_revision())
    );
}

/// The race the epoch guard exists for: the status is read (`good`), then the revocation
/// commits and the poll clears the cache, then the request would insert its `good`.
#[test]
fn an_answer_computed_before_a_revocation_is_not_cached_after_it() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    f.revoke_good_and_poll_during_the_next_lookup();
    let racing = f.service.answer(&request);
    // That request was answered with what the store said when it asked...
    assert_eq!(f.status_in(racing.der()), CertStatusInfo::Good);
    assert!(racing.is_cacheable());
    // ...but its answer was not kept: the next one asks again and says revoked.
    assert!(f.service.cache().is_empty());
    let next = f.service.answer(&request);
    assert!(!next.from_cache());
    assert!(matches!(
        f.status_in(next.der()),
        CertStatusInfo::Revoked { .. }
    ));
    assert_eq!(f.source.calls(), 2);
}

/// The store away (a database restart): the answers already signed keep being served until
/// their nextUpdate, the failure is reported (for /health), and the cache is cleared only if
/// the revision moved while the store was away.
#[test]
fn an_unreadable_revision_keeps_the_signed_answers_and_reports_the_failure() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    f.service.answer(&request);
    assert_eq!(f.service.cache().len(), 1);
    f.source
        .revision_fails
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(f.service.poll_revision().is_err());
    assert!(f.service.last_poll_error().is_some());
    assert!(f.service.answer(&request).from_cache());
    f.source
        .revision_fails
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(!f.service.poll_revision().unwrap(), "unchanged: kept");
    assert!(f.service.last_poll_error().is_none());
    assert!(f.service.answer(&request).from_cache());
}

#[test]
fn a_cached_response_is_not_served_at_or_after_its_next_update() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    let first = f.service.answer(&request);
    let next_update = first.next_update().unwrap();
    f.clock
        .advance(next_update - f.clock_now() - Duration::seconds(1));
    let late = f.service.answer(&request);
    assert!(late.from_cache());
    assert_eq!(late.max_age(), Some(1));
    f.clock.advance(Duration::seconds(1));
    let expired = f.service.answer(&request);
    assert!(!expired.from_cache(), "served at nextUpdate");
    assert!(expired.next_update().unwrap() > next_update);
    assert_ne!(expired.etag(), first.etag());
}

#[test]
fn max_age_never_exceeds_the_time_to_next_update() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    for step in [0, 1, 59, 600, 1799, 3000, 3599] {
        let answer = f.service.answer(&request);
        let next_update = answer.next_update().unwrap();
        let now = f.clock_now();
        let max_age = answer.max_age().unwrap() as i64;
        assert!(
            now + Duration::seconds(max_age) <= next_update,
            "step {step}"
        );
        assert!(max_age >= 0);
        f.clock
            .advance(Duration::seconds(step) + Duration::milliseconds(300));
    }
}

#[test]
fn refresh_re_signs_entries_in_use_and_drops_the_others() {
    let f = fixture();
    let hot = f.request(&f.pki.good.serial);
    let cold = f.request(&f.pki.good2.serial);
    let hot_first = f.service.answer(&hot);
    f.service.answer(&cold);
    // Before half the validity (1 h) has passed, nothing is due.
    f.clock.advance(Duration::minutes(29));
    assert_eq!(f.service.refresh(), Default::default());
    // Past it, both are due; each was served once (when it was signed), so both are
    // re-signed, with a later thisUpdate.
    f.clock.advance(Duration::minutes(2));
    let report = f.service.refresh();
    assert_eq!(report.resigned, 2, "{report:?}");
    let hot_second = f.service.answer(&hot);
    assert!(hot_second.from_cache());
    assert!(hot_second.this_update() > hot_first.this_update());
    assert_ne!(hot_second.der(), hot_first.der());
    // Half a validity later only the one asked for again is re-signed; the other is dropped.
    f.clock.advance(Duration::minutes(31));
    let report = f.service.refresh();
    assert_eq!((report.resigned, report.dropped), (1, 1), "{report:?}");
    assert_eq!(f.service.cache().len(), 1);
    assert!(f.service.answer(&hot).from_cache());
    assert!(!f.service.answer(&cold).from_cache());
}

#[test]
fn a_refresh_racing_a_revocation_does_not_put_back_the_old_answer() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    f.service.answer(&request);
    f.clock.advance(Duration::minutes(31));
    f.revoke_good_and_poll_during_the_next_lookup();
    let report = f.service.refresh();
    assert_eq!((report.resigned, report.superseded), (0, 1), "{report:?}");
    assert!(f.service.cache().is_empty());
    assert!(matches!(
        f.status_in(f.service.answer(&request).der()),
        CertStatusInfo::Revoked { .. }
    ));
}

#[test]
fn replacing_the_responder_clears_the_cache() {
    let f = fixture();
    let request = f.request(&f.pki.good.serial);
    let before = f.service.answer(&request);
    assert_eq!(f.service.cache().len(), 1);
    // A responder with another validity stands for a renewed one: its answers differ.
    let renewed = Responder::new(
        vec![f.pki.served()],
        ResponderConfig {
            validity: Duration::minutes(10),
            ..ResponderConfig::default()
        },
    )
    .unwrap();
    f.service.replace_responder(renewed);
    assert!(f.service.cache().is_empty());
    let after = f.service.answer(&request);
    assert!(!after.from_cache());
    assert_eq!(
        after.next_update().unwrap() - after.this_update().unwrap(),
        Duration::minutes(10)
    );
    assert_ne!(after.etag(), before.etag());
    assert!(f.service.answer(&request).from_cache());
}

#[test]
fn errors_unknowns_and_big_requests_are_handled_apart() {
    let f = fixture_with(CacheConfig {
        max_cached_request_bytes: 200,
        ..CacheConfig::default()
    });
    // Error statuses are never cached.
    let garbage = f.service.answer(b"\x30\x03\x02\x01\x01");
    assert_eq!(garbage.status(), ResponseStatus::MalformedRequest);
    assert!(!garbage.is_cacheable());
    let other = ocsp_request(&f.pki.other_ca.der, &[&f.pki.other_leaf.serial], None);
    assert_eq!(
        f.service.answer(&other).status(),
        ResponseStatus::Unauthorized
    );
    assert!(f.service.cache().is_empty());
    // `unknown` is a successful answer like any other and is cached (an issuance moves the
    // revision and clears it).
    let ghost = f.request(&f.pki.never_issued.serial);
    f.service.answer(&ghost);
    assert!(f.service.answer(&ghost).from_cache());
    // A request above the size bound is answered, cacheable for HTTP, but not kept.
    let serials: Vec<&[u8]> = vec![&f.pki.good.serial; 5];
    let big = ocsp_request(&f.pki.ca.der, &serials, None);
    assert!(big.len() > 200);
    let answer = f.service.answer(&big);
    assert_eq!(answer.status(), ResponseStatus::Successful);
    assert!(answer.is_cacheable());
    assert!(!f.service.answer(&big).from_cache());
    assert_eq!(f.service.cache().len(), 1);
}

#[test]
fn a_full_cache_answers_live_without_evicting() {
    let f = fixture_with(CacheConfig {
        max_entries: 1,
        ..CacheConfig::default()
    });
    let first = f.request(&f.pki.good.serial);
    let second = f.request(&f.pki.good2.serial);
    f.service.answer(&first);
    let answer = f.service.answer(&second);
    assert_eq!(f.status_in(answer.der()), CertStatusInfo::Good);
    assert!(!f.service.answer(&second).from_cache());
    assert!(f.service.answer(&first).from_cache());
    assert_eq!(f.service.cache().len(), 1);
}
