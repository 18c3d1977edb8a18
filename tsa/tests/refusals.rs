//! Every way a request can be refused, each with the RFC 3161 §2.4.2 failure bit, and hostile
//! input that must be answered cleanly (never a panic, always a DER TimeStampResp).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{noise, openssl, path_str, text, TestPki, POLICY};
use const_oid::ObjectIdentifier;
use der::asn1::{Null, OctetString};
use der::{Any, Encode};
use imza_core::alg::DigestAlgorithm;
use imza_core::key::software::SoftwareKey;
use imza_core::KeyAlgorithm;
use imza_tsa::{
    build_request, parse_response, ClockFault, FailureInfo, Outcome, PkiStatus, SystemFault,
    TimeStampAuthority, TsaAnswer, TsaConfig, TsaError, MAX_REQUEST_BYTES,
};
use spki::AlgorithmIdentifier;
use time::{Duration, OffsetDateTime};
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn good_request() -> Vec<u8> {
    build_request(
        &DigestAlgorithm::Sha256.digest(b"hello"),
        DigestAlgorithm::Sha256,
        Some(&[1, 2, 3, 4, 5, 6, 7, 8]),
        true,
        None,
    )
    .unwrap()
}

/// A request with any imprint algorithm and digest (build_request refuses bad ones).
fn raw_request(oid: ObjectIdentifier, parameters: Option<Any>, digest: &[u8]) -> Vec<u8> {
    TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier { oid, parameters },
            hashed_message: OctetString::new(digest).unwrap(),
        },
        req_policy: None,
        nonce: None,
        cert_req: false,
        extensions: None,
    }
    .to_der()
    .unwrap()
}

/// The answer is a refusal with exactly `failure`, and reads back the same way.
fn assert_refused(answer: &TsaAnswer, failure: FailureInfo) {
    assert_eq!(answer.failure(), Some(failure), "{:?}", answer.outcome);
    let parsed = parse_response(&answer.der).unwrap();
    assert_eq!(parsed.status, PkiStatus::Rejection);
    assert_eq!(parsed.failure_info, vec![failure]);
    assert!(parsed.token.is_none());
    assert!(!parsed.status_text.is_empty());
}

#[test]
fn wrong_imprint_length_is_bad_data_format() {
    let tsa = TestPki::new(KeyAlgorithm::EcP256).authority();
    for (alg, len) in [
        (DigestAlgorithm::Sha256, 20),
        (DigestAlgorithm::Sha256, 64),
        (DigestAlgorithm::Sha512, 32),
        (DigestAlgorithm::Sha384, 0),
    ] {
        let answer = tsa.respond(&raw_request(alg.oid(), None, &vec![7; len]), now());
        assert_refused(&answer, FailureInfo::BadDataFormat);
        assert!(matches!(
            answer.outcome,
            Outcome::Rejected {
                error: TsaError::WrongImprintLength { .. },
                ..
            }
        ));
    }
}

#[test]
fn unknown_or_weak_hash_algorithm_is_bad_alg() {
    let tsa = TestPki::new(KeyAlgorithm::EcP256).authority();
    let sha1 = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    let md5 = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
    let made_up = ObjectIdentifier::new_unwrap("1.2.3.4.5");
    for oid in [sha1, md5, made_up] {
        let answer = tsa.respond(&raw_request(oid, None, &[7; 20]), now());
        assert_refused(&answer, FailureInfo::BadAlg);
    }
    // SHA-256 with parameters other than absent/NULL is not SHA-256 as RFC 5754 defines it.
    let odd = Any::encode_from(&5u8).unwrap();
    let answer = tsa.respond(
        &raw_request(DigestAlgorithm::Sha256.oid(), Some(odd), &[7; 32]),
        now(),
    );
    assert_refused(&answer, FailureInfo::BadAlg);
    // ...while an explicit NULL (what openssl sends) is fine.
    let null = Any::encode_from(&Null).unwrap();
    let answer = tsa.respond(
        &raw_request(DigestAlgorithm::Sha256.oid(), Some(null), &[7; 32]),
        now(),
    );
    assert_eq!(answer.status(), PkiStatus::Granted);
}

#[test]
fn another_policy_is_unaccepted_and_the_tsa_policy_is_granted() {
    let tsa = TestPki::new(KeyAlgorithm::EcP256).authority();
    let digest = DigestAlgorithm::Sha256.digest(b"x");
    let other = ObjectIdentifier::new_unwrap("1.2.3.4");
    let answer = tsa.respond(
        &build_request(&digest, DigestAlgorithm::Sha256, None, false, Some(other)).unwrap(),
        now(),
    );
    assert_refused(&answer, FailureInfo::UnacceptedPolicy);
    let answer = tsa.respond(
        &build_request(&digest, DigestAlgorithm::Sha256, None, false, Some(POLICY)).unwrap(),
        now(),
    );
    assert_eq!(answer.status(), PkiStatus::Granted);
}

#[test]
fn request_extensions_are_unaccepted() {
    let tsa = TestPki::new(KeyAlgorithm::EcP256).authority();
    let mut request: TimeStampReq = der::Decode::from_der(&good_request()).unwrap();
    request.extensions = Some(vec![x509_cert::ext::Extension {
        extn_id: ObjectIdentifier::new_unwrap("1.2.3.4.5.6"),
        critical: false,
        extn_value: OctetString::new(vec![0x05, 0x00]).unwrap(),
    }]);
    let answer = tsa.respond(&request.to_der().unwrap(), now());
    assert_refused(&answer, FailureInfo::UnacceptedExtension);
}

#[test]
fn failing_clock_check_refuses_with_time_not_available_or_system_failure() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let mut config = pki.config();
    config.clock_check = Arc::new(|_now: OffsetDateTime| {
        Err(ClockFault::Unsynchronised(
            "chrony: not synchronised for 20 minutes".into(),
        ))
    });
    let tsa = TimeStampAuthority::new(config).unwrap();
    let answer = tsa.respond(&good_request(), now());
    assert_refused(&answer, FailureInfo::TimeNotAvailable);
    let parsed = parse_response(&answer.der).unwrap();
    assert_eq!(
        parsed.status_text,
        ["the TSA's time source is not available"]
    );
    // What the check said is for the operator (the answer's outcome), not the requester.
    assert!(matches!(
        &answer.outcome,
        imza_tsa::Outcome::Rejected { error, .. } if error.to_string().contains("not synchronised")
    ));

    let mut config = pki.config();
    config.clock_check = Arc::new(|_now: OffsetDateTime| {
        Err(ClockFault::CheckFailed(
            "chronyc: connection refused".into(),
        ))
    });
    let tsa = TimeStampAuthority::new(config).unwrap();
    let answer = tsa.respond(&good_request(), now());
    assert_refused(&answer, FailureInfo::SystemFailure);
    // Inner details stay in the log, not in the answer.
    let parsed = parse_response(&answer.der).unwrap();
    assert!(!parsed.status_text[0].contains("chronyc"));
}

#[test]
fn openssl_reads_the_refusal_statuses() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let mut config = pki.config();
    config.clock_check =
        Arc::new(|_now: OffsetDateTime| Err(ClockFault::Unsynchronised("no time source".into())));
    let tsa = TimeStampAuthority::new(config).unwrap();
    let cases = [
        (
            tsa.respond(&good_request(), now()).der,
            "Failure info: the TSA's time source is not available",
        ),
        (
            pki.authority()
                .respond(
                    &raw_request(DigestAlgorithm::Sha256.oid(), None, &[1; 20]),
                    now(),
                )
                .der,
            "Failure info: the data submitted has the wrong format",
        ),
        (
            pki.authority()
                .respond(
                    &raw_request(ObjectIdentifier::new_unwrap("1.2.3.4"), None, &[1; 20]),
                    now(),
                )
                .der,
            "Failure info: unrecognized or unsupported algorithm identifier",
        ),
    ];
    for (i, (der, expected)) in cases.into_iter().enumerate() {
        let reply = pki.path(&format!("refusal{i}.tsr"));
        std::fs::write(&reply, der).unwrap();
        let out = text(&openssl(&[
            "ts",
            "-reply",
            "-in",
            path_str(&reply),
            "-text",
        ]));
        assert!(out.contains("Status: Rejected"), "{out}");
        assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
    }
}

#[test]
fn expired_tsa_certificate_is_a_system_failure() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let tsa = pki.authority();
    let answer = tsa.respond(&good_request(), now() + Duration::days(400));
    assert_refused(&answer, FailureInfo::SystemFailure);
    assert!(matches!(
        answer.outcome,
        Outcome::Rejected {
            error: TsaError::CertificateNotValid { .. },
            ..
        }
    ));
}

#[test]
fn misconfigured_authorities_are_refused_at_start() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let mut config = pki.config();
    config.key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap());
    assert!(matches!(
        TimeStampAuthority::new(config),
        Err(TsaError::KeyMismatch { .. })
    ));
    let mut config = pki.config();
    config.certificate = pki.root.der.clone();
    assert!(matches!(
        TimeStampAuthority::new(config),
        Err(TsaError::NotTimeStampingCertificate { .. })
    ));
    let mut config = pki.config();
    config.certificate = b"not a certificate".to_vec();
    assert!(matches!(
        TimeStampAuthority::new(config),
        Err(TsaError::BadCertificate(_))
    ));
}

#[test]
fn serial_numbers_are_unique_and_nonces_echoed() {
    let tsa = TestPki::new(KeyAlgorithm::EcP256).authority();
    let mut serials = std::collections::HashSet::new();
    for i in 0u32..500 {
        let nonce = i.to_be_bytes();
        let request = build_request(
            &DigestAlgorithm::Sha256.digest(&nonce),
            DigestAlgorithm::Sha256,
            Some(&nonce),
            false,
            None,
        )
        .unwrap();
        let answer = tsa.respond(&request, now());
        let token = parse_response(&answer.der).unwrap().into_token().unwrap();
        assert!(serials.insert(token.serial_hex()));
        let expected = imza_tsa::int_hex(&imza_tsa::positive_int(&nonce).unwrap());
        assert_eq!(token.nonce_hex(), Some(expected));
        assert_eq!(
            token.tst_info().gen_time.to_offset_date_time().nanosecond(),
            0
        );
    }
}

/// Hostile bodies: each gets a clean refusal; afterwards a good request is still granted.
#[test]
fn hostile_input_is_refused_cleanly_and_the_tsa_keeps_working() {
    let tsa = TestPki::new(KeyAlgorithm::EcP256).authority();
    let good = good_request();

    let mut bodies: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("text".into(), b"POST /tsa HTTP/1.1\r\n\r\nhello".to_vec()),
        ("ten megabytes".into(), vec![0x30; 10 * 1024 * 1024]),
        ("one over the limit".into(), vec![0; MAX_REQUEST_BYTES + 1]),
        (
            "indefinite length (BER)".into(),
            vec![0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00],
        ),
        (
            "huge declared length".into(),
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02],
        ),
    ];
    // 15,000 levels of indefinite-length SEQUENCE (BER, which DER forbids), inside the limit.
    let depth = 15_000;
    let nested = [[0x30u8, 0x80].repeat(depth), [0u8, 0].repeat(depth)].concat();
    bodies.push(("deep BER nesting".into(), nested));
    // 20,000 levels of definite-length SEQUENCE: lengths built from the inside out.
    let mut definite = vec![0x05, 0x00];
    while definite.len() < 60_000 {
        let len = definite.len();
        let header = match len {
            0..0x80 => vec![0x30, len as u8],
            0x80..0x100 => vec![0x30, 0x81, len as u8],
            _ => vec![0x30, 0x82, (len >> 8) as u8, len as u8],
        };
        definite.splice(0..0, header);
    }
    bodies.push(("deep DER nesting".into(), definite));
    for cut in 0..good.len() {
        bodies.push((format!("truncated to {cut}"), good[..cut].to_vec()));
    }
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0x00, 0x00]);
    bodies.push(("trailing bytes".into(), trailing));
    // Every single-byte corruption of a good request.
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut body = good.clone();
            body[i] ^= flip;
            bodies.push((format!("byte {i} ^ {flip:#04x}"), body));
        }
    }
    // Pseudo-random bytes (a fixed xorshift, so failures reproduce).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in [1usize, 2, 16, 100, 1000, 65_536] {
        bodies.push((format!("{len} random bytes"), noise(&mut state, len)));
    }

    for (name, body) in &bodies {
        let answer = tsa.respond(body, now());
        let parsed = parse_response(&answer.der)
            .unwrap_or_else(|e| panic!("{name}: the answer does not parse: {e}"));
        match answer.outcome {
            // A flipped bit can still leave a valid request (a nonce or digest byte).
            Outcome::Granted { .. } => assert!(name.starts_with("byte "), "{name} was granted"),
            Outcome::Rejected { failure, .. } => {
                assert_eq!(parsed.status, PkiStatus::Rejection, "{name}");
                assert!(
                    matches!(
                        failure,
                        FailureInfo::BadDataFormat | FailureInfo::BadRequest | FailureInfo::BadAlg
                    ),
                    "{name}: {failure}"
                );
            }
        }
    }
    let oversize = tsa.respond(&vec![0x30; 10 * 1024 * 1024], now());
    assert_refused(&oversize, FailureInfo::BadRequest);
    let garbage = tsa.respond(b"garbage", now());
    assert_refused(&garbage, FailureInfo::BadDataFormat);
    assert_eq!(tsa.respond(&good, now()).status(), PkiStatus::Granted);
}

#[test]
fn tsa_config_accepts_any_signing_key_behind_the_trait() {
    // The authority holds `Arc<dyn SigningKey>`: a software key here, a PKCS#11 key in production.
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let config = TsaConfig {
        include_tsa_name: false,
        accuracy: None,
        ..pki.config()
    };
    let tsa = TimeStampAuthority::new(config).unwrap();
    let answer = tsa.respond(&good_request(), now());
    let token = parse_response(&answer.der).unwrap().into_token().unwrap();
    assert!(token.tsa_name().is_none());
    assert!(token.tst_info().accuracy.is_none());
    assert_eq!(token.policy(), POLICY);
}

#[test]
fn a_panicking_clock_check_is_a_system_failure_not_a_crash() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let mut config = pki.config();
    config.clock_check = Arc::new(|_now: OffsetDateTime| -> Result<(), ClockFault> {
        panic!("a buggy clock check")
    });
    let tsa = TimeStampAuthority::new(config).unwrap();
    let answer = tsa.respond(&good_request(), now());
    assert_refused(&answer, FailureInfo::SystemFailure);
    assert!(matches!(
        answer.outcome,
        Outcome::Rejected {
            error: TsaError::SystemFailure(SystemFault::Panicked),
            ..
        }
    ));
}
