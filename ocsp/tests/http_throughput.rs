//! Throughput of the OCSP routes under `wrk` on loopback: cached answers (nonce-less POST and
//! GET) and live-signed answers (nonce POST, P-256). Ignored by default — it measures the
//! machine, not correctness. Run alone, in release:
//!
//! ```text
//! cargo test -p imza-ocsp --release --test http_throughput -- --ignored --nocapture
//! ```
//!
//! `IMZA_WRK_SECONDS` (default 10), `IMZA_WRK_CONNECTIONS` (default 32) and
//! `IMZA_WRK_THREADS` (default 1) tune wrk. Each run prints wrk's report and requests/s; a
//! run must also answer without socket errors or non-2xx statuses.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use common::{ocsp_request, path_str, LiveSource, Pki};
use imza_core::clock::SystemClock;
use imza_ocsp::http::stage;
use imza_ocsp::{CacheConfig, CertificateStatusSource, OcspService};
use rocket::fairing::AdHoc;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Starts the server on its own thread and runtime; returns the port. The thread ends with
/// the test process.
fn launch(service: Arc<OcspService>) -> u16 {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let config = rocket::Config {
                address: Ipv4Addr::LOCALHOST.into(),
                port: 0,
                log_level: rocket::config::LogLevel::Off,
                cli_colors: false,
                ..rocket::Config::release_default()
            };
            let _ = rocket::custom(config)
                .attach(stage(service))
                .attach(AdHoc::on_liftoff("port", move |rocket| {
                    Box::pin(async move {
                        let _ = tx.send(rocket.config().port);
                    })
                }))
                .launch()
                .await;
        });
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap()
}

/// Runs wrk against `url` (POSTing `body` when given) and returns requests per second.
fn wrk(pki: &Pki, name: &str, url: &str, body: Option<&[u8]>) -> f64 {
    let seconds = env_or("IMZA_WRK_SECONDS", "10");
    let connections = env_or("IMZA_WRK_CONNECTIONS", "32");
    let threads = env_or("IMZA_WRK_THREADS", "1");
    let mut args = vec![
        "-t".to_string(),
        threads,
        "-c".into(),
        connections,
        "-d".into(),
        format!("{seconds}s"),
    ];
    if let Some(body) = body {
        let body_file = pki.path(&format!("{name}.req"));
        std::fs::write(&body_file, body).unwrap();
        let script = pki.path(&format!("{name}.lua"));
        std::fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\n\
                 wrk.headers[\"Content-Type\"] = \"application/ocsp-request\"\n\
                 local f = io.open(\"{}\", \"rb\")\n\
                 wrk.body = f:read(\"*a\")\n\
                 f:close()\n",
                path_str(&body_file)
            ),
        )
        .unwrap();
        args.extend(["-s".to_string(), path_str(&script).to_string()]);
    }
    args.push(url.to_string());
    let out = Command::new("wrk")
        .args(&args)
        .output()
        .expect("cannot run wrk");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("--- {name}\n{report}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("Non-2xx") && !report.contains("Socket errors"),
        "{report}"
    );
    report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
fn wrk_cached_and_nonce_throughput() {
    let pki = Pki::new();
    let source = Arc::new(LiveSource::of(&pki));
    let service = Arc::new(OcspService::new(
        pki.responder(),
        Arc::clone(&source) as Arc<dyn CertificateStatusSource>,
        Arc::new(SystemClock),
        CacheConfig::default(),
    ));
    let port = launch(Arc::clone(&service));
    let base = format!("http://127.0.0.1:{port}");

    let plain = ocsp_request(&pki.ca.der, &[&pki.good.serial], None);
    let cached_post = wrk(&pki, "cached POST", &format!("{base}/ocsp"), Some(&plain));
    // Only the requests in flight before the first answer was cached asked the source (misses
    // are not coalesced): at most one per connection.
    let connections: usize = env_or("IMZA_WRK_CONNECTIONS", "32").parse().unwrap();
    assert!(source.calls() <= connections, "{} lookups", source.calls());
    let encoded = Base64::encode_string(&plain)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let cached_get = wrk(&pki, "cached GET", &format!("{base}/ocsp/{encoded}"), None);

    let with_nonce = ocsp_request(&pki.ca.der, &[&pki.good.serial], Some(&[0x5a; 32]));
    let calls = source.calls();
    let nonce_post = wrk(
        &pki,
        "nonce POST",
        &format!("{base}/ocsp"),
        Some(&with_nonce),
    );
    assert!(source.calls() > calls, "nonce answers are signed live");
    println!(
        "cached POST {cached_post:.0}/s, cached GET {cached_get:.0}/s, nonce POST (live P-256) {nonce_post:.0}/s"
    );
}
