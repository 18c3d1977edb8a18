//! pkilint's RFC 6960 linter (`lint_ocsp_response`, an independent implementation) finds
//! nothing at ERROR or above in imza's responses: good, revoked, unknown, with and without a
//! nonce, several CertIDs, SHA-256 CertIDs, EC and RSA responder keys.
//!
//! The linter lives in the project's venv (`scripts/setup.sh` installs it); without it the
//! test says so and passes, as the other pkilint tests of the workspace do.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{nonce_extension, path_str, request_for, run, Pki, Run};
use der::Decode;
use imza_ocsp::CertIdHash;
use time::OffsetDateTime;
use x509_cert::Certificate;

fn linter() -> Option<PathBuf> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.venv/bin/lint_ocsp_response"
    ));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} not found (run scripts/setup.sh to install pkilint)",
            path.display()
        );
        None
    }
}

fn request(pki: &Pki, serials: &[&[u8]], hash: CertIdHash, nonce: bool) -> Vec<u8> {
    request_for(
        &Certificate::from_der(&pki.ca.der).unwrap(),
        serials,
        hash,
        nonce.then(|| vec![nonce_extension(&[0x5a; 32])]),
    )
}

/// `lint_ocsp_response lint -s ERROR` on the DER response in `file`.
fn lint(linter: &Path, file: &Path) -> Run {
    run(
        path_str(linter),
        &[
            "lint",
            "-s",
            "ERROR",
            "--document-format",
            "DER",
            path_str(file),
        ],
    )
}

fn assert_lints_clean(pki: &Pki, linter: &Path, name: &str, request: &[u8]) {
    let file = pki.answer_to_file(request, &format!("{name}.ocsp"));
    let out = lint(linter, &file);
    assert!(
        out.ok && out.stdout.trim().is_empty(),
        "lint_ocsp_response found problems in the {name} response:\n{}",
        out.text()
    );
}

#[test]
fn pkilint_finds_no_error_in_good_revoked_and_unknown_responses() {
    let Some(linter) = linter() else { return };
    let pki = Pki::new();
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "good",
            request(&pki, &[&pki.good.serial], CertIdHash::Sha1, false),
        ),
        (
            "revoked",
            request(&pki, &[&pki.revoked.serial], CertIdHash::Sha1, false),
        ),
        (
            "unknown",
            request(&pki, &[&pki.never_issued.serial], CertIdHash::Sha1, false),
        ),
        (
            "nonce",
            request(&pki, &[&pki.revoked.serial], CertIdHash::Sha1, true),
        ),
        (
            "sha256",
            request(&pki, &[&pki.good.serial], CertIdHash::Sha256, true),
        ),
        (
            "multi",
            request(
                &pki,
                &[
                    &pki.good.serial,
                    &pki.revoked.serial,
                    &pki.never_issued.serial,
                ],
                CertIdHash::Sha1,
                false,
            ),
        ),
    ];
    for (name, req) in &cases {
        assert_lints_clean(&pki, &linter, name, req);
    }
}

#[test]
fn pkilint_finds_no_error_with_an_rsa_responder() {
    let Some(linter) = linter() else { return };
    let pki = Pki::with_keys(
        imza_core::KeyAlgorithm::Rsa3072,
        imza_core::KeyAlgorithm::Rsa2048,
    );
    for (name, serial) in [
        ("rsa-good", &pki.good.serial),
        ("rsa-revoked", &pki.revoked.serial),
    ] {
        let req = request(&pki, &[serial], CertIdHash::Sha1, true);
        assert_lints_clean(&pki, &linter, name, &req);
    }
}

#[test]
fn pkilint_is_live_and_catches_a_broken_response() {
    let Some(linter) = linter() else { return };
    let pki = Pki::new();
    let req = request(&pki, &[&pki.good.serial], CertIdHash::Sha1, false);
    let mut der = pki
        .responder()
        .respond(&req, OffsetDateTime::now_utc(), &pki.source)
        .der;
    // id-pkix-ocsp-basic (…48.1.1) -> …48.1.50: no longer a basic response.
    let basic = imza_core::oids::OCSP_BASIC.as_bytes().to_vec();
    let at = der.windows(basic.len()).position(|w| w == basic).unwrap();
    der[at + basic.len() - 1] = 50;
    let file = pki.path("broken.ocsp");
    std::fs::write(&file, &der).unwrap();
    let out = lint(&linter, &file);
    assert!(
        !out.ok && out.stdout.contains("pkix.ocsp_response_is_not_basic"),
        "the linter should flag the response type:\n{}",
        out.text()
    );
}
