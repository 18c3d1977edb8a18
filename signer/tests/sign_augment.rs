//! Raising a signature's level leaves what was signed alone: B-B → B-T (detached and
//! enveloping) keeps the signed attributes and the signature value byte for byte, OpenSSL
//! still accepts the result, and the added token stamps the signature value. Also B-LTA's
//! preconditions, and the refusals (lowering a level, the wrong content, not a signature).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use imza_core::{oids, KeyAlgorithm};
use imza_signer::{
    augment, level_of, sign, AugmentOptions, HttpTimestamper, Level, SignOptions, SignerError,
    ValidationDataSources,
};
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"Etibarname N 17: the holder may collect the parcel.";

fn b_b(pki: &SignerPki, attached: bool) -> Vec<u8> {
    let mut options = SignOptions::new(OffsetDateTime::now_utc());
    options.attached = attached;
    sign(DOCUMENT, &pki.credentials(), &options).unwrap()
}

#[test]
fn augmenting_b_to_t_keeps_the_signed_bytes_and_openssl_accepts_it() {
    let tsa = LoopbackTsa::start();
    let timestamper = HttpTimestamper::new(tsa.url());
    let options = AugmentOptions {
        timestamper: Some(&timestamper),
        ..AugmentOptions::default()
    };
    for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::Rsa2048] {
        let pki = SignerPki::new(algorithm);
        for attached in [false, true] {
            let before = b_b(&pki, attached);
            assert_eq!(level_of(&before).unwrap(), Level::B);
            let content = (!attached).then_some(DOCUMENT);
            let after = augment(&before, content, Level::T, &options).unwrap();
            assert_eq!(level_of(&after).unwrap(), Level::T);
            assert_eq!(
                signed_part(&before),
                signed_part(&after),
                "signed part changed"
            );
            assert_eq!(
                signed_data(&before).encap_content_info,
                signed_data(&after).encap_content_info
            );
            let tokens = unsigned_values(&after, oids::ATTR_TIME_STAMP_TOKEN);
            assert_eq!(tokens.len(), 1);
            let token = imza_tsa::ParsedToken::from_der(&tokens[0]).unwrap();
            let (_, signature_value) = signed_part(&before);
            assert_eq!(
                token.hashed_message(),
                openssl::sha::sha256(&signature_value)
            );

            let out = pki
                .openssl_verify(&after, content)
                .unwrap_or_else(|e| panic!("{algorithm} attached={attached}: {e}"));
            assert_eq!(out, DOCUMENT);

            // T on T adds nothing (the signature already has its time-stamp), and without a
            // detached content it still works: B-T needs only the signature value.
            let again = augment(&after, None, Level::T, &options).unwrap();
            assert_eq!(again, after);
        }
    }
}

#[test]
fn augmenting_refuses_the_wrong_content_lower_levels_and_non_signatures() {
    let tsa = LoopbackTsa::start();
    let timestamper = HttpTimestamper::new(tsa.url());
    let options = AugmentOptions {
        timestamper: Some(&timestamper),
        ..AugmentOptions::default()
    };
    let pki = SignerPki::new(KeyAlgorithm::EcP256);
    let before = b_b(&pki, false);
    let err = augment(&before, Some(b"another document"), Level::T, &options).unwrap_err();
    assert!(err.to_string().contains("not the signed content"), "{err}");

    let t = augment(&before, None, Level::T, &options).unwrap();
    let err = augment(&t, None, Level::B, &options).unwrap_err();
    assert!(err.to_string().contains("never lowered"), "{err}");

    // Without a TSA there is no B-T.
    let err = augment(&before, None, Level::T, &AugmentOptions::default()).unwrap_err();
    assert!(matches!(err, SignerError::Usage(_)), "{err}");

    // Not a signature at all, a truncated one, and each prefix of a real one.
    assert!(matches!(
        augment(b"plain text", None, Level::T, &options),
        Err(SignerError::Malformed { .. })
    ));
    for cut in (0..t.len()).step_by(97) {
        assert!(augment(&t[..cut], None, Level::T, &options).is_err());
    }
}

#[test]
fn b_lta_of_a_detached_signature_needs_its_content() {
    let tsa = LoopbackTsa::start();
    let timestamper = HttpTimestamper::new(tsa.url());
    let pki = SignerPki::new(KeyAlgorithm::EcP256);
    let sources = ValidationDataSources::new(vec![pki.root.der.clone()]);
    let options = AugmentOptions {
        timestamper: Some(&timestamper),
        validation: Some(&sources),
        archive_digest: None,
    };
    let before = b_b(&pki, false);
    let err = augment(&before, None, Level::LTA, &options).unwrap_err();
    assert!(
        err.to_string().contains("needs the signed content"),
        "{err}"
    );
}
