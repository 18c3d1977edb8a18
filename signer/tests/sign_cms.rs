//! B-B and B-T signatures made by imza-signer and checked by OpenSSL: `openssl cms -verify`
//! for the signature (detached and enveloping, RSA, P-256 and P-384 keys) and `openssl ts
//! -verify` for the time-stamp token inside a B-T signature, against imza's TSA on loopback.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use der::asn1::OctetString;
use der::{Decode, Encode};
use imza_core::ess::SigningCertificateV2;
use imza_core::{oids, KeyAlgorithm};
use imza_http::HttpError;
use imza_signer::{sign, Credentials, HttpTimestamper, Level, SignOptions, SignerError};
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"Arayis: 2026-03-01 tarixli etibarname.\n\x00\x01binary\r\n tail";

fn b_b(pki: &SignerPki, attached: bool) -> Vec<u8> {
    let options = SignOptions {
        attached,
        ..SignOptions::new(OffsetDateTime::now_utc())
    };
    sign(DOCUMENT, &pki.credentials(), &options).unwrap()
}

#[test]
fn openssl_accepts_b_b_detached_and_attached_for_rsa_p256_and_p384_keys() {
    for algorithm in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
    ] {
        let pki = SignerPki::new(algorithm);
        for attached in [false, true] {
            let signature = b_b(&pki, attached);
            let out = pki
                .openssl_verify(&signature, (!attached).then_some(DOCUMENT))
                .unwrap_or_else(|e| panic!("{algorithm} attached={attached}: {e}"));
            assert_eq!(out, DOCUMENT, "{algorithm} attached={attached}");
            // The other document is refused: given as the detached content, or changed in place
            // in the attached signature.
            let (tampered, content) = if attached {
                let mut flipped = signature.clone();
                flipped[find(&signature, DOCUMENT)] ^= 1;
                (flipped, None)
            } else {
                (signature, Some(&b"another document"[..]))
            };
            assert!(
                pki.openssl_verify(&tampered, content).is_err(),
                "{algorithm} attached={attached}: tampered content accepted"
            );
        }
    }
}

#[test]
fn b_b_carries_the_signed_attributes_and_the_chain() {
    let pki = SignerPki::new(KeyAlgorithm::EcP256);
    let signing_time = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
    let options = SignOptions::new(signing_time);
    let signature = sign(DOCUMENT, &pki.credentials(), &options).unwrap();
    let signed_data = signed_data(&signature);
    assert!(
        signed_data.encap_content_info.econtent.is_none(),
        "detached"
    );
    assert_eq!(signed_data.encap_content_info.econtent_type, oids::CT_DATA);
    let certificates: Vec<Vec<u8>> = signed_data
        .certificates
        .unwrap()
        .0
        .into_vec()
        .iter()
        .map(|c| c.to_der().unwrap())
        .collect();
    assert_eq!(certificates.len(), 2);
    assert!(certificates.contains(&pki.cert));
    assert!(certificates.contains(&pki.issuing.der));

    let signer = only_signer(&signature);
    assert_eq!(signer.digest_alg.oid, oids::SHA256);
    assert_eq!(signer.signature_algorithm.oid, oids::ECDSA_WITH_SHA256);
    assert!(signer.unsigned_attrs.is_none());
    let attrs = signer.signed_attrs.unwrap().into_vec();
    let value = |oid| {
        let attr = attrs.iter().find(|a| a.oid == oid).unwrap();
        assert_eq!(attr.values.len(), 1);
        attr.values.get(0).unwrap().to_der().unwrap()
    };
    assert_eq!(attrs.len(), 4);
    assert_eq!(
        der::asn1::ObjectIdentifier::from_der(&value(oids::ATTR_CONTENT_TYPE)).unwrap(),
        oids::CT_DATA
    );
    assert_eq!(
        OctetString::from_der(&value(oids::ATTR_MESSAGE_DIGEST))
            .unwrap()
            .as_bytes(),
        openssl::sha::sha256(DOCUMENT)
    );
    let time = value(oids::ATTR_SIGNING_TIME);
    assert_eq!(time[0], 0x17, "UTCTime before 2050");
    assert_eq!(
        imza_core::clock::from_x509_time(&x509_cert::time::Time::from_der(&time).unwrap()),
        signing_time
    );
    let ess = SigningCertificateV2::from_der(&value(oids::ATTR_SIGNING_CERTIFICATE_V2)).unwrap();
    assert_eq!(ess.certs.len(), 1);
    assert!(
        ess.certs[0].hash_algorithm.is_none(),
        "SHA-256 is the DEFAULT"
    );
    assert_eq!(
        ess.certs[0].cert_hash.as_bytes(),
        openssl::sha::sha256(&pki.cert)
    );
    assert!(ess.certs[0].issuer_serial.is_some());
}

#[test]
fn p384_keys_digest_with_sha384() {
    let pki = SignerPki::new(KeyAlgorithm::EcP384);
    let signer = only_signer(&b_b(&pki, false));
    assert_eq!(signer.digest_alg.oid, oids::SHA384);
    assert_eq!(signer.signature_algorithm.oid, oids::ECDSA_WITH_SHA384);
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_before_signing() {
    let pki = SignerPki::new(KeyAlgorithm::EcP256);
    let err = Credentials::new(
        stray_key(KeyAlgorithm::EcP256),
        pki.cert.clone(),
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, SignerError::Usage(_)), "{err}");
    assert!(
        err.to_string()
            .contains("not the one certified for CN=Aysel Mammadova"),
        "{err}"
    );
    // Another key type too.
    assert!(Credentials::new(stray_key(KeyAlgorithm::Rsa2048), pki.cert.clone(), vec![]).is_err());
    // Garbage as a certificate.
    assert!(matches!(
        Credentials::new(
            stray_key(KeyAlgorithm::EcP256),
            b"not a cert".to_vec(),
            vec![]
        ),
        Err(SignerError::Malformed { .. })
    ));
}

#[test]
fn pkcs12_credentials_sign_and_a_wrong_password_is_named() {
    let pki = SignerPki::new(KeyAlgorithm::Rsa2048);
    let cert = openssl::x509::X509::from_der(&pki.cert).unwrap();
    let mut chain = openssl::stack::Stack::new().unwrap();
    chain
        .push(openssl::x509::X509::from_der(&pki.issuing.der).unwrap())
        .unwrap();
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name("signer")
        .pkey(pki.key.pkey())
        .cert(&cert)
        .ca(chain)
        .build2("s3cret")
        .unwrap()
        .to_der()
        .unwrap();
    let credentials = Credentials::from_pkcs12(&p12, "s3cret", "signer.p12").unwrap();
    assert_eq!(credentials.chain(), std::slice::from_ref(&pki.issuing.der));
    let signature = sign(
        DOCUMENT,
        &credentials,
        &SignOptions::new(OffsetDateTime::now_utc()),
    )
    .unwrap();
    pki.openssl_verify(&signature, Some(DOCUMENT)).unwrap();
    let err = Credentials::from_pkcs12(&p12, "wrong", "signer.p12").unwrap_err();
    assert!(err.to_string().contains("wrong password"), "{err}");
}

#[test]
fn b_t_is_accepted_by_openssl_cms_and_its_token_by_openssl_ts() {
    let tsa = LoopbackTsa::start();
    let timestamper = HttpTimestamper::new(tsa.url());
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcP256] {
        let pki = SignerPki::new(algorithm);
        for attached in [false, true] {
            let mut options = SignOptions::new(OffsetDateTime::now_utc());
            options.attached = attached;
            options.level = Level::T;
            options.augment.timestamper = Some(&timestamper);
            let signature = sign(DOCUMENT, &pki.credentials(), &options).unwrap();
            let out = pki
                .openssl_verify(&signature, (!attached).then_some(DOCUMENT))
                .unwrap_or_else(|e| panic!("{algorithm} attached={attached}: {e}"));
            assert_eq!(out, DOCUMENT);

            let tokens = unsigned_values(&signature, oids::ATTR_TIME_STAMP_TOKEN);
            assert_eq!(tokens.len(), 1);
            let token = pki.file("token.der", &tokens[0]);
            let (_, signature_value) = signed_part(&signature);
            // `openssl ts -verify` of the token over the data in `file`.
            let ts_verify = |file: &str, data: &[u8]| {
                openssl(&[
                    "ts",
                    "-verify",
                    "-data",
                    &pki.file(file, data),
                    "-in",
                    &token,
                    "-token_in",
                    "-CAfile",
                    tsa.pki.ca_pem().to_str().unwrap(),
                    "-untrusted",
                    tsa.pki.tsa_pem().to_str().unwrap(),
                ])
            };
            let verified = ts_verify("signature-value.bin", &signature_value);
            assert!(
                verified.status.success() && text(&verified).contains("Verification: OK"),
                "{algorithm} attached={attached}: {}",
                text(&verified)
            );
            // The token stamps the signature value and nothing else.
            let refused = ts_verify("wrong.bin", DOCUMENT);
            assert!(!refused.status.success(), "{}", text(&refused));
        }
    }
}

#[test]
fn b_t_without_a_tsa_or_with_one_that_is_down_fails_with_the_reason() {
    let pki = SignerPki::new(KeyAlgorithm::EcP256);
    let mut options = SignOptions::new(OffsetDateTime::now_utc());
    options.level = Level::T;
    let err = sign(DOCUMENT, &pki.credentials(), &options).unwrap_err();
    assert!(err.to_string().contains("time-stamping authority"), "{err}");

    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", listener.local_addr().unwrap());
    drop(listener);
    let down = HttpTimestamper::new(url.clone());
    options.augment.timestamper = Some(&down);
    let err = sign(DOCUMENT, &pki.credentials(), &options).unwrap_err();
    assert!(
        matches!(&err, SignerError::Network { source: HttpError::Unreachable { url: u, .. }, .. } if *u == url),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
}
