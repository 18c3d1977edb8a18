//! The signature service over real HTTP on loopback, on a real SQLite file, with real keys and
//! certificates: sessions from the relying party's request to the phone's verified answer,
//! every result, the refusals, a restart mid-session and many sessions at once.

mod common;

use common::*;
use imza_core::verify::verify_digest;
use imza_mobile_sign::protocol::{
    decode_base64, verification_code, SessionKind, SessionResult, SessionState,
};

/// Approves a session and checks what the relying party gets: OK, a signature that verifies
/// over the hash with the registered certificate's key, that certificate.
fn approved_session_verifies(kind: SessionKind) {
    let mss = Mss::start();
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
    approved_session_verifies(SessionKind::Signature);
}

#[test]
fn approved_authentication_session_returns_a_verified_signature_and_the_auth_certificate() {
    approved_session_verifies(SessionKind::Authentication);
}
