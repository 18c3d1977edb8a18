//! The signer tests' fixtures, for signing and for validating:
//! - [`SignerPki`]: root → issuing CA → signer, from imza-testdata, for signing with imza;
//! - [`Pki`]: one root that certifies a citizen's signing certificate and a TSA, with CRLs
//!   revoking at chosen times, signatures made by `openssl cms -sign` and time-stamp tokens
//!   from imza's real TSA at a chosen genTime, put into a signature as a CAdES signature
//!   time-stamp;
//! - readers for the parts of a signature the tests look at (through the cms crate, not
//!   imza's own parser), and verdict assertions.
//!
//! imza's TSA on loopback ([`LoopbackTsa`]) and the `openssl` runner come from imza-testdata.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

pub mod long_term;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfo};
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode};
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::{oids, KeyAlgorithm, SigningKey};
use imza_signer::{
    Credentials, Indication, SignatureReport, SignerError, SubIndication, TimestampError,
    Timestamper, ValidationReport, VerifyOptions,
};
use imza_testdata::pki::{leaf_extensions, tsa_extensions, write_certificate, ServiceCert, TestCa};
// Not every test binary uses these.
use imza_core::alg::DigestAlgorithm;
#[allow(unused_imports)]
pub use imza_testdata::tools::{openssl, text};
#[allow(unused_imports)]
pub use imza_testdata::tsa::LoopbackTsa;
use imza_tsa::{build_request, parse_response, ParsedToken, TimeStampAuthority};
use imza_validation::{Certificate, Crl};
use tempfile::TempDir;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::KeyUsages;

// --- signing with imza: SignerPki -----------------------------------------------------------

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
    /// The signer's subject.
    pub const SUBJECT: &'static str = "CN=Aysel Mammadova,SERIALNUMBER=PNOAZ-1234567,C=AZ";

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
            SignerPki::SUBJECT,
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

    /// `openssl cms -verify` of `signature` against the root, with `content` as the detached
    /// content when given (both written to files here); Ok(the content openssl wrote out) or
    /// Err(what it said).
    pub fn openssl_verify(
        &self,
        signature: &[u8],
        content: Option<&[u8]>,
    ) -> Result<Vec<u8>, String> {
        let sig = self.file("verify.p7s", signature);
        let content = content.map(|bytes| self.file("verify-content.bin", bytes));
        openssl_cms_verify(
            Path::new(&sig),
            content.as_deref().map(Path::new),
            &self.path("root.pem"),
            &self.path("out.bin"),
        )
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

// --- validating: Pki ----------------------------------------------------------------------

pub const ROOT_SUBJECT: &str = "CN=imza Verify Test Root,O=imza,C=AZ";
pub const SIGNER_SUBJECT: &str =
    "CN=Əliyev Günay Şəmsi oğlu,serialNumber=PNOAZ-1A2B3C4,O=imza,C=AZ";
pub const PERSONAL_CODE: &str = "PNOAZ-1A2B3C4";
pub const TSA_SUBJECT: &str = "CN=imza Verify Test TSA,O=imza,C=AZ";
pub const SIGNER_SERIAL: &[u8] = &[0x20, 0x01];
pub const TSA_SERIAL: &[u8] = &[0x30, 0x01];
/// Where the signer's and the TSA's certificates say the root's CRL is (never fetched unless
/// a test's fetcher answers for it).
pub const CRL_URL: &str = "http://crl.imza.test/root.crl";

/// A root, a signer (key and certificate) and a TSA, with PEM files for openssl.
pub struct Pki {
    pub dir: TempDir,
    pub root: TestCa,
    pub signer_key: Arc<SoftwareKey>,
    pub signer_der: Vec<u8>,
    pub tsa: ServiceCert,
}

impl Pki {
    pub fn new(signer_algorithm: KeyAlgorithm) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root(ROOT_SUBJECT, KeyAlgorithm::EcP256);
        let signer_key = Arc::new(SoftwareKey::generate(signer_algorithm).unwrap());
        let signer_der = root.issue(
            SIGNER_SUBJECT,
            SIGNER_SERIAL,
            signer_key.as_ref(),
            vec![
                ext::key_usage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation).unwrap(),
                ext::crl_distribution_points(CRL_URL).unwrap(),
            ],
        );
        let mut tsa_exts = tsa_extensions();
        tsa_exts.push(ext::crl_distribution_points(CRL_URL).unwrap());
        let tsa = root.issue_service(TSA_SUBJECT, TSA_SERIAL, KeyAlgorithm::EcP256, tsa_exts);
        let pki = Pki {
            dir,
            root,
            signer_key,
            signer_der,
            tsa,
        };
        write_certificate(&pki.path("root.pem"), &pki.root.der);
        write_certificate(&pki.path("signer.pem"), &pki.signer_der);
        pki.signer_key.save_pem(&pki.path("signer.key")).unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` in the directory; returns the path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A CRL of the root, issued a minute before `now`, listing `revoked` (serial, when).
    pub fn crl(&self, revoked_at: &[(&[u8], OffsetDateTime)], now: OffsetDateTime) -> Vec<u8> {
        self.root.crl_at(revoked_at, now)
    }

    /// Options trusting the root, with its CRL that revokes nobody, at `now`.
    pub fn clean_options(&self, now: OffsetDateTime) -> VerifyOptions {
        self.options(&[self.crl(&[], now)], now)
    }

    /// Options trusting the root, with `crls`, at `now`.
    pub fn options(&self, crls: &[Vec<u8>], now: OffsetDateTime) -> VerifyOptions {
        let mut options = VerifyOptions::new(
            vec![Certificate::from_der(self.root.der.clone()).unwrap()],
            now,
        );
        options.extra_crls = crls
            .iter()
            .map(|der| Crl::from_der(der.clone()).unwrap())
            .collect();
        options
    }

    /// `openssl cms -sign -binary -md sha256` over `content` with the signer's key;
    /// `attached` adds `-nodetach`; `extra` more arguments (e.g. `-cades`).
    pub fn openssl_sign(&self, content: &[u8], attached: bool, extra: &[&str]) -> Vec<u8> {
        let input = self.file("content.bin", content);
        let out = self.path("signature.p7s");
        let _ = std::fs::remove_file(&out);
        let mut command = Command::new("openssl");
        command
            .args([
                "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
            ])
            .arg("-signer")
            .arg(self.path("signer.pem"))
            .arg("-inkey")
            .arg(self.path("signer.key"))
            .arg("-in")
            .arg(&input)
            .arg("-out")
            .arg(&out)
            .args(extra);
        if attached {
            command.arg("-nodetach");
        }
        let output = command
            .output()
            .expect("the openssl command must be installed for these tests");
        assert!(
            output.status.success(),
            "openssl cms -sign: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read(&out).unwrap()
    }

    /// A TSA with the PKI's TSA certificate and key.
    pub fn authority(&self) -> TimeStampAuthority {
        imza_testdata::tsa::authority(&self.tsa.der, self.tsa.key.clone())
    }

    /// A token over `data`'s SHA-256 from the TSA at `gen_time`.
    pub fn token(&self, data: &[u8], gen_time: OffsetDateTime) -> Vec<u8> {
        let digest = DigestAlgorithm::Sha256.digest(data);
        let request = build_request(&digest, DigestAlgorithm::Sha256, None, true, None).unwrap();
        let answer = self.authority().respond(&request, gen_time);
        parse_response(&answer.der)
            .unwrap()
            .into_token()
            .unwrap()
            .der()
            .to_vec()
    }
}

/// imza's TSA in process, stamping at the wall clock's now.
pub struct LocalTsa(pub TimeStampAuthority);

impl Timestamper for LocalTsa {
    fn timestamp(
        &self,
        digest: &[u8],
        algorithm: DigestAlgorithm,
    ) -> Result<ParsedToken, SignerError> {
        stamp(&self.0, digest, algorithm, OffsetDateTime::now_utc())
    }

    fn describe(&self) -> String {
        "the in-process test TSA".into()
    }
}

/// imza's TSA in process, stamping at a given time instead of now (signatures of a benchmark
/// stream, each with its own time).
#[allow(dead_code)] // used by the benchmark, which includes this module
pub struct DatedTsa<'a> {
    pub authority: &'a TimeStampAuthority,
    pub at: OffsetDateTime,
}

impl Timestamper for DatedTsa<'_> {
    fn timestamp(
        &self,
        digest: &[u8],
        algorithm: DigestAlgorithm,
    ) -> Result<ParsedToken, SignerError> {
        stamp(self.authority, digest, algorithm, self.at)
    }

    fn describe(&self) -> String {
        "the in-process test TSA at a fixed time".into()
    }
}

/// The token `authority` gives at `at` for `digest` (certReq set, no nonce).
fn stamp(
    authority: &TimeStampAuthority,
    digest: &[u8],
    algorithm: DigestAlgorithm,
    at: OffsetDateTime,
) -> Result<ParsedToken, SignerError> {
    let refused = |e| SignerError::Timestamp {
        tsa: "the in-process test TSA".into(),
        source: TimestampError::Tsa(e),
    };
    let request = build_request(digest, algorithm, None, true, None).map_err(refused)?;
    let answer = authority.respond(&request, at);
    parse_response(&answer.der)
        .and_then(|r| r.into_token())
        .map_err(refused)
}

/// The SignerInfo's signature value (what a signature time-stamp covers).
pub fn signature_value(signature_der: &[u8]) -> Vec<u8> {
    let sd = signed_data(signature_der);
    sd.signer_infos.0.as_slice()[0]
        .signature
        .as_bytes()
        .to_vec()
}

/// `signature_der` with `token` added to its first SignerInfo as an unsigned
/// id-aa-signatureTimeStampToken attribute (RFC 3161 Appendix A): a B-T signature.
pub fn with_timestamp(signature_der: &[u8], token: &[u8]) -> Vec<u8> {
    with_unsigned_attribute(signature_der, oids::ATTR_TIME_STAMP_TOKEN, token)
}

pub fn with_unsigned_attribute(
    signature_der: &[u8],
    oid: const_oid::ObjectIdentifier,
    value_der: &[u8],
) -> Vec<u8> {
    let mut sd = signed_data(signature_der);
    let mut infos: Vec<_> = sd.signer_infos.0.into_vec();
    let attribute = Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::from_der(value_der).unwrap()]).unwrap(),
    };
    let mut attrs = infos[0]
        .unsigned_attrs
        .take()
        .map(|a| a.into_vec())
        .unwrap_or_default();
    attrs.push(attribute);
    infos[0].unsigned_attrs = Some(SetOfVec::try_from(attrs).unwrap());
    sd.signer_infos = cms::signed_data::SignerInfos(SetOfVec::try_from(infos).unwrap());
    ContentInfo {
        content_type: oids::CT_SIGNED_DATA,
        content: Any::encode_from(&sd).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// The one signature of a report.
pub fn only(report: &ValidationReport) -> &SignatureReport {
    match report.signatures.as_slice() {
        [s] => s,
        other => panic!("expected one signature, found {}: {report:#?}", other.len()),
    }
}

/// Asserts the verdict, printing the report when it differs.
pub fn assert_verdict(
    report: &ValidationReport,
    indication: Indication,
    sub: Option<SubIndication>,
) {
    let s = only(report);
    assert_eq!(
        (s.indication, s.sub_indication),
        (indication, sub),
        "{report:#?}"
    );
    assert_eq!(report.valid, indication == Indication::TotalPassed);
}

/// Asserts the report's one signature is TOTAL_FAILED with `sub`.
pub fn assert_failed(report: &ValidationReport, sub: SubIndication) {
    assert_verdict(report, Indication::TotalFailed, Some(sub));
}

/// Asserts the report's one signature is INDETERMINATE with `sub`.
pub fn assert_indeterminate(report: &ValidationReport, sub: SubIndication) {
    assert_verdict(report, Indication::Indeterminate, Some(sub));
}

/// The first position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern present")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
