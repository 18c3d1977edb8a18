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

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{live_service, ocsp_request, path_str, serve, url_encoded_base64, Pki};
use imza_core::clock::SystemClock;
use imza_ocsp::CacheConfig;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
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
    let (source, service) = live_service(&pki, Arc::new(SystemClock), CacheConfig::default());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = serve(service, workers);
    let url = server.url("/ocsp");

    let plain = ocsp_request(&pki.ca.der, &[&pki.good.serial], None);
    let cached_post = wrk(&pki, "cached POST", &url, Some(&plain));
    // Only the requests in flight before the first answer was cached asked the source (misses
    // are not coalesced): at most one per connection.
    let connections: usize = env_or("IMZA_WRK_CONNECTIONS", "32").parse().unwrap();
    assert!(source.calls() <= connections, "{} lookups", source.calls());
    let encoded = url_encoded_base64(&plain);
    let cached_get = wrk(&pki, "cached GET", &format!("{url}/{encoded}"), None);

    let with_nonce = ocsp_request(&pki.ca.der, &[&pki.good.serial], Some(&[0x5a; 32]));
    let calls = source.calls();
    let nonce_post = wrk(&pki, "nonce POST", &url, Some(&with_nonce));
    assert!(source.calls() > calls, "nonce answers are signed live");
    println!(
        "cached POST {cached_post:.0}/s, cached GET {cached_get:.0}/s, nonce POST (live P-256) {nonce_post:.0}/s"
    );
}
