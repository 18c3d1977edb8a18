//! A load measurement of `POST /tsa` with wrk on loopback (ignored by default: it takes the
//! machine for ten seconds). Run it with
//! `cargo test -p imza-tsa --release --test http_load -- --ignored --nocapture`.
//! It prints wrk's report and fails only if any answer was not HTTP 200 with a granted token.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{serve, TestPki};
use imza_core::alg::DigestAlgorithm;
use imza_core::clock::SystemClock;
use imza_core::KeyAlgorithm;
use imza_tsa::http::TsaService;
use imza_tsa::{build_request, parse_response, PkiStatus};

#[test]
#[ignore = "a ten-second load measurement with wrk; run on demand"]
fn wrk_load_on_loopback() {
    let seconds = std::env::var("IMZA_TSA_LOAD_SECONDS").unwrap_or_else(|_| "10".into());
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let service = Arc::new(TsaService::new(pki.authority(), Arc::new(SystemClock)));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = serve(Arc::clone(&service), workers);

    let request = build_request(
        &DigestAlgorithm::Sha256.digest(b"load"),
        DigestAlgorithm::Sha256,
        Some(&[1, 2, 3, 4, 5, 6, 7, 8]),
        true,
        None,
    )
    .unwrap();
    // The request is what wrk sends: check once that it is granted.
    assert_eq!(
        parse_response(&service.respond(&request).der)
            .unwrap()
            .status,
        PkiStatus::Granted
    );
    let body = pki.path("load.tsq");
    std::fs::write(&body, &request).unwrap();
    let script = pki.path("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"Content-Type\"] = \"application/timestamp-query\"\n\
             local f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*a\")\nf:close()\n",
            body.display()
        ),
    )
    .unwrap();
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(server.url("/tsa"))
        .output()
        .expect("wrk must be installed for this measurement");
    server.stop();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("Non-2xx"),
        "some answers were not HTTP 200"
    );
}
