//! A tiny PKI built with imza-core alone (a CA, its delegated OCSP responder, leaves, and a
//! second CA the responder does not serve), a status source over a map, and runners for the
//! independent tools (`openssl ocsp`, pkilint's `lint_ocsp_response`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use der::asn1::OctetString;
use der::{Decode, Encode};
use imza_core::clock::Clock;
use imza_ocsp::cert_id::cert_id;
use imza_ocsp::CertIdHash;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::{OcspRequest, Request, TbsRequest};

use imza_core::cert::{sign_certificate, CertificateFields, SignedCertificate};
use imza_core::ext;
use imza_core::key::software::SoftwareKey;
use imza_core::name::parse_dn;
use imza_core::{oids, KeyAlgorithm, SigningKey};
use imza_ocsp::{
    CertStatusInfo, CertificateStatusSource, IssuerId, OcspError, Responder, ResponderConfig,
    ServedCa,
};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{CrlReason, KeyUsages};

/// One issued certificate, written to `<dir>/<name>.pem`.
pub struct Issued {
    pub serial: Vec<u8>,
    pub der: Vec<u8>,
    pub pem: PathBuf,
}

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_key: Arc<SoftwareKey>,
    pub ca: Issued,
    pub responder_key: Arc<SoftwareKey>,
    pub responder: Issued,
    /// Recorded as good.
    pub good: Issued,
    /// Recorded as revoked for keyCompromise.
    pub revoked: Issued,
    /// Signed by the CA but never recorded: the store does not know it.
    pub never_issued: Issued,
    /// A second good certificate.
    pub good2: Issued,
    /// A CA the responder does not serve, and a leaf of it.
    pub other_ca: Issued,
    pub other_leaf: Issued,
    pub revoked_at: OffsetDateTime,
    pub source: MapSource,
}

pub const CA: &str = "citizens";

fn write_pem(dir: &Path, name: &str, der: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, imza_core::pem::encode("CERTIFICATE", der).unwrap()).unwrap();
    path
}

fn serial(n: u8) -> Vec<u8> {
    let mut s = vec![n; 16];
    s[0] = 0x40 | (n & 0x3f);
    s
}

struct Signer<'a> {
    name: &'a str,
    key: &'a dyn SigningKey,
}

fn issue(
    dir: &Path,
    file: &str,
    issuer: Option<Signer<'_>>,
    subject: &str,
    subject_key: &dyn SigningKey,
    serial: Vec<u8>,
    extensions: Vec<x509_cert::ext::Extension>,
) -> Issued {
    let now = OffsetDateTime::now_utc();
    let spki = subject_key.public_key_der().unwrap();
    let subject_key_id = ext::key_identifier(&spki).unwrap();
    let (issuer_name, issuer_key) = match &issuer {
        Some(s) => (s.name, s.key),
        None => (subject, subject_key),
    };
    let issuer_key_id = ext::key_identifier(&issuer_key.public_key_der().unwrap()).unwrap();
    let mut exts = extensions;
    exts.push(ext::subject_key_identifier(&subject_key_id).unwrap());
    exts.push(ext::authority_key_identifier(&issuer_key_id).unwrap());
    let SignedCertificate { der, .. } = sign_certificate(
        CertificateFields {
            serial: serial.clone(),
            issuer: parse_dn(issuer_name).unwrap(),
            subject: parse_dn(subject).unwrap(),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            subject_public_key: spki,
            extensions: exts,
        },
        issuer_key,
    )
    .unwrap();
    let pem = write_pem(dir, file, &der);
    Issued { serial, der, pem }
}

const CA_DN: &str = "CN=imza Test Citizens CA,O=imza,C=AZ";
const OTHER_CA_DN: &str = "CN=imza Test Other CA,O=imza,C=AZ";

fn ca_extensions() -> Vec<x509_cert::ext::Extension> {
    vec![
        ext::basic_constraints(true, None).unwrap(),
        ext::key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign).unwrap(),
    ]
}

fn leaf_extensions() -> Vec<x509_cert::ext::Extension> {
    vec![ext::key_usage(KeyUsages::DigitalSignature.into()).unwrap()]
}

impl Pki {
    pub fn new() -> Pki {
        Self::with_keys(KeyAlgorithm::EcP256, KeyAlgorithm::EcP256)
    }

    /// A PKI whose CA and responder keys are of the given types.
    pub fn with_keys(ca_alg: KeyAlgorithm, responder_alg: KeyAlgorithm) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca_key = Arc::new(SoftwareKey::generate(ca_alg).unwrap());
        let ca = issue(
            d,
            "ca",
            None,
            CA_DN,
            ca_key.as_ref(),
            serial(1),
            ca_extensions(),
        );
        let by_ca = || {
            Some(Signer {
                name: CA_DN,
                key: ca_key.as_ref(),
            })
        };
        let responder_key = Arc::new(SoftwareKey::generate(responder_alg).unwrap());
        let mut responder_exts = leaf_extensions();
        responder_exts.push(ext::extended_key_usage(&[oids::KP_OCSP_SIGNING], false).unwrap());
        responder_exts.push(ext::ocsp_no_check().unwrap());
        let responder = issue(
            d,
            "responder",
            by_ca(),
            "CN=imza Test Citizens CA OCSP Responder,O=imza,C=AZ",
            responder_key.as_ref(),
            serial(2),
            responder_exts,
        );
        let leaf_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let leaf = |file: &str, cn: &str, n: u8| {
            issue(
                d,
                file,
                by_ca(),
                &format!("CN={cn},O=imza,C=AZ"),
                &leaf_key,
                serial(n),
                leaf_extensions(),
            )
        };
        let good = leaf("good", "Good Citizen", 10);
        let revoked = leaf("revoked", "Revoked Citizen", 11);
        let never_issued = leaf("never_issued", "Ghost Citizen", 12);
        let good2 = leaf("good2", "Second Citizen", 13);
        let other_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let other_ca = issue(
            d,
            "other_ca",
            None,
            OTHER_CA_DN,
            &other_key,
            serial(3),
            ca_extensions(),
        );
        let other_leaf = issue(
            d,
            "other_leaf",
            Some(Signer {
                name: OTHER_CA_DN,
                key: &other_key,
            }),
            "CN=Other Citizen,O=imza,C=AZ",
            &leaf_key,
            serial(20),
            leaf_extensions(),
        );
        let revoked_at =
            imza_core::clock::whole_seconds(OffsetDateTime::now_utc()) - Duration::hours(2);
        let mut source = MapSource::default();
        let issuer = IssuerId::new(CA);
        source.set(&issuer, &responder.serial, CertStatusInfo::Good);
        source.set(&issuer, &good.serial, CertStatusInfo::Good);
        source.set(&issuer, &good2.serial, CertStatusInfo::Good);
        source.set(
            &issuer,
            &revoked.serial,
            CertStatusInfo::Revoked {
                at: revoked_at,
                reason: Some(CrlReason::KeyCompromise),
            },
        );
        Pki {
            dir,
            ca_key,
            ca,
            responder_key,
            responder,
            good,
            revoked,
            never_issued,
            good2,
            other_ca,
            other_leaf,
            revoked_at,
            source,
        }
    }

    pub fn served(&self) -> ServedCa {
        ServedCa {
            issuer: IssuerId::new(CA),
            ca_certificate: self.ca.der.clone(),
            responder_certificate: self.responder.der.clone(),
            responder_key: self.responder_key.clone(),
        }
    }

    pub fn responder(&self) -> Responder {
        Responder::new(vec![self.served()], ResponderConfig::default()).unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Certificate status from a map; anything not in it is unknown.
#[derive(Default)]
pub struct MapSource {
    statuses: HashMap<(IssuerId, Vec<u8>), CertStatusInfo>,
    pub fail: bool,
    /// What [`CertificateStatusSource::revision`] says; these tests never change the map while
    /// a responder serves it, so it stays as set.
    pub revision: u64,
}

impl MapSource {
    pub fn set(&mut self, issuer: &IssuerId, serial: &[u8], status: CertStatusInfo) {
        self.statuses
            .insert((issuer.clone(), serial.to_vec()), status);
    }
}

impl CertificateStatusSource for MapSource {
    fn status(&self, issuer: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError> {
        if self.fail {
            return Err(OcspError::StatusUnavailable {
                issuer: issuer.to_string(),
                serial: hex::encode_upper(serial),
                reason: "database is locked".into(),
            });
        }
        Ok(self
            .statuses
            .get(&(issuer.clone(), serial.to_vec()))
            .copied()
            .unwrap_or(CertStatusInfo::Unknown))
    }

    fn revision(&self) -> Result<u64, OcspError> {
        Ok(self.revision)
    }
}

/// A status source that changes while it is served, as the CA store does: statuses behind a
/// lock and a revision that [`LiveSource::revoke`] moves, like an audit sequence number.
pub struct LiveSource {
    statuses: Mutex<HashMap<(IssuerId, Vec<u8>), CertStatusInfo>>,
    revision: AtomicU64,
    /// Number of `status` calls: a cache hit makes none.
    pub status_calls: AtomicUsize,
    /// When set, `revision` fails as a store that is down does.
    pub revision_fails: AtomicBool,
    /// Run once, inside the next `status` call, after the status was read.
    after_status: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl LiveSource {
    /// The statuses of [`Pki::new`]'s source: responder, good and good2 good, revoked revoked.
    pub fn of(pki: &Pki) -> LiveSource {
        let issuer = IssuerId::new(CA);
        let mut statuses = HashMap::new();
        for serial in [&pki.responder.serial, &pki.good.serial, &pki.good2.serial] {
            statuses.insert((issuer.clone(), serial.clone()), CertStatusInfo::Good);
        }
        statuses.insert(
            (issuer, pki.revoked.serial.clone()),
            CertStatusInfo::Revoked {
                at: pki.revoked_at,
                reason: Some(CrlReason::KeyCompromise),
            },
        );
        LiveSource {
            statuses: Mutex::new(statuses),
            revision: AtomicU64::new(1),
            status_calls: AtomicUsize::new(0),
            revision_fails: AtomicBool::new(false),
            after_status: Mutex::new(None),
        }
    }

    /// Records `serial` of the test CA as revoked for keyCompromise at `at` and moves the
    /// revision, as a revocation in the store does.
    pub fn revoke(&self, serial: &[u8], at: OffsetDateTime) {
        self.statuses.lock().unwrap().insert(
            (IssuerId::new(CA), serial.to_vec()),
            CertStatusInfo::Revoked {
                at,
                reason: Some(CrlReason::KeyCompromise),
            },
        );
        self.revision.fetch_add(1, Ordering::SeqCst);
    }

    pub fn current_revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    /// Runs `hook` inside the next `status` call, after the status it returns was read.
    pub fn after_next_status(&self, hook: impl FnOnce() + Send + 'static) {
        *self.after_status.lock().unwrap() = Some(Box::new(hook));
    }

    pub fn calls(&self) -> usize {
        self.status_calls.load(Ordering::SeqCst)
    }
}

impl CertificateStatusSource for LiveSource {
    fn status(&self, issuer: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError> {
        self.status_calls.fetch_add(1, Ordering::SeqCst);
        let status = self
            .statuses
            .lock()
            .unwrap()
            .get(&(issuer.clone(), serial.to_vec()))
            .copied()
            .unwrap_or(CertStatusInfo::Unknown);
        let hook = self.after_status.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(status)
    }

    fn revision(&self) -> Result<u64, OcspError> {
        if self.revision_fails.load(Ordering::SeqCst) {
            return Err(OcspError::StatusUnavailable {
                issuer: String::new(),
                serial: String::new(),
                reason: "database is locked".into(),
            });
        }
        Ok(self.revision.load(Ordering::SeqCst))
    }
}

/// A clock tests move by hand.
pub struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    pub fn at(t: OffsetDateTime) -> Arc<TestClock> {
        Arc::new(TestClock(Mutex::new(t)))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A DER OCSPRequest for `serials` of the CA certificate `ca_der` (SHA-1 CertIDs, as most
/// clients send), with a nonce extension carrying `nonce` when given.
pub fn ocsp_request(ca_der: &[u8], serials: &[&[u8]], nonce: Option<&[u8]>) -> Vec<u8> {
    let ca = Certificate::from_der(ca_der).unwrap();
    let extensions = nonce.map(|n| {
        vec![Extension {
            extn_id: oids::OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap()).unwrap(),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            request_list: serials
                .iter()
                .map(|s| Request {
                    req_cert: cert_id(&ca, &SerialNumber::new(s).unwrap(), CertIdHash::Sha1)
                        .unwrap(),
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: extensions,
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

/// Output of a finished command.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn run(program: &str, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
