//! The mobile signature service on a real loopback port over a real store, for the tests of
//! this crate (`mod common;` in a file of `mobile-sign/tests/`): a SQLite file, or with
//! [`Mss::start_on`]`(Engine::Postgres, …)` a fresh database of a PostgreSQL cluster of the test
//! binary's own. `IMZA_TEST_MSS_STORE=postgres` runs every [`Mss::start`] on PostgreSQL.
//!
//! ```ignore
//! let mss = Mss::start();                                   // fresh tempdir imza.db, service, server
//! let rp = mss.rp();                                        // JsonClient of the relying party `portal.gov.az`
//! let phone = mss.register(PHONE, NATIONAL_ID);             // fresh P-256 keys, TestCa certificates, registered
//! let id = start_session(&rp, SessionKind::Signature, &session_request(&phone, &[7; 32]));
//! let request = phone.next_request();                       // long-polls /device/pending
//! phone.approve(&request).unwrap();                         // signs with the right key, POSTs the answer
//! let status = session_status(&rp, &id, 10_000).unwrap();   // COMPLETE + OK
//! ```
//!
//! What it gives:
//! - [`Mss`]: the tempdir, the store, the service and its server; [`Mss::clock`] (system
//!   time plus an offset tests move with [`TestClock::advance`]), [`Mss::status`] (the CA's
//!   word, a set of revoked certificates: [`TestStatus::revoke`]), [`Mss::ca`] (the TestCa
//!   that issues the phones' certificates, recorded as CA [`CA_NAME`]), one relying party
//!   [`RP_NAME`] with its key; [`Mss::restart`] drops the server, the service and the store
//!   and opens them again on the same database (the port changes: phones follow it).
//! - [`TestPhone`]: a registered phone with its software keys and certificates, and a minimal
//!   simulated device over the raw device API ([`imza_mobile_sign::http_client::JsonClient`]):
//!   [`TestPhone::pending`], [`TestPhone::next_request`], [`TestPhone::sign`],
//!   [`TestPhone::answer`], [`TestPhone::approve`].
//! - relying-party helpers: [`session_request`], [`start_session`], [`session_status`],
//!   [`start_session_raw`] (the whole HTTP answer), [`unregistered_request`];
//!   [`Mss::session_rows`] counts the rows of `mss_sessions`.
//!
//! Fixtures panic when something cannot be set up.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use imza_core::alg::DigestAlgorithm;
use imza_core::clock::Clock;
use imza_core::key::software::SoftwareKey;
use imza_core::{KeyAlgorithm, SigningKey};
use imza_mobile_sign::http::{routes, spawn_purge};
use imza_mobile_sign::http_client::{ApiError, JsonClient};
use imza_mobile_sign::protocol::{
    decode_base64, encode_base64, DeviceAnswer, Language, PendingRequest, PendingRequests,
    SessionCreated, SessionKind, SessionRequest, SessionResult, SessionStatus,
};
use imza_mobile_sign::service::{MobileService, ServiceConfig};
use imza_mobile_sign::store::{
    add_relying_party, register_device, MobileStore, NewDevice, RegisteredCertificate,
};
use imza_ocsp::{CertStatusInfo, CertificateStatusSource, IssuerId, OcspError};
use imza_store::StoreUrl;
use imza_testdata::loopback::LoopbackServer;
use imza_testdata::pki::{leaf_extensions, TestCa};
use tempfile::TempDir;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The relying party every [`Mss`] starts with.
pub const RP_NAME: &str = "portal.gov.az";

/// The CA name the phones' certificates are registered under.
pub const CA_NAME: &str = "mobile";

pub const PHONE: &str = "+994501234567";
pub const NATIONAL_ID: &str = "1AB2C3D";

/// Worker threads of the test server.
const SERVER_THREADS: usize = 2;

/// What a client allows beyond the long poll it asked for.
const CLIENT_SLACK: Duration = Duration::from_secs(20);

/// System time plus an offset the test moves.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    /// Moves "now" forward (or back, with a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let ms = i64::try_from(by.whole_milliseconds()).expect("a sane duration");
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// The CA's word for the tests: revoked certificates by (CA, serial); [`TestStatus::fail`]
/// makes it answer with an error.
#[derive(Debug, Default)]
pub struct TestStatus {
    revoked: Mutex<HashSet<(String, Vec<u8>)>>,
    failing: AtomicBool,
}

impl TestStatus {
    pub fn revoke(&self, cert: &RegisteredCertificate) {
        let serial = cert.details().expect("a readable certificate").serial;
        self.revoked
            .lock()
            .unwrap()
            .insert((cert.ca.clone(), serial));
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl CertificateStatusSource for TestStatus {
    fn status(&self, issuer: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(OcspError::StatusUnavailable {
                issuer: issuer.to_string(),
                serial: hex::encode_upper(serial),
                source: imza_ocsp::SourceError::new(std::io::Error::other(
                    "the test CA store is down",
                )),
            });
        }
        let revoked = self.revoked.lock().unwrap();
        if revoked.contains(&(issuer.to_string(), serial.to_vec())) {
            Ok(CertStatusInfo::Revoked {
                at: time::OffsetDateTime::UNIX_EPOCH,
                reason: None,
            })
        } else {
            Ok(CertStatusInfo::Good)
        }
    }

    /// The number of revocations: it changes with every answer that changes.
    fn revision(&self) -> Result<u64, OcspError> {
        Ok(self.revoked.lock().unwrap().len() as u64)
    }
}

/// The engine a test's store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// PostgreSQL when `IMZA_TEST_MSS_STORE=postgres`, otherwise SQLite.
    pub fn from_env() -> Engine {
        match std::env::var("IMZA_TEST_MSS_STORE").as_deref() {
            Ok("postgres") => Engine::Postgres,
            Ok("sqlite") | Err(_) => Engine::Sqlite,
            Ok(other) => panic!("IMZA_TEST_MSS_STORE={other}: sqlite or postgres"),
        }
    }
}

/// The service on loopback; see the module docs.
pub struct Mss {
    pub dir: TempDir,
    /// `<dir>/imza.db`, the store on SQLite (nothing there on PostgreSQL).
    pub db: PathBuf,
    /// The store: `sqlite:<dir>/imza.db` or a fresh PostgreSQL database.
    pub url: StoreUrl,
    /// On PostgreSQL, the database's URL with its password (for [`Mss::session_rows`]).
    postgres: Option<String>,
    pub clock: Arc<TestClock>,
    pub status: Arc<TestStatus>,
    pub ca: TestCa,
    pub config: ServiceConfig,
    pub store: Arc<dyn MobileStore>,
    pub service: Arc<MobileService>,
    server: Option<LoopbackServer>,
    /// `http://127.0.0.1:PORT`, shared with the phones (it changes on restart).
    base_url: Arc<RwLock<String>>,
    pub rp_key: Zeroizing<String>,
}

impl Mss {
    /// A fresh service with the default configuration and relying party [`RP_NAME`].
    pub fn start() -> Mss {
        Mss::start_with(ServiceConfig::default())
    }

    /// A fresh service with `config`, on the engine [`Engine::from_env`] says.
    pub fn start_with(config: ServiceConfig) -> Mss {
        Mss::start_on(Engine::from_env(), config)
    }

    /// A fresh service with `config` on a store of `engine`.
    pub fn start_on(engine: Engine, config: ServiceConfig) -> Mss {
        let dir = tempfile::tempdir().expect("a tempdir");
        let db = dir.path().join("imza.db");
        let (url, postgres) = match engine {
            Engine::Sqlite => (StoreUrl::sqlite(&db), None),
            Engine::Postgres => {
                let url = imza_testdata::postgres::PgCluster::shared().database();
                (url.parse().expect("a store URL"), Some(url))
            }
        };
        let store = imza_mobile_sign::store::open(&url).expect("open the store");
        let clock = Arc::new(TestClock::default());
        let status = Arc::new(TestStatus::default());
        let rp_key =
            add_relying_party(store.as_ref(), RP_NAME, clock.now()).expect("add the relying party");
        let service = Arc::new(MobileService::new(
            Arc::clone(&store),
            status.clone(),
            clock.clone(),
            config.clone(),
        ));
        let server = serve(&service);
        let base_url = Arc::new(RwLock::new(server.url("")));
        Mss {
            dir,
            db,
            url,
            postgres,
            clock,
            status,
            ca: TestCa::root("CN=imza Test Mobile CA,O=imza,C=AZ", KeyAlgorithm::EcP256),
            config,
            store,
            service,
            server: Some(server),
            base_url,
            rp_key,
        }
    }

    /// `http://127.0.0.1:PORT` (no path).
    pub fn base_url(&self) -> String {
        self.base_url.read().unwrap().clone()
    }

    /// The client of relying party [`RP_NAME`].
    pub fn rp(&self) -> JsonClient {
        JsonClient::new(&self.base_url(), RP_NAME, &self.rp_key).expect("a client")
    }

    /// Registers another relying party and returns its client.
    pub fn add_relying_party(&self, name: &str) -> JsonClient {
        let key = self.add_relying_party_key(name);
        JsonClient::new(&self.base_url(), name, &key).expect("a client")
    }

    /// Registers another relying party and returns its API key (for [`raw_request`]s).
    pub fn add_relying_party_key(&self, name: &str) -> Zeroizing<String> {
        add_relying_party(self.store.as_ref(), name, self.clock.now()).expect("add a relying party")
    }

    /// The rows of `mss_sessions`, counted through a connection of its own.
    pub fn session_rows(&self) -> i64 {
        const COUNT: &str = "SELECT COUNT(*) FROM mss_sessions";
        match &self.postgres {
            None => rusqlite::Connection::open(&self.db)
                .expect("open the database")
                .query_row(COUNT, [], |r| r.get(0))
                .expect("count the sessions"),
            Some(url) => postgres::Client::connect(url, postgres::NoTls)
                .expect("connect to the database")
                .query_one(COUNT, &[])
                .expect("count the sessions")
                .get(0),
        }
    }

    /// Registers a phone with fresh P-256 keys.
    pub fn register(&self, phone_number: &str, national_id: &str) -> TestPhone {
        self.register_with(phone_number, national_id, KeyAlgorithm::EcP256)
    }

    /// Registers a phone with fresh keys of `algorithm` and certificates from [`Mss::ca`].
    pub fn register_with(
        &self,
        phone_number: &str,
        national_id: &str,
        algorithm: KeyAlgorithm,
    ) -> TestPhone {
        let auth_key = Arc::new(SoftwareKey::generate(algorithm).expect("an auth key"));
        let sign_key = Arc::new(SoftwareKey::generate(algorithm).expect("a signing key"));
        let subject = format!("CN=Test Citizen {national_id},C=AZ");
        let auth = RegisteredCertificate {
            ca: CA_NAME.into(),
            der: self
                .ca
                .issue(&subject, &serial(), auth_key.as_ref(), leaf_extensions()),
        };
        let sign = RegisteredCertificate {
            ca: CA_NAME.into(),
            der: self
                .ca
                .issue(&subject, &serial(), sign_key.as_ref(), leaf_extensions()),
        };
        let registration = register_device(
            self.store.as_ref(),
            &NewDevice {
                phone_number: phone_number.into(),
                national_id: national_id.into(),
                auth: auth.clone(),
                sign: sign.clone(),
            },
            self.clock.now(),
        )
        .expect("register the device");
        TestPhone {
            phone_number: phone_number.into(),
            national_id: national_id.into(),
            device_id: registration.device_id,
            device_secret: registration.device_secret,
            auth_key,
            sign_key,
            auth,
            sign,
            base_url: Arc::clone(&self.base_url),
        }
    }

    /// Stops the server and drops the service and the store, then opens a new store on the
    /// same database, a new service and a new server (on a new port, which the phones follow).
    pub fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
        let store = imza_mobile_sign::store::open(&self.url).expect("reopen the store");
        self.service = Arc::new(MobileService::new(
            Arc::clone(&store),
            self.status.clone(),
            self.clock.clone(),
            self.config.clone(),
        ));
        self.store = store;
        let server = serve(&self.service);
        *self.base_url.write().unwrap() = server.url("");
        self.server = Some(server);
    }
}

/// `service`'s routes on a loopback port, with its periodic clean-up, as `imza serve` runs
/// them.
fn serve(service: &Arc<MobileService>) -> LoopbackServer {
    let service = Arc::clone(service);
    LoopbackServer::launch_with(
        move |shutdown| {
            spawn_purge(Arc::clone(&service), shutdown.clone());
            routes(service, shutdown.clone())
        },
        SERVER_THREADS,
    )
}

/// A serial for a test certificate: 8 random bytes, positive, no leading zero.
fn serial() -> Vec<u8> {
    let mut serial = [0u8; 8];
    openssl::rand::rand_bytes(&mut serial).expect("random bytes");
    serial[0] = (serial[0] & 0x7f) | 0x10;
    serial.to_vec()
}

/// A registered phone and a minimal simulated device over the raw device API.
pub struct TestPhone {
    pub phone_number: String,
    pub national_id: String,
    pub device_id: String,
    pub device_secret: Zeroizing<String>,
    pub auth_key: Arc<SoftwareKey>,
    pub sign_key: Arc<SoftwareKey>,
    pub auth: RegisteredCertificate,
    pub sign: RegisteredCertificate,
    base_url: Arc<RwLock<String>>,
}

impl TestPhone {
    /// A client of the device API with this phone's credentials.
    pub fn client(&self) -> JsonClient {
        let url = self.base_url.read().unwrap().clone();
        JsonClient::new(&url, &self.device_id, &self.device_secret).expect("a client")
    }

    /// `GET /device/pending?timeoutMs=N`.
    pub fn pending(&self, timeout_ms: u64) -> Result<PendingRequests, ApiError> {
        self.client().get(
            &format!("/device/pending?timeoutMs={timeout_ms}"),
            Duration::from_millis(timeout_ms) + CLIENT_SLACK,
        )
    }

    /// The first pending request, long-polling up to 20 s; panics if none comes.
    pub fn next_request(&self) -> PendingRequest {
        let pending = self.pending(20_000).expect("pending requests");
        pending
            .requests
            .into_iter()
            .next()
            .expect("a request reached the phone")
    }

    /// The key that answers `kind`.
    pub fn key(&self, kind: SessionKind) -> &SoftwareKey {
        match kind {
            SessionKind::Authentication => &self.auth_key,
            SessionKind::Signature => &self.sign_key,
        }
    }

    /// The registered certificate of `kind`.
    pub fn certificate(&self, kind: SessionKind) -> &RegisteredCertificate {
        match kind {
            SessionKind::Authentication => &self.auth,
            SessionKind::Signature => &self.sign,
        }
    }

    /// The signature the phone makes for `request`: `sign_digest` of the right key over the
    /// request's hash (raw bytes).
    pub fn sign(&self, request: &PendingRequest) -> Vec<u8> {
        let hash = decode_base64(&request.hash).expect("base64 hash");
        self.key(request.kind)
            .sign_digest(request.hash_type, &hash)
            .expect("sign the digest")
    }

    /// `POST /device/session/{id}`.
    pub fn answer(
        &self,
        session_id: &str,
        answer: &DeviceAnswer,
    ) -> Result<SessionStatus, ApiError> {
        self.client().post(
            &format!("/device/session/{session_id}"),
            answer,
            CLIENT_SLACK,
        )
    }

    /// Answers OK with [`TestPhone::sign`].
    pub fn approve(&self, request: &PendingRequest) -> Result<SessionStatus, ApiError> {
        self.answer(
            &request.session_id,
            &DeviceAnswer {
                result: SessionResult::Ok,
                signature: Some(encode_base64(&self.sign(request))),
            },
        )
    }

    /// Answers with a result and no signature (USER_REFUSED, PIN_BLOCKED, DELIVERY_ERROR).
    pub fn answer_without_signature(
        &self,
        request: &PendingRequest,
        result: SessionResult,
    ) -> Result<SessionStatus, ApiError> {
        self.answer(
            &request.session_id,
            &DeviceAnswer {
                result,
                signature: None,
            },
        )
    }
}

/// A session request for `phone` over `hash` (SHA-256 length expected), in English.
pub fn session_request(phone: &TestPhone, hash: &[u8]) -> SessionRequest {
    SessionRequest {
        phone_number: phone.phone_number.clone(),
        national_identity_number: phone.national_id.clone(),
        hash: encode_base64(hash),
        hash_type: DigestAlgorithm::Sha256,
        display_text: Some("Sign the residence certificate".into()),
        language: Language::Eng,
    }
}

/// `POST /authentication` or `/signature`; returns the session id.
pub fn start_session(
    rp: &JsonClient,
    kind: SessionKind,
    request: &SessionRequest,
) -> Result<String, ApiError> {
    let created: SessionCreated = rp.post(&format!("/{}", kind.name()), request, CLIENT_SLACK)?;
    Ok(created.session_id)
}

/// `GET /session/{id}?timeoutMs=N`.
pub fn session_status(
    rp: &JsonClient,
    session_id: &str,
    timeout_ms: u64,
) -> Result<SessionStatus, ApiError> {
    rp.get(
        &format!("/session/{session_id}?timeoutMs={timeout_ms}"),
        Duration::from_millis(timeout_ms) + CLIENT_SLACK,
    )
}

/// `POST /mss/v1/{kind}` as relying party `name` over a fresh connection, for what
/// [`JsonClient`] does not show (the `Retry-After` of a 429).
pub fn start_session_raw(
    base_url: &str,
    name: &str,
    key: &str,
    kind: SessionKind,
    request: &SessionRequest,
) -> RawResponse {
    let body = serde_json::to_vec(request).expect("a JSON request");
    raw_request(
        base_url,
        "POST",
        &format!("/mss/v1/{}", kind.name()),
        &[
            ("Authorization", &basic(name, key)),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
}

/// A request for a phone number nobody registered (the session is NOT_MOBILE_CLIENT).
pub fn unregistered_request(phone_number: &str) -> SessionRequest {
    SessionRequest {
        phone_number: phone_number.into(),
        national_identity_number: "0ZZ0ZZ0".into(),
        hash: encode_base64(&[3u8; 32]),
        hash_type: DigestAlgorithm::Sha256,
        display_text: None,
        language: Language::Aze,
    }
}

/// `Basic base64(user:secret)`.
pub fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        encode_base64(format!("{user}:{secret}").as_bytes())
    )
}

/// An HTTP answer read off the socket, for what [`JsonClient`] does not show (headers, bodies
/// it would refuse to send).
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The [`ErrorBody`](imza_mobile_sign::protocol::ErrorBody), after checking it is one
    /// line of JSON.
    pub fn error_body(&self) -> imza_mobile_sign::protocol::ErrorBody {
        assert!(!self.body.contains('\n'), "not one line: {}", self.body);
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an error body ({e}): {}", self.body))
    }
}

/// Sends one HTTP/1.1 request over a fresh connection (`Connection: close`) and reads the
/// whole answer. `headers` are sent as given; a `Content-Length` is added for `body` unless
/// `headers` has one or a `Transfer-Encoding` (then `body` goes as it is: chunk it yourself).
pub fn raw_request(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> RawResponse {
    use std::io::{Read, Write};
    let authority = base_url
        .strip_prefix("http://")
        .expect("an http:// base URL");
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a read timeout");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let declared = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    if let (Some(body), false) = (body, declared) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    // The server may answer (413) and close before reading it all: a failed write is fine,
    // the answer is what counts.
    let _ = stream.write_all(&request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_string(),
    }
}
