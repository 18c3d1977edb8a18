//! Web eID authentication tokens as a card signs them: real keys (P-256, P-384, RSA), real
//! certificates from a test CA, the signed data built as the format specifies. Each refusal
//! is checked to come from the step that owns it, in the order the login validates.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64ct::{Base64, Encoding};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::KeyUsages;

use common::*;
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::key::KeyAlgorithm;
use imza_core::oids;
use imza_portal::webeid::{AuthToken, ChallengeNonce, TokenAlgorithm, TokenError};
use imza_testdata::pki::TestCa;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Parse, certificate checks, signature: the whole token path but the chain and OCSP.
fn check(
    json: &[u8],
    origin: &str,
    nonce: &ChallengeNonce,
    at: OffsetDateTime,
) -> Result<(), TokenError> {
    AuthToken::parse(json)?
        .check_certificate(at, &[CARD_AUTH])?
        .verify(origin, nonce, at)
        .map(|_| ())
}

#[test]
fn tokens_from_p256_p384_and_rsa_cards_verify_in_both_formats() {
    let ca = ca();
    for (algorithm, key) in [
        (TokenAlgorithm::Es256, KeyAlgorithm::EcP256),
        (TokenAlgorithm::Es384, KeyAlgorithm::EcP384),
        (TokenAlgorithm::Rs256, KeyAlgorithm::Rsa2048),
    ] {
        let card = card(&ca, key, card_auth());
        for format in ["web-eid:1", "web-eid:1.0", "web-eid:1.1"] {
            let nonce = ChallengeNonce::generate(now()).unwrap();
            let json = token(&card, algorithm, ORIGIN, &nonce, format);
            let verified = AuthToken::parse(&json)
                .unwrap()
                .check_certificate(now(), &[CARD_AUTH])
                .unwrap()
                .verify(ORIGIN, &nonce, now())
                .unwrap_or_else(|e| panic!("{algorithm:?} {format}: {e}"));
            assert_eq!(verified.certificate_der, card.certificate);
            assert_eq!(verified.algorithm, algorithm);
            let signing = usize::from(format == "web-eid:1.1");
            assert_eq!(verified.signing_certificates.len(), signing, "{format}");
        }
    }
}

#[test]
fn a_token_for_another_origin_or_another_nonce_does_not_log_in() {
    let ca = ca();
    let card = card(&ca, KeyAlgorithm::EcP256, card_auth());
    let nonce = ChallengeNonce::generate(now()).unwrap();
    // A look-alike site relayed the portal's nonce: the card signed over the look-alike's origin.
    let relayed = token(
        &card,
        TokenAlgorithm::Es256,
        "https://portal-gov.az",
        &nonce,
        "web-eid:1.1",
    );
    assert_eq!(
        check(&relayed, ORIGIN, &nonce, now()),
        Err(TokenError::Signature)
    );
    // A token made for another browser session's nonce.
    let other = ChallengeNonce::generate(now()).unwrap();
    let theirs = token(&card, TokenAlgorithm::Es256, ORIGIN, &other, "web-eid:1.1");
    assert_eq!(
        check(&theirs, ORIGIN, &nonce, now()),
        Err(TokenError::Signature)
    );
    // The right one, then the same token once the nonce is five minutes old.
    let good = token(&card, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.1");
    assert_eq!(check(&good, ORIGIN, &nonce, now()), Ok(()));
    let later = now() + Duration::minutes(5) + Duration::seconds(1);
    assert_eq!(
        check(&good, ORIGIN, &nonce, later),
        Err(TokenError::NonceExpired)
    );
    // The portal's origin must be an origin.
    for origin in [
        "portal.gov.az",
        "https://portal.gov.az/login",
        "http://portal.gov.az",
        "",
    ] {
        assert!(
            matches!(
                check(&good, origin, &nonce, now()),
                Err(TokenError::Origin(_))
            ),
            "{origin}"
        );
    }
    assert_eq!(
        check(&good, "http://127.0.0.1:8443", &nonce, now()),
        Err(TokenError::Signature)
    );
}

#[test]
fn certificates_not_valid_now_not_for_login_or_of_another_policy_are_refused_before_the_signature()
{
    let ca = ca();
    let nonce = ChallengeNonce::generate(now()).unwrap();
    // Valid card, checked two years on: its time is checked before its (fine) signature.
    let card_now = card(&ca, KeyAlgorithm::EcP256, card_auth());
    let json = token(
        &card_now,
        TokenAlgorithm::Es256,
        ORIGIN,
        &nonce,
        "web-eid:1.0",
    );
    let later = now() + Duration::days(730);
    assert!(matches!(
        check(&json, ORIGIN, &nonce, later),
        Err(TokenError::CertificateTime { .. })
    ));

    let refusals = [
        (
            auth_extensions(
                KeyUsages::DigitalSignature.into(),
                &[oids::KP_EMAIL_PROTECTION],
                CARD_AUTH,
            ),
            "clientAuth",
        ),
        (
            auth_extensions(KeyUsages::DigitalSignature.into(), &[], CARD_AUTH),
            "clientAuth",
        ),
        (
            auth_extensions(
                KeyUsages::NonRepudiation.into(),
                &[oids::KP_CLIENT_AUTH],
                CARD_AUTH,
            ),
            "digitalSignature",
        ),
    ];
    for (extensions, missing) in refusals {
        let card = card(&ca, KeyAlgorithm::EcP256, extensions);
        let json = token(&card, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.0");
        match check(&json, ORIGIN, &nonce, now()) {
            Err(TokenError::NotForAuthentication(why)) => assert!(why.contains(missing), "{why}"),
            other => panic!("{missing}: {other:?}"),
        }
    }
    // A phone's authentication certificate, perfectly valid, cannot log in as a card.
    let phone = card(
        &ca,
        KeyAlgorithm::EcP256,
        auth_extensions(
            KeyUsages::DigitalSignature.into(),
            &[oids::KP_CLIENT_AUTH],
            PHONE_AUTH,
        ),
    );
    let json = token(&phone, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.0");
    match check(&json, ORIGIN, &nonce, now()) {
        Err(TokenError::PolicyRefused { found }) => assert_eq!(found, PHONE_AUTH.to_string()),
        other => panic!("{other:?}"),
    }
    // Accepted where the phone's policy is the accepted one.
    let checked = AuthToken::parse(&json)
        .unwrap()
        .check_certificate(now(), &[PHONE_AUTH]);
    assert!(checked.unwrap().verify(ORIGIN, &nonce, now()).is_ok());
}

#[test]
fn a_signing_certificate_of_someone_else_is_refused() {
    let ca = ca();
    let nonce = ChallengeNonce::generate(now()).unwrap();
    let mut card = card(&ca, KeyAlgorithm::EcP256, card_auth());
    let stranger_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    card.signing = ca.issue(
        "CN=Rashad Mammadov,givenName=Rashad,SN=Mammadov,serialNumber=PNOAZ-1AB2C3D,C=AZ",
        &[0x13],
        &stranger_key,
        vec![ext::key_usage(KeyUsages::NonRepudiation.into()).unwrap()],
    );
    let json = token(&card, TokenAlgorithm::Es256, ORIGIN, &nonce, "web-eid:1.1");
    match check(&json, ORIGIN, &nonce, now()) {
        Err(TokenError::SigningCertificate { index: 0, reason }) => {
            assert!(reason.contains("subject"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_tokens_are_refused_with_what_is_wrong() {
    let ca = ca();
    let card = card(&ca, KeyAlgorithm::EcP256, card_auth());
    let nonce = ChallengeNonce::generate(now()).unwrap();
    let signature = sign(&card.key, TokenAlgorithm::Es256, ORIGIN, nonce.as_str());
    let good = token_json(&card, TokenAlgorithm::Es256, &signature, "web-eid:1.1");
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut token = good.clone();
        change(&mut token);
        serde_json::to_vec(&token).unwrap()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "JSON"),
        (b"[]".to_vec(), "JSON"),
        (vec![b' '; 16 * 1024 + 1], "longer than"),
        (
            with(&|t| t["format"] = json!("web-eid:2")),
            "unsupported format",
        ),
        (
            with(&|t| t["format"] = json!("web-eid:1.2")),
            "unsupported format",
        ),
        (
            with(&|t| t["format"] = json!("webauthn:1.1")),
            "unsupported format",
        ),
        (
            with(&|t| {
                t.as_object_mut().unwrap().remove("format");
            }),
            "'format'",
        ),
        (
            with(&|t| t["unverifiedCertificate"] = json!("")),
            "'unverifiedCertificate'",
        ),
        (
            with(&|t| t["unverifiedCertificate"] = json!("%%%")),
            "not base64",
        ),
        (
            with(&|t| t["unverifiedCertificate"] = json!("MAA=")),
            "not a certificate",
        ),
        (
            with(&|t| t["unverifiedCertificate"] = json!("A".repeat(9000))),
            "longer than",
        ),
        (
            with(&|t| t["algorithm"] = json!("HS256")),
            "unsupported algorithm",
        ),
        (
            with(&|t| t["algorithm"] = json!("none")),
            "unsupported algorithm",
        ),
        (
            with(&|t| t["signature"] = json!("A".repeat(2000))),
            "too long",
        ),
        (
            with(&|t| t["signature"] = json!("not base64!")),
            "not base64",
        ),
        (
            with(&|t| t["appVersion"] = json!("x".repeat(300))),
            "too long",
        ),
        (with(&|t| t["format"] = json!("web-eid:1.0")), "not allowed"),
        (
            with(&|t| {
                t.as_object_mut()
                    .unwrap()
                    .remove("unverifiedSigningCertificates");
            }),
            "missing",
        ),
        (
            with(&|t| t["unverifiedSigningCertificates"] = json!([])),
            "1 to 4",
        ),
        (
            with(&|t| {
                t["unverifiedSigningCertificates"][0]["supportedSignatureAlgorithms"] = json!([])
            }),
            "supportedSignatureAlgorithms",
        ),
        (
            with(&|t| {
                t["unverifiedSigningCertificates"][0]["supportedSignatureAlgorithms"][0]
                    ["hashFunction"] = json!("MD5")
            }),
            "unsupported signature algorithm",
        ),
    ];
    for (json, expected) in cases {
        match AuthToken::parse(&json) {
            Err(TokenError::Malformed(why)) => assert!(why.contains(expected), "{expected}: {why}"),
            other => panic!("{expected}: {other:?}"),
        }
    }
    // Fields a later minor version may add are ignored, as Web eID's validators do.
    let extra = with(&|t| {
        t["unverifiedIntermediateCertificates"] = json!([]);
        t["unverifiedSigningCertificates"][0]["extra"] = json!(1);
    });
    assert_eq!(check(&extra, ORIGIN, &nonce, now()), Ok(()));
    // Well formed but the signature is not r ‖ s of the key's size, or the key is not EC.
    let short = with(&|t| t["signature"] = json!(Base64::encode_string(&[1u8; 63])));
    match check(&short, ORIGIN, &nonce, now()) {
        Err(TokenError::Malformed(why)) => assert!(why.contains("64 bytes"), "{why}"),
        other => panic!("{other:?}"),
    }
    let rsa = card_with_key(&ca, KeyAlgorithm::Rsa2048);
    let mislabelled = serde_json::to_vec(&token_json(
        &rsa,
        TokenAlgorithm::Es256,
        &[1u8; 64],
        "web-eid:1.0",
    ))
    .unwrap();
    match check(&mislabelled, ORIGIN, &nonce, now()) {
        Err(TokenError::Malformed(why)) => assert!(why.contains("EC key"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A signature of the right size but wrong: a signature failure, not a malformed token.
    let flipped = with(&|t| {
        t["signature"] = json!(Base64::encode_string(&{
            let mut s = signature.clone();
            s[10] ^= 1;
            s
        }))
    });
    assert_eq!(
        check(&flipped, ORIGIN, &nonce, now()),
        Err(TokenError::Signature)
    );
}

fn card_with_key(ca: &TestCa, algorithm: KeyAlgorithm) -> Card {
    card(ca, algorithm, card_auth())
}

#[test]
fn nonces_are_256_bits_fresh_each_time_and_not_shown_in_debug() {
    let at = now();
    let a = ChallengeNonce::generate(at).unwrap();
    let b = ChallengeNonce::generate(at).unwrap();
    assert_ne!(a.as_str(), b.as_str());
    assert_eq!(Base64::decode_vec(a.as_str()).unwrap().len(), 32);
    assert!(!format!("{a:?}").contains(a.as_str()));
    assert!(a.is_live(at + Duration::minutes(5)));
    assert!(!a.is_live(at + Duration::minutes(5) + Duration::seconds(1)));
    assert!(
        !a.is_live(at - Duration::seconds(1)),
        "issued in the future"
    );
    let stored = ChallengeNonce::from_stored(a.as_str().to_string(), a.issued_at());
    assert_eq!(stored, a);
}
