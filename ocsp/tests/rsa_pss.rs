//! Responses `openssl ocsp` signs with RSASSA-PSS verify in imza under the parameters they
//! declare: the maximum salt (openssl's, pyHanko's and endesive's choice), 20 bytes and the
//! hash length (RFC 4055 §3.1).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use der::Decode;
use imza_ocsp::{parse_response, verify_response, CertStatusInfo, VerifyOptions};
use time::OffsetDateTime;
use x509_cert::Certificate;

/// Runs `openssl` with `args` in `dir`, failing the test with its stderr.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    imza_testdata::tools::openssl_in(dir, args)
}

#[test]
fn responses_openssl_signs_with_rsa_pss_and_any_salt_verify() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    openssl(
        at,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=PSS OCSP CA/O=imza/C=AZ",
            "-days",
            "2",
        ],
    );
    std::fs::write(at.join("index.txt"), "").unwrap();
    openssl(
        at,
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-serial",
            "0x07",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    let pem = std::fs::read(at.join("ca.pem")).unwrap();
    let ca = Certificate::from_der(
        &openssl::x509::X509::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap(),
    )
    .unwrap();
    for salt in ["max", "20", "digest"] {
        let salt_option = format!("rsa_pss_saltlen:{salt}");
        openssl(
            at,
            &[
                "ocsp",
                "-index",
                "index.txt",
                "-rsigner",
                "ca.pem",
                "-rkey",
                "ca.key",
                "-CA",
                "ca.pem",
                "-reqin",
                "req.der",
                "-respout",
                "resp.der",
                "-rmd",
                "sha256",
                "-rsigopt",
                "rsa_padding_mode:pss",
                "-rsigopt",
                &salt_option,
                "-ndays",
                "1",
            ],
        );
        let der = std::fs::read(at.join("resp.der")).unwrap();
        let basic = parse_response(&der).unwrap().basic.unwrap();
        // The CA signs its own responses; serial 7 is not in its index.
        assert_eq!(basic.responses[0].status, CertStatusInfo::Unknown);
        let options = VerifyOptions {
            trusted: std::slice::from_ref(&ca),
            untrusted: &[],
            at: OffsetDateTime::now_utc(),
            accept_sha1_signatures: false,
        };
        let signer =
            verify_response(&basic, &options).unwrap_or_else(|e| panic!("salt {salt}: {e}"));
        assert!(!signer.delegated);
    }
}
