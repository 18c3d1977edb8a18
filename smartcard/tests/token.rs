//! PKCS#11 tokens through imza-smartcard on SoftHSM2: listing without a PIN, choosing the
//! signing certificate, signing, and many threads of one process using one module at once
//! (the module is initialised once per process; a second C_Initialize would fail).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Barrier};

use imza_core::key::pkcs11::{KeySelector, PinSource, Pkcs11Key, TokenSelector};
use imza_core::key::software::SoftwareKey;
use imza_core::verify::verify_signature;
use imza_core::{KeyAlgorithm, SigningKey};
use imza_smartcard::token::{list_tokens, CardKey, CardKeyRequest};
use imza_smartcard::CardError;
use imza_testdata::softhsm::SoftHsm;
use zeroize::Zeroizing;

const PIN: &str = "1357";
const THREADS: usize = 8;

/// One SoftHSM directory for the process (SoftHSM reads SOFTHSM2_CONF once), holding the
/// token "citizen" with a signing and an authentication key, each with its certificate.
fn token() -> Option<&'static SoftHsm> {
    static HSM: std::sync::OnceLock<Option<SoftHsm>> = std::sync::OnceLock::new();
    HSM.get_or_init(|| {
        if !SoftHsm::is_available() {
            eprintln!("note: SoftHSM2 is not installed; skipping");
            return None;
        }
        let hsm = SoftHsm::new();
        hsm.init_token("citizen", "12345678", PIN);
        hsm.init_token("other", "12345678", PIN);
        std::env::set_var("SOFTHSM2_CONF", hsm.conf_path());
        let module = hsm.module_path().to_path_buf();
        for (label, usage) in [("sign", "nonRepudiation"), ("auth", "digitalSignature")] {
            let location = imza_core::key::pkcs11::Pkcs11Location {
                module: module.clone(),
                token_label: "citizen".into(),
                key_label: label.into(),
            };
            let key = Pkcs11Key::generate(&location, KeyAlgorithm::EcP256, &pin()).unwrap();
            key.store_certificate(&certificate_for(&key, label, usage), label)
                .unwrap();
        }
        Some(hsm)
    })
    .as_ref()
}

fn pin() -> PinSource {
    PinSource::Value(Zeroizing::new(PIN.to_string()))
}

/// A certificate for `key` with the given keyUsage, issued by a throwaway software CA.
fn certificate_for(key: &Pkcs11Key, cn: &str, usage: &str) -> Vec<u8> {
    let ca = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let ca_key = ca.pkey();
    let public = openssl::pkey::PKey::public_key_from_der(&key.public_key_der().unwrap()).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut builder = openssl::x509::X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&public).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder
        .set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let mut ku = openssl::x509::extension::KeyUsage::new();
    ku.critical();
    if usage == "nonRepudiation" {
        ku.non_repudiation();
    } else {
        ku.digital_signature();
    }
    builder.append_extension(ku.build().unwrap()).unwrap();
    builder
        .sign(ca_key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    builder.build().to_der().unwrap()
}

fn request(module: &Path, cert_id: Option<Vec<u8>>) -> CardKeyRequest<'_> {
    CardKeyRequest {
        module,
        token: TokenSelector::Label("citizen".into()),
        cert_id,
        rsa_pss: false,
    }
}

#[test]
fn tokens_and_certificates_are_listed_without_a_pin() {
    let Some(hsm) = token() else { return };
    let tokens = list_tokens(hsm.module_path()).unwrap();
    let citizen = tokens.iter().find(|t| t.label == "citizen").unwrap();
    assert_eq!(citizen.certificates.len(), 2, "{citizen:?}");
    let sign = citizen
        .certificates
        .iter()
        .find(|c| c.label == "sign")
        .unwrap();
    assert_eq!(sign.subject, "CN=sign");
    assert_eq!(sign.key_usage, vec!["nonRepudiation"]);
    // SoftHSM hides private keys until some session of the process logs in (other tests
    // here do); the public key shows the pair either way.
    assert!(sign.public_key, "{sign:?}");
    assert!(tokens
        .iter()
        .any(|t| t.label == "other" && t.certificates.is_empty()));
}

#[test]
fn the_non_repudiation_certificate_is_chosen_and_signs() {
    let Some(hsm) = token() else { return };
    let key = CardKey::open(&request(hsm.module_path(), None), &pin()).unwrap();
    let cert = x509_subject(key.certificate());
    assert_eq!(cert, "CN=sign");
    let signature = key.sign(b"document").unwrap();
    verify_signature(
        &key.public_key_der().unwrap(),
        &key.signature_algorithm(),
        b"document",
        &signature,
    )
    .unwrap();
}

#[test]
fn an_explicit_cert_id_picks_the_other_key_and_unknown_ids_are_listed() {
    let Some(hsm) = token() else { return };
    let tokens = list_tokens(hsm.module_path()).unwrap();
    let auth = tokens
        .iter()
        .flat_map(|t| &t.certificates)
        .find(|c| c.label == "auth")
        .unwrap();
    let id = hex::decode(&auth.id).unwrap();
    let key = CardKey::open(&request(hsm.module_path(), Some(id)), &pin()).unwrap();
    assert_eq!(x509_subject(key.certificate()), "CN=auth");

    let err = CardKey::open(&request(hsm.module_path(), Some(vec![1, 2, 3])), &pin()).unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("no certificate with id 010203") && said.contains("CN=sign"),
        "{said}"
    );
}

#[test]
fn a_token_without_certificates_says_enroll_first_before_asking_for_a_pin() {
    let Some(hsm) = token() else { return };
    let request = CardKeyRequest {
        module: hsm.module_path(),
        token: TokenSelector::Label("other".into()),
        cert_id: None,
        rsa_pss: false,
    };
    // The PIN source is an unset variable: the error must come before it is read.
    let err = CardKey::open(&request, &PinSource::Env("IMZA_TEST_UNSET_PIN".into())).unwrap_err();
    assert!(matches!(err, CardError::Token(_)), "{err:?}");
    assert!(err.to_string().contains("imza card enroll"), "{err}");
}

#[test]
fn many_threads_list_open_and_sign_through_one_module_context() {
    let Some(hsm) = token() else { return };
    let module = hsm.module_path().to_path_buf();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (module, barrier) = (module.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                // The same module under another spelling of its path must share the context.
                let spelled = if i % 2 == 0 {
                    module.clone()
                } else {
                    Path::new("/usr/lib/softhsm/../softhsm/libsofthsm2.so").to_path_buf()
                };
                let tokens = list_tokens(&spelled).unwrap();
                assert!(tokens.iter().any(|t| t.label == "citizen"));
                let key = CardKey::open(&request(&spelled, None), &pin()).unwrap();
                for n in 0..5 {
                    let message = format!("thread {i} message {n}");
                    let signature = key.sign(message.as_bytes()).unwrap();
                    verify_signature(
                        &key.public_key_der().unwrap(),
                        &key.signature_algorithm(),
                        message.as_bytes(),
                        &signature,
                    )
                    .unwrap();
                }
                let by_id = Pkcs11Key::open_with(
                    &spelled,
                    &TokenSelector::Label("citizen".into()),
                    &KeySelector::Label("auth".into()),
                    &pin(),
                )
                .unwrap();
                by_id.sign(b"x").unwrap();
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("a thread failed");
    }
}

fn x509_subject(der: &[u8]) -> String {
    let cert = imza_core::cert::parse_certificate(der).unwrap();
    imza_core::name::format_dn(&cert.tbs_certificate.subject)
}
