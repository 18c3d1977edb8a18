//! The OCSP routes on a real socket: imza-http's server on 127.0.0.1 (port chosen by the OS),
//! talked to by `curl` and `openssl ocsp -url`, with the upkeep threads of `start_upkeep`
//! doing the revision polling — so a revocation must show within a second without anyone
//! calling `poll_revision` by hand.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    live_service, ocsp_request, path_str, run, serve, url_encoded_base64, LiveSource, Pki,
};
use imza_core::clock::SystemClock;
use imza_ocsp::{parse_response, CacheConfig, CertStatusInfo, OcspService, ResponseStatus};
use imza_testdata::loopback::LoopbackServer;

struct Fixture {
    pki: Pki,
    source: Arc<LiveSource>,
    service: Arc<OcspService>,
    server: LoopbackServer,
}

fn fixture() -> Fixture {
    let pki = Pki::new();
    let (source, service) = live_service(&pki, Arc::new(SystemClock), CacheConfig::default());
    let server = serve(Arc::clone(&service), 2);
    Fixture {
        pki,
        source,
        service,
        server,
    }
}

/// What curl got: the status code, the headers (lower-cased names) and the body.
struct Fetched {
    code: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Fetched {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn ocsp(&self) -> imza_ocsp::ParsedResponse {
        assert_eq!(self.code, 200);
        assert_eq!(
            self.header("content-type"),
            Some("application/ocsp-response")
        );
        parse_response(&self.body).unwrap()
    }

    fn single_status(&self) -> CertStatusInfo {
        let parsed = self.ocsp();
        assert_eq!(parsed.status, ResponseStatus::Successful);
        parsed.basic.unwrap().responses[0].status
    }
}

/// Runs curl with `args` (the URL among them) and reads what came back.
fn curl(pki: &Pki, name: &str, args: &[&str]) -> Fetched {
    let headers = pki.path(&format!("{name}.headers"));
    let body = pki.path(&format!("{name}.body"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", path_str(&headers), "-o"])
        .arg(&body)
        .args(args)
        .output()
        .expect("cannot run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&headers).unwrap();
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|status| status.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Fetched {
        code,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn post(f: &Fixture, name: &str, request: &[u8]) -> Fetched {
    let file = f.pki.path(&format!("{name}.req"));
    std::fs::write(&file, request).unwrap();
    let data = format!("@{}", path_str(&file));
    curl(
        &f.pki,
        name,
        &[
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &data,
            &f.server.url("/ocsp"),
        ],
    )
}

#[test]
fn curl_posts_and_gets_and_the_second_answer_is_the_cached_one() {
    let f = fixture();
    let request = ocsp_request(&f.pki.ca.der, &[&f.pki.good.serial], None);
    let first = post(&f, "first", &request);
    assert_eq!(first.single_status(), CertStatusInfo::Good);
    let cache_control = first.header("cache-control").unwrap();
    assert!(cache_control.starts_with("max-age="), "{cache_control}");
    assert!(first.header("etag").is_some());
    assert!(first.header("last-modified").is_some());
    assert!(first.header("expires").is_some());
    let calls = f.source.calls();

    // GET with the base64 URL-encoded, as RFC 5019 §5 clients send it.
    let encoded = url_encoded_base64(&request);
    let got = curl(&f.pki, "get", &[&f.server.url(&format!("/ocsp/{encoded}"))]);
    assert_eq!(got.body, first.body, "the cached bytes");
    assert_eq!(got.header("etag"), first.header("etag"));
    assert_eq!(f.source.calls(), calls, "no status lookup for a cache hit");

    let etag = first.header("etag").unwrap().to_string();
    let not_modified = curl(
        &f.pki,
        "inm",
        &[
            "-H",
            &format!("If-None-Match: {etag}"),
            &f.server.url(&format!("/ocsp/{encoded}")),
        ],
    );
    assert_eq!(not_modified.code, 304);
    assert!(not_modified.body.is_empty());
}

#[test]
fn openssl_ocsp_verifies_answers_served_over_http_with_and_without_nonce() {
    let f = fixture();
    let url = f.server.url("/ocsp");
    let base = [
        "ocsp",
        "-url",
        &url,
        "-issuer",
        path_str(&f.pki.ca.pem),
        "-CAfile",
        path_str(&f.pki.ca.pem),
        "-timeout",
        "20",
    ];
    for extra in [&[][..], &["-no_nonce"][..]] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "-cert",
            path_str(&f.pki.good.pem),
            "-cert",
            path_str(&f.pki.revoked.pem),
        ]);
        let out = run("openssl", &args);
        assert!(out.ok, "{}", out.text());
        assert!(out.stderr.contains("Response verify OK"), "{}", out.text());
        assert!(out.stdout.contains("good.pem: good"), "{}", out.text());
        assert!(
            out.stdout.contains("revoked.pem: revoked"),
            "{}",
            out.text()
        );
    }
}

#[test]
fn a_revocation_in_the_source_is_served_within_a_second_by_the_background_poll() {
    let f = fixture();
    let request = ocsp_request(&f.pki.ca.der, &[&f.pki.good.serial], None);
    assert_eq!(
        post(&f, "before", &request).single_status(),
        CertStatusInfo::Good
    );
    let cached = post(&f, "cached", &request);
    assert_eq!(cached.single_status(), CertStatusInfo::Good);
    let calls = f.source.calls();
    assert_eq!(calls, 1, "the second answer came from the cache");

    f.source
        .revoke(&f.pki.good.serial, time::OffsetDateTime::now_utc());
    let revoked_at = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let answer = post(&f, "after", &request);
        if matches!(answer.single_status(), CertStatusInfo::Revoked { .. }) {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still good {:?} after the revocation ({attempts} attempts)",
            revoked_at.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    assert_eq!(
        f.service.cache().source_revision(),
        Some(f.source.current_revision())
    );
}

#[test]
fn a_poll_that_stops_completing_shows_in_its_age_and_the_next_one_resets_it() {
    let f = fixture();
    let interval = f.service.config().poll_interval;
    // The upkeep thread polls every interval.
    std::thread::sleep(interval * 2);
    assert!(f.service.since_last_poll() < interval * 4);
    {
        let _stuck = f.source.revision_gate.lock().unwrap();
        std::thread::sleep(interval * 6);
        let age = f.service.since_last_poll();
        assert!(age > interval * 4, "{age:?}");
    }
    let released = Instant::now();
    while f.service.since_last_poll() > interval * 2 {
        assert!(
            released.elapsed() < Duration::from_secs(5),
            "the poll never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_body_over_64_kib_is_413_over_the_wire_and_the_server_goes_on() {
    let f = fixture();
    let big = vec![0x30u8; 64 * 1024 + 1];
    let refused = post(&f, "big", &big);
    assert_eq!(refused.code, 413);
    assert!(refused
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    // Chunked, with no Content-Length to refuse from: read up to the limit, then refused.
    let file = f.pki.path("big.req");
    let data = format!("@{}", path_str(&file));
    let chunked = curl(
        &f.pki,
        "chunked",
        &[
            "-H",
            "Content-Type: application/ocsp-request",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &data,
            &f.server.url("/ocsp"),
        ],
    );
    assert_eq!(chunked.code, 413);
    let wrong_type = curl(
        &f.pki,
        "json",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{}",
            &f.server.url("/ocsp"),
        ],
    );
    assert_eq!(wrong_type.code, 415);
    let request = ocsp_request(&f.pki.ca.der, &[&f.pki.good.serial], None);
    assert_eq!(
        post(&f, "after", &request).single_status(),
        CertStatusInfo::Good
    );
}
