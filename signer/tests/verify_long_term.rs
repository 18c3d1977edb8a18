//! B-LT and B-LTA: a signature raised by imza's signing side (`augment`) carries the CRLs that
//! validate its signer and TSA, so it validates with the network off and no CRL given; an
//! archive time-stamp is verified (imprint over the archive data, token, TSA path), and a
//! signature changed after it was archived no longer matches the archive time-stamp.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use der::Encode;
use imza_core::clock::whole_seconds;
use imza_core::KeyAlgorithm;
use imza_signer::{augment, verify, AugmentOptions, Indication, Level, ValidationDataSources};
use imza_validation::{Fetcher, NetworkFailure, ValidationError};
use time::{Duration, OffsetDateTime};

const DOCUMENT: &[u8] = b"Long-term archived decision, 2026.\n";

/// Answers the root's CRL at [`CRL_URL`]; nothing else.
struct CrlServer(Vec<u8>);

impl Fetcher for CrlServer {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, ValidationError> {
        if url == CRL_URL {
            Ok(self.0.clone())
        } else {
            Err(ValidationError::network(url, NetworkFailure::status(404)))
        }
    }

    fn post_ocsp(&self, url: &str, _: &[u8]) -> Result<Vec<u8>, ValidationError> {
        Err(ValidationError::network(url, NetworkFailure::status(404)))
    }
}

/// A detached B-T signature raised to `level` by `augment`, with the root's CRL fetched
/// through [`CrlServer`].
fn raised(pki: &Pki, level: Level) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let signature = pki.openssl_sign(DOCUMENT, false, &["-cades"]);
    let token = pki.token(&signature_value(&signature), now - Duration::minutes(10));
    let b_t = with_timestamp(&signature, &token);
    let mut sources = ValidationDataSources::new(vec![pki.root.der.clone()]);
    sources.fetcher = Arc::new(CrlServer(pki.crl(&[], now)));
    sources.time = now;
    let tsa = LocalTsa(pki.authority());
    let options = AugmentOptions {
        timestamper: Some(&tsa),
        validation: Some(&sources),
        archive_digest: None,
    };
    augment(&b_t, Some(DOCUMENT), level, &options)
        .unwrap_or_else(|e| panic!("augment to {level}: {e}"))
}

#[test]
fn b_lt_validates_offline_from_what_it_carries() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let signature = raised(&pki, Level::LT);
    let now = whole_seconds(OffsetDateTime::now_utc()) + Duration::minutes(1);
    // No CRL given, network off: the embedded CRL covers the signer and the TSA.
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[], now));
    assert_verdict(&report, Indication::TotalPassed, None);
    let s = only(&report);
    assert_eq!(s.level, Some("B-LT"));
    assert_eq!(s.revocation[0].source, Some("CRL"));
    assert!(s.timestamps.iter().all(|t| t.valid), "{s:#?}");
}

#[test]
fn b_lta_archive_timestamp_is_verified() {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let signature = raised(&pki, Level::LTA);
    let now = whole_seconds(OffsetDateTime::now_utc()) + Duration::minutes(1);
    let report = verify(&signature, Some(DOCUMENT), &pki.options(&[], now));
    assert_verdict(&report, Indication::TotalPassed, None);
    let s = only(&report);
    assert_eq!(s.level, Some("B-LTA"));
    let kinds: Vec<(&str, bool)> = s.timestamps.iter().map(|t| (t.kind, t.valid)).collect();
    assert_eq!(
        kinds,
        vec![("archive", true), ("signature", true)],
        "{s:#?}"
    );

    // The archive time-stamp covers the content: verified against another document, the
    // signature fails (HASH_FAILURE) and so does the archive time-stamp's imprint.
    let report = verify(
        &signature,
        Some(b"another document"),
        &pki.options(&[], now),
    );
    let s = only(&report);
    assert_eq!(s.indication, Indication::TotalFailed, "{s:#?}");
}

#[test]
fn an_archive_timestamp_over_other_data_is_reported_and_gives_no_proof() {
    // A B-LTA signature whose archive time-stamp is moved onto another B-LT signature of the
    // same document: its imprint no longer matches.
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let lta = raised(&pki, Level::LTA);
    let lt = raised(&pki, Level::LT);
    let archive = signed_data(&lta).signer_infos.0.as_slice()[0]
        .unsigned_attrs
        .as_ref()
        .unwrap()
        .iter()
        .find(|a| a.oid == imza_core::oids::ATTR_ARCHIVE_TIME_STAMP_V3)
        .unwrap()
        .values
        .get(0)
        .unwrap()
        .to_der()
        .unwrap();
    let moved = with_unsigned_attribute(&lt, imza_core::oids::ATTR_ARCHIVE_TIME_STAMP_V3, &archive);
    let now = whole_seconds(OffsetDateTime::now_utc()) + Duration::minutes(1);
    let report = verify(&moved, Some(DOCUMENT), &pki.options(&[], now));
    let s = only(&report);
    // The signature itself is still good; the archive time-stamp is refused.
    assert_eq!(s.indication, Indication::TotalPassed, "{s:#?}");
    let archive = s
        .timestamps
        .iter()
        .find(|t| t.kind == "archive")
        .expect("the archive time-stamp is reported");
    assert!(!archive.valid, "{archive:#?}");
    assert!(s.warnings.iter().any(|w| w.contains("archive")), "{s:#?}");
}
