//! A tiny PKI built with imza-core alone: a root CA and a TSA certificate with the `tsa`
//! profile's extensions (critical sole timeStamping EKU, digitalSignature), written as PEM to
//! a temporary directory for `openssl ts`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use imza_core::cert::{sign_certificate, CertificateFields};
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{oids, KeyAlgorithm, SigningKey};
use imza_tsa::{TimeStampAuthority, TsaConfig};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::KeyUsages;

pub const POLICY: const_oid::ObjectIdentifier = oids::ETSI_BEST_PRACTICES_TS_POLICY;

pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca_der: Vec<u8>,
    pub tsa_der: Vec<u8>,
    pub tsa_key: Arc<SoftwareKey>,
}

impl TestPki {
    /// A root CA and a TSA certificate valid from a day ago for a year.
    pub fn new(tsa_algorithm: KeyAlgorithm) -> TestPki {
        let now = OffsetDateTime::now_utc();
        let dir = tempfile::tempdir().unwrap();
        let ca_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let ca_spki = ca_key.public_key_der().unwrap();
        let ca_key_id = ext::key_identifier(&ca_spki).unwrap();
        let ca_name = parse_dn("CN=imza Test Root CA,O=imza,C=AZ").unwrap();
        let ca = sign_certificate(
            CertificateFields {
                serial: vec![0x01],
                issuer: ca_name.clone(),
                subject: ca_name.clone(),
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(3650),
                subject_public_key: ca_spki,
                extensions: vec![
                    ext::basic_constraints(true, None).unwrap(),
                    ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
                    ext::subject_key_identifier(&ca_key_id).unwrap(),
                ],
            },
            &ca_key,
        )
        .unwrap();

        let tsa_key = Arc::new(SoftwareKey::generate(tsa_algorithm).unwrap());
        let tsa_spki = tsa_key.public_key_der().unwrap();
        let tsa = sign_certificate(
            CertificateFields {
                serial: vec![0x10, 0x01],
                issuer: ca_name,
                subject: parse_dn("CN=imza Test TSA,O=imza,C=AZ").unwrap(),
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(365),
                subject_public_key: tsa_spki.clone(),
                extensions: vec![
                    ext::basic_constraints(false, None).unwrap(),
                    ext::key_usage(KeyUsages::DigitalSignature.into()).unwrap(),
                    ext::extended_key_usage(&[oids::KP_TIME_STAMPING], true).unwrap(),
                    ext::subject_key_identifier(&ext::key_identifier(&tsa_spki).unwrap()).unwrap(),
                    ext::authority_key_identifier(&ca_key_id).unwrap(),
                ],
            },
            &ca_key,
        )
        .unwrap();
        let pki = TestPki {
            dir,
            ca_der: ca.der,
            tsa_der: tsa.der,
            tsa_key,
        };
        std::fs::write(pki.ca_pem(), pem("CERTIFICATE", &pki.ca_der)).unwrap();
        std::fs::write(pki.tsa_pem(), pem("CERTIFICATE", &pki.tsa_der)).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.path("CA.pem")
    }

    pub fn tsa_pem(&self) -> PathBuf {
        self.path("tsa.pem")
    }

    pub fn config(&self) -> TsaConfig {
        TsaConfig::new(
            self.tsa_der.clone(),
            Vec::new(),
            self.tsa_key.clone(),
            POLICY,
        )
    }

    pub fn authority(&self) -> TimeStampAuthority {
        TimeStampAuthority::new(self.config()).unwrap()
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    imza_core::pem::encode(label, der).unwrap()
}

/// Runs `openssl` with `args`, panicking with its output if it cannot be started.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
