//! Certificates and CRLs for the validator's tests and benchmark, made with imza-core's
//! builders and imza-testdata's keys: chains of any key type (P-256 from imza-testdata,
//! Ed25519 and RSA-PSS keys implemented here, as imza's CA does not issue with them), CRLs
//! with chosen entries, and hostile pools.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::sync::Arc;

use imza_core::alg::RsaPssParams;
use imza_core::cert::{sign_certificate, CertificateFields};
use imza_core::crl::{sign_crl, CrlFields, RevokedEntry};
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{ext, oids, CoreError, KeyAlgorithm, SigningKey};
use openssl::pkey::{PKey, Private};
use spki::AlgorithmIdentifierOwned;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::Extension;

/// An Ed25519 key (RFC 8410): signs the message itself, no digest.
pub struct Ed25519Key(PKey<Private>);

impl Ed25519Key {
    pub fn generate() -> Ed25519Key {
        Ed25519Key(PKey::generate_ed25519().expect("generate an Ed25519 key"))
    }
}

impl SigningKey for Ed25519Key {
    fn algorithm(&self) -> KeyAlgorithm {
        // Not one of imza's issuing algorithms; only signature_algorithm below is used.
        KeyAlgorithm::EcP256
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        self.0.public_key_to_der().map_err(CoreError::openssl)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        openssl::sign::Signer::new_without_digest(&self.0)
            .and_then(|mut s| s.sign_oneshot_to_vec(message))
            .map_err(CoreError::openssl)
    }

    fn describe(&self) -> String {
        "test Ed25519 key".into()
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::ED25519,
            parameters: None,
        }
    }
}

/// An RSA-2048 key signing with RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt.
pub struct RsaPssKey(PKey<Private>);

impl RsaPssKey {
    pub fn generate() -> RsaPssKey {
        RsaPssKey::with_modulus_bits(2048)
    }

    /// A key of `bits` bits (below 2048 only to test that such keys are refused).
    pub fn with_modulus_bits(bits: u32) -> RsaPssKey {
        let rsa = openssl::rsa::Rsa::generate(bits).expect("generate an RSA key");
        RsaPssKey(PKey::from_rsa(rsa).expect("an RSA PKey"))
    }
}

impl SigningKey for RsaPssKey {
    fn algorithm(&self) -> KeyAlgorithm {
        KeyAlgorithm::Rsa2048
    }

    fn public_key_der(&self) -> Result<Vec<u8>, CoreError> {
        self.0.public_key_to_der().map_err(CoreError::openssl)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreError> {
        use openssl::hash::MessageDigest;
        use openssl::rsa::Padding;
        use openssl::sign::{RsaPssSaltlen, Signer};
        let mut signer =
            Signer::new(MessageDigest::sha256(), &self.0).map_err(CoreError::openssl)?;
        signer
            .set_rsa_padding(Padding::PKCS1_PSS)
            .and_then(|_| signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH))
            .and_then(|_| signer.set_rsa_mgf1_md(MessageDigest::sha256()))
            .map_err(CoreError::openssl)?;
        signer.update(message).map_err(CoreError::openssl)?;
        signer.sign_to_vec().map_err(CoreError::openssl)
    }

    fn describe(&self) -> String {
        "test RSA-PSS key".into()
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        let sha256 = AlgorithmIdentifierOwned {
            oid: oids::SHA256,
            parameters: None,
        };
        let params = RsaPssParams {
            hash_algorithm: Some(sha256.clone()),
            mask_gen_algorithm: Some(AlgorithmIdentifierOwned {
                oid: oids::MGF1,
                parameters: Some(der::Any::encode_from(&sha256).expect("MGF1 parameters")),
            }),
            salt_length: Some(32),
            trailer_field: None,
        };
        AlgorithmIdentifierOwned {
            oid: oids::RSASSA_PSS,
            parameters: Some(der::Any::encode_from(&params).expect("PSS parameters")),
        }
    }
}

/// A CA or end entity of a test PKI: its name, key and certificate.
pub struct Party {
    pub subject: String,
    pub key: Arc<dyn SigningKey>,
    pub der: Vec<u8>,
}

impl Party {
    /// `key` under the name `subject`, with no certificate of its own: an issuer to sign
    /// certificates with (one of many same-name CAs, say).
    pub fn unissued(subject: &str, key: &Arc<dyn SigningKey>) -> Party {
        Party {
            subject: subject.to_string(),
            key: Arc::clone(key),
            der: Vec::new(),
        }
    }

    pub fn key_id(&self) -> Vec<u8> {
        ext::key_identifier(&self.key.public_key_der().expect("public key")).expect("key id")
    }

    pub fn certificate(&self) -> imza_validation::Certificate {
        imza_validation::Certificate::from_der(self.der.clone()).expect("a test certificate parses")
    }
}

/// What a test certificate looks like apart from names and keys.
pub struct Shape {
    pub serial: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub extensions: Vec<Extension>,
}

impl Shape {
    /// Valid from a day ago for a year.
    pub fn current(serial: &[u8], extensions: Vec<Extension>) -> Shape {
        let not_before = OffsetDateTime::now_utc() - Duration::days(1);
        Shape {
            serial: serial.to_vec(),
            not_before,
            not_after: not_before + Duration::days(365),
            extensions,
        }
    }
}

pub fn ca_extensions() -> Vec<Extension> {
    imza_testdata::pki::ca_extensions()
}

pub fn leaf_extensions() -> Vec<Extension> {
    vec![ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation).expect("keyUsage")]
}

/// `der` with its TBSCertificate changed by `edit`, signed again with `issuer_key`: what a
/// CA that breaks a rule of RFC 5280 could issue.
pub fn resign(
    der: &[u8],
    issuer_key: &dyn SigningKey,
    edit: impl FnOnce(&mut x509_cert::TbsCertificate),
) -> Vec<u8> {
    use der::{Decode, Encode};
    let mut cert = x509_cert::Certificate::from_der(der).expect("a test certificate");
    edit(&mut cert.tbs_certificate);
    cert.signature = signature_over(&cert.tbs_certificate, issuer_key);
    cert.to_der().expect("certificate DER")
}

/// `der` with its TBSCertList changed by `edit`, signed again with `issuer_key`.
pub fn resign_crl(
    der: &[u8],
    issuer_key: &dyn SigningKey,
    edit: impl FnOnce(&mut x509_cert::crl::TbsCertList),
) -> Vec<u8> {
    use der::{Decode, Encode};
    let mut crl = x509_cert::crl::CertificateList::from_der(der).expect("a test CRL");
    edit(&mut crl.tbs_cert_list);
    crl.signature = signature_over(&crl.tbs_cert_list, issuer_key);
    crl.to_der().expect("CRL DER")
}

/// `key`'s signature over the DER of `tbs`, as the BIT STRING a signed structure carries.
fn signature_over(tbs: &impl der::Encode, key: &dyn SigningKey) -> der::asn1::BitString {
    let signature = key.sign(&tbs.to_der().expect("TBS DER")).expect("sign");
    der::asn1::BitString::from_bytes(&signature).expect("signature bits")
}

/// The extensions of `tbs` without those named `oid`.
pub fn drop_extension(tbs: &mut x509_cert::TbsCertificate, oid: der::asn1::ObjectIdentifier) {
    if let Some(extensions) = tbs.extensions.as_mut() {
        extensions.retain(|e| e.extn_id != oid);
    }
}

/// Marks the extension `oid` of `tbs` critical or not.
pub fn set_critical(
    tbs: &mut x509_cert::TbsCertificate,
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
) {
    for e in tbs.extensions.iter_mut().flatten() {
        if e.extn_id == oid {
            e.critical = critical;
        }
    }
}

/// A certificate for `subject` / `subject_key` signed by `issuer` (`None`: self-signed),
/// with SKI and AKI added.
pub fn issue(
    issuer: Option<&Party>,
    subject: &str,
    subject_key: Arc<dyn SigningKey>,
    shape: Shape,
) -> Party {
    let spki = subject_key.public_key_der().expect("public key");
    let (issuer_name, issuer_key): (&str, &dyn SigningKey) = match issuer {
        Some(p) => (&p.subject, p.key.as_ref()),
        None => (subject, subject_key.as_ref()),
    };
    let issuer_spki = issuer_key.public_key_der().expect("issuer public key");
    let mut extensions = shape.extensions;
    extensions.push(ext::subject_key_identifier(&ext::key_identifier(&spki).unwrap()).unwrap());
    extensions
        .push(ext::authority_key_identifier(&ext::key_identifier(&issuer_spki).unwrap()).unwrap());
    let der = sign_certificate(
        CertificateFields {
            serial: shape.serial,
            issuer: parse_dn(issuer_name).expect("issuer DN"),
            subject: parse_dn(subject).expect("subject DN"),
            not_before: shape.not_before,
            not_after: shape.not_after,
            subject_public_key: spki,
            extensions,
        },
        issuer_key,
    )
    .expect("sign a test certificate")
    .der;
    Party {
        subject: subject.to_string(),
        key: subject_key,
        der,
    }
}

pub fn p256() -> Arc<dyn SigningKey> {
    Arc::new(SoftwareKey::generate(KeyAlgorithm::EcP256).expect("a P-256 key"))
}

/// A CRL by `issuer`, issued at `this_update`, next update a week later, listing `entries`.
pub fn crl(
    issuer: &Party,
    this_update: OffsetDateTime,
    entries: &[RevokedEntry],
) -> imza_validation::Crl {
    let der = sign_crl(
        CrlFields {
            issuer: &parse_dn(&issuer.subject).expect("issuer DN"),
            issuer_key_id: &issuer.key_id(),
            number: 1,
            this_update,
            next_update: this_update + Duration::days(7),
            distribution_point: None,
        },
        entries,
        issuer.key.as_ref(),
        &mut |_, _| {},
    )
    .expect("sign a test CRL");
    imza_validation::Crl::from_der(der).expect("a test CRL parses")
}

/// A root, an issuing CA and a leaf, with an empty CRL from each CA.
pub struct ThreeChain {
    pub root: Party,
    pub ca: Party,
    pub leaf: Party,
    pub root_crl: imza_validation::Crl,
    pub ca_crl: imza_validation::Crl,
}

impl ThreeChain {
    pub fn new(key: fn() -> Arc<dyn SigningKey>) -> ThreeChain {
        let root = issue(
            None,
            "CN=Test Root,O=imza,C=AZ",
            key(),
            Shape::current(&[1], ca_extensions()),
        );
        let ca = issue(
            Some(&root),
            "CN=Test Issuing CA,O=imza,C=AZ",
            key(),
            Shape::current(&[2], ca_extensions()),
        );
        let leaf = issue(
            Some(&ca),
            "CN=Test Signer,serialNumber=PNOAZ-1234567,C=AZ",
            key(),
            Shape::current(&[3], leaf_extensions()),
        );
        let now = OffsetDateTime::now_utc() - Duration::minutes(5);
        let root_crl = crl(&root, now, &[]);
        let ca_crl = crl(&ca, now, &[]);
        ThreeChain {
            root,
            ca,
            leaf,
            root_crl,
            ca_crl,
        }
    }

    /// A validator trusting the root, with the issuing CA in the pool and both CRLs.
    pub fn validator(&self) -> imza_validation::Validator {
        let mut v = imza_validation::Validator::new(vec![self.root.certificate()]);
        v.add_certificate(self.ca.certificate());
        v.add_crl(self.root_crl.clone());
        v.add_crl(self.ca_crl.clone());
        v
    }
}

/// `n` CAs with one subject name and their own keys, each certified by every other one
/// (n·(n-1) certificates), and a leaf under the first: a pool in which every step of path
/// building has n-1 issuers whose signatures verify, and no anchor is reachable.
pub fn cross_signed_mesh(n: usize) -> (Vec<Vec<u8>>, Party) {
    let subject = "CN=Mesh CA,O=imza,C=AZ";
    let keys: Vec<Arc<dyn SigningKey>> = (0..n).map(|_| p256()).collect();
    let mut pool = Vec::new();
    for (i, subject_key) in keys.iter().enumerate() {
        for (j, issuer_key) in keys.iter().enumerate() {
            if i == j {
                continue;
            }
            let issuer = Party::unissued(subject, issuer_key);
            let serial = [((i * n + j) >> 8) as u8 | 0x10, (i * n + j) as u8];
            pool.push(
                issue(
                    Some(&issuer),
                    subject,
                    Arc::clone(subject_key),
                    Shape::current(&serial, ca_extensions()),
                )
                .der,
            );
        }
    }
    let first = Party::unissued(subject, &keys[0]);
    let leaf = issue(
        Some(&first),
        "CN=Mesh Leaf,O=imza,C=AZ",
        p256(),
        Shape::current(&[0x7f], leaf_extensions()),
    );
    (pool, leaf)
}
