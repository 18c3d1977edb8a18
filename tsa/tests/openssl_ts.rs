//! imza's TSA against OpenSSL's `ts` client: requests made by `openssl ts -query`, answered by
//! [`TimeStampAuthority::respond`], verified by `openssl ts -verify` and imza's own verifier.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{openssl, path_str, text, TestPki, POLICY};
use imza_core::KeyAlgorithm;
use imza_tsa::{
    parse_response, verify_token, Expectations, OpenSslPathValidator, PkiStatus, TimeStampRequest,
    VerificationTime,
};
use time::OffsetDateTime;

const DATA: &[u8] = b"The Republic's gazette, issue 3161: stamped at the moment it existed.\n";

/// One request/response round trip with the `openssl ts -query` flags `query_flags`; returns
/// (query path, reply path).
fn round_trip(
    pki: &TestPki,
    name: &str,
    query_flags: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = pki.path("data.txt");
    std::fs::write(&data, DATA).unwrap();
    let query = pki.path(&format!("{name}.tsq"));
    let mut args = vec!["ts", "-query", "-data", path_str(&data)];
    args.extend_from_slice(query_flags);
    args.extend_from_slice(&["-out", path_str(&query)]);
    let out = openssl(&args);
    assert!(out.status.success(), "openssl ts -query: {}", text(&out));

    let request = std::fs::read(&query).unwrap();
    let answer = pki.authority().respond(&request, OffsetDateTime::now_utc());
    assert_eq!(answer.status(), PkiStatus::Granted, "{:?}", answer.outcome);
    let reply = pki.path(&format!("{name}.tsr"));
    std::fs::write(&reply, &answer.der).unwrap();
    (query, reply)
}

fn openssl_verify(pki: &TestPki, query: &std::path::Path, reply: &std::path::Path) -> String {
    let out = openssl(&[
        "ts",
        "-verify",
        "-in",
        path_str(reply),
        "-queryfile",
        path_str(query),
        "-CAfile",
        path_str(&pki.ca_pem()),
        "-untrusted",
        path_str(&pki.tsa_pem()),
    ]);
    text(&out)
}

fn imza_verify(pki: &TestPki, query: &std::path::Path, reply: &std::path::Path) {
    let request = TimeStampRequest::from_der(&std::fs::read(query).unwrap()).unwrap();
    let token = parse_response(&std::fs::read(reply).unwrap())
        .unwrap()
        .into_token()
        .unwrap();
    assert_eq!(
        token.certificates().is_empty(),
        !request.cert_req(),
        "the certificate is in the token exactly when certReq is set"
    );
    let paths = OpenSslPathValidator::new(std::slice::from_ref(&pki.root.der)).unwrap();
    let verified = verify_token(
        &token,
        std::slice::from_ref(&pki.tsa.der),
        &paths,
        VerificationTime::At(OffsetDateTime::now_utc()),
        &Expectations {
            data: Some(DATA),
            request: Some(&request),
            policy: Some(&POLICY.to_string()),
            signer_subject: Some("CN=imza Test TSA,O=imza,C=AZ"),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(verified.signer_certificate, pki.tsa.der);
}

#[test]
fn openssl_verifies_tokens_for_sha256_and_sha512_with_and_without_nonce_and_cert_req() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let combinations: [(&str, &[&str]); 6] = [
        ("sha256-cert-nonce", &["-sha256", "-cert"]),
        ("sha512-cert-nonce", &["-sha512", "-cert"]),
        ("sha256-cert-no-nonce", &["-sha256", "-cert", "-no_nonce"]),
        ("sha256-no-cert-nonce", &["-sha256"]),
        ("sha512-no-cert-no-nonce", &["-sha512", "-no_nonce"]),
        ("sha384-cert-nonce", &["-sha384", "-cert"]),
    ];
    for (name, flags) in combinations {
        let (query, reply) = round_trip(&pki, name, flags);
        let verdict = openssl_verify(&pki, &query, &reply);
        assert!(
            verdict.contains("Verification: OK"),
            "{name}: openssl ts -verify said: {verdict}"
        );
        imza_verify(&pki, &query, &reply);
    }
}

#[test]
fn openssl_verifies_tokens_signed_with_p384_and_rsa_keys() {
    for algorithm in [KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048] {
        let pki = TestPki::new(algorithm);
        let (query, reply) = round_trip(&pki, "q", &["-sha256", "-cert"]);
        let verdict = openssl_verify(&pki, &query, &reply);
        assert!(
            verdict.contains("Verification: OK"),
            "{algorithm}: openssl ts -verify said: {verdict}"
        );
        imza_verify(&pki, &query, &reply);
    }
}

#[test]
fn openssl_verifies_a_token_against_the_data_itself() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let (_, reply) = round_trip(&pki, "q", &["-sha256", "-cert"]);
    let out = openssl(&[
        "ts",
        "-verify",
        "-in",
        path_str(&reply),
        "-data",
        path_str(&pki.path("data.txt")),
        "-CAfile",
        path_str(&pki.ca_pem()),
    ]);
    assert!(text(&out).contains("Verification: OK"), "{}", text(&out));
}

#[test]
fn openssl_reply_text_shows_policy_nonce_and_accuracy() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let (query, reply) = round_trip(&pki, "q", &["-sha256", "-cert"]);
    let query_text = text(&openssl(&[
        "ts",
        "-query",
        "-in",
        path_str(&query),
        "-text",
    ]));
    let nonce_line = query_text
        .lines()
        .find(|l| l.trim_start().starts_with("Nonce:"))
        .unwrap_or_else(|| panic!("no nonce in the query: {query_text}"))
        .trim()
        .to_string();
    let reply_text = text(&openssl(&[
        "ts",
        "-reply",
        "-in",
        path_str(&reply),
        "-text",
    ]));
    for expected in [
        "Status: Granted.",
        "Version: 1",
        "Policy OID: 0.4.0.2023.1.1",
        "Hash Algorithm: sha256",
        "Accuracy: 0x01 seconds, unspecified millis, unspecified micros",
        "Ordering: no",
        nonce_line.as_str(),
        "TSA: DirName:/C=AZ/O=imza/CN=imza Test TSA",
    ] {
        assert!(
            reply_text.contains(expected),
            "{expected:?} missing from openssl ts -reply -text:\n{reply_text}"
        );
    }
}
