//! imza's PIV client against the project's PIV card emulator through a real pcscd and vpcd:
//! management-key authentication, key generation, signing (checked by the openssl command),
//! certificates, PIN tries and unblocking, and a card pulled in the middle of a signature.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imza_core::key::{KeyAlgorithm, SigningKey};
use imza_core::CoreError;
use imza_smartcard::piv::{
    ManagementKey, ManagementKeyAlgorithm, PinState, PivCard, PivKey, PivSlot,
};
use imza_smartcard::CardError;
use imza_testdata::card::{
    CardLab, ManagementAlgorithm, PivCardState, ReaderLease, VirtualCard, DEFAULT_PIN, DEFAULT_PUK,
};
use imza_testdata::tools::{openssl, text};
use openssl::pkey::PKey;
use zeroize::Zeroizing;

/// A fresh emulated card in a leased reader, and imza connected to it.
struct Setup {
    // Fields drop in order: imza disconnects, then the card is removed, then the reader freed.
    piv: PivCard,
    card: VirtualCard,
    lease: ReaderLease,
}

fn setup_with(state: PivCardState) -> Setup {
    let lease = CardLab::shared().lease_reader();
    let card = VirtualCard::insert(&lease, state);
    let piv = PivCard::connect(Some(lease.name())).unwrap();
    Setup { piv, card, lease }
}

fn setup() -> Setup {
    setup_with(PivCardState::new())
}

/// Verifies `signature` over `message` with the openssl command and the card's public key.
fn openssl_verifies(
    dir: &Path,
    spki_der: &[u8],
    algorithm: KeyAlgorithm,
    message: &[u8],
    signature: &[u8],
) {
    let pem = PKey::public_key_from_der(spki_der)
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let (key, msg, sig) = (dir.join("pub.pem"), dir.join("msg"), dir.join("sig"));
    std::fs::write(&key, pem).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let digest = match algorithm {
        KeyAlgorithm::EcP384 => "-sha384",
        _ => "-sha256",
    };
    let out = openssl(&[
        "dgst",
        digest,
        "-verify",
        key.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "openssl dgst -verify: {}", text(&out));
    assert!(text(&out).contains("Verified OK"), "{}", text(&out));
}

#[test]
fn default_management_key_authenticates_and_wrong_ones_are_rejected() {
    let mut s = setup();
    s.piv.authenticate(&ManagementKey::default_3des()).unwrap();

    let wrong =
        ManagementKey::from_hex("0102030405060708010203040506070801020304050607FF").unwrap();
    assert!(matches!(
        s.piv.authenticate(&wrong),
        Err(CardError::ManagementKeyRejected)
    ));
    // The card's key is Triple DES: the same bytes as AES-192 are another algorithm.
    assert!(matches!(
        s.piv.authenticate(&ManagementKey::default_aes192()),
        Err(CardError::ManagementKeyRejected)
    ));
    // A rejection leaves the card usable.
    s.piv.authenticate(&ManagementKey::default_3des()).unwrap();
}

#[test]
fn aes_management_keys_authenticate() {
    for (lab_alg, alg, hex_key) in [
        (
            ManagementAlgorithm::Aes128,
            ManagementKeyAlgorithm::Aes128,
            "00112233445566778899aabbccddeeff",
        ),
        (
            ManagementAlgorithm::Aes192,
            ManagementKeyAlgorithm::Aes192,
            "0102030405060708010203040506070801020304050607ff",
        ),
        (
            ManagementAlgorithm::Aes256,
            ManagementKeyAlgorithm::Aes256,
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
    ] {
        let mut state = PivCardState::new();
        state.set_management_key(lab_alg, &hex::decode(hex_key).unwrap());
        let mut s = setup_with(state);
        s.piv
            .authenticate(&ManagementKey::from_hex_with(alg, hex_key).unwrap())
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(matches!(
            s.piv.authenticate(&ManagementKey::default_3des()),
            Err(CardError::ManagementKeyRejected)
        ));
    }
}

#[test]
fn keys_generated_on_the_card_sign_what_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Rsa2048,
    ] {
        let mut s = setup();
        s.piv.authenticate(&ManagementKey::default_3des()).unwrap();
        let spki = s.piv.generate_key(PivSlot::Signature, algorithm).unwrap();
        assert_eq!(KeyAlgorithm::of_public_key(&spki).unwrap(), algorithm);

        let reader = s.piv.reader().to_string();
        let key = PivKey::new(
            s.piv,
            PivSlot::Signature,
            spki.clone(),
            Zeroizing::new(DEFAULT_PIN.to_string()),
        )
        .unwrap();
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(key.public_key_der().unwrap(), spki);
        assert!(key.describe().contains("9C") && key.describe().contains(&reader));
        // A message longer than one APDU: hashing happens on the host.
        let message = vec![0x5Au8; 4000];
        for _ in 0..2 {
            // Slot 9C wants the PIN before every signature: PivKey presents it each time.
            let signature = key.sign(&message).unwrap();
            openssl_verifies(dir.path(), &spki, algorithm, &message, &signature);
        }
        let s_card = key.into_card();
        drop(s_card);
        drop(s.card);
        drop(s.lease);
    }
}

#[test]
fn signing_in_slot_9c_without_the_pin_is_refused() {
    let mut state = PivCardState::new();
    state.generate_key(
        imza_testdata::card::PivSlot::Signature,
        imza_testdata::card::PivAlgorithm::EcP256,
    );
    let mut s = setup_with(state);
    match s
        .piv
        .sign(PivSlot::Signature, KeyAlgorithm::EcP256, b"hello")
    {
        Err(CardError::CardStatus {
            sw: 0x6982,
            meaning,
            ..
        }) => {
            assert!(meaning.contains("PIN"), "{meaning}")
        }
        other => panic!("expected 6982, got {other:?}"),
    }
    s.piv.verify_pin(DEFAULT_PIN).unwrap();
    s.piv
        .sign(PivSlot::Signature, KeyAlgorithm::EcP256, b"hello")
        .unwrap();
}

#[test]
fn generation_needs_the_management_key_and_a_piv_algorithm() {
    let mut s = setup();
    match s
        .piv
        .generate_key(PivSlot::Authentication, KeyAlgorithm::EcP256)
    {
        Err(CardError::CardStatus { sw: 0x6982, .. }) => {}
        other => panic!("expected 6982 before authenticating, got {other:?}"),
    }
    s.piv.authenticate(&ManagementKey::default_3des()).unwrap();
    match s
        .piv
        .generate_key(PivSlot::Authentication, KeyAlgorithm::Rsa4096)
    {
        Err(CardError::Core(CoreError::UnsupportedKey(what))) => {
            assert!(what.contains("rsa-4096"), "{what}")
        }
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
}

/// A certificate for `spki_der` signed by a throwaway software CA.
fn certificate_for(spki_der: &[u8]) -> Vec<u8> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::x509::{X509Builder, X509NameBuilder};

    let ca_key = imza_testdata::csr::p256_key();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "imza PIV test").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.set_pubkey(&PKey::public_key_from_der(spki_der).unwrap())
        .unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

#[test]
fn certificate_written_is_read_back() {
    let mut s = setup();
    assert_eq!(
        s.piv.read_certificate(PivSlot::Authentication).unwrap(),
        None
    );

    s.piv.authenticate(&ManagementKey::default_3des()).unwrap();
    // RSA: a certificate over 255 bytes, so PUT DATA is chained and GET DATA answers in parts.
    let spki = s
        .piv
        .generate_key(PivSlot::Authentication, KeyAlgorithm::Rsa2048)
        .unwrap();
    let cert = certificate_for(&spki);
    assert!(cert.len() > 255, "{} bytes", cert.len());
    s.piv
        .write_certificate(PivSlot::Authentication, &cert)
        .unwrap();
    assert_eq!(
        s.piv.read_certificate(PivSlot::Authentication).unwrap(),
        Some(cert.clone())
    );
    // Other slots stay empty.
    assert_eq!(s.piv.read_certificate(PivSlot::Signature).unwrap(), None);
    // The emulator keeps it across removal, and a new connection reads it.
    s.card.remove();
    s.card.reinsert();
    let mut again = PivCard::connect(Some(s.lease.name())).unwrap();
    assert_eq!(
        again.read_certificate(PivSlot::Authentication).unwrap(),
        Some(cert)
    );
    // Garbage is refused before it reaches the card.
    assert!(again
        .write_certificate(PivSlot::Authentication, b"not a certificate")
        .is_err());
}

#[test]
fn writing_a_certificate_needs_the_management_key() {
    let mut state = PivCardState::new();
    let spki = state.generate_key(
        imza_testdata::card::PivSlot::Authentication,
        imza_testdata::card::PivAlgorithm::EcP256,
    );
    let mut s = setup_with(state);
    let cert = certificate_for(&spki);
    match s.piv.write_certificate(PivSlot::Authentication, &cert) {
        Err(CardError::CardStatus { sw: 0x6982, .. }) => {}
        other => panic!("expected 6982, got {other:?}"),
    }
}

#[test]
fn wrong_pins_count_down_lock_and_the_puk_unblocks() {
    let mut s = setup();
    assert_eq!(s.piv.pin_tries_left().unwrap(), PinState::TriesLeft(3));

    for expected in [2u8, 1] {
        match s.piv.verify_pin("000000") {
            Err(e @ CardError::PinIncorrect { .. }) => {
                assert!(
                    matches!(e, CardError::PinIncorrect { tries_left } if tries_left == expected)
                );
                assert!(e.to_string().contains(&format!("{expected} tr")), "{e}");
            }
            other => panic!("expected PinIncorrect, got {other:?}"),
        }
        assert_eq!(
            s.piv.pin_tries_left().unwrap(),
            PinState::TriesLeft(expected)
        );
    }
    assert!(matches!(
        s.piv.verify_pin("000000"),
        Err(CardError::PinLocked)
    ));
    assert_eq!(s.piv.pin_tries_left().unwrap(), PinState::Blocked);
    // Even the right PIN is refused now.
    assert!(matches!(
        s.piv.verify_pin(DEFAULT_PIN),
        Err(CardError::PinLocked)
    ));
    assert_eq!(s.card.state().pin_tries_left(), 0);

    // A wrong PUK counts down too; the right one unblocks and sets the new PIN.
    assert!(matches!(
        s.piv.unblock_pin("87654321", "654321"),
        Err(CardError::PukIncorrect { tries_left: 2 })
    ));
    s.piv.unblock_pin(DEFAULT_PUK, "654321").unwrap();
    assert_eq!(s.piv.pin_tries_left().unwrap(), PinState::TriesLeft(3));
    assert!(matches!(
        s.piv.verify_pin(DEFAULT_PIN),
        Err(CardError::PinIncorrect { tries_left: 2 })
    ));
    s.piv.verify_pin("654321").unwrap();
    assert_eq!(s.piv.pin_tries_left().unwrap(), PinState::Verified);
}

#[test]
fn pins_of_the_wrong_length_cost_no_try() {
    let mut s = setup();
    for bad in ["12345", "123456789", ""] {
        assert!(matches!(
            s.piv.verify_pin(bad),
            Err(CardError::PinFormat { what: "PIN", .. })
        ));
    }
    assert!(matches!(
        s.piv.unblock_pin("1234", "654321"),
        Err(CardError::PinFormat { what: "PUK", .. })
    ));
    assert_eq!(s.piv.pin_tries_left().unwrap(), PinState::TriesLeft(3));
    assert_eq!(s.card.state().pin_tries_left(), 3);
}

#[test]
fn a_card_pulled_during_signing_ends_in_card_removed() {
    let mut state = PivCardState::new();
    let spki = state.generate_key(
        imza_testdata::card::PivSlot::Signature,
        imza_testdata::card::PivAlgorithm::EcP256,
    );
    let s = setup_with(state);
    let reader = s.lease.name().to_string();
    let key = PivKey::new(
        s.piv,
        PivSlot::Signature,
        spki,
        Zeroizing::new(DEFAULT_PIN.to_string()),
    )
    .unwrap();
    key.sign(b"before").unwrap();

    s.card.pull_on(0x87);
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let mut card = key.into_card();
        let _ = tx.send((
            card.verify_pin(DEFAULT_PIN)
                .and_then(|()| card.sign(PivSlot::Signature, KeyAlgorithm::EcP256, b"during")),
            card,
        ));
    });
    let (result, mut card) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("signing with a pulled card hangs");
    match result {
        Err(CardError::CardRemoved {
            reader: r,
            operation,
        }) => {
            assert_eq!(r, reader);
            assert!(operation.contains("signing"), "{operation}");
        }
        other => panic!("expected CardRemoved, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // Later operations on the old connection fail the same way, quickly.
    assert!(matches!(
        card.pin_tries_left(),
        Err(CardError::CardRemoved { .. } | CardError::NoCard { .. })
    ));
    drop(s.card);
    drop(s.lease);
}

#[test]
fn a_signature_through_piv_key_after_the_card_is_pulled_is_a_clear_core_error() {
    let mut state = PivCardState::new();
    let spki = state.generate_key(
        imza_testdata::card::PivSlot::Signature,
        imza_testdata::card::PivAlgorithm::EcP256,
    );
    let mut s = setup_with(state);
    let key = PivKey::new(
        s.piv,
        PivSlot::Signature,
        spki,
        Zeroizing::new(DEFAULT_PIN.to_string()),
    )
    .unwrap();
    s.card.remove();
    match key.sign(b"after") {
        Err(CoreError::Signing(text)) => assert!(text.contains("removed"), "{text}"),
        other => panic!("expected a signing error, got {other:?}"),
    }
}

#[test]
fn piv_key_reports_a_wrong_pin_with_the_tries_left() {
    let mut state = PivCardState::new();
    let spki = state.generate_key(
        imza_testdata::card::PivSlot::Signature,
        imza_testdata::card::PivAlgorithm::EcP256,
    );
    let s = setup_with(state);
    let key = PivKey::new(
        s.piv,
        PivSlot::Signature,
        spki,
        Zeroizing::new("999999".to_string()),
    )
    .unwrap();
    match key.sign(b"x") {
        Err(e @ CoreError::Pkcs11PinIncorrect { .. }) => {
            assert!(e.to_string().contains("2 tries left"), "{e}");
        }
        other => panic!("expected a PIN error, got {other:?}"),
    }
    assert!(PivKey::new(
        key.into_card(),
        PivSlot::Signature,
        vec![0x30, 0x00],
        Zeroizing::new(DEFAULT_PIN.to_string())
    )
    .is_err());
}

#[test]
fn the_card_reports_its_reader_and_atr() {
    let s = setup();
    assert_eq!(s.piv.reader(), s.lease.name());
    assert_eq!(s.piv.atr(), s.card.atr());
}
