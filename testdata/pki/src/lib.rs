//! A test PKI made with imza-core alone: a root CA, an issuing CA under it when a test wants
//! one, each with a software key, and the certificates they issue — leaves, and service
//! certificates (an OCSP responder, a TSA) with the extensions their profiles require.
//!
//! Certificates come back as DER; [`write_certificate`] puts one in a PEM file for the tools
//! (`openssl ocsp`, `openssl ts`) that read files, and [`TsaPki`] is the ready root + TSA pair
//! the time-stamping tests share, written out as `CA.pem`, `tsa.pem` and `tsa.key`.
//!
//! Every certificate is valid from a day before it is made, so a tool whose clock differs a
//! little still finds it valid now: a CA for [`CA_VALIDITY`], anything else for
//! [`END_ENTITY_VALIDITY`]. As imza-ca does, every certificate (a root's too) carries a
//! subjectKeyIdentifier and an authorityKeyIdentifier (RFC 5280 §4.2.1.1-2, RFC 7093 method 1).
//!
//! These are fixtures: every function panics when something cannot be made or written.
//!
//! The crate depends on imza-core alone, so the unit tests of imza-validation or
//! imza-mobile-sign can use it without linking a second copy of their own crate; integration
//! tests reach it as `imza_testdata::pki`.

// A test-support crate: a fixture that cannot be set up panics, failing the test that asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use imza_core::cert::{sign_certificate, CertificateFields};
use imza_core::crl::{sign_crl, CrlFields, RevokedEntry};
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{oids, KeyAlgorithm, SigningKey};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::ext::Extension;

/// How long a CA certificate is valid (from a day before it is made).
pub const CA_VALIDITY: Duration = Duration::days(3650);

/// How long a leaf or service certificate is valid (from a day before it is made). Tests that
/// need a time after it ends use a year and a bit (400 days).
pub const END_ENTITY_VALIDITY: Duration = Duration::days(365);

/// The subject of [`TsaPki`]'s root.
pub const TSA_ROOT_SUBJECT: &str = "CN=imza Test Root CA,O=imza,C=AZ";

/// The subject of [`TsaPki`]'s TSA certificate.
pub const TSA_SUBJECT: &str = "CN=imza Test TSA,O=imza,C=AZ";

/// A CA: its name, its software key and its certificate.
pub struct TestCa {
    /// The subject DN, as `parse_dn` reads it (`CN=...,O=...,C=AZ`).
    pub subject: String,
    pub key: Arc<SoftwareKey>,
    pub serial: Vec<u8>,
    pub der: Vec<u8>,
}

/// A service certificate (OCSP responder, TSA) and the key it certifies.
pub struct ServiceCert {
    pub der: Vec<u8>,
    pub key: Arc<SoftwareKey>,
}

impl TestCa {
    /// A self-signed root CA (serial 1) with a fresh key of `algorithm`.
    pub fn root(subject: &str, algorithm: KeyAlgorithm) -> TestCa {
        let key = Arc::new(SoftwareKey::generate(algorithm).expect("generate the root CA key"));
        let serial = vec![0x01];
        let der = sign(
            subject,
            key.as_ref(),
            subject,
            key.as_ref(),
            &serial,
            CA_VALIDITY,
            ca_extensions(),
        );
        TestCa {
            subject: subject.to_string(),
            key,
            serial,
            der,
        }
    }

    /// An issuing CA certified by this one, with a fresh key of `algorithm`.
    pub fn issuing_ca(&self, subject: &str, algorithm: KeyAlgorithm, serial: &[u8]) -> TestCa {
        let key = Arc::new(SoftwareKey::generate(algorithm).expect("generate the CA key"));
        let der = sign(
            &self.subject,
            self.key.as_ref(),
            subject,
            key.as_ref(),
            serial,
            CA_VALIDITY,
            ca_extensions(),
        );
        TestCa {
            subject: subject.to_string(),
            key,
            serial: serial.to_vec(),
            der,
        }
    }

    /// A certificate for `subject_key` (only its public key is used) with `extensions`, then
    /// the key identifiers; valid for [`END_ENTITY_VALIDITY`]. Returns the DER.
    pub fn issue(
        &self,
        subject: &str,
        serial: &[u8],
        subject_key: &dyn SigningKey,
        extensions: Vec<Extension>,
    ) -> Vec<u8> {
        sign(
            &self.subject,
            self.key.as_ref(),
            subject,
            subject_key,
            serial,
            END_ENTITY_VALIDITY,
            extensions,
        )
    }

    /// A fresh key of `algorithm` and a certificate for it, as [`TestCa::issue`] makes one:
    /// pass [`ocsp_responder_extensions`] or [`tsa_extensions`] for a service.
    pub fn issue_service(
        &self,
        subject: &str,
        serial: &[u8],
        algorithm: KeyAlgorithm,
        extensions: Vec<Extension>,
    ) -> ServiceCert {
        let key = Arc::new(SoftwareKey::generate(algorithm).expect("generate the service key"));
        let der = self.issue(subject, serial, key.as_ref(), extensions);
        ServiceCert { der, key }
    }
}

impl TestCa {
    /// A CRL by this CA (number 1) for `this_update` to `next_update`, listing `revoked`
    /// (see [`revoked`]). Returns the DER.
    pub fn crl(
        &self,
        revoked: &[RevokedEntry],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Vec<u8> {
        crl_by(
            &self.subject,
            self.key.as_ref(),
            revoked,
            this_update,
            next_update,
        )
    }
}

impl TestCa {
    /// A CRL by this CA issued a minute before `now`, valid for a day, listing each serial
    /// revoked at its time. Returns the DER.
    pub fn crl_at(&self, revoked_at: &[(&[u8], OffsetDateTime)], now: OffsetDateTime) -> Vec<u8> {
        let entries: Vec<RevokedEntry> = revoked_at
            .iter()
            .map(|(serial, at)| revoked(serial, *at))
            .collect();
        self.crl(
            &entries,
            now - Duration::minutes(1),
            now + Duration::days(1),
        )
    }
}

/// A CRL (number 1) signed by `issuer_key` for the CA named `issuer`, with its authority key
/// identifier, for `this_update` to `next_update`, listing `revoked`. Returns the DER.
pub fn crl_by(
    issuer: &str,
    issuer_key: &dyn SigningKey,
    revoked: &[RevokedEntry],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Vec<u8> {
    let issuer_spki = issuer_key.public_key_der().expect("issuer public key");
    sign_crl(
        CrlFields {
            issuer: &parse_dn(issuer).expect("issuer DN"),
            issuer_key_id: &ext::key_identifier(&issuer_spki).expect("issuer key identifier"),
            number: 1,
            this_update,
            next_update,
            distribution_point: None,
        },
        revoked,
        issuer_key,
        &mut |_, _| {},
    )
    .expect("sign the CRL")
}

/// A CRL entry: `serial` revoked at `at`, with no reason or invalidity date.
pub fn revoked(serial: &[u8], at: OffsetDateTime) -> RevokedEntry {
    RevokedEntry {
        serial: serial.to_vec(),
        revoked_at: at,
        reason: None,
        invalidity_date: None,
    }
}

/// `der` as a PEM `X509 CRL` block.
pub fn crl_pem(der: &[u8]) -> String {
    imza_core::pem::encode("X509 CRL", der).expect("PEM-encode a CRL")
}

/// A CA's extensions: basicConstraints cA (no path length), keyUsage keyCertSign and cRLSign.
pub fn ca_extensions() -> Vec<Extension> {
    vec![
        ext::basic_constraints(true, None).expect("basicConstraints"),
        ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).expect("keyUsage"),
    ]
}

/// A plain leaf's extensions: keyUsage digitalSignature.
pub fn leaf_extensions() -> Vec<Extension> {
    vec![ext::key_usage(KeyUsages::DigitalSignature.into()).expect("keyUsage")]
}

/// A document signer's extensions, as a qualified signing certificate has them (ETSI EN 319
/// 412-2 §4.3.2): keyUsage digitalSignature and nonRepudiation (contentCommitment).
pub fn signing_extensions() -> Vec<Extension> {
    vec![ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation).expect("keyUsage")]
}

/// A delegated OCSP responder's extensions (RFC 6960 §4.2.2.2): keyUsage digitalSignature,
/// extendedKeyUsage id-kp-OCSPSigning (not critical), and id-pkix-ocsp-nocheck.
pub fn ocsp_responder_extensions() -> Vec<Extension> {
    let mut extensions = leaf_extensions();
    extensions
        .push(ext::extended_key_usage(&[oids::KP_OCSP_SIGNING], false).expect("extendedKeyUsage"));
    extensions.push(ext::ocsp_no_check().expect("ocsp-nocheck"));
    extensions
}

/// A TSA's extensions, as imza-ca's `tsa` profile makes them (RFC 3161 §2.3): basicConstraints
/// not a CA, keyUsage digitalSignature, and the sole extendedKeyUsage id-kp-timeStamping,
/// critical.
pub fn tsa_extensions() -> Vec<Extension> {
    vec![
        ext::basic_constraints(false, None).expect("basicConstraints"),
        ext::key_usage(KeyUsages::DigitalSignature.into()).expect("keyUsage"),
        ext::extended_key_usage(&[oids::KP_TIME_STAMPING], true).expect("extendedKeyUsage"),
    ]
}

/// `der` as a PEM `CERTIFICATE` block.
pub fn certificate_pem(der: &[u8]) -> String {
    imza_core::pem::encode(imza_core::pem::CERTIFICATE, der).expect("PEM-encode a certificate")
}

/// Writes `der` to `path` as a PEM `CERTIFICATE` block.
pub fn write_certificate(path: &Path, der: &[u8]) {
    std::fs::write(path, certificate_pem(der))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Signs a certificate for `subject_key` by `issuer_key`, valid from a day ago for `validity`,
/// with `extensions` followed by the subject and authority key identifiers.
fn sign(
    issuer: &str,
    issuer_key: &dyn SigningKey,
    subject: &str,
    subject_key: &dyn SigningKey,
    serial: &[u8],
    validity: Duration,
    mut extensions: Vec<Extension>,
) -> Vec<u8> {
    let spki = subject_key.public_key_der().expect("subject public key");
    let issuer_spki = issuer_key.public_key_der().expect("issuer public key");
    let subject_key_id = ext::key_identifier(&spki).expect("subject key identifier");
    let issuer_key_id = ext::key_identifier(&issuer_spki).expect("issuer key identifier");
    extensions.push(ext::subject_key_identifier(&subject_key_id).expect("SKI"));
    extensions.push(ext::authority_key_identifier(&issuer_key_id).expect("AKI"));
    let not_before = OffsetDateTime::now_utc() - Duration::days(1);
    sign_certificate(
        CertificateFields {
            serial: serial.to_vec(),
            issuer: parse_dn(issuer).expect("issuer DN"),
            subject: parse_dn(subject).expect("subject DN"),
            not_before,
            not_after: not_before + validity,
            subject_public_key: spki,
            extensions,
        },
        issuer_key,
    )
    .expect("sign the certificate")
    .der
}

/// The PKI the time-stamping tests share: a root ([`TSA_ROOT_SUBJECT`], P-256) and a TSA
/// certificate it issued ([`TSA_SUBJECT`], serial `10 01`, [`tsa_extensions`]), written to a
/// private temporary directory as `CA.pem`, `tsa.pem` and `tsa.key` (PKCS#8) for
/// `openssl ts`. The directory goes when this is dropped; tests put their own files in it.
pub struct TsaPki {
    pub dir: TempDir,
    pub root: TestCa,
    pub tsa: ServiceCert,
}

impl TsaPki {
    /// A root and a TSA whose key is of `tsa_algorithm`.
    pub fn new(tsa_algorithm: KeyAlgorithm) -> TsaPki {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let root = TestCa::root(TSA_ROOT_SUBJECT, KeyAlgorithm::EcP256);
        let tsa = root.issue_service(TSA_SUBJECT, &[0x10, 0x01], tsa_algorithm, tsa_extensions());
        let pki = TsaPki { dir, root, tsa };
        write_certificate(&pki.ca_pem(), &pki.root.der);
        write_certificate(&pki.tsa_pem(), &pki.tsa.der);
        pki.tsa
            .key
            .save_pem(&pki.tsa_key_pem())
            .expect("write the TSA key");
        pki
    }

    /// `name` in the PKI's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The root certificate, PEM: the trust anchor (`-CAfile`).
    pub fn ca_pem(&self) -> PathBuf {
        self.path("CA.pem")
    }

    /// The TSA certificate, PEM.
    pub fn tsa_pem(&self) -> PathBuf {
        self.path("tsa.pem")
    }

    /// The TSA's private key, PKCS#8 PEM (for `openssl ts -reply`).
    pub fn tsa_key_pem(&self) -> PathBuf {
        self.path("tsa.key")
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// `openssl verify -CAfile ROOT [-untrusted CHAIN] ARGS LEAF`: true when it says OK.
    fn openssl_verifies(root: &Path, untrusted: Option<&Path>, args: &[&str], leaf: &Path) -> bool {
        let mut command = Command::new("openssl");
        command.arg("verify").arg("-CAfile").arg(root);
        if let Some(chain) = untrusted {
            command.arg("-untrusted").arg(chain);
        }
        let out = command
            .args(args)
            .arg(leaf)
            .output()
            .expect("the openssl command must be installed for these tests");
        let said = String::from_utf8_lossy(&out.stdout);
        out.status.success() && said.trim_end().ends_with(": OK")
    }

    #[test]
    fn tsa_pki_files_form_a_chain_openssl_accepts_for_time_stamping() {
        let pki = TsaPki::new(KeyAlgorithm::EcP256);
        assert!(openssl_verifies(
            &pki.ca_pem(),
            None,
            &["-purpose", "timestampsign"],
            &pki.tsa_pem()
        ));
        // The key file is the key the certificate certifies.
        let key = SoftwareKey::load_pem(&pki.tsa_key_pem()).unwrap();
        assert_eq!(
            key.public_key_der().unwrap(),
            pki.tsa.key.public_key_der().unwrap()
        );
        // Another PKI's root does not anchor it.
        let other = TsaPki::new(KeyAlgorithm::EcP256);
        assert!(!openssl_verifies(
            &other.ca_pem(),
            None,
            &[],
            &pki.tsa_pem()
        ));
    }

    #[test]
    fn a_leaf_of_an_issuing_ca_verifies_through_it_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root("CN=imza Test Root,O=imza,C=AZ", KeyAlgorithm::EcP384);
        let issuing = root.issuing_ca(
            "CN=imza Test Issuing CA,O=imza,C=AZ",
            KeyAlgorithm::Rsa2048,
            &[0x02],
        );
        let responder = issuing.issue_service(
            "CN=imza Test OCSP Responder,O=imza,C=AZ",
            &[0x03],
            KeyAlgorithm::EcP256,
            ocsp_responder_extensions(),
        );
        let files: Vec<PathBuf> = [
            ("root", &root.der),
            ("issuing", &issuing.der),
            ("responder", &responder.der),
        ]
        .into_iter()
        .map(|(name, der)| {
            let path = dir.path().join(format!("{name}.pem"));
            write_certificate(&path, der);
            path
        })
        .collect();
        let (root_pem, issuing_pem, responder_pem) = (&files[0], &files[1], &files[2]);
        assert!(openssl_verifies(
            root_pem,
            Some(issuing_pem),
            &["-purpose", "ocsphelper"],
            responder_pem
        ));
        assert!(openssl_verifies(root_pem, None, &[], issuing_pem));
        // Without the issuing CA there is no path.
        assert!(!openssl_verifies(root_pem, None, &[], responder_pem));
    }
}
