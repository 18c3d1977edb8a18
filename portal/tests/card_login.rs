//! The card login end to end but the browser: tokens as a card makes them, certificates whose
//! AIA points at imza's OCSP responder on loopback, the chain and OCSP checked for real. The
//! order holds: a certificate refused by OCSP is refused as such even when its token's
//! signature is also wrong.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use imza_core::clock::SystemClock;
use imza_core::ext;
use imza_core::key::KeyAlgorithm;
use imza_http::HttpClient;
use imza_ocsp::CertStatusInfo;
use imza_portal::card::CardLogin;
use imza_portal::webeid::{ChallengeNonce, TokenAlgorithm, TokenError};
use imza_testdata::ocsp::OcspResponder;
use imza_testdata::pki::TestCa;
use imza_validation::{AuthenticationTrust, Certificate, FetchCache, FetchCacheConfig};
use time::OffsetDateTime;
use x509_cert::ext::pkix::CrlReason;

/// The portal's card login trusting `anchor`, OCSP over loopback.
fn login(anchor: &TestCa) -> CardLogin {
    let trust = AuthenticationTrust::new(
        vec![Certificate::from_der(anchor.der.clone()).unwrap()],
        Box::new(HttpClient {
            timeout: Duration::from_secs(5),
            ..HttpClient::default()
        }),
        Arc::new(SystemClock),
    );
    CardLogin::new(ORIGIN, vec![CARD_AUTH], trust, Arc::new(SystemClock)).unwrap()
}

/// A card whose authentication certificate names `ocsp_url` in its AIA.
fn card_answered_at(ca: &TestCa, ocsp_url: &str) -> Card {
    let mut extensions = card_auth();
    extensions.push(ext::authority_info_access(Some(ocsp_url), None).unwrap());
    card(ca, KeyAlgorithm::EcP256, extensions)
}

fn serial_of(card: &Card) -> Vec<u8> {
    Certificate::from_der(card.certificate.clone())
        .unwrap()
        .serial()
        .to_vec()
}

fn nonce() -> ChallengeNonce {
    ChallengeNonce::generate(OffsetDateTime::now_utc()).unwrap()
}

#[test]
fn a_good_card_logs_in_as_the_citizen_its_certificate_names() {
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let card = card_answered_at(&ca, &ocsp.url);
    ocsp.statuses.set(&serial_of(&card), CertStatusInfo::Good);
    let nonce = nonce();
    let json = token(&card, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.1");
    let done = login(&ca).login(&json, &nonce).unwrap();
    assert_eq!(done.citizen.name, "Gunay Aliyeva");
    assert_eq!(done.citizen.personal_code, "PNOAZ-5ZK7T2Q");
    assert_eq!(done.citizen.country.as_deref(), Some("AZ"));
    assert_eq!(
        done.citizen.certificate_serial,
        imza_core::cert::serial_hex(&serial_of(&card))
    );
    assert_eq!(done.token.certificate_der, card.certificate);
}

#[test]
fn revoked_unknown_unanswered_or_foreign_certificates_do_not_log_in() {
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let portal = login(&ca);

    // Revoked: refused with the reason, before the (also wrong) signature is looked at.
    let card = card_answered_at(&ca, &ocsp.url);
    ocsp.statuses.set(
        &serial_of(&card),
        CertStatusInfo::Revoked {
            at: OffsetDateTime::now_utc() - time::Duration::hours(1),
            reason: Some(CrlReason::KeyCompromise),
        },
    );
    let nonce = nonce();
    let wrong_origin = token(
        &card,
        TokenAlgorithm::Es256,
        "https://portal-gov.az",
        &nonce,
        "web-eid:1.0",
    );
    match portal.login(&wrong_origin, &nonce) {
        Err(TokenError::Chain(why)) => assert!(why.contains("revoked"), "{why}"),
        other => panic!("{other:?}"),
    }

    // Unknown to the responder: no login.
    let unknown = card_answered_at(&ca, &ocsp.url);
    let json = token(
        &unknown,
        TokenAlgorithm::Es256,
        ORIGIN,
        &nonce,
        "web-eid:1.0",
    );
    assert!(matches!(
        portal.login(&json, &nonce),
        Err(TokenError::Chain(_))
    ));

    // No OCSP answer at all (nothing listens there): OCSP is required, so no login.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/ocsp", closed.local_addr().unwrap());
    drop(closed);
    let unanswered = card_answered_at(&ca, &dead_url);
    let json = token(
        &unanswered,
        TokenAlgorithm::Es256,
        ORIGIN,
        &nonce,
        "web-eid:1.0",
    );
    assert!(matches!(
        portal.login(&json, &nonce),
        Err(TokenError::Chain(_))
    ));

    // A certificate from a CA the portal does not trust, its OCSP saying good.
    let stranger_ca = TestCa::root("CN=Look-alike CA,O=Elsewhere,C=AZ", KeyAlgorithm::EcP256);
    let stranger_ocsp = OcspResponder::for_ca(&stranger_ca);
    let foreign = card_answered_at(&stranger_ca, &stranger_ocsp.url);
    stranger_ocsp
        .statuses
        .set(&serial_of(&foreign), CertStatusInfo::Good);
    let json = token(
        &foreign,
        TokenAlgorithm::Es256,
        ORIGIN,
        &nonce,
        "web-eid:1.0",
    );
    assert!(matches!(
        portal.login(&json, &nonce),
        Err(TokenError::Chain(_))
    ));

    // The good case on the same portal, so the refusals above are the certificates' own.
    let good = card_answered_at(&ca, &ocsp.url);
    ocsp.statuses.set(&serial_of(&good), CertStatusInfo::Good);
    let json = token(&good, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.0");
    assert!(portal.login(&json, &nonce).is_ok());
    // …and the same good card's token for a look-alike origin is refused by its signature.
    let relayed = token(
        &good,
        TokenAlgorithm::Es256,
        "https://portal-gov.az",
        &nonce,
        "web-eid:1.0",
    );
    assert_eq!(
        portal.login(&relayed, &nonce).unwrap_err(),
        TokenError::Signature
    );
}

#[test]
fn a_portal_origin_that_is_not_an_origin_is_refused_at_set_up() {
    let ca = ca();
    let trust = AuthenticationTrust::new(
        vec![Certificate::from_der(ca.der.clone()).unwrap()],
        Box::new(HttpClient::default()),
        Arc::new(SystemClock),
    );
    assert!(matches!(
        CardLogin::new(
            "https://portal.gov.az/",
            vec![CARD_AUTH],
            trust,
            Arc::new(SystemClock)
        ),
        Err(TokenError::Origin(_))
    ));
}

#[test]
fn with_the_fetch_cache_a_cards_ocsp_answer_serves_its_next_logins() {
    let ca = ca();
    let ocsp = OcspResponder::for_ca(&ca);
    let cards: Vec<Card> = (0..3).map(|_| card_answered_at(&ca, &ocsp.url)).collect();
    for card in &cards {
        ocsp.statuses.set(&serial_of(card), CertStatusInfo::Good);
    }
    let cache = Arc::new(FetchCache::new(
        FetchCacheConfig::default(),
        Arc::new(SystemClock),
    ));
    let portal = login(&ca).with_fetch_cache(Arc::clone(&cache));
    // More logins than one request's cap on outbound fetches: each login is a request.
    for round in 0..20 {
        for card in &cards {
            let nonce = nonce();
            let json = token(card, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.1");
            portal
                .login(&json, &nonce)
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
    let stats = cache.stats();
    assert_eq!(stats.outbound, 3, "{stats:?}");
    assert_eq!(stats.hits, 57, "{stats:?}");
}
