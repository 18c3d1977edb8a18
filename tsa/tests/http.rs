//! `POST /tsa` (RFC 3161 §3.4) through its routes: media types, the size cap, refusals inside
//! the protocol, granted tokens that verify, certificate rotation, and one real socket.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{serve, TestPki, POLICY};
use imza_core::alg::DigestAlgorithm;
use imza_core::clock::{FixedClock, SystemClock};
use imza_core::KeyAlgorithm;
use imza_testdata::loopback::{RouterClient, RouterReply};
use imza_tsa::http::{default_work_limit, routes, TsaService};
use imza_tsa::{
    build_request, check_answers_request, parse_response, verify_token, Expectations, FailureInfo,
    OpenSslPathValidator, ParsedResponse, PkiStatus, TimeStampRequest, TsaError, VerificationTime,
    MAX_REQUEST_BYTES,
};
use time::macros::datetime;

const QUERY: (&str, &str) = ("Content-Type", "application/timestamp-query");

fn good_request(data: &[u8]) -> Vec<u8> {
    build_request(
        &DigestAlgorithm::Sha256.digest(data),
        DigestAlgorithm::Sha256,
        Some(&[9, 8, 7, 6, 5, 4, 3, 2]),
        true,
        None,
    )
    .unwrap()
}

fn client(service: Arc<TsaService>) -> RouterClient {
    RouterClient::new(routes(service, default_work_limit()))
}

fn service(pki: &TestPki) -> Arc<TsaService> {
    Arc::new(TsaService::new(pki.authority(), Arc::new(SystemClock)))
}

/// `POST /tsa` with `body` as an `application/timestamp-query`.
fn post_query(client: &RouterClient, body: impl AsRef<[u8]>) -> RouterReply {
    client.post("/tsa", &[QUERY], body.as_ref())
}

/// The TSA's reply to a good request for `data`.
fn reply_for(client: &RouterClient, data: &[u8]) -> ParsedResponse {
    let body = post_query(client, good_request(data)).body;
    parse_response(&body).unwrap()
}

#[test]
fn a_good_request_is_granted_with_a_token_that_verifies() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    let request = good_request(b"the document");
    let response = post_query(&client, &request);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("application/timestamp-reply")
    );
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    let body = response.body;
    let parsed = parse_response(&body).unwrap();
    assert_eq!(parsed.status, PkiStatus::Granted);
    let token = parsed.into_token().unwrap();
    let sent = TimeStampRequest::from_der(&request).unwrap();
    check_answers_request(&token, &sent).unwrap();
    let anchors = OpenSslPathValidator::new(std::slice::from_ref(&pki.root.der)).unwrap();
    let verified = verify_token(
        &token,
        &[],
        &anchors,
        VerificationTime::GenTime,
        &Expectations {
            data: Some(b"the document"),
            request: Some(&sent),
            policy: Some(&POLICY.to_string()),
            ..Expectations::default()
        },
    )
    .unwrap();
    assert_eq!(verified.signer_certificate, pki.tsa.der);
}

#[test]
fn a_token_does_not_answer_another_request() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    let token = reply_for(&client, b"one").into_token().unwrap();
    let other_data = TimeStampRequest::from_der(&good_request(b"two")).unwrap();
    assert!(matches!(
        check_answers_request(&token, &other_data),
        Err(TsaError::ImprintMismatch { .. })
    ));
    let other_nonce = TimeStampRequest::from_der(
        &build_request(
            &DigestAlgorithm::Sha256.digest(b"one"),
            DigestAlgorithm::Sha256,
            Some(&[1]),
            true,
            None,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        check_answers_request(&token, &other_nonce),
        Err(TsaError::NonceMismatch { .. })
    ));
}

#[test]
fn other_or_missing_media_types_are_415() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    let request = good_request(b"x");
    for content_type in [
        Some("application/octet-stream"),
        Some("application/timestamp-reply"),
        Some("text/plain"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("Content-Type", ct))
            .into_iter()
            .collect();
        let response = client.post("/tsa", &headers, request.clone());
        assert_eq!(response.status, 415, "{content_type:?}");
        assert_eq!(
            response.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        let text = response.text();
        assert!(text.contains("application/timestamp-query"), "{text}");
    }
}

#[test]
fn media_type_parameters_and_case_do_not_matter() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    let response = client.post(
        "/tsa",
        &[("Content-Type", "Application/TimeStamp-Query; q=1")],
        good_request(b"x"),
    );
    assert_eq!(response.status, 200);
    let parsed = parse_response(&response.body).unwrap();
    assert_eq!(parsed.status, PkiStatus::Granted);
}

#[test]
fn a_body_over_the_cap_is_413_with_or_without_a_content_length() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    let oversized = vec![0x30u8; MAX_REQUEST_BYTES + 1];
    // No Content-Length: the cap on reading decides.
    let response = post_query(&client, &oversized);
    assert_eq!(response.status, 413);
    assert!(response.text().contains("65536"));
    // A declared length over the cap is refused before the body is read.
    let length = oversized.len().to_string();
    let response = client.post("/tsa", &[QUERY, ("Content-Length", &length)], Vec::new());
    assert_eq!(response.status, 413);
    assert_eq!(response.header("Connection"), Some("close"));
}

#[test]
fn a_body_of_exactly_the_cap_reaches_the_tsa() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    let response = post_query(&client, vec![0x30u8; MAX_REQUEST_BYTES]);
    assert_eq!(response.status, 200);
    let parsed = parse_response(&response.body).unwrap();
    assert_eq!(parsed.failure_info, vec![FailureInfo::BadDataFormat]);
}

#[test]
fn garbage_and_empty_bodies_are_answered_with_bad_data_format() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    for body in [
        b"GET / HTTP/1.1".to_vec(),
        Vec::new(),
        vec![0xff; 1000],
        good_request(b"x")[..20].to_vec(),
    ] {
        let response = post_query(&client, &body);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("Content-Type"),
            Some("application/timestamp-reply")
        );
        let parsed = parse_response(&response.body).unwrap();
        assert_eq!(parsed.status, PkiStatus::Rejection);
        assert_eq!(parsed.failure_info, vec![FailureInfo::BadDataFormat]);
        assert!(parsed.token.is_none());
    }
}

#[test]
fn only_post_is_allowed() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let client = client(service(&pki));
    assert_eq!(client.get("/tsa", &[]).status, 405);
}

#[test]
fn gen_time_comes_from_the_service_clock() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let service = Arc::new(TsaService::new(pki.authority(), Arc::new(FixedClock(at))));
    let token = reply_for(&client(service), b"x").into_token().unwrap();
    assert_eq!(token.gen_time(), at);

    // And a clock outside the TSA certificate's validity is refused, not stamped.
    let service = Arc::new(TsaService::new(
        pki.authority(),
        Arc::new(FixedClock(datetime!(2001-01-01 0:00 UTC))),
    ));
    let parsed = reply_for(&client(service), b"x");
    assert_eq!(parsed.failure_info, vec![FailureInfo::SystemFailure]);
}

#[test]
fn a_replaced_authority_signs_the_next_request() {
    let first = TestPki::new(KeyAlgorithm::EcP256);
    let second = TestPki::new(KeyAlgorithm::EcP384);
    let service = service(&first);
    let client = client(Arc::clone(&service));
    let signer = |client: &RouterClient| {
        reply_for(client, b"x")
            .into_token()
            .unwrap()
            .certificates()
            .to_vec()
    };
    assert_eq!(signer(&client), vec![first.tsa.der.clone()]);
    let old = service
        .replace(second.authority())
        .expect("the first authority");
    assert_eq!(old.policy(), POLICY);
    assert_eq!(signer(&client), vec![second.tsa.der.clone()]);

    // Withdrawn (its certificate revoked, say): every request is refused with systemFailure
    // until an authority is put back.
    assert!(service.withdraw().is_some());
    let refused = reply_for(&client, b"x");
    assert_eq!(refused.status, PkiStatus::Rejection);
    assert_eq!(refused.failure_info, vec![FailureInfo::SystemFailure]);
    service.replace(first.authority());
    assert_eq!(signer(&client), vec![first.tsa.der.clone()]);
}

/// One HTTP/1.1 POST over a plain socket; returns the head (status line and headers) and
/// the body.
fn post(port: u16, content_type: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /tsa HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    (
        String::from_utf8_lossy(&answer[..split]).into_owned(),
        answer[split + 4..].to_vec(),
    )
}

#[test]
fn a_real_socket_gets_a_granted_token_and_a_415() {
    let pki = TestPki::new(KeyAlgorithm::EcP256);
    let server = serve(service(&pki), 2);
    let port = server.port();

    let (head, body) = post(port, "application/timestamp-query", &good_request(b"x"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/timestamp-reply"),
        "{head}"
    );
    assert!(lower.contains("cache-control: no-store"), "{head}");
    assert_eq!(
        parse_response(&body).unwrap().status,
        PkiStatus::Granted,
        "{head}"
    );

    let (head, _) = post(port, "application/octet-stream", &good_request(b"x"));
    assert!(head.starts_with("HTTP/1.1 415"), "{head}");

    server.stop();
}
