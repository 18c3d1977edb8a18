//! The OCSP routes in process (RFC 6960 A.1, RFC 5019 §5–6): status codes, content types,
//! caching headers, the GET encoding corners, and the limits.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use base64ct::{Base64, Encoding};
use common::{live_service, ocsp_request, url_encoded_base64, LiveSource, Pki};
use imza_core::clock::SystemClock;
use imza_ocsp::http::{default_work_limit, routes, MAX_GET_PATH_BYTES};
use imza_ocsp::{parse_response, CacheConfig, CertStatusInfo, OcspService, ResponseStatus};
use imza_testdata::loopback::{RouterClient, RouterReply};

struct Server {
    pki: Pki,
    source: Arc<LiveSource>,
    service: Arc<OcspService>,
    client: RouterClient,
}

fn server() -> Server {
    let pki = Pki::new();
    let (source, service) = live_service(&pki, Arc::new(SystemClock), CacheConfig::default());
    let client = RouterClient::new(routes(Arc::clone(&service), default_work_limit()));
    Server {
        pki,
        source,
        service,
        client,
    }
}

fn header<'a>(response: &'a RouterReply, name: &str) -> Option<&'a str> {
    response.header(name)
}

const OCSP_REQUEST: (&str, &str) = ("Content-Type", "application/ocsp-request");

impl Server {
    fn good_request(&self) -> Vec<u8> {
        ocsp_request(&self.pki.ca.der, &[&self.pki.good.serial], None)
    }

    fn post(&self, body: &[u8]) -> RouterReply {
        self.client.post("/ocsp", &[OCSP_REQUEST], body)
    }

    fn get(&self, path: impl AsRef<str>) -> RouterReply {
        self.client.get(path.as_ref(), &[])
    }
}

/// Asserts a 200 OCSP answer and returns its status and body.
fn ocsp_answer(response: RouterReply) -> (ResponseStatus, Vec<u8>) {
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("application/ocsp-response")
    );
    let body = response.body;
    (parse_response(&body).unwrap().status, body)
}

fn single_status(body: &[u8]) -> CertStatusInfo {
    parse_response(body).unwrap().basic.unwrap().responses[0].status
}

#[test]
fn post_answers_good_with_rfc5019_caching_headers() {
    let s = server();
    let response = s.post(&s.good_request());
    let cache_control = header(&response, "Cache-Control").unwrap().to_string();
    let etag = header(&response, "ETag").unwrap().to_string();
    let expires = header(&response, "Expires").unwrap().to_string();
    let last_modified = header(&response, "Last-Modified").unwrap().to_string();
    let (status, body) = ocsp_answer(response);
    assert_eq!(status, ResponseStatus::Successful);
    assert_eq!(single_status(&body), CertStatusInfo::Good);

    let basic = parse_response(&body).unwrap().basic.unwrap();
    let this_update = basic.responses[0].this_update;
    let next_update = basic.responses[0].next_update.unwrap();
    assert_eq!(
        last_modified,
        imza_ocsp::cache::http_date(this_update),
        "Last-Modified is thisUpdate"
    );
    assert_eq!(
        expires,
        imza_ocsp::cache::http_date(next_update),
        "Expires is nextUpdate"
    );
    let max_age: i64 = cache_control
        .strip_prefix("max-age=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(cache_control.ends_with(", public, no-transform, must-revalidate"));
    let now = time::OffsetDateTime::now_utc();
    assert!(max_age > 0 && now + time::Duration::seconds(max_age) <= next_update);
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10);
}

#[test]
fn the_second_post_is_a_cache_hit_with_the_same_bytes_and_etag() {
    let s = server();
    let first = s.post(&s.good_request());
    let etag = header(&first, "ETag").unwrap().to_string();
    let (_, first_body) = ocsp_answer(first);
    let calls = s.source.calls();
    let second = s.post(&s.good_request());
    assert_eq!(header(&second, "ETag"), Some(etag.as_str()));
    let (_, second_body) = ocsp_answer(second);
    assert_eq!(first_body, second_body);
    assert_eq!(s.source.calls(), calls, "served from the cache");
}

#[test]
fn a_nonce_request_is_signed_live_echoes_the_nonce_and_is_no_store() {
    let s = server();
    for nonce in [[7u8; 16], [8u8; 16]] {
        let request = ocsp_request(&s.pki.ca.der, &[&s.pki.good.serial], Some(&nonce));
        let response = s.post(&request);
        assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
        assert_eq!(header(&response, "ETag"), None);
        assert_eq!(header(&response, "Expires"), None);
        let (status, body) = ocsp_answer(response);
        assert_eq!(status, ResponseStatus::Successful);
        let basic = parse_response(&body).unwrap().basic.unwrap();
        assert_eq!(basic.nonce.as_deref(), Some(&nonce[..]));
    }
    assert_eq!(s.source.calls(), 2);
    assert!(s.service.cache().is_empty());
}

#[test]
fn a_revocation_shows_after_the_revision_poll() {
    let s = server();
    let request = s.good_request();
    assert_eq!(
        single_status(&ocsp_answer(s.post(&request)).1),
        CertStatusInfo::Good
    );
    s.source
        .revoke(&s.pki.good.serial, time::OffsetDateTime::now_utc());
    s.service.poll_revision().unwrap();
    assert!(matches!(
        single_status(&ocsp_answer(s.post(&request)).1),
        CertStatusInfo::Revoked { .. }
    ));
}

#[test]
fn ocsp_error_statuses_are_http_200_and_no_store() {
    let s = server();
    let cases: Vec<(Vec<u8>, ResponseStatus)> = vec![
        (b"not DER at all".to_vec(), ResponseStatus::MalformedRequest),
        (Vec::new(), ResponseStatus::MalformedRequest),
        (
            ocsp_request(&s.pki.other_ca.der, &[&s.pki.other_leaf.serial], None),
            ResponseStatus::Unauthorized,
        ),
    ];
    for (body, expected) in cases {
        let response = s.post(&body);
        assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
        let (status, der) = ocsp_answer(response);
        assert_eq!(status, expected);
        assert_eq!(der.len(), 5, "a bare error response");
    }
}

#[test]
fn post_without_content_type_is_accepted_and_another_type_is_415() {
    let s = server();
    let response = s.client.post("/ocsp", &[], s.good_request());
    assert_eq!(ocsp_answer(response).0, ResponseStatus::Successful);
    let with_params = s.client.post(
        "/ocsp",
        &[("Content-Type", "Application/OCSP-Request; q=1")],
        s.good_request(),
    );
    assert_eq!(ocsp_answer(with_params).0, ResponseStatus::Successful);
    for wrong in [
        "application/json",
        "text/plain",
        "application/ocsp-response",
        "%%%",
    ] {
        let response = s
            .client
            .post("/ocsp", &[("Content-Type", wrong)], s.good_request());
        assert_eq!(response.status, 415, "{wrong}");
        assert_eq!(
            response.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
    }
}

#[test]
fn a_body_one_byte_over_64_kib_is_413_and_64_kib_is_read() {
    let s = server();
    let limit = imza_ocsp::RequestLimits::default().max_bytes;
    assert_eq!(limit, 64 * 1024);
    let response = s.post(&vec![0x30; limit + 1]);
    assert_eq!(response.status, 413);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(response.text().contains("65536"));
    // Exactly at the limit, the body is read and answered as the (malformed) request it is.
    let (status, _) = ocsp_answer(s.post(&vec![0x30; limit]));
    assert_eq!(status, ResponseStatus::MalformedRequest);
}

/// A request (with a nonce) whose base64 has both `+` and `/`, found by varying the nonce.
fn request_with_plus_and_slash(pki: &Pki) -> Vec<u8> {
    (0u16..=u16::MAX)
        .map(|n| ocsp_request(&pki.ca.der, &[&pki.good.serial], Some(&n.to_be_bytes())))
        .find(|request| {
            let encoded = Base64::encode_string(request);
            encoded.contains('+') && encoded.contains('/')
        })
        .unwrap()
}

#[test]
fn get_accepts_url_encoded_raw_and_unpadded_base64_with_slashes() {
    let s = server();
    let request = request_with_plus_and_slash(&s.pki);
    let encoded = Base64::encode_string(&request);
    let url_encoded = url_encoded_base64(&request);
    let unpadded = encoded.trim_end_matches('=').to_string();
    for path in [
        format!("/ocsp/{url_encoded}"),
        format!("/ocsp/{encoded}"),
        format!("/ocsp/{unpadded}"),
        format!("/ocsp//{encoded}"),
    ] {
        let response = s.get(&path);
        let (status, body) = ocsp_answer(response);
        assert_eq!(status, ResponseStatus::Successful, "{path}");
        assert_eq!(single_status(&body), CertStatusInfo::Good, "{path}");
        // The nonce of the request made it through the decoding.
        let nonce = parse_response(&body).unwrap().basic.unwrap().nonce;
        assert!(nonce.is_some(), "{path}");
    }
    // Same bytes by GET and by POST: one cache entry for a nonce-less request.
    let plain = s.good_request();
    let by_get = s.get(format!("/ocsp/{}", Base64::encode_string(&plain)));
    let (_, get_body) = ocsp_answer(by_get);
    let (_, post_body) = ocsp_answer(s.post(&plain));
    assert_eq!(get_body, post_body);
}

#[test]
fn get_with_a_slash_pair_in_the_base64_keeps_it() {
    let s = server();
    // Path segments would drop the empty one between the slashes; the raw path keeps it.
    let (request, encoded) = (0u16..=u16::MAX)
        .map(|n| {
            let request =
                ocsp_request(&s.pki.ca.der, &[&s.pki.good.serial], Some(&n.to_be_bytes()));
            let encoded = Base64::encode_string(&request);
            (request, encoded)
        })
        .find(|(_, e)| e.contains("//"))
        .unwrap();
    let response = s.get(format!("/ocsp/{encoded}"));
    let (status, body) = ocsp_answer(response);
    assert_eq!(status, ResponseStatus::Successful);
    let basic = parse_response(&body).unwrap().basic.unwrap();
    let sent = imza_ocsp::parse_request(&request)
        .unwrap()
        .nonce
        .unwrap()
        .value;
    assert_eq!(basic.nonce.unwrap(), sent);
}

#[test]
fn undecodable_get_paths_are_malformed_request_answers() {
    let s = server();
    for path in [
        "/ocsp/M!!!",
        "/ocsp/%ff%fe",
        "/ocsp/MEIw%3D",
        "/ocsp/-_-_",
        "/ocsp/",
    ] {
        let response = s.get(path);
        assert_eq!(header(&response, "Cache-Control"), Some("no-store"));
        let (status, _) = ocsp_answer(response);
        assert_eq!(status, ResponseStatus::MalformedRequest, "{path}");
    }
}

#[test]
fn a_get_path_over_the_limit_is_414() {
    let s = server();
    let response = s.get(format!("/ocsp/{}", "A".repeat(MAX_GET_PATH_BYTES + 1)));
    assert_eq!(response.status, 414);
    let at_limit = s.get(format!("/ocsp/{}", "A".repeat(MAX_GET_PATH_BYTES)));
    assert_eq!(ocsp_answer(at_limit).0, ResponseStatus::MalformedRequest);
}

#[test]
fn if_none_match_on_get_gives_304_with_the_validators() {
    let s = server();
    let path = format!("/ocsp/{}", Base64::encode_string(&s.good_request()));
    let first = s.get(&path);
    let etag = header(&first, "ETag").unwrap().to_string();
    let _ = ocsp_answer(first);
    let again = s.client.get(&path, &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert_eq!(header(&again, "ETag"), Some(etag.as_str()));
    assert!(header(&again, "Cache-Control")
        .unwrap()
        .starts_with("max-age="));
    assert!(header(&again, "Expires").is_some());
    assert!(again.body.is_empty());
    // Another tag: the full answer.
    let other = s
        .client
        .get(&path, &[("If-None-Match", "\"something else\"")]);
    assert_eq!(ocsp_answer(other).0, ResponseStatus::Successful);
}

#[test]
fn replace_responder_clears_what_the_routes_serve() {
    let s = server();
    let request = s.good_request();
    let first = s.post(&request);
    let etag = header(&first, "ETag").unwrap().to_string();
    let _ = ocsp_answer(first);
    let calls = s.source.calls();
    s.service.replace_responder(
        imza_ocsp::Responder::new(
            vec![s.pki.served()],
            imza_ocsp::ResponderConfig {
                validity: time::Duration::minutes(5),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let after = s.post(&request);
    assert_ne!(header(&after, "ETag"), Some(etag.as_str()));
    let max_age: u64 = header(&after, "Cache-Control")
        .unwrap()
        .trim_start_matches("max-age=")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age <= 300);
    let _ = ocsp_answer(after);
    assert_eq!(
        s.source.calls(),
        calls + 1,
        "signed again by the new responder"
    );
}

#[test]
fn hostile_bodies_get_ocsp_answers_not_http_errors() {
    let s = server();
    let mut deep = Vec::new();
    for _ in 0..1000 {
        deep.extend_from_slice(&[0x30, 0x80]);
    }
    let truncated = {
        let mut r = s.good_request();
        r.truncate(r.len() - 1);
        r
    };
    let huge_length = vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff];
    for body in [deep, truncated, vec![0xff; 100], huge_length] {
        let (status, _) = ocsp_answer(s.post(&body));
        assert_eq!(status, ResponseStatus::MalformedRequest);
    }
    // The server still answers honestly afterwards.
    assert_eq!(
        single_status(&ocsp_answer(s.post(&s.good_request())).1),
        CertStatusInfo::Good
    );
}
