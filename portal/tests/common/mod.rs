//! A citizen's card as Web eID tokens need it: keys, certificates from a test CA, and the
//! token a card signs over an origin and a nonce.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use base64ct::{Base64, Encoding};
use const_oid::ObjectIdentifier;
use flagset::FlagSet;
use serde_json::json;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::Extension;

use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::key::{KeyAlgorithm, SigningKey};
use imza_core::oids;
use imza_portal::webeid::{signed_data, ChallengeNonce, TokenAlgorithm};
use imza_testdata::pki::TestCa;

pub const ORIGIN: &str = "https://portal.gov.az";
/// The card's authentication policy, and the phone's (which must not log in as a card).
pub const CARD_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1.1");
pub const PHONE_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1.2");
pub const SUBJECT: &str =
    "CN=Gunay Aliyeva,givenName=Gunay,SN=Aliyeva,serialNumber=PNOAZ-5ZK7T2Q,C=AZ";

pub fn auth_extensions(
    usage: FlagSet<KeyUsages>,
    eku: &[ObjectIdentifier],
    policy: ObjectIdentifier,
) -> Vec<Extension> {
    let mut extensions = vec![
        ext::key_usage(usage).unwrap(),
        ext::certificate_policies(&[policy]).unwrap(),
    ];
    if !eku.is_empty() {
        extensions.push(ext::extended_key_usage(eku, false).unwrap());
    }
    extensions
}

pub fn card_auth() -> Vec<Extension> {
    auth_extensions(
        KeyUsages::DigitalSignature.into(),
        &[oids::KP_CLIENT_AUTH],
        CARD_AUTH,
    )
}

/// A citizen's card: its authentication key and certificate, and a signing certificate.
pub struct Card {
    pub key: SoftwareKey,
    pub certificate: Vec<u8>,
    pub signing: Vec<u8>,
}

pub fn card(ca: &TestCa, algorithm: KeyAlgorithm, extensions: Vec<Extension>) -> Card {
    let key = SoftwareKey::generate(algorithm).unwrap();
    let certificate = ca.issue(SUBJECT, &serial(), &key, extensions);
    let signing_key = SoftwareKey::generate(algorithm).unwrap();
    let signing = ca.issue(
        SUBJECT,
        &serial(),
        &signing_key,
        vec![
            ext::key_usage(KeyUsages::NonRepudiation.into()).unwrap(),
            ext::certificate_policies(&[CARD_AUTH]).unwrap(),
        ],
    );
    Card {
        key,
        certificate,
        signing,
    }
}

/// A fresh positive 8-byte serial: every card's certificates are their own.
pub fn serial() -> Vec<u8> {
    let mut serial = [0u8; 8];
    openssl::rand::rand_bytes(&mut serial).unwrap();
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial.to_vec()
}

pub fn ca() -> TestCa {
    TestCa::root(
        "CN=Test Citizens CA,O=Test State,C=AZ",
        KeyAlgorithm::EcP256,
    )
}

/// The card's signature over `origin` and `nonce` as the token carries it: ECDSA as raw
/// `r ‖ s` of the curve's size, RSA as is.
pub fn sign(key: &SoftwareKey, algorithm: TokenAlgorithm, origin: &str, nonce: &str) -> Vec<u8> {
    let der = key.sign(&signed_data(algorithm, origin, nonce)).unwrap();
    let size = match algorithm {
        TokenAlgorithm::Es256 => 32,
        TokenAlgorithm::Es384 => 48,
        TokenAlgorithm::Es512 => 66,
        _ => return der,
    };
    let sig = openssl::ecdsa::EcdsaSig::from_der(&der).unwrap();
    let mut raw = sig.r().to_vec_padded(size).unwrap();
    raw.extend(sig.s().to_vec_padded(size).unwrap());
    raw
}

pub fn token_json(
    card: &Card,
    algorithm: TokenAlgorithm,
    signature: &[u8],
    format: &str,
) -> serde_json::Value {
    let mut token = json!({
        "format": format,
        "appVersion": "https://imza.example/agent/0.1.0",
        "unverifiedCertificate": Base64::encode_string(&card.certificate),
        "algorithm": algorithm.name(),
        "signature": Base64::encode_string(signature),
    });
    if format == "web-eid:1.1" {
        token["unverifiedSigningCertificates"] = json!([{
            "certificate": Base64::encode_string(&card.signing),
            "supportedSignatureAlgorithms": [
                { "cryptoAlgorithm": "ECC", "hashFunction": "SHA-256", "paddingScheme": "NONE" }
            ]
        }]);
    }
    token
}

pub fn token(
    card: &Card,
    algorithm: TokenAlgorithm,
    origin: &str,
    nonce: &ChallengeNonce,
    format: &str,
) -> Vec<u8> {
    let signature = sign(&card.key, algorithm, origin, nonce.as_str());
    serde_json::to_vec(&token_json(card, algorithm, &signature, format)).unwrap()
}
