//! Signature time-stamps as proof of existence (EN 319 102-1 §5.6.2.4): a signature whose
//! certificate was revoked after a valid time-stamp stays valid, one revoked before it does
//! not; a time-stamp over something else gives no proof; tokens come from imza's real TSA,
//! in process at a chosen genTime and over HTTP on loopback.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration as StdDuration;

use common::*;
use imza_core::alg::DigestAlgorithm;
use imza_core::clock::whole_seconds;
use imza_core::KeyAlgorithm;
use imza_signer::{verify, Indication, SubIndication};
use imza_testdata::loopback::LoopbackServer;
use imza_tsa::{build_request, parse_response};
use time::{Duration, OffsetDateTime};

const DOCUMENT: &[u8] = b"Diploma: Baki Dovlet Universiteti, 2026.\n";

/// A detached openssl signature with a token made at `gen_time` over its signature value.
fn b_t(pki: &Pki, gen_time: OffsetDateTime) -> Vec<u8> {
    let signature = pki.openssl_sign(DOCUMENT, false, &[]);
    let token = pki.token(&signature_value(&signature), gen_time);
    with_timestamp(&signature, &token)
}

#[test]
fn a_timestamped_signature_is_validated_at_the_timestamp() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = whole_seconds(OffsetDateTime::now_utc());
    let gen_time = now - Duration::hours(1);
    let signature = b_t(&pki, gen_time);
    let report = verify(&signature, Some(DOCUMENT), &pki.clean_options(now));
    assert_verdict(&report, Indication::TotalPassed, None);
    let s = only(&report);
    assert_eq!(s.level, Some("B-T"));
    assert_eq!(s.poe_time, Some(gen_time));
    let [ts] = s.timestamps.as_slice() else {
        panic!("one time-stamp expected: {s:#?}");
    };
    assert!(ts.valid, "{ts:#?}");
    assert_eq!(ts.kind, "signature");
    assert_eq!(ts.time, Some(gen_time));
    assert_eq!(ts.tsa.as_deref(), Some(TSA_SUBJECT));
}

#[test]
fn revoked_after_the_timestamp_passes_and_says_when() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = whole_seconds(OffsetDateTime::now_utc());
    let gen_time = now - Duration::hours(2);
    let revoked_at = now - Duration::hours(1);
    let signature = b_t(&pki, gen_time);
    let crl = pki.crl(&[(SIGNER_SERIAL, revoked_at)], now);
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[crl], now));
    assert_verdict(&report, Indication::TotalPassed, None);
    let s = only(&report);
    assert_eq!(s.revocation[0].revoked_later, Some(revoked_at), "{s:#?}");
    assert!(
        s.warnings.iter().any(|w| w.contains("stays valid")),
        "{s:#?}"
    );
}

#[test]
fn revoked_before_the_timestamp_fails() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = whole_seconds(OffsetDateTime::now_utc());
    let revoked_at = now - Duration::hours(2);
    let gen_time = now - Duration::hours(1);
    let signature = b_t(&pki, gen_time);
    let crl = pki.crl(&[(SIGNER_SERIAL, revoked_at)], now);
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[crl], now));
    assert_failed(&report, SubIndication::REVOKED);
}

#[test]
fn a_timestamp_over_other_data_gives_no_proof_of_existence() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = whole_seconds(OffsetDateTime::now_utc());
    let signature = pki.openssl_sign(DOCUMENT, false, &[]);
    let token = pki.token(b"not the signature value", now - Duration::hours(3));
    let signature = with_timestamp(&signature, &token);
    // Revoked an hour ago: with the bad time-stamp ignored there is no proof the signature
    // existed before.
    let crl = pki.crl(&[(SIGNER_SERIAL, now - Duration::hours(1))], now);
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[crl], now));
    assert_indeterminate(&report, SubIndication::REVOKED_NO_POE);
    let s = only(&report);
    assert_eq!(s.poe_time, Some(now));
    let ts = &s.timestamps[0];
    assert!(!ts.valid);
    assert_eq!(ts.indication, Indication::TotalFailed);
    assert_eq!(ts.sub_indication, Some(SubIndication::HASH_FAILURE));
    assert!(
        ts.error.as_deref().unwrap_or("").contains("imprint"),
        "{ts:#?}"
    );
}

#[test]
fn a_timestamp_without_revocation_data_for_its_tsa_is_not_accepted() {
    // Revocation is required for the TSA's certificate too: with no CRL at all the time-stamp
    // is INDETERMINATE/TRY_LATER and the signature waits as well.
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = whole_seconds(OffsetDateTime::now_utc());
    let signature = b_t(&pki, now - Duration::hours(1));
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[], now));
    assert_indeterminate(&report, SubIndication::TRY_LATER);
    let ts = &only(&report).timestamps[0];
    assert_eq!(ts.sub_indication, Some(SubIndication::TRY_LATER), "{ts:#?}");
}

/// POSTs a DER request to `url`'s port at `/tsa` and returns the body of the answer.
fn post_tsa(server: &LoopbackServer, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /tsa HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/timestamp-query\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = find(&answer, b"\r\n\r\n");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    answer[split + 4..].to_vec()
}

#[test]
fn a_token_from_the_tsa_on_loopback_makes_a_b_t_signature_that_passes() {
    let pki = Pki::new(KeyAlgorithm::Rsa2048);
    let server = imza_testdata::tsa::serve(pki.authority(), 1);
    let signature = pki.openssl_sign(DOCUMENT, true, &[]);
    let digest = DigestAlgorithm::Sha256.digest(&signature_value(&signature));
    let request = build_request(&digest, DigestAlgorithm::Sha256, None, true, None).unwrap();
    let token = parse_response(&post_tsa(&server, &request))
        .unwrap()
        .into_token()
        .unwrap();
    server.stop();
    let signature = with_timestamp(&signature, token.der());
    // Validated a little later, the genTime is the proof of existence.
    let now = whole_seconds(OffsetDateTime::now_utc()) + Duration::minutes(5);
    let report = verify(&signature, None, &pki.clean_options(now));
    assert_verdict(&report, Indication::TotalPassed, None);
    let s = only(&report);
    assert_eq!(s.poe_time, Some(token.gen_time()));
    assert!(s.timestamps[0].valid);
}
