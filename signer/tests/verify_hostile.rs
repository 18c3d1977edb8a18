//! Hostile input never panics and never passes: random bytes, every truncation of a real
//! signature, deeply nested and oversized lengths are FORMAT_FAILURE; a byte changed anywhere
//! in a real signature gives some verdict, never a panic.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use imza_core::KeyAlgorithm;
use imza_signer::{verify, Indication, SubIndication, VerifyOptions};
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"hostile input test document\n";

/// `len` reproducible pseudo-random bytes (xorshift64) from `state`, which moves on.
fn noise(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 24) as u8
        })
        .collect()
}

fn assert_format_failure(input: &[u8], options: &VerifyOptions) {
    let report = verify(input, Some(DOCUMENT), options);
    assert!(!report.valid);
    let s = only(&report);
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::FORMAT_FAILURE)),
        "input of {} bytes starting {:02x?}: {report:#?}",
        input.len(),
        &input[..input.len().min(8)]
    );
}

#[test]
fn random_bytes_are_format_failures() {
    let options = VerifyOptions::new(Vec::new(), OffsetDateTime::now_utc());
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for len in [0, 1, 2, 3, 16, 100, 1000, 5000] {
        for _ in 0..20 {
            let mut input = noise(&mut state, len);
            assert_format_failure(&input, &options);
            // The same with a plausible SEQUENCE header in front.
            if len > 4 {
                input[0] = 0x30;
                input[1] = 0x82;
                assert_format_failure(&input, &options);
            }
        }
    }
}

#[test]
fn every_truncation_of_a_signature_is_a_format_failure() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = OffsetDateTime::now_utc();
    let options = pki.clean_options(now);
    let signature = with_timestamp(
        &pki.openssl_sign(DOCUMENT, true, &[]),
        &pki.token(b"x", now),
    );
    for len in 0..signature.len() {
        assert_format_failure(&signature[..len], &options);
    }
}

#[test]
fn deep_nesting_and_huge_lengths_are_format_failures() {
    let options = VerifyOptions::new(Vec::new(), OffsetDateTime::now_utc());
    // 100,000 nested indefinite-length SEQUENCEs, and definite ones.
    let mut indefinite = [0x30u8, 0x80].repeat(100_000);
    indefinite.extend(vec![0x00; 200_000]);
    assert_format_failure(&indefinite, &options);
    let mut definite = Vec::new();
    for _ in 0..10_000 {
        let len = definite.len();
        let mut outer = vec![0x30, 0x84];
        outer.extend((len as u32).to_be_bytes());
        outer.extend(definite);
        definite = outer;
    }
    assert_format_failure(&definite, &options);
    // A length far larger than the input.
    assert_format_failure(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x06, 0x00], &options);
    // A ContentInfo of signedData whose content is nested SETs.
    let mut nested = [0x31u8, 0x80].repeat(50_000);
    nested.extend(vec![0x00; 100_000]);
    let mut ci = vec![
        0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80,
    ];
    ci.extend(nested);
    assert_format_failure(&ci, &options);
}

#[test]
fn a_byte_changed_anywhere_gives_a_verdict_and_no_panic() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = OffsetDateTime::now_utc();
    let options = pki.clean_options(now);
    let signature = pki.openssl_sign(DOCUMENT, false, &[]);
    let mut state = 0x2545_f491_4f6c_dd1d;
    let mut failures = 0;
    for i in 0..signature.len() {
        let mut changed = signature.clone();
        let flip = noise(&mut state, 1)[0] | 1;
        changed[i] ^= flip;
        let report = verify(&changed, Some(DOCUMENT), &options);
        assert!(!report.signatures.is_empty());
        if !report.valid {
            failures += 1;
        }
    }
    // Most bytes are covered by the signature or the structure; a few (the unused
    // digestAlgorithms set, unsigned attributes) are not.
    assert!(
        failures > signature.len() / 2,
        "{failures} of {}",
        signature.len()
    );
}
