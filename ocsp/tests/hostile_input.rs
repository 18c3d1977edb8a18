//! Hostile and odd requests: every one gets a well-formed error response with the right
//! OCSPResponseStatus (RFC 6960 §2.3), nothing panics, and the same responder then still
//! answers an honest request.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{assert_successful, nonce_extension, request_for, Pki};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use imza_ocsp::cert_id::cert_id;
use imza_ocsp::{
    parse_response, CertIdHash, CertStatusInfo, CertificateStatusSource, IssuerId, OcspError,
    Responder, ResponderConfig, ResponseStatus,
};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::{OcspRequest, Request};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn certificate(der: &[u8]) -> Certificate {
    Certificate::from_der(der).unwrap()
}

fn nonce(len: usize) -> Extension {
    nonce_extension(&vec![0xA5; len])
}

/// Asserts the answer is the bare error response for `status`.
fn assert_refused(answer: &imza_ocsp::OcspAnswer, status: ResponseStatus) {
    assert_eq!(answer.status, status, "{:?}", answer.problem);
    assert!(answer.problem.is_some());
    let parsed = parse_response(&answer.der).unwrap();
    assert_eq!(parsed.status, status);
    assert!(parsed.basic.is_none());
    assert_eq!(answer.der.len(), 5);
}

fn good_request(pki: &Pki) -> Vec<u8> {
    request_for(
        &certificate(&pki.ca.der),
        std::slice::from_ref(&pki.good.serial),
        CertIdHash::Sha1,
        Some(vec![nonce(32)]),
    )
}

fn assert_still_answers(pki: &Pki, responder: &Responder) {
    let answer = responder.respond(&good_request(pki), now(), &pki.source);
    assert_successful(&answer);
    let basic = parse_response(&answer.der).unwrap().basic.unwrap();
    assert_eq!(basic.responses[0].status, CertStatusInfo::Good);
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_are_malformed_requests() {
    let pki = Pki::new();
    let responder = pki.responder();
    let mut noise = Noise(0x1234_5678_9abc_def1);
    for i in 0..2000 {
        let len = (noise.next() % 600) as usize;
        let mut body = noise.bytes(len);
        // Half the bodies start like a SEQUENCE, to get past the first byte.
        if i % 2 == 0 && !body.is_empty() {
            body[0] = 0x30;
        }
        let answer = responder.respond(&body, now(), &pki.source);
        assert_refused(&answer, ResponseStatus::MalformedRequest);
    }
    assert_refused(
        &responder.respond(&[], now(), &pki.source),
        ResponseStatus::MalformedRequest,
    );
    assert_still_answers(&pki, &responder);
}

#[test]
fn every_truncation_and_byte_flip_of_a_good_request_is_handled() {
    let pki = Pki::new();
    let responder = pki.responder();
    let good = good_request(&pki);
    for len in 0..good.len() {
        let answer = responder.respond(&good[..len], now(), &pki.source);
        assert_refused(&answer, ResponseStatus::MalformedRequest);
    }
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut body = good.clone();
            body[i] ^= flip;
            let answer = responder.respond(&body, now(), &pki.source);
            // A flip inside a hash or the serial still parses: then it is another CA or
            // another certificate. Anything else must be refused as malformed.
            assert!(
                matches!(
                    answer.status,
                    ResponseStatus::MalformedRequest
                        | ResponseStatus::Unauthorized
                        | ResponseStatus::Successful
                ),
                "byte {i} ^ {flip:#x}: {:?}",
                answer.status
            );
            parse_response(&answer.der).unwrap();
        }
    }
    assert_still_answers(&pki, &responder);
}

/// `depth` SEQUENCEs nested in one another (definite long-form lengths), innermost empty.
fn nested(depth: usize) -> Vec<u8> {
    fn header(content: usize) -> Vec<u8> {
        let mut out = vec![0x30];
        if content < 0x80 {
            out.push(content as u8);
        } else {
            let octets: Vec<u8> = content
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | octets.len() as u8);
            out.extend(octets);
        }
        out
    }
    // sizes[k]: total size of the k-th SEQUENCE from the inside (sizes[0] = `30 00`).
    let mut sizes = vec![2usize];
    for k in 0..depth {
        sizes.push(sizes[k] + header(sizes[k]).len());
    }
    let mut der = Vec::with_capacity(sizes[depth]);
    for k in (0..depth).rev() {
        der.extend(header(sizes[k]));
    }
    der.extend([0x30, 0x00]);
    der
}

#[test]
fn deeply_nested_der_is_a_malformed_request() {
    let pki = Pki::new();
    let responder = pki.responder();
    for depth in [10, 1_000, 12_000, 100_000] {
        let body = nested(depth);
        let answer = responder.respond(&body, now(), &pki.source);
        assert_refused(&answer, ResponseStatus::MalformedRequest);
        let expect_too_large = body.len() > imza_ocsp::request::MAX_REQUEST_BYTES;
        assert_eq!(
            matches!(answer.problem, Some(OcspError::RequestTooLarge { .. })),
            expect_too_large,
            "depth {depth}: {:?}",
            answer.problem
        );
    }
    // Deep nesting inside a field that admits any content (an extension value).
    let deep = Extension {
        extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
        critical: false,
        extn_value: OctetString::new(nested(5_000)).unwrap(),
    };
    let body = request_for(
        &certificate(&pki.ca.der),
        std::slice::from_ref(&pki.good.serial),
        CertIdHash::Sha1,
        Some(vec![deep]),
    );
    let answer = responder.respond(&body, now(), &pki.source);
    assert_successful(&answer);
    assert_still_answers(&pki, &responder);
}

#[test]
fn ten_thousand_cert_ids_are_refused_before_any_lookup() {
    let pki = Pki::new();
    let responder = pki.responder();
    let ca = certificate(&pki.ca.der);
    let serials: Vec<Vec<u8>> = (0..10_000u32)
        .map(|i| {
            let mut s = vec![0x41];
            s.extend(i.to_be_bytes());
            s
        })
        .collect();
    let body = request_for(&ca, &serials, CertIdHash::Sha1, None);
    let answer = responder.respond(&body, now(), &pki.source);
    assert_refused(&answer, ResponseStatus::MalformedRequest);
    assert!(matches!(
        answer.problem,
        Some(OcspError::RequestTooLarge { .. })
    ));

    // Within the byte limit, the CertID limit applies.
    let limit = imza_ocsp::request::MAX_CERT_IDS;
    let body = request_for(&ca, &serials[..limit + 1], CertIdHash::Sha1, None);
    assert!(body.len() <= imza_ocsp::request::MAX_REQUEST_BYTES);
    let answer = responder.respond(&body, now(), &pki.source);
    assert_refused(&answer, ResponseStatus::MalformedRequest);
    assert_eq!(
        answer.problem,
        Some(OcspError::TooManyCertIds {
            count: limit + 1,
            limit
        })
    );

    // Exactly the limit is answered, one SingleResponse per CertID, in order.
    let body = request_for(&ca, &serials[..limit], CertIdHash::Sha256, None);
    let answer = responder.respond(&body, now(), &pki.source);
    assert_successful(&answer);
    let basic = parse_response(&answer.der).unwrap().basic.unwrap();
    assert_eq!(basic.responses.len(), limit);
    for (single, serial) in basic.responses.iter().zip(&serials) {
        assert_eq!(single.cert_id.serial_number.as_bytes(), serial.as_slice());
        assert_eq!(single.status, CertStatusInfo::Unknown);
    }
    assert_still_answers(&pki, &responder);
}

#[test]
fn ten_megabyte_body_is_refused_without_parsing() {
    let pki = Pki::new();
    let responder = pki.responder();
    let mut body = good_request(&pki);
    body.resize(10 * 1024 * 1024, 0);
    let answer = responder.respond(&body, now(), &pki.source);
    assert_refused(&answer, ResponseStatus::MalformedRequest);
    assert_eq!(
        answer.problem,
        Some(OcspError::RequestTooLarge {
            len: 10 * 1024 * 1024,
            limit: imza_ocsp::request::MAX_REQUEST_BYTES
        })
    );
}

#[test]
fn nonces_outside_rfc_9654_lengths_are_malformed() {
    let pki = Pki::new();
    let responder = pki.responder();
    let ca = certificate(&pki.ca.der);
    let serials = std::slice::from_ref(&pki.good.serial);
    for (len, ok) in [
        (0, false),
        (1, true),
        (16, true),
        (32, true),
        (128, true),
        (129, false),
    ] {
        let body = request_for(&ca, serials, CertIdHash::Sha1, Some(vec![nonce(len)]));
        let answer = responder.respond(&body, now(), &pki.source);
        if ok {
            assert_eq!(answer.status, ResponseStatus::Successful, "nonce of {len}");
            assert!(answer.has_nonce);
            let basic = parse_response(&answer.der).unwrap().basic.unwrap();
            assert_eq!(basic.nonce, Some(vec![0xA5; len]));
        } else {
            assert_refused(&answer, ResponseStatus::MalformedRequest);
            assert_eq!(
                answer.problem,
                Some(OcspError::NonceLength { len, max: 128 })
            );
        }
    }
    // A nonce that is not an OCTET STRING (raw bytes in extnValue) is malformed too.
    let raw = Extension {
        extn_id: imza_core::oids::OCSP_NONCE,
        critical: false,
        extn_value: OctetString::new(vec![0xA5; 16]).unwrap(),
    };
    let body = request_for(&ca, serials, CertIdHash::Sha1, Some(vec![raw]));
    assert_refused(
        &responder.respond(&body, now(), &pki.source),
        ResponseStatus::MalformedRequest,
    );
}

#[test]
fn cert_ids_of_two_cas_or_an_unknown_hash_are_unauthorized() {
    let pki = Pki::new();
    let responder = pki.responder();
    let ca = certificate(&pki.ca.der);
    let other = certificate(&pki.other_ca.der);
    let mut request = OcspRequest::from_der(&request_for(
        &ca,
        std::slice::from_ref(&pki.good.serial),
        CertIdHash::Sha1,
        None,
    ))
    .unwrap();
    request.tbs_request.request_list.push(Request {
        req_cert: cert_id(
            &other,
            &SerialNumber::new(&pki.other_leaf.serial).unwrap(),
            CertIdHash::Sha1,
        )
        .unwrap(),
        single_request_extensions: None,
    });
    let answer = responder.respond(&request.to_der().unwrap(), now(), &pki.source);
    assert_refused(&answer, ResponseStatus::Unauthorized);
    assert!(matches!(
        answer.problem,
        Some(OcspError::IssuerNotServed { .. })
    ));

    // Two served CAs in one request: each would need its own signer.
    let second = Pki::new();
    let both = Responder::new(
        vec![
            pki.served(),
            imza_ocsp::ServedCa {
                issuer: IssuerId::new("second"),
                ..second.served()
            },
        ],
        ResponderConfig::default(),
    )
    .unwrap();
    request.tbs_request.request_list[1].req_cert = cert_id(
        &certificate(&second.ca.der),
        &SerialNumber::new(&second.good.serial).unwrap(),
        CertIdHash::Sha256,
    )
    .unwrap();
    let answer = both.respond(&request.to_der().unwrap(), now(), &pki.source);
    assert_refused(&answer, ResponseStatus::Unauthorized);
    assert_eq!(
        answer.problem,
        Some(OcspError::MixedIssuers {
            first: common::CA.into(),
            second: "second".into()
        })
    );
    // Each alone is answered by its own delegate.
    request.tbs_request.request_list.remove(0);
    let answer = both.respond(&request.to_der().unwrap(), now(), &second.source);
    assert_successful(&answer);
    assert_eq!(answer.issuer, Some(IssuerId::new("second")));

    let mut md5 = request_for(
        &ca,
        std::slice::from_ref(&pki.good.serial),
        CertIdHash::Sha1,
        None,
    );
    let sha1 = imza_core::oids::SHA1.as_bytes().to_vec();
    let at = md5.windows(sha1.len()).position(|w| w == sha1).unwrap();
    // 1.3.14.3.2.26 -> 1.3.14.3.2.25 (not a hash imza accepts).
    md5[at + sha1.len() - 1] = 25;
    let answer = responder.respond(&md5, now(), &pki.source);
    assert_refused(&answer, ResponseStatus::Unauthorized);
    assert!(matches!(
        answer.problem,
        Some(OcspError::UnsupportedHashAlgorithm { .. })
    ));
}

#[test]
fn unreadable_status_store_is_try_later() {
    let mut pki = Pki::new();
    let responder = pki.responder();
    pki.source.fail = true;
    let answer = responder.respond(&good_request(&pki), now(), &pki.source);
    assert_refused(&answer, ResponseStatus::TryLater);
    assert!(answer.has_nonce);
    assert_eq!(answer.issuer, Some(IssuerId::new(common::CA)));
}

#[test]
fn expired_responder_certificate_is_internal_error_not_a_bad_signature() {
    let pki = Pki::new();
    let responder = pki.responder();
    let answer = responder.respond(
        &good_request(&pki),
        now() + Duration::days(400),
        &pki.source,
    );
    assert_refused(&answer, ResponseStatus::InternalError);
    assert!(matches!(
        answer.problem,
        Some(OcspError::ResponderCertificateNotValid { .. })
    ));
    // nextUpdate never runs past the responder certificate.
    let late = responder
        .responder_not_after(&IssuerId::new(common::CA))
        .unwrap();
    let answer = responder.respond(
        &good_request(&pki),
        late - Duration::minutes(5),
        &pki.source,
    );
    assert_eq!(answer.status, ResponseStatus::Successful);
    assert_eq!(answer.next_update, Some(late));
    // An absurd validity neither overflows nor outlives the responder certificate.
    let forever = Responder::new(
        vec![pki.served()],
        ResponderConfig {
            validity: Duration::MAX,
            ..Default::default()
        },
    )
    .unwrap();
    let answer = forever.respond(&good_request(&pki), now(), &pki.source);
    assert_eq!(answer.status, ResponseStatus::Successful);
    assert_eq!(answer.next_update, Some(late));
    // Before the responder certificate's notBefore, or at the edge of time: refused.
    for when in [
        OffsetDateTime::UNIX_EPOCH,
        time::macros::datetime!(9999-12-31 23:59:59 UTC),
    ] {
        let answer = responder.respond(&good_request(&pki), when, &pki.source);
        assert_refused(&answer, ResponseStatus::InternalError);
    }
}

struct PanickingSource;

impl CertificateStatusSource for PanickingSource {
    fn status(&self, _: &IssuerId, _: &[u8]) -> Result<CertStatusInfo, OcspError> {
        panic!("status source bug")
    }

    fn revision(&self) -> Result<u64, OcspError> {
        panic!("status source bug")
    }
}

#[test]
fn a_panicking_status_source_becomes_internal_error() {
    let pki = Pki::new();
    let responder = pki.responder();
    let answer = responder.respond(&good_request(&pki), now(), &PanickingSource);
    assert_refused(&answer, ResponseStatus::InternalError);
    assert_eq!(
        answer.problem,
        Some(OcspError::Panic("status source bug".into()))
    );
    assert_still_answers(&pki, &responder);
}

#[test]
fn responder_refuses_a_misconfigured_delegate() {
    let pki = Pki::new();
    // A leaf certificate where the responder certificate belongs: no OCSPSigning EKU.
    let no_eku = imza_ocsp::ServedCa {
        responder_certificate: pki.good.der.clone(),
        ..pki.served()
    };
    let err = Responder::new(vec![no_eku], ResponderConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, OcspError::Configuration { reason, .. } if reason.contains("id-kp-OCSPSigning")),
        "{err}"
    );
    // The right certificate with another key.
    let wrong_key = imza_ocsp::ServedCa {
        responder_key: std::sync::Arc::new(
            imza_core::key::software::SoftwareKey::generate(imza_core::KeyAlgorithm::EcP256)
                .unwrap(),
        ),
        ..pki.served()
    };
    let err = Responder::new(vec![wrong_key], ResponderConfig::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("is not the key"), "{err}");
    // A responder certificate of another CA.
    let other = Pki::new();
    let foreign = imza_ocsp::ServedCa {
        responder_certificate: other.responder.der.clone(),
        responder_key: other.responder_key.clone(),
        ..pki.served()
    };
    let err = Responder::new(vec![foreign], ResponderConfig::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("not signed by this CA"), "{err}");
    // The same CA twice.
    let err = Responder::new(vec![pki.served(), pki.served()], ResponderConfig::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("served twice"), "{err}");
}
