//! Detached content read as a stream ([`imza_signer::verify_reader`]) gives the verdicts the
//! same content in memory gives: only its digests are taken, except for a SignerInfo without
//! signed attributes, whose signature is over the bytes themselves (kept while they fit).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use imza_core::KeyAlgorithm;
use imza_signer::{verify, verify_reader, SubIndication, MAX_KEPT_CONTENT_BYTES};
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"a document read as a stream\n";

#[test]
fn a_streamed_document_gives_the_verdicts_of_the_same_bytes() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let options = pki.clean_options(OffsetDateTime::now_utc());
    let signature = pki.openssl_sign(DOCUMENT, false, &[]);
    let streamed = verify_reader(&signature, &mut &DOCUMENT[..], &options).unwrap();
    assert!(streamed.valid, "{streamed:#?}");
    assert!(verify(&signature, Some(DOCUMENT), &options).valid);

    let other = b"another document".as_slice();
    let report = verify_reader(&signature, &mut &other[..], &options).unwrap();
    assert_failed(&report, SubIndication::HASH_FAILURE);
    // The same verdict, word for word, as with the bytes in memory.
    assert_eq!(
        only(&report).errors,
        only(&verify(&signature, Some(other), &options)).errors
    );
}

#[test]
fn a_signature_without_signed_attributes_is_checked_against_the_kept_bytes() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let options = pki.clean_options(OffsetDateTime::now_utc());
    let signature = pki.openssl_sign(DOCUMENT, false, &["-noattr"]);
    let report = verify_reader(&signature, &mut &DOCUMENT[..], &options).unwrap();
    assert!(report.valid, "{report:#?}");
    let report = verify_reader(&signature, &mut &b"tampered"[..], &options).unwrap();
    assert_failed(&report, SubIndication::SIG_CRYPTO_FAILURE);
    // Past what is kept, such a signature cannot be checked: said so, not guessed.
    let mut huge = std::io::Read::take(std::io::repeat(0), MAX_KEPT_CONTENT_BYTES + 1);
    let report = verify_reader(&signature, &mut huge, &options).unwrap();
    assert_indeterminate(&report, SubIndication::SIGNED_DATA_NOT_FOUND);
    assert!(
        only(&report).errors[0].contains("kept only up to"),
        "{report:#?}"
    );
}

#[test]
fn a_signature_that_does_not_parse_is_reported_without_reading_the_content() {
    struct Unread;
    impl std::io::Read for Unread {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("the content was read for a signature that does not parse")
        }
    }
    let options = imza_signer::VerifyOptions::new(Vec::new(), OffsetDateTime::now_utc());
    let report = verify_reader(b"not a signature", &mut Unread, &options).unwrap();
    assert_failed(&report, SubIndication::FORMAT_FAILURE);
}
