//! A key on a PKCS#11 token (SoftHSM2) signs through the same `SigningKey` trait: the B-B
//! signature it makes is accepted by `openssl cms -verify`, and a token key that is not the
//! certificate's is refused.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use common::*;
use imza_core::key::pkcs11::{PinSource, Pkcs11Key};
use imza_core::KeyAlgorithm;
use imza_signer::{sign, Credentials, SignOptions};
use imza_testdata::pki::leaf_extensions;
use imza_testdata::softhsm::{KeyLocation, SoftHsm};
use time::OffsetDateTime;
use zeroize::Zeroizing;

const PIN: &str = "4321";

fn softhsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::new();
        hsm.init_token("signer", "87654321", PIN);
        std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
        hsm
    })
}

fn pin() -> PinSource {
    PinSource::Value(Zeroizing::new(PIN.to_string()))
}

#[test]
fn a_softhsm_key_signs_b_b_that_openssl_accepts() {
    if !SoftHsm::is_available() {
        eprintln!("note: SoftHSM2 is not installed; skipping");
        return;
    }
    let hsm = softhsm();
    for (label, algorithm) in [
        ("p256", KeyAlgorithm::EcP256),
        ("rsa", KeyAlgorithm::Rsa2048),
    ] {
        let pki = SignerPki::new(KeyAlgorithm::EcP256);
        let location = hsm.location("signer", label);
        let key = Pkcs11Key::generate(&location, algorithm, &pin()).unwrap();
        let cert = pki
            .issuing
            .issue(SignerPki::SUBJECT, &[0x40, 0x01], &key, leaf_extensions());
        let credentials = Credentials::new(
            Box::new(Pkcs11Key::open(&location, &pin()).unwrap()),
            cert,
            vec![pki.issuing.der.clone()],
        )
        .unwrap();
        let document = b"signed on a token";
        for attached in [false, true] {
            let mut options = SignOptions::new(OffsetDateTime::now_utc());
            options.attached = attached;
            let signature = sign(document, &credentials, &options).unwrap();
            let out = pki
                .openssl_verify(&signature, (!attached).then_some(&document[..]))
                .unwrap_or_else(|e| panic!("{algorithm} attached={attached}: {e}"));
            assert_eq!(out, document);
        }
        // The token key is not the software signer's certificate key.
        let err = Credentials::new(
            Box::new(Pkcs11Key::open(&location, &pin()).unwrap()),
            pki.cert.clone(),
            Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not the one certified"), "{err}");
    }
}
