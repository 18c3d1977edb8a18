//! imza's client-side checks ([`verify_response`]) on imza's own responses: a response from
//! the delegated responder verifies against the CA, and not against another CA, nor once a
//! byte of what was signed has changed.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{request_for, Pki};
use der::{Decode, Encode};
use imza_ocsp::{
    parse_response, verify_response, CertIdHash, CertStatusInfo, OcspError, VerifyOptions,
};
use time::OffsetDateTime;
use x509_cert::Certificate;

fn respond(pki: &Pki, serials: &[&[u8]]) -> Vec<u8> {
    let ca = Certificate::from_der(&pki.ca.der).unwrap();
    let request = request_for(&ca, serials, CertIdHash::Sha256, None);
    pki.responder()
        .respond(&request, OffsetDateTime::now_utc(), &pki.source)
        .der
}

/// Trusting `ca` alone, now, SHA-1 signatures refused.
fn trusting(ca: &Certificate) -> VerifyOptions<'_> {
    VerifyOptions {
        trusted: std::slice::from_ref(ca),
        untrusted: &[],
        at: OffsetDateTime::now_utc(),
        accept_sha1_signatures: false,
    }
}

#[test]
fn own_response_verifies_as_delegated_against_the_ca_only() {
    let pki = Pki::new();
    let der = respond(&pki, &[&pki.good.serial, &pki.revoked.serial]);
    let basic = parse_response(&der).unwrap().basic.unwrap();
    assert_eq!(
        basic.certs.len(),
        1,
        "the responder certificate travels along"
    );
    assert_eq!(basic.responses[0].status, CertStatusInfo::Good);
    assert!(matches!(
        basic.responses[1].status,
        CertStatusInfo::Revoked { .. }
    ));
    let ca = Certificate::from_der(&pki.ca.der).unwrap();
    let options = trusting(&ca);
    let signer = verify_response(&basic, &options).unwrap();
    assert!(signer.delegated);
    assert_eq!(signer.certificate.to_der().unwrap(), pki.responder.der);

    let other = Certificate::from_der(&pki.other_ca.der).unwrap();
    let elsewhere = trusting(&other);
    assert!(matches!(
        verify_response(&basic, &elsewhere),
        Err(OcspError::UntrustedSigner { .. })
    ));

    // Trusting the responder certificate alone is not enough: it is not the CA (§4.2.2.2).
    let responder = Certificate::from_der(&pki.responder.der).unwrap();
    let only_responder = trusting(&responder);
    assert!(matches!(
        verify_response(&basic, &only_responder),
        Err(OcspError::UnauthorizedSigner { .. })
    ));
}

#[test]
fn changing_any_signed_byte_breaks_the_response() {
    let pki = Pki::new();
    let der = respond(&pki, &[&pki.good.serial]);
    let basic = parse_response(&der).unwrap().basic.unwrap();
    let ca = Certificate::from_der(&pki.ca.der).unwrap();
    let options = trusting(&ca);
    // Flip the last bit of each byte of ResponseData as it sits in the response.
    let start = der
        .windows(basic.tbs_der.len())
        .position(|w| w == basic.tbs_der.as_slice())
        .unwrap();
    for i in start..start + basic.tbs_der.len() {
        let mut tampered = der.clone();
        tampered[i] ^= 0x01;
        let verdict = parse_response(&tampered).and_then(|r| {
            verify_response(&r.basic.ok_or(OcspError::SuccessfulWithoutBody)?, &options)
        });
        assert!(verdict.is_err(), "byte {i} changed and still verified");
    }
}
