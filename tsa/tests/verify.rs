//! imza's token verifier on imza's own tokens: what it must refuse (tampering, a missing or
//! untrusted certificate) and hostile responses it must read without panicking.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{noise, TestPki, POLICY};
use imza_core::alg::DigestAlgorithm;
use imza_core::KeyAlgorithm;
use imza_tsa::{
    build_request, parse_response, verify_token, Expectations, OpenSslPathValidator, ParsedToken,
    PathError, PathValidator, TsaError, VerificationTime,
};
use time::OffsetDateTime;

const DATA: &[u8] = b"diploma 2026/0042";

fn response(pki: &TestPki, cert_req: bool) -> Vec<u8> {
    let request = build_request(
        &DigestAlgorithm::Sha256.digest(DATA),
        DigestAlgorithm::Sha256,
        Some(&[0xab; 8]),
        cert_req,
        None,
    )
    .unwrap();
    pki.authority()
        .respond(&request, OffsetDateTime::now_utc())
        .der
}

/// The token of [`response`].
fn token(pki: &TestPki, cert_req: bool) -> ParsedToken {
    parse_response(&response(pki, cert_req))
        .unwrap()
        .into_token()
        .unwrap()
}

fn verify(pki: &TestPki, token: &ParsedToken, extra: &[Vec<u8>]) -> Result<(), TsaError> {
    let paths = OpenSslPathValidator::new(std::slice::from_ref(&pki.root.der)).unwrap();
    verify_token(
        token,
        extra,
        &paths,
        VerificationTime::At(OffsetDateTime::now_utc()),
        &Expectations {
            data: Some(DATA),
            ..Default::default()
        },
    )
    .map(|_| ())
}

#[test]
fn own_token_verifies_and_reports_its_fields() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let token = token(&pki, true);
    verify(&pki, &token, &[]).unwrap();
    assert_eq!(token.policy(), POLICY);
    assert_eq!(token.nonce_hex().unwrap(), "0xABABABABABABABAB");
    assert_eq!(
        token.tsa_name().unwrap(),
        "directoryName CN=imza Test TSA,O=imza,C=AZ"
    );
    assert_eq!(token.signer_count(), 1);
    assert_eq!(
        ParsedToken::from_der(token.der()).unwrap().der(),
        token.der()
    );
}

#[test]
fn a_different_document_is_an_imprint_mismatch() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let token = token(&pki, true);
    let paths = OpenSslPathValidator::new(std::slice::from_ref(&pki.root.der)).unwrap();
    let verdict = verify_token(
        &token,
        &[],
        &paths,
        VerificationTime::GenTime,
        &Expectations {
            data: Some(b"diploma 2026/0043"),
            ..Default::default()
        },
    );
    assert!(matches!(verdict, Err(TsaError::ImprintMismatch { .. })));
}

#[test]
fn token_without_certificate_needs_it_supplied() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let token = token(&pki, false);
    assert!(token.certificates().is_empty());
    assert!(matches!(
        verify(&pki, &token, &[]),
        Err(TsaError::SignerNotFound { .. })
    ));
    verify(&pki, &token, std::slice::from_ref(&pki.tsa.der)).unwrap();
}

#[test]
fn token_from_another_pki_fails_path_validation() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let other = TestPki::new(KeyAlgorithm::EcP256);
    let token = token(&other, true);
    let err = verify(&pki, &token, &[]).unwrap_err();
    // OpenSSL's verify code is kept as its number, the refused certificate's depth with it:
    // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20) for the TSA's own certificate, whose
    // issuer is not among the anchors.
    let TsaError::CertificatePath {
        source: PathError::OpenSslRefused { result, depth },
        ..
    } = &err
    else {
        panic!("expected OpenSSL's refusal, got {err:?}");
    };
    assert_eq!((result.as_raw(), *depth), (20, 0));
    let cause = std::error::Error::source(&err)
        .and_then(std::error::Error::source)
        .and_then(|e| e.downcast_ref::<openssl::x509::X509VerifyResult>());
    assert_eq!(cause, Some(result));
    assert!(err.to_string().contains("OpenSSL verify error 20"), "{err}");
}

#[test]
fn unreadable_signer_certificate_keeps_openssls_error_stack() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let paths = OpenSslPathValidator::new(std::slice::from_ref(&pki.root.der)).unwrap();
    let err = paths
        .validate(b"not a certificate", &[], OffsetDateTime::now_utc())
        .unwrap_err();
    assert!(matches!(err, PathError::OpenSsl(_)), "{err:?}");
    let stack = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<openssl::error::ErrorStack>())
        .unwrap();
    assert!(!stack.errors().is_empty());
}

#[test]
fn refusal_has_no_token_and_says_why() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let answer = pki.authority().respond(b"junk", OffsetDateTime::now_utc());
    let err = parse_response(&answer.der)
        .unwrap()
        .into_token()
        .unwrap_err();
    assert!(
        matches!(&err, TsaError::NotGranted { failure, .. } if failure.contains("badDataFormat")),
        "{err}"
    );
}

/// Every single-byte change to a response is either refused, or leaves what the token attests
/// (TSTInfo and signer) unchanged; none panics.
#[test]
fn tampered_responses_never_verify_with_changed_content() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let good = response(&pki, true);
    let original = parse_response(&good).unwrap().into_token().unwrap();
    let mut accepted = 0;
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut der = good.clone();
            der[i] ^= flip;
            let Ok(token) = parse_response(&der).and_then(|r| r.into_token()) else {
                continue;
            };
            if verify(&pki, &token, &[]).is_ok() {
                accepted += 1;
                assert_eq!(
                    token.tst_info(),
                    original.tst_info(),
                    "byte {i} ^ {flip:#04x}"
                );
                assert_eq!(token.tst_info_der(), original.tst_info_der());
            }
        }
    }
    // Only unsigned bookkeeping (e.g. the SignedData version, digestAlgorithms) can change.
    assert!(
        accepted < good.len() / 10,
        "{accepted} tampered responses verified"
    );
}

#[test]
fn hostile_responses_are_refused_without_panic() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let good = response(&pki, true);
    for cut in 0..good.len() {
        assert!(parse_response(&good[..cut]).is_err(), "truncated to {cut}");
    }
    assert!(matches!(
        parse_response(&vec![0x30; imza_http::client::MAX_ANSWER_BYTES + 1]),
        Err(TsaError::ResponseTooLarge { .. })
    ));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in [0usize, 1, 3, 50, 700, 5000] {
        let body = noise(&mut state, len);
        assert!(parse_response(&body).is_err());
        assert!(ParsedToken::from_der(&body).is_err());
    }
    let depth = 20_000;
    let nested = [[0x30u8, 0x80].repeat(depth), [0u8, 0].repeat(depth)].concat();
    assert!(parse_response(&nested).is_err());
}
