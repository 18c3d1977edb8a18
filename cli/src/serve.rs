//! `imza serve`: the HTTP front door, composed from the service crates on imza-http's
//! server (bounded connections and timeouts, see [`ServeConfig`]'s `[server]`):
//! - `POST /ocsp`, `GET /ocsp/{base64}` (imza-ocsp): every CA in the store, each answered by
//!   its delegated responder, issued here when missing and renewed before it expires;
//! - `POST /tsa` (imza-tsa): the newest usable time-stamping unit (`imza tsa init`);
//! - `POST /verify` (imza-signer): signature validation against the store's root CAs;
//! - `GET /ca/{name}.crt`, `GET /crl/{name}.crl`, and for a CA whose CRL is partitioned
//!   `GET /crl/{name}/{shard}.crl`: what the certificates point to (the CRLs are signed
//!   afresh by the `ca` role when none exists or a quarter of its validity is left);
//! - `/mss/v1/...` (imza-mobile-sign): the mobile signature service — relying parties ask for
//!   signatures and authentications, registered phones long-poll for them and answer;
//! - `GET /health`, Prometheus `GET /metrics`.
//!
//! Isolation: each service runs its blocking work within its own [`WorkLimit`] (bounded
//! concurrency and queue, 503 with `Retry-After` beyond) on threads of its own; `/verify`'s
//! run at a lower CPU priority. So a
//! flood of one kind of request — `/verify` waiting on slow revocation fetches or burning CPU
//! on crafted signatures, say — cannot take the threads or the CPU that OCSP signing, the
//! TSA, the mobile signature service or CRL serving need. The OCSP cache's revision poll runs
//! on a thread of its own with its own store connection: a revocation by `imza ca revoke` in
//! another process drops the cache within a second whatever the server is doing, and
//! `/health` says 503 when that poll stops completing.

mod citizen_records;
mod config;
mod mail;
mod metrics;
pub mod roles;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use time::{Duration, OffsetDateTime};

use const_oid::ObjectIdentifier;
use imza_ca::delegation::RequestOutcome;
use imza_ca::keyref::KeyBackend;
use imza_ca::services::DEFAULT_TSA_POLICY;
use imza_ca::store::{CaStore, CertificateStatus, ServiceKind};
use imza_ca::Pki;
use imza_core::cert::serial_hex;
use imza_core::clock::{from_x509_time, Clock, SystemClock};
use imza_http::admission::WorkError;
use imza_http::answer::{overloaded, plain};
use imza_http::{MemoryBudget, Server, ServerStats, Shutdown, TlsConfig, WorkLimit};
use imza_mobile_sign::service::MobileService;
use imza_ocsp::service::{CacheConfig, OcspService};
use imza_ocsp::{
    CertStatusInfo, CertificateStatusSource, IssuerId, OcspError, Responder, ResponderConfig,
    ServedCa, SourceError,
};
use imza_signer::http::{VerifyLimits, VerifyService};
use imza_tsa::http::TsaService;
use imza_tsa::{
    accuracy_seconds, ClockCheck, ClockCommand, CommandClockCheck, TimeStampAuthority,
    TrustSystemClock, TsaConfig,
};
use imza_validation::FetchCache;

use crate::ca::{open_pki, Home};
use crate::output::{CliResult, Failure};
pub use config::ServeConfig;
use metrics::Metrics;
use roles::{Role, Roles};

/// `/health` says 503 when the OCSP revision poll has not completed for this many of its
/// intervals: a revocation could then stay hidden behind the cache.
const POLL_STALL_INTERVALS: u32 = 4;

/// Blocking threads beyond the services' limits: store maintenance, DNS lookups, the odd
/// task that is nobody's.
const SPARE_BLOCKING_THREADS: usize = 8;

/// Every service's work limit, built once from the configuration.
pub struct Limits {
    ocsp: WorkLimit,
    tsa: WorkLimit,
    verify: VerifyLimits,
    /// `/crl/NAME.crl` and `/ca/NAME.crt`.
    publishing: WorkLimit,
    mobile: WorkLimit,
    /// The portal's store work and its logins' OCSP checks.
    portal: WorkLimit,
}

/// The nice value of `/verify`'s threads: validation is bulk work that takes only the CPU the
/// latency-sensitive services leave.
const VERIFY_NICE: i32 = 10;

impl Limits {
    /// The limits `config` asks for; every service with blocking work on threads of its own.
    fn new(config: &ServeConfig) -> Result<Limits, Failure> {
        let threads = |e: std::io::Error| {
            Failure::Internal(format!("cannot start the services' threads: {e}"))
        };
        Ok(Limits {
            ocsp: config
                .ocsp
                .admission()
                .own_threads("OCSP", "imza-ocsp", 2, 1024, 0)
                .map_err(threads)?,
            tsa: config.tsa.admission().limit("TSA", 1, 1024),
            verify: VerifyLimits {
                work: config
                    .verify
                    .admission()
                    .own_threads("signature validation", "imza-verify", 2, 64, VERIFY_NICE)
                    .map_err(threads)?,
                memory: MemoryBudget::new(config.verify.memory_mib * 1024 * 1024),
            },
            publishing: config
                .crl
                .admission()
                .own_threads("CRL and CA publishing", "imza-publish", 1, 32, 0)
                .map_err(threads)?,
            mobile: config
                .mobile
                .admission()
                .own_threads("mobile signature", "imza-mss", 2, 4096, 0)
                .map_err(threads)?,
            portal: config
                .portal
                .admission()
                .own_threads("portal", "imza-portal", 2, 1024, 0)
                .map_err(threads)?,
        })
    }

    fn all(&self) -> Vec<WorkLimit> {
        vec![
            self.ocsp.clone(),
            self.tsa.clone(),
            self.verify.work.clone(),
            self.publishing.clone(),
            self.mobile.clone(),
            self.portal.clone(),
        ]
    }

    /// Threads the shared blocking pool needs so that every service on it can use its whole
    /// limit at once (none, as built here: the TSA signs on the async workers, the others
    /// have threads of their own).
    fn blocking_threads(&self) -> usize {
        [
            &self.ocsp,
            &self.publishing,
            &self.mobile,
            &self.portal,
            &self.verify.work,
        ]
        .into_iter()
        .filter(|limit| limit.uses_shared_pool())
        .map(WorkLimit::concurrency)
        .sum::<usize>()
            + SPARE_BLOCKING_THREADS
    }
}

/// What the routes of `imza serve` itself share.
#[derive(Clone)]
struct ServeState {
    pki: Arc<Pki>,
    services: Arc<Services>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    server: Arc<ServerStats>,
    /// `/verify`'s outbound fetches, for `/metrics`.
    fetches: Arc<FetchCache>,
    /// `/verify`, with the `verify` role: built before the runtime starts, since it reads the
    /// store (a blocking PostgreSQL client must not run on a thread that drives Tokio).
    verify: Option<Arc<VerifyService>>,
    /// `/portal`, with the `portal` role where it may be served (HTTPS, or loopback).
    portal: Option<Arc<imza_portal::http::Portal>>,
}

/// 200 when the OCSP cache's revision poll completes on time and its last read of the store
/// worked; 503 otherwise, so a load balancer takes the node out (it keeps answering from the
/// responses already signed, until their nextUpdate, and `tryLater` for the rest). The poll
/// reads the store, so this also says the store is readable.
async fn health(State(state): State<ServeState>) -> Response<Body> {
    // No error details: paths and database messages are for the operator's log.
    let ocsp = &state.services.ocsp;
    let interval = ocsp.config().poll_interval;
    if ocsp.since_last_poll() > interval * POLL_STALL_INTERVALS {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "OCSP revision poll stalled",
        );
    }
    match ocsp.last_poll_error() {
        Some(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "OCSP status source unavailable",
        ),
        None => plain(StatusCode::OK, "ok"),
    }
}

async fn metrics_page(State(state): State<ServeState>) -> Response<Body> {
    let text = state.metrics.render(
        Some(&state.server),
        &state.limits.all(),
        Some(&state.fetches.stats()),
    );
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// A DER body of `media_type`.
fn der(media_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(bytes));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
    response
}

/// Runs store work for `/ca` and `/crl` within the publishing limit.
async fn publishing<T, F>(state: &ServeState, work: F) -> Result<T, Response<Body>>
where
    T: Send + 'static,
    F: FnOnce(&Pki) -> T + Send + 'static,
{
    let pki = Arc::clone(&state.pki);
    match state
        .limits
        .publishing
        .run_blocking(move || work(&pki))
        .await
    {
        Ok(result) => Ok(result),
        Err(WorkError::Overloaded(full)) => Err(overloaded(&full)),
        Err(WorkError::Failed { .. }) => Err(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request did not complete",
        )),
    }
}

/// `/ca/citizens.crt` → the CA certificate, DER (RFC 5280 §4.2.2.1 caIssuers).
async fn ca_certificate(
    State(state): State<ServeState>,
    UrlPath(file): UrlPath<String>,
) -> Response<Body> {
    let Some(name) = file.strip_suffix(".crt").map(str::to_string) else {
        return plain(StatusCode::NOT_FOUND, "expected /ca/NAME.crt");
    };
    let lookup = name.clone();
    match publishing(&state, move |pki| pki.store().ca(&lookup)).await {
        Ok(Ok(Some(ca))) => der("application/pkix-cert", ca.certificate),
        Ok(Ok(None)) => plain(StatusCode::NOT_FOUND, format!("no CA named {name:?}")),
        Ok(Err(e)) => unavailable(&format!("/ca/{name}.crt"), e),
        Err(refused) => refused,
    }
}

/// `/crl/citizens.crl` → the latest CRL the CA side stored, DER (RFC 5280 §4.2.1.13). A GET
/// never signs: CRLs are signed by the `ca` role on its schedule and by `imza ca crl`, so no
/// request can make a process use a CA key or build a CRL in memory.
async fn crl(State(state): State<ServeState>, UrlPath(file): UrlPath<String>) -> Response<Body> {
    let Some(name) = file.strip_suffix(".crl").map(str::to_string) else {
        return plain(StatusCode::NOT_FOUND, "expected /crl/NAME.crl");
    };
    published_crl(&state, name, None).await
}

/// `/crl/citizens/7.crl` → the latest stored CRL of shard 7 of a CA whose CRL is partitioned
/// (RFC 5280 §5.2.5; see `imza_ca::crl_shards`), the URL its certificates name.
async fn shard_crl(
    State(state): State<ServeState>,
    UrlPath((name, file)): UrlPath<(String, String)>,
) -> Response<Body> {
    let Some(shard) = file
        .strip_suffix(".crl")
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return plain(StatusCode::NOT_FOUND, "expected /crl/NAME/SHARD.crl");
    };
    published_crl(&state, name, Some(shard)).await
}

async fn published_crl(state: &ServeState, name: String, shard: Option<u32>) -> Response<Body> {
    let ca = name.clone();
    let path = match shard {
        Some(shard) => format!("/crl/{name}/{shard}.crl"),
        None => format!("/crl/{name}.crl"),
    };
    match publishing(state, move |pki| stored_crl(pki, &ca, shard)).await {
        Ok(Ok(Ok(crl))) => der("application/pkix-crl", crl),
        Ok(Ok(Err(missing))) => plain(StatusCode::NOT_FOUND, missing),
        Ok(Err(e @ imza_ca::CaError::UnknownCa { .. })) => {
            plain(StatusCode::NOT_FOUND, e.to_string())
        }
        Ok(Err(e)) => unavailable(&path, e),
        Err(refused) => refused,
    }
}

/// 503 for a store or signing failure: the details (paths, database messages) go to the
/// operator's log, not to the web.
fn unavailable(what: &str, error: impl std::fmt::Display) -> Response<Body> {
    note(format!("{what}: {error}"));
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what} is not available now"),
    )
}

/// The latest stored CRL of CA `name` (of its shard `shard`), or why there is none to serve.
fn stored_crl(
    pki: &Pki,
    name: &str,
    shard: Option<u32>,
) -> Result<Result<Vec<u8>, String>, imza_ca::CaError> {
    let shards = pki.ca(name)?.crl_shards;
    let found = match shard {
        None if shards > 1 => {
            return Ok(Err(format!(
                "CA {name:?} publishes its CRL in {shards} shards, /crl/{name}/0.crl to \
                 /crl/{name}/{}.crl; each certificate names its own",
                shards - 1
            )))
        }
        None => pki.store().latest_crl(name)?,
        Some(shard) if shard < shards => pki.store().latest_shard_crl(name, shard)?,
        Some(shard) => {
            return Ok(Err(format!("CA {name:?} has no CRL shard {shard}")));
        }
    };
    Ok(found
        .map(|crl| crl.der)
        .ok_or_else(|| format!("no CRL of CA {name:?} has been published yet")))
}

/// The `ca` role's CRL schedule: signs a new CRL into the store for every CA whose key opens
/// without a person (a PIN in the environment, a software key) when it has none or a quarter
/// of the latest's validity is left (a partitioned CA: all its shards, when any shard's is).
/// Several CA nodes may run it: the CRL number is unique in the store, so of two at once one
/// stores and the other is refused and notes it.
fn sign_due_crls(pki: &Pki, validity: Duration) {
    let cas = match pki.store().cas() {
        Ok(cas) => cas,
        Err(e) => return note(format!("CRL schedule: cannot read the store: {e}")),
    };
    let now = pki.now();
    let due_at = |(this_update, next_update): (OffsetDateTime, OffsetDateTime)| {
        now + (next_update - this_update) / 4 >= next_update
    };
    for ca in cas.iter().filter(|ca| ca.key.opens_unattended()) {
        // A partitioned CA's shards are signed together, when any of them is due.
        let due = match ca.crl_shards {
            0 | 1 => pki
                .store()
                .latest_crl(&ca.name)
                .map(|crl| crl.is_none_or(|c| due_at((c.this_update, c.next_update)))),
            shards => pki
                .store()
                .shard_crl_validity(&ca.name, shards)
                .map(|latest| latest.into_iter().any(|v| v.is_none_or(due_at))),
        };
        match due {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                note(format!("CRL schedule: CA {}: {e}", ca.name));
                continue;
            }
        }
        match pki
            .authority(&ca.name, None)
            .and_then(|authority| authority.sign_crls(validity, &mut |_, _| {}, &mut |_| {}))
        {
            Ok(run) if run.crls == 1 => note(format!(
                "CRL schedule: signed CRL {} of CA {} ({} entries)",
                run.numbers.0, ca.name, run.revoked
            )),
            Ok(run) => note(format!(
                "CRL schedule: signed the {} shard CRLs of CA {} (numbers {} to {}, {} entries)",
                run.crls, ca.name, run.numbers.0, run.numbers.1, run.revoked
            )),
            Err(e) => note(format!("CRL schedule: CA {}: {e}", ca.name)),
        }
    }
}

/// Answers "what is the status of serial S of CA I" from the CA store, for the OCSP responder
/// and the mobile signature service. The OCSP revision (the audit head the cache poll
/// watches) is read over a connection of its own, so the poll never waits behind other work
/// on the store's shared connection.
struct StoreStatus {
    pki: Arc<Pki>,
    /// `None`: the revision is read on the PKI's shared connection.
    revision: Option<Box<dyn CaStore>>,
}

impl StoreStatus {
    fn open(pki: &Arc<Pki>) -> Result<StoreStatus, Failure> {
        let revision = imza_ca::store::open(pki.store_url(), imza_store::Create::No)
            .map_err(|e| Failure::Internal(format!("OCSP revision poll: {e}")))?;
        Ok(StoreStatus {
            pki: Arc::clone(pki),
            revision: Some(revision),
        })
    }

    /// For a service that asks for status alone (the mobile signature service checks a
    /// certificate before it is used) and never polls the revision: no connection of its own.
    fn shared(pki: &Arc<Pki>) -> StoreStatus {
        StoreStatus {
            pki: Arc::clone(pki),
            revision: None,
        }
    }
}

impl CertificateStatusSource for StoreStatus {
    fn status(&self, issuer: &IssuerId, serial: &[u8]) -> Result<CertStatusInfo, OcspError> {
        match self.pki.store().status(issuer.as_str(), serial) {
            Ok(CertificateStatus::Issued) => Ok(CertStatusInfo::Good),
            Ok(CertificateStatus::Revoked { at, reason }) => Ok(CertStatusInfo::Revoked {
                at,
                reason: Some(reason),
            }),
            Ok(CertificateStatus::Unknown) => Ok(CertStatusInfo::Unknown),
            Err(e) => Err(OcspError::StatusUnavailable {
                issuer: issuer.to_string(),
                serial: hex::encode_upper(serial),
                source: SourceError::new(e),
            }),
        }
    }

    fn revision(&self) -> Result<u64, OcspError> {
        match &self.revision {
            Some(store) => store.audit_head(),
            None => self.pki.store().audit_head(),
        }
        .map_err(|e| OcspError::SourceUnavailable(SourceError::new(e)))
    }
}

/// Messages for the operator at start and when maintenance changes something.
fn note(message: impl std::fmt::Display) {
    eprintln!("imza serve: {message}");
}

/// The delegated responders of every CA whose certificate is valid now. On the CA node: issued
/// or renewed with the CA key when due (never prompting for a PIN), else the current one kept.
/// On a public node (`node`): the responder certified for it; when it has none or it is due,
/// a new key is made here and a request filed for the CA side to certify.
/// A public node makes new responder keys with `backend`.
fn ocsp_responders(
    pki: &Pki,
    roles: Roles,
    node: Option<&str>,
    backend: &KeyBackend,
) -> Result<Vec<ServedCa>, Failure> {
    // A process without the ocsp role (a portal node) answers no OCSP: no responder keys,
    // nothing asked of the CA side.
    if !roles.has(Role::Ocsp) {
        return Ok(Vec::new());
    }
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
        // Only a process with the ca role issues responders; a public node answers with the
        // ones certified for it.
        let responder = if let (false, Some(node)) = (pki.opens_ca_keys(), node) {
            node_service(pki, ServiceKind::Ocsp, &ca.name, node, backend)?
        } else if pki.opens_ca_keys() && ca.key.opens_unattended() {
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
            if let (false, Some(node)) = (pki.opens_ca_keys(), node) {
                note(format!(
                    "OCSP: CA {}: waiting for the CA side to certify node {node}'s responder \
                     (answers for it are 'unauthorized' until then)",
                    ca.name
                ));
                continue;
            }
            note(format!(
                "OCSP: CA {} has no responder and its key needs a PIN the server lacks; \
                 run imza ocsp init --ca {} (answers for it are 'unauthorized' until then)",
                ca.name, ca.name
            ));
            continue;
        };
        // A responder whose key is not on this machine (certified for another node) is not
        // served here; the others are.
        let key = match responder.open_key(pki) {
            Ok(key) => key,
            Err(e) => {
                note(format!(
                    "OCSP: CA {}: the responder's key is not usable here ({e}); not served",
                    ca.name
                ));
                continue;
            }
        };
        served.push(ServedCa {
            issuer: IssuerId::new(&ca.name),
            ca_certificate: ca.certificate.clone(),
            responder_certificate: responder.certificate.der.clone(),
            responder_key: Arc::from(key),
        });
    }
    Ok(served)
}

/// A public node's `kind` service named `name` (an OCSP responder: its CA's name): the
/// current one certified for `node`, after filing a request for a new one (its key made with
/// `backend`) when there is none or it is due for renewal (and none is open).
fn node_service(
    pki: &Pki,
    kind: ServiceKind,
    name: &str,
    node: &str,
    backend: &KeyBackend,
) -> Result<Option<imza_ca::ServiceCertificate>, Failure> {
    let current = pki.current_service_of(kind, name, Some(node))?;
    let due = current.as_ref().is_none_or(|c| {
        c.certificate.not_after - pki.now() <= imza_ca::services::renewal_margin(&c.certificate)
    });
    if due && pki.open_service_request(kind, name, node)?.is_none() {
        let what = match kind {
            ServiceKind::Ocsp => format!("OCSP responder key for CA {name}"),
            ServiceKind::Tsa => format!("key for TSA {name}"),
        };
        let requested = match kind {
            ServiceKind::Ocsp => pki.request_ocsp_responder(name, node, backend),
            ServiceKind::Tsa => pki.request_tsa_unit(name, node, backend),
        };
        match requested {
            Ok(request) => note(format!(
                "asked the CA side to certify a new {what} of node {node} (request {})",
                request.id
            )),
            Err(e) => note(format!("cannot request a {what}: {e}")),
        }
    }
    Ok(current)
}

/// The `ca` role's round of certifying the delegated responders public nodes asked for.
fn certify_requests(pki: &Pki) {
    match pki.certify_service_requests(None) {
        Ok(done) => {
            for (request, outcome) in done {
                let what = format!(
                    "{} request {} of node {} for {}",
                    request.kind.as_str(),
                    request.id,
                    request.node,
                    request.name
                );
                match outcome {
                    RequestOutcome::Certified { serial } => {
                        note(format!("{what}: certified ({})", serial_hex(&serial)))
                    }
                    RequestOutcome::Refused { reason } => {
                        note(format!("{what}: refused: {reason}"))
                    }
                    RequestOutcome::Deferred { reason } => {
                        note(format!("{what}: left open: {reason}"))
                    }
                }
            }
        }
        Err(e) => note(format!("certifying service requests: {e}")),
    }
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
    node: Option<&str>,
) -> Result<Option<(TimeStampAuthority, Vec<u8>)>, Failure> {
    // A public node stamps with a key of its own for the unit, certified by the CA side, while
    // the unit (created there with `imza tsa init`) is usable.
    let unit = match (pki.opens_ca_keys(), node) {
        (false, Some(_))
            if pki
                .current_service(ServiceKind::Tsa, &config.tsa.name)?
                .is_none() =>
        {
            None
        }
        (false, Some(node)) => node_service(
            pki,
            ServiceKind::Tsa,
            &config.tsa.name,
            node,
            &config.node.key_backend(),
        )?,
        _ => pki.current_service(ServiceKind::Tsa, &config.tsa.name)?,
    };
    let Some(unit) = unit else {
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
    /// With the `mss` role only.
    mobile: Option<Arc<MobileService>>,
    roles: Roles,
    /// What is being served now: the responder certificates, the TSA certificate's serial,
    /// and the store's audit head when they were last checked.
    served: Mutex<Served>,
    clock_check: Arc<dyn ClockCheck>,
    config: Arc<ServeConfig>,
    /// A public node's name (its delegated responders are certified for it); `None` on the
    /// CA node.
    node: Option<String>,
}

struct Served {
    responders: Vec<Vec<u8>>,
    tsa_serial: Option<Vec<u8>>,
    audit_head: u64,
    checked: std::time::Instant,
}

impl Services {
    pub fn start(
        pki: &Arc<Pki>,
        config: ServeConfig,
        limits: &Limits,
        roles: Roles,
        node: Option<String>,
    ) -> Result<Services, Failure> {
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
        // The head before the services are built: whatever changes after it (another node
        // certifying this one's responder meanwhile) is seen at the first check.
        let audit_head = pki.store().audit_head().map_err(imza_ca::CaError::from)?;
        let (responder, responders) = build_responder(
            ocsp_responders(pki, roles, node.as_deref(), &config.node.key_backend())?,
            &config,
        )?;
        let ocsp = Arc::new(OcspService::new(
            responder,
            Arc::new(StoreStatus::open(pki)?),
            Arc::clone(&clock),
            CacheConfig {
                max_entries: config.ocsp.cache_entries,
                max_bytes: config.ocsp.cache_mib * 1024 * 1024,
                ..CacheConfig::default()
            },
        ));
        let tsa_unit = match roles.has(Role::Tsa) {
            true => build_tsa(pki, &config, &clock_check, node.as_deref())?,
            false => None,
        };
        let (tsa, tsa_serial) = match tsa_unit {
            Some((authority, serial)) => {
                (TsaService::new(authority, Arc::clone(&clock)), Some(serial))
            }
            None => (TsaService::unavailable(Arc::clone(&clock)), None),
        };
        let mobile = match roles.has(Role::Mss) {
            false => None,
            true => {
                let mobile_store = imza_mobile_sign::store::open(pki.store_url())
                    .map_err(|e| Failure::Internal(format!("mobile signature service: {e}")))?;
                Some(Arc::new(MobileService::new(
                    mobile_store,
                    Arc::new(StoreStatus::shared(pki)),
                    Arc::clone(&clock),
                    config.mobile.service_config(limits.mobile.clone()),
                )))
            }
        };
        Ok(Services {
            ocsp,
            tsa: Arc::new(tsa),
            mobile,
            roles,
            served: Mutex::new(Served {
                responders,
                tsa_serial,
                audit_head,
                checked: std::time::Instant::now(),
            }),
            clock_check,
            config: Arc::new(config),
            node,
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
        let backend = self.config.node.key_backend();
        let built = ocsp_responders(pki, self.roles, self.node.as_deref(), &backend)
            .and_then(|s| build_responder(s, &self.config));
        match built {
            Ok((responder, responders)) if responders != served.responders => {
                self.ocsp.replace_responder(responder);
                served.responders = responders;
                note("OCSP: now answering with new responder certificates");
            }
            Ok(_) => {}
            Err(e) => note(format!("OCSP maintenance failed: {}", e.message())),
        }
        let tsa = match self.roles.has(Role::Tsa) {
            true => build_tsa(pki, &self.config, &self.clock_check, self.node.as_deref()),
            false => Ok(None),
        };
        match tsa {
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
        // The head read before the rebuild: a change made meanwhile (another node certifying a
        // responder for this one) is seen at the next check. Recording the head after the
        // rebuild would lose it; this node's own writes only cost one more rebuild that finds
        // nothing new.
        served.audit_head = head;
        served.checked = std::time::Instant::now();
    }
}

/// How often responders are checked for renewal when nothing else changed.
const RENEWAL_PERIOD: std::time::Duration = std::time::Duration::from_secs(3600);

/// The routes `imza serve` answers for its roles, with the shutdown that long polls listen to.
fn router(state: ServeState, shutdown: &Shutdown) -> Router {
    let services = &state.services;
    let limits = &state.limits;
    let roles = services.roles;
    let mut own = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_page));
    if roles.has(Role::Publish) {
        own = own
            .route("/ca/{file}", get(ca_certificate))
            .route("/crl/{file}", get(crl))
            .route("/crl/{ca}/{file}", get(shard_crl));
    }
    let mut routes = Router::new().merge(own.with_state(state.clone()));
    if roles.has(Role::Ocsp) {
        routes = routes.merge(imza_ocsp::http::routes(
            Arc::clone(&services.ocsp),
            limits.ocsp.clone(),
        ));
    }
    if roles.has(Role::Tsa) {
        routes = routes.merge(imza_tsa::http::routes(
            Arc::clone(&services.tsa),
            limits.tsa.clone(),
        ));
    }
    if let Some(verify) = &state.verify {
        routes = routes.merge(imza_signer::http::routes(
            Arc::clone(verify),
            limits.verify.clone(),
        ));
    }
    if let Some(mobile) = &services.mobile {
        routes = routes.merge(imza_mobile_sign::http::routes(
            Arc::clone(mobile),
            shutdown.clone(),
        ));
    }
    if let Some(portal) = &state.portal {
        routes = routes.merge(imza_portal::http::routes(Arc::clone(portal)));
    }
    routes
        .fallback(|| async { plain(StatusCode::NOT_FOUND, "404 Not Found") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::record,
        ))
}

/// Starts what runs beside the routes until `shutdown`: the OCSP cache upkeep (threads of
/// its own), the mobile signature clean-up, and the store maintenance every
/// `check_interval_seconds`.
fn start_background(state: &ServeState, shutdown: &Shutdown) -> Result<(), Failure> {
    let services = &state.services;
    imza_ocsp::http::start_upkeep(&services.ocsp, shutdown)
        .map_err(|e| Failure::Internal(format!("cannot start the OCSP cache upkeep: {e}")))?;
    if let Some(mobile) = &services.mobile {
        imza_mobile_sign::http::spawn_purge(Arc::clone(mobile), shutdown.clone());
    }
    if let Some(portal) = &state.portal {
        imza_portal::http::spawn_purge(
            Arc::clone(portal),
            shutdown.clone(),
            std::time::Duration::from_secs(services.config.portal.purge_interval_seconds),
        );
        imza_portal::http::spawn_notices(
            Arc::clone(portal),
            shutdown.clone(),
            std::time::Duration::from_secs(services.config.portal.notice_interval_seconds),
        );
    }
    let maintained = Arc::clone(services);
    let pki = Arc::clone(&state.pki);
    let tick = std::time::Duration::from_secs(services.config.check_interval_seconds);
    let crl_validity = Duration::hours(services.config.crl.validity_hours.into());
    let signs_crls = services.roles.has(Role::Ca);
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        // The first tick is at once; `run` did that round before serving.
        let mut ticks = tokio::time::interval(tick);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let services = Arc::clone(&maintained);
            let pki = Arc::clone(&pki);
            let _ = tokio::task::spawn_blocking(move || {
                if signs_crls {
                    certify_requests(&pki);
                    sign_due_crls(&pki, crl_validity);
                }
                services.maintain(&pki)
            })
            .await;
        }
    });
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT (Ctrl-C).
fn stop_on_signals(shutdown: &Shutdown) -> Result<(), Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let cannot = |e: std::io::Error| Failure::Internal(format!("cannot handle signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(cannot)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(cannot)?;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        shutdown.cancel();
    });
    Ok(())
}

/// The portal's device-certificate login: certificates under the policies of the PKI's
/// `device-auth` profile, chaining to the PKI's own root CAs (its other CAs as
/// intermediates), OCSP at the certificate's AIA asked at every login.
fn device_login(pki: &Pki) -> Result<imza_portal::device::DeviceLogin, Failure> {
    let policies = pki.profiles().get("device-auth")?.policies.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let trust = pki_authentication_trust(pki, &clock)?;
    Ok(imza_portal::device::DeviceLogin::new(
        policies, trust, clock,
    ))
}

/// What the portal's logins trust: the PKI's own root CAs as anchors, its other CAs as
/// intermediates, revocation (OCSP at the certificate's AIA) fetched with a 5 s timeout.
fn pki_authentication_trust(
    pki: &Pki,
    clock: &Arc<dyn Clock>,
) -> Result<imza_validation::AuthenticationTrust, Failure> {
    use imza_http::HttpClient;
    use imza_validation::{AuthenticationTrust, Certificate};
    let mut anchors = Vec::new();
    let mut intermediates = Vec::new();
    for ca in pki.store().cas().map_err(imza_ca::CaError::from)? {
        let certificate = Certificate::from_der(ca.certificate)
            .map_err(|e| Failure::Internal(format!("CA {}: {e}", ca.name)))?;
        match ca.parent {
            None => anchors.push(certificate),
            Some(_) => intermediates.push(certificate),
        }
    }
    let mut trust = AuthenticationTrust::new(
        anchors,
        Box::new(HttpClient {
            timeout: std::time::Duration::from_secs(5),
            ..HttpClient::default()
        }),
        Arc::clone(clock),
    );
    for intermediate in intermediates {
        trust.add_intermediate(intermediate);
    }
    Ok(trust)
}

/// Where `--tls-cert`, `--tls-key` and `--tls-client-cas` point.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cas: Option<PathBuf>,
}

impl TlsFiles {
    fn load(&self) -> Result<TlsConfig, Failure> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| Failure::Input(format!("{what} {}: {e}", path.display())))
        };
        // A private key others can read is refused, as the CA's key files are kept 0600.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.key)
            .map_err(|e| Failure::Input(format!("--tls-key {}: {e}", self.key.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Failure::Input(format!(
                "--tls-key {}: others can read it (mode {:o}); chmod 600 it",
                self.key.display(),
                mode & 0o777
            )));
        }
        let client_cas = match &self.client_cas {
            Some(path) => Some(read(path, "--tls-client-cas")?),
            None => None,
        };
        TlsConfig::new(
            &read(&self.cert, "--tls-cert")?,
            &zeroize::Zeroizing::new(read(&self.key, "--tls-key")?),
            client_cas.as_deref(),
        )
        .map_err(Failure::Input)
    }
}

/// The address this server is reached at from this host: a wildcard listen address is
/// reached on loopback.
fn own_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        ip if ip.is_unspecified() && listen.is_ipv4() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, listen.port()))
        }
        ip if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

/// The portal's phone and QR logins from `[portal]` (see `config.rs`): the phone CAs'
/// authentication certificates validated against the store's roots with OCSP; the phone
/// login only when the signature service is known and the API key's variable is set (its
/// value is never printed). Without `[portal] origin`, the origin and the signature service
/// are this server's own (on loopback for a wildcard `listen`).
/// The agency's e-seal from `[portal.seal]`: its certificate and chain, its key (a PKCS#11
/// token's, the PIN from the environment, or a key file), the TSA, and the store's roots for
/// the documents' DSS.
fn sealer(
    pki: &Pki,
    section: &config::SealSection,
    own_tsa: Option<String>,
    origin: String,
    fetches: &Arc<FetchCache>,
) -> Result<imza_portal::document::Sealer, Failure> {
    use imza_core::key::pkcs11::{PinSource, Pkcs11Key, Pkcs11Location};
    use imza_core::key::software::SoftwareKey;
    let seal = |e: String| Failure::Input(format!("[portal.seal] {e}"));
    let certificate = crate::output::read_certificate_ders(&section.certificate, "certificate")?;
    let [certificate] = <[Vec<u8>; 1]>::try_from(certificate)
        .map_err(|_| seal("certificate must hold the seal's certificate alone".into()))?;
    let chain = match &section.chain {
        Some(path) => crate::output::read_certificate_ders(path, "chain")?,
        None => Vec::new(),
    };
    let key: Box<dyn imza_core::SigningKey> = match (&section.key, &section.pkcs11_module) {
        (Some(path), _) => Box::new(SoftwareKey::load_pem(path)?),
        (None, Some(module)) => {
            let location = Pkcs11Location {
                module: module.clone(),
                token_label: section.pkcs11_token.clone().unwrap_or_default(),
                key_label: section.pkcs11_key_label.clone().unwrap_or_default(),
            };
            let pin = match &section.pkcs11_pin_env {
                Some(var) => PinSource::Env(var.clone()),
                None => {
                    return Err(seal(
                        "pkcs11_pin_env names the variable holding the PIN".into(),
                    ))
                }
            };
            Box::new(Pkcs11Key::open(&location, &pin)?)
        }
        (None, None) => return Err(seal("needs key or pkcs11_module".into())),
    };
    let credentials =
        imza_signer::Credentials::new(key, certificate, chain).map_err(|e| seal(e.to_string()))?;
    let tsa_url = section
        .tsa_url
        .clone()
        .or(own_tsa)
        .ok_or_else(|| seal("needs tsa_url (no tsa role here)".into()))?;
    let trust_anchors = pki
        .store()
        .cas()
        .map_err(|e| Failure::Internal(format!("portal: {e}")))?
        .into_iter()
        .filter(|ca| ca.parent.is_none())
        .map(|ca| ca.certificate)
        .collect();
    note(format!(
        "portal: documents issued by {:?}, sealed by {} at B-LTA (TSA {tsa_url})",
        section.agency,
        credentials.subject()
    ));
    Ok(imza_portal::document::Sealer {
        agency: section.agency.clone(),
        credentials,
        timestamper: imza_signer::HttpTimestamper::new(tsa_url),
        trust_anchors,
        fetch_cache: Arc::clone(fetches),
        origin,
    })
}

fn portal_phone_logins(
    pki: &Pki,
    config: &config::PortalSection,
    mss_here: bool,
    listen: SocketAddr,
    tls: bool,
) -> Result<Arc<imza_portal::phone::PhoneLogins>, Failure> {
    use imza_validation::Certificate;
    let own = default_origin(own_address(listen), tls);
    if config.origin.is_none() && listen.ip().is_unspecified() {
        note(format!(
            "portal: the QR login's links name {own}, which phones elsewhere cannot reach: set \
             [portal] origin to the portal's public origin"
        ));
    }
    let mut phone_issuers = Vec::new();
    for name in &config.phone_cas {
        match pki.ca(name).map(|r| Certificate::from_der(r.certificate)) {
            Ok(Ok(cert)) => phone_issuers.push(cert.subject_text()),
            _ => note(format!(
                "portal: phone CA {name:?} is not in the store; its phones cannot log in by QR"
            )),
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let trust = pki_authentication_trust(pki, &clock)?;
    let mss_url = config
        .mss_url
        .clone()
        .or_else(|| mss_here.then(|| own.clone()));
    let key = std::env::var(&config.mss_api_key_env)
        .ok()
        .filter(|k| !k.is_empty())
        .map(zeroize::Zeroizing::new);
    let mss = match (mss_url, key) {
        (Some(url), Some(key)) => Some(
            imza_mobile_sign::client::MssClient::new(&url, &config.mss_relying_party, &key)
                .map_err(|e| Failure::Input(format!("[portal] mss: {e}")))?,
        ),
        (None, _) => {
            note("portal: no phone login: no [portal] mss_url and no mss role here");
            None
        }
        (Some(_), None) => {
            note(format!(
                "portal: no phone login: {} is not set (the portal's API key at the signature \
                 service)",
                config.mss_api_key_env
            ));
            None
        }
    };
    Ok(Arc::new(imza_portal::phone::PhoneLogins {
        origin: config.origin.clone().unwrap_or(own),
        name: config.name.clone(),
        mss,
        trust,
        phone_issuers,
    }))
}

pub fn run(
    home: &Home,
    listen: SocketAddr,
    config: Option<&Path>,
    roles: Roles,
    node: Option<String>,
    tls: Option<TlsFiles>,
) -> CliResult {
    let config = ServeConfig::load(config)?;
    // An address that cannot be listened on (a port in use, most often) is refused before
    // anything is done or said: no responder certificate issued, one line of error.
    drop(std::net::TcpListener::bind(listen).map_err(|e| cannot_serve(listen, e))?);
    // Client certificates are asked for only with --tls-client-cas: the device login needs them.
    let asks_for_client_certificates = tls.as_ref().is_some_and(|t| t.client_cas.is_some());
    let tls = tls.as_ref().map(TlsFiles::load).transpose()?;
    let tls_on = tls.is_some();
    // The portal's cookies and logins want HTTPS: plain HTTP only on loopback, for development.
    let portal_here = roles.has(Role::Portal) && (tls.is_some() || listen.ip().is_loopback());
    if roles.has(Role::Portal) && !portal_here {
        note(format!(
            "portal: not served on {listen} without --tls-cert (plain HTTP is for loopback only)"
        ));
    }
    let pki = open_pki(home)?;
    // Without the ca role nothing in this process may open a CA key.
    let pki = Arc::new(match roles.has(Role::Ca) {
        true => pki,
        false => pki.without_ca_keys(),
    });
    // The CA node's responders are its own (no node); a public node's are certified for it.
    let node = match roles.has(Role::Ca) {
        true => None,
        false => Some(node.unwrap_or_else(roles::host_node_name)),
    };
    if roles.has(Role::Ca) {
        // A CA node certifies what nodes asked for and publishes missing or due CRLs before it
        // serves anything.
        certify_requests(&pki);
        sign_due_crls(&pki, Duration::hours(config.crl.validity_hours.into()));
    }
    let limits = Arc::new(Limits::new(&config)?);
    let connection_limits = config.server.clone();
    let idle_timeout = connection_limits.idle_timeout_seconds;
    let verify_fetches = config.verify.fetch_cache();
    // Everything that reads the store at start is done here, off the runtime's threads.
    let fetches = Arc::new(FetchCache::new(verify_fetches, Arc::new(SystemClock)));
    // The portal (its stores opened, the device login's trust read) before the services: once
    // the OCSP service exists, /health counts the time to its first revision poll, and store
    // work at start should not eat into it.
    let portal = match portal_here {
        true => {
            let store = imza_portal::store::open(pki.store_url())
                .map_err(|e| Failure::Internal(format!("portal: {e}")))?;
            let mut portal = imza_portal::http::Portal::new(store, Arc::new(SystemClock));
            portal.work = limits.portal.clone();
            portal.login_limits =
                imza_portal::login_limits::LoginLimits::new(config.portal.login_limits());
            portal.card = card_login(&pki, &config.portal, listen, tls_on, &fetches)?;
            portal.phone = Some(portal_phone_logins(
                &pki,
                &config.portal,
                roles.has(Role::Mss),
                listen,
                tls_on,
            )?);
            if asks_for_client_certificates {
                portal.device = Some(Arc::new(device_login(&pki)?));
            }
            // The cabinet's view of the mobile signature and CA records: handles of their
            // own on the same store.
            let unavailable = |e: imza_store::StoreError| {
                crate::output::store_failure(e).with_context("portal".into())
            };
            portal.records = Some(Arc::new(citizen_records::StoreCitizenRecords {
                mobile: imza_mobile_sign::store::open(pki.store_url()).map_err(unavailable)?,
                ca: Arc::from(
                    imza_ca::store::open(pki.store_url(), imza_store::Create::No)
                        .map_err(unavailable)?,
                ),
            }));
            if let Some(path) = &config.portal.citizens {
                let registry = imza_portal::registry::TomlCitizenRegistry::load(path)
                    .map_err(|e| Failure::Input(format!("[portal] citizens: {e}")))?;
                note(format!(
                    "portal: {} citizens from {}",
                    registry.len(),
                    path.display()
                ));
                portal.registry = Some(Arc::new(registry));
            }
            if let Some(section) = &config.portal.mail {
                let mailer = mail::SmtpMailer::new(section).map_err(Failure::Input)?;
                note(format!(
                    "portal: expiry notices mailed through {}:{}{}",
                    section.host,
                    section.port,
                    if section.starttls { " (STARTTLS)" } else { "" }
                ));
                portal.mailer = Some(Arc::new(mailer));
            }
            if let Some(section) = &config.portal.seal {
                let own_tsa = roles
                    .has(Role::Tsa)
                    .then(|| format!("{}/tsa", default_origin(own_address(listen), tls_on)));
                portal.sealer = Some(Arc::new(sealer(
                    &pki,
                    section,
                    own_tsa,
                    portal_origin(&config.portal, listen, tls_on),
                    &fetches,
                )?));
            }
            portal.verifier = Some(Arc::new(imza_signer::SignatureVerifier::new(
                &crate::verify::serve_verify_options(&pki, Arc::clone(&fetches)),
            )));
            portal.checkers = config
                .portal
                .checkers
                .iter()
                .filter_map(|c| {
                    let digest: [u8; 32] = hex::decode(&c.api_key_sha256).ok()?.try_into().ok()?;
                    Some(imza_portal::http::documents::Checker {
                        name: c.name.clone(),
                        key_sha256: digest,
                    })
                })
                .collect();
            Some(Arc::new(portal))
        }
        false => None,
    };
    let services = Arc::new(Services::start(&pki, config, &limits, roles, node)?);
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
    // The services run their blocking work on threads of their own; Tokio's blocking pool is
    // left the spare few the rest needs (store maintenance, DNS lookups).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(limits.blocking_threads())
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the runtime: {e}")))?;
    let verify = roles.has(Role::Verify).then(|| {
        Arc::new(VerifyService::new(
            &crate::verify::serve_verify_options(&pki, Arc::clone(&fetches)),
            Arc::new(SystemClock),
        ))
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    runtime.block_on(async move {
        let mut server = Server::bind(listen, connection_limits)
            .await
            .map_err(|e| cannot_serve(listen, e))?;
        if let Some(tls) = tls {
            server = server.with_tls(tls);
        }
        let shutdown = server.shutdown();
        let state = ServeState {
            pki,
            services,
            limits,
            metrics: Arc::new(Metrics::default()),
            server: server.stats(),
            fetches,
            verify,
            portal,
        };
        stop_on_signals(&shutdown)?;
        start_background(&state, &shutdown)?;
        let routes = router(state, &shutdown);
        note(format!(
            "listening on {scheme}://{listen} with roles {roles}: /ocsp for {} CA(s) [{}], /tsa with {tsa}, /verify, /mss/v1 (mobile signature), /portal, /ca/NAME.crt, /crl/NAME.crl (each with its role), /health, /metrics",
            served.len(),
            served.join(", ")
        ));
        note(format!(
            "connections: at most {} open (open-file limit {}), idle timeout {} s",
            server.max_connections(),
            server
                .open_file_limit()
                .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
            idle_timeout,
        ));
        server
            .serve(routes)
            .await
            .map_err(|e| Failure::Internal(format!("serving on {listen} failed: {e}")))
    })
}

/// Listening on `listen` failed: a port in use is the environment's (3), an address this host
/// does not have the operator's (2).
fn cannot_serve(listen: SocketAddr, e: std::io::Error) -> Failure {
    crate::output::io_class(&e, format!("cannot serve on {listen}: {e}"))
}

/// The portal's ID-card login, unless `[portal] card_login = false`: tokens signed over the
/// portal's public origin (`[portal] origin`, else this server's own), certificates carrying
/// a policy of `[portal] card_profile`, chaining to the store's root CAs (its other CAs as
/// intermediates) with OCSP required, revocation fetched through the process's `fetches`.
fn card_login(
    pki: &Pki,
    config: &config::PortalSection,
    listen: SocketAddr,
    tls: bool,
    fetches: &Arc<FetchCache>,
) -> Result<Option<imza_portal::http::CardLoginConfig>, Failure> {
    if !config.card_login {
        return Ok(None);
    }
    let origin = match &config.origin {
        Some(origin) => origin.clone(),
        // A wildcard address names no site a browser could be on.
        None if listen.ip().is_unspecified() => {
            note(format!(
                "portal: the card login is off: set [portal] origin to the portal's public \
                 origin (listening on {listen} says nothing of it)"
            ));
            return Ok(None);
        }
        None => default_origin(listen, tls),
    };
    let policies = pki
        .profiles()
        .get(&config.card_profile)
        .map_err(|e| Failure::Input(format!("[portal] card_profile: {e}")))?
        .policies
        .clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let trust = pki_authentication_trust(pki, &clock)?;
    let login = imza_portal::card::CardLogin::new(&origin, policies, trust, clock)
        .map_err(|e| Failure::Input(format!("[portal] origin: {e}")))?
        .with_fetch_cache(Arc::clone(fetches));
    imza_portal::http::CardLoginConfig::new(login, &config.agent)
        .map(Some)
        .map_err(|e| Failure::Input(format!("[portal] agent: {e}")))
}

/// The portal's public origin: `[portal] origin`, else the one browsers see for `listen`.
fn portal_origin(config: &config::PortalSection, listen: SocketAddr, tls: bool) -> String {
    config
        .origin
        .clone()
        .unwrap_or_else(|| default_origin(own_address(listen), tls))
}

/// The origin browsers see for a server on `listen` (RFC 6454 §6.2: the scheme's default port
/// is left out).
fn default_origin(listen: SocketAddr, tls: bool) -> String {
    let (scheme, default_port) = if tls { ("https", 443) } else { ("http", 80) };
    let host = match listen.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    if listen.port() == default_port {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{}", listen.port())
    }
}

#[cfg(test)]
mod portal_origin_tests {
    use super::default_origin;

    #[test]
    fn the_default_origin_is_what_browsers_send() {
        let at = |s: &str| s.parse().unwrap();
        assert_eq!(
            default_origin(at("127.0.0.1:8443"), true),
            "https://127.0.0.1:8443"
        );
        assert_eq!(default_origin(at("10.0.0.5:443"), true), "https://10.0.0.5");
        assert_eq!(
            default_origin(at("127.0.0.1:80"), false),
            "http://127.0.0.1"
        );
        assert_eq!(default_origin(at("[::1]:8443"), true), "https://[::1]:8443");
    }
}
