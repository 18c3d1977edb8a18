//! The OCSP tests' PKI, built on imza-testdata's (a CA, its delegated OCSP responder, leaves,
//! and a second CA the responder does not serve), status sources over a map, a clock moved by
//! hand, OCSP requests, a service on a loopback socket, and a runner for the independent tools
//! (`openssl ocsp`, pkilint's `lint_ocsp_response`).

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding};
use der::Decode;
use imza_core::clock::Clock;
use imza_core::key::software::SoftwareKey;
use imza_core::KeyAlgorithm;
use imza_ocsp::cert_id::cert_id;
use imza_ocsp::http::{default_work_limit, routes, start_upkeep};
use imza_ocsp::request::encode_request;
use imza_ocsp::{
    CacheConfig, CertIdHash, CertStatusInfo, CertificateStatusSource, IssuerId, OcspAnswer,
    OcspError, OcspService, Responder, ResponderConfig, ResponseStatus, ServedCa,
};
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::pki::{leaf_extensions, ocsp_responder_extensions, write_certificate, TestCa};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

/// One certificate of the PKI, also written to `<dir>/<name>.pem`.
pub struct Issued {
    pub serial: Vec<u8>,
    pub der: Vec<u8>,
    pub pem: PathBuf,
}

pub struct Pki {
    pub dir: tempfile::TempDir,
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

const CA_DN: &str = "CN=imza Test Citizens CA,O=imza,C=AZ";
const OTHER_CA_DN: &str = "CN=imza Test Other CA,O=imza,C=AZ";

fn serial(n: u8) -> Vec<u8> {
    let mut s = vec![n; 16];
    s[0] = 0x40 | (n & 0x3f);
    s
}

/// Writes `der` to `<dir>/<file>.pem`.
fn issued(dir: &Path, file: &str, serial: Vec<u8>, der: Vec<u8>) -> Issued {
    let pem = dir.join(format!("{file}.pem"));
    write_certificate(&pem, &der);
    Issued { serial, der, pem }
}

impl Pki {
    pub fn new() -> Pki {
        Self::with_keys(KeyAlgorithm::EcP256, KeyAlgorithm::EcP256)
    }

    /// A PKI whose CA and responder keys are of the given types.
    pub fn with_keys(ca_alg: KeyAlgorithm, responder_alg: KeyAlgorithm) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let test_ca = TestCa::root(CA_DN, ca_alg);
        let ca = issued(d, "ca", test_ca.serial.clone(), test_ca.der.clone());
        let responder_cert = test_ca.issue_service(
            "CN=imza Test Citizens CA OCSP Responder,O=imza,C=AZ",
            &serial(2),
            responder_alg,
            ocsp_responder_extensions(),
        );
        let responder = issued(d, "responder", serial(2), responder_cert.der);
        let leaf_key = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
        let leaf = |file: &str, cn: &str, n: u8| {
            let subject = format!("CN={cn},O=imza,C=AZ");
            let der = test_ca.issue(&subject, &serial(n), &leaf_key, leaf_extensions());
            issued(d, file, serial(n), der)
        };
        let good = leaf("good", "Good Citizen", 10);
        let revoked = leaf("revoked", "Revoked Citizen", 11);
        let never_issued = leaf("never_issued", "Ghost Citizen", 12);
        let good2 = leaf("good2", "Second Citizen", 13);
        let other = TestCa::root(OTHER_CA_DN, KeyAlgorithm::EcP256);
        let other_ca = issued(d, "other_ca", other.serial.clone(), other.der.clone());
        let other_leaf_der = other.issue(
            "CN=Other Citizen,O=imza,C=AZ",
            &serial(20),
            &leaf_key,
            leaf_extensions(),
        );
        let other_leaf = issued(d, "other_leaf", serial(20), other_leaf_der);
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
            ca,
            responder_key: responder_cert.key,
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

    /// Answers `request` with a fresh [`Pki::responder`] now, asserts the answer is
    /// successful, and writes its DER to `file` in the PKI's directory; returns that path.
    pub fn answer_to_file(&self, request: &[u8], file: &str) -> PathBuf {
        let answer = self
            .responder()
            .respond(request, OffsetDateTime::now_utc(), &self.source);
        assert_successful(&answer);
        let path = self.path(file);
        std::fs::write(&path, &answer.der).unwrap();
        path
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
                source: imza_ocsp::SourceError::new(std::io::Error::other("database is locked")),
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
    /// `revision` takes this lock: a test holding it makes the poll hang, as a store stuck
    /// behind a lock does.
    pub revision_gate: Mutex<()>,
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
            revision_gate: Mutex::new(()),
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
        drop(self.revision_gate.lock().unwrap_or_else(|e| e.into_inner()));
        if self.revision_fails.load(Ordering::SeqCst) {
            return Err(OcspError::StatusUnavailable {
                issuer: String::new(),
                serial: String::new(),
                source: imza_ocsp::SourceError::new(std::io::Error::other("database is locked")),
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
    request_for(
        &Certificate::from_der(ca_der).unwrap(),
        serials,
        CertIdHash::Sha1,
        nonce.map(|n| vec![nonce_extension(n)]),
    )
}

/// A DER OCSPRequest for `serials` of `issuer` with CertIDs hashed with `hash` and the
/// request extensions `extensions`.
pub fn request_for<S: AsRef<[u8]>>(
    issuer: &Certificate,
    serials: &[S],
    hash: CertIdHash,
    extensions: Option<Vec<Extension>>,
) -> Vec<u8> {
    let cert_ids = serials
        .iter()
        .map(|s| cert_id(issuer, &SerialNumber::new(s.as_ref()).unwrap(), hash).unwrap())
        .collect();
    encode_request(cert_ids, extensions).unwrap()
}

/// The nonce request extension (RFC 9654) carrying `value`.
pub fn nonce_extension(value: &[u8]) -> Extension {
    imza_ocsp::request::nonce_extension(value).unwrap()
}

/// Asserts that `answer` is successful, showing the problem if it is not.
pub fn assert_successful(answer: &OcspAnswer) {
    assert_eq!(
        answer.status,
        ResponseStatus::Successful,
        "{:?}",
        answer.problem
    );
}

/// A request as RFC 5019 §5 GET clients put it in the URL: base64, then URL-encoded.
pub fn url_encoded_base64(request: &[u8]) -> String {
    Base64::encode_string(request)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// An [`OcspService`] answering for `pki` from a [`LiveSource`] of it (returned too, to
/// revoke and count lookups), at `clock`'s time, with `config`.
pub fn live_service(
    pki: &Pki,
    clock: Arc<dyn Clock>,
    config: CacheConfig,
) -> (Arc<LiveSource>, Arc<OcspService>) {
    let source = Arc::new(LiveSource::of(pki));
    let service = Arc::new(OcspService::new(
        pki.responder(),
        Arc::clone(&source) as Arc<dyn CertificateStatusSource>,
        clock,
        config,
    ));
    (source, service)
}

/// `service`'s routes on a loopback port, with the cache upkeep ([`start_upkeep`]) running
/// until the server stops.
pub fn serve(service: Arc<OcspService>, worker_threads: usize) -> LoopbackServer {
    LoopbackServer::launch_with(
        move |shutdown| {
            start_upkeep(&service, shutdown).expect("the OCSP upkeep threads");
            routes(service, default_work_limit())
        },
        worker_threads,
    )
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
