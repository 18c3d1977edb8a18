//! A load measurement of `POST /tsa` with wrk on loopback (ignored by default: it takes the
//! machine for ten seconds). Run it with
//! `cargo test -p imza-tsa --release --test http_load -- --ignored --nocapture`.
//! It prints wrk's report and fails only if any answer was not HTTP 200 with a granted token.

mod common;

use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::TestPki;
use imza_core::clock::SystemClock;
use imza_core::KeyAlgorithm;
use imza_tsa::http::{stage, TsaService};
use imza_tsa::{build_request, parse_response, ImprintAlgorithm, PkiStatus};

#[test]
#[ignore = "a ten-second load measurement with wrk; run on demand"]
fn wrk_load_on_loopback() {
    let seconds = std::env::var("IMZA_TSA_LOAD_SECONDS").unwrap_or_else(|_| "10".into());
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let service = Arc::new(TsaService::new(pki.authority(), Arc::new(SystemClock)));
    let (tx, rx) = mpsc::channel();
    let config = rocket::Config {
        address: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 0,
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::release_default()
    };
    let rocket = rocket::custom(config)
        .attach(stage(Arc::clone(&service)))
        .attach(rocket::fairing::AdHoc::on_liftoff("port", move |r| {
            let _ = tx.send((r.config().port, r.shutdown()));
            Box::pin(async {})
        }));
    let server = std::thread::spawn(move || {
        let _ = rocket::execute(rocket.launch());
    });
    let (port, shutdown) = rx.recv_timeout(Duration::from_secs(30)).unwrap();

    let request = build_request(
        &ImprintAlgorithm::Sha256.digest(b"load"),
        ImprintAlgorithm::Sha256,
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
        .arg(format!("http://127.0.0.1:{port}/tsa"))
        .output()
        .expect("wrk must be installed for this measurement");
    shutdown.notify();
    server.join().unwrap();
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
