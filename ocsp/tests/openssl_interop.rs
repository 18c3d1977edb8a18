//! The responder against an independent client: requests made by `openssl ocsp`, answered by
//! imza's [`Responder`], and verified by `openssl ocsp -respin ... -CAfile` (signature, the
//! delegated responder's chain and authority, the nonce, and the status of each certificate).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{path_str, run, Pki, Run};
use imza_ocsp::{parse_response, CertStatusInfo, ResponseStatus};
use time::OffsetDateTime;

/// Makes a request with `openssl ocsp -issuer ca.pem ARGS -reqout NAME.req`.
fn openssl_request(pki: &Pki, name: &str, args: &[&str]) -> Vec<u8> {
    let req = pki.path(&format!("{name}.req"));
    let mut all = vec!["ocsp", "-issuer", path_str(&pki.ca.pem)];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-reqout", path_str(&req)]);
    let out = run("openssl", &all);
    assert!(out.ok, "openssl ocsp -reqout failed: {}", out.text());
    std::fs::read(req).unwrap()
}

/// Answers `request` with imza, then has openssl check the answer twice:
/// against the request as sent (`-reqin`: signature, chain, delegated responder's authority
/// and the nonce), and per certificate (`-cert ... -no_nonce`: the status lines). `-cert`
/// makes openssl build a fresh request, so the nonce can only be checked in the first run.
fn answer_and_verify(pki: &Pki, name: &str, request: &[u8], cert_args: &[&str]) -> Run {
    let resp = pki.answer_to_file(request, &format!("{name}.resp"));
    let req = pki.path(&format!("{name}.req"));
    let base = [
        "ocsp",
        "-respin",
        path_str(&resp),
        "-issuer",
        path_str(&pki.ca.pem),
        "-CAfile",
        path_str(&pki.ca.pem),
    ];
    let mut against_request = base.to_vec();
    against_request.extend_from_slice(&["-reqin", path_str(&req), "-resp_text"]);
    let checked = run("openssl", &against_request);
    assert_verified(&checked);
    let mut per_cert = base.to_vec();
    per_cert.push("-no_nonce");
    per_cert.extend_from_slice(cert_args);
    let statuses = run("openssl", &per_cert);
    Run {
        ok: checked.ok && statuses.ok,
        stdout: format!("{}\n{}", checked.stdout, statuses.stdout),
        stderr: format!("{}\n{}", checked.stderr, statuses.stderr),
    }
}

fn assert_verified(out: &Run) {
    assert!(out.ok, "openssl ocsp failed:\n{}", out.text());
    assert!(
        out.stderr.contains("Response verify OK"),
        "openssl did not verify the response:\n{}",
        out.text()
    );
    assert!(
        !out.text().contains("WARNING"),
        "openssl warned:\n{}",
        out.text()
    );
}

fn status_line(out: &Run, pem: &std::path::Path) -> String {
    let prefix = format!("{}: ", path_str(pem));
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no status line for {}:\n{}", pem.display(), out.text()))
        .trim()
        .to_string()
}

#[test]
fn good_certificate_is_reported_good_and_verifies() {
    let pki = Pki::new();
    let good = path_str(&pki.good.pem);
    let req = openssl_request(&pki, "good", &["-cert", good]);
    let out = answer_and_verify(&pki, "good", &req, &["-cert", good]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.good.pem), "good");
}

#[test]
fn revoked_certificate_is_reported_with_time_and_reason() {
    let pki = Pki::new();
    let revoked = path_str(&pki.revoked.pem);
    let req = openssl_request(&pki, "revoked", &["-cert", revoked]);
    let out = answer_and_verify(&pki, "revoked", &req, &["-cert", revoked]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.revoked.pem), "revoked");
    assert!(
        out.stdout.contains("Reason: keyCompromise"),
        "{}",
        out.text()
    );
    let resp = parse_response(&std::fs::read(pki.path("revoked.resp")).unwrap()).unwrap();
    assert_eq!(
        resp.basic.unwrap().responses[0].status,
        CertStatusInfo::Revoked {
            at: pki.revoked_at,
            reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise)
        }
    );
}

#[test]
fn serial_never_issued_is_reported_unknown() {
    let pki = Pki::new();
    let ghost = path_str(&pki.never_issued.pem);
    let req = openssl_request(&pki, "ghost", &["-cert", ghost]);
    let out = answer_and_verify(&pki, "ghost", &req, &["-cert", ghost]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.never_issued.pem), "unknown");
}

#[test]
fn nonce_is_echoed_and_checked_by_openssl() {
    let pki = Pki::new();
    let good = path_str(&pki.good.pem);
    let req = openssl_request(&pki, "nonce", &["-cert", good]);
    let parsed = imza_ocsp::parse_request(&req).unwrap();
    let nonce = parsed.nonce.expect("openssl sends a nonce by default");
    let answer = pki
        .responder()
        .respond(&req, OffsetDateTime::now_utc(), &pki.source);
    assert!(answer.has_nonce);
    let resp = parse_response(&answer.der).unwrap();
    assert_eq!(resp.basic.unwrap().nonce, Some(nonce.value));
    let out = answer_and_verify(&pki, "nonce", &req, &["-cert", good]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.good.pem), "good");

    // openssl really compares the nonces: the same answer against another request fails.
    let other = openssl_request(&pki, "other_nonce", &["-cert", good]);
    assert_ne!(other, req);
    let out = run(
        "openssl",
        &[
            "ocsp",
            "-respin",
            path_str(&pki.path("nonce.resp")),
            "-reqin",
            path_str(&pki.path("other_nonce.req")),
            "-CAfile",
            path_str(&pki.ca.pem),
        ],
    );
    assert!(
        !out.ok && out.text().contains("Nonce Verify error"),
        "{}",
        out.text()
    );
}

#[test]
fn request_without_nonce_gets_a_cacheable_answer() {
    let pki = Pki::new();
    let good = path_str(&pki.good.pem);
    let req = openssl_request(&pki, "no_nonce", &["-no_nonce", "-cert", good]);
    let now = OffsetDateTime::now_utc();
    let answer = pki.responder().respond(&req, now, &pki.source);
    assert!(!answer.has_nonce);
    let this_update = answer.this_update.unwrap();
    assert_eq!(
        answer.next_update.unwrap() - this_update,
        imza_ocsp::responder::DEFAULT_VALIDITY
    );
    assert!(parse_response(&answer.der)
        .unwrap()
        .basic
        .unwrap()
        .nonce
        .is_none());
    let out = answer_and_verify(&pki, "no_nonce", &req, &["-cert", good]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.good.pem), "good");
}

#[test]
fn sha256_cert_ids_are_answered_and_echoed() {
    let pki = Pki::new();
    let good = path_str(&pki.good.pem);
    let req = openssl_request(&pki, "sha256", &["-sha256", "-cert", good]);
    let parsed = imza_ocsp::parse_request(&req).unwrap();
    assert_eq!(parsed.certs[0].hash, Some(imza_ocsp::CertIdHash::Sha256));
    let out = answer_and_verify(&pki, "sha256", &req, &["-sha256", "-cert", good]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.good.pem), "good");
    let resp = parse_response(&std::fs::read(pki.path("sha256.resp")).unwrap()).unwrap();
    assert_eq!(
        resp.basic.unwrap().responses[0].cert_id,
        parsed.certs[0].cert_id
    );
}

#[test]
fn several_certificates_in_one_request_get_one_signed_response() {
    let pki = Pki::new();
    let certs = [
        path_str(&pki.good.pem),
        path_str(&pki.revoked.pem),
        path_str(&pki.never_issued.pem),
        path_str(&pki.good2.pem),
    ];
    let args: Vec<&str> = certs.iter().flat_map(|c| ["-cert", *c]).collect();
    let req = openssl_request(&pki, "multi", &args);
    let out = answer_and_verify(&pki, "multi", &req, &args);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.good.pem), "good");
    assert_eq!(status_line(&out, &pki.revoked.pem), "revoked");
    assert_eq!(status_line(&out, &pki.never_issued.pem), "unknown");
    assert_eq!(status_line(&out, &pki.good2.pem), "good");
    let resp = parse_response(&std::fs::read(pki.path("multi.resp")).unwrap()).unwrap();
    assert_eq!(resp.basic.unwrap().responses.len(), 4);
}

#[test]
fn ca_not_served_is_unauthorized() {
    let pki = Pki::new();
    let req = pki.path("other.req");
    let out = run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            path_str(&pki.other_ca.pem),
            "-cert",
            path_str(&pki.other_leaf.pem),
            "-reqout",
            path_str(&req),
        ],
    );
    assert!(out.ok, "{}", out.text());
    let answer = pki.responder().respond(
        &std::fs::read(&req).unwrap(),
        OffsetDateTime::now_utc(),
        &pki.source,
    );
    assert_eq!(answer.status, ResponseStatus::Unauthorized);
    assert!(matches!(
        answer.problem,
        Some(imza_ocsp::OcspError::IssuerNotServed { .. })
    ));
    let resp = pki.path("other.resp");
    std::fs::write(&resp, &answer.der).unwrap();
    let out = run(
        "openssl",
        &["ocsp", "-respin", path_str(&resp), "-resp_text"],
    );
    assert!(
        out.text().contains("unauthorized"),
        "openssl should read an unauthorized response:\n{}",
        out.text()
    );
}

#[test]
fn rsa_responder_key_verifies_too() {
    let pki = Pki::with_keys(
        imza_core::KeyAlgorithm::Rsa2048,
        imza_core::KeyAlgorithm::Rsa2048,
    );
    let revoked = path_str(&pki.revoked.pem);
    let req = openssl_request(&pki, "rsa", &["-cert", revoked]);
    let out = answer_and_verify(&pki, "rsa", &req, &["-cert", revoked]);
    assert_verified(&out);
    assert_eq!(status_line(&out, &pki.revoked.pem), "revoked");
}
