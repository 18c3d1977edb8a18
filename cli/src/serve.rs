//! `imza serve`: the HTTP front door (Rocket), composed from the service crates:
//! - `POST /ocsp`, `GET /ocsp/{base64}` (imza-ocsp): every CA in the store, each answered by
//!   its delegated responder, issued here when missing and renewed before it expires;
//! - `POST /tsa` (imza-tsa): the newest usable time-stamping unit (`imza tsa init`);
//! - `POST /verify` (imza-signer): signature validation against the store's root CAs;
//! - `GET /ca/{name}.crt`, `GET /crl/{name}.crl`: what the certificates point to (the CRL is
//!   signed afresh when none exists or a quarter of its validity is left);
//! - `/mss/v1/...` (imza-mobile-sign): the mobile signature service — relying parties ask for
//!   signatures and authentications, registered phones long-poll for them and answer;
//! - `GET /health`, Prometheus `GET /metrics`.
//!
//! The status the responder gives comes from the same SQLite store the CLI writes; the
//! response cache is dropped whenever the store's audit head moves (a revocation by `imza ca
//! revoke` in another process included), checked every 250 ms.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::{get, routes, Data, Request, Response, State};
use time::Duration;

use const_oid::ObjectIdentifier;
use imza_ca::authority::DATABASE_FILE;
use imza_ca::services::{DEFAULT_TSA_NAME, DEFAULT_TSA_POLICY};
use imza_ca::store::{CertificateStatus, ServiceKind};
use imza_ca::Pki;
use imza_core::cert::serial_hex;
use imza_core::clock::{from_x509_time, Clock, SystemClock};
use imza_mobile_sign::service::{MobileService, ServiceConfig as MobileConfig};
use imza_mobile_sign::store::MobileStore;
use imza_ocsp::service::{CacheConfig, OcspService};
use imza_ocsp::{
    CertStatusInfo, CertificateStatusSource, IssuerId, OcspError, Responder, ResponderConfig,
    ServedCa,
};
use imza_tsa::http::TsaService;
use imza_tsa::{
    accuracy_seconds, ClockCheck, ClockCommand, CommandClockCheck, TimeStampAuthority,
    TrustSystemClock, TsaConfig,
};

use crate::ca::open_pki;
use crate::output::{CliResult, Failure};

/// Per-endpoint request counts and latency histograms, in Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    /// endpoint → HTTP status → series. Keyed by endpoint first so that recording a request
    /// looks up by `&str` and allocates only the first time an endpoint is seen.
    inner: Mutex<BTreeMap<String, BTreeMap<u16, Series>>>,
}

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Upper bounds (seconds) of the latency histogram.
const BUCKETS: [f64; 8] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

impl Metrics {
    fn observe(&self, endpoint: &str, status: u16, seconds: f64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(endpoint) {
            map.insert(endpoint.to_string(), BTreeMap::new());
        }
        let Some(by_status) = map.get_mut(endpoint) else {
            return;
        };
        let series = by_status.entry(status).or_default();
        series.count += 1;
        series.sum_seconds += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                series.buckets[i] += 1;
            }
        }
    }

    fn render(&self) -> String {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::new();
        out.push_str("# HELP imza_http_requests_total HTTP requests by endpoint and status.\n");
        out.push_str("# TYPE imza_http_requests_total counter\n");
        for (endpoint, by_status) in &map {
            for (status, s) in by_status {
                out.push_str(&format!(
                    "imza_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {}\n",
                    s.count
                ));
            }
        }
        out.push_str("# HELP imza_http_request_duration_seconds Time to answer, by endpoint.\n");
        out.push_str("# TYPE imza_http_request_duration_seconds histogram\n");
        let mut by_endpoint: BTreeMap<&str, Series> = BTreeMap::new();
        for (endpoint, by_status) in &map {
            let e = by_endpoint.entry(endpoint.as_str()).or_default();
            for s in by_status.values() {
                e.count += s.count;
                e.sum_seconds += s.sum_seconds;
                for i in 0..BUCKETS.len() {
                    e.buckets[i] += s.buckets[i];
                }
            }
        }
        for (endpoint, s) in by_endpoint {
            for (i, bound) in BUCKETS.iter().enumerate() {
                out.push_str(&format!("imza_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {}\n", s.buckets[i]));
            }
            out.push_str(&format!("imza_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}\n", s.count));
            out.push_str(&format!(
                "imza_http_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}\n",
                s.sum_seconds
            ));
            out.push_str(&format!(
                "imza_http_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}\n",
                s.count
            ));
        }
        out
    }
}

/// Records every request's endpoint (the matched route's name), status and latency.
struct MetricsFairing(Arc<Metrics>);

#[derive(Clone, Copy)]
struct Started(Instant);

#[rocket::async_trait]
impl Fairing for MetricsFairing {
    fn info(&self) -> Info {
        Info {
            name: "metrics",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut Data<'_>) {
        request.local_cache(|| Started(Instant::now()));
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let started = request.local_cache(|| Started(Instant::now()));
        let endpoint = request
            .route()
            .and_then(|r| r.name.as_deref())
            .unwrap_or("unmatched");
        self.0.observe(
            endpoint,
            response.status().code,
            started.0.elapsed().as_secs_f64(),
        );
    }
}

/// 200 when the store reads and the OCSP cache's last check of it worked; 503 otherwise
/// (OCSP then answers live or `tryLater`, never from a cache that may be stale).
#[get("/health")]
fn health(pki: &State<Arc<Pki>>, ocsp: &State<Arc<OcspService>>) -> (Status, &'static str) {
    // No error details: paths and database messages are for the operator's log, not the web.
    if pki.store().cas().is_err() {
        return (Status::ServiceUnavailable, "store unavailable\n");
    }
    match ocsp.last_poll_error() {
        Some(_) => (
            Status::ServiceUnavailable,
            "OCSP status source unavailable\n",
        ),
        None => (Status::Ok, "ok\n"),
    }
}

#[get("/metrics")]
fn metrics(metrics: &State<Arc<Metrics>>) -> (ContentType, String) {
    (
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        metrics.render(),
    )
}

/// `/ca/citizens.crt` → the CA certificate, DER (RFC 5280 §4.2.2.1 caIssuers).
#[get("/ca/<file>")]
fn ca_certificate(
    file: &str,
    pki: &State<Arc<Pki>>,
) -> Result<(ContentType, Vec<u8>), (Status, String)> {
    let name = file
        .strip_suffix(".crt")
        .ok_or((Status::NotFound, "expected /ca/NAME.crt\n".to_string()))?;
    match pki.store().ca(name) {
        Ok(Some(ca)) => Ok((ContentType::new("application", "pkix-cert"), ca.certificate)),
        Ok(None) => Err((Status::NotFound, format!("no CA named {name:?}\n"))),
        Err(e) => Err((Status::InternalServerError, format!("{e}\n"))),
    }
}

/// `/crl/citizens.crl` → the latest CRL, DER (RFC 5280 §4.2.1.13), signing a fresh one when
/// there is none or a quarter of its validity is left.
#[get("/crl/<file>")]
async fn crl(
    file: &str,
    pki: &State<Arc<Pki>>,
    config: &State<Arc<ServeConfig>>,
) -> Result<(ContentType, Vec<u8>), (Status, String)> {
    let validity = Duration::hours(config.crl.validity_hours.into());
    let name = file
        .strip_suffix(".crl")
        .ok_or((Status::NotFound, "expected /crl/NAME.crl\n".to_string()))?
        .to_string();
    let pki = Arc::clone(pki.inner());
    let result =
        rocket::tokio::task::spawn_blocking(move || current_crl(&pki, &name, validity)).await;
    match result {
        Ok(Ok(der)) => Ok((ContentType::new("application", "pkix-crl"), der)),
        Ok(Err(e)) if matches!(e, imza_ca::CaError::UnknownCa { .. }) => {
            Err((Status::NotFound, format!("{e}\n")))
        }
        Ok(Err(e)) => Err((Status::ServiceUnavailable, format!("{e}\n"))),
        Err(_) => Err((Status::InternalServerError, "CRL task failed\n".into())),
    }
}

fn current_crl(pki: &Pki, name: &str, validity: Duration) -> Result<Vec<u8>, imza_ca::CaError> {
    pki.ca(name)?;
    let now = pki.now();
    if let Some(crl) = pki.store().latest_crl(name)? {
        let margin = (crl.next_update - crl.this_update) / 4;
        if now + margin < crl.next_update {
            return Ok(crl.der);
        }
    }
    Ok(pki
        .authority(name, None)?
        .sign_crl(validity, &mut |_, _| {})?
        .record
        .der)
}

/// A plain-text error body for every status no route answered (404, 413, 422 ...).
#[rocket::catch(default)]
fn plain_error(status: Status, _: &Request<'_>) -> String {
    format!("{status}\n")
}

/// `imza serve --config FILE` (TOML). Every key is optional.
///
/// ```toml
/// check_interval_seconds = 30  # store checked for revoked/new service certificates
/// [ocsp]
/// validity_minutes = 60        # nextUpdate − thisUpdate of every response
/// cache_entries = 100000       # pre-signed responses kept
/// [tsa]
/// name = "tsa"                 # which unit answers on /tsa
/// accuracy_seconds = 1
/// clock_check_command = ["chronyc", "-n", "waitsync", "1", "0.1"]
/// clock_check_interval_seconds = 10
/// [crl]
/// validity_hours = 24          # CRLs the server signs itself
/// [mobile]
/// session_lifetime_seconds = 300  # how long a phone has to answer
/// ```
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// How often the store is checked for service changes: a revoked responder or TSA
    /// certificate, a unit made by `imza tsa init`, a responder by `imza ocsp init`.
    pub check_interval_seconds: u64,
    pub ocsp: OcspSection,
    pub tsa: TsaSection,
    pub crl: CrlSection,
    pub mobile: MobileSection,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            check_interval_seconds: 30,
            ocsp: OcspSection::default(),
            tsa: TsaSection::default(),
            crl: CrlSection::default(),
            mobile: MobileSection::default(),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MobileSection {
    /// How long a phone has to answer a signature or authentication request.
    pub session_lifetime_seconds: u64,
}

impl Default for MobileSection {
    fn default() -> Self {
        MobileSection {
            session_lifetime_seconds: imza_mobile_sign::protocol::SESSION_LIFETIME.as_secs(),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspSection {
    pub validity_minutes: u32,
    pub cache_entries: usize,
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            validity_minutes: 60,
            cache_entries: 100_000,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsaSection {
    pub name: String,
    pub accuracy_seconds: u64,
    /// Run every `clock_check_interval_seconds`; the TSA refuses with timeNotAvailable while
    /// it fails (RFC 3161 §2.2 / EN 319 421 §7.7.2). None: the system clock is trusted.
    pub clock_check_command: Option<Vec<String>>,
    pub clock_check_interval_seconds: u64,
}

impl Default for TsaSection {
    fn default() -> Self {
        TsaSection {
            name: DEFAULT_TSA_NAME.to_string(),
            accuracy_seconds: 1,
            clock_check_command: None,
            clock_check_interval_seconds: 10,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrlSection {
    pub validity_hours: u32,
}

impl Default for CrlSection {
    fn default() -> Self {
        CrlSection { validity_hours: 24 }
    }
}

impl ServeConfig {
    /// Reads and checks the configuration file; no file means the defaults.
    pub fn load(path: Option<&Path>) -> Result<ServeConfig, Failure> {
        let Some(path) = path else {
            return Ok(ServeConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))?;
        let config: ServeConfig = toml::from_str(&text)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        let bad = |m: &str| Err(Failure::Input(format!("{}: {m}", path.display())));
        if !(1..=7 * 24 * 60).contains(&config.ocsp.validity_minutes) {
            return bad("[ocsp] validity_minutes must be between 1 and 10080 (7 days)");
        }
        if !(1..=366 * 24).contains(&config.crl.validity_hours) {
            return bad("[crl] validity_hours must be between 1 and 8784 (366 days)");
        }
        if !(1..=3600).contains(&config.check_interval_seconds) {
            return bad("check_interval_seconds must be between 1 and 3600");
        }
        if !(1..=3600).contains(&config.mobile.session_lifetime_seconds) {
            return bad("[mobile] session_lifetime_seconds must be between 1 and 3600");
        }
        if config.tsa.clock_check_interval_seconds == 0 {
            return bad("[tsa] clock_check_interval_seconds must be at least 1");
        }
        if config
            .tsa
            .clock_check_command
            .as_ref()
            .is_some_and(|c| c.is_empty())
        {
            return bad("[tsa] clock_check_command is empty");
        }
        Ok(config)
    }
}

/// Answers OCSP's "what is the status of serial S of CA I" from the CA store.
struct StoreStatus(Arc<Pki>);

impl CertificateStatusSource for StoreStatus {
    fn status(&self, issuer: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError> {
        match self.0.store().status(issuer.as_str(), serial) {
            Ok(CertificateStatus::Issued) => Ok(CertStatusInfo::Good),
            Ok(CertificateStatus::Revoked { at, reason }) => Ok(CertStatusInfo::Revoked {
                at,
                reason: Some(reason),
            }),
            Ok(CertificateStatus::Unknown) => Ok(CertStatusInfo::Unknown),
            Err(e) => Err(OcspError::StatusUnavailable {
                issuer: issuer.to_string(),
                serial: hex::encode_upper(serial),
                reason: e.to_string(),
            }),
        }
    }

    fn revision(&self) -> Result<u64, OcspError> {
        self.0
            .store()
            .audit_head()
            .map_err(|e| OcspError::SourceUnavailable(e.to_string()))
    }
}

/// Messages for the operator at start and when maintenance changes something.
fn note(message: impl std::fmt::Display) {
    eprintln!("imza serve: {message}");
}

/// The delegated responders of every CA whose certificate is valid now: issued or renewed
/// with the CA key when due (never prompting for a PIN), else the current one kept.
fn ocsp_responders(pki: &Pki) -> Result<Vec<ServedCa>, Failure> {
    let now = pki.now();
    let mut served = Vec::new();
    for ca in pki.store().cas().map_err(imza_ca::CaError::from)? {
        let certificate = imza_core::cert::parse_certificate(&ca.certificate)?;
        let validity = &certificate.tbs_certificate.validity;
        if now > from_x509_time(&validity.not_after) || now < from_x509_time(&validity.not_before) {
            note(format!(
                "OCSP: CA {} is outside its validity; not served",
                ca.name
            ));
            continue;
        }
        let responder = if ca.key.opens_unattended() {
            match pki.ensure_ocsp_responder(&ca.name, None) {
                Ok(ensured) => {
                    if ensured.issued {
                        note(format!(
                            "OCSP: issued responder certificate {} for CA {}",
                            serial_hex(&ensured.responder.certificate.serial),
                            ca.name
                        ));
                    }
                    Some(ensured.responder)
                }
                Err(e) => {
                    note(format!(
                        "OCSP: cannot issue a responder for CA {}: {e}",
                        ca.name
                    ));
                    pki.current_service(ServiceKind::Ocsp, &ca.name)?
                }
            }
        } else {
            pki.current_service(ServiceKind::Ocsp, &ca.name)?
        };
        let Some(responder) = responder else {
            note(format!(
                "OCSP: CA {} has no responder and its key needs a PIN the server lacks; \
                 run imza ocsp init --ca {} (answers for it are 'unauthorized' until then)",
                ca.name, ca.name
            ));
            continue;
        };
        let key = responder.open_key(pki)?;
        served.push(ServedCa {
            issuer: IssuerId::new(&ca.name),
            ca_certificate: ca.certificate.clone(),
            responder_certificate: responder.certificate.der.clone(),
            responder_key: Arc::from(key),
        });
    }
    Ok(served)
}

/// The responder over `served`, and the responder certificates it answers with.
fn build_responder(
    served: Vec<ServedCa>,
    config: &ServeConfig,
) -> Result<(Responder, Vec<Vec<u8>>), Failure> {
    let certificates = served
        .iter()
        .map(|s| s.responder_certificate.clone())
        .collect();
    let responder = Responder::new(
        served,
        ResponderConfig {
            validity: Duration::minutes(config.ocsp.validity_minutes.into()),
            ..ResponderConfig::default()
        },
    )
    .map_err(|e| Failure::Internal(format!("OCSP responder: {e}")))?;
    Ok((responder, certificates))
}

/// The certificates a TSA token carries besides the TSA's own: its issuing CA and every CA
/// up to, not including, the root.
pub(crate) fn chain_below_root(pki: &Pki, ca: &str) -> Result<Vec<Vec<u8>>, Failure> {
    let mut chain = Vec::new();
    let mut next = Some(ca.to_string());
    while let Some(name) = next {
        let record = pki.ca(&name)?;
        if record.parent.is_some() {
            chain.push(record.certificate.clone());
        }
        next = record.parent;
        if chain.len() > 16 {
            return Err(Failure::Internal("CA hierarchy deeper than 16".into()));
        }
    }
    Ok(chain)
}

/// The TSA unit named in the configuration, ready to stamp, with its certificate's serial.
fn build_tsa(
    pki: &Pki,
    config: &ServeConfig,
    clock_check: &Arc<dyn ClockCheck>,
) -> Result<Option<(TimeStampAuthority, Vec<u8>)>, Failure> {
    let Some(unit) = pki.current_service(ServiceKind::Tsa, &config.tsa.name)? else {
        return Ok(None);
    };
    let policy = unit.service.policy.as_deref().unwrap_or(DEFAULT_TSA_POLICY);
    let policy = ObjectIdentifier::new(policy).map_err(|e| {
        Failure::Internal(format!(
            "TSA {}: stored policy {policy:?}: {e}",
            unit.service.name
        ))
    })?;
    let key = unit.open_key(pki)?;
    let mut tsa_config = TsaConfig::new(
        unit.certificate.der.clone(),
        chain_below_root(pki, &unit.service.ca)?,
        Arc::from(key),
        policy,
    );
    tsa_config.accuracy = Some(accuracy_seconds(config.tsa.accuracy_seconds));
    tsa_config.clock_check = Arc::clone(clock_check);
    let authority = TimeStampAuthority::new(tsa_config)
        .map_err(|e| Failure::Internal(format!("TSA {}: {e}", unit.service.name)))?;
    Ok(Some((authority, unit.certificate.serial)))
}

/// What the server runs, built once at start and refreshed by [`Services::maintain`].
pub struct Services {
    ocsp: Arc<OcspService>,
    tsa: Arc<TsaService>,
    mobile: Arc<MobileService>,
    /// What is being served now: the responder certificates, the TSA certificate's serial,
    /// and the store's audit head when they were last checked.
    served: Mutex<Served>,
    clock_check: Arc<dyn ClockCheck>,
    config: Arc<ServeConfig>,
}

struct Served {
    responders: Vec<Vec<u8>>,
    tsa_serial: Option<Vec<u8>>,
    audit_head: u64,
    checked: std::time::Instant,
}

impl Services {
    pub fn start(pki: &Arc<Pki>, config: ServeConfig) -> Result<Services, Failure> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let clock_check: Arc<dyn ClockCheck> = match &config.tsa.clock_check_command {
            Some(argv) => Arc::new(
                CommandClockCheck::start(ClockCommand::new(
                    argv.clone(),
                    std::time::Duration::from_secs(config.tsa.clock_check_interval_seconds),
                ))
                .map_err(|e| Failure::Input(format!("[tsa] clock_check_command: {e}")))?,
            ),
            None => Arc::new(TrustSystemClock),
        };
        let (responder, responders) = build_responder(ocsp_responders(pki)?, &config)?;
        let ocsp = Arc::new(OcspService::new(
            responder,
            Arc::new(StoreStatus(Arc::clone(pki))),
            Arc::clone(&clock),
            CacheConfig {
                max_entries: config.ocsp.cache_entries,
                ..CacheConfig::default()
            },
        ));
        let (tsa, tsa_serial) = match build_tsa(pki, &config, &clock_check)? {
            Some((authority, serial)) => {
                (TsaService::new(authority, Arc::clone(&clock)), Some(serial))
            }
            None => (TsaService::unavailable(Arc::clone(&clock)), None),
        };
        let mobile_store = MobileStore::open(&pki.data_dir().join(DATABASE_FILE))
            .map_err(|e| Failure::Internal(format!("mobile signature service: {e}")))?;
        let mobile = Arc::new(MobileService::new(
            Arc::new(mobile_store),
            Arc::new(crate::mobile::StoreCertificateStatus(Arc::clone(pki))),
            Arc::clone(&clock),
            MobileConfig {
                session_lifetime: std::time::Duration::from_secs(
                    config.mobile.session_lifetime_seconds,
                ),
                ..MobileConfig::default()
            },
        ));
        let audit_head = pki.store().audit_head().map_err(imza_ca::CaError::from)?;
        Ok(Services {
            ocsp,
            tsa: Arc::new(tsa),
            mobile,
            served: Mutex::new(Served {
                responders,
                tsa_serial,
                audit_head,
                checked: std::time::Instant::now(),
            }),
            clock_check,
            config: Arc::new(config),
        })
    }

    /// Brings the services in line with the store when it changed (a responder or the TSA
    /// certificate revoked, a unit created by `imza tsa init`, a responder issued by `imza ocsp
    /// init`) or an hour has passed (renewals): a new set of responder certificates replaces
    /// the responder; a new TSA certificate replaces the authority, and none withdraws it, so
    /// a revoked TSA certificate stops stamping. Failures are reported and the current
    /// services stay.
    fn maintain(&self, pki: &Pki) {
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let head = match pki.store().audit_head() {
            Ok(head) => head,
            Err(e) => return note(format!("maintenance: cannot read the store: {e}")),
        };
        if head == served.audit_head && served.checked.elapsed() < RENEWAL_PERIOD {
            return;
        }
        let built = ocsp_responders(pki).and_then(|s| build_responder(s, &self.config));
        match built {
            Ok((responder, responders)) if responders != served.responders => {
                self.ocsp.replace_responder(responder);
                served.responders = responders;
                note("OCSP: now answering with new responder certificates");
            }
            Ok(_) => {}
            Err(e) => note(format!("OCSP maintenance failed: {}", e.message())),
        }
        match build_tsa(pki, &self.config, &self.clock_check) {
            Ok(Some((authority, serial))) if served.tsa_serial.as_ref() != Some(&serial) => {
                self.tsa.replace(authority);
                note(format!(
                    "TSA: now signing with certificate {}",
                    serial_hex(&serial)
                ));
                served.tsa_serial = Some(serial);
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                if served.tsa_serial.take().is_some() {
                    self.tsa.withdraw();
                    note(format!(
                        "TSA {}: no usable certificate (revoked or expired); refusing to stamp",
                        self.config.tsa.name
                    ));
                }
            }
            Err(e) => note(format!("TSA maintenance failed: {}", e.message())),
        }
        // The responders' own issuance moved the head: record the head after it.
        served.audit_head = pki.store().audit_head().unwrap_or(head);
        served.checked = std::time::Instant::now();
    }
}

/// How often responders are checked for renewal when nothing else changed.
const RENEWAL_PERIOD: std::time::Duration = std::time::Duration::from_secs(3600);

/// Builds the Rocket instance serving `pki` with `services` on `listen`.
pub fn rocket(
    pki: Arc<Pki>,
    services: Arc<Services>,
    listen: SocketAddr,
) -> rocket::Rocket<rocket::Build> {
    let metrics = Arc::new(Metrics::default());
    let config = rocket::Config {
        address: listen.ip(),
        port: listen.port(),
        log_level: rocket::config::LogLevel::Off,
        cli_colors: false,
        limits: rocket::data::Limits::default()
            .limit("bytes", rocket::data::ByteUnit::Kibibyte(64)),
        // No `Server: Rocket` header: nothing to fingerprint, fewer bytes per answer.
        ident: rocket::config::Ident::none(),
        ..rocket::Config::release_default()
    };
    // Of Rocket's default security headers keep `X-Content-Type-Options: nosniff` (the
    // bodies are DER and text); frame and FLoC policies mean nothing for these endpoints.
    let shield = rocket::shield::Shield::new().enable(rocket::shield::NoSniff::Enable);
    let mut rocket = rocket::custom(config)
        .attach(shield)
        .manage(Arc::clone(&pki))
        .manage(Arc::clone(&services.config))
        .manage(Arc::clone(&metrics))
        .attach(MetricsFairing(metrics))
        .attach(imza_ocsp::http::stage(Arc::clone(&services.ocsp)))
        .mount("/", routes![health, metrics, ca_certificate, crl])
        .register("/", rocket::catchers![plain_error]);
    rocket = rocket.attach(imza_tsa::http::stage(Arc::clone(&services.tsa)));
    rocket = rocket.attach(imza_signer::http::stage(crate::verify::serve_service(&pki)));
    rocket = rocket.attach(imza_mobile_sign::http::stage(Arc::clone(&services.mobile)));
    let maintained = Arc::clone(&services);
    let tick = std::time::Duration::from_secs(services.config.check_interval_seconds);
    rocket.attach(rocket::fairing::AdHoc::on_liftoff(
        "service maintenance",
        move |_| {
            Box::pin(async move {
                rocket::tokio::spawn(async move {
                    let mut ticks = rocket::tokio::time::interval(tick);
                    ticks.tick().await;
                    loop {
                        ticks.tick().await;
                        let services = Arc::clone(&maintained);
                        let pki = Arc::clone(&pki);
                        let _ =
                            rocket::tokio::task::spawn_blocking(move || services.maintain(&pki))
                                .await;
                    }
                });
            })
        },
    ))
}

pub fn run(data_dir: &Path, listen: SocketAddr, config: Option<&Path>) -> CliResult {
    let config = ServeConfig::load(config)?;
    let pki = Arc::new(open_pki(data_dir)?);
    let services = Arc::new(Services::start(&pki, config)?);
    let served: Vec<String> = services
        .ocsp
        .responder()
        .issuers()
        .map(|i| i.to_string())
        .collect();
    let tsa = if services.tsa.authority().is_some() {
        match (
            &services.config.tsa.clock_check_command,
            services.clock_check.check(pki.now()),
        ) {
            (None, _) => note("TSA clock check: none configured, the system clock is trusted"),
            (Some(_), Ok(())) => note("TSA clock check: synchronised"),
            (Some(_), Err(fault)) => note(format!(
                "TSA clock check fails, requests are refused until it passes: {fault:?}"
            )),
        }
        format!("TSA {:?}", services.config.tsa.name)
    } else {
        format!(
            "no usable TSA {:?} yet (imza tsa init; picked up within a minute)",
            services.config.tsa.name
        )
    };
    // Cache misses, nonce answers and CRLs run on the blocking pool. Tokio's default lets it
    // grow to 512 threads under load, which only adds context switches (and a heap per
    // thread) on a machine with a few cores: a few threads per core keep the CPUs busy.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(4 * cores)
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let ignited = rocket(pki, Arc::clone(&services), listen)
            .ignite()
            .await
            .map_err(|e| Failure::Input(format!("cannot serve on {listen}: {e}")))?;
        note(format!(
            "listening on http://{listen}: /ocsp for {} CA(s) [{}], /tsa with {tsa}, /verify, /mss/v1 (mobile signature), /ca/NAME.crt, /crl/NAME.crl, /health, /metrics",
            served.len(),
            served.join(", ")
        ));
        ignited
            .launch()
            .await
            .map(|_| ())
            .map_err(|e| Failure::Input(format!("cannot serve on {listen}: {e}")))
    })
}
