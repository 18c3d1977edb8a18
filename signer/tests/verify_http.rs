//! `POST /verify` on a loopback port (the stage `imza serve` mounts): 200 with the JSON report
//! for signatures good and bad, 400 for bodies that are not the JSON asked for, 413 for bodies
//! over the limit, 415 for another media type, 503 with `Retry-After` past the memory budget.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64ct::{Base64, Encoding};
use common::*;
use imza_core::clock::SystemClock;
use imza_core::KeyAlgorithm;
use imza_http::MemoryBudget;
use imza_signer::http::{routes, VerifyLimits, VerifyService, MAX_BODY_BYTES};
use imza_testdata::loopback::{LoopbackServer, RouterClient};
use serde_json::Value;
use time::OffsetDateTime;

const DOCUMENT: &[u8] = b"Is yeri haqqinda arayis.\n";

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request with `headers` and `body`, read to the end.
fn request(server: &LoopbackServer, headers: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head =
        format!("POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = find(&raw, b"\r\n\r\n");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: raw[split + 4..].to_vec(),
    }
}

fn post_json(server: &LoopbackServer, body: &[u8]) -> Answer {
    request(
        server,
        &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body,
    )
}

struct Fixture {
    pki: Pki,
    server: LoopbackServer,
}

fn fixture() -> Fixture {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = OffsetDateTime::now_utc();
    let options = pki.clean_options(now);
    let service = Arc::new(VerifyService::new(&options, Arc::new(SystemClock)));
    let server = LoopbackServer::launch(routes(service, VerifyLimits::default()), 2);
    Fixture { pki, server }
}

#[test]
fn a_good_detached_signature_gets_a_passing_report() {
    let f = fixture();
    let signature = f.pki.openssl_sign(DOCUMENT, false, &[]);
    let body = serde_json::json!({
        "signature": Base64::encode_string(&signature),
        "content": Base64::encode_string(DOCUMENT),
    });
    let answer = post_json(&f.server, body.to_string().as_bytes());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.content_type.starts_with("application/json"));
    let report = answer.json();
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(report["signatures"][0]["indication"], "TOTAL_PASSED");
    assert_eq!(
        report["signatures"][0]["signer"]["personal_code"],
        PERSONAL_CODE
    );
}

#[test]
fn a_bad_signature_is_a_200_report_that_says_why() {
    let f = fixture();
    let signature = f.pki.openssl_sign(DOCUMENT, false, &[]);
    let body = serde_json::json!({
        "signature": Base64::encode_string(&signature),
        "content": Base64::encode_string(b"another document"),
    });
    let answer = post_json(&f.server, body.to_string().as_bytes());
    assert_eq!(answer.status, 200);
    let report = answer.json();
    assert_eq!(report["valid"], false);
    assert_eq!(report["signatures"][0]["indication"], "TOTAL_FAILED");
    assert_eq!(report["signatures"][0]["sub_indication"], "HASH_FAILURE");
    // Not CMS at all: still a report.
    let body = serde_json::json!({ "signature": Base64::encode_string(b"hello") });
    let report = post_json(&f.server, body.to_string().as_bytes()).json();
    assert_eq!(report["signatures"][0]["sub_indication"], "FORMAT_FAILURE");
}

#[test]
fn bodies_that_are_not_the_json_asked_for_are_400_with_a_reason() {
    let f = fixture();
    for (body, says) in [
        (&b"not json"[..], "not {"),
        (br#"{"content": "aGVsbG8="}"#, "signature"),
        (br#"{"signature": "***"}"#, "base64"),
        (br#"{"signature": "aGVsbG8=", "content": "%%"}"#, "content"),
        (br#"{"signature": "aGVsbG8=", "extra": 1}"#, "extra"),
        (br#"[1, 2]"#, "not {"),
    ] {
        let answer = post_json(&f.server, body);
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(body));
        assert!(answer.content_type.starts_with("application/json"));
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(says), "{error:?} should mention {says:?}");
    }
}

#[test]
fn another_media_type_is_415() {
    let f = fixture();
    let body = br#"{"signature": "aGVsbG8="}"#;
    for headers in [
        format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n",
            body.len()
        ),
        format!("Content-Length: {}\r\n", body.len()),
        format!(
            "Content-Type: application/pkcs7-signature\r\nContent-Length: {}\r\n",
            body.len()
        ),
    ] {
        let answer = request(&f.server, &headers, body);
        assert_eq!(answer.status, 415, "{headers}");
        assert!(answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("application/json"));
    }
}

fn service() -> Arc<VerifyService> {
    let pki = Pki::new(KeyAlgorithm::EcP256);
    let now = OffsetDateTime::now_utc();
    Arc::new(VerifyService::new(
        &pki.options(&[], now),
        Arc::new(SystemClock),
    ))
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn bodies_over_the_limit_are_413() {
    // In process: the same routes, without pushing 48 MiB through a socket.
    let client = RouterClient::new(routes(service(), VerifyLimits::default()));
    let oversized = vec![b' '; MAX_BODY_BYTES + 1];
    // No Content-Length: the cap on reading decides.
    let response = client.post("/verify", &[JSON], oversized.clone());
    assert_eq!(response.status, 413);
    assert!(response.text().contains(&MAX_BODY_BYTES.to_string()));
    // A declared length over the cap is refused before the body is read.
    let length = (MAX_BODY_BYTES + 1).to_string();
    let response = client.post("/verify", &[JSON, ("Content-Length", &length)], Vec::new());
    assert_eq!(response.status, 413);
    // Exactly the cap is read (and, not being JSON, refused as a bad body).
    let response = client.post("/verify", &[JSON], &oversized[..MAX_BODY_BYTES]);
    assert_eq!(response.status, 400);
}

#[test]
fn a_body_past_the_memory_budget_is_503_with_retry_after() {
    let limits = VerifyLimits {
        memory: MemoryBudget::new(1024 * 1024),
        ..VerifyLimits::default()
    };
    let client = RouterClient::new(routes(service(), limits.clone()));
    let response = client.post("/verify", &[JSON], vec![b' '; 2 * 1024 * 1024]);
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.header("Retry-After"), Some("1"));
    assert!(response.text().contains("request memory"));
    // The budget is whole again: a small request goes through to a report.
    assert_eq!(limits.memory.available_bytes(), 1024 * 1024);
    let body = serde_json::json!({ "signature": Base64::encode_string(b"hello") });
    let response = client.post("/verify", &[JSON], body.to_string());
    assert_eq!(response.status, 200, "{}", response.text());
}
