//! The signature service over real HTTP on loopback, on a real SQLite file (a real PostgreSQL
//! database where a test says so, or for all with `IMZA_TEST_MSS_STORE=postgres`), with real
//! keys and certificates: sessions from the relying party's request to the phone's verified
//! answer, every result, the refusals, a restart mid-session and many sessions at once.

// Test code: a failed expectation panics by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::*;
use imza_core::alg::DigestAlgorithm;
use imza_core::clock::Clock;
use imza_core::key::software::SoftwareKey;
use imza_core::verify::verify_digest;
use imza_core::{KeyAlgorithm, SigningKey};
use imza_mobile_sign::http_client::ApiError;
use imza_mobile_sign::http_client::JsonClient;
use imza_mobile_sign::protocol::{
    decode_base64, encode_base64, verification_code, CertificateRequest, CertificateResponse,
    CertificateResult, DeviceAnswer, PendingRequest, PendingRequests, SessionKind, SessionResult,
    SessionState, SessionStatus, MAX_BODY_BYTES,
};
use imza_mobile_sign::service::{
    RateLimit, ServiceConfig, DEFAULT_MAX_RUNNING_PER_PHONE, MAX_PENDING_REQUESTS,
};
use imza_mobile_sign::store::{add_relying_party, MobileStore};

/// Approves a session on a store of `engine` and checks what the relying party gets: OK, a
/// signature that verifies over the hash with the registered certificate's key, that
/// certificate.
fn approved_session_verifies(engine: Engine, kind: SessionKind) {
    let mss = Mss::start_on(engine, ServiceConfig::default());
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let hash = openssl::sha::sha256(b"the residence certificate");
    let id = start_session(&rp, kind, &session_request(&phone, &hash)).unwrap();

    let running = session_status(&rp, &id, 0).unwrap();
    assert_eq!(running.state, SessionState::Running);
    assert_eq!(running.result, None);

    let request = phone.next_request();
    assert_eq!(request.session_id, id);
    assert_eq!(request.kind, kind);
    assert_eq!(request.relying_party, RP_NAME);
    assert_eq!(request.verification_code, verification_code(&hash));
    assert_eq!(decode_base64(&request.hash).unwrap(), hash);
    assert_eq!(
        request.display_text.as_deref(),
        Some("Sign the residence certificate")
    );
    let answered = phone.approve(&request).unwrap();
    assert_eq!(answered.result, Some(SessionResult::Ok));

    let status = session_status(&rp, &id, 10_000).unwrap();
    assert_eq!(status.state, SessionState::Complete);
    assert_eq!(status.result, Some(SessionResult::Ok));
    let cert = decode_base64(status.cert.as_deref().unwrap()).unwrap();
    assert_eq!(cert, phone.certificate(kind).der);
    let signature = status.signature.unwrap();
    assert_eq!(signature.algorithm, "SHA256WithECEncryption");
    let value = decode_base64(&signature.value).unwrap();
    let spki = phone.certificate(kind).details().unwrap().public_key;
    verify_digest(
        &spki,
        imza_core::key::DigestAlgorithm::Sha256,
        &hash,
        &value,
    )
    .unwrap();
}

#[test]
fn approved_signature_session_returns_a_verified_signature_and_the_signing_certificate() {
    approved_session_verifies(Engine::from_env(), SessionKind::Signature);
}

#[test]
fn approved_authentication_session_returns_a_verified_signature_and_the_auth_certificate() {
    approved_session_verifies(Engine::from_env(), SessionKind::Authentication);
}

#[test]
fn approved_signature_session_on_postgres_returns_a_verified_signature() {
    approved_session_verifies(Engine::Postgres, SessionKind::Signature);
}

/// The HTTP status and error code of a refused call.
fn refusal<T: std::fmt::Debug>(outcome: Result<T, ApiError>) -> (u16, String) {
    match outcome {
        Err(ApiError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn hash_of(text: &str) -> [u8; 32] {
    openssl::sha::sha256(text.as_bytes())
}

/// Starts a signature session for `phone` and has the phone fetch it.
fn delivered_session(mss: &Mss, phone: &TestPhone, text: &str) -> (String, PendingRequest) {
    let id = start_session(
        &mss.rp(),
        SessionKind::Signature,
        &session_request(phone, &hash_of(text)),
    )
    .unwrap();
    let request = phone.next_request();
    assert_eq!(request.session_id, id);
    (id, request)
}

fn assert_complete_without_signature(status: &SessionStatus, result: SessionResult) {
    assert_eq!(status.state, SessionState::Complete);
    assert_eq!(status.result, Some(result));
    assert_eq!(
        status.signature, None,
        "a signature handed out with {result}"
    );
    assert_eq!(status.cert, None, "a certificate handed out with {result}");
}

#[test]
fn refusal_pin_blocked_and_delivery_error_reach_the_relying_party() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    for result in [
        SessionResult::UserRefused,
        SessionResult::PinBlocked,
        SessionResult::DeliveryError,
    ] {
        let (id, request) = delivered_session(&mss, &phone, result.name());
        let answered = phone.answer_without_signature(&request, result).unwrap();
        assert_complete_without_signature(&answered, result);
        let status = session_status(&mss.rp(), &id, 5_000).unwrap();
        assert_complete_without_signature(&status, result);
        // Answered: no longer pending.
        assert!(phone.pending(0).unwrap().requests.is_empty());
    }
}

#[test]
fn unanswered_sessions_end_with_timeout_when_fetched_and_phone_absent_when_not() {
    let mss = Mss::start();
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let (fetched, _) = delivered_session(&mss, &phone, "fetched");
    let never_fetched = start_session(
        &rp,
        SessionKind::Signature,
        &session_request(&phone, &hash_of("never fetched")),
    )
    .unwrap();
    assert_eq!(
        session_status(&rp, &never_fetched, 0).unwrap().state,
        SessionState::Running
    );
    mss.clock
        .advance(time::Duration::minutes(5) + time::Duration::seconds(1));
    assert_complete_without_signature(
        &session_status(&rp, &fetched, 0).unwrap(),
        SessionResult::Timeout,
    );
    assert_complete_without_signature(
        &session_status(&rp, &never_fetched, 0).unwrap(),
        SessionResult::PhoneAbsent,
    );
    // Expired sessions are no longer offered to the phone, and answering one is too late.
    assert!(phone.pending(0).unwrap().requests.is_empty());
    let late = phone.answer(
        &fetched,
        &DeviceAnswer {
            result: SessionResult::UserRefused,
            signature: None,
        },
    );
    assert_eq!(refusal(late), (409, "CONFLICT".to_string()));
}

#[test]
fn a_long_poll_ends_when_a_short_session_expires() {
    let mss = Mss::start_with(ServiceConfig {
        session_lifetime: Duration::from_millis(1_500),
        ..ServiceConfig::default()
    });
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let id = start_session(
        &rp,
        SessionKind::Authentication,
        &session_request(&phone, &hash_of("short")),
    )
    .unwrap();
    let started = Instant::now();
    let status = session_status(&rp, &id, 60_000).unwrap();
    let waited = started.elapsed();
    assert_complete_without_signature(&status, SessionResult::PhoneAbsent);
    assert!(
        waited >= Duration::from_millis(1_000) && waited < Duration::from_secs(10),
        "the long poll took {waited:?} for a 1.5 s session"
    );
}

#[test]
fn long_polls_wake_up_when_the_answer_or_the_request_comes() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    std::thread::scope(|scope| {
        // The phone waits first; the request wakes it.
        let waiting_phone = scope.spawn(|| {
            let started = Instant::now();
            let request = phone.next_request();
            (request, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        let rp = mss.rp();
        let id = start_session(
            &rp,
            SessionKind::Signature,
            &session_request(&phone, &hash_of("wake")),
        )
        .unwrap();
        let mss = &mss;
        let waiting_rp = scope.spawn(move || {
            let started = Instant::now();
            let status = session_status(&mss.rp(), &id, 60_000).unwrap();
            (status, started.elapsed())
        });
        let (request, phone_waited) = waiting_phone.join().unwrap();
        assert!(phone_waited < Duration::from_secs(4), "{phone_waited:?}");
        std::thread::sleep(Duration::from_millis(300));
        phone.approve(&request).unwrap();
        let (status, rp_waited) = waiting_rp.join().unwrap();
        assert_eq!(status.result, Some(SessionResult::Ok));
        assert!(rp_waited < Duration::from_secs(4), "{rp_waited:?}");
    });
}

#[test]
fn unknown_phone_or_identity_is_not_a_mobile_client() {
    let mss = Mss::start();
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let mut unknown = session_request(&phone, &hash_of("x"));
    unknown.phone_number = "+994551112233".into();
    let mut wrong_identity = session_request(&phone, &hash_of("x"));
    wrong_identity.national_identity_number = "9ZZ9ZZ9".into();
    for request in [&unknown, &wrong_identity] {
        for kind in [SessionKind::Authentication, SessionKind::Signature] {
            let id = start_session(&rp, kind, request).unwrap();
            assert_complete_without_signature(
                &session_status(&rp, &id, 0).unwrap(),
                SessionResult::NotMobileClient,
            );
        }
        let certificate: CertificateResponse = rp
            .post(
                "/certificate",
                &CertificateRequest {
                    phone_number: request.phone_number.clone(),
                    national_identity_number: request.national_identity_number.clone(),
                },
                Duration::from_secs(20),
            )
            .unwrap();
        assert_eq!(certificate.result, CertificateResult::NotFound);
        assert_eq!(certificate.cert, None);
    }
    // Nothing reached the registered phone.
    assert!(phone.pending(0).unwrap().requests.is_empty());
}

fn certificate_of(mss: &Mss, phone: &TestPhone) -> CertificateResponse {
    mss.rp()
        .post(
            "/certificate",
            &CertificateRequest {
                phone_number: phone.phone_number.clone(),
                national_identity_number: phone.national_id.clone(),
            },
            Duration::from_secs(20),
        )
        .unwrap()
}

#[test]
fn a_revoked_signing_certificate_is_not_active_and_its_sessions_not_mobile_client() {
    let mss = Mss::start();
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let good = certificate_of(&mss, &phone);
    assert_eq!(good.result, CertificateResult::Ok);
    assert_eq!(
        decode_base64(good.cert.as_deref().unwrap()).unwrap(),
        phone.sign.der
    );

    mss.status.revoke(&phone.sign);
    let revoked = certificate_of(&mss, &phone);
    assert_eq!(revoked.result, CertificateResult::NotActive);
    assert_eq!(revoked.cert, None);
    let request = session_request(&phone, &hash_of("revoked"));
    let id = start_session(&rp, SessionKind::Signature, &request).unwrap();
    assert_complete_without_signature(
        &session_status(&rp, &id, 0).unwrap(),
        SessionResult::NotMobileClient,
    );
    // The authentication certificate is still good: authentication still reaches the phone.
    let auth = start_session(&rp, SessionKind::Authentication, &request).unwrap();
    assert_eq!(
        session_status(&rp, &auth, 0).unwrap().state,
        SessionState::Running
    );
    assert_eq!(phone.next_request().session_id, auth);

    // The CA store failing is a 503, not a verdict.
    mss.status.fail(true);
    let (status, code) = refusal(start_session(&rp, SessionKind::Signature, &request));
    assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"));
}

#[test]
fn an_expired_certificate_is_not_active() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    // The test certificates are valid for a year.
    mss.clock.advance(time::Duration::days(400));
    assert_eq!(
        certificate_of(&mss, &phone).result,
        CertificateResult::NotActive
    );
    let id = start_session(
        &mss.rp(),
        SessionKind::Authentication,
        &session_request(&phone, &hash_of("late")),
    )
    .unwrap();
    assert_complete_without_signature(
        &session_status(&mss.rp(), &id, 0).unwrap(),
        SessionResult::NotMobileClient,
    );
}

/// Makes a device's signature field for a request.
type Tamper<'a> = Box<dyn Fn(&PendingRequest) -> String + 'a>;

#[test]
fn a_tampered_device_signature_is_a_hash_mismatch_and_never_handed_out() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let stranger = SoftwareKey::generate(KeyAlgorithm::EcP256).unwrap();
    let tampered: Vec<(&str, Tamper<'_>)> = vec![
        (
            "a flipped byte",
            Box::new(|request| {
                let mut signature = phone.sign(request);
                let last = signature.len() - 1;
                signature[last] ^= 0x01;
                encode_base64(&signature)
            }),
        ),
        (
            "another key's signature",
            Box::new(|request| {
                let hash = decode_base64(&request.hash).unwrap();
                encode_base64(&stranger.sign_digest(request.hash_type, &hash).unwrap())
            }),
        ),
        (
            "the authentication key's signature on a signature session",
            Box::new(|request| {
                let hash = decode_base64(&request.hash).unwrap();
                encode_base64(
                    &phone
                        .auth_key
                        .sign_digest(request.hash_type, &hash)
                        .unwrap(),
                )
            }),
        ),
        (
            "a signature over another hash",
            Box::new(|request| {
                encode_base64(
                    &phone
                        .sign_key
                        .sign_digest(request.hash_type, &[9u8; 32])
                        .unwrap(),
                )
            }),
        ),
        ("garbage", Box::new(|_| encode_base64(b"not a signature"))),
        ("not base64", Box::new(|_| "***".to_string())),
        ("empty", Box::new(|_| String::new())),
        ("huge", Box::new(|_| encode_base64(&[0x30; 4000]))),
    ];
    for (what, make) in &tampered {
        let (id, request) = delivered_session(&mss, &phone, what);
        let answered = phone
            .answer(
                &id,
                &DeviceAnswer {
                    result: SessionResult::Ok,
                    signature: Some(make(&request)),
                },
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_complete_without_signature(&answered, SessionResult::SignatureHashMismatch);
        let status = session_status(&mss.rp(), &id, 0).unwrap();
        assert_complete_without_signature(&status, SessionResult::SignatureHashMismatch);
    }
}

#[test]
fn another_relying_party_cannot_see_a_session_and_a_wrong_key_is_unauthorized() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let id = start_session(
        &mss.rp(),
        SessionKind::Signature,
        &session_request(&phone, &hash_of("mine")),
    )
    .unwrap();
    let other = mss.add_relying_party("bank.az");
    assert_eq!(
        refusal(session_status(&other, &id, 0)),
        (404, "NOT_FOUND".to_string())
    );
    // The same answer as a session that never existed.
    let unknown = "0123456789abcdef0123456789abcdef";
    let (_, never) = refusal(session_status(&other, unknown, 0));
    assert_eq!(never, "NOT_FOUND");

    let url = mss.base_url();
    let wrong_key = raw_request(
        &url,
        "GET",
        &format!("/mss/v1/session/{id}"),
        &[("Authorization", &basic(RP_NAME, "wrong-key"))],
        None,
    );
    let unknown_name = raw_request(
        &url,
        "GET",
        &format!("/mss/v1/session/{id}"),
        &[("Authorization", &basic("nobody.az", &mss.rp_key))],
        None,
    );
    let missing = raw_request(&url, "GET", &format!("/mss/v1/session/{id}"), &[], None);
    let bearer = raw_request(
        &url,
        "POST",
        "/mss/v1/signature",
        &[("Authorization", "Bearer abc")],
        Some(b"{}"),
    );
    for answer in [&wrong_key, &unknown_name, &missing, &bearer] {
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.error_body().error, "UNAUTHORIZED");
        assert_eq!(
            answer.header("WWW-Authenticate"),
            Some("Basic realm=\"imza-mss\"")
        );
    }
    // An unknown name and a wrong key cannot be told apart.
    assert_eq!(wrong_key.body, unknown_name.body);
    // A device's credentials are no relying party's, and the reverse.
    let as_device = raw_request(
        &url,
        "GET",
        &format!("/mss/v1/session/{id}"),
        &[(
            "Authorization",
            &basic(&phone.device_id, &phone.device_secret),
        )],
        None,
    );
    assert_eq!(as_device.status, 401);
    let as_rp = raw_request(
        &url,
        "GET",
        "/mss/v1/device/pending",
        &[("Authorization", &basic(RP_NAME, &mss.rp_key))],
        None,
    );
    assert_eq!(as_rp.status, 401);
    let wrong_secret = raw_request(
        &url,
        "GET",
        "/mss/v1/device/pending",
        &[("Authorization", &basic(&phone.device_id, "wrong"))],
        None,
    );
    assert_eq!(wrong_secret.status, 401);
    assert_eq!(wrong_secret.error_body().error, "UNAUTHORIZED");
}

#[test]
fn a_device_answers_once_and_only_its_own_sessions() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let other = mss.register("+994557654321", "7XY8Z9A");
    let (id, request) = delivered_session(&mss, &phone, "once");

    let intruder = other.approve(&request);
    assert_eq!(refusal(intruder), (404, "NOT_FOUND".to_string()));

    phone.approve(&request).unwrap();
    assert_eq!(
        refusal(phone.approve(&request)),
        (409, "CONFLICT".to_string())
    );
    assert_eq!(
        refusal(phone.answer_without_signature(&request, SessionResult::UserRefused)),
        (409, "CONFLICT".to_string())
    );
    // The first answer stands.
    let status = session_status(&mss.rp(), &id, 0).unwrap();
    assert_eq!(status.result, Some(SessionResult::Ok));
}

#[test]
fn registering_a_phone_again_replaces_the_device_and_ends_its_sessions() {
    let mss = Mss::start();
    let rp = mss.rp();
    let old = mss.register(PHONE, NATIONAL_ID);
    let (id, request) = delivered_session(&mss, &old, "before");
    let new = mss.register(PHONE, NATIONAL_ID);
    assert_ne!(new.device_id, old.device_id);
    assert_complete_without_signature(
        &session_status(&rp, &id, 0).unwrap(),
        SessionResult::NotMobileClient,
    );
    // The old device no longer authenticates; the new one gets new sessions.
    assert_eq!(refusal(old.approve(&request)).0, 401);
    assert_eq!(refusal(old.pending(0)).0, 401);
    let (_, request) = delivered_session(&mss, &new, "after");
    assert_eq!(
        new.approve(&request).unwrap().result,
        Some(SessionResult::Ok)
    );
    let device = mss.store.device_for_phone(PHONE).unwrap().unwrap();
    assert_eq!(device.device_id, new.device_id);

    // A device deactivated (the CLI's rollback) ends its sessions the same way.
    let (id, _) = delivered_session(&mss, &new, "rolled back");
    mss.store
        .deactivate_device(&new.device_id, mss.clock.now())
        .unwrap();
    assert_complete_without_signature(
        &session_status(&rp, &id, 0).unwrap(),
        SessionResult::NotMobileClient,
    );
    assert!(mss.store.device_for_phone(PHONE).unwrap().is_none());
}

#[test]
fn bad_requests_are_400_with_the_problem_named_and_large_bodies_413() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let url = mss.base_url();
    let rp_auth = basic(RP_NAME, &mss.rp_key);
    let device_auth = basic(&phone.device_id, &phone.device_secret);
    let good = serde_json::to_value(session_request(&phone, &hash_of("x"))).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[field] = value;
        body.to_string()
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body.to_string()
    };
    let id = start_session(
        &mss.rp(),
        SessionKind::Signature,
        &session_request(&phone, &hash_of("x")),
    )
    .unwrap();
    // (method, path, credentials, body, what the message must mention)
    let cases: Vec<(&str, String, &str, Option<String>, &str)> = vec![
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some("{".into()),
            "EOF",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some("[]".into()),
            "session request",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some("".into()),
            "EOF",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("extra", "x".into())),
            "unknown field `extra`",
        ),
        (
            "POST",
            "/authentication".into(),
            &rp_auth,
            Some(without("hash")),
            "missing field `hash`",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("phoneNumber", "994501234567".into())),
            "phoneNumber",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("phoneNumber", 994501234567u64.into())),
            "invalid type",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("nationalIdentityNumber", "1ab2c3d".into())),
            "nationalIdentityNumber",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("hash", "not base64!".into())),
            "hash",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("hash", encode_base64(&[1; 20]).into())),
            "hash: has 20 bytes",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("hashType", "MD5".into())),
            "unknown variant `MD5`",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("displayText", "x".repeat(201).into())),
            "displayText",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("displayText", "line\nbreak".into())),
            "displayText",
        ),
        (
            "POST",
            "/signature".into(),
            &rp_auth,
            Some(with("language", "FRA".into())),
            "unknown variant `FRA`",
        ),
        (
            "POST",
            "/certificate".into(),
            &rp_auth,
            Some(r#"{"phoneNumber":"+994501234567"}"#.into()),
            "missing field `nationalIdentityNumber`",
        ),
        (
            "POST",
            "/certificate".into(),
            &rp_auth,
            Some(r#"{"phoneNumber":"+99450","nationalIdentityNumber":"1AB2C3D"}"#.into()),
            "phoneNumber",
        ),
        (
            "GET",
            format!("/session/{id}?timeoutMs=abc"),
            &rp_auth,
            None,
            "timeoutMs",
        ),
        (
            "GET",
            format!("/session/{id}?timeoutMs=-5"),
            &rp_auth,
            None,
            "timeoutMs",
        ),
        (
            "GET",
            "/session/not-an-id".into(),
            &rp_auth,
            None,
            "session id",
        ),
        (
            "GET",
            "/session/0123456789ABCDEF0123456789ABCDEF".into(),
            &rp_auth,
            None,
            "session id",
        ),
        (
            "GET",
            "/device/pending?timeoutMs=1.5".into(),
            &device_auth,
            None,
            "timeoutMs",
        ),
        (
            "POST",
            format!("/device/session/{id}"),
            &device_auth,
            Some(r#"{"result":"TIMEOUT"}"#.into()),
            "result",
        ),
        (
            "POST",
            format!("/device/session/{id}"),
            &device_auth,
            Some(r#"{"result":"OK"}"#.into()),
            "signature: required",
        ),
        (
            "POST",
            format!("/device/session/{id}"),
            &device_auth,
            Some(r#"{"result":"USER_REFUSED","signature":"AAAA"}"#.into()),
            "signature: only with result OK",
        ),
        (
            "POST",
            format!("/device/session/{id}"),
            &device_auth,
            Some(r#"{"result":"OK","signature":"AAAA","pin":"1234"}"#.into()),
            "unknown field `pin`",
        ),
        (
            "POST",
            "/device/session/x".into(),
            &device_auth,
            Some(r#"{"result":"USER_REFUSED"}"#.into()),
            "session id",
        ),
    ];
    for (method, path, auth, body, mentions) in &cases {
        let answer = raw_request(
            &url,
            method,
            &format!("/mss/v1{path}"),
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            body.as_deref().map(str::as_bytes),
        );
        assert_eq!(answer.status, 400, "{method} {path} {body:?}: {answer:?}");
        let error = answer.error_body();
        assert_eq!(error.error, "INVALID_REQUEST", "{path} {body:?}");
        assert!(
            error.message.contains(mentions),
            "{path} {body:?}: {:?} does not mention {mentions:?}",
            error.message
        );
        assert!(error.message.chars().count() <= 150, "{}", error.message);
    }
    // None of those touched the session.
    assert_eq!(
        session_status(&mss.rp(), &id, 0).unwrap().state,
        SessionState::Running
    );

    // Over MAX_BODY_BYTES: refused by its Content-Length, or while reading a chunked body.
    let large = format!(
        r#"{{"phoneNumber":"{}","x":"{}"}}"#,
        PHONE,
        "a".repeat(MAX_BODY_BYTES as usize)
    );
    let declared = raw_request(
        &url,
        "POST",
        "/mss/v1/signature",
        &[("Authorization", &rp_auth)],
        Some(large.as_bytes()),
    );
    assert_eq!(declared.status, 413, "{declared:?}");
    assert_eq!(declared.error_body().error, "BODY_TOO_LARGE");
    let chunked_body = format!("{:x}\r\n{large}\r\n0\r\n\r\n", large.len());
    let chunked = raw_request(
        &url,
        "POST",
        "/mss/v1/device/session/0123456789abcdef0123456789abcdef",
        &[
            ("Authorization", &device_auth),
            ("Transfer-Encoding", "chunked"),
        ],
        Some(chunked_body.as_bytes()),
    );
    assert_eq!(chunked.status, 413, "{chunked:?}");
    assert_eq!(chunked.error_body().error, "BODY_TOO_LARGE");

    // Routes that do not exist answer in the same JSON.
    let nowhere = raw_request(&url, "GET", "/mss/v1/nowhere", &[], None);
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.error_body().error, "NOT_FOUND");
}

#[test]
fn display_texts_with_invisible_or_separator_characters_are_refused_naming_the_code_point() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    // One of each class: line separator, paragraph separator, zero-width space, word joiner,
    // byte order mark, soft hyphen, Mongolian vowel separator, grapheme joiner, Hangul
    // fillers, a variation selector, a tag character, a bidi override, private use.
    for c in [
        '\u{2028}',
        '\u{2029}',
        '\u{200B}',
        '\u{2060}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{180E}',
        '\u{034F}',
        '\u{115F}',
        '\u{3164}',
        '\u{FFA0}',
        '\u{FE0F}',
        '\u{E0041}',
        '\u{202E}',
        '\u{E000}',
    ] {
        let mut request = session_request(&phone, &hash_of("hidden"));
        request.display_text = Some(format!("Pay 100{c} AZN"));
        let answer = raw_request(
            &mss.base_url(),
            "POST",
            "/mss/v1/signature",
            &[("Authorization", &basic(RP_NAME, &mss.rp_key))],
            Some(serde_json::to_string(&request).unwrap().as_bytes()),
        );
        assert_eq!(answer.status, 400, "{answer:?}");
        let error = answer.error_body();
        assert_eq!(error.error, "INVALID_REQUEST");
        let code_point = format!("U+{:04X}", u32::from(c));
        assert!(
            error.message.starts_with("displayText: ") && error.message.contains(&code_point),
            "{code_point}: {}",
            error.message
        );
    }
    // Nothing was stored, nothing reached the phone; a plain text still goes through.
    assert_eq!(mss.session_rows(), 0);
    assert!(phone.pending(0).unwrap().requests.is_empty());
    let mut plain = session_request(&phone, &hash_of("plain"));
    plain.display_text = Some("Ödəniş: 100 ₼ — «Bakı»".into());
    start_session(&mss.rp(), SessionKind::Signature, &plain).unwrap();
    assert_eq!(
        phone.next_request().display_text.as_deref(),
        Some("Ödəniş: 100 ₼ — «Bakı»")
    );
}

#[test]
fn long_poll_timeouts_over_the_cap_are_cut_not_refused() {
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let id = start_session(
        &mss.rp(),
        SessionKind::Signature,
        &session_request(&phone, &hash_of("cap")),
    )
    .unwrap();
    // A request is waiting: the long poll answers at once whatever its timeout.
    let huge = raw_request(
        &mss.base_url(),
        "GET",
        &format!("/mss/v1/device/pending?timeoutMs={}", "9".repeat(30)),
        &[(
            "Authorization",
            &basic(&phone.device_id, &phone.device_secret),
        )],
        None,
    );
    assert_eq!(huge.status, 200, "{huge:?}");
    let pending: PendingRequests = serde_json::from_str(&huge.body).unwrap();
    assert_eq!(pending.requests.len(), 1);
    phone.approve(&pending.requests[0]).unwrap();
    let status = session_status(&mss.rp(), &id, 10_u64.pow(15)).unwrap();
    assert_eq!(status.result, Some(SessionResult::Ok));
}

#[test]
fn a_restart_mid_session_keeps_running_sessions_answerable() {
    restart_mid_session_keeps_running_sessions_answerable(Engine::from_env());
}

#[test]
fn a_restart_mid_session_on_postgres_keeps_running_sessions_answerable() {
    restart_mid_session_keeps_running_sessions_answerable(Engine::Postgres);
}

/// Sessions created before a restart of the service (a new store handle on the same
/// database) are answered after it; keys and secrets still work.
fn restart_mid_session_keeps_running_sessions_answerable(engine: Engine) {
    let mut mss = Mss::start_on(engine, ServiceConfig::default());
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let (delivered, request) = delivered_session(&mss, &phone, "delivered before the restart");
    let undelivered = start_session(
        &rp,
        SessionKind::Authentication,
        &session_request(&phone, &hash_of("created before the restart")),
    )
    .unwrap();
    let old_url = mss.base_url();

    mss.restart();
    assert_ne!(mss.base_url(), old_url);
    let rp = mss.rp();
    for id in [&delivered, &undelivered] {
        assert_eq!(
            session_status(&rp, id, 0).unwrap().state,
            SessionState::Running
        );
    }
    // The phone still has both to answer, the delivered one first.
    let pending = phone.pending(0).unwrap().requests;
    let ids: Vec<&str> = pending.iter().map(|r| r.session_id.as_str()).collect();
    assert_eq!(ids, [delivered.as_str(), undelivered.as_str()]);
    assert_eq!(pending[0], request);
    for request in &pending {
        phone.approve(request).unwrap();
    }
    for (id, kind) in [
        (&delivered, SessionKind::Signature),
        (&undelivered, SessionKind::Authentication),
    ] {
        let status = session_status(&rp, id, 5_000).unwrap();
        assert_eq!(status.result, Some(SessionResult::Ok));
        assert_eq!(
            decode_base64(status.cert.as_deref().unwrap()).unwrap(),
            phone.certificate(kind).der
        );
    }

    // The relying party's key and the device's secret still work after another restart, and
    // an answered session stays answered.
    mss.restart();
    let status = session_status(&mss.rp(), &delivered, 0).unwrap();
    assert_eq!(status.result, Some(SessionResult::Ok));
    assert!(phone.pending(0).unwrap().requests.is_empty());
}

#[test]
fn sessions_complete_for_a_day_are_deleted() {
    let mss = Mss::start();
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let (answered, request) = delivered_session(&mss, &phone, "answered");
    phone.approve(&request).unwrap();
    let abandoned = start_session(
        &rp,
        SessionKind::Signature,
        &session_request(&phone, &hash_of("never read again")),
    )
    .unwrap();

    mss.clock.advance(time::Duration::hours(23));
    assert_eq!(mss.service.purge_old_sessions().unwrap(), 0);
    assert_eq!(
        session_status(&rp, &answered, 0).unwrap().result,
        Some(SessionResult::Ok)
    );
    mss.clock.advance(time::Duration::hours(2));
    // Both: the abandoned one ended at its expiry (PHONE_ABSENT) more than a day ago.
    assert_eq!(mss.service.purge_old_sessions().unwrap(), 2);
    for id in [&answered, &abandoned] {
        assert_eq!(
            refusal(session_status(&rp, id, 0)),
            (404, "NOT_FOUND".to_string())
        );
    }
    assert_eq!(mss.session_rows(), 0);
}

#[test]
fn the_tables_live_beside_the_ca_store_under_their_own_names() {
    // The SQLite file's own tables and settings (tests/store_postgres.rs checks PostgreSQL's).
    let mss = Mss::start_on(Engine::Sqlite, ServiceConfig::default());
    let conn = rusqlite::Connection::open(&mss.db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "mss_devices",
            "mss_relying_parties",
            "mss_schema_migrations",
            "mss_sessions"
        ]
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Only hashes of the secrets are kept.
    let key_hash: Vec<u8> = conn
        .query_row("SELECT api_key_sha256 FROM mss_relying_parties", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(key_hash, openssl::sha::sha256(mss.rp_key.as_bytes()));
    // Opening again (as every `imza` command does) changes nothing; a duplicate name is a
    // conflict.
    let again = imza_mobile_sign::store::SqliteMobileStore::open(&mss.db).unwrap();
    assert_eq!(again.relying_parties().unwrap().len(), 1);
    assert!(matches!(
        add_relying_party(&again, RP_NAME, mss.clock.now()),
        Err(imza_mobile_sign::store::StoreError::Conflict(_))
    ));
    assert!(matches!(
        add_relying_party(&again, "Not A Name", mss.clock.now()),
        Err(imza_mobile_sign::store::StoreError::Invalid(_))
    ));
}

#[test]
fn rsa_keys_and_longer_hashes_are_named_and_verified() {
    let mss = Mss::start();
    let phone = mss.register_with(PHONE, NATIONAL_ID, KeyAlgorithm::Rsa2048);
    let hash = openssl::sha::sha384(b"a longer hash");
    let mut request = session_request(&phone, &hash);
    request.hash_type = DigestAlgorithm::Sha384;
    let id = start_session(&mss.rp(), SessionKind::Signature, &request).unwrap();
    let pending = phone.next_request();
    assert_eq!(pending.hash_type, DigestAlgorithm::Sha384);
    phone.approve(&pending).unwrap();
    let status = session_status(&mss.rp(), &id, 5_000).unwrap();
    let signature = status.signature.unwrap();
    assert_eq!(signature.algorithm, "SHA384WithRSAEncryption");
    verify_digest(
        &phone.sign.details().unwrap().public_key,
        imza_core::key::DigestAlgorithm::Sha384,
        &hash,
        &decode_base64(&signature.value).unwrap(),
    )
    .unwrap();
}

#[test]
fn two_hundred_sessions_answered_at_once_are_not_mixed_up() {
    // IMZA_MSS_TEST_SESSIONS=1000 runs the benchmark's shape here. Then 2,000 connections
    // open in the same instant overflow the listen backlog (Rocket 0.5 listens through
    // tokio's TcpListener::bind, backlog 1024): the kernel falls back to SYN cookies and a
    // few connections are reset before any byte reaches the service (`netstat -s`: "invalid
    // SYN cookies received"). 200 stays under it.
    let sessions: usize = std::env::var("IMZA_MSS_TEST_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mss = Mss::start();
    let phones: Vec<TestPhone> = (0..sessions)
        .map(|i| mss.register(&format!("+99450{i:07}"), &format!("N{i:06}")))
        .collect();
    // Every phone and every relying-party thread starts at once.
    let start = Barrier::new(2 * sessions);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for phone in &phones {
            let start = &start;
            scope.spawn(move || {
                start.wait();
                let pending = phone.pending(60_000).unwrap().requests;
                assert_eq!(pending.len(), 1, "{} got {pending:?}", phone.phone_number);
                let answered = phone.approve(&pending[0]).unwrap();
                assert_eq!(answered.result, Some(SessionResult::Ok));
            });
        }
        let relying_parties: Vec<_> = phones
            .iter()
            .map(|phone| {
                let (start, mss) = (&start, &mss);
                scope.spawn(move || {
                    let mut hash = [0u8; 32];
                    openssl::rand::rand_bytes(&mut hash).unwrap();
                    let rp = mss.rp();
                    start.wait();
                    let id =
                        start_session(&rp, SessionKind::Signature, &session_request(phone, &hash))
                            .unwrap();
                    let status = session_status(&rp, &id, 60_000).unwrap();
                    assert_eq!(
                        status.result,
                        Some(SessionResult::Ok),
                        "{}",
                        phone.phone_number
                    );
                    assert_eq!(
                        decode_base64(status.cert.as_deref().unwrap()).unwrap(),
                        phone.sign.der,
                        "another phone's certificate"
                    );
                    verify_digest(
                        &phone.sign.details().unwrap().public_key,
                        imza_core::key::DigestAlgorithm::Sha256,
                        &hash,
                        &decode_base64(&status.signature.unwrap().value).unwrap(),
                    )
                    .unwrap_or_else(|e| {
                        panic!("{}: not a signature over its hash: {e}", phone.phone_number)
                    });
                })
            })
            .collect();
        for handle in relying_parties {
            handle.join().unwrap();
        }
    });
    eprintln!(
        "{sessions} sessions requested, fetched, signed, verified and read in {:?}",
        started.elapsed()
    );
}
/// The `Retry-After` of a 429 with the TOO_MANY_REQUESTS body, in seconds.
fn too_many(answer: &RawResponse) -> u64 {
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.error_body().error, "TOO_MANY_REQUESTS");
    let seconds: u64 = answer
        .header("Retry-After")
        .unwrap_or_else(|| panic!("no Retry-After: {answer:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After is not whole seconds ({e}): {answer:?}"));
    assert!(seconds >= 1, "{answer:?}");
    seconds
}

fn session_id_of(answer: &RawResponse) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn one_relying_party_flooding_a_phone_cannot_keep_another_relying_partys_session_from_it() {
    // The defaults: what `imza serve` runs with.
    let mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let flood_key = mss.add_relying_party_key("flood.gov.az");
    let rows_before = mss.session_rows();
    let url = mss.base_url();
    let (threads, per_thread) = (8, 50);
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let hash = hash_of("the other relying party's document");
    let (flood, other_id) = std::thread::scope(|scope| {
        let flooders: Vec<_> = (0..threads)
            .map(|t| {
                let (url, flood_key, phone, answered) = (&url, &flood_key, &phone, &answered);
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let request = session_request(phone, &hash_of(&format!("{t}/{i}")));
                            let answer = start_session_raw(
                                url,
                                "flood.gov.az",
                                flood_key,
                                SessionKind::Signature,
                                &request,
                            );
                            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            answer
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // The other relying party asks in the middle of the flood.
        while answered.load(std::sync::atomic::Ordering::SeqCst) < threads * per_thread / 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let other_id = start_session(
            &mss.rp(),
            SessionKind::Signature,
            &session_request(&phone, &hash),
        )
        .expect("the other relying party's session is created during the flood");
        let flood: Vec<RawResponse> = flooders
            .into_iter()
            .flat_map(|f| f.join().unwrap())
            .collect();
        (flood, other_id)
    });

    let accepted = flood.iter().filter(|a| a.status == 200).count();
    let limited: Vec<u64> = flood
        .iter()
        .filter(|a| a.status != 200)
        .map(too_many)
        .collect();
    assert_eq!(accepted + limited.len(), threads * per_thread);
    assert!(
        accepted <= DEFAULT_MAX_RUNNING_PER_PHONE as usize,
        "{accepted} flood sessions accepted"
    );
    // The phone sees the other relying party's request, approves it, the signature verifies.
    let pending = phone.pending(20_000).unwrap().requests;
    let request = pending
        .iter()
        .find(|r| r.relying_party == RP_NAME)
        .unwrap_or_else(|| panic!("the other relying party's request is hidden: {pending:?}"));
    assert_eq!(request.session_id, other_id);
    phone.approve(request).unwrap();
    let status = session_status(&mss.rp(), &other_id, 10_000).unwrap();
    assert_eq!(status.result, Some(SessionResult::Ok));
    verify_digest(
        &phone.sign.details().unwrap().public_key,
        imza_core::key::DigestAlgorithm::Sha256,
        &hash,
        &decode_base64(&status.signature.unwrap().value).unwrap(),
    )
    .unwrap();
    // The database grew by what the caps allow: the flood's running sessions and the other's.
    let grown = mss.session_rows() - rows_before;
    assert_eq!(grown, accepted as i64 + 1);
    assert!(
        grown <= i64::from(DEFAULT_MAX_RUNNING_PER_PHONE) + 1,
        "{grown}"
    );
    eprintln!(
        "{} flood requests: {accepted} accepted, {} refused with 429 (Retry-After {}..{} s)",
        flood.len(),
        limited.len(),
        limited.iter().min().unwrap(),
        limited.iter().max().unwrap()
    );
}

#[test]
fn over_its_rate_a_relying_party_gets_429_with_retry_after_and_is_served_after_the_wait() {
    let mss = Mss::start_with(ServiceConfig {
        relying_party_rate: RateLimit::per_minute(1, 3),
        ..ServiceConfig::default()
    });
    let url = mss.base_url();
    let other_key = mss.add_relying_party_key("bank.az");
    let ask = |name: &str, key: &str, phone: &str| {
        start_session_raw(
            &url,
            name,
            key,
            SessionKind::Authentication,
            &unregistered_request(phone),
        )
    };
    for i in 0..3 {
        session_id_of(&ask(RP_NAME, &mss.rp_key, &format!("+99470000000{i}")));
    }
    let refused = ask(RP_NAME, &mss.rp_key, "+994700000009");
    let wait = too_many(&refused);
    assert!((59..=60).contains(&wait), "{refused:?}");
    assert!(
        refused.error_body().message.contains("relying party"),
        "{refused:?}"
    );
    // Another relying party is not held up by it.
    session_id_of(&ask("bank.az", &other_key, "+994700000009"));
    // Once Retry-After has passed (on the service's clock), one more, and only one.
    mss.clock.advance(time::Duration::seconds(wait as i64));
    session_id_of(&ask(RP_NAME, &mss.rp_key, "+994700000009"));
    too_many(&ask(RP_NAME, &mss.rp_key, "+994700000008"));
    assert_eq!(mss.session_rows(), 5);
}

#[test]
fn a_relying_party_has_its_own_budget_per_phone_number() {
    let mss = Mss::start_with(ServiceConfig {
        phone_rate: RateLimit::per_minute(1, 2),
        ..ServiceConfig::default()
    });
    let url = mss.base_url();
    let other_key = mss.add_relying_party_key("bank.az");
    let ask = |name: &str, key: &str, phone: &str| {
        start_session_raw(
            &url,
            name,
            key,
            SessionKind::Signature,
            &unregistered_request(phone),
        )
    };
    let number = "+994701112233";
    session_id_of(&ask(RP_NAME, &mss.rp_key, number));
    session_id_of(&ask(RP_NAME, &mss.rp_key, number));
    let refused = ask(RP_NAME, &mss.rp_key, number);
    let wait = too_many(&refused);
    assert!((59..=60).contains(&wait), "{refused:?}");
    assert!(
        refused.error_body().message.contains("phone number"),
        "{refused:?}"
    );
    // Another number, and another relying party for the same number, are unaffected.
    session_id_of(&ask(RP_NAME, &mss.rp_key, "+994701112234"));
    session_id_of(&ask("bank.az", &other_key, number));
    session_id_of(&ask("bank.az", &other_key, number));
    too_many(&ask("bank.az", &other_key, number));
    // After the wait (on the service's clock), one more.
    mss.clock.advance(time::Duration::seconds(wait as i64));
    session_id_of(&ask(RP_NAME, &mss.rp_key, number));
    too_many(&ask(RP_NAME, &mss.rp_key, number));
}

#[test]
fn running_sessions_per_phone_are_capped_per_relying_party_and_counted_in_the_store() {
    let mut mss = Mss::start();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let bank_key = mss.add_relying_party_key("bank.az");
    let cap = DEFAULT_MAX_RUNNING_PER_PHONE as usize;
    let start = |mss: &Mss, name: &str, key: &str, text: &str| {
        start_session_raw(
            &mss.base_url(),
            name,
            key,
            SessionKind::Signature,
            &session_request(&phone, &hash_of(text)),
        )
    };
    let ours: Vec<String> = (0..cap)
        .map(|i| session_id_of(&start(&mss, RP_NAME, &mss.rp_key, &format!("ours {i}"))))
        .collect();
    let refused = start(&mss, RP_NAME, &mss.rp_key, "one too many");
    // Until the first running session expires at the latest (5 minutes).
    let wait = too_many(&refused);
    assert!((1..=300).contains(&wait), "{refused:?}");
    assert!(
        refused.error_body().message.contains("running"),
        "{refused:?}"
    );
    // The other relying party's slots are its own.
    for i in 0..cap {
        session_id_of(&start(&mss, "bank.az", &bank_key, &format!("bank {i}")));
    }
    too_many(&start(&mss, "bank.az", &bank_key, "bank: one too many"));
    // The count lives in the store: a restarted service refuses too.
    mss.restart();
    too_many(&start(&mss, RP_NAME, &mss.rp_key, "after the restart"));
    // A session answered frees its slot.
    let pending = phone.pending(0).unwrap().requests;
    let first = pending.iter().find(|r| r.session_id == ours[0]).unwrap();
    phone
        .answer_without_signature(first, SessionResult::UserRefused)
        .unwrap();
    session_id_of(&start(&mss, RP_NAME, &mss.rp_key, "a slot was freed"));
    assert_eq!(mss.session_rows(), 2 * cap as i64 + 1);
}

#[test]
fn the_pending_list_takes_relying_parties_in_turns_each_ones_oldest_first() {
    let mss = Mss::start_with(ServiceConfig {
        max_running_per_phone: 50,
        phone_rate: RateLimit::per_minute(60, 50),
        ..ServiceConfig::default()
    });
    let phone = mss.register(PHONE, NATIONAL_ID);
    let flood = mss.add_relying_party("flood.gov.az");
    let bank = mss.add_relying_party("bank.az");
    let start = |rp: &JsonClient, text: &str| {
        start_session(
            rp,
            SessionKind::Signature,
            &session_request(&phone, &hash_of(text)),
        )
        .unwrap()
    };
    let floods: Vec<String> = (0..20)
        .map(|i| start(&flood, &format!("flood {i}")))
        .collect();
    let ours = start(&mss.rp(), "ours");
    let bank_1 = start(&bank, "bank 1");
    let bank_2 = start(&bank, "bank 2");
    let ids: Vec<String> = phone
        .pending(0)
        .unwrap()
        .requests
        .into_iter()
        .map(|r| r.session_id)
        .collect();
    let mut expected = vec![
        floods[0].clone(),
        ours.clone(),
        bank_1.clone(),
        floods[1].clone(),
        bank_2,
    ];
    expected.extend(floods[2..13].iter().cloned());
    assert_eq!(ids.len(), MAX_PENDING_REQUESTS);
    assert_eq!(ids, expected);
    // Every answer keeps the turns: with ours and the bank's first answered, the flood
    // still cannot fill the list alone while the bank waits.
    let pending = phone.pending(0).unwrap().requests;
    for id in [&ours, &bank_1] {
        let request = pending.iter().find(|r| &r.session_id == id).unwrap();
        phone.approve(request).unwrap();
    }
    let ids: Vec<String> = phone
        .pending(0)
        .unwrap()
        .requests
        .into_iter()
        .map(|r| r.session_id)
        .collect();
    assert_eq!(
        ids[1], expected[4],
        "the bank's second is no longer in turn: {ids:?}"
    );
}

#[test]
fn not_mobile_client_sessions_are_kept_until_their_expiry_not_a_day() {
    let mss = Mss::start_with(ServiceConfig {
        relying_party_rate: RateLimit::per_second(1, 20),
        ..ServiceConfig::default()
    });
    let rp = mss.rp();
    let phone = mss.register(PHONE, NATIONAL_ID);
    let running = start_session(
        &rp,
        SessionKind::Signature,
        &session_request(&phone, &hash_of("a real one")),
    )
    .unwrap();
    // A flood of unregistered numbers: the burst is stored, the rest refused.
    let url = mss.base_url();
    let flooded = Instant::now();
    let answers: Vec<RawResponse> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (url, key) = (&url, &mss.rp_key);
                scope.spawn(move || {
                    (0..50)
                        .map(|i| {
                            start_session_raw(
                                url,
                                RP_NAME,
                                key,
                                SessionKind::Authentication,
                                &unregistered_request(&format!("+99471{t:02}{i:05}")),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let flood_took = flooded.elapsed();
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(session_id_of)
        .collect();
    answers.iter().filter(|a| a.status != 200).for_each(|a| {
        too_many(a);
    });
    // The burst less the real session, plus one a second refilled meanwhile.
    let refilled = flood_took.as_secs() as usize + 1;
    assert!(refused.len() >= 19, "{}", refused.len());
    assert!(
        refused.len() <= 19 + refilled,
        "{} stored in {flood_took:?}",
        refused.len()
    );
    assert_eq!(mss.session_rows(), refused.len() as i64 + 1);
    for id in &refused {
        assert_complete_without_signature(
            &session_status(&rp, id, 0).unwrap(),
            SessionResult::NotMobileClient,
        );
    }
    // Readable for the session's lifetime (to 2 s before the first one's expiry here); gone
    // at the first clean-up after it (here: past the last one's expiry).
    let since_flood = time::Duration::try_from(flooded.elapsed()).unwrap();
    mss.clock
        .advance(time::Duration::minutes(5) - time::Duration::seconds(2) - since_flood);
    assert_eq!(mss.service.purge_old_sessions().unwrap(), 0);
    assert_eq!(
        session_status(&rp, &refused[0], 0).unwrap().result,
        Some(SessionResult::NotMobileClient)
    );
    mss.clock
        .advance(time::Duration::seconds(3) + time::Duration::try_from(flood_took).unwrap());
    assert_eq!(mss.service.purge_old_sessions().unwrap(), refused.len());
    assert_eq!(
        refusal(session_status(&rp, &refused[0], 0)),
        (404, "NOT_FOUND".to_string())
    );
    // The real session, ended PHONE_ABSENT at its expiry, is kept its day.
    assert_complete_without_signature(
        &session_status(&rp, &running, 0).unwrap(),
        SessionResult::PhoneAbsent,
    );
    assert_eq!(mss.session_rows(), 1);
}

#[test]
fn the_rate_limiter_tracks_at_most_its_cap_of_phone_numbers_however_many_are_asked_for() {
    let cap = 50;
    let mss = Mss::start_with(ServiceConfig {
        max_tracked_phones: cap,
        // A number's budget is full again, its entry idle, a minute after its request.
        phone_rate: RateLimit::per_minute(1, 1),
        ..ServiceConfig::default()
    });
    let url = mss.base_url();
    let (mut stored, mut full) = (0, 0);
    for round in 0..10 {
        for i in 0..2 * cap {
            let answer = start_session_raw(
                &url,
                RP_NAME,
                &mss.rp_key,
                SessionKind::Authentication,
                &unregistered_request(&format!("+99472{round:02}{i:05}")),
            );
            if answer.status == 200 {
                stored += 1;
            } else {
                let wait = too_many(&answer);
                assert!((1..=60).contains(&wait), "{answer:?}");
                assert!(
                    answer.error_body().message.contains("phone numbers"),
                    "{answer:?}"
                );
                full += 1;
            }
            assert!(mss.service.rate_limited_phones() <= cap);
        }
        // The idle entries make room for the next round's numbers.
        mss.clock.advance(time::Duration::seconds(61));
    }
    assert_eq!((stored, full), (10 * cap, 10 * cap));
}

/// The middle value of `samples`.
fn median(samples: &mut [u128]) -> u128 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Not a test: a benchmark of the 401 paths (`cargo test --release -p imza-mobile-sign --test
/// service -- --ignored --nocapture authentication_timing`). Prints the median time of a wrong
/// key for a known relying-party name and for an unknown one, and the same for devices.
#[test]
#[ignore]
fn authentication_timing_benchmark() {
    let mss = Mss::start();
    for i in 0..50 {
        mss.add_relying_party(&format!("party-{i:02}.gov.az"));
    }
    let phone = mss.register(PHONE, NATIONAL_ID);
    for i in 0..200 {
        mss.register(&format!("+99455{i:07}"), &format!("M{i:06}"));
    }
    let rounds = 200_000;
    let (mut rp_known, mut rp_unknown, mut dev_known, mut dev_unknown) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let unknown_device = "0123456789abcdef0123456789abcdef";
    for _ in 0..rounds {
        let t = Instant::now();
        assert!(mss
            .service
            .authenticate_relying_party(RP_NAME, "wrong-key-0123456789abcdef0123456789abcdef")
            .is_err());
        rp_known.push(t.elapsed().as_nanos());
        let t = Instant::now();
        assert!(mss
            .service
            .authenticate_relying_party(
                "nobody.gov.az",
                "wrong-key-0123456789abcdef0123456789abcdef"
            )
            .is_err());
        rp_unknown.push(t.elapsed().as_nanos());
        let t = Instant::now();
        assert!(mss
            .service
            .authenticate_device(
                &phone.device_id,
                "wrong-secret-0123456789abcdef0123456789abcd"
            )
            .is_err());
        dev_known.push(t.elapsed().as_nanos());
        let t = Instant::now();
        assert!(mss
            .service
            .authenticate_device(
                unknown_device,
                "wrong-secret-0123456789abcdef0123456789abcd"
            )
            .is_err());
        dev_unknown.push(t.elapsed().as_nanos());
    }
    eprintln!(
        "401 medians over {rounds} calls each: relying party known name {} ns, unknown name {} ns; device known id {} ns, unknown id {} ns",
        median(&mut rp_known),
        median(&mut rp_unknown),
        median(&mut dev_known),
        median(&mut dev_unknown)
    );
}
