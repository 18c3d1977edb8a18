//! The signing tests' fixtures: a signer PKI from imza-testdata (root → issuing CA → signer),
//! imza's TSA on a loopback port over [`TsaPki`], the `openssl` runner, and a reader for the
//! parts of a signature the tests look at (through the cms crate, not imza's own parser).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfo};
use der::{Decode, Encode};
use imza_core::clock::SystemClock;
use imza_core::key::software::SoftwareKey;
use imza_core::{oids, KeyAlgorithm, SigningKey};
use imza_signer::Credentials;
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::pki::{leaf_extensions, write_certificate, TestCa, TsaPki};
use imza_tsa::http::{stage, TsaService};
use imza_tsa::{TimeStampAuthority, TsaConfig};
use tempfile::TempDir;

pub const SIGNER_SUBJECT: &str = "CN=Aysel Mammadova,SERIALNUMBER=PNOAZ-1234567,C=AZ";

/// Root → issuing CA → a signer certificate for a key of the chosen type, with the files
/// `root.pem`, `chain.pem` (issuing CA), `signer.pem` and `signer.key` in a temp directory.
pub struct SignerPki {
    pub dir: TempDir,
    pub root: TestCa,
    pub issuing: TestCa,
    pub key: Arc<SoftwareKey>,
    pub cert: Vec<u8>,
}

impl SignerPki {
    pub fn new(algorithm: KeyAlgorithm) -> SignerPki {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root("CN=imza Sign Test Root,O=imza,C=AZ", KeyAlgorithm::EcP384);
        let issuing = root.issuing_ca(
            "CN=imza Sign Test Citizens CA,O=imza,C=AZ",
            KeyAlgorithm::EcP256,
            &[0x02],
        );
        let key = Arc::new(SoftwareKey::generate(algorithm).unwrap());
        let cert = issuing.issue(
            SIGNER_SUBJECT,
            &[0x31, 0x07],
            key.as_ref(),
            leaf_extensions(),
        );
        let pki = SignerPki {
            dir,
            root,
            issuing,
            key,
            cert,
        };
        write_certificate(&pki.path("root.pem"), &pki.root.der);
        write_certificate(&pki.path("chain.pem"), &pki.issuing.der);
        write_certificate(&pki.path("signer.pem"), &pki.cert);
        pki.key.save_pem(&pki.path("signer.key")).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as a string, for command lines.
    pub fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// Writes `bytes` to `name` and returns the path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        self.p(name)
    }

    pub fn credentials(&self) -> Credentials {
        let key = SoftwareKey::load_pem(&self.path("signer.key")).unwrap();
        Credentials::new(
            Box::new(key),
            self.cert.clone(),
            vec![self.issuing.der.clone()],
        )
        .unwrap()
    }
}

/// imza's TSA (`POST /tsa`) over a [`TsaPki`], on a loopback port.
pub struct Tsa {
    pub pki: TsaPki,
    pub server: LoopbackServer,
}

impl Tsa {
    pub fn start() -> Tsa {
        let pki = TsaPki::new(KeyAlgorithm::EcP256);
        let authority = TimeStampAuthority::new(TsaConfig::new(
            pki.tsa.der.clone(),
            Vec::new(),
            pki.tsa.key.clone(),
            oids::ETSI_BEST_PRACTICES_TS_POLICY,
        ))
        .unwrap();
        let service = Arc::new(TsaService::new(authority, Arc::new(SystemClock)));
        let server = LoopbackServer::launch(stage(service), 2);
        Tsa { pki, server }
    }

    pub fn url(&self) -> String {
        self.server.url("/tsa")
    }
}

pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command must be installed for these tests")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `openssl cms -verify` of the DER signature file, with the detached content when given;
/// Ok(the content openssl wrote out) or Err(what it said).
pub fn openssl_cms_verify(
    signature: &Path,
    content: Option<&Path>,
    root: &Path,
    out: &Path,
) -> Result<Vec<u8>, String> {
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        signature.to_str().unwrap(),
        "-CAfile",
        root.to_str().unwrap(),
        "-purpose",
        "any",
        "-out",
        out.to_str().unwrap(),
    ];
    if let Some(content) = content {
        args.extend(["-content", content.to_str().unwrap()]);
    }
    let result = openssl(&args);
    if result.status.success() {
        Ok(std::fs::read(out).unwrap())
    } else {
        Err(text(&result))
    }
}

/// The SignedData of a DER ContentInfo, read with the cms crate.
pub fn signed_data(der: &[u8]) -> SignedData {
    let content_info = ContentInfo::from_der(der).unwrap();
    assert_eq!(content_info.content_type, oids::CT_SIGNED_DATA);
    content_info.content.decode_as::<SignedData>().unwrap()
}

pub fn only_signer(der: &[u8]) -> SignerInfo {
    let signed_data = signed_data(der);
    let signers = signed_data.signer_infos.0.into_vec();
    assert_eq!(signers.len(), 1);
    signers.into_iter().next().unwrap()
}

/// DER of every value of the unsigned attribute `oid` of the only signer.
pub fn unsigned_values(der: &[u8], oid: der::asn1::ObjectIdentifier) -> Vec<Vec<u8>> {
    only_signer(der)
        .unsigned_attrs
        .map(|attrs| attrs.into_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.oid == oid)
        .flat_map(|a| a.values.into_vec())
        .map(|v| v.to_der().unwrap())
        .collect()
}

/// The signed part of the only signer: DER signed attributes and the signature value.
pub fn signed_part(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let signer = only_signer(der);
    (
        signer.signed_attrs.unwrap().to_der().unwrap(),
        signer.signature.as_bytes().to_vec(),
    )
}

/// A key of `algorithm` with no certificate, to show mismatches.
pub fn stray_key(algorithm: KeyAlgorithm) -> Box<dyn SigningKey> {
    Box::new(SoftwareKey::generate(algorithm).unwrap())
}
