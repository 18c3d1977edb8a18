//! `imza serve`: the HTTP front door (Rocket). For now it publishes what the certificates point
//! to: `GET /ca/{name}.crt` (the CA certificate, DER) and `GET /crl/{name}.crl` (the latest
//! CRL, DER, signed afresh when none exists or nextUpdate is near), plus `GET /health` and
//! Prometheus `GET /metrics`. OCSP and TSA routes join in the same issue.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::{get, routes, Data, Request, Response, State};
use time::Duration;

use imza_ca::Pki;

use crate::ca::open_pki;
use crate::output::{CliResult, Failure};

/// Validity of a CRL the server signs on its own.
const SERVED_CRL_VALIDITY: Duration = Duration::hours(24);

/// Per-endpoint request counts and latency histograms, in Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<BTreeMap<(String, u16), Series>>,
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
        let series = map.entry((endpoint.to_string(), status)).or_default();
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
        for ((endpoint, status), s) in &map {
            out.push_str(&format!(
                "imza_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {}\n",
                s.count
            ));
        }
        out.push_str("# HELP imza_http_request_duration_seconds Time to answer, by endpoint.\n");
        out.push_str("# TYPE imza_http_request_duration_seconds histogram\n");
        let mut by_endpoint: BTreeMap<&str, Series> = BTreeMap::new();
        for ((endpoint, _), s) in &map {
            let e = by_endpoint.entry(endpoint.as_str()).or_default();
            e.count += s.count;
            e.sum_seconds += s.sum_seconds;
            for i in 0..BUCKETS.len() {
                e.buckets[i] += s.buckets[i];
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

#[get("/health")]
fn health(pki: &State<Arc<Pki>>) -> (Status, &'static str) {
    match pki.store().cas() {
        Ok(_) => (Status::Ok, "ok\n"),
        Err(_) => (Status::ServiceUnavailable, "store unavailable\n"),
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
) -> Result<(ContentType, Vec<u8>), (Status, String)> {
    let name = file
        .strip_suffix(".crl")
        .ok_or((Status::NotFound, "expected /crl/NAME.crl\n".to_string()))?
        .to_string();
    let pki = Arc::clone(pki.inner());
    let result = rocket::tokio::task::spawn_blocking(move || current_crl(&pki, &name)).await;
    match result {
        Ok(Ok(der)) => Ok((ContentType::new("application", "pkix-crl"), der)),
        Ok(Err(e)) if matches!(e, imza_ca::CaError::UnknownCa { .. }) => {
            Err((Status::NotFound, format!("{e}\n")))
        }
        Ok(Err(e)) => Err((Status::ServiceUnavailable, format!("{e}\n"))),
        Err(_) => Err((Status::InternalServerError, "CRL task failed\n".into())),
    }
}

fn current_crl(pki: &Pki, name: &str) -> Result<Vec<u8>, imza_ca::CaError> {
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
        .sign_crl(SERVED_CRL_VALIDITY, &mut |_, _| {})?
        .record
        .der)
}

/// A plain-text error body for every status no route answered (404, 413, 422 ...).
#[rocket::catch(default)]
fn plain_error(status: Status, _: &Request<'_>) -> String {
    format!("{status}\n")
}

/// Builds the Rocket instance serving `pki` on `listen`.
pub fn rocket(pki: Arc<Pki>, listen: SocketAddr) -> rocket::Rocket<rocket::Build> {
    let metrics = Arc::new(Metrics::default());
    let config = rocket::Config {
        address: listen.ip(),
        port: listen.port(),
        log_level: rocket::config::LogLevel::Off,
        cli_colors: false,
        limits: rocket::data::Limits::default()
            .limit("bytes", rocket::data::ByteUnit::Kibibyte(64)),
        ..rocket::Config::release_default()
    };
    rocket::custom(config)
        .manage(pki)
        .manage(Arc::clone(&metrics))
        .attach(MetricsFairing(metrics))
        .mount("/", routes![health, metrics, ca_certificate, crl])
        .register("/", rocket::catchers![plain_error])
}

pub fn run(data_dir: &Path, listen: SocketAddr) -> CliResult {
    let pki = Arc::new(open_pki(data_dir)?);
    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let ignited = rocket(pki, listen).ignite().await.map_err(|e| Failure::Input(format!("cannot serve on {listen}: {e}")))?;
        eprintln!("imza serve: listening on http://{listen} (health, metrics, /ca/NAME.crt, /crl/NAME.crl)");
        ignited.launch().await.map(|_| ()).map_err(|e| Failure::Input(format!("cannot serve on {listen}: {e}")))
    })
}
